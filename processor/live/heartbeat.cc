#include "processor/live/heartbeat.h"

#include <algorithm>

namespace handoffd {

void Heartbeat::Beat(SteadyTime steady, WallTime wall) {
  // steady_clock's epoch is boot (or similar): a real reading is never 0, which means "no beat".
  steady_ns_.store(
      std::max<int64_t>(
          1,
          std::chrono::duration_cast<std::chrono::nanoseconds>(steady.time_since_epoch()).count()),
      std::memory_order_relaxed);
  wall_ns_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count(),
      std::memory_order_relaxed);
}

std::string Heartbeat::Stalled(SteadyTime now, std::chrono::milliseconds threshold) const {
  const int64_t last = steady_ns_.load(std::memory_order_relaxed);
  if (last == 0) return "";
  const auto age = now - SteadyTime(std::chrono::nanoseconds(last));
  if (age <= threshold) return "";
  return "main loop stalled: no progress for " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()) +
         " s (threshold " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(threshold).count()) +
         " s)";
}

double Heartbeat::last_wall_seconds() const {
  return static_cast<double>(wall_ns_.load(std::memory_order_relaxed)) / 1e9;
}

namespace {

int64_t Nanos(std::chrono::steady_clock::time_point t) {
  // steady_clock's epoch is boot (or similar): a real reading is never 0, which means "none".
  return std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

}  // namespace

std::chrono::milliseconds StallWatch::Tick(SteadyTime now) {
  const int64_t at = Nanos(now);
  const int64_t last = last_tick_ns_.exchange(at, std::memory_order_relaxed);
  const auto gap =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(at - last));
  if (last == 0 || gap <= threshold_) return std::chrono::milliseconds(0);
  held_until_ns_.store(at + std::chrono::duration_cast<std::chrono::nanoseconds>(hold_).count(),
                       std::memory_order_relaxed);
  return gap;
}

bool StallWatch::Held(SteadyTime now) const {
  const int64_t at = Nanos(now);
  const int64_t last = last_tick_ns_.load(std::memory_order_relaxed);
  if (last == 0) return false;
  if (std::chrono::nanoseconds(at - last) > threshold_) return true;  // stalled, or resuming
  return at < held_until_ns_.load(std::memory_order_relaxed);
}

std::chrono::milliseconds HeartbeatThreshold(const Config& config) {
  return std::max(std::chrono::milliseconds(60000),
                  std::chrono::milliseconds(4 * config.kafka.shutdown_timeout_ms));
}

}  // namespace handoffd

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

std::chrono::milliseconds HeartbeatThreshold(const Config& config) {
  return std::max(std::chrono::milliseconds(60000),
                  std::chrono::milliseconds(4 * config.kafka.shutdown_timeout_ms));
}

}  // namespace handoffd

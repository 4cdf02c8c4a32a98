// The live worker's main-loop heartbeat: when the thread that reads from Kafka, serves rebalances
// and commits last showed progress, so that /healthz can say "hung" while the HTTP server's own
// threads still answer. The clock is handed in (Beat, Stalled), so the decision is testable
// without waiting.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "config/config.h"

namespace handoffd {

class Heartbeat {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  using WallTime = std::chrono::system_clock::time_point;

  // Records progress at `steady` (monotonic: the health decision) and `wall` (exported as
  // handoffd_main_loop_heartbeat_timestamp_seconds). Thread-safe; two relaxed atomic stores.
  void Beat(SteadyTime steady, WallTime wall);
  void Beat() { Beat(std::chrono::steady_clock::now(), std::chrono::system_clock::now()); }

  // Empty while the last beat is at most `threshold` before `now`, or before the first beat
  // (start-up has its own time limits); else a one-line reason for /healthz, e.g.
  // "main loop stalled: no progress for 75 s (threshold 60 s)". Thread-safe.
  std::string Stalled(SteadyTime now, std::chrono::milliseconds threshold) const;

  // Wall-clock seconds since the epoch of the last beat; 0 before the first. Thread-safe.
  double last_wall_seconds() const;

 private:
  std::atomic<int64_t> steady_ns_{0};  // 0: no beat yet
  std::atomic<int64_t> wall_ns_{0};
};

// Stalls of the whole process (SIGSTOP, a paused VM, heavy swapping). A member that does not run
// for longer than its group session may have been expired by the coordinator, and its partitions
// given to another member; librdkafka finds that out only once the process runs again (its
// session check, the next heartbeat), and the worker learns it when it next serves the consumer
// queue. Until then it is a zombie: changelog records it writes for partitions it no longer
// owns would land after the new owner's (at_least_once has no broker-side fencing, nor has
// exactly_once on the embedded broker). A thread calls Tick() every few hundred milliseconds;
// Held() tells the worker to hold its changelog writes (and transaction commits) while the ticks
// are more than `threshold` apart (stalled, or just resuming before the thread has ticked) and
// for `hold` after a stall ends, which gives librdkafka time to revoke what was lost. The clock is
// handed in (Tick, Held), so the decision is testable without waiting. Thread-safe.
class StallWatch {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  StallWatch(std::chrono::milliseconds threshold, std::chrono::milliseconds hold)
      : threshold_(threshold), hold_(hold) {}

  // Records that the process runs at `now`; returns how long it did not (the gap since the
  // previous tick) when that was more than the threshold, else zero.
  std::chrono::milliseconds Tick(SteadyTime now);

  // Whether changelog writes must wait at `now`. False before the first tick.
  bool Held(SteadyTime now) const;

  std::chrono::milliseconds threshold() const { return threshold_; }
  std::chrono::milliseconds hold() const { return hold_; }

 private:
  std::chrono::milliseconds threshold_;
  std::chrono::milliseconds hold_;
  std::atomic<int64_t> last_tick_ns_{0};  // 0: no tick yet
  std::atomic<int64_t> held_until_ns_{0};
};

// How long the main loop may go without a beat before /healthz says 503:
// max(60 s, 4 x kafka.shutdown_timeout_ms). The longest legitimate stretch between beats is a
// commit: a flush, sending the offsets to the transaction and one commit (or abort) call, each
// bounded by shutdown_timeout_ms (10 s by default), plus the flush of at_least_once revocation;
// calls resumed after a timeout, the pause after a failed commit (at most 10 s) and a restore's
// reads beat as they go.
std::chrono::milliseconds HeartbeatThreshold(const Config& config);

}  // namespace handoffd

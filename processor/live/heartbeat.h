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

// How long the main loop may go without a beat before /healthz says 503:
// max(60 s, 4 x kafka.shutdown_timeout_ms). The longest legitimate stretch between beats is a
// commit: a flush, sending the offsets to the transaction and one commit (or abort) call, each
// bounded by shutdown_timeout_ms (10 s by default), plus the flush of at_least_once revocation;
// calls resumed after a timeout, the pause after a failed commit (at most 10 s) and a restore's
// reads beat as they go.
std::chrono::milliseconds HeartbeatThreshold(const Config& config);

}  // namespace handoffd

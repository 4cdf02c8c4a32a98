// A synthetic agent fleet for `handoffd generate` (demo and benchmark input): runs of the
// catalog's workflows with a realistic mix of successes, failures, retries, low-confidence
// decisions, planned handoffs and stalls, plus acknowledgements for part of the packets.
// Deterministic for a given seed and clock readings; event times are the times passed in, so
// live SLA timers fire on the wall clock. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "processor/time_format.h"

namespace handoffd {

struct FleetRecord {
  bool is_ack = false;  // true: goes to the acks topic
  std::string run_id;   // the key
  std::string json;     // the value
};

class SyntheticFleet {
 public:
  // `workflows`: ids to draw from (the catalog; "demo-workflow" when empty). `concurrency`:
  // runs in flight at once (events of different runs interleave).
  SyntheticFleet(std::vector<std::string> workflows, uint64_t seed, int concurrency = 64);

  // Appends the next record at event time `now_ms` to *out: an ack that became due, or the next
  // event of a random run in flight (starting a new run when one finished).
  void Next(int64_t now_ms, FleetRecord* out);

  int64_t runs_started() const { return runs_started_; }

 private:
  struct Run {
    std::string id;
    std::string workflow;
    std::vector<std::string> script;  // events still to emit, ts filled in at emission
    size_t next = 0;
    bool acked_packet = false;  // some event opens a packet: schedule an ack
  };
  struct PendingAck {
    std::string run_id;
    std::string type;
  };

  Run NewRun(int64_t now_ms);

  std::vector<std::string> workflows_;
  std::mt19937_64 rng_;
  std::vector<Run> runs_;
  std::multimap<int64_t, PendingAck> acks_;  // by due time
  int64_t runs_started_ = 0;
  int64_t event_seq_ = 0;
  int64_t ts_ms_ = -1;  // the time ts_ holds, formatted
  char ts_[kRfc3339MsLength] = {};
};

}  // namespace handoffd

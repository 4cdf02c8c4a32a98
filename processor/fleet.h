// A synthetic agent fleet: a deterministic (seeded) generator of realistic agent traffic as JSON
// lines in the input format of contract sections 2 and 3, for `handoffd generate`, benchmarks
// and tests. Pure: no clock, no I/O; event time starts at FleetOptions::start_ms.
#pragma once

#include <array>
#include <climits>
#include <cstdint>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

namespace handoffd {

struct FleetOptions {
  uint64_t seed = 1;
  // Runs in flight at once; each line advances one of them, picked at random, so runs interleave.
  int concurrent_runs = 64;
  // Share of runs that go wrong in one of the ways of contract section 4 (a step_failed code of
  // each class, a retry chain, a tool error with side effects, a low-confidence or risky
  // decision, a handoff_requested of each type, a budget blow-out, a stall, a failed outcome).
  double failure_rate = 0.10;
  // Share of failed runs whose incident is acknowledged (handoff_acknowledged, 1 to 10 minutes
  // later in event time); half of those are then resolved (handoff_resolved).
  double ack_rate = 0.5;
  double invalid_rate = 0.002;       // share of lines that are bad (DLQ material)
  double duplicate_rate = 0.005;     // share of lines that repeat the previous event verbatim
  double out_of_order_rate = 0.005;  // share of lines held back and sent after the next one
  double unknown_type_rate = 0.001;  // share of lines with a type this version does not know
  int64_t start_ms = 1795226400000;  // event time of the first line (2026-11-21T02:00:00Z)
  int64_t mean_gap_ms = 20;          // mean event-time gap between consecutive lines
  int max_steps = 6;                 // steps per run, 2..max_steps
  std::string run_prefix = "run-";   // run ids are <run_prefix><seed % 100000>-<n>; <= 20 chars
};

// What the last line of Fleet::Next is, for tests and counters.
enum class FleetLine : uint8_t {
  kEvent,        // a valid agent event
  kAck,          // handoff_acknowledged or handoff_resolved
  kInvalid,      // must be dead-lettered
  kDuplicate,    // an exact repeat of an earlier event line
  kUnknownType,  // valid envelope, unknown type
};

class Fleet {
 public:
  // REQUIRES: options.concurrent_runs >= 1, rates in [0, 1]. Never fails after construction.
  explicit Fleet(const FleetOptions& options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Appends one line (no trailing newline) to *line. The same options give the same lines.
  // Does not allocate in the steady state (reserve *line once and clear it between calls).
  void Next(std::string* line);

  // The last line's run_id (its Kafka key), event time and kind; valid until the next Next().
  std::string_view run_id() const { return last_.run_id(); }
  int64_t ts_ms() const { return last_.ts_ms; }
  FleetLine kind() const { return last_.kind; }
  uint64_t lines() const { return lines_; }
  uint64_t runs_started() const { return runs_started_; }

 private:
  struct Run;
  struct PendingAck {
    int64_t due_ms;
    uint64_t run_number;
    uint8_t workflow;
    bool resolve;
    bool operator>(const PendingAck& o) const { return due_ms > o.due_ms; }
  };
  // One produced line and what Next() reports about it.
  struct Line {
    std::string text;
    std::array<char, 64> run_id_buf{};
    size_t run_id_len = 0;
    int64_t ts_ms = 0;
    FleetLine kind = FleetLine::kEvent;
    std::string_view run_id() const { return {run_id_buf.data(), run_id_len}; }
  };

  uint64_t Rand();
  double Uniform() { return static_cast<double>(Rand() >> 11) * 0x1.0p-53; }
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(((Rand() >> 32) * n) >> 32); }
  bool Chance(double p) { return Uniform() < p; }

  void StartRun(Run* run);
  void Generate(Line* out);  // one fresh line: a due ack, or the next event of a random run
  void EmitRunEvent(Run* run, Line* out);
  void EmitAck(const PendingAck& ack, Line* out);
  void EmitInvalid(Run* run, Line* out);
  void EmitUnknownType(Run* run, Line* out);
  void Begin(const Run& run, std::string_view type, Line* out);
  void AppendTs(int64_t ms, std::string* out);
  void ScheduleAcks(const Run& run);

  FleetOptions options_;
  uint64_t rng_[4];
  std::vector<Run> runs_;
  std::priority_queue<PendingAck, std::vector<PendingAck>, std::greater<>> acks_;
  uint64_t next_run_number_ = 0;
  int64_t now_ms_;
  Line current_;   // the line being produced
  Line previous_;  // the last valid event line, for duplicates
  bool have_previous_ = false;
  Line held_;  // a line held back for out-of-order delivery, sent after the next one
  bool have_held_ = false;
  bool release_held_ = false;  // the next Next() sends held_
  Line last_;                  // what the accessors report
  uint64_t lines_ = 0;
  uint64_t runs_started_ = 0;
  std::array<char, 19> ts_cache_{};  // "YYYY-MM-DDTHH:MM:SS" of ts_cache_second_
  int64_t ts_cache_second_ = INT64_MIN;
};

}  // namespace handoffd

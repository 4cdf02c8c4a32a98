// Per-run state the engine keeps: what the run's events said (interned strings, times,
// counters), the dedup window of seen event ids, per-step counters and the run's packets.
// Compact by design (about 200 bytes for a run without packets): strings are Interner ids,
// rare data (attrs, packets) sits behind a pointer that is null for most runs.
// Plain data; the Engine owns the Interner the ids refer to. Not thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "processor/types.h"

namespace handoffd {

inline constexpr int64_t kNoTime = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kUnknownCount = std::numeric_limits<int64_t>::min();

// The last `limit` event-id hashes of a run, oldest forgotten first. Lookups scan linearly:
// runs see a handful of events, and the scan over a few cache lines beats a hash set here.
class SeenSet {
 public:
  SeenSet() = default;
  SeenSet(SeenSet&&) noexcept = default;
  SeenSet& operator=(SeenSet&&) noexcept = default;

  bool Contains(uint64_t hash) const;
  // Adds `hash`; returns true when the window was full and the oldest hash was forgotten.
  // REQUIRES: limit >= 1.
  bool Insert(uint64_t hash, uint32_t limit);
  uint32_t size() const { return size_; }
  // i-th hash from the oldest. REQUIRES: i < size().
  uint64_t At(uint32_t i) const { return data_[(head_ + i) % size_]; }
  void Clear();

 private:
  std::unique_ptr<uint64_t[]> data_;
  uint32_t size_ = 0;
  uint32_t capacity_ = 0;
  uint32_t head_ = 0;  // index of the oldest hash once the window is full
};

// Counters of one step of a run, kept only for steps that succeeded or failed retryably.
struct StepStat {
  uint32_t step = 0;               // Interner id
  uint32_t retries = 0;            // retryable step_failed seen, cumulative
  int64_t succeeded_ts = kNoTime;  // latest step_succeeded event time
  // The latest success before succeeded_ts: a packet whose trigger falls between the two still
  // finds this step (a step that succeeded again after a failure was detected, events late).
  int64_t prev_succeeded_ts = kNoTime;
};

// Where a packet stands in its gate (contract section 6 and 11).
enum class PacketStage : uint8_t {
  kHeld,        // P1 on handoff.pending, waiting for enrichment or the hold deadline
  kIncomplete,  // P2/P3 sent incomplete; a revision follows when events complete it
  kSettled,     // emitted; only SLA revisions follow
};

// One open incident. Trigger fields are fixed at detection; everything scored is re-read from
// the run at each revision.
struct Packet {
  uint32_t number = 0;        // n in "<run_id>#<n>"
  uint32_t revision = 0;      // records written so far on routing topics
  uint32_t failing_step = 0;  // Interner id; 0 when the trigger had no step
  uint16_t flag_classes = 0;  // bit per FailureClass also matched by the trigger
  FailureClass cls = FailureClass::kUnclassifiedFailure;
  Severity severity = Severity::kP3;
  PacketStage stage = PacketStage::kSettled;
  uint8_t escalation_level = 1;
  bool override_page = false;  // paged at the end of the P1 hold ("override" flag)
  bool acked = false;
  bool has_source = false;
  int64_t detected_at = 0;
  int64_t acked_at = kNoTime;  // earliest acknowledgement time
  // last_successful_step: the latest success at or before detected_at (event time), set at
  // detection and moved by later-arriving successes. Interner id, 0 = none.
  uint32_t last_success_step = 0;
  int64_t last_success_ts = kNoTime;
  // A resolve stamped after a timer of the packet that has not fired yet (hold, escalation,
  // expiry): the packet closes at this time, after them (TimerKind::kResolve). kNoTime = none.
  int64_t resolve_at = kNoTime;
  std::optional<std::string> resolve_by;
  std::string error_summary;
  std::string source_topic;
  int32_t source_partition = 0;
  int64_t source_offset = 0;
  // Planned handoffs only (raw JSON for options and evidence).
  std::optional<std::string> options_json;
  std::optional<std::string> evidence_json;
  std::optional<std::string> owner_role;
  std::optional<std::string> next_action;
};

// Rare per-run data.
struct RunExtras {
  std::optional<std::string> attrs_json;
  std::vector<Packet> packets;  // open packets only, in opening order
};

struct Run {
  std::string run_id;
  const WorkflowConfig* wf = nullptr;  // catalog entry of `workflow`, if any
  std::unique_ptr<RunExtras> extras;
  SeenSet seen;
  std::vector<StepStat> steps;
  uint64_t seq = 0;               // creation number, orders timers of runs due at the same time
  int64_t start_ts = kNoTime;     // run_started time, else the earliest event time
  int64_t max_ts = kNoTime;       // latest event time of the run
  int64_t quiet_since = kNoTime;  // stall clock base: latest event or incident close
  int64_t completed_ts = kNoTime;
  int64_t blast_users = kUnknownCount;
  int64_t blast_jobs = kUnknownCount;
  double cost_usd = 0;
  uint32_t tool_calls = 0;
  uint32_t incidents = 0;  // incidents opened so far (the last packet number)
  // Interner ids; 0 = not given by any event.
  uint32_t workflow = 0;
  uint32_t objective = 0;
  uint32_t recommended_action = 0;
  uint32_t rollback_command = 0;
  uint32_t owner_primary = 0;
  uint32_t owner_backup = 0;
  uint32_t last_step = 0;  // step of the latest event (arrival order) that named one
  uint32_t gen = 0;        // slot generation, see Timer::run_gen
  uint16_t open_packets = 0;
  std::optional<Severity> severity;  // from run_started
  bool in_use = false;
  bool started_seen = false;
  bool completed = false;
  bool budget_fired = false;
  bool dirty = false;        // queued for the changelog
  bool stall_armed = false;  // a stall timer entry is in the queue
  // A stalled incident was opened and no event came since: one report per quiet period, so a
  // dead run does not page again every time its stalled packet closes.
  bool stall_reported = false;
  bool logged = false;  // written to the changelog at least once (needs a tombstone)
  // Completed and past completed_run_retention_s: only the id, seq, times and incident count
  // are kept (limits.retired_run_memory_s), so that a late event is refused, not a new run.
  bool retired = false;

  StepStat* FindStep(uint32_t step_id);
};

// Run storage by slot index, in fixed chunks: references stay valid as runs are added, and
// indexing is a shift and a mask (std::deque would hold two runs per block at this size).
class RunSlots {
 public:
  Run& operator[](uint32_t i) { return chunks_[i >> kChunkBits][i & kChunkMask]; }
  const Run& operator[](uint32_t i) const { return chunks_[i >> kChunkBits][i & kChunkMask]; }
  size_t size() const { return size_; }
  // Appends a default Run and returns its slot.
  uint32_t Add() {
    if (size_ == chunks_.size() << kChunkBits) {
      chunks_.push_back(std::make_unique<Run[]>(size_t{1} << kChunkBits));
    }
    return static_cast<uint32_t>(size_++);
  }

 private:
  static constexpr uint32_t kChunkBits = 10;
  static constexpr uint32_t kChunkMask = (1u << kChunkBits) - 1;
  std::vector<std::unique_ptr<Run[]>> chunks_;
  size_t size_ = 0;
};

}  // namespace handoffd

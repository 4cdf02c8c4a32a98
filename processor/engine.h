// The handoffd core: events, acknowledgements and watermark ticks in, output records out
// (contract sections 2 to 7 and 11). Pure: no Kafka, no clock, no I/O; time is event time.
// One Engine holds the state of one input partition (replay uses one for the whole file).
// Not thread-safe: one thread drives an Engine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"
#include "processor/engine_observer.h"
#include "processor/event.h"
#include "processor/output.h"

namespace handoffd {

struct SourceRef {
  std::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  // Live mode: the Kafka record's timestamp (epoch ms), which bounds how far the record's event
  // time may move the watermark (time.max_future_ms). Negative: none (replay).
  int64_t record_time_ms = -1;
};

// Receives per-run state changes for the changelog (live mode).
class ChangelogSink {
 public:
  virtual ~ChangelogSink() = default;
  // `state` empty = the run is gone (tombstone). Views valid only during the call.
  virtual void PutRun(std::string_view run_id, std::string_view state) = 0;
};

class Engine {
 public:
  // REQUIRES: config and observer outlive the Engine. observer may be nullptr.
  Engine(const Config& config, EngineObserver* observer);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Applies one decoded event or ack, in the order of contract section 11: move the watermark,
  // fire due timers, apply the record, fire timers it made due. Duplicates (same event_id within
  // a run) and unknown types move the watermark and change nothing else.
  // Returns false, having only moved the watermark, for an event of a retired run (completed,
  // past limits.completed_run_retention_s, within limits.retired_run_memory_s): the caller
  // dead-letters it (kRetiredRun); applied, it would start the run again under used packet ids.
  // REQUIRES: `event` came from a successful Decoder::Decode.
  bool Process(const Event& event, const SourceRef& source, OutputSink* sink);

  // For a record dead-lettered after its envelope (event_id, run_id, type, ts) was valid: moves
  // the watermark by `ts_ms` and fires the timers now due, as Process would, and changes nothing
  // else (contract section 11: every record with a valid envelope moves the watermark).
  void ProcessDeadLettered(int64_t ts_ms, const SourceRef& source, OutputSink* sink);

  // Whether `ts_ms` is more than time.max_future_ms ahead of the record time of `source`: such
  // an event moves the watermark only that far (a producer's clock is wrong; one event from the
  // future would otherwise fire every timer of the partition at once). False without a record
  // time (replay).
  bool AheadOfRecordTime(int64_t ts_ms, const SourceRef& source) const;

  // Moves the watermark to max(current, watermark_ms) and fires every timer due
  // (replay --advance-to; live mode wall-clock following on a caught-up partition).
  void AdvanceWatermark(int64_t watermark_ms, OutputSink* sink);

  // INT64_MIN before the first record.
  int64_t watermark_ms() const;
  // When the earliest timer is due (INT64_MAX: none). A timer may turn out to have nothing left
  // to do when it fires (timers are invalidated lazily), so this is an upper bound on the
  // watermark that changes nothing.
  int64_t next_timer_ms() const;
  // The highest event time of a record applied so far (what the watermark trails by
  // time.allowed_lateness_ms); INT64_MIN before the first.
  int64_t max_event_ms() const;
  int64_t active_runs() const;
  // Runs held in state: active ones, completed ones kept for completed_run_retention_s and
  // retired ones.
  int64_t held_runs() const;

  // --- Changelog (live mode). ---
  // Calls sink->PutRun for every run changed since the last call, then forgets the changes.
  void DrainChanges(ChangelogSink* sink);
  // Marks every run the engine holds as changed: the next DrainChanges writes the whole state
  // (a snapshot of the partition).
  void MarkAllChanged();
  // Engine-wide state (watermark, max event time) as bytes, and back.
  std::string SerializeMeta() const;
  // Restores one run from bytes produced through PutRun (empty = delete). Returns false when the
  // bytes are not a state this version can read; the run is then skipped.
  bool RestoreRun(std::string_view run_id, std::string_view state);
  bool RestoreMeta(std::string_view meta);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace handoffd

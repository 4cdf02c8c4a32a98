// Decoder + Engine + dead-lettering: the one path every input record takes, in replay and live
// mode alike. Bad input becomes a DLQ record with its reason and source, is counted, and
// processing goes on. Not thread-safe: one per partition/thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "processor/decoder.h"
#include "processor/engine.h"
#include "processor/field_caps.h"
#include "processor/log.h"

namespace handoffd {

// DLQ reason of a live record whose event time is more than time.max_past_ms behind its Kafka
// timestamp.
inline constexpr std::string_view kStaleTimestamp = "stale_timestamp";
// DLQ reason of an event of a retired run (Engine::Process, limits.retired_run_memory_s).
inline constexpr std::string_view kRetiredRun = "retired_run";

// Every reason Pipeline::Handle dead-letters a record with (the handoffd-error header and the
// `reason` label of handoffd_events_invalid_total): DecoderReasons(), kStaleTimestamp and
// kRetiredRun.
std::vector<std::string> DeadLetterReasons();

class Pipeline {
 public:
  // REQUIRES: config and observer outlive the Pipeline; observer may be nullptr.
  Pipeline(const Config& config, EngineObserver* observer);

  // Handles one input record: `key` is the Kafka key (empty in replay), `bytes` the value.
  // Returns true when the record was valid (applied or, for unknown types, skipped) and false
  // when it went to the DLQ.
  bool Handle(std::string_view key, std::string_view bytes, const SourceRef& source,
              OutputSink* sink);

  // Handle in two steps, for a caller that needs a record's event time before it decides to
  // apply it (live mode's merge of events and acks): Decode returns the event time of `bytes`
  // (INT64_MIN when the record has no valid envelope); HandleDecoded then handles that record
  // without decoding it again. REQUIRES: no other Decode or Handle call in between, and `bytes`
  // still alive.
  int64_t Decode(std::string_view bytes);
  bool HandleDecoded(std::string_view key, std::string_view bytes, const SourceRef& source,
                     OutputSink* sink);

  // Live mode: the producers must key events and acks by run_id (contract section 1), so that
  // one partition holds all of a run's records. A valid record keyed otherwise is counted
  // (EngineObserver::OnKeyMismatch) and logged, and processed as usual. Off in replay (no keys).
  void set_check_keys(bool on) { check_keys_ = on; }

  Engine& engine() { return engine_; }
  const Engine& engine() const { return engine_; }

 private:
  // Each counts and logs (at most as often as its limiter allows) what it finds in event_:
  // fields over their bound, which it cuts (FieldCaps); a Kafka key that is not the run_id; an
  // event time too far ahead of its record time (Engine::AheadOfRecordTime).
  void CapFields(const SourceRef& source);
  void CheckKey(std::string_view key, const SourceRef& source);
  void CheckRecordTime(const SourceRef& source);

  EngineObserver* observer_;
  Decoder decoder_;
  Engine engine_;
  FieldCaps caps_;
  // One "field truncated" line per 10 s, at info: long error messages are ordinary, and the
  // metric counts every cut.
  LogLimiter caps_log_{std::chrono::seconds(10)};
  int64_t max_past_ms_;
  bool check_keys_ = false;
  LogLimiter key_log_{std::chrono::seconds(10)};  // one "key is not the run_id" line per 10 s
  LogLimiter ahead_log_{std::chrono::seconds(10)};
  // One "event dead-lettered" line per second: the first bad record of a burst is logged at
  // once, the rest counted in the next line's suppressed= (and every one in the DLQ metric).
  LogLimiter dlq_log_{std::chrono::seconds(1)};
  Event event_;
  std::string_view decoded_reason_;  // of the last Decode
  bool decoded_envelope_valid_ = false;
  std::string source_text_;  // "topic/partition/offset", reused
};

}  // namespace handoffd

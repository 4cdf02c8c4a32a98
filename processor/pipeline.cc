#include "processor/pipeline.h"

namespace handoffd {
namespace {
EngineObserver kNoopObserver;

// "topic/partition/offset" into *out (reused).
void FormatSource(const SourceRef& source, std::string* out) {
  out->clear();
  out->append(source.topic);
  out->push_back('/');
  out->append(std::to_string(source.partition));
  out->push_back('/');
  out->append(std::to_string(source.offset));
}
}  // namespace

Pipeline::Pipeline(const Config& config, EngineObserver* observer)
    : observer_(observer != nullptr ? observer : &kNoopObserver),
      decoder_(config.limits.max_event_bytes),
      engine_(config, observer),
      caps_(static_cast<size_t>(config.limits.max_field_bytes)),
      max_past_ms_(config.time.max_past_ms) {}

void Pipeline::CapFields(const SourceRef& source) {
  int cut = 0;
  std::string_view field = caps_.Apply(&event_, &cut);
  if (cut == 0) return;
  observer_->OnLimitHit("max_field_bytes");
  int64_t suppressed = 0;
  if (caps_log_.Allow(std::chrono::steady_clock::now(), &suppressed)) {
    FormatSource(source, &source_text_);
    Log(LogLevel::kInfo, "field truncated",
        {{"field", std::string(field)},
         {"fields", std::to_string(cut)},
         {"run_id", std::string(event_.run_id)},
         {"source", source_text_},
         {"suppressed", std::to_string(suppressed)}});
  }
}

void Pipeline::CheckKey(std::string_view key, const SourceRef& source) {
  if (key == event_.run_id) return;
  observer_->OnKeyMismatch(source.topic);
  int64_t suppressed = 0;
  if (key_log_.Allow(std::chrono::steady_clock::now(), &suppressed)) {
    FormatSource(source, &source_text_);
    Log(LogLevel::kWarn, "record key is not its run_id",
        {{"source", source_text_},
         {"key", std::string(key.substr(0, kMaxNameBytes))},
         {"run_id", std::string(event_.run_id)},
         {"suppressed", std::to_string(suppressed)},
         {"hint",
          "key events and acks by run_id: a run's records in different partitions are "
          "processed apart"}});
  }
}

void Pipeline::CheckRecordTime(const SourceRef& source) {
  if (!engine_.AheadOfRecordTime(event_.ts_ms, source)) return;
  observer_->OnEventAhead(source.topic);
  int64_t suppressed = 0;
  if (ahead_log_.Allow(std::chrono::steady_clock::now(), &suppressed)) {
    FormatSource(source, &source_text_);
    Log(LogLevel::kWarn, "event time ahead of record time",
        {{"source", source_text_},
         {"run_id", std::string(event_.run_id)},
         {"ahead_ms", std::to_string(event_.ts_ms - source.record_time_ms)},
         {"suppressed", std::to_string(suppressed)},
         {"hint",
          "the producer's clock is wrong; the watermark moves at most time.max_future_ms past "
          "the record time"}});
  }
}

std::vector<std::string> DeadLetterReasons() {
  std::vector<std::string> reasons = DecoderReasons();
  reasons.emplace_back(kStaleTimestamp);
  reasons.emplace_back(kRetiredRun);
  return reasons;
}

bool Pipeline::Handle(std::string_view key, std::string_view bytes, const SourceRef& source,
                      OutputSink* sink) {
  Decode(bytes);
  return HandleDecoded(key, bytes, source, sink);
}

int64_t Pipeline::Decode(std::string_view bytes) {
  decoded_reason_ = decoder_.Decode(bytes, &event_);
  decoded_envelope_valid_ = decoder_.envelope_valid();
  return decoded_reason_.empty() || decoded_envelope_valid_ ? event_.ts_ms : INT64_MIN;
}

bool Pipeline::HandleDecoded(std::string_view key, std::string_view bytes, const SourceRef& source,
                             OutputSink* sink) {
  std::string_view reason = decoded_reason_;
  bool envelope_valid = decoded_envelope_valid_;
  // Live mode: an event time far behind its record's timestamp is not a late event but a wrong
  // unit or clock (epoch seconds read as 1970). Applied, its run would stall and its packets
  // escalate and expire the moment they open, since a caught-up watermark follows the wall clock.
  if (reason.empty() && source.record_time_ms > max_past_ms_ &&
      event_.ts_ms < source.record_time_ms - max_past_ms_) {
    reason = kStaleTimestamp;
    envelope_valid = true;
  }
  if (reason.empty()) {
    CapFields(source);
    if (check_keys_) CheckKey(key, source);
    CheckRecordTime(source);
    // Refused (a retired run's event): the watermark has moved; dead-lettered below.
    if (engine_.Process(event_, source, sink)) return true;
    reason = kRetiredRun;
  } else if (envelope_valid) {
    // Contract section 11: a record with a valid envelope moves the watermark (and fires the
    // timers due) before it is applied, here dead-lettered.
    CheckRecordTime(source);
    engine_.ProcessDeadLettered(event_.ts_ms, source, sink);
  }
  FormatSource(source, &source_text_);
  int64_t suppressed = 0;
  if (dlq_log_.Allow(std::chrono::steady_clock::now(), &suppressed)) {
    Log(LogLevel::kWarn, "event dead-lettered",
        {{"source", source_text_},
         {"reason", std::string(reason)},
         {"run_id", envelope_valid ? std::string(event_.run_id.substr(0, kMaxNameBytes)) : ""},
         {"suppressed", std::to_string(suppressed)}});
  }
  OutputRecord record{};
  record.role = TopicRole::kDlq;
  record.key = key;
  record.value = bytes;
  record.ce_id = source_text_;
  record.ce_type = "dev.handoffd.dlq.v1";
  record.time_ms = 0;
  record.error = reason;
  record.source = source_text_;
  observer_->OnInvalidEvent(reason);
  sink->Emit(record);
  return false;
}

}  // namespace handoffd

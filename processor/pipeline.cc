#include "processor/pipeline.h"

namespace handoffd {
namespace {
EngineObserver kNoopObserver;
}  // namespace

Pipeline::Pipeline(const Config& config, EngineObserver* observer)
    : observer_(observer != nullptr ? observer : &kNoopObserver),
      decoder_(config.limits.max_event_bytes),
      engine_(config, observer) {}

bool Pipeline::Handle(std::string_view key, std::string_view bytes, const SourceRef& source,
                      OutputSink* sink) {
  std::string_view reason = decoder_.Decode(bytes, &event_);
  if (reason.empty()) {
    engine_.Process(event_, source, sink);
    return true;
  }
  // Contract section 11: a record with a valid envelope moves the watermark (and fires the timers
  // due) before it is applied, here dead-lettered.
  if (decoder_.envelope_valid()) engine_.ProcessDeadLettered(event_.ts_ms, sink);
  source_text_.clear();
  source_text_.append(source.topic);
  source_text_.push_back('/');
  source_text_.append(std::to_string(source.partition));
  source_text_.push_back('/');
  source_text_.append(std::to_string(source.offset));
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

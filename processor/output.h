// What the core emits: records addressed to an output topic role, plus the sink interface the
// replay writer and the Kafka producer implement. Records are deterministic: the same input
// gives byte-identical records (emitted_at is event time, never the wall clock).
#pragma once

#include <cstdint>
#include <string_view>

#include "processor/types.h"

namespace handoffd {

// Views are valid only during OutputSink::Emit; a sink copies what it keeps.
struct OutputRecord {
  TopicRole role;
  std::string_view key;    // run_id (for DLQ: the original key, may be empty)
  std::string_view value;  // packet or audit JSON object; for DLQ the original bytes unchanged
  // CloudEvents attributes: ce_id is "<packet_id>/<revision>" for packets and
  // "audit/<packet_id>/<revision>/<action>" for audit records; ce_type is
  // "dev.handoffd.packet.v1", "dev.handoffd.audit.v1" or "dev.handoffd.dlq.v1".
  std::string_view ce_id;
  std::string_view ce_type;
  int64_t time_ms = 0;  // event time of the record (emitted_at / at)
  // DLQ only: reason (handoffd-error header) and "topic/partition/offset" (handoffd-source).
  std::string_view error;
  std::string_view source;
};

class OutputSink {
 public:
  virtual ~OutputSink() = default;
  virtual void Emit(const OutputRecord& record) = 0;
};

}  // namespace handoffd

#include "processor/live/kafka_sink.h"

#include <cstdlib>

#include "metrics/metrics.h"
#include "processor/live/changelog.h"
#include "processor/log.h"
#include "processor/thread_name.h"
#include "processor/time_format.h"

namespace handoffd {
namespace {

void AddHeader(rd_kafka_headers_t* headers, std::string_view name, std::string_view value) {
  rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                      static_cast<ssize_t>(value.size()));
}

}  // namespace

thread_local int64_t KafkaOutputSink::input_time_ms_ = 0;

// Room left in message.max.bytes for the record's headers and framing (librdkafka counts about
// 80 bytes of framing; a DLQ record's headers are a few hundred bytes).
constexpr int64_t kRecordOverheadBytes = 4096;

int64_t MaxMessageBytes(rd_kafka_t* producer) {
  char buf[32];
  size_t size = sizeof buf;
  if (rd_kafka_conf_get(rd_kafka_conf(producer), "message.max.bytes", buf, &size) !=
      RD_KAFKA_CONF_OK) {
    return 1000000;  // librdkafka's default
  }
  return std::atoll(buf);
}

KafkaOutputSink::KafkaOutputSink(rd_kafka_t* producer, const Config& config, std::string ce_source,
                                 Metrics* metrics)
    : producer_(producer),
      config_(config),
      ce_source_(std::move(ce_source)),
      metrics_(metrics),
      max_payload_bytes_(MaxMessageBytes(producer) - kRecordOverheadBytes) {}

bool KafkaOutputSink::Fits(std::string_view key, std::string_view value) const {
  return static_cast<int64_t>(key.size() + value.size()) <= max_payload_bytes_;
}

void KafkaOutputSink::LogTooLarge(LogLevel level, std::string_view limit, std::string_view what,
                                  std::string_view topic,
                                  std::pair<const char*, std::string_view> where, size_t bytes,
                                  LogLimiter* limiter) {
  if (metrics_ != nullptr) metrics_->OnLimitHit(limit);
  int64_t suppressed = 0;
  if (limiter->Allow(std::chrono::steady_clock::now(), &suppressed)) {
    Log(level, what,
        {{"topic", std::string(topic)},
         {where.first, std::string(where.second)},
         {"bytes", std::to_string(bytes)},
         {"message_max_bytes", std::to_string(max_payload_bytes_ + kRecordOverheadBytes)},
         {"suppressed", std::to_string(suppressed)}});
  }
}

void KafkaOutputSink::Emit(const OutputRecord& record) {
  rd_kafka_headers_t* headers = rd_kafka_headers_new(8);
  char time_buf[kRfc3339MsLength];
  int64_t time_ms = record.time_ms != 0 ? record.time_ms : input_time_ms_;
  size_t time_len = FormatRfc3339Ms(time_ms, time_buf);
  AddHeader(headers, "ce_specversion", "1.0");
  AddHeader(headers, "ce_id", record.ce_id);
  AddHeader(headers, "ce_type", record.ce_type);
  AddHeader(headers, "ce_source", ce_source_);
  AddHeader(headers, "ce_time", std::string_view(time_buf, time_len));
  const std::string& topic = config_.topics.ForRole(record.role);
  std::string_view value = record.value;
  if (record.role == TopicRole::kDlq) {
    AddHeader(headers, "content-type", "application/octet-stream");
    AddHeader(headers, "handoffd-error", record.error);
    AddHeader(headers, "handoffd-source", record.source);
    // An input the producer cannot send back (the cluster took it, up to its own limit, but
    // message.max.bytes is lower): dead-lettered without its bytes, which stay on the input
    // topic at handoffd-source, rather than failing the batch on every restart.
    if (!Fits(record.key, value)) {
      AddHeader(headers, "handoffd-original-bytes", std::to_string(value.size()));
      LogTooLarge(LogLevel::kWarn, "message_max_bytes_dlq", "dead letter without its value", topic,
                  {"source", record.source}, value.size(), &dlq_too_large_log_);
      value = {};
    }
  } else {
    AddHeader(headers, "content-type", "application/json");
  }
  if (!hold_outputs_) {
    if (metrics_ != nullptr) metrics_->OnRecordsProduced(topic, 1);
    Produce(topic, RD_KAFKA_PARTITION_UA, record.key, value, headers);
    return;
  }
  bool full = false;
  {
    std::lock_guard lock(held_mu_);
    held_.push_back({&topic, std::string(record.key), std::string(value), headers});
    full = held_.size() >= kMaxHeldOutputs;
  }
  produced_.fetch_add(1, std::memory_order_relaxed);
  if (full) ReleaseHeldOutputs();
}

void KafkaOutputSink::ReleaseHeldOutputs() {
  std::lock_guard release(release_mu_);
  std::vector<HeldOutput> out;
  {
    std::lock_guard lock(held_mu_);
    out.swap(held_);
  }
  for (HeldOutput& r : out) {
    // Counted in handoffd_records_produced_total only now: an aborted transaction's outputs
    // (DropHeldOutputs) were never produced.
    if (metrics_ != nullptr) metrics_->OnRecordsProduced(*r.topic, 1);
    Produce(*r.topic, RD_KAFKA_PARTITION_UA, r.key, r.value, r.headers, /*counted=*/true);
  }
}

void KafkaOutputSink::DropHeldOutputs() {
  std::lock_guard release(release_mu_);
  std::lock_guard lock(held_mu_);
  for (HeldOutput& r : held_) rd_kafka_headers_destroy(r.headers);
  held_.clear();
}

void KafkaOutputSink::OnDelivered(void* opaque) {
  std::lock_guard lock(in_flight_mu_);
  auto it = in_flight_.find(static_cast<int64_t>(reinterpret_cast<intptr_t>(opaque)));
  if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
}

void KafkaOutputSink::PutState(int32_t partition, std::string_view key, std::string_view value) {
  // A run whose state outgrew one record (only with many open packets full of long fields, see
  // processor/field_caps.h): not written, so that the batch can still be committed. A restore
  // gets the run's previous record, if any.
  if (!Fits(key, value)) {
    LogTooLarge(LogLevel::kError, "message_max_bytes_state", "run state too large for one record",
                config_.topics.state, {"run_id", key}, value.size(), &state_too_large_log_);
    return;
  }
  rd_kafka_headers_t* headers = nullptr;
  {
    std::lock_guard lock(state_writers_mu_);
    if (auto it = state_writers_.find(partition); it != state_writers_.end()) {
      headers = rd_kafka_headers_new(2);
      rd_kafka_header_add(headers, kWriterHeader, -1, it->second.writer.data(),
                          static_cast<ssize_t>(it->second.writer.size()));
      if (key == kMetaKey) {
        rd_kafka_header_add(headers, kRestoredFromHeader, -1, it->second.restored_from.data(),
                            static_cast<ssize_t>(it->second.restored_from.size()));
      }
    }
  }
  Produce(config_.topics.state, partition, key, value, headers);
}

void KafkaOutputSink::SetStateWriter(int32_t partition, std::string writer,
                                     std::string restored_from) {
  std::lock_guard lock(state_writers_mu_);
  state_writers_[partition] = {std::move(writer), std::move(restored_from)};
}

void KafkaOutputSink::ClearStateWriter(int32_t partition) {
  std::lock_guard lock(state_writers_mu_);
  state_writers_.erase(partition);
}

void KafkaOutputSink::Produce(const std::string& topic, int32_t partition, std::string_view key,
                              std::string_view value, rd_kafka_headers_t* headers, bool counted) {
  // An empty value is produced as NULL: a tombstone for the compacted changelog, and the DLQ's
  // "original bytes" of an empty input.
  void* value_ptr = value.empty() ? nullptr : const_cast<char*>(value.data());
  void* key_ptr = key.empty() ? nullptr : const_cast<char*>(key.data());
  const int64_t epoch = epoch_.load();
  // Counted in flight before librdkafka has it: its delivery report may be served on another
  // thread (the kicker's flush) before rd_kafka_producev() even returns here.
  {
    std::lock_guard lock(in_flight_mu_);
    ++in_flight_[epoch];
  }
  for (;;) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(key_ptr, key.size()), RD_KAFKA_V_VALUE(value_ptr, value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<intptr_t>(epoch))), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (!counted) produced_.fetch_add(1, std::memory_order_relaxed);
      return;  // librdkafka owns the headers now
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer_, 10);  // backpressure: wait for deliveries to free the queue
      continue;
    }
    // Unknown topic, fatal producer error, ...: the record is lost to this batch; the delivery
    // failure makes the commit fail, so the input is reprocessed after a restart.
    failures_.fetch_add(1);  // before the record stops being in flight (see OnDelivered)
    OnDelivered(reinterpret_cast<void*>(static_cast<intptr_t>(epoch)));
    int64_t suppressed = 0;
    if (produce_log_.Allow(std::chrono::steady_clock::now(), &suppressed)) {
      Log(LogLevel::kError, "produce failed",
          {{"topic", topic},
           {"error", rd_kafka_err2str(err)},
           {"suppressed", std::to_string(suppressed)}});
    }
    if (metrics_ != nullptr) metrics_->OnDeliveryFailure(topic);
    if (headers != nullptr) rd_kafka_headers_destroy(headers);
    return;
  }
}

namespace {
// How long one kick's flush may last. linger.ms is ignored only while rd_kafka_flush() runs, and
// it returns once every record is acknowledged; pushing out a queue spread over many partitions
// takes several round trips (one Produce request per partition, at most 5 in flight per
// connection for an idempotent producer). Measured with a 1 ms limit: the flush ended before
// the last requests were sent, and their records waited for linger.ms (p99 at 200k events/s
// 79 ms, against 38 ms with 50).
constexpr int kKickFlushMs = 50;
}  // namespace

ProducerKicker::ProducerKicker(rd_kafka_t* producer)
    : producer_(producer), thread_([this] { Loop(); }) {}

ProducerKicker::~ProducerKicker() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void ProducerKicker::Kick() {
  {
    std::lock_guard lock(mu_);
    if (kicked_) return;
    kicked_ = true;
  }
  cv_.notify_one();
}

void ProducerKicker::Loop() {
  NameThisThread("hd-kicker");
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return kicked_ || stop_; });
    if (stop_) return;
    kicked_ = false;
    lock.unlock();
    rd_kafka_flush(producer_, kKickFlushMs);
    flushes_.fetch_add(1);
    lock.lock();
  }
}

}  // namespace handoffd

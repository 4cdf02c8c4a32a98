// The Kafka side of the core's output: every OutputRecord becomes one produced record on the
// topic of its role, keyed by run_id (DLQ: the original key), with CloudEvents binary-mode
// headers (ce_specversion, ce_id, ce_type, ce_source, ce_time, content-type) and, for the DLQ,
// handoffd-error and handoffd-source. Also writes changelog records to an explicit partition.
// Not thread-safe: used by the worker thread only (the producer handle itself is thread-safe).
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.h"
#include "processor/engine.h"
#include "processor/log.h"
#include "processor/output.h"

namespace handoffd {

class Metrics;

class KafkaOutputSink : public OutputSink {
 public:
  // REQUIRES: producer, config (and metrics, if not null) outlive the sink.
  KafkaOutputSink(rd_kafka_t* producer, const Config& config, std::string ce_source,
                  Metrics* metrics);

  // Event time (ms) of the input record being handled on the calling thread: ce_time of DLQ
  // records, which carry no time of their own. Deterministic on reprocessing (it is the input's
  // Kafka timestamp).
  void set_input_time_ms(int64_t ms) { input_time_ms_ = ms; }

  void Emit(const OutputRecord& record) override;

  // Produces one changelog record to `partition` of the state topic (empty value = tombstone),
  // with the partition's writer headers (changelog.h) once SetStateWriter named them.
  void PutState(int32_t partition, std::string_view key, std::string_view value);
  // The writer token of partition p's changelog records from now on, and the writer of the meta
  // record its state was restored from (kRestoredFromHeader, on meta records). Set when the
  // worker takes the partition, cleared when it gives it up.
  void SetStateWriter(int32_t partition, std::string writer, std::string restored_from);
  void ClearStateWriter(int32_t partition);

  // Records handed to librdkafka so far (outputs and changelog), by every thread.
  int64_t produced() const { return produced_.load(std::memory_order_relaxed); }

  // Delivery tracking by epoch (the worker's commit batches): every record produced from now on
  // belongs to `epoch` (non-decreasing; set by the worker's main thread, while pipeline threads
  // may be producing: a record produced meanwhile may land in either epoch, which only delays
  // the step that waits for it). OnDelivered takes the msg->_private of a delivery report
  // (success or failure) of this sink's producer; it may run on any thread that serves the
  // producer's reports (the worker's poll and flush calls, and the ProducerKicker's flush).
  // Every method of the sink may be called from several threads at once.
  void set_epoch(int64_t epoch) { epoch_.store(epoch); }
  int64_t epoch() const { return epoch_.load(); }
  void OnDelivered(void* opaque);
  // True when every record of epochs <= `epoch` has had its delivery report.
  bool DeliveredThrough(int64_t epoch) const {
    std::lock_guard lock(in_flight_mu_);
    return in_flight_.empty() || in_flight_.begin()->first > epoch;
  }

  // exactly_once: outputs (Emit) are held here and handed to librdkafka together, by
  // ReleaseHeldOutputs (the worker calls it when it commits), instead of one at a time as they
  // are made. librdkafka 2.0.2 registers the partitions a transaction writes to with one
  // AddPartitionsToTxn request at a time, and after each response its main thread busy-waits
  // for a 1 ms timer: outputs trickling to new partitions through a transaction made a request,
  // and a spin, each. Held outputs count in produced() at once, and in
  // handoffd_records_produced_total when they are released (dropped ones never). A holding sink
  // that holds kMaxHeldOutputs releases them on the emitting thread. Readers see no difference on a
  // real cluster (read_committed shows nothing before the commit); on the embedded broker, which
  // shows records before their commit, outputs appear at the commit instead of before it.
  // Under a backlog the lanes fill kMaxHeldOutputs quickly and produce in bursts of that size;
  // once a transaction has registered the partitions, later bursts need no registration.
  void set_hold_outputs(bool hold) { hold_outputs_ = hold; }
  // Hands every held output to librdkafka, in the order they were made.
  void ReleaseHeldOutputs();
  // Forgets the held outputs (the transaction they belong to is aborted; its input is processed
  // again after the rewind).
  void DropHeldOutputs();
  size_t held_outputs() const {
    std::lock_guard lock(held_mu_);
    return held_.size();
  }
  static constexpr size_t kMaxHeldOutputs = 2048;

  // Records that failed (at produce time or in a delivery report) since the last TakeFailures.
  // A batch with failures must not be committed. AddFailure is thread-safe (delivery reports).
  void AddFailure() { failures_.fetch_add(1, std::memory_order_relaxed); }
  int64_t TakeFailures() { return failures_.exchange(0); }

 private:
  // Blocks (serving delivery reports) while librdkafka's queue is full. `counted`: already in
  // produced() (a held output).
  void Produce(const std::string& topic, int32_t partition, std::string_view key,
               std::string_view value, rd_kafka_headers_t* headers, bool counted = false);

  // Whether a record of this key and value fits in the producer's message.max.bytes.
  bool Fits(std::string_view key, std::string_view value) const;
  // Logs (at most once a second) and counts (handoffd_limit_hits_total{limit}) a record that did
  // not fit.
  void LogTooLarge(LogLevel level, std::string_view limit, std::string_view what,
                   std::string_view topic, std::pair<const char*, std::string_view> where,
                   size_t bytes, LogLimiter* limiter);

  struct HeldOutput {
    const std::string* topic;
    std::string key;
    std::string value;
    rd_kafka_headers_t* headers;
  };

  rd_kafka_t* producer_;
  const Config& config_;
  bool hold_outputs_ = false;
  mutable std::mutex held_mu_;
  std::vector<HeldOutput> held_;  // guarded by held_mu_
  // Held while a release produces: a release that starts later (another lane's) waits, so that
  // every output goes out after the ones made before it.
  std::mutex release_mu_;
  std::string ce_source_;
  Metrics* metrics_;
  static thread_local int64_t input_time_ms_;
  std::atomic<int64_t> produced_{0};
  std::atomic<int64_t> epoch_{0};
  mutable std::mutex in_flight_mu_;
  std::map<int64_t, int64_t> in_flight_;             // epoch -> records without a delivery report
  LogLimiter produce_log_{std::chrono::seconds(1)};  // one "produce failed" line per second
  LogLimiter dlq_too_large_log_{std::chrono::seconds(1)};
  LogLimiter state_too_large_log_{std::chrono::seconds(1)};
  int64_t max_payload_bytes_;  // message.max.bytes less room for headers and framing
  struct StateWriterHeaders {
    std::string writer;
    std::string restored_from;
  };
  std::mutex state_writers_mu_;
  std::map<int32_t, StateWriterHeaders> state_writers_;
  std::atomic<int64_t> failures_{0};
};

// Sends the producer's queued records now, without waiting for linger.ms, on request and
// without blocking the caller. librdkafka 2.0.2 has no call for that except rd_kafka_flush(),
// which ignores linger.ms only while it runs and blocks until every record is acknowledged; so a
// thread of its own runs it. The worker keeps linger.ms long, so that a backlog is produced in
// large batches (librdkafka sends one Produce request per partition), and kicks once it has
// read everything there is to read, so that a caught-up worker's records go out at once.
// The flush serves delivery reports on this thread: the producer's callbacks must be
// thread-safe.
class ProducerKicker {
 public:
  // REQUIRES: producer outlives the kicker.
  explicit ProducerKicker(rd_kafka_t* producer);
  ~ProducerKicker();  // stops and joins the thread
  ProducerKicker(const ProducerKicker&) = delete;
  ProducerKicker& operator=(const ProducerKicker&) = delete;

  // Asks the thread to send what is queued now; returns at once. The flush lasts until every
  // record is acknowledged (at most 50 ms), so records produced meanwhile go out at once too; a
  // kick while a flush runs leads to one more flush when it ends.
  void Kick();
  // Kicks served so far (for tests).
  int64_t flushes() const { return flushes_.load(); }

 private:
  void Loop();

  rd_kafka_t* producer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool kicked_ = false;
  bool stop_ = false;
  std::atomic<int64_t> flushes_{0};
  std::thread thread_;  // last: starts once the members above exist
};

// Adapts Engine::DrainChanges to KafkaOutputSink::PutState for one partition.
class StateWriter : public ChangelogSink {
 public:
  StateWriter(KafkaOutputSink* sink, int32_t partition) : sink_(sink), partition_(partition) {}
  void PutRun(std::string_view run_id, std::string_view state) override {
    sink_->PutState(partition_, run_id, state);
    ++count_;
  }
  int64_t count() const { return count_; }

 private:
  KafkaOutputSink* sink_;
  int32_t partition_;
  int64_t count_ = 0;
};

}  // namespace handoffd

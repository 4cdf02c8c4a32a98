#include "processor/live/worker.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

#include "metrics/metrics.h"
#include "processor/cpu_time.h"
#include "processor/live/embedded_broker.h"
#include "processor/live/kafka_conf.h"
#include "processor/log.h"
#include "processor/thread_name.h"

namespace handoffd {
namespace {

using Clock = std::chrono::steady_clock;

// How long a timed-out commit_transaction or abort_transaction is resumed (librdkafka: "retry
// call to resume") before the worker gives up and exits: the broker's default
// transaction.timeout.ms, after which it aborts the transaction itself.
constexpr auto kTransactionCallLimit = std::chrono::seconds(60);

constexpr int kPollBatch = 1000;  // records per consumer per loop round
constexpr auto kWallClockTick = std::chrono::milliseconds(100);
// How long a wall-clock tick waits for its changelog record (Worker::JournalTicks).
constexpr int kTickJournalTimeoutMs = 1000;
constexpr auto kLagReport = std::chrono::seconds(1);  // metrics; logged every 10th time
// The longest an idle Run() sleeps: how soon it sees the stop flag (set by a signal handler).
constexpr auto kIdleWaitMax = std::chrono::milliseconds(100);
// An idle Run() waits this long for events in one consumer call, so that a trickle of records
// is read as one round: reading each as it came made rounds smaller and cost ~9% more CPU at
// 100k events/s (main thread wake-ups 1,800 -> 3,200 a second) for no gain in latency.
constexpr int kIdleGatherMs = 2;
// Rounds that read nothing for this long: Run() sleeps until librdkafka has something for it
// (WaitForWork) instead of waiting kIdleGatherMs again and again. Not at once: under a steady
// stream that would add a sleep and a wake-up before most rounds (measured ~4% more CPU and
// 2-3 ms more p50 latency at 200k events/s).
constexpr auto kIdleSleepAfter = std::chrono::milliseconds(20);
constexpr int kRestoreTimeoutMs = 120000;
// Embedded broker snapshots (DrainPartition). The mock drops a partition's oldest record batches
// beyond 5 MiB or 100,000 batches; it must always keep the last snapshot, the changes since
// (at most kSnapshotEveryBytes more, or kSnapshotEveryDrains drains of at most two batches each)
// and the next snapshot while it is written, with a batch (up to 1 MB) to spare: fine for a
// state up to kSnapshotMaxBytes. No snapshot before the partition's changelog nears the limits
// (kSnapshotFromBytes, kSnapshotFromBatches): until then nothing is dropped, and a short or slow
// run never pays for one.
constexpr int64_t kSnapshotEveryBytes = int64_t{1} << 20;
constexpr int64_t kSnapshotEveryDrains = 20000;
constexpr int64_t kSnapshotMaxBytes = int64_t{3} << 19;  // 1.5 MiB
constexpr int64_t kSnapshotFromBytes = int64_t{3} << 20;
constexpr int64_t kSnapshotFromBatches = 60000;
// What a record costs the mock beyond its key and value (batch and record headers), roughly.
constexpr int64_t kRecordOverheadBytes = 64;

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string PartitionList(const rd_kafka_topic_partition_list_t* parts) {
  std::string out;
  for (int i = 0; i < parts->cnt; ++i) {
    if (!out.empty()) out.push_back(',');
    out.append(std::to_string(parts->elems[i].partition));
  }
  return out;
}

bool IsCooperative(rd_kafka_t* rk) {
  const char* proto = rd_kafka_rebalance_protocol(rk);
  return proto != nullptr && std::string_view(proto) == "COOPERATIVE";
}

// Calls `call` (rd_kafka_commit_transaction or rd_kafka_abort_transaction) again while it times
// out: librdkafka goes on with the operation in the background, the next call resumes it, and
// any other transactional call meanwhile fails ("Conflicting ... API call is already in
// progress"). For up to kTransactionCallLimit. Returns the last error, nullptr on success.
// `beat` is called before each retry: a call resumed within the limit is progress, not a hang.
template <typename Call, typename OnRetry>
rd_kafka_error_t* CallResumingTimeouts(Call call, const char* retry_msg, OnRetry beat) {
  const auto give_up = Clock::now() + kTransactionCallLimit;
  for (;;) {
    rd_kafka_error_t* error = call();
    if (error == nullptr || !rd_kafka_error_is_retriable(error) || Clock::now() >= give_up) {
      return error;
    }
    beat();
    Log(LogLevel::kWarn, retry_msg, {{"error", rd_kafka_error_string(error)}});
    rd_kafka_error_destroy(error);
  }
}

// Logs and destroys a librdkafka error object; returns true when there was one.
bool LogError(rd_kafka_error_t* error, const char* what) {
  if (error == nullptr) return false;
  Log(LogLevel::kError, what, {{"error", rd_kafka_error_string(error)}});
  rd_kafka_error_destroy(error);
  return true;
}

}  // namespace

rd_kafka_error_t* SendOffsetsToTransaction(rd_kafka_t* producer, rd_kafka_t* consumer,
                                           const rd_kafka_topic_partition_list_t* offsets,
                                           int timeout_ms, bool* skipped) {
  *skipped = false;
  rd_kafka_consumer_group_metadata_t* cgmd = rd_kafka_consumer_group_metadata(consumer);
  if (cgmd == nullptr) {
    *skipped = true;
    return nullptr;
  }
  rd_kafka_error_t* error =
      rd_kafka_send_offsets_to_transaction(producer, offsets, cgmd, timeout_ms);
  rd_kafka_consumer_group_metadata_destroy(cgmd);
  return error;
}

namespace {

// The value of header `name` of `msg` (the last one), or "" when it has none.
std::string_view HeaderValue(const rd_kafka_message_t* msg, const char* name) {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(msg, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  const void* value = nullptr;
  size_t size = 0;
  if (rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      value == nullptr) {
    return {};
  }
  return {static_cast<const char*>(value), size};
}

// 16 hex digits, different in every call of every process.
std::string RandomHex64() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}() ^
                             static_cast<uint64_t>(Clock::now().time_since_epoch().count())};
  uint64_t v = 0;
  {
    std::lock_guard lock(mu);
    v = rng();
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(v));
  return out;
}

}  // namespace

size_t ConsumeGroupRecords(rd_kafka_queue_t* queue, int timeout_ms, rd_kafka_message_t** out,
                           size_t max) {
  // The clock is read only when the queue is empty: while records are queued, a clock read per
  // record was ~2% of a catch-up's CPU.
  Clock::time_point deadline{};
  size_t n = 0;
  while (n < max) {
    rd_kafka_message_t* msg = rd_kafka_consume_queue(queue, 0);
    if (msg == nullptr && timeout_ms > 0) {
      const auto now = Clock::now();
      if (deadline == Clock::time_point{}) deadline = now + std::chrono::milliseconds(timeout_ms);
      const int64_t left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
      if (left > 0) msg = rd_kafka_consume_queue(queue, static_cast<int>(left));
    }
    if (msg == nullptr) break;
    out[n++] = msg;
  }
  return n;
}

Worker::Worker(const Config& config, std::string bootstrap, std::string instance, Metrics* metrics)
    : config_(config),
      bootstrap_(std::move(bootstrap)),
      instance_(std::move(instance)),
      metrics_(metrics),
      exactly_once_(config.kafka.processing_guarantee == ProcessingGuarantee::kExactlyOnce) {}

Worker::~Worker() {
  StopStallWatch();
  StopLanes();
  kicker_.reset();  // its flush serves delivery reports that reach sink_
  held_.reset();
  unsealed_.reset();
  if (pending_group_offsets_ != nullptr)
    rd_kafka_topic_partition_list_destroy(pending_group_offsets_);
  partitions_.clear();
  sink_.reset();
  for (rd_kafka_topic_t* rkt : producer_topics_) rd_kafka_topic_destroy(rkt);
  for (rd_kafka_queue_t* q : {consumer_queue_, acks_queue_}) {
    if (q == nullptr) continue;
    rd_kafka_queue_io_event_enable(q, -1, nullptr, 0);  // before the pipe closes
    rd_kafka_queue_destroy(q);
  }
  for (rd_kafka_topic_t* rkt : consumer_topics_) rd_kafka_topic_destroy(rkt);
  if (consumer_ != nullptr && !group_assigned_) {
    // Never assigned: maybe between its first JoinGroup and SyncGroup, where librdkafka 2.0.2's
    // rd_kafka_destroy aborts the process (see group_assigned_). Left to the process exit
    // instead, silenced (its threads may still log reconnects); it was closed by Run(), or is
    // dropped by the group at its session timeout. Nothing of it is used after this.
    Log(LogLevel::kInfo, "group consumer left to the process exit",
        {{"reason",
          "stopped before the first assignment (librdkafka 2.0.2 aborts destroying it)"}});
    rd_kafka_set_log_level(consumer_, 0);
    consumer_ = nullptr;
  }
  for (rd_kafka_t* rk : {consumer_, acks_, restorer_, producer_}) {
    if (rk != nullptr) rd_kafka_destroy(rk);
  }
  for (int fd : wake_pipe_) {
    if (fd >= 0) close(fd);
  }
}

void Worker::Beat() {
  const auto wall = std::chrono::system_clock::now();
  heartbeat_.Beat(Clock::now(), wall);
  if (metrics_ != nullptr) {
    metrics_->SetMainLoopHeartbeat(std::chrono::duration<double>(wall.time_since_epoch()).count());
  }
}

bool Worker::Start(std::string* error) {
  Beat();  // from here on /healthz watches the main thread
  // The same settings CheckKafkaClientConfig checked at start (kafka_conf.h).
  const WorkerClientOverrides settings = WorkerClientSettings(config_, instance_, embedded_broker_);
  if (embedded_broker_) {
    auto effective = [&](const std::string& key) {
      const auto& user = config_.kafka.properties;
      return user.count(key) != 0 ? user.at(key) : settings.consumer.at(key);
    };
    Log(LogLevel::kInfo, "embedded broker consumer settings",
        {{"fetch_wait_max_ms", effective("fetch.wait.max.ms")},
         {"session_timeout_ms", effective("session.timeout.ms")},
         {"heartbeat_interval_ms", effective("heartbeat.interval.ms")},
         {"why",
          "the embedded broker holds an empty fetch for fetch.wait.max.ms and a rebalance for "
          "session.timeout.ms - 1 s"}});
  }

  auto make = [&](rd_kafka_type_t type, const std::map<std::string, std::string>& overrides,
                  bool rebalance) -> rd_kafka_t* {
    rd_kafka_conf_t* conf = MakeKafkaConf(config_, bootstrap_, overrides, error);
    if (conf == nullptr) return nullptr;
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_error_cb(conf, &Worker::ErrorCallback);
    if (rebalance) rd_kafka_conf_set_rebalance_cb(conf, &Worker::RebalanceCallback);
    if (type == RD_KAFKA_PRODUCER) rd_kafka_conf_set_dr_msg_cb(conf, &Worker::DeliveryCallback);
    rd_kafka_t* rk = NewKafkaClient(type, conf, "Kafka", error);
    if (rk == nullptr) return nullptr;
    if (type == RD_KAFKA_CONSUMER) rd_kafka_poll_set_consumer(rk);
    return rk;
  };

  producer_ = make(RD_KAFKA_PRODUCER, settings.producer, false);
  if (producer_ == nullptr) return false;
  sink_ = std::make_unique<KafkaOutputSink>(producer_, config_,
                                            "handoffd/" + config_.kafka.group_id, metrics_);
  sink_->set_hold_outputs(exactly_once_);
  if (!exactly_once_) kicker_ = std::make_unique<ProducerKicker>(producer_);
  for (int32_t i = 0; i < config_.kafka.pipeline_threads; ++i) {
    auto lane = std::make_unique<Lane>();
    Lane* raw = lane.get();
    lane->thread = std::thread([this, raw, i] {
      NameThisThread("hd-lane-" + std::to_string(i));
      LaneLoop(raw);
    });
    lanes_.push_back(std::move(lane));
  }
  // Learn every output topic's leaders now: the first record to a topic the producer has no
  // metadata for waits for a refresh (about a second), which would stall the first commit.
  for (const std::string& topic : AllTopics(config_.topics)) {
    if (topic == config_.topics.events || topic == config_.topics.acks) continue;
    producer_topics_.push_back(rd_kafka_topic_new(producer_, topic.c_str(), nullptr));
  }
  {
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(producer_, 1, nullptr, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(md);
    }
  }

  consumer_ = make(RD_KAFKA_CONSUMER, settings.consumer, true);
  if (consumer_ == nullptr) return false;
  acks_ = make(RD_KAFKA_CONSUMER, settings.acks, false);
  if (acks_ == nullptr) return false;
  restorer_ = make(RD_KAFKA_CONSUMER, settings.restorer, false);
  if (restorer_ == nullptr) return false;
  // Assign-only consumers learn a topic's leaders from metadata; without it librdkafka 2.0.2
  // waits for its 1 s refresh of unknown topics before the first fetch (measured: acks and the
  // first restore started about a second after every assignment). Ask now and keep the handles.
  for (auto [rk, topic] :
       {std::pair{acks_, &config_.topics.acks}, std::pair{restorer_, &config_.topics.state}}) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic->c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(md);
    }
    consumer_topics_.push_back(rkt);
  }
  consumer_queue_ = rd_kafka_queue_get_consumer(consumer_);
  acks_queue_ = rd_kafka_queue_get_consumer(acks_);
  if (pipe2(wake_pipe_, O_NONBLOCK | O_CLOEXEC) != 0) {
    *error = "cannot create the wake-up pipe";
    return false;
  }
  // One byte per queue per idle period at most: librdkafka writes again only once the queue has
  // been served (rd_kafka_consume_batch_queue). Not on the producer's delivery reports: they
  // matter to this thread only while a batch is held, and then it wakes every 1 ms anyway (Run);
  // a wake-up per report cost the producer's thread a write(2) per Produce response under load.
  for (rd_kafka_queue_t* q : {consumer_queue_, acks_queue_}) {
    rd_kafka_queue_io_event_enable(q, wake_pipe_[1], "w", 1);
  }
  StartStallWatch();

  if (exactly_once_) {
    rd_kafka_error_t* err = rd_kafka_init_transactions(
        producer_, static_cast<int>(config_.kafka.shutdown_timeout_ms) * 3);
    if (err != nullptr) {
      *error = std::string("cannot initialise transactions: ") + rd_kafka_error_string(err);
      rd_kafka_error_destroy(err);
      return false;
    }
    if (LogError(rd_kafka_begin_transaction(producer_), "begin transaction failed")) {
      *error = "cannot begin a transaction";
      return false;
    }
    txn_open_ = true;
  }

  // The group subscribes to the events topic only; acks partition p is assigned to this worker
  // whenever events partition p is (the assignor cannot co-locate partitions of two topics).
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, config_.topics.events.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    *error = std::string("cannot subscribe: ") + rd_kafka_err2str(err);
    return false;
  }
  Log(LogLevel::kInfo, "worker started",
      {{"group_id", config_.kafka.group_id},
       {"instance", instance_},
       {"guarantee", exactly_once_ ? "exactly_once" : "at_least_once"},
       {"pipeline_threads", std::to_string(lanes_.size())},
       {"events", config_.topics.events},
       {"acks", config_.topics.acks},
       {"state", config_.topics.state}});
  return true;
}

void Worker::RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t* parts, void* opaque) {
  static_cast<Worker*>(opaque)->OnRebalance(rk, err, parts);
}

void Worker::ErrorCallback(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  LogKafkaError(rk, code, reason);
  auto* self = static_cast<Worker*>(opaque);
  if (self->metrics_ != nullptr) {
    self->metrics_->OnKafkaError(rd_kafka_err2name(code), IsTransientKafkaError(code));
  }
}

void Worker::DeliveryCallback(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* self = static_cast<Worker*>(opaque);
  if (self->sink_ == nullptr) return;
  // The failure is counted before the record stops being in flight: reports are also served on
  // the kicker's thread, and the worker thread, once it sees an epoch delivered, must see its
  // failures too (ReleaseHeld never writes a meta over a lost record).
  // Purged by rd_kafka_abort_transaction (the worker never purges otherwise): records of a
  // transaction aborted on purpose, processed again after the rewind. Counting them would fail
  // the next, healthy transaction.
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR && msg->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
      msg->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
    std::string topic(MessageTopic(msg));
    int64_t suppressed = 0;
    if (self->delivery_log_.Allow(Clock::now(), &suppressed)) {
      Log(LogLevel::kError, "delivery failed",
          {{"topic", topic},
           {"partition", std::to_string(msg->partition)},
           {"error", rd_kafka_err2str(msg->err)},
           {"suppressed", std::to_string(suppressed)}});
    }
    self->sink_->AddFailure();
    if (self->metrics_ != nullptr) self->metrics_->OnDeliveryFailure(topic);
  }
  self->sink_->OnDelivered(msg->_private);
}

void Worker::OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t* parts) {
  Quiesce();  // the partitions change below
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    Assign(rk, parts);
  } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    Revoke(rk, parts, rd_kafka_assignment_lost(rk) != 0);
  } else {
    Log(LogLevel::kError, "rebalance failed", {{"error", rd_kafka_err2str(err)}});
    if (IsCooperative(rk)) {
      LogError(rd_kafka_incremental_unassign(rk, parts), "unassign failed");
    } else {
      rd_kafka_assign(rk, nullptr);
    }
  }
}

void Worker::Assign(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* parts) {
  group_assigned_ = true;  // the SyncGroup succeeded: rd_kafka_destroy is safe from now on
  ready_ = false;
  auto t0 = Clock::now();
  rd_kafka_topic_partition_list_t* acks = rd_kafka_topic_partition_list_new(parts->cnt);
  std::vector<int32_t> ps;
  for (int i = 0; i < parts->cnt; ++i) ps.push_back(parts->elems[i].partition);
  std::map<int32_t, std::unique_ptr<Partition>> restored = Restore(ps);
  // An acks partition with nothing to read: its events need not wait for its first fetch's
  // end-of-partition to be applied (Handle's merge), which under a catch-up held every event
  // read meanwhile and decoded it twice.
  const std::map<int32_t, int64_t> acks_end =
      ListOffsets(config_.topics.acks, ps, RD_KAFKA_OFFSET_END);
  for (int i = 0; i < parts->cnt; ++i) {
    rd_kafka_topic_partition_t& tp = parts->elems[i];
    int32_t p = tp.partition;
    std::unique_ptr<Partition> part = std::move(restored[p]);
    if (part == nullptr) {
      fatal_ = true;  // Run() exits; a restart tries again
      tp.offset = RD_KAFKA_OFFSET_END;
      continue;
    }
    if (auto end = acks_end.find(p); end != acks_end.end() && part->next_acks >= end->second) {
      part->at_end[1] = true;
    }
    tp.offset = part->next_events;
    rd_kafka_topic_partition_list_add(acks, config_.topics.acks.c_str(), p)->offset =
        part->next_acks;
    partitions_[p] = std::move(part);
  }
  if (IsCooperative(rk)) {
    LogError(rd_kafka_incremental_assign(rk, parts), "assign failed");
  } else {
    rd_kafka_assign(rk, parts);
  }
  LogError(rd_kafka_incremental_assign(acks_, acks), "acks assign failed");
  rd_kafka_topic_partition_list_destroy(acks);
  if (metrics_ != nullptr)
    metrics_->SetAssignedPartitions(static_cast<int64_t>(partitions_.size()));
  Log(LogLevel::kInfo, "partitions assigned",
      {{"partitions", PartitionList(parts)},
       {"owned", std::to_string(partitions_.size())},
       {"duration_ms", std::to_string(static_cast<int64_t>(SecondsSince(t0) * 1000))}});
  ready_ = !fatal_;
  catch_up_.active = true;
  catch_up_.start = Clock::now();
  catch_up_.cpu_start = ProcessCpuSeconds();
  catch_up_.records = 0;
}

void Worker::Revoke(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* parts, bool lost) {
  bool rewind = false;
  // Another member may own lost partitions already: their changelog must never land after its,
  // nor may their group offsets (they would move the new owner's committed offsets back; only
  // lag tools read them, but those would be wrong).
  if (lost) ForgetHeld(parts);
  if (!lost && !fatal_) {
    // Commit the revoked partitions' batch (and everyone else's) before giving them away.
    Commit(true);
  } else if (lost && exactly_once_ && txn_open_) {
    // The partitions may already belong to another member: our open transaction must not land.
    AbortTransaction(static_cast<int>(config_.kafka.shutdown_timeout_ms));
    sink_->TakeFailures();  // the aborted records' failures: their input is processed again
    txn_open_ = false;
    rewind = true;
  }
  rd_kafka_topic_partition_list_t* acks = rd_kafka_topic_partition_list_new(parts->cnt);
  for (int i = 0; i < parts->cnt; ++i) {
    int32_t p = parts->elems[i].partition;
    partitions_.erase(p);
    sink_->ClearStateWriter(p);
    if (metrics_ != nullptr) metrics_->ClearPartition(p);
    rd_kafka_topic_partition_list_add(acks, config_.topics.acks.c_str(), p);
  }
  LogError(rd_kafka_incremental_unassign(acks_, acks), "acks unassign failed");
  rd_kafka_topic_partition_list_destroy(acks);
  if (IsCooperative(rk)) {
    LogError(rd_kafka_incremental_unassign(rk, parts), "unassign failed");
  } else {
    rd_kafka_assign(rk, nullptr);
  }
  if (metrics_ != nullptr)
    metrics_->SetAssignedPartitions(static_cast<int64_t>(partitions_.size()));
  Log(lost ? LogLevel::kWarn : LogLevel::kInfo, lost ? "partitions lost" : "partitions revoked",
      {{"partitions", PartitionList(parts)}, {"owned", std::to_string(partitions_.size())}});
  if (rewind) {
    if (!LogError(rd_kafka_begin_transaction(producer_), "begin transaction failed")) {
      txn_open_ = true;
    }
    if (!Rewind()) fatal_ = true;
  }
}

std::map<int32_t, std::unique_ptr<Worker::Partition>> Worker::Restore(
    const std::vector<int32_t>& ps) {
  auto t0 = Clock::now();
  const std::string& topic = config_.topics.state;
  std::map<int32_t, std::unique_ptr<Partition>> restored;
  // All partitions are read together, through one assignment: a rebalance that moves many
  // partitions costs one read of the largest, not the sum of all of them.
  std::map<int32_t, ChangelogRestore> folds;
  std::map<int32_t, int64_t> ends;        // partitions still being read: their end offsets
  std::map<int32_t, int64_t> read_bytes;  // what each partition's records cost the broker
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(ps.size()));
  const std::map<int32_t, int64_t> lows = ListOffsets(topic, ps, RD_KAFKA_OFFSET_BEGINNING);
  const std::map<int32_t, int64_t> highs = ListOffsets(topic, ps, RD_KAFKA_OFFSET_END);
  for (int32_t p : ps) {
    if (lows.count(p) == 0 || highs.count(p) == 0) {
      Log(LogLevel::kError, "restore failed",
          {{"partition", std::to_string(p)},
           {"topic", topic},
           {"error", "its offsets could not be listed"}});
      continue;
    }
    folds[p];
    if (highs.at(p) > lows.at(p)) {
      ends[p] = highs.at(p);
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = lows.at(p);
    }
  }
  if (list->cnt > 0) {
    rd_kafka_assign(restorer_, list);
    auto last_progress = t0;
    while (!ends.empty()) {
      if (SecondsSince(t0) * 1000 > kRestoreTimeoutMs) {
        for (const auto& [p, end] : ends) {
          Log(LogLevel::kError, "restore timed out",
              {{"partition", std::to_string(p)},
               {"records", std::to_string(folds[p].records())},
               {"end_offset", std::to_string(end)}});
          folds.erase(p);
        }
        break;
      }
      rd_kafka_message_t* msg = rd_kafka_consumer_poll(restorer_, 200);
      if (msg != nullptr) {
        // A slow restore that reads is not a hung worker (this runs in the rebalance callback).
        Beat();
        auto it = ends.find(msg->partition);
        if (it == ends.end()) {
          // Already complete (or not ours): nothing to do.
        } else if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          ends.erase(it);
        } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          Log(LogLevel::kWarn, "restore read error",
              {{"partition", std::to_string(msg->partition)},
               {"error", rd_kafka_message_errstr(msg)}});
        } else {
          folds[msg->partition].Add(
              std::string_view(static_cast<const char*>(msg->key), msg->key_len),
              std::string_view(static_cast<const char*>(msg->payload), msg->len),
              HeaderValue(msg, kWriterHeader), HeaderValue(msg, kRestoredFromHeader));
          read_bytes[msg->partition] +=
              static_cast<int64_t>(msg->key_len + msg->len) + kRecordOverheadBytes;
          // Transaction markers occupy offsets too, so end-of-partition is the usual stop.
          if (msg->offset >= it->second - 1) ends.erase(it);
        }
        rd_kafka_message_destroy(msg);
      }
      if (Clock::now() - last_progress > std::chrono::seconds(2)) {
        last_progress = Clock::now();
        int64_t records = 0;
        for (const auto& [p, fold] : folds) records += fold.records();
        Log(LogLevel::kInfo, "restore progress",
            {{"partitions_left", std::to_string(ends.size())},
             {"records", std::to_string(records)}});
      }
    }
    rd_kafka_assign(restorer_, nullptr);
  }
  rd_kafka_topic_partition_list_destroy(list);
  // Partitions without a meta record start at their inputs' first offsets.
  std::vector<int32_t> fresh;
  for (const auto& [p, fold] : folds) {
    if (!fold.meta()) fresh.push_back(p);
  }
  std::map<int32_t, int64_t> first_events;
  std::map<int32_t, int64_t> first_acks;
  if (!fresh.empty()) {
    first_events = ListOffsets(config_.topics.events, fresh, RD_KAFKA_OFFSET_BEGINNING);
    first_acks = ListOffsets(config_.topics.acks, fresh, RD_KAFKA_OFFSET_BEGINNING);
  }
  // Absolute offsets, not RD_KAFKA_OFFSET_BEGINNING: librdkafka 2.0.2 resolves a logical offset
  // with a ListOffsets request per partition and, measured, starts all but the first partition
  // of an assignment about 500 ms late. If retention moves the start meanwhile,
  // auto.offset.reset=earliest applies. The logical offset stays the fallback.
  auto first = [](const std::map<int32_t, int64_t>& offsets, int32_t p) {
    auto it = offsets.find(p);
    return it == offsets.end() ? RD_KAFKA_OFFSET_BEGINNING : it->second;
  };
  for (auto& [p, fold] : folds) {
    // A changelog that no longer starts at offset 0: handoffd never deletes changelog records,
    // the broker did (retention on a state topic that is not cleanup.policy=compact, a
    // DeleteRecords, or the embedded broker's ~5 MiB per partition). Harmless behind a whole
    // snapshot (DrainPartition); otherwise a run whose last record was there is not restored:
    // logged and counted, and the restore goes on with what is left.
    const bool head_dropped = lows.at(p) > 0;
    const bool truncated = head_dropped && !fold.has_snapshot();
    if (head_dropped && !truncated) {
      Log(LogLevel::kInfo, "changelog head dropped behind a snapshot",
          {{"partition", std::to_string(p)},
           {"topic", topic},
           {"first_offset", std::to_string(lows.at(p))}});
    } else if (truncated) {
      Log(LogLevel::kWarn, "changelog head missing",
          {{"partition", std::to_string(p)},
           {"topic", topic},
           {"first_offset", std::to_string(lows.at(p))},
           {"hint",
            "the broker deleted the oldest changelog records: runs last written before "
            "first_offset are not restored; a state topic must be cleanup.policy=compact, and the "
            "embedded broker keeps only ~5 MiB per partition"}});
    }
    restored[p] = BuildPartition(p, fold, SecondsSince(t0),
                                 {first(first_events, p), first(first_acks, p)}, truncated);
    // What the broker holds of the partition; as many batches as records is an upper bound.
    // Where its last snapshot starts is unknown: near the limits, the first drain snapshots
    // before more changes push that one out.
    restored[p]->log_bytes = read_bytes[p];
    restored[p]->log_batches = fold.records();
    restored[p]->bytes_since_snapshot = read_bytes[p];
  }
  return restored;
}

std::unique_ptr<Worker::Partition> Worker::BuildPartition(int32_t p, const ChangelogRestore& fold,
                                                          double seconds,
                                                          std::pair<int64_t, int64_t> first,
                                                          bool truncated) {
  auto part = std::make_unique<Partition>();
  part->id = p;
  if (metrics_ != nullptr) part->observer = metrics_->NewPartitionObserver();
  part->pipeline = std::make_unique<Pipeline>(config_, part->observer.get());
  part->pipeline->set_check_keys(true);
  Engine& engine = part->pipeline->engine();
  int64_t skipped = 0;
  for (const auto& [run_id, state] : fold.runs()) {
    if (!engine.RestoreRun(run_id, state)) ++skipped;
  }
  if (fold.meta()) {
    if (!engine.RestoreMeta(fold.meta()->engine_meta)) {
      Log(LogLevel::kWarn, "restore meta unreadable", {{"partition", std::to_string(p)}});
    }
    part->next_events = fold.meta()->next_events_offset;
    part->next_acks = fold.meta()->next_acks_offset;
  } else {
    // No meta yet: start at the inputs' first offsets.
    part->next_events = first.first;
    part->next_acks = first.second;
  }
  // This ownership's writer token (changelog.h): records a member that lost the partition
  // writes after ours name another writer, and a restore skips them.
  sink_->SetStateWriter(p, instance_ + "-" + RandomHex64(), fold.meta_writer());
  // Orphans of a batch whose meta never landed: overwrite them with the committed value so the
  // latest record of every key is committed state (what compaction keeps).
  // The same for the keys of a lost member's stale records (ChangelogRestore::StaleKeys).
  std::vector<std::string> tail = fold.TailKeys();
  std::vector<std::string> rewrite = fold.StaleKeys();
  rewrite.insert(rewrite.end(), tail.begin(), tail.end());
  std::sort(rewrite.begin(), rewrite.end());
  rewrite.erase(std::unique(rewrite.begin(), rewrite.end()), rewrite.end());
  for (const std::string& key : rewrite) {
    auto it = fold.runs().find(key);
    sink_->PutState(p, key, it == fold.runs().end() ? std::string_view() : it->second);
  }
  part->dirty = !rewrite.empty();
  // Wall-clock ticks the first pass applied past the meta record: applied again at their
  // positions while the tail is read again (the first at once if the meta is at its position).
  const std::vector<ChangelogTick> ticks = fold.ticks();
  part->replay_ticks.assign(ticks.begin(), ticks.end());
  ApplyReplayTicks(*part);
  Log(LogLevel::kInfo, "partition restored",
      {{"partition", std::to_string(p)},
       {"records", std::to_string(fold.records())},
       {"runs", std::to_string(fold.runs().size())},
       {"skipped_runs", std::to_string(skipped)},
       {"discarded_tail", std::to_string(tail.size())},
       {"stale_records", std::to_string(fold.stale_records())},
       {"replay_ticks", std::to_string(ticks.size())},
       {"events_offset", std::to_string(part->next_events)},
       {"acks_offset", std::to_string(part->next_acks)},
       {"duration_ms", std::to_string(static_cast<int64_t>(seconds * 1000))}});
  if (metrics_ != nullptr) metrics_->OnRestore(p, seconds, fold.records(), truncated);
  return part;
}

std::map<int32_t, int64_t> Worker::ListOffsets(const std::string& topic,
                                               const std::vector<int32_t>& ps, int64_t which) {
  std::map<int32_t, int64_t> out;
  if (ps.empty()) return out;
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(ps.size()));
  for (int32_t p : ps) rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = which;
  // ListOffsets with the logical offsets as timestamps: -2 the first offset, -1 the end.
  rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(restorer_, list, 10000);
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& tp = list->elems[i];
    rd_kafka_resp_err_t perr = err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : tp.err;
    if (perr == RD_KAFKA_RESP_ERR_NO_ERROR && tp.offset >= 0) {
      out[tp.partition] = tp.offset;
    } else {
      Log(LogLevel::kWarn, "list offsets failed",
          {{"partition", std::to_string(tp.partition)},
           {"topic", topic},
           {"error", perr != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(perr)
                                                        : "no offset in the ListOffsets answer"}});
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  return out;
}

bool Worker::Rewind() {
  rd_kafka_topic_partition_list_t* events = rd_kafka_topic_partition_list_new(4);
  rd_kafka_topic_partition_list_t* acks = rd_kafka_topic_partition_list_new(4);
  bool ok = true;
  std::vector<int32_t> ps;
  for (const auto& [p, part] : partitions_) ps.push_back(p);
  std::map<int32_t, std::unique_ptr<Partition>> restored = Restore(ps);
  for (auto& [p, part] : partitions_) {
    std::unique_ptr<Partition> fresh = std::move(restored[p]);
    if (fresh == nullptr) {
      ok = false;
      break;
    }
    rd_kafka_topic_partition_list_add(events, config_.topics.events.c_str(), p)->offset =
        fresh->next_events;
    rd_kafka_topic_partition_list_add(acks, config_.topics.acks.c_str(), p)->offset =
        fresh->next_acks;
    part = std::move(fresh);
  }
  if (ok && events->cnt > 0) {
    ok = !LogError(rd_kafka_seek_partitions(consumer_, events, 10000), "seek failed") &&
         !LogError(rd_kafka_seek_partitions(acks_, acks, 10000), "seek failed");
  }
  rd_kafka_topic_partition_list_destroy(events);
  rd_kafka_topic_partition_list_destroy(acks);
  Log(ok ? LogLevel::kInfo : LogLevel::kError, "rewound to the last committed batch",
      {{"partitions", std::to_string(partitions_.size())}});
  return ok;
}

bool Worker::Handle(rd_kafka_message_t* msg, bool is_acks) {
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    Log(LogLevel::kWarn, "consumer error",
        {{"consumer", is_acks ? "acks" : "events"}, {"error", rd_kafka_message_errstr(msg)}});
    if (msg->err == RD_KAFKA_RESP_ERR__FATAL) fatal_ = true;
    return true;
  }
  auto it = partitions_.find(msg->partition);
  if (it == partitions_.end()) return true;  // fetched before a revocation
  Partition& part = *it->second;
  const int self = is_acks ? 1 : 0;
  const int other = 1 - self;
  if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    part.at_end[self] = true;
    if (part.held[self].empty()) {
      Apply(part, msg, is_acks);
      Drain(part);  // the other input may have waited for this one
      return true;
    }
    part.held[self].push_back({msg, INT64_MIN});
    Drain(part);
    return false;
  }
  part.at_end[self] = false;
  // Caught up: nothing held and the other input at its end: applied as it comes.
  if (part.held[0].empty() && part.held[1].empty() && part.at_end[other]) {
    Apply(part, msg, is_acks);
    return true;
  }
  // Decoded by the partition's own pipeline: applied at once (the usual case), it is not
  // decoded again.
  const int64_t ts =
      part.pipeline->Decode(std::string_view(static_cast<const char*>(msg->payload), msg->len));
  part.frontier[self] = std::max(part.frontier[self], ts);
  if (part.held[0].empty() && part.held[1].empty() && ts <= part.frontier[other]) {
    Apply(part, msg, is_acks, /*decoded=*/true);
    return true;
  }
  part.held[self].push_back({msg, ts});
  Drain(part);
  // Bounded: past this many (one input far behind, or stopped), the earliest goes ahead.
  constexpr size_t kMaxHeld = 50000;
  while (part.held[0].size() + part.held[1].size() > kMaxHeld) {
    part.observer->OnLimitHit("held_records");
    ApplyFront(part, EarlierSide(part));
    Drain(part);
  }
  return false;
}

void Worker::Drain(Partition& part) {
  for (;;) {
    int side = -1;
    for (int s = 0; s < 2 && side < 0; ++s) {
      // An EOF, or a record without an event time, takes no part in the merge.
      if (!part.held[s].empty() && part.held[s].front().ts_ms == INT64_MIN) side = s;
    }
    if (side < 0) {
      const int s = EarlierSide(part);
      if (!part.held[0].empty() && !part.held[1].empty()) {
        side = s;
      } else if (!part.held[s].empty() &&
                 (part.at_end[1 - s] || part.held[s].front().ts_ms <= part.frontier[1 - s])) {
        side = s;
      }
    }
    if (side < 0) return;
    ApplyFront(part, side);
  }
}

int Worker::EarlierSide(const Partition& part) {
  if (part.held[1].empty()) return 0;
  if (part.held[0].empty()) return 1;
  return part.held[0].front().ts_ms <= part.held[1].front().ts_ms ? 0 : 1;
}

void Worker::ApplyFront(Partition& part, int side) {
  Partition::Held r = part.held[side].front();
  part.held[side].pop_front();
  Apply(part, r.msg, side == 1);
  rd_kafka_message_destroy(r.msg);
}

void Worker::Apply(Partition& part, rd_kafka_message_t* msg, bool is_acks, bool decoded) {
  if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    (is_acks ? part.acks_eof : part.events_eof) = true;
    return;
  }
  int64_t& next = is_acks ? part.next_acks : part.next_events;
  if (next >= 0 && msg->offset < next) return;  // already applied (prefetched before a rewind)
  // The record's Kafka timestamp bounds how far its event time may be from it (Pipeline). None
  // (-1), or one a producer left at 0 or set in seconds (before 2001-09-09), bounds nothing.
  constexpr int64_t kMinRecordTimeMs = 1000000000000;
  const int64_t kafka_time_ms = rd_kafka_message_timestamp(msg, nullptr);
  const int64_t record_time_ms = kafka_time_ms >= kMinRecordTimeMs ? kafka_time_ms : -1;
  SourceRef source{is_acks ? config_.topics.acks : config_.topics.events, msg->partition,
                   msg->offset, record_time_ms};
  sink_->set_input_time_ms(kafka_time_ms);
  const std::string_view key(static_cast<const char*>(msg->key), msg->key_len);
  const std::string_view bytes(static_cast<const char*>(msg->payload), msg->len);
  if (decoded) {
    part.pipeline->HandleDecoded(key, bytes, source, sink_.get());
  } else {
    part.pipeline->Handle(key, bytes, source, sink_.get());
  }
  next = msg->offset + 1;
  part.dirty = true;
  catch_up_.records.fetch_add(1, std::memory_order_relaxed);
  (is_acks ? part.acks_eof : part.events_eof) = false;
  if (!part.replay_ticks.empty()) ApplyReplayTicks(part);
}

void Worker::ApplyReplayTicks(Partition& part, bool all) {
  while (!part.replay_ticks.empty()) {
    const ChangelogTick& tick = part.replay_ticks.front();
    if (!all &&
        (part.next_events < tick.next_events_offset || part.next_acks < tick.next_acks_offset)) {
      return;
    }
    part.pipeline->engine().AdvanceWatermark(tick.watermark_ms, sink_.get());
    part.dirty = true;
    part.replay_ticks.pop_front();
  }
}

// The order of a commit, the same for both guarantees:
//  1. wait until every output of the batch is acknowledged by the broker (flush), so that a
//     meta record can never be visible while an output of its batch is missing (this keeps
//     recovery correct on the embedded broker, which neither hides aborted records nor stores
//     transactional offsets);
//  2. per dirty partition: its changed runs, then ONE meta record (engine meta + next offsets);
//  3. exactly_once: send the input offsets to the transaction and commit it;
//     at_least_once: store the consumer offsets once the changelog is acknowledged, for
//     librdkafka's auto-commit (CommitGroupOffsets).
bool Worker::Commit(bool force) {
  Quiesce();
  // Held outputs mark their partition changed when made (produced() counts them); the check
  // keeps them from waiting for another commit should one ever be made otherwise.
  bool any = (force && !partitions_.empty()) || sink_->held_outputs() > 0;
  for (auto& [p, part] : partitions_) any = any || part->dirty;
  last_commit_ = Clock::now();
  if (!any) return true;
  auto t0 = Clock::now();
  const int timeout_ms = static_cast<int>(config_.kafka.shutdown_timeout_ms);

  auto fail = [&](const char* what) {
    Log(LogLevel::kError, "commit failed", {{"stage", what}});
    if (metrics_ != nullptr) metrics_->OnCommit(SecondsSince(t0), false);
    if (exactly_once_) {
      if (txn_open_) {
        AbortTransaction(timeout_ms);
        sink_->TakeFailures();  // the aborted records' failures: their input is processed again
      }
      txn_open_ = !LogError(rd_kafka_begin_transaction(producer_), "begin transaction failed");
      if (txn_open_ && Rewind()) return false;
    }
    fatal_ = true;
    return false;
  };

  sink_->ReleaseHeldOutputs();
  if (rd_kafka_flush(producer_, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) return fail("flush");
  if (sink_->TakeFailures() > 0) return fail("delivery");
  // at_least_once (revocation or shutdown; Run() closes periodic batches with CloseBatch): every
  // output, run and meta produced so far is acknowledged now. The held batch's runs go first;
  // the meta records written below, one per owned partition, supersede the held and unsealed
  // batches' metas and group offsets.
  if (held_ != nullptr) {
    for (const HeldRecord& r : held_->runs) sink_->PutState(r.partition, r.key, r.value);
  }
  held_.reset();
  unsealed_.reset();
  if (pending_group_offsets_ != nullptr) {
    rd_kafka_topic_partition_list_destroy(pending_group_offsets_);
    pending_group_offsets_ = nullptr;
  }
  const double outputs_s = SecondsSince(t0);
  int64_t changelog_records = 0;

  rd_kafka_topic_partition_list_t* offsets =
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions_.size()));
  std::vector<HeldRecord> metas;
  for (auto& [p, part] : partitions_) {
    if (part->next_events >= 0) {
      rd_kafka_topic_partition_list_add(offsets, config_.topics.events.c_str(), p)->offset =
          part->next_events;
    }
    if (!part->dirty && !force) continue;
    StateWriter writer(sink_.get(), p);
    Engine& engine = part->pipeline->engine();
    DrainPartition(*part, &writer);
    changelog_records += writer.count() + 1;
    ChangelogMeta meta;
    meta.next_events_offset = part->next_events >= 0 ? part->next_events : 0;
    meta.next_acks_offset = part->next_acks >= 0 ? part->next_acks : 0;
    meta.engine_meta = engine.SerializeMeta();
    metas.push_back({p, std::string(kMetaKey), EncodeMeta(meta)});
    part->dirty = false;
  }

  bool ok = true;
  if (exactly_once_) {
    // One transaction: its metas land together with their runs or not at all (on a real
    // cluster; see docs/live-mode.md for the embedded broker).
    for (const HeldRecord& m : metas) sink_->PutState(m.partition, m.key, m.value);
    ok = CommitTransaction(offsets);
  } else {
    // The metas only once their runs are acknowledged, then the group offsets once the metas are.
    for (bool runs_landed : {false, true}) {
      if (runs_landed) {
        for (const HeldRecord& m : metas) sink_->PutState(m.partition, m.key, m.value);
      }
      if (rd_kafka_flush(producer_, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR ||
          sink_->TakeFailures() > 0) {
        rd_kafka_topic_partition_list_destroy(offsets);
        return fail("changelog");
      }
    }
    CommitGroupOffsets(offsets);
  }
  rd_kafka_topic_partition_list_destroy(offsets);
  last_commit_cost_ = Clock::now() - t0;
  if (LogEnabled(LogLevel::kDebug)) {
    Log(LogLevel::kDebug, "committed",
        {{"outputs_flush_ms", std::to_string(static_cast<int64_t>(outputs_s * 1000))},
         {"changelog_records", std::to_string(changelog_records)},
         {"total_ms", std::to_string(static_cast<int64_t>(SecondsSince(t0) * 1000))}});
  }
  last_commit_ = Clock::now();
  if (metrics_ != nullptr) metrics_->OnCommit(SecondsSince(t0), ok);
  // Only a commit that wrote something ends a run of failures: after a rewind the first round
  // may have nothing to commit yet.
  if (ok) failed_commits_ = 0;
  return ok;
}

namespace {

// Collects Engine::DrainChanges output of one partition for a held batch.
class HeldWriter : public ChangelogSink {
 public:
  template <typename Add>
  HeldWriter(int32_t partition, Add add) : partition_(partition), add_(std::move(add)) {}
  void PutRun(std::string_view run_id, std::string_view state) override {
    add_(partition_, run_id, state);
  }

 private:
  int32_t partition_;
  std::function<void(int32_t, std::string_view, std::string_view)> add_;
};

}  // namespace

namespace {

// Counts what passes through to another ChangelogSink.
class CountingSink : public ChangelogSink {
 public:
  explicit CountingSink(ChangelogSink* out) : out_(out) {}
  void PutRun(std::string_view run_id, std::string_view state) override {
    bytes_ += static_cast<int64_t>(run_id.size() + state.size());
    ++records_;
    out_->PutRun(run_id, state);
  }
  int64_t bytes() const { return bytes_; }
  int64_t records() const { return records_; }

 private:
  ChangelogSink* out_;
  int64_t bytes_ = 0;
  int64_t records_ = 0;
};

}  // namespace

void Worker::DrainPartition(Partition& part, ChangelogSink* out) {
  Engine& engine = part.pipeline->engine();
  bool snapshot =
      embedded_broker_ &&
      (part.log_bytes >= kSnapshotFromBytes || part.log_batches >= kSnapshotFromBatches) &&
      (part.bytes_since_snapshot >= part.snapshot_bytes + kSnapshotEveryBytes ||
       part.drains_since_snapshot >= kSnapshotEveryDrains);
  if (snapshot) {
    // Too large to keep (estimated from the last drain's record size): no snapshot, and ask
    // again after another kSnapshotEveryBytes.
    const int64_t estimate = engine.held_runs() * part.bytes_per_run;
    if (estimate > kSnapshotMaxBytes) {
      snapshot = false;
      part.bytes_since_snapshot = part.snapshot_bytes;
      part.drains_since_snapshot = 0;
      if (!part.snapshot_too_big_logged) {
        part.snapshot_too_big_logged = true;
        Log(LogLevel::kWarn, "state too large for the embedded broker",
            {{"partition", std::to_string(part.id)},
             {"runs", std::to_string(engine.held_runs())},
             {"estimated_bytes", std::to_string(estimate)},
             {"limit_bytes", std::to_string(kSnapshotMaxBytes)},
             {"hint",
              "the embedded broker keeps ~5 MiB per partition and drops the oldest records: a "
              "restore may miss runs; use more partitions, a shorter "
              "limits.completed_run_retention_s or limits.retired_run_memory_s, or a real "
              "cluster"}});
      }
    }
  }
  CountingSink counting(out);
  if (snapshot) {
    engine.MarkAllChanged();
    counting.PutRun(kSnapshotKey, "1");
    part.bytes_since_snapshot = 0;
    part.drains_since_snapshot = 0;
  }
  engine.DrainChanges(&counting);
  part.bytes_since_snapshot += counting.bytes();
  ++part.drains_since_snapshot;
  part.log_bytes = std::min<int64_t>(
      part.log_bytes + counting.bytes() + counting.records() * kRecordOverheadBytes,
      int64_t{5} << 20);
  part.log_batches = std::min<int64_t>(part.log_batches + 2, 100000);
  if (counting.records() > (snapshot ? 1 : 0)) {
    part.bytes_per_run = counting.bytes() / counting.records();
  }
  if (!snapshot) return;
  part.snapshot_bytes = counting.bytes();
  Log(LogLevel::kInfo, "changelog snapshot",
      {{"partition", std::to_string(part.id)},
       {"runs", std::to_string(counting.records() - 1)},
       {"bytes", std::to_string(counting.bytes())}});
}

bool Worker::CloseBatch() {
  if (held_ != nullptr) return false;
  Quiesce();
  bool any = false;
  for (auto& [p, part] : partitions_) any = any || part->dirty;
  if (!any) return true;
  auto held = std::make_unique<HeldBatch>();
  held->epoch = sink_->epoch();
  held->closed = Clock::now();
  held->offsets = rd_kafka_topic_partition_list_new(static_cast<int>(partitions_.size()));
  for (auto& [p, part] : partitions_) {
    if (part->next_events >= 0) {
      rd_kafka_topic_partition_list_add(held->offsets, config_.topics.events.c_str(), p)->offset =
          part->next_events;
    }
    if (!part->dirty) continue;
    Engine& engine = part->pipeline->engine();
    HeldWriter writer(p, [&](int32_t partition, std::string_view key, std::string_view value) {
      held->runs.push_back({partition, std::string(key), std::string(value)});
    });
    DrainPartition(*part, &writer);
    ChangelogMeta meta;
    meta.next_events_offset = part->next_events >= 0 ? part->next_events : 0;
    meta.next_acks_offset = part->next_acks >= 0 ? part->next_acks : 0;
    meta.engine_meta = engine.SerializeMeta();
    held->metas.push_back({p, std::string(kMetaKey), EncodeMeta(meta)});
    part->dirty = false;
  }
  // Outputs from now on belong to the next batch.
  sink_->set_epoch(held->epoch + 1);
  held_ = std::move(held);
  return true;
}

bool Worker::ReleaseHeld() {
  // Any failed delivery (an output, a run or a meta) ends the worker before the next meta: a
  // restart reprocesses from the last meta that stands for records that all landed.
  auto failed = [&](const char* stage, const HeldBatch* batch) {
    if (sink_->TakeFailures() == 0) return false;
    Log(LogLevel::kError, "commit failed", {{"stage", stage}});
    if (metrics_ != nullptr) metrics_->OnCommit(SecondsSince(batch->closed), false);
    fatal_ = true;
    return true;
  };
  // Produces `records` in an epoch of their own (not shared with later outputs, whose reports
  // would delay the next step) and returns that epoch.
  auto produce = [&](const std::vector<HeldRecord>& records) {
    const int64_t epoch = sink_->epoch();
    for (const HeldRecord& r : records) sink_->PutState(r.partition, r.key, r.value);
    sink_->set_epoch(epoch + 1);
    return epoch;
  };
  if (unsealed_ != nullptr && sink_->DeliveredThrough(unsealed_->epoch)) {
    // Its runs have landed: now its metas.
    if (failed("changelog", unsealed_.get())) return false;
    if (pending_group_offsets_ != nullptr) {
      rd_kafka_topic_partition_list_destroy(pending_group_offsets_);  // superseded
    }
    pending_group_epoch_ = produce(unsealed_->metas);
    pending_group_offsets_ = std::exchange(unsealed_->offsets, nullptr);
    const double seconds = SecondsSince(unsealed_->closed);
    if (LogEnabled(LogLevel::kDebug)) {
      Log(LogLevel::kDebug, "committed",
          {{"changelog_records", std::to_string(unsealed_->run_count + unsealed_->metas.size())},
           {"close_to_meta_ms", std::to_string(static_cast<int64_t>(seconds * 1000))}});
    }
    if (metrics_ != nullptr) metrics_->OnCommit(seconds, true);
    unsealed_.reset();
  }
  if (pending_group_offsets_ != nullptr && sink_->DeliveredThrough(pending_group_epoch_)) {
    if (sink_->TakeFailures() > 0) {
      Log(LogLevel::kError, "commit failed", {{"stage", "changelog"}});
      fatal_ = true;
      return false;
    }
    CommitGroupOffsets(pending_group_offsets_);
    rd_kafka_topic_partition_list_destroy(pending_group_offsets_);
    pending_group_offsets_ = nullptr;
  }
  if (held_ != nullptr && unsealed_ == nullptr && sink_->DeliveredThrough(held_->epoch)) {
    // Its outputs have landed: now its runs.
    if (failed("delivery", held_.get())) return false;
    held_->epoch = produce(held_->runs);
    held_->run_count = held_->runs.size();
    held_->runs.clear();
    held_->runs.shrink_to_fit();
    unsealed_ = std::move(held_);
  }
  return true;
}

void Worker::ForgetHeld(const rd_kafka_topic_partition_list_t* parts) {
  auto revoked = [&](const HeldRecord& r) {
    for (int i = 0; i < parts->cnt; ++i) {
      if (parts->elems[i].partition == r.partition) return true;
    }
    return false;
  };
  for (HeldBatch* batch : {held_.get(), unsealed_.get()}) {
    if (batch == nullptr) continue;
    std::erase_if(batch->runs, revoked);
    std::erase_if(batch->metas, revoked);
  }
  for (rd_kafka_topic_partition_list_t* offsets :
       {held_ != nullptr ? held_->offsets : nullptr,
        unsealed_ != nullptr ? unsealed_->offsets : nullptr, pending_group_offsets_}) {
    if (offsets == nullptr) continue;
    for (int i = 0; i < parts->cnt; ++i) {
      rd_kafka_topic_partition_list_del(offsets, config_.topics.events.c_str(),
                                        parts->elems[i].partition);
    }
  }
}

void Worker::CommitGroupOffsets(rd_kafka_topic_partition_list_t* offsets) {
  if (offsets->cnt == 0) return;
  // Stored, not committed: librdkafka commits them every auto.commit.interval.ms (5 s) outside
  // rebalances, and on revocation and close. The changelog, not the group offsets, is the
  // restart point; these serve lag tools.
  rd_kafka_resp_err_t err = rd_kafka_offsets_store(consumer_, offsets);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    Log(LogLevel::kDebug, "offset store failed", {{"error", rd_kafka_err2str(err)}});
  }
}

bool Worker::CommitTransaction(rd_kafka_topic_partition_list_t* offsets) {
  const int timeout_ms = static_cast<int>(config_.kafka.shutdown_timeout_ms);
  rd_kafka_error_t* error = nullptr;
  if (offsets->cnt > 0) {
    bool skipped = false;
    error = SendOffsetsToTransaction(producer_, consumer_, offsets, timeout_ms, &skipped);
    if (skipped) {
      Log(LogLevel::kWarn, "transaction committed without group offsets",
          {{"reason", "the group consumer is closed (a revocation served by its close)"}});
    }
  }
  if (error == nullptr) {
    // An abort is refused while a timed-out commit goes on, so the commit is resumed.
    error = CallResumingTimeouts([&] { return rd_kafka_commit_transaction(producer_, timeout_ms); },
                                 "commit transaction retry", [this] { Beat(); });
    if (error == nullptr) {
      txn_open_ = !LogError(rd_kafka_begin_transaction(producer_), "begin transaction failed");
      if (!txn_open_) fatal_ = true;
      return txn_open_;
    }
  }
  const bool abortable = rd_kafka_error_txn_requires_abort(error) != 0;
  LogError(error, "transaction failed");
  if (!abortable) {
    fatal_ = true;
    return false;
  }
  // Abort, then rewind every partition to its last committed changelog batch.
  AbortTransaction(timeout_ms);
  // Failures of the aborted records (refused at produce time, failed or purged; the abort
  // serves their delivery reports) would fail the next transaction: its input is read again.
  sink_->TakeFailures();
  txn_open_ = !LogError(rd_kafka_begin_transaction(producer_), "begin transaction failed");
  if (!txn_open_ || !Rewind()) fatal_ = true;
  return false;
}

bool Worker::AbortTransaction(int timeout_ms) {
  sink_->DropHeldOutputs();
  return !LogError(
      CallResumingTimeouts([&] { return rd_kafka_abort_transaction(producer_, timeout_ms); },
                           "abort transaction retry", [this] { Beat(); }),
      "abort transaction failed");
}

void Worker::BackOffAfterFailedCommit(const std::atomic<bool>& stop) {
  ++failed_commits_;
  if (failed_commits_ >= config_.kafka.max_failed_commits) {
    Log(LogLevel::kError, "commits keep failing",
        {{"failed_commits", std::to_string(failed_commits_)},
         {"action",
          "stopping: a restart starts a fresh producer and restores from the changelog"}});
    fatal_ = true;
    return;
  }
  // A fault that outlasts one transaction (an ACL, a deleted topic, a record a topic refuses)
  // would otherwise abort and restore every owned partition once per commit interval.
  constexpr auto kMaxPause = std::chrono::seconds(10);
  Clock::duration pause = std::chrono::milliseconds(config_.kafka.commit_interval_ms);
  for (int32_t i = 1; i < failed_commits_ && pause < kMaxPause; ++i) pause *= 2;
  pause = std::min<Clock::duration>(pause, kMaxPause);
  Log(LogLevel::kWarn, "retrying after a failed commit",
      {{"failed_commits", std::to_string(failed_commits_)},
       {"max_failed_commits", std::to_string(config_.kafka.max_failed_commits)},
       {"pause_ms",
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(pause).count())}});
  const auto until = Clock::now() + pause;
  while (!stop.load() && Clock::now() < until) {
    Beat();  // a deliberate, bounded pause
    std::this_thread::sleep_for(
        std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(50)));
  }
}

void Worker::FollowWallClock(bool may_journal) {
  Quiesce();
  int64_t now_ms = WallClockMs();
  int64_t target = now_ms - config_.time.allowed_lateness_ms;
  std::vector<Partition*> journal;
  for (auto& [p, part] : partitions_) {
    Engine& engine = part->pipeline->engine();
    // Only a partition caught up on both inputs follows the clock: never while a backlog is read.
    const bool caught_up = part->events_eof && part->acks_eof;
    if (caught_up && !part->replay_ticks.empty()) {
      // Ticks past the end of the inputs (the inputs lost records since): applied now.
      Log(LogLevel::kWarn, "replay ticks past the end of the input",
          {{"partition", std::to_string(p)},
           {"ticks", std::to_string(part->replay_ticks.size())},
           {"events_offset", std::to_string(part->next_events)},
           {"acks_offset", std::to_string(part->next_acks)}});
      ApplyReplayTicks(*part, /*all=*/true);
    }
    if (caught_up && exactly_once_) {
      int64_t before = sink_->produced();
      engine.AdvanceWatermark(target, sink_.get());
      if (sink_->produced() != before) part->dirty = true;
    } else if (may_journal && caught_up && part->clock_target > engine.watermark_ms() &&
               engine.next_timer_ms() <= target) {
      journal.push_back(part.get());
    }
    part->clock_target = caught_up ? target : INT64_MIN;
    if (part->observer != nullptr) part->observer->Flush();
  }
  if (!journal.empty()) JournalTicks(journal, target);
  if (metrics_ == nullptr) return;
  for (auto& [p, part] : partitions_) {
    // The watermark the partition follows: at_least_once leaves a caught-up partition's
    // watermark behind the clock while the clock would fire nothing.
    int64_t watermark = part->pipeline->engine().watermark_ms();
    if (part->clock_target != INT64_MIN) watermark = std::max(watermark, part->clock_target);
    if (watermark != INT64_MIN) {
      metrics_->SetWatermarkDelay(p, static_cast<double>(now_ms - watermark) / 1000.0);
    }
  }
}

void Worker::JournalTicks(const std::vector<Partition*>& parts, int64_t target) {
  for (Partition* part : parts) {
    const ChangelogTick tick{part->next_events, part->next_acks, target};
    const std::string value = EncodeTick(tick);
    sink_->PutState(part->id, kTickKey, value);
    part->log_bytes += static_cast<int64_t>(kTickKey.size() + value.size()) + kRecordOverheadBytes;
    part->log_batches += 1;
  }
  // The lanes are idle and the main thread waits here: no record is applied between the tick's
  // position and the tick. rd_kafka_flush sends at once (linger.ms aside) and serves the
  // delivery reports.
  const auto t0 = Clock::now();
  const rd_kafka_resp_err_t err = rd_kafka_flush(producer_, kTickJournalTimeoutMs);
  if (sink_->TakeFailures() > 0) {
    // A record failed (the tick or an output): the at_least_once stages stop the worker on it
    // too; the tick is not applied.
    Log(LogLevel::kError, "commit failed", {{"stage", "tick"}});
    fatal_ = true;
    return;
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // The broker does not answer: the clock must still fire the partition's timers. A crash
    // before the tick record lands may then reprocess the records after it without it.
    Log(LogLevel::kWarn, "tick applied before its changelog record was acknowledged",
        {{"partitions", std::to_string(parts.size())},
         {"waited_ms", std::to_string(static_cast<int64_t>(SecondsSince(t0) * 1000))},
         {"error", rd_kafka_err2str(err)}});
  }
  for (Partition* part : parts) {
    part->pipeline->engine().AdvanceWatermark(target, sink_.get());
    part->dirty = true;
    if (LogEnabled(LogLevel::kDebug)) {
      Log(LogLevel::kDebug, "tick journaled",
          {{"partition", std::to_string(part->id)},
           {"events_offset", std::to_string(part->next_events)},
           {"acks_offset", std::to_string(part->next_acks)},
           {"watermark_ms", std::to_string(target)},
           {"flush_ms", std::to_string(static_cast<int64_t>(SecondsSince(t0) * 1000))}});
    }
  }
}

void Worker::ReportLag(bool log) {
  Quiesce();
  int64_t total = 0;
  for (auto& [p, part] : partitions_) {
    int64_t low = 0;
    int64_t high = 0;
    int64_t lag_events = 0;
    int64_t lag_acks = 0;
    if (rd_kafka_get_watermark_offsets(consumer_, config_.topics.events.c_str(), p, &low, &high) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0) {
      lag_events = std::max<int64_t>(0, high - std::max<int64_t>(part->next_events, low));
    }
    if (rd_kafka_get_watermark_offsets(acks_, config_.topics.acks.c_str(), p, &low, &high) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0) {
      lag_acks = std::max<int64_t>(0, high - std::max<int64_t>(part->next_acks, low));
    }
    if (metrics_ != nullptr) {
      metrics_->SetConsumerLag(config_.topics.events, p, lag_events);
      metrics_->SetConsumerLag(config_.topics.acks, p, lag_acks);
    }
    total += lag_events + lag_acks;
    if (log) {
      Log(LogLevel::kInfo, "lag",
          {{"partition", std::to_string(p)},
           {"events_lag", std::to_string(lag_events)},
           {"acks_lag", std::to_string(lag_acks)},
           {"active_runs", std::to_string(part->pipeline->engine().active_runs())}});
    }
  }
  (void)total;
}

int Worker::ConsumeBatch(rd_kafka_queue_t* queue, int timeout_ms, bool is_acks,
                         std::vector<std::vector<Lane::Item>>* rounds) {
  rd_kafka_message_t* batch[kPollBatch];
  const ssize_t n =
      is_acks ? rd_kafka_consume_batch_queue(queue, timeout_ms, batch, kPollBatch)
              : static_cast<ssize_t>(ConsumeGroupRecords(queue, timeout_ms, batch, kPollBatch));
  for (ssize_t i = 0; i < n; ++i) {
    rd_kafka_message_t* msg = batch[i];
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      Handle(msg, is_acks);  // an error: logged here, nothing of a partition's is touched
      rd_kafka_message_destroy(msg);
      continue;
    }
    const size_t lane = static_cast<size_t>(std::max<int32_t>(msg->partition, 0)) % rounds->size();
    (*rounds)[lane].push_back({msg, is_acks});
  }
  return n > 0 ? static_cast<int>(n) : 0;
}

void Worker::LaneLoop(Lane* lane) {
  std::vector<Lane::Item> work;
  for (;;) {
    bool at_head = false;
    {
      std::unique_lock lock(lane->mu);
      lane->work_cv.wait(lock, [lane] { return !lane->pending.empty() || lane->stop; });
      if (lane->pending.empty()) return;  // stopped
      work.swap(lane->pending);
      at_head = lane->at_head;
      lane->busy = true;
    }
    lane->idle_cv.notify_all();  // room for the next round
    for (const Lane::Item& item : work) {
      if (Handle(item.msg, item.is_acks)) rd_kafka_message_destroy(item.msg);
    }
    work.clear();
    // The round read everything there was: what it produced goes out now, not after linger.ms.
    if (at_head) KickIfProduced();
    {
      std::lock_guard lock(lane->mu);
      lane->busy = false;
    }
    lane->idle_cv.notify_all();
  }
}

void Worker::StartStallWatch() {
  char value[32];
  size_t size = sizeof value;
  int64_t heartbeat_ms = 3000;  // librdkafka's default
  if (rd_kafka_conf_get(rd_kafka_conf(consumer_), "heartbeat.interval.ms", value, &size) ==
      RD_KAFKA_CONF_OK) {
    heartbeat_ms = std::max<int64_t>(1, std::strtoll(value, nullptr, 10));
  }
  stall_watch_ = std::make_unique<StallWatch>(
      std::chrono::milliseconds(heartbeat_ms),
      std::chrono::milliseconds(std::max<int64_t>(2000, 2 * heartbeat_ms)));
  stall_thread_ = std::thread([this] {
    NameThisThread("hd-stall-watch");
    // A few ticks per threshold; the thread sleeps otherwise (5 wake-ups a second when idle).
    const auto tick =
        std::min<Clock::duration>(std::chrono::milliseconds(200), stall_watch_->threshold() / 4);
    std::unique_lock lock(stall_mu_);
    while (!stall_stop_) {
      const std::chrono::milliseconds stalled = stall_watch_->Tick(Clock::now());
      if (stalled.count() > 0) {
        Log(LogLevel::kWarn, "process stalled",
            {{"stalled_ms", std::to_string(stalled.count())},
             {"threshold_ms", std::to_string(stall_watch_->threshold().count())},
             {"hold_ms", std::to_string(stall_watch_->hold().count())},
             {"effect",
              "changelog writes and commits wait for the hold: the group may have given this "
              "member's partitions to another meanwhile"}});
      }
      stall_cv_.wait_for(lock, tick, [this] { return stall_stop_; });
    }
  });
}

void Worker::StopStallWatch() {
  {
    std::lock_guard lock(stall_mu_);
    stall_stop_ = true;
  }
  stall_cv_.notify_one();
  if (stall_thread_.joinable()) stall_thread_.join();
}

void Worker::KickIfProduced() {
  if (kicker_ == nullptr) return;
  const int64_t produced = sink_->produced();
  if (kicked_produced_.exchange(produced) != produced) kicker_->Kick();
}

void Worker::Dispatch(std::vector<std::vector<Lane::Item>>* rounds, bool at_head) {
  // Bounds the records a lane holds (each pins its fetch buffer): the main thread waits while a
  // lane has 4 batches' worth pending, so a lane holds at most that plus one round waiting and
  // the records it is handling.
  for (size_t i = 0; i < lanes_.size(); ++i) {
    std::vector<Lane::Item>& round = (*rounds)[i];
    if (round.empty()) continue;
    Lane& lane = *lanes_[i];
    {
      std::unique_lock lock(lane.mu);
      lane.idle_cv.wait(lock, [&lane] { return lane.pending.size() < 4 * kPollBatch; });
      lane.pending.insert(lane.pending.end(), round.begin(), round.end());
      lane.at_head = at_head;
    }
    lane.work_cv.notify_one();
    round.clear();
  }
}

void Worker::Quiesce() {
  for (const std::unique_ptr<Lane>& lane : lanes_) {
    std::unique_lock lock(lane->mu);
    lane->idle_cv.wait(lock, [&lane] { return lane->pending.empty() && !lane->busy; });
  }
}

void Worker::StopLanes() {
  for (const std::unique_ptr<Lane>& lane : lanes_) {
    {
      std::lock_guard lock(lane->mu);
      lane->stop = true;
    }
    lane->work_cv.notify_one();
  }
  for (const std::unique_ptr<Lane>& lane : lanes_) {
    if (lane->thread.joinable()) lane->thread.join();
    for (const Lane::Item& item : lane->pending) rd_kafka_message_destroy(item.msg);
    lane->pending.clear();
  }
}

void Worker::WaitForWork(std::chrono::milliseconds timeout) {
  pollfd pfd{wake_pipe_[0], POLLIN, 0};
  if (poll(&pfd, 1, static_cast<int>(std::max<int64_t>(timeout.count(), 0))) > 0) {
    char drain[64];
    while (read(wake_pipe_[0], drain, sizeof drain) > 0) {
    }
  }
}

void Worker::CheckCaughtUp() {
  Quiesce();
  for (const auto& [p, part] : partitions_) {
    if (!part->events_eof || !part->acks_eof) return;
  }
  catch_up_.active = false;
  // What was read is handled: the metrics say so when this line does (bench/live/run compares
  // handoffd_events_total with the records read as soon as it sees the line).
  for (auto& [p, part] : partitions_) {
    if (part->observer != nullptr) part->observer->Flush();
  }
  const double seconds = SecondsSince(catch_up_.start);
  Log(LogLevel::kInfo, "caught up",
      {{"partitions", std::to_string(partitions_.size())},
       {"records", std::to_string(catch_up_.records.load())},
       {"duration_ms", std::to_string(static_cast<int64_t>(seconds * 1000))},
       {"records_per_s",
        std::to_string(static_cast<int64_t>(static_cast<double>(catch_up_.records.load()) /
                                            std::max(seconds, 1e-3)))},
       // What the catch-up cost the machine (all of the process's threads): on a busy host the
       // duration says more about the neighbours than about handoffd.
       {"cpu_ms",
        std::to_string(static_cast<int64_t>((ProcessCpuSeconds() - catch_up_.cpu_start) * 1000))}});
}

int Worker::Run(const std::atomic<bool>& stop) {
  last_commit_ = Clock::now();
  auto last_tick = Clock::now();
  auto last_lag = Clock::now();
  int lag_reports = 0;
  const auto commit_interval = std::chrono::milliseconds(config_.kafka.commit_interval_ms);
  // When the next commit (exactly_once) or batch close (at_least_once) is due. Under a backlog a
  // commit (two flushes) can take longer than the interval; spacing exactly_once commits at
  // least 2x their duration keeps them under a third of the time, at the cost of larger batches
  // and later visibility only while they are slow. At most 2 s apart: a commit resumed through
  // a broker outage lasts as long as the outage, and must not hold back the next one for twice
  // that (packets would stay invisible to read_committed readers meanwhile).
  constexpr auto kMaxCommitSpacing = std::chrono::seconds(2);
  auto next_commit = [&] {
    return last_commit_ +
           (exactly_once_ ? std::max<Clock::duration>(
                                commit_interval,
                                std::min<Clock::duration>(2 * last_commit_cost_, kMaxCommitSpacing))
                          : Clock::duration(commit_interval));
  };
  bool idle = false;
  auto last_input = Clock::now();  // the last round that read anything
  std::vector<std::vector<Lane::Item>> rounds(lanes_.size());
  while (!stop.load() && !fatal_) {
    Beat();
    // Idle (the last round read nothing): wait up to kIdleGatherMs for events, in one call
    // (ConsumeGroupRecords returns when the batch is full or the timeout passes, so a trickle
    // of records is read as one round). Idle for longer than kIdleSleepAfter: first
    // sleep until librdkafka queues a record or a consumer callback, or the next
    // periodic step is due; that spares an idle worker ~500 wake-ups a second.
    if (idle && Clock::now() - last_input >= kIdleSleepAfter) {
      const auto now = Clock::now();
      auto due = std::min(
          {last_tick + kWallClockTick, last_lag + kLagReport, next_commit(), now + kIdleWaitMax});
      if (held_ != nullptr || unsealed_ != nullptr || pending_group_offsets_ != nullptr) {
        // A held batch moves on with delivery reports, which wake nobody here (and the
        // kicker's flush may serve them on its own thread).
        due = std::min(due, now + std::chrono::milliseconds(1));
      }
      WaitForWork(std::chrono::ceil<std::chrono::milliseconds>(due - now));
    }
    // In batches: one call into librdkafka per batch instead of per record. Rebalance callbacks
    // are served inside the call. The lanes decode and process while this thread reads the next
    // round.
    const int events = ConsumeBatch(consumer_queue_, idle ? kIdleGatherMs : 0, false, &rounds);
    const int handled = events + ConsumeBatch(acks_queue_, 0, true, &rounds);
    idle = handled == 0;
    if (!idle) last_input = Clock::now();
    // The events batch was not full: this round read everything there was (caught up).
    const bool at_head = events < kPollBatch;
    Dispatch(&rounds, at_head);
    if (catch_up_.active && at_head) CheckCaughtUp();
    rd_kafka_poll(producer_, 0);  // delivery reports
    // After a stall of the whole process (StallWatch) nothing goes to the changelog for a while:
    // the group may have expired this member meanwhile, and librdkafka needs a moment to say so
    // (a revocation of lost partitions, served by the next ConsumeBatch).
    const bool stalled = stall_watch_ != nullptr && stall_watch_->Held(Clock::now());
    if (!exactly_once_ && !stalled && !ReleaseHeld()) break;
    // Caught up: the changelog records this thread produced go out now instead of after
    // linger.ms (the lanes kick for their outputs). Under a backlog linger.ms batches.
    if (at_head) KickIfProduced();
    auto now = Clock::now();
    if (stalled) {
      // The batch stays open (at_least_once) or the transaction uncommitted (exactly_once).
    } else if (!exactly_once_) {
      // Never blocks: the batch's changelog follows its outputs' delivery reports (ReleaseHeld).
      if (now >= next_commit() && CloseBatch()) last_commit_ = now;
    } else if (now >= next_commit()) {
      if (!Commit(false) && !fatal_) BackOffAfterFailedCommit(stop);
    }
    if (now - last_tick >= kWallClockTick) {
      last_tick = now;
      FollowWallClock(/*may_journal=*/!stalled);
    }
    if (now - last_lag >= kLagReport) {
      last_lag = now;
      ReportLag(++lag_reports % 10 == 0);
    }
  }

  auto t0 = Clock::now();
  Log(LogLevel::kInfo, "shutting down", {{"reason", fatal_ ? "fatal error" : "signal"}});
  ready_ = false;
  if (!fatal_) Commit(true);
  // Leaves the group; the revocation callback commits nothing more (the batch is committed).
  rd_kafka_consumer_close(consumer_);
  rd_kafka_consumer_close(acks_);
  rd_kafka_consumer_close(restorer_);
  StopLanes();
  const int timeout_ms = static_cast<int>(config_.kafka.shutdown_timeout_ms);
  if (exactly_once_ && txn_open_) {
    // Empty (everything was committed) or, after a fatal error, not to be committed. Not
    // AbortTransaction(): shutdown keeps to shutdown_timeout_ms instead of resuming for 60 s.
    sink_->DropHeldOutputs();
    LogError(rd_kafka_abort_transaction(producer_, timeout_ms), "abort transaction failed");
    txn_open_ = false;
  }
  rd_kafka_flush(producer_, timeout_ms);
  kicker_.reset();
  Log(fatal_ ? LogLevel::kError : LogLevel::kInfo, "stopped",
      {{"duration_ms", std::to_string(static_cast<int64_t>(SecondsSince(t0) * 1000))}});
  return fatal_ ? 1 : 0;
}

}  // namespace handoffd

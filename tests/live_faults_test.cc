// The live worker's failure paths, in-process against the embedded broker: a Worker runs on a
// thread while the test makes the mock cluster answer requests with errors (an abortable EndTxn
// or AddPartitionsToTxn, a failed Produce, a Heartbeat that drops the member from the group).
// Afterwards the output topics must hold exactly what the core gives for each partition's input:
// every record present, nothing extra, every duplicate byte-identical to its first copy.
//
// Input: synthetic runs stamped with the current time (no SLA timer falls due during a test),
// some failing (packets), some with a failure stamped so long ago that it escalates at once, and
// acknowledgements of failed runs at the end. Each phase waits until the changelog's meta
// records cover the whole input ("committed"), so acks never race the events they refer to.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/config_loader.h"
#include "metrics/metrics.h"
#include "processor/live/changelog.h"
#include "processor/live/embedded_broker.h"
#include "processor/live/worker.h"
#include "processor/pipeline.h"
#include "processor/time_format.h"

namespace handoffd {
namespace {

using Clock = std::chrono::steady_clock;

// Kafka protocol API keys (librdkafka's rdkafka_protocol.h is not installed).
constexpr int16_t kApiProduce = 0;
constexpr int16_t kApiHeartbeat = 12;
constexpr int16_t kApiSyncGroup = 14;
constexpr int16_t kApiAddPartitionsToTxn = 24;
constexpr int16_t kApiEndTxn = 26;
constexpr int32_t kBrokerId = 1;  // the embedded broker's only broker

constexpr int32_t kPartitions = 2;
constexpr auto kWait = std::chrono::seconds(25);

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Input {
  std::string key;
  std::string value;
};

// Synthetic runs of a workflow outside the catalog with an explicit severity (P2 or P3: no
// timer due for minutes), interleaved, event times from now in 1 ms steps. A third fail with a
// classified error as their last event (so once their packet is out, all their events have been
// applied); the first `late` failing runs are P3 with the failure stamped more than the P3
// first-response time ago, so their packet escalates as soon as it opens.
class RunSource {
 public:
  explicit RunSource(uint32_t seed) : rng_(seed) {}

  // `failures` false: every run succeeds, so the events produce no output at all.
  std::vector<Input> Events(const std::string& prefix, int runs, int late, bool failures = true) {
    struct Active {
      std::string run_id;
      std::vector<std::string> events;  // JSON members without the braces and, mostly, ts
    };
    std::vector<Active> active;
    std::vector<Input> out;
    const int64_t start = NowMs();
    int started = 0;
    int late_left = late;
    while (started < runs || !active.empty()) {
      while (started < runs && active.size() < 16) {
        bool fail = late_left > 0 || (failures && rng_() % 3 == 0);
        std::string run_id = prefix + "-" + std::to_string(++started);
        active.push_back({run_id, Script(run_id, fail, late_left-- > 0)});
      }
      size_t i = rng_() % active.size();
      std::string run_id = active[i].run_id;
      std::string event = active[i].events.front();
      active[i].events.erase(active[i].events.begin());
      if (active[i].events.empty()) active.erase(active.begin() + static_cast<std::ptrdiff_t>(i));
      // Event times follow the output order; a late failure carries its own.
      if (event.find("\"ts\"") == std::string::npos) {
        event += ",\"ts\":\"" + FormatRfc3339Ms(start + static_cast<int64_t>(out.size())) + "\"";
      }
      out.push_back({run_id, "{" + event + "}"});
    }
    return out;
  }

  const std::vector<std::string>& failed_runs() const { return failed_; }

 private:
  std::vector<std::string> Script(const std::string& run_id, bool fail, bool late) {
    const char* severity = late || rng_() % 2 == 0 ? "P3" : "P2";
    std::vector<std::string> events;
    auto add = [&](const std::string& type, const std::string& fields) {
      events.push_back("\"event_id\":\"" + run_id + "-" + std::to_string(events.size()) +
                       "\",\"run_id\":\"" + run_id + "\",\"type\":\"" + type + "\"" + fields);
    };
    add("run_started",
        std::string(",\"workflow_id\":\"synthetic\",\"severity\":\"") + severity +
            "\",\"objective\":\"synthetic run\",\"owner\":{\"primary\":\"agent-ops\","
            "\"backup\":\"platform-oncall\"}");
    const int steps = 1 + static_cast<int>(rng_() % 3);
    for (int s = 0; s < steps; ++s) {
      const std::string step = ",\"step\":\"step-" + std::to_string(s) + "\"";
      add("step_started", step);
      add("tool_call", step + ",\"tool\":\"search\",\"status\":\"ok\",\"side_effect\":\"none\"");
    }
    const std::string last = ",\"step\":\"step-" + std::to_string(steps - 1) + "\"";
    if (!fail) {
      add("step_succeeded", last);
      add("run_completed", ",\"outcome\":\"success\"");
      return events;
    }
    static const char* kCodes[] = {"missing_input", "conflict", "write_failed",
                                   "permission_denied"};
    std::string failure =
        last + ",\"error\":{\"code\":\"" + kCodes[rng_() % 4] + "\",\"message\":\"boom\"}";
    if (late) {
      const int64_t first_response_ms = DefaultConfig().Sla(Severity::kP3).first_response_s * 1000;
      failure += ",\"ts\":\"" + FormatRfc3339Ms(NowMs() - first_response_ms - 60000) + "\"";
    } else {
      failed_.push_back(run_id);
    }
    add("step_failed", failure);
    return events;
  }

  std::mt19937 rng_;
  std::vector<std::string> failed_;  // failing runs that are not late (ackable)
};

// Run-wide acknowledgements of `runs`, a third of them resolved too, stamped now.
std::vector<Input> Acks(const std::vector<std::string>& runs) {
  std::vector<Input> out;
  const std::string ts = ",\"ts\":\"" + FormatRfc3339Ms(NowMs()) + "\"}";
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string head = "\",\"run_id\":\"" + runs[i] + "\",\"by\":\"oncall\"";
    out.push_back({runs[i], "{\"type\":\"handoff_acknowledged" + head + ts});
    if (i % 3 == 0) out.push_back({runs[i], "{\"type\":\"handoff_resolved" + head + ts});
  }
  return out;
}

rd_kafka_conf_t* ClientConf(const std::string& bootstrap) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
  return conf;
}

// The test's own producer of input records (same default partitioner as any client).
class InputProducer {
 public:
  explicit InputProducer(const std::string& bootstrap) {
    char errstr[512];
    rd_kafka_conf_t* conf = ClientConf(bootstrap);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof errstr);
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) ++*static_cast<int*>(opaque);
    });
    rd_kafka_conf_set_opaque(conf, &failures_);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  }
  ~InputProducer() { rd_kafka_destroy(rk_); }

  // Produces and waits for every delivery; false when one failed.
  bool Send(const std::string& topic, const std::vector<Input>& records) {
    for (const Input& r : records) {
      rd_kafka_producev(rk_, RD_KAFKA_V_TOPIC(topic.c_str()),
                        RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    }
    return rd_kafka_flush(rk_, 20000) == RD_KAFKA_RESP_ERR_NO_ERROR && failures_ == 0;
  }

 private:
  rd_kafka_t* rk_ = nullptr;
  int failures_ = 0;
};

struct Consumed {
  int64_t offset;
  std::string key;
  std::string value;
  std::string ce_id;  // header, output records only
};

// Reads whole partitions: one assign-only consumer, kept for the test's lifetime.
class Reader {
 public:
  explicit Reader(const std::string& bootstrap) {
    char errstr[512];
    rd_kafka_conf_t* conf = ClientConf(bootstrap);
    rd_kafka_conf_set(conf, "group.id", "faults-test-reader", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr);
    // The mock answers an empty fetch only when this expires (docs/live-mode.md).
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", errstr, sizeof errstr);
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  }
  ~Reader() {
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
  }

  // Every record of `topics` (all partitions), from the beginning to the current end.
  std::map<std::pair<std::string, int32_t>, std::vector<Consumed>> ReadAll(
      const std::vector<std::string>& topics) {
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(topics.size()) * kPartitions);
    for (const std::string& t : topics) {
      for (int32_t p = 0; p < kPartitions; ++p) {
        rd_kafka_topic_partition_list_add(list, t.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
      }
    }
    rd_kafka_assign(rk_, list);
    int eof_left = list->cnt;
    rd_kafka_topic_partition_list_destroy(list);
    std::map<std::pair<std::string, int32_t>, std::vector<Consumed>> out;
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (eof_left > 0 && Clock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 100);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        --eof_left;
      } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        Consumed c{m->offset,
                   m->key ? std::string(static_cast<const char*>(m->key), m->key_len) : "",
                   m->payload ? std::string(static_cast<const char*>(m->payload), m->len) : "", ""};
        rd_kafka_headers_t* headers = nullptr;
        const void* v = nullptr;
        size_t n = 0;
        if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(headers, "ce_id", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          c.ce_id.assign(static_cast<const char*>(v), n);
        }
        out[{rd_kafka_topic_name(m->rkt), m->partition}].push_back(std::move(c));
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(rk_, nullptr);
    EXPECT_EQ(eof_left, 0) << "could not read every partition to its end";
    return out;
  }

  // The end offset (high watermark) of a partition; -1 when the broker cannot say.
  int64_t End(const std::string& topic, int32_t p) {
    int64_t low = 0;
    int64_t high = -1;
    if (rd_kafka_query_watermark_offsets(rk_, topic.c_str(), p, &low, &high, 10000) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      return -1;
    }
    return high;
  }

 private:
  rd_kafka_t* rk_ = nullptr;
};

// An output record as (topic, ce_id) -> (key, value).
using OutputKey = std::pair<std::string, std::string>;
using Outputs = std::map<OutputKey, std::pair<std::string, std::string>>;

class CaptureSink : public OutputSink {
 public:
  CaptureSink(const TopicsConfig& topics, Outputs* out) : topics_(topics), out_(out) {}
  void Emit(const OutputRecord& r) override {
    std::pair<std::string, std::string> record{std::string(r.key), std::string(r.value)};
    auto [it, inserted] =
        out_->try_emplace({topics_.ForRole(r.role), std::string(r.ce_id)}, record);
    EXPECT_TRUE(inserted || it->second == record) << "the core reused ce_id " << r.ce_id;
  }

 private:
  const TopicsConfig& topics_;
  Outputs* out_;
};

// One Worker::Run on its own thread; Stop() (or the destructor) ends it.
class WorkerThread {
 public:
  WorkerThread(const Config& config, const std::string& bootstrap, Metrics* metrics)
      : worker_(std::make_unique<Worker>(config, bootstrap, "faults-1", metrics)) {
    worker_->UseEmbeddedBrokerSettings();  // as `handoffd run` does against the embedded broker
    std::string error;
    started_ = worker_->Start(&error);
    EXPECT_TRUE(started_) << error;
    if (started_) {
      thread_ = std::thread([this] {
        rc_ = worker_->Run(stop_);
        exited_ = true;
      });
    }
  }
  ~WorkerThread() { Stop(); }

  bool WaitReady() {
    for (auto deadline = Clock::now() + kWait; Clock::now() < deadline;) {
      if (worker_->ready()) return true;
      if (exited_) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  // Waits for Run() to return by itself (a fatal error); its exit code, or -1 on timeout.
  int WaitExit() {
    for (auto deadline = Clock::now() + kWait; Clock::now() < deadline;) {
      if (exited_) return Stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return rc_;
  }

 private:
  std::unique_ptr<Worker> worker_;
  bool started_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<bool> exited_{false};
  int rc_ = -1;
  std::thread thread_;
};

class LiveFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = LoadConfig(HANDOFFD_TEST_DATA "/test-catalog.yaml", {});
    std::string error;
    ASSERT_TRUE(broker_.Start(AllTopics(config_.topics), kPartitions, &error)) << error;
    producer_ = std::make_unique<InputProducer>(broker_.bootstrap());
    reader_ = std::make_unique<Reader>(broker_.bootstrap());
  }

  void Configure(const char* guarantee, const std::string& commit_interval_ms = "100",
                 const std::vector<std::string>& extra = {}) {
    // A dropped member's old id stays in the mock's group until its session times out; the
    // rejoin waits that long less a second. With 2 s the worker never got an assignment.
    std::vector<std::string> sets = {
        "kafka.bootstrap_servers=" + broker_.bootstrap(),
        "kafka.processing_guarantee=" + std::string(guarantee),
        "kafka.commit_interval_ms=" + commit_interval_ms,
        "kafka.group_id=faults",
        "kafka.shutdown_timeout_ms=5000",
        "kafka.properties.session.timeout.ms=3000",
        "kafka.properties.heartbeat.interval.ms=200",
    };
    sets.insert(sets.end(), extra.begin(), extra.end());
    config_ = LoadConfig(HANDOFFD_TEST_DATA "/test-catalog.yaml", {sets.begin(), sets.end()});
    metrics_ = std::make_unique<Metrics>(registry_, config_);
  }

  std::unique_ptr<WorkerThread> StartWorker() {
    auto w = std::make_unique<WorkerThread>(config_, broker_.bootstrap(), metrics_.get());
    // While the worker joins the group (about 3 s): the reader's first look at every topic
    // (metadata, leaders) costs about a second, better spent now than in every later check.
    reader_->ReadAll(AllTopics(config_.topics));
    EXPECT_TRUE(w->WaitReady()) << "worker not ready";
    return w;
  }

  void SendEvents(const std::vector<Input>& events) {
    ASSERT_TRUE(producer_->Send(config_.topics.events, events));
  }
  void SendAcks(const std::vector<Input>& acks) {
    ASSERT_TRUE(producer_->Send(config_.topics.acks, acks));
  }

  // Broker-side errors still queued for `api` (they are consumed one per request).
  size_t PendingErrors(int16_t api) {
    size_t n = 0;
    rd_kafka_mock_broker_error_stack_cnt(broker_.cluster(), kBrokerId, api, &n);
    return n;
  }
  bool WaitErrorsConsumed(int16_t api) {
    for (auto deadline = Clock::now() + kWait; Clock::now() < deadline;) {
      if (PendingErrors(api) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Per partition, the last meta record of the changelog: its next events and acks offsets
  // ({-1, -1} without one).
  std::map<int32_t, std::pair<int64_t, int64_t>> CommittedOffsets() {
    std::map<int32_t, std::pair<int64_t, int64_t>> out;
    for (const auto& [tp, records] : reader_->ReadAll({config_.topics.state})) {
      ChangelogRestore fold;
      for (const Consumed& c : records) fold.Add(c.key, c.value);
      if (fold.meta()) {
        out[tp.second] = {fold.meta()->next_events_offset, fold.meta()->next_acks_offset};
      }
    }
    for (int32_t p = 0; p < kPartitions; ++p) out.try_emplace(p, -1, -1);
    return out;
  }

  // Per partition, the end offsets of the events and acks partitions.
  std::map<int32_t, std::pair<int64_t, int64_t>> InputEnds() {
    std::map<int32_t, std::pair<int64_t, int64_t>> out;
    for (int32_t p = 0; p < kPartitions; ++p) {
      out[p] = {reader_->End(config_.topics.events, p), reader_->End(config_.topics.acks, p)};
    }
    return out;
  }

  // Until a committed batch (meta record) covers every input record of every partition.
  bool WaitCommitted() {
    auto ends = InputEnds();
    for (auto deadline = Clock::now() + kWait; Clock::now() < deadline;) {
      auto committed = CommittedOffsets();
      bool all = true;
      for (int32_t p = 0; p < kPartitions; ++p) {
        if (committed[p].first < ends[p].first || committed[p].second < ends[p].second) {
          all = false;
        }
      }
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // A restart resumes at the last meta record, so per partition the meta records' offsets must
  // never go back in log order: a meta that lands late (after a newer batch's) would send a
  // restarted worker back over input whose state it no longer has.
  // The closing steps of a fault test: the failed runs are acknowledged (their packets get
  // their ack revisions and audit records), the worker commits, every output equals replay's
  // and no meta record moves an offset back. Returns the duplicates (identical second copies).
  int AckFailedRunsAndExpectReplayOutputs() {
    SendAcks(Acks(runs_.failed_runs()));
    if (!WaitCommitted()) {
      ADD_FAILURE() << "no commit after the acks";
      return -1;
    }
    const int duplicates = ExpectOutputsEqualReplay();
    RecordProperty("duplicates", duplicates);
    ExpectMetaOffsetsNeverGoBack();
    return duplicates;
  }

  void ExpectMetaOffsetsNeverGoBack() {
    for (const auto& [tp, records] : reader_->ReadAll({config_.topics.state})) {
      ChangelogMeta last;
      for (const Consumed& c : records) {
        ChangelogMeta meta;
        if (c.key != kMetaKey || !DecodeMeta(c.value, &meta)) continue;
        EXPECT_GE(meta.next_events_offset, last.next_events_offset)
            << "state partition " << tp.second << " offset " << c.offset;
        EXPECT_GE(meta.next_acks_offset, last.next_acks_offset)
            << "state partition " << tp.second << " offset " << c.offset;
        last = meta;
      }
    }
  }

  // What replay gives: per partition a fresh Pipeline over its events, then its acks (the order
  // the phases guarantee), each with the source the worker passes.
  Outputs Expected() {
    Outputs out;
    CaptureSink sink(config_.topics, &out);
    auto all = reader_->ReadAll({config_.topics.events, config_.topics.acks});
    for (int32_t p = 0; p < kPartitions; ++p) {
      Pipeline pipeline(config_, nullptr);
      for (const std::string* topic : {&config_.topics.events, &config_.topics.acks}) {
        for (const Consumed& c : all[{*topic, p}]) {
          pipeline.Handle(c.key, c.value, SourceRef{*topic, p, c.offset}, &sink);
        }
      }
    }
    return out;
  }

  // The output topics as (topic, ce_id) -> record; every duplicate must equal its first copy.
  Outputs Live(int* duplicates) {
    Outputs out;
    *duplicates = 0;
    std::vector<std::string> topics;
    for (TopicRole role :
         {TopicRole::kPage, TopicRole::kOwnerQueue, TopicRole::kTickets, TopicRole::kDecisions,
          TopicRole::kPending, TopicRole::kEscalations, TopicRole::kAudit, TopicRole::kDlq}) {
      topics.push_back(config_.topics.ForRole(role));
    }
    for (const auto& [tp, records] : reader_->ReadAll(topics)) {
      for (const Consumed& c : records) {
        auto [it, inserted] = out.try_emplace({tp.first, c.ce_id}, c.key, c.value);
        if (inserted) continue;
        ++*duplicates;
        EXPECT_EQ(it->second, std::make_pair(c.key, c.value))
            << "duplicate " << tp.first << " " << c.ce_id << " differs";
      }
    }
    return out;
  }

  // Every record the input calls for is on the output topics, nothing else is, and each is
  // byte-identical to the core's. Also checks the input was worth testing. Returns the number
  // of duplicates.
  int ExpectOutputsEqualReplay() {
    Outputs expected = Expected();
    int duplicates = 0;
    Outputs live = Live(&duplicates);
    int packets = 0;
    int escalations = 0;
    int acknowledged = 0;
    for (const auto& [k, v] : expected) {
      if (k.first == config_.topics.escalations) ++escalations;
      if (k.first != config_.topics.audit) ++packets;
      if (k.second.ends_with("/acknowledged")) ++acknowledged;
    }
    EXPECT_GT(packets, 20);
    EXPECT_GT(escalations, 0);
    EXPECT_GT(acknowledged, 0);
    for (const auto& [k, v] : expected) {
      auto it = live.find(k);
      if (it == live.end()) {
        ADD_FAILURE() << "missing " << k.first << " " << k.second;
      } else {
        EXPECT_EQ(it->second, v) << k.first << " " << k.second << " differs from replay";
      }
    }
    for (const auto& [k, v] : live) {
      EXPECT_TRUE(expected.count(k)) << "unexpected " << k.first << " " << k.second;
    }
    return duplicates;
  }

  double MetricValue(const std::string& name) {
    double total = 0;
    for (const auto& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const auto& m : family.metric) {
        total += family.type == prometheus::MetricType::Histogram
                     ? static_cast<double>(m.histogram.sample_count)
                     : m.counter.value;
      }
    }
    return total;
  }

  // Until the metric (summed over its series) reaches `at_least`; false on timeout.
  bool WaitMetric(const std::string& name, double at_least) {
    for (auto deadline = Clock::now() + kWait; Clock::now() < deadline;) {
      if (MetricValue(name) >= at_least) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << name << " = " << MetricValue(name) << ", expected at least " << at_least;
    return false;
  }

  Config config_;
  EmbeddedBroker broker_;
  prometheus::Registry registry_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<InputProducer> producer_;
  std::unique_ptr<Reader> reader_;
  RunSource runs_{7};
};

// CommitTransaction's abort path. The mock keeps the aborted transaction's records visible,
// changelog included, so the rewind restores the aborted batch's own meta record and nothing is
// read again: what this can show on the mock is that the worker goes on (no fatal exit, one
// failed commit, a second restore) with every output present and none different. The next test
// covers a rewind that does read input again.
TEST_F(LiveFaultsTest, AbortedTransactionIsRewoundAndNoOutputIsLostOrDifferent) {
  Configure("exactly_once");
  auto worker = StartWorker();
  SendEvents(runs_.Events("eo-a", 120, 3));
  ASSERT_TRUE(WaitCommitted());

  // The next EndTxn(commit) fails with an error librdkafka treats as abortable.
  ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(broker_.cluster(), kBrokerId, kApiEndTxn,
                                                         1, RD_KAFKA_RESP_ERR_POLICY_VIOLATION, 0),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  SendEvents(runs_.Events("eo-b", 120, 3));
  ASSERT_TRUE(WaitErrorsConsumed(kApiEndTxn));
  EXPECT_TRUE(WaitMetric("handoffd_commit_failures_total", 1));
  // Assignment restored each partition once; the rewind restored them again.
  EXPECT_TRUE(WaitMetric("handoffd_restore_duration_seconds", 2 * kPartitions));
  ASSERT_TRUE(WaitCommitted());

  AckFailedRunsAndExpectReplayOutputs();
  EXPECT_EQ(MetricValue("handoffd_commit_failures_total"), 1);
  EXPECT_EQ(worker->Stop(), 0);
}

// Commit's abort paths with a rewind that reads input again: a transaction whose partitions
// cannot be added to it (AddPartitionsToTxn refused) can write nothing, so it is aborted and the
// input since the last committed batch is processed again.
TEST_F(LiveFaultsTest, TransactionThatCannotWriteIsAbortedAndItsInputProcessedAgain) {
  Configure("exactly_once");
  auto worker = StartWorker();
  SendEvents(runs_.Events("tx-a", 120, 3));
  ASSERT_TRUE(WaitCommitted());
  auto refuse_next_partitions = [&] {
    ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(
                  broker_.cluster(), kBrokerId, kApiAddPartitionsToTxn, 1,
                  RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 0),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  };

  // Input without outputs: the transaction's first partitions are the changelog's, refused; the
  // changelog records fail and the commit is aborted.
  refuse_next_partitions();
  SendEvents(runs_.Events("tx-b", 60, 0, /*failures=*/false));
  ASSERT_TRUE(WaitErrorsConsumed(kApiAddPartitionsToTxn));
  EXPECT_TRUE(WaitMetric("handoffd_commit_failures_total", 1));
  EXPECT_TRUE(WaitMetric("handoffd_restore_duration_seconds", 2 * kPartitions));
  ASSERT_TRUE(WaitCommitted());

  // Input with outputs: the outputs' partitions are refused, the outputs are never written.
  refuse_next_partitions();
  SendEvents(runs_.Events("tx-c", 120, 3));
  ASSERT_TRUE(WaitErrorsConsumed(kApiAddPartitionsToTxn));
  EXPECT_TRUE(WaitMetric("handoffd_commit_failures_total", 2));
  EXPECT_TRUE(WaitMetric("handoffd_restore_duration_seconds", 3 * kPartitions));
  ASSERT_TRUE(WaitCommitted());

  AckFailedRunsAndExpectReplayOutputs();
  // One failed commit per fault: what failed in an aborted transaction does not fail the next.
  EXPECT_EQ(MetricValue("handoffd_commit_failures_total"), 2);
  EXPECT_EQ(worker->Stop(), 0);
}

// A fault that outlasts every retry (every AddPartitionsToTxn refused, as with a missing ACL on
// the output topics): the worker pauses between attempts and, after kafka.max_failed_commits
// failed commits in a row, stops with exit code 1 instead of aborting and restoring every
// partition forever. Once the fault is gone, a restart produces everything.
TEST_F(LiveFaultsTest, CommitsThatKeepFailingStopTheWorkerAfterMaxFailedCommits) {
  Configure("exactly_once", "100", {"kafka.max_failed_commits=3"});
  SendEvents(runs_.Events("keep-a", 60, 2));
  std::vector<rd_kafka_resp_err_t> refused(1000, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  rd_kafka_mock_push_request_errors_array(broker_.cluster(), kApiAddPartitionsToTxn, refused.size(),
                                          refused.data());
  {
    WorkerThread first(config_, broker_.bootstrap(), metrics_.get());
    EXPECT_EQ(first.WaitExit(), 1) << "commits that keep failing must stop the worker";
  }
  EXPECT_EQ(MetricValue("handoffd_commit_failures_total"), 3);
  // Every partition was restored on assignment and rewound after each failure, no more.
  EXPECT_EQ(MetricValue("handoffd_restore_duration_seconds"), (1 + 3) * kPartitions);

  rd_kafka_mock_clear_request_errors(broker_.cluster(), kApiAddPartitionsToTxn);
  auto worker = StartWorker();
  ASSERT_TRUE(WaitCommitted());
  AckFailedRunsAndExpectReplayOutputs();
  EXPECT_EQ(worker->Stop(), 0);
}

TEST_F(LiveFaultsTest, FailedDeliveryStopsTheWorkerAndARestartProducesEverything) {
  Configure("at_least_once");
  SendEvents(runs_.Events("al-a", 120, 3));
  // The next three Produce requests fail with an error librdkafka does not retry: the worker's
  // first outputs are lost.
  const int kErrors = 3;
  for (int i = 0; i < kErrors; ++i) {
    rd_kafka_mock_broker_push_request_error_rtts(broker_.cluster(), kBrokerId, kApiProduce, 1,
                                                 RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 0);
  }
  {
    WorkerThread first(config_, broker_.bootstrap(), metrics_.get());
    EXPECT_EQ(first.WaitExit(), 1) << "a failed delivery must stop the worker";
  }
  EXPECT_GE(MetricValue("handoffd_commit_failures_total"), 1);
  EXPECT_EQ(PendingErrors(kApiProduce), 0u);
  // The failed batch's meta was never written: the changelog does not cover the input.
  auto committed = CommittedOffsets();
  auto ends = InputEnds();
  bool behind = false;
  for (int32_t p = 0; p < kPartitions; ++p) behind = behind || committed[p].first < ends[p].first;
  EXPECT_TRUE(behind) << "a batch with a lost output was committed";

  auto worker = StartWorker();
  ASSERT_TRUE(WaitCommitted());
  SendEvents(runs_.Events("al-b", 60, 2));
  ASSERT_TRUE(WaitCommitted());
  AckFailedRunsAndExpectReplayOutputs();
  EXPECT_EQ(worker->Stop(), 0);
}

// Per state partition, the runs whose events the last meta record says were applied but whose
// state the changelog does not hold (as a restart would restore it): state a restart would lose.
std::vector<std::string> RunsCoveredButMissing(
    const std::map<std::pair<std::string, int32_t>, std::vector<Consumed>>& changelog,
    const std::map<std::pair<std::string, int32_t>, std::vector<Consumed>>& events) {
  std::vector<std::string> missing;
  for (const auto& [tp, records] : changelog) {
    ChangelogRestore fold;
    for (const Consumed& c : records) fold.Add(c.key, c.value);
    if (!fold.meta()) continue;
    auto it = events.find({std::string(), tp.second});
    if (it == events.end()) continue;
    for (const Consumed& e : it->second) {
      if (e.offset < fold.meta()->next_events_offset && fold.runs().count(e.key) == 0) {
        missing.push_back(e.key + " (state partition " + std::to_string(tp.second) + ")");
      }
    }
  }
  return missing;
}

TEST_F(LiveFaultsTest, ALostChangelogRecordIsNeverCoveredByAMetaRecord) {
  // One record per produce batch: a partition's run records and its meta record travel in
  // separate Produce requests, so one refused request can lose a run record while a later one
  // would carry the meta. Runs without failures: no outputs, the worker's first Produce requests
  // carry its changelog.
  Configure("at_least_once", "100", {"kafka.properties.batch.num.messages=1"});
  SendEvents(runs_.Events("cl-a", 40, 0, /*failures=*/false));
  ASSERT_EQ(
      rd_kafka_mock_broker_push_request_error_rtts(broker_.cluster(), kBrokerId, kApiProduce, 1,
                                                   RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 0),
      RD_KAFKA_RESP_ERR_NO_ERROR);
  auto events_by_partition = [&] {
    std::map<std::pair<std::string, int32_t>, std::vector<Consumed>> out;
    for (auto& [tp, records] : reader_->ReadAll({config_.topics.events})) {
      out[{std::string(), tp.second}] = records;
    }
    return out;
  };
  {
    WorkerThread first(config_, broker_.bootstrap(), metrics_.get());
    EXPECT_EQ(first.WaitExit(), 1) << "a lost changelog record must stop the worker";
  }
  EXPECT_EQ(PendingErrors(kApiProduce), 0u);
  EXPECT_EQ(RunsCoveredButMissing(reader_->ReadAll({config_.topics.state}), events_by_partition()),
            std::vector<std::string>{})
      << "a meta record landed without the state of runs it covers";

  // A restart processes the uncovered input again: every run's state is in the changelog.
  auto worker = StartWorker();
  ASSERT_TRUE(WaitCommitted());
  EXPECT_EQ(RunsCoveredButMissing(reader_->ReadAll({config_.topics.state}), events_by_partition()),
            std::vector<std::string>{});
  ExpectMetaOffsetsNeverGoBack();
  EXPECT_EQ(worker->Stop(), 0);
}

// A member stopped (SIGSTOP, a paused VM) longer than its session loses its partitions while it
// cannot notice; changelog records it had produced before the stop go out when it resumes, after
// the new owner's, and the new owner's next meta record covered them: the chaos soak's --pause
// (tests/soak/chaos.py, seed 72) ended with completed runs restored as active. Here the late
// record is injected: run R's state from before its completion, written by another writer
// between the worker's meta records. A restore must keep R completed.
TEST_F(LiveFaultsTest, ChangelogRecordsOfALostMemberAreNotRestored) {
  Configure("at_least_once");
  const std::string run = "stale-r";
  auto event = [&](int n, const std::string& type, const std::string& fields) {
    return Input{run, "{\"event_id\":\"" + run + "-" + std::to_string(n) + "\",\"run_id\":\"" +
                          run + "\",\"type\":\"" + type + "\",\"ts\":\"" +
                          FormatRfc3339Ms(NowMs()) + "\"" + fields + "}"};
  };
  auto active_runs = [&] {
    double total = 0;
    for (const auto& family : registry_.Collect()) {
      if (family.name != "handoffd_active_runs") continue;
      for (const auto& m : family.metric) total += m.gauge.value;
    }
    return total;
  };
  // The last changelog record of R: its partition and value.
  auto last_state = [&] {
    std::pair<int32_t, std::string> out{-1, ""};
    for (const auto& [tp, records] : reader_->ReadAll({config_.topics.state})) {
      for (const Consumed& c : records) {
        if (c.key == run) out = {tp.second, c.value};
      }
    }
    return out;
  };
  std::pair<int32_t, std::string> active_state;
  {
    auto worker = StartWorker();
    SendEvents(runs_.Events("stale-w", 20, 0, /*failures=*/false));  // input on every partition
    SendEvents({event(0, "run_started",
                      ",\"workflow_id\":\"synthetic\",\"severity\":\"P3\",\"objective\":\"x\","
                      "\"owner\":{\"primary\":\"agent-ops\",\"backup\":\"platform-oncall\"}"),
                event(1, "step_started", ",\"step\":\"s\"")});
    ASSERT_TRUE(WaitCommitted());
    active_state = last_state();
    ASSERT_GE(active_state.first, 0);
    SendEvents({event(2, "step_succeeded", ",\"step\":\"s\""),
                event(3, "run_completed", ",\"outcome\":\"success\"")});
    ASSERT_TRUE(WaitCommitted());
    ASSERT_NE(last_state().second, active_state.second);
    // The lost member's late record, then more input on every partition, so that the worker's
    // next meta records follow it.
    char errstr[512];
    rd_kafka_t* late =
        rd_kafka_new(RD_KAFKA_PRODUCER, ClientConf(broker_.bootstrap()), errstr, sizeof errstr);
    ASSERT_NE(late, nullptr) << errstr;
    const std::string writer = "lost-member-0123456789abcdef";
    ASSERT_EQ(
        rd_kafka_producev(
            late, RD_KAFKA_V_TOPIC(config_.topics.state.c_str()),
            RD_KAFKA_V_PARTITION(active_state.first), RD_KAFKA_V_KEY(run.data(), run.size()),
            RD_KAFKA_V_VALUE(active_state.second.data(), active_state.second.size()),
            RD_KAFKA_V_HEADER(kWriterHeader, writer.data(), static_cast<ssize_t>(writer.size())),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(rd_kafka_flush(late, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(late);
    SendEvents(runs_.Events("stale-o", 20, 0, /*failures=*/false));
    ASSERT_TRUE(WaitCommitted());
    EXPECT_EQ(active_runs(), 0);
    EXPECT_EQ(worker->Stop(), 0);
  }
  auto worker = StartWorker();  // restores every partition from the changelog
  EXPECT_EQ(active_runs(), 0) << "run " << run << " came back active from the late record";
  // The restore re-wrote R's committed state after the late record: compaction, which keeps a
  // key's newest record, keeps that.
  bool rewritten = false;
  for (auto deadline = Clock::now() + kWait; !rewritten && Clock::now() < deadline;) {
    rewritten = last_state().second != active_state.second;
    if (!rewritten) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(rewritten) << "the late record is still " << run << "'s newest";
  EXPECT_EQ(worker->Stop(), 0);
}

// Wall-clock ticks under at_least_once (changelog.h "Ticks"). A P3 run failed long ago in event
// time: its ack deadline is `ahead_ms` of wall-clock time away, while its events put the
// watermark hours before it. Only the wall clock can reach the deadline.
class LiveTicksTest : public LiveFaultsTest {
 protected:
  std::vector<Input> OldFailure(const std::string& run, int64_t ahead_ms, int64_t* deadline_ms) {
    const int64_t first_response_ms = config_.Sla(Severity::kP3).first_response_s * 1000;
    const int64_t failed_at = NowMs() - first_response_ms + ahead_ms;
    *deadline_ms = failed_at + first_response_ms;
    std::vector<Input> out;
    auto add = [&](const std::string& type, const std::string& fields, int64_t ts) {
      out.push_back({run, "{\"event_id\":\"" + run + "-" + std::to_string(out.size()) +
                              "\",\"run_id\":\"" + run + "\",\"type\":\"" + type + "\",\"ts\":\"" +
                              FormatRfc3339Ms(ts) + "\"" + fields + "}"});
    };
    add("run_started",
        ",\"workflow_id\":\"synthetic\",\"severity\":\"P3\",\"objective\":\"x\","
        "\"owner\":{\"primary\":\"agent-ops\",\"backup\":\"platform-oncall\"}",
        failed_at - 2);
    add("step_started", ",\"step\":\"s\"", failed_at - 1);
    add("step_failed", ",\"step\":\"s\",\"error\":{\"code\":\"write_failed\",\"message\":\"boom\"}",
        failed_at);
    return out;
  }

  // The partition the input records of `run` went to (-1: none).
  int32_t PartitionOf(const std::string& run) {
    for (const auto& [tp, records] : reader_->ReadAll({config_.topics.events})) {
      for (const Consumed& c : records) {
        if (c.key == run) return tp.second;
      }
    }
    return -1;
  }

  // The tick records of the changelog, per state partition.
  std::map<int32_t, std::vector<ChangelogTick>> Ticks() {
    std::map<int32_t, std::vector<ChangelogTick>> out;
    for (const auto& [tp, records] : reader_->ReadAll({config_.topics.state})) {
      for (const Consumed& c : records) {
        ChangelogTick tick;
        if (c.key == kTickKey && DecodeTick(c.value, &tick)) out[tp.second].push_back(tick);
      }
    }
    return out;
  }

  // The escalations of `run`'s packets on the escalations topic (ce_ids).
  std::vector<std::string> Escalations(const std::string& run) {
    std::vector<std::string> out;
    for (const auto& [tp, records] : reader_->ReadAll({config_.topics.escalations})) {
      for (const Consumed& c : records) {
        if (c.key == run) out.push_back(c.ce_id);
      }
    }
    return out;
  }
};

// The first pass: the escalation the clock fires is preceded by a tick record at the position
// it fired at, and a partition whose clock fires nothing writes none.
TEST_F(LiveTicksTest, AWallClockEscalationIsJournaledAtItsInputPosition) {
  Configure("at_least_once");
  auto worker = StartWorker();
  const std::string run = "tick-r";
  int64_t deadline_ms = 0;
  SendEvents(OldFailure(run, 1000, &deadline_ms));
  const int32_t p = PartitionOf(run);
  ASSERT_GE(p, 0);
  std::vector<std::string> escalations;
  for (auto deadline = Clock::now() + kWait; escalations.empty() && Clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    escalations = Escalations(run);
  }
  ASSERT_FALSE(escalations.empty()) << "the wall clock did not escalate " << run;
  // The tick that fired it. (An earlier one may have fired R's stall timer, which its packet
  // had made moot.)
  const auto ticks = Ticks();
  ASSERT_EQ(ticks.count(p), 1u) << "no tick record on state partition " << p;
  ASSERT_GE(ticks.at(p).back().watermark_ms, deadline_ms);
  for (const ChangelogTick& tick : ticks.at(p)) {
    EXPECT_EQ(tick.next_events_offset, reader_->End(config_.topics.events, p));
    EXPECT_EQ(tick.next_acks_offset, reader_->End(config_.topics.acks, p));
  }
  EXPECT_EQ(ticks.size(), 1u) << "a partition with nothing due wrote a tick record";
  EXPECT_EQ(worker->Stop(), 0);
}

// The reprocessing: a tick record past the last meta record (here: no meta at all, as after a
// crash before the first commit) is applied at its position. The first pass escalated R when
// the clock passed its deadline, then read an ack stamped before the deadline (too late to stop
// the escalation). Read again without the tick, the ack comes first and the escalation never
// fires: the reprocessing would write a different history than the one consumers have.
TEST_F(LiveTicksTest, AReprocessingAppliesTheTicksOfTheFirstPassAtTheirPositions) {
  Configure("at_least_once");
  const std::string run = "tick-replay-r";
  int64_t deadline_ms = 0;
  SendEvents(OldFailure(run, 60000, &deadline_ms));
  const int32_t p = PartitionOf(run);
  ASSERT_GE(p, 0);
  const int64_t events_end = reader_->End(config_.topics.events, p);
  const std::string ts = FormatRfc3339Ms(deadline_ms - 500);
  SendAcks({{run, "{\"type\":\"handoff_acknowledged\",\"run_id\":\"" + run +
                      "\",\"by\":\"oncall\",\"ts\":\"" + ts + "\"}"}});
  // The first pass's tick record: after R's events, before its ack, past the deadline.
  char errstr[512];
  rd_kafka_t* first =
      rd_kafka_new(RD_KAFKA_PRODUCER, ClientConf(broker_.bootstrap()), errstr, sizeof errstr);
  ASSERT_NE(first, nullptr) << errstr;
  const std::string writer = "first-pass-0123456789abcdef";
  const std::string tick = EncodeTick({events_end, 0, deadline_ms + 1});
  ASSERT_EQ(
      rd_kafka_producev(
          first, RD_KAFKA_V_TOPIC(config_.topics.state.c_str()), RD_KAFKA_V_PARTITION(p),
          RD_KAFKA_V_KEY(kTickKey.data(), kTickKey.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(tick.data()), tick.size()),
          RD_KAFKA_V_HEADER(kWriterHeader, writer.data(), static_cast<ssize_t>(writer.size())),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
      RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(rd_kafka_flush(first, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(first);

  auto worker = StartWorker();
  // Until a meta record of partition p covers R's input (its outputs have all landed then).
  bool committed = false;
  for (auto deadline = Clock::now() + kWait; !committed && Clock::now() < deadline;) {
    const auto offsets = CommittedOffsets().at(p);
    committed = offsets.first >= events_end && offsets.second >= 1;
    if (!committed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(committed);
  const std::vector<std::string> escalations = Escalations(run);
  EXPECT_EQ(escalations.size(), 1u)
      << "the tick was not applied between " << run << "'s events and its ack";
  for (const std::string& ce_id : escalations) EXPECT_TRUE(ce_id.starts_with(run + "#1/"));
  EXPECT_EQ(worker->Stop(), 0);
}

// A tick record beyond the end of the inputs (they lost records since it was written, or it is
// not this input's) cannot wait for its position: once the partition has caught up it is
// applied, with a warning, and the partition's clock goes on.
TEST_F(LiveTicksTest, ATickPastTheEndOfTheInputIsAppliedOnceCaughtUp) {
  Configure("at_least_once");
  const std::string run = "tick-beyond-r";
  int64_t deadline_ms = 0;
  SendEvents(OldFailure(run, 60000, &deadline_ms));
  const int32_t p = PartitionOf(run);
  ASSERT_GE(p, 0);
  const int64_t events_end = reader_->End(config_.topics.events, p);
  char errstr[512];
  rd_kafka_t* first =
      rd_kafka_new(RD_KAFKA_PRODUCER, ClientConf(broker_.bootstrap()), errstr, sizeof errstr);
  ASSERT_NE(first, nullptr) << errstr;
  const std::string tick = EncodeTick({events_end + 100, 0, deadline_ms + 1});
  ASSERT_EQ(
      rd_kafka_producev(first, RD_KAFKA_V_TOPIC(config_.topics.state.c_str()),
                        RD_KAFKA_V_PARTITION(p), RD_KAFKA_V_KEY(kTickKey.data(), kTickKey.size()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(tick.data()), tick.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
      RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(rd_kafka_flush(first, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(first);

  auto worker = StartWorker();
  std::vector<std::string> escalations;
  for (auto deadline = Clock::now() + kWait; escalations.empty() && Clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    escalations = Escalations(run);
  }
  EXPECT_EQ(escalations.size(), 1u) << "the tick past the end was never applied";
  EXPECT_EQ(worker->Stop(), 0);
}

// A worker stopped during its first group join (SIGTERM seconds after a start, as a rollout
// can send) must stop cleanly. librdkafka 2.0.2 asserts in rd_kafka_destroy of a
// cooperative-sticky consumer that has its JoinGroup response (assignor chosen) but no
// successful SyncGroup yet (assignor state never set; librdkafka issue 4312, fixed in 2.3.0):
// the chaos soak (tests/soak/chaos.py) saw `handoffd run` die of SIGABRT there instead of
// exiting 0. The SyncGroup after the first JoinGroup is answered 3 s late to hold the member in
// that window.
// Live mode counts events per partition and publishes the counts every wall-clock tick
// (Metrics::NewPartitionObserver): every event read shows in handoffd_events_total while the
// worker runs, once.
TEST_F(LiveFaultsTest, EveryEventReadIsCountedOnceInTheMetricsWhileTheWorkerRuns) {
  Configure("at_least_once");
  const std::vector<Input> events = runs_.Events("mc", 40, 0);
  auto worker = StartWorker();
  SendEvents(events);
  EXPECT_TRUE(WaitMetric("handoffd_events_total", static_cast<double>(events.size())));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a few more ticks
  EXPECT_EQ(MetricValue("handoffd_events_total"), static_cast<double>(events.size()));
  EXPECT_EQ(worker->Stop(), 0);
}

// The worker names its threads, so that `top -H`, `ps -L`, perf and gdb tell them apart: one
// per pipeline lane, the producer kicker (at_least_once) and the stall watch.
TEST_F(LiveFaultsTest, WorkerThreadsCarryTheirNames) {
  Configure("at_least_once", "100", {"kafka.pipeline_threads=3"});
  auto worker = StartWorker();
  std::set<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);
  }
  for (const char* want : {"hd-lane-0", "hd-lane-1", "hd-lane-2", "hd-kicker", "hd-stall-watch"}) {
    EXPECT_EQ(names.count(want), 1u) << want;
  }
  EXPECT_EQ(worker->Stop(), 0);
}

TEST_F(LiveFaultsTest, StopDuringTheFirstJoinExitsCleanly) {
  Configure("at_least_once");
  ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(
                broker_.cluster(), kBrokerId, kApiSyncGroup, 1, RD_KAFKA_RESP_ERR_NO_ERROR, 3000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  auto worker = std::make_unique<WorkerThread>(config_, broker_.bootstrap(), metrics_.get());
  // The SyncGroup request has reached the broker: the JoinGroup response is in.
  ASSERT_TRUE(WaitErrorsConsumed(kApiSyncGroup)) << "the member sent no SyncGroup";
  EXPECT_EQ(worker->Stop(), 0);
  worker.reset();  // destroys the Worker and its clients: librdkafka 2.0.2 aborted here
}

// A revocation that rd_kafka_consumer_close() serves after the group has terminated (a SIGTERM
// just as a cooperative rebalance revokes partitions; the chaos soak saw `handoffd run` die of
// SIGSEGV there under exactly_once) finds no group metadata: librdkafka 2.0.2 returns NULL for
// a closed consumer, and the worker destroyed it unchecked. The transaction commits without
// the offsets instead.
TEST_F(LiveFaultsTest, TransactionOfAClosedGroupConsumerCommitsWithoutOffsets) {
  char errstr[512];
  rd_kafka_conf_t* pconf = ClientConf(broker_.bootstrap());
  ASSERT_EQ(rd_kafka_conf_set(pconf, "transactional.id", "faults-closed", errstr, sizeof errstr),
            RD_KAFKA_CONF_OK);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, errstr, sizeof errstr);
  ASSERT_NE(producer, nullptr) << errstr;
  ASSERT_EQ(rd_kafka_init_transactions(producer, 20000), nullptr);
  ASSERT_EQ(rd_kafka_begin_transaction(producer), nullptr);
  rd_kafka_conf_t* cconf = ClientConf(broker_.bootstrap());
  ASSERT_EQ(rd_kafka_conf_set(cconf, "group.id", "faults-closed", errstr, sizeof errstr),
            RD_KAFKA_CONF_OK);
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, errstr, sizeof errstr);
  ASSERT_NE(consumer, nullptr) << errstr;
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_consumer_close(consumer);

  rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(offsets, "agent.events", 0)->offset = 1;
  bool skipped = false;
  rd_kafka_error_t* error = SendOffsetsToTransaction(producer, consumer, offsets, 5000, &skipped);
  EXPECT_EQ(error, nullptr) << rd_kafka_error_string(error);
  EXPECT_TRUE(skipped);
  EXPECT_EQ(rd_kafka_commit_transaction(producer, 20000), nullptr);
  rd_kafka_topic_partition_list_destroy(offsets);
  rd_kafka_destroy(consumer);
  rd_kafka_destroy(producer);
}

// A group member that keeps its partitions through cooperative rebalances (members joining and
// leaving) must still receive every record of them. librdkafka 2.0.2 pauses and resumes the
// assignment around each rebalance; rd_kafka_consume_batch_queue() then dropped records it had
// gathered before the pause's barrier while their partition's position moved past them, and
// they were never delivered (librdkafka PR 4208): the chaos soak saw workers lose events on
// partitions they kept. ConsumeGroupRecords reads one record per call; every offset must come.
TEST_F(LiveFaultsTest, GroupRecordsAreNotSkippedAcrossCooperativeRebalances) {
  auto consumer_conf = [&](const char* client) {
    char errstr[512];
    rd_kafka_conf_t* conf = ClientConf(broker_.bootstrap());
    for (auto [k, v] : std::initializer_list<std::pair<const char*, const char*>>{
             {"group.id", "gap-test"},
             {"partition.assignment.strategy", "cooperative-sticky"},
             {"session.timeout.ms", "3000"},
             {"heartbeat.interval.ms", "200"},
             {"auto.offset.reset", "earliest"},
             {"enable.auto.commit", "false"},
             {"fetch.wait.max.ms", "5"},
             {"client.id", client}}) {
      EXPECT_EQ(rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr), RD_KAFKA_CONF_OK) << k;
    }
    // Incremental assignment as the worker does it.
    rd_kafka_conf_set_rebalance_cb(conf, [](rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                            rd_kafka_topic_partition_list_t* parts, void*) {
      rd_kafka_error_t* e = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS
                                ? rd_kafka_incremental_assign(rk, parts)
                                : rd_kafka_incremental_unassign(rk, parts);
      if (e != nullptr) rd_kafka_error_destroy(e);
    });
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    EXPECT_NE(rk, nullptr) << errstr;
    rd_kafka_poll_set_consumer(rk);
    return rk;
  };
  auto subscribe = [](rd_kafka_t* rk, const std::string& topic) {
    rd_kafka_topic_partition_list_t* t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, topic.c_str(), RD_KAFKA_PARTITION_UA);
    EXPECT_EQ(rd_kafka_subscribe(rk, t), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(t);
  };
  rd_kafka_t* member = consumer_conf("gap-member");
  subscribe(member, config_.topics.events);
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(member);
  std::map<int32_t, int64_t> next;  // per partition, the next offset expected
  int received = 0;
  int gaps = 0;
  // As a caught-up worker reads: calls that wait for a trickle of records.
  auto read_some = [&](int timeout_ms) {
    rd_kafka_message_t* batch[1000];
    const size_t n = ConsumeGroupRecords(queue, timeout_ms, batch, 1000);
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = batch[i];
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        auto [it, fresh] = next.try_emplace(m->partition, 0);
        if (m->offset != it->second) ++gaps;
        it->second = m->offset + 1;
        ++received;
      }
      rd_kafka_message_destroy(m);
    }
  };
  // A record every millisecond or so, all along.
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::thread trickle([&] {
    char errstr[512];
    rd_kafka_t* p =
        rd_kafka_new(RD_KAFKA_PRODUCER, ClientConf(broker_.bootstrap()), errstr, sizeof errstr);
    for (int i = 0; !stop.load(); ++i) {
      const std::string key = "k" + std::to_string(i % 16);
      if (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(config_.topics.events.c_str()),
                            RD_KAFKA_V_KEY(key.data(), key.size()),
                            RD_KAFKA_V_VALUE(const_cast<char*>("x"), 1),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++sent;
      }
      rd_kafka_poll(p, 0);
      std::this_thread::sleep_for(std::chrono::microseconds(700));
    }
    rd_kafka_flush(p, 10000);
    rd_kafka_destroy(p);
  });
  const auto until = Clock::now() + std::chrono::seconds(60);
  while (received == 0 && Clock::now() < until) read_some(50);  // joined and assigned
  // A second member (another topic, so no partition moves) joins and leaves three times: each
  // time librdkafka pauses and resumes the member's partitions.
  for (int cycle = 0; cycle < 3; ++cycle) {
    rd_kafka_t* other = consumer_conf("gap-other");
    subscribe(other, config_.topics.audit);
    // Until it holds its assignment (librdkafka 2.0.2 aborts destroying a member before that).
    for (bool assigned = false; !assigned && Clock::now() < until;) {
      read_some(50);
      if (rd_kafka_message_t* m = rd_kafka_consumer_poll(other, 0)) rd_kafka_message_destroy(m);
      rd_kafka_topic_partition_list_t* a = nullptr;
      if (rd_kafka_assignment(other, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        assigned = a->cnt > 0;
        rd_kafka_topic_partition_list_destroy(a);
      }
    }
    rd_kafka_consumer_close(other);
    rd_kafka_destroy(other);
    for (auto t0 = Clock::now(); Clock::now() - t0 < std::chrono::milliseconds(1000);) {
      read_some(50);
    }
  }
  stop = true;
  trickle.join();
  while (received < sent.load() && Clock::now() < until) read_some(50);
  EXPECT_EQ(gaps, 0) << "records skipped within a partition";
  EXPECT_EQ(received, sent.load());
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(member);
  rd_kafka_destroy(member);
}

class LiveFaultsLostTest : public LiveFaultsTest {
 protected:
  // Drops the member from the group (its next Heartbeat is answered with `error`) while input
  // is being processed; the worker must rejoin and go on without a lost or different output.
  void LoseMemberWhileProcessing(const char* guarantee, rd_kafka_resp_err_t error) {
    // Batches of a second: the member is dropped with uncommitted work in hand.
    Configure(guarantee, "1000");
    auto worker = StartWorker();
    SendEvents(runs_.Events("lost-a", 100, 2));
    ASSERT_TRUE(WaitCommitted());

    const bool exactly_once = std::string(guarantee) == "exactly_once";
    std::vector<Input> events = runs_.Events("lost-b", 400, 3);
    size_t sent = 0;
    auto send_slice = [&] {
      size_t n = std::min<size_t>(30, events.size() - sent);
      SendEvents({events.begin() + static_cast<std::ptrdiff_t>(sent),
                  events.begin() + static_cast<std::ptrdiff_t>(sent + n)});
      sent += n;
    };
    if (exactly_once) {
      // The member is dropped at its next heartbeat, within the 1 s transaction: the worker
      // holds the transaction's outputs until the commit (KafkaOutputSink::set_hold_outputs),
      // and the abort drops them; their input is processed again after the rejoin.
      ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(broker_.cluster(), kBrokerId,
                                                             kApiHeartbeat, 1, error, 0),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    } else {
      // Produce requests are answered 3 s late (the worker's and this test's alike) and the
      // member is dropped at its second heartbeat from now: the batch the worker closes over
      // the first slice is still held (outputs unacknowledged) then, and Revoke drops its
      // changelog. (Not observable with one worker: its next batch waits for the held one.)
      for (int i = 0; i < 4; ++i) {
        rd_kafka_mock_broker_push_request_error_rtts(broker_.cluster(), kBrokerId, kApiProduce, 1,
                                                     RD_KAFKA_RESP_ERR_NO_ERROR, 3000);
      }
      ASSERT_EQ(
          rd_kafka_mock_broker_push_request_error_rtts(broker_.cluster(), kBrokerId, kApiHeartbeat,
                                                       2, RD_KAFKA_RESP_ERR_NO_ERROR, 0, error, 0),
          RD_KAFKA_RESP_ERR_NO_ERROR);
      send_slice();
    }
    // Input keeps arriving until (and a little after) the heartbeat that fails.
    for (int after = 0; sent < events.size() && after < 5;) {
      send_slice();
      if (PendingErrors(kApiHeartbeat) == 0) ++after;
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    ASSERT_EQ(PendingErrors(kApiHeartbeat), 0u) << "the member was not dropped";
    SendEvents({events.begin() + static_cast<std::ptrdiff_t>(sent), events.end()});
    // Restored on the first assignment and again after rejoining.
    EXPECT_TRUE(WaitMetric("handoffd_restore_duration_seconds", 2 * kPartitions));
    ASSERT_TRUE(worker->WaitReady());
    ASSERT_TRUE(WaitCommitted());

    // Outputs of the lost batch that reached the topics are there twice, identical.
    const int duplicates = AckFailedRunsAndExpectReplayOutputs();
    if (exactly_once) {
      // The aborted transaction's outputs never reached the broker (held until a commit that
      // never came, then dropped by the abort), so not even the embedded broker, which shows
      // aborted records, has a second copy. Produced in the next transaction instead, they would
      // have been there twice, beside their copies from the input processed again.
      EXPECT_EQ(duplicates, 0);
    }
    // Losing the partitions is neither a commit nor a delivery failure (purged records of the
    // aborted transaction included).
    EXPECT_EQ(MetricValue("handoffd_commit_failures_total"), 0);
    EXPECT_EQ(MetricValue("handoffd_delivery_failures_total"), 0);
    EXPECT_EQ(worker->Stop(), 0);
  }
};

TEST_F(LiveFaultsLostTest,
       ExactlyOnceAbortsTheOpenTransactionOnUnknownMemberAndRejoinsWithoutLoss) {
  LoseMemberWhileProcessing("exactly_once", RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID);
}

TEST_F(LiveFaultsLostTest, AtLeastOnceLosesPartitionsOnIllegalGenerationAndRejoinsWithoutLoss) {
  LoseMemberWhileProcessing("at_least_once", RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION);
}

// The broker goes away for longer than the session timeout (a broker restart, a network cut)
// while the worker has input in hand: every connection is closed and new ones are refused. The
// worker must ride it out without exiting: rejoin the group when the broker is back, restore,
// and leave every output present, none different.
//
// Commits time out after 1 s, well within the 5 s outage, and under exactly_once the outage
// starts while a commit waits on the transaction coordinator (one request answered 3 s late), so
// librdkafka's calls time out while the broker is down and must be resumed ("retry call to
// resume"), not given up on:
//  - EndTxn late: commit_transaction times out; calling abort then fails with "Conflicting
//    commit_transaction API call is already in progress" (the worker exited 1);
//  - AddPartitionsToTxn late: the outputs cannot be sent, the flush times out, and the abort
//    times out too; beginning the next transaction then failed with "Conflicting
//    abort_transaction API call" (the worker exited 1, seen in CI under ThreadSanitizer).
struct OutageCase {
  const char* guarantee;
  int16_t late_api;  // -1: none
};
void PrintTo(const OutageCase& c, std::ostream* os) {
  *os << c.guarantee << ", late API key " << c.late_api;
}
class LiveFaultsOutageTest : public LiveFaultsTest,
                             public ::testing::WithParamInterface<OutageCase> {};

TEST_P(LiveFaultsOutageTest, ABrokerOutageIsRiddenOutWithoutLoss) {
  // Reconnecting at most 1 s apart (librdkafka's default backs off up to 10 s) keeps the time the
  // clients need to notice the broker is back, which the test only waits out, short.
  Configure(GetParam().guarantee, "100",
            {"kafka.shutdown_timeout_ms=1000", "kafka.properties.reconnect.backoff.max.ms=1000"});
  auto worker = StartWorker();
  SendEvents(runs_.Events("down-a", 100, 2));
  ASSERT_TRUE(WaitCommitted());

  if (GetParam().late_api >= 0) {
    ASSERT_EQ(
        rd_kafka_mock_broker_push_request_error_rtts(
            broker_.cluster(), kBrokerId, GetParam().late_api, 1, RD_KAFKA_RESP_ERR_NO_ERROR, 3000),
        RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  SendEvents(runs_.Events("down-b", 200, 3));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(rd_kafka_mock_broker_set_down(broker_.cluster(), kBrokerId),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  std::this_thread::sleep_for(std::chrono::seconds(5));  // the session timeout is 3 s
  ASSERT_EQ(rd_kafka_mock_broker_set_up(broker_.cluster(), kBrokerId), RD_KAFKA_RESP_ERR_NO_ERROR);

  SendEvents(runs_.Events("down-c", 60, 2));
  ASSERT_TRUE(WaitCommitted());
  // The outage outlasted the session: the partitions were lost and restored again. Operators
  // see it counted by error name.
  EXPECT_TRUE(WaitMetric("handoffd_restore_duration_seconds", 2 * kPartitions));
  EXPECT_GE(MetricValue("handoffd_kafka_errors_total"), 1);
  AckFailedRunsAndExpectReplayOutputs();
  EXPECT_EQ(worker->Stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Guarantees, LiveFaultsOutageTest,
                         ::testing::Values(OutageCase{"at_least_once", -1},
                                           OutageCase{"exactly_once", kApiEndTxn},
                                           OutageCase{"exactly_once", kApiAddPartitionsToTxn}),
                         [](const ::testing::TestParamInfo<OutageCase>& param_info) {
                           std::string name = param_info.param.guarantee;
                           if (param_info.param.late_api == kApiEndTxn) name += "_EndTxnLate";
                           if (param_info.param.late_api == kApiAddPartitionsToTxn) {
                             name += "_AddPartitionsToTxnLate";
                           }
                           return name;
                         });

}  // namespace
}  // namespace handoffd

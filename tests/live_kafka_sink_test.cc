// ProducerKicker: records a long linger.ms would hold go out on a kick, and their delivery
// reports are served by the kicker's thread. KafkaOutputSink: records over the producer's
// message.max.bytes never fail a batch; held outputs (exactly_once) reach librdkafka only when
// released, in order, and not at all once dropped.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.h"
#include "metrics/metrics.h"
#include "metrics/metrics_server.h"
#include "processor/live/embedded_broker.h"
#include "processor/live/kafka_sink.h"

namespace handoffd {
namespace {

std::atomic<int> g_delivered{0};

void CountDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) g_delivered.fetch_add(1);
}

TEST(LiveProducerKicker, KickSendsWhatLingerWouldHoldBack) {
  EmbeddedBroker broker;
  std::string error;
  ASSERT_TRUE(broker.Start({"kicked"}, 4, &error)) << error;
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (auto [key, value] : {std::pair{"bootstrap.servers", broker.bootstrap().c_str()},
                            std::pair{"enable.idempotence", "true"},
                            std::pair{"linger.ms", "60000"}, std::pair{"log_level", "0"}}) {
    ASSERT_EQ(rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr), RD_KAFKA_CONF_OK);
  }
  rd_kafka_conf_set_dr_msg_cb(conf, CountDelivery);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  ASSERT_NE(producer, nullptr) << errstr;
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> guard(producer, rd_kafka_destroy);
  // A producer that is still connecting (and getting its idempotent producer id) cannot send
  // during a kick's short flush; its records then wait for linger.ms: in the worker at most
  // 100 ms, here the minute. One record flushed first makes it ready (on a loaded machine,
  // 500 ms of polling was not always enough).
  std::string warm_up = "warm-up";
  ASSERT_EQ(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("kicked"),
                              RD_KAFKA_V_VALUE(warm_up.data(), warm_up.size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(rd_kafka_flush(producer, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
  g_delivered = 0;
  constexpr int kRecords = 40;
  for (int i = 0; i < kRecords; ++i) {
    std::string key = "run-" + std::to_string(i);
    ASSERT_EQ(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("kicked"),
                                RD_KAFKA_V_KEY(key.data(), key.size()),
                                RD_KAFKA_V_VALUE(key.data(), key.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  // Without a kick the records stay queued for the minute of linger.ms.
  rd_kafka_poll(producer, 500);
  EXPECT_EQ(g_delivered.load(), 0);

  {
    ProducerKicker kicker(producer);
    // Nobody polls here: the kicker's flush serves the delivery reports. A kick bypasses
    // linger.ms only while its flush lasts (50 ms): on a starved machine the producer's thread
    // may not run in that time, so kick again every second (without any kick nothing goes out
    // for a minute).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    auto next_kick = std::chrono::steady_clock::now();
    while (g_delivered.load() < kRecords && std::chrono::steady_clock::now() < deadline) {
      if (std::chrono::steady_clock::now() >= next_kick) {
        kicker.Kick();
        next_kick += std::chrono::seconds(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(g_delivered.load(), kRecords);
    EXPECT_GE(kicker.flushes(), 1);
  }  // joins the thread
  EXPECT_EQ(rd_kafka_outq_len(producer), 0);
}

using ClientPtr = std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)>;

ClientPtr NewClient(rd_kafka_type_t type, const std::string& bootstrap,
                    std::vector<std::pair<std::string, std::string>> settings) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  settings.insert(settings.begin(), {{"bootstrap.servers", bootstrap}, {"log_level", "0"}});
  for (const auto& [key, value] : settings) {
    EXPECT_EQ(rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr),
              RD_KAFKA_CONF_OK)
        << key;
  }
  return ClientPtr(rd_kafka_new(type, conf, errstr, sizeof errstr), rd_kafka_destroy);
}

struct Received {
  bool has_value = false;
  size_t value_size = 0;
  std::string value;
  std::map<std::string, std::string> headers;
};

// Every record of partition 0 of `topic`, read from the beginning for up to `seconds`.
std::vector<Received> ReadAll(const std::string& bootstrap, const std::string& topic, size_t want,
                              int seconds) {
  ClientPtr consumer = NewClient(RD_KAFKA_CONSUMER, bootstrap, {{"group.id", "sink-test"}});
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(consumer.get(), parts);
  rd_kafka_topic_partition_list_destroy(parts);
  std::vector<Received> out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* msg = rd_kafka_consumer_poll(consumer.get(), 100);
    if (msg == nullptr) continue;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      Received r;
      r.has_value = msg->payload != nullptr;
      r.value_size = msg->len;
      if (msg->payload != nullptr) r.value.assign(static_cast<const char*>(msg->payload), msg->len);
      rd_kafka_headers_t* headers = nullptr;
      if (rd_kafka_message_headers(msg, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* value;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          r.headers[name] = std::string(static_cast<const char*>(value), size);
        }
      }
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(msg);
  }
  rd_kafka_consumer_close(consumer.get());
  return out;
}

// An input of 1.2 MB (the cluster took it) cannot be dead-lettered whole by a producer with
// librdkafka's default message.max.bytes (1,000,000). Before, the produce call failed, the batch
// was never committed, and every restart met the same input again. Now the DLQ record goes out
// without the value, saying how large it was; a state record that does not fit is not written.
TEST(LiveKafkaSink, RecordsOverMessageMaxBytesDoNotFailTheBatch) {
  Config config = DefaultConfig();
  EmbeddedBroker broker;
  std::string error;
  ASSERT_TRUE(broker.Start({config.topics.dlq, config.topics.state}, 1, &error)) << error;
  ClientPtr producer = NewClient(RD_KAFKA_PRODUCER, broker.bootstrap(), {});
  ASSERT_NE(producer, nullptr);
  KafkaOutputSink sink(producer.get(), config, "handoffd/test", nullptr);

  const std::string big(1200000, 'x');
  const std::string small = "{not json";
  for (const std::string* value : {&big, &small}) {
    OutputRecord record{};
    record.role = TopicRole::kDlq;
    record.key = "run-1";
    record.value = *value;
    record.ce_id = "agent.events/0/7";
    record.ce_type = "dev.handoffd.dlq.v1";
    record.error = "oversized";
    record.source = "agent.events/0/7";
    sink.Emit(record);
  }
  sink.PutState(0, "run-1", big);
  sink.PutState(0, "run-2", "state");
  EXPECT_EQ(sink.TakeFailures(), 0);
  ASSERT_EQ(rd_kafka_flush(producer.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

  std::vector<Received> dlq = ReadAll(broker.bootstrap(), config.topics.dlq, 2, 10);
  ASSERT_EQ(dlq.size(), 2u);
  EXPECT_FALSE(dlq[0].has_value);
  EXPECT_EQ(dlq[0].headers["handoffd-original-bytes"], "1200000");
  EXPECT_EQ(dlq[0].headers["handoffd-error"], "oversized");
  EXPECT_EQ(dlq[0].headers["handoffd-source"], "agent.events/0/7");
  EXPECT_TRUE(dlq[1].has_value);
  EXPECT_EQ(dlq[1].value_size, small.size());
  EXPECT_EQ(dlq[1].headers.count("handoffd-original-bytes"), 0u);

  std::vector<Received> state = ReadAll(broker.bootstrap(), config.topics.state, 2, 3);
  ASSERT_EQ(state.size(), 1u);  // run-2 only
  EXPECT_EQ(state[0].value_size, 5u);
}

// The bound follows the producer's message.max.bytes (kafka.properties): raised, the same input
// is dead-lettered whole.
TEST(LiveKafkaSink, ARaisedMessageMaxBytesKeepsTheDeadLetterWhole) {
  Config config = DefaultConfig();
  EmbeddedBroker broker;
  std::string error;
  ASSERT_TRUE(broker.Start({config.topics.dlq}, 1, &error)) << error;
  ClientPtr producer =
      NewClient(RD_KAFKA_PRODUCER, broker.bootstrap(), {{"message.max.bytes", "2000000"}});
  ASSERT_NE(producer, nullptr);
  KafkaOutputSink sink(producer.get(), config, "handoffd/test", nullptr);
  const std::string big(1200000, 'x');
  OutputRecord record{};
  record.role = TopicRole::kDlq;
  record.value = big;
  record.ce_id = record.source = "agent.events/0/8";
  record.ce_type = "dev.handoffd.dlq.v1";
  record.error = "oversized";
  sink.Emit(record);
  EXPECT_EQ(sink.TakeFailures(), 0);
  ASSERT_EQ(rd_kafka_flush(producer.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  std::vector<Received> dlq = ReadAll(broker.bootstrap(), config.topics.dlq, 1, 10);
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].value_size, big.size());
}

// exactly_once holds a transaction's outputs and hands them to librdkafka at the commit (one
// partition registration per transaction instead of one per output trickling in). Held outputs
// must go out in the order they were made, carry their headers, never go out after a drop (an
// aborted transaction's input is processed again), and never pile up without bound.
TEST(LiveKafkaSink, HeldOutputsGoOutInOrderWhenReleasedAndNeverAfterADrop) {
  Config config = DefaultConfig();
  EmbeddedBroker broker;
  std::string error;
  ASSERT_TRUE(broker.Start({config.topics.owner_queue}, 1, &error)) << error;
  ClientPtr producer = NewClient(RD_KAFKA_PRODUCER, broker.bootstrap(), {{"linger.ms", "0"}});
  ASSERT_NE(producer, nullptr);
  prometheus::Registry registry;
  Metrics metrics(registry, config);
  // handoffd_records_produced_total of the owner queue, as a scrape shows it.
  auto produced_metric = [&] {
    const std::string text = SerializeText(registry);
    const std::string name =
        "handoffd_records_produced_total{topic=\"" + config.topics.owner_queue + "\"} ";
    const size_t at = text.find(name);
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size()));
  };
  KafkaOutputSink sink(producer.get(), config, "handoffd/test", &metrics);
  sink.set_hold_outputs(true);
  auto emit = [&](const std::string& value) {
    OutputRecord record{};
    record.role = TopicRole::kOwnerQueue;
    record.key = "run-1";
    record.value = value;
    const std::string ce_id = "pkt-1/" + value;
    record.ce_id = ce_id;
    record.ce_type = "dev.handoffd.packet.v1";
    record.time_ms = 1700000000000;
    sink.Emit(record);
  };
  for (const char* v : {"a", "b", "c"}) emit(v);
  EXPECT_EQ(sink.held_outputs(), 3u);
  EXPECT_EQ(sink.produced(), 3);  // counted when made: the worker marks its partition changed
  EXPECT_EQ(rd_kafka_outq_len(producer.get()), 0);  // librdkafka has none of them yet
  EXPECT_EQ(produced_metric(), 0);                  // nor does the metric count them
  sink.ReleaseHeldOutputs();
  EXPECT_EQ(sink.held_outputs(), 0u);
  EXPECT_EQ(sink.produced(), 3);
  EXPECT_EQ(produced_metric(), 3);
  for (const char* v : {"dropped-1", "dropped-2"}) emit(v);
  sink.DropHeldOutputs();
  emit("d");
  sink.ReleaseHeldOutputs();
  EXPECT_EQ(produced_metric(), 4);  // the dropped two were never produced
  EXPECT_EQ(sink.TakeFailures(), 0);
  ASSERT_EQ(rd_kafka_flush(producer.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

  std::vector<Received> out = ReadAll(broker.bootstrap(), config.topics.owner_queue, 5, 5);
  ASSERT_EQ(out.size(), 4u);
  std::vector<std::string> values;
  for (const Received& r : out) values.push_back(r.value);
  EXPECT_EQ(values, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(out[3].headers["ce_id"], "pkt-1/d");
  EXPECT_EQ(out[3].headers["content-type"], "application/json");
  EXPECT_EQ(out[3].headers["ce_time"], "2023-11-14T22:13:20.000Z");

  // A sink holding kMaxHeldOutputs hands them over at once, on the thread that made the last.
  for (size_t i = 0; i < KafkaOutputSink::kMaxHeldOutputs; ++i) emit("x");
  EXPECT_EQ(sink.held_outputs(), 0u);
  EXPECT_GT(rd_kafka_outq_len(producer.get()), 0);
  ASSERT_EQ(rd_kafka_flush(producer.get(), 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(sink.TakeFailures(), 0);
}

}  // namespace
}  // namespace handoffd

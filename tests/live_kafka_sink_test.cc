// ProducerKicker: records a long linger.ms would hold go out on a kick, and their delivery
// reports are served by the kicker's thread.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

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

}  // namespace
}  // namespace handoffd

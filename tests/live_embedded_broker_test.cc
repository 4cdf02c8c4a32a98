// The embedded broker (librdkafka's mock cluster): every requested topic exists with the
// requested partitions, also for many topics, where librdkafka 2.0.2's lost mock wake-ups used
// to stall start-up for seconds and trip the "hung creating topics" watchdog (which ends the
// process, so this test fails by dying).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "processor/live/embedded_broker.h"

namespace handoffd {
namespace {

// topic -> partition count, from a metadata request of a separate client over TCP.
std::map<std::string, int> TopicsOf(const std::string& bootstrap) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> guard(rk, rd_kafka_destroy);
  const rd_kafka_metadata_t* md = nullptr;
  std::map<std::string, int> topics;
  if (rd_kafka_metadata(rk, 1, nullptr, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) return topics;
  for (int i = 0; i < md->topic_cnt; ++i) {
    topics[md->topics[i].topic] = md->topics[i].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  return topics;
}

TEST(LiveEmbeddedBroker, CreatesEveryTopicWithTheRequestedPartitions) {
  std::vector<std::string> topics = AllTopics(DefaultConfig().topics);
  EmbeddedBroker broker;
  std::string error;
  ASSERT_TRUE(broker.Start(topics, 6, &error)) << error;
  EXPECT_EQ(broker.bootstrap().rfind("127.0.0.1:", 0), 0u) << broker.bootstrap();
  std::map<std::string, int> seen = TopicsOf(broker.bootstrap());
  EXPECT_EQ(seen.size(), topics.size());
  for (const std::string& topic : topics) EXPECT_EQ(seen[topic], 6) << topic;
}

// 400 creations: with one lost wake-up in four costing 1 s each, the old code needed about 100 s
// and its 15 s watchdog ended the process.
TEST(LiveEmbeddedBroker, ManyTopicsAreCreatedWithoutStalling) {
  std::vector<std::string> topics;
  for (int i = 0; i < 400; ++i) topics.push_back("bench.state." + std::to_string(i));
  EmbeddedBroker broker;
  std::string error;
  ASSERT_TRUE(broker.Start(topics, 2, &error)) << error;
  std::map<std::string, int> seen = TopicsOf(broker.bootstrap());
  EXPECT_EQ(seen.size(), topics.size());
  for (const std::string& topic : topics) EXPECT_EQ(seen[topic], 2) << topic;
}

TEST(LiveEmbeddedBroker, SeveralBrokersStartAndStopInOneProcess) {
  for (int round = 0; round < 5; ++round) {
    EmbeddedBroker broker;
    std::string error;
    ASSERT_TRUE(broker.Start({"a", "b", "c"}, 3, &error)) << error;
    EXPECT_EQ(TopicsOf(broker.bootstrap()).size(), 3u) << "round " << round;
  }
}

}  // namespace
}  // namespace handoffd

// Topic administration: the co-partitioning check the worker runs at start, against the
// embedded broker (the mock auto-creates an unknown topic, with its own default partition count,
// when a producer asks for its metadata: the way a state topic ends up with the wrong count).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "processor/live/embedded_broker.h"
#include "processor/live/topic_admin.h"

namespace handoffd {
namespace {

class LiveTopicAdmin : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = DefaultConfig();
    std::string error;
    ASSERT_TRUE(broker_.Start(AllTopics(config_.topics), 8, &error)) << error;
  }

  // Has the cluster auto-create `topic` with its default partition count; returns that count.
  int AutoCreate(const std::string& topic) {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", broker_.bootstrap().c_str(), errstr,
                      sizeof errstr);
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> guard(rk, rd_kafka_destroy);
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    int count = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        count = md->topics[0].partition_cnt;
      }
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return count;
  }

  Config config_;
  EmbeddedBroker broker_;
};

TEST_F(LiveTopicAdmin, TopicsCreatedTogetherAreCoPartitioned) {
  CoPartitioning counts;
  std::string error;
  ASSERT_TRUE(ReadCoPartitioning(config_, broker_.bootstrap(), 10000, 0, &counts, &error)) << error;
  EXPECT_EQ(counts.events, 8);
  EXPECT_EQ(counts.acks, 8);
  EXPECT_EQ(counts.state, 8);
  EXPECT_TRUE(counts.ok());
}

TEST_F(LiveTopicAdmin, AutoCreatedStateTopicWithOtherCountIsReported) {
  int auto_count = AutoCreate("auto.created.state");
  ASSERT_GT(auto_count, 0);
  ASSERT_NE(auto_count, 8) << "the mock's default partition count must differ for this test";
  config_.topics.state = "auto.created.state";
  CoPartitioning counts;
  std::string error;
  ASSERT_TRUE(ReadCoPartitioning(config_, broker_.bootstrap(), 10000, 0, &counts, &error)) << error;
  EXPECT_EQ(counts.events, 8);
  EXPECT_EQ(counts.acks, 8);
  EXPECT_EQ(counts.state, auto_count);
  EXPECT_FALSE(counts.ok());
}

TEST_F(LiveTopicAdmin, MissingTopicIsReportedAndNotCreated) {
  config_.topics.acks = "never.created.acks";
  CoPartitioning counts;
  std::string error;
  ASSERT_TRUE(ReadCoPartitioning(config_, broker_.bootstrap(), 10000, 0, &counts, &error)) << error;
  EXPECT_EQ(counts.acks, CoPartitioning::kMissing);
  EXPECT_EQ(counts.events, 8);
  EXPECT_FALSE(counts.ok());
  // Asking did not auto-create it.
  ASSERT_TRUE(ReadCoPartitioning(config_, broker_.bootstrap(), 10000, 0, &counts, &error)) << error;
  EXPECT_EQ(counts.acks, CoPartitioning::kMissing);
}

// `handoffd run` against a `handoffd broker` by address: the mock has no controller, so
// CreateTopics would only time out. The embedded broker is recognised by its cluster id and a
// missing topic is named in the error instead.
TEST_F(LiveTopicAdmin, EmbeddedBrokerIsRecognisedAndItsMissingTopicsNamed) {
  std::string error;
  bool embedded = false;
  EXPECT_TRUE(CreateMissingTopics(config_, broker_.bootstrap(), 2000, &error, &embedded)) << error;
  EXPECT_TRUE(embedded);

  config_.topics.state = "never.created.state";
  embedded = false;
  EXPECT_FALSE(CreateMissingTopics(config_, broker_.bootstrap(), 2000, &error, &embedded));
  EXPECT_TRUE(embedded);
  EXPECT_NE(error.find("embedded broker cannot create topics"), std::string::npos) << error;
  EXPECT_NE(error.find("never.created.state"), std::string::npos) << error;
  CoPartitioning counts;
  ASSERT_TRUE(ReadCoPartitioning(config_, broker_.bootstrap(), 10000, 0, &counts, &error)) << error;
  EXPECT_EQ(counts.state, CoPartitioning::kMissing);
}

TEST(LiveTopicConfigs, OnlyTheStateTopicIsCompactedAndItsOrphansWaitADay) {
  Config config = DefaultConfig();
  config.topics.state = "team-a.state";
  using Configs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(TopicConfigs(config, "team-a.state"),
            (Configs{{"cleanup.policy", "compact"}, {"min.compaction.lag.ms", "86400000"}}));
  EXPECT_EQ(TopicConfigs(config, "handoffd.state"), Configs{});  // not this config's state topic
  for (const std::string& topic : AllTopics(config.topics)) {
    if (topic != config.topics.state) {
      EXPECT_EQ(TopicConfigs(config, topic), Configs{}) << topic;
    }
  }
}

// An existing events topic of 12 partitions with kafka.partitions 4: the missing acks and state
// topics are made with 12, or the worker would stop with "topics not co-partitioned".
TEST(LiveTopicPlan, MissingAcksAndStateTakeTheExistingEventsCount) {
  Config config = DefaultConfig();
  config.kafka.partitions = 4;
  const std::vector<TopicToCreate> plan =
      PlanMissingTopics(config, {{config.topics.events, 12}, {config.topics.page, 4}});
  ASSERT_EQ(plan.size(), AllTopics(config.topics).size() - 2);
  for (const TopicToCreate& t : plan) {
    EXPECT_NE(t.topic, config.topics.events);
    EXPECT_NE(t.topic, config.topics.page);
    if (t.topic == config.topics.acks || t.topic == config.topics.state) {
      EXPECT_EQ(t.partitions, 12) << t.topic;
      EXPECT_EQ(t.source, "events") << t.topic;
    } else {
      EXPECT_EQ(t.partitions, 4) << t.topic;  // outputs and DLQ keep kafka.partitions
      EXPECT_EQ(t.source, "config") << t.topic;
    }
  }
}

TEST(LiveTopicPlan, WithoutAnEventsTopicEverythingTakesKafkaPartitions) {
  Config config = DefaultConfig();
  config.kafka.partitions = 6;
  const std::vector<TopicToCreate> plan = PlanMissingTopics(config, {{config.topics.acks, 3}});
  ASSERT_EQ(plan.size(), AllTopics(config.topics).size() - 1);
  for (const TopicToCreate& t : plan) {
    EXPECT_EQ(t.partitions, 6) << t.topic;
    EXPECT_EQ(t.source, "config") << t.topic;
  }
}

TEST(LiveTopicPlan, NothingIsPlannedWhenEveryTopicExists) {
  Config config = DefaultConfig();
  std::map<std::string, int32_t> existing;
  for (const std::string& topic : AllTopics(config.topics)) existing[topic] = 4;
  EXPECT_TRUE(PlanMissingTopics(config, existing).empty());
}

// What a cluster's DescribeConfigs gives for a topic nobody configured: Kafka's defaults.
std::map<std::string, std::string> KafkaDefaults() {
  return {{"cleanup.policy", "delete"},
          {"retention.ms", "604800000"},
          {"retention.bytes", "-1"},
          {"max.message.bytes", "1048588"}};
}

// The problems TopicConfigProblems finds, as "problem:key" strings.
std::vector<std::string> Found(const Config& config, const std::string& topic,
                               const std::map<std::string, std::string>& configs,
                               int64_t producer_max = 1000000) {
  std::vector<std::string> found;
  for (const TopicConfigProblem& p : TopicConfigProblems(config, topic, configs, producer_max)) {
    EXPECT_EQ(p.topic, topic);
    EXPECT_FALSE(p.effect.empty());
    EXPECT_EQ(p.value, configs.at(p.key));
    found.push_back(p.problem + ":" + p.key);
  }
  return found;
}

// A state topic someone made by hand with the cluster's defaults loses runs after 7 days: both
// problems are reported, naming the keys to change.
TEST(LiveTopicConfigProblems, StateTopicWithKafkaDefaultsIsNotCompactedAndLosesRuns) {
  Config config = DefaultConfig();
  EXPECT_EQ(
      Found(config, config.topics.state, KafkaDefaults()),
      (std::vector<std::string>{"not_compacted:cleanup.policy", "finite_retention:retention.ms"}));
}

TEST(LiveTopicConfigProblems, CompactedStateTopicHasNone) {
  Config config = DefaultConfig();
  auto configs = KafkaDefaults();
  configs["cleanup.policy"] = "compact";  // retention.ms then applies to nothing
  EXPECT_TRUE(Found(config, config.topics.state, configs).empty());
  configs["cleanup.policy"] = "compact,delete";
  configs["retention.ms"] = "-1";
  EXPECT_TRUE(Found(config, config.topics.state, configs).empty());
  configs["retention.bytes"] = "1073741824";  // deletes a partition's oldest records past 1 GiB
  EXPECT_EQ(Found(config, config.topics.state, configs),
            std::vector<std::string>{"finite_retention:retention.bytes"});
}

// Output topics are meant to age out; only their record size matters.
TEST(LiveTopicConfigProblems, OutputTopicsMayDeleteButMustTakeTheProducersBatches) {
  Config config = DefaultConfig();
  auto configs = KafkaDefaults();
  for (const std::string& topic :
       {config.topics.page, config.topics.escalations, config.topics.audit, config.topics.dlq}) {
    EXPECT_TRUE(Found(config, topic, configs).empty()) << topic;
  }
  configs["max.message.bytes"] = "524288";
  EXPECT_EQ(Found(config, config.topics.page, configs),
            std::vector<std::string>{"max_message_bytes:max.message.bytes"});
  // ... unless the producer's batches are no larger (kafka.properties.message.max.bytes).
  EXPECT_TRUE(Found(config, config.topics.page, configs, 524288).empty());
  const auto problems = TopicConfigProblems(config, config.topics.page, configs, 1000000);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].effect.find("message.max.bytes=1000000"), std::string::npos)
      << problems[0].effect;
}

// The worker does not produce to its inputs; a topic outside the config has no rules; a config
// the account may not read (absent from DescribeConfigs' answer) is not a problem.
TEST(LiveTopicConfigProblems, InputsUnknownTopicsAndUnreadKeysHaveNone) {
  Config config = DefaultConfig();
  auto small = KafkaDefaults();
  small["max.message.bytes"] = "1000";
  EXPECT_TRUE(Found(config, config.topics.events, small).empty());
  EXPECT_TRUE(Found(config, config.topics.acks, small).empty());
  EXPECT_TRUE(Found(config, "someone.else", small).empty());
  EXPECT_TRUE(Found(config, config.topics.state, {}).empty());
  EXPECT_EQ(ProducedTopics(config),
            (std::vector<std::string>{
                config.topics.page, config.topics.owner_queue, config.topics.tickets,
                config.topics.decisions, config.topics.pending, config.topics.escalations,
                config.topics.audit, config.topics.dlq, config.topics.state}));
}

// The embedded broker has no DescribeConfigs (it never answers): the check gives up after its
// timeout and says it could not read the configs, rather than reporting problems it did not see.
TEST_F(LiveTopicAdmin, TopicConfigsOfABrokerWithoutDescribeConfigsAreNotChecked) {
  std::vector<TopicConfigProblem> problems;
  std::string error;
  EXPECT_FALSE(CheckTopicConfigs(config_, broker_.bootstrap(), 1000, &problems, &error));
  EXPECT_NE(error.find("DescribeConfigs"), std::string::npos) << error;
  EXPECT_TRUE(problems.empty());
}

TEST(LiveClusterId, OnlyTheMockClusterIdIsTheEmbeddedBroker) {
  EXPECT_TRUE(IsEmbeddedClusterId("mockCluster1f0e5a0"));
  EXPECT_FALSE(IsEmbeddedClusterId("q1Sh-9_ISia_zwGINzRvyQ"));  // a Kafka cluster's base64 UUID
  EXPECT_FALSE(IsEmbeddedClusterId(""));
}

TEST_F(LiveTopicAdmin, UnreachableClusterIsAnError) {
  CoPartitioning counts;
  std::string error;
  // Port 1 on loopback: nothing listens there.
  EXPECT_FALSE(ReadCoPartitioning(config_, "127.0.0.1:1", 500, 0, &counts, &error));
  EXPECT_NE(error.find("metadata"), std::string::npos) << error;
}

}  // namespace
}  // namespace handoffd

// Pipeline checks that need the Kafka key: in live mode a valid record keyed by anything but its
// run_id is counted, because its producer spreads runs over partitions (contract section 1).
#include "processor/pipeline.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace handoffd {
namespace {

class NullSink : public OutputSink {
 public:
  void Emit(const OutputRecord&) override {}
};

class KeyObserver : public EngineObserver {
 public:
  void OnKeyMismatch(std::string_view topic) override { topics.emplace_back(topic); }
  std::vector<std::string> topics;
};

constexpr std::string_view kEvent =
    R"({"event_id":"e1","run_id":"run-7","type":"heartbeat","ts":"2026-03-02T02:00:00Z"})";
constexpr std::string_view kAck =
    R"({"type":"handoff_acknowledged","run_id":"run-7","ts":"2026-03-02T02:00:05Z"})";

TEST(PipelineKeys, ARecordNotKeyedByItsRunIdIsCountedAndStillProcessed) {
  Config config = DefaultConfig();
  KeyObserver observer;
  Pipeline pipeline(config, &observer);
  pipeline.set_check_keys(true);
  NullSink sink;
  EXPECT_TRUE(pipeline.Handle("run-7", kEvent, {"agent.events", 0, 1}, &sink));
  EXPECT_TRUE(observer.topics.empty());
  // A null key (the usual mistake: a producer that sets none) and a key of another field.
  EXPECT_TRUE(pipeline.Handle("", kEvent, {"agent.events", 0, 2}, &sink));
  EXPECT_TRUE(pipeline.Handle("tenant-3", kAck, {"handoff.acks", 0, 3}, &sink));
  EXPECT_EQ(observer.topics, (std::vector<std::string>{"agent.events", "handoff.acks"}));
  EXPECT_EQ(pipeline.engine().active_runs(), 1);  // processed as usual
  // Dead-lettered records are counted as invalid only.
  EXPECT_FALSE(pipeline.Handle("x", "{not json", {"agent.events", 0, 4}, &sink));
  EXPECT_EQ(observer.topics.size(), 2u);
}

TEST(PipelineKeys, ReplayHasNoKeysToCheck) {
  Config config = DefaultConfig();
  KeyObserver observer;
  Pipeline pipeline(config, &observer);
  NullSink sink;
  EXPECT_TRUE(pipeline.Handle("", kEvent, {"agent.events", 0, 0}, &sink));
  EXPECT_TRUE(observer.topics.empty());
}

}  // namespace
}  // namespace handoffd

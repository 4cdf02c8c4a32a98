// Pipeline checks that need the Kafka record: in live mode a valid record keyed by anything but
// its run_id is counted, because its producer spreads runs over partitions (contract section 1);
// an event time far ahead of the record's timestamp moves the watermark only so far; and one far
// behind it is dead-lettered.
#include "processor/pipeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/config.h"

namespace handoffd {
namespace {

class NullSink : public OutputSink {
 public:
  void Emit(const OutputRecord&) override {}
};

class RoleSink : public OutputSink {
 public:
  void Emit(const OutputRecord& r) override { roles.push_back(r.role); }
  int Count(TopicRole role) const {
    return static_cast<int>(std::count(roles.begin(), roles.end(), role));
  }
  std::vector<TopicRole> roles;
};

class KeyObserver : public EngineObserver {
 public:
  void OnKeyMismatch(std::string_view topic) override { topics.emplace_back(topic); }
  void OnEventAhead(std::string_view topic) override { ahead.emplace_back(topic); }
  void OnInvalidEvent(std::string_view reason) override { invalid.emplace_back(reason); }
  std::vector<std::string> topics;
  std::vector<std::string> ahead;
  std::vector<std::string> invalid;
};

class DlqSink : public OutputSink {
 public:
  void Emit(const OutputRecord& r) override {
    if (r.role == TopicRole::kDlq) errors.emplace_back(r.error);
  }
  std::vector<std::string> errors;
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

constexpr int64_t kT0 = 1772416800000;  // 2026-03-02T02:00:00Z
constexpr int64_t kDay = 86400000;

// A P3 packet (first response 4 h, expires in a day) on a run, then another run's event stamped
// a day ahead by a producer whose clock is wrong. Returns the records after that event.
RoleSink FutureEventAfterAnOpenPacket(Pipeline* pipeline, int64_t record_time_of_future_event) {
  NullSink ignore;
  const std::string t0 = std::to_string(kT0);
  pipeline->Handle("r1",
                   R"({"event_id":"e1","run_id":"r1","type":"run_started","ts":)" + t0 +
                       R"(,"workflow_id":"w","severity":"P3"})",
                   {"agent.events", 0, 0, kT0}, &ignore);
  pipeline->Handle("r1",
                   R"({"event_id":"e2","run_id":"r1","type":"step_failed","ts":)" + t0 +
                       R"(,"step":"s","error":{"code":"permission_denied"}})",
                   {"agent.events", 0, 1, kT0}, &ignore);
  EXPECT_EQ(pipeline->engine().watermark_ms(), kT0 - 2000);
  RoleSink after;
  pipeline->Handle("r2",
                   R"({"event_id":"f1","run_id":"r2","type":"heartbeat","ts":)" +
                       std::to_string(kT0 + kDay) + "}",
                   {"agent.events", 0, 2, record_time_of_future_event}, &after);
  return after;
}

TEST(PipelineRecordTime, AnEventFromTheFutureMovesTheWatermarkOnlyPastItsRecordTime) {
  Config config = DefaultConfig();
  KeyObserver observer;
  Pipeline pipeline(config, &observer);
  RoleSink after = FutureEventAfterAnOpenPacket(&pipeline, kT0 + 1000);
  // Up to the record time plus time.max_future_ms (5 min), less the allowed lateness: the P3
  // packet neither escalates nor expires.
  EXPECT_EQ(pipeline.engine().watermark_ms(), kT0 + 1000 + config.time.max_future_ms - 2000);
  EXPECT_EQ(after.Count(TopicRole::kEscalations), 0);
  EXPECT_EQ(after.Count(TopicRole::kAudit), 0);
  EXPECT_EQ(observer.ahead, (std::vector<std::string>{"agent.events"}));
}

// What the contract's event time does without a record time (replay, where the input has no
// Kafka timestamps; and live mode before this bound): the day-ahead event escalates the packet
// twice and expires it at once.
TEST(PipelineRecordTime, WithoutARecordTimeTheEventTimeRules) {
  Config config = DefaultConfig();
  KeyObserver observer;
  Pipeline pipeline(config, &observer);
  RoleSink after = FutureEventAfterAnOpenPacket(&pipeline, -1);
  EXPECT_EQ(pipeline.engine().watermark_ms(), kT0 + kDay - 2000);
  EXPECT_EQ(after.Count(TopicRole::kEscalations), 2);
  EXPECT_TRUE(observer.ahead.empty());
}

TEST(PipelineRecordTime, AnEventWithinTheMarginMovesTheWatermarkAsUsual) {
  Config config = DefaultConfig();
  KeyObserver observer;
  Pipeline pipeline(config, &observer);
  RoleSink after = FutureEventAfterAnOpenPacket(&pipeline, kT0 + kDay - config.time.max_future_ms);
  EXPECT_EQ(pipeline.engine().watermark_ms(), kT0 + kDay - 2000);
  EXPECT_TRUE(observer.ahead.empty());
}

// The classic unit bug: epoch seconds where the contract says milliseconds, read as January
// 1970. In live mode a caught-up watermark follows the wall clock, so such a run would stall and
// its packets escalate and expire the moment they open. Dead-lettered instead.
TEST(PipelineRecordTime, AnEventFarBehindItsRecordTimeIsDeadLettered) {
  Config config = DefaultConfig();
  KeyObserver observer;
  Pipeline pipeline(config, &observer);
  DlqSink sink;
  const std::string seconds = std::to_string(kT0 / 1000);
  EXPECT_FALSE(pipeline.Handle("r1",
                               R"({"event_id":"e1","run_id":"r1","type":"step_failed","ts":)" +
                                   seconds + R"(,"step":"s","error":{"code":"write_failed"}})",
                               {"agent.events", 0, 0, kT0}, &sink));
  EXPECT_EQ(sink.errors, (std::vector<std::string>{"stale_timestamp"}));
  EXPECT_EQ(observer.invalid, (std::vector<std::string>{"stale_timestamp"}));
  EXPECT_EQ(pipeline.engine().active_runs(), 0);

  // Late by less than time.max_past_ms (7 days): an ordinary late event.
  const std::string six_days_ago = std::to_string(kT0 - 6 * kDay);
  EXPECT_TRUE(pipeline.Handle(
      "r2", R"({"event_id":"e2","run_id":"r2","type":"heartbeat","ts":)" + six_days_ago + "}",
      {"agent.events", 0, 1, kT0}, &sink));
  EXPECT_EQ(sink.errors.size(), 1u);
}

TEST(PipelineRecordTime, ReplayHasNoRecordTimeAndTakesOldEventsAsTheyAre) {
  Config config = DefaultConfig();
  Pipeline pipeline(config, nullptr);
  DlqSink sink;
  EXPECT_TRUE(
      pipeline.Handle("", R"({"event_id":"e1","run_id":"r1","type":"heartbeat","ts":1772416800})",
                      {"agent.events", 0, 0}, &sink));
  EXPECT_TRUE(sink.errors.empty());
}

// An event of a run that completed and was retired (limits.retired_run_memory_s) would start
// the run again under packet ids already used: it goes to the DLQ with its own reason.
TEST(PipelineRetiredRun, AnEventOfARetiredRunIsDeadLetteredAndStillMovesTheWatermark) {
  Config config = DefaultConfig();
  config.limits.completed_run_retention_s = 0;
  KeyObserver observer;
  Pipeline pipeline(config, &observer);
  DlqSink sink;
  const auto event = [](const char* id, const char* type, const char* ts) {
    return std::string(R"({"event_id":")") + id + R"(","run_id":"r1","type":")" + type +
           R"(","ts":")" + ts + R"(","outcome":"success"})";
  };
  EXPECT_TRUE(pipeline.Handle("r1", event("e1", "run_completed", "2026-03-02T02:00:00Z"),
                              {"agent.events", 0, 0}, &sink));
  // Another run moves the watermark past the retention (0 s + 2 s lateness): r1 is retired.
  EXPECT_TRUE(pipeline.Handle(
      "r2", R"({"event_id":"x","run_id":"r2","type":"heartbeat","ts":"2026-03-02T02:00:03Z"})",
      {"agent.events", 0, 1}, &sink));
  EXPECT_FALSE(pipeline.Handle("r1", event("e2", "heartbeat", "2026-03-02T02:00:09Z"),
                               {"agent.events", 0, 2}, &sink));
  EXPECT_EQ(sink.errors, (std::vector<std::string>{"retired_run"}));
  EXPECT_EQ(observer.invalid, (std::vector<std::string>{"retired_run"}));
  EXPECT_EQ(pipeline.engine().watermark_ms(), kT0 + 7000);
  EXPECT_EQ(pipeline.engine().active_runs(), 1);  // r2 only
}

}  // namespace
}  // namespace handoffd

// Golden tests: replays the sample streams in tests/data/ against tests/data/test-catalog.yaml
// and compares every output byte with tests/golden/<name>.out. The expected files were checked
// by hand against the contract; regenerate with HANDOFFD_UPDATE_GOLDEN=1 only after checking.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "processor/cli/replay.h"
#include "tests/replay_capture.h"

namespace handoffd {
namespace {

const std::string kData = HANDOFFD_TEST_DATA;
const std::string kGolden = std::string(HANDOFFD_SOURCE_DIR) + "/tests/golden";

class RecordingObserver : public EngineObserver {
 public:
  void OnAcknowledged(Severity s, double seconds) override { acks.push_back({s, seconds}); }
  std::vector<std::pair<Severity, double>> acks;
};

using ReplayOutput = ReplayCapture;

ReplayOutput RunReplay(const std::string& input_file, EngineObserver* observer,
                       std::optional<int64_t> advance_to = std::nullopt) {
  Config config = LoadConfig(kData + "/test-catalog.yaml", {});
  std::ifstream in(input_file, std::ios::binary);
  EXPECT_TRUE(in.good()) << input_file;
  ReplayOptions options;
  options.advance_to_ms = advance_to;
  return CaptureReplay(config, in, options, observer);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void CompareWithGolden(const std::string& name, const std::string& actual) {
  std::string path = kGolden + "/" + name + ".out";
  if (std::getenv("HANDOFFD_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << actual;
  }
  EXPECT_EQ(ReadFile(path), actual) << "replay of " << name << " differs from " << path;
}

size_t CountContaining(const std::vector<std::string>& lines, std::vector<std::string> needles) {
  size_t count = 0;
  for (const auto& line : lines) {
    bool all = true;
    for (const auto& n : needles) all = all && line.find(n) != std::string::npos;
    count += all ? 1 : 0;
  }
  return count;
}

TEST(ReplayGolden, RefundReviewGoesToDecisionsAndAckGivesMttaOf180Seconds) {
  RecordingObserver observer;
  ReplayOutput out = RunReplay(kData + "/refund-review.jsonl", &observer);
  CompareWithGolden("refund-review", out.text);
  EXPECT_EQ(CountContaining(out.lines, {"\"topic\":\"handoff.decisions\""}), 1u);
  EXPECT_EQ(CountContaining(out.lines, {"\"topic\":\"handoff.decisions\"", "\"gate\":\"decision\"",
                                        "\"failure_class\":\"business_judgment\"",
                                        "\"offer credit\"", "\"orderFile\""}),
            1u);
  ASSERT_EQ(observer.acks.size(), 1u);
  EXPECT_EQ(observer.acks[0].first, Severity::kP2);
  EXPECT_DOUBLE_EQ(observer.acks[0].second, 180.0);
  EXPECT_EQ(CountContaining(out.lines, {"\"topic\":\"handoff.audit\"", "\"acknowledged\""}), 1u);
  EXPECT_EQ(CountContaining(out.lines, {"\"topic\":\"handoff.escalations\""}), 0u);
}

TEST(ReplayGolden, P1MissingRollbackIsHeldThenOverridePagedThenEscalatedTwice) {
  ReplayOutput out = RunReplay(kData + "/p1-missing-rollback.jsonl", nullptr);
  CompareWithGolden("p1-missing-rollback", out.text);
  EXPECT_EQ(CountContaining(out.lines, {"\"topic\":\"handoff.pending\"", "\"gate\":\"held\"",
                                        "\"revision\":1", "\"rollback_command\""}),
            1u);
  EXPECT_EQ(
      CountContaining(out.lines, {"\"topic\":\"handoff.page\"", "\"gate\":\"page\"", "\"override\"",
                                  "\"revision\":2", "\"emitted_at\":\"2026-03-02T02:01:07.000Z\""}),
      1u);
  EXPECT_EQ(
      CountContaining(out.lines, {"\"topic\":\"handoff.escalations\"", "\"escalation_level\":2",
                                  "\"emitted_at\":\"2026-03-02T02:05:07.000Z\""}),
      1u);
  EXPECT_EQ(
      CountContaining(out.lines, {"\"topic\":\"handoff.escalations\"", "\"escalation_level\":3",
                                  "\"emitted_at\":\"2026-03-02T02:10:07.000Z\""}),
      1u);
  // The run waits on a human: no stalled packet although no step event came for 11 minutes.
  EXPECT_EQ(CountContaining(out.lines, {"\"failure_class\":\"stalled\""}), 0u);
}

TEST(ReplayGolden, SameInputGivesSameBytes) {
  ReplayOutput a = RunReplay(kData + "/p1-missing-rollback.jsonl", nullptr);
  ReplayOutput b = RunReplay(kData + "/p1-missing-rollback.jsonl", nullptr);
  EXPECT_EQ(a.text, b.text);
  EXPECT_FALSE(a.text.empty());
}

TEST(ReplayGolden, BadLinesGoToTheDlqWithReasonAndProcessingGoesOn) {
  std::string path = ::testing::TempDir() + "/bad.jsonl";
  std::ofstream(path)
      << "not json\n"
      << "[1,2]\n"
      << R"({"event_id":"e1","type":"run_started","ts":"2026-01-01T00:00:00Z"})"
      << "\n"
      << R"({"event_id":"e2","run_id":"r","type":"decision","ts":"2026-01-01T00:00:01Z","confidence":"high"})"
      << "\n"
      << R"({"event_id":"e3","run_id":"r","type":"decision","ts":"2026-01-01T00:00:02Z","confidence":0.2,"step":"s"})"
      << "\n";
  ReplayOutput out = RunReplay(path, nullptr);
  EXPECT_EQ(CountContaining(out.lines, {"\"topic\":\"agent.events.dlq\"", "\"invalid_json\""}), 1u);
  EXPECT_EQ(CountContaining(out.lines, {"\"topic\":\"agent.events.dlq\"", "\"not_object\""}), 1u);
  EXPECT_EQ(
      CountContaining(out.lines, {"\"topic\":\"agent.events.dlq\"", "\"missing_field:run_id\""}),
      1u);
  EXPECT_EQ(
      CountContaining(out.lines, {"\"topic\":\"agent.events.dlq\"", "\"wrong_type:confidence\""}),
      1u);
  // The valid low-confidence decision after the bad lines still opens a packet.
  EXPECT_EQ(CountContaining(out.lines, {"\"failure_class\":\"low_confidence\"",
                                        "\"source\":{\"topic\":\"agent.events\",\"partition\":0,"
                                        "\"offset\":4}"}),
            1u);
}

// Replay reads its input in blocks; lines must come out as std::getline would cut them: CRLF
// ends a line, empty lines are skipped but keep their number (the source offset), a line
// longer than the read block is read whole, and a last line without a newline counts.
TEST(ReplayGolden, LinesAreCutAsGetlineWouldAndKeepTheirOffsets) {
  std::string path = ::testing::TempDir() + "/lines.jsonl";
  {
    std::ofstream file(path, std::ios::binary);
    file << "{\"bad\"}\r\n"                    // offset 0
         << "\n\n"                             // offsets 1, 2
         << std::string(3 << 20, 'x') << "\n"  // offset 3, 3 MiB
         << R"({"event_id":"e1","run_id":"r","type":"run_started","ts":"2026-01-01T00:00:00Z",)"
         << R"("workflow_id":"w"})"
         << "\r\n"  // offset 4
         << R"({"event_id":"e2","run_id":"r","type":"step_failed","ts":"2026-01-01T00:00:01Z",)"
         << R"("step":"s","error":{"code":"x"}})";  // offset 5, no final newline
  }
  ReplayOutput out = RunReplay(path, nullptr);
  EXPECT_EQ(CountContaining(out.lines, {"\"value_raw\":\"{\\\"bad\\\"}\"", "\"invalid_json\""}),
            1u);
  EXPECT_EQ(CountContaining(out.lines, {"\"topic\":\"agent.events.dlq\"", "\"oversized\""}), 1u);
  EXPECT_EQ(CountContaining(out.lines, {"\"failing_step\":\"s\"", "\"offset\":5"}), 1u);
  EXPECT_EQ(CountContaining(out.lines, {"\"topic\":\"agent.events.dlq\""}), 2u);
}

// JSON text is UTF-8: a dead letter whose bytes are not must still give a line any JSON parser
// reads, with the exact bytes recoverable.
TEST(ReplayWriterTest, DeadLetterThatIsNotUtf8IsValidJsonWithItsExactBytesInBase64) {
  std::string path = ::testing::TempDir() + "/not-utf8.jsonl";
  const std::string bad = "{\"event_id\":\"e\xFF\",\"run_id\":\"r\xC3\"}";
  {
    std::ofstream file(path, std::ios::binary);
    file << bad << "\n"
         << R"({"x":"\u00e9 caf\u00e9 \"é\""})"
         << "\n";
  }
  ReplayOutput out = RunReplay(path, nullptr);
  ASSERT_EQ(out.lines.size(), 2u);
  simdjson::dom::parser parser;
  simdjson::dom::element line;
  ASSERT_EQ(parser.parse(out.lines[0]).get(line), simdjson::SUCCESS) << out.lines[0];
  EXPECT_EQ(std::string_view(line["value_raw"]),
            "{\"event_id\":\"e\xEF\xBF\xBD\",\"run_id\":\"r\xEF\xBF\xBD\"}");
  EXPECT_EQ(std::string_view(line["value_base64"]),
            "eyJldmVudF9pZCI6ImX/IiwicnVuX2lkIjoicsMifQ==");  // base64 of `bad`
  EXPECT_EQ(std::string_view(line["error"]), "invalid_json");
  // A UTF-8 line is written as before, without value_base64.
  ASSERT_EQ(parser.parse(out.lines[1]).get(line), simdjson::SUCCESS) << out.lines[1];
  EXPECT_EQ(line["value_base64"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(std::string_view(line["value_raw"]), R"({"x":"\u00e9 caf\u00e9 \"é\""})");
}

// "handoffd replay ... > /dev/full" must not look like a complete replay.
TEST(ReplayWriterTest, OutputThatCannotBeWrittenIsReported) {
  std::FILE* full = std::fopen("/dev/full", "w");
  ASSERT_NE(full, nullptr);
  TopicsConfig topics;
  {
    ReplayWriter writer(topics, full);
    OutputRecord record{};
    record.role = TopicRole::kDecisions;
    record.key = "r1";
    record.value = "{}";
    writer.Emit(record);
    EXPECT_TRUE(writer.ok());  // buffered so far
    EXPECT_FALSE(writer.Flush());
    EXPECT_FALSE(writer.ok());
    EXPECT_EQ(writer.error(), ENOSPC);
    writer.Emit(record);
    EXPECT_FALSE(writer.Flush());  // stays failed
  }
  std::fclose(full);
}

}  // namespace
}  // namespace handoffd

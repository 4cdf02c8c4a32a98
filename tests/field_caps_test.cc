// Bounds on what one event puts into packets and state (processor/field_caps.h): a valid event
// with a 1 MB error message gives a packet of a few KiB that says what was cut, the same way
// every time.
#include "processor/field_caps.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "processor/pipeline.h"

namespace handoffd {
namespace {

class Sink : public OutputSink {
 public:
  void Emit(const OutputRecord& r) override {
    if (r.role != TopicRole::kAudit) packets.emplace_back(r.value);
  }
  std::vector<std::string> packets;
};

class Limits : public EngineObserver {
 public:
  void OnLimitHit(std::string_view limit) override { hits.emplace_back(limit); }
  std::vector<std::string> hits;
};

std::string Field(const std::string& json, const char* name) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(json);
  simdjson::dom::element value = doc[name];
  if (value.is_string()) return std::string(std::string_view(value));
  return simdjson::minify(value);
}

TEST(TruncateText, KeepsTheStartAndSaysHowLongTheTextWas) {
  std::string out;
  TruncateText(std::string(10000, 'a'), 100, &out);
  EXPECT_EQ(out.size(), 100u);
  const std::string note = "... [truncated, 10000 bytes]";
  EXPECT_EQ(out, std::string(100 - note.size(), 'a') + note);
}

TEST(TruncateText, NeverSplitsAUtf8Character) {
  // "é" is two bytes (C3 A9); the cut falls inside one of them at an odd offset.
  std::string text;
  for (int i = 0; i < 200; ++i) text += "\xC3\xA9";
  std::string out;
  TruncateText(text, 100, &out);
  EXPECT_LE(out.size(), 100u);
  std::string kept = out.substr(0, out.find("..."));
  EXPECT_EQ(kept.size() % 2, 0u) << kept.size();
  EXPECT_TRUE(simdjson::validate_utf8(out.data(), out.size()));
}

TEST(FieldCaps, CutsOnlyWhatIsOverItsBound) {
  FieldCaps caps(1000);
  const std::string message(5000, 'm');
  const std::string step(300, 's');
  const std::string attrs = "{\"blob\":\"" + std::string(2000, 'b') + "\"}";
  const std::string options = "[{\"label\":\"" + std::string(2000, 'o') + "\"}]";
  Event e;
  e.objective = "short";
  e.error_message = message;
  e.step = step;
  e.attrs_json = attrs;
  e.options_json = options;
  int count = 0;
  EXPECT_EQ(caps.Apply(&e, &count), "step");  // in schema order
  EXPECT_EQ(count, 4);
  EXPECT_EQ(*e.objective, "short");
  EXPECT_EQ(e.error_message->size(), 1000u);
  EXPECT_LE(e.step->size(), kMaxNameBytes);
  EXPECT_EQ(*e.attrs_json, "{\"truncated_bytes\":" + std::to_string(attrs.size()) + "}");
  EXPECT_EQ(*e.options_json, "[{\"truncated_bytes\":" + std::to_string(options.size()) + "}]");

  Event small;
  small.error_message = "fits";
  EXPECT_EQ(caps.Apply(&small, &count), "");
  EXPECT_EQ(count, 0);
}

// The poison pill this guards against: a valid event of ~1 MB (the contract's limit is 1 MiB)
// whose error message became a packet the producer refused (Kafka's default record limit is
// about 1 MB), so the batch was never committed and every restart met it again.
TEST(FieldCaps, AHugeErrorMessageGivesASmallPacketThatSaysWhatWasCut) {
  Config config = DefaultConfig();
  Limits limits;
  Pipeline pipeline(config, &limits);
  Sink sink;
  const std::string message(1000000, 'x');
  const std::string attrs = "{\"trace\":\"" + std::string(20000, 't') + "\"}";
  SourceRef source{"agent.events", 0, 1};
  ASSERT_TRUE(pipeline.Handle("r1",
                              "{\"event_id\":\"e1\",\"run_id\":\"r1\",\"type\":\"run_started\","
                              "\"ts\":\"2026-03-02T02:00:00Z\",\"workflow_id\":\"w\",\"attrs\":" +
                                  attrs + "}",
                              source, &sink));
  ASSERT_TRUE(pipeline.Handle("r1",
                              "{\"event_id\":\"e2\",\"run_id\":\"r1\",\"type\":\"step_failed\","
                              "\"ts\":\"2026-03-02T02:00:01Z\",\"step\":\"s\",\"error\":{\"code\":"
                              "\"write_failed\",\"message\":\"" +
                                  message + "\"}}",
                              source, &sink));
  ASSERT_EQ(sink.packets.size(), 1u);
  const std::string& packet = sink.packets[0];
  EXPECT_LT(packet.size(), 2u * static_cast<size_t>(config.limits.max_field_bytes))
      << packet.size();
  std::string summary = Field(packet, "error_summary");  // "<code>: <message>"
  EXPECT_EQ(summary.size(), std::string("write_failed: ").size() + config.limits.max_field_bytes);
  EXPECT_NE(summary.find("... [truncated, 1000000 bytes]"), std::string::npos) << summary;
  EXPECT_EQ(Field(packet, "attrs"), "{\"truncated_bytes\":" + std::to_string(attrs.size()) + "}");
  EXPECT_EQ(limits.hits, (std::vector<std::string>{"max_field_bytes", "max_field_bytes"}));

  // Deterministic: the same input gives the same bytes.
  Pipeline again(config, nullptr);
  Sink sink2;
  again.Handle("r1",
               "{\"event_id\":\"e1\",\"run_id\":\"r1\",\"type\":\"run_started\","
               "\"ts\":\"2026-03-02T02:00:00Z\",\"workflow_id\":\"w\",\"attrs\":" +
                   attrs + "}",
               source, &sink2);
  again.Handle("r1",
               "{\"event_id\":\"e2\",\"run_id\":\"r1\",\"type\":\"step_failed\","
               "\"ts\":\"2026-03-02T02:00:01Z\",\"step\":\"s\",\"error\":{\"code\":"
               "\"write_failed\",\"message\":\"" +
                   message + "\"}}",
               source, &sink2);
  EXPECT_EQ(sink2.packets, sink.packets);
}

}  // namespace
}  // namespace handoffd

// Decoder: every DLQ reason of contract section 11, their order, both timestamp forms, each
// event type's fields, acks, escapes, raw pass-through, and robustness on truncated input.
#include "processor/decoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "processor/fleet.h"
#include "tests/decode_outcome.h"

namespace handoffd {
namespace {

class DecoderTest : public ::testing::Test {
 protected:
  // Decodes `json` and returns the DLQ reason ("" on success) as an owned string.
  std::string Reason(std::string_view json) { return std::string(decoder_.Decode(json, &event_)); }

  // Decodes an event that must be valid.
  const Event& Ok(std::string_view json) {
    std::string reason = Reason(json);
    EXPECT_EQ(reason, "") << json;
    return event_;
  }

  Decoder decoder_{1 << 20};
  Event event_;
};

constexpr char kTs[] = R"("ts":"2026-11-21T02:00:00Z")";
constexpr int64_t kTsMs = 1795226400000;  // 2026-11-21T02:00:00Z

std::string Ev(std::string_view type, std::string_view fields = "") {
  std::string s = R"({"event_id":"e1","run_id":"r1","type":")";
  s += type;
  s += R"(",)";
  s += kTs;
  if (!fields.empty()) {
    s += ',';
    s += fields;
  }
  s += '}';
  return s;
}

// "a.b" = v as JSON member text: "a":{"b":v}.
std::string Member(std::string_view field, std::string_view value) {
  size_t dot = field.find('.');
  if (dot == std::string_view::npos) return "\"" + std::string(field) + "\":" + std::string(value);
  return "\"" + std::string(field.substr(0, dot)) + "\":{" + Member(field.substr(dot + 1), value) +
         "}";
}

// The metrics create a zero series per listed reason: a reason missing from the list would be
// invisible to rate() at its first occurrence, and one the decoder never returns is a series
// that can only ever read 0. Every field, missing or with values of every wrong kind, on every
// event type, must give listed reasons only, and every listed reason must come up.
TEST_F(DecoderTest, ReasonListIsExactlyWhatTheDecoderReturns) {
  // Each type's required members, after the envelope (acks need no event_id but may carry one).
  const std::vector<std::pair<std::string, std::vector<std::string>>> types = {
      {"run_started", {R"("workflow_id":"w")"}},
      {"step_started", {R"("step":"s")"}},
      {"step_succeeded", {R"("step":"s")"}},
      {"step_failed", {R"("step":"s")", R"("error":{"code":"c"})"}},
      {"tool_call", {R"("tool":"t")"}},
      {"decision", {R"("confidence":0.5)"}},
      {"handoff_requested", {R"("reason":"r")"}},
      {"heartbeat", {}},
      {"run_completed", {R"("outcome":"success")"}},
      {"handoff_acknowledged", {}},
      {"handoff_resolved", {}},
  };
  const std::vector<std::string> fields = {"event_id",
                                           "run_id",
                                           "type",
                                           "ts",
                                           "workflow_id",
                                           "step",
                                           "objective",
                                           "recommended_action",
                                           "rollback_command",
                                           "owner",
                                           "owner.primary",
                                           "owner.backup",
                                           "blast_radius",
                                           "blast_radius.users",
                                           "blast_radius.jobs",
                                           "attrs",
                                           "cost_usd",
                                           "severity",
                                           "error",
                                           "error.code",
                                           "error.message",
                                           "retryable",
                                           "tool",
                                           "status",
                                           "side_effect",
                                           "tokens",
                                           "duration_ms",
                                           "confidence",
                                           "action",
                                           "risk",
                                           "amount",
                                           "reason",
                                           "handoff_type",
                                           "options",
                                           "evidence",
                                           "owner_role",
                                           "next_action_after_decision",
                                           "outcome",
                                           "packet_id",
                                           "by"};
  const std::vector<std::string> wrong = {"[]", "{}", "\"x\"", "-1", "1.5", "true", "7"};
  auto object = [](const std::vector<std::string>& members) {
    std::string json = "{";
    for (const std::string& m : members) json += (json.size() > 1 ? "," : "") + m;
    return json + "}";
  };
  std::set<std::string> seen;
  auto decode = [&](const std::string& json) {
    std::string reason = Reason(json);
    if (!reason.empty()) seen.insert(reason);
  };
  for (const auto& [type, required] : types) {
    std::vector<std::string> members = {R"("event_id":"e1")", R"("run_id":"r1")",
                                        "\"type\":\"" + type + "\"", kTs};
    members.insert(members.end(), required.begin(), required.end());
    EXPECT_EQ(Reason(object(members)), "") << object(members);
    for (size_t i = 0; i < members.size(); ++i) {  // each member left out
      std::vector<std::string> without = members;
      without.erase(without.begin() + static_cast<std::ptrdiff_t>(i));
      decode(object(without));
    }
    for (const std::string& f : fields) {  // each field of each wrong kind (the last key wins)
      for (const std::string& v : wrong) {
        std::vector<std::string> with = members;
        with.push_back(Member(f, v));
        decode(object(with));
      }
    }
  }
  for (const std::string& v : wrong) {  // a bad message next to a good code
    decode(Ev("step_failed", R"("step":"s","error":{"code":"c","message":)" + v + "}"));
  }
  decode("{");
  decode("[]");
  decode("{" + std::string(1 << 21, ' ') + "}");
  const std::vector<std::string>& listed = DecoderReasons();
  for (const std::string& reason : seen) {
    EXPECT_NE(std::find(listed.begin(), listed.end(), reason), listed.end())
        << reason << " is returned but not listed";
  }
  for (const std::string& reason : listed) {
    EXPECT_TRUE(seen.count(reason)) << reason << " is listed but never returned";
  }
}

TEST_F(DecoderTest, ValidEnvelopeDecodesIdsTypeAndTimestamp) {
  const Event& e = Ok(Ev("heartbeat", R"("step":"fetch")"));
  EXPECT_EQ(e.type, EventType::kHeartbeat);
  EXPECT_EQ(e.type_name, "heartbeat");
  EXPECT_EQ(e.event_id, "e1");
  EXPECT_EQ(e.run_id, "r1");
  EXPECT_EQ(e.ts_ms, kTsMs);
  EXPECT_EQ(e.step, "fetch");
}

TEST_F(DecoderTest, OversizedWinsOverEverythingElse) {
  Decoder small(20);
  Event e;
  EXPECT_EQ(small.Decode("{\"not json at all.....", &e), "oversized");
  EXPECT_EQ(small.Decode(std::string(21, ' '), &e), "oversized");
  // Exactly the limit is still decoded (and here is simply not an object).
  EXPECT_EQ(small.Decode(std::string(18, ' ') + "[]", &e), "not_object");
}

// The buffers start small (64 KiB) and grow for a larger event up to max_event_bytes.
TEST_F(DecoderTest, EventsLargerThanTheInitialBuffersDecodeAndSmallOnesAfterThem) {
  for (size_t size : {size_t{100} << 10, size_t{900} << 10}) {
    std::string note(size, 'x');
    const Event& big = Ok(Ev("heartbeat", R"("step":")" + note + R"(")"));
    ASSERT_TRUE(big.step.has_value());
    EXPECT_EQ(big.step->size(), size);
    const Event& small = Ok(Ev("heartbeat", R"("step":"fetch")"));
    EXPECT_EQ(small.step.value_or(""), "fetch");
  }
}

TEST_F(DecoderTest, MalformedJsonIsInvalidJson) {
  for (std::string_view bad : {
           "",
           "   ",
           "not json",
           R"({"event_id":"e1")",
           R"({"event_id":"e1",)",
           R"({"event_id":"e1"} trailing)",
           R"({"event_id":"e1"}})",
           R"({"event_id":"e1"}{"a":1})",
           R"({"event_id" "e1"})",
           R"({"event_id":"e1",,"run_id":"r"})",
           R"({"event_id":'e1'})",
           R"({"event_id":"e1\q"})",
           "{\"event_id\":\"e\x01\"}",
           "{\"event_id\":\"\xff\xfe\"}",
           R"({"x":[1,,2]})",
           R"({"x":{"a":tru}})",
           R"({"x":nul})",
           R"({"x":01})",
           R"({"x":1.})",
           R"([1,2)",
           R"("unterminated)",
       }) {
    EXPECT_EQ(Reason(bad), "invalid_json") << bad;
  }
}

TEST_F(DecoderTest, MalformedJsonAnywhereWinsOverFieldErrors) {
  // run_id is missing too, but the malformed unknown field is reported first.
  EXPECT_EQ(Reason(R"({"event_id":"e1","extra":[1,,2],"type":"heartbeat"})"), "invalid_json");
  // Malformed JSON inside attrs must never reach a packet.
  EXPECT_EQ(Reason(Ev("heartbeat", R"("attrs":{"a":[1,}})")), "invalid_json");
}

TEST_F(DecoderTest, WellFormedNonObjectIsNotObject) {
  for (std::string_view doc :
       {"[]", "[1,{\"a\":2}]", "\"text\"", "42", "-1.5e3", "true", "false", "null", " [ ] "}) {
    EXPECT_EQ(Reason(doc), "not_object") << doc;
  }
}

TEST_F(DecoderTest, EnvelopeFieldsMissingOrWrongType) {
  EXPECT_EQ(Reason(R"({"run_id":"r1","type":"heartbeat","ts":1})"), "missing_field:event_id");
  EXPECT_EQ(Reason(R"({"event_id":7,"run_id":"r1","type":"heartbeat","ts":1})"),
            "wrong_type:event_id");
  EXPECT_EQ(Reason(R"({"event_id":"","run_id":"r1","type":"heartbeat","ts":1})"),
            "wrong_type:event_id");
  EXPECT_EQ(Reason(R"({"event_id":"e","type":"heartbeat","ts":1})"), "missing_field:run_id");
  EXPECT_EQ(Reason(R"({"event_id":"e","run_id":["r"],"type":"heartbeat","ts":1})"),
            "wrong_type:run_id");
  EXPECT_EQ(Reason(R"({"event_id":"e","run_id":"r1","ts":1})"), "missing_field:type");
  EXPECT_EQ(Reason(R"({"event_id":"e","run_id":"r1","type":3,"ts":1})"), "wrong_type:type");
  EXPECT_EQ(Reason(R"({"event_id":"e","run_id":"r1","type":"heartbeat"})"), "missing_field:ts");
}

TEST_F(DecoderTest, RunIdMustBeOneTo256Bytes) {
  auto with_run_id = [](const std::string& run_id) {
    return R"({"event_id":"e","run_id":")" + run_id + R"(","type":"heartbeat","ts":1})";
  };
  EXPECT_EQ(Reason(with_run_id("")), "wrong_type:run_id");
  EXPECT_EQ(Reason(with_run_id(std::string(257, 'r'))), "wrong_type:run_id");
  EXPECT_EQ(Ok(with_run_id(std::string(256, 'r'))).run_id.size(), 256u);
}

TEST_F(DecoderTest, NullCountsAsAbsent) {
  EXPECT_EQ(Reason(R"({"event_id":"e","run_id":null,"type":"heartbeat","ts":1})"),
            "missing_field:run_id");
  const Event& e = Ok(Ev("heartbeat", R"("step":null,"attrs":null,"owner":null)"));
  EXPECT_FALSE(e.step.has_value());
  EXPECT_FALSE(e.attrs_json.has_value());
  EXPECT_FALSE(e.owner_primary.has_value());
}

TEST_F(DecoderTest, FirstFailureInContractOrderWins) {
  // Missing event_id and a bad timestamp: event_id comes first.
  EXPECT_EQ(Reason(R"({"run_id":"r1","type":"heartbeat","ts":"soon"})"), "missing_field:event_id");
  // Keys are judged in contract order, not document order.
  EXPECT_EQ(Reason(R"({"ts":"soon","type":7,"run_id":"","event_id":"e"})"), "wrong_type:run_id");
  EXPECT_EQ(Reason(R"({"ts":"soon","type":7,"run_id":"r","event_id":"e"})"), "wrong_type:type");
  // A bad timestamp comes before the type's own fields.
  EXPECT_EQ(Reason(R"({"event_id":"e","run_id":"r","type":"step_failed","ts":"x"})"),
            "bad_timestamp");
  // Within a type, the required field before the optional ones.
  EXPECT_EQ(Reason(Ev("tool_call", R"("status":"weird")")), "missing_field:tool");
}

TEST_F(DecoderTest, TimestampAsIntegerIsEpochMilliseconds) {
  EXPECT_EQ(Ok(R"({"event_id":"e","run_id":"r","type":"heartbeat","ts":1795226400123})").ts_ms,
            1795226400123);
  EXPECT_EQ(Ok(R"({"event_id":"e","run_id":"r","type":"heartbeat","ts":0})").ts_ms, 0);
}

TEST_F(DecoderTest, TimestampAsRfc3339WithOffsets) {
  auto ts = [this](std::string_view t) {
    std::string json = R"({"event_id":"e","run_id":"r","type":"heartbeat","ts":")";
    json += t;
    json += R"("})";
    return Ok(json).ts_ms;
  };
  EXPECT_EQ(ts("2026-11-21T02:00:00Z"), kTsMs);
  EXPECT_EQ(ts("2026-11-21T02:00:00.250Z"), kTsMs + 250);
  EXPECT_EQ(ts("2026-11-21T03:30:00+01:30"), kTsMs);
  EXPECT_EQ(ts("2026-11-20T21:00:00-05:00"), kTsMs);
}

TEST_F(DecoderTest, ConsecutiveTimestampsMatchTheRfc3339Parser) {
  // The decoder caches the hour of the last timestamp; every result must still equal a fresh
  // parse, including after a cached hour is followed by a bad minute, a leap second or an offset.
  std::vector<std::string> stamps = {
      "2026-11-21T02:00:00.000Z",      "2026-11-21T02:59:59.999Z", "2026-11-21T02:07:03Z",
      "2026-11-21T02:60:00.000Z",      "2026-11-21T02:00:60.000Z", "2026-11-21T02:00:00.5Z",
      "2026-11-21T02:10:00.000+01:00", "2026-11-21T02:10:00.00xZ", "2026-11-21T02:1a:00.000Z",
      "2026-11-22T02:10:00.000Z",      "2026-11-21T03:10:00.000Z", "2026-11-21T02:10:00.000z",
      "2026-11-21t02:11:00.000Z",      "2026-11-21T02:12:00.000Z", "2026-11-21 02:13:00.000Z",
      "2026-11-21T02:14:00.000Z",      "9999-12-31T23:59:59.999Z", "0000-01-01T00:00:00.000Z"};
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 2000; ++i) {  // random minutes, seconds and ms within two hours
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    char buf[32];
    std::snprintf(buf, sizeof(buf), "2026-11-21T0%d:%02d:%02d.%03dZ", static_cast<int>(2 + x % 2),
                  static_cast<int>(x / 2 % 60), static_cast<int>(x / 120 % 60),
                  static_cast<int>(x / 7200 % 1000));
    stamps.push_back(buf);
  }
  for (const std::string& ts : stamps) {
    int64_t want = 0;
    bool valid = ParseRfc3339Ms(ts, &want);
    std::string reason =
        Reason(R"({"event_id":"e","run_id":"r","type":"heartbeat","ts":")" + ts + R"("})");
    if (valid) {
      EXPECT_EQ(reason, "") << ts;
      EXPECT_EQ(event_.ts_ms, want) << ts;
    } else {
      EXPECT_EQ(reason, "bad_timestamp") << ts;
    }
  }
}

TEST_F(DecoderTest, BadTimestamps) {
  for (std::string_view ts :
       {R"("2026-11-21T02:00:00")", R"("2026-13-01T00:00:00Z")", R"("yesterday")", R"("")", "1.5",
        "true", "[1]", "{}", "-99999999999999999", "18446744073709551615", "253402300800000"}) {
    std::string json = R"({"event_id":"e","run_id":"r","type":"heartbeat","ts":)";
    json += ts;
    json += '}';
    EXPECT_EQ(Reason(json), "bad_timestamp") << ts;
  }
}

TEST_F(DecoderTest, RunStartedFields) {
  const Event& e =
      Ok(Ev("run_started", R"("workflow_id":"refund-review","objective":"refund #1",)"
                           R"("severity":"P1","owner":{"primary":"ana","backup":"bo"})"));
  EXPECT_EQ(e.type, EventType::kRunStarted);
  EXPECT_EQ(e.workflow_id, "refund-review");
  EXPECT_EQ(e.objective, "refund #1");
  EXPECT_EQ(e.severity, Severity::kP1);
  EXPECT_EQ(e.owner_primary, "ana");
  EXPECT_EQ(e.owner_backup, "bo");
  EXPECT_EQ(Reason(Ev("run_started")), "missing_field:workflow_id");
  EXPECT_EQ(Reason(Ev("run_started", R"("workflow_id":"w","severity":"P4")")),
            "wrong_type:severity");
  EXPECT_EQ(Reason(Ev("run_started", R"("workflow_id":"w","owner":"ana")")), "wrong_type:owner");
  EXPECT_EQ(Reason(Ev("run_started", R"("workflow_id":"w","owner":{"primary":1})")),
            "wrong_type:owner.primary");
}

TEST_F(DecoderTest, StepStartedAndSucceededRequireStep) {
  EXPECT_EQ(Ok(Ev("step_started", R"("step":"load")")).step, "load");
  EXPECT_EQ(Ok(Ev("step_succeeded", R"("step":"load")")).type, EventType::kStepSucceeded);
  EXPECT_EQ(Reason(Ev("step_started")), "missing_field:step");
  EXPECT_EQ(Reason(Ev("step_succeeded", R"("step":5)")), "wrong_type:step");
}

TEST_F(DecoderTest, StepFailedFields) {
  const Event& e =
      Ok(Ev("step_failed",
            R"("step":"post","error":{"code":"timeout","message":"slow"},"retryable":true)"));
  EXPECT_EQ(e.step, "post");
  EXPECT_EQ(e.error_code, "timeout");
  EXPECT_EQ(e.error_message, "slow");
  EXPECT_TRUE(e.retryable);
  EXPECT_FALSE(Ok(Ev("step_failed", R"("step":"p","error":{"code":"x"})")).retryable);
  EXPECT_EQ(Reason(Ev("step_failed", R"("step":"p")")), "missing_field:error.code");
  EXPECT_EQ(Reason(Ev("step_failed", R"("step":"p","error":{"message":"m"})")),
            "missing_field:error.code");
  EXPECT_EQ(Reason(Ev("step_failed", R"("step":"p","error":"boom")")), "wrong_type:error");
  EXPECT_EQ(Reason(Ev("step_failed", R"("step":"p","error":{"code":404})")),
            "wrong_type:error.code");
  EXPECT_EQ(Reason(Ev("step_failed", R"("step":"p","error":{"code":"x","message":1})")),
            "wrong_type:error.message");
  EXPECT_EQ(Reason(Ev("step_failed", R"("step":"p","error":{"code":"x"},"retryable":"yes")")),
            "wrong_type:retryable");
  EXPECT_EQ(Reason(Ev("step_failed", R"("error":{"code":"x"})")), "missing_field:step");
}

TEST_F(DecoderTest, ToolCallFields) {
  const Event& e = Ok(Ev("tool_call", R"("step":"s","tool":"ledger.write","status":"error",)"
                                      R"("side_effect":"irreversible","cost_usd":0.25,)"
                                      R"("tokens":1200,"duration_ms":35)"));
  EXPECT_EQ(e.tool, "ledger.write");
  EXPECT_EQ(e.tool_status, ToolStatus::kError);
  EXPECT_EQ(e.side_effect, SideEffect::kIrreversible);
  EXPECT_DOUBLE_EQ(*e.cost_usd, 0.25);
  EXPECT_EQ(e.tokens, 1200);
  EXPECT_EQ(e.duration_ms, 35);
  EXPECT_EQ(Reason(Ev("tool_call", R"("tool":"t","status":"maybe")")), "wrong_type:status");
  EXPECT_EQ(Reason(Ev("tool_call", R"("tool":"t","side_effect":"some")")),
            "wrong_type:side_effect");
  EXPECT_EQ(Reason(Ev("tool_call", R"("tool":"t","cost_usd":"1")")), "wrong_type:cost_usd");
  EXPECT_EQ(Reason(Ev("tool_call", R"("tool":"t","tokens":1.5)")), "wrong_type:tokens");
  EXPECT_EQ(Reason(Ev("tool_call", R"("tool":"t","duration_ms":-1)")), "wrong_type:duration_ms");
}

// cost_usd adds to the run's total, which packets carry as a non-negative number (packet
// schema: minimum 0): a negative cost is refused like a confidence outside 0..1.
TEST_F(DecoderTest, NegativeCostUsdIsWrongTypeOnEveryEvent) {
  EXPECT_EQ(Reason(Ev("tool_call", R"("tool":"t","cost_usd":-5.5)")), "wrong_type:cost_usd");
  EXPECT_EQ(Reason(Ev("heartbeat", R"("cost_usd":-0.01)")), "wrong_type:cost_usd");
  EXPECT_EQ(Reason(Ev("step_failed", R"("step":"s","error":{"code":"c"},"cost_usd":-1)")),
            "wrong_type:cost_usd");
  EXPECT_DOUBLE_EQ(*Ok(Ev("tool_call", R"("tool":"t","cost_usd":0)")).cost_usd, 0.0);
  EXPECT_DOUBLE_EQ(*Ok(Ev("heartbeat", R"("cost_usd":0.001)")).cost_usd, 0.001);
  // The envelope was fine: the event still moves the watermark.
  EXPECT_EQ(Reason(Ev("heartbeat", R"("cost_usd":-1)")), "wrong_type:cost_usd");
  EXPECT_TRUE(decoder_.envelope_valid());
}

// Valid JSON numbers that simdjson cannot hold (integers outside [-2^63, 2^64), values beyond
// the double range) are JSON all the same: never invalid_json. Number fields take a big integer
// as the nearest double; integer fields and ts cannot hold it; unknown fields ignore it.
TEST_F(DecoderTest, NumbersOutsideTheSixtyFourBitRangeAreValuesNotInvalidJson) {
  const Event& big = Ok(Ev("decision", R"("confidence":0.5,"amount":99999999999999999999)"));
  EXPECT_DOUBLE_EQ(*big.amount, 1e20);
  EXPECT_DOUBLE_EQ(*Ok(Ev("heartbeat", R"("cost_usd":99999999999999999999)")).cost_usd, 1e20);
  EXPECT_EQ(Reason(Ev("tool_call", R"("tool":"t","tokens":99999999999999999999)")),
            "wrong_type:tokens");
  EXPECT_EQ(Reason(Ev("tool_call", R"("tool":"t","duration_ms":-99999999999999999999)")),
            "wrong_type:duration_ms");
  EXPECT_EQ(Reason(Ev("heartbeat", R"("blast_radius":{"users":9223372036854775808})")),
            "wrong_type:blast_radius.users");
  EXPECT_EQ(Reason(Ev("heartbeat", R"("blast_radius":{"jobs":-9223372036854775809})")),
            "wrong_type:blast_radius.jobs");
  EXPECT_EQ(
      Ok(Ev("heartbeat", R"("blast_radius":{"users":9223372036854775807})")).blast_radius_users,
      INT64_MAX);
  for (const char* ts : {"99999999999999999999", "-99999999999999999999", "1e400"}) {
    EXPECT_EQ(
        Reason(std::string(R"({"event_id":"e","run_id":"r","type":"heartbeat","ts":)") + ts + "}"),
        "bad_timestamp")
        << ts;
  }
  // Beyond the double range: no field can hold it.
  EXPECT_EQ(Reason(Ev("decision", R"("confidence":0.5,"amount":1e400)")), "wrong_type:amount");
  EXPECT_EQ(Reason(Ev("decision", R"("confidence":-1e400)")), "wrong_type:confidence");
  EXPECT_EQ(Reason(Ev("heartbeat", R"("cost_usd":1e400)")), "wrong_type:cost_usd");
  // Where nobody reads the number, it does not matter; passed-through JSON keeps its bytes.
  for (const char* n : {"99999999999999999999", "-99999999999999999999", "18446744073709551616",
                        "1e400", "-1E+999", "123456789012345678901234567890e300"}) {
    EXPECT_EQ(Reason(Ev("heartbeat", std::string(R"("zz":)") + n)), "") << n;
    EXPECT_EQ(Reason(Ev("heartbeat", std::string(R"("zz":{"a":[)") + n + "]}")), "") << n;
    EXPECT_EQ(Ok(Ev("heartbeat", std::string(R"("attrs":{"n":)") + n + "}")).attrs_json,
              std::string(R"({"n":)") + n + "}");
    EXPECT_EQ(Reason(n), "not_object") << n;
  }
  // Malformed numbers stay invalid_json, read or not.
  for (const char* n : {"01", "1.", "-", "1e", "1e+", "--1", "1.e5", "99999999999999999999x"}) {
    EXPECT_EQ(Reason(Ev("heartbeat", std::string(R"("zz":)") + n)), "invalid_json") << n;
    EXPECT_EQ(Reason(Ev("tool_call", std::string(R"("tool":"t","tokens":)") + n)), "invalid_json")
        << n;
  }
  EXPECT_EQ(Reason("99999999999999999999 1"), "invalid_json");
}

// More than 19 significant digits take simdjson's slow path, whose get_number() returned 0:
// a confidence of 0.95000000000000000001 read as 0 and opened a low-confidence incident.
TEST_F(DecoderTest, DecimalsWithManyDigitsReadAsTheirValue) {
  EXPECT_DOUBLE_EQ(Ok(Ev("decision", R"("confidence":0.95000000000000000001)")).confidence, 0.95);
  EXPECT_DOUBLE_EQ(Ok(Ev("decision", R"("confidence":-0.0,"amount":1234.5678901234567890123)"))
                       .amount.value_or(0),
                   1234.5678901234567);
  EXPECT_DOUBLE_EQ(*Ok(Ev("heartbeat", R"("cost_usd":0.12345678901234567890123)")).cost_usd,
                   0.12345678901234568);
  EXPECT_DOUBLE_EQ(
      *Ok(Ev("heartbeat", R"("cost_usd":123456789012345678901234567890.5  )")).cost_usd,
      1.2345678901234568e29);
  // The nearest double: 1.00000000000000000001 is 1, and 1e-400 is 0.
  EXPECT_DOUBLE_EQ(Ok(Ev("decision", R"("confidence":1.00000000000000000001)")).confidence, 1.0);
  EXPECT_EQ(Ok(Ev("decision", R"("confidence":0.00000000000000000000001e-400)")).confidence, 0.0);
  EXPECT_EQ(Reason(Ev("decision", R"("confidence":1.0000000000000000000001e1)")),
            "wrong_type:confidence");
}

// JSON Schema 2020-12 (and the topics/ schema) count 12.0 as an integer: so do integer fields.
TEST_F(DecoderTest, IntegerValuedDoublesAreIntegers) {
  const Event& e = Ok(Ev("tool_call", R"("tool":"t","tokens":5.0,"duration_ms":1e3,)"
                                      R"("blast_radius":{"users":12.0,"jobs":-0.0})"));
  EXPECT_EQ(e.tokens, 5);
  EXPECT_EQ(e.duration_ms, 1000);
  EXPECT_EQ(e.blast_radius_users, 12);
  EXPECT_EQ(e.blast_radius_jobs, 0);
  // The largest double below 2^63 fits int64; 2^63 itself does not.
  EXPECT_EQ(Ok(Ev("tool_call", R"("tool":"t","tokens":9.2233720368547748e18)")).tokens,
            int64_t{9223372036854774784});
  EXPECT_EQ(Reason(Ev("tool_call", R"("tool":"t","tokens":9223372036854775807.0)")),
            "wrong_type:tokens");
  EXPECT_EQ(Reason(Ev("heartbeat", R"("blast_radius":{"users":12.5})")),
            "wrong_type:blast_radius.users");
  EXPECT_EQ(Reason(Ev("tool_call", R"("tool":"t","tokens":-1.0)")), "wrong_type:tokens");
  EXPECT_EQ(Reason(Ev("tool_call", R"("tool":"t","duration_ms":1e-3)")), "wrong_type:duration_ms");
  const std::string heartbeat = R"({"event_id":"e","run_id":"r","type":"heartbeat","ts":)";
  EXPECT_EQ(Ok(heartbeat + "1795226400000.0}").ts_ms, kTsMs);
  EXPECT_EQ(Ok(heartbeat + "1.7952264e12}").ts_ms, kTsMs);
  EXPECT_EQ(Reason(heartbeat + "1795226400000.5}"), "bad_timestamp");
  EXPECT_EQ(Reason(heartbeat + "2.6e14}"), "bad_timestamp");  // past year 9999
}

TEST_F(DecoderTest, DecisionFieldsAndConfidenceRange) {
  const Event& e = Ok(Ev("decision", R"("step":"approve","confidence":0.7,"action":"refund",)"
                                     R"("risk":"external","amount":1250.5)"));
  EXPECT_DOUBLE_EQ(e.confidence, 0.7);
  EXPECT_EQ(e.action, "refund");
  EXPECT_EQ(e.risk, Risk::kExternal);
  EXPECT_DOUBLE_EQ(*e.amount, 1250.5);
  EXPECT_DOUBLE_EQ(Ok(Ev("decision", R"("confidence":1)")).confidence, 1.0);
  EXPECT_DOUBLE_EQ(Ok(Ev("decision", R"("confidence":0)")).confidence, 0.0);
  EXPECT_EQ(Reason(Ev("decision")), "missing_field:confidence");
  EXPECT_EQ(Reason(Ev("decision", R"("confidence":1.01)")), "wrong_type:confidence");
  EXPECT_EQ(Reason(Ev("decision", R"("confidence":-0.1)")), "wrong_type:confidence");
  EXPECT_EQ(Reason(Ev("decision", R"("confidence":"high")")), "wrong_type:confidence");
  EXPECT_EQ(Reason(Ev("decision", R"("confidence":0.9,"risk":"medium")")), "wrong_type:risk");
  EXPECT_EQ(Reason(Ev("decision", R"("confidence":0.9,"amount":"10")")), "wrong_type:amount");
}

TEST_F(DecoderTest, HandoffRequestedFieldsKeepRawOptionsAndEvidence) {
  const Event& e =
      Ok(Ev("handoff_requested",
            R"("step":"approve","reason":"needs sign-off","handoff_type":"risk_authorization",)"
            R"("options": [ {"label":"approve","risk":"high"}, {"label":"deny"} ] ,)"
            R"("evidence":{"invoice":"s3://b/inv.pdf"},"owner_role":"finance-lead",)"
            R"("next_action_after_decision":"post refund")"));
  EXPECT_EQ(e.reason, "needs sign-off");
  EXPECT_EQ(e.handoff_type, HandoffType::kRiskAuthorization);
  EXPECT_EQ(e.options_json, R"([ {"label":"approve","risk":"high"}, {"label":"deny"} ])");
  EXPECT_EQ(e.evidence_json, R"({"invoice":"s3://b/inv.pdf"})");
  EXPECT_EQ(e.owner_role, "finance-lead");
  EXPECT_EQ(e.next_action_after_decision, "post refund");
  EXPECT_EQ(Reason(Ev("handoff_requested")), "missing_field:reason");
  EXPECT_EQ(Reason(Ev("handoff_requested", R"("reason":"r","handoff_type":"vibes")")),
            "wrong_type:handoff_type");
  EXPECT_EQ(Reason(Ev("handoff_requested", R"("reason":"r","options":{})")), "wrong_type:options");
  EXPECT_EQ(Reason(Ev("handoff_requested", R"("reason":"r","evidence":[])")),
            "wrong_type:evidence");
}

// Contract section 2: options [{label, risk}], evidence {name: path}; packets copy them as
// they came, so a wrong shape would reach the decision's owner.
TEST_F(DecoderTest, OptionsMustBeObjectsAndEvidenceValuesStrings) {
  auto request = [](std::string_view fields) {
    return Ev("handoff_requested", std::string(R"("reason":"r",)") + std::string(fields));
  };
  for (const char* options : {"[1]", R"([{"label":"a"},"b"])", "[[]]", "[null]", R"([{"label":1}])",
                              R"([{"risk":{"level":"high"}}])", R"([{"label":"a","risk":true}])",
                              R"([{"label":"a"},{"label":[]}])", R"([{"label":"a","label":2}])"}) {
    EXPECT_EQ(Reason(request(std::string(R"("options":)") + options)), "wrong_type:options")
        << options;
  }
  for (const char* evidence : {R"({"a":1})", R"({"a":"p","b":{"c":"d"}})", R"({"a":null})",
                               R"({"a":["p"]})", R"({"a":"p","a":false})"}) {
    EXPECT_EQ(Reason(request(std::string(R"("evidence":)") + evidence)), "wrong_type:evidence")
        << evidence;
  }
  // Valid shapes pass through byte for byte, whitespace, escapes, other keys and all.
  const std::string options =
      R"([ {"label":"ship","risk":null,"cost":[1,{"x":2}]} , {"lab\u0065l":"h\u00e9"}, {} ])";
  const std::string evidence = R"({ "log" : "s3://b/l.txt", "n\u00e4me":"p\"q" })";
  const Event& e = Ok(request(R"("options":)" + options + R"(,"evidence":)" + evidence));
  EXPECT_EQ(e.options_json, options);
  EXPECT_EQ(e.evidence_json, evidence);
  EXPECT_EQ(Ok(request(R"("options":[],"evidence":{})")).options_json, "[]");
  // A repeated key: the last value counts, as everywhere.
  EXPECT_EQ(Ok(request(R"("options":[1],"options":[{"label":"a"}])")).options_json,
            R"([{"label":"a"}])");
  EXPECT_EQ(Ok(request(R"("options":[{"label":1,"label":"a"}])")).options_json,
            R"([{"label":1,"label":"a"}])");
  // Other types ignore these fields, whatever their shape.
  EXPECT_EQ(Reason(Ev("heartbeat", R"("options":[1],"evidence":{"a":1})")), "");
}

TEST_F(DecoderTest, RunCompletedRequiresKnownOutcome) {
  EXPECT_EQ(Ok(Ev("run_completed", R"("outcome":"failure")")).outcome, Outcome::kFailure);
  EXPECT_EQ(Ok(Ev("run_completed", R"("outcome":"cancelled")")).outcome, Outcome::kCancelled);
  EXPECT_EQ(Reason(Ev("run_completed")), "missing_field:outcome");
  EXPECT_EQ(Reason(Ev("run_completed", R"("outcome":"meh")")), "wrong_type:outcome");
}

TEST_F(DecoderTest, CommonFieldsOnAnyEvent) {
  const Event& e = Ok(
      Ev("heartbeat", R"("workflow_id":"w","objective":"o","recommended_action":"retry",)"
                      R"("rollback_command":"undo --all","blast_radius":{"users":1200,"jobs":3},)"
                      R"("owner":{"backup":"bo"},"attrs":{"k":[1,2,{"z":null}]},"cost_usd":1)"));
  EXPECT_EQ(e.workflow_id, "w");
  EXPECT_EQ(e.objective, "o");
  EXPECT_EQ(e.recommended_action, "retry");
  EXPECT_EQ(e.rollback_command, "undo --all");
  EXPECT_EQ(e.blast_radius_users, 1200);
  EXPECT_EQ(e.blast_radius_jobs, 3);
  EXPECT_FALSE(e.owner_primary.has_value());
  EXPECT_EQ(e.owner_backup, "bo");
  EXPECT_EQ(e.attrs_json, R"({"k":[1,2,{"z":null}]})");
  EXPECT_DOUBLE_EQ(*e.cost_usd, 1.0);
  EXPECT_EQ(Reason(Ev("heartbeat", R"("blast_radius":{"users":-1})")),
            "wrong_type:blast_radius.users");
  EXPECT_EQ(Reason(Ev("heartbeat", R"("blast_radius":{"jobs":2.5})")),
            "wrong_type:blast_radius.jobs");
  EXPECT_EQ(Reason(Ev("heartbeat", R"("blast_radius":10)")), "wrong_type:blast_radius");
  EXPECT_EQ(Reason(Ev("heartbeat", R"("attrs":[1])")), "wrong_type:attrs");
  EXPECT_EQ(Reason(Ev("heartbeat", R"("workflow_id":1)")), "wrong_type:workflow_id");
  EXPECT_EQ(Reason(Ev("heartbeat", R"("rollback_command":false)")), "wrong_type:rollback_command");
}

TEST_F(DecoderTest, UnknownTypeDecodesAsUnknownWithoutCheckingItsFields) {
  const Event& e = Ok(Ev("agent_mood", R"("confidence":"very","step":[1])"));
  EXPECT_EQ(e.type, EventType::kUnknown);
  EXPECT_EQ(e.type_name, "agent_mood");
  EXPECT_EQ(e.run_id, "r1");
  // The envelope still applies to unknown types.
  EXPECT_EQ(Reason(R"({"event_id":"e","run_id":"r","type":"agent_mood"})"), "missing_field:ts");
}

TEST_F(DecoderTest, AcksNeedNoEventId) {
  const Event& ack =
      Ok(R"({"type":"handoff_acknowledged","run_id":"r1","packet_id":"r1#1","by":"ana","ts":5})");
  EXPECT_EQ(ack.type, EventType::kHandoffAcknowledged);
  EXPECT_TRUE(ack.IsAck());
  EXPECT_EQ(ack.event_id, "");
  EXPECT_EQ(ack.packet_id, "r1#1");
  EXPECT_EQ(ack.by, "ana");
  EXPECT_EQ(ack.ts_ms, 5);
  const Event& resolve = Ok(R"({"type":"handoff_resolved","run_id":"r1","ts":6})");
  EXPECT_EQ(resolve.type, EventType::kHandoffResolved);
  EXPECT_FALSE(resolve.packet_id.has_value());
  EXPECT_EQ(Reason(R"({"type":"handoff_resolved","ts":6})"), "missing_field:run_id");
  EXPECT_EQ(Reason(R"({"type":"handoff_resolved","run_id":"r1"})"), "missing_field:ts");
  EXPECT_EQ(Reason(R"({"type":"handoff_resolved","run_id":"r1","ts":6,"packet_id":1})"),
            "wrong_type:packet_id");
}

TEST_F(DecoderTest, EscapedStringsAreUnescaped) {
  const Event& e =
      Ok(R"({"event_id":"e\u0031","run_id":"run \"q\"\\\/","type":"heart\u0062eat","ts":1,)"
         R"("step":"caf\u00e9 \ud83d\ude00\n"})");
  EXPECT_EQ(e.event_id, "e1");
  EXPECT_EQ(e.run_id, "run \"q\"\\/");
  EXPECT_EQ(e.type, EventType::kHeartbeat);
  EXPECT_EQ(e.step, "caf\xc3\xa9 \xf0\x9f\x98\x80\n");
  // Escaped keys name the same field.
  EXPECT_EQ(Ok(R"({"event_id":"e","run\u005fid":"r","type":"heartbeat","ts":1})").run_id, "r");
}

TEST_F(DecoderTest, BackslashAnywhereInAStringIsUnescaped) {
  // Strings without escapes are read in place, 8 bytes at a time; an escape at any offset,
  // including the word boundaries, must still be seen and unescaped.
  for (size_t at = 0; at < 20; ++at) {
    std::string raw(20, 'a');
    raw.replace(at, 1, "\\\\");  // an escaped backslash: two chars in JSON, one decoded
    std::string expected(20, 'a');
    expected[at] = '\\';
    EXPECT_EQ(Ok(Ev("heartbeat", "\"step\":\"" + raw + "\"")).step, expected) << at;
  }
  EXPECT_EQ(Ok(Ev("heartbeat", R"("step":"ends with \\")")).step, "ends with \\");
  EXPECT_EQ(Ok(Ev("heartbeat", R"("step":"")")).step, "");
}

TEST_F(DecoderTest, UnknownFieldsAreIgnoredButMustBeValidJson) {
  EXPECT_EQ(Ok(Ev("heartbeat", R"("x-trace":{"id":[1,"two",{"3":null}]},"zeta":"\u00e9")")).type,
            EventType::kHeartbeat);
  EXPECT_EQ(Reason(Ev("heartbeat", R"("zeta":"\x")")), "invalid_json");
}

TEST_F(DecoderTest, NestingDeeperThanAThousandLevelsIsInvalidJsonNotACrash) {
  // Past the fast path's 32 levels simdjson reads the event; up to 1,000 levels (the root object
  // being level 1) an unknown field still decodes, one more is refused, and 200,000 levels are
  // refused too rather than recursed into once per bracket (which overflowed the stack).
  auto nested = [](int levels, char open, char close) {
    std::string v;
    for (int i = 0; i < levels; ++i) v += open == '{' ? std::string(R"({"k":)") : "[";
    v += "1";
    v += std::string(static_cast<size_t>(levels), close);
    return v;
  };
  EXPECT_EQ(Ok(Ev("heartbeat", "\"x\":" + nested(999, '[', ']'))).type, EventType::kHeartbeat);
  EXPECT_EQ(Ok(Ev("heartbeat", "\"x\":" + nested(999, '{', '}'))).type, EventType::kHeartbeat);
  EXPECT_EQ(Reason(Ev("heartbeat", "\"x\":" + nested(1000, '[', ']'))), "invalid_json");
  EXPECT_EQ(Reason(Ev("heartbeat", "\"x\":" + nested(1000, '{', '}'))), "invalid_json");
  EXPECT_EQ(Reason(Ev("heartbeat", "\"attrs\":" + nested(1000, '{', '}'))), "invalid_json");
  EXPECT_EQ(Reason(Ev("heartbeat", "\"owner\":{\"team\":" + nested(999, '[', ']') + "}")),
            "invalid_json");
  EXPECT_EQ(Reason(Ev("heartbeat", "\"x\":" + nested(200000, '[', ']'))), "invalid_json");
  EXPECT_EQ(Reason(R"({"event_id":"e1","run_id":)" + std::string(200000, '[')), "invalid_json");
  EXPECT_EQ(Reason(std::string(200000, '[') + std::string(200000, ']')), "invalid_json");
  EXPECT_EQ(Reason(nested(999, '[', ']')), "not_object");
  // The decoder is still good for the next event.
  EXPECT_EQ(Ok(Ev("heartbeat")).run_id, "r1");
}

TEST_F(DecoderTest, RepeatedKeyLastOneWins) {
  EXPECT_EQ(Ok(R"({"event_id":"e","run_id":"a","run_id":"b","type":"heartbeat","ts":1})").run_id,
            "b");
  EXPECT_EQ(Reason(R"({"event_id":"e","run_id":"a","run_id":1,"type":"heartbeat","ts":1})"),
            "wrong_type:run_id");
  // A repeated object replaces the earlier one entirely, subfields included.
  const Event& e =
      Ok(Ev("heartbeat", R"("owner":{"primary":"a","backup":"b"},"owner":{"primary":"c"})"));
  EXPECT_EQ(e.owner_primary, "c");
  EXPECT_FALSE(e.owner_backup.has_value());
}

TEST_F(DecoderTest, ViewsOutliveTheInputBufferUntilTheNextDecode) {
  auto input = std::make_unique<std::string>(
      Ev("tool_call", R"("tool":"t\u00e9","attrs":{"a":1},"step":"plain")"));
  ASSERT_EQ(decoder_.Decode(*input, &event_), "");
  input.reset();
  EXPECT_EQ(event_.tool, "t\xc3\xa9");
  EXPECT_EQ(event_.attrs_json, R"({"a":1})");
  EXPECT_EQ(event_.step, "plain");
  EXPECT_EQ(event_.run_id, "r1");
}

TEST_F(DecoderTest, EnvelopeValidOnlyWhenTheFailureIsInTheTypesFields) {
  // A dead-lettered event with a good envelope still moves the watermark (contract section 11).
  EXPECT_EQ(Reason(Ev("decision", R"("confidence":"high")")), "wrong_type:confidence");
  EXPECT_TRUE(decoder_.envelope_valid());
  EXPECT_EQ(event_.run_id, "r1");
  EXPECT_EQ(event_.ts_ms, kTsMs);
  EXPECT_EQ(Reason(R"({"event_id":"e","run_id":"r","type":"heartbeat","ts":"x"})"),
            "bad_timestamp");
  EXPECT_FALSE(decoder_.envelope_valid());
  EXPECT_EQ(Reason("[1]"), "not_object");
  EXPECT_FALSE(decoder_.envelope_valid());
  Ok(Ev("heartbeat"));
  EXPECT_FALSE(decoder_.envelope_valid());
}

TEST_F(DecoderTest, ReusedDecoderDoesNotLeakFieldsBetweenEvents) {
  Ok(Ev("step_failed", R"("step":"p","error":{"code":"x"},"retryable":true,"attrs":{})"));
  const Event& e = Ok(Ev("heartbeat"));
  EXPECT_FALSE(e.step.has_value());
  EXPECT_FALSE(e.retryable);
  EXPECT_FALSE(e.attrs_json.has_value());
  EXPECT_EQ(e.error_code, "");
}

TEST_F(DecoderTest, DecodePaddedMatchesDecode) {
  std::string json = Ev("decision", R"("confidence":0.5,"attrs":{"x":true})");
  std::string buffer = json + std::string(simdjson::SIMDJSON_PADDING, '\0');
  Event padded;
  ASSERT_EQ(
      decoder_.DecodePadded(std::string_view(buffer.data(), json.size()), buffer.size(), &padded),
      "");
  EXPECT_EQ(padded.attrs_json, R"({"x":true})");
  EXPECT_EQ(padded.attrs_json->data(), buffer.data() + json.find("{\"x\""));  // no copy
  EXPECT_DOUBLE_EQ(padded.confidence, 0.5);
}

TEST_F(DecoderTest, EveryTruncationOfAValidEventIsRejectedCleanly) {
  std::string json = Ev(
      "handoff_requested",
      R"("reason":"r\"x","options":[{"label":"a"}],"evidence":{"e":"p"},"blast_radius":{"users":3},)"
      R"("attrs":{"n":[1.5e3,-2,true,null]})");
  ASSERT_EQ(Reason(json), "");
  for (size_t n = 0; n < json.size(); ++n) {
    std::string reason = Reason(std::string_view(json.data(), n));
    EXPECT_TRUE(reason == "invalid_json" || reason == "not_object") << n << ": " << reason;
  }
}

TEST_F(DecoderTest, FastPathFleetEventsDecodeAsWithSimdjsonAlone) {
  FleetOptions options;
  options.seed = 11;
  options.failure_rate = 0.5;  // every kind of failure event, often
  options.invalid_rate = 0.02;
  Fleet fleet(options);
  Decoder fast(1 << 20);
  Decoder reference(1 << 20, /*fast_path=*/false);
  std::string line;
  int valid = 0;
  for (int i = 0; i < 50000; ++i) {
    line.clear();
    fleet.Next(&line);
    std::string expected = Outcome(&reference, line);
    ASSERT_EQ(Outcome(&fast, line), expected) << line;
    valid += expected.starts_with(" ");
  }
  EXPECT_GT(valid, 45000);  // the comparison covered real events, not only rejections
}

// Single-byte edits of events of every shape: whatever the fast path accepts must be what
// simdjson accepts, with the same values; the rest must reach simdjson's verdict.
TEST_F(DecoderTest, FastPathEditedEventsDecodeAsWithSimdjsonAlone) {
  const std::vector<std::string> samples = {
      Ev("run_started",
         R"("workflow_id":"w","objective":"o","severity":"P2","owner":{"primary":"a","backup":null},)"
         R"("attrs":{"k":[1,2.5,{"x":false}],"e":{}},"blast_radius":{"users":10,"jobs":0})"),
      Ev("step_failed", R"("step":"s","error":{"code":"c","message":"m"},"retryable":true)"),
      Ev("tool_call",
         R"("tool":"t","status":"error","side_effect":"external","cost_usd":0.0125,"tokens":1234,)"
         R"("duration_ms":0)"),
      Ev("decision", R"("confidence":0.61,"action":"a","risk":"external","amount":1999.99)"),
      Ev("handoff_requested",
         R"("reason":"r","handoff_type":"evidence_gap","options":[{"label":"a"},{}],)"
         R"("evidence":{"e":"p"},"owner_role":"o","next_action_after_decision":"n")"),
      R"({"run_id":"r1","type":"handoff_acknowledged","ts":1795226400000,"packet_id":"r1#1","by":"x"})",
      " { \"event_id\" : \"e\" ,\t\"run_id\":\"r\",\r\n\"type\":\"heartbeat\",\"ts\":0 , \"a\":[ ] "
      "} ",
  };
  const std::string edits = std::string("\"\\{}[],: 0159-.eEtfnul\x01\x7f\x80\xc3", 26);
  Decoder fast(1 << 20);
  Decoder reference(1 << 20, /*fast_path=*/false);
  int cases = 0;
  for (const std::string& sample : samples) {
    ASSERT_TRUE(Outcome(&reference, sample).starts_with(" ")) << sample;
    std::vector<std::string> variants;
    for (size_t i = 0; i <= sample.size(); ++i) {
      variants.push_back(sample.substr(0, i));
      if (i == sample.size()) break;
      variants.push_back(sample.substr(0, i) + sample.substr(i + 1));
      for (char c : edits) {
        std::string replaced = sample;
        replaced[i] = c;
        variants.push_back(replaced);
        variants.push_back(sample.substr(0, i) + c + sample.substr(i));
      }
    }
    // And pairs of random edits, which reach states one edit cannot (a key closed early and
    // reopened elsewhere, a number split in two).
    std::mt19937 random(7);
    for (int n = 0; n < 2000; ++n) {
      std::string v = sample;
      for (int k = 0; k < 2; ++k) {
        size_t at = random() % v.size();
        char c = edits[random() % edits.size()];
        if (random() % 2 == 0) {
          v[at] = c;
        } else {
          v.insert(v.begin() + static_cast<std::ptrdiff_t>(at), c);
        }
      }
      variants.push_back(v);
    }
    for (const std::string& v : variants) {
      ASSERT_EQ(Outcome(&fast, v), Outcome(&reference, v)) << v;
      ++cases;
    }
  }
  EXPECT_GT(cases, 10000);
}

TEST_F(DecoderTest, FastPathNumbersReadAsWithSimdjsonAlone) {
  const std::vector<std::string> numbers = {"0",
                                            "7",
                                            "10",
                                            "123456789012345678",
                                            "1234567890123456789",
                                            "18446744073709551616",
                                            "0.1",
                                            "0.5",
                                            "1.0",
                                            "2.675",
                                            "0.30000000000000004",
                                            "1.7976931348623157",
                                            "9007199254740993.5",
                                            "0.000000000000000000001",
                                            "0.0000000000000000000000001",
                                            "123456.7890123",
                                            "00",
                                            "01",
                                            "1.",
                                            ".5",
                                            "-0",
                                            "-1",
                                            "-0.25",
                                            "1e3",
                                            "1E-2",
                                            "0.1e1",
                                            "1.5x",
                                            "12,",
                                            "0x10",
                                            "9223372036854775807",
                                            "9223372036854775808",
                                            "99999999999999999999",
                                            "-99999999999999999999",
                                            "1e400",
                                            "-1e400",
                                            "1e-400",
                                            "12.0",
                                            "-12.0",
                                            "1e3",
                                            "9223372036854775807.0",
                                            "0.12345678901234567890123"};
  Decoder fast(1 << 20);
  Decoder reference(1 << 20, /*fast_path=*/false);
  for (const std::string& n : numbers) {
    for (const char* field : {"\"cost_usd\":", "\"tokens\":", "\"ts\":", "\"zz\":"}) {
      std::string json = Ev("tool_call", std::string(R"("tool":"t",)") + field + n);
      if (std::string_view(field) == "\"ts\":") {
        json = R"({"event_id":"e","run_id":"r","type":"heartbeat","ts":)" + n + "}";
      }
      EXPECT_EQ(Outcome(&fast, json), Outcome(&reference, json)) << json;
    }
  }
}

}  // namespace
}  // namespace handoffd

// Engine tests: detection, packets, gates, SLA timers, acknowledgements, audit records and the
// changelog, driven with Event structs (no decoder) against DefaultConfig() plus a small catalog
// mirroring tests/data/test-catalog.yaml. Every packet is parsed back as JSON.
#include "processor/engine.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "processor/time_format.h"

namespace handoffd {
namespace {

// --- Fixtures and fakes. ---

struct Record {
  TopicRole role;
  std::string key;
  std::string value;
  std::string ce_id;
  std::string ce_type;
  int64_t time_ms;
};

class RecordingSink : public OutputSink {
 public:
  void Emit(const OutputRecord& r) override {
    records.push_back({r.role, std::string(r.key), std::string(r.value), std::string(r.ce_id),
                       std::string(r.ce_type), r.time_ms});
  }
  std::vector<Record> records;
};

class FakeObserver : public EngineObserver {
 public:
  void OnAcknowledged(Severity s, double seconds) override { acks.push_back({s, seconds}); }
  void OnSlaBreach(std::string_view workflow, Severity, int level) override {
    breaches.push_back(std::string(workflow) + "/" + std::to_string(level));
  }
  void OnExpired(Severity) override { ++expired; }
  void OnIncidentOpened(std::string_view workflow, FailureClass cls, Severity) override {
    opened.push_back(std::string(workflow) + "/" + std::string(ToString(cls)));
  }
  void OnLimitHit(std::string_view limit) override { limits.push_back(std::string(limit)); }
  void OnActiveRuns(int64_t count) override { active_runs = count; }
  void OnOpenPackets(Severity s, int64_t count) override {
    open_packets[static_cast<size_t>(s)] = count;
  }
  void OnRunStarted(std::string_view workflow) override {
    started.push_back(std::string(workflow));
  }
  void OnScored(Severity, double raw, double final_score) override {
    scores.push_back({raw, final_score});
  }
  std::vector<std::pair<Severity, double>> acks;
  std::vector<std::string> breaches;
  std::vector<std::string> opened;
  std::vector<std::string> limits;
  std::vector<std::string> started;
  std::vector<std::pair<double, double>> scores;
  int expired = 0;
  int64_t active_runs = 0;
  std::array<int64_t, kSeverityCount> open_packets{};
};

int64_t T(const char* rfc3339) {
  int64_t ms = 0;
  EXPECT_TRUE(ParseRfc3339Ms(rfc3339, &ms)) << rfc3339;
  return ms;
}

constexpr int64_t kBase = 1772416800000;  // 2026-03-02T02:00:00.000Z
int64_t At(double seconds) { return kBase + static_cast<int64_t>(seconds * 1000); }

// Fluent Event builder; all views point at string literals or test-owned strings.
struct E {
  Event e;
  E(EventType type, std::string_view id, std::string_view run, int64_t ts) {
    e.type = type;
    e.type_name = ToString(type);
    e.event_id = id;
    e.run_id = run;
    e.ts_ms = ts;
  }
  E& Workflow(std::string_view v) { return e.workflow_id = v, *this; }
  E& Step(std::string_view v) { return e.step = v, *this; }
  E& Objective(std::string_view v) { return e.objective = v, *this; }
  E& Rollback(std::string_view v) { return e.rollback_command = v, *this; }
  E& Action(std::string_view v) { return e.recommended_action = v, *this; }
  E& Owners(std::string_view p, std::string_view b) {
    e.owner_primary = p;
    e.owner_backup = b;
    return *this;
  }
  E& Backup(std::string_view b) { return e.owner_backup = b, *this; }
  E& Blast(int64_t users, int64_t jobs) {
    e.blast_radius_users = users;
    e.blast_radius_jobs = jobs;
    return *this;
  }
  E& Severity(handoffd::Severity s) { return e.severity = s, *this; }
  E& Error(std::string_view code, std::string_view message = {}) {
    e.error_code = code;
    if (!message.empty()) e.error_message = message;
    return *this;
  }
  E& Retryable() { return e.retryable = true, *this; }
  E& Tool(std::string_view tool, ToolStatus status, std::optional<SideEffect> side) {
    e.tool = tool;
    e.tool_status = status;
    e.side_effect = side;
    return *this;
  }
  E& Cost(double usd) { return e.cost_usd = usd, *this; }
  E& Confidence(double c) { return e.confidence = c, *this; }
  E& Risk(handoffd::Risk r) { return e.risk = r, *this; }
  E& Amount(double a) { return e.amount = a, *this; }
  E& Reason(std::string_view r) { return e.reason = r, *this; }
  E& Type(HandoffType t) { return e.handoff_type = t, *this; }
  E& Outcome(handoffd::Outcome o) { return e.outcome = o, *this; }
  E& Attrs(std::string_view json) { return e.attrs_json = json, *this; }
  E& PacketId(std::string_view id) { return e.packet_id = id, *this; }
  E& By(std::string_view by) { return e.by = by, *this; }
};

E Ack(std::string_view run, int64_t ts) { return E(EventType::kHandoffAcknowledged, "", run, ts); }
E Resolved(std::string_view run, int64_t ts) { return E(EventType::kHandoffResolved, "", run, ts); }

// A parsed JSON record; Get returns strings unquoted and anything else as minified JSON, and
// "<absent>" for a missing path.
class Json {
 public:
  explicit Json(const std::string& text) : text_(text) {
    auto result = parser_.parse(text_);
    EXPECT_FALSE(result.error()) << "not JSON: " << text;
    if (!result.error()) root_ = result.value();
  }
  std::string Get(std::string_view pointer) const {
    auto el = root_.at_pointer(pointer);
    if (el.error()) return "<absent>";
    if (el.is_string()) return std::string(el.get_string().value());
    return simdjson::to_string(el.value());
  }
  std::vector<std::string> Keys() const {
    std::vector<std::string> keys;
    simdjson::dom::object object;
    if (root_.get(object)) return keys;
    for (simdjson::dom::key_value_pair field : object) keys.emplace_back(field.key);
    return keys;
  }

 private:
  simdjson::padded_string text_;
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
};

Config SampleConfig() {
  Config c = DefaultConfig();
  WorkflowConfig rr;
  rr.id = "refund-review";
  rr.severity = Severity::kP2;
  rr.objective = "Prepare refund decision material for high-value requests";
  rr.owner_primary = "customer-success-lead";
  rr.owner_backup = "support-oncall";
  rr.rollback_command = "refundctl void-drafts --run-id <run_id>";
  rr.blast_radius_users = 10;
  rr.blast_radius_jobs = 1;
  rr.confidence_threshold = 0.9;
  rr.amount_threshold = 500;
  c.workflows.emplace(rr.id, rr);
  WorkflowConfig lc;
  lc.id = "ledger-close";
  lc.severity = Severity::kP1;
  lc.objective = "Close the month's ledger";
  lc.owner_primary = "finance-ops";
  lc.blast_radius_users = 200;
  lc.blast_radius_jobs = 1;
  c.workflows.emplace(lc.id, lc);
  return c;
}

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() : config_(SampleConfig()) {}

  Engine& engine() {
    if (!engine_) engine_ = std::make_unique<Engine>(config_, &observer_);
    return *engine_;
  }
  void Send(const E& e) { engine().Process(e.e, {"agent.events", 0, offset_++}, &sink_); }
  void Advance(int64_t ms) { engine().AdvanceWatermark(ms, &sink_); }

  std::vector<Record> On(TopicRole role) const {
    std::vector<Record> out;
    for (const Record& r : sink_.records) {
      if (r.role == role) out.push_back(r);
    }
    return out;
  }
  std::vector<Record> Packets() const {
    std::vector<Record> out;
    for (const Record& r : sink_.records) {
      if (r.role != TopicRole::kAudit) out.push_back(r);
    }
    return out;
  }
  // "action@revision" of every audit record, in order.
  std::vector<std::string> AuditTrail() const {
    std::vector<std::string> out;
    for (const Record& r : On(TopicRole::kAudit)) {
      Json j(r.value);
      out.push_back(j.Get("/packet_id") + ":" + j.Get("/action") + "@" + j.Get("/revision"));
    }
    return out;
  }

  // A run of an uncatalogued workflow with one step that succeeded.
  void StartRun(std::string_view run, std::string_view workflow = "adhoc") {
    Send(E(EventType::kRunStarted, "s0", run, At(0)).Workflow(workflow).Objective("Do a thing"));
    Send(E(EventType::kStepSucceeded, "s1", run, At(1)).Step("fetch"));
  }

  Config config_;
  FakeObserver observer_;
  RecordingSink sink_;
  std::unique_ptr<Engine> engine_;
  int64_t offset_ = 0;
};

// --- Detection. ---

struct CodeCase {
  const char* code;
  FailureClass cls;
};

TEST_F(EngineTest, EveryBuiltInErrorCodeOpensItsClass) {
  const CodeCase cases[] = {
      {"not_found", FailureClass::kMissingInput},
      {"duplicate", FailureClass::kDuplicateEntity},
      {"conflict", FailureClass::kConflictingContext},
      {"timeout", FailureClass::kDownstreamWriteFailure},
      {"validation_error", FailureClass::kSchemaInvalid},
      {"forbidden", FailureClass::kPermissionDenied},
      {"unsupported", FailureClass::kUnsupportedRequest},
      {"kaboom", FailureClass::kUnclassifiedFailure},
  };
  std::vector<std::string> runs;
  for (const CodeCase& c : cases) runs.push_back(std::string("run-") + c.code);
  for (size_t i = 0; i < runs.size(); ++i) {
    StartRun(runs[i]);
    Send(E(EventType::kStepFailed, "f", runs[i], At(2)).Step("write").Error(cases[i].code, "boom"));
  }
  std::vector<Record> packets = Packets();
  ASSERT_EQ(packets.size(), runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    Json p(packets[i].value);
    EXPECT_EQ(p.Get("/run_id"), runs[i]);
    EXPECT_EQ(p.Get("/failure_class"), ToString(cases[i].cls)) << cases[i].code;
    EXPECT_EQ(p.Get("/kind"), "exception");
    EXPECT_EQ(p.Get("/failing_step"), "write");
    EXPECT_EQ(p.Get("/error_summary"), std::string(cases[i].code) + ": boom");
    EXPECT_EQ(p.Get("/last_successful_step"), "fetch");
    EXPECT_EQ(p.Get("/packet_id"), runs[i] + "#1");
  }
}

TEST_F(EngineTest, UserRulesComeBeforeBuiltInRules) {
  config_.rules.insert(config_.rules.begin(), Rule{{"timeout"}, FailureClass::kPermissionDenied});
  StartRun("r");
  Send(E(EventType::kStepFailed, "f", "r", At(2)).Step("write").Error("timeout"));
  ASSERT_EQ(Packets().size(), 1u);
  EXPECT_EQ(Json(Packets()[0].value).Get("/failure_class"), "permission_denied");
}

TEST_F(EngineTest, ToolCallErrorWithSideEffectIsADownstreamWriteFailureAndWithoutOneIsNothing) {
  StartRun("r");
  Send(E(EventType::kToolCall, "t1", "r", At(2)).Step("a").Tool("db", ToolStatus::kError, {}));
  Send(E(EventType::kToolCall, "t2", "r", At(3))
           .Step("b")
           .Tool("db", ToolStatus::kError, SideEffect::kNone));
  EXPECT_TRUE(Packets().empty());
  Send(E(EventType::kToolCall, "t3", "r", At(4))
           .Step("c")
           .Tool("erp.post", ToolStatus::kError, SideEffect::kIrreversible));
  ASSERT_EQ(Packets().size(), 1u);
  Json p(Packets()[0].value);
  EXPECT_EQ(p.Get("/failure_class"), "downstream_write_failure");
  EXPECT_EQ(p.Get("/failing_step"), "c");
  EXPECT_EQ(p.Get("/tool_calls"), "3");
}

TEST_F(EngineTest, RetryableFailuresOpenRetryExhaustedOnlyAfterMaxRetriesOnOneStep) {
  StartRun("r");
  for (int i = 0; i < 3; ++i) {
    Send(E(EventType::kStepFailed,
           i == 0   ? "a0"
           : i == 1 ? "a1"
                    : "a2",
           "r", At(2 + i))
             .Step("call")
             .Error("timeout")
             .Retryable());
  }
  // Retries on another step count separately.
  Send(E(EventType::kStepFailed, "b0", "r", At(6)).Step("other").Error("timeout").Retryable());
  EXPECT_TRUE(Packets().empty());
  Send(E(EventType::kStepFailed, "a3", "r", At(7)).Step("call").Error("timeout").Retryable());
  ASSERT_EQ(Packets().size(), 1u);
  Json p(Packets()[0].value);
  EXPECT_EQ(p.Get("/failure_class"), "retry_exhausted");
  EXPECT_EQ(p.Get("/failing_step"), "call");
  EXPECT_EQ(p.Get("/retries"), "4");
}

TEST_F(EngineTest, WorkflowMaxRetriesOverridesTheDefault) {
  config_.workflows["refund-review"].max_retries = 0;
  StartRun("r", "refund-review");
  Send(E(EventType::kStepFailed, "a0", "r", At(2)).Step("call").Error("timeout").Retryable());
  ASSERT_EQ(Packets().size(), 1u);
  EXPECT_EQ(Json(Packets()[0].value).Get("/failure_class"), "retry_exhausted");
}

TEST_F(EngineTest, LowConfidenceUsesTheWorkflowThreshold) {
  StartRun("adhoc-run");
  StartRun("rr-run", "refund-review");
  // 0.88 is above the default 0.85 but below refund-review's 0.9.
  Send(E(EventType::kDecision, "d", "adhoc-run", At(2)).Step("s").Confidence(0.88));
  Send(E(EventType::kDecision, "d", "rr-run", At(2)).Step("s").Confidence(0.88));
  ASSERT_EQ(Packets().size(), 1u);
  Json p(Packets()[0].value);
  EXPECT_EQ(p.Get("/run_id"), "rr-run");
  EXPECT_EQ(p.Get("/failure_class"), "low_confidence");
}

TEST_F(EngineTest, DecisionPrecedencePicksLowConfidenceAndFlagsTheOthers) {
  StartRun("r", "refund-review");
  Send(E(EventType::kDecision, "d", "r", At(2))
           .Step("approve")
           .Confidence(0.5)
           .Risk(Risk::kIrreversible)
           .Amount(900));
  ASSERT_EQ(Packets().size(), 1u);
  Json p(Packets()[0].value);
  EXPECT_EQ(p.Get("/failure_class"), "low_confidence");
  EXPECT_EQ(p.Get("/flags"), R"(["risk_authorization","business_judgment"])");
  EXPECT_EQ(p.Get("/kind"), "exception");
}

TEST_F(EngineTest, DecisionDoesNotFallThroughWhenItsClassIsAlreadyOpenOnTheStep) {
  StartRun("r");
  Send(E(EventType::kDecision, "d1", "r", At(2)).Step("approve").Confidence(0.5));
  Send(E(EventType::kDecision, "d2", "r", At(3))
           .Step("approve")
           .Confidence(0.4)
           .Risk(Risk::kExternal));
  ASSERT_EQ(Packets().size(), 1u);
  // On another step the same decision opens a new incident, numbered 2.
  Send(E(EventType::kDecision, "d3", "r", At(4)).Step("pay").Confidence(0.4));
  ASSERT_EQ(Packets().size(), 2u);
  EXPECT_EQ(Json(Packets()[1].value).Get("/packet_id"), "r#2");
}

TEST_F(EngineTest, RiskyAndLargeDecisionsArePlannedHandoffsOnDecisions) {
  StartRun("r", "refund-review");
  Send(E(EventType::kDecision, "d1", "r", At(2))
           .Step("wire")
           .Confidence(0.99)
           .Risk(Risk::kExternal)
           .Amount(10000));
  Send(E(EventType::kDecision, "d2", "r", At(3)).Step("refund").Confidence(0.99).Amount(501));
  Send(E(EventType::kDecision, "d3", "r", At(4)).Step("refund2").Confidence(0.99).Amount(500));
  std::vector<Record> decisions = On(TopicRole::kDecisions);
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(Packets().size(), 2u);
  Json a(decisions[0].value);
  EXPECT_EQ(a.Get("/failure_class"), "risk_authorization");
  EXPECT_EQ(a.Get("/kind"), "planned");
  EXPECT_EQ(a.Get("/gate"), "decision");
  EXPECT_EQ(a.Get("/flags"), R"(["business_judgment"])");
  EXPECT_EQ(a.Get("/handoff_type"), "risk_authorization");
  Json b(decisions[1].value);
  EXPECT_EQ(b.Get("/failure_class"), "business_judgment");
  EXPECT_EQ(b.Get("/failing_step"), "refund");
}

TEST_F(EngineTest, HandoffRequestedOpensItsTypeAndCarriesThePlannedFields) {
  StartRun("r");
  E req(EventType::kHandoffRequested, "h1", "r", At(2));
  req.Step("decide").Reason("needs a human").Type(HandoffType::kEvidenceGap);
  req.e.options_json = R"([{"label":"a","risk":"x"}])";
  req.e.evidence_json = R"({"file":"a.md"})";
  req.e.owner_role = "lead";
  req.e.next_action_after_decision = "send reply";
  Send(req);
  Send(E(EventType::kHandoffRequested, "h2", "r", At(3)).Step("s2").Reason("untyped"));
  Send(E(EventType::kHandoffRequested, "h3", "r", At(4))
           .Step("s3")
           .Reason("risky")
           .Type(HandoffType::kRiskAuthorization));
  std::vector<Record> decisions = On(TopicRole::kDecisions);
  ASSERT_EQ(decisions.size(), 3u);
  Json a(decisions[0].value);
  EXPECT_EQ(a.Get("/failure_class"), "evidence_gap");
  EXPECT_EQ(a.Get("/error_summary"), "needs a human");
  EXPECT_EQ(a.Get("/trigger_reason"), "needs a human");
  EXPECT_EQ(a.Get("/options/0/label"), "a");
  EXPECT_EQ(a.Get("/evidence/file"), "a.md");
  EXPECT_EQ(a.Get("/owner_role"), "lead");
  EXPECT_EQ(a.Get("/next_action_after_decision"), "send reply");
  Json b(decisions[1].value);
  EXPECT_EQ(b.Get("/failure_class"), "business_judgment");
  EXPECT_EQ(b.Get("/options"), "null");
  EXPECT_EQ(Json(decisions[2].value).Get("/failure_class"), "risk_authorization");
}

TEST_F(EngineTest, BudgetExceededOpensOncePerRun) {
  WorkflowConfig& wf = config_.workflows["refund-review"];
  wf.budget.cost_usd = 1.0;
  wf.budget.tool_calls = 2;
  StartRun("r", "refund-review");
  Send(E(EventType::kToolCall, "t1", "r", At(2))
           .Step("a")
           .Tool("x", ToolStatus::kOk, {})
           .Cost(0.75));
  Send(
      E(EventType::kToolCall, "t2", "r", At(3)).Step("a").Tool("x", ToolStatus::kOk, {}).Cost(0.5));
  ASSERT_EQ(Packets().size(), 1u);
  Json p(Packets()[0].value);
  EXPECT_EQ(p.Get("/failure_class"), "budget_exceeded");
  EXPECT_EQ(p.Get("/error_summary"), "cost 1.25 USD over budget 1 USD");
  EXPECT_EQ(p.Get("/cost_usd"), "1.25");
  // The tool-call budget is now also exceeded, but budget_exceeded opens once per run.
  Send(E(EventType::kToolCall, "t3", "r", At(4)).Step("b").Tool("x", ToolStatus::kOk, {}));
  EXPECT_EQ(Packets().size(), 1u);
}

// Two costs near the largest double sum to infinity, which JSON cannot spell: the packet said
// "cost_usd":null, against its schema (a number). The total saturates instead.
TEST_F(EngineTest, RunCostSaturatesInsteadOfOverflowing) {
  StartRun("r", "refund-review");
  for (const char* id : {"t1", "t2"}) {
    Send(E(EventType::kToolCall, id, "r", At(2))
             .Step("a")
             .Tool("x", ToolStatus::kOk, {})
             .Cost(1.7e308));
  }
  Send(E(EventType::kStepFailed, "f", "r", At(3)).Step("a").Error("write_failed"));
  ASSERT_EQ(Packets().size(), 1u);
  EXPECT_EQ(Json(Packets()[0].value).Get("/cost_usd"), "1.7976931348623157e+308");
}

TEST_F(EngineTest, BudgetDurationIsCheckedAsEventsArrive) {
  config_.workflows["refund-review"].budget.duration_s = 60;
  StartRun("r", "refund-review");
  Send(E(EventType::kHeartbeat, "h1", "r", At(60)));
  EXPECT_TRUE(Packets().empty());
  Send(E(EventType::kHeartbeat, "h2", "r", At(61)));
  ASSERT_EQ(Packets().size(), 1u);
  Json p(Packets()[0].value);
  EXPECT_EQ(p.Get("/failure_class"), "budget_exceeded");
  EXPECT_EQ(p.Get("/error_summary"), "run time 61 s over budget 60 s");
  EXPECT_EQ(p.Get("/failing_step"), "fetch");
}

TEST_F(EngineTest, FailedRunWithoutIncidentIsUnclassifiedFailure) {
  StartRun("quiet");
  Send(E(EventType::kRunCompleted, "c", "quiet", At(5)).Outcome(Outcome::kFailure));
  StartRun("noisy");
  Send(E(EventType::kStepFailed, "f", "noisy", At(2)).Step("write").Error("conflict"));
  Send(E(EventType::kRunCompleted, "c", "noisy", At(5)).Outcome(Outcome::kFailure));
  StartRun("fine");
  Send(E(EventType::kRunCompleted, "c", "fine", At(5)).Outcome(Outcome::kSuccess));
  std::vector<Record> packets = Packets();
  ASSERT_EQ(packets.size(), 2u);
  Json p(packets[0].value);
  EXPECT_EQ(p.Get("/run_id"), "quiet");
  EXPECT_EQ(p.Get("/failure_class"), "unclassified_failure");
  EXPECT_EQ(p.Get("/error_summary"), "run completed with outcome failure");
  EXPECT_EQ(Json(packets[1].value).Get("/failure_class"), "conflicting_context");
}

TEST_F(EngineTest, SameClassOnSameStepOpensNothingWhileOpen) {
  StartRun("r");
  Send(E(EventType::kStepFailed, "f1", "r", At(2)).Step("write").Error("conflict"));
  Send(E(EventType::kStepFailed, "f2", "r", At(3)).Step("write").Error("conflict"));
  EXPECT_EQ(Packets().size(), 1u);
  Send(E(EventType::kStepFailed, "f3", "r", At(4)).Step("write").Error("forbidden"));
  Send(E(EventType::kStepFailed, "f4", "r", At(5)).Step("read").Error("conflict"));
  ASSERT_EQ(Packets().size(), 3u);
  // Once resolved, the same failure opens a new incident.
  Send(Resolved("r", At(6)).PacketId("r#1"));
  Send(E(EventType::kStepFailed, "f5", "r", At(7)).Step("write").Error("conflict"));
  ASSERT_EQ(Packets().size(), 4u);
  EXPECT_EQ(Json(Packets()[3].value).Get("/packet_id"), "r#4");
}

TEST_F(EngineTest, RepeatedEventIdChangesNothing) {
  StartRun("r");
  E fail(EventType::kStepFailed, "f1", "r", At(2));
  fail.Step("write").Error("conflict");
  Send(fail);
  Send(Resolved("r", At(3)));
  Send(fail);  // duplicate: the incident would otherwise open again
  E cost(EventType::kToolCall, "t1", "r", At(4));
  cost.Step("x").Tool("t", ToolStatus::kOk, {}).Cost(1.5);
  Send(cost);
  Send(cost);
  Send(E(EventType::kStepFailed, "f2", "r", At(5)).Step("other").Error("conflict"));
  std::vector<Record> packets = Packets();
  ASSERT_EQ(packets.size(), 2u);
  Json p(packets[1].value);
  EXPECT_EQ(p.Get("/cost_usd"), "1.5");
  EXPECT_EQ(p.Get("/tool_calls"), "1");
}

TEST_F(EngineTest, SeenEventIdWindowIsBoundedAndForgetsTheOldest) {
  config_.limits.max_seen_event_ids_per_run = 2;
  StartRun("r");  // ids s0, s1
  E fail(EventType::kStepFailed, "f1", "r", At(2));
  fail.Step("write").Error("conflict");
  Send(fail);  // window now s1, f1; s0 forgotten
  EXPECT_EQ(observer_.limits, std::vector<std::string>{"max_seen_event_ids_per_run"});
  Send(Resolved("r", At(3)));
  Send(fail);  // still in the window: duplicate
  EXPECT_EQ(Packets().size(), 1u);
}

TEST_F(EngineTest, OpenPacketsPerRunAreBounded) {
  config_.limits.max_open_packets_per_run = 1;
  StartRun("r");
  Send(E(EventType::kStepFailed, "f1", "r", At(2)).Step("a").Error("conflict"));
  Send(E(EventType::kStepFailed, "f2", "r", At(3)).Step("b").Error("conflict"));
  EXPECT_EQ(Packets().size(), 1u);
  EXPECT_EQ(observer_.limits, std::vector<std::string>{"max_open_packets_per_run"});
}

TEST_F(EngineTest, StepCountersPerRunAreBoundedByForgettingTheEarliestStep) {
  // max_retries 3 by default: a fourth retryable failure of one step exhausts its retries.
  config_.limits.max_steps_per_run = 2;
  Send(E(EventType::kRunStarted, "s0", "r", At(0)).Workflow("adhoc").Objective("Do a thing"));
  auto retry = [&](const char* id, const char* step, int s) {
    Send(E(EventType::kStepFailed, id, "r", At(s)).Step(step).Error("timeout").Retryable());
  };
  retry("a1", "a", 2);
  retry("a2", "a", 3);
  retry("a3", "a", 4);
  retry("b1", "b", 5);
  retry("c1", "c", 6);  // a third step: step "a" and its three retries are forgotten
  EXPECT_EQ(observer_.limits, std::vector<std::string>{"max_steps_per_run"});
  retry("a4", "a", 7);  // counts from zero again: no packet
  EXPECT_TRUE(Packets().empty());
  retry("c2", "c", 8);
  retry("c3", "c", 9);
  retry("c4", "c", 10);  // step "c" is still counted: its fourth failure exhausts it
  ASSERT_EQ(Packets().size(), 1u);
  Json p(Packets()[0].value);
  EXPECT_EQ(p.Get("/failure_class"), "retry_exhausted");
  EXPECT_EQ(p.Get("/failing_step"), "c");
  EXPECT_EQ(p.Get("/retries"), "4");
}

TEST_F(EngineTest, LastSuccessfulStepIsTheLatestSuccessByEventTimeAtOrBeforeTheTrigger) {
  // No run_started: last_successful_step is unknown until a success counts.
  config_.defaults.severity = Severity::kP2;
  Send(E(EventType::kStepSucceeded, "a", "r", At(1)).Step("early").Workflow("wf"));
  Send(E(EventType::kStepSucceeded, "c", "r", At(50)).Step("after-trigger"));
  Send(E(EventType::kStepFailed, "f", "r", At(20)).Step("write").Error("conflict"));
  ASSERT_EQ(Packets().size(), 1u);
  EXPECT_EQ(Json(Packets()[0].value).Get("/last_successful_step"), "early");
}

// An agent re-runs a step after a failure: its second success is after the trigger, but the
// first still is the latest success at or before it, in every revision.
TEST_F(EngineTest, AStepThatSucceedsAgainAfterTheTriggerStillCountsWithItsEarlierSuccess) {
  StartRun("r");  // "fetch" succeeded at 1 s
  Send(E(EventType::kStepFailed, "f", "r", At(50)).Step("write").Error("not_found"));
  Send(E(EventType::kStepSucceeded, "again", "r", At(100)).Step("fetch"));
  Advance(At(50 + 14400));  // P3 first response: the escalation revision
  std::vector<Record> packets = Packets();
  ASSERT_EQ(packets.size(), 2u);
  for (const Record& r : packets) {
    EXPECT_EQ(Json(r.value).Get("/last_successful_step"), "fetch");
    EXPECT_EQ(Json(r.value).Get("/hcs/score"), Json(packets[0].value).Get("/hcs/score"));
  }
  // The same when the failure arrives after both successes.
  Send(E(EventType::kRunStarted, "s0", "q", At(0)).Workflow("adhoc"));
  Send(E(EventType::kStepSucceeded, "s1", "q", At(1)).Step("fetch"));
  Send(E(EventType::kStepSucceeded, "s2", "q", At(100)).Step("fetch"));
  Send(E(EventType::kStepFailed, "f", "q", At(50)).Step("write").Error("not_found"));
  EXPECT_EQ(Json(Packets().back().value).Get("/last_successful_step"), "fetch");
}

TEST_F(EngineTest, IncompleteP2GetsACompletionRevisionWhenALateSuccessArrives) {
  config_.defaults.severity = Severity::kP2;
  config_.sla[1].min_score = 100;
  Send(E(EventType::kStepFailed, "f", "r", At(20))
           .Workflow("wf")
           .Objective("o")
           .Step("write")
           .Error("conflict")
           .Blast(1, 1)
           .Owners("alice", "bob")
           .Rollback("undo"));
  ASSERT_EQ(Packets().size(), 1u);
  EXPECT_EQ(Json(Packets()[0].value).Get("/gate"), "owner_queue_incomplete");
  Send(E(EventType::kStepSucceeded, "s", "r", At(10)).Step("prepare"));
  ASSERT_EQ(Packets().size(), 2u);
  Json rev(Packets()[1].value);
  EXPECT_EQ(rev.Get("/gate"), "notify");
  EXPECT_EQ(rev.Get("/revision"), "2");
  EXPECT_EQ(rev.Get("/complete"), "true");
  EXPECT_EQ(rev.Get("/last_successful_step"), "prepare");
  EXPECT_EQ(rev.Get("/emitted_at"), "2026-03-02T02:00:10.000Z");
  EXPECT_EQ(rev.Get("/detected_at"), "2026-03-02T02:00:20.000Z");
  EXPECT_EQ(AuditTrail(), (std::vector<std::string>{"r#1:emitted@1", "r#1:enriched@2"}));
}

TEST_F(EngineTest, StalledRunOpensAtTheDeadlineWithTheLastStep) {
  StartRun("r");
  Send(E(EventType::kStepStarted, "s2", "r", At(10)).Step("crunch"));
  Advance(At(609));
  EXPECT_TRUE(Packets().empty());
  Send(E(EventType::kHeartbeat, "hb", "r", At(300)));  // a late event still counts
  Advance(At(899));
  EXPECT_TRUE(Packets().empty());
  Advance(At(900));
  ASSERT_EQ(Packets().size(), 1u);
  Json p(Packets()[0].value);
  EXPECT_EQ(p.Get("/failure_class"), "stalled");
  EXPECT_EQ(p.Get("/failing_step"), "crunch");
  EXPECT_EQ(p.Get("/error_summary"), "no event for 600 s");
  EXPECT_EQ(p.Get("/detected_at"), "2026-03-02T02:15:00.000Z");
  EXPECT_EQ(p.Get("/source/topic"), "null");
  // Stalled once: the run now waits on a human.
  Advance(At(5000));
  EXPECT_EQ(On(TopicRole::kTickets).size(), 1u);
}

TEST_F(EngineTest, RunWithOpenIncidentIsNotStalledAndCompletedRunsNeverStall) {
  StartRun("open");
  Send(E(EventType::kStepFailed, "f", "open", At(2)).Step("write").Error("conflict"));
  StartRun("done");
  Send(E(EventType::kRunCompleted, "c", "done", At(3)).Outcome(Outcome::kSuccess));
  Advance(At(3000));
  for (const Record& r : Packets()) EXPECT_NE(Json(r.value).Get("/failure_class"), "stalled");
  EXPECT_EQ(Packets().size(), 1u);
}

TEST_F(EngineTest, StallClockRestartsWhenTheLastIncidentCloses) {
  StartRun("r");
  Send(E(EventType::kStepFailed, "f", "r", At(2)).Step("write").Error("conflict"));
  Send(Resolved("r", At(1000)));
  Advance(At(1599));
  EXPECT_EQ(Packets().size(), 1u);
  Advance(At(1600));
  ASSERT_EQ(Packets().size(), 2u);
  EXPECT_EQ(Json(Packets()[1].value).Get("/failure_class"), "stalled");
}

TEST_F(EngineTest, StalledIsReportedOncePerQuietPeriod) {
  StartRun("r");
  Advance(At(601));
  ASSERT_EQ(Packets().size(), 1u);
  Send(Resolved("r", At(700)));
  Advance(At(100000));  // still silent: no second stalled packet
  EXPECT_EQ(Packets().size(), 1u);
  Send(E(EventType::kHeartbeat, "hb", "r", At(100001)));
  Advance(At(100601));
  ASSERT_EQ(Packets().size(), 2u);
  EXPECT_EQ(Json(Packets()[1].value).Get("/packet_id"), "r#2");
}

// The stall timer is armed with the timeout known then; a later event naming a workflow with a
// shorter one must not delay the report to the old deadline.
TEST_F(EngineTest, AShorterStallTimeoutLearnedLaterFiresAtItsOwnDeadline) {
  config_.workflows["refund-review"].stall_timeout_s = 300;         // the default is 600
  Send(E(EventType::kStepStarted, "s", "r", At(5)).Step("fetch"));  // no workflow yet
  Send(E(EventType::kRunStarted, "s0", "r", At(0)).Workflow("refund-review"));  // late
  StartRun("other");
  Send(E(EventType::kHeartbeat, "hb", "other", At(400)));  // watermark 398
  ASSERT_EQ(Packets().size(), 1u);
  Json p(Packets()[0].value);
  EXPECT_EQ(p.Get("/failure_class"), "stalled");
  EXPECT_EQ(p.Get("/detected_at"), "2026-03-02T02:05:05.000Z");
  EXPECT_EQ(p.Get("/emitted_at"), "2026-03-02T02:05:05.000Z");
  Advance(At(100000));
  for (const Record& r : Packets()) {  // the first timer, when it comes, reports nothing more
    EXPECT_NE(Json(r.value).Get("/packet_id"), "r#2");
  }
}

TEST_F(EngineTest, WorkflowStallTimeoutOverridesTheDefault) {
  config_.workflows["refund-review"].stall_timeout_s = 300;
  StartRun("r", "refund-review");
  Advance(At(301));
  ASSERT_EQ(Packets().size(), 1u);
  EXPECT_EQ(Json(Packets()[0].value).Get("/error_summary"), "no event for 300 s");
}

// --- Severity and gates. ---

TEST_F(EngineTest, SeverityIsLiftedByClassMinimumAndBlastRadius) {
  config_.classes[static_cast<size_t>(FailureClass::kPermissionDenied)].min_severity =
      Severity::kP2;
  StartRun("a");
  Send(E(EventType::kStepFailed, "f", "a", At(2)).Step("s").Error("forbidden"));
  StartRun("b");
  Send(E(EventType::kStepFailed, "f", "b", At(2)).Step("s").Error("conflict").Blast(1000, 0));
  StartRun("c");
  Send(E(EventType::kStepFailed, "f", "c", At(2)).Step("s").Error("conflict").Blast(999, 0));
  StartRun("d");
  Send(E(EventType::kRunStarted, "s9", "d", At(1)).Severity(Severity::kP1));
  Send(E(EventType::kStepFailed, "f", "d", At(2)).Step("s").Error("conflict"));
  std::vector<Record> packets = Packets();
  ASSERT_EQ(packets.size(), 4u);
  EXPECT_EQ(Json(packets[0].value).Get("/severity"), "P2");
  EXPECT_EQ(packets[0].role, TopicRole::kOwnerQueue);
  EXPECT_EQ(Json(packets[1].value).Get("/severity"), "P1");
  EXPECT_EQ(Json(packets[2].value).Get("/severity"), "P3");
  EXPECT_EQ(Json(packets[3].value).Get("/severity"), "P1");
}

TEST_F(EngineTest, BlastRadiusLiftUsesTheCatalogAfterEnrichment) {
  config_.workflows["refund-review"].blast_radius_users = 5000;
  StartRun("r", "refund-review");
  Send(E(EventType::kStepFailed, "f", "r", At(2)).Step("s").Error("conflict"));
  ASSERT_EQ(Packets().size(), 1u);
  Json p(Packets()[0].value);
  EXPECT_EQ(p.Get("/severity"), "P1");
  EXPECT_EQ(p.Get("/blast_radius"), R"({"users":5000,"jobs":1})");
}

TEST_F(EngineTest, P3IncompleteGoesToTicketsWithTemplateRequired) {
  StartRun("r");
  Send(E(EventType::kStepFailed, "f", "r", At(2)).Step("s").Error("conflict"));
  std::vector<Record> tickets = On(TopicRole::kTickets);
  ASSERT_EQ(tickets.size(), 1u);
  Json p(tickets[0].value);
  EXPECT_EQ(p.Get("/gate"), "ticket_template_required");
  EXPECT_EQ(p.Get("/complete"), "false");
  // objective, last step, failing step, error: C 80; no owners; default action; workflow only.
  EXPECT_EQ(p.Get("/hcs"), R"({"score":59.0,"raw":34.0,"c":80,"o":0,"n":100,"r":50})");
  EXPECT_EQ(p.Get("/missing_fields"),
            R"(["blast_radius","rollback_command","owner.primary","owner.backup"])");
  EXPECT_EQ(p.Get("/enriched_fields"), R"(["recommended_action"])");
  EXPECT_EQ(p.Get("/owner"), R"({"primary":null,"backup":null})");
  EXPECT_EQ(p.Get("/blast_radius"), R"({"users":null,"jobs":null})");
  EXPECT_EQ(p.Get("/ttl_s"), "259200");
  EXPECT_EQ(p.Get("/sla/escalation_route"), "async owner queue");
}

TEST_F(EngineTest, P3CompleteIsATicketAndCompletesLaterWithARevision) {
  StartRun("r");
  Send(E(EventType::kStepFailed, "f", "r", At(2)).Step("s").Error("conflict"));
  // Owners arrive: C 80, O 100, N 100, R 50 -> 24 + 25 + 25 + 10 = 84.0 >= 70.
  Send(E(EventType::kHeartbeat, "h", "r", At(3)).Owners("alice", "bob"));
  std::vector<Record> tickets = On(TopicRole::kTickets);
  ASSERT_EQ(tickets.size(), 2u);
  Json p(tickets[1].value);
  EXPECT_EQ(p.Get("/gate"), "ticket");
  EXPECT_EQ(p.Get("/hcs/score"), "84.0");
  EXPECT_EQ(p.Get("/owner"), R"({"primary":"alice","backup":"bob"})");
  EXPECT_EQ(AuditTrail(), (std::vector<std::string>{"r#1:emitted@1", "r#1:enriched@2"}));
  // Settled: more events give no more revisions.
  Send(E(EventType::kHeartbeat, "h2", "r", At(4)).Rollback("undo"));
  EXPECT_EQ(On(TopicRole::kTickets).size(), 2u);
}

TEST_F(EngineTest, P1HeldPacketPagesWhenEnrichmentCompletesIt) {
  StartRun("r", "ledger-close");
  Send(E(EventType::kStepFailed, "f", "r", At(2)).Step("post").Error("write_failed"));
  ASSERT_EQ(On(TopicRole::kPending).size(), 1u);
  Send(E(EventType::kHeartbeat, "h", "r", At(10)).Rollback("erpctl revert").Backup("cfo"));
  std::vector<Record> pages = On(TopicRole::kPage);
  ASSERT_EQ(pages.size(), 1u);
  Json p(pages[0].value);
  EXPECT_EQ(p.Get("/gate"), "page");
  EXPECT_EQ(p.Get("/revision"), "2");
  EXPECT_EQ(p.Get("/flags"), "[]");
  EXPECT_EQ(p.Get("/complete"), "true");
  EXPECT_EQ(AuditTrail(), (std::vector<std::string>{"r#1:held@1", "r#1:emitted@2"}));
  // The hold deadline passes: nothing more (already paged).
  Advance(At(120));
  EXPECT_EQ(On(TopicRole::kPage).size(), 1u);
}

TEST_F(EngineTest, AlwaysPageWorkflowSkipsTheHold) {
  config_.workflows["ledger-close"].always_page = true;
  StartRun("r", "ledger-close");
  Send(E(EventType::kStepFailed, "f", "r", At(2)).Step("post").Error("write_failed"));
  EXPECT_TRUE(On(TopicRole::kPending).empty());
  ASSERT_EQ(On(TopicRole::kPage).size(), 1u);
  Json p(On(TopicRole::kPage)[0].value);
  EXPECT_EQ(p.Get("/gate"), "page");
  EXPECT_EQ(p.Get("/complete"), "false");
}

TEST_F(EngineTest, ResolveCancelsTheP1HoldButAnAckDoesNot) {
  StartRun("acked", "ledger-close");
  Send(E(EventType::kStepFailed, "f", "acked", At(2)).Step("post").Error("write_failed"));
  StartRun("resolved", "ledger-close");
  Send(E(EventType::kStepFailed, "f", "resolved", At(2)).Step("post").Error("write_failed"));
  Send(Ack("acked", At(10)));
  Send(Resolved("resolved", At(10)));
  Advance(At(62));
  std::vector<Record> pages = On(TopicRole::kPage);
  ASSERT_EQ(pages.size(), 1u);
  EXPECT_EQ(pages[0].key, "acked");
  EXPECT_EQ(Json(pages[0].value).Get("/flags"), R"(["override"])");
}

// --- The two sample scenarios (tests/data/*.jsonl). ---

TEST_F(EngineTest, LedgerCloseP1IsHeldThenOverridePagedThenEscalatedTwice) {
  const char* run = "ledger-close-0302";
  Send(E(EventType::kRunStarted, "lc-1", run, T("2026-03-02T02:00:00.000Z"))
           .Workflow("ledger-close")
           .Objective("Close the February ledger"));
  Send(E(EventType::kStepStarted, "lc-2", run, T("2026-03-02T02:00:01.000Z")).Step("post_entries"));
  Send(E(EventType::kStepFailed, "lc-3", run, T("2026-03-02T02:00:07.000Z"))
           .Step("post_entries")
           .Error("write_failed", "ERP rejected batch 14: period locked"));
  Send(E(EventType::kHeartbeat, "lc-4", run, T("2026-03-02T02:06:40.000Z")));
  Send(E(EventType::kHeartbeat, "lc-5", run, T("2026-03-02T02:11:40.000Z")));

  const std::vector<Record>& all = sink_.records;
  ASSERT_EQ(all.size(), 8u);
  const TopicRole roles[] = {TopicRole::kPending,     TopicRole::kAudit,       TopicRole::kPage,
                             TopicRole::kAudit,       TopicRole::kEscalations, TopicRole::kAudit,
                             TopicRole::kEscalations, TopicRole::kAudit};
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].role, roles[i]) << i;
    EXPECT_EQ(all[i].key, run);
  }
  Json held(all[0].value);
  EXPECT_EQ(held.Get("/gate"), "held");
  EXPECT_EQ(held.Get("/severity"), "P1");
  EXPECT_EQ(held.Get("/hcs"), R"({"score":77.5,"raw":34.0,"c":100,"o":50,"n":100,"r":50})");
  EXPECT_EQ(held.Get("/objective"), "Close the February ledger");
  EXPECT_EQ(held.Get("/failure_class"), "downstream_write_failure");
  EXPECT_EQ(held.Get("/error_summary"), "write_failed: ERP rejected batch 14: period locked");
  EXPECT_EQ(held.Get("/last_successful_step"), "null");
  EXPECT_EQ(held.Get("/missing_fields"), R"(["rollback_command","owner.backup"])");
  EXPECT_EQ(held.Get("/enriched_fields"),
            R"(["blast_radius","recommended_action","owner.primary"])");
  EXPECT_EQ(held.Get("/sla/ack_deadline"), "2026-03-02T02:05:07.000Z");
  EXPECT_EQ(held.Get("/expires_at"), "2026-03-02T03:00:07.000Z");
  EXPECT_EQ(held.Get("/source"), R"({"topic":"agent.events","partition":0,"offset":2})");
  EXPECT_EQ(held.Get("/escalation_target"), "null");
  EXPECT_EQ(all[0].ce_id, "ledger-close-0302#1/1");
  EXPECT_EQ(all[0].ce_type, "dev.handoffd.packet.v1");
  Json held_audit(all[1].value);
  EXPECT_EQ(held_audit.Keys(),
            (std::vector<std::string>{"packet_id", "revision", "action", "at", "by", "reason"}));
  EXPECT_EQ(held_audit.Get("/action"), "held");
  EXPECT_EQ(held_audit.Get("/by"), "null");
  EXPECT_EQ(held_audit.Get("/reason"), "score 77.5 below P1 minimum 90; waiting for enrichment");
  EXPECT_EQ(all[1].ce_id, "audit/ledger-close-0302#1/1/held");
  EXPECT_EQ(all[1].ce_type, "dev.handoffd.audit.v1");

  Json page(all[2].value);
  EXPECT_EQ(page.Get("/gate"), "page");
  EXPECT_EQ(page.Get("/revision"), "2");
  EXPECT_EQ(page.Get("/flags"), R"(["override"])");
  EXPECT_EQ(page.Get("/emitted_at"), "2026-03-02T02:01:07.000Z");
  EXPECT_EQ(all[2].time_ms, T("2026-03-02T02:01:07.000Z"));
  EXPECT_EQ(Json(all[3].value).Get("/action"), "emitted");

  Json l2(all[4].value);
  EXPECT_EQ(l2.Get("/gate"), "escalate");
  EXPECT_EQ(l2.Get("/escalation_level"), "2");
  EXPECT_EQ(l2.Get("/escalation_target"), "oncall + incident-captain");
  EXPECT_EQ(l2.Get("/emitted_at"), "2026-03-02T02:05:07.000Z");
  EXPECT_EQ(l2.Get("/revision"), "3");
  EXPECT_EQ(Json(all[5].value).Get("/reason"),
            "no acknowledgement by 2026-03-02T02:05:07.000Z; escalated to "
            "oncall + incident-captain");
  Json l3(all[6].value);
  EXPECT_EQ(l3.Get("/escalation_level"), "3");
  EXPECT_EQ(l3.Get("/escalation_target"), "incident captain");
  EXPECT_EQ(l3.Get("/emitted_at"), "2026-03-02T02:10:07.000Z");
  EXPECT_EQ(observer_.breaches, (std::vector<std::string>{"ledger-close/2", "ledger-close/3"}));
  EXPECT_EQ(observer_.opened, std::vector<std::string>{"ledger-close/downstream_write_failure"});
  ASSERT_EQ(observer_.scores.size(), 1u);
  EXPECT_DOUBLE_EQ(observer_.scores[0].first, 34.0);
  EXPECT_DOUBLE_EQ(observer_.scores[0].second, 77.5);
}

TEST_F(EngineTest, RefundReviewIsAPlannedDecisionAndTheAckGivesMttaOf180Seconds) {
  const char* run = "refund-review-2026-05-24-1500";
  Send(E(EventType::kRunStarted, "rr-1", run, T("2026-05-24T15:00:00.000Z"))
           .Workflow("refund-review")
           .Objective("Prepare refund decision material for high-value requests"));
  Send(E(EventType::kStepStarted, "rr-2", run, T("2026-05-24T15:00:02.000Z"))
           .Step("collect_evidence"));
  Send(E(EventType::kToolCall, "rr-3", run, T("2026-05-24T15:00:04.000Z"))
           .Step("collect_evidence")
           .Tool("files.read", ToolStatus::kOk, SideEffect::kNone)
           .Cost(0.002));
  Send(E(EventType::kStepSucceeded, "rr-4", run, T("2026-05-24T15:00:09.000Z"))
           .Step("collect_evidence"));
  E req(EventType::kHandoffRequested, "rr-5", run, T("2026-05-24T15:00:12.000Z"));
  req.Step("decide_refund")
      .Reason("Refund amount exceeds standard policy and customer has two prior complaints")
      .Type(HandoffType::kBusinessJudgment);
  req.e.options_json = R"([{"label": "approve refund", "risk": "sets exception precedent"}])";
  req.e.evidence_json = R"({"orderFile": "workspace/refunds/2026-05-24/orders.xlsx"})";
  req.e.owner_role = "customer-success-lead";
  req.e.next_action_after_decision = "draft reply and keep confirmation on before sending";
  Send(req);
  Send(Ack(run, T("2026-05-24T15:03:12.000Z")).By("cs-lead"));

  const std::vector<Record>& all = sink_.records;
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].role, TopicRole::kDecisions);
  Json p(all[0].value);
  EXPECT_EQ(p.Keys(), (std::vector<std::string>{"run_id",
                                                "workflow_id",
                                                "objective",
                                                "failure_class",
                                                "last_successful_step",
                                                "failing_step",
                                                "error_summary",
                                                "blast_radius",
                                                "recommended_action",
                                                "rollback_command",
                                                "owner",
                                                "ttl_s",
                                                "expires_at",
                                                "packet_id",
                                                "revision",
                                                "schema",
                                                "kind",
                                                "severity",
                                                "gate",
                                                "complete",
                                                "missing_fields",
                                                "enriched_fields",
                                                "hcs",
                                                "sla",
                                                "escalation_level",
                                                "escalation_target",
                                                "detected_at",
                                                "emitted_at",
                                                "source",
                                                "flags",
                                                "attrs",
                                                "handoff_type",
                                                "trigger_reason",
                                                "options",
                                                "evidence",
                                                "owner_role",
                                                "next_action_after_decision",
                                                "retries",
                                                "tool_calls",
                                                "cost_usd"}));
  EXPECT_EQ(p.Get("/gate"), "decision");
  EXPECT_EQ(p.Get("/kind"), "planned");
  EXPECT_EQ(p.Get("/severity"), "P2");
  EXPECT_EQ(p.Get("/schema"), "handoff.packet/v1");
  EXPECT_EQ(p.Get("/complete"), "true");
  EXPECT_EQ(p.Get("/hcs/score"), "100.0");
  EXPECT_EQ(p.Get("/last_successful_step"), "collect_evidence");
  EXPECT_EQ(p.Get("/failing_step"), "decide_refund");
  EXPECT_EQ(p.Get("/options/0/label"), "approve refund");
  EXPECT_EQ(p.Get("/evidence/orderFile"), "workspace/refunds/2026-05-24/orders.xlsx");
  EXPECT_EQ(p.Get("/cost_usd"), "0.002");
  EXPECT_EQ(p.Get("/tool_calls"), "1");
  EXPECT_EQ(p.Get("/owner"), R"({"primary":"customer-success-lead","backup":"support-oncall"})");
  EXPECT_EQ(p.Get("/enriched_fields"),
            R"(["blast_radius","recommended_action","rollback_command","owner.primary",)"
            R"("owner.backup"])");
  Json ack(all[2].value);
  EXPECT_EQ(ack.Get("/action"), "acknowledged");
  EXPECT_EQ(ack.Get("/by"), "cs-lead");
  EXPECT_EQ(ack.Get("/at"), "2026-05-24T15:03:12.000Z");
  ASSERT_EQ(observer_.acks.size(), 1u);
  EXPECT_EQ(observer_.acks[0].first, Severity::kP2);
  EXPECT_DOUBLE_EQ(observer_.acks[0].second, 180.0);
  // Acknowledged in time: neither escalation level fires.
  Advance(T("2026-05-24T15:30:12.000Z"));
  EXPECT_TRUE(On(TopicRole::kEscalations).empty());
}

// --- SLA timers and acknowledgements. ---

TEST_F(EngineTest, AckBeforeTheDeadlineSuppressesBothEscalations) {
  StartRun("r", "ledger-close");
  Send(E(EventType::kStepFailed, "f", "r", At(0)).Step("post").Error("write_failed"));
  Send(Ack("r", At(300)));  // exactly at the deadline still counts
  Advance(At(700));
  EXPECT_TRUE(On(TopicRole::kEscalations).empty());
  EXPECT_TRUE(observer_.breaches.empty());
}

TEST_F(EngineTest, AckAfterLevelTwoButBeforeLevelThreeSuppressesOnlyLevelThree) {
  StartRun("r", "ledger-close");
  Send(E(EventType::kStepFailed, "f", "r", At(0)).Step("post").Error("write_failed"));
  // The ack's time is after the level-2 deadline, though the watermark has not reached it.
  Send(Ack("r", At(301)).PacketId("r#1"));
  Advance(At(700));
  std::vector<Record> esc = On(TopicRole::kEscalations);
  ASSERT_EQ(esc.size(), 1u);
  EXPECT_EQ(Json(esc[0].value).Get("/escalation_level"), "2");
  EXPECT_EQ(observer_.breaches, std::vector<std::string>{"ledger-close/2"});
}

TEST_F(EngineTest, LevelTwoGoesToTheBackupOwnerWhenKnown) {
  StartRun("r", "refund-review");
  Send(E(EventType::kStepFailed, "f", "r", At(0)).Step("s").Error("conflict"));
  Advance(At(900));
  std::vector<Record> esc = On(TopicRole::kEscalations);
  ASSERT_EQ(esc.size(), 1u);
  EXPECT_EQ(Json(esc[0].value).Get("/escalation_target"), "support-oncall");
  Advance(At(1800));
  ASSERT_EQ(On(TopicRole::kEscalations).size(), 2u);
  EXPECT_EQ(Json(On(TopicRole::kEscalations)[1].value).Get("/escalation_target"), "workflow owner");
}

TEST_F(EngineTest, UnacknowledgedPacketExpiresAndAcknowledgedOneCloses) {
  StartRun("a", "ledger-close");
  Send(E(EventType::kStepFailed, "f", "a", At(0)).Step("post").Error("write_failed"));
  StartRun("b", "ledger-close");
  Send(E(EventType::kStepFailed, "f", "b", At(0)).Step("post").Error("write_failed"));
  Send(Ack("b", At(100)).By("carol"));
  Advance(At(3599));
  EXPECT_EQ(observer_.expired, 0);
  Advance(At(3600));
  EXPECT_EQ(observer_.expired, 1);
  std::vector<std::string> trail = AuditTrail();
  EXPECT_EQ(trail, (std::vector<std::string>{
                       "a#1:held@1", "b#1:held@1",
                       // The ack's watermark passes the hold deadlines before it applies.
                       "a#1:emitted@2", "b#1:emitted@2", "b#1:acknowledged@2", "a#1:escalated@3",
                       "a#1:escalated@4", "a#1:expired@4", "b#1:closed@2"}));
  EXPECT_EQ(observer_.open_packets[0], 0);
  // Closed: an ack now does nothing, and the same failure opens a new incident.
  Send(Ack("a", At(3601)));
  Send(E(EventType::kStepFailed, "f2", "a", At(3602)).Step("post").Error("write_failed"));
  EXPECT_EQ(Json(Packets().back().value).Get("/packet_id"), "a#2");
}

TEST_F(EngineTest, ResolveWithoutAckGivesMttaAndOnlyAResolvedRecord) {
  StartRun("r");
  Send(E(EventType::kStepFailed, "f", "r", At(10)).Step("s").Error("conflict"));
  Send(Resolved("r", At(70)).By("dave"));
  ASSERT_EQ(observer_.acks.size(), 1u);
  EXPECT_DOUBLE_EQ(observer_.acks[0].second, 60.0);
  EXPECT_EQ(AuditTrail(), (std::vector<std::string>{"r#1:emitted@1", "r#1:resolved@1"}));
  Json resolved(sink_.records.back().value);
  EXPECT_EQ(resolved.Get("/by"), "dave");
  // A second ack or resolve finds nothing open.
  Send(Ack("r", At(80)));
  EXPECT_EQ(observer_.acks.size(), 1u);
  Advance(At(600));
  EXPECT_EQ(AuditTrail().size(), 2u);
}

// Contract 11: an incident stays open until resolved or until expires_at, whichever comes first
// in event time. A resolve stamped after the expiry, read before the watermark reached it, used
// to close the packet as resolved; an ack with the same stamp did not stop the expiry.
TEST_F(EngineTest, AResolveStampedAfterTheExpiryDoesNotStopIt) {
  StartRun("r");
  Send(E(EventType::kStepFailed, "f", "r", At(10)).Step("s").Error("conflict"));  // P3
  const int64_t expires = At(10 + 259200);
  Send(Resolved("r", expires + 1000).By("dave"));  // watermark: 1 s before the expiry
  EXPECT_EQ(AuditTrail(),
            (std::vector<std::string>{"r#1:emitted@1", "r#1:escalated@2", "r#1:escalated@3"}));
  Advance(expires + 5000);
  EXPECT_EQ(AuditTrail(), (std::vector<std::string>{"r#1:emitted@1", "r#1:escalated@2",
                                                    "r#1:escalated@3", "r#1:expired@3"}));
  EXPECT_EQ(observer_.expired, 1);
}

TEST_F(EngineTest, AResolveStampedAfterAnEscalationLetsItFireThenCloses) {
  StartRun("r");
  Send(E(EventType::kStepFailed, "f", "r", At(10)).Step("s").Error("conflict"));  // P3
  const int64_t level2 = At(10 + 14400);
  Send(Resolved("r", level2 + 1000).By("dave"));  // watermark: 1 s before level 2
  EXPECT_EQ(AuditTrail(), (std::vector<std::string>{"r#1:emitted@1"}));
  Advance(level2 + 5000);
  EXPECT_EQ(AuditTrail(),
            (std::vector<std::string>{"r#1:emitted@1", "r#1:escalated@2", "r#1:resolved@2"}));
  Json resolved(On(TopicRole::kAudit).back().value);
  EXPECT_EQ(resolved.Get("/by"), "dave");
  EXPECT_EQ(resolved.Get("/at"), "2026-03-02T06:00:11.000Z");
  // A resolve at or before the next timer closes at once, as before.
  Send(E(EventType::kRunStarted, "s", "q", level2 + 6000).Workflow("adhoc"));
  Send(E(EventType::kStepFailed, "g", "q", level2 + 6000).Step("t").Error("conflict"));
  Send(Resolved("q", level2 + 7000));
  EXPECT_EQ(AuditTrail().back(), "q#1:resolved@1");
}

TEST_F(EngineTest, AckWithoutPacketIdAppliesToEveryOpenPacketOfTheRun) {
  StartRun("r");
  Send(E(EventType::kStepFailed, "f1", "r", At(10)).Step("a").Error("conflict"));
  Send(E(EventType::kStepFailed, "f2", "r", At(20)).Step("b").Error("conflict"));
  Send(Ack("r", At(30)));
  Send(Ack("r", At(40)));  // second ack: no new sample
  Send(Ack("r", At(50)).PacketId("r#9"));
  Send(Ack("other-run", At(50)));
  ASSERT_EQ(observer_.acks.size(), 2u);
  EXPECT_DOUBLE_EQ(observer_.acks[0].second, 20.0);
  EXPECT_DOUBLE_EQ(observer_.acks[1].second, 10.0);
}

TEST_F(EngineTest, AckStampedFarAheadOfItsRecordCountsTimeToAckFromTheRecordTime) {
  // Live mode: the ack's producer clock is a day ahead. Its record (Kafka timestamp) was written
  // 60 s after detection; MTTA must say 60 s, not a day.
  StartRun("r");
  Send(E(EventType::kStepFailed, "f", "r", At(10)).Step("s").Error("conflict"));
  engine().Process(Ack("r", At(86400)).e, {"handoff.acks", 0, 0, At(70)}, &sink_);
  // Within time.max_future_ms (5 min) of its record, the ack's own time counts.
  StartRun("q");
  Send(E(EventType::kStepFailed, "f", "q", At(10)).Step("s").Error("conflict"));
  engine().Process(Ack("q", At(190)).e, {"handoff.acks", 0, 1, At(70)}, &sink_);
  ASSERT_EQ(observer_.acks.size(), 2u);
  EXPECT_DOUBLE_EQ(observer_.acks[0].second, 60.0);
  EXPECT_DOUBLE_EQ(observer_.acks[1].second, 180.0);
}

TEST_F(EngineTest, LateEventOpensAPacketWhoseDeadlinesHavePassedAndTheyFireAtOnce) {
  Send(E(EventType::kHeartbeat, "h", "other", At(2000)));
  // The run's first event is late; it opens a held P1 packet at 5 s.
  Send(E(EventType::kStepFailed, "f", "late", At(5))
           .Workflow("ledger-close")
           .Step("post")
           .Error("write_failed"));
  std::vector<std::string> trail = AuditTrail();
  // Held, then override page at +60 s, then both escalations, all in time order.
  ASSERT_GE(trail.size(), 4u);
  EXPECT_EQ(trail[0], "late#1:held@1");
  EXPECT_EQ(trail[1], "late#1:emitted@2");
  EXPECT_EQ(trail[2], "late#1:escalated@3");
  EXPECT_EQ(trail[3], "late#1:escalated@4");
}

TEST_F(EngineTest, WithoutRetiredRunMemoryAForgottenRunsEventStartsItAgain) {
  config_.limits.completed_run_retention_s = 100;
  config_.limits.retired_run_memory_s = 0;
  StartRun("r");
  Send(E(EventType::kRunCompleted, "c", "r", At(10)).Outcome(Outcome::kSuccess));
  EXPECT_EQ(engine().active_runs(), 0);
  E fail(EventType::kStepFailed, "f", "r", At(11));
  fail.Step("s").Error("conflict");
  Send(fail);  // a late event of the completed run still applies
  ASSERT_EQ(Packets().size(), 1u);
  Send(Resolved("r", At(12)));
  Advance(At(109));
  Send(fail);  // within retention: duplicate
  EXPECT_EQ(Packets().size(), 1u);
  Advance(At(110));  // completed + retention, and the packet has closed
  Send(fail);
  ASSERT_EQ(Packets().size(), 2u);
  EXPECT_EQ(Json(Packets()[1].value).Get("/packet_id"), "r#1");  // a new run
}

// A duplicate delivered after the retention window used to start the run again: a second
// "r#1" with other content, and a finished run reported stalled. A retired run refuses them.
TEST_F(EngineTest, EventsOfARetiredRunAreRefusedNotANewRunReusingItsPacketIds) {
  config_.limits.completed_run_retention_s = 100;
  config_.limits.retired_run_memory_s = 1000;
  StartRun("r");
  E fail(EventType::kStepFailed, "f", "r", At(5));
  fail.Step("s").Error("conflict");
  Send(fail);
  Send(Resolved("r", At(6)));
  Send(E(EventType::kRunCompleted, "c", "r", At(10)).Outcome(Outcome::kSuccess));
  ASSERT_EQ(Packets().size(), 1u);
  Advance(At(110));  // retired
  EXPECT_EQ(engine().held_runs(), 1);
  const SourceRef source{"agent.events", 0, 99};
  EXPECT_FALSE(engine().Process(fail.e, source, &sink_));  // the duplicate
  EXPECT_FALSE(engine().Process(E(EventType::kHeartbeat, "late", "r", At(120)).e, source, &sink_));
  EXPECT_EQ(engine().active_runs(), 0);
  Advance(At(1109));  // no stall of a finished run, no packet
  EXPECT_EQ(Packets().size(), 1u);
  Advance(At(1110));  // retention + memory: forgotten, the id is free again
  EXPECT_EQ(engine().held_runs(), 0);
  EXPECT_TRUE(engine().Process(E(EventType::kHeartbeat, "new", "r", At(1111)).e, source, &sink_));
  EXPECT_EQ(engine().active_runs(), 1);
}

// The exception rate divides exceptions by runs started: a run first seen through another event
// (contract section 2) must count too, once, under its workflow; a late run_started must not
// count it again.
TEST_F(EngineTest, ARunCountsAsStartedOnceAtItsFirstEventWhateverItsType) {
  Send(E(EventType::kStepSucceeded, "a", "r", At(1)).Step("fetch").Workflow("refund-review"));
  Send(E(EventType::kStepFailed, "b", "r", At(2)).Step("write").Error("not_found"));
  Send(E(EventType::kRunStarted, "c", "r", At(0)).Workflow("refund-review"));  // late
  Send(E(EventType::kHeartbeat, "d", "q", At(3)));                             // no workflow known
  EXPECT_EQ(observer_.started, (std::vector<std::string>{"refund-review", "_other"}));
}

TEST_F(EngineTest, ObserverSeesActiveRunsAndOpenPackets) {
  StartRun("a", "refund-review");
  StartRun("b");
  EXPECT_EQ(observer_.active_runs, 2);
  EXPECT_EQ(engine().active_runs(), 2);
  EXPECT_EQ(observer_.started, (std::vector<std::string>{"refund-review", "_other"}));
  Send(E(EventType::kStepFailed, "f", "a", At(2)).Step("s").Error("conflict"));
  EXPECT_EQ(observer_.open_packets[1], 1);
  Send(E(EventType::kRunCompleted, "c", "b", At(3)).Outcome(Outcome::kSuccess));
  EXPECT_EQ(observer_.active_runs, 1);
  Send(Resolved("a", At(4)));
  EXPECT_EQ(observer_.open_packets[1], 0);
}

TEST_F(EngineTest, MaxActiveRunsEvictsARunAndCountsTheLimit) {
  config_.limits.max_active_runs = 2;
  StartRun("a");
  StartRun("b");
  StartRun("c");
  EXPECT_EQ(engine().active_runs(), 2);
  EXPECT_EQ(observer_.limits, std::vector<std::string>{"max_active_runs"});
}

TEST_F(EngineTest, WatermarkIsMaxEventTimeLessLatenessAndAcksAndUnknownTypesMoveIt) {
  EXPECT_EQ(engine().watermark_ms(), INT64_MIN);
  Send(Ack("nobody", At(10)));
  EXPECT_EQ(engine().watermark_ms(), At(8));
  Send(E(EventType::kUnknown, "u", "r", At(20)));
  EXPECT_EQ(engine().watermark_ms(), At(18));
  EXPECT_EQ(engine().active_runs(), 0);  // unknown types are skipped
  Send(E(EventType::kHeartbeat, "h", "r", At(5)));
  EXPECT_EQ(engine().watermark_ms(), At(18));
  Advance(At(30));
  EXPECT_EQ(engine().watermark_ms(), At(30));
  Advance(At(25));
  EXPECT_EQ(engine().watermark_ms(), At(30));
}

// --- Output text. ---

TEST_F(EngineTest, StringsAreEscapedAndAttrsPassThrough) {
  Send(E(EventType::kRunStarted, "s", "r\"1", At(0))
           .Workflow("wf")
           .Objective("quote \" backslash \\ newline \n tab \t bell \x07 é")
           .Attrs(R"({"team":"payments","n":[1,2]})"));
  Send(E(EventType::kStepFailed, "f", "r\"1", At(1)).Step("s").Error("conflict"));
  ASSERT_EQ(Packets().size(), 1u);
  const std::string text = Packets()[0].value;
  EXPECT_NE(text.find(R"(\u0007)"), std::string::npos);
  EXPECT_NE(text.find(R"(\n)"), std::string::npos);
  Json p(text);
  EXPECT_EQ(p.Get("/objective"), "quote \" backslash \\ newline \n tab \t bell \x07 é");
  EXPECT_EQ(p.Get("/run_id"), "r\"1");
  EXPECT_EQ(p.Get("/packet_id"), "r\"1#1");
  EXPECT_EQ(p.Get("/attrs"), R"({"team":"payments","n":[1,2]})");
}

// --- Determinism and the changelog. ---

// A stream touching every feature, with acks and timers, for replay comparisons.
std::vector<E> MixedStream() {
  std::vector<E> s;
  s.push_back(E(EventType::kRunStarted, "1", "lc", At(0)).Workflow("ledger-close"));
  s.push_back(E(EventType::kRunStarted, "1", "rr", At(1)).Workflow("refund-review"));
  s.push_back(E(EventType::kStepSucceeded, "2", "rr", At(2)).Step("collect"));
  s.push_back(E(EventType::kStepFailed, "2", "lc", At(3)).Step("post").Error("write_failed"));
  s.push_back(E(EventType::kDecision, "3", "rr", At(4)).Step("d").Confidence(0.2).Amount(900));
  s.push_back(E(EventType::kRunStarted, "1", "adhoc", At(5)).Workflow("x").Attrs("{\"a\":1}"));
  s.push_back(E(EventType::kStepStarted, "2", "adhoc", At(6)).Step("think"));
  s.push_back(E(EventType::kStepFailed, "2", "lc", At(3)).Step("post").Error("write_failed"));
  s.push_back(Ack("rr", At(200)).By("x"));
  // Stamped after lc's escalations (303 s, 603 s), read at watermark 198 s: closes at 650 s.
  s.push_back(Resolved("lc", At(650)).By("y"));
  s.push_back(E(EventType::kHeartbeat, "4", "lc", At(400)));
  s.push_back(E(EventType::kRunCompleted, "9", "rr", At(401)).Outcome(Outcome::kSuccess));
  // Restore point in the tests below falls here (index 12).
  s.push_back(E(EventType::kHeartbeat, "5", "lc", At(500)).Rollback("undo"));
  s.push_back(E(EventType::kStepFailed, "6", "rr", At(502)).Step("late").Error("conflict"));
  s.push_back(E(EventType::kHeartbeat, "7", "adhoc", At(1300)));
  s.push_back(E(EventType::kRunStarted, "1", "new", At(1301)).Workflow("refund-review"));
  s.push_back(Resolved("lc", At(1400)));
  s.push_back(E(EventType::kHeartbeat, "8", "new", At(5000)));
  return s;
}

std::vector<Record> RunAll(const Config& config, const std::vector<E>& stream, int64_t end) {
  Engine engine(config, nullptr);
  RecordingSink sink;
  for (size_t i = 0; i < stream.size(); ++i) {
    engine.Process(stream[i].e, {"agent.events", 0, static_cast<int64_t>(i)}, &sink);
  }
  engine.AdvanceWatermark(end, &sink);
  return sink.records;
}

void ExpectSameRecords(const std::vector<Record>& a, const std::vector<Record>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].role, b[i].role) << i;
    EXPECT_EQ(a[i].key, b[i].key) << i;
    EXPECT_EQ(a[i].value, b[i].value) << i;
    EXPECT_EQ(a[i].ce_id, b[i].ce_id) << i;
    EXPECT_EQ(a[i].time_ms, b[i].time_ms) << i;
  }
}

TEST_F(EngineTest, SameInputTwiceGivesSameBytes) {
  std::vector<Record> a = RunAll(config_, MixedStream(), At(400000));
  std::vector<Record> b = RunAll(config_, MixedStream(), At(400000));
  EXPECT_GT(a.size(), 20u);
  ExpectSameRecords(a, b);
}

class MapChangelog : public ChangelogSink {
 public:
  void PutRun(std::string_view run_id, std::string_view state) override {
    ++puts;
    if (state.empty()) {
      runs.erase(std::string(run_id));
    } else {
      runs[std::string(run_id)] = std::string(state);
    }
  }
  std::map<std::string, std::string> runs;
  int puts = 0;
};

TEST_F(EngineTest, RestoreFromChangelogContinuesByteForByte) {
  config_.limits.completed_run_retention_s = 60;  // so a tombstone is part of the stream
  const std::vector<E> stream = MixedStream();
  const int64_t end = At(400000);
  std::vector<Record> whole = RunAll(config_, stream, end);

  for (size_t split : {size_t{4}, size_t{9}, size_t{12}, size_t{16}}) {
    SCOPED_TRACE(split);
    MapChangelog log;
    RecordingSink sink;
    std::string meta;
    {
      Engine first(config_, nullptr);
      for (size_t i = 0; i < split; ++i) {
        first.Process(stream[i].e, {"agent.events", 0, static_cast<int64_t>(i)}, &sink);
        if (i % 3 == 0) first.DrainChanges(&log);  // drains along the way, as live mode does
      }
      first.DrainChanges(&log);
      meta = first.SerializeMeta();
    }
    Engine second(config_, nullptr);
    for (const auto& [run_id, state] : log.runs) ASSERT_TRUE(second.RestoreRun(run_id, state));
    ASSERT_TRUE(second.RestoreMeta(meta));
    for (size_t i = split; i < stream.size(); ++i) {
      second.Process(stream[i].e, {"agent.events", 0, static_cast<int64_t>(i)}, &sink);
    }
    second.AdvanceWatermark(end, &sink);
    ExpectSameRecords(whole, sink.records);
  }
}

TEST_F(EngineTest, MarkAllChangedMakesTheNextDrainTheWholeState) {
  StartRun("a");
  StartRun("b");
  StartRun("c");
  Send(E(EventType::kRunCompleted, "done", "c", At(5)).Outcome(Outcome::kSuccess));  // retained
  MapChangelog first;
  engine().DrainChanges(&first);
  ASSERT_EQ(first.runs.size(), 3u);
  Send(E(EventType::kStepStarted, "s", "a", At(6)).Step("plan"));
  MapChangelog second;
  engine().DrainChanges(&second);
  EXPECT_EQ(second.puts, 1);  // only a changed

  engine().MarkAllChanged();
  MapChangelog snapshot;
  engine().DrainChanges(&snapshot);
  EXPECT_EQ(snapshot.puts, 3);
  EXPECT_EQ(snapshot.runs.at("a"), second.runs.at("a"));
  EXPECT_EQ(snapshot.runs.at("b"), first.runs.at("b"));
  EXPECT_EQ(snapshot.runs.at("c"), first.runs.at("c"));
  MapChangelog after;
  engine().DrainChanges(&after);
  EXPECT_EQ(after.puts, 0);  // the snapshot cleared the marks
}

TEST_F(EngineTest, ChangelogHasTombstonesForForgottenRunsAndRejectsBadBytes) {
  config_.limits.completed_run_retention_s = 10;
  config_.limits.retired_run_memory_s = 0;
  MapChangelog log;
  StartRun("r");
  engine().DrainChanges(&log);
  EXPECT_EQ(log.runs.count("r"), 1u);
  Send(E(EventType::kRunCompleted, "c", "r", At(5)).Outcome(Outcome::kSuccess));
  Advance(At(16));
  engine().DrainChanges(&log);
  EXPECT_EQ(log.runs.count("r"), 0u);
  int puts = log.puts;
  engine().DrainChanges(&log);
  EXPECT_EQ(log.puts, puts);  // nothing changed since

  Engine other(config_, nullptr);
  EXPECT_FALSE(other.RestoreRun("x", "garbage"));
  EXPECT_FALSE(other.RestoreRun("x", std::string(1, '\x01')));
  EXPECT_FALSE(other.RestoreMeta(""));
  EXPECT_EQ(other.active_runs(), 0);
}

TEST_F(EngineTest, ARetiredRunIsSmallInTheChangelogAndStaysRetiredAfterARestore) {
  config_.limits.completed_run_retention_s = 100;
  config_.limits.retired_run_memory_s = 1000;
  StartRun("r");
  for (int i = 0; i < 20; ++i) {
    Send(E(EventType::kStepSucceeded, "ok" + std::to_string(i), "r", At(2 + i))
             .Step("step-" + std::to_string(i)));
  }
  Send(E(EventType::kRunCompleted, "c", "r", At(30)).Outcome(Outcome::kSuccess));
  MapChangelog log;
  engine().DrainChanges(&log);
  const size_t completed_bytes = log.runs.at("r").size();
  Advance(At(130));
  engine().DrainChanges(&log);
  ASSERT_EQ(log.runs.count("r"), 1u);
  EXPECT_LT(log.runs.at("r").size() * 4, completed_bytes);  // ids and steps are gone

  Engine restored(config_, nullptr);
  ASSERT_TRUE(restored.RestoreRun("r", log.runs.at("r")));
  RecordingSink sink;
  EXPECT_FALSE(restored.Process(E(EventType::kHeartbeat, "late", "r", At(131)).e,
                                {"agent.events", 0, 0}, &sink));
  EXPECT_EQ(restored.active_runs(), 0);
  restored.AdvanceWatermark(At(1130), &sink);  // forgotten: a tombstone for its key
  MapChangelog after = log;
  restored.DrainChanges(&after);
  EXPECT_EQ(after.runs.count("r"), 0u);
  EXPECT_TRUE(sink.records.empty());
}

}  // namespace
}  // namespace handoffd

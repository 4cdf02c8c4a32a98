// Fleet: the synthetic agent fleet is deterministic, its lines decode as it says they do, and the
// mix holds every kind of traffic the engine must handle.
#include "processor/fleet.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "processor/decoder.h"

namespace handoffd {
namespace {

std::vector<std::string> Lines(const FleetOptions& options, int n) {
  Fleet fleet(options);
  std::vector<std::string> lines(static_cast<size_t>(n));
  for (auto& line : lines) fleet.Next(&line);
  return lines;
}

TEST(FleetTest, SameSeedGivesTheSameLinesAndAnotherSeedDoesNot) {
  FleetOptions options;
  options.seed = 42;
  std::vector<std::string> a = Lines(options, 5000);
  EXPECT_EQ(a, Lines(options, 5000));
  options.seed = 43;
  EXPECT_NE(a, Lines(options, 5000));
}

TEST(FleetTest, NextAppendsOneLineWithoutNewline) {
  Fleet fleet(FleetOptions{});
  std::string buffer = "prefix|";
  fleet.Next(&buffer);
  EXPECT_EQ(buffer.rfind("prefix|{", 0), 0u);
  EXPECT_EQ(buffer.find('\n'), std::string::npos);
  EXPECT_EQ(fleet.lines(), 1u);
}

TEST(FleetTest, EveryLineDecodesAsItsKindSays) {
  FleetOptions options;
  options.seed = 3;
  options.failure_rate = 0.3;
  options.invalid_rate = 0.02;
  options.duplicate_rate = 0.02;
  Fleet fleet(options);
  Decoder decoder(1 << 20);
  Event event;
  std::string line;
  std::map<FleetLine, int> kinds;
  for (int i = 0; i < 100000; ++i) {
    line.clear();
    fleet.Next(&line);
    ++kinds[fleet.kind()];
    std::string_view reason = decoder.Decode(line, &event);
    if (fleet.kind() == FleetLine::kInvalid) {
      EXPECT_FALSE(reason.empty()) << line;
      continue;
    }
    ASSERT_EQ(reason, "") << line;
    EXPECT_EQ(event.run_id, fleet.run_id()) << line;
    EXPECT_EQ(event.IsAck(), fleet.kind() == FleetLine::kAck) << line;
    EXPECT_EQ(event.type == EventType::kUnknown, fleet.kind() == FleetLine::kUnknownType) << line;
    if (fleet.kind() != FleetLine::kDuplicate) {
      EXPECT_EQ(event.ts_ms, fleet.ts_ms()) << line;
    }
  }
  for (FleetLine k : {FleetLine::kEvent, FleetLine::kAck, FleetLine::kInvalid,
                      FleetLine::kDuplicate, FleetLine::kUnknownType}) {
    EXPECT_GT(kinds[k], 0) << static_cast<int>(k);
  }
  EXPECT_NEAR(kinds[FleetLine::kInvalid] / 100000.0, 0.02, 0.005);
  EXPECT_NEAR(kinds[FleetLine::kDuplicate] / 100000.0, 0.02, 0.005);
}

TEST(FleetTest, MixCoversEveryFailureAndHandoffTrigger) {
  FleetOptions options;
  options.seed = 11;
  options.failure_rate = 0.5;
  Fleet fleet(options);
  Decoder decoder(1 << 20);
  Event event;
  std::string line;
  std::set<std::string> types, codes, reasons, workflows, side_effects, handoff_types;
  int low_confidence = 0, risky = 0, big_amount = 0, expensive = 0, retryable = 0;
  int failed_runs = 0, cancelled_runs = 0, offsets = 0, integer_ts = 0, packet_acks = 0;
  for (int i = 0; i < 300000; ++i) {
    line.clear();
    fleet.Next(&line);
    std::string_view reason = decoder.Decode(line, &event);
    if (!reason.empty()) {
      reasons.insert(std::string(reason));
      continue;
    }
    types.insert(std::string(event.type_name));
    if (line.find("+01:00\"") != std::string::npos) ++offsets;
    if (line.find("\"ts\":1") != std::string::npos) ++integer_ts;
    if (event.workflow_id) workflows.insert(std::string(*event.workflow_id));
    switch (event.type) {
      case EventType::kStepFailed:
        codes.insert(std::string(event.error_code));
        retryable += event.retryable;
        break;
      case EventType::kToolCall:
        if (event.tool_status == ToolStatus::kError && event.side_effect) {
          side_effects.insert(std::string(ToString(*event.side_effect)));
        }
        expensive += event.cost_usd && *event.cost_usd >= 0.8;
        break;
      case EventType::kDecision:
        low_confidence += event.confidence < 0.85;
        risky += event.risk == Risk::kIrreversible || event.risk == Risk::kExternal;
        big_amount += event.amount && *event.amount >= 5000;
        break;
      case EventType::kHandoffRequested:
        handoff_types.insert(event.handoff_type ? std::string(ToString(*event.handoff_type))
                                                : "none");
        EXPECT_TRUE(event.options_json && event.evidence_json) << line;
        break;
      case EventType::kRunCompleted:
        failed_runs += event.outcome == Outcome::kFailure;
        cancelled_runs += event.outcome == Outcome::kCancelled;
        break;
      case EventType::kHandoffAcknowledged:
      case EventType::kHandoffResolved:
        packet_acks += event.packet_id.has_value();
        break;
      default:
        break;
    }
  }
  for (const char* t : {"run_started", "step_started", "step_succeeded", "step_failed", "tool_call",
                        "decision", "handoff_requested", "heartbeat", "run_completed",
                        "handoff_acknowledged", "handoff_resolved", "agent_thought"}) {
    EXPECT_TRUE(types.count(t)) << t;
  }
  // One code of each class of contract section 4, and one no rule knows.
  for (const char* c :
       {"missing_input", "duplicate_entity", "conflicting_context", "write_failed",
        "schema_invalid", "permission_denied", "unsupported_request", "model_refused", "timeout"}) {
    EXPECT_TRUE(codes.count(c)) << c;
  }
  for (const char* r : {"invalid_json", "not_object", "missing_field:run_id",
                        "wrong_type:confidence", "bad_timestamp", "missing_field:error.code"}) {
    EXPECT_TRUE(reasons.count(r)) << r;
  }
  for (const char* w : {"refund-review", "ledger-close", "invoice-match", "support-triage",
                        "adhoc-research", "data-backfill"}) {
    EXPECT_TRUE(workflows.count(w)) << w;
  }
  EXPECT_EQ(side_effects,
            (std::set<std::string>{"none", "reversible", "irreversible", "external"}));
  EXPECT_EQ(handoff_types, (std::set<std::string>{"business_judgment", "risk_authorization",
                                                  "evidence_gap", "none"}));
  EXPECT_GT(low_confidence, 0);
  EXPECT_GT(risky, 0);
  EXPECT_GT(big_amount, 0);
  EXPECT_GT(expensive, 0);
  EXPECT_GT(retryable, 0);
  EXPECT_GT(failed_runs, 0);
  EXPECT_GT(cancelled_runs, 0);
  EXPECT_GT(offsets, 0);
  EXPECT_GT(integer_ts, 0);
  EXPECT_GT(packet_acks, 0);
}

TEST(FleetTest, RunsInterleaveUpToTheConfiguredConcurrency) {
  FleetOptions options;
  options.concurrent_runs = 32;
  options.invalid_rate = 0;
  Fleet fleet(options);
  std::string line;
  std::set<std::string> runs;
  for (int i = 0; i < 200; ++i) {
    line.clear();
    fleet.Next(&line);
    runs.insert(std::string(fleet.run_id()));
  }
  // 200 lines over 32 slots: nearly every slot has started a run, none is run to the end first.
  EXPECT_GE(runs.size(), 28u);
  EXPECT_LE(fleet.runs_started(), 40u);
}

TEST(FleetTest, SomeRunsStallWithoutCompleting) {
  FleetOptions options;
  options.failure_rate = 1.0;
  options.ack_rate = 0;
  Fleet fleet(options);
  Decoder decoder(1 << 20);
  Event event;
  std::string line;
  std::map<std::string, bool> completed;  // run -> saw run_completed
  for (int i = 0; i < 50000; ++i) {
    line.clear();
    fleet.Next(&line);
    if (!decoder.Decode(line, &event).empty()) continue;
    completed[std::string(event.run_id)] |= event.type == EventType::kRunCompleted;
  }
  int open = 0;
  for (const auto& [run, done] : completed) open += !done;
  // Stalls and handoff requests leave runs open well beyond the 64 still in flight.
  EXPECT_GT(open, 200);
}

// True for the events the fleet makes go wrong on purpose (the triggers of contract section 4).
bool IsTrouble(const Event& e) {
  switch (e.type) {
    case EventType::kStepFailed:
    case EventType::kHandoffRequested:
      return true;
    case EventType::kToolCall:
      return e.tool_status == ToolStatus::kError || (e.cost_usd && *e.cost_usd >= 0.8);
    case EventType::kDecision:
      return e.confidence < 0.85 || e.risk == Risk::kIrreversible || e.risk == Risk::kExternal ||
             (e.amount && *e.amount >= 5000);
    case EventType::kRunCompleted:
      return e.outcome == Outcome::kFailure;
    default:
      return false;
  }
}

TEST(FleetTest, AcksFollowTheirRunsFailureMinutesLaterInEventTime) {
  FleetOptions options;
  options.failure_rate = 0.5;
  options.ack_rate = 1.0;
  options.out_of_order_rate = 0;
  Fleet fleet(options);
  Decoder decoder(1 << 20);
  Event event;
  std::string line;
  std::map<std::string, int64_t> first_trouble_ms;
  int acks = 0;
  for (int i = 0; i < 100000; ++i) {
    line.clear();
    fleet.Next(&line);
    if (!decoder.Decode(line, &event).empty()) continue;
    std::string run(event.run_id);
    if (event.IsAck()) {
      ASSERT_TRUE(first_trouble_ms.count(run)) << "ack for a run that went fine: " << line;
      // 1 to 10 minutes after the trigger (which may itself have arrived up to 5 s late).
      EXPECT_GE(event.ts_ms - first_trouble_ms[run], 55000) << line;
      ++acks;
    } else if (IsTrouble(event) && !first_trouble_ms.count(run)) {
      first_trouble_ms[run] = event.ts_ms;
    }
  }
  EXPECT_GT(acks, 1000);
}

TEST(FleetTest, EventTimeAdvancesByTheMeanGap) {
  FleetOptions options;
  options.mean_gap_ms = 100;
  options.start_ms = 1'000'000;
  Fleet fleet(options);
  std::string line;
  for (int i = 0; i < 10000; ++i) {
    line.clear();
    fleet.Next(&line);
  }
  // 10,000 gaps of 100 ms on average, give or take 5%; late events lag by up to 5 s.
  EXPECT_NEAR(static_cast<double>(fleet.ts_ms() - options.start_ms), 1'000'000, 60'000);
}

TEST(FleetTest, ZeroRatesGiveOnlyValidDistinctEvents) {
  FleetOptions options;
  options.invalid_rate = 0;
  options.duplicate_rate = 0;
  options.unknown_type_rate = 0;
  options.failure_rate = 0;
  Fleet fleet(options);
  Decoder decoder(1 << 20);
  Event event;
  std::string line;
  std::set<std::string> ids;
  for (int i = 0; i < 20000; ++i) {
    line.clear();
    fleet.Next(&line);
    ASSERT_EQ(decoder.Decode(line, &event), "") << line;
    ASSERT_FALSE(event.IsAck()) << line;
    EXPECT_TRUE(ids.insert(std::string(event.event_id)).second) << line;
    EXPECT_NE(event.type, EventType::kStepFailed) << line;
  }
}

}  // namespace
}  // namespace handoffd

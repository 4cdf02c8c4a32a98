// Contract conformance tests: an independent reading of /CONTRACT sections 2 to 7 and 11, driven
// end to end through the replay path (JSON lines -> decoder -> engine -> replay writer) with an
// explicit YAML catalog per test. Each test states one rule a user of the topics would notice and
// checks it on the output lines, parsed back as JSON.
//
// Records are summarised as one short string each so order tests read like the expected stream:
//   "<topic without handoff.> <packet_id> rev<n> <gate> L<level> @<seconds after kBase>"  packets
//   "audit <packet_id> rev<n> <action> @<seconds>"                                        audit
//   "dlq <error>"                                                                            DLQ
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "processor/cli/replay.h"
#include "tests/replay_capture.h"

namespace handoffd {
namespace {

// --- Time. Inputs and expectations are written as seconds after kBase. ---

std::time_t Base() {
  std::tm tm{};
  tm.tm_year = 2026 - 1900;
  tm.tm_mon = 4;  // May
  tm.tm_mday = 1;
  tm.tm_hour = 10;
  return timegm(&tm);
}

// RFC 3339 UTC with milliseconds, `ms` after kBase.
std::string AtMs(int64_t ms) {
  std::time_t t = Base() + static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}
std::string At(int64_t seconds) { return AtMs(seconds * 1000); }

// Inverse of AtMs for output times: "+<seconds>" (with milliseconds when not whole).
std::string Offset(const std::string& rfc3339) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(rfc3339.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    return "?" + rfc3339;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t s = static_cast<int64_t>(timegm(&tm) - Base());
  std::string out = std::to_string(s);
  if (ms != 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, ".%03d", ms);
    out += buf;
  }
  return out;
}

// --- Input lines. ---

// An agent event; `extra` is more JSON members ("\"step\":\"s\"").
std::string Ev(const std::string& id, const std::string& run, const std::string& type,
               int64_t seconds, const std::string& extra = "") {
  std::string out = R"({"event_id":")" + id + R"(","run_id":")" + run + R"(","type":")" + type +
                    R"(","ts":")" + At(seconds) + "\"";
  if (!extra.empty()) out += "," + extra;
  return out + "}";
}

std::string AckLine(const std::string& type, const std::string& run, int64_t seconds,
                    const std::string& extra) {
  std::string out =
      R"({"type":")" + type + R"(","run_id":")" + run + R"(","ts":")" + At(seconds) + "\"";
  if (!extra.empty()) out += "," + extra;
  return out + "}";
}
std::string Ack(const std::string& run, int64_t seconds, const std::string& extra = "") {
  return AckLine("handoff_acknowledged", run, seconds, extra);
}
std::string Resolved(const std::string& run, int64_t seconds, const std::string& extra = "") {
  return AckLine("handoff_resolved", run, seconds, extra);
}

std::string Failed(const std::string& id, const std::string& run, int64_t seconds,
                   const std::string& step, const std::string& code,
                   const std::string& extra = "") {
  std::string e = R"("step":")" + step + R"(","error":{"code":")" + code + R"("})";
  if (!extra.empty()) e += "," + extra;
  return Ev(id, run, "step_failed", seconds, e);
}

std::string Started(const std::string& id, const std::string& run, int64_t seconds,
                    const std::string& workflow, const std::string& extra = "") {
  std::string e = R"("workflow_id":")" + workflow + "\"";
  if (!extra.empty()) e += "," + extra;
  return Ev(id, run, "run_started", seconds, e);
}

// --- Output. ---

class RecordingObserver : public EngineObserver {
 public:
  void OnAcknowledged(Severity s, double seconds) override { acks.push_back({s, seconds}); }
  void OnExpired(Severity s) override { expired.push_back(s); }
  std::vector<std::pair<Severity, double>> acks;
  std::vector<Severity> expired;
};

// One JSON field of an output line by JSON pointer: a string's contents, any other value as
// minified JSON ("null", "2", "[\"a\"]"), "<absent>" when the pointer does not resolve.
std::string Get(const std::string& line, std::string_view pointer) {
  static simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(line).get(doc) != simdjson::SUCCESS) return "<not json>";
  simdjson::dom::element e;
  if (doc.at_pointer(pointer).get(e) != simdjson::SUCCESS) return "<absent>";
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  return simdjson::minify(e);
}

std::string Summary(const std::string& line) {
  std::string topic = Get(line, "/topic");
  if (topic == "agent.events.dlq") return "dlq " + Get(line, "/error");
  if (topic == "handoff.audit") {
    return "audit " + Get(line, "/value/packet_id") + " rev" + Get(line, "/value/revision") + " " +
           Get(line, "/value/action") + " @" + Offset(Get(line, "/value/at"));
  }
  if (topic.rfind("handoff.", 0) == 0) topic = topic.substr(8);
  return topic + " " + Get(line, "/value/packet_id") + " rev" + Get(line, "/value/revision") + " " +
         Get(line, "/value/gate") + " L" + Get(line, "/value/escalation_level") + " @" +
         Offset(Get(line, "/value/emitted_at"));
}

struct Output {
  std::string text;
  std::vector<std::string> lines;

  // Summaries of every record keyed by `run`, in output order.
  std::vector<std::string> Of(const std::string& run) const {
    std::vector<std::string> out;
    for (const auto& l : lines) {
      if (Get(l, "/key") == run) out.push_back(Summary(l));
    }
    return out;
  }
  // Packet records (routing topics, not audit) of `run`, in output order.
  std::vector<std::string> Packets(const std::string& run) const {
    std::vector<std::string> out;
    for (const auto& l : lines) {
      std::string topic = Get(l, "/topic");
      if (Get(l, "/key") == run && topic != "handoff.audit" && topic != "agent.events.dlq") {
        out.push_back(l);
      }
    }
    return out;
  }
  std::vector<std::string> Dlq() const {
    std::vector<std::string> out;
    for (const auto& l : lines) {
      if (Get(l, "/topic") == "agent.events.dlq") out.push_back(l);
    }
    return out;
  }
};

Output RunReplay(const std::string& yaml, const std::vector<std::string>& input,
                 std::optional<int64_t> advance_to_s = std::nullopt,
                 EngineObserver* observer = nullptr) {
  Config config = LoadConfigFromString(yaml, "contract_test.yaml", {});
  std::string joined;
  for (const auto& line : input) joined += line + "\n";
  std::istringstream in(joined);
  ReplayOptions options;
  if (advance_to_s) {
    options.advance_to_ms = static_cast<int64_t>(Base()) * 1000 + *advance_to_s * 1000;
  }
  ReplayCapture capture = CaptureReplay(config, in, options, observer);
  Output result;
  result.text = std::move(capture.text);
  result.lines = std::move(capture.lines);
  return result;
}

using Lines = std::vector<std::string>;

// P2 workflow whose catalog entry completes every packet (score 100 after enrichment), with a
// stall timeout long enough never to interfere.
const char* const kBilling = R"(
workflows:
  billing:
    severity: P2
    objective: "Reconcile invoices"
    owner: {primary: ap-lead, backup: ap-oncall}
    rollback_command: "invoicectl rollback"
    blast_radius: {users: 10, jobs: 1}
    stall_timeout_s: 86400
)";

// P1 workflow with no backup owner and no rollback command: 77.5 after enrichment (C 100, O 50,
// N 100, R 50), below the P1 minimum of 90, so its exception packets are held.
const char* const kLedger = R"(
workflows:
  ledger:
    severity: P1
    objective: "Close the ledger"
    owner: {primary: finance-ops}
    blast_radius: {users: 200, jobs: 1}
    stall_timeout_s: 86400
sla:
  P1: {escalation_route: "route-p1", decision_authority: "captain-p1"}
)";

// ---------------------------------------------------------------------------------------------
// Order per input record (section 11).

TEST(ContractTest, LateEventOpeningAPacketPastItsDeadlinesEscalatesRightAfterIt) {
  Output out = RunReplay(kBilling, {
                                       Started("a0", "a", 0, "billing"),
                                       Started("b0", "b", 2000, "billing"),
                                       // Late: the watermark is at 1998 s, past both deadlines.
                                       Failed("a1", "a", 100, "post", "write_failed"),
                                   });
  EXPECT_EQ(out.Of("a"), (Lines{
                             "owner-queue a#1 rev1 notify L1 @100",
                             "audit a#1 rev1 emitted @100",
                             "escalations a#1 rev2 escalate L2 @1000",
                             "audit a#1 rev2 escalated @1000",
                             "escalations a#1 rev3 escalate L3 @1900",
                             "audit a#1 rev3 escalated @1900",
                         }));
  auto packets = out.Packets("a");
  ASSERT_FALSE(packets.empty());
  EXPECT_EQ(Get(packets[0], "/value/detected_at"), At(100));
  EXPECT_EQ(Get(packets[0], "/value/sla/ack_deadline"), At(1000));
}

TEST(ContractTest, TimersDueAreFiredBeforeTheRecordThatMovedTheWatermarkIsApplied) {
  RecordingObserver observer;
  // The ack at 903 s moves the watermark to 901 s, past the L2 deadline (900 s): L2 fires first,
  // then the ack is applied and stops L3 (its ts is before the L3 time, 1800 s).
  Output out = RunReplay(kBilling,
                         {
                             Started("a0", "a", 0, "billing"),
                             Failed("a1", "a", 0, "post", "write_failed"),
                             Ack("a", 903, R"("by":"alice")"),
                         },
                         5000, &observer);
  EXPECT_EQ(out.Of("a"), (Lines{
                             "owner-queue a#1 rev1 notify L1 @0",
                             "audit a#1 rev1 emitted @0",
                             "escalations a#1 rev2 escalate L2 @900",
                             "audit a#1 rev2 escalated @900",
                             "audit a#1 rev2 acknowledged @903",
                         }));
  ASSERT_EQ(observer.acks.size(), 1u);
  EXPECT_DOUBLE_EQ(observer.acks[0].second, 903.0);
}

TEST(ContractTest, TimersFireInTimeOrderAcrossRunsAndPackets) {
  // Two packets whose deadlines interleave; one big watermark jump fires all four levels.
  Output out = RunReplay(kBilling, {
                                       Started("a0", "a", 0, "billing"),
                                       Started("b0", "b", 0, "billing"),
                                       Failed("a1", "a", 0, "post", "write_failed"),
                                       Failed("b1", "b", 500, "post", "write_failed"),
                                       Started("c0", "c", 3000, "billing"),
                                   });
  std::vector<std::string> escalations;
  for (const auto& l : out.lines) {
    if (Get(l, "/topic") == "handoff.escalations") escalations.push_back(Summary(l));
  }
  EXPECT_EQ(escalations, (Lines{
                             "escalations a#1 rev2 escalate L2 @900",
                             "escalations b#1 rev2 escalate L2 @1400",
                             "escalations a#1 rev3 escalate L3 @1800",
                             "escalations b#1 rev3 escalate L3 @2300",
                         }));
}

TEST(ContractTest, ATimerIsDueWhenTheWatermarkReachesItsTimeExactly) {
  // L2 is due at 900 s; with 2 s of allowed lateness an event at 901.999 s leaves the watermark
  // 1 ms short of it and an event at 902 s puts it exactly there.
  auto tick = [](const std::string& id, int64_t ms) {
    return R"({"event_id":")" + id + R"(","run_id":"b","type":"heartbeat","ts":")" + AtMs(ms) +
           R"("})";
  };
  Output before = RunReplay(kBilling, {
                                          Started("a0", "a", 0, "billing"),
                                          Failed("a1", "a", 0, "post", "write_failed"),
                                          tick("b1", 901999),
                                      });
  EXPECT_EQ(before.Packets("a").size(), 1u) << before.text;
  Output at = RunReplay(kBilling, {
                                      Started("a0", "a", 0, "billing"),
                                      Failed("a1", "a", 0, "post", "write_failed"),
                                      tick("b1", 902000),
                                  });
  ASSERT_EQ(at.Packets("a").size(), 2u) << at.text;
  EXPECT_EQ(Summary(at.Packets("a")[1]), "escalations a#1 rev2 escalate L2 @900");
}

TEST(ContractTest, LateHeldP1WhoseHoldAndDeadlinesHavePassedPagesAndEscalatesRightAfterIt) {
  Output out = RunReplay(
      kLedger, {
                   Started("b0", "b", 1000, "ledger"),
                   // Late by 1000 s: hold (60 s), L2 (300 s) and L3 (600 s)
                   // are all behind the watermark once it is applied.
                   Failed("h1", "h", 0, "post", "write_failed", R"("workflow_id":"ledger")"),
                   Started("b1", "b2", 1001, "ledger"),
               });
  EXPECT_EQ(out.Of("h"), (Lines{
                             "pending h#1 rev1 held L1 @0",
                             "audit h#1 rev1 held @0",
                             "page h#1 rev2 page L1 @60",
                             "audit h#1 rev2 emitted @60",
                             "escalations h#1 rev3 escalate L2 @300",
                             "audit h#1 rev3 escalated @300",
                             "escalations h#1 rev4 escalate L3 @600",
                             "audit h#1 rev4 escalated @600",
                         }));
  // All of it before anything of the next record.
  ASSERT_GE(out.lines.size(), 8u);
  EXPECT_EQ(Get(out.lines[7], "/key"), "h");
  // No backup owner: level 2 goes to the escalation route; level 3 to the decision authority.
  auto packets = out.Packets("h");
  ASSERT_EQ(packets.size(), 4u);
  EXPECT_EQ(Get(packets[2], "/value/escalation_target"), "route-p1");
  EXPECT_EQ(Get(packets[3], "/value/escalation_target"), "captain-p1");
}

TEST(ContractTest, DeadLetteredRecordWithAValidEnvelopeStillMovesTheWatermark) {
  // Section 11: "every record with a valid envelope moves it". This decision has a valid
  // event_id, run_id, type and ts; only its confidence is wrong, so it is dead-lettered and
  // still moves the watermark to 998 s, past the L2 deadline (900 s).
  Output out = RunReplay(kBilling, {
                                       Started("a0", "a", 0, "billing"),
                                       Failed("a1", "a", 0, "post", "write_failed"),
                                       Ev("x1", "x", "decision", 1000, R"("confidence":"high")"),
                                   });
  ASSERT_EQ(out.Dlq().size(), 1u);
  EXPECT_EQ(Get(out.Dlq()[0], "/error"), "wrong_type:confidence");
  // The escalation comes before the dead-lettered record.
  ASSERT_EQ(out.lines.size(), 5u);
  EXPECT_EQ(Get(out.lines[4], "/topic"), "agent.events.dlq");
  EXPECT_EQ(out.Of("a"), (Lines{
                             "owner-queue a#1 rev1 notify L1 @0",
                             "audit a#1 rev1 emitted @0",
                             "escalations a#1 rev2 escalate L2 @900",
                             "audit a#1 rev2 escalated @900",
                         }));
  // Without a valid envelope (no event_id) the record's ts does not count.
  Output invalid =
      RunReplay(kBilling, {
                              Started("a0", "a", 0, "billing"),
                              Failed("a1", "a", 0, "post", "write_failed"),
                              R"({"run_id":"x","type":"heartbeat","ts":")" + At(1000) + R"("})",
                          });
  EXPECT_EQ(invalid.Packets("a").size(), 1u) << invalid.text;
}

// ---------------------------------------------------------------------------------------------
// Acknowledgements (sections 3 and 11).

TEST(ContractTest, AckStampedAtTheL2TimeSuppressesL2EvenWhenItArrivesAfterLaterEvents) {
  Output out =
      RunReplay(kBilling,
                {
                    Started("a0", "a", 0, "billing"), Failed("a1", "a", 0, "post", "write_failed"),
                    Started("b0", "b", 901, "billing"),  // watermark 899 s
                    Ack("a", 900),                       // at the L2 time exactly
                },
                5000);
  EXPECT_EQ(out.Of("a"), (Lines{
                             "owner-queue a#1 rev1 notify L1 @0",
                             "audit a#1 rev1 emitted @0",
                             "audit a#1 rev1 acknowledged @900",
                         }));
}

TEST(ContractTest, AckAfterL2SuppressesOnlyL3AndTheAcknowledgedPacketClosesAtExpiry) {
  Output out = RunReplay(kBilling,
                         {
                             Started("a0", "a", 0, "billing"),
                             Failed("a1", "a", 0, "post", "write_failed"),
                             Started("b0", "b", 950, "billing"),  // watermark 948 s: L2 fires
                             Ack("a", 1000),
                         },
                         20000);
  EXPECT_EQ(out.Of("a"), (Lines{
                             "owner-queue a#1 rev1 notify L1 @0",
                             "audit a#1 rev1 emitted @0",
                             "escalations a#1 rev2 escalate L2 @900",
                             "audit a#1 rev2 escalated @900",
                             "audit a#1 rev2 acknowledged @1000",
                             "audit a#1 rev2 closed @14400",
                         }));
}

TEST(ContractTest, AckWithoutPacketIdAppliesToEveryOpenPacketOfItsRunOnly) {
  RecordingObserver observer;
  Output out = RunReplay(kBilling,
                         {
                             Started("a0", "a", 0, "billing"),
                             Started("c0", "c", 0, "billing"),
                             Failed("a1", "a", 0, "s1", "write_failed"),
                             Failed("a2", "a", 10, "s2", "forbidden"),
                             Failed("c1", "c", 10, "s1", "write_failed"),
                             Ack("a", 20, R"("by":"bob")"),
                         },
                         1000, &observer);
  EXPECT_EQ(out.Of("a"), (Lines{
                             "owner-queue a#1 rev1 notify L1 @0",
                             "audit a#1 rev1 emitted @0",
                             "owner-queue a#2 rev1 notify L1 @10",
                             "audit a#2 rev1 emitted @10",
                             "audit a#1 rev1 acknowledged @20",
                             "audit a#2 rev1 acknowledged @20",
                         }));
  // The other run's packet is not acknowledged and escalates.
  EXPECT_EQ(out.Of("c"), (Lines{
                             "owner-queue c#1 rev1 notify L1 @10",
                             "audit c#1 rev1 emitted @10",
                             "escalations c#1 rev2 escalate L2 @910",
                             "audit c#1 rev2 escalated @910",
                         }));
  // One MTTA sample per packet: ts minus that packet's detected_at.
  ASSERT_EQ(observer.acks.size(), 2u);
  EXPECT_DOUBLE_EQ(observer.acks[0].second + observer.acks[1].second, 30.0);
  for (const auto& l : out.lines) {
    if (Get(l, "/value/action") == "acknowledged") {
      EXPECT_EQ(Get(l, "/value/by"), "bob");
    }
  }
}

// Reading chosen where the contract is silent: a run-wide ack cannot acknowledge an incident
// detected after its ts (it would silence that incident with an MTTA of 0).
TEST(ContractTest, RunWideAckStampedBeforeAPacketWasDetectedLeavesThatPacketEscalating) {
  RecordingObserver observer;
  Output out =
      RunReplay(kBilling,
                {
                    Started("a0", "a", 0, "billing"), Failed("a1", "a", 0, "s1", "write_failed"),
                    Failed("a2", "a", 30, "s2", "forbidden"),
                    Ack("a", 20),  // arrives after a#2 but was stamped before it
                },
                1000, &observer);
  EXPECT_EQ(out.Of("a"), (Lines{
                             "owner-queue a#1 rev1 notify L1 @0",
                             "audit a#1 rev1 emitted @0",
                             "owner-queue a#2 rev1 notify L1 @30",
                             "audit a#2 rev1 emitted @30",
                             "audit a#1 rev1 acknowledged @20",
                             "escalations a#2 rev2 escalate L2 @930",
                             "audit a#2 rev2 escalated @930",
                         }));
  ASSERT_EQ(observer.acks.size(), 1u);
  EXPECT_DOUBLE_EQ(observer.acks[0].second, 20.0);
}

TEST(ContractTest, AckOfOnePacketIdLeavesTheOtherPacketsOfTheRunEscalating) {
  Output out = RunReplay(kBilling,
                         {
                             Started("a0", "a", 0, "billing"),
                             Failed("a1", "a", 0, "s1", "write_failed"),
                             Failed("a2", "a", 10, "s2", "forbidden"),
                             Ack("a", 20, R"("packet_id":"a#1")"),
                         },
                         2000);
  EXPECT_EQ(out.Of("a"), (Lines{
                             "owner-queue a#1 rev1 notify L1 @0",
                             "audit a#1 rev1 emitted @0",
                             "owner-queue a#2 rev1 notify L1 @10",
                             "audit a#2 rev1 emitted @10",
                             "audit a#1 rev1 acknowledged @20",
                             "escalations a#2 rev2 escalate L2 @910",
                             "audit a#2 rev2 escalated @910",
                             "escalations a#2 rev3 escalate L3 @1810",
                             "audit a#2 rev3 escalated @1810",
                         }));
}

TEST(ContractTest, AckDoesNotCancelAP1HoldButResolveDoes) {
  Output out = RunReplay(kLedger,
                         {
                             Started("h0", "h", 0, "ledger"),
                             Failed("h1", "h", 0, "post", "write_failed"),
                             Started("r0", "r", 0, "ledger"),
                             Failed("r1", "r", 0, "post", "write_failed"),
                             Ack("h", 10),
                             Resolved("r", 10),
                         },
                         1000);
  // Acknowledged in time: the hold still ends in an override page, but no escalation follows.
  EXPECT_EQ(out.Of("h"), (Lines{
                             "pending h#1 rev1 held L1 @0",
                             "audit h#1 rev1 held @0",
                             "audit h#1 rev1 acknowledged @10",
                             "page h#1 rev2 page L1 @60",
                             "audit h#1 rev2 emitted @60",
                         }));
  EXPECT_EQ(out.Of("r"), (Lines{
                             "pending r#1 rev1 held L1 @0",
                             "audit r#1 rev1 held @0",
                             "audit r#1 rev1 resolved @10",
                         }));
}

TEST(ContractTest, ResolveWithNoEarlierAckGivesOneMttaSampleAndOnlyAResolvedAudit) {
  RecordingObserver observer;
  Output out =
      RunReplay(kBilling,
                {
                    Started("a0", "a", 0, "billing"), Failed("a1", "a", 0, "post", "write_failed"),
                    Resolved("a", 120, R"("by":"alice")"),
                    Ack("a", 130),  // the packet is closed: nothing to acknowledge
                },
                20000, &observer);
  EXPECT_EQ(out.Of("a"), (Lines{
                             "owner-queue a#1 rev1 notify L1 @0",
                             "audit a#1 rev1 emitted @0",
                             "audit a#1 rev1 resolved @120",
                         }));
  EXPECT_EQ(Get(out.lines.back(), "/value/by"), "alice");
  ASSERT_EQ(observer.acks.size(), 1u);
  EXPECT_EQ(observer.acks[0].first, Severity::kP2);
  EXPECT_DOUBLE_EQ(observer.acks[0].second, 120.0);
  EXPECT_TRUE(observer.expired.empty());
}

TEST(ContractTest, OnlyTheFirstAcknowledgementGivesAnMttaSampleAndResolveStillCloses) {
  RecordingObserver observer;
  Output out = RunReplay(kBilling,
                         {
                             Started("a0", "a", 0, "billing"),
                             Failed("a1", "a", 0, "post", "write_failed"),
                             Ack("a", 30, R"("packet_id":"a#1","by":"alice")"),
                             Ack("a", 40, R"("by":"bob")"),
                             Ack("a", 45, R"("packet_id":"a#7")"),  // no such packet
                             Resolved("a", 50, R"("by":"carol")"),
                         },
                         20000, &observer);
  EXPECT_EQ(out.Of("a"), (Lines{
                             "owner-queue a#1 rev1 notify L1 @0",
                             "audit a#1 rev1 emitted @0",
                             "audit a#1 rev1 acknowledged @30",
                             "audit a#1 rev1 resolved @50",
                         }));
  ASSERT_EQ(observer.acks.size(), 1u);
  EXPECT_DOUBLE_EQ(observer.acks[0].second, 30.0);
}

TEST(ContractTest, UnacknowledgedPacketExpiresAndAcknowledgedOneClosesAtExpiresAt) {
  RecordingObserver observer;
  const char* yaml = R"(
workflows:
  ops:
    severity: P3
    objective: "Nightly ops"
    owner: {primary: ops-lead, backup: ops-oncall}
    rollback_command: "opsctl undo"
    blast_radius: {users: 1, jobs: 1}
    stall_timeout_s: 864000
)";
  Output out = RunReplay(yaml,
                         {
                             Started("u0", "u", 0, "ops"),
                             Failed("u1", "u", 0, "post", "write_failed"),
                             Started("k0", "k", 0, "ops"),
                             Failed("k1", "k", 0, "post", "write_failed"),
                             Ack("k", 60),
                         },
                         300000, &observer);
  EXPECT_EQ(out.Of("u"), (Lines{
                             "tickets u#1 rev1 ticket L1 @0",
                             "audit u#1 rev1 emitted @0",
                             "escalations u#1 rev2 escalate L2 @14400",
                             "audit u#1 rev2 escalated @14400",
                             "escalations u#1 rev3 escalate L3 @28800",
                             "audit u#1 rev3 escalated @28800",
                             "audit u#1 rev3 expired @259200",
                         }));
  EXPECT_EQ(out.Of("k"), (Lines{
                             "tickets k#1 rev1 ticket L1 @0",
                             "audit k#1 rev1 emitted @0",
                             "audit k#1 rev1 acknowledged @60",
                             "audit k#1 rev1 closed @259200",
                         }));
  auto packets = out.Packets("u");
  ASSERT_FALSE(packets.empty());
  EXPECT_EQ(Get(packets[0], "/value/ttl_s"), "259200");
  EXPECT_EQ(Get(packets[0], "/value/expires_at"), At(259200));
  EXPECT_EQ(observer.expired, std::vector<Severity>{Severity::kP3});
}

TEST(ContractTest, AckStampedAfterExpiresAtDoesNotSaveThePacketFromExpiring) {
  // The ack arrives before the watermark reaches expires_at but is stamped after it.
  const char* yaml = R"(
time: {allowed_lateness_ms: 600000}
workflows:
  billing:
    severity: P2
    objective: "Reconcile invoices"
    owner: {primary: ap-lead, backup: ap-oncall}
    rollback_command: "invoicectl rollback"
    blast_radius: {users: 10, jobs: 1}
    stall_timeout_s: 864000
)";
  Output out =
      RunReplay(yaml,
                {
                    Started("a0", "a", 0, "billing"), Failed("a1", "a", 0, "post", "write_failed"),
                    Started("b0", "b", 14000, "billing"),  // watermark 13400 s
                    Ack("a", 14500),                       // expires_at is 14400 s
                },
                20000);
  std::vector<std::string> got = out.Of("a");
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back(), "audit a#1 rev3 expired @14400");
}

// ---------------------------------------------------------------------------------------------
// Revisions, gates and audit actions (sections 6, 7 and 11).

TEST(ContractTest, RevisionCountsPendingPageAndEscalationsWithTheirAuditActions) {
  Output out = RunReplay(kLedger,
                         {
                             Started("h0", "h", 0, "ledger"),
                             Failed("h1", "h", 0, "post", "write_failed"),
                             Ev("h2", "h", "heartbeat", 100),  // watermark 98 s: override page
                             // Completes the packet after the override page: it is no longer
                             // held, so no further revision.
                             Ev("h3", "h", "heartbeat", 110,
                                R"("rollback_command":"undo","owner":{"backup":"night-shift"})"),
                         },
                         1000);
  EXPECT_EQ(out.Of("h"), (Lines{
                             "pending h#1 rev1 held L1 @0",
                             "audit h#1 rev1 held @0",
                             "page h#1 rev2 page L1 @60",
                             "audit h#1 rev2 emitted @60",
                             "escalations h#1 rev3 escalate L2 @300",
                             "audit h#1 rev3 escalated @300",
                             "escalations h#1 rev4 escalate L3 @600",
                             "audit h#1 rev4 escalated @600",
                         }));
  auto packets = out.Packets("h");
  ASSERT_EQ(packets.size(), 4u);
  EXPECT_EQ(Get(packets[0], "/value/hcs/score"), "77.5");
  EXPECT_EQ(Get(packets[0], "/value/complete"), "false");
  EXPECT_EQ(Get(packets[0], "/value/flags"), "[]");
  EXPECT_EQ(Get(packets[1], "/value/flags"), R"(["override"])");
  // Level 2 goes to the backup owner (given after the override page), level 3 to the authority.
  EXPECT_EQ(Get(packets[2], "/value/escalation_target"), "night-shift");
  EXPECT_EQ(Get(packets[3], "/value/escalation_target"), "captain-p1");
}

TEST(ContractTest, EscalationLevel2GoesToTheBackupOwnerWhenThereIsOne) {
  Output out = RunReplay(kBilling,
                         {
                             Started("a0", "a", 0, "billing"),
                             Failed("a1", "a", 0, "post", "write_failed"),
                         },
                         2000);
  auto packets = out.Packets("a");
  ASSERT_EQ(packets.size(), 3u);
  EXPECT_EQ(Get(packets[0], "/value/escalation_target"), "null");
  EXPECT_EQ(Get(packets[1], "/value/escalation_target"), "ap-oncall");
  EXPECT_EQ(Get(packets[2], "/value/escalation_target"), "workflow owner");
}

TEST(ContractTest, P1HoldLastsP1MaxHoldSeconds) {
  std::string yaml = std::string(kLedger) + "defaults: {p1_max_hold_s: 120}\n";
  Output out = RunReplay(yaml,
                         {
                             Started("h0", "h", 0, "ledger"),
                             Failed("h1", "h", 0, "post", "write_failed"),
                         },
                         200);
  EXPECT_EQ(out.Of("h"), (Lines{
                             "pending h#1 rev1 held L1 @0",
                             "audit h#1 rev1 held @0",
                             "page h#1 rev2 page L1 @120",
                             "audit h#1 rev2 emitted @120",
                         }));
}

TEST(ContractTest, HeldP1CompletedByLaterEventsPagesWithoutOverride) {
  Output out =
      RunReplay(kLedger,
                {
                    Started("h0", "h", 0, "ledger"),
                    Failed("h1", "h", 0, "post", "write_failed"),
                    // 87.5: still below 90, still held.
                    Ev("h2", "h", "step_started", 10, R"("step":"x","rollback_command":"undo")"),
                    // 100: pages now.
                    Ev("h3", "h", "heartbeat", 20, R"("owner":{"backup":"night-shift"})"),
                },
                1000);
  EXPECT_EQ(out.Of("h"), (Lines{
                             "pending h#1 rev1 held L1 @0",
                             "audit h#1 rev1 held @0",
                             "page h#1 rev2 page L1 @20",
                             "audit h#1 rev2 emitted @20",
                             "escalations h#1 rev3 escalate L2 @300",
                             "audit h#1 rev3 escalated @300",
                             "escalations h#1 rev4 escalate L3 @600",
                             "audit h#1 rev4 escalated @600",
                         }));
  auto packets = out.Packets("h");
  ASSERT_GE(packets.size(), 2u);
  EXPECT_EQ(Get(packets[1], "/value/complete"), "true");
  EXPECT_EQ(Get(packets[1], "/value/hcs/score"), "100.0");
  EXPECT_EQ(Get(packets[1], "/value/flags"), "[]");
  EXPECT_EQ(Get(packets[1], "/value/owner"), R"({"primary":"finance-ops","backup":"night-shift"})");
  EXPECT_EQ(Get(packets[2], "/value/escalation_target"), "night-shift");
}

TEST(ContractTest, AlwaysPageWorkflowPagesAnIncompleteP1WithoutHolding) {
  const char* yaml = R"(
workflows:
  ledger:
    severity: P1
    objective: "Close the ledger"
    owner: {primary: finance-ops}
    blast_radius: {users: 200, jobs: 1}
    always_page: true
)";
  Output out = RunReplay(yaml, {
                                   Started("h0", "h", 0, "ledger"),
                                   Failed("h1", "h", 0, "post", "write_failed"),
                               });
  EXPECT_EQ(out.Of("h"), (Lines{
                             "page h#1 rev1 page L1 @0",
                             "audit h#1 rev1 emitted @0",
                         }));
  EXPECT_EQ(Get(out.Packets("h")[0], "/value/complete"), "false");
}

TEST(ContractTest, IncompleteP2CompletedByLaterEventsGetsANotifyRevisionAuditedEnriched) {
  const char* yaml = R"(
workflows:
  p2wf:
    severity: P2
    objective: "Sync accounts"
    blast_radius: {users: 3, jobs: 1}
    stall_timeout_s: 86400
)";
  Output out = RunReplay(yaml, {
                                   Started("a0", "a", 0, "p2wf"),
                                   Failed("a1", "a", 0, "post", "write_failed"),  // 65.0
                                   Ev("a2", "a", "heartbeat", 30, R"("owner":{"primary":"x"})"),
                                   Ev("a3", "a", "heartbeat", 40, R"("owner":{"backup":"y"})"),
                                   Ev("a4", "a", "heartbeat", 50, R"("rollback_command":"z")"),
                               });
  EXPECT_EQ(out.Of("a"), (Lines{
                             "owner-queue a#1 rev1 owner_queue_incomplete L1 @0",
                             "audit a#1 rev1 emitted @0",
                             "owner-queue a#1 rev2 notify L1 @40",
                             "audit a#1 rev2 enriched @40",
                         }));
  auto packets = out.Packets("a");
  ASSERT_EQ(packets.size(), 2u);
  EXPECT_EQ(Get(packets[0], "/value/complete"), "false");
  EXPECT_EQ(Get(packets[0], "/value/hcs/score"), "65.0");
  EXPECT_EQ(Get(packets[1], "/value/complete"), "true");
  EXPECT_EQ(Get(packets[1], "/value/hcs/score"), "90.0");
  EXPECT_EQ(Get(packets[1], "/value/owner"), R"({"primary":"x","backup":"y"})");
  EXPECT_EQ(Get(packets[1], "/value/missing_fields"), R"(["rollback_command"])");
}

TEST(ContractTest, IncompleteP3IsATicketTemplateRequiredWithMissingFieldsInContractOrder) {
  // No catalog, no run_started, no workflow_id: only the trigger's own fields are known.
  Output out = RunReplay("{}", {Failed("z1", "z", 0, "load", "missing_input")});
  auto packets = out.Packets("z");
  ASSERT_EQ(packets.size(), 1u);
  const std::string& p = packets[0];
  EXPECT_EQ(Get(p, "/topic"), "handoff.tickets");
  EXPECT_EQ(Get(p, "/value/gate"), "ticket_template_required");
  EXPECT_EQ(Get(p, "/value/severity"), "P3");
  EXPECT_EQ(Get(p, "/value/complete"), "false");
  EXPECT_EQ(Get(p, "/value/missing_fields"),
            R"(["workflow_id","objective","last_successful_step","blast_radius",)"
            R"("rollback_command","owner.primary","owner.backup"])");
  // The default recommended action for the class counts as enriched.
  EXPECT_EQ(Get(p, "/value/enriched_fields"), R"(["recommended_action"])");
  EXPECT_NE(Get(p, "/value/recommended_action"), "null");
  // C 40 (failing_step, error_summary), O 0, N 100 (default action), R 0: 12 + 25 = 37.
  EXPECT_EQ(Get(p, "/value/hcs"), R"({"score":37.0,"raw":12.0,"c":40,"o":0,"n":100,"r":0})");
  EXPECT_EQ(Get(p, "/value/workflow_id"), "null");
  EXPECT_EQ(Get(p, "/value/last_successful_step"), "null");
  EXPECT_EQ(Get(p, "/value/failing_step"), "load");
  EXPECT_EQ(Get(p, "/value/packet_id"), "z#1");
  EXPECT_EQ(Get(p, "/value/schema"), "handoff.packet/v1");
  EXPECT_EQ(Get(p, "/value/kind"), "exception");
}

TEST(ContractTest, IncompleteP3CompletedByLaterEventsGetsATicketRevision) {
  Output out =
      RunReplay("{}", {
                          Failed("z1", "z", 0, "load", "missing_input"),
                          Ev("z2", "z", "heartbeat", 10,
                             R"("workflow_id":"adhoc","objective":"o","rollback_command":"r",)"
                             R"("owner":{"primary":"p","backup":"b"},"blast_radius":{"users":1})"),
                      });
  EXPECT_EQ(out.Of("z"), (Lines{
                             "tickets z#1 rev1 ticket_template_required L1 @0",
                             "audit z#1 rev1 emitted @0",
                             "tickets z#1 rev2 ticket L1 @10",
                             "audit z#1 rev2 enriched @10",
                         }));
  auto packets = out.Packets("z");
  ASSERT_EQ(packets.size(), 2u);
  // C 80 (no last_successful_step: no run_started), O 100, N 100, R 100: 24+25+25+20 = 94.
  EXPECT_EQ(Get(packets[1], "/value/hcs/score"), "94.0");
  EXPECT_EQ(Get(packets[1], "/value/missing_fields"), R"(["last_successful_step"])");
  EXPECT_EQ(Get(packets[1], "/value/complete"), "true");
}

TEST(ContractTest, PlannedHandoffIsNeverHeldGetsNoCompletionRevisionButEscalatesAndExpires) {
  Output out = RunReplay(kLedger,
                         {
                             Started("h0", "h", 0, "ledger"),
                             Ev("h1", "h", "decision", 0,
                                R"("step":"approve","confidence":0.99,"risk":"irreversible")"),
                             Ev("h2", "h", "heartbeat", 10,
                                R"("rollback_command":"undo","owner":{"backup":"night-shift"})"),
                         },
                         5000);
  EXPECT_EQ(out.Of("h"), (Lines{
                             "decisions h#1 rev1 decision L1 @0",
                             "audit h#1 rev1 emitted @0",
                             "escalations h#1 rev2 escalate L2 @300",
                             "audit h#1 rev2 escalated @300",
                             "escalations h#1 rev3 escalate L3 @600",
                             "audit h#1 rev3 escalated @600",
                             "audit h#1 rev3 expired @3600",
                         }));
  auto packets = out.Packets("h");
  ASSERT_FALSE(packets.empty());
  EXPECT_EQ(Get(packets[0], "/value/kind"), "planned");
  EXPECT_EQ(Get(packets[0], "/value/severity"), "P1");
  EXPECT_EQ(Get(packets[0], "/value/complete"), "false");
  EXPECT_EQ(Get(packets[0], "/value/failure_class"), "risk_authorization");
}

// ---------------------------------------------------------------------------------------------
// Severity (sections 4 and 11).

TEST(ContractTest, SeverityIsTheRunsOwnElseTheCatalogsElseTheDefault) {
  const char* yaml = R"(
defaults: {severity: P2}
workflows:
  crit:
    severity: P1
    objective: o
    owner: {primary: p, backup: b}
    rollback_command: r
    blast_radius: {users: 1, jobs: 1}
  plain:
    objective: o
)";
  Output out = RunReplay(yaml, {
                                   Started("a0", "own", 0, "crit", R"("severity":"P3")"),
                                   Failed("a1", "own", 1, "s", "write_failed"),
                                   Started("b0", "cat", 0, "crit"),
                                   Failed("b1", "cat", 1, "s", "write_failed"),
                                   Started("c0", "dflt", 0, "plain"),
                                   Failed("c1", "dflt", 1, "s", "write_failed"),
                               });
  ASSERT_EQ(out.Packets("own").size(), 1u);
  ASSERT_EQ(out.Packets("cat").size(), 1u);
  ASSERT_EQ(out.Packets("dflt").size(), 1u);
  EXPECT_EQ(Get(out.Packets("own")[0], "/value/severity"), "P3");
  EXPECT_EQ(Get(out.Packets("own")[0], "/topic"), "handoff.tickets");
  EXPECT_EQ(Get(out.Packets("cat")[0], "/value/severity"), "P1");
  EXPECT_EQ(Get(out.Packets("cat")[0], "/topic"), "handoff.page");
  EXPECT_EQ(Get(out.Packets("dflt")[0], "/value/severity"), "P2");
  EXPECT_EQ(Get(out.Packets("dflt")[0], "/topic"), "handoff.owner-queue");
}

TEST(ContractTest, ClassMinimumSeverityRaisesOnlyThatClassAndNeverLowers) {
  const char* yaml = R"(
classes: {permission_denied: {min_severity: P2}}
)";
  Output out = RunReplay(yaml, {
                                   Failed("a1", "a", 0, "s", "forbidden"),
                                   Failed("b1", "b", 0, "s", "write_failed"),
                                   Started("c0", "c", 0, "adhoc", R"("severity":"P1")"),
                                   Failed("c1", "c", 0, "s", "forbidden"),
                               });
  ASSERT_EQ(out.Packets("a").size(), 1u);
  ASSERT_EQ(out.Packets("b").size(), 1u);
  ASSERT_GE(out.Packets("c").size(), 1u);
  EXPECT_EQ(Get(out.Packets("a")[0], "/value/severity"), "P2");
  EXPECT_EQ(Get(out.Packets("a")[0], "/value/failure_class"), "permission_denied");
  EXPECT_EQ(Get(out.Packets("b")[0], "/value/severity"), "P3");
  EXPECT_EQ(Get(out.Packets("c")[0], "/value/severity"), "P1");
}

TEST(ContractTest, BlastRadiusAtTheP1ThresholdLiftsToP1AfterCatalogEnrichment) {
  const char* yaml = R"(
workflows:
  big: {severity: P3, blast_radius: {users: 1000}}
  small: {severity: P3, blast_radius: {users: 999}}
)";
  Output out =
      RunReplay(yaml, {
                          Started("a0", "a", 0, "big"),
                          Failed("a1", "a", 0, "s", "write_failed"),
                          Started("b0", "b", 0, "small"),
                          Failed("b1", "b", 0, "s", "write_failed"),
                          // The event's value wins over the catalog's, for the lift too.
                          Started("c0", "c", 0, "big", R"("blast_radius":{"users":5})"),
                          Failed("c1", "c", 0, "s", "write_failed"),
                          Started("d0", "d", 0, "small", R"("blast_radius":{"users":2000})"),
                          Failed("d1", "d", 0, "s", "write_failed"),
                      });
  auto severity = [&](const std::string& run) {
    auto p = out.Packets(run);
    return p.empty() ? std::string("<none>") : Get(p[0], "/value/severity");
  };
  EXPECT_EQ(severity("a"), "P1");
  EXPECT_EQ(severity("b"), "P3");
  EXPECT_EQ(severity("c"), "P3");
  EXPECT_EQ(severity("d"), "P1");
}

TEST(ContractTest, SeverityIsFixedAtDetection) {
  // The run is first seen through its failure (P3 by default); a late run_started says P1 and a
  // blast radius over the P1 threshold, and completes the packet: the revision stays P3.
  Output out = RunReplay(
      "{}",
      {
          Failed("a1", "a", 0, "s", "write_failed"),
          Ev("a0", "a", "run_started", 10,
             R"("workflow_id":"w","severity":"P1","objective":"o","rollback_command":"r",)"
             R"("owner":{"primary":"p","backup":"b"},"blast_radius":{"users":5000,"jobs":1})"),
      },
      15000);
  EXPECT_EQ(out.Of("a"), (Lines{
                             "tickets a#1 rev1 ticket_template_required L1 @0",
                             "audit a#1 rev1 emitted @0",
                             "tickets a#1 rev2 ticket L1 @10",
                             "audit a#1 rev2 enriched @10",
                             "escalations a#1 rev3 escalate L2 @14400",
                             "audit a#1 rev3 escalated @14400",
                         }));
  for (const auto& p : out.Packets("a")) EXPECT_EQ(Get(p, "/value/severity"), "P3");
}

// ---------------------------------------------------------------------------------------------
// Detection (section 4).

TEST(ContractTest, EachExceptionClassHasItsDefaultTrigger) {
  const std::vector<std::pair<std::string, std::string>> codes = {
      {"missing_input", "missing_input"},
      {"missing_source", "missing_input"},
      {"not_found", "missing_input"},
      {"file_read_failed", "missing_input"},
      {"duplicate_entity", "duplicate_entity"},
      {"duplicate", "duplicate_entity"},
      {"conflicting_context", "conflicting_context"},
      {"conflict", "conflicting_context"},
      {"write_failed", "downstream_write_failure"},
      {"api_error", "downstream_write_failure"},
      {"downstream_error", "downstream_write_failure"},
      {"timeout", "downstream_write_failure"},
      {"schema_invalid", "schema_invalid"},
      {"invalid_output", "schema_invalid"},
      {"validation_error", "schema_invalid"},
      {"permission_denied", "permission_denied"},
      {"forbidden", "permission_denied"},
      {"unauthorized", "permission_denied"},
      {"unsupported_request", "unsupported_request"},
      {"unsupported", "unsupported_request"},
      {"kaboom", "unclassified_failure"},
  };
  std::vector<std::string> input;
  for (size_t i = 0; i < codes.size(); ++i) {
    input.push_back(Failed("e", "r" + std::to_string(i), 0, "s", codes[i].first));
  }
  input.push_back(Ev("e", "tool", "tool_call", 0,
                     R"("step":"s","tool":"crm","status":"error","side_effect":"external")"));
  input.push_back(Ev("e", "conf", "decision", 0, R"("step":"s","confidence":0.5)"));
  Output out = RunReplay("{}", input);
  for (size_t i = 0; i < codes.size(); ++i) {
    auto p = out.Packets("r" + std::to_string(i));
    ASSERT_EQ(p.size(), 1u) << codes[i].first;
    EXPECT_EQ(Get(p[0], "/value/failure_class"), codes[i].second) << codes[i].first;
    EXPECT_EQ(Get(p[0], "/value/kind"), "exception");
  }
  ASSERT_EQ(out.Packets("tool").size(), 1u);
  EXPECT_EQ(Get(out.Packets("tool")[0], "/value/failure_class"), "downstream_write_failure");
  ASSERT_EQ(out.Packets("conf").size(), 1u);
  EXPECT_EQ(Get(out.Packets("conf")[0], "/value/failure_class"), "low_confidence");
}

TEST(ContractTest, ConfidenceAtTheThresholdIsNotLowAndTheWorkflowThresholdApplies) {
  const char* yaml = R"(
workflows:
  strict: {confidence_threshold: 0.95}
)";
  Output out = RunReplay(yaml, {
                                   Ev("e", "at", "decision", 0, R"("confidence":0.85)"),
                                   Started("e0", "wf", 0, "strict"),
                                   Ev("e1", "wf", "decision", 0, R"("confidence":0.9)"),
                               });
  EXPECT_TRUE(out.Packets("at").empty());
  ASSERT_EQ(out.Packets("wf").size(), 1u);
  EXPECT_EQ(Get(out.Packets("wf")[0], "/value/failure_class"), "low_confidence");
}

TEST(ContractTest, PlannedClassesHaveTheirDefaultTriggersAndCarryTheRequest) {
  const char* yaml = R"(
workflows:
  refunds: {severity: P2, amount_threshold: 500}
)";
  std::vector<std::string> input;
  auto run = [&](const std::string& id, const std::string& type, const std::string& extra) {
    input.push_back(Started(id + "0", id, 0, "refunds"));
    input.push_back(Ev(id + "1", id, type, 1, extra));
  };
  run("risk", "decision", R"("step":"pay","confidence":0.99,"risk":"external")");
  run("amount", "decision", R"("step":"pay","confidence":0.99,"amount":600)");
  run("at", "decision", R"("step":"pay","confidence":0.99,"amount":500,"risk":"high")");
  run("hr_risk", "handoff_requested",
      R"("step":"pay","reason":"need sign-off","handoff_type":"risk_authorization")");
  run("hr_gap", "handoff_requested",
      R"("step":"pay","reason":"no invoice","handoff_type":"evidence_gap")");
  run("hr_none", "handoff_requested",
      R"("step":"pay","reason":"which plan?","options":[{"label":"A","risk":"low"}],)"
      R"("evidence":{"invoice":"s3://x"},"owner_role":"finance","next_action_after_decision":"go")");
  Output out = RunReplay(yaml, input);
  auto cls = [&](const std::string& r) {
    auto p = out.Packets(r);
    return p.size() == 1 ? Get(p[0], "/value/failure_class") : "<" + std::to_string(p.size()) + ">";
  };
  EXPECT_EQ(cls("risk"), "risk_authorization");
  EXPECT_EQ(cls("amount"), "business_judgment");
  EXPECT_EQ(cls("at"), "<0>");  // amount at (not over) the threshold, risk high: nothing
  EXPECT_EQ(cls("hr_risk"), "risk_authorization");
  EXPECT_EQ(cls("hr_gap"), "evidence_gap");
  EXPECT_EQ(cls("hr_none"), "business_judgment");
  for (const std::string r : {"risk", "amount", "hr_risk", "hr_gap", "hr_none"}) {
    ASSERT_EQ(out.Packets(r).size(), 1u) << r;
    const std::string p = out.Packets(r)[0];
    EXPECT_EQ(Get(p, "/topic"), "handoff.decisions") << r;
    EXPECT_EQ(Get(p, "/value/gate"), "decision") << r;
    EXPECT_EQ(Get(p, "/value/kind"), "planned") << r;
    EXPECT_EQ(Get(p, "/value/failing_step"), "pay") << r;
  }
  const std::string p = out.Packets("hr_none")[0];
  EXPECT_EQ(Get(p, "/value/handoff_type"), "business_judgment");
  EXPECT_EQ(Get(p, "/value/trigger_reason"), "which plan?");
  EXPECT_EQ(Get(p, "/value/error_summary"), "which plan?");
  EXPECT_EQ(Get(p, "/value/options"), R"([{"label":"A","risk":"low"}])");
  EXPECT_EQ(Get(p, "/value/evidence"), R"({"invoice":"s3://x"})");
  EXPECT_EQ(Get(p, "/value/owner_role"), "finance");
  EXPECT_EQ(Get(p, "/value/next_action_after_decision"), "go");
}

TEST(ContractTest, UserRulesAreMatchedBeforeTheBuiltInCodeMapping) {
  const char* yaml = R"(
rules:
  - {codes: [timeout], class: schema_invalid}
  - {codes: [rate_limited], class: downstream_write_failure}
)";
  Output out = RunReplay(yaml, {
                                   Failed("e", "a", 0, "s", "timeout"),
                                   Failed("e", "b", 0, "s", "rate_limited"),
                                   Failed("e", "c", 0, "s", "write_failed"),
                               });
  ASSERT_EQ(out.Packets("a").size(), 1u);
  ASSERT_EQ(out.Packets("b").size(), 1u);
  ASSERT_EQ(out.Packets("c").size(), 1u);
  EXPECT_EQ(Get(out.Packets("a")[0], "/value/failure_class"), "schema_invalid");
  EXPECT_EQ(Get(out.Packets("b")[0], "/value/failure_class"), "downstream_write_failure");
  EXPECT_EQ(Get(out.Packets("c")[0], "/value/failure_class"), "downstream_write_failure");
}

TEST(ContractTest, RetryExhaustedOpensOnTheFourthRetryableFailureOfOneStepCountedCumulatively) {
  const std::string retry = R"("retryable":true)";
  Output out = RunReplay("{}", {
                                   Failed("f1", "a", 1, "s", "write_failed", retry),
                                   Failed("f2", "a", 2, "s", "write_failed", retry),
                                   Ev("ok", "a", "step_succeeded", 3, R"("step":"s")"),
                                   Failed("f3", "a", 4, "t", "write_failed", retry),
                                   Failed("f4", "a", 5, "s", "write_failed", retry),
                               });
  // Three retryable failures on s (a success in between does not reset the count), one on t:
  // a retryable failure alone opens nothing, whatever its code.
  EXPECT_TRUE(out.Packets("a").empty());
  out = RunReplay("{}", {
                            Failed("f1", "a", 1, "s", "write_failed", retry),
                            Failed("f2", "a", 2, "s", "write_failed", retry),
                            Ev("ok", "a", "step_succeeded", 3, R"("step":"s")"),
                            Failed("f3", "a", 4, "t", "write_failed", retry),
                            Failed("f4", "a", 5, "s", "write_failed", retry),
                            Failed("f5", "a", 6, "s", "write_failed", retry),
                            Failed("f6", "a", 7, "s", "write_failed", retry),  // still open
                        });
  auto packets = out.Packets("a");
  ASSERT_EQ(packets.size(), 1u);
  EXPECT_EQ(Get(packets[0], "/value/failure_class"), "retry_exhausted");
  EXPECT_EQ(Get(packets[0], "/value/failing_step"), "s");
  // Reading: the packet's `retries` counter is the failing step's retryable failures.
  EXPECT_EQ(Get(packets[0], "/value/retries"), "4");
  EXPECT_EQ(Get(packets[0], "/value/detected_at"), At(6));
  // Cumulative: once the incident is resolved the count is not reset, so the next retryable
  // failure on s (the 6th) opens a new incident at once.
  out = RunReplay("{}", {
                            Failed("f1", "a", 1, "s", "write_failed", retry),
                            Failed("f2", "a", 2, "s", "write_failed", retry),
                            Failed("f3", "a", 3, "s", "write_failed", retry),
                            Failed("f4", "a", 4, "s", "write_failed", retry),
                            Resolved("a", 5),
                            Failed("f5", "a", 6, "s", "write_failed", retry),
                        });
  packets = out.Packets("a");
  ASSERT_EQ(packets.size(), 2u);
  EXPECT_EQ(Get(packets[1], "/value/packet_id"), "a#2");
  EXPECT_EQ(Get(packets[1], "/value/failure_class"), "retry_exhausted");
  EXPECT_EQ(Get(packets[1], "/value/retries"), "5");
}

TEST(ContractTest, WorkflowMaxRetriesOverridesTheDefault) {
  const char* yaml = R"(
workflows:
  fragile: {max_retries: 1}
)";
  const std::string retry = R"("retryable":true)";
  Output out = RunReplay(yaml, {
                                   Started("a0", "a", 0, "fragile"),
                                   Failed("f1", "a", 1, "s", "timeout", retry),
                                   Failed("f2", "a", 2, "s", "timeout", retry),
                               });
  auto packets = out.Packets("a");
  ASSERT_EQ(packets.size(), 1u);
  EXPECT_EQ(Get(packets[0], "/value/failure_class"), "retry_exhausted");
  EXPECT_EQ(Get(packets[0], "/value/detected_at"), At(2));
}

TEST(ContractTest, ToolCallErrorOpensOnlyWithASideEffectOtherThanNone) {
  Output out = RunReplay(
      "{}", {
                Ev("e", "none_given", "tool_call", 0, R"("step":"s","tool":"t","status":"error")"),
                Ev("e", "none", "tool_call", 0,
                   R"("step":"s","tool":"t","status":"error","side_effect":"none")"),
                Ev("e", "ok", "tool_call", 0,
                   R"("step":"s","tool":"t","status":"ok","side_effect":"irreversible")"),
                Ev("e", "rev", "tool_call", 0,
                   R"("step":"s","tool":"t","status":"error","side_effect":"reversible")"),
            });
  EXPECT_TRUE(out.Packets("none_given").empty());
  EXPECT_TRUE(out.Packets("none").empty());
  EXPECT_TRUE(out.Packets("ok").empty());
  ASSERT_EQ(out.Packets("rev").size(), 1u);
  EXPECT_EQ(Get(out.Packets("rev")[0], "/value/failure_class"), "downstream_write_failure");
  EXPECT_EQ(Get(out.Packets("rev")[0], "/value/tool_calls"), "1");
}

TEST(ContractTest, BudgetExceededOpensOncePerRunForCostToolCallsOrDuration) {
  const char* yaml = R"(
workflows:
  metered:
    budget: {cost_usd: 1.0, tool_calls: 3, duration_s: 600}
    stall_timeout_s: 86400
)";
  auto call = [](const std::string& id, const std::string& run, int64_t s, const char* cost) {
    return Ev(id, run, "tool_call", s,
              std::string(R"("step":"s","tool":"llm","status":"ok","cost_usd":)") + cost);
  };
  Output out = RunReplay(yaml, {
                                   // cost: 1.0 is not over, 1.5 is; later overruns open nothing.
                                   Started("c0", "cost", 0, "metered"),
                                   call("c1", "cost", 10, "0.5"),
                                   call("c2", "cost", 20, "0.5"),
                                   call("c3", "cost", 30, "0.5"),
                                   call("c4", "cost", 40, "0.5"),
                                   call("c5", "cost", 50, "0.5"),
                                   Ev("c6", "cost", "heartbeat", 700),
                                   // tool calls: the 4th is over 3.
                                   Started("t0", "calls", 0, "metered"),
                                   call("t1", "calls", 10, "0"),
                                   call("t2", "calls", 20, "0"),
                                   call("t3", "calls", 30, "0"),
                                   call("t4", "calls", 40, "0"),
                                   // duration: 600 s is not over, 601 s is.
                                   Started("d0", "time", 0, "metered"),
                                   Ev("d1", "time", "heartbeat", 600),
                                   Ev("d2", "time", "heartbeat", 601),
                                   Ev("d3", "time", "heartbeat", 900),
                               });
  auto cost = out.Packets("cost");
  ASSERT_EQ(cost.size(), 1u);
  EXPECT_EQ(Get(cost[0], "/value/failure_class"), "budget_exceeded");
  EXPECT_EQ(Get(cost[0], "/value/detected_at"), At(30));
  EXPECT_EQ(Get(cost[0], "/value/cost_usd"), "1.5");
  auto calls = out.Packets("calls");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Get(calls[0], "/value/failure_class"), "budget_exceeded");
  EXPECT_EQ(Get(calls[0], "/value/detected_at"), At(40));
  EXPECT_EQ(Get(calls[0], "/value/tool_calls"), "4");
  auto time = out.Packets("time");
  ASSERT_EQ(time.size(), 1u);
  EXPECT_EQ(Get(time[0], "/value/failure_class"), "budget_exceeded");
  EXPECT_EQ(Get(time[0], "/value/detected_at"), At(601));
}

TEST(ContractTest, RunCompletedWithFailureIsUnclassifiedOnlyWhenNoIncidentWasOpened) {
  Output out = RunReplay("{}", {
                                   Started("x0", "x", 0, "adhoc"),
                                   Ev("x1", "x", "step_started", 5, R"("step":"load")"),
                                   Ev("x2", "x", "run_completed", 10, R"("outcome":"failure")"),
                                   // An incident opened (and resolved) earlier: nothing more.
                                   Failed("y1", "y", 0, "s", "write_failed"),
                                   Resolved("y", 5),
                                   Ev("y2", "y", "run_completed", 10, R"("outcome":"failure")"),
                                   Ev("z1", "z", "run_completed", 10, R"("outcome":"cancelled")"),
                                   Ev("w1", "w", "run_completed", 10, R"("outcome":"success")"),
                               });
  auto x = out.Packets("x");
  ASSERT_EQ(x.size(), 1u);
  EXPECT_EQ(Get(x[0], "/value/failure_class"), "unclassified_failure");
  EXPECT_EQ(Get(x[0], "/value/detected_at"), At(10));
  EXPECT_EQ(out.Packets("y").size(), 1u);
  EXPECT_TRUE(out.Packets("z").empty());
  EXPECT_TRUE(out.Packets("w").empty());
}

TEST(ContractTest, QuietRunIsStalledAtTheTimeoutUnlessAnIncidentIsOpen) {
  const char* yaml = "defaults: {stall_timeout_s: 300}\n";
  Output out =
      RunReplay(yaml, {
                          Started("s0", "s", 0, "adhoc"),
                          Ev("s1", "s", "step_started", 10, R"("step":"fetch")"),
                          Started("o0", "o", 0, "adhoc"), Failed("o1", "o", 5, "load", "not_found"),
                          Started("m0", "m", 400, "adhoc"),  // watermark 398 s
                      });
  auto s = out.Packets("s");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(Get(s[0], "/value/failure_class"), "stalled");
  EXPECT_EQ(Get(s[0], "/value/detected_at"), At(310));
  EXPECT_EQ(Get(s[0], "/value/emitted_at"), At(310));
  EXPECT_EQ(Get(s[0], "/value/failing_step"), "fetch");
  EXPECT_EQ(Get(s[0], "/value/error_summary"), "no event for 300 s");
  // o waits on a human: only its missing_input packet.
  auto o = out.Packets("o");
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(Get(o[0], "/value/failure_class"), "missing_input");
}

TEST(ContractTest, CompletedRunIsNeverStalled) {
  const char* yaml = "defaults: {stall_timeout_s: 300}\n";
  Output out = RunReplay(yaml,
                         {
                             Started("s0", "s", 0, "adhoc"),
                             Ev("s1", "s", "run_completed", 10, R"("outcome":"success")"),
                         },
                         5000);
  EXPECT_TRUE(out.lines.empty()) << out.text;
}

TEST(ContractTest, OneDecisionOpensOneClassByPrecedenceWithNoFallThrough) {
  const char* yaml = R"(
workflows:
  refunds: {amount_threshold: 500}
)";
  Output out = RunReplay(
      yaml, {
                Started("a0", "a", 0, "refunds"),
                Ev("a1", "a", "decision", 1,
                   R"("step":"pay","confidence":0.5,"risk":"external","amount":900)"),
                // low_confidence is open on pay: this one would be low_confidence too, so nothing
                // opens, not even risk_authorization.
                Ev("a2", "a", "decision", 2, R"("step":"pay","confidence":0.5,"risk":"external")"),
                // Confident: risk_authorization is the chosen class and is not open on pay.
                Ev("a3", "a", "decision", 3, R"("step":"pay","confidence":0.99,"risk":"external")"),
            });
  auto a = out.Packets("a");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(Get(a[0], "/value/failure_class"), "low_confidence");
  EXPECT_EQ(Get(a[0], "/value/kind"), "exception");
  std::string flags = Get(a[0], "/value/flags");
  EXPECT_NE(flags.find("\"risk_authorization\""), std::string::npos) << flags;
  EXPECT_NE(flags.find("\"business_judgment\""), std::string::npos) << flags;
  EXPECT_EQ(Get(a[1], "/value/failure_class"), "risk_authorization");
  EXPECT_EQ(Get(a[1], "/value/packet_id"), "a#2");
  EXPECT_EQ(Get(a[1], "/value/detected_at"), At(3));
}

TEST(ContractTest, SameClassOnSameStepOpensNothingWhileOpenAndANewPacketAfterResolve) {
  Output out = RunReplay("{}", {
                                   Failed("f1", "a", 0, "s", "write_failed"),
                                   Failed("f2", "a", 10, "s", "timeout"),  // same class, same step
                                   Failed("f3", "a", 15, "t", "write_failed"),  // another step
                                   Resolved("a", 20, R"("packet_id":"a#1")"),
                                   Failed("f4", "a", 30, "s", "write_failed"),
                               });
  std::vector<std::string> opened;
  for (const auto& p : out.Packets("a")) {
    opened.push_back(Get(p, "/value/packet_id") + " " + Get(p, "/value/failing_step") + " @" +
                     Offset(Get(p, "/value/detected_at")));
  }
  EXPECT_EQ(opened, (Lines{"a#1 s @0", "a#2 t @15", "a#3 s @30"}));
}

// ---------------------------------------------------------------------------------------------
// Packet fields (sections 5 and 11).

TEST(ContractTest, CatalogEnrichmentIsListedInContractOrderAndEventValuesWin) {
  Output out = RunReplay(kBilling, {
                                       Started("a0", "a", 0, "billing"),
                                       Failed("a1", "a", 0, "post", "write_failed"),
                                       Started("b0", "b", 0, "billing",
                                               R"("objective":"Event objective",)"
                                               R"("recommended_action":"Call the bank",)"
                                               R"("owner":{"backup":"b-oncall"})"),
                                       Failed("b1", "b", 0, "post", "write_failed"),
                                   });
  auto a = out.Packets("a");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(Get(a[0], "/value/missing_fields"), "[]");
  EXPECT_EQ(Get(a[0], "/value/enriched_fields"),
            R"(["objective","blast_radius","recommended_action","rollback_command",)"
            R"("owner.primary","owner.backup"])");
  // Raw: C 60 (last_successful_step, failing_step, error_summary), O 0, N 0, R 50 -> 28.
  EXPECT_EQ(Get(a[0], "/value/hcs"),
            R"({"score":100.0,"raw":28.0,"c":100,"o":100,"n":100,"r":100})");
  EXPECT_EQ(Get(a[0], "/value/objective"), "Reconcile invoices");
  EXPECT_EQ(Get(a[0], "/value/rollback_command"), "invoicectl rollback");
  EXPECT_EQ(Get(a[0], "/value/blast_radius"), R"({"users":10,"jobs":1})");
  auto b = out.Packets("b");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(Get(b[0], "/value/objective"), "Event objective");
  EXPECT_EQ(Get(b[0], "/value/recommended_action"), "Call the bank");
  EXPECT_EQ(Get(b[0], "/value/owner"), R"({"primary":"ap-lead","backup":"b-oncall"})");
  EXPECT_EQ(Get(b[0], "/value/enriched_fields"),
            R"(["blast_radius","rollback_command","owner.primary"])");
}

TEST(ContractTest, CatalogRecommendedActionPerClassBeatsTheDefaultAndIsEnriched) {
  const char* yaml = R"(
defaults:
  recommended_actions: {downstream_write_failure: "default action"}
workflows:
  w:
    recommended_actions: {downstream_write_failure: "workflow action"}
)";
  Output out = RunReplay(yaml, {
                                   Started("a0", "a", 0, "w"),
                                   Failed("a1", "a", 0, "s", "write_failed"),
                                   Failed("b1", "b", 0, "s", "write_failed"),
                               });
  ASSERT_EQ(out.Packets("a").size(), 1u);
  ASSERT_EQ(out.Packets("b").size(), 1u);
  EXPECT_EQ(Get(out.Packets("a")[0], "/value/recommended_action"), "workflow action");
  EXPECT_EQ(Get(out.Packets("b")[0], "/value/recommended_action"), "default action");
  EXPECT_EQ(Get(out.Packets("b")[0], "/value/enriched_fields"), R"(["recommended_action"])");
}

TEST(ContractTest, LastSuccessfulStepIsTheLatestByEventTimeAtOrBeforeTheTrigger) {
  Output out = RunReplay("{}", {
                                   Started("a0", "a", 0, "adhoc"),
                                   Ev("a1", "a", "step_succeeded", 50, R"("step":"after")"),
                                   Ev("a2", "a", "step_succeeded", 20, R"("step":"second")"),
                                   Ev("a3", "a", "step_succeeded", 10, R"("step":"first")"),
                                   Failed("a4", "a", 20, "third", "write_failed"),
                               });
  auto a = out.Packets("a");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(Get(a[0], "/value/last_successful_step"), "second");
}

TEST(ContractTest, LastSuccessfulStepIsNullButKnownWhenOnlyRunStartedWasSeen) {
  Output out = RunReplay("{}", {
                                   Started("a0", "a", 0, "adhoc"),
                                   Failed("a1", "a", 10, "s", "write_failed"),
                                   Failed("b1", "b", 10, "s", "write_failed"),
                               });
  auto a = out.Packets("a");
  auto b = out.Packets("b");
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(Get(a[0], "/value/last_successful_step"), "null");
  EXPECT_EQ(Get(a[0], "/value/hcs/c"), "60");
  EXPECT_EQ(Get(a[0], "/value/missing_fields").find("last_successful_step"), std::string::npos);
  EXPECT_EQ(Get(b[0], "/value/last_successful_step"), "null");
  EXPECT_EQ(Get(b[0], "/value/hcs/c"), "40");
  EXPECT_NE(Get(b[0], "/value/missing_fields").find("last_successful_step"), std::string::npos);
}

TEST(ContractTest, AttrsArePassedThroughAndLaterValuesInArrivalOrderReplaceEarlierOnes) {
  // The second event is stamped before the first but arrives after it: arrival order wins.
  Output out = RunReplay(
      "{}",
      {
          Ev("a0", "a", "run_started", 8,
             R"("workflow_id":"adhoc","objective":"first","attrs":{"ticket":"T-1"})"),
          Ev("a1", "a", "heartbeat", 5, R"("objective":"second","attrs":{"ticket":"T-2","n":[1]})"),
          Failed("a2", "a", 10, "s", "write_failed"),
      });
  auto a = out.Packets("a");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(Get(a[0], "/value/objective"), "second");
  EXPECT_EQ(Get(a[0], "/value/attrs"), R"({"ticket":"T-2","n":[1]})");
}

TEST(ContractTest, CompleteP1PagesAtOnce) {
  const char* yaml = R"(
workflows:
  crit:
    severity: P1
    objective: o
    owner: {primary: p, backup: b}
    rollback_command: r
    blast_radius: {users: 1, jobs: 1}
)";
  Output out = RunReplay(yaml, {
                                   Started("a0", "a", 0, "crit"),
                                   Failed("a1", "a", 0, "s", "write_failed"),
                               });
  EXPECT_EQ(out.Of("a"), (Lines{
                             "page a#1 rev1 page L1 @0",
                             "audit a#1 rev1 emitted @0",
                         }));
  EXPECT_EQ(Get(out.Packets("a")[0], "/value/complete"), "true");
  EXPECT_EQ(Get(out.Packets("a")[0], "/value/sla/first_response_s"), "300");
  EXPECT_EQ(Get(out.Packets("a")[0], "/value/ttl_s"), "3600");
}

TEST(ContractTest, OwnerAndBlastRadiusMergePerSubfieldAndCostAddsUpFromAnyEvent) {
  Output out =
      RunReplay("{}", {
                          Started("a0", "a", 0, "adhoc",
                                  R"("owner":{"primary":"p1"},"blast_radius":{"users":5},)"
                                  R"("cost_usd":0.25)"),
                          Ev("a1", "a", "heartbeat", 1,
                             R"("owner":{"backup":"b1"},"blast_radius":{"jobs":2},"cost_usd":0.5)"),
                          Ev("a2", "a", "heartbeat", 2, R"("owner":{"primary":"p2"})"),
                          Failed("a3", "a", 3, "s", "write_failed", R"("cost_usd":1)"),
                      });
  auto a = out.Packets("a");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(Get(a[0], "/value/owner"), R"({"primary":"p2","backup":"b1"})");
  EXPECT_EQ(Get(a[0], "/value/blast_radius"), R"({"users":5,"jobs":2})");
  EXPECT_EQ(Get(a[0], "/value/cost_usd"), "1.75");
}

TEST(ContractTest, TimestampsMayBeEpochMillisecondsOrCarryAnOffset) {
  const int64_t base_ms = static_cast<int64_t>(Base()) * 1000;
  Output out = RunReplay(
      "{}", {
                R"({"event_id":"a0","run_id":"a","type":"run_started","workflow_id":"w","ts":)" +
                    std::to_string(base_ms) + "}",
                // 12:00:05+02:00 is 10:00:05Z.
                R"({"event_id":"a1","run_id":"a","type":"step_failed","step":"s",)"
                R"("error":{"code":"timeout"},"ts":"2026-05-01T12:00:05+02:00"})",
            });
  auto a = out.Packets("a");
  ASSERT_EQ(a.size(), 1u) << out.text;
  EXPECT_EQ(Get(a[0], "/value/detected_at"), "2026-05-01T10:00:05.000Z");
  EXPECT_EQ(Get(a[0], "/value/expires_at"), At(5 + 259200));
}

TEST(ContractTest, WorkflowStallTimeoutOverridesTheDefault) {
  const char* yaml = R"(
defaults: {stall_timeout_s: 3000}
workflows:
  quick: {stall_timeout_s: 60}
)";
  Output out = RunReplay(yaml, {
                                   Started("a0", "a", 0, "quick"),
                                   Started("b0", "b", 0, "slow"),
                                   Started("m0", "m", 200, "slow"),
                               });
  ASSERT_EQ(out.Packets("a").size(), 1u);
  EXPECT_EQ(Get(out.Packets("a")[0], "/value/failure_class"), "stalled");
  EXPECT_EQ(Get(out.Packets("a")[0], "/value/detected_at"), At(60));
  EXPECT_TRUE(out.Packets("b").empty());
}

// ---------------------------------------------------------------------------------------------
// Input handling (section 2).

TEST(ContractTest, RepeatedEventIdChangesNothing) {
  const char* yaml = R"(
workflows:
  fragile: {max_retries: 1}
)";
  const std::string retry = R"("retryable":true)";
  const std::string call = R"("step":"s","tool":"llm","status":"ok","cost_usd":0.5)";
  Output out = RunReplay(yaml, {
                                   Started("a0", "a", 0, "fragile"),
                                   Ev("t1", "a", "tool_call", 1, call),
                                   Ev("t1", "a", "tool_call", 1, call),
                                   Failed("f1", "a", 2, "s", "timeout", retry),
                                   Failed("f1", "a", 2, "s", "timeout", retry),  // not a 2nd retry
                                   Failed("f2", "a", 3, "s", "timeout", retry),
                                   Failed("f2", "a", 3, "s", "timeout", retry),
                               });
  auto a = out.Packets("a");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(Get(a[0], "/value/detected_at"), At(3));
  EXPECT_EQ(Get(a[0], "/value/cost_usd"), "0.5");
  EXPECT_EQ(Get(a[0], "/value/tool_calls"), "1");
  EXPECT_EQ(Get(a[0], "/value/retries"), "2");
  EXPECT_EQ(out.Of("a").size(), 2u);  // the packet and its audit record, once
}

TEST(ContractTest, RunFirstSeenThroughAnotherEventIsCreatedAndTakesItsCatalogEntry) {
  Output out = RunReplay(
      kBilling, {
                    Failed("a1", "a", 0, "post", "write_failed", R"("workflow_id":"billing")"),
                });
  auto a = out.Packets("a");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(Get(a[0], "/value/workflow_id"), "billing");
  EXPECT_EQ(Get(a[0], "/value/severity"), "P2");
  EXPECT_EQ(Get(a[0], "/value/owner/backup"), "ap-oncall");
  // No run_started and no success: last_successful_step is unknown.
  EXPECT_EQ(Get(a[0], "/value/missing_fields"), R"(["last_successful_step"])");
}

TEST(ContractTest, DlqReasonsFollowTheOrderOfSection11) {
  const std::string run_id_257(257, 'r');
  const std::string oversized = "[" + std::string(400, ' ') + "{";  // also invalid JSON
  const std::vector<std::pair<std::string, std::string>> cases = {
      {oversized, "oversized"},
      {R"({"event_id":"e",)", "invalid_json"},
      {R"(["event_id"])", "not_object"},
      {R"("just a string")", "not_object"},
      {R"({"run_id":7,"type":8,"ts":"bad"})", "missing_field:event_id"},
      {R"({"event_id":1,"ts":"bad"})", "wrong_type:event_id"},
      {R"({"event_id":"e","type":"step_started","ts":"bad"})", "missing_field:run_id"},
      {R"({"event_id":"e","run_id":"","type":7})", "wrong_type:run_id"},
      {R"({"event_id":"e","run_id":")" + run_id_257 + R"(","type":7})", "wrong_type:run_id"},
      {R"({"event_id":"e","run_id":"r","ts":"bad"})", "missing_field:type"},
      {R"({"event_id":"e","run_id":"r","type":["x"],"ts":"bad"})", "wrong_type:type"},
      {R"({"event_id":"e","run_id":"r","type":"step_failed","ts":"yesterday"})", "bad_timestamp"},
      {R"({"event_id":"e","run_id":"r","type":"step_failed","ts":true})", "bad_timestamp"},
      {R"({"event_id":"e","run_id":"r","type":"step_failed"})", "missing_field:ts"},
      {R"({"event_id":"e","run_id":"r","type":"step_failed","ts":1770000000000,"step":"s",)"
       R"("error":{"message":"m"}})",
       "missing_field:error.code"},
      {R"({"event_id":"e","run_id":"r","type":"decision","ts":1770000000000,"confidence":"hi"})",
       "wrong_type:confidence"},
      {R"({"event_id":"e","run_id":"r","type":"tool_call","ts":1770000000000,"tool":"t",)"
       R"("status":"maybe"})",
       "wrong_type:status"},
      {R"({"event_id":"e","run_id":"r","type":"run_started","ts":1770000000000,)"
       R"("workflow_id":"w","severity":"P4"})",
       "wrong_type:severity"},
      {R"({"event_id":"e","run_id":"r","type":"run_started","ts":1770000000000})",
       "missing_field:workflow_id"},
  };
  std::vector<std::string> input;
  for (const auto& c : cases) input.push_back(c.first);
  Output out = RunReplay("limits: {max_event_bytes: 300}\n", input);
  auto dlq = out.Dlq();
  ASSERT_EQ(dlq.size(), cases.size()) << out.text;
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(Get(dlq[i], "/error"), cases[i].second) << cases[i].first;
    // The original bytes, unchanged.
    EXPECT_EQ(Get(dlq[i], "/value_raw"), cases[i].first);
  }
  EXPECT_EQ(out.lines.size(), cases.size());
}

TEST(ContractTest, RunIdOf256BytesIsAcceptedAndOf257IsDeadLettered) {
  const std::string ok(256, 'k');
  const std::string too_long(257, 'k');
  Output out = RunReplay("{}", {
                                   Failed("e", ok, 0, "s", "write_failed"),
                                   Failed("e", too_long, 0, "s", "write_failed"),
                               });
  EXPECT_EQ(out.Packets(ok).size(), 1u);
  ASSERT_EQ(out.Dlq().size(), 1u);
  EXPECT_EQ(Get(out.Dlq()[0], "/error"), "wrong_type:run_id");
}

TEST(ContractTest, UnknownTypeIsSkippedNotDeadLetteredButMovesTheWatermark) {
  Output out = RunReplay(kBilling, {
                                       Started("a0", "a", 0, "billing"),
                                       Failed("a1", "a", 0, "post", "write_failed"),
                                       Ev("x1", "x", "agent_mood_changed", 1000, R"("mood":"ok")"),
                                   });
  EXPECT_TRUE(out.Dlq().empty());
  EXPECT_TRUE(out.Of("x").empty());
  EXPECT_EQ(out.Of("a"), (Lines{
                             "owner-queue a#1 rev1 notify L1 @0",
                             "audit a#1 rev1 emitted @0",
                             "escalations a#1 rev2 escalate L2 @900",
                             "audit a#1 rev2 escalated @900",
                         }));
}

TEST(ContractTest, DuplicatesAndAcksForUnknownRunsMoveTheWatermarkToo) {
  // A duplicate event id stamped later than the original still moves the watermark.
  Output dup = RunReplay(kBilling, {
                                       Started("a0", "a", 0, "billing"),
                                       Failed("a1", "a", 0, "post", "write_failed"),
                                       Started("a0", "a", 1000, "billing"),
                                   });
  EXPECT_EQ(dup.Packets("a").size(), 2u) << dup.text;  // rev1 and the L2 escalation
  Output ack = RunReplay(kBilling, {
                                       Started("a0", "a", 0, "billing"),
                                       Failed("a1", "a", 0, "post", "write_failed"),
                                       Ack("nobody", 1000),
                                   });
  EXPECT_EQ(ack.Packets("a").size(), 2u) << ack.text;
}

TEST(ContractTest, SourceIsTheZeroBasedLineNumberCountingEmptyLines) {
  Output out = RunReplay("{}", {
                                   "",
                                   Started("a0", "a", 0, "adhoc"),
                                   "",
                                   Failed("a1", "a", 1, "s", "write_failed"),
                               });
  auto a = out.Packets("a");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(Get(a[0], "/value/source"), R"({"topic":"agent.events","partition":0,"offset":3})");
}

// ---------------------------------------------------------------------------------------------
// Determinism (sections 6, 10 and 11).

TEST(ContractTest, ReplayingTwiceGivesIdenticalBytesAndEmittedAtIsEventTime) {
  std::vector<std::string> input = {
      Started("h0", "h", 0, "ledger"),
      Failed("h1", "h", 0, "post", "write_failed"),
      Ev("d1", "d", "decision", 5, R"("step":"s","confidence":0.1)"),
      "not json",
      Ack("d", 40),
      Ev("h2", "h", "heartbeat", 100),
  };
  Output a = RunReplay(kLedger, input, 7200);
  Output b = RunReplay(kLedger, input, 7200);
  ASSERT_FALSE(a.text.empty());
  EXPECT_EQ(a.text, b.text);
  // Every time on the output is one of the inputs' times or a deadline derived from them: the
  // wall clock (years after kBase + 2 h) never appears.
  for (const auto& l : a.lines) {
    std::string t = Get(l, "/value/emitted_at");
    if (t == "<absent>") t = Get(l, "/value/at");
    if (t == "<absent>") continue;
    std::string off = Offset(t);
    ASSERT_EQ(off.find_first_not_of("0123456789"), std::string::npos) << l;
    EXPECT_LE(std::stoll(off), 7200) << l;
  }
  auto h = a.Packets("h");
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(Get(h[0], "/value/emitted_at"), At(0));
  auto d = a.Packets("d");
  ASSERT_FALSE(d.empty());
  EXPECT_EQ(Get(d[0], "/value/emitted_at"), At(5));
}

}  // namespace
}  // namespace handoffd

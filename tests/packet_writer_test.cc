// WritePacket / WriteAudit: the exact bytes of a packet and an audit record (contract sections
// 5 and 7) for a packet with every field set, one with nothing optional, and values that need
// escaping or unusual number formatting. The expected texts were produced by the streaming
// JSON writer these functions replaced, so they pin the output byte for byte.
#include "processor/packet_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace handoffd {
namespace {

PacketView Full() {
  PacketView p;
  p.run_id = "run-\"1\"";
  p.workflow_id = "refund-review";
  p.objective = "Review\nrefunds\x01";
  p.failure_class = FailureClass::kRiskAuthorization;
  p.last_successful_step = "load_order";
  p.failing_step = "issue_refund";
  p.error_summary = "decision 'refund': risk external needs authorisation";
  p.blast_users = 12;
  p.blast_jobs = -3;
  p.recommended_action = "approve or deny";
  p.rollback_command = "refund revert \\all";
  p.owner_primary = "ana@example.com";
  p.owner_backup = "bo@example.com";
  p.ttl_s = 86400;
  p.expires_at_ms = 1795312800123;
  p.packet_id = "run-\"1\"#2";
  p.revision = 3;
  p.severity = Severity::kP1;
  p.gate = Gate::kEscalate;
  p.complete = true;
  p.missing = Bit(PacketField::kObjective) | Bit(PacketField::kRollbackCommand);
  p.enriched = Bit(PacketField::kOwnerPrimary);
  p.hcs = Hcs{100, 50, 100, 50, 775};
  p.raw_tenths = 340;
  p.first_response_s = 300;
  p.ack_deadline_ms = 1795226700000;
  p.escalation_route = "oncall-payments";
  p.decision_authority = "head-of-payments";
  p.escalation_level = 2;
  p.escalation_target = "bo@example.com";
  p.detected_at_ms = 1795226400000;
  p.emitted_at_ms = -62167219200001;  // before year 0: clamped
  p.has_source = true;
  p.source_topic = "agent.events";
  p.source_partition = 7;
  p.source_offset = 123456789012;
  p.flag_classes = static_cast<uint16_t>(1u << static_cast<int>(FailureClass::kLowConfidence) |
                                         1u << static_cast<int>(FailureClass::kBudgetExceeded));
  p.override_flag = true;
  p.attrs_json = R"({"tenant":"acme"})";
  p.trigger_reason = "needs a human";
  p.options_json = R"([{"label":"a"}])";
  p.evidence_json = R"({"e":1})";
  p.owner_role = "finance";
  p.next_action_after_decision = "resume";
  p.retries = 4;
  p.tool_calls = 17;
  p.cost_usd = 0.1 + 0.2;
  return p;
}

TEST(PacketWriter, FullPacketInContractOrderWithEscapes) {
  std::string out = "prefix:";  // appends
  WritePacket(Full(), &out);
  EXPECT_EQ(
      out,
      R"(prefix:{"run_id":"run-\"1\"","workflow_id":"refund-review","objective":"Review\nrefunds\u0001","failure_class":"risk_authorization","last_successful_step":"load_order","failing_step":"issue_refund","error_summary":"decision 'refund': risk external needs authorisation","blast_radius":{"users":12,"jobs":-3},"recommended_action":"approve or deny","rollback_command":"refund revert \\all","owner":{"primary":"ana@example.com","backup":"bo@example.com"},"ttl_s":86400,"expires_at":"2026-11-22T02:00:00.123Z","packet_id":"run-\"1\"#2","revision":3,"schema":"handoff.packet/v1","kind":"planned","severity":"P1","gate":"escalate","complete":true,"missing_fields":["objective","rollback_command"],"enriched_fields":["owner.primary"],"hcs":{"score":77.5,"raw":34.0,"c":100,"o":50,"n":100,"r":50},"sla":{"first_response_s":300,"ack_deadline":"2026-11-21T02:05:00.000Z","escalation_route":"oncall-payments","decision_authority":"head-of-payments"},"escalation_level":2,"escalation_target":"bo@example.com","detected_at":"2026-11-21T02:00:00.000Z","emitted_at":"0000-01-01T00:00:00.000Z","source":{"topic":"agent.events","partition":7,"offset":123456789012},"flags":["low_confidence","budget_exceeded","override"],"attrs":{"tenant":"acme"},"handoff_type":"risk_authorization","trigger_reason":"needs a human","options":[{"label":"a"}],"evidence":{"e":1},"owner_role":"finance","next_action_after_decision":"resume","retries":4,"tool_calls":17,"cost_usd":0.30000000000000004})");
}

TEST(PacketWriter, EmptyPacketHasNullsAndEmptyLists) {
  PacketView p;
  p.run_id = "r";
  p.packet_id = "r#1";
  p.failure_class = FailureClass::kStalled;
  p.hcs.score_tenths = -5;  // not produced by ComputeHcs; the sign must still come out right
  p.raw_tenths = 0;
  p.expires_at_ms = 253402300800000;  // after year 9999: clamped
  p.cost_usd = std::numeric_limits<double>::infinity();
  std::string out;
  WritePacket(p, &out);
  EXPECT_EQ(
      out,
      R"({"run_id":"r","workflow_id":null,"objective":null,"failure_class":"stalled","last_successful_step":null,"failing_step":null,"error_summary":null,"blast_radius":{"users":null,"jobs":null},"recommended_action":null,"rollback_command":null,"owner":{"primary":null,"backup":null},"ttl_s":0,"expires_at":"9999-12-31T23:59:59.999Z","packet_id":"r#1","revision":1,"schema":"handoff.packet/v1","kind":"exception","severity":"P3","gate":"ticket","complete":false,"missing_fields":[],"enriched_fields":[],"hcs":{"score":-0.5,"raw":0.0,"c":0,"o":0,"n":0,"r":0},"sla":{"first_response_s":0,"ack_deadline":"1970-01-01T00:00:00.000Z","escalation_route":"","decision_authority":""},"escalation_level":1,"escalation_target":null,"detected_at":"1970-01-01T00:00:00.000Z","emitted_at":"1970-01-01T00:00:00.000Z","source":{"topic":null,"partition":null,"offset":null},"flags":[],"attrs":null,"retries":0,"tool_calls":0,"cost_usd":null})");
}

TEST(PacketWriter, AuditRecordWithAndWithoutActor) {
  AuditView a;
  a.packet_id = "r#1";
  a.revision = 2;
  a.action = AuditAction::kAcknowledged;
  a.at_ms = 1795226400000;
  a.by = "ana \"the\" oncall";
  a.reason = "acknowledged by ana; escalations stop";
  std::string out;
  WriteAudit(a, &out);
  a.by.reset();
  a.action = AuditAction::kExpired;
  WriteAudit(a, &out);
  EXPECT_EQ(
      out,
      R"({"packet_id":"r#1","revision":2,"action":"acknowledged","at":"2026-11-21T02:00:00.000Z","by":"ana \"the\" oncall","reason":"acknowledged by ana; escalations stop"})"
      R"({"packet_id":"r#1","revision":2,"action":"expired","at":"2026-11-21T02:00:00.000Z","by":null,"reason":"acknowledged by ana; escalations stop"})");
}

}  // namespace
}  // namespace handoffd

#include "processor/packet_writer.h"

#include <array>

#include "processor/json_writer.h"

namespace handoffd {
namespace {

void WriteFieldList(JsonWriter& w, FieldMask mask) {
  w.BeginArray();
  for (int i = 0; i < kPacketFieldCount; ++i) {
    if ((mask & (1u << i)) != 0) w.String(FieldName(static_cast<PacketField>(i)));
  }
  w.EndArray();
}

void WriteHcs(JsonWriter& w, const Hcs& h, int raw_tenths) {
  w.BeginObject();
  w.Key("score");
  w.Tenths(h.score_tenths);
  w.Key("raw");
  w.Tenths(raw_tenths);
  w.Key("c");
  w.Int(h.c);
  w.Key("o");
  w.Int(h.o);
  w.Key("n");
  w.Int(h.n);
  w.Key("r");
  w.Int(h.r);
  w.EndObject();
}

}  // namespace

std::string_view ToString(AuditAction a) {
  static constexpr std::array<std::string_view, 8> kNames = {
      "emitted", "held", "enriched", "escalated", "acknowledged", "resolved", "expired", "closed"};
  return kNames[static_cast<size_t>(a)];
}

void WritePacket(const PacketView& p, std::string* out) {
  JsonWriter w(out);
  w.BeginObject();
  w.Key("run_id");
  w.String(p.run_id);
  w.Key("workflow_id");
  w.StringOrNull(p.workflow_id);
  w.Key("objective");
  w.StringOrNull(p.objective);
  w.Key("failure_class");
  w.String(ToString(p.failure_class));
  w.Key("last_successful_step");
  w.StringOrNull(p.last_successful_step);
  w.Key("failing_step");
  w.StringOrNull(p.failing_step);
  w.Key("error_summary");
  w.StringOrNull(p.error_summary);
  w.Key("blast_radius");
  w.BeginObject();
  w.Key("users");
  w.IntOrNull(p.blast_users);
  w.Key("jobs");
  w.IntOrNull(p.blast_jobs);
  w.EndObject();
  w.Key("recommended_action");
  w.StringOrNull(p.recommended_action);
  w.Key("rollback_command");
  w.StringOrNull(p.rollback_command);
  w.Key("owner");
  w.BeginObject();
  w.Key("primary");
  w.StringOrNull(p.owner_primary);
  w.Key("backup");
  w.StringOrNull(p.owner_backup);
  w.EndObject();
  w.Key("ttl_s");
  w.Int(p.ttl_s);
  w.Key("expires_at");
  w.Time(p.expires_at_ms);
  w.Key("packet_id");
  w.String(p.packet_id);
  w.Key("revision");
  w.Int(p.revision);
  w.Key("schema");
  w.String("handoff.packet/v1");
  w.Key("kind");
  w.String(ToString(KindOf(p.failure_class)));
  w.Key("severity");
  w.String(ToString(p.severity));
  w.Key("gate");
  w.String(ToString(p.gate));
  w.Key("complete");
  w.Bool(p.complete);
  w.Key("missing_fields");
  WriteFieldList(w, p.missing);
  w.Key("enriched_fields");
  WriteFieldList(w, p.enriched);
  w.Key("hcs");
  WriteHcs(w, p.hcs, p.raw_tenths);
  w.Key("sla");
  w.BeginObject();
  w.Key("first_response_s");
  w.Int(p.first_response_s);
  w.Key("ack_deadline");
  w.Time(p.ack_deadline_ms);
  w.Key("escalation_route");
  w.String(p.escalation_route);
  w.Key("decision_authority");
  w.String(p.decision_authority);
  w.EndObject();
  w.Key("escalation_level");
  w.Int(p.escalation_level);
  w.Key("escalation_target");
  w.StringOrNull(p.escalation_target);
  w.Key("detected_at");
  w.Time(p.detected_at_ms);
  w.Key("emitted_at");
  w.Time(p.emitted_at_ms);
  w.Key("source");
  w.BeginObject();
  w.Key("topic");
  if (p.has_source) {
    w.String(p.source_topic);
    w.Key("partition");
    w.Int(p.source_partition);
    w.Key("offset");
    w.Int(p.source_offset);
  } else {
    w.Null();
    w.Key("partition");
    w.Null();
    w.Key("offset");
    w.Null();
  }
  w.EndObject();
  w.Key("flags");
  w.BeginArray();
  for (int i = 0; i < kFailureClassCount; ++i) {
    if ((p.flag_classes & (1u << i)) != 0) w.String(ToString(static_cast<FailureClass>(i)));
  }
  if (p.override_flag) w.String("override");
  w.EndArray();
  w.Key("attrs");
  w.RawOrNull(p.attrs_json);
  if (KindOf(p.failure_class) == HandoffKind::kPlanned) {
    w.Key("handoff_type");
    w.String(ToString(p.failure_class));
    w.Key("trigger_reason");
    w.StringOrNull(p.trigger_reason);
    w.Key("options");
    w.RawOrNull(p.options_json);
    w.Key("evidence");
    w.RawOrNull(p.evidence_json);
    w.Key("owner_role");
    w.StringOrNull(p.owner_role);
    w.Key("next_action_after_decision");
    w.StringOrNull(p.next_action_after_decision);
  }
  w.Key("retries");
  w.Int(p.retries);
  w.Key("tool_calls");
  w.Int(p.tool_calls);
  w.Key("cost_usd");
  w.Double(p.cost_usd);
  w.EndObject();
}

void WriteAudit(const AuditView& a, std::string* out) {
  JsonWriter w(out);
  w.BeginObject();
  w.Key("packet_id");
  w.String(a.packet_id);
  w.Key("revision");
  w.Int(a.revision);
  w.Key("action");
  w.String(ToString(a.action));
  w.Key("at");
  w.Time(a.at_ms);
  w.Key("by");
  w.StringOrNull(a.by);
  w.Key("reason");
  w.String(a.reason);
  w.EndObject();
}

}  // namespace handoffd

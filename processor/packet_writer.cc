#include "processor/packet_writer.h"

#include <array>

#include "processor/json_text.h"
#include "processor/time_format.h"

namespace handoffd {
namespace {

// Packets are written with each key, its quotes, the colon and the comma before it as one
// literal appended at once. The field order is fixed by the contract, so the comma logic of a
// general streaming writer (a state test and three appends per key) is decided here at compile
// time; it was a third of the cost of a packet. Output is byte for byte the same
// (tests/packet_writer_test.cc pins it).
template <size_t N>
void Lit(std::string* out, const char (&text)[N]) {
  out->append(text, N - 1);
}

void Str(std::string* out, std::string_view s) { AppendJsonString(out, s); }

void StrOrNull(std::string* out, const std::optional<std::string_view>& s) {
  if (s) {
    AppendJsonString(out, *s);
  } else {
    Lit(out, "null");
  }
}

void IntOrNull(std::string* out, const std::optional<int64_t>& v) {
  if (v) {
    AppendJsonInt(out, *v);
  } else {
    Lit(out, "null");
  }
}

void RawOrNull(std::string* out, const std::optional<std::string_view>& json) {
  if (json) {
    out->append(*json);
  } else {
    Lit(out, "null");
  }
}

// A number with exactly one decimal from tenths: 775 -> 77.5, 900 -> 90.0, -5 -> -0.5.
void Tenths(std::string* out, int64_t tenths) {
  if (tenths < 0) {
    out->push_back('-');
    tenths = -tenths;
  }
  AppendJsonInt(out, tenths / 10);
  const char decimals[2] = {'.', static_cast<char>('0' + tenths % 10)};
  out->append(decimals, 2);
}

// RFC 3339 UTC with milliseconds in quotes, clamped to years 0000..9999.
void Time(std::string* out, int64_t ms) {
  constexpr int64_t kMinTimeMs = -62167219200000;  // 0000-01-01T00:00:00.000Z
  constexpr int64_t kMaxTimeMs = 253402300799999;  // 9999-12-31T23:59:59.999Z
  ms = ms < kMinTimeMs ? kMinTimeMs : (ms > kMaxTimeMs ? kMaxTimeMs : ms);
  char buf[kRfc3339MsLength + 2];
  buf[0] = '"';
  size_t n = FormatRfc3339Ms(ms, buf + 1);
  buf[n + 1] = '"';
  out->append(buf, n + 2);
}

void FieldList(std::string* out, FieldMask mask) {
  out->push_back('[');
  bool first = true;
  for (int i = 0; i < kPacketFieldCount; ++i) {
    if ((mask & (1u << i)) == 0) continue;
    if (!first) out->push_back(',');
    first = false;
    Str(out, FieldName(static_cast<PacketField>(i)));
  }
  out->push_back(']');
}

}  // namespace

std::string_view ToString(AuditAction a) {
  static constexpr std::array<std::string_view, 8> kNames = {
      "emitted", "held", "enriched", "escalated", "acknowledged", "resolved", "expired", "closed"};
  return kNames[static_cast<size_t>(a)];
}

void WritePacket(const PacketView& p, std::string* out) {
  Lit(out, "{\"run_id\":");
  Str(out, p.run_id);
  Lit(out, ",\"workflow_id\":");
  StrOrNull(out, p.workflow_id);
  Lit(out, ",\"objective\":");
  StrOrNull(out, p.objective);
  Lit(out, ",\"failure_class\":");
  Str(out, ToString(p.failure_class));
  Lit(out, ",\"last_successful_step\":");
  StrOrNull(out, p.last_successful_step);
  Lit(out, ",\"failing_step\":");
  StrOrNull(out, p.failing_step);
  Lit(out, ",\"error_summary\":");
  StrOrNull(out, p.error_summary);
  Lit(out, ",\"blast_radius\":{\"users\":");
  IntOrNull(out, p.blast_users);
  Lit(out, ",\"jobs\":");
  IntOrNull(out, p.blast_jobs);
  Lit(out, "},\"recommended_action\":");
  StrOrNull(out, p.recommended_action);
  Lit(out, ",\"rollback_command\":");
  StrOrNull(out, p.rollback_command);
  Lit(out, ",\"owner\":{\"primary\":");
  StrOrNull(out, p.owner_primary);
  Lit(out, ",\"backup\":");
  StrOrNull(out, p.owner_backup);
  Lit(out, "},\"ttl_s\":");
  AppendJsonInt(out, p.ttl_s);
  Lit(out, ",\"expires_at\":");
  Time(out, p.expires_at_ms);
  Lit(out, ",\"packet_id\":");
  Str(out, p.packet_id);
  Lit(out, ",\"revision\":");
  AppendJsonInt(out, p.revision);
  Lit(out, ",\"schema\":\"handoff.packet/v1\",\"kind\":");
  Str(out, ToString(KindOf(p.failure_class)));
  Lit(out, ",\"severity\":");
  Str(out, ToString(p.severity));
  Lit(out, ",\"gate\":");
  Str(out, ToString(p.gate));
  if (p.complete) {
    Lit(out, ",\"complete\":true,\"missing_fields\":");
  } else {
    Lit(out, ",\"complete\":false,\"missing_fields\":");
  }
  FieldList(out, p.missing);
  Lit(out, ",\"enriched_fields\":");
  FieldList(out, p.enriched);
  Lit(out, ",\"hcs\":{\"score\":");
  Tenths(out, p.hcs.score_tenths);
  Lit(out, ",\"raw\":");
  Tenths(out, p.raw_tenths);
  Lit(out, ",\"c\":");
  AppendJsonInt(out, p.hcs.c);
  Lit(out, ",\"o\":");
  AppendJsonInt(out, p.hcs.o);
  Lit(out, ",\"n\":");
  AppendJsonInt(out, p.hcs.n);
  Lit(out, ",\"r\":");
  AppendJsonInt(out, p.hcs.r);
  Lit(out, "},\"sla\":{\"first_response_s\":");
  AppendJsonInt(out, p.first_response_s);
  Lit(out, ",\"ack_deadline\":");
  Time(out, p.ack_deadline_ms);
  Lit(out, ",\"escalation_route\":");
  Str(out, p.escalation_route);
  Lit(out, ",\"decision_authority\":");
  Str(out, p.decision_authority);
  Lit(out, "},\"escalation_level\":");
  AppendJsonInt(out, p.escalation_level);
  Lit(out, ",\"escalation_target\":");
  StrOrNull(out, p.escalation_target);
  Lit(out, ",\"detected_at\":");
  Time(out, p.detected_at_ms);
  Lit(out, ",\"emitted_at\":");
  Time(out, p.emitted_at_ms);
  if (p.has_source) {
    Lit(out, ",\"source\":{\"topic\":");
    Str(out, p.source_topic);
    Lit(out, ",\"partition\":");
    AppendJsonInt(out, p.source_partition);
    Lit(out, ",\"offset\":");
    AppendJsonInt(out, p.source_offset);
    Lit(out, "},\"flags\":[");
  } else {
    Lit(out, ",\"source\":{\"topic\":null,\"partition\":null,\"offset\":null},\"flags\":[");
  }
  bool first = true;
  for (int i = 0; i < kFailureClassCount; ++i) {
    if ((p.flag_classes & (1u << i)) == 0) continue;
    if (!first) out->push_back(',');
    first = false;
    Str(out, ToString(static_cast<FailureClass>(i)));
  }
  if (p.override_flag) {
    if (!first) out->push_back(',');
    Lit(out, "\"override\"");
  }
  Lit(out, "],\"attrs\":");
  RawOrNull(out, p.attrs_json);
  if (KindOf(p.failure_class) == HandoffKind::kPlanned) {
    Lit(out, ",\"handoff_type\":");
    Str(out, ToString(p.failure_class));
    Lit(out, ",\"trigger_reason\":");
    StrOrNull(out, p.trigger_reason);
    Lit(out, ",\"options\":");
    RawOrNull(out, p.options_json);
    Lit(out, ",\"evidence\":");
    RawOrNull(out, p.evidence_json);
    Lit(out, ",\"owner_role\":");
    StrOrNull(out, p.owner_role);
    Lit(out, ",\"next_action_after_decision\":");
    StrOrNull(out, p.next_action_after_decision);
  }
  Lit(out, ",\"retries\":");
  AppendJsonInt(out, p.retries);
  Lit(out, ",\"tool_calls\":");
  AppendJsonInt(out, p.tool_calls);
  Lit(out, ",\"cost_usd\":");
  AppendJsonDouble(out, p.cost_usd);
  out->push_back('}');
}

void WriteAudit(const AuditView& a, std::string* out) {
  Lit(out, "{\"packet_id\":");
  Str(out, a.packet_id);
  Lit(out, ",\"revision\":");
  AppendJsonInt(out, a.revision);
  Lit(out, ",\"action\":");
  Str(out, ToString(a.action));
  Lit(out, ",\"at\":");
  Time(out, a.at_ms);
  Lit(out, ",\"by\":");
  StrOrNull(out, a.by);
  Lit(out, ",\"reason\":");
  Str(out, a.reason);
  out->push_back('}');
}

}  // namespace handoffd

// Writes the handoff packet (contract section 5) and the audit record (section 7) as JSON, in
// the contract's field order, from views the engine resolves out of run state. Unknown values
// are null; blast_radius, owner and source are always objects (with null members when unknown),
// so consumers never have to test the object itself. Pure; appends to a reused std::string.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "processor/hcs.h"
#include "processor/types.h"

namespace handoffd {

struct PacketView {
  std::string_view run_id;
  std::optional<std::string_view> workflow_id;
  std::optional<std::string_view> objective;
  FailureClass failure_class = FailureClass::kUnclassifiedFailure;
  std::optional<std::string_view> last_successful_step;
  std::optional<std::string_view> failing_step;
  std::optional<std::string_view> error_summary;
  std::optional<int64_t> blast_users;
  std::optional<int64_t> blast_jobs;
  std::optional<std::string_view> recommended_action;
  std::optional<std::string_view> rollback_command;
  std::optional<std::string_view> owner_primary;
  std::optional<std::string_view> owner_backup;
  int64_t ttl_s = 0;
  int64_t expires_at_ms = 0;
  std::string_view packet_id;
  uint32_t revision = 1;
  Severity severity = Severity::kP3;
  Gate gate = Gate::kTicket;
  bool complete = false;
  FieldMask missing = 0;
  FieldMask enriched = 0;
  Hcs hcs;             // final
  int raw_tenths = 0;  // score before enrichment
  int64_t first_response_s = 0;
  int64_t ack_deadline_ms = 0;
  std::string_view escalation_route;
  std::string_view decision_authority;
  int escalation_level = 1;
  std::optional<std::string_view> escalation_target;
  int64_t detected_at_ms = 0;
  int64_t emitted_at_ms = 0;
  bool has_source = false;
  std::string_view source_topic;
  int32_t source_partition = 0;
  int64_t source_offset = 0;
  uint16_t flag_classes = 0;  // bit per FailureClass, written in class order
  bool override_flag = false;
  std::optional<std::string_view> attrs_json;
  // Planned handoffs (KindOf(failure_class) == kPlanned) only.
  std::optional<std::string_view> trigger_reason;
  std::optional<std::string_view> options_json;
  std::optional<std::string_view> evidence_json;
  std::optional<std::string_view> owner_role;
  std::optional<std::string_view> next_action_after_decision;
  int64_t retries = 0;
  int64_t tool_calls = 0;
  double cost_usd = 0;
};

// Appends the packet JSON object to *out.
void WritePacket(const PacketView& p, std::string* out);

enum class AuditAction : uint8_t {
  kEmitted,
  kHeld,
  kEnriched,
  kEscalated,
  kAcknowledged,
  kResolved,
  kExpired,
  kClosed,
};
std::string_view ToString(AuditAction a);

struct AuditView {
  std::string_view packet_id;
  uint32_t revision = 1;
  AuditAction action = AuditAction::kEmitted;
  int64_t at_ms = 0;
  std::optional<std::string_view> by;
  std::string_view reason;
};

// Appends the audit JSON object to *out.
void WriteAudit(const AuditView& a, std::string* out);

}  // namespace handoffd

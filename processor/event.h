// A decoded input record: an agent event (contract section 2) or an acknowledgement (section 3).
// Produced by Decoder, consumed by Engine. All string_views point into the Decoder's buffers or
// the input bytes and stay valid only until the Decoder decodes the next record; the Engine
// copies (interns) what it keeps.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "processor/types.h"

namespace handoffd {

struct Event {
  EventType type = EventType::kUnknown;
  std::string_view type_name;  // as on the wire, also for kUnknown
  std::string_view event_id;   // empty for acks (acks carry no event_id)
  std::string_view run_id;     // 1..256 bytes
  int64_t ts_ms = 0;           // event time, epoch milliseconds (UTC)

  // Fields any event may carry. nullopt = absent (or JSON null).
  std::optional<std::string_view> workflow_id;
  std::optional<std::string_view> step;
  std::optional<std::string_view> objective;
  std::optional<std::string_view> recommended_action;
  std::optional<std::string_view> rollback_command;
  std::optional<std::string_view> owner_primary;
  std::optional<std::string_view> owner_backup;
  std::optional<int64_t> blast_radius_users;
  std::optional<int64_t> blast_radius_jobs;
  std::optional<std::string_view> attrs_json;  // raw JSON object text, passed through
  std::optional<double> cost_usd;              // adds to the run total on any event

  // run_started
  std::optional<Severity> severity;

  // step_failed
  std::string_view error_code;
  std::optional<std::string_view> error_message;
  bool retryable = false;

  // tool_call
  std::string_view tool;
  std::optional<ToolStatus> tool_status;
  std::optional<SideEffect> side_effect;
  std::optional<int64_t> tokens;
  std::optional<int64_t> duration_ms;

  // decision
  double confidence = 0;
  std::optional<std::string_view> action;
  std::optional<Risk> risk;
  std::optional<double> amount;

  // handoff_requested
  std::string_view reason;
  std::optional<HandoffType> handoff_type;
  std::optional<std::string_view> options_json;   // raw JSON array text
  std::optional<std::string_view> evidence_json;  // raw JSON object text
  std::optional<std::string_view> owner_role;
  std::optional<std::string_view> next_action_after_decision;

  // run_completed
  Outcome outcome = Outcome::kSuccess;

  // handoff_acknowledged / handoff_resolved
  std::optional<std::string_view> packet_id;
  std::optional<std::string_view> by;

  bool IsAck() const {
    return type == EventType::kHandoffAcknowledged || type == EventType::kHandoffResolved;
  }
};

}  // namespace handoffd

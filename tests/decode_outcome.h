// DecodeOutcome: everything one decode produced, as text, so that the decoder's fast path and
// its simdjson-only reference can be compared with one equality check (tests/decoder_test.cc
// and the differential fuzz target tests/fuzz/decoder_fuzz.cc).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>

#include "processor/decoder.h"

namespace handoffd {

// Everything a decode produced, as text: the reason, envelope_valid and every Event field
// (doubles in hex, exact), so that two decoders can be compared with one EXPECT_EQ.
inline std::string Outcome(Decoder* decoder, std::string_view json) {
  Event e;
  std::string out(decoder->Decode(json, &e));
  out += decoder->envelope_valid() ? " envelope" : " -";
  if (!out.starts_with(" ") && !decoder->envelope_valid()) return out;
  auto add = [&out](const char* name, auto&& value) {
    out += ' ';
    out += name;
    out += '=';
    using T = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<T, std::string_view>) {
      out += '[';
      out += value;
      out += ']';
    } else if constexpr (std::is_same_v<T, double>) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%a", value);
      out += buf;
    } else {
      out += std::to_string(static_cast<int64_t>(value));
    }
  };
  auto opt = [&](const char* name, const auto& value) {
    if (value) {
      add(name, *value);
    } else {
      out += ' ';
      out += name;
      out += "=absent";
    }
  };
  add("type", e.type);
  add("type_name", e.type_name);
  add("event_id", e.event_id);
  add("run_id", e.run_id);
  add("ts", e.ts_ms);
  opt("workflow_id", e.workflow_id);
  opt("step", e.step);
  opt("objective", e.objective);
  opt("recommended_action", e.recommended_action);
  opt("rollback_command", e.rollback_command);
  opt("owner_primary", e.owner_primary);
  opt("owner_backup", e.owner_backup);
  opt("users", e.blast_radius_users);
  opt("jobs", e.blast_radius_jobs);
  opt("attrs", e.attrs_json);
  opt("cost_usd", e.cost_usd);
  opt("severity", e.severity);
  add("error_code", e.error_code);
  opt("error_message", e.error_message);
  add("retryable", e.retryable);
  add("tool", e.tool);
  opt("tool_status", e.tool_status);
  opt("side_effect", e.side_effect);
  opt("tokens", e.tokens);
  opt("duration_ms", e.duration_ms);
  add("confidence", e.confidence);
  opt("action", e.action);
  opt("risk", e.risk);
  opt("amount", e.amount);
  add("reason", e.reason);
  opt("handoff_type", e.handoff_type);
  opt("options", e.options_json);
  opt("evidence", e.evidence_json);
  opt("owner_role", e.owner_role);
  opt("next_action", e.next_action_after_decision);
  add("outcome", e.outcome);
  opt("packet_id", e.packet_id);
  opt("by", e.by);
  return out;
}

}  // namespace handoffd

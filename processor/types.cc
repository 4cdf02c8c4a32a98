#include "processor/types.h"

namespace handoffd {
namespace {

constexpr std::array<std::string_view, kSeverityCount> kSeverityNames = {"P1", "P2", "P3"};
constexpr std::array<std::string_view, kFailureClassCount> kClassNames = {
    "missing_input",      "duplicate_entity",  "conflicting_context", "downstream_write_failure",
    "schema_invalid",     "permission_denied", "unsupported_request", "unclassified_failure",
    "retry_exhausted",    "low_confidence",    "budget_exceeded",     "stalled",
    "risk_authorization", "business_judgment", "evidence_gap"};
constexpr std::array<std::string_view, kEventTypeCount> kEventTypeNames = {
    "run_started",          "step_started",     "step_succeeded",
    "step_failed",          "tool_call",        "decision",
    "handoff_requested",    "heartbeat",        "run_completed",
    "handoff_acknowledged", "handoff_resolved", "unknown"};
constexpr std::array<std::string_view, 8> kGateNames = {
    "page",     "held",    "notify", "owner_queue_incomplete", "ticket", "ticket_template_required",
    "decision", "escalate"};
constexpr std::array<std::string_view, 3> kOutcomeNames = {"success", "failure", "cancelled"};
constexpr std::array<std::string_view, 3> kHandoffTypeNames = {
    "business_judgment", "risk_authorization", "evidence_gap"};
constexpr std::array<std::string_view, 4> kSideEffectNames = {"none", "reversible", "irreversible",
                                                              "external"};
constexpr std::array<std::string_view, 4> kRiskNames = {"low", "high", "irreversible", "external"};
constexpr std::array<std::string_view, 2> kToolStatusNames = {"ok", "error"};

template <typename E, size_t N>
std::optional<E> Lookup(const std::array<std::string_view, N>& names, std::string_view s) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<E>(i);
  }
  return std::nullopt;
}

}  // namespace

std::string_view ToString(Severity s) { return kSeverityNames[static_cast<size_t>(s)]; }
std::string_view ToString(FailureClass c) { return kClassNames[static_cast<size_t>(c)]; }
std::string_view ToString(HandoffKind k) {
  return k == HandoffKind::kPlanned ? "planned" : "exception";
}
std::string_view ToString(EventType t) { return kEventTypeNames[static_cast<size_t>(t)]; }
std::string_view ToString(Gate g) { return kGateNames[static_cast<size_t>(g)]; }
std::string_view ToString(Outcome o) { return kOutcomeNames[static_cast<size_t>(o)]; }
std::string_view ToString(HandoffType t) { return kHandoffTypeNames[static_cast<size_t>(t)]; }
std::string_view ToString(SideEffect s) { return kSideEffectNames[static_cast<size_t>(s)]; }
std::string_view ToString(Risk r) { return kRiskNames[static_cast<size_t>(r)]; }

std::optional<Severity> ParseSeverity(std::string_view s) {
  return Lookup<Severity>(kSeverityNames, s);
}
std::optional<FailureClass> ParseFailureClass(std::string_view s) {
  return Lookup<FailureClass>(kClassNames, s);
}
EventType ParseEventType(std::string_view s) {
  for (size_t i = 0; i + 1 < kEventTypeNames.size(); ++i) {
    if (kEventTypeNames[i] == s) return static_cast<EventType>(i);
  }
  return EventType::kUnknown;
}
std::optional<SideEffect> ParseSideEffect(std::string_view s) {
  return Lookup<SideEffect>(kSideEffectNames, s);
}
std::optional<Risk> ParseRisk(std::string_view s) { return Lookup<Risk>(kRiskNames, s); }
std::optional<ToolStatus> ParseToolStatus(std::string_view s) {
  return Lookup<ToolStatus>(kToolStatusNames, s);
}
std::optional<Outcome> ParseOutcome(std::string_view s) {
  return Lookup<Outcome>(kOutcomeNames, s);
}
std::optional<HandoffType> ParseHandoffType(std::string_view s) {
  return Lookup<HandoffType>(kHandoffTypeNames, s);
}

}  // namespace handoffd

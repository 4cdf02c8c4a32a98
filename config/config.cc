#include "config/config.h"

namespace handoffd {

const std::string& TopicsConfig::ForRole(TopicRole role) const {
  switch (role) {
    case TopicRole::kPage:
      return page;
    case TopicRole::kOwnerQueue:
      return owner_queue;
    case TopicRole::kTickets:
      return tickets;
    case TopicRole::kDecisions:
      return decisions;
    case TopicRole::kPending:
      return pending;
    case TopicRole::kEscalations:
      return escalations;
    case TopicRole::kAudit:
      return audit;
    case TopicRole::kDlq:
      return dlq;
  }
  return dlq;
}

const WorkflowConfig* Config::FindWorkflow(std::string_view id) const {
  auto it = workflows.find(id);
  return it == workflows.end() ? nullptr : &it->second;
}

Config DefaultConfig() {
  Config c;
  using FC = FailureClass;
  c.rules = {
      {{"missing_input", "missing_source", "not_found", "file_read_failed"}, FC::kMissingInput},
      {{"duplicate_entity", "duplicate"}, FC::kDuplicateEntity},
      {{"conflicting_context", "conflict"}, FC::kConflictingContext},
      {{"write_failed", "api_error", "downstream_error", "timeout"}, FC::kDownstreamWriteFailure},
      {{"schema_invalid", "invalid_output", "validation_error"}, FC::kSchemaInvalid},
      {{"permission_denied", "forbidden", "unauthorized"}, FC::kPermissionDenied},
      {{"unsupported_request", "unsupported"}, FC::kUnsupportedRequest},
  };
  auto& ra = c.defaults.recommended_actions;
  auto set = [&ra](FC fc, const char* text) { ra[static_cast<size_t>(fc)] = text; };
  set(FC::kMissingInput, "Locate or regenerate the missing input, then re-run the failing step");
  set(FC::kDuplicateEntity, "Check the target system for the duplicate and merge or skip it");
  set(FC::kConflictingContext,
      "Decide which source is authoritative and re-run with the conflict resolved");
  set(FC::kDownstreamWriteFailure,
      "Check the downstream system for partial writes; roll back or retry the write");
  set(FC::kSchemaInvalid, "Inspect the invalid output against the schema and fix the producer");
  set(FC::kPermissionDenied,
      "Grant the missing permission or route the step to an authorised owner");
  set(FC::kUnsupportedRequest, "Handle the request manually; it is outside the agent's scope");
  set(FC::kUnclassifiedFailure, "Read the error and the run log; pause the workflow if unsure");
  set(FC::kRetryExhausted, "Stop retries, check the dependency's health, then resume the run");
  set(FC::kLowConfidence, "Review the agent's decision and its evidence before it proceeds");
  set(FC::kBudgetExceeded, "Stop the run and review its spend before allowing it to continue");
  set(FC::kStalled, "Check whether the agent is alive; restart or cancel the run");
  set(FC::kRiskAuthorization, "Authorise or reject the risky action");
  set(FC::kBusinessJudgment, "Choose one of the options and record the decision");
  set(FC::kEvidenceGap, "Supply the missing evidence or decide without it");
  c.sla[0] = {90, 300, 3600, "oncall + incident-captain", "incident captain"};
  c.sla[1] = {85, 900, 14400, "workflow owner + platform support", "workflow owner"};
  c.sla[2] = {70, 14400, 259200, "async owner queue", "team lead"};
  return c;
}

}  // namespace handoffd

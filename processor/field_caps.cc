#include "processor/field_caps.h"

namespace handoffd {

void TruncateText(std::string_view text, size_t limit, std::string* out) {
  std::string note = "... [truncated, " + std::to_string(text.size()) + " bytes]";
  size_t keep = limit > note.size() ? limit - note.size() : 0;
  // Back off to the start of the character the cut would split (continuation bytes: 10xxxxxx).
  while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
  out->assign(text.substr(0, keep));
  out->append(note);
}

void FieldCaps::Text(std::string_view* value, size_t limit, Slot slot, const char* name) {
  if (value->size() <= limit) return;
  TruncateText(*value, limit, &buffers_[slot]);
  *value = buffers_[slot];
  if (count_++ == 0) first_ = name;
}

void FieldCaps::Json(std::string_view* value, bool array, Slot slot, const char* name) {
  if (value->size() <= max_field_bytes_) return;
  std::string& out = buffers_[slot];
  out.assign(array ? "[{\"truncated_bytes\":" : "{\"truncated_bytes\":");
  out.append(std::to_string(value->size()));
  out.append(array ? "}]" : "}");
  *value = out;
  if (count_++ == 0) first_ = name;
}

std::string_view FieldCaps::Apply(Event* e, int* count) {
  first_ = {};
  count_ = 0;
  const size_t text = max_field_bytes_;
  Text(&e->workflow_id, kMaxNameBytes, kWorkflowId, "workflow_id");
  Text(&e->step, kMaxNameBytes, kStep, "step");
  Text(&e->objective, text, kObjective, "objective");
  Text(&e->recommended_action, text, kRecommendedAction, "recommended_action");
  Text(&e->rollback_command, text, kRollbackCommand, "rollback_command");
  Text(&e->owner_primary, kMaxNameBytes, kOwnerPrimary, "owner.primary");
  Text(&e->owner_backup, kMaxNameBytes, kOwnerBackup, "owner.backup");
  Json(&e->attrs_json, false, kAttrs, "attrs");
  Text(&e->error_code, kMaxNameBytes, kErrorCode, "error.code");
  Text(&e->error_message, text, kErrorMessage, "error.message");
  Text(&e->tool, kMaxNameBytes, kTool, "tool");
  Text(&e->action, text, kAction, "action");
  Text(&e->reason, text, kReason, "reason");
  Json(&e->options_json, true, kOptions, "options");
  Json(&e->evidence_json, false, kEvidence, "evidence");
  Text(&e->owner_role, kMaxNameBytes, kOwnerRole, "owner_role");
  Text(&e->next_action_after_decision, text, kNextAction, "next_action_after_decision");
  Text(&e->packet_id, kMaxNameBytes, kPacketId, "packet_id");
  Text(&e->by, kMaxNameBytes, kBy, "by");
  *count = count_;
  return first_;
}

}  // namespace handoffd

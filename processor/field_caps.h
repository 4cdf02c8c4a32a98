// Bounds on the size of what one event can put into a packet or a run's state. An event is valid
// up to limits.max_event_bytes (1 MiB), but the packets and changelog records built from it must
// stay producible: Kafka's default record limit is about 1 MB, and a packet joins fields of
// several events. Without a bound, one valid event with a 1 MB error message made a packet the
// producer refused, the batch was never committed, and the restarted worker met the same event
// again, for ever.
//
// Free text (objective, error message, reason, actions, commands) and the pass-through JSON
// fields (attrs, options, evidence) are cut to limits.max_field_bytes; names and ids (workflow,
// step, tool, owners, error code, packet_id, by) to kMaxNameBytes, as the contract bounds run_id.
// A cut text keeps its first bytes (never splitting a UTF-8 character) and ends with
// "... [truncated, N bytes]", N the original size; JSON that does not fit is replaced by
// {"truncated_bytes":N} (attrs, evidence) or [{"truncated_bytes":N}] (options). The full event
// stays on the input topic, at the packet's `source`. Deterministic: the same event is always cut
// the same way.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "processor/event.h"

namespace handoffd {

inline constexpr size_t kMaxNameBytes = 256;

class FieldCaps {
 public:
  // REQUIRES: max_field_bytes >= kMaxNameBytes (the config loader enforces it).
  explicit FieldCaps(size_t max_field_bytes) : max_field_bytes_(max_field_bytes) {}

  // Cuts the fields of `event` that are over their bound; the cut values live in this object
  // until the next call. Returns the name of the first field cut (as in the contract's event
  // schema, e.g. "error.message"), or an empty view when nothing was cut; *count is the number of
  // fields cut.
  std::string_view Apply(Event* event, int* count);

 private:
  enum Slot : size_t {
    kWorkflowId,
    kStep,
    kObjective,
    kRecommendedAction,
    kRollbackCommand,
    kOwnerPrimary,
    kOwnerBackup,
    kAttrs,
    kErrorCode,
    kErrorMessage,
    kTool,
    kAction,
    kReason,
    kOptions,
    kEvidence,
    kOwnerRole,
    kNextAction,
    kPacketId,
    kBy,
    kSlots
  };
  void Text(std::string_view* value, size_t limit, Slot slot, const char* name);
  void Json(std::string_view* value, bool array, Slot slot, const char* name);
  template <typename T>
  void Text(std::optional<T>* value, size_t limit, Slot slot, const char* name) {
    if (value->has_value()) Text(&**value, limit, slot, name);
  }
  template <typename T>
  void Json(std::optional<T>* value, bool array, Slot slot, const char* name) {
    if (value->has_value()) Json(&**value, array, slot, name);
  }

  size_t max_field_bytes_;
  std::array<std::string, kSlots> buffers_;
  std::string_view first_;
  int count_ = 0;
};

// The first bytes of `text` that fit in `limit` bytes together with the truncation note, cut
// at a UTF-8 character boundary, then the note. REQUIRES: text.size() > limit >= 64.
void TruncateText(std::string_view text, size_t limit, std::string* out);

}  // namespace handoffd

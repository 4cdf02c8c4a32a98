// The Handoff Completeness Score (contract section 6) and the packet's ten scored fields, in the
// order that missing_fields and enriched_fields list them (section 11). Pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace handoffd {

enum class PacketField : uint8_t {
  kWorkflowId,
  kObjective,
  kLastSuccessfulStep,
  kFailingStep,
  kErrorSummary,
  kBlastRadius,
  kRecommendedAction,
  kRollbackCommand,
  kOwnerPrimary,
  kOwnerBackup,
};
inline constexpr int kPacketFieldCount = 10;

// A set of PacketFields, bit i = field i.
using FieldMask = uint16_t;
inline constexpr FieldMask kAllFields = (1u << kPacketFieldCount) - 1;
constexpr FieldMask Bit(PacketField f) { return static_cast<FieldMask>(1u << static_cast<int>(f)); }

// The field's name as the packet spells it ("owner.primary" for the owner's primary).
std::string_view FieldName(PacketField f);

struct Hcs {
  int c = 0;  // context: 20 each for objective, last step, failing step, error, blast radius
  int o = 0;  // ownership: 50 each for the primary and backup owner
  int n = 0;  // next action: 100 with a recommended action
  int r = 0;  // reproducibility: 50 each for workflow_id and rollback_command
  // 0.30 C + 0.25 O + 0.25 N + 0.20 R in tenths; exact, because O and N are multiples of 50.
  int score_tenths = 0;
};

// Scores the fields in `known`.
Hcs ComputeHcs(FieldMask known);

// True when a score (in tenths) is at or above a band's min_score.
bool MeetsMinimum(int score_tenths, double min_score);

}  // namespace handoffd

#include "processor/hcs.h"

#include <array>

namespace handoffd {
namespace {
constexpr std::array<std::string_view, kPacketFieldCount> kFieldNames = {
    "workflow_id",  "objective",          "last_successful_step", "failing_step",  "error_summary",
    "blast_radius", "recommended_action", "rollback_command",     "owner.primary", "owner.backup"};

int Has(FieldMask known, PacketField f) { return (known & Bit(f)) != 0 ? 1 : 0; }
}  // namespace

std::string_view FieldName(PacketField f) { return kFieldNames[static_cast<size_t>(f)]; }

Hcs ComputeHcs(FieldMask known) {
  using F = PacketField;
  Hcs h;
  h.c = 20 *
        (Has(known, F::kObjective) + Has(known, F::kLastSuccessfulStep) +
         Has(known, F::kFailingStep) + Has(known, F::kErrorSummary) + Has(known, F::kBlastRadius));
  h.o = 50 * (Has(known, F::kOwnerPrimary) + Has(known, F::kOwnerBackup));
  h.n = 100 * Has(known, F::kRecommendedAction);
  h.r = 50 * (Has(known, F::kWorkflowId) + Has(known, F::kRollbackCommand));
  h.score_tenths = 3 * h.c + (5 * h.o) / 2 + (5 * h.n) / 2 + 2 * h.r;
  return h;
}

bool MeetsMinimum(int score_tenths, double min_score) {
  // Compare in tenths with a small tolerance so that a configured 77.5 matches a score of 77.5.
  return static_cast<double>(score_tenths) + 1e-6 >= min_score * 10.0;
}

}  // namespace handoffd

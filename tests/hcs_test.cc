// HCS: component weights, the one-decimal score and the field names/order of section 11.
#include "processor/hcs.h"

#include <gtest/gtest.h>

namespace handoffd {
namespace {

using F = PacketField;

TEST(Hcs, AllFieldsScoreOneHundred) {
  Hcs h = ComputeHcs(kAllFields);
  EXPECT_EQ(h.c, 100);
  EXPECT_EQ(h.o, 100);
  EXPECT_EQ(h.n, 100);
  EXPECT_EQ(h.r, 100);
  EXPECT_EQ(h.score_tenths, 1000);
}

TEST(Hcs, NoFieldsScoreZero) { EXPECT_EQ(ComputeHcs(0).score_tenths, 0); }

TEST(Hcs, P1PrimaryOwnerOnlyWithoutRollbackScores77Point5) {
  // The ledger-close sample: context complete, primary owner only, action known, no rollback.
  FieldMask known =
      static_cast<FieldMask>(kAllFields & ~Bit(F::kRollbackCommand) & ~Bit(F::kOwnerBackup));
  Hcs h = ComputeHcs(known);
  EXPECT_EQ(h.c, 100);
  EXPECT_EQ(h.o, 50);
  EXPECT_EQ(h.n, 100);
  EXPECT_EQ(h.r, 50);
  EXPECT_EQ(h.score_tenths, 775);
  EXPECT_FALSE(MeetsMinimum(h.score_tenths, 90));
}

TEST(Hcs, WeightsAreThirtyTwentyFiveTwentyFiveTwenty) {
  EXPECT_EQ(ComputeHcs(Bit(F::kObjective)).score_tenths, 60);      // 20 C * 0.30
  EXPECT_EQ(ComputeHcs(Bit(F::kOwnerPrimary)).score_tenths, 125);  // 50 O * 0.25
  EXPECT_EQ(ComputeHcs(Bit(F::kRecommendedAction)).score_tenths, 250);
  EXPECT_EQ(ComputeHcs(Bit(F::kWorkflowId)).score_tenths, 100);  // 50 R * 0.20
  EXPECT_EQ(ComputeHcs(Bit(F::kBlastRadius) | Bit(F::kErrorSummary)).c, 40);
}

TEST(Hcs, MinimumIsInclusive) {
  EXPECT_TRUE(MeetsMinimum(900, 90));
  EXPECT_FALSE(MeetsMinimum(899, 90));
  EXPECT_TRUE(MeetsMinimum(775, 77.5));
}

TEST(Hcs, FieldNamesFollowTheContractOrder) {
  const char* expected[] = {"workflow_id",        "objective",        "last_successful_step",
                            "failing_step",       "error_summary",    "blast_radius",
                            "recommended_action", "rollback_command", "owner.primary",
                            "owner.backup"};
  for (int i = 0; i < kPacketFieldCount; ++i) {
    EXPECT_EQ(FieldName(static_cast<PacketField>(i)), expected[i]);
  }
}

}  // namespace
}  // namespace handoffd

// SeenSet: the bounded window of seen event-id hashes.
#include "processor/run_state.h"

#include <gtest/gtest.h>

namespace handoffd {
namespace {

TEST(RunState, SeenSetRemembersUpToItsLimitAndForgetsTheOldest) {
  SeenSet s;
  EXPECT_FALSE(s.Contains(1));
  for (uint64_t h = 1; h <= 5; ++h) EXPECT_FALSE(s.Insert(h, 5));
  for (uint64_t h = 1; h <= 5; ++h) EXPECT_TRUE(s.Contains(h));
  EXPECT_TRUE(s.Insert(6, 5));  // full: 1 forgotten
  EXPECT_FALSE(s.Contains(1));
  EXPECT_TRUE(s.Contains(6));
  EXPECT_TRUE(s.Insert(7, 5));  // 2 forgotten
  EXPECT_FALSE(s.Contains(2));
  EXPECT_EQ(s.size(), 5u);
  // Oldest first: 3, 4, 5, 6, 7.
  for (uint32_t i = 0; i < 5; ++i) EXPECT_EQ(s.At(i), 3 + i);
}

TEST(RunState, RunSlotsKeepReferencesStableAsTheyGrow) {
  RunSlots slots;
  uint32_t first = slots.Add();
  handoffd::Run* address = &slots[first];
  address->run_id = "r0";
  for (int i = 0; i < 5000; ++i) slots.Add();
  EXPECT_EQ(&slots[first], address);
  EXPECT_EQ(slots[first].run_id, "r0");
  EXPECT_EQ(slots.size(), 5001u);
}

}  // namespace
}  // namespace handoffd

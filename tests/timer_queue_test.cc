// TimerQueue: time order, and a deterministic order for timers due at the same time.
#include "processor/timer_queue.h"

#include <gtest/gtest.h>

#include <vector>

namespace handoffd {
namespace {

TEST(TimerQueue, PopsInDueTimeOrder) {
  TimerQueue q;
  for (int64_t due : {50, 10, 40, 20, 30}) q.Push({due, 1, 0, 0, 0, TimerKind::kStall});
  std::vector<int64_t> order;
  while (!q.empty()) {
    order.push_back(q.Top().due_ms);
    q.Pop();
  }
  EXPECT_EQ(order, (std::vector<int64_t>{10, 20, 30, 40, 50}));
}

TEST(TimerQueue, TiesGoByRunThenPacketThenKindNotByPushOrder) {
  TimerQueue q;
  q.Push({100, 2, 0, 0, 1, TimerKind::kHold});
  q.Push({100, 1, 0, 0, 2, TimerKind::kHold});
  q.Push({100, 1, 0, 0, 1, TimerKind::kExpiry});
  q.Push({100, 1, 0, 0, 1, TimerKind::kEscalation2});
  std::vector<std::tuple<uint64_t, uint32_t, TimerKind>> order;
  while (!q.empty()) {
    order.emplace_back(q.Top().run_seq, q.Top().packet, q.Top().kind);
    q.Pop();
  }
  EXPECT_EQ(order,
            (std::vector<std::tuple<uint64_t, uint32_t, TimerKind>>{{1, 1, TimerKind::kEscalation2},
                                                                    {1, 1, TimerKind::kExpiry},
                                                                    {1, 2, TimerKind::kHold},
                                                                    {2, 1, TimerKind::kHold}}));
}

}  // namespace
}  // namespace handoffd

// The synthetic fleet behind `handoffd generate`.
#include <gtest/gtest.h>

#include <set>

#include "processor/decoder.h"
#include "processor/live/synthetic_fleet.h"

namespace handoffd {
namespace {

TEST(LiveSyntheticFleet, EveryRecordDecodesAndIsKeyedByItsRun) {
  SyntheticFleet fleet({"refund-review", "ledger-close"}, 7);
  Decoder decoder(1 << 20);
  Event event;
  std::set<std::string> types;
  int64_t acks = 0;
  FleetRecord record;
  for (int i = 0; i < 20000; ++i) {
    fleet.Next(1'700'000'000'000 + i * 10, &record);
    std::string_view reason = decoder.Decode(record.json, &event);
    ASSERT_TRUE(reason.empty()) << reason << " in " << record.json;
    EXPECT_EQ(event.run_id, record.run_id);
    EXPECT_EQ(event.IsAck(), record.is_ack);
    types.insert(std::string(event.type_name));
    if (record.is_ack) ++acks;
  }
  EXPECT_GT(acks, 0);
  for (const char* t : {"run_started", "step_failed", "decision", "handoff_requested",
                        "run_completed", "handoff_acknowledged", "handoff_resolved"}) {
    EXPECT_TRUE(types.count(t)) << t;
  }
}

TEST(LiveSyntheticFleet, SameSeedAndClockGiveTheSameStream) {
  SyntheticFleet a({"w"}, 42);
  SyntheticFleet b({"w"}, 42);
  FleetRecord ra;
  FleetRecord rb;
  for (int i = 0; i < 1000; ++i) {
    a.Next(1000 + i, &ra);
    b.Next(1000 + i, &rb);
    ASSERT_EQ(ra.json, rb.json);
  }
}

}  // namespace
}  // namespace handoffd

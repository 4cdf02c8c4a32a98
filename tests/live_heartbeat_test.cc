// The main-loop heartbeat behind /healthz: fresh -> healthy, stale -> a one-line reason; and the
// threshold that decides between them. The clock is handed in: nothing here waits.
#include <gtest/gtest.h>

#include <chrono>

#include "processor/live/heartbeat.h"

namespace handoffd {
namespace {

using std::chrono::seconds;

Heartbeat::SteadyTime At(int64_t s) { return Heartbeat::SteadyTime(seconds(s)); }
Heartbeat::WallTime WallAt(int64_t s) { return Heartbeat::WallTime(seconds(s)); }

TEST(LiveHeartbeat, HealthyUntilTheFirstBeat) {
  Heartbeat beat;  // start-up checks run before the worker beats; they have their own limits
  EXPECT_EQ(beat.Stalled(At(100000), seconds(60)), "");
  EXPECT_EQ(beat.last_wall_seconds(), 0);
}

TEST(LiveHeartbeat, FreshBeatIsHealthyAndAStaleOneNamesItsAge) {
  Heartbeat beat;
  beat.Beat(At(500), WallAt(1'780'000'000));
  EXPECT_EQ(beat.Stalled(At(500), seconds(60)), "");
  EXPECT_EQ(beat.Stalled(At(560), seconds(60)), "");  // exactly the threshold: still healthy
  EXPECT_EQ(beat.Stalled(At(561), seconds(60)),
            "main loop stalled: no progress for 61 s (threshold 60 s)");
  EXPECT_EQ(beat.last_wall_seconds(), 1'780'000'000);
  beat.Beat(At(600), WallAt(1'780'000'100));  // the loop moved again
  EXPECT_EQ(beat.Stalled(At(610), seconds(60)), "");
  EXPECT_EQ(beat.last_wall_seconds(), 1'780'000'100);
}

TEST(LiveHeartbeat, ThresholdIsAMinuteOrFourShutdownTimeouts) {
  Config config = DefaultConfig();
  config.kafka.shutdown_timeout_ms = 10000;  // the default: a commit's calls fit in 40 s
  EXPECT_EQ(HeartbeatThreshold(config), seconds(60));
  config.kafka.shutdown_timeout_ms = 30000;  // a commit's flush, offsets and commit may take 90 s
  EXPECT_EQ(HeartbeatThreshold(config), seconds(120));
}

using std::chrono::milliseconds;

StallWatch::SteadyTime Ms(int64_t ms) { return StallWatch::SteadyTime(milliseconds(ms)); }

TEST(LiveStallWatch, RegularTicksNeverHold) {
  StallWatch watch(milliseconds(1000), milliseconds(2000));
  EXPECT_FALSE(watch.Held(Ms(50'000)));  // before the first tick
  for (int64_t t = 50'000; t <= 60'000; t += 200) {
    EXPECT_EQ(watch.Tick(Ms(t)), milliseconds(0));
    EXPECT_FALSE(watch.Held(Ms(t + 150)));
  }
  // A tick late by less than the threshold (a busy machine) is not a stall.
  EXPECT_EQ(watch.Tick(Ms(61'000)), milliseconds(0));
  EXPECT_FALSE(watch.Held(Ms(61'100)));
}

TEST(LiveStallWatch, AStalledProcessHoldsFromTheMomentItRunsAgainUntilTheHoldEnds) {
  StallWatch watch(milliseconds(1000), milliseconds(2000));
  watch.Tick(Ms(10'000));
  EXPECT_FALSE(watch.Held(Ms(10'900)));
  // SIGSTOP at ~10 s, SIGCONT at 18 s: the main thread may run before the ticking thread does;
  // the missing ticks alone already hold its changelog writes.
  EXPECT_TRUE(watch.Held(Ms(18'000)));
  // The ticking thread runs: it reports the stall, and the hold lasts 2 s from there.
  EXPECT_EQ(watch.Tick(Ms(18'010)), milliseconds(8'010));
  EXPECT_TRUE(watch.Held(Ms(18'020)));
  for (int64_t t = 18'200; t <= 20'000; t += 200) {
    EXPECT_EQ(watch.Tick(Ms(t)), milliseconds(0));
    EXPECT_TRUE(watch.Held(Ms(t))) << t;
  }
  EXPECT_EQ(watch.Tick(Ms(20'010)), milliseconds(0));
  EXPECT_FALSE(watch.Held(Ms(20'011)));  // 2 s after the stall ended
  EXPECT_FALSE(watch.Held(Ms(20'100)));
}

TEST(LiveStallWatch, AStallDuringTheHoldStartsItAgain) {
  StallWatch watch(milliseconds(1000), milliseconds(2000));
  watch.Tick(Ms(1'000));
  EXPECT_EQ(watch.Tick(Ms(6'000)), milliseconds(5'000));
  EXPECT_EQ(watch.Tick(Ms(7'500)), milliseconds(1'500));  // stopped again during the hold
  for (int64_t t = 7'700; t <= 9'400; t += 200) watch.Tick(Ms(t));
  EXPECT_TRUE(watch.Held(Ms(9'400)));  // 2 s from 7.5 s, not from 6 s
  watch.Tick(Ms(9'500));
  EXPECT_FALSE(watch.Held(Ms(9'500)));
}

}  // namespace
}  // namespace handoffd

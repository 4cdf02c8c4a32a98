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

}  // namespace
}  // namespace handoffd

// Changelog folding: what a restarted worker restores from handoffd.state.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "processor/live/changelog.h"

namespace handoffd {
namespace {

std::string Meta(int64_t events, int64_t acks, const std::string& engine) {
  return EncodeMeta(ChangelogMeta{events, acks, engine});
}

TEST(LiveChangelog, MetaRoundTripsOffsetsAndEngineBytes) {
  ChangelogMeta out;
  ASSERT_TRUE(DecodeMeta(Meta(12345678901, 7, std::string("wm\0x", 4)), &out));
  EXPECT_EQ(out.next_events_offset, 12345678901);
  EXPECT_EQ(out.next_acks_offset, 7);
  EXPECT_EQ(out.engine_meta, std::string("wm\0x", 4));
}

TEST(LiveChangelog, GarbageIsNotAMeta) {
  ChangelogMeta out;
  EXPECT_FALSE(DecodeMeta("", &out));
  EXPECT_FALSE(DecodeMeta("HDM1short", &out));
  EXPECT_FALSE(DecodeMeta(std::string(40, 'x'), &out));
}

TEST(LiveChangelog, EmptyLogRestoresNothingAndNoMeta) {
  ChangelogRestore fold;
  EXPECT_TRUE(fold.runs().empty());
  EXPECT_FALSE(fold.meta().has_value());
  EXPECT_TRUE(fold.TailKeys().empty());
}

TEST(LiveChangelog, RecordsAfterTheLastMetaAreDiscarded) {
  ChangelogRestore fold;
  fold.Add("run-a", "a1");
  fold.Add(kMetaKey, Meta(10, 3, "m1"));
  fold.Add("run-a", "a2");  // batch 2 crashed before its meta
  fold.Add("run-b", "b1");
  ASSERT_TRUE(fold.meta().has_value());
  EXPECT_EQ(fold.meta()->next_events_offset, 10);
  EXPECT_EQ(fold.meta()->engine_meta, "m1");
  ASSERT_EQ(fold.runs().size(), 1u);
  EXPECT_EQ(fold.runs().at("run-a"), "a1");
  EXPECT_EQ(fold.TailKeys(), (std::vector<std::string>{"run-a", "run-b"}));
}

TEST(LiveChangelog, LaterBatchesReplaceEarlierStateAndTombstonesDelete) {
  ChangelogRestore fold;
  fold.Add("run-a", "a1");
  fold.Add("run-b", "b1");
  fold.Add(kMetaKey, Meta(5, 0, "m1"));
  fold.Add("run-a", "a2");
  fold.Add("run-b", "");  // tombstone
  fold.Add(kMetaKey, Meta(9, 2, "m2"));
  ASSERT_EQ(fold.runs().size(), 1u);
  EXPECT_EQ(fold.runs().at("run-a"), "a2");
  EXPECT_EQ(fold.meta()->next_events_offset, 9);
  EXPECT_EQ(fold.meta()->next_acks_offset, 2);
  EXPECT_TRUE(fold.TailKeys().empty());
  EXPECT_EQ(fold.records(), 6);
}

// What the embedded broker keeps of a partition after dropping its oldest records: the tail of
// one snapshot batch, then a whole one. The whole one makes the state complete.
TEST(LiveChangelog, ASnapshotIsCompleteOnlyFromItsMarkerToItsMeta) {
  ChangelogRestore tail_only;
  tail_only.Add("run-b", "b1");  // the marker and run-a of this snapshot were dropped
  tail_only.Add(kMetaKey, Meta(10, 3, "m1"));
  EXPECT_FALSE(tail_only.has_snapshot());

  ChangelogRestore fold;
  fold.Add("run-b", "b1");
  fold.Add(kMetaKey, Meta(10, 3, "m1"));
  fold.Add(kSnapshotKey, "1");
  fold.Add("run-a", "a2");
  fold.Add("run-b", "b2");
  EXPECT_FALSE(fold.has_snapshot());  // no meta yet: the snapshot may be cut short
  fold.Add(kMetaKey, Meta(20, 4, "m2"));
  EXPECT_TRUE(fold.has_snapshot());
  EXPECT_EQ(fold.runs().size(), 2u);  // the marker is not a run
  EXPECT_EQ(fold.runs().at("run-a"), "a2");
  EXPECT_TRUE(fold.TailKeys().empty());

  ChangelogRestore crashed;
  crashed.Add(kSnapshotKey, "1");
  crashed.Add("run-a", "a2");  // the snapshot's meta never landed
  EXPECT_FALSE(crashed.has_snapshot());
  EXPECT_EQ(crashed.TailKeys(), std::vector<std::string>{"run-a"});
}

TEST(LiveChangelog, CorruptMetaLeavesTheBatchPending) {
  ChangelogRestore fold;
  fold.Add("run-a", "a1");
  fold.Add(kMetaKey, "not a meta");
  EXPECT_FALSE(fold.meta().has_value());
  EXPECT_TRUE(fold.runs().empty());
  EXPECT_EQ(fold.bad_meta_records(), 1);
  EXPECT_EQ(fold.TailKeys(), (std::vector<std::string>{"run-a"}));
}

TEST(LiveChangelog, OrphanRepairedByReplayIsSupersededByTheNextMeta) {
  // Crash after writing run-a of batch 2; the restarted worker re-writes run-a's committed
  // value, then commits batch 2' with its own meta: the orphan must never come back.
  ChangelogRestore fold;
  fold.Add("run-a", "a1");
  fold.Add(kMetaKey, Meta(5, 0, "m1"));
  fold.Add("run-a", "orphan");
  fold.Add("run-a", "a1");  // repair
  fold.Add(kMetaKey, Meta(5, 0, "m1"));
  EXPECT_EQ(fold.runs().at("run-a"), "a1");
}

TEST(LiveChangelog, WithWritersTheCrashRepairIsStillCommittedByTheNewOwner) {
  // As above, with writer tokens: A crashed after an orphan; B restored from A's meta, re-wrote
  // the orphan's key and commits. Nothing stale: A's tail was A's own uncommitted batch.
  ChangelogRestore fold;
  fold.Add("run-a", "a1", "A");
  fold.Add(kMetaKey, Meta(5, 0, "m1"), "A", "");
  fold.Add("run-a", "orphan", "A");
  fold.Add("run-b", "b-orphan", "A");
  EXPECT_EQ(fold.meta_writer(), "A");
  EXPECT_EQ(fold.TailKeys(), (std::vector<std::string>{"run-a", "run-b"}));
  fold.Add("run-a", "a1", "B");  // B's repairs of the tail
  fold.Add("run-b", "", "B");
  fold.Add(kMetaKey, Meta(5, 0, "m1"), "B", "A");
  EXPECT_EQ(fold.runs().at("run-a"), "a1");
  EXPECT_EQ(fold.runs().count("run-b"), 0u);
  EXPECT_EQ(fold.meta_writer(), "B");
  EXPECT_EQ(fold.stale_records(), 0);
}

TEST(LiveChangelog, RunsALostMemberWritesAfterTheNewOwnersAreNotCommittedByItsMeta) {
  // A owned the partition and was stopped (SIGSTOP) with a batch produced but not sent; B took
  // the partition, restored from A's meta and went on; A's batch landed between B's records
  // when A resumed. B's next meta record commits B's runs only.
  ChangelogRestore fold;
  fold.Add("run-a", "a@10", "A");
  fold.Add(kMetaKey, Meta(10, 0, "mA"), "A", "");
  fold.Add("run-a", "a@20 completed", "B");
  fold.Add(kMetaKey, Meta(20, 0, "mB1"), "B", "A");
  fold.Add("run-a", "a@15 stale", "A");  // A's, produced before the stop
  fold.Add("run-z", "z@14 stale", "A");
  fold.Add("run-c", "c@25", "B");
  fold.Add(kMetaKey, Meta(25, 0, "mB2"), "B", "A");
  EXPECT_EQ(fold.runs().at("run-a"), "a@20 completed");
  EXPECT_EQ(fold.runs().count("run-z"), 0u);
  EXPECT_EQ(fold.runs().at("run-c"), "c@25");
  EXPECT_EQ(fold.meta()->next_events_offset, 25);
  EXPECT_EQ(fold.stale_records(), 2);
  EXPECT_EQ(fold.StaleKeys(), (std::vector<std::string>{"run-a", "run-z"}));
  EXPECT_TRUE(fold.TailKeys().empty());
}

TEST(LiveChangelog, AMetaALostMemberWritesAfterTheNewOwnersIsNotTheRestartPoint) {
  ChangelogRestore fold;
  fold.Add(kMetaKey, Meta(10, 3, "mA1"), "A", "");
  fold.Add("run-a", "a@20", "B");
  fold.Add(kMetaKey, Meta(20, 4, "mB1"), "B", "A");
  fold.Add("run-a", "a@15 stale", "A");
  fold.Add(kMetaKey, Meta(15, 3, "mA2"), "A", "");  // A's next batch, landed late
  EXPECT_EQ(fold.meta()->next_events_offset, 20);
  EXPECT_EQ(fold.meta()->engine_meta, "mB1");
  EXPECT_EQ(fold.runs().at("run-a"), "a@20");
  EXPECT_EQ(fold.meta_writer(), "B");
  EXPECT_EQ(fold.stale_records(), 2);  // A's run and A's meta
  // And a meta of a later owner that restored from B continues the chain.
  fold.Add("run-a", "a@30", "C");
  fold.Add(kMetaKey, Meta(30, 5, "mC1"), "C", "B");
  EXPECT_EQ(fold.meta()->next_events_offset, 30);
  EXPECT_EQ(fold.runs().at("run-a"), "a@30");
}

TEST(LiveChangelog, RecordsWithoutWritersFoldAsBeforeAndANewOwnerContinuesThem) {
  // A changelog written before the writer headers existed, then a worker that has them.
  ChangelogRestore fold;
  fold.Add("run-a", "a1");
  fold.Add(kMetaKey, Meta(5, 0, "m1"));
  fold.Add("run-a", "a2");
  fold.Add(kMetaKey, Meta(6, 0, "m2"));
  EXPECT_EQ(fold.meta_writer(), "");
  fold.Add("run-a", "a3", "B");
  fold.Add(kMetaKey, Meta(7, 0, "m3"), "B", "");
  EXPECT_EQ(fold.runs().at("run-a"), "a3");
  EXPECT_EQ(fold.meta()->next_events_offset, 7);
  EXPECT_EQ(fold.stale_records(), 0);
}

TEST(LiveChangelog, ASnapshotCountsOnlyWhenItsWriterClosesIt) {
  ChangelogRestore fold;
  fold.Add(kMetaKey, Meta(10, 0, "mA"), "A", "");
  fold.Add(kSnapshotKey, "1", "A");  // a lost member's snapshot, landed late
  fold.Add("run-a", "a", "B");
  fold.Add(kMetaKey, Meta(20, 0, "mB"), "B", "A");
  EXPECT_FALSE(fold.has_snapshot());
  fold.Add(kSnapshotKey, "1", "B");
  fold.Add("run-a", "a", "B");
  fold.Add(kMetaKey, Meta(30, 0, "mB2"), "B", "A");
  EXPECT_TRUE(fold.has_snapshot());
}

// Wall-clock ticks (changelog.h "Ticks"): what a reprocessing must apply again.

std::vector<int64_t> TickWatermarks(const ChangelogRestore& fold) {
  std::vector<int64_t> out;
  for (const ChangelogTick& t : fold.ticks()) out.push_back(t.watermark_ms);
  return out;
}

TEST(LiveChangelog, TickRoundTripsAndGarbageIsNotATick) {
  ChangelogTick out;
  ASSERT_TRUE(DecodeTick(EncodeTick({12345678901, 7, -42}), &out));
  EXPECT_EQ(out.next_events_offset, 12345678901);
  EXPECT_EQ(out.next_acks_offset, 7);
  EXPECT_EQ(out.watermark_ms, -42);
  EXPECT_FALSE(DecodeTick("", &out));
  EXPECT_FALSE(DecodeTick(Meta(1, 2, "m"), &out));
  EXPECT_FALSE(DecodeTick(EncodeTick({1, 2, 3}) + "x", &out));
  ChangelogRestore fold;
  fold.Add(kTickKey, "HDT1garbage", "A");
  EXPECT_TRUE(fold.ticks().empty());
  EXPECT_EQ(fold.bad_meta_records(), 1);
}

TEST(LiveChangelog, TicksPastTheLastMetaAreReplayedInOrder) {
  ChangelogRestore fold;
  fold.Add(kTickKey, EncodeTick({5, 1, 1000}), "A");   // before the meta's position: in its state
  fold.Add(kTickKey, EncodeTick({10, 3, 2000}), "A");  // at it: may or may not be
  fold.Add(kMetaKey, Meta(10, 3, "m1"), "A", "");
  fold.Add(kTickKey, EncodeTick({12, 3, 3000}), "A");  // the crashed batch's
  fold.Add(kTickKey, EncodeTick({12, 4, 4000}), "A");
  EXPECT_EQ(TickWatermarks(fold), (std::vector<int64_t>{2000, 3000, 4000}));
  EXPECT_EQ(fold.ticks()[1].next_events_offset, 12);
  EXPECT_EQ(fold.ticks()[2].next_acks_offset, 4);
  EXPECT_TRUE(fold.TailKeys().empty());  // ticks are not runs
  EXPECT_TRUE(fold.runs().empty());
}

TEST(LiveChangelog, ATickWrittenBeforeAMetaBeyondItsPositionIsStillReplayed) {
  // at_least_once writes a batch's meta only once its outputs and runs are acknowledged, so a
  // tick applied after the batch closed can land before the batch's meta.
  ChangelogRestore fold;
  fold.Add(kMetaKey, Meta(10, 3, "m1"), "A", "");
  fold.Add(kTickKey, EncodeTick({14, 3, 3000}), "A");
  fold.Add(kMetaKey, Meta(12, 3, "m2"), "A", "");
  EXPECT_EQ(TickWatermarks(fold), (std::vector<int64_t>{3000}));
  fold.Add(kMetaKey, Meta(14, 5, "m3"), "A", "");
  EXPECT_TRUE(fold.ticks().empty());
}

TEST(LiveChangelog, ANewOwnerKeepsThePreviousOwnersTicksItHasNotReadUpTo) {
  ChangelogRestore fold;
  fold.Add(kMetaKey, Meta(10, 3, "mA"), "A", "");
  fold.Add(kTickKey, EncodeTick({20, 3, 3000}), "A");  // A crashed after it
  fold.Add(kMetaKey, Meta(15, 3, "mB"), "B", "A");     // B's first batch, short of it
  EXPECT_EQ(TickWatermarks(fold), (std::vector<int64_t>{3000}));
  fold.Add(kTickKey, EncodeTick({25, 3, 5000}), "B");
  fold.Add(kMetaKey, Meta(22, 3, "mB2"), "B", "");
  EXPECT_EQ(TickWatermarks(fold), (std::vector<int64_t>{5000}));
}

TEST(LiveChangelog, ALostMembersTicksAreDroppedWithItsStaleMeta) {
  ChangelogRestore fold;
  fold.Add(kMetaKey, Meta(10, 3, "mA1"), "A", "");
  fold.Add(kMetaKey, Meta(20, 4, "mB1"), "B", "A");
  fold.Add(kTickKey, EncodeTick({25, 4, 3000}), "A");  // A, stopped and resumed
  fold.Add(kMetaKey, Meta(25, 4, "mA2"), "A", "");     // off the chain
  EXPECT_EQ(fold.meta()->engine_meta, "mB1");
  EXPECT_TRUE(fold.ticks().empty());
}

}  // namespace
}  // namespace handoffd

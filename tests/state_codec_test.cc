// State codec: a run with packets round-trips, and bad bytes are rejected without leaks.
#include "processor/state_codec.h"

#include <gtest/gtest.h>

namespace handoffd {
namespace {

handoffd::Run SampleRun(Interner* in) {
  handoffd::Run run;
  run.seq = 42;
  run.started_seen = true;
  run.severity = Severity::kP2;
  run.start_ts = 1000;
  run.max_ts = 5000;
  run.quiet_since = 6000;
  run.blast_users = 12;
  run.cost_usd = 0.1 + 0.2;
  run.tool_calls = 3;
  run.incidents = 2;
  run.workflow = in->Intern("refund-review");
  run.last_step = in->Intern("decide");
  for (uint64_t h : {7u, 8u, 9u}) run.seen.Insert(h, 100);
  run.steps.push_back({in->Intern("collect"), 2, 4000});
  run.extras = std::make_unique<RunExtras>();
  run.extras->attrs_json = R"({"a":1})";
  Packet& p = run.extras->packets.emplace_back();
  p.number = 2;
  p.revision = 3;
  p.failing_step = in->Intern("decide");
  p.cls = FailureClass::kBusinessJudgment;
  p.severity = Severity::kP2;
  p.stage = PacketStage::kSettled;
  p.escalation_level = 2;
  p.acked = true;
  p.acked_at = 4500;
  p.detected_at = 4000;
  p.error_summary = "needs a human";
  p.has_source = true;
  p.source_topic = "agent.events";
  p.source_offset = 17;
  p.options_json = "[]";
  run.open_packets = 1;
  return run;
}

TEST(StateCodec, RunRoundTripsWithItsPacketsAndDedupWindow) {
  Interner a;
  handoffd::Run run = SampleRun(&a);
  std::string bytes;
  EncodeRun(run, a, &bytes);

  Interner b;
  handoffd::Run back;
  ASSERT_TRUE(DecodeRun(bytes, &b, &back));
  EXPECT_EQ(back.seq, 42u);
  EXPECT_EQ(back.severity, Severity::kP2);
  EXPECT_EQ(back.quiet_since, 6000);
  EXPECT_EQ(back.blast_users, 12);
  EXPECT_EQ(back.blast_jobs, kUnknownCount);
  EXPECT_EQ(back.cost_usd, 0.1 + 0.2);
  EXPECT_EQ(b.Get(back.workflow), "refund-review");
  EXPECT_EQ(back.objective, Interner::kNone);
  ASSERT_EQ(back.seen.size(), 3u);
  EXPECT_TRUE(back.seen.Contains(8));
  ASSERT_EQ(back.steps.size(), 1u);
  EXPECT_EQ(b.Get(back.steps[0].step), "collect");
  EXPECT_EQ(back.steps[0].retries, 2u);
  ASSERT_TRUE(back.extras);
  EXPECT_EQ(back.extras->attrs_json, R"({"a":1})");
  ASSERT_EQ(back.extras->packets.size(), 1u);
  const Packet& p = back.extras->packets[0];
  EXPECT_EQ(p.cls, FailureClass::kBusinessJudgment);
  EXPECT_EQ(p.escalation_level, 2);
  EXPECT_TRUE(p.acked);
  EXPECT_EQ(p.acked_at, 4500);
  EXPECT_EQ(p.source_offset, 17);
  EXPECT_EQ(p.options_json, "[]");
  EXPECT_FALSE(p.evidence_json);
  EXPECT_EQ(back.open_packets, 1);

  std::string again;
  EncodeRun(back, b, &again);
  EXPECT_EQ(again, bytes);
  ReleaseRunStrings(&back, &b);
  EXPECT_EQ(b.size(), 0u);
  ReleaseRunStrings(&run, &a);
}

TEST(StateCodec, TruncatedTrailingOrNewerBytesAreRejectedAndLeakNoStrings) {
  Interner a;
  handoffd::Run run = SampleRun(&a);
  std::string bytes;
  EncodeRun(run, a, &bytes);
  ReleaseRunStrings(&run, &a);
  for (size_t n = 0; n < bytes.size(); ++n) {
    Interner b;
    handoffd::Run back;
    EXPECT_FALSE(DecodeRun(std::string_view(bytes).substr(0, n), &b, &back)) << n;
    ReleaseRunStrings(&back, &b);
    EXPECT_EQ(b.size(), 0u) << n;
  }
  Interner b;
  handoffd::Run back;
  EXPECT_FALSE(DecodeRun(bytes + "x", &b, &back));
  ReleaseRunStrings(&back, &b);
  std::string newer = bytes;
  newer[0] = static_cast<char>(kRunStateVersion + 1);
  handoffd::Run other;
  EXPECT_FALSE(DecodeRun(newer, &b, &other));
}

TEST(StateCodec, MetaRoundTrips) {
  EngineMeta m{123456, 125456, 99};
  EngineMeta back;
  ASSERT_TRUE(DecodeMeta(EncodeMeta(m), &back));
  EXPECT_EQ(back.watermark_ms, 123456);
  EXPECT_EQ(back.max_ts_ms, 125456);
  EXPECT_EQ(back.next_seq, 99u);
  EngineMeta unset;
  ASSERT_TRUE(DecodeMeta(EncodeMeta(unset), &back));
  EXPECT_EQ(back.watermark_ms, kNoTime);
  EXPECT_FALSE(DecodeMeta("\x01", &back));
}

}  // namespace
}  // namespace handoffd

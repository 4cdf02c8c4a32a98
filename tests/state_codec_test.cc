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
  run.steps.push_back({in->Intern("collect"), 2, 4000, 3500});
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
  p.last_success_step = in->Intern("collect");
  p.last_success_ts = 3500;
  p.resolve_at = 9000;
  p.resolve_by = "dave";
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
  EXPECT_EQ(back.steps[0].prev_succeeded_ts, 3500);
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
  EXPECT_EQ(b.Get(p.last_success_step), "collect");
  EXPECT_EQ(p.last_success_ts, 3500);
  EXPECT_EQ(p.resolve_at, 9000);
  EXPECT_EQ(p.resolve_by, "dave");
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

// Changelogs written before v2 must restore after an upgrade. These bytes are the v1 encoding
// (ff5116c) of a run with steps "collect" (3000) and "review" (4500) and one packet detected at
// 4000: it gets the latest success at or before its trigger, as v1 computed at each revision.
TEST(StateCodec, AVersion1StateDecodesAndItsPacketFindsItsLastSuccessfulStep) {
  const char kV1[] =
      "\x01\x2a\x19\x01\xd0\x0f\x90\x4e\xe0\x5d\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\xff\xff\xff"
      "\xff\xff\xff\xff\xff\xff\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00\x00\x00\x00\x00\x00"
      "\x00\x00\x00\x01\x0e\x72\x65\x66\x75\x6e\x64\x2d\x72\x65\x76\x69\x65\x77\x00\x00\x00\x00\x00"
      "\x00\x00\x02\x08\x63\x6f\x6c\x6c\x65\x63\x74\x00\xf0\x2e\x07\x72\x65\x76\x69\x65\x77\x00\xa8"
      "\x46\x00\x01\x01\x01\x07\x64\x65\x63\x69\x64\x65\x00\x00\x01\x02\x01\x00\xc0\x3e\xff\xff\xff"
      "\xff\xff\xff\xff\xff\xff\x01\x01\x78\x00\x00\x00\x00\x00\x00\x00";
  const std::string v1(kV1, sizeof kV1 - 1);
  Interner b;
  handoffd::Run back;
  ASSERT_TRUE(DecodeRun(v1, &b, &back));
  ASSERT_EQ(back.steps.size(), 2u);
  EXPECT_EQ(back.steps[1].succeeded_ts, 4500);
  EXPECT_EQ(back.steps[1].prev_succeeded_ts, kNoTime);
  ASSERT_TRUE(back.extras);
  ASSERT_EQ(back.extras->packets.size(), 1u);
  const Packet& p = back.extras->packets[0];
  EXPECT_EQ(b.Get(p.last_success_step), "collect");
  EXPECT_EQ(p.last_success_ts, 3000);
  EXPECT_EQ(p.resolve_at, kNoTime);
  std::string v2;
  EncodeRun(back, b, &v2);
  EXPECT_EQ(v2[0], static_cast<char>(kRunStateVersion));
  handoffd::Run again;
  ASSERT_TRUE(DecodeRun(v2, &b, &again));
  std::string v2_again;
  EncodeRun(again, b, &v2_again);
  EXPECT_EQ(v2_again, v2);
  ReleaseRunStrings(&back, &b);
  ReleaseRunStrings(&again, &b);
  EXPECT_EQ(b.size(), 0u);
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

// time_format: RFC 3339 parsing into epoch ms and UTC formatting with milliseconds.
#include "processor/time_format.h"

#include <gtest/gtest.h>

#include <string>

namespace handoffd {
namespace {

int64_t Parse(std::string_view text) {
  int64_t ms = -12345;
  EXPECT_TRUE(ParseRfc3339Ms(text, &ms)) << text;
  return ms;
}

bool Rejects(std::string_view text) {
  int64_t ms = -12345;
  bool ok = ParseRfc3339Ms(text, &ms);
  EXPECT_EQ(ms, -12345) << "output written on failure for " << text;
  return !ok;
}

TEST(TimeFormatTest, ParsesUtcWithAndWithoutFraction) {
  EXPECT_EQ(Parse("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(Parse("2026-11-21T02:00:00Z"), 1795226400000);
  EXPECT_EQ(Parse("2026-11-21T02:00:00.123Z"), 1795226400123);
  EXPECT_EQ(Parse("2026-11-21T02:00:00.1Z"), 1795226400100);
}

TEST(TimeFormatTest, FractionBeyondMillisecondsIsTruncated) {
  EXPECT_EQ(Parse("2026-11-21T02:00:00.123999999Z"), 1795226400123);
}

TEST(TimeFormatTest, OffsetsAreAppliedToReachUtc) {
  EXPECT_EQ(Parse("2026-11-21T03:00:00+01:00"), 1795226400000);
  EXPECT_EQ(Parse("2026-11-20T21:00:00-05:00"), 1795226400000);
  EXPECT_EQ(Parse("2026-11-21T07:45:00.500+05:45"), 1795226400500);
  EXPECT_EQ(Parse("2026-11-21T02:00:00+00:00"), Parse("2026-11-21T02:00:00-00:00"));
  // An offset can cross a day, month and year boundary.
  EXPECT_EQ(Parse("2027-01-01T00:30:00+01:00"), Parse("2026-12-31T23:30:00Z"));
}

TEST(TimeFormatTest, AcceptsRfc3339LowercaseAndSpaceSeparator) {
  EXPECT_EQ(Parse("2026-11-21t02:00:00z"), 1795226400000);
  EXPECT_EQ(Parse("2026-11-21 02:00:00Z"), 1795226400000);
}

TEST(TimeFormatTest, TimesBeforeTheEpochAreNegative) {
  EXPECT_EQ(Parse("1969-12-31T23:59:59.500Z"), -500);
  EXPECT_EQ(FormatRfc3339Ms(-500), "1969-12-31T23:59:59.500Z");
  EXPECT_EQ(FormatRfc3339Ms(-86400000), "1969-12-31T00:00:00.000Z");
}

TEST(TimeFormatTest, LeapYearsFollowTheGregorianRules) {
  EXPECT_EQ(Parse("2024-03-01T00:00:00Z") - Parse("2024-02-29T00:00:00Z"), 86400000);
  EXPECT_EQ(Parse("2000-03-01T00:00:00Z") - Parse("2000-02-29T00:00:00Z"), 86400000);
  EXPECT_TRUE(Rejects("2023-02-29T00:00:00Z"));
  EXPECT_TRUE(Rejects("1900-02-29T00:00:00Z"));  // divisible by 100, not by 400
  EXPECT_TRUE(Rejects("2024-02-30T00:00:00Z"));
}

TEST(TimeFormatTest, InvalidDatesAndTimesAreRejected) {
  for (std::string_view bad : {
           "2026-13-01T00:00:00Z",
           "2026-00-10T00:00:00Z",
           "2026-04-31T00:00:00Z",
           "2026-04-00T00:00:00Z",
           "2026-01-01T24:00:00Z",
           "2026-01-01T00:60:00Z",
           "2026-01-01T00:00:61Z",
           "2026-01-01T00:00:00+24:00",
           "2026-01-01T00:00:00+01:60",
       }) {
    EXPECT_TRUE(Rejects(bad)) << bad;
  }
}

TEST(TimeFormatTest, MalformedTextIsRejectedWithoutPartialParse) {
  for (std::string_view bad : {
           "",
           "2026",
           "2026-11-21",
           "2026-11-21T02:00:00",
           "2026-11-21T02:00Z",
           "2026-11-21T02:00:00.Z",
           "2026-11-21T02:00:00ZZ",
           "2026-11-21T02:00:00+0100",
           "2026-11-21T02:00:00+01",
           "2026-11-21T02:00:00+01:0",
           "2026-11-21X02:00:00Z",
           "2026/11/21T02:00:00Z",
           "+2026-11-21T02:00:00Z",
           " 2026-11-21T02:00:00Z",
           "2026-11-21T02:00:00Z ",
           "2026-1a-21T02:00:00Z",
           "1795226400000",
       }) {
    EXPECT_TRUE(Rejects(bad)) << bad;
  }
}

TEST(TimeFormatTest, LeapSecondIsClampedToTheLastSecondOfTheMinute) {
  EXPECT_EQ(Parse("2016-12-31T23:59:60.250Z"), Parse("2016-12-31T23:59:59.250Z"));
}

TEST(TimeFormatTest, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(FormatRfc3339Ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Ms(1795226400123), "2026-11-21T02:00:00.123Z");
  char buf[kRfc3339MsLength];
  EXPECT_EQ(FormatRfc3339Ms(1795226400007, buf), kRfc3339MsLength);
  EXPECT_EQ(std::string(buf, kRfc3339MsLength), "2026-11-21T02:00:00.007Z");
}

TEST(TimeFormatTest, RoundTripsAcrossTheWholeRange) {
  // Steps by a prime number of ms so every field and leap-year position gets exercised.
  for (int64_t ms = kMinRfc3339Ms; ms <= kMaxRfc3339Ms; ms += 7'919'977'130'021) {
    std::string text = FormatRfc3339Ms(ms);
    int64_t back = 0;
    ASSERT_TRUE(ParseRfc3339Ms(text, &back)) << text;
    EXPECT_EQ(back, ms) << text;
  }
  EXPECT_EQ(FormatRfc3339Ms(kMinRfc3339Ms), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Ms(kMaxRfc3339Ms), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(Parse("0000-01-01T00:00:00Z"), kMinRfc3339Ms);
  EXPECT_EQ(Parse("9999-12-31T23:59:59.999Z"), kMaxRfc3339Ms);
}

TEST(TimeFormatTest, OffsetsThatLeaveTheFormattableYearsAreRejected) {
  EXPECT_TRUE(Rejects("0000-01-01T00:00:00+00:01"));
  EXPECT_TRUE(Rejects("9999-12-31T23:59:59-00:01"));
}

TEST(TimeFormatTest, EveryDayOfAYearRoundTrips) {
  int64_t start = Parse("2024-01-01T12:34:56.789Z");
  for (int day = 0; day < 366; ++day) {
    int64_t ms = start + int64_t{day} * 86400000;
    int64_t back = 0;
    ASSERT_TRUE(ParseRfc3339Ms(FormatRfc3339Ms(ms), &back));
    EXPECT_EQ(back, ms);
  }
  EXPECT_EQ(FormatRfc3339Ms(start + int64_t{59} * 86400000), "2024-02-29T12:34:56.789Z");
  EXPECT_EQ(FormatRfc3339Ms(start + int64_t{365} * 86400000), "2024-12-31T12:34:56.789Z");
}

}  // namespace
}  // namespace handoffd

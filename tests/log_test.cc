// Log: one structured line per event on stderr, whatever the values contain.
#include "processor/log.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace handoffd {
namespace {

std::string Capture(LogLevel level, std::string_view msg, std::initializer_list<LogField> f) {
  ::testing::internal::CaptureStderr();
  Log(level, msg, f);
  return ::testing::internal::GetCapturedStderr();
}

TEST(LogTest, ValuesWithSpacesQuotesAndNewlinesStayOnOneQuotedLine) {
  std::string line = Capture(LogLevel::kWarn, "bad input",
                             {{"topic", "agent.events"}, {"reason", "line one\nsaid \"hi\" = x"}});
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  EXPECT_NE(line.find(" level=warn msg=\"bad input\" topic=agent.events "), std::string::npos)
      << line;
  EXPECT_NE(line.find("reason=\"line one\\nsaid \\\"hi\\\" = x\""), std::string::npos) << line;
  EXPECT_EQ(line.rfind("ts=", 0), 0u) << line;
}

TEST(LogTest, LinesBelowTheLevelAreDropped) {
  SetLogLevel(LogLevel::kWarn);
  EXPECT_EQ(Capture(LogLevel::kInfo, "chatty", {}), "");
  EXPECT_NE(Capture(LogLevel::kError, "loud", {}), "");
  SetLogLevel(LogLevel::kInfo);
}

TEST(LogTest, EmptyValuesAreWrittenAsEmptyQuotes) {
  EXPECT_NE(Capture(LogLevel::kInfo, "x", {{"k", ""}}).find(" k=\"\""), std::string::npos);
}

TEST(LogTest, LimiterWritesOneLinePerIntervalAndCountsTheRest) {
  using std::chrono::milliseconds;
  LogLimiter limiter(milliseconds(1000));
  const auto t0 = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  int64_t suppressed = -1;
  ASSERT_TRUE(limiter.Allow(t0, &suppressed));
  EXPECT_EQ(suppressed, 0);
  for (int i = 0; i < 89; ++i) EXPECT_FALSE(limiter.Allow(t0 + milliseconds(10 * i), &suppressed));
  ASSERT_TRUE(limiter.Allow(t0 + milliseconds(1000), &suppressed));
  EXPECT_EQ(suppressed, 89);  // the next line written says how many were left out
  EXPECT_FALSE(limiter.Allow(t0 + milliseconds(1500), &suppressed));
  ASSERT_TRUE(limiter.Allow(t0 + milliseconds(2100), &suppressed));
  EXPECT_EQ(suppressed, 1);
}

}  // namespace
}  // namespace handoffd

// Log: one structured line per event on stderr, whatever the values contain.
#include "processor/log.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace handoffd

// CliArgs: the flags every handoffd command takes.
#include "processor/cli_args.h"

#include <gtest/gtest.h>

namespace handoffd {
namespace {

TEST(CliArgsTest, ValueFlagsRepeatedSetsAndPositionalsAreSeparated) {
  CliArgs a = ParseCliArgs({"--config", "c.yaml", "--set", "a.b=1", "--set=c=2", "in.jsonl",
                            "--advance-to=2026-01-01T00:00:00Z"},
                           {"--config", "--advance-to"});
  EXPECT_EQ(a.Require("--config"), "c.yaml");
  EXPECT_EQ(a.Get("--advance-to"), "2026-01-01T00:00:00Z");
  EXPECT_EQ(a.sets, (std::vector<std::string>{"a.b=1", "c=2"}));
  EXPECT_EQ(a.positional, (std::vector<std::string>{"in.jsonl"}));
}

TEST(CliArgsTest, UnknownFlagIsAnErrorNamingIt) {
  try {
    ParseCliArgs({"--confg", "x"}, {"--config"});
    FAIL() << "no error";
  } catch (const CliError& e) {
    EXPECT_NE(std::string(e.what()).find("--confg"), std::string::npos);
  }
}

TEST(CliArgsTest, MissingValueAndMissingRequiredFlagAreErrors) {
  EXPECT_THROW(ParseCliArgs({"--config"}, {"--config"}), CliError);
  EXPECT_THROW(ParseCliArgs({}, {"--config"}).Require("--config"), CliError);
}

TEST(CliArgsTest, BoolFlagsTakeNoValueAndADashIsPositional) {
  CliArgs a = ParseCliArgs({"--verbose", "-"}, {}, {"--verbose"});
  EXPECT_EQ(a.Get("--verbose"), "true");
  EXPECT_EQ(a.positional, (std::vector<std::string>{"-"}));
  EXPECT_THROW(ParseCliArgs({"--verbose=yes"}, {}, {"--verbose"}), CliError);
}

}  // namespace
}  // namespace handoffd

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
  EXPECT_EQ(a.sets, (std::vector<ConfigOverride>{"a.b=1", "c=2"}));
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

// A fake environment: only PW is set.
std::optional<std::string> FakeEnv(const std::string& name) {
  if (name == "PW") return std::string("*s3cret #x");
  return std::nullopt;
}

TEST(CliArgsTest, SetEnvReadsTheVariableAndKeepsCommandLineOrder) {
  CliArgs a = ParseCliArgs(
      {"--set", "a=1", "--set-env", "kafka.properties.sasl.password=PW", "--set-env=b=PW"}, {}, {},
      FakeEnv);
  EXPECT_EQ(
      a.sets,
      (std::vector<ConfigOverride>{
          "a=1", ConfigOverride::Literal("kafka.properties.sasl.password", "*s3cret #x", "PW"),
          ConfigOverride::Literal("b", "*s3cret #x", "PW")}));
}

TEST(CliArgsTest, SetEnvOfAnUnsetVariableIsAnErrorNamingIt) {
  try {
    ParseCliArgs({"--set-env", "kafka.properties.sasl.password=NOPE"}, {}, {}, FakeEnv);
    FAIL() << "no error";
  } catch (const CliError& e) {
    EXPECT_EQ(std::string(e.what()),
              "--set-env kafka.properties.sasl.password: environment variable NOPE is not set");
  }
}

TEST(CliArgsTest, SetEnvWithAValueInsteadOfANameDoesNotEchoIt) {
  for (const char* arg : {"k=$PW", "k=hunter 2", "hunter2", "k="}) {
    try {
      ParseCliArgs({"--set-env", arg}, {}, {}, FakeEnv);
      ADD_FAILURE() << "no error for " << arg;
    } catch (const CliError& e) {
      EXPECT_EQ(std::string(e.what()).find("hunter"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("$PW"), std::string::npos) << e.what();
    }
  }
}

TEST(CliArgsTest, AStrayPositionalArgumentIsNamedInTheError) {
  ParseCliArgs({"--config", "c.yaml"}, {"--config"}).ExpectNoPositional("broker", "flags");
  try {
    ParseCliArgs({"8", "--config", "c.yaml"}, {"--config"}).ExpectNoPositional("broker", "flags");
    FAIL() << "no error";
  } catch (const CliError& e) {
    EXPECT_EQ(std::string(e.what()), "unexpected argument \"8\" (broker takes flags only)");
  }
}

}  // namespace
}  // namespace handoffd

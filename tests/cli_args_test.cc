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

TEST(CliArgsTest, AValueFlagGivenTwiceIsAnErrorNamingBothValues) {
  try {
    ParseCliArgs({"--config", "a.yaml", "--config=b.yaml"}, {"--config"});
    FAIL() << "no error";
  } catch (const CliError& e) {
    EXPECT_EQ(std::string(e.what()),
              "flag --config given twice (\"a.yaml\" and \"b.yaml\"); give it once");
  }
  // --set is meant to repeat, and a repeated bool flag changes nothing.
  CliArgs a = ParseCliArgs({"--set", "a=1", "--set", "a=2", "--keep", "--keep"}, {}, {"--keep"});
  EXPECT_EQ(a.sets.size(), 2u);
  EXPECT_EQ(a.Get("--keep"), "true");
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

TEST(CliArgsTest, NumbersMustBeWholeFiniteAndInRange) {
  CliArgs a =
      ParseCliArgs({"--rate=2.5", "--count=12", "--big=1e3"}, {"--rate", "--count", "--big"});
  EXPECT_EQ(a.GetNumber("--rate", 0), 2.5);
  EXPECT_EQ(a.GetNumber("--big", 0), 1000.0);
  EXPECT_EQ(a.GetInteger("--count", 0), 12);
  EXPECT_EQ(a.GetInteger("--absent", 0), std::nullopt);
  EXPECT_EQ(a.GetNumber("--absent", 0), std::nullopt);
  // Each of these was read by atof/atoi as a number it does not say.
  for (const char* text : {"10x", "", "ten", " 5", "nan", "inf", "1e999"}) {
    CliArgs b = ParseCliArgs({"--rate", text}, {"--rate"});
    try {
      b.GetNumber("--rate", 0);
      ADD_FAILURE() << "no error for \"" << text << "\"";
    } catch (const CliError& e) {
      EXPECT_EQ(std::string(e.what()),
                "--rate: expected a number, got \"" + std::string(text) + "\"");
    }
  }
  for (const char* text : {"4x", "", "2.5", "1e3", "99999999999999999999"}) {
    CliArgs b = ParseCliArgs({"--count", text}, {"--count"});
    EXPECT_THROW(b.GetInteger("--count", 0), CliError) << text;
  }
  CliArgs negative = ParseCliArgs({"--count=-1", "--duration=-0.5"}, {"--count", "--duration"});
  try {
    negative.GetInteger("--count", 0);
    ADD_FAILURE() << "no error";
  } catch (const CliError& e) {
    EXPECT_EQ(std::string(e.what()), "--count: must be at least 0, got -1");
  }
  EXPECT_THROW(negative.GetNumber("--duration", 0), CliError);
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

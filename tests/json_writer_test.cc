// JsonWriter: comma placement, escaping, numbers, times and null for absent values.
#include "processor/json_writer.h"

#include <gtest/gtest.h>

#include <string>

namespace handoffd {
namespace {

TEST(JsonWriter, NestedObjectsAndArraysGetCommasOnlyBetweenMembers) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("a");
  w.Int(1);
  w.Key("b");
  w.BeginArray();
  w.String("x");
  w.BeginObject();
  w.EndObject();
  w.BeginArray();
  w.EndArray();
  w.EndArray();
  w.Key("c");
  w.BeginObject();
  w.Key("d");
  w.Bool(false);
  w.EndObject();
  w.EndObject();
  EXPECT_EQ(out, R"({"a":1,"b":["x",{},[]],"c":{"d":false}})");
}

TEST(JsonWriter, StringsAreEscapedPerRfc8259) {
  std::string out;
  JsonWriter w(&out);
  w.String(std::string("q\"b\\n\nt\tc\x01z\x1f\x7f", 13));
  EXPECT_EQ(out, "\"q\\\"b\\\\n\\nt\\tc\\u0001z\\u001f\x7f\"");
}

TEST(JsonWriter, NumbersAreExactOrShortestRoundTrip) {
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  w.Int(INT64_MIN);
  w.Double(0.1 + 0.2);
  w.Double(2.0);
  w.Double(1.0 / 0.0);
  w.Tenths(775);
  w.Tenths(900);
  w.Tenths(0);
  w.EndArray();
  EXPECT_EQ(out, "[-9223372036854775808,0.30000000000000004,2,null,77.5,90.0,0.0]");
}

TEST(JsonWriter, TimesAreRfc3339UtcWithMillisecondsAndClamped) {
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  w.Time(1772416807123);
  w.Time(INT64_MAX);
  w.EndArray();
  EXPECT_EQ(out, R"(["2026-03-02T02:00:07.123Z","9999-12-31T23:59:59.999Z"])");
}

TEST(JsonWriter, AbsentOptionalsAreNullAndRawPassesThrough) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("s");
  w.StringOrNull(std::nullopt);
  w.Key("i");
  w.IntOrNull(std::optional<int64_t>(7));
  w.Key("r");
  w.RawOrNull(std::optional<std::string_view>(R"({"k":[1]})"));
  w.Key("n");
  w.RawOrNull(std::nullopt);
  w.EndObject();
  EXPECT_EQ(out, R"({"s":null,"i":7,"r":{"k":[1]},"n":null})");
}

}  // namespace
}  // namespace handoffd

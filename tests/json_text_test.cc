// json_text: the helpers that put bytes into JSON text: UTF-8 repair and base64.
#include "processor/json_text.h"

#include <gtest/gtest.h>

#include <string>

namespace handoffd {
namespace {

std::string Replacing(std::string_view s) {
  std::string out;
  AppendUtf8Replacing(&out, s);
  return out;
}

std::string Base64(std::string_view s) {
  std::string out;
  AppendBase64(&out, s);
  return out;
}

constexpr char kFffd[] = "\xEF\xBF\xBD";

// One U+FFFD per maximal subpart, as Python's bytes.decode(errors="replace") gives.
TEST(JsonTextTest, Utf8ReplacingKeepsValidTextAndReplacesEachIllFormedSubpart) {
  EXPECT_EQ(Replacing("plain \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "plain \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(Replacing("a\xFF"
                      "b"),
            std::string("a") + kFffd + "b");
  EXPECT_EQ(Replacing("\xC3"), kFffd);                                       // truncated
  EXPECT_EQ(Replacing("\xC0\xAF"), std::string(kFffd) + kFffd);              // overlong
  EXPECT_EQ(Replacing("\xED\xA0\x80"), std::string(kFffd) + kFffd + kFffd);  // surrogate
  EXPECT_EQ(Replacing("\xF4\x90\x80\x80"), std::string(kFffd) + kFffd + kFffd + kFffd);
  EXPECT_EQ(Replacing("\xE2\x82"
                      "x"),
            std::string(kFffd) + "x");  // a truncated sequence is one subpart
  EXPECT_EQ(Replacing("\xF0\x9F\x98"), kFffd);
  EXPECT_EQ(Replacing("\x80\xBF"), std::string(kFffd) + kFffd);  // lone continuation bytes
  for (std::string_view s : {"\xFF", "a\x80", "\xC3", "\xED\xA0\x80", "\xF0\x9F\x98"}) {
    EXPECT_FALSE(IsValidUtf8(s));
    EXPECT_TRUE(IsValidUtf8(Replacing(s))) << s;
  }
}

TEST(JsonTextTest, Base64IsRfc4648WithPadding) {
  // RFC 4648 section 10 test vectors.
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
  EXPECT_EQ(Base64("fo"), "Zm8=");
  EXPECT_EQ(Base64("foo"), "Zm9v");
  EXPECT_EQ(Base64("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64(std::string("\xFF\xFE\x00\x80", 4)), "//4AgA==");
}

}  // namespace
}  // namespace handoffd

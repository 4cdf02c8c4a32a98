// Interner (and the FlatIndex under it): ids, reference counting, reuse of freed ids.
#include "processor/intern.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace handoffd {
namespace {

TEST(Intern, SameTextGivesSameIdAndCountsReferences) {
  Interner in;
  uint32_t a = in.Intern("step-a");
  uint32_t b = in.Intern("step-b");
  EXPECT_NE(a, Interner::kNone);
  EXPECT_NE(a, b);
  EXPECT_EQ(in.Intern("step-a"), a);
  EXPECT_EQ(in.refs(a), 2u);
  EXPECT_EQ(in.Get(a), "step-a");
  EXPECT_EQ(in.Get(Interner::kNone), "");
  EXPECT_EQ(in.size(), 2u);
}

TEST(Intern, TextIsFreedWithItsLastReferenceAndTheIdReused) {
  Interner in;
  uint32_t a = in.Intern("once");
  in.Unref(a);
  EXPECT_EQ(in.size(), 0u);
  uint32_t b = in.Intern("other");
  EXPECT_EQ(b, a);  // id reused
  EXPECT_EQ(in.Get(b), "other");
  in.Unref(Interner::kNone);  // no-op
  EXPECT_EQ(in.size(), 1u);
}

TEST(Intern, AssignSwapsReferencesAndKeepsEqualText) {
  Interner in;
  uint32_t field = Interner::kNone;
  in.Assign(&field, "x");
  uint32_t x = field;
  in.Assign(&field, "x");
  EXPECT_EQ(field, x);
  EXPECT_EQ(in.refs(x), 1u);
  in.Assign(&field, "y");
  EXPECT_EQ(in.Get(field), "y");
  EXPECT_EQ(in.size(), 1u);  // "x" freed
}

TEST(Intern, ManyStringsSurviveGrowthAndDeletion) {
  Interner in;
  std::vector<uint32_t> ids;
  for (int i = 0; i < 5000; ++i) ids.push_back(in.Intern("s" + std::to_string(i)));
  for (int i = 0; i < 5000; i += 2) in.Unref(ids[i]);  // backward-shift deletions
  EXPECT_EQ(in.size(), 2500u);
  for (int i = 1; i < 5000; i += 2) {
    EXPECT_EQ(in.Get(ids[i]), "s" + std::to_string(i));
    EXPECT_EQ(in.Intern("s" + std::to_string(i)), ids[i]);
  }
}

TEST(Intern, HashIsStableAcrossBuilds) {
  // Stored in the changelog: a change here breaks restores of older state.
  EXPECT_EQ(Hash64(""), Hash64(std::string()));
  EXPECT_NE(Hash64("lc-1"), Hash64("lc-2"));
  EXPECT_NE(Hash64("abcdefgh1"), Hash64("abcdefgh2"));
  EXPECT_EQ(Hash64("event-0001"), 0x5d6eac7a7954c166ull) << std::hex << Hash64("event-0001");
}

// The definition the changelog's stored hashes were made with: eight bytes at a time, each word
// assembled byte by byte in little-endian order, the last partial word zero-filled.
uint64_t ReferenceHash64(std::string_view s) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;
  auto load = [](const char* p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    }
    return v;
  };
  uint64_t h = static_cast<uint64_t>(s.size()) * kMul;
  size_t i = 0;
  for (; s.size() - i >= 8; i += 8) {
    h = (h ^ load(s.data() + i, 8)) * kMul;
    h ^= h >> 29;
  }
  h = (h ^ load(s.data() + i, s.size() - i)) * kMul;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

TEST(Intern, HashOfEveryLengthMatchesTheByteByByteDefinition) {
  std::string text;
  for (size_t n = 0; n <= 40; ++n) {
    // Distinct bytes in every position, high bytes included, so a misplaced or dropped byte
    // changes the hash.
    const std::string_view s(text);
    EXPECT_EQ(Hash64(s), ReferenceHash64(s)) << n;
    text.push_back(static_cast<char>(0x31 + n * 7));
  }
  EXPECT_EQ(Hash64("\xff\x80\x01"), ReferenceHash64("\xff\x80\x01"));
}

}  // namespace
}  // namespace handoffd

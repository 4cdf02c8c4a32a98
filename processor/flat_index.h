// An open-addressing hash index from string keys to uint32 ids, for the engine's hot lookups
// (run by run_id, interned string by text). The keys live in the caller's storage: the index
// keeps only a 32-bit hash and the id per slot (8 bytes), and asks the caller for a key's text
// when hashes collide. Linear probing with backward-shift deletion (no tombstones).
// Not thread-safe. Never fails except by running out of memory on growth.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace handoffd {

namespace hash_internal {
template <typename T>
T ByteSwap(T v) {
  T r = 0;
  for (size_t i = 0; i < sizeof v; ++i) r = static_cast<T>((r << 8) | ((v >> (8 * i)) & 0xff));
  return r;
}
}  // namespace hash_internal

// 64-bit hash of a byte string, eight bytes at a time (little-endian loads, so the value is
// the same on every platform: the changelog stores hashes of event ids), with a murmur3
// finalizer so that the low bits used for buckets depend on every input byte.
inline uint64_t Hash64(std::string_view s) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;
  // Little-endian value of n <= 8 bytes at p, reading only [p, p + n). A byte-by-byte loop
  // cost ~130 instructions per id; these are whole-word loads (memcpy of a constant size
  // compiles to one mov). Shorter tails use two overlapping loads: the bytes both cover land
  // in the same positions with the same values, so OR-ing them changes nothing.
  auto load = [](const char* p, size_t n) -> uint64_t {
    auto word = [](const char* q, auto width) {
      decltype(width) v;
      std::memcpy(&v, q, sizeof v);
      if constexpr (std::endian::native == std::endian::big) v = hash_internal::ByteSwap(v);
      return static_cast<uint64_t>(v);
    };
    if (n >= 8) return word(p, uint64_t{});
    if (n >= 4) return word(p, uint32_t{}) | word(p + n - 4, uint32_t{}) << (8 * (n - 4));
    if (n == 0) return 0;
    return static_cast<uint64_t>(static_cast<unsigned char>(p[0])) |
           static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << (8 * (n / 2)) |
           static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1])) << (8 * (n - 1));
  };
  uint64_t h = static_cast<uint64_t>(s.size()) * kMul;
  const char* p = s.data();
  size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    h = (h ^ load(p, 8)) * kMul;
    h ^= h >> 29;
  }
  h = (h ^ load(p, n)) * kMul;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

class FlatIndex {
 public:
  static constexpr uint32_t kNotFound = UINT32_MAX;

  // Returns the id whose key equals `key`, or kNotFound. `key_of(id)` returns the text of an
  // id previously inserted. `hash` must be Hash64(key).
  template <typename KeyOf>
  uint32_t Find(std::string_view key, uint64_t hash, const KeyOf& key_of) const {
    if (slots_.empty()) return kNotFound;
    const uint32_t h = static_cast<uint32_t>(hash);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id_plus_one == 0) return kNotFound;
      if (s.hash == h && key_of(s.id_plus_one - 1) == key) return s.id_plus_one - 1;
    }
  }

  // REQUIRES: no entry with this key is present; id < UINT32_MAX.
  void Insert(uint64_t hash, uint32_t id);

  // Removes the entry (hash, id). No effect when absent.
  void Erase(uint64_t hash, uint32_t id);

  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }

 private:
  struct Slot {
    uint32_t hash = 0;
    uint32_t id_plus_one = 0;  // 0 = empty
  };
  void Grow();

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace handoffd

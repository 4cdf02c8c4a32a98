// Reference-counted string interning for the engine: run state refers to repeated strings
// (workflow ids, step names, owners, objectives) by a uint32 id instead of holding a
// std::string each, which keeps a run compact and the hot path free of allocations. A string
// is freed when its last reference goes, so per-run values do not accumulate after the run is
// forgotten. Not thread-safe; one Interner per Engine.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "processor/flat_index.h"

namespace handoffd {

class Interner {
 public:
  static constexpr uint32_t kNone = 0;  // "no string"; Ref/Unref/Get accept it

  // Returns the id of `text` with one more reference (a new id when unknown). Never kNone.
  uint32_t Intern(std::string_view text);
  void Ref(uint32_t id);
  // Drops one reference; the string is freed (and its id reused) at zero.
  void Unref(uint32_t id);
  // The text of a live id ("" for kNone). The view stays valid while the id holds a reference.
  std::string_view Get(uint32_t id) const {
    return id == kNone ? std::string_view() : std::string_view(entries_[id - 1].text);
  }
  uint32_t refs(uint32_t id) const { return id == kNone ? 0 : entries_[id - 1].refs; }
  // Number of live strings.
  size_t size() const { return index_.size(); }

  // Points *field at `text`, adjusting references. Cheap
  // when the field already holds that text: no hashing, no allocation.
  void Assign(uint32_t* field, std::string_view text);

 private:
  struct Entry {
    std::string text;
    uint64_t hash = 0;
    uint32_t refs = 0;
  };
  std::deque<Entry> entries_;  // id - 1; deque keeps Get() views stable as ids are added
  std::vector<uint32_t> free_ids_;
  FlatIndex index_;
};

}  // namespace handoffd

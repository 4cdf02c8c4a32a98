#include "processor/intern.h"

namespace handoffd {

uint32_t Interner::Intern(std::string_view text) {
  const uint64_t hash = Hash64(text);
  uint32_t found = index_.Find(text, hash, [this](uint32_t i) { return Get(i + 1); });
  if (found != FlatIndex::kNotFound) {
    ++entries_[found].refs;
    return found + 1;
  }
  uint32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    entries_.emplace_back();
    id = static_cast<uint32_t>(entries_.size());
  }
  Entry& e = entries_[id - 1];
  e.text.assign(text);
  e.hash = hash;
  e.refs = 1;
  index_.Insert(hash, id - 1);
  return id;
}

void Interner::Ref(uint32_t id) {
  if (id != kNone) ++entries_[id - 1].refs;
}

void Interner::Unref(uint32_t id) {
  if (id == kNone) return;
  Entry& e = entries_[id - 1];
  if (--e.refs != 0) return;
  index_.Erase(e.hash, id - 1);
  std::string().swap(e.text);  // give the memory back; long values may be per-run
  free_ids_.push_back(id);
}

void Interner::Assign(uint32_t* field, std::string_view text) {
  if (*field != kNone && Get(*field) == text) return;
  uint32_t id = Intern(text);
  Unref(*field);
  *field = id;
}

}  // namespace handoffd

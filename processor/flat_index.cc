#include "processor/flat_index.h"

namespace handoffd {

void FlatIndex::Insert(uint64_t hash, uint32_t id) {
  // Load factor at most 3/4 keeps linear probes short.
  if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
  const uint32_t h = static_cast<uint32_t>(hash);
  size_t i = h & mask_;
  while (slots_[i].id_plus_one != 0) i = (i + 1) & mask_;
  slots_[i] = {h, id + 1};
  ++size_;
}

void FlatIndex::Erase(uint64_t hash, uint32_t id) {
  if (slots_.empty()) return;
  const uint32_t h = static_cast<uint32_t>(hash);
  size_t i = h & mask_;
  for (;; i = (i + 1) & mask_) {
    if (slots_[i].id_plus_one == 0) return;
    if (slots_[i].id_plus_one == id + 1) break;
  }
  // Backward shift: move later entries of the probe chain into the hole when their home slot
  // does not lie cyclically in (hole, current].
  size_t hole = i;
  for (size_t j = (i + 1) & mask_; slots_[j].id_plus_one != 0; j = (j + 1) & mask_) {
    size_t home = slots_[j].hash & mask_;
    bool home_in_between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!home_in_between) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = Slot{};
  --size_;
}

void FlatIndex::Grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  size_t cap = old.empty() ? 16 : old.size() * 2;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  for (const Slot& s : old) {
    if (s.id_plus_one == 0) continue;
    size_t i = s.hash & mask_;
    while (slots_[i].id_plus_one != 0) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

}  // namespace handoffd

#include "processor/run_state.h"

#include <algorithm>

namespace handoffd {

bool SeenSet::Contains(uint64_t hash) const {
  const uint64_t* d = data_.get();
  bool found = false;
  for (uint32_t i = 0; i < size_; ++i) found |= d[i] == hash;
  return found;
}

bool SeenSet::Insert(uint64_t hash, uint32_t limit) {
  if (size_ >= limit) {
    // Full window: overwrite the oldest. A shrunk limit (after a config change) keeps the
    // larger window until the run is forgotten.
    data_[head_] = hash;
    head_ = (head_ + 1) % size_;
    return true;
  }
  if (size_ == capacity_) {
    uint32_t cap = std::min<uint32_t>(limit, capacity_ == 0 ? 4 : capacity_ * 2);
    auto grown = std::make_unique<uint64_t[]>(cap);
    std::copy(data_.get(), data_.get() + size_, grown.get());
    data_ = std::move(grown);
    capacity_ = cap;
  }
  data_[size_++] = hash;
  return false;
}

void SeenSet::Clear() {
  data_.reset();
  size_ = capacity_ = head_ = 0;
}

StepStat* Run::FindStep(uint32_t step_id) {
  for (StepStat& s : steps) {
    if (s.step == step_id) return &s;
  }
  return nullptr;
}

}  // namespace handoffd

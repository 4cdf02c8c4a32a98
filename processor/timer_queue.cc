#include "processor/timer_queue.h"

#include <algorithm>
#include <tuple>

namespace handoffd {
namespace {
// std heap functions build a max-heap; invert the order for a min-heap.
struct Later {
  bool operator()(const Timer& a, const Timer& b) const { return TimerQueue::Before(b, a); }
};
}  // namespace

bool TimerQueue::Before(const Timer& a, const Timer& b) {
  return std::tie(a.due_ms, a.run_seq, a.packet, a.kind) <
         std::tie(b.due_ms, b.run_seq, b.packet, b.kind);
}

void TimerQueue::Push(const Timer& t) {
  heap_.push_back(t);
  std::push_heap(heap_.begin(), heap_.end(), Later());
}

void TimerQueue::Pop() {
  std::pop_heap(heap_.begin(), heap_.end(), Later());
  heap_.pop_back();
}

}  // namespace handoffd

// The engine's event-time timers: a binary min-heap ordered by due time, then by the run's
// creation number, the packet number and the timer kind, so firing order is deterministic and
// survives a restore from the changelog (it never depends on when an entry was pushed).
// Entries are invalidated lazily: the engine checks a popped entry against run state and drops
// or re-pushes it, which keeps at most a few entries per run instead of one per event.
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace handoffd {

// Kinds, in the order they fire when due at the same time for the same packet.
enum class TimerKind : uint8_t {
  kResolve,      // a resolve stamped later than the packet's next timer (Packet::resolve_at)
  kHold,         // P1 held packet: page with override
  kEscalation2,  // ack deadline passed: escalation level 2
  kEscalation3,  // twice the first response target: level 3
  kExpiry,       // expires_at: expired or closed
  kStall,        // run without events for stall_timeout_s (packet 0)
  kRetention,    // completed run kept for late duplicates, then forgotten (packet 0)
};

struct Timer {
  int64_t due_ms = 0;
  uint64_t run_seq = 0;   // the run's creation number (stable across restore)
  uint32_t run_slot = 0;  // where the run lives in the engine
  uint32_t run_gen = 0;   // the slot's generation; a mismatch means the run is gone
  uint32_t packet = 0;    // packet number within the run; 0 for run timers
  TimerKind kind = TimerKind::kStall;
};

class TimerQueue {
 public:
  void Push(const Timer& t);
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  // REQUIRES: !empty().
  const Timer& Top() const { return heap_.front(); }
  void Pop();

  // Strict "fires before" order: due, run, packet, kind.
  static bool Before(const Timer& a, const Timer& b);

 private:
  std::vector<Timer> heap_;
};

}  // namespace handoffd

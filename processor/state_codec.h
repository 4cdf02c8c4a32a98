// The changelog encoding of engine state (live mode): one run as compact versioned bytes, and
// the engine-wide meta (watermark, max event time, run counter). Restoring from these bytes
// gives a run that behaves byte-for-byte like the one encoded, timers included.
// Format v2: a version byte, then varints, fixed 8-byte doubles/hashes and length-prefixed
// strings. Decoding checks every bound; bad bytes are a false return, never a crash. v2 added a
// step's previous success time and a packet's last successful step and pending resolve; v1
// states (written before) still decode, their packets' last successful step re-derived from the
// run's steps as v1 did.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "processor/intern.h"
#include "processor/run_state.h"

namespace handoffd {

inline constexpr uint8_t kRunStateVersion = 2;
inline constexpr uint8_t kMetaVersion = 1;

// Replaces *out with the encoding of `run` (run_id is the changelog key, not encoded; the
// catalog pointer is re-resolved on decode).
void EncodeRun(const Run& run, const Interner& strings, std::string* out);

// Fills a default-constructed *run from `bytes`, interning its strings into *strings. Returns
// false on truncated, trailing or unknown-version bytes; *run may then hold string
// references, which ReleaseRunStrings gives back.
bool DecodeRun(std::string_view bytes, Interner* strings, Run* run);

// Drops every Interner reference the run holds and zeroes the ids.
void ReleaseRunStrings(Run* run, Interner* strings);

struct EngineMeta {
  int64_t watermark_ms = kNoTime;
  int64_t max_ts_ms = kNoTime;
  uint64_t next_seq = 1;
};

std::string EncodeMeta(const EngineMeta& meta);
bool DecodeMeta(std::string_view bytes, EngineMeta* meta);

}  // namespace handoffd

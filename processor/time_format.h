// RFC 3339 timestamps to and from epoch milliseconds. Inputs carry an offset; outputs are
// always UTC with milliseconds ("2026-11-21T02:00:00.123Z"), as the contract requires.
// Pure functions, thread-safe, no allocation except the std::string overload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace handoffd {

// Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" ('t'/'z'/' ' accepted as in RFC 3339)
// into epoch ms; fractional digits beyond milliseconds are truncated. Returns false for
// anything else, including out-of-range fields (month 13, second 61) and times whose UTC
// falls outside [kMinRfc3339Ms, kMaxRfc3339Ms]; no partial parses.
bool ParseRfc3339Ms(std::string_view text, int64_t* out_ms);

inline constexpr size_t kRfc3339MsLength = 24;
// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the range FormatRfc3339Ms can spell.
inline constexpr int64_t kMinRfc3339Ms = -62167219200000;
inline constexpr int64_t kMaxRfc3339Ms = 253402300799999;

// Formats epoch ms as UTC with milliseconds. REQUIRES: out has room for kRfc3339MsLength
// chars and ms is within years 0000..9999. Returns kRfc3339MsLength.
size_t FormatRfc3339Ms(int64_t ms, char* out);
std::string FormatRfc3339Ms(int64_t ms);

}  // namespace handoffd

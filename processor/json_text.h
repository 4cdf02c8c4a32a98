// Appending JSON text to a std::string without a DOM: strings with RFC 8259 escaping
// (control characters as \u00XX), shortest round-trip doubles and exact integers.
// Pure functions; output is deterministic, byte for byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace handoffd {

// Appends `s` as a quoted JSON string. Bytes >= 0x80 are copied unchanged (UTF-8 passes
// through); invalid UTF-8 is not repaired.
void AppendJsonString(std::string* out, std::string_view s);

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF). Text that ends up in JSON output or Prometheus labels must pass this.
bool IsValidUtf8(std::string_view s);

// Appends `s` with each ill-formed UTF-8 subsequence (as IsValidUtf8 defines well-formed)
// replaced by one U+FFFD per maximal subpart (Unicode chapter 3, "U+FFFD Substitution of Maximal
// Subparts", as Python's errors="replace" and WHATWG decoders do); valid sequences are copied.
// For showing bytes that are not UTF-8 in JSON text, which must be UTF-8 (RFC 8259 8.1).
void AppendUtf8Replacing(std::string* out, std::string_view s);

// Appends `bytes` in standard base64 with padding (RFC 4648 section 4): the exact bytes, in
// JSON-safe characters.
void AppendBase64(std::string* out, std::string_view bytes);

// Appends the shortest text that round-trips `v`; non-finite values become null.
void AppendJsonDouble(std::string* out, double v);

void AppendJsonInt(std::string* out, int64_t v);

}  // namespace handoffd

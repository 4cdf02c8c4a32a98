#include "processor/json_text.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>

namespace handoffd {

bool IsValidUtf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the current run of bytes that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out->append(esc, 6);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

namespace {

// At s[i]: the length of the well-formed UTF-8 sequence there (RFC 3629 section 4; *valid
// true), or else of the maximal subpart of one (the longest prefix that some well-formed
// sequence starts with, at least one byte; *valid false).
size_t Utf8Step(std::string_view s, size_t i, bool* valid) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned c = byte(i);
  *valid = true;
  if (c < 0x80) return 1;
  size_t need = 0;  // continuation bytes
  unsigned lo = 0x80;
  unsigned hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;  // no overlong forms
    if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    *valid = false;  // 80..C1, F5..FF never start a sequence
    return 1;
  }
  size_t n = 1;
  for (; n <= need && i + n < s.size() && byte(i + n) >= lo && byte(i + n) <= hi; ++n) {
    lo = 0x80;
    hi = 0xBF;
  }
  *valid = n > need;
  return n;
}

}  // namespace

void AppendUtf8Replacing(std::string* out, std::string_view s) {
  size_t run = 0;  // start of the current run of valid bytes
  for (size_t i = 0; i < s.size();) {
    bool valid = false;
    size_t n = Utf8Step(s, i, &valid);
    if (!valid) {
      out->append(s.data() + run, i - run);
      out->append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
      run = i + n;
    }
    i += n;
  }
  out->append(s.data() + run, s.size() - run);
}

void AppendBase64(std::string* out, std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                 static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                 static_cast<unsigned char>(bytes[i + 2]);
    char quad[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
                    kAlphabet[v & 63]};
    out->append(quad, 4);
  }
  size_t left = bytes.size() - i;
  if (left == 0) return;
  uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
  if (left == 2) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
  char quad[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63],
                  left == 2 ? kAlphabet[(v >> 6) & 63] : '=', '='};
  out->append(quad, 4);
}

void AppendJsonDouble(std::string* out, double v) {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, res.ptr);
}

void AppendJsonInt(std::string* out, int64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, res.ptr);
}

}  // namespace handoffd

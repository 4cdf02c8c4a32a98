// A streaming JSON writer for packets and audit records: appends to a caller-owned std::string
// that is reused across records, so the steady state does not allocate. It places commas and
// colons; escaping and number formatting come from processor/json_text.h. The caller writes
// well-formed structures (keys only inside objects); nothing is validated. Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace handoffd {

class JsonWriter {
 public:
  // REQUIRES: out outlives the writer. Appends; does not clear `out`.
  explicit JsonWriter(std::string* out) : out_(out) {}

  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  void Key(std::string_view key);
  void String(std::string_view s);
  void Int(int64_t v);
  // Shortest round-trip text; non-finite values are written as null.
  void Double(double v);
  // A number with exactly one decimal from tenths: 775 -> 77.5, 900 -> 90.0.
  void Tenths(int64_t tenths);
  void Bool(bool v);
  void Null();
  // REQUIRES: json is one valid JSON value (passed-through input such as attrs).
  void Raw(std::string_view json);
  // RFC 3339 UTC with milliseconds; clamped to years 0000..9999.
  void Time(int64_t ms);

  // Null when absent.
  void StringOrNull(const std::optional<std::string_view>& s);
  void IntOrNull(const std::optional<int64_t>& v);
  void RawOrNull(const std::optional<std::string_view>& json);

 private:
  void BeforeValue();

  std::string* out_;
  bool need_comma_ = false;
  bool after_key_ = false;
};

}  // namespace handoffd

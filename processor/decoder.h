// Decodes and validates one input record (JSON bytes) into an Event with simdjson ondemand.
// Bad input is a value, never an exception: the result names the DLQ reason of contract
// section 11 ("oversized", "invalid_json", "not_object", "missing_field:<f>", "wrong_type:<f>",
// "bad_timestamp"). One Decoder per thread; it reuses its parser and buffers across records.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "processor/event.h"

namespace handoffd {

// Parses RFC 3339 with offset ("2026-11-21T02:00:00.123Z", "...+02:00") into epoch ms.
// Returns false for anything else (no partial parses).
bool ParseRfc3339Ms(std::string_view text, int64_t* out_ms);

// Formats epoch ms as RFC 3339 UTC with milliseconds ("2026-11-21T02:00:00.123Z").
// REQUIRES: out has room for 24 chars. Returns the length written (24).
size_t FormatRfc3339Ms(int64_t ms, char* out);
std::string FormatRfc3339Ms(int64_t ms);

class Decoder {
 public:
  explicit Decoder(int64_t max_event_bytes);

  // Decodes `bytes`. On success returns an empty string_view and fills *out; the views in *out
  // stay valid until the next Decode call or until `bytes` is freed, whichever comes first.
  // On failure returns the DLQ reason (a view into static or member storage, valid until the
  // next Decode call) and *out is unspecified.
  // Never throws, never aborts, for any input bytes.
  std::string_view Decode(std::string_view bytes, Event* out);

 private:
  int64_t max_event_bytes_;
  simdjson::ondemand::parser parser_;
  std::string padded_;  // input copy with SIMDJSON_PADDING, reused
  std::string reason_;  // storage for composed reasons ("missing_field:error.code")
};

}  // namespace handoffd

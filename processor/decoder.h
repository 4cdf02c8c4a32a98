// Decodes and validates one input record (JSON bytes) into an Event with simdjson ondemand.
// Bad input is a value, never an exception: the result names the DLQ reason of contract
// section 11 ("oversized", "invalid_json", "not_object", "missing_field:<f>", "wrong_type:<f>",
// "bad_timestamp"). One Decoder per thread; it reuses its parser and buffers across records.
// A repeated key: the last occurrence wins. JSON null counts as absent (for a required field
// that is missing_field:<f>).
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "processor/event.h"
#include "processor/time_format.h"

namespace handoffd {

// Every reason Decoder::Decode can return, in the contract's order: "oversized",
// "invalid_json", "not_object", missing_field:<f> for each field an event can lack (envelope and
// required fields), wrong_type:<f> for each field whose type is checked, "bad_timestamp". The
// metrics create their DLQ counters at zero from this list. Built once; thread-safe.
const std::vector<std::string>& DecoderReasons();

class Decoder {
 public:
  // `fast_path` false decodes every record with simdjson ondemand alone: the reference the
  // fast path (a strict scanner for the common shape, see decoder.cc) is tested against.
  // Results are the same either way.
  explicit Decoder(int64_t max_event_bytes, bool fast_path = true);

  // Decodes `bytes`. On success returns an empty string_view and fills *out; the views in *out
  // stay valid until the next Decode call or until `bytes` is freed, whichever comes first.
  // On failure returns the DLQ reason (a view into static or member storage, valid until the
  // next Decode call) and *out is unspecified.
  // Never throws, never aborts, for any input bytes.
  std::string_view Decode(std::string_view bytes, Event* out);

  // As Decode, without copying: for callers whose buffer already has simdjson's padding.
  // REQUIRES: `allocated` >= bytes.size() + simdjson::SIMDJSON_PADDING bytes are readable from
  // bytes.data(). Views in *out point into `bytes` or the Decoder, valid as for Decode.
  std::string_view DecodePadded(std::string_view bytes, size_t allocated, Event* out);

  // After a failed Decode: true when the envelope (event_id, run_id, type, ts) was valid and the
  // failure is in the type's own fields; out->run_id, out->type and out->ts_ms are then set, so
  // the caller can still move the watermark (contract section 11). False after a success.
  bool envelope_valid() const { return envelope_valid_; }

 private:
  int64_t max_event_bytes_;
  bool fast_path_;
  simdjson::ondemand::parser parser_;
  std::string padded_;  // input copy with SIMDJSON_PADDING, reused
  std::string reason_;  // storage for composed reasons ("missing_field:error.code")
  bool envelope_valid_ = false;

 public:
  // The last "YYYY-MM-DDTHH" of a UTC timestamp and its epoch ms: consecutive events mostly
  // share it, so only minutes, seconds and milliseconds need parsing. Internal to decoder.cc.
  struct HourCache {
    char prefix[13] = {};
    int64_t ms = 0;
    bool valid = false;
  };

 private:
  HourCache hour_cache_;
};

}  // namespace handoffd

// libFuzzer target: any bytes into Decoder::Decode must give success or a DLQ reason of
// contract section 11, never a crash, a sanitizer report, or a view outside its buffers; and the
// decoder's fast path must decode exactly as simdjson ondemand alone (differential check).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "processor/decoder.h"
#include "tests/decode_outcome.h"
#include "tests/fuzz/touch.h"

namespace {

bool KnownReason(std::string_view r) {
  return r == "oversized" || r == "invalid_json" || r == "not_object" || r == "bad_timestamp" ||
         r.starts_with("missing_field:") || r.starts_with("wrong_type:");
}

using handoffd::fuzz::Touch;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A small limit so "oversized" is reachable; the Decoder is reused like in production.
  static handoffd::Decoder decoder(4096);
  static handoffd::Decoder fast(4096, /*fast_path=*/true);
  static handoffd::Decoder reference(4096, /*fast_path=*/false);
  handoffd::Event event;
  std::string input(reinterpret_cast<const char*>(data), size);
  if (handoffd::Outcome(&fast, input) != handoffd::Outcome(&reference, input)) std::abort();
  std::string_view reason = decoder.Decode(input, &event);
  input.assign(input.size(), 'X');  // views must not point into the caller's bytes
  if (!reason.empty()) {
    if (!KnownReason(reason)) std::abort();
    return 0;
  }
  if (event.run_id.empty() || event.run_id.size() > 256) std::abort();
  if (!event.IsAck() && event.event_id.empty()) std::abort();
  volatile size_t sink = Touch(event.type_name) + Touch(event.event_id) + Touch(event.run_id) +
                         Touch(event.step) + Touch(event.attrs_json) + Touch(event.options_json) +
                         Touch(event.evidence_json) + Touch(event.owner_primary) +
                         Touch(event.error_code) + Touch(event.tool) + Touch(event.reason);
  (void)sink;
  if (event.attrs_json && (event.attrs_json->front() != '{' || event.attrs_json->back() != '}')) {
    std::abort();
  }
  if (event.options_json &&
      (event.options_json->front() != '[' || event.options_json->back() != ']')) {
    std::abort();
  }
  return 0;
}

#include "processor/decoder.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace handoffd {
namespace {

namespace od = simdjson::ondemand;

// Every top-level key the decoder knows, plus the subfields of `owner`, `blast_radius` and
// `error`. The first pass fills one Slot per field; validation then reads the slots in the
// order of contract section 11.
enum Field : uint8_t {
  kEventId,
  kRunId,
  kType,
  kTs,
  kWorkflowId,
  kStep,
  kObjective,
  kRecommendedAction,
  kRollbackCommand,
  kOwner,
  kOwnerPrimary,
  kOwnerBackup,
  kBlastRadius,
  kBlastRadiusUsers,
  kBlastRadiusJobs,
  kAttrs,
  kCostUsd,
  kSeverity,
  kError,
  kErrorCode,
  kErrorMessage,
  kRetryable,
  kTool,
  kStatus,
  kSideEffect,
  kTokens,
  kDurationMs,
  kConfidence,
  kAction,
  kRisk,
  kAmount,
  kReason,
  kHandoffType,
  kOptions,
  kEvidence,
  kOwnerRole,
  kNextActionAfterDecision,
  kOutcome,
  kPacketId,
  kBy,
  kFieldCount,
  kNoField = kFieldCount,
};
static_assert(kFieldCount <= 64, "presence is a 64-bit mask");

constexpr uint64_t Bit(Field f) { return uint64_t{1} << f; }

// For each field, its presence bit and those of its subfields: a repeated key or a null clears
// them together, in one operation.
constexpr auto kFieldAndChildren = [] {
  std::array<uint64_t, kFieldCount> m{};
  for (int f = 0; f < kFieldCount; ++f) m[f] = Bit(static_cast<Field>(f));
  m[kOwner] |= Bit(kOwnerPrimary) | Bit(kOwnerBackup);
  m[kBlastRadius] |= Bit(kBlastRadiusUsers) | Bit(kBlastRadiusJobs);
  m[kError] |= Bit(kErrorCode) | Bit(kErrorMessage);
  return m;
}();

// Wire names, with dotted names for subfields, as they appear in DLQ reasons.
constexpr std::string_view kFieldNames[kFieldCount] = {
    "event_id",
    "run_id",
    "type",
    "ts",
    "workflow_id",
    "step",
    "objective",
    "recommended_action",
    "rollback_command",
    "owner",
    "owner.primary",
    "owner.backup",
    "blast_radius",
    "blast_radius.users",
    "blast_radius.jobs",
    "attrs",
    "cost_usd",
    "severity",
    "error",
    "error.code",
    "error.message",
    "retryable",
    "tool",
    "status",
    "side_effect",
    "tokens",
    "duration_ms",
    "confidence",
    "action",
    "risk",
    "amount",
    "reason",
    "handoff_type",
    "options",
    "evidence",
    "owner_role",
    "next_action_after_decision",
    "outcome",
    "packet_id",
    "by",
};

// The JSON kind of a field's value. Null is recorded as absent (contract: null = absent).
// kBigInt: an integer literal outside int64 (d holds its nearest double); kHugeNumber: a valid
// JSON number beyond the double range (1e400), which no field accepts.
enum class Kind : uint8_t { kString, kInt, kBigInt, kDouble, kHugeNumber, kBool, kObject, kArray };

// Plain data so that a Fields on the stack costs nothing to create: only slots whose presence
// bit is set are ever read.
struct Slot {
  Kind kind;
  bool b;             // kBool: the value; kObject/kArray: the shape is right (see ReadShaped)
  uint32_t text_len;  // kString: the unescaped value; kObject/kArray: the raw JSON text
  const char* text_ptr;
  int64_t i;  // kInt
  double d;   // kInt, kBigInt, kDouble

  std::string_view text() const { return {text_ptr, text_len}; }
  void set_text(std::string_view t) {
    text_ptr = t.data();
    text_len = static_cast<uint32_t>(t.size());
  }
};

// k == lit for a k already known to have lit's length: a constant-size compare the compiler
// turns into a few loads instead of a memcmp call.
template <size_t N>
bool Is(std::string_view k, const char (&lit)[N]) {
  return std::memcmp(k.data(), lit, N - 1) == 0;
}

// Top-level key -> field. Dispatches on length first so each key costs one or two compares.
Field TopLevelField(std::string_view k) {
  switch (k.size()) {
    case 2:
      if (Is(k, "ts")) return kTs;
      if (Is(k, "by")) return kBy;
      break;
    case 4:
      if (Is(k, "type")) return kType;
      if (Is(k, "step")) return kStep;
      if (Is(k, "tool")) return kTool;
      if (Is(k, "risk")) return kRisk;
      break;
    case 5:
      if (Is(k, "error")) return kError;
      if (Is(k, "owner")) return kOwner;
      if (Is(k, "attrs")) return kAttrs;
      break;
    case 6:
      if (Is(k, "run_id")) return kRunId;
      if (Is(k, "status")) return kStatus;
      if (Is(k, "reason")) return kReason;
      if (Is(k, "action")) return kAction;
      if (Is(k, "amount")) return kAmount;
      if (Is(k, "tokens")) return kTokens;
      break;
    case 7:
      if (Is(k, "outcome")) return kOutcome;
      if (Is(k, "options")) return kOptions;
      break;
    case 8:
      if (Is(k, "event_id")) return kEventId;
      if (Is(k, "cost_usd")) return kCostUsd;
      if (Is(k, "severity")) return kSeverity;
      if (Is(k, "evidence")) return kEvidence;
      break;
    case 9:
      if (Is(k, "objective")) return kObjective;
      if (Is(k, "retryable")) return kRetryable;
      if (Is(k, "packet_id")) return kPacketId;
      break;
    case 10:
      if (Is(k, "confidence")) return kConfidence;
      if (Is(k, "owner_role")) return kOwnerRole;
      break;
    case 11:
      if (Is(k, "workflow_id")) return kWorkflowId;
      if (Is(k, "side_effect")) return kSideEffect;
      if (Is(k, "duration_ms")) return kDurationMs;
      break;
    case 12:
      if (Is(k, "blast_radius")) return kBlastRadius;
      if (Is(k, "handoff_type")) return kHandoffType;
      break;
    case 16:
      if (Is(k, "rollback_command")) return kRollbackCommand;
      break;
    case 18:
      if (Is(k, "recommended_action")) return kRecommendedAction;
      break;
    case 26:
      if (Is(k, "next_action_after_decision")) return kNextActionAfterDecision;
      break;
    default:
      break;
  }
  return kNoField;
}

// The same for a key still in the input, read from just after its opening quote: compares the
// name and its closing quote, so no scan for the key's end is needed. Returns kNoField when
// the key is unknown or escaped; the caller then takes the slow path. Reading a literal's
// length past the key stays within the document's padding.
template <size_t N>
bool RawIs(const char* raw, const char (&lit)[N]) {
  // The first 8 bytes as one word (most mismatches end there), then the rest if any.
  constexpr size_t kHead = N - 1 < 8 ? N - 1 : 8;
  uint64_t a = 0;
  uint64_t b = 0;
  std::memcpy(&a, raw, kHead);
  std::memcpy(&b, lit, kHead);
  if (a != b) return false;
  if constexpr (N - 1 > 8) return std::memcmp(raw + 8, lit + 8, N - 1 - 8) == 0;
  return true;
}

Field RawTopLevelField(const char* r) {
  switch (r[0]) {
    case 'a':
      if (RawIs(r, "attrs\"")) return kAttrs;
      if (RawIs(r, "action\"")) return kAction;
      if (RawIs(r, "amount\"")) return kAmount;
      break;
    case 'b':
      if (RawIs(r, "by\"")) return kBy;
      if (RawIs(r, "blast_radius\"")) return kBlastRadius;
      break;
    case 'c':
      if (RawIs(r, "cost_usd\"")) return kCostUsd;
      if (RawIs(r, "confidence\"")) return kConfidence;
      break;
    case 'd':
      if (RawIs(r, "duration_ms\"")) return kDurationMs;
      break;
    case 'e':
      if (RawIs(r, "event_id\"")) return kEventId;
      if (RawIs(r, "error\"")) return kError;
      if (RawIs(r, "evidence\"")) return kEvidence;
      break;
    case 'h':
      if (RawIs(r, "handoff_type\"")) return kHandoffType;
      break;
    case 'n':
      if (RawIs(r, "next_action_after_decision\"")) return kNextActionAfterDecision;
      break;
    case 'o':
      if (RawIs(r, "objective\"")) return kObjective;
      if (RawIs(r, "owner\"")) return kOwner;
      if (RawIs(r, "outcome\"")) return kOutcome;
      if (RawIs(r, "options\"")) return kOptions;
      if (RawIs(r, "owner_role\"")) return kOwnerRole;
      break;
    case 'p':
      if (RawIs(r, "packet_id\"")) return kPacketId;
      break;
    case 'r':
      if (RawIs(r, "run_id\"")) return kRunId;
      if (RawIs(r, "reason\"")) return kReason;
      if (RawIs(r, "retryable\"")) return kRetryable;
      if (RawIs(r, "risk\"")) return kRisk;
      if (RawIs(r, "recommended_action\"")) return kRecommendedAction;
      if (RawIs(r, "rollback_command\"")) return kRollbackCommand;
      break;
    case 's':
      if (RawIs(r, "step\"")) return kStep;
      if (RawIs(r, "status\"")) return kStatus;
      if (RawIs(r, "severity\"")) return kSeverity;
      if (RawIs(r, "side_effect\"")) return kSideEffect;
      break;
    case 't':
      if (RawIs(r, "ts\"")) return kTs;
      if (RawIs(r, "type\"")) return kType;
      if (RawIs(r, "tool\"")) return kTool;
      if (RawIs(r, "tokens\"")) return kTokens;
      break;
    case 'w':
      if (RawIs(r, "workflow_id\"")) return kWorkflowId;
      break;
    default:
      break;
  }
  return kNoField;
}

// The event type from its wire name, without the linear scan of ParseEventType.
EventType FastEventType(std::string_view t) {
  switch (t.size()) {
    case 8:
      if (Is(t, "decision")) return EventType::kDecision;
      break;
    case 9:
      if (Is(t, "heartbeat")) return EventType::kHeartbeat;
      if (Is(t, "tool_call")) return EventType::kToolCall;
      break;
    case 11:
      if (Is(t, "run_started")) return EventType::kRunStarted;
      if (Is(t, "step_failed")) return EventType::kStepFailed;
      break;
    case 12:
      if (Is(t, "step_started")) return EventType::kStepStarted;
      break;
    case 13:
      if (Is(t, "run_completed")) return EventType::kRunCompleted;
      break;
    case 14:
      if (Is(t, "step_succeeded")) return EventType::kStepSucceeded;
      break;
    case 16:
      if (Is(t, "handoff_resolved")) return EventType::kHandoffResolved;
      break;
    case 17:
      if (Is(t, "handoff_requested")) return EventType::kHandoffRequested;
      break;
    case 20:
      if (Is(t, "handoff_acknowledged")) return EventType::kHandoffAcknowledged;
      break;
    default:
      break;
  }
  return EventType::kUnknown;
}

// Subfield of an object-valued field, or kNoField.
Field SubField(Field parent, std::string_view k) {
  switch (parent) {
    case kOwner:
      if (k == "primary") return kOwnerPrimary;
      if (k == "backup") return kOwnerBackup;
      break;
    case kBlastRadius:
      if (k == "users") return kBlastRadiusUsers;
      if (k == "jobs") return kBlastRadiusJobs;
      break;
    case kError:
      if (k == "code") return kErrorCode;
      if (k == "message") return kErrorMessage;
      break;
    default:
      break;
  }
  return kNoField;
}

// True when the whole document has been consumed (ondemand reports OUT_OF_BOUNDS for the
// location past the last token).
bool AtEnd(od::document* doc) { return doc->current_location().error() == simdjson::OUT_OF_BOUNDS; }

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Whether s holds a backslash, 16 bytes at a time with SSE2 (8 with plain words elsewhere):
// cheaper than memchr for short strings. Reads up to 15 bytes past the end, which the closing
// quote and the document's padding (SIMDJSON_PADDING >= 16) cover.
bool HasBackslash(std::string_view s) {
  static_assert(simdjson::SIMDJSON_PADDING >= 16);
  const char* p = s.data();
#if defined(__SSE2__)
  const __m128i backslashes = _mm_set1_epi8('\\');
  for (size_t left = s.size(); left > 0; left = left > 16 ? left - 16 : 0, p += 16) {
    __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    auto mask = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, backslashes)));
    if (left < 16) mask &= (uint32_t{1} << left) - 1;
    if (mask != 0) return true;
  }
  return false;
#else
  static_assert(std::endian::native == std::endian::little);
  constexpr uint64_t kOnes = 0x0101010101010101;
  constexpr uint64_t kHigh = 0x8080808080808080;
  constexpr uint64_t kBackslashes = kOnes * '\\';
  for (size_t left = s.size(); left > 0; left = left > 8 ? left - 8 : 0, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    uint64_t x = w ^ kBackslashes;          // backslash bytes become zero
    uint64_t m = (x - kOnes) & ~x & kHigh;  // exact for the first zero byte; any later false hit
    if (left < 8) m &= (uint64_t{1} << (left * 8)) - 1;  // follows a real one, or is masked
    if (m != 0) return true;
  }
  return false;
#endif
}

// A string value. Without escapes (the common case) it is a view into the input, with no copy;
// with escapes simdjson unescapes it into the parser's string buffer. Both live until the next
// document. Stage 1 already checked UTF-8, control characters and that the string is closed.
simdjson::error_code ReadString(od::value& v, std::string_view* out) {
  std::string_view token = v.raw_json_token();  // the quoted string, maybe trailing whitespace
  const char* begin = token.data() + 1;
  const char* end = token.data() + token.size();
  while (end > begin && IsJsonSpace(end[-1])) --end;
  if (end > begin && end[-1] == '"') {
    std::string_view content(begin, static_cast<size_t>(end - 1 - begin));
    if (!HasBackslash(content)) {
      od::raw_json_string raw;
      if (auto e = v.get_raw_json_string().get(raw)) return e;
      *out = content;
      return simdjson::SUCCESS;
    }
  }
  return v.get_string().get(*out);
}

// An object key, with the same fast path: keys are almost never escaped.
simdjson::error_code ReadKey(od::field& field, std::string_view* out) {
  const char* begin = field.key().raw();
  const char* end = begin;
  while (*end != '"' && *end != '\\') ++end;  // stage 1 guarantees a closing quote
  if (*end == '"') {
    *out = std::string_view(begin, static_cast<size_t>(end - begin));
    return simdjson::SUCCESS;
  }
  return field.unescaped_key().get(*out);
}

// Whether `t` (a number's token, trailing whitespace allowed) is a JSON number (RFC 8259
// section 6): simdjson's get_number() fails alike on "1.e5" and on valid numbers it cannot hold.
bool IsJsonNumber(std::string_view t) {
  while (!t.empty() && IsJsonSpace(t.back())) t.remove_suffix(1);
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < t.size() && static_cast<unsigned>(t[i] - '0') <= 9) ++i;
    return i > start;
  };
  if (i < t.size() && t[i] == '-') ++i;
  if (i < t.size() && t[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < t.size() && t[i] == '.' && (++i, !digits())) return false;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == t.size();
}

// The nearest double to a number token (grammar already checked, trailing whitespace allowed),
// correctly rounded: ±inf beyond the double range, ±0 below it. For the tokens simdjson 3.0.1
// reads wrong (more than 19 significant digits: get_number() returns garbage, and get_double()
// too for "0." followed by them) and those it refuses; std::from_chars is exact.
double ParseJsonDouble(std::string_view t) {
  while (!t.empty() && IsJsonSpace(t.back())) t.remove_suffix(1);
  double d = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
  if (ec == std::errc()) return d;
  // Out of range (value left unset): overflow or underflow, by the decimal exponent of the
  // first significant digit.
  const bool negative = !t.empty() && t[0] == '-';
  size_t i = negative ? 1 : 0;
  int64_t magnitude = 0;
  bool significant = false;
  for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
    significant = significant || t[i] != '0';
    magnitude += significant;
  }
  if (i < t.size() && t[i] == '.') {
    for (++i; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
      significant = significant || t[i] != '0';
      magnitude -= !significant;
    }
  }
  int64_t exponent = 0;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    const bool negative_exponent = i < t.size() && t[i] == '-';
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
      exponent = std::min<int64_t>(exponent * 10 + (t[i] - '0'), int64_t{1} << 40);
    }
    if (negative_exponent) exponent = -exponent;
  }
  d = magnitude + exponent > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  return negative ? -d : d;
}

// After get_number() failed on `v` with `error`: a valid JSON number simdjson cannot hold (an
// integer outside [-2^63, 2^64), a value beyond the double range) is a value, not invalid_json.
// Returns `error` when the token is malformed; else SUCCESS with *kind kBigInt (integer
// literals, *d the nearest double), kDouble (*d) or kHugeNumber.
simdjson::error_code ReadOutOfRangeNumber(od::value& v, simdjson::error_code error, Kind* kind,
                                          double* d) {
  std::string_view token = v.raw_json_token();
  if (!IsJsonNumber(token)) return error;
  *d = ParseJsonDouble(token);
  if (std::isinf(*d)) {
    *kind = Kind::kHugeNumber;
  } else {
    *kind = token.find_first_of(".eE") == std::string_view::npos ? Kind::kBigInt : Kind::kDouble;
  }
  return simdjson::SUCCESS;
}

// How deep containers may nest, the root object being level 1. ondemand keeps no depth limit of
// its own in release builds (it asserts in debug ones), and SkipValue recurses once per level: a
// record of a million '[' must be refused, not overflow the stack. Deeper events are invalid_json.
constexpr int kMaxNesting = 1000;
static_assert(kMaxNesting < static_cast<int>(simdjson::DEFAULT_MAX_DEPTH));
constexpr int kTopLevelDepth = 2;  // the values of the root object's fields (or root array's)

// Consumes one value of any kind at nesting level `depth`, checking that it is well-formed JSON
// (ondemand only checks what is read, so values nobody reads would otherwise pass unchecked).
simdjson::error_code SkipValue(od::value v, int depth) {
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  switch (t) {
    case od::json_type::object: {
      if (depth > kMaxNesting) return simdjson::DEPTH_ERROR;
      od::object obj;
      if (auto e = v.get_object().get(obj)) return e;
      for (auto f : obj) {
        od::field field;
        if (auto e = std::move(f).get(field)) return e;
        std::string_view key;
        if (auto e = ReadKey(field, &key)) return e;
        if (auto e = SkipValue(field.value(), depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::array: {
      if (depth > kMaxNesting) return simdjson::DEPTH_ERROR;
      od::array arr;
      if (auto e = v.get_array().get(arr)) return e;
      for (auto el : arr) {
        od::value item;
        if (auto e = std::move(el).get(item)) return e;
        if (auto e = SkipValue(item, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::number: {
      simdjson::error_code e = v.get_number().error();
      if (e) {
        Kind kind;
        double d;
        return ReadOutOfRangeNumber(v, e, &kind, &d);
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::string: {
      std::string_view unused;
      return ReadString(v, &unused);
    }
    case od::json_type::boolean:
      return v.get_bool().error();
    case od::json_type::null: {
      bool is_null = false;
      if (auto e = v.is_null().get(is_null)) return e;
      return is_null ? simdjson::SUCCESS : simdjson::TAPE_ERROR;
    }
  }
  return simdjson::TAPE_ERROR;
}

// Everything the first pass saw: which fields were present (non-null) and their values.
struct Fields {
  uint64_t present = 0;
  Slot slot[kFieldCount];

  bool Has(Field f) const { return (present >> f) & 1; }
  const Slot& Get(Field f) const { return slot[f]; }
  Slot& Set(Field f, Kind kind) {
    present |= uint64_t{1} << f;
    slot[f].kind = kind;
    return slot[f];
  }
};

class FirstPass {
 public:
  FirstPass(od::document* doc, Fields* fields) : doc_(doc), fields_(fields) {}

  // Reads one value into the slot of `f` (or only checks it when f is kNoField). Objects and
  // arrays keep their raw text; the subfields of owner/blast_radius/error get their own slots.
  // `depth` is v's nesting level (the root object's fields are at 2).
  simdjson::error_code Read(Field f, od::value v, int depth) {
    if (f == kNoField) return SkipValue(v, depth);
    ClearWithChildren(f);  // a repeated key replaces the earlier value entirely
    od::json_type t;
    if (auto e = v.type().get(t)) return e;
    switch (t) {
      case od::json_type::string: {
        std::string_view s;
        if (auto e = ReadString(v, &s)) return e;
        fields_->Set(f, Kind::kString).set_text(s);
        return simdjson::SUCCESS;
      }
      case od::json_type::number: {
        od::number n;
        if (auto e = v.get_number().get(n)) {  // rare: out of range, or not a number at all
          Kind kind;
          double d = 0;
          if ((e = ReadOutOfRangeNumber(v, e, &kind, &d))) return e;
          fields_->Set(f, kind).d = d;
          return simdjson::SUCCESS;
        }
        switch (n.get_number_type()) {
          case od::number_type::signed_integer: {
            Slot& s = fields_->Set(f, Kind::kInt);
            s.i = n.get_int64();
            s.d = static_cast<double>(s.i);
            break;
          }
          case od::number_type::unsigned_integer:
            fields_->Set(f, Kind::kBigInt).d = n.as_double();
            break;
          case od::number_type::floating_point_number: {
            // More than 19 significant digits, which simdjson 3.0.1 reads wrong (see
            // ParseJsonDouble), take at least 21 bytes.
            std::string_view token = v.raw_json_token();
            fields_->Set(f, Kind::kDouble).d =
                token.size() > 20 ? ParseJsonDouble(token) : n.get_double();
            break;
          }
        }
        return simdjson::SUCCESS;
      }
      case od::json_type::boolean: {
        bool b = false;
        if (auto e = v.get_bool().get(b)) return e;
        fields_->Set(f, Kind::kBool).b = b;
        return simdjson::SUCCESS;
      }
      case od::json_type::null: {
        bool is_null = false;
        if (auto e = v.is_null().get(is_null)) return e;
        if (!is_null) return simdjson::TAPE_ERROR;
        return simdjson::SUCCESS;
      }
      case od::json_type::object:
      case od::json_type::array:
        return ReadContainer(f, t, v, depth);
    }
    return simdjson::TAPE_ERROR;
  }

 private:
  void ClearWithChildren(Field f) { fields_->present &= ~kFieldAndChildren[f]; }

  simdjson::error_code ReadContainer(Field f, od::json_type t, od::value v, int depth) {
    const char* start = v.raw_json_token().data();
    bool has_children = f == kOwner || f == kBlastRadius || f == kError;
    bool shape_ok = true;
    if (t == od::json_type::object && has_children) {
      od::object obj;
      if (auto e = v.get_object().get(obj)) return e;
      for (auto fr : obj) {
        od::field field;
        if (auto e = std::move(fr).get(field)) return e;
        std::string_view key;
        if (auto e = ReadKey(field, &key)) return e;
        Field sub = SubField(f, key);
        if (sub == kNoField) {
          if (auto e = SkipValue(field.value(), depth + 1)) return e;
        } else {
          if (auto e = Read(sub, field.value(), depth + 1)) return e;
        }
      }
    } else if ((f == kOptions && t == od::json_type::array) ||
               (f == kEvidence && t == od::json_type::object)) {
      if (auto e = ReadShaped(f, v, depth, &shape_ok)) return e;
    } else if (auto e = SkipValue(v, depth)) {
      return e;
    }
    // The container ends just before the next token (',' or '}' of the root object), less
    // whitespace. Such a token always exists: the root object is not closed yet.
    const char* end = nullptr;
    if (auto e = doc_->current_location().get(end)) return e;
    while (end > start && IsJsonSpace(end[-1])) --end;
    Slot& s = fields_->Set(f, t == od::json_type::object ? Kind::kObject : Kind::kArray);
    s.set_text(std::string_view(start, static_cast<size_t>(end - start)));
    s.b = shape_ok;
    return simdjson::SUCCESS;
  }

  // Checks (and consumes) `options` [{"label": string, "risk": string}, ...] or `evidence`
  // {name: path string}, the shapes of contract section 2, which packets pass through: *ok
  // false for an item that is not an object, a label or risk that is neither string nor null
  // (the last occurrence in an item counts), or an evidence value that is not a string.
  simdjson::error_code ReadShaped(Field f, od::value v, int depth, bool* ok) {
    if (depth > kMaxNesting) return simdjson::DEPTH_ERROR;
    auto is = [](od::value& x, od::json_type a, od::json_type b, bool* out) {
      od::json_type t;
      if (auto e = x.type().get(t)) return e;
      *out = t == a || t == b;
      return simdjson::SUCCESS;
    };
    if (f == kEvidence) {
      od::object obj;
      if (auto e = v.get_object().get(obj)) return e;
      for (auto fr : obj) {
        od::field field;
        std::string_view key;
        bool string = false;
        if (auto e = std::move(fr).get(field)) return e;
        if (auto e = ReadKey(field, &key)) return e;
        od::value value = field.value();
        if (auto e = is(value, od::json_type::string, od::json_type::string, &string)) return e;
        *ok = *ok && string;
        if (auto e = SkipValue(value, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    od::array arr;
    if (auto e = v.get_array().get(arr)) return e;
    for (auto el : arr) {
      od::value item;
      bool object = false;
      if (auto e = std::move(el).get(item)) return e;
      if (auto e = is(item, od::json_type::object, od::json_type::object, &object)) return e;
      if (!object || depth + 1 > kMaxNesting) {
        *ok = *ok && object;
        if (auto e = SkipValue(item, depth + 1)) return e;
        continue;
      }
      od::object obj;
      if (auto e = item.get_object().get(obj)) return e;
      bool label_ok = true;
      bool risk_ok = true;
      for (auto fr : obj) {
        od::field field;
        std::string_view key;
        if (auto e = std::move(fr).get(field)) return e;
        if (auto e = ReadKey(field, &key)) return e;
        od::value value = field.value();
        if (key == "label" || key == "risk") {
          bool text = false;
          if (auto e = is(value, od::json_type::string, od::json_type::null, &text)) return e;
          (key == "label" ? label_ok : risk_ok) = text;
        }
        if (auto e = SkipValue(value, depth + 2)) return e;
      }
      *ok = *ok && label_ok && risk_ok;
    }
    return simdjson::SUCCESS;
  }

  od::document* doc_;
  Fields* fields_;
};

// The fast path. simdjson's fixed cost per document (stage 1 over whole 64-byte blocks, the
// ondemand iterator set-up, the generic-target stage 2) was two thirds of the decoder's time for
// ~170-byte events. FastScan reads the shape nearly every event has in one forward pass and
// fills the same Fields as FirstPass. It accepts only input it can judge with certainty and
// returns false on anything else (escapes, bytes >= 0x80, control characters, '-', exponents,
// long numbers, deep nesting, and every kind of malformed JSON); the caller then decodes the
// record again with simdjson, which stays the reference for reasons and values. So the fast
// path can only be wrong by accepting what simdjson rejects or by reading a value differently;
// decoder_test compares the two paths on the fleet's events and on mutations of them.
class FastScan {
 public:
  // REQUIRES: at least 16 readable bytes past `end` (the simdjson padding covers them).
  FastScan(const char* begin, const char* end, Fields* fields)
      : p_(begin), end_(end), fields_(fields) {}

  // True when the whole input is one JSON object, read into *fields as FirstPass would.
  bool Document() {
    SkipSpace();
    if (!Consume('{')) return false;
    SkipSpace();
    if (!Consume('}')) {
      while (true) {
        std::string_view key;
        if (!Peek('"') || !String(&key)) return false;
        SkipSpace();
        if (!Consume(':')) return false;
        SkipSpace();
        const Field f = TopLevelField(key);
        if (Peek('"') && f != kNoField) {
          // Most values are strings: read them here rather than through the recursive Value.
          std::string_view value;
          if (!String(&value)) return false;
          fields_->present &= ~kFieldAndChildren[f];  // a repeated key replaces
          fields_->Set(f, Kind::kString).set_text(value);
        } else if (!Value(f, 1)) {
          return false;
        }
        SkipSpace();
        if (Consume(',')) {
          SkipSpace();
          continue;
        }
        if (Consume('}')) break;
        return false;
      }
    }
    SkipSpace();
    return p_ == end_;  // nothing may follow the object
  }

 private:
  // simdjson accepts nesting to depth 1024; events nest two or three levels. Deeper input goes
  // to simdjson rather than risking this recursion on hostile input.
  static constexpr int kMaxDepth = 32;

  bool Peek(char c) const { return p_ < end_ && *p_ == c; }
  bool Consume(char c) {
    if (!Peek(c)) return false;
    ++p_;
    return true;
  }
  // Events rarely hold whitespace between tokens: one compare settles the usual case (reading
  // *end_ is safe, the padding covers it, and p_ stays at end_ for the bounds checks after).
  void SkipSpace() {
    if (static_cast<unsigned char>(*p_) > ' ') return;
    while (p_ < end_ && IsJsonSpace(*p_)) ++p_;
  }
  // After a number or literal: JSON needs a delimiter there ("1x", "truex" are invalid).
  bool AtDelimiter() const {
    return p_ < end_ && (*p_ == ',' || *p_ == '}' || *p_ == ']' || IsJsonSpace(*p_));
  }

  // A string at the opening quote, without escapes, of bytes 0x20..0x7f. 16 bytes at a time:
  // one signed compare finds both control characters and bytes >= 0x80 (negative as int8).
  bool String(std::string_view* out) {
    const char* begin = ++p_;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    for (const char* q = begin;; q += 16) {
      __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
      __m128i stop =
          _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(chunk, quote), _mm_cmpeq_epi8(chunk, backslash)),
                       _mm_cmplt_epi8(chunk, space));
      auto mask = static_cast<uint32_t>(_mm_movemask_epi8(stop));
      if (mask == 0) {
        if (q + 16 >= end_) return false;  // unterminated
        continue;
      }
      const char* hit = q + std::countr_zero(mask);
      if (hit >= end_ || *hit != '"') return false;
      *out = std::string_view(begin, static_cast<size_t>(hit - begin));
      p_ = hit + 1;
      return true;
    }
#else
    for (const char* q = begin; q < end_; ++q) {
      auto c = static_cast<unsigned char>(*q);
      if (c == '"') {
        *out = std::string_view(begin, static_cast<size_t>(q - begin));
        p_ = q + 1;
        return true;
      }
      if (c < 0x20 || c >= 0x80 || c == '\\') return false;
    }
    return false;
#endif
  }

  // A non-negative number without exponent: "0", "[1-9][0-9]*", optionally ".[0-9]+".
  // Integers of up to 18 digits always fit int64. A decimal is read exactly when its digits
  // fit 2^53 and it has at most 22 decimals (Clinger's fast path: one correctly rounded
  // division of two exact doubles), which is the value simdjson's exact parser returns too.
  bool Number(Field f) {
    static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    uint64_t mantissa = 0;
    int digits = 0;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ < end_ && static_cast<unsigned>(*p_ - '0') <= 9) {
        mantissa = mantissa * 10 + static_cast<unsigned>(*p_ - '0');
        ++p_;
        if (++digits > 18) return false;
      }
    }
    int decimals = 0;
    if (Consume('.')) {
      while (p_ < end_ && static_cast<unsigned>(*p_ - '0') <= 9) {
        mantissa = mantissa * 10 + static_cast<unsigned>(*p_ - '0');
        ++p_;
        if (++digits > 18) return false;
        ++decimals;
      }
      if (decimals == 0) return false;  // "1." is invalid
    }
    if (!AtDelimiter()) return false;  // also rejects exponents and leading zeros ("01")
    if (f == kNoField) return true;
    if (decimals == 0) {
      Slot& s = fields_->Set(f, Kind::kInt);
      s.i = static_cast<int64_t>(mantissa);
      s.d = static_cast<double>(s.i);
      return true;
    }
    if (mantissa > (uint64_t{1} << 53) || decimals > 22) return false;
    fields_->Set(f, Kind::kDouble).d = static_cast<double>(mantissa) / kPow10[decimals];
    return true;
  }

  bool Literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        std::memcmp(p_, word.data(), word.size()) != 0) {
      return false;
    }
    p_ += word.size();
    return AtDelimiter();
  }

  // One value into the slot of `f` (kNoField: only checked), as FirstPass::Read.
  bool Value(Field f, int depth) {
    if (p_ >= end_) return false;
    if (f != kNoField) fields_->present &= ~kFieldAndChildren[f];  // a repeated key replaces
    switch (*p_) {
      case '"': {
        std::string_view s;
        if (!String(&s)) return false;
        if (f != kNoField) fields_->Set(f, Kind::kString).set_text(s);
        return true;
      }
      case 't':
        if (!Literal("true")) return false;
        if (f != kNoField) fields_->Set(f, Kind::kBool).b = true;
        return true;
      case 'f':
        if (!Literal("false")) return false;
        if (f != kNoField) fields_->Set(f, Kind::kBool).b = false;
        return true;
      case 'n':
        return Literal("null");  // null = absent: the slot stays cleared
      case '{':
      case '[':
        return Container(f, depth);
      default:
        if (static_cast<unsigned>(*p_ - '0') <= 9) return Number(f);
        return false;  // '-' and anything else: simdjson decides
    }
  }

  // An object or array; a field's slot gets its raw text, and the subfields of owner,
  // blast_radius and error their own slots. `options` and `evidence` of the wrong shape (see
  // FirstPass::ReadShaped) go to simdjson, which records it; `option_item`: an item of options.
  bool Container(Field f, int depth, bool option_item = false) {
    if (depth >= kMaxDepth) return false;
    const char* start = p_;
    const bool object = *p_ == '{';
    const char close = object ? '}' : ']';
    const bool has_children = object && (f == kOwner || f == kBlastRadius || f == kError);
    const bool objects_only = !object && f == kOptions;
    const bool strings_only = object && f == kEvidence;
    ++p_;
    SkipSpace();
    if (!Consume(close)) {
      while (true) {
        if (object) {
          std::string_view key;
          if (!Peek('"') || !String(&key)) return false;
          SkipSpace();
          if (!Consume(':')) return false;
          SkipSpace();
          if (strings_only && !Peek('"')) return false;
          if (option_item && (key == "label" || key == "risk") && !Peek('"') && !Peek('n')) {
            return false;
          }
          if (!Value(has_children ? SubField(f, key) : kNoField, depth + 1)) return false;
        } else if (objects_only) {
          if (!Peek('{') || !Container(kNoField, depth + 1, /*option_item=*/true)) return false;
        } else if (!Value(kNoField, depth + 1)) {
          return false;
        }
        SkipSpace();
        if (Consume(',')) {
          SkipSpace();
          continue;
        }
        if (Consume(close)) break;
        return false;
      }
    }
    if (f != kNoField) {
      Slot& s = fields_->Set(f, object ? Kind::kObject : Kind::kArray);
      s.set_text(std::string_view(start, static_cast<size_t>(p_ - start)));
      s.b = true;  // a wrong shape never gets here
    }
    return true;
  }

  const char* p_;
  const char* end_;
  Fields* fields_;
};

// Reasons that need no composition.
constexpr std::string_view kOversized = "oversized";
constexpr std::string_view kInvalidJson = "invalid_json";
constexpr std::string_view kNotObject = "not_object";
constexpr std::string_view kBadTimestamp = "bad_timestamp";

// Fields whose absence is a DLQ reason (missing_field:<f>): the envelope (event_id is optional
// for acks only) and the fields each type requires (see Validator). Only DecoderReasons() reads
// this; DecoderTest.ReasonListIsExactlyWhatTheDecoderReturns keeps it in step with Validator.
constexpr Field kRequiredFields[] = {kEventId,   kRunId, kType,       kTs,     kWorkflowId, kStep,
                                     kErrorCode, kTool,  kConfidence, kReason, kOutcome};

constexpr size_t kMaxRunIdBytes = 256;
// The buffers a Decoder starts with: ordinary events are a few hundred bytes. Each live
// partition has its own Pipeline and so its own Decoder; at 1 MiB (the default
// max_event_bytes) each took ~5 MiB of simdjson buffers plus 1 MiB zero-filled, and ~1 ms per
// partition of a rebalance's restore went to touching them.
constexpr int64_t kInitialCapacity = 64 << 10;

bool TwoDigits(const char* p, int* out) {
  unsigned a = static_cast<unsigned char>(p[0]) - '0';
  unsigned b = static_cast<unsigned char>(p[1]) - '0';
  *out = static_cast<int>(a * 10 + b);
  return a <= 9 && b <= 9;
}

// ParseRfc3339Ms with a fast path for the common "YYYY-MM-DDTHH:MM:SS[.mmm]Z": when the hour
// matches the cache, only the rest is parsed. Everything else, and every cache miss, goes
// through ParseRfc3339Ms, whose result also refills the cache; results are identical.
bool ParseTimestamp(std::string_view t, Decoder::HourCache* cache, int64_t* out_ms) {
  int minute = 0, second = 0, millis = 0;
  bool fast_shape = (t.size() == 20 || (t.size() == 24 && t[19] == '.')) && t.back() == 'Z' &&
                    t[13] == ':' && t[16] == ':' && TwoDigits(t.data() + 14, &minute) &&
                    TwoDigits(t.data() + 17, &second) && minute <= 59 && second <= 59;
  if (fast_shape && t.size() == 24) {
    unsigned d0 = static_cast<unsigned char>(t[20]) - '0';
    unsigned d1 = static_cast<unsigned char>(t[21]) - '0';
    unsigned d2 = static_cast<unsigned char>(t[22]) - '0';
    fast_shape = d0 <= 9 && d1 <= 9 && d2 <= 9;
    millis = static_cast<int>(d0 * 100 + d1 * 10 + d2);
  }
  if (!fast_shape) return ParseRfc3339Ms(t, out_ms);
  int64_t within_hour = minute * 60000 + second * 1000 + millis;
  if (cache->valid && std::memcmp(t.data(), cache->prefix, sizeof(cache->prefix)) == 0) {
    *out_ms = cache->ms + within_hour;
    return true;
  }
  if (!ParseRfc3339Ms(t, out_ms)) return false;
  std::memcpy(cache->prefix, t.data(), sizeof(cache->prefix));
  cache->ms = *out_ms - within_hour;
  cache->valid = true;
  return true;
}

// A double with an exact integer value within int64 (12.0, 1e3) into *out: JSON Schema 2020-12
// counts it as an integer, so integer fields take it. 12.5, 2^63 and beyond do not fit.
bool IntegralDouble(const Slot& s, int64_t* out) {
  constexpr double kTwoTo63 = 9223372036854775808.0;
  if (s.kind != Kind::kDouble || !(s.d >= -kTwoTo63 && s.d < kTwoTo63) || s.d != std::trunc(s.d)) {
    return false;
  }
  *out = static_cast<int64_t>(s.d);
  return true;
}

// Validates the slots against the contract, in the order of section 11, and fills the Event.
// Each Check* returns false after recording the first failure.
class Validator {
 public:
  Validator(const Fields& fields, Event* out, std::string* reason, Decoder::HourCache* hours)
      : f_(fields), out_(out), reason_(reason), hours_(hours) {}

  std::string_view failure() const { return failure_; }

  bool Fail(std::string_view prefix, Field f) {
    reason_->assign(prefix);
    reason_->append(kFieldNames[f]);
    failure_ = *reason_;
    return false;
  }
  bool Missing(Field f) { return Fail("missing_field:", f); }
  bool WrongType(Field f) { return Fail("wrong_type:", f); }

  // A string field: required (missing_field when absent) or optional (nullopt when absent).
  bool RequiredString(Field f, std::string_view* out) {
    if (!f_.Has(f)) return Missing(f);
    if (f_.Get(f).kind != Kind::kString) return WrongType(f);
    *out = f_.Get(f).text();
    return true;
  }
  bool OptionalString(Field f, std::optional<std::string_view>* out) {
    if (!f_.Has(f)) return true;
    if (f_.Get(f).kind != Kind::kString) return WrongType(f);
    *out = f_.Get(f).text();
    return true;
  }
  template <typename E>
  bool OptionalEnum(Field f, std::optional<E> (*parse)(std::string_view), std::optional<E>* out) {
    if (!f_.Has(f)) return true;
    if (f_.Get(f).kind != Kind::kString) return WrongType(f);
    *out = parse(f_.Get(f).text());
    return out->has_value() || WrongType(f);
  }
  bool OptionalNumber(Field f, std::optional<double>* out) {
    if (!f_.Has(f)) return true;
    Kind k = f_.Get(f).kind;
    if (k != Kind::kInt && k != Kind::kBigInt && k != Kind::kDouble) return WrongType(f);
    *out = f_.Get(f).d;
    return true;
  }
  // A money amount that a run sums (cost_usd): negative or non-finite has no meaning there and
  // would make the run's total, and the packets that carry it, negative. wrong_type like a
  // confidence outside 0..1.
  bool OptionalNonNegative(Field f, std::optional<double>* out) {
    if (!OptionalNumber(f, out)) return false;
    if (*out && !(**out >= 0 && **out <= std::numeric_limits<double>::max())) return WrongType(f);
    return true;
  }
  bool OptionalCount(Field f, std::optional<int64_t>* out) {
    if (!f_.Has(f)) return true;
    const Slot& s = f_.Get(f);
    int64_t v = s.i;
    if ((s.kind != Kind::kInt && !IntegralDouble(s, &v)) || v < 0) return WrongType(f);
    *out = v;
    return true;
  }
  bool OptionalRaw(Field f, Kind kind, std::optional<std::string_view>* out) {
    if (!f_.Has(f)) return true;
    if (f_.Get(f).kind != kind || !f_.Get(f).b) return WrongType(f);
    *out = f_.Get(f).text();
    return true;
  }
  // An object field whose presence is optional; true when present and an object.
  bool OptionalObject(Field f, bool* present) {
    *present = f_.Has(f);
    if (*present && f_.Get(f).kind != Kind::kObject) return WrongType(f);
    return true;
  }

  bool Envelope() {
    // The type decides whether event_id is required (acks carry none), so read it first but
    // report in the contract's order: event_id, run_id, type, ts.
    bool type_ok = f_.Has(kType) && f_.Get(kType).kind == Kind::kString;
    if (type_ok) {
      out_->type_name = f_.Get(kType).text();
      out_->type = FastEventType(out_->type_name);
    }
    if (!(type_ok && out_->IsAck())) {
      if (!RequiredString(kEventId, &out_->event_id)) return false;
      if (out_->event_id.empty()) return WrongType(kEventId);
    }
    if (!RequiredString(kRunId, &out_->run_id)) return false;
    if (out_->run_id.empty() || out_->run_id.size() > kMaxRunIdBytes) return WrongType(kRunId);
    if (!type_ok) return f_.Has(kType) ? WrongType(kType) : Missing(kType);
    return Timestamp();
  }

  bool Timestamp() {
    if (!f_.Has(kTs)) return Missing(kTs);
    const Slot& s = f_.Get(kTs);
    bool ok = false;
    if (s.kind == Kind::kString) {
      ok = ParseTimestamp(s.text(), hours_, &out_->ts_ms);
    } else {
      // Integer times are limited to what FormatRfc3339Ms can spell on output.
      int64_t ms = s.i;
      ok = (s.kind == Kind::kInt || IntegralDouble(s, &ms)) && ms >= kMinRfc3339Ms &&
           ms <= kMaxRfc3339Ms;
      if (ok) out_->ts_ms = ms;
    }
    if (!ok) failure_ = kBadTimestamp;
    return ok;
  }

  bool Owner() {
    bool present = false;
    if (!OptionalObject(kOwner, &present)) return false;
    return !present || (OptionalString(kOwnerPrimary, &out_->owner_primary) &&
                        OptionalString(kOwnerBackup, &out_->owner_backup));
  }

  bool TypeFields() {
    Event& e = *out_;
    switch (e.type) {
      case EventType::kRunStarted: {
        std::string_view workflow;
        if (!RequiredString(kWorkflowId, &workflow)) return false;
        e.workflow_id = workflow;
        return OptionalString(kObjective, &e.objective) &&
               OptionalEnum(kSeverity, &ParseSeverity, &e.severity) && Owner();
      }
      case EventType::kStepStarted:
      case EventType::kStepSucceeded: {
        std::string_view step;
        if (!RequiredString(kStep, &step)) return false;
        e.step = step;
        return true;
      }
      case EventType::kStepFailed: {
        std::string_view step;
        if (!RequiredString(kStep, &step)) return false;
        e.step = step;
        bool present = false;
        if (!OptionalObject(kError, &present)) return false;
        if (!RequiredString(kErrorCode, &e.error_code) ||
            !OptionalString(kErrorMessage, &e.error_message)) {
          return false;
        }
        if (f_.Has(kRetryable)) {
          if (f_.Get(kRetryable).kind != Kind::kBool) return WrongType(kRetryable);
          e.retryable = f_.Get(kRetryable).b;
        }
        return true;
      }
      case EventType::kToolCall:
        return OptionalString(kStep, &e.step) && RequiredString(kTool, &e.tool) &&
               OptionalEnum(kStatus, &ParseToolStatus, &e.tool_status) &&
               OptionalEnum(kSideEffect, &ParseSideEffect, &e.side_effect) &&
               OptionalNonNegative(kCostUsd, &e.cost_usd) && OptionalCount(kTokens, &e.tokens) &&
               OptionalCount(kDurationMs, &e.duration_ms);
      case EventType::kDecision: {
        if (!OptionalString(kStep, &e.step)) return false;
        std::optional<double> confidence;
        if (!OptionalNumber(kConfidence, &confidence)) return false;
        if (!confidence) return Missing(kConfidence);
        if (!(*confidence >= 0 && *confidence <= 1)) return WrongType(kConfidence);
        e.confidence = *confidence;
        return OptionalString(kAction, &e.action) && OptionalEnum(kRisk, &ParseRisk, &e.risk) &&
               OptionalNumber(kAmount, &e.amount);
      }
      case EventType::kHandoffRequested:
        return OptionalString(kStep, &e.step) && RequiredString(kReason, &e.reason) &&
               OptionalEnum(kHandoffType, &ParseHandoffType, &e.handoff_type) &&
               OptionalRaw(kOptions, Kind::kArray, &e.options_json) &&
               OptionalRaw(kEvidence, Kind::kObject, &e.evidence_json) &&
               OptionalString(kOwnerRole, &e.owner_role) &&
               OptionalString(kNextActionAfterDecision, &e.next_action_after_decision);
      case EventType::kHeartbeat:
        return OptionalString(kStep, &e.step);
      case EventType::kRunCompleted: {
        std::optional<Outcome> outcome;
        if (!OptionalEnum(kOutcome, &ParseOutcome, &outcome)) return false;
        if (!outcome) return Missing(kOutcome);
        e.outcome = *outcome;
        return true;
      }
      case EventType::kHandoffAcknowledged:
      case EventType::kHandoffResolved:
        return OptionalString(kPacketId, &e.packet_id) && OptionalString(kBy, &e.by);
      case EventType::kUnknown:
        return true;
    }
    return true;
  }

  // Fields any agent event may carry (not acks, not unknown types).
  bool CommonFields() {
    Event& e = *out_;
    if (e.IsAck() || e.type == EventType::kUnknown) return true;
    bool blast_radius = false;
    return (e.workflow_id || OptionalString(kWorkflowId, &e.workflow_id)) &&
           (e.step || OptionalString(kStep, &e.step)) &&
           (e.objective || OptionalString(kObjective, &e.objective)) &&
           OptionalString(kRecommendedAction, &e.recommended_action) &&
           OptionalString(kRollbackCommand, &e.rollback_command) &&
           OptionalObject(kBlastRadius, &blast_radius) &&
           (!blast_radius || (OptionalCount(kBlastRadiusUsers, &e.blast_radius_users) &&
                              OptionalCount(kBlastRadiusJobs, &e.blast_radius_jobs))) &&
           (e.type == EventType::kRunStarted || Owner()) &&
           OptionalRaw(kAttrs, Kind::kObject, &e.attrs_json) &&
           (e.cost_usd || OptionalNonNegative(kCostUsd, &e.cost_usd));
  }

 private:
  const Fields& f_;
  Event* out_;
  std::string* reason_;
  Decoder::HourCache* hours_;
  std::string_view failure_;
};

// The reference path: simdjson ondemand over the whole record, into *fields (FirstPass).
// Returns the DLQ reason of a malformed or non-object record, or an empty view.
std::string_view SimdjsonPass(od::parser* parser, std::string_view bytes, size_t allocated,
                              Fields* fields_out) {
  Fields& fields = *fields_out;
  od::document doc;
  if (parser->iterate(bytes.data(), bytes.size(), allocated).get(doc)) return kInvalidJson;

  od::json_type root_type;
  if (doc.type().get(root_type)) return kInvalidJson;
  if (root_type != od::json_type::object) {
    // Only well-formed JSON is "not_object"; anything else is invalid_json (checked first).
    simdjson::error_code e = simdjson::SUCCESS;
    switch (root_type) {
      case od::json_type::array: {
        od::array arr;
        e = doc.get_array().get(arr);
        if (e) break;
        for (auto el : arr) {
          od::value item;
          if ((e = std::move(el).get(item)) || (e = SkipValue(item, kTopLevelDepth))) break;
        }
        break;
      }
      case od::json_type::number:
        e = doc.get_number().error();
        // A valid number simdjson cannot hold is still well-formed JSON: not_object.
        if (e && IsJsonNumber(bytes.substr(bytes.find_first_not_of(" \t\n\r")))) return kNotObject;
        break;
      case od::json_type::string:
        e = doc.get_string().error();
        break;
      case od::json_type::boolean:
        e = doc.get_bool().error();
        break;
      case od::json_type::null: {
        bool is_null = false;
        e = doc.is_null().get(is_null);
        if (!e && !is_null) e = simdjson::TAPE_ERROR;
        break;
      }
      case od::json_type::object:
        break;
    }
    return e || !AtEnd(&doc) ? kInvalidJson : kNotObject;
  }

  {
    od::object obj;
    if (doc.get_object().get(obj)) return kInvalidJson;
    FirstPass pass(&doc, &fields);
    for (auto fr : obj) {
      od::field field;
      if (std::move(fr).get(field)) return kInvalidJson;
      Field f = RawTopLevelField(field.key().raw());
      if (f == kNoField) {  // unknown or escaped: find the key's end, unescape if needed
        std::string_view key;
        if (ReadKey(field, &key)) return kInvalidJson;
        f = TopLevelField(key);
      }
      if (pass.Read(f, field.value(), kTopLevelDepth)) return kInvalidJson;
    }
  }
  if (!AtEnd(&doc)) return kInvalidJson;  // trailing content after the object
  return {};
}

}  // namespace

Decoder::Decoder(int64_t max_event_bytes, bool fast_path)
    : max_event_bytes_(max_event_bytes), fast_path_(fast_path) {
  // Reserve once for ordinary events so the steady state never allocates; a rare larger event
  // (up to max_event_bytes) grows the buffers, which then stay grown.
  int64_t capacity = std::clamp<int64_t>(max_event_bytes, 1, kInitialCapacity);
  padded_.resize(static_cast<size_t>(capacity) + simdjson::SIMDJSON_PADDING);
  if (parser_.allocate(static_cast<size_t>(capacity)) != simdjson::SUCCESS) {
    // Not fatal: iterate() allocates on demand and reports a failure as invalid_json.
  }
  reason_.reserve(64);
}

std::string_view Decoder::Decode(std::string_view bytes, Event* out) {
  envelope_valid_ = false;
  if (static_cast<int64_t>(bytes.size()) > max_event_bytes_) return kOversized;
  size_t needed = bytes.size() + simdjson::SIMDJSON_PADDING;
  if (padded_.size() < needed) padded_.resize(needed);
  std::memcpy(padded_.data(), bytes.data(), bytes.size());
  return DecodePadded(std::string_view(padded_.data(), bytes.size()), padded_.size(), out);
}

std::string_view Decoder::DecodePadded(std::string_view bytes, size_t allocated, Event* out) {
  envelope_valid_ = false;
  if (static_cast<int64_t>(bytes.size()) > max_event_bytes_) return kOversized;
  Fields fields;
  if (!fast_path_ || !FastScan(bytes.data(), bytes.data() + bytes.size(), &fields).Document()) {
    fields.present = 0;  // the fast path may have filled some slots before it gave up
    std::string_view reason = SimdjsonPass(&parser_, bytes, allocated, &fields);
    if (!reason.empty()) return reason;
  }
  *out = Event{};
  Validator v(fields, out, &reason_, &hour_cache_);
  if (!v.Envelope()) return v.failure();
  if (v.TypeFields() && v.CommonFields()) return {};
  envelope_valid_ = true;
  return v.failure();
}

const std::vector<std::string>& DecoderReasons() {
  static const std::vector<std::string> reasons = [] {
    std::vector<std::string> r = {std::string(kOversized), std::string(kInvalidJson),
                                  std::string(kNotObject)};
    for (Field f : kRequiredFields) r.push_back("missing_field:" + std::string(kFieldNames[f]));
    // A timestamp of the wrong type is bad_timestamp.
    for (int f = 0; f < kFieldCount; ++f) {
      if (f != kTs) r.push_back("wrong_type:" + std::string(kFieldNames[f]));
    }
    r.push_back(std::string(kBadTimestamp));
    return r;
  }();
  return reasons;
}

}  // namespace handoffd

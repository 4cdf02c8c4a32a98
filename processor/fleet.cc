#include "processor/fleet.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "processor/time_format.h"

namespace handoffd {
namespace {

// How a run goes. Healthy runs dominate; the rest cover every trigger of contract section 4.
enum class Mode : uint8_t {
  kHealthy,
  kCancelled,          // run_completed cancelled: not a failure
  kFailCode,           // non-retryable step_failed with a code of some class
  kRetryChain,         // retryable failures on one step: recovers after <= 3, else exhausted
  kToolError,          // tool_call error with a side effect: downstream_write_failure
  kToolErrorNoEffect,  // tool_call error without side effect: opens nothing
  kLowConfidence,      // decision below the confidence threshold
  kRiskyDecision,      // decision with risk irreversible/external
  kBigAmount,          // decision with a large amount: business_judgment where configured
  kHandoffRequested,   // agent asks for a human, then waits
  kBudget,             // a burst of expensive tool calls
  kStall,              // the run just stops
  kFailedOutcome,      // run_completed failure with nothing before
};
constexpr int kFailureModes = 11;  // kFailCode .. kFailedOutcome

enum class Phase : uint8_t { kStart, kStepStart, kWork, kStepEnd, kFailure, kComplete, kDone };

struct Workflow {
  std::string_view id;
  std::string_view objective;
  std::array<std::string_view, 8> steps;
};

// The first four are in the test and sample catalogs; the last two are in none.
constexpr Workflow kWorkflows[] = {
    {"refund-review",
     "Review and issue customer refunds",
     {"load_order", "check_policy", "fetch_payment", "compute_refund", "approve", "post_refund",
      "notify_customer", "close_ticket"}},
    {"ledger-close",
     "Close the daily ledger",
     {"collect_entries", "reconcile", "match_accounts", "compute_totals", "review", "post_journal",
      "lock_period", "report"}},
    {"invoice-match",
     "Match supplier invoices to purchase orders",
     {"read_invoice", "extract_lines", "find_po", "match_lines", "check_tolerance", "approve",
      "schedule_payment", "archive"}},
    {"support-triage",
     "Triage inbound support tickets",
     {"read_ticket", "classify", "lookup_customer", "search_kb", "draft_reply", "route",
      "update_crm", "close"}},
    {"adhoc-research",
     "Research a question",
     {"plan", "search", "read", "summarize", "cite", "review", "publish", "done"}},
    {"data-backfill",
     "Backfill a warehouse table",
     {"plan", "extract", "transform", "validate", "load", "verify", "swap", "cleanup"}},
};

constexpr std::string_view kTools[] = {"db.query",   "http.get",     "llm.complete",
                                       "s3.read",    "ledger.write", "email.send",
                                       "crm.update", "search.query"};
constexpr std::string_view kFailCodes[] = {
    "missing_input",    "missing_source", "not_found",           "file_read_failed",
    "duplicate_entity", "duplicate",      "conflicting_context", "conflict",
    "write_failed",     "api_error",      "downstream_error",    "timeout",
    "schema_invalid",   "invalid_output", "validation_error",    "permission_denied",
    "forbidden",        "unauthorized",   "unsupported_request", "unsupported",
    "model_refused",    "internal_error", "rate_limited"};
constexpr std::string_view kRetryCodes[] = {"timeout", "rate_limited", "api_error"};
constexpr std::string_view kSideEffects[] = {"reversible", "irreversible", "external"};
constexpr std::string_view kHandoffTypes[] = {"business_judgment", "risk_authorization",
                                              "evidence_gap"};
constexpr std::string_view kSeverities[] = {"P1", "P2", "P3"};
constexpr std::string_view kAckers[] = {"ana", "bo", "chen", "dara"};

uint64_t SplitMix(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

// Appends units / 10^decimals in fixed notation ("0.0123"), exactly and without floating point.
void AppendFixed(int64_t units, int decimals, std::string* out) {
  int64_t scale = 1;
  for (int i = 0; i < decimals; ++i) scale *= 10;
  AppendInt(units / scale, out);
  out->push_back('.');
  int64_t frac = units % scale;
  for (int64_t s = scale / 10; s > 0; s /= 10) {
    out->push_back(static_cast<char>('0' + frac / s % 10));
  }
}

// Builders take the key with its punctuation (`,"step":"`), so each field is one append for the
// key and one for the value. Every field follows the object's opening, so a comma always fits.
// Values are generator constants or ids: plain ASCII, never needing escapes.
void Str(std::string_view key_open_quote, std::string_view value, std::string* out) {
  out->append(key_open_quote);
  out->append(value);
  out->push_back('"');
}

void Int(std::string_view key_colon, int64_t value, std::string* out) {
  out->append(key_colon);
  AppendInt(value, out);
}

void Raw(std::string_view key_colon, std::string_view json, std::string* out) {
  out->append(key_colon);
  out->append(json);
}

size_t FormatRunId(std::string_view prefix, uint64_t seed, uint64_t number, char* out, size_t cap) {
  size_t n = std::min(prefix.size(), cap - 44);  // room for two 20-digit numbers and '-'
  std::copy_n(prefix.data(), n, out);
  char* p = out + n;
  p = std::to_chars(p, out + cap, seed % 100000).ptr;
  *p++ = '-';
  p = std::to_chars(p, out + cap, number).ptr;
  return static_cast<size_t>(p - out);
}

}  // namespace

struct Fleet::Run {
  uint64_t number = 0;
  int64_t started_ms = 0;
  uint32_t seq = 0;  // event ids are <run_id>:<seq>
  uint8_t workflow = 0;
  uint8_t steps = 0;
  uint8_t step = 0;
  uint8_t work_left = 0;
  uint8_t fail_step = 0;
  uint8_t failure_left = 0;
  uint8_t retries = 0;
  bool failure_done = false;
  bool failed = false;  // an incident is expected: the run ends with outcome failure
  Mode mode = Mode::kHealthy;
  Phase phase = Phase::kDone;
  std::array<char, 64> id{};
  uint8_t id_len = 0;

  std::string_view run_id() const { return {id.data(), id_len}; }
  std::string_view step_name() const { return kWorkflows[workflow].steps[step % 8]; }
};

Fleet::Fleet(const FleetOptions& options) : options_(options), now_ms_(options.start_ms) {
  uint64_t s = options.seed;
  for (uint64_t& r : rng_) r = SplitMix(&s);
  options_.concurrent_runs = std::max(1, options_.concurrent_runs);
  options_.max_steps = std::clamp(options_.max_steps, 2, 8);
  options_.mean_gap_ms = std::max<int64_t>(0, options_.mean_gap_ms);
  runs_.resize(static_cast<size_t>(options_.concurrent_runs));
  for (Line* l : {&current_, &previous_, &held_}) l->text.reserve(1024);
}

Fleet::~Fleet() = default;

// xoshiro256** (Blackman and Vigna): fast, and good enough for traffic shapes.
uint64_t Fleet::Rand() {
  const uint64_t result = Rotl(rng_[1] * 5, 7) * 9;
  const uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = Rotl(rng_[3], 45);
  return result;
}

void Fleet::Next(std::string* line) {
  Line* out = nullptr;
  if (release_held_) {
    release_held_ = false;
    have_held_ = false;
    out = &held_;
  } else if (have_previous_ && Chance(options_.duplicate_rate)) {
    previous_.kind = FleetLine::kDuplicate;
    out = &previous_;
  } else {
    Generate(&current_);
    if (!have_held_ && current_.kind == FleetLine::kEvent && Chance(options_.out_of_order_rate)) {
      std::swap(current_, held_);
      have_held_ = true;
      release_held_ = true;
      Generate(&current_);
    }
    out = &current_;
  }
  line->append(out->text);
  last_.run_id_buf = out->run_id_buf;
  last_.run_id_len = out->run_id_len;
  last_.ts_ms = out->ts_ms;
  last_.kind = out->kind;
  ++lines_;
  if (out == &current_ && out->kind == FleetLine::kEvent) {
    std::swap(current_, previous_);  // keeps both buffers' capacity: no copy, no allocation
    have_previous_ = true;
  }
}

void Fleet::Generate(Line* out) {
  out->text.clear();
  now_ms_ +=
      options_.mean_gap_ms > 0 ? Below(static_cast<uint32_t>(2 * options_.mean_gap_ms + 1)) : 0;
  if (!acks_.empty() && acks_.top().due_ms <= now_ms_) {
    PendingAck ack = acks_.top();
    acks_.pop();
    EmitAck(ack, out);
    return;
  }
  Run* run = &runs_[Below(static_cast<uint32_t>(runs_.size()))];
  if (run->phase == Phase::kDone) StartRun(run);
  double r = Uniform();
  if (r < options_.invalid_rate) {
    EmitInvalid(run, out);
  } else if (r < options_.invalid_rate + options_.unknown_type_rate) {
    EmitUnknownType(run, out);
  } else {
    EmitRunEvent(run, out);
  }
}

void Fleet::StartRun(Run* run) {
  *run = Run{};
  run->number = next_run_number_++;
  run->started_ms = now_ms_;
  run->id_len = static_cast<uint8_t>(
      FormatRunId(options_.run_prefix, options_.seed, run->number, run->id.data(), run->id.size()));
  uint32_t w = Below(10);  // 80% catalog workflows, 20% the others
  run->workflow = static_cast<uint8_t>(w < 8 ? w / 2 : 4 + (w - 8));
  run->steps = static_cast<uint8_t>(2 + Below(static_cast<uint32_t>(options_.max_steps - 1)));
  run->fail_step = static_cast<uint8_t>(Below(run->steps));
  if (Chance(options_.failure_rate)) {
    run->mode = static_cast<Mode>(static_cast<int>(Mode::kFailCode) + Below(kFailureModes));
  } else if (Chance(0.01)) {
    run->mode = Mode::kCancelled;
  }
  // One run in a hundred is first seen mid-way (its run_started lost or never sent).
  run->phase = Chance(0.01) ? Phase::kStepStart : Phase::kStart;
  ++runs_started_;
}

void Fleet::AppendTs(int64_t ms, std::string* out) {
  uint32_t form = Below(20);
  if (form < 4) {  // 20% integer epoch ms
    AppendInt(ms, out);
    return;
  }
  // 5% with a +01:00 offset, the rest UTC. The text up to the seconds is cached per second:
  // consecutive lines share it, and only the milliseconds are written anew.
  int64_t local = form == 4 ? ms + 3600000 : ms;
  int64_t second = local >= 0 ? local / 1000 : (local - 999) / 1000;
  if (second != ts_cache_second_) {
    char buf[kRfc3339MsLength];
    FormatRfc3339Ms(second * 1000, buf);
    std::copy_n(buf, ts_cache_.size(), ts_cache_.data());
    ts_cache_second_ = second;
  }
  int millis = static_cast<int>(local - second * 1000);
  char tail[12] = {'.', static_cast<char>('0' + millis / 100),
                   static_cast<char>('0' + millis / 10 % 10), static_cast<char>('0' + millis % 10)};
  out->push_back('"');
  out->append(ts_cache_.data(), ts_cache_.size());
  out->append(tail, 4);
  out->append(form == 4 ? "+01:00\"" : "Z\"");
}

void Fleet::Begin(const Run& run, std::string_view type, Line* out) {
  std::string* s = &out->text;
  s->append("{\"event_id\":\"");
  s->append(run.run_id());
  s->push_back(':');
  AppendInt(run.seq, s);
  s->append("\",\"run_id\":\"");
  s->append(run.run_id());
  s->append("\",\"type\":\"");
  s->append(type);
  s->append("\",\"ts\":");
  // 2% of events arrive late: their event time is up to 5 s before the stream's.
  int64_t ts = Chance(0.02) ? now_ms_ - 1 - Below(5000) : now_ms_;
  AppendTs(ts, s);
  out->ts_ms = ts;
  out->kind = FleetLine::kEvent;
  std::copy_n(run.id.data(), run.id_len, out->run_id_buf.data());
  out->run_id_len = run.id_len;
}

void Fleet::ScheduleAcks(const Run& run) {
  if (!Chance(options_.ack_rate)) return;
  int64_t ack_at = now_ms_ + 60000 + Below(540000);
  acks_.push({ack_at, run.number, run.workflow, false});
  if (Chance(0.5)) acks_.push({ack_at + 60000 + Below(1200000), run.number, run.workflow, true});
}

void Fleet::EmitAck(const PendingAck& ack, Line* out) {
  char id[64];
  size_t id_len = FormatRunId(options_.run_prefix, options_.seed, ack.run_number, id, sizeof(id));
  std::string_view run_id(id, id_len);
  std::string* s = &out->text;
  s->append(ack.resolve ? "{\"type\":\"handoff_resolved\",\"run_id\":\""
                        : "{\"type\":\"handoff_acknowledged\",\"run_id\":\"");
  s->append(run_id);
  s->push_back('"');
  if (Chance(0.5)) {  // half name the packet, half apply to every open packet of the run
    s->append(",\"packet_id\":");
    s->push_back('"');
    s->append(run_id);
    s->append("#1\"");
  }
  Str(",\"by\":\"", kAckers[Below(4)], s);
  s->append(",\"ts\":");
  AppendTs(now_ms_, s);
  s->push_back('}');
  out->ts_ms = now_ms_;
  out->kind = FleetLine::kAck;
  std::copy_n(id, id_len, out->run_id_buf.data());
  out->run_id_len = id_len;
}

void Fleet::EmitInvalid(Run* run, Line* out) {
  ++run->seq;
  std::string* s = &out->text;
  switch (Below(6)) {
    case 0: {  // truncated in transit
      Begin(*run, "heartbeat", out);
      Str(",\"step\":\"", run->step_name(), s);
      s->push_back('}');
      s->resize(s->size() / 2);
      break;
    }
    case 1:  // no run_id
      s->append("{\"event_id\":\"x:");
      AppendInt(run->seq, s);
      s->append("\",\"type\":\"heartbeat\",\"ts\":");
      AppendInt(now_ms_, s);
      s->push_back('}');
      break;
    case 2:  // confidence as text
      Begin(*run, "decision", out);
      Str(",\"confidence\":\"", "high", s);
      s->push_back('}');
      break;
    case 3:  // unparsable timestamp
      s->append("{\"event_id\":\"");
      s->append(run->run_id());
      s->append(":b\",\"run_id\":\"");
      s->append(run->run_id());
      s->append("\",\"type\":\"heartbeat\",\"ts\":\"yesterday\"}");
      break;
    case 4:  // not an object
      s->append("[\"heartbeat\",\"");
      s->append(run->run_id());
      s->append("\"]");
      break;
    default:  // step_failed without error.code
      Begin(*run, "step_failed", out);
      Str(",\"step\":\"", run->step_name(), s);
      Raw(",\"error\":", "{\"message\":\"boom\"}", s);
      s->push_back('}');
      break;
  }
  out->ts_ms = now_ms_;
  out->kind = FleetLine::kInvalid;
  std::copy_n(run->id.data(), run->id_len, out->run_id_buf.data());
  out->run_id_len = run->id_len;
}

void Fleet::EmitUnknownType(Run* run, Line* out) {
  ++run->seq;
  Begin(*run, "agent_thought", out);
  Str(",\"text\":\"", "considering options", &out->text);
  out->text.push_back('}');
  out->kind = FleetLine::kUnknownType;
}

void Fleet::EmitRunEvent(Run* run, Line* out) {
  std::string* s = &out->text;
  const Workflow& wf = kWorkflows[run->workflow];
  ++run->seq;
  switch (run->phase) {
    case Phase::kDone:
      StartRun(run);
      [[fallthrough]];
    case Phase::kStart:
      if (run->phase == Phase::kStepStart) break;  // first seen mid-way
      Begin(*run, "run_started", out);
      Str(",\"workflow_id\":\"", wf.id, s);
      if (Chance(0.7)) Str(",\"objective\":\"", wf.objective, s);
      if (Chance(0.3)) Str(",\"severity\":\"", kSeverities[Below(10) == 0 ? 0 : 1 + Below(2)], s);
      if (Chance(0.4))
        Raw(",\"owner\":", R"({"primary":"ana@example.com","backup":"bo@example.com"})", s);
      if (Chance(0.3)) Raw(",\"attrs\":", R"({"tenant":"acme","region":"eu-west-1"})", s);
      s->push_back('}');
      run->phase = Phase::kStepStart;
      return;
    default:
      break;
  }
  switch (run->phase) {
    case Phase::kStepStart:
      Begin(*run, "step_started", out);
      Str(",\"step\":\"", run->step_name(), s);
      if (run->seq == 1) Str(",\"workflow_id\":\"", wf.id, s);
      s->push_back('}');
      run->work_left = static_cast<uint8_t>(1 + Below(3));
      run->phase = Phase::kWork;
      return;
    case Phase::kWork: {
      uint32_t r = Below(10);
      if (r < 8) {
        Begin(*run, "tool_call", out);
        Str(",\"step\":\"", run->step_name(), s);
        Str(",\"tool\":\"", kTools[Below(8)], s);
        Str(",\"status\":\"", "ok", s);
        Str(",\"side_effect\":\"", Below(4) == 0 ? "reversible" : "none", s);
        s->append(",\"cost_usd\":");
        AppendFixed(Below(300), 4, s);  // up to $0.03
        Int(",\"tokens\":", Below(4000), s);
        Int(",\"duration_ms\":", 5 + Below(2000), s);
      } else if (r == 8) {
        Begin(*run, "heartbeat", out);
        Str(",\"step\":\"", run->step_name(), s);
      } else {
        Begin(*run, "decision", out);
        Str(",\"step\":\"", run->step_name(), s);
        s->append(",\"confidence\":");
        AppendFixed(90 + Below(10), 2, s);
        Str(",\"action\":\"", "proceed", s);
        Str(",\"risk\":\"", "low", s);
        Int(",\"amount\":", Below(200), s);
      }
      s->push_back('}');
      if (--run->work_left == 0) run->phase = Phase::kStepEnd;
      return;
    }
    case Phase::kStepEnd:
      if (run->step == run->fail_step && !run->failure_done && run->mode != Mode::kHealthy &&
          run->mode != Mode::kCancelled) {
        run->phase = Phase::kFailure;
        run->failure_left = static_cast<uint8_t>(
            run->mode == Mode::kRetryChain ? 1 + Below(5) : (run->mode == Mode::kBudget ? 6 : 1));
        break;  // to the failure below
      }
      Begin(*run, "step_succeeded", out);
      Str(",\"step\":\"", run->step_name(), s);
      s->push_back('}');
      ++run->step;
      run->phase = run->step >= run->steps ? Phase::kComplete : Phase::kStepStart;
      return;
    case Phase::kComplete:
      Begin(*run, "run_completed", out);
      Str(",\"outcome\":\"",
          run->failed ? "failure" : (run->mode == Mode::kCancelled ? "cancelled" : "success"), s);
      s->push_back('}');
      run->phase = Phase::kDone;
      return;
    default:
      break;
  }

  // Phase::kFailure: the run's failure, one event per call.
  auto incident = [&] {
    if (!run->failed) {
      run->failed = true;
      ScheduleAcks(*run);
    }
  };
  auto continue_run = [&] {
    run->failure_done = true;
    run->phase = Phase::kStepEnd;
  };
  switch (run->mode) {
    case Mode::kFailCode:
      Begin(*run, "step_failed", out);
      Str(",\"step\":\"", run->step_name(), s);
      s->append(",\"error\":");
      s->append("{\"code\":\"");
      s->append(kFailCodes[Below(sizeof(kFailCodes) / sizeof(kFailCodes[0]))]);
      s->append("\",\"message\":\"step failed\"}");
      Raw(",\"retryable\":", "false", s);
      if (Chance(0.3)) {
        Raw(",\"blast_radius\":", Chance(0.1) ? R"({"users":5000,"jobs":2})" : R"({"users":12})",
            s);
        Str(",\"rollback_command\":\"", "agentctl rollback --run", s);
      }
      incident();
      run->phase = Chance(0.8) ? Phase::kComplete : Phase::kDone;
      break;
    case Mode::kRetryChain:
      Begin(*run, "step_failed", out);
      Str(",\"step\":\"", run->step_name(), s);
      s->append(",\"error\":");
      s->append("{\"code\":\"");
      s->append(kRetryCodes[Below(3)]);
      s->append("\"}");
      Raw(",\"retryable\":", "true", s);
      s->append(",\"attrs\":");
      s->append("{\"attempt\":");
      AppendInt(++run->retries, s);
      s->push_back('}');
      if (--run->failure_left == 0) {
        if (run->retries > 3) {
          incident();
          run->phase = Phase::kComplete;
        } else {
          continue_run();
        }
      }
      break;
    case Mode::kToolError:
    case Mode::kToolErrorNoEffect:
      Begin(*run, "tool_call", out);
      Str(",\"step\":\"", run->step_name(), s);
      Str(",\"tool\":\"", run->mode == Mode::kToolError ? "ledger.write" : "http.get", s);
      Str(",\"status\":\"", "error", s);
      if (run->mode == Mode::kToolError) {
        Str(",\"side_effect\":\"", kSideEffects[Below(3)], s);
        incident();
        run->phase = Phase::kComplete;
      } else {
        Str(",\"side_effect\":\"", "none", s);
        continue_run();
      }
      break;
    case Mode::kLowConfidence:
    case Mode::kRiskyDecision:
    case Mode::kBigAmount:
      Begin(*run, "decision", out);
      Str(",\"step\":\"", run->step_name(), s);
      s->append(",\"confidence\":");
      AppendFixed(run->mode == Mode::kLowConfidence ? 30 + Below(55) : 95, 2, s);
      Str(",\"action\":\"", "issue_refund", s);
      Str(",\"risk\":\"",
          run->mode == Mode::kRiskyDecision ? (Chance(0.5) ? "irreversible" : "external") : "low",
          s);
      Int(",\"amount\":", run->mode == Mode::kBigAmount ? 5000 + Below(45000) : Below(100), s);
      incident();
      continue_run();
      break;
    case Mode::kHandoffRequested: {
      Begin(*run, "handoff_requested", out);
      Str(",\"step\":\"", run->step_name(), s);
      Str(",\"reason\":\"", "needs a human decision", s);
      uint32_t t = Below(4);
      if (t < 3) Str(",\"handoff_type\":\"", kHandoffTypes[t], s);
      Raw(",\"options\":", R"([{"label":"approve","risk":"high"},{"label":"reject","risk":"low"}])",
          s);
      Raw(",\"evidence\":", R"({"order":"s3://evidence/order.json"})", s);
      Str(",\"owner_role\":\"", "finance-lead", s);
      Str(",\"next_action_after_decision\":\"", "resume the run", s);
      incident();
      run->phase = Phase::kDone;  // waits for the human
      break;
    }
    case Mode::kBudget:
      Begin(*run, "tool_call", out);
      Str(",\"step\":\"", run->step_name(), s);
      Str(",\"tool\":\"", "llm.complete", s);
      Str(",\"status\":\"", "ok", s);
      s->append(",\"cost_usd\":");
      AppendFixed(80 + Below(70), 2, s);  // $0.80..$1.49 each
      Int(",\"tokens\":", 50000 + Below(50000), s);
      if (--run->failure_left == 0) {
        incident();
        continue_run();
      }
      break;
    case Mode::kStall:
      // The run goes quiet for good; this call's line comes from a fresh run in its slot.
      --run->seq;
      run->phase = Phase::kDone;
      EmitRunEvent(run, out);
      return;
    case Mode::kFailedOutcome:
      Begin(*run, "run_completed", out);
      Str(",\"outcome\":\"", "failure", s);
      incident();
      run->phase = Phase::kDone;
      break;
    case Mode::kHealthy:
    case Mode::kCancelled:
      continue_run();
      --run->seq;
      EmitRunEvent(run, out);
      return;
  }
  s->push_back('}');
}

}  // namespace handoffd

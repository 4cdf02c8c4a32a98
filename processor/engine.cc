// Engine: run state, detection (contract section 4), packets and gates (5, 6), SLA timers,
// acknowledgements (3) and audit records (7), with the fine points of section 11.
//
// Hot path (every event): one run lookup in a FlatIndex, one scan of the run's seen-id window,
// interned-string updates that compare before they hash, and a few integer checks. A known run
// allocates only when its seen-id window doubles (4, 8, ... up to the limit) and for rare data
// (attrs, packets, step counters).
// Timers live in one min-heap with lazy invalidation: a run has at most one stall entry, which
// is re-pushed when its real deadline has moved on.
#include "processor/engine.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "processor/flat_index.h"
#include "processor/hcs.h"
#include "processor/intern.h"
#include "processor/json_text.h"
#include "processor/packet_writer.h"
#include "processor/run_state.h"
#include "processor/state_codec.h"
#include "processor/time_format.h"
#include "processor/timer_queue.h"

namespace handoffd {
namespace {

EngineObserver kNoopObserver;
constexpr std::string_view kOtherWorkflow = "_other";
constexpr std::string_view kPacketCeType = "dev.handoffd.packet.v1";
constexpr std::string_view kAuditCeType = "dev.handoffd.audit.v1";
// Audit and stall texts.
constexpr int64_t kMsPerSecond = 1000;

int64_t SatAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

int64_t SecondsToMs(int64_t s) {
  int64_t r;
  if (__builtin_mul_overflow(s, kMsPerSecond, &r)) return s > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

uint16_t ClassBit(FailureClass c) { return static_cast<uint16_t>(1u << static_cast<int>(c)); }

void AppendInt(std::string* out, int64_t v) { AppendJsonInt(out, v); }

void AppendDouble(std::string* out, double v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, res.ptr);
}

void AppendTenths(std::string* out, int tenths) {
  AppendInt(out, tenths / 10);
  out->push_back('.');
  out->push_back(static_cast<char>('0' + tenths % 10));
}

void AppendTime(std::string* out, int64_t ms) {
  char buf[kRfc3339MsLength];
  out->append(buf, FormatRfc3339Ms(ms, buf));
}

// "<min>" of a band, as configured ("90", "77.5").
void AppendScore(std::string* out, double score) { AppendDouble(out, score); }

}  // namespace

class Engine::Impl {
 public:
  Impl(const Config& config, EngineObserver* observer)
      : cfg_(config),
        obs_(observer != nullptr ? observer : &kNoopObserver),
        seen_limit_(static_cast<uint32_t>(
            std::clamp<int64_t>(config.limits.max_seen_event_ids_per_run, 1, INT32_MAX))) {}

  ~Impl() {
    for (uint32_t slot = 0; slot < runs_.size(); ++slot) {
      if (runs_[slot].in_use) ReleaseRunStrings(&runs_[slot], &strings_);
    }
  }

  bool Process(const Event& ev, const SourceRef& source, OutputSink* sink);
  void ProcessDeadLettered(int64_t ts_ms, const SourceRef& source, OutputSink* sink) {
    MoveWatermark(WatermarkTime(ts_ms, source));
    FireDue(sink);
  }
  int64_t WatermarkTime(int64_t ts_ms, const SourceRef& source) const {
    if (source.record_time_ms < 0) return ts_ms;
    return std::min(ts_ms, SatAdd(source.record_time_ms, cfg_.time.max_future_ms));
  }
  bool AheadOfRecordTime(int64_t ts_ms, const SourceRef& source) const {
    return WatermarkTime(ts_ms, source) < ts_ms;
  }
  void AdvanceWatermark(int64_t watermark_ms, OutputSink* sink) {
    if (watermark_ms > watermark_) watermark_ = watermark_ms;
    FireDue(sink);
  }
  int64_t watermark_ms() const { return watermark_; }
  int64_t next_timer_ms() const { return timers_.empty() ? INT64_MAX : timers_.Top().due_ms; }
  int64_t max_event_ms() const { return max_ts_; }
  int64_t active_runs() const { return active_; }
  int64_t held_runs() const { return static_cast<int64_t>(run_index_.size()); }
  void DrainChanges(ChangelogSink* sink);
  void MarkAllChanged() {
    for (uint32_t slot = 0; slot < runs_.size(); ++slot) {
      if (runs_[slot].in_use) Touch(slot);
    }
  }
  std::string SerializeMeta() const { return EncodeMeta({watermark_, max_ts_, next_seq_}); }
  bool RestoreRun(std::string_view run_id, std::string_view state);
  bool RestoreMeta(std::string_view meta);

 private:
  struct Trigger {
    FailureClass cls = FailureClass::kUnclassifiedFailure;
    uint32_t step = 0;  // Interner id, 0 = none
    std::string_view summary;
    uint16_t flags = 0;
    int64_t detected_at = 0;
    const SourceRef* source = nullptr;  // null for timers
    const Event* request = nullptr;     // handoff_requested, for the planned fields
  };
  struct DirtyRef {
    uint32_t slot;
    uint32_t gen;
  };

  // --- Runs. ---
  uint32_t FindRun(std::string_view run_id, uint64_t hash) const {
    return run_index_.Find(run_id, hash,
                           [this](uint32_t slot) { return std::string_view(runs_[slot].run_id); });
  }
  uint32_t AllocSlot();
  uint32_t CreateRun(std::string_view run_id, uint64_t hash);
  void InstallRun(uint32_t slot, std::string_view run_id, uint64_t hash);
  // Drops the run; `log` queues a changelog tombstone when the run was ever written there.
  void ForgetRun(uint32_t slot, bool log);
  // Keeps only what a retired run needs (Run::retired) and arms its forgetting.
  void RetireRun(uint32_t slot);
  void EvictOne();
  void Touch(uint32_t slot);
  void SetActive(int64_t delta) {
    active_ += delta;
    obs_->OnActiveRuns(active_);
  }
  void SetOpen(Severity s, int64_t delta) {
    open_[static_cast<size_t>(s)] += delta;
    obs_->OnOpenPackets(s, open_[static_cast<size_t>(s)]);
  }
  std::string_view Label(const Run& run) const {
    return run.wf != nullptr ? std::string_view(run.wf->id) : kOtherWorkflow;
  }
  StepStat& Step(Run& run, uint32_t step_id);
  int64_t StallTimeoutMs(const Run& run) const {
    return SecondsToMs(run.wf != nullptr && run.wf->stall_timeout_s
                           ? *run.wf->stall_timeout_s
                           : cfg_.defaults.stall_timeout_s);
  }
  int64_t RetentionDue(const Run& run) const {
    return std::max(SatAdd(run.completed_ts, SecondsToMs(cfg_.limits.completed_run_retention_s)),
                    run.quiet_since);
  }
  // When a retired run is forgotten.
  int64_t RetiredDue(const Run& run) const {
    return SatAdd(RetentionDue(run), SecondsToMs(cfg_.limits.retired_run_memory_s));
  }

  // --- Events. ---
  void MoveWatermark(int64_t ts);
  void ApplyEvent(uint32_t slot, const Event& ev, const SourceRef& source, OutputSink* sink);
  void DetectStepFailed(uint32_t slot, const Event& ev, const SourceRef& source, OutputSink* sink);
  void DetectDecision(uint32_t slot, const Event& ev, const SourceRef& source, OutputSink* sink);
  void CheckBudget(uint32_t slot, const Event& ev, const SourceRef& source, OutputSink* sink);
  void ApplyAck(const Event& ev, const SourceRef& source, OutputSink* sink);
  FailureClass Classify(std::string_view code) const;

  // --- Packets. ---
  void Open(uint32_t slot, const Trigger& t, int64_t emitted_at, OutputSink* sink);
  void Resolve(const Run& run, const Packet& p, PacketView* v);
  void EmitRevision(const Run& run, Packet& p, Gate gate, TopicRole role, int64_t at,
                    AuditAction action, std::string_view reason, OutputSink* sink);
  void EmitAudit(const Run& run, const Packet& p, AuditAction action, int64_t at,
                 std::optional<std::string_view> by, std::string_view reason, OutputSink* sink);
  // Emits json_ as one record of `run` under ce_id_ (both prepared by the caller).
  void EmitJson(const Run& run, TopicRole role, std::string_view ce_type, int64_t at,
                OutputSink* sink);
  void SetPacketId(const Run& run, const Packet& p);
  void RescorePending(uint32_t slot, int64_t at, OutputSink* sink);
  void ClosePacket(uint32_t slot, size_t index, int64_t at);
  Packet* FindPacket(Run& run, uint32_t number);

  // --- Timers. ---
  void PushTimer(uint32_t slot, uint32_t packet, TimerKind kind, int64_t due);
  void PushPacketTimers(uint32_t slot, const Packet& p);
  // The earliest time a timer of `p` still acts on it: its hold, an escalation level its
  // acknowledgement does not stop, its expiry.
  int64_t NextPacketTimer(const Packet& p) const;
  void ArmStall(uint32_t slot);
  void FireDue(OutputSink* sink);
  void FireTimer(const Timer& t, OutputSink* sink);
  void FireStall(uint32_t slot, const Timer& t, OutputSink* sink);
  void FireEscalation(uint32_t slot, Packet& p, int level, int64_t due, OutputSink* sink);
  void FireExpiry(uint32_t slot, uint32_t number, int64_t due, OutputSink* sink);

  const Config& cfg_;
  EngineObserver* obs_;
  const uint32_t seen_limit_;

  Interner strings_;
  RunSlots runs_;
  std::vector<uint32_t> free_slots_;
  FlatIndex run_index_;
  TimerQueue timers_;
  int64_t max_ts_ = kNoTime;
  int64_t watermark_ = kNoTime;
  uint64_t next_seq_ = 1;
  int64_t active_ = 0;
  std::array<int64_t, kSeverityCount> open_{};
  size_t evict_cursor_ = 0;

  std::vector<DirtyRef> dirty_;
  std::vector<std::string> tombstones_;

  // Scratch buffers, reused across records.
  PacketView view_;
  std::string json_;
  std::string packet_id_;
  std::string ce_id_;
  std::string reason_;
  std::string summary_;
  std::string state_;
};

// ---------------------------------------------------------------------------------------------
// Runs

uint32_t Engine::Impl::AllocSlot() {
  if (!free_slots_.empty()) {
    uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  return runs_.Add();
}

void Engine::Impl::InstallRun(uint32_t slot, std::string_view run_id, uint64_t hash) {
  Run& run = runs_[slot];
  run.run_id.assign(run_id);
  run.in_use = true;
  run_index_.Insert(hash, slot);
  // Replay never drains the changelog: drop stale dirty entries now and then so the list stays
  // proportional to the live runs.
  if (dirty_.size() > 2 * run_index_.size() + 1024) {
    std::erase_if(dirty_, [this](const DirtyRef& d) {
      const Run& r = runs_[d.slot];
      return !r.in_use || r.gen != d.gen || !r.dirty;
    });
  }
}

uint32_t Engine::Impl::CreateRun(std::string_view run_id, uint64_t hash) {
  const int64_t limit = cfg_.limits.max_active_runs;
  if (limit > 0 && static_cast<int64_t>(run_index_.size()) >= limit) EvictOne();
  uint32_t slot = AllocSlot();
  InstallRun(slot, run_id, hash);
  runs_[slot].seq = next_seq_++;
  SetActive(+1);
  return slot;
}

void Engine::Impl::ForgetRun(uint32_t slot, bool log) {
  Run& run = runs_[slot];
  if (!run.completed) SetActive(-1);
  if (run.extras) {
    for (const Packet& p : run.extras->packets) SetOpen(p.severity, -1);
  }
  ReleaseRunStrings(&run, &strings_);
  run_index_.Erase(Hash64(run.run_id), slot);
  if (log && run.logged) tombstones_.push_back(std::move(run.run_id));
  uint32_t gen = run.gen + 1;
  run = Run();
  run.gen = gen;
  free_slots_.push_back(slot);
}

void Engine::Impl::RetireRun(uint32_t slot) {
  Run& run = runs_[slot];
  ReleaseRunStrings(&run, &strings_);
  run.extras.reset();  // no open packet; attrs only
  run.seen.Clear();
  run.steps.clear();
  run.steps.shrink_to_fit();
  run.retired = true;
  Touch(slot);
  PushTimer(slot, 0, TimerKind::kRetention, RetiredDue(run));
}

// Approximately the oldest-idle run: the quietest of a few runs sampled from a rotating
// cursor, preferring runs without open packets. Exact LRU would cost a list node per run.
void Engine::Impl::EvictOne() {
  constexpr int kSamples = 8;
  uint32_t best = UINT32_MAX;
  int found = 0;
  for (size_t scanned = 0; scanned < runs_.size() && found < kSamples; ++scanned) {
    evict_cursor_ = (evict_cursor_ + 1) % runs_.size();
    const Run& r = runs_[static_cast<uint32_t>(evict_cursor_)];
    if (!r.in_use) continue;
    ++found;
    if (best == UINT32_MAX) {
      best = static_cast<uint32_t>(evict_cursor_);
      continue;
    }
    const Run& b = runs_[best];
    if (std::make_tuple(r.open_packets > 0, !r.retired, r.quiet_since) <
        std::make_tuple(b.open_packets > 0, !b.retired, b.quiet_since)) {
      best = static_cast<uint32_t>(evict_cursor_);
    }
  }
  if (best == UINT32_MAX) return;
  obs_->OnLimitHit("max_active_runs");
  ForgetRun(best, /*log=*/true);
}

void Engine::Impl::Touch(uint32_t slot) {
  Run& run = runs_[slot];
  if (run.dirty) return;
  run.dirty = true;
  dirty_.push_back({slot, run.gen});
}

StepStat& Engine::Impl::Step(Run& run, uint32_t step_id) {
  if (StepStat* s = run.FindStep(step_id)) return *s;
  if (static_cast<int64_t>(run.steps.size()) >= cfg_.limits.max_steps_per_run &&
      !run.steps.empty()) {
    // A run that invents step names without end must not grow without end: forget the
    // earliest-seen step (its retries count from zero again if it comes back).
    strings_.Unref(run.steps.front().step);
    run.steps.erase(run.steps.begin());
    obs_->OnLimitHit("max_steps_per_run");
  }
  strings_.Ref(step_id);
  StepStat& s = run.steps.emplace_back();
  s.step = step_id;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Events

void Engine::Impl::MoveWatermark(int64_t ts) {
  if (max_ts_ == kNoTime || ts > max_ts_) max_ts_ = ts;
  int64_t wm = SatAdd(max_ts_, -cfg_.time.allowed_lateness_ms);
  if (wm > watermark_) watermark_ = wm;
}

bool Engine::Impl::Process(const Event& ev, const SourceRef& source, OutputSink* sink) {
  obs_->OnEvent(ev.type);
  MoveWatermark(WatermarkTime(ev.ts_ms, source));
  FireDue(sink);
  if (ev.type == EventType::kUnknown) return true;
  if (ev.IsAck()) {
    ApplyAck(ev, source, sink);
    FireDue(sink);
    return true;
  }
  const uint64_t hash = Hash64(ev.run_id);
  uint32_t slot = FindRun(ev.run_id, hash);
  const bool created = slot == FlatIndex::kNotFound;
  if (created) slot = CreateRun(ev.run_id, hash);
  Run& run = runs_[slot];
  if (run.retired) return false;
  if (!ev.event_id.empty()) {
    const uint64_t id_hash = Hash64(ev.event_id);
    if (run.seen.Contains(id_hash)) return true;
    if (run.seen.Insert(id_hash, seen_limit_)) obs_->OnLimitHit("max_seen_event_ids_per_run");
  }
  Touch(slot);
  ApplyEvent(slot, ev, source, sink);
  // A run counts as started once, at its first event whatever its type (contract section 2: a
  // run first seen through another event is created on the spot), under the workflow known
  // after it: the exception rate divides by this, and runs whose run_started came late or never
  // must not inflate it.
  if (created) obs_->OnRunStarted(Label(run));
  FireDue(sink);
  return true;
}

void Engine::Impl::ApplyEvent(uint32_t slot, const Event& ev, const SourceRef& source,
                              OutputSink* sink) {
  Run& run = runs_[slot];
  const int64_t ts = ev.ts_ms;
  if (run.max_ts == kNoTime || ts > run.max_ts) run.max_ts = ts;
  if (run.quiet_since == kNoTime || ts > run.quiet_since) run.quiet_since = ts;
  run.stall_reported = false;
  if (!run.started_seen && (run.start_ts == kNoTime || ts < run.start_ts)) run.start_ts = ts;

  // Fields any event may carry: later (arrival order) replaces earlier; owner and blast radius
  // merge per subfield.
  if (ev.workflow_id && strings_.Get(run.workflow) != *ev.workflow_id) {
    const int64_t timeout_before = StallTimeoutMs(run);
    strings_.Assign(&run.workflow, *ev.workflow_id);
    run.wf = cfg_.FindWorkflow(*ev.workflow_id);
    // The new workflow stalls sooner than the armed timer assumed: arm the earlier deadline too
    // (FireStall re-arms a timer that comes too early; one that comes late would report late).
    const int64_t timeout = StallTimeoutMs(run);
    if (run.stall_armed && timeout < timeout_before) {
      PushTimer(slot, 0, TimerKind::kStall, SatAdd(run.quiet_since, timeout));
    }
  }
  if (ev.objective) strings_.Assign(&run.objective, *ev.objective);
  if (ev.recommended_action) strings_.Assign(&run.recommended_action, *ev.recommended_action);
  if (ev.rollback_command) strings_.Assign(&run.rollback_command, *ev.rollback_command);
  if (ev.owner_primary) strings_.Assign(&run.owner_primary, *ev.owner_primary);
  if (ev.owner_backup) strings_.Assign(&run.owner_backup, *ev.owner_backup);
  if (ev.blast_radius_users) run.blast_users = *ev.blast_radius_users;
  if (ev.blast_radius_jobs) run.blast_jobs = *ev.blast_radius_jobs;
  if (ev.attrs_json) {
    if (!run.extras) run.extras = std::make_unique<RunExtras>();
    run.extras->attrs_json.emplace(*ev.attrs_json);
  }
  // Saturates at the largest double: two costs near it would sum to infinity, which JSON cannot
  // spell (the packet would say null where its schema wants a number).
  if (ev.cost_usd) {
    run.cost_usd = std::min(run.cost_usd + *ev.cost_usd, std::numeric_limits<double>::max());
  }
  // The event's own step, interned; run.last_step holds it from here on.
  uint32_t step_id = 0;
  if (ev.step) {
    strings_.Assign(&run.last_step, *ev.step);
    step_id = run.last_step;
  }

  switch (ev.type) {
    case EventType::kRunStarted:
      if (ev.severity) run.severity = *ev.severity;
      if (!run.started_seen) {
        run.started_seen = true;
        run.start_ts = ts;
      }
      break;
    case EventType::kStepSucceeded:
      if (step_id != 0) {
        StepStat& s = Step(run, step_id);
        if (s.succeeded_ts == kNoTime || ts > s.succeeded_ts) {
          s.prev_succeeded_ts = s.succeeded_ts;
          s.succeeded_ts = ts;
        } else if (ts < s.succeeded_ts && ts > s.prev_succeeded_ts) {
          s.prev_succeeded_ts = ts;
        }
        if (run.extras) {
          // A success at or before an open packet's trigger that is later than the one it
          // shows (a late event) becomes its last successful step.
          for (Packet& p : run.extras->packets) {
            if (ts <= p.detected_at && ts >= p.last_success_ts) {
              strings_.Ref(step_id);
              strings_.Unref(p.last_success_step);
              p.last_success_step = step_id;
              p.last_success_ts = ts;
            }
          }
        }
      }
      break;
    case EventType::kStepFailed:
      DetectStepFailed(slot, ev, source, sink);
      break;
    case EventType::kToolCall:
      ++run.tool_calls;
      if (ev.tool_status == ToolStatus::kError && ev.side_effect &&
          *ev.side_effect != SideEffect::kNone) {
        summary_.assign("tool ");
        summary_.append(ev.tool);
        summary_.append(" failed with side effect ");
        summary_.append(ToString(*ev.side_effect));
        Trigger t;
        t.cls = FailureClass::kDownstreamWriteFailure;
        t.step = step_id;
        t.summary = summary_;
        t.detected_at = ts;
        t.source = &source;
        Open(slot, t, ts, sink);
      }
      break;
    case EventType::kDecision:
      DetectDecision(slot, ev, source, sink);
      break;
    case EventType::kHandoffRequested: {
      Trigger t;
      t.cls = !ev.handoff_type ? FailureClass::kBusinessJudgment
              : *ev.handoff_type == HandoffType::kRiskAuthorization
                  ? FailureClass::kRiskAuthorization
              : *ev.handoff_type == HandoffType::kEvidenceGap ? FailureClass::kEvidenceGap
                                                              : FailureClass::kBusinessJudgment;
      t.step = step_id;
      t.summary = ev.reason;
      t.detected_at = ts;
      t.source = &source;
      t.request = &ev;
      Open(slot, t, ts, sink);
      break;
    }
    case EventType::kRunCompleted:
      if (!run.completed) {
        if (ev.outcome == Outcome::kFailure && run.incidents == 0) {
          Trigger t;
          t.cls = FailureClass::kUnclassifiedFailure;
          t.step = run.last_step;
          t.summary = "run completed with outcome failure";
          t.detected_at = ts;
          t.source = &source;
          Open(slot, t, ts, sink);
        }
        run.completed = true;
        run.completed_ts = ts;
        SetActive(-1);
        obs_->OnRunCompleted(Label(run), ev.outcome);
        if (run.open_packets == 0) PushTimer(slot, 0, TimerKind::kRetention, RetentionDue(run));
      }
      break;
    default:
      break;
  }
  CheckBudget(slot, ev, source, sink);
  RescorePending(slot, ts, sink);
  ArmStall(slot);
}

FailureClass Engine::Impl::Classify(std::string_view code) const {
  for (const Rule& rule : cfg_.rules) {
    for (const std::string& c : rule.codes) {
      if (c == code) return rule.failure_class;
    }
  }
  return FailureClass::kUnclassifiedFailure;
}

void Engine::Impl::DetectStepFailed(uint32_t slot, const Event& ev, const SourceRef& source,
                                    OutputSink* sink) {
  Run& run = runs_[slot];
  const uint32_t step_id = run.last_step;  // step is required on step_failed
  summary_.assign(ev.error_code);
  if (ev.error_message) {
    summary_.append(": ");
    summary_.append(*ev.error_message);
  }
  Trigger t;
  t.step = step_id;
  t.detected_at = ev.ts_ms;
  t.source = &source;
  if (ev.retryable) {
    // A retryable failure alone opens nothing; more than max_retries on one step does.
    StepStat& s = Step(run, step_id);
    ++s.retries;
    const int64_t max_retries =
        run.wf != nullptr && run.wf->max_retries ? *run.wf->max_retries : cfg_.defaults.max_retries;
    if (static_cast<int64_t>(s.retries) <= max_retries) return;
    summary_.append(" (");
    AppendInt(&summary_, s.retries);
    summary_.append(" retryable failures, max ");
    AppendInt(&summary_, max_retries);
    summary_.append(")");
    t.cls = FailureClass::kRetryExhausted;
  } else {
    t.cls = Classify(ev.error_code);
  }
  t.summary = summary_;
  Open(slot, t, ev.ts_ms, sink);
}

void Engine::Impl::DetectDecision(uint32_t slot, const Event& ev, const SourceRef& source,
                                  OutputSink* sink) {
  const Run& run = runs_[slot];
  const WorkflowConfig* wf = run.wf;
  const double threshold = wf != nullptr && wf->confidence_threshold
                               ? *wf->confidence_threshold
                               : cfg_.defaults.confidence_threshold;
  const bool low = ev.confidence < threshold;
  const bool risky = ev.risk == Risk::kIrreversible || ev.risk == Risk::kExternal;
  const bool large =
      wf != nullptr && wf->amount_threshold && ev.amount && *ev.amount > *wf->amount_threshold;
  uint16_t matched =
      static_cast<uint16_t>((low ? ClassBit(FailureClass::kLowConfidence) : 0) |
                            (risky ? ClassBit(FailureClass::kRiskAuthorization) : 0) |
                            (large ? ClassBit(FailureClass::kBusinessJudgment) : 0));
  if (matched == 0) return;
  Trigger t;
  summary_.assign("decision");
  if (ev.action) {
    summary_.append(" '");
    summary_.append(*ev.action);
    summary_.append("'");
  }
  if (low) {
    t.cls = FailureClass::kLowConfidence;
    summary_.append(": confidence ");
    AppendDouble(&summary_, ev.confidence);
    summary_.append(" below threshold ");
    AppendDouble(&summary_, threshold);
  } else if (risky) {
    t.cls = FailureClass::kRiskAuthorization;
    summary_.append(": risk ");
    summary_.append(ToString(*ev.risk));
    summary_.append(" needs authorisation");
  } else {
    t.cls = FailureClass::kBusinessJudgment;
    summary_.append(": amount ");
    AppendDouble(&summary_, *ev.amount);
    summary_.append(" over threshold ");
    AppendDouble(&summary_, *wf->amount_threshold);
  }
  t.flags = static_cast<uint16_t>(matched & ~ClassBit(t.cls));
  t.step = ev.step ? run.last_step : 0;
  t.summary = summary_;
  t.detected_at = ev.ts_ms;
  t.source = &source;
  Open(slot, t, ev.ts_ms, sink);
}

void Engine::Impl::CheckBudget(uint32_t slot, const Event& ev, const SourceRef& source,
                               OutputSink* sink) {
  Run& run = runs_[slot];
  if (run.budget_fired || run.wf == nullptr) return;
  const Budget& b = run.wf->budget;
  summary_.clear();
  if (b.cost_usd && run.cost_usd > *b.cost_usd) {
    summary_.append("cost ");
    AppendDouble(&summary_, run.cost_usd);
    summary_.append(" USD over budget ");
    AppendDouble(&summary_, *b.cost_usd);
    summary_.append(" USD");
  } else if (b.tool_calls && static_cast<int64_t>(run.tool_calls) > *b.tool_calls) {
    summary_.append("tool calls ");
    AppendInt(&summary_, run.tool_calls);
    summary_.append(" over budget ");
    AppendInt(&summary_, *b.tool_calls);
  } else if (b.duration_s && run.start_ts != kNoTime &&
             ev.ts_ms - run.start_ts > SecondsToMs(*b.duration_s)) {
    summary_.append("run time ");
    AppendInt(&summary_, (ev.ts_ms - run.start_ts) / kMsPerSecond);
    summary_.append(" s over budget ");
    AppendInt(&summary_, *b.duration_s);
    summary_.append(" s");
  } else {
    return;
  }
  run.budget_fired = true;
  Trigger t;
  t.cls = FailureClass::kBudgetExceeded;
  t.step = run.last_step;
  t.summary = summary_;
  t.detected_at = ev.ts_ms;
  t.source = &source;
  Open(slot, t, ev.ts_ms, sink);
}

void Engine::Impl::ApplyAck(const Event& ev, const SourceRef& source, OutputSink* sink) {
  const uint32_t slot = FindRun(ev.run_id, Hash64(ev.run_id));
  if (slot == FlatIndex::kNotFound) return;
  Run& run = runs_[slot];
  if (!run.extras || run.extras->packets.empty()) return;
  uint32_t number = 0;  // 0 = every open packet of the run
  if (ev.packet_id) {
    std::string_view id = *ev.packet_id;
    if (id.size() <= run.run_id.size() + 1 || id.substr(0, run.run_id.size()) != run.run_id ||
        id[run.run_id.size()] != '#') {
      return;
    }
    std::string_view digits = id.substr(run.run_id.size() + 1);
    auto res = std::from_chars(digits.data(), digits.data() + digits.size(), number);
    if (res.ec != std::errc() || res.ptr != digits.data() + digits.size() || number == 0) return;
  }
  Touch(slot);
  const bool resolve = ev.type == EventType::kHandoffResolved;
  const int64_t ts = ev.ts_ms;
  // The time-to-ack sample: an ack stamped more than time.max_future_ms ahead of its Kafka record
  // (a wrong clock, live mode only) counts from its record time instead, which is when the ack
  // was produced; otherwise one such ack puts hours or days into the MTTA of its severity.
  const int64_t acked_ms = AheadOfRecordTime(ts, source) ? source.record_time_ms : ts;
  auto& packets = run.extras->packets;
  for (size_t i = 0; i < packets.size();) {
    Packet& p = packets[i];
    // A run-wide ack (no packet_id) covers the packets it can have seen: those detected at or
    // before its ts. Without this, an ack stamped before a later incident would silence that
    // incident's escalations and record an MTTA of 0.
    if ((number != 0 && p.number != number) || (number == 0 && p.detected_at > ts)) {
      ++i;
      continue;
    }
    const bool first = !p.acked;
    if (first) {
      p.acked = true;
      p.acked_at = ts;
      obs_->OnAcknowledged(p.severity,
                           static_cast<double>(std::max<int64_t>(0, acked_ms - p.detected_at)) /
                               static_cast<double>(kMsPerSecond));
    } else if (ts < p.acked_at) {
      p.acked_at = ts;
    }
    reason_.assign(resolve ? "resolved" : "acknowledged");
    if (ev.by) {
      reason_.append(" by ");
      reason_.append(*ev.by);
    }
    if (resolve) {
      if (NextPacketTimer(p) < ts) {
        // A timer of the packet comes first in event time (its hold, an escalation the resolve
        // is too late to stop, or its expiry): it fires when the watermark reaches it, and the
        // resolve at its own time after it (contract 11: open until resolved or expires_at).
        if (p.resolve_at == kNoTime || ts < p.resolve_at) {
          p.resolve_at = ts;
          p.resolve_by = ev.by ? std::optional<std::string>(*ev.by) : std::nullopt;
          PushTimer(slot, p.number, TimerKind::kResolve, ts);
        }
        ++i;
        continue;
      }
      reason_.append("; incident closed");
      EmitAudit(run, p, AuditAction::kResolved, ts, ev.by, reason_, sink);
      ClosePacket(slot, i, ts);
      continue;
    }
    if (first) {
      reason_.append("; escalations stop");
      EmitAudit(run, p, AuditAction::kAcknowledged, ts, ev.by, reason_, sink);
    }
    ++i;
  }
}

// ---------------------------------------------------------------------------------------------
// Packets

Packet* Engine::Impl::FindPacket(Run& run, uint32_t number) {
  if (!run.extras) return nullptr;
  for (Packet& p : run.extras->packets) {
    if (p.number == number) return &p;
  }
  return nullptr;
}

void Engine::Impl::SetPacketId(const Run& run, const Packet& p) {
  packet_id_.assign(run.run_id);
  packet_id_.push_back('#');
  AppendInt(&packet_id_, p.number);
}

// Everything in the packet that is not fixed at detection is read from the run here, so each
// revision shows the run as it stands.
void Engine::Impl::Resolve(const Run& run, const Packet& p, PacketView* v) {
  using F = PacketField;
  const WorkflowConfig* wf = run.wf;
  FieldMask raw = 0;
  FieldMask fin = 0;
  auto from_events = [&](uint32_t id, F f, std::optional<std::string_view>* out) {
    if (id == Interner::kNone) return false;
    *out = strings_.Get(id);
    raw |= Bit(f);
    fin |= Bit(f);
    return true;
  };
  auto from_catalog = [&](const std::optional<std::string>& value, F f,
                          std::optional<std::string_view>* out) {
    if (!value) return;
    *out = *value;
    fin |= Bit(f);
  };

  *v = PacketView();
  v->run_id = run.run_id;
  from_events(run.workflow, F::kWorkflowId, &v->workflow_id);
  if (!from_events(run.objective, F::kObjective, &v->objective) && wf != nullptr) {
    from_catalog(wf->objective, F::kObjective, &v->objective);
  }
  v->failure_class = p.cls;

  // last_successful_step: the latest success at or before the trigger, by event time (kept by
  // the packet: Open, ApplyEvent).
  const bool has_last = p.last_success_step != Interner::kNone;
  if (has_last) v->last_successful_step = strings_.Get(p.last_success_step);
  if (has_last || run.started_seen) {
    raw |= Bit(F::kLastSuccessfulStep);
    fin |= Bit(F::kLastSuccessfulStep);
  }
  from_events(p.failing_step, F::kFailingStep, &v->failing_step);
  if (!p.error_summary.empty()) {
    v->error_summary = p.error_summary;
    raw |= Bit(F::kErrorSummary);
    fin |= Bit(F::kErrorSummary);
  }

  if (run.blast_users != kUnknownCount) v->blast_users = run.blast_users;
  if (run.blast_jobs != kUnknownCount) v->blast_jobs = run.blast_jobs;
  if (v->blast_users || v->blast_jobs) raw |= Bit(F::kBlastRadius);
  if (wf != nullptr) {
    if (!v->blast_users && wf->blast_radius_users) v->blast_users = *wf->blast_radius_users;
    if (!v->blast_jobs && wf->blast_radius_jobs) v->blast_jobs = *wf->blast_radius_jobs;
  }
  if (v->blast_users || v->blast_jobs) fin |= Bit(F::kBlastRadius);

  const size_t cls = static_cast<size_t>(p.cls);
  if (!from_events(run.recommended_action, F::kRecommendedAction, &v->recommended_action)) {
    if (wf != nullptr && wf->recommended_actions[cls]) {
      from_catalog(wf->recommended_actions[cls], F::kRecommendedAction, &v->recommended_action);
    } else {
      from_catalog(cfg_.defaults.recommended_actions[cls], F::kRecommendedAction,
                   &v->recommended_action);
    }
  }
  if (!from_events(run.rollback_command, F::kRollbackCommand, &v->rollback_command) &&
      wf != nullptr) {
    from_catalog(wf->rollback_command, F::kRollbackCommand, &v->rollback_command);
  }
  if (!from_events(run.owner_primary, F::kOwnerPrimary, &v->owner_primary) && wf != nullptr) {
    from_catalog(wf->owner_primary, F::kOwnerPrimary, &v->owner_primary);
  }
  if (!from_events(run.owner_backup, F::kOwnerBackup, &v->owner_backup) && wf != nullptr) {
    from_catalog(wf->owner_backup, F::kOwnerBackup, &v->owner_backup);
  }

  const SlaBand& band = cfg_.Sla(p.severity);
  v->ttl_s = band.ttl_s;
  v->expires_at_ms = SatAdd(p.detected_at, SecondsToMs(band.ttl_s));
  v->severity = p.severity;
  v->missing = static_cast<FieldMask>(kAllFields & ~fin);
  v->enriched = static_cast<FieldMask>(fin & ~raw);
  v->hcs = ComputeHcs(fin);
  v->raw_tenths = ComputeHcs(raw).score_tenths;
  v->complete = MeetsMinimum(v->hcs.score_tenths, band.min_score);
  v->first_response_s = band.first_response_s;
  v->ack_deadline_ms = SatAdd(p.detected_at, SecondsToMs(band.first_response_s));
  v->escalation_route = band.escalation_route;
  v->decision_authority = band.decision_authority;
  v->escalation_level = p.escalation_level;
  if (p.escalation_level == 2) {
    v->escalation_target =
        v->owner_backup ? *v->owner_backup : std::string_view(band.escalation_route);
  } else if (p.escalation_level >= 3) {
    v->escalation_target = band.decision_authority;
  }
  v->detected_at_ms = p.detected_at;
  v->has_source = p.has_source;
  v->source_topic = p.source_topic;
  v->source_partition = p.source_partition;
  v->source_offset = p.source_offset;
  v->flag_classes = p.flag_classes;
  v->override_flag = p.override_page;
  if (run.extras && run.extras->attrs_json) v->attrs_json = *run.extras->attrs_json;
  if (KindOf(p.cls) == HandoffKind::kPlanned) {
    v->trigger_reason = p.error_summary;
    if (p.options_json) v->options_json = *p.options_json;
    if (p.evidence_json) v->evidence_json = *p.evidence_json;
    if (p.owner_role) v->owner_role = *p.owner_role;
    if (p.next_action) v->next_action_after_decision = *p.next_action;
  }
  for (const StepStat& s : run.steps) {
    if (s.step == p.failing_step && p.failing_step != Interner::kNone) v->retries = s.retries;
  }
  v->tool_calls = run.tool_calls;
  v->cost_usd = run.cost_usd;
}

void Engine::Impl::EmitRevision(const Run& run, Packet& p, Gate gate, TopicRole role, int64_t at,
                                AuditAction action, std::string_view reason, OutputSink* sink) {
  ++p.revision;
  Resolve(run, p, &view_);
  SetPacketId(run, p);
  view_.packet_id = packet_id_;
  view_.revision = p.revision;
  view_.gate = gate;
  view_.emitted_at_ms = at;
  json_.clear();
  WritePacket(view_, &json_);
  ce_id_.assign(packet_id_);
  ce_id_.push_back('/');
  AppendInt(&ce_id_, p.revision);
  EmitJson(run, role, kPacketCeType, at, sink);
  obs_->OnHandoff(Label(run), KindOf(p.cls), p.severity, gate);
  EmitAudit(run, p, action, at, std::nullopt, reason, sink);
}

void Engine::Impl::EmitAudit(const Run& run, const Packet& p, AuditAction action, int64_t at,
                             std::optional<std::string_view> by, std::string_view reason,
                             OutputSink* sink) {
  SetPacketId(run, p);
  AuditView a;
  a.packet_id = packet_id_;
  a.revision = p.revision;
  a.action = action;
  a.at_ms = at;
  a.by = by;
  a.reason = reason;
  json_.clear();
  WriteAudit(a, &json_);
  ce_id_.assign("audit/");
  ce_id_.append(packet_id_);
  ce_id_.push_back('/');
  AppendInt(&ce_id_, p.revision);
  ce_id_.push_back('/');
  ce_id_.append(ToString(action));
  EmitJson(run, TopicRole::kAudit, kAuditCeType, at, sink);
}

void Engine::Impl::EmitJson(const Run& run, TopicRole role, std::string_view ce_type, int64_t at,
                            OutputSink* sink) {
  OutputRecord record{};
  record.role = role;
  record.key = run.run_id;
  record.value = json_;
  record.ce_id = ce_id_;
  record.ce_type = ce_type;
  record.time_ms = at;
  sink->Emit(record);
}

void Engine::Impl::Open(uint32_t slot, const Trigger& t, int64_t emitted_at, OutputSink* sink) {
  Run& run = runs_[slot];
  if (run.extras) {
    for (const Packet& p : run.extras->packets) {
      if (p.cls == t.cls && p.failing_step == t.step) return;  // same incident still open
    }
  }
  if (static_cast<int64_t>(run.open_packets) >= cfg_.limits.max_open_packets_per_run ||
      run.open_packets == UINT16_MAX) {
    obs_->OnLimitHit("max_open_packets_per_run");
    return;
  }
  if (!run.extras) run.extras = std::make_unique<RunExtras>();
  Packet& p = run.extras->packets.emplace_back();
  p.number = ++run.incidents;
  p.cls = t.cls;
  p.failing_step = t.step;
  strings_.Ref(t.step);
  // The latest step success at or before the trigger. A step keeps its last two success times,
  // so one that succeeded again after the trigger (a re-run whose events came first) still
  // counts with the earlier one; later-arriving successes update the packet (ApplyEvent).
  for (const StepStat& s : run.steps) {
    int64_t at = s.succeeded_ts;
    if (at != kNoTime && at > t.detected_at) at = s.prev_succeeded_ts;
    if (at == kNoTime || at > t.detected_at || at < p.last_success_ts) continue;
    p.last_success_step = s.step;
    p.last_success_ts = at;
  }
  strings_.Ref(p.last_success_step);
  p.flag_classes = t.flags;
  p.detected_at = t.detected_at;
  p.error_summary.assign(t.summary);
  if (t.source != nullptr) {
    p.has_source = true;
    p.source_topic.assign(t.source->topic);
    p.source_partition = t.source->partition;
    p.source_offset = t.source->offset;
  }
  if (t.request != nullptr) {
    const Event& r = *t.request;
    if (r.options_json) p.options_json.emplace(*r.options_json);
    if (r.evidence_json) p.evidence_json.emplace(*r.evidence_json);
    if (r.owner_role) p.owner_role.emplace(*r.owner_role);
    if (r.next_action_after_decision) p.next_action.emplace(*r.next_action_after_decision);
  }

  // Severity: the highest of the run's (run_started, else catalog, else default), the class
  // minimum, and P1 for a blast radius (after enrichment) at the P1 threshold.
  const WorkflowConfig* wf = run.wf;
  Severity sev = run.severity                    ? *run.severity
                 : wf != nullptr && wf->severity ? *wf->severity
                                                 : cfg_.defaults.severity;
  if (const auto& min = cfg_.classes[static_cast<size_t>(t.cls)].min_severity) {
    sev = std::min(sev, *min);
  }
  int64_t users = run.blast_users != kUnknownCount          ? run.blast_users
                  : wf != nullptr && wf->blast_radius_users ? *wf->blast_radius_users
                                                            : kUnknownCount;
  if (users != kUnknownCount && users >= cfg_.defaults.p1_blast_radius_users) {
    sev = Severity::kP1;
  }
  p.severity = sev;
  ++run.open_packets;
  SetOpen(sev, +1);
  obs_->OnIncidentOpened(Label(run), t.cls, sev);

  Resolve(run, p, &view_);
  obs_->OnScored(sev, view_.raw_tenths / 10.0, view_.hcs.score_tenths / 10.0);
  for (int i = 0; i < kPacketFieldCount; ++i) {
    if ((view_.missing & (1u << i)) != 0)
      obs_->OnMissingField(FieldName(static_cast<PacketField>(i)));
  }
  const bool complete = view_.complete;
  const int score = view_.hcs.score_tenths;
  const SlaBand& band = cfg_.Sla(sev);

  Gate gate;
  TopicRole role;
  AuditAction action = AuditAction::kEmitted;
  reason_.assign("score ");
  AppendTenths(&reason_, score);
  if (KindOf(t.cls) == HandoffKind::kPlanned) {
    gate = Gate::kDecision;
    role = TopicRole::kDecisions;
    p.stage = PacketStage::kSettled;
    reason_.append("; planned handoff (");
    reason_.append(ToString(t.cls));
    reason_.append(") sent for a decision");
  } else {
    reason_.append(complete ? " at or above " : " below ");
    reason_.append(ToString(sev));
    reason_.append(" minimum ");
    AppendScore(&reason_, band.min_score);
    switch (sev) {
      case Severity::kP1:
        role = TopicRole::kPage;
        gate = Gate::kPage;
        p.stage = PacketStage::kSettled;
        if (complete) {
          reason_.append("; paged");
        } else if (wf != nullptr && wf->always_page) {
          reason_.append("; workflow always pages, paged without hold");
        } else {
          role = TopicRole::kPending;
          gate = Gate::kHeld;
          action = AuditAction::kHeld;
          p.stage = PacketStage::kHeld;
          reason_.append("; waiting for enrichment");
        }
        break;
      case Severity::kP2:
        role = TopicRole::kOwnerQueue;
        gate = complete ? Gate::kNotify : Gate::kOwnerQueueIncomplete;
        p.stage = complete ? PacketStage::kSettled : PacketStage::kIncomplete;
        reason_.append(complete ? "; sent to the owner queue"
                                : "; sent to the owner queue until complete");
        break;
      case Severity::kP3:
      default:
        role = TopicRole::kTickets;
        gate = complete ? Gate::kTicket : Gate::kTicketTemplateRequired;
        p.stage = complete ? PacketStage::kSettled : PacketStage::kIncomplete;
        reason_.append(complete ? "; ticket opened"
                                : "; ticket opened, template completion required");
        break;
    }
  }
  EmitRevision(run, p, gate, role, emitted_at, action, reason_, sink);
  PushPacketTimers(slot, p);
}

void Engine::Impl::RescorePending(uint32_t slot, int64_t at, OutputSink* sink) {
  Run& run = runs_[slot];
  if (!run.extras) return;
  for (Packet& p : run.extras->packets) {
    if (p.stage == PacketStage::kSettled) continue;
    Resolve(run, p, &view_);
    if (!view_.complete) continue;
    const int score = view_.hcs.score_tenths;
    const SlaBand& band = cfg_.Sla(p.severity);
    reason_.assign("score ");
    AppendTenths(&reason_, score);
    reason_.append(" reached ");
    reason_.append(ToString(p.severity));
    reason_.append(" minimum ");
    AppendScore(&reason_, band.min_score);
    if (p.stage == PacketStage::kHeld) {
      p.stage = PacketStage::kSettled;
      reason_.append(" after enrichment; paged");
      EmitRevision(run, p, Gate::kPage, TopicRole::kPage, at, AuditAction::kEmitted, reason_, sink);
    } else {
      p.stage = PacketStage::kSettled;
      const bool p2 = p.severity == Severity::kP2;
      reason_.append("; packet complete");
      EmitRevision(run, p, p2 ? Gate::kNotify : Gate::kTicket,
                   p2 ? TopicRole::kOwnerQueue : TopicRole::kTickets, at, AuditAction::kEnriched,
                   reason_, sink);
    }
  }
}

void Engine::Impl::ClosePacket(uint32_t slot, size_t index, int64_t at) {
  Run& run = runs_[slot];
  auto& packets = run.extras->packets;
  const Severity sev = packets[index].severity;
  strings_.Unref(packets[index].failing_step);
  strings_.Unref(packets[index].last_success_step);
  packets.erase(packets.begin() + static_cast<std::ptrdiff_t>(index));
  --run.open_packets;
  SetOpen(sev, -1);
  if (run.open_packets != 0) return;
  // The run no longer waits on a human: its stall clock restarts here.
  if (at > run.quiet_since) run.quiet_since = at;
  if (run.completed) {
    PushTimer(slot, 0, TimerKind::kRetention, RetentionDue(run));
  } else {
    ArmStall(slot);
  }
}

// ---------------------------------------------------------------------------------------------
// Timers

void Engine::Impl::PushTimer(uint32_t slot, uint32_t packet, TimerKind kind, int64_t due) {
  const Run& run = runs_[slot];
  timers_.Push({due, run.seq, slot, run.gen, packet, kind});
}

void Engine::Impl::PushPacketTimers(uint32_t slot, const Packet& p) {
  const SlaBand& band = cfg_.Sla(p.severity);
  const int64_t first = SecondsToMs(band.first_response_s);
  if (p.stage == PacketStage::kHeld) {
    PushTimer(slot, p.number, TimerKind::kHold,
              SatAdd(p.detected_at, SecondsToMs(cfg_.defaults.p1_max_hold_s)));
  }
  if (p.escalation_level < 2) {
    PushTimer(slot, p.number, TimerKind::kEscalation2, SatAdd(p.detected_at, first));
  }
  if (p.escalation_level < 3) {
    PushTimer(slot, p.number, TimerKind::kEscalation3, SatAdd(p.detected_at, SatAdd(first, first)));
  }
  PushTimer(slot, p.number, TimerKind::kExpiry, SatAdd(p.detected_at, SecondsToMs(band.ttl_s)));
  if (p.resolve_at != kNoTime) PushTimer(slot, p.number, TimerKind::kResolve, p.resolve_at);
}

int64_t Engine::Impl::NextPacketTimer(const Packet& p) const {
  const SlaBand& band = cfg_.Sla(p.severity);
  const int64_t first = SecondsToMs(band.first_response_s);
  int64_t next = SatAdd(p.detected_at, SecondsToMs(band.ttl_s));
  if (p.stage == PacketStage::kHeld) {
    next = std::min(next, SatAdd(p.detected_at, SecondsToMs(cfg_.defaults.p1_max_hold_s)));
  }
  const auto acts = [&p](int64_t due) { return !(p.acked && p.acked_at <= due); };
  const int64_t l2 = SatAdd(p.detected_at, first);
  const int64_t l3 = SatAdd(p.detected_at, SatAdd(first, first));
  if (p.escalation_level < 2 && acts(l2)) next = std::min(next, l2);
  if (p.escalation_level < 3 && acts(l3)) next = std::min(next, l3);
  return next;
}

void Engine::Impl::ArmStall(uint32_t slot) {
  Run& run = runs_[slot];
  if (run.stall_armed || run.stall_reported || run.completed || run.open_packets != 0) return;
  run.stall_armed = true;
  PushTimer(slot, 0, TimerKind::kStall, SatAdd(run.quiet_since, StallTimeoutMs(run)));
}

void Engine::Impl::FireDue(OutputSink* sink) {
  while (!timers_.empty() && watermark_ != kNoTime && timers_.Top().due_ms <= watermark_) {
    const Timer t = timers_.Top();
    timers_.Pop();
    FireTimer(t, sink);
  }
}

void Engine::Impl::FireTimer(const Timer& t, OutputSink* sink) {
  if (t.run_slot >= runs_.size()) return;
  Run& run = runs_[t.run_slot];
  if (!run.in_use || run.gen != t.run_gen) return;
  switch (t.kind) {
    case TimerKind::kStall:
      FireStall(t.run_slot, t, sink);
      return;
    case TimerKind::kRetention: {
      if (!run.completed || run.open_packets != 0) return;
      const int64_t due = run.retired ? RetiredDue(run) : RetentionDue(run);
      if (due > t.due_ms) {
        PushTimer(t.run_slot, 0, TimerKind::kRetention, due);
        return;
      }
      if (run.retired || cfg_.limits.retired_run_memory_s == 0) {
        ForgetRun(t.run_slot, /*log=*/true);
      } else {
        RetireRun(t.run_slot);
      }
      return;
    }
    default:
      break;
  }
  Packet* p = FindPacket(run, t.packet);
  if (p == nullptr) return;
  switch (t.kind) {
    case TimerKind::kResolve: {
      if (p->resolve_at != t.due_ms) return;  // an earlier resolve of the packet was kept
      Touch(t.run_slot);
      reason_.assign("resolved");
      if (p->resolve_by) {
        reason_.append(" by ");
        reason_.append(*p->resolve_by);
      }
      reason_.append("; incident closed");
      EmitAudit(run, *p, AuditAction::kResolved, t.due_ms,
                p->resolve_by ? std::optional<std::string_view>(*p->resolve_by) : std::nullopt,
                reason_, sink);
      ClosePacket(t.run_slot, static_cast<size_t>(p - run.extras->packets.data()), t.due_ms);
      return;
    }
    case TimerKind::kHold: {
      if (p->stage != PacketStage::kHeld) return;
      Touch(t.run_slot);
      p->stage = PacketStage::kSettled;
      p->override_page = true;
      Resolve(run, *p, &view_);
      reason_.assign("held ");
      AppendInt(&reason_, cfg_.defaults.p1_max_hold_s);
      reason_.append(" s with score ");
      AppendTenths(&reason_, view_.hcs.score_tenths);
      reason_.append(" below P1 minimum ");
      AppendScore(&reason_, cfg_.Sla(Severity::kP1).min_score);
      reason_.append("; paged with override");
      EmitRevision(run, *p, Gate::kPage, TopicRole::kPage, t.due_ms, AuditAction::kEmitted, reason_,
                   sink);
      return;
    }
    case TimerKind::kEscalation2:
      FireEscalation(t.run_slot, *p, 2, t.due_ms, sink);
      return;
    case TimerKind::kEscalation3:
      FireEscalation(t.run_slot, *p, 3, t.due_ms, sink);
      return;
    case TimerKind::kExpiry:
      FireExpiry(t.run_slot, t.packet, t.due_ms, sink);
      return;
    default:
      return;
  }
}

void Engine::Impl::FireStall(uint32_t slot, const Timer& t, OutputSink* sink) {
  Run& run = runs_[slot];
  run.stall_armed = false;
  if (run.completed || run.open_packets != 0) return;  // re-armed when the packets close
  const int64_t timeout = StallTimeoutMs(run);
  const int64_t deadline = SatAdd(run.quiet_since, timeout);
  if (deadline > t.due_ms) {
    ArmStall(slot);
    return;
  }
  Touch(slot);
  run.stall_reported = true;
  summary_.assign("no event for ");
  AppendInt(&summary_, timeout / kMsPerSecond);
  summary_.append(" s");
  Trigger trig;
  trig.cls = FailureClass::kStalled;
  trig.step = run.last_step;
  trig.summary = summary_;
  trig.detected_at = deadline;
  Open(slot, trig, t.due_ms, sink);
}

void Engine::Impl::FireEscalation(uint32_t slot, Packet& p, int level, int64_t due,
                                  OutputSink* sink) {
  if (p.escalation_level >= level) return;
  if (p.acked && p.acked_at <= due) return;  // acknowledged in time for this level
  Run& run = runs_[slot];
  Touch(slot);
  p.escalation_level = static_cast<uint8_t>(level);
  Resolve(run, p, &view_);
  reason_.assign("no acknowledgement by ");
  AppendTime(&reason_, due);
  reason_.append("; escalated to ");
  reason_.append(view_.escalation_target.value_or(std::string_view()));
  EmitRevision(run, p, Gate::kEscalate, TopicRole::kEscalations, due, AuditAction::kEscalated,
               reason_, sink);
  obs_->OnSlaBreach(Label(run), p.severity, level);
}

void Engine::Impl::FireExpiry(uint32_t slot, uint32_t number, int64_t due, OutputSink* sink) {
  Run& run = runs_[slot];
  auto& packets = run.extras->packets;
  size_t index = 0;
  while (packets[index].number != number) ++index;
  Packet& p = packets[index];
  Touch(slot);
  if (p.acked && p.acked_at <= due) {
    reason_.assign("acknowledged; closed at expires_at ");
    AppendTime(&reason_, due);
    EmitAudit(run, p, AuditAction::kClosed, due, std::nullopt, reason_, sink);
  } else {
    reason_.assign("not acknowledged by expires_at ");
    AppendTime(&reason_, due);
    reason_.append("; packet expired");
    EmitAudit(run, p, AuditAction::kExpired, due, std::nullopt, reason_, sink);
    obs_->OnExpired(p.severity);
  }
  ClosePacket(slot, index, due);
}

// ---------------------------------------------------------------------------------------------
// Changelog

void Engine::Impl::DrainChanges(ChangelogSink* sink) {
  // Tombstones first: a run forgotten and created again since the last drain ends up present.
  for (const std::string& id : tombstones_) sink->PutRun(id, std::string_view());
  tombstones_.clear();
  for (const DirtyRef& d : dirty_) {
    Run& run = runs_[d.slot];
    if (!run.in_use || run.gen != d.gen || !run.dirty) continue;
    run.dirty = false;
    run.logged = true;
    EncodeRun(run, strings_, &state_);
    sink->PutRun(run.run_id, state_);
  }
  dirty_.clear();
}

bool Engine::Impl::RestoreRun(std::string_view run_id, std::string_view state) {
  const uint64_t hash = Hash64(run_id);
  uint32_t existing = FindRun(run_id, hash);
  if (existing != FlatIndex::kNotFound) ForgetRun(existing, /*log=*/false);
  if (state.empty()) return true;
  const uint32_t slot = AllocSlot();
  Run& run = runs_[slot];
  if (!DecodeRun(state, &strings_, &run)) {
    ReleaseRunStrings(&run, &strings_);
    const uint32_t gen = run.gen + 1;
    run = Run();
    run.gen = gen;
    free_slots_.push_back(slot);
    return false;
  }
  InstallRun(slot, run_id, hash);
  run.logged = true;
  run.wf =
      run.workflow != Interner::kNone ? cfg_.FindWorkflow(strings_.Get(run.workflow)) : nullptr;
  next_seq_ = std::max(next_seq_, run.seq + 1);
  if (!run.completed) SetActive(+1);
  if (run.extras) {
    for (const Packet& p : run.extras->packets) {
      SetOpen(p.severity, +1);
      PushPacketTimers(slot, p);
    }
  }
  if (!run.completed) {
    ArmStall(slot);
  } else if (run.open_packets == 0) {
    PushTimer(slot, 0, TimerKind::kRetention, run.retired ? RetiredDue(run) : RetentionDue(run));
  }
  return true;
}

bool Engine::Impl::RestoreMeta(std::string_view meta) {
  EngineMeta m;
  if (!DecodeMeta(meta, &m)) return false;
  watermark_ = std::max(watermark_, m.watermark_ms);
  max_ts_ = std::max(max_ts_, m.max_ts_ms);
  next_seq_ = std::max(next_seq_, m.next_seq);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Engine

Engine::Engine(const Config& config, EngineObserver* observer)
    : impl_(std::make_unique<Impl>(config, observer)) {}
Engine::~Engine() = default;

bool Engine::Process(const Event& event, const SourceRef& source, OutputSink* sink) {
  return impl_->Process(event, source, sink);
}
void Engine::ProcessDeadLettered(int64_t ts_ms, const SourceRef& source, OutputSink* sink) {
  impl_->ProcessDeadLettered(ts_ms, source, sink);
}
bool Engine::AheadOfRecordTime(int64_t ts_ms, const SourceRef& source) const {
  return impl_->AheadOfRecordTime(ts_ms, source);
}
void Engine::AdvanceWatermark(int64_t watermark_ms, OutputSink* sink) {
  impl_->AdvanceWatermark(watermark_ms, sink);
}
int64_t Engine::watermark_ms() const { return impl_->watermark_ms(); }
int64_t Engine::next_timer_ms() const { return impl_->next_timer_ms(); }
int64_t Engine::max_event_ms() const { return impl_->max_event_ms(); }
int64_t Engine::active_runs() const { return impl_->active_runs(); }
int64_t Engine::held_runs() const { return impl_->held_runs(); }
void Engine::DrainChanges(ChangelogSink* sink) { impl_->DrainChanges(sink); }
void Engine::MarkAllChanged() { impl_->MarkAllChanged(); }
std::string Engine::SerializeMeta() const { return impl_->SerializeMeta(); }
bool Engine::RestoreRun(std::string_view run_id, std::string_view state) {
  return impl_->RestoreRun(run_id, state);
}
bool Engine::RestoreMeta(std::string_view meta) { return impl_->RestoreMeta(meta); }

}  // namespace handoffd

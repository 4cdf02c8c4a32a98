#include "processor/state_codec.h"

#include <cstring>

namespace handoffd {
namespace {

class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<char>(v));
  }
  // Zigzag, so kNoTime (INT64_MIN) and small negatives stay short.
  void Signed(int64_t v) {
    Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void Fixed64(uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
    out_->append(b, 8);
  }
  void Double(double d) {
    uint64_t v;
    std::memcpy(&v, &d, sizeof v);
    Fixed64(v);
  }
  void Str(std::string_view s) {
    Varint(s.size());
    out_->append(s);
  }
  // 0 = absent, else length + 1.
  void OptStr(const std::optional<std::string>& s) {
    if (!s) {
      Varint(0);
      return;
    }
    Varint(s->size() + 1);
    out_->append(*s);
  }
  void Id(const Interner& strings, uint32_t id) {
    if (id == Interner::kNone) {
      Varint(0);
      return;
    }
    std::string_view s = strings.Get(id);
    Varint(s.size() + 1);
    out_->append(s);
  }

 private:
  std::string* out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  uint8_t U8() {
    if (!Need(1)) return 0;
    return static_cast<uint8_t>(in_[pos_++]);
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!Need(1)) return 0;
      uint8_t b = static_cast<uint8_t>(in_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok_ = false;
    return 0;
  }
  int64_t Signed() {
    uint64_t z = Varint();
    return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }
  uint32_t U32() {
    uint64_t v = Varint();
    if (v > UINT32_MAX) ok_ = false;
    return static_cast<uint32_t>(v);
  }
  uint64_t Fixed64() {
    if (!Need(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
    pos_ += 8;
    return v;
  }
  double Double() {
    uint64_t v = Fixed64();
    double d;
    std::memcpy(&d, &v, sizeof d);
    return d;
  }
  std::string_view Bytes(uint64_t n) {
    if (!Need(n)) return {};
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string Str() { return std::string(Bytes(Varint())); }
  std::optional<std::string> OptStr() {
    uint64_t n = Varint();
    if (n == 0 || !ok_) return std::nullopt;
    return std::string(Bytes(n - 1));
  }
  uint32_t Id(Interner* strings) {
    uint64_t n = Varint();
    if (n == 0 || !ok_) return Interner::kNone;
    std::string_view s = Bytes(n - 1);
    return ok_ ? strings->Intern(s) : Interner::kNone;
  }

 private:
  bool Need(uint64_t n) {
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

enum RunFlags : uint8_t {
  kStartedSeen = 1,
  kCompleted = 2,
  kBudgetFired = 4,
  kHasSeverity = 8,
  kHasExtras = 16,
  kStallReported = 32,
  // Added after v1 without a version change: older binaries read a retired run as a completed
  // one with nothing in it, and forget it at its retention time, which is what they did anyway.
  kRetired = 64,
};

enum PacketFlags : uint8_t {
  kOverride = 1,
  kAcked = 2,
  kHasSource = 4,
};

void EncodePacket(const Packet& p, const Interner& strings, Writer& w) {
  w.Varint(p.number);
  w.Varint(p.revision);
  w.Id(strings, p.failing_step);
  w.Varint(p.flag_classes);
  w.U8(static_cast<uint8_t>(p.cls));
  w.U8(static_cast<uint8_t>(p.severity));
  w.U8(static_cast<uint8_t>(p.stage));
  w.U8(p.escalation_level);
  w.U8(static_cast<uint8_t>((p.override_page ? kOverride : 0) | (p.acked ? kAcked : 0) |
                            (p.has_source ? kHasSource : 0)));
  w.Signed(p.detected_at);
  w.Signed(p.acked_at);
  w.Str(p.error_summary);
  w.Str(p.source_topic);
  w.Signed(p.source_partition);
  w.Signed(p.source_offset);
  w.OptStr(p.options_json);
  w.OptStr(p.evidence_json);
  w.OptStr(p.owner_role);
  w.OptStr(p.next_action);
  w.Id(strings, p.last_success_step);
  w.Signed(p.last_success_ts);
  w.Signed(p.resolve_at);
  w.OptStr(p.resolve_by);
}

bool DecodePacket(Reader& r, uint8_t version, Interner* strings, Packet* p) {
  p->number = r.U32();
  p->revision = r.U32();
  p->failing_step = r.Id(strings);
  uint64_t flags = r.Varint();
  uint8_t cls = r.U8();
  uint8_t sev = r.U8();
  uint8_t stage = r.U8();
  p->escalation_level = r.U8();
  uint8_t bits = r.U8();
  if (!r.ok() || cls >= kFailureClassCount || sev >= kSeverityCount ||
      stage > static_cast<uint8_t>(PacketStage::kSettled) || flags >= (1u << kFailureClassCount) ||
      p->escalation_level < 1 || p->escalation_level > 3) {
    return false;
  }
  p->flag_classes = static_cast<uint16_t>(flags);
  p->cls = static_cast<FailureClass>(cls);
  p->severity = static_cast<Severity>(sev);
  p->stage = static_cast<PacketStage>(stage);
  p->override_page = (bits & kOverride) != 0;
  p->acked = (bits & kAcked) != 0;
  p->has_source = (bits & kHasSource) != 0;
  p->detected_at = r.Signed();
  p->acked_at = r.Signed();
  p->error_summary = r.Str();
  p->source_topic = r.Str();
  p->source_partition = static_cast<int32_t>(r.Signed());
  p->source_offset = r.Signed();
  p->options_json = r.OptStr();
  p->evidence_json = r.OptStr();
  p->owner_role = r.OptStr();
  p->next_action = r.OptStr();
  if (version >= 2) {
    p->last_success_step = r.Id(strings);
    p->last_success_ts = r.Signed();
    p->resolve_at = r.Signed();
    p->resolve_by = r.OptStr();
    // Both or neither.
    if ((p->last_success_step == Interner::kNone) != (p->last_success_ts == kNoTime)) return false;
  }
  return r.ok();
}

// v1 packets had no last successful step of their own: the run's latest step success at or
// before the trigger, as v1 computed it at every revision.
void DeriveLastSuccess(const std::vector<StepStat>& steps, Interner* strings, Packet* p) {
  const StepStat* last = nullptr;
  for (const StepStat& s : steps) {
    if (s.succeeded_ts == kNoTime || s.succeeded_ts > p->detected_at) continue;
    if (last == nullptr || s.succeeded_ts >= last->succeeded_ts) last = &s;
  }
  if (last == nullptr) return;
  strings->Ref(last->step);
  p->last_success_step = last->step;
  p->last_success_ts = last->succeeded_ts;
}

}  // namespace

void EncodeRun(const Run& run, const Interner& strings, std::string* out) {
  out->clear();
  Writer w(out);
  w.U8(kRunStateVersion);
  w.Varint(run.seq);
  w.U8(static_cast<uint8_t>(
      (run.started_seen ? kStartedSeen : 0) | (run.completed ? kCompleted : 0) |
      (run.budget_fired ? kBudgetFired : 0) | (run.severity ? kHasSeverity : 0) |
      (run.extras ? kHasExtras : 0) | (run.stall_reported ? kStallReported : 0) |
      (run.retired ? kRetired : 0)));
  w.U8(run.severity ? static_cast<uint8_t>(*run.severity) : 0);
  w.Signed(run.start_ts);
  w.Signed(run.max_ts);
  w.Signed(run.quiet_since);
  w.Signed(run.completed_ts);
  w.Signed(run.blast_users);
  w.Signed(run.blast_jobs);
  w.Double(run.cost_usd);
  w.Varint(run.tool_calls);
  w.Varint(run.incidents);
  w.Id(strings, run.workflow);
  w.Id(strings, run.objective);
  w.Id(strings, run.recommended_action);
  w.Id(strings, run.rollback_command);
  w.Id(strings, run.owner_primary);
  w.Id(strings, run.owner_backup);
  w.Id(strings, run.last_step);
  w.Varint(run.seen.size());
  for (uint32_t i = 0; i < run.seen.size(); ++i) w.Fixed64(run.seen.At(i));
  w.Varint(run.steps.size());
  for (const StepStat& s : run.steps) {
    w.Id(strings, s.step);
    w.Varint(s.retries);
    w.Signed(s.succeeded_ts);
    w.Signed(s.prev_succeeded_ts);
  }
  if (run.extras) {
    w.OptStr(run.extras->attrs_json);
    w.Varint(run.extras->packets.size());
    for (const Packet& p : run.extras->packets) EncodePacket(p, strings, w);
  }
}

bool DecodeRun(std::string_view bytes, Interner* strings, Run* run) {
  Reader r(bytes);
  const uint8_t version = r.U8();
  if (version != 1 && version != kRunStateVersion) return false;
  run->seq = r.Varint();
  uint8_t flags = r.U8();
  uint8_t sev = r.U8();
  if (!r.ok() || sev >= kSeverityCount) return false;
  run->started_seen = (flags & kStartedSeen) != 0;
  run->completed = (flags & kCompleted) != 0;
  run->budget_fired = (flags & kBudgetFired) != 0;
  run->stall_reported = (flags & kStallReported) != 0;
  run->retired = (flags & kRetired) != 0;
  // A retired run is a completed one with nothing open.
  if (run->retired && ((flags & kCompleted) == 0 || (flags & kHasExtras) != 0)) return false;
  if ((flags & kHasSeverity) != 0) run->severity = static_cast<Severity>(sev);
  run->start_ts = r.Signed();
  run->max_ts = r.Signed();
  run->quiet_since = r.Signed();
  run->completed_ts = r.Signed();
  run->blast_users = r.Signed();
  run->blast_jobs = r.Signed();
  run->cost_usd = r.Double();
  run->tool_calls = r.U32();
  run->incidents = r.U32();
  run->workflow = r.Id(strings);
  run->objective = r.Id(strings);
  run->recommended_action = r.Id(strings);
  run->rollback_command = r.Id(strings);
  run->owner_primary = r.Id(strings);
  run->owner_backup = r.Id(strings);
  run->last_step = r.Id(strings);
  uint64_t seen = r.Varint();
  if (!r.ok() || seen > bytes.size() / 8) return false;
  for (uint64_t i = 0; i < seen; ++i) {
    run->seen.Insert(r.Fixed64(), static_cast<uint32_t>(seen));
  }
  uint64_t steps = r.Varint();
  if (!r.ok() || steps > bytes.size()) return false;
  run->steps.reserve(steps);
  for (uint64_t i = 0; i < steps && r.ok(); ++i) {
    StepStat& s = run->steps.emplace_back();
    s.step = r.Id(strings);
    s.retries = r.U32();
    s.succeeded_ts = r.Signed();
    if (version >= 2) s.prev_succeeded_ts = r.Signed();
  }
  if ((flags & kHasExtras) != 0) {
    run->extras = std::make_unique<RunExtras>();
    run->extras->attrs_json = r.OptStr();
    uint64_t packets = r.Varint();
    if (!r.ok() || packets > bytes.size()) return false;
    for (uint64_t i = 0; i < packets; ++i) {
      Packet& p = run->extras->packets.emplace_back();
      if (!DecodePacket(r, version, strings, &p)) return false;
      if (version == 1) DeriveLastSuccess(run->steps, strings, &p);
    }
    run->open_packets = static_cast<uint16_t>(run->extras->packets.size());
  }
  return r.ok() && r.done();
}

void ReleaseRunStrings(Run* run, Interner* strings) {
  for (uint32_t* id :
       {&run->workflow, &run->objective, &run->recommended_action, &run->rollback_command,
        &run->owner_primary, &run->owner_backup, &run->last_step}) {
    strings->Unref(*id);
    *id = Interner::kNone;
  }
  for (StepStat& s : run->steps) {
    strings->Unref(s.step);
    s.step = Interner::kNone;
  }
  if (run->extras) {
    for (Packet& p : run->extras->packets) {
      strings->Unref(p.failing_step);
      p.failing_step = Interner::kNone;
      strings->Unref(p.last_success_step);
      p.last_success_step = Interner::kNone;
    }
  }
}

std::string EncodeMeta(const EngineMeta& meta) {
  std::string out;
  Writer w(&out);
  w.U8(kMetaVersion);
  w.Signed(meta.watermark_ms);
  w.Signed(meta.max_ts_ms);
  w.Varint(meta.next_seq);
  return out;
}

bool DecodeMeta(std::string_view bytes, EngineMeta* meta) {
  Reader r(bytes);
  if (r.U8() != kMetaVersion) return false;
  EngineMeta m;
  m.watermark_ms = r.Signed();
  m.max_ts_ms = r.Signed();
  m.next_seq = r.Varint();
  if (!r.ok() || !r.done()) return false;
  *meta = m;
  return true;
}

}  // namespace handoffd

#include "processor/live/changelog.h"

#include <algorithm>
#include <cstring>

namespace handoffd {
namespace {

constexpr std::string_view kMagic = "HDM1";
constexpr std::string_view kTickMagic = "HDT1";

void PutInt64(std::string* out, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}

int64_t GetInt64(const char* p) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i)
    u |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return static_cast<int64_t>(u);
}

}  // namespace

std::string EncodeMeta(const ChangelogMeta& meta) {
  std::string out;
  out.reserve(kMagic.size() + 16 + meta.engine_meta.size());
  out.append(kMagic);
  PutInt64(&out, meta.next_events_offset);
  PutInt64(&out, meta.next_acks_offset);
  out.append(meta.engine_meta);
  return out;
}

bool DecodeMeta(std::string_view bytes, ChangelogMeta* out) {
  if (bytes.size() < kMagic.size() + 16 || bytes.substr(0, kMagic.size()) != kMagic) return false;
  const char* p = bytes.data() + kMagic.size();
  out->next_events_offset = GetInt64(p);
  out->next_acks_offset = GetInt64(p + 8);
  if (out->next_events_offset < 0 || out->next_acks_offset < 0) return false;
  out->engine_meta.assign(bytes.substr(kMagic.size() + 16));
  return true;
}

std::string EncodeTick(const ChangelogTick& tick) {
  std::string out;
  out.reserve(kTickMagic.size() + 24);
  out.append(kTickMagic);
  PutInt64(&out, tick.next_events_offset);
  PutInt64(&out, tick.next_acks_offset);
  PutInt64(&out, tick.watermark_ms);
  return out;
}

bool DecodeTick(std::string_view bytes, ChangelogTick* out) {
  if (bytes.size() != kTickMagic.size() + 24 || bytes.substr(0, kTickMagic.size()) != kTickMagic) {
    return false;
  }
  const char* p = bytes.data() + kTickMagic.size();
  out->next_events_offset = GetInt64(p);
  out->next_acks_offset = GetInt64(p + 8);
  out->watermark_ms = GetInt64(p + 16);
  return out->next_events_offset >= 0 && out->next_acks_offset >= 0;
}

void ChangelogRestore::Add(std::string_view key, std::string_view value, std::string_view writer,
                           std::string_view restored_from) {
  ++records_;
  if (key == kMetaKey) {
    ChangelogMeta meta;
    if (!DecodeMeta(value, &meta)) {
      ++bad_meta_;
      return;
    }
    if (meta_ && !writer.empty() && writer != meta_writer_ && restored_from != meta_writer_) {
      // Off the chain: a member that lost the partition wrote it after the new owner's.
      ++stale_;
      if (auto it = pending_.find(writer); it != pending_.end()) {
        SkipStale(it->second);
        pending_.erase(it);
      }
      std::erase_if(ticks_, [&](const WrittenTick& t) { return t.writer == writer; });
      return;
    }
    Runs mine;
    if (auto it = pending_.find(writer); it != pending_.end()) {
      mine = std::move(it->second);
      pending_.erase(it);
    }
    for (auto& [run_id, state] : mine) {
      if (state.empty()) {
        committed_.erase(run_id);
      } else {
        committed_.insert_or_assign(run_id, std::move(state));
      }
    }
    // The previous writer's records are the uncommitted tail of a crash or a revocation (the new
    // owner re-wrote their keys); anyone else's are a lost member's.
    for (const auto& [other, runs] : pending_) {
      if (other != meta_writer_) SkipStale(runs);
    }
    pending_.clear();
    // Ticks at a position strictly before the meta's are in its state.
    std::erase_if(ticks_, [&](const WrittenTick& t) {
      const ChangelogTick& k = t.tick;
      return k.next_events_offset <= meta.next_events_offset &&
             k.next_acks_offset <= meta.next_acks_offset &&
             (k.next_events_offset < meta.next_events_offset ||
              k.next_acks_offset < meta.next_acks_offset);
    });
    meta_ = std::move(meta);
    meta_writer_.assign(writer);
    has_snapshot_ = has_snapshot_ || (snapshot_open_ && snapshot_writer_ == writer);
    snapshot_open_ = false;
    return;
  }
  if (key == kTickKey) {
    ChangelogTick tick;
    if (!DecodeTick(value, &tick)) {
      ++bad_meta_;
      return;
    }
    ticks_.push_back({std::string(writer), tick});
    return;
  }
  if (key == kSnapshotKey) {
    snapshot_open_ = true;
    snapshot_writer_.assign(writer);
    return;
  }
  Runs& runs = pending_[std::string(writer)];
  auto it = runs.find(key);
  if (it == runs.end()) {
    runs.emplace(std::string(key), std::string(value));
  } else {
    it->second.assign(value);
  }
}

void ChangelogRestore::SkipStale(const Runs& runs) {
  stale_ += static_cast<int64_t>(runs.size());
  for (const auto& [run_id, state] : runs) stale_keys_.insert(run_id);
}

std::vector<ChangelogTick> ChangelogRestore::ticks() const {
  std::vector<ChangelogTick> out;
  out.reserve(ticks_.size());
  for (const WrittenTick& t : ticks_) out.push_back(t.tick);
  return out;
}

std::vector<std::string> ChangelogRestore::TailKeys() const {
  std::vector<std::string> keys;
  for (const auto& [writer, runs] : pending_) {
    for (const auto& [run_id, state] : runs) keys.push_back(run_id);
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

}  // namespace handoffd

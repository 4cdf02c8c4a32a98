#include "processor/live/changelog.h"

#include <cstring>

namespace handoffd {
namespace {

constexpr std::string_view kMagic = "HDM1";

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

void ChangelogRestore::Add(std::string_view key, std::string_view value) {
  ++records_;
  if (key == kMetaKey) {
    ChangelogMeta meta;
    if (!DecodeMeta(value, &meta)) {
      ++bad_meta_;
      return;
    }
    for (auto& [run_id, state] : pending_) {
      if (state.empty()) {
        committed_.erase(run_id);
      } else {
        committed_.insert_or_assign(run_id, std::move(state));
      }
    }
    pending_.clear();
    meta_ = std::move(meta);
    has_snapshot_ = has_snapshot_ || snapshot_open_;
    snapshot_open_ = false;
    return;
  }
  if (key == kSnapshotKey) {
    snapshot_open_ = true;
    return;
  }
  auto it = pending_.find(key);
  if (it == pending_.end()) {
    pending_.emplace(std::string(key), std::string(value));
  } else {
    it->second.assign(value);
  }
}

std::vector<std::string> ChangelogRestore::TailKeys() const {
  std::vector<std::string> keys;
  keys.reserve(pending_.size());
  for (const auto& [run_id, state] : pending_) keys.push_back(run_id);
  return keys;
}

}  // namespace handoffd

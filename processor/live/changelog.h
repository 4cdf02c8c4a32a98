// The state changelog of one input partition (topic handoffd.state, partition p): run records
// (key run_id, value the Engine's run state, empty = tombstone) written per commit interval,
// each batch closed by ONE meta record (key kMetaKey) holding Engine::SerializeMeta() and the
// next input offsets. Restore applies run records only up to the last meta record: records
// after it belong to a batch whose meta never landed (crash) and are discarded. Pure: no Kafka.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace handoffd {

inline constexpr std::string_view kMetaKey{"\0meta", 5};
// Opens a snapshot batch: the records up to the batch's meta hold every run of the partition.
// Written on the embedded broker only (see Worker::DrainPartition).
inline constexpr std::string_view kSnapshotKey{"\0snapshot", 9};

struct ChangelogMeta {
  int64_t next_events_offset = 0;  // next offset to read on events partition p
  int64_t next_acks_offset = 0;    // next offset to read on acks partition p
  std::string engine_meta;         // Engine::SerializeMeta()
};

// Meta record value: "HDM1", two little-endian int64 offsets, then the engine meta bytes.
std::string EncodeMeta(const ChangelogMeta& meta);
// Returns false for bytes that are not an encoded meta of this version.
bool DecodeMeta(std::string_view bytes, ChangelogMeta* out);

// Folds the records of one changelog partition, read from the beginning in offset order.
class ChangelogRestore {
 public:
  // One record. `value` empty = tombstone. A meta record that does not decode is counted and
  // skipped (the batch stays pending).
  void Add(std::string_view key, std::string_view value);

  // Runs as of the last meta record (run_id -> state bytes), and that meta.
  const std::map<std::string, std::string, std::less<>>& runs() const { return committed_; }
  const std::optional<ChangelogMeta>& meta() const { return meta_; }
  // Keys written after the last meta: discarded. The worker re-writes their committed state
  // (or a tombstone) so that compaction can never keep an orphan as a key's latest value.
  std::vector<std::string> TailKeys() const;

  int64_t records() const { return records_; }
  int64_t bad_meta_records() const { return bad_meta_; }
  // True when the records read hold a whole snapshot batch (its kSnapshotKey record and its
  // meta): the state is then complete even if the partition's oldest records are gone.
  bool has_snapshot() const { return has_snapshot_; }

 private:
  std::map<std::string, std::string, std::less<>> committed_;
  std::map<std::string, std::string, std::less<>> pending_;  // since the last meta
  std::optional<ChangelogMeta> meta_;
  int64_t records_ = 0;
  int64_t bad_meta_ = 0;
  bool snapshot_open_ = false;  // a kSnapshotKey record since the last meta
  bool has_snapshot_ = false;
};

}  // namespace handoffd

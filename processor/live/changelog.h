// The state changelog of one input partition (topic handoffd.state, partition p): run records
// (key run_id, value the Engine's run state, empty = tombstone) written per commit interval,
// each batch closed by ONE meta record (key kMetaKey) holding Engine::SerializeMeta() and the
// next input offsets. Restore applies run records only up to the last meta record: records
// after it belong to a batch whose meta never landed (crash) and are discarded. Pure: no Kafka.
//
// Writers. Every record names its writer in a header (kWriterHeader): a token the worker draws
// each time it takes the partition (restore), so one ownership of the partition is one writer.
// A meta record also names the writer of the meta record its owner restored from
// (kRestoredFromHeader). The meta records that count form a chain: the first one read, then
// each one by the same writer as the last that counted, or by an owner that restored from that
// writer (a handover). A meta record outside the chain, and the run records of a writer other
// than the meta's, are stale: a member that had lost the partition (stopped longer than its
// session, its records produced before the stop) wrote them after the new owner's, and
// without the chain the new owner's next meta record would have committed them. Records
// without the header (written before the header existed) are everyone's, as before.
//
// Ticks. A caught-up partition's watermark also follows the wall clock (contract section 6),
// which a reprocessing after a crash cannot know. Under at_least_once the worker therefore
// writes a tick record (key kTickKey: the input position and the watermark it moved to) and
// waits for its acknowledgement before it applies a wall-clock move that fires a timer; a
// restore hands the ticks past its meta record to the reprocessing, which applies each when it
// reaches the tick's position, so the records it writes again are the ones the first pass wrote.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace handoffd {

inline constexpr std::string_view kMetaKey{"\0meta", 5};
// Opens a snapshot batch: the records up to the batch's meta hold every run of the partition.
// Written on the embedded broker only (see Worker::DrainPartition).
inline constexpr std::string_view kSnapshotKey{"\0snapshot", 9};
// A wall-clock tick (Worker::FollowWallClock): see "Ticks" above.
inline constexpr std::string_view kTickKey{"\0tick", 5};
inline constexpr const char* kWriterHeader = "handoffd-writer";
inline constexpr const char* kRestoredFromHeader = "handoffd-restored-from";

struct ChangelogMeta {
  int64_t next_events_offset = 0;  // next offset to read on events partition p
  int64_t next_acks_offset = 0;    // next offset to read on acks partition p
  std::string engine_meta;         // Engine::SerializeMeta()
};

// Meta record value: "HDM1", two little-endian int64 offsets, then the engine meta bytes.
std::string EncodeMeta(const ChangelogMeta& meta);
// Returns false for bytes that are not an encoded meta of this version.
bool DecodeMeta(std::string_view bytes, ChangelogMeta* out);

// A tick: once next_events_offset and next_acks_offset are the next offsets to read (every record
// before them applied, none after), the watermark moved to watermark_ms.
struct ChangelogTick {
  int64_t next_events_offset = 0;
  int64_t next_acks_offset = 0;
  int64_t watermark_ms = 0;
};

// Tick record value: "HDT1", then the three fields as little-endian int64.
std::string EncodeTick(const ChangelogTick& tick);
// Returns false for bytes that are not an encoded tick of this version.
bool DecodeTick(std::string_view bytes, ChangelogTick* out);

// Folds the records of one changelog partition, read from the beginning in offset order.
class ChangelogRestore {
 public:
  // One record. `value` empty = tombstone. `writer` and `restored_from`: its headers (empty when
  // absent). A meta record that does not decode is counted and skipped (the batch stays
  // pending); a stale one (see above) is counted and skipped with its writer's pending runs.
  // At a meta record that counts, its writer's pending runs are committed and everyone else's
  // are stale: skipped. (On a compacted topic a stale record can outlive the newer value it
  // superseded; that run is then missing from the restore, where without writers it came back
  // stale.)
  void Add(std::string_view key, std::string_view value, std::string_view writer = {},
           std::string_view restored_from = {});

  // Runs as of the last meta record (run_id -> state bytes), and that meta.
  const std::map<std::string, std::string, std::less<>>& runs() const { return committed_; }
  const std::optional<ChangelogMeta>& meta() const { return meta_; }
  // The ticks the restored state does not hold, in the order written: every tick record except
  // those at an input position strictly before the last meta record's (its state holds them:
  // the worker applies a tick before it reads on, and closes a batch only after). A tick at the
  // meta's very position may or may not be in its state; applying it again changes nothing.
  // The reprocessing applies each once it has read up to its position. A lost member's ticks
  // (its meta records off the chain) are left out.
  std::vector<ChangelogTick> ticks() const;
  // Keys written after the last meta: discarded. The worker re-writes their committed state
  // (or a tombstone) so that compaction can never keep an orphan as a key's latest value.
  std::vector<std::string> TailKeys() const;

  int64_t records() const { return records_; }
  // Meta and tick records that did not decode.
  int64_t bad_meta_records() const { return bad_meta_; }
  // Run and meta records skipped as stale (see above).
  int64_t stale_records() const { return stale_; }
  // The keys of skipped stale run records. The worker re-writes their committed state (or a
  // tombstone), as for TailKeys: on a compacted topic a stale record that is a key's newest would
  // otherwise be all that compaction keeps of it.
  std::vector<std::string> StaleKeys() const { return {stale_keys_.begin(), stale_keys_.end()}; }
  // The writer of the last meta record that counted ("" before any, or without the header):
  // what the restoring owner names in kRestoredFromHeader.
  const std::string& meta_writer() const { return meta_writer_; }
  // True when the records read hold a whole snapshot batch (its kSnapshotKey record and its
  // meta): the state is then complete even if the partition's oldest records are gone.
  bool has_snapshot() const { return has_snapshot_; }

 private:
  using Runs = std::map<std::string, std::string, std::less<>>;
  // Counts a writer's pending runs as stale and remembers their keys (StaleKeys).
  void SkipStale(const Runs& runs);
  Runs committed_;
  std::map<std::string, Runs, std::less<>> pending_;  // writer -> its runs since the last meta
  struct WrittenTick {
    std::string writer;
    ChangelogTick tick;
  };
  std::vector<WrittenTick> ticks_;  // not yet known to be in the last meta's state
  std::optional<ChangelogMeta> meta_;
  std::string meta_writer_;
  int64_t records_ = 0;
  int64_t bad_meta_ = 0;
  int64_t stale_ = 0;
  std::set<std::string, std::less<>> stale_keys_;
  bool snapshot_open_ = false;   // a kSnapshotKey record since the last meta
  std::string snapshot_writer_;  // its writer
  bool has_snapshot_ = false;
};

}  // namespace handoffd

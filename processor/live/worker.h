// The live worker (`handoffd run`): a Kafka consumer-group member that owns input partitions and
// runs one Pipeline (decoder + engine + DLQ) per owned partition number p, fed by events
// partition p and acks partition p. State moves with the partition through the changelog
// (changelog.h): restored on assignment, written per commit interval, closed by a meta record.
//
// Threading: the thread that calls Run() (the main thread) reads from Kafka, serves rebalances
// and commits; kafka.pipeline_threads lanes decode and process the records (partition p on lane
// p % n, events and acks in the order read). The main thread touches partitions only while every
// lane is idle (Quiesce), so a partition's pipeline is only ever used by one thread at a time.
// ready() may be called from any thread (the /readyz handler). Failures at start-up are returned as
// errors; on the message path bad input goes to the DLQ and Kafka errors are logged and retried,
// except fatal producer errors, which end Run() with a non-zero code (a restart resumes from the
// changelog).
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "processor/live/changelog.h"
#include "processor/live/heartbeat.h"
#include "processor/live/kafka_sink.h"
#include "processor/log.h"
#include "processor/pipeline.h"

namespace handoffd {

class Metrics;

// Reads up to `max` records (or consumer events) of a group consumer's queue into `out`, waiting
// up to `timeout_ms` in all; returns how many. One rd_kafka_consume_queue() call per record, not
// rd_kafka_consume_batch_queue(): librdkafka 2.0.2 pauses and resumes every assigned partition
// around each cooperative rebalance, and a batch call that meets the pause's barrier drops the
// records of that partition it had already gathered after moving the partition's application
// position past them, so the fetch resumes after them and they are never delivered (librdkafka
// PR 4208, fixed in 2.1.0). The chaos soak (tests/soak/chaos.py) lost events that way on
// partitions their worker kept through a rebalance.
size_t ConsumeGroupRecords(rd_kafka_queue_t* queue, int timeout_ms, rd_kafka_message_t** out,
                           size_t max);

// exactly_once: sends `offsets` to `producer`'s open transaction with `consumer`'s group
// metadata. A revocation that rd_kafka_consumer_close() serves after the group has terminated
// finds no metadata (librdkafka 2.0.2 returns NULL, and destroying a NULL one crashes): the
// offsets are then left out of the transaction, which still commits the changelog and outputs
// (its meta record, not the group offsets, is the restart point; the offsets serve lag tools
// and fencing), *skipped is set and nullptr returned. Otherwise returns what
// rd_kafka_send_offsets_to_transaction returns.
rd_kafka_error_t* SendOffsetsToTransaction(rd_kafka_t* producer, rd_kafka_t* consumer,
                                           const rd_kafka_topic_partition_list_t* offsets,
                                           int timeout_ms, bool* skipped);

class Worker {
 public:
  // REQUIRES: config (and metrics, if not null) outlive the worker. `instance` makes the
  // transactional.id (exactly_once): "<group_id>-<instance>"; keep it stable per instance so a
  // restarted instance fences its zombie.
  Worker(const Config& config, std::string bootstrap, std::string instance, Metrics* metrics);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The group is on the embedded broker (librdkafka's mock): call before Start(). The consumers
  // then use kEmbeddedConsumerDefaults (kafka_conf.h: a 5 ms fetch wait, because the mock holds
  // an empty fetch that long even when data arrives, and 6 s sessions, because it holds a
  // rebalance for session.timeout.ms - 1 s); user-set kafka.properties win.
  void UseEmbeddedBrokerSettings() { embedded_broker_ = true; }

  // Creates the clients, initialises transactions (exactly_once) and subscribes. Returns false
  // and sets *error when a client cannot be created or transactions cannot be initialised.
  bool Start(std::string* error);

  // Consumes until `stop` becomes true, then finishes the batch, commits, leaves the group and
  // returns 0; returns 1 after a fatal Kafka error (the last committed batch stays the restart
  // point). REQUIRES: Start() succeeded.
  int Run(const std::atomic<bool>& stop);

  // True once the worker has joined the group and every assigned partition is restored.
  bool ready() const { return ready_.load(); }

  // Empty while the main thread shows progress (a loop iteration, a restore read, a resumed
  // transaction call) within HeartbeatThreshold(config); else the one-line reason /healthz
  // answers 503 with. Any thread (the /healthz handler).
  std::string Unhealthy() const {
    return heartbeat_.Stalled(std::chrono::steady_clock::now(), HeartbeatThreshold(config_));
  }

 private:
  struct Partition {
    Partition() = default;
    Partition(const Partition&) = delete;
    Partition& operator=(const Partition&) = delete;
    ~Partition() {
      for (const std::deque<Held>& q : held) {
        for (const Held& r : q) rd_kafka_message_destroy(r.msg);
      }
    }

    int32_t id = 0;
    // This partition's view of the shared Metrics (Metrics::NewPartitionObserver): its engine's
    // active-run and open-packet counts add up with the other partitions'. Declared before
    // pipeline so it outlives the engine that reports to it.
    std::unique_ptr<EngineObserver> observer;
    std::unique_ptr<Pipeline> pipeline;
    int64_t next_events = 0;  // next offset to read on events p
    int64_t next_acks = 0;    // next offset to read on acks p
    bool dirty = false;       // processed input since the last committed batch
    bool events_eof = false;  // caught up on events p (until the next record arrives)
    bool acks_eof = false;
    // Wall-clock ticks (FollowWallClock). The target of the last tick, while the partition was
    // caught up (INT64_MIN otherwise): a watermark still below it at the next tick means no
    // record moved it meanwhile (a quiet partition), not one about to.
    int64_t clock_target = INT64_MIN;
    // Ticks of the changelog that the restored state does not hold, in order (ChangelogRestore::
    // ticks): each is applied once the partition has read up to its position (ApplyReplayTicks).
    std::deque<ChangelogTick> replay_ticks;
    // The merge of events p and acks p by event time (see Worker::Handle). Lane-owned.
    struct Held {
      rd_kafka_message_t* msg;  // owned
      int64_t ts_ms;            // event time; INT64_MIN for an EOF or a record without one
    };
    std::deque<Held> held[2];                      // [0] events, [1] acks; offset order
    int64_t frontier[2] = {INT64_MIN, INT64_MIN};  // highest event time received per input
    bool at_end[2] = {false, false};               // the input's last item received was its EOF
    // Embedded broker snapshots (DrainPartition). Estimates of what the broker holds of this
    // state partition (bytes, record batches: restored records, then drains), the changelog
    // written since the last snapshot, that snapshot's size, and the bytes per run record of the
    // last drain that wrote any.
    int64_t log_bytes = 0;
    int64_t log_batches = 0;
    int64_t bytes_since_snapshot = 0;
    int64_t drains_since_snapshot = 0;
    int64_t snapshot_bytes = 0;
    int64_t bytes_per_run = 0;
    bool snapshot_too_big_logged = false;
  };

  static void RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* parts, void* opaque);
  static void DeliveryCallback(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  // LogKafkaError, and counted in handoffd_kafka_errors_total. Runs on whichever thread polls
  // the client.
  static void ErrorCallback(rd_kafka_t* rk, int err, const char* reason, void* opaque);

  void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
  void Assign(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* parts);
  void Revoke(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* parts, bool lost);

  // Drains partition `part`'s changed runs into `out`. On the embedded broker, which keeps only
  // ~5 MiB or 100,000 record batches per partition and drops the oldest, a drain becomes a
  // snapshot (a kSnapshotKey record, then every run) once the partition's changelog nears those
  // limits and has grown by kSnapshotEveryBytes beyond the last snapshot's size (or by
  // kSnapshotEveryDrains drains), unless the state is too large to be kept that way. The records
  // the broker keeps then always hold one whole snapshot and what followed it, which is a
  // complete state (ChangelogRestore::has_snapshot). A real cluster compacts instead.
  void DrainPartition(Partition& part, ChangelogSink* out);
  // Reads state partitions `ps` from their beginnings, all through one assignment, and builds
  // their Pipelines. Re-writes the committed value of every key left after the last meta record
  // (see ChangelogRestore::TailKeys). A partition whose changelog cannot be read (error, or not
  // read to its end within the restore timeout) is missing from the result, after a log line.
  std::map<int32_t, std::unique_ptr<Partition>> Restore(const std::vector<int32_t>& ps);
  // Builds partition p's Pipeline from its folded changelog; `seconds` is the read's duration,
  // `truncated` whether the changelog had lost its head (counted in the restore metrics).
  // Without a meta record the inputs start at `first` (events, acks offsets).
  std::unique_ptr<Partition> BuildPartition(int32_t p, const ChangelogRestore& fold, double seconds,
                                            std::pair<int64_t, int64_t> first, bool truncated);
  // The offsets of `topic`'s partitions `ps` at `which` (RD_KAFKA_OFFSET_BEGINNING: the first
  // offset; RD_KAFKA_OFFSET_END: the end), asked in one ListOffsets request per leader: a
  // request per partition made a rebalance wait one round trip per partition, three times over.
  // A partition the broker could not answer for is missing from the result, after a warning.
  std::map<int32_t, int64_t> ListOffsets(const std::string& topic, const std::vector<int32_t>& ps,
                                         int64_t which);
  // Restores every owned partition again and seeks the inputs there (after an aborted txn).
  bool Rewind();

  // A lane: one pipeline thread and the records the main thread handed it.
  struct Lane {
    struct Item {
      rd_kafka_message_t* msg;  // owned
      bool is_acks;
    };
    std::mutex mu;
    std::condition_variable work_cv;  // records arrived, or stop
    std::condition_variable idle_cv;  // pending taken, or the lane went idle
    std::vector<Item> pending;
    bool at_head = false;  // the records of `pending` end a round that read everything there was
    bool busy = false;
    bool stop = false;
    std::thread thread;
  };
  void LaneLoop(Lane* lane);
  // Hands the round's records to the lanes (blocks while a lane has 4 batches' worth pending).
  void Dispatch(std::vector<std::vector<Lane::Item>>* rounds, bool at_head);
  // Returns once every lane is idle with nothing pending.
  void Quiesce();
  void StopLanes();
  // at_least_once: kicks the producer if anything was produced since the last kick (any thread).
  void KickIfProduced();
  // Starts stall_thread_, which ticks stall_watch_ (see there); StopStallWatch ends it.
  void StartStallWatch();
  void StopStallWatch();

  // On a lane (or on the main thread while the lanes are idle). Returns false when it kept
  // `msg` (held for the merge below), true when the caller destroys it.
  //
  // Two consumers read events p and acks p, one after the other each round, so under a backlog
  // (a restart, a new owner, a first start on old data) a round's acks can be stamped long
  // after its events, or the reverse. Applied in that order, acks moved the watermark past the
  // backlog's timers (escalations and stalls fired before the events that would have stopped
  // them) and found the packets they acknowledge not yet opened (dropped); events applied
  // before the acks of the same instant escalated what the acks were in time to stop. So a
  // partition's two inputs are merged by event time: a record is applied once the other input
  // has nothing earlier to give (its next held record is later, or everything it received is
  // applied and it is at its end or has sent something as late). Each input keeps its offset
  // order. The engine then sees the records in event-time order, as replay of the merged
  // input would, and a reprocessed batch in the order it had. Caught up (the other input at
  // its end) a record is applied at once, as before.
  bool Handle(rd_kafka_message_t* msg, bool is_acks);
  // Applies the held records the merge allows, in order.
  void Drain(Partition& part);
  // The input whose front held record is earlier (events on a tie, or when neither holds any).
  static int EarlierSide(const Partition& part);
  // Applies and frees the front held record of input `side` (0 events, 1 acks).
  void ApplyFront(Partition& part, int side);
  // Applies one record (or EOF) of partition `part`; `decoded`: the partition's pipeline has
  // just decoded it (Pipeline::Decode) and nothing since.
  void Apply(Partition& part, rd_kafka_message_t* msg, bool is_acks, bool decoded = false);
  // Reads up to kPollBatch records of `queue` (waiting up to timeout_ms for the first) into
  // their lanes' round; handles errors at once; returns how many records it read.
  int ConsumeBatch(rd_kafka_queue_t* queue, int timeout_ms, bool is_acks,
                   std::vector<std::vector<Lane::Item>>* rounds);
  // Writes changelog + meta for dirty partitions and commits (see the .cc for the order).
  // Returns false on a fatal error.
  bool Commit(bool force);
  // at_least_once, periodic: closes the batch (changed runs + meta per dirty partition, encoded
  // now, at the batch's offsets) into held_ without waiting for anything. Returns false when a
  // closed batch is still held (its outputs are not all acknowledged yet).
  bool CloseBatch();
  // at_least_once: moves the batches of held_, unsealed_ and pending_group_offsets_ on (see
  // there) as far as the delivery reports allow. Never blocks. Returns false on a fatal error
  // (a failed delivery).
  bool ReleaseHeld();
  // Drops revoked partitions' changelog records and group offsets from the at_least_once stages.
  void ForgetHeld(const rd_kafka_topic_partition_list_t* parts);
  bool CommitTransaction(rd_kafka_topic_partition_list_t* offsets);
  // rd_kafka_abort_transaction, resumed while it times out (for up to 60 s); false if it failed.
  bool AbortTransaction(int timeout_ms);
  // exactly_once, after a periodic commit failed (and was rewound): counts it, then pauses for
  // the commit interval doubled per failure in a row (at most 10 s, cut short by `stop`), or,
  // at kafka.max_failed_commits in a row, makes the failure fatal.
  void BackOffAfterFailedCommit(const std::atomic<bool>& stop);
  // at_least_once: stores `offsets` for librdkafka's auto-commit (lag tools only).
  void CommitGroupOffsets(rd_kafka_topic_partition_list_t* offsets);
  // Logs "caught up" (records and time since the assignment) the first time every owned
  // partition has reached the end of its events and acks after an assignment, with the
  // partitions' buffered metrics published first.
  void CheckCaughtUp();
  // Idle: returns when a record or a consumer callback is queued for Run(), or after `timeout`.
  void WaitForWork(std::chrono::milliseconds timeout);
  // Every kWallClockTick: a caught-up partition's watermark follows the wall clock; every
  // partition's watermark delay and buffered metrics (EngineObserver::Flush) are published.
  // exactly_once: the watermark moves to the wall clock at every tick (a crash aborts what
  // followed). at_least_once: only when that fires a timer, in a partition whose watermark no
  // record moved since the last tick, and only after a tick record (changelog.h) naming the
  // input position and the new watermark is acknowledged (JournalTicks); until then the
  // watermark stays where the records put it, so a reprocessing of the same input (which knows
  // the acknowledged ticks and no others) applies every record against the same watermark.
  // `may_journal` false (a stall hold, see stall_watch_): no tick records now, so no clock move.
  void FollowWallClock(bool may_journal);
  // at_least_once: writes a tick record per partition of `parts` (at its current position, to
  // `target`), waits until the producer has delivered it, then moves their watermarks.
  void JournalTicks(const std::vector<Partition*>& parts, int64_t target);
  // Applies the front replay ticks whose position the partition has read up to; with `all`,
  // every one left (the partition is caught up: its inputs end before the rest).
  void ApplyReplayTicks(Partition& part, bool all = false);
  void ReportLag(bool log);
  bool Fatal() const { return fatal_; }
  // Records main-thread progress: heartbeat_ and handoffd_main_loop_heartbeat_timestamp_seconds.
  void Beat();

  const Config& config_;
  // One "delivery failed" line per second: a refused request fails each of its records.
  // Delivery reports may be served on the kicker's thread too (LogLimiter is thread-safe).
  LogLimiter delivery_log_{std::chrono::seconds(1)};
  std::string bootstrap_;
  std::string instance_;
  Metrics* metrics_;
  bool exactly_once_;
  bool embedded_broker_ = false;

  rd_kafka_t* consumer_ = nullptr;              // group member, subscribed to the events topic
  rd_kafka_t* acks_ = nullptr;                  // assign-only: acks p follows events p
  rd_kafka_t* restorer_ = nullptr;              // assign-only: reads the changelog on assignment
  rd_kafka_t* producer_ = nullptr;              // idempotent (at_least_once) or transactional
  rd_kafka_queue_t* consumer_queue_ = nullptr;  // consumer_'s queue (records and callbacks)
  rd_kafka_queue_t* acks_queue_ = nullptr;
  // A pipe that librdkafka writes a byte to when one of the two queues above goes from empty to
  // non-empty (rd_kafka_queue_io_event_enable): an idle Run() sleeps on it (WaitForWork).
  int wake_pipe_[2] = {-1, -1};
  std::unique_ptr<KafkaOutputSink> sink_;
  // at_least_once: sends the producer's queue once the worker has caught up (see Run()).
  std::unique_ptr<ProducerKicker> kicker_;
  std::atomic<int64_t> kicked_produced_{0};         // sink_->produced() at the last kick
  std::vector<rd_kafka_topic_t*> producer_topics_;  // kept so their metadata stays cached
  std::vector<rd_kafka_topic_t*> consumer_topics_;  // acks_ and restorer_ topics, likewise

  std::map<int32_t, std::unique_ptr<Partition>> partitions_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  // Whole-process stalls (heartbeat.h): threshold the consumer's heartbeat.interval.ms, hold
  // twice that (at least 2 s). While it holds, Run() writes no changelog record and commits no
  // transaction: a member that the group expired during the stall learns it from librdkafka
  // meanwhile (partitions lost) instead of writing state over the new owner's.
  std::unique_ptr<StallWatch> stall_watch_;
  std::thread stall_thread_;
  std::mutex stall_mu_;
  std::condition_variable stall_cv_;
  bool stall_stop_ = false;
  std::atomic<bool> ready_{false};
  Heartbeat heartbeat_;
  struct CatchUp {
    bool active = false;  // assigned, not yet at the end of every input
    std::chrono::steady_clock::time_point start;
    double cpu_start = 0;             // process CPU seconds at the assignment
    std::atomic<int64_t> records{0};  // input records handled since the assignment
  } catch_up_;
  bool fatal_ = false;
  bool txn_open_ = false;
  // The group gave this member an assignment (Assign ran) at least once. Until then ~Worker
  // does not destroy consumer_: librdkafka 2.0.2 asserts in rd_kafka_destroy of a
  // cooperative-sticky consumer that has its JoinGroup response but no successful SyncGroup yet
  // (its assignor state is still NULL; librdkafka issue 4312, fixed in 2.3.0), so a worker
  // stopped during its first join died of SIGABRT instead of exiting 0.
  bool group_assigned_ = false;
  // at_least_once: a batch's changelog goes out in two steps behind its outputs' delivery
  // reports, so that a meta record never lands unless everything it stands for has landed:
  //   held_      closed; its outputs are in flight (epochs <= epoch);
  //   unsealed_  outputs acknowledged, its runs produced (in `epoch`), its metas wait for them;
  //   pending_group_offsets_  its metas produced (in pending_group_epoch_); the group offsets
  //              follow their acknowledgement.
  // On one state partition the order is runs N, meta N, runs N+1: a batch's runs are produced
  // only once the previous batch's metas are.
  struct HeldRecord {
    int32_t partition;
    std::string key;
    std::string value;
  };
  struct HeldBatch {
    HeldBatch() = default;
    HeldBatch(const HeldBatch&) = delete;
    HeldBatch& operator=(const HeldBatch&) = delete;
    ~HeldBatch() {
      if (offsets != nullptr) rd_kafka_topic_partition_list_destroy(offsets);
    }
    int64_t epoch = 0;  // KafkaOutputSink epoch that must be acknowledged for the next step
    std::chrono::steady_clock::time_point closed;
    std::vector<HeldRecord> runs;                        // changed runs of every dirty partition
    size_t run_count = 0;                                // how many runs (once produced)
    std::vector<HeldRecord> metas;                       // one meta record per dirty partition
    rd_kafka_topic_partition_list_t* offsets = nullptr;  // owned
  };
  std::unique_ptr<HeldBatch> held_;
  std::unique_ptr<HeldBatch> unsealed_;
  rd_kafka_topic_partition_list_t* pending_group_offsets_ = nullptr;
  int64_t pending_group_epoch_ = 0;
  std::chrono::steady_clock::time_point last_commit_;  // end of the last commit
  std::chrono::steady_clock::duration last_commit_cost_{};
  int32_t failed_commits_ = 0;  // exactly_once: commits failed in a row (empty ones not counted)
};

}  // namespace handoffd

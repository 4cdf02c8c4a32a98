#include "metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "processor/pipeline.h"

#ifndef HANDOFFD_VERSION
#define HANDOFFD_VERSION "unknown"
#endif

namespace handoffd {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Labels;
using prometheus::Registry;

constexpr size_t kGateCount = 8;
constexpr size_t kOutcomeCount = 3;
constexpr size_t kKindCount = 2;
constexpr size_t kSeverities = kSeverityCount;
constexpr size_t kClasses = kFailureClassCount;
// SLA breach levels 1..kMaxLevel get their own label value; anything else reports as "_other".
constexpr int kMaxLevel = 9;

// Buckets: time to acknowledge spans the SLA bands (P1 300 s, P2 900 s, P3 14400 s) and beyond;
// HCS is 0..100 in steps of 10; commits are milliseconds; a restore may take minutes.
const std::vector<double> kAckBuckets = {15,  30,  60,   120,  180,  240,   300,
                                         600, 900, 1800, 3600, 7200, 14400, 28800};
const std::vector<double> kHcsBuckets = {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
const std::vector<double> kCommitBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,   0.25,   0.5,   1,    2.5,   5};
const std::vector<double> kRestoreBuckets = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600};

// The packet fields that can be missing (contract section 11), pre-created so a dashboard shows
// zeros rather than nothing.
constexpr std::array<std::string_view, 10> kPacketFields = {
    "workflow_id",  "objective",          "last_successful_step", "failing_step",  "error_summary",
    "blast_radius", "recommended_action", "rollback_command",     "owner.primary", "owner.backup"};
constexpr std::array<std::string_view, 9> kLimits = {
    "max_event_bytes",          "max_active_runs",         "max_seen_event_ids_per_run",
    "max_open_packets_per_run", "max_steps_per_run",       "max_field_bytes",
    "message_max_bytes_dlq",    "message_max_bytes_state", "held_records"};

std::string S(std::string_view v) { return std::string(v); }

template <typename T>
Family<T>& Build(prometheus::detail::Builder<T> builder, Registry& r, const char* name,
                 const char* help) {
  return builder.Name(name).Help(help).Register(r);
}

// Children of one family created on first use and then reached through an atomic pointer, so the
// hot path neither locks nor builds a Labels map. Family::Add returns the existing child for equal
// labels, so two threads racing on a first use store the same pointer.
template <typename T, size_t N>
class LazyChildren {
 public:
  template <typename MakeChild>
  T& Get(size_t i, MakeChild&& make) {
    T* p = cells_[i].load(std::memory_order_acquire);
    if (p == nullptr) {
      p = &make();
      cells_[i].store(p, std::memory_order_release);
    }
    return *p;
  }

 private:
  std::array<std::atomic<T*>, N> cells_{};
};

// Children keyed by one free-text label (DLQ reason, field, limit, topic). At most
// Metrics::kMaxDynamicLabels distinct values; later values share the "_other" child. Rare paths
// only (a mutex and a map lookup without allocation once the child exists).
template <typename T>
class StringChildren {
 public:
  StringChildren(Family<T>& family, std::string label)
      : family_(family), label_(std::move(label)) {}

  // `extra`: more labels for a child created now; they must follow from `value`.
  T& Get(std::string_view value, const prometheus::Labels& extra = {}) {
    std::lock_guard lock(mu_);
    auto it = children_.find(value);
    if (it != children_.end()) return *it->second;
    if (children_.size() >= Metrics::kMaxDynamicLabels) {
      value = Metrics::kOtherLabel;
      it = children_.find(value);
      if (it != children_.end()) return *it->second;
    }
    prometheus::Labels labels = extra;
    labels.emplace(label_, S(value));
    T& child = family_.Add(labels);
    children_.emplace(S(value), &child);
    return child;
  }

 private:
  Family<T>& family_;
  const std::string label_;
  std::mutex mu_;
  std::map<std::string, T*, std::less<>> children_;
};

// Lets the workflow table be searched with a string_view (no std::string built per lookup).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// The children of every workflow-labelled family for one workflow label value.
struct WorkflowCells {
  std::string id;
  Counter* runs_started = nullptr;
  LazyChildren<Counter, kOutcomeCount> runs_completed;
  LazyChildren<Counter, kClasses * kSeverities> exceptions;
  LazyChildren<Counter, kKindCount * kSeverities * kGateCount> handoffs;
  LazyChildren<Counter, kSeverities*(kMaxLevel + 1)> sla_breaches;  // level index 0 = "_other"
};

}  // namespace

struct Metrics::Families {
  Families(Registry& r, const Config& config)
      : runs_started(Build(prometheus::BuildCounter(), r, "handoffd_runs_started_total",
                           "Agent runs started (first event of a run), by catalog workflow.")),
        runs_completed(Build(prometheus::BuildCounter(), r, "handoffd_runs_completed_total",
                             "Agent runs completed (run_completed events), by workflow and "
                             "outcome.")),
        exceptions(Build(prometheus::BuildCounter(), r, "handoffd_exceptions_total",
                         "Exception incidents opened (one packet each), by workflow, failure "
                         "class and severity.")),
        handoffs(Build(prometheus::BuildCounter(), r, "handoffd_handoffs_total",
                       "Packet records written to a routing topic (pending and revisions "
                       "included), by workflow, kind, severity and gate.")),
        time_to_ack(Build(prometheus::BuildHistogram(), r, "handoffd_time_to_ack_seconds",
                          "Seconds from a packet's detected_at to its first acknowledgement; "
                          "MTTA is rate(_sum)/rate(_count).")),
        sla_breaches(Build(prometheus::BuildCounter(), r, "handoffd_sla_breaches_total",
                           "Unacknowledged packets escalated past their ack deadline, by "
                           "workflow, severity and escalation level.")),
        expired(Build(prometheus::BuildCounter(), r, "handoffd_packets_expired_total",
                      "Packets that reached expires_at unacknowledged, by severity.")),
        hcs(Build(prometheus::BuildHistogram(), r, "handoffd_hcs_score",
                  "Handoff Completeness Score (0..100) at first emission, before (raw) and after "
                  "(final) catalog enrichment.")),
        missing_fields(Build(prometheus::BuildCounter(), r, "handoffd_missing_fields_total",
                             "Fields listed in missing_fields of emitted packets, by field.")),
        events(Build(prometheus::BuildCounter(), r, "handoffd_events_total",
                     "Valid input records (events and acks) processed, by type.")),
        events_invalid(Build(prometheus::BuildCounter(), r, "handoffd_events_invalid_total",
                             "Input records dead-lettered, by reason (handoffd-error header).")),
        key_mismatch(Build(prometheus::BuildCounter(), r, "handoffd_key_mismatch_total",
                           "Valid input records whose Kafka key is not their run_id, by topic: "
                           "their producer does not key by run_id, so a run's events and acks "
                           "can land in different partitions and be processed apart.")),
        events_ahead(Build(prometheus::BuildCounter(), r, "handoffd_events_ahead_total",
                           "Valid input records whose event time is more than "
                           "time.max_future_ms ahead of their Kafka timestamp, by topic: their "
                           "producer's clock is wrong; they moved the watermark only that far.")),
        active_runs(Build(prometheus::BuildGauge(), r, "handoffd_active_runs",
                          "Runs held in memory (started, not yet completed or forgotten).")),
        open_packets(Build(prometheus::BuildGauge(), r, "handoffd_open_packets",
                           "Open incidents (packets not yet resolved or expired), by severity.")),
        limit_hits(Build(prometheus::BuildCounter(), r, "handoffd_limit_hits_total",
                         "Times a limits.* bound was hit, by limit.")),
        consumer_lag(Build(prometheus::BuildGauge(), r, "handoffd_consumer_lag_records",
                           "Records between the consumer position and the partition end.")),
        watermark_delay(Build(prometheus::BuildGauge(), r, "handoffd_watermark_delay_seconds",
                              "Wall clock minus the event-time watermark, by partition.")),
        records_produced(Build(prometheus::BuildCounter(), r, "handoffd_records_produced_total",
                               "Records produced to output topics, by topic.")),
        delivery_failures(Build(prometheus::BuildCounter(), r, "handoffd_delivery_failures_total",
                                "Records the producer failed to deliver, by topic.")),
        kafka_errors(Build(prometheus::BuildCounter(), r, "handoffd_kafka_errors_total",
                           "Errors the Kafka clients reported, by librdkafka error name "
                           "(_TRANSPORT, _ALL_BROKERS_DOWN, ...); transient=\"true\": librdkafka "
                           "recovers by itself, \"false\": needs an operator.")),
        commit_duration(Build(prometheus::BuildHistogram(), r, "handoffd_commit_duration_seconds",
                              "Duration of a batch commit (transaction or offset commit).")),
        commit_failures(Build(prometheus::BuildCounter(), r, "handoffd_commit_failures_total",
                              "Batch commits that failed.")),
        restore_duration(Build(prometheus::BuildHistogram(), r, "handoffd_restore_duration_seconds",
                               "Duration of restoring a partition's state from the changelog.")),
        restored_records(Build(prometheus::BuildCounter(), r, "handoffd_restored_records_total",
                               "Changelog records read while restoring partition state.")),
        restores_truncated(
            Build(prometheus::BuildCounter(), r, "handoffd_restores_truncated_total",
                  "Partition restores whose changelog no longer starts at offset 0: the broker "
                  "deleted its oldest records, so runs last written there were not restored.")),
        assigned_partitions(Build(prometheus::BuildGauge(), r, "handoffd_assigned_partitions",
                                  "Input partitions currently assigned to this worker.")),
        main_loop_heartbeat(
            Build(prometheus::BuildGauge(), r, "handoffd_main_loop_heartbeat_timestamp_seconds",
                  "Wall-clock time (Unix seconds) of the live worker's last main-loop iteration "
                  "or restore read; 0 before the first. Stops moving when the loop hangs.")),
        topic_config_problem(
            Build(prometheus::BuildGauge(), r, "handoffd_topic_config_problem",
                  "1 for each config of a topic on the cluster that makes the live worker stop or "
                  "lose state (checked at start, see the worker's msg=\"topic config problem\" "
                  "line): problem is not_compacted or finite_retention (the state changelog) or "
                  "max_message_bytes. No series when the check found nothing or could not run.")),
        build_info(Build(prometheus::BuildGauge(), r, "handoffd_build_info",
                         "Always 1; the version label names the running build.")),
        invalid_by_reason(events_invalid, "reason"),
        missing_by_field(missing_fields, "field"),
        limit_by_name(limit_hits, "limit"),
        key_mismatch_by_topic(key_mismatch, "topic"),
        events_ahead_by_topic(events_ahead, "topic"),
        produced_by_topic(records_produced, "topic"),
        failures_by_topic(delivery_failures, "topic"),
        kafka_errors_by_name(kafka_errors, "error") {
    for (const auto& [id, wf] : config.workflows) AddWorkflow(id);
    other = std::make_unique<WorkflowCells>();
    InitWorkflow(*other, S(kOtherLabel));
    for (const auto& [id, cells] : workflows) {
      PrecreateWorkflow(*cells, config.FindWorkflow(id), config);
    }
    PrecreateWorkflow(*other, nullptr, config);

    for (size_t t = 0; t < kEventTypeCount; ++t) {
      event_counters[t] = &events.Add({{"type", S(ToString(static_cast<EventType>(t)))}});
    }
    for (size_t s = 0; s < kSeverities; ++s) {
      const std::string sev = S(ToString(static_cast<Severity>(s)));
      ack[s] = &time_to_ack.Add({{"severity", sev}}, kAckBuckets);
      hcs_raw[s] = &hcs.Add({{"severity", sev}, {"stage", "raw"}}, kHcsBuckets);
      hcs_final[s] = &hcs.Add({{"severity", sev}, {"stage", "final"}}, kHcsBuckets);
      expired_by_sev[s] = &expired.Add({{"severity", sev}});
      open_by_sev[s] = &open_packets.Add({{"severity", sev}});
    }
    // Every DLQ reason, so that rate() sees the first dead letter of each and a sum over
    // reasons (the DLQ ratio alert, the dashboard's input rate) is 0 rather than empty.
    for (const std::string& reason : DeadLetterReasons()) invalid_by_reason.Get(reason);
    for (std::string_view field : kPacketFields) missing_by_field.Get(field);
    for (std::string_view limit : kLimits) limit_by_name.Get(limit);
    for (const std::string* topic : {&config.topics.events, &config.topics.acks}) {
      key_mismatch_by_topic.Get(*topic);
      events_ahead_by_topic.Get(*topic);
    }
    // The errors of a broker restart or a network cut, at zero so that increase() sees the first.
    for (std::string_view error : {"_TRANSPORT", "_ALL_BROKERS_DOWN"}) {
      kafka_errors_by_name.Get(error, {{"transient", "true"}});
    }
    for (size_t role = 0; role < kTopicRoleCount; ++role) {
      produced_by_topic.Get(config.topics.ForRole(static_cast<TopicRole>(role)));
    }
    active = &active_runs.Add({});
    commit = &commit_duration.Add({}, kCommitBuckets);
    commit_failed = &commit_failures.Add({});
    restore = &restore_duration.Add({}, kRestoreBuckets);
    restored = &restored_records.Add({});
    truncated = &restores_truncated.Add({});
    assigned = &assigned_partitions.Add({});
    heartbeat = &main_loop_heartbeat.Add({});
    build_info.Add({{"version", HANDOFFD_VERSION}}).Set(1);
  }

  void InitWorkflow(WorkflowCells& cells, std::string id) {
    cells.id = std::move(id);
    cells.runs_started = &runs_started.Add({{"workflow", cells.id}});
  }

  // Creates at zero the series a workflow will most likely report, so that rate() and increase()
  // see the first exception, completion or breach (Prometheus cannot count the first sample of a
  // series that appears with value 1). The severity is the one the engine gives a run without
  // its own: the catalog's (else the default), raised by the class minimum and by a catalog blast
  // radius at the P1 threshold. Runs with another severity create their series on first use.
  void PrecreateWorkflow(WorkflowCells& cells, const WorkflowConfig* wf, const Config& config) {
    Severity base = wf != nullptr && wf->severity ? *wf->severity : config.defaults.severity;
    if (wf != nullptr && wf->blast_radius_users &&
        *wf->blast_radius_users >= config.defaults.p1_blast_radius_users) {
      base = Severity::kP1;
    }
    for (size_t o = 0; o < kOutcomeCount; ++o) RunCompleted(cells, static_cast<Outcome>(o));
    for (size_t c = 0; c < kClasses; ++c) {
      const auto cls = static_cast<FailureClass>(c);
      if (KindOf(cls) != HandoffKind::kException) continue;
      Severity sev = base;
      if (const auto& min = config.classes[c].min_severity; min && *min < sev) sev = *min;
      Exception(cells, cls, sev);
    }
    SlaBreach(cells, base, 2);
    SlaBreach(cells, base, 3);
  }

  Counter& RunCompleted(WorkflowCells& w, Outcome outcome) {
    return w.runs_completed.Get(static_cast<size_t>(outcome), [&]() -> Counter& {
      return runs_completed.Add({{"workflow", w.id}, {"outcome", S(ToString(outcome))}});
    });
  }

  Counter& Exception(WorkflowCells& w, FailureClass cls, Severity severity) {
    const size_t i = static_cast<size_t>(cls) * kSeverities + static_cast<size_t>(severity);
    return w.exceptions.Get(i, [&]() -> Counter& {
      return exceptions.Add({{"workflow", w.id},
                             {"failure_class", S(ToString(cls))},
                             {"severity", S(ToString(severity))}});
    });
  }

  Counter& SlaBreach(WorkflowCells& w, Severity severity, int level) {
    const bool known = level >= 1 && level <= kMaxLevel;
    const size_t level_index = known ? static_cast<size_t>(level) : 0;
    return w.sla_breaches.Get(
        static_cast<size_t>(severity) * (kMaxLevel + 1) + level_index, [&]() -> Counter& {
          return sla_breaches.Add({{"workflow", w.id},
                                   {"severity", S(ToString(severity))},
                                   {"level", known ? std::to_string(level) : S(kOtherLabel)}});
        });
  }

  void AddWorkflow(const std::string& id) {
    auto cells = std::make_unique<WorkflowCells>();
    InitWorkflow(*cells, id);
    workflows.emplace(id, std::move(cells));
  }

  // The cells of a catalog workflow, else of "_other". No allocation: heterogeneous lookup in a
  // table that is fixed after construction (so readers need no lock).
  WorkflowCells& Workflow(std::string_view id) {
    auto it = workflows.find(id);
    return it == workflows.end() ? *other : *it->second;
  }

  Family<Counter>& runs_started;
  Family<Counter>& runs_completed;
  Family<Counter>& exceptions;
  Family<Counter>& handoffs;
  Family<Histogram>& time_to_ack;
  Family<Counter>& sla_breaches;
  Family<Counter>& expired;
  Family<Histogram>& hcs;
  Family<Counter>& missing_fields;
  Family<Counter>& events;
  Family<Counter>& events_invalid;
  Family<Counter>& key_mismatch;
  Family<Counter>& events_ahead;
  Family<Gauge>& active_runs;
  Family<Gauge>& open_packets;
  Family<Counter>& limit_hits;
  Family<Gauge>& consumer_lag;
  Family<Gauge>& watermark_delay;
  Family<Counter>& records_produced;
  Family<Counter>& delivery_failures;
  Family<Counter>& kafka_errors;
  Family<Histogram>& commit_duration;
  Family<Counter>& commit_failures;
  Family<Histogram>& restore_duration;
  Family<Counter>& restored_records;
  Family<Counter>& restores_truncated;
  Family<Gauge>& assigned_partitions;
  Family<Gauge>& main_loop_heartbeat;
  Family<Gauge>& topic_config_problem;
  Family<Gauge>& build_info;

  StringChildren<Counter> invalid_by_reason;
  StringChildren<Counter> missing_by_field;
  StringChildren<Counter> limit_by_name;
  StringChildren<Counter> key_mismatch_by_topic;
  StringChildren<Counter> events_ahead_by_topic;
  StringChildren<Counter> produced_by_topic;
  StringChildren<Counter> failures_by_topic;
  StringChildren<Counter> kafka_errors_by_name;

  std::unordered_map<std::string, std::unique_ptr<WorkflowCells>, StringHash, std::equal_to<>>
      workflows;
  std::unique_ptr<WorkflowCells> other;

  std::array<Counter*, kEventTypeCount> event_counters{};
  std::array<Histogram*, kSeverities> ack{};
  std::array<Histogram*, kSeverities> hcs_raw{};
  std::array<Histogram*, kSeverities> hcs_final{};
  std::array<Counter*, kSeverities> expired_by_sev{};
  std::array<Gauge*, kSeverities> open_by_sev{};
  Gauge* active = nullptr;
  Histogram* commit = nullptr;
  Counter* commit_failed = nullptr;
  Histogram* restore = nullptr;
  Counter* restored = nullptr;
  Counter* truncated = nullptr;
  Gauge* assigned = nullptr;
  Gauge* heartbeat = nullptr;

  // Live-mode per-partition gauges, dropped on revocation.
  std::mutex partition_mu;
  std::map<std::pair<std::string, int32_t>, Gauge*, std::less<>> lag_by_partition;
  std::map<int32_t, Gauge*> watermark_by_partition;
};

namespace {

size_t Idx(Severity s) { return static_cast<size_t>(s); }

}  // namespace

Metrics::Metrics(prometheus::Registry& registry, const Config& config)
    : f_(std::make_unique<Families>(registry, config)) {}

Metrics::~Metrics() = default;

void Metrics::OnEvent(EventType type) {
  f_->event_counters[static_cast<size_t>(type)]->Increment();
}

void Metrics::OnInvalidEvent(std::string_view reason) {
  f_->invalid_by_reason.Get(reason).Increment();
}

void Metrics::OnRunStarted(std::string_view workflow) {
  f_->Workflow(workflow).runs_started->Increment();
}

void Metrics::OnRunCompleted(std::string_view workflow, Outcome outcome) {
  f_->RunCompleted(f_->Workflow(workflow), outcome).Increment();
}

void Metrics::OnIncidentOpened(std::string_view workflow, FailureClass cls, Severity severity) {
  if (KindOf(cls) != HandoffKind::kException) return;  // planned handoffs are not exceptions
  f_->Exception(f_->Workflow(workflow), cls, severity).Increment();
}

void Metrics::OnHandoff(std::string_view workflow, HandoffKind kind, Severity severity, Gate gate) {
  WorkflowCells& w = f_->Workflow(workflow);
  const size_t i = (static_cast<size_t>(kind) * kSeverities + Idx(severity)) * kGateCount +
                   static_cast<size_t>(gate);
  w.handoffs
      .Get(i,
           [&]() -> Counter& {
             return f_->handoffs.Add({{"workflow", w.id},
                                      {"kind", S(ToString(kind))},
                                      {"severity", S(ToString(severity))},
                                      {"gate", S(ToString(gate))}});
           })
      .Increment();
}

void Metrics::OnScored(Severity severity, double raw, double final_score) {
  f_->hcs_raw[Idx(severity)]->Observe(raw);
  f_->hcs_final[Idx(severity)]->Observe(final_score);
}

void Metrics::OnMissingField(std::string_view field) {
  f_->missing_by_field.Get(field).Increment();
}

void Metrics::OnAcknowledged(Severity severity, double seconds_to_ack) {
  f_->ack[Idx(severity)]->Observe(seconds_to_ack);
}

void Metrics::OnSlaBreach(std::string_view workflow, Severity severity, int level) {
  f_->SlaBreach(f_->Workflow(workflow), severity, level).Increment();
}

void Metrics::OnExpired(Severity severity) { f_->expired_by_sev[Idx(severity)]->Increment(); }

void Metrics::OnActiveRuns(int64_t count) { f_->active->Set(static_cast<double>(count)); }

void Metrics::OnOpenPackets(Severity severity, int64_t count) {
  f_->open_by_sev[Idx(severity)]->Set(static_cast<double>(count));
}

void Metrics::OnLimitHit(std::string_view limit) { f_->limit_by_name.Get(limit).Increment(); }

void Metrics::OnKeyMismatch(std::string_view topic) {
  f_->key_mismatch_by_topic.Get(topic).Increment();
}

void Metrics::OnEventAhead(std::string_view topic) {
  f_->events_ahead_by_topic.Get(topic).Increment();
}

void Metrics::SetConsumerLag(std::string_view topic, int32_t partition, int64_t lag) {
  std::lock_guard lock(f_->partition_mu);
  auto key = std::make_pair(S(topic), partition);
  auto it = f_->lag_by_partition.find(key);
  if (it == f_->lag_by_partition.end()) {
    Gauge& g =
        f_->consumer_lag.Add({{"topic", key.first}, {"partition", std::to_string(partition)}});
    it = f_->lag_by_partition.emplace(std::move(key), &g).first;
  }
  it->second->Set(static_cast<double>(lag));
}

void Metrics::SetWatermarkDelay(int32_t partition, double seconds) {
  std::lock_guard lock(f_->partition_mu);
  auto it = f_->watermark_by_partition.find(partition);
  if (it == f_->watermark_by_partition.end()) {
    Gauge& g = f_->watermark_delay.Add({{"partition", std::to_string(partition)}});
    it = f_->watermark_by_partition.emplace(partition, &g).first;
  }
  it->second->Set(seconds);
}

void Metrics::ClearPartition(int32_t partition) {
  std::lock_guard lock(f_->partition_mu);
  for (auto it = f_->lag_by_partition.begin(); it != f_->lag_by_partition.end();) {
    if (it->first.second == partition) {
      f_->consumer_lag.Remove(it->second);
      it = f_->lag_by_partition.erase(it);
    } else {
      ++it;
    }
  }
  if (auto it = f_->watermark_by_partition.find(partition);
      it != f_->watermark_by_partition.end()) {
    f_->watermark_delay.Remove(it->second);
    f_->watermark_by_partition.erase(it);
  }
}

void Metrics::OnCommit(double seconds, bool ok) {
  f_->commit->Observe(seconds);
  if (!ok) f_->commit_failed->Increment();
}

void Metrics::OnRestore(int32_t /*partition*/, double seconds, int64_t records, bool truncated) {
  f_->restore->Observe(seconds);
  f_->restored->Increment(static_cast<double>(records));
  if (truncated) f_->truncated->Increment();
}

void Metrics::OnRecordsProduced(std::string_view topic, int64_t count) {
  f_->produced_by_topic.Get(topic).Increment(static_cast<double>(count));
}

void Metrics::OnDeliveryFailure(std::string_view topic) {
  f_->failures_by_topic.Get(topic).Increment();
}

void Metrics::OnKafkaError(std::string_view error, bool transient) {
  f_->kafka_errors_by_name.Get(error, {{"transient", transient ? "true" : "false"}}).Increment();
}

void Metrics::SetAssignedPartitions(int64_t count) {
  f_->assigned->Set(static_cast<double>(count));
}

void Metrics::SetMainLoopHeartbeat(double unix_seconds) { f_->heartbeat->Set(unix_seconds); }

void Metrics::SetTopicConfigProblem(std::string_view topic, std::string_view problem) {
  f_->topic_config_problem.Add({{"topic", std::string(topic)}, {"problem", std::string(problem)}})
      .Set(1);
}

// Forwards to the shared Metrics; the level hooks add this engine's change to the shared gauge
// (Gauge::Increment is atomic), and the destructor takes this engine's share back out. The hooks
// called per event (OnEvent, OnActiveRuns) are buffered here and published by Flush() and the
// destructor: two engines on two threads updating the same atomic series per event made its
// cache line bounce between the cores.
class Metrics::PartitionObserver : public EngineObserver {
 public:
  explicit PartitionObserver(Metrics& m) : m_(m) {}
  ~PartitionObserver() override {
    Flush();
    m_.f_->active->Decrement(static_cast<double>(active_published_));
    for (size_t s = 0; s < kSeverities; ++s) {
      m_.f_->open_by_sev[s]->Decrement(static_cast<double>(open_[s]));
    }
  }

  void OnEvent(EventType type) override { ++events_[static_cast<size_t>(type)]; }
  void OnInvalidEvent(std::string_view reason) override { m_.OnInvalidEvent(reason); }
  void OnRunStarted(std::string_view workflow) override { m_.OnRunStarted(workflow); }
  void OnRunCompleted(std::string_view workflow, Outcome outcome) override {
    m_.OnRunCompleted(workflow, outcome);
  }
  void OnIncidentOpened(std::string_view workflow, FailureClass cls, Severity severity) override {
    m_.OnIncidentOpened(workflow, cls, severity);
  }
  void OnHandoff(std::string_view workflow, HandoffKind kind, Severity severity,
                 Gate gate) override {
    m_.OnHandoff(workflow, kind, severity, gate);
  }
  void OnScored(Severity severity, double raw, double final_score) override {
    m_.OnScored(severity, raw, final_score);
  }
  void OnMissingField(std::string_view field) override { m_.OnMissingField(field); }
  void OnAcknowledged(Severity severity, double seconds_to_ack) override {
    m_.OnAcknowledged(severity, seconds_to_ack);
  }
  void OnSlaBreach(std::string_view workflow, Severity severity, int level) override {
    m_.OnSlaBreach(workflow, severity, level);
  }
  void OnExpired(Severity severity) override { m_.OnExpired(severity); }
  void OnLimitHit(std::string_view limit) override { m_.OnLimitHit(limit); }
  void OnKeyMismatch(std::string_view topic) override { m_.OnKeyMismatch(topic); }
  void OnEventAhead(std::string_view topic) override { m_.OnEventAhead(topic); }

  void OnActiveRuns(int64_t count) override { active_ = count; }
  void OnOpenPackets(Severity severity, int64_t count) override {
    int64_t& mine = open_[Idx(severity)];
    m_.f_->open_by_sev[Idx(severity)]->Increment(static_cast<double>(count - mine));
    mine = count;
  }

  void Flush() override {
    for (size_t t = 0; t < events_.size(); ++t) {
      if (events_[t] == 0) continue;
      m_.f_->event_counters[t]->Increment(static_cast<double>(events_[t]));
      events_[t] = 0;
    }
    if (active_ != active_published_) {
      m_.f_->active->Increment(static_cast<double>(active_ - active_published_));
      active_published_ = active_;
    }
  }

 private:
  Metrics& m_;
  std::array<uint64_t, kEventTypeCount> events_{};  // counted since the last Flush
  int64_t active_ = 0;
  int64_t active_published_ = 0;  // this engine's share of the shared gauge
  std::array<int64_t, kSeverities> open_{};
};

std::unique_ptr<EngineObserver> Metrics::NewPartitionObserver() {
  return std::make_unique<PartitionObserver>(*this);
}

}  // namespace handoffd

// The handoffd configuration as plain values (contract section 9). The YAML loader
// (config/config_loader.h) fills it; the engine and the live worker only read it.
// A Config is immutable once loaded and may be shared across threads.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "processor/types.h"

namespace handoffd {

enum class ProcessingGuarantee : uint8_t { kExactlyOnce, kAtLeastOnce };

struct KafkaConfig {
  std::string bootstrap_servers = "embedded";  // "embedded" starts an in-process broker
  std::string group_id = "handoffd";
  ProcessingGuarantee processing_guarantee = ProcessingGuarantee::kExactlyOnce;
  std::map<std::string, std::string>
      properties;  // passed to librdkafka unchanged; may hold secrets
  int64_t commit_interval_ms = 100;
  int64_t shutdown_timeout_ms = 10000;
  // exactly_once: consecutive failed commits (each aborted and rewound, then retried after a
  // growing pause) after which the worker stops with exit code 1.
  int32_t max_failed_commits = 10;
  // Threads that decode and process the owned partitions (partition p on thread p % n), besides
  // the thread that reads from Kafka and commits.
  int32_t pipeline_threads = 2;
  int32_t partitions = 4;          // partitions per topic when handoffd creates topics
  int32_t replication_factor = 1;  // replication when handoffd creates topics on a real cluster
};

struct TopicsConfig {
  std::string events = "agent.events";
  std::string acks = "handoff.acks";
  std::string page = "handoff.page";
  std::string owner_queue = "handoff.owner-queue";
  std::string tickets = "handoff.tickets";
  std::string decisions = "handoff.decisions";
  std::string pending = "handoff.pending";
  std::string escalations = "handoff.escalations";
  std::string audit = "handoff.audit";
  std::string dlq = "agent.events.dlq";
  std::string state = "handoffd.state";  // changelog of per-partition state (live mode)

  // Topic name for an output role.
  const std::string& ForRole(TopicRole role) const;
};

struct MetricsConfig {
  std::string listen = "127.0.0.1:9464";
};

struct TimeConfig {
  int64_t allowed_lateness_ms = 2000;
  // Live mode: an event time more than this ahead of its Kafka record's timestamp moves the
  // watermark only to record time + this (Engine: SourceRef::record_time_ms).
  int64_t max_future_ms = 300000;
  // Live mode: an event time more than this behind its Kafka record's timestamp is dead-lettered
  // as "stale_timestamp" (epoch seconds read as milliseconds, a clock years off).
  int64_t max_past_ms = 604800000;  // 7 days
};

// Every bound has a key, a documented behaviour when hit, and a metric.
struct LimitsConfig {
  int64_t max_event_bytes = 1048576;          // larger events are dead-lettered as "oversized"
  int64_t max_active_runs = 2000000;          // per engine; when hit the oldest-idle run is evicted
  int64_t max_seen_event_ids_per_run = 4096;  // dedup window per run; oldest ids forgotten
  int64_t max_open_packets_per_run = 64;      // further detections in the run are dropped + counted
  int64_t max_steps_per_run = 256;  // step counters per run; the earliest-seen step is forgotten
  // Free text and pass-through JSON of an event longer than this are cut (processor/field_caps.h)
  // so that packets and state records stay producible. At least 256.
  int64_t max_field_bytes = 8192;
  // A completed run with no open packet is kept this long (event time) after run_completed so
  // that late duplicates of its events are still recognised, then forgotten.
  int64_t completed_run_retention_s = 600;
  // After that, the run is retired for this long (event time): only its id and incident count
  // stay, and its later events are dead-lettered as "retired_run" instead of starting the run
  // again (a new run would reuse its packet ids). 0 = forget at once.
  int64_t retired_run_memory_s = 3600;
};

struct Budget {
  std::optional<double> cost_usd;
  std::optional<int64_t> tool_calls;
  std::optional<int64_t> duration_s;
};

// Per-class recommended actions; index = FailureClass.
using ClassStrings = std::array<std::optional<std::string>, kFailureClassCount>;

struct WorkflowConfig {
  std::string id;
  std::optional<Severity> severity;
  std::optional<std::string> objective;
  std::optional<std::string> owner_primary;
  std::optional<std::string> owner_backup;
  std::optional<std::string> rollback_command;
  std::optional<int64_t> blast_radius_users;
  std::optional<int64_t> blast_radius_jobs;
  ClassStrings recommended_actions;
  std::optional<double> confidence_threshold;
  std::optional<double> amount_threshold;
  Budget budget;
  std::optional<int64_t> stall_timeout_s;
  std::optional<int64_t> max_retries;
  bool always_page = false;
};

struct DefaultsConfig {
  Severity severity = Severity::kP3;
  double confidence_threshold = 0.85;
  int64_t max_retries = 3;
  int64_t stall_timeout_s = 600;
  int64_t p1_max_hold_s = 60;
  int64_t p1_blast_radius_users = 1000;
  ClassStrings recommended_actions;  // the loader fills built-in texts for classes not given
};

struct ClassConfig {
  std::optional<Severity> min_severity;
};

// Error code -> class. Config::rules holds the user's rules first, then the built-in mapping of
// contract section 4; the first rule whose codes contain the code wins. Codes matched by no rule
// are unclassified_failure (when not retryable).
struct Rule {
  std::vector<std::string> codes;
  FailureClass failure_class;
};

struct SlaBand {
  double min_score = 0;
  int64_t first_response_s = 0;
  int64_t ttl_s = 0;
  std::string escalation_route;
  std::string decision_authority;
};

struct Config {
  KafkaConfig kafka;
  TopicsConfig topics;
  MetricsConfig metrics;
  TimeConfig time;
  LimitsConfig limits;
  DefaultsConfig defaults;
  std::array<ClassConfig, kFailureClassCount> classes;
  std::vector<Rule> rules;
  std::map<std::string, WorkflowConfig, std::less<>> workflows;  // the catalog, by id
  std::array<SlaBand, kSeverityCount> sla;                       // index = Severity

  // nullptr when the workflow is not in the catalog.
  const WorkflowConfig* FindWorkflow(std::string_view id) const;
  const SlaBand& Sla(Severity s) const { return sla[static_cast<size_t>(s)]; }
};

// The configuration with every contract default and no catalog: built-in rules, built-in
// recommended actions and the SLA bands of contract section 6.
Config DefaultConfig();

}  // namespace handoffd

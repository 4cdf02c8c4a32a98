// handoffd's Prometheus metrics (contract section 8 plus pipeline health). Metrics implements
// the core's EngineObserver, so the engine stays free of prometheus-cpp; the registry is handed
// in, never global. Thread-safe: prometheus-cpp metrics are atomic; several engines (one per
// partition) may share one Metrics.
#pragma once

#include <prometheus/registry.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "config/config.h"
#include "processor/engine_observer.h"

namespace handoffd {

class Metrics : public EngineObserver {
 public:
  // REQUIRES: registry and config outlive this object. Registers every family at once so a
  // scrape shows them (with zero values) before the first event.
  Metrics(prometheus::Registry& registry, const Config& config);
  ~Metrics() override;

  // EngineObserver (contract section 8 families). OnActiveRuns and OnOpenPackets set the gauges,
  // which is right for one engine; engines sharing this Metrics use NewPartitionObserver().
  void OnEvent(EventType type) override;
  void OnInvalidEvent(std::string_view reason) override;
  void OnRunStarted(std::string_view workflow) override;
  void OnRunCompleted(std::string_view workflow, Outcome outcome) override;
  void OnIncidentOpened(std::string_view workflow, FailureClass cls, Severity severity) override;
  void OnHandoff(std::string_view workflow, HandoffKind kind, Severity severity,
                 Gate gate) override;
  void OnScored(Severity severity, double raw, double final_score) override;
  void OnMissingField(std::string_view field) override;
  void OnAcknowledged(Severity severity, double seconds_to_ack) override;
  void OnSlaBreach(std::string_view workflow, Severity severity, int level) override;
  void OnExpired(Severity severity) override;
  void OnActiveRuns(int64_t count) override;
  void OnOpenPackets(Severity severity, int64_t count) override;
  void OnLimitHit(std::string_view limit) override;
  void OnKeyMismatch(std::string_view topic) override;
  void OnEventAhead(std::string_view topic) override;

  // Pipeline health (live mode).
  void SetConsumerLag(std::string_view topic, int32_t partition, int64_t lag);
  void SetWatermarkDelay(int32_t partition, double seconds);
  void ClearPartition(int32_t partition);  // on revocation: drop the partition's gauges
  void OnCommit(double seconds, bool ok);
  // `truncated`: the changelog partition no longer starts at offset 0 (see the worker's
  // msg="changelog head missing").
  void OnRestore(int32_t partition, double seconds, int64_t records, bool truncated = false);
  void OnRecordsProduced(std::string_view topic, int64_t count);
  void OnDeliveryFailure(std::string_view topic);
  // An error a Kafka client reported (librdkafka's error callback), by its name, e.g.
  // "_TRANSPORT" or "_ALL_BROKERS_DOWN"; `transient`: librdkafka recovers from it by itself
  // (IsTransientKafkaError). Thread-safe.
  void OnKafkaError(std::string_view error, bool transient);
  void SetAssignedPartitions(int64_t count);
  // The wall-clock time of the worker's last main-loop iteration (Heartbeat). Thread-safe.
  void SetMainLoopHeartbeat(double unix_seconds);
  // A topic config that makes the worker stop or lose state (CheckTopicConfigs at start): sets
  // handoffd_topic_config_problem{topic,problem} to 1. Bounded: a few topics, three problems.
  void SetTopicConfigProblem(std::string_view topic, std::string_view problem);

  // An observer for one engine when several engines share this Metrics (one per partition in
  // live mode). It forwards every hook, but turns the level hooks (OnActiveRuns, OnOpenPackets)
  // into its share of a process-wide sum, so the gauges show the total over all engines; when the
  // returned observer is destroyed (partition revoked) its share is removed. The per-event hooks
  // (OnEvent, OnActiveRuns) are published by its Flush() and by its destruction.
  // REQUIRES: this Metrics outlives the returned observer.
  std::unique_ptr<EngineObserver> NewPartitionObserver();

  // Label bounds: workflows outside the catalog report as kOtherLabel, and free-text labels
  // (DLQ reason, missing field, limit, topic) keep at most kMaxDynamicLabels distinct values per
  // family, the rest reporting as kOtherLabel.
  static constexpr std::string_view kOtherLabel = "_other";
  static constexpr size_t kMaxDynamicLabels = 256;

 private:
  struct Families;
  class PartitionObserver;
  std::unique_ptr<Families> f_;
};

}  // namespace handoffd

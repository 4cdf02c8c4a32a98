// Creates handoffd's topics on a real cluster with the Kafka admin API: partitions and
// replication from config (kafka.partitions, kafka.replication_factor), TopicConfigs (compaction)
// for the state changelog; and checks that the worker's per-partition topics are co-partitioned.
// Existing topics are left as they are. Start-up only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace handoffd {

// True for the cluster id librdkafka's mock cluster reports ("mockCluster<hex>"): the embedded
// broker, started by `handoffd broker` or `bootstrap_servers: embedded`. A Kafka cluster's id is
// a base64 UUID.
bool IsEmbeddedClusterId(std::string_view cluster_id);

// The topic-level configs CreateMissingTopics sets on `topic`: none, except for the state
// changelog: cleanup.policy=compact (a restore needs the latest record of every key), and
// min.compaction.lag.ms of a day. A crash mid-commit leaves run records after the last meta
// record, which the next restore discards and overwrites with the committed value; until then
// such an orphan must not let the cleaner drop the committed record it supersedes, and the
// cleaner only compacts records older than min.compaction.lag.ms.
std::vector<std::pair<std::string, std::string>> TopicConfigs(const Config& config,
                                                              std::string_view topic);

// A topic CreateMissingTopics creates, with its partition count and where that count comes from.
struct TopicToCreate {
  std::string topic;
  int32_t partitions = 0;
  // "events": the existing events topic's count (for a missing acks or state topic, which the
  // worker joins with events partition by partition); "config": kafka.partitions.
  std::string_view source;
};

// The topics of AllTopics(config.topics) that `existing` (topic name -> partition count) lacks,
// in that order, each with the partition count CreateMissingTopics gives it: a missing acks or
// state topic gets the events topic's count when the events topic exists (with kafka.partitions
// it would not be co-partitioned with events and the worker would refuse to start), every other
// topic kafka.partitions. Pure; cannot fail.
std::vector<TopicToCreate> PlanMissingTopics(const Config& config,
                                             const std::map<std::string, int32_t>& existing);

// Creates every missing topic of AllTopics(config.topics) on `bootstrap` (see PlanMissingTopics
// for their partition counts), using
// config.kafka.properties for security settings. Returns false and sets *error when the
// cluster cannot be reached within `timeout_ms` or refuses a topic (other than "already
// exists"). When the cluster is the embedded broker (its metadata's cluster id), sets *embedded
// (if given) and does not ask: the mock has no controller and would let CreateTopics time out;
// a missing topic is then an error at once, naming the topics.
bool CreateMissingTopics(const Config& config, const std::string& bootstrap, int timeout_ms,
                         std::string* error, bool* embedded = nullptr);

// Partition counts of the three topics the worker joins per partition: events partition p, acks
// partition p and state partition p hold the same runs. kMissing when the cluster lacks a topic.
struct CoPartitioning {
  static constexpr int32_t kMissing = -1;
  int32_t events = kMissing;
  int32_t acks = kMissing;
  int32_t state = kMissing;

  // True when all three exist with the same number of partitions.
  bool ok() const { return events > 0 && events == acks && events == state; }
};

// Reads the partition counts of config.topics.{events,acks,state} from `bootstrap`'s metadata
// (all topics, so the request never auto-creates one), using config.kafka.properties for
// security settings. A missing topic is asked for again every 500 ms for up to
// `missing_grace_ms` (a topic created a moment ago may not be in every broker's metadata yet).
// Returns false and sets *error when the metadata cannot be read within `timeout_ms`; a missing
// topic or a different count is not an error here but a value in *out.
bool ReadCoPartitioning(const Config& config, const std::string& bootstrap, int timeout_ms,
                        int missing_grace_ms, CoPartitioning* out, std::string* error);

// A topic config on the cluster that makes the worker stop or lose state (TopicConfigProblems).
struct TopicConfigProblem {
  std::string topic;
  // "not_compacted", "finite_retention" or "max_message_bytes": the label of
  // handoffd_topic_config_problem.
  std::string problem;
  std::string key;     // the topic config at fault
  std::string value;   // its value on the cluster
  std::string effect;  // what goes wrong because of it, and the fix
};

// The problems of `topic`'s configs (`configs`: DescribeConfigs' name -> value) for the worker:
//  - the state changelog (config.topics.state) must be compacted ("not_compacted": cleanup.policy
//    without compact; a restore then reads the whole history) and must not delete records by age
//    or size ("finite_retention": cleanup.policy with delete and retention.ms or retention.bytes
//    other than -1; a run unchanged for that long is not restored, its open packets never
//    escalate);
//  - every topic the worker produces to (the routing topics, audit, DLQ and state) must accept a
//    batch as large as the producer builds ("max_message_bytes": max.message.bytes below
//    `producer_message_max_bytes`; librdkafka does not split a batch the broker refuses as too
//    large, the delivery fails and the worker stops, on every restart).
// Other topics (events, acks) have none. A key missing from `configs` is not a problem. Pure.
std::vector<TopicConfigProblem> TopicConfigProblems(
    const Config& config, std::string_view topic, const std::map<std::string, std::string>& configs,
    int64_t producer_message_max_bytes);

// The topics TopicConfigProblems has rules for (those the worker produces to), once each, in
// AllTopics order.
std::vector<std::string> ProducedTopics(const Config& config);

// Reads the configs of ProducedTopics(config) from `bootstrap` (DescribeConfigs, with
// config.kafka.properties for security settings) and sets *problems to their
// TopicConfigProblems, with the producer's message.max.bytes from the same properties. Returns
// false and sets *error when the configs cannot be read within `timeout_ms`: a broker without
// the API (the embedded one), an account without DescribeConfigs rights, a timeout. A topic
// the cluster lacks is skipped.
bool CheckTopicConfigs(const Config& config, const std::string& bootstrap, int timeout_ms,
                       std::vector<TopicConfigProblem>* problems, std::string* error);

}  // namespace handoffd

#include "processor/live/topic_admin.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "processor/live/embedded_broker.h"
#include "processor/live/kafka_conf.h"
#include "processor/log.h"

namespace handoffd {
namespace {

using ClientPtr = std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)>;

// A short-lived client with the user's kafka.properties; nullptr and *error ("cannot create
// <what> client: ...") when librdkafka refuses the configuration.
ClientPtr NewClient(rd_kafka_type_t type, const Config& config, const std::string& bootstrap,
                    const char* what, std::string* error) {
  ClientPtr none(nullptr, rd_kafka_destroy);
  rd_kafka_conf_t* conf = MakeKafkaConf(config, bootstrap, {}, error);
  if (conf == nullptr) return none;
  return ClientPtr(NewKafkaClient(type, conf, what, error), rd_kafka_destroy);
}

using EventPtr = std::unique_ptr<rd_kafka_event_t, void (*)(rd_kafka_event_t*)>;

// Waits for the result of the admin request `what` (e.g. "CreateTopics") on `queue`. Returns
// nullptr and sets *error ("<what> timed out", "<what> failed: <reason>") when none came within
// timeout_ms + 1 s or the request failed as a whole; per-resource errors are the caller's.
EventPtr AwaitAdminResult(rd_kafka_queue_t* queue, int timeout_ms, const char* what,
                          std::string* error) {
  EventPtr ev(rd_kafka_queue_poll(queue, timeout_ms + 1000), rd_kafka_event_destroy);
  if (ev == nullptr) {
    *error = std::string(what) + " timed out";
  } else if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    *error = std::string(what) + " failed: " + rd_kafka_event_error_string(ev.get());
    ev.reset();
  }
  return ev;
}

// The cluster id from `rk`'s cached metadata ("" when the broker sent none).
std::string CachedClusterId(rd_kafka_t* rk) {
  char* id = rd_kafka_clusterid(rk, 0);
  if (id == nullptr) return "";
  std::string out(id);
  rd_kafka_mem_free(rk, id);
  return out;
}

}  // namespace

bool IsEmbeddedClusterId(std::string_view cluster_id) {
  return cluster_id.starts_with("mockCluster");
}

std::vector<std::pair<std::string, std::string>> TopicConfigs(const Config& config,
                                                              std::string_view topic) {
  if (topic != config.topics.state) return {};
  return {{"cleanup.policy", "compact"}, {"min.compaction.lag.ms", "86400000"}};
}

std::vector<TopicToCreate> PlanMissingTopics(const Config& config,
                                             const std::map<std::string, int32_t>& existing) {
  const auto events = existing.find(config.topics.events);
  std::vector<TopicToCreate> plan;
  for (const std::string& topic : AllTopics(config.topics)) {
    if (existing.count(topic) != 0) continue;
    const bool joined = topic == config.topics.acks || topic == config.topics.state;
    if (joined && events != existing.end() && events->second > 0) {
      plan.push_back({topic, events->second, "events"});
    } else {
      plan.push_back({topic, config.kafka.partitions, "config"});
    }
  }
  return plan;
}

bool CreateMissingTopics(const Config& config, const std::string& bootstrap, int timeout_ms,
                         std::string* error, bool* embedded) {
  ClientPtr guard = NewClient(RD_KAFKA_PRODUCER, config, bootstrap, "admin", error);
  if (guard == nullptr) return false;
  rd_kafka_t* rk = guard.get();
  char errstr[512];

  // Which topics exist already?
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    *error = std::string("cannot read cluster metadata: ") + rd_kafka_err2str(err);
    return false;
  }
  std::map<std::string, int32_t> existing;  // topic -> partition count
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      existing[md->topics[i].topic] = md->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  const bool mock = IsEmbeddedClusterId(CachedClusterId(rk));
  if (embedded != nullptr) *embedded = mock;
  if (mock) {
    std::string missing;
    for (const std::string& topic : AllTopics(config.topics)) {
      if (existing.count(topic) == 0) missing += (missing.empty() ? "" : ",") + topic;
    }
    if (missing.empty()) {
      Log(LogLevel::kInfo, "topics present", {{"count", std::to_string(existing.size())}});
      return true;
    }
    *error = "the embedded broker cannot create topics through the admin API, missing: " + missing +
             " (start handoffd broker with this --config, or add them with --extra-topics)";
    return false;
  }

  const std::vector<TopicToCreate> plan = PlanMissingTopics(config, existing);
  std::vector<rd_kafka_NewTopic_t*> wanted;
  for (const TopicToCreate& create : plan) {
    const std::string& topic = create.topic;
    rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(
        topic.c_str(), create.partitions, config.kafka.replication_factor, errstr, sizeof errstr);
    if (nt == nullptr) {
      *error = "bad topic spec for " + topic + ": " + errstr;
      for (auto* t : wanted) rd_kafka_NewTopic_destroy(t);
      return false;
    }
    for (const auto& [name, value] : TopicConfigs(config, topic)) {
      rd_kafka_NewTopic_set_config(nt, name.c_str(), value.c_str());
    }
    wanted.push_back(nt);
  }
  if (wanted.empty()) {
    Log(LogLevel::kInfo, "topics present", {{"count", std::to_string(existing.size())}});
    return true;
  }

  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, errstr, sizeof errstr);
  rd_kafka_CreateTopics(rk, wanted.data(), wanted.size(), options, queue);
  EventPtr ev = AwaitAdminResult(queue, timeout_ms, "CreateTopics", error);
  bool ok = ev != nullptr;
  if (ok) {
    const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(ev.get());
    size_t count = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
    for (size_t i = 0; i < count; ++i) {
      rd_kafka_resp_err_t terr = rd_kafka_topic_result_error(results[i]);
      const char* name = rd_kafka_topic_result_name(results[i]);
      if (terr == RD_KAFKA_RESP_ERR_NO_ERROR || terr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        auto created = std::find_if(plan.begin(), plan.end(),
                                    [name](const TopicToCreate& t) { return t.topic == name; });
        Log(LogLevel::kInfo, "topic created",
            {{"topic", name},
             {"partitions", std::to_string(created != plan.end() ? created->partitions
                                                                 : config.kafka.partitions)},
             {"source", created != plan.end() ? std::string(created->source) : "config"},
             {"replication_factor", std::to_string(config.kafka.replication_factor)}});
      } else {
        *error = std::string("cannot create topic ") + name + ": " +
                 rd_kafka_topic_result_error_string(results[i]);
        ok = false;
      }
    }
  }
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_queue_destroy(queue);
  for (auto* t : wanted) rd_kafka_NewTopic_destroy(t);
  return ok;
}

bool ReadCoPartitioning(const Config& config, const std::string& bootstrap, int timeout_ms,
                        int missing_grace_ms, CoPartitioning* out, std::string* error) {
  // A consumer handle: librdkafka's producers ask brokers to auto-create unknown topics.
  ClientPtr guard = NewClient(RD_KAFKA_CONSUMER, config, bootstrap, "metadata", error);
  if (guard == nullptr) return false;
  rd_kafka_t* rk = guard.get();

  auto grace_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(missing_grace_ms);
  for (;;) {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      *error = std::string("cannot read cluster metadata: ") + rd_kafka_err2str(err);
      return false;
    }
    *out = CoPartitioning{};
    for (int i = 0; i < md->topic_cnt; ++i) {
      const rd_kafka_metadata_topic_t& t = md->topics[i];
      if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR || t.partition_cnt <= 0) continue;
      if (t.topic == config.topics.events) out->events = t.partition_cnt;
      if (t.topic == config.topics.acks) out->acks = t.partition_cnt;
      if (t.topic == config.topics.state) out->state = t.partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
    bool missing = out->events == CoPartitioning::kMissing ||
                   out->acks == CoPartitioning::kMissing || out->state == CoPartitioning::kMissing;
    if (!missing || std::chrono::steady_clock::now() >= grace_end) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

std::vector<std::string> ProducedTopics(const Config& config) {
  std::vector<std::string> topics;
  for (const std::string& topic : AllTopics(config.topics)) {
    if (topic == config.topics.events || topic == config.topics.acks) continue;
    if (std::find(topics.begin(), topics.end(), topic) == topics.end()) topics.push_back(topic);
  }
  return topics;
}

std::vector<TopicConfigProblem> TopicConfigProblems(
    const Config& config, std::string_view topic, const std::map<std::string, std::string>& configs,
    int64_t producer_message_max_bytes) {
  std::vector<TopicConfigProblem> problems;
  const std::vector<std::string> produced = ProducedTopics(config);
  if (std::find(produced.begin(), produced.end(), topic) == produced.end()) return problems;
  auto value = [&configs](const char* key) -> const std::string* {
    auto it = configs.find(key);
    return it == configs.end() ? nullptr : &it->second;
  };
  if (topic == config.topics.state) {
    if (const std::string* policy = value("cleanup.policy")) {
      // A list: "compact", "delete", "compact,delete" (or "[compact, delete]" in some tools).
      const bool compact = policy->find("compact") != std::string::npos;
      const bool deletes = policy->find("delete") != std::string::npos;
      if (!compact) {
        problems.push_back(
            {std::string(topic), "not_compacted", "cleanup.policy", *policy,
             "the state changelog keeps every change of every run, so each restore reads the "
             "whole history and takes longer every day; set cleanup.policy=compact"});
      }
      if (deletes) {
        for (const char* key : {"retention.ms", "retention.bytes"}) {
          const std::string* limit = value(key);
          if (limit == nullptr || *limit == "-1") continue;
          problems.push_back(
              {std::string(topic), "finite_retention", key, *limit,
               "the broker deletes state records by age or size: a run whose state has not "
               "changed since is missing after the next restore (its open packets never "
               "escalate, its later events start it anew); set cleanup.policy=compact, or "
               "retention.ms=-1 and retention.bytes=-1"});
        }
      }
    }
  }
  if (const std::string* max = value("max.message.bytes")) {
    char* end = nullptr;
    const long long topic_max = std::strtoll(max->c_str(), &end, 10);
    if (end != max->c_str() && *end == '\0' && topic_max < producer_message_max_bytes) {
      problems.push_back(
          {std::string(topic), "max_message_bytes", "max.message.bytes", *max,
           "the producer builds batches of up to message.max.bytes=" +
               std::to_string(producer_message_max_bytes) +
               " bytes; the broker refuses a larger one, the delivery fails and the worker stops "
               "(again after every restart); raise the topic's max.message.bytes or lower "
               "kafka.properties.message.max.bytes to at most it"});
    }
  }
  return problems;
}

bool CheckTopicConfigs(const Config& config, const std::string& bootstrap, int timeout_ms,
                       std::vector<TopicConfigProblem>* problems, std::string* error) {
  problems->clear();
  ClientPtr guard = NewClient(RD_KAFKA_PRODUCER, config, bootstrap, "admin", error);
  if (guard == nullptr) return false;
  rd_kafka_t* rk = guard.get();
  int64_t producer_max = 1000000;  // librdkafka's default
  char buf[32];
  size_t size = sizeof buf;
  if (rd_kafka_conf_get(rd_kafka_conf(rk), "message.max.bytes", buf, &size) == RD_KAFKA_CONF_OK) {
    producer_max = std::atoll(buf);
  }

  const std::vector<std::string> topics = ProducedTopics(config);
  std::vector<rd_kafka_ConfigResource_t*> resources;
  for (const std::string& topic : topics) {
    resources.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
  }
  char errstr[512];
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, errstr, sizeof errstr);
  rd_kafka_DescribeConfigs(rk, resources.data(), resources.size(), options, queue);
  EventPtr ev = AwaitAdminResult(queue, timeout_ms, "DescribeConfigs", error);
  bool ok = ev != nullptr;
  if (ok) {
    const rd_kafka_DescribeConfigs_result_t* result =
        rd_kafka_event_DescribeConfigs_result(ev.get());
    size_t count = 0;
    const rd_kafka_ConfigResource_t** described =
        rd_kafka_DescribeConfigs_result_resources(result, &count);
    for (size_t i = 0; i < count; ++i) {
      const rd_kafka_ConfigResource_t* resource = described[i];
      const std::string name = rd_kafka_ConfigResource_name(resource);
      const rd_kafka_resp_err_t rerr = rd_kafka_ConfigResource_error(resource);
      if (rerr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) continue;
      if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* reason = rd_kafka_ConfigResource_error_string(resource);
        *error = "cannot describe topic " + name + ": " +
                 (reason != nullptr ? reason : rd_kafka_err2str(rerr));
        ok = false;
        continue;
      }
      size_t entry_count = 0;
      const rd_kafka_ConfigEntry_t** entries =
          rd_kafka_ConfigResource_configs(resource, &entry_count);
      std::map<std::string, std::string> configs;
      for (size_t e = 0; e < entry_count; ++e) {
        const char* value = rd_kafka_ConfigEntry_value(entries[e]);
        if (value != nullptr) configs[rd_kafka_ConfigEntry_name(entries[e])] = value;
      }
      for (TopicConfigProblem& problem : TopicConfigProblems(config, name, configs, producer_max)) {
        problems->push_back(std::move(problem));
      }
    }
  }
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_queue_destroy(queue);
  for (rd_kafka_ConfigResource_t* resource : resources) rd_kafka_ConfigResource_destroy(resource);
  return ok;
}

}  // namespace handoffd

#include "processor/live/embedded_broker.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "processor/log.h"

namespace handoffd {

std::vector<std::string> AllTopics(const TopicsConfig& t) {
  return {t.events,  t.acks,        t.page,  t.owner_queue, t.tickets, t.decisions,
          t.pending, t.escalations, t.audit, t.dlq,         t.state};
}

EmbeddedBroker::~EmbeddedBroker() {
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
  if (handle_ != nullptr) rd_kafka_destroy(handle_);
}

bool EmbeddedBroker::Start(const std::vector<std::string>& topics, int32_t partitions,
                           std::string* error) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The handle only hosts the mock cluster; keep it quiet and away from any real broker.
  rd_kafka_conf_set(conf, "bootstrap.servers", "", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
  handle_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (handle_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    *error = std::string("cannot create broker host handle: ") + errstr;
    return false;
  }
  cluster_ = rd_kafka_mock_cluster_new(handle_, 1);
  if (cluster_ == nullptr) {
    *error = "rd_kafka_mock_cluster_new failed";
    return false;
  }
  // librdkafka 2.0.2's mock can lose the wake-up of a request sent before its thread is in its
  // poll loop, and rd_kafka_mock_topic_create then waits forever: give the thread time to start.
  // If it hangs anyway, fail loudly rather than leave a broker that never answers.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto created = std::make_shared<std::atomic<bool>>(false);
  std::thread([created] {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!created->load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (created->load()) return;
    Log(LogLevel::kError, "embedded broker hung creating topics (librdkafka mock)");
    _exit(1);
  }).detach();
  for (const std::string& topic : topics) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      *error = "cannot create topic " + topic + ": " + rd_kafka_err2str(err);
      created->store(true);
      return false;
    }
  }
  created->store(true);
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  Log(LogLevel::kInfo, "embedded broker started",
      {{"bootstrap", bootstrap_},
       {"partitions", std::to_string(partitions)},
       {"topics", std::to_string(topics.size())}});
  return true;
}

}  // namespace handoffd

#include "processor/live/embedded_broker.h"

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
  for (const std::string& topic : topics) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      *error = "cannot create topic " + topic + ": " + rd_kafka_err2str(err);
      return false;
    }
  }
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  Log(LogLevel::kInfo, "embedded broker started",
      {{"bootstrap", bootstrap_},
       {"partitions", std::to_string(partitions)},
       {"topics", std::to_string(topics.size())}});
  return true;
}

}  // namespace handoffd

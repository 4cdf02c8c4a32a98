// The embedded broker: librdkafka's mock cluster (one broker on loopback) with every contract
// topic and the state changelog created. For tests, demos and `bootstrap_servers: embedded`.
// Limits of librdkafka 2.0.2's mock: about 5 MiB kept per partition (older records dropped),
// consumer-group joins take about 3 s, transactional offset commits are not stored and
// read_committed consumers see aborted records. Not for production data.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace handoffd {

class EmbeddedBroker {
 public:
  EmbeddedBroker() = default;
  // Stops the mock cluster (same watchdog, 10 s: `embedded broker hung stopping`).
  ~EmbeddedBroker();
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  // Starts the mock cluster and creates `topics` with `partitions` partitions each.
  // Returns false and sets *error when librdkafka cannot create the cluster or a topic. The
  // mock's calls cannot time out: if it stops answering for 15 s, this logs
  // `embedded broker hung creating topics` and ends the process with exit code 1.
  bool Start(const std::vector<std::string>& topics, int32_t partitions, std::string* error);

  // "127.0.0.1:port"; valid after a successful Start.
  const std::string& bootstrap() const { return bootstrap_; }

  // The mock cluster, for tests that inject faults (rd_kafka_mock_push_request_errors, ...).
  // Valid after a successful Start, owned by the broker.
  rd_kafka_mock_cluster_t* cluster() const { return cluster_; }

 private:
  rd_kafka_t* handle_ = nullptr;  // the mock cluster lives inside this producer handle
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstrap_;
};

// Every topic handoffd uses: inputs, outputs, DLQ and the state changelog.
std::vector<std::string> AllTopics(const TopicsConfig& topics);

}  // namespace handoffd

// The consumer set-up shared by bench/live's two programs (the raw consumer ceiling and the
// latency probe): a plain read_committed librdkafka consumer with manual offsets, and a helper
// that adds every partition of a topic to an assignment list.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <utility>
#include <vector>

namespace handoffd::bench {

// A consumer with auto-commit off and read_committed, plus `extra` properties; its main queue
// is forwarded to the consumer queue. Returns nullptr after printing the error to stderr.
inline rd_kafka_t* NewBenchConsumer(
    const char* program, const char* bootstrap, const char* group,
    const std::vector<std::pair<const char*, const char*>>& extra = {}) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, sizeof errstr);
  for (const auto& [key, value] : extra) {
    rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr);
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    std::fprintf(stderr, "%s: %s\n", program, errstr);
    return nullptr;
  }
  rd_kafka_poll_set_consumer(rk);
  return rk;
}

// Adds every partition of `topic` to `parts`, at the offset `offset_of(partition)` returns.
// Returns false after printing to stderr when the topic's metadata cannot be read.
template <typename OffsetOf>
bool AddAllPartitions(const char* program, rd_kafka_t* rk, const char* topic,
                      rd_kafka_topic_partition_list_t* parts, OffsetOf offset_of) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic, nullptr);
  bool ok =
      rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1;
  if (ok) {
    for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
      int32_t p = md->topics[0].partitions[i].id;
      rd_kafka_topic_partition_list_add(parts, topic, p)->offset = offset_of(p);
    }
  } else {
    std::fprintf(stderr, "%s: no metadata for %s\n", program, topic);
  }
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  return ok;
}

}  // namespace handoffd::bench

// The raw consumer ceiling for bench/live/run: a plain librdkafka consumer that reads every
// partition of one topic from the beginning and only counts messages, with the same client
// defaults handoffd's consumer uses. Prints one JSON line: {"messages":N,"seconds":S,"rate":R}.
// Usage: live_raw_consumer BOOTSTRAP TOPIC COUNT
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: live_raw_consumer BOOTSTRAP TOPIC COUNT\n");
    return 2;
  }
  const char* topic = argv[2];
  long long want = std::atoll(argv[3]);
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "group.id", "bench-raw", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    std::fprintf(stderr, "live_raw_consumer: %s\n", errstr);
    return 1;
  }
  rd_kafka_poll_set_consumer(rk);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic, nullptr);
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      md->topic_cnt != 1) {
    std::fprintf(stderr, "live_raw_consumer: no metadata for %s\n", topic);
    return 1;
  }
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(8);
  for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
    rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  auto t0 = std::chrono::steady_clock::now();
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  long long got = 0;
  long long bytes = 0;
  auto deadline = t0 + std::chrono::seconds(120);
  while (got < want && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk, 100);
    if (msg == nullptr) continue;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++got;
      bytes += static_cast<long long>(msg->len);
    }
    rd_kafka_message_destroy(msg);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"messages\":%lld,\"bytes\":%lld,\"seconds\":%.3f,\"rate\":%.0f}\n", got, bytes,
              seconds, got / seconds);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return got == want ? 0 : 1;
}

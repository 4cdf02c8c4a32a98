// The latency probe for bench/live/run: a read_committed librdkafka consumer on every partition
// of the given packet topics, from their current ends. For each first revision of a packet
// detected at or after START_MS it records (receive time - detected_at) and, after SECONDS,
// prints one JSON line: {"packets":N,"p50_ms":..,"p99_ms":..,"max_ms":..}.
// It replaces a Python consumer whose own parsing competed for the 2 vCPUs it measured.
// With --events the topics hold input events instead: every record counts, from its "ts" (the
// latency a consumer that does nothing sees on the same machine at the same rate: the floor
// under handoffd's figure).
// Usage: live_latency_probe BOOTSTRAP START_MS SECONDS [--events] TOPIC...
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string_view>
#include <vector>

#include "bench/live/bench_consumer.h"

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The value of `"key":"2026-11-21T08:21:26.667Z"` in ms since the epoch, or -1.
int64_t FindTime(std::string_view json, std::string_view key) {
  size_t at = json.find(key);
  if (at == std::string_view::npos || at + key.size() + 24 > json.size()) return -1;
  const char* t = json.data() + at + key.size();
  std::tm tm{};
  if (std::sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec) != 6) {
    return -1;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + std::atoi(t + 20);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: live_latency_probe BOOTSTRAP START_MS SECONDS [--events] TOPIC...\n");
    return 2;
  }
  int first_topic = 4;
  const bool events = std::string_view(argv[4]) == "--events";
  if (events) ++first_topic;
  const std::string_view time_key = events ? "\"ts\":\"" : "\"detected_at\":\"";
  const int64_t start_ms = std::atoll(argv[2]);
  const double seconds = std::atof(argv[3]);
  rd_kafka_t* rk = handoffd::bench::NewBenchConsumer(
      "live_latency_probe", argv[1], "bench-latency-probe", {{"fetch.wait.max.ms", "5"}});
  if (rk == nullptr) return 1;
  // Absolute start offsets (the current ends): a logical OFFSET_END would cost a ListOffsets
  // round per partition, and librdkafka 2.0.2 starts most of them about 500 ms late.
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(64);
  for (int t = first_topic; t < argc; ++t) {
    auto end_of = [&](int32_t p) {
      int64_t low = 0;
      int64_t high = 0;
      rd_kafka_query_watermark_offsets(rk, argv[t], p, &low, &high, 10000);
      return high;
    };
    if (!handoffd::bench::AddAllPartitions("live_latency_probe", rk, argv[t], parts, end_of)) {
      return 1;
    }
  }
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  std::printf("ready\n");
  std::fflush(stdout);

  std::vector<double> latencies;
  // The same latency in two parts, split at the packet record's Kafka timestamp (CreateTime: when
  // the worker produced it): event time -> produced (generator, broker, worker fetch and
  // processing), and produced -> received here (worker producer, broker, this consumer).
  std::vector<double> upstream;
  std::vector<double> downstream;
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);
  rd_kafka_message_t* batch[1000];
  while (std::chrono::steady_clock::now() < deadline) {
    // Wait for the first record only: with a timeout, consume_batch waits until the batch is
    // full or the timeout passes, which would add that wait to the latencies measured.
    ssize_t n = 0;
    batch[0] = rd_kafka_consumer_poll(rk, 20);
    if (batch[0] != nullptr) n = 1 + rd_kafka_consume_batch_queue(queue, 0, batch + 1, 999);
    const int64_t now = NowMs();
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* msg = batch[i];
      if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR && msg->payload != nullptr) {
        std::string_view v(static_cast<const char*>(msg->payload), msg->len);
        int64_t detected = FindTime(v, time_key);
        if ((events || v.find("\"revision\":1,") != std::string_view::npos) &&
            detected >= start_ms) {
          latencies.push_back(static_cast<double>(now - detected));
          const int64_t produced = rd_kafka_message_timestamp(msg, nullptr);
          if (produced > 0) {
            upstream.push_back(static_cast<double>(produced - detected));
            downstream.push_back(static_cast<double>(now - produced));
          }
        }
      }
      rd_kafka_message_destroy(msg);
    }
  }
  rd_kafka_queue_destroy(queue);
  auto pick = [](std::vector<double>& v, double q) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
  };
  std::printf(
      "{\"packets\":%zu,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f,"
      "\"upstream_p50_ms\":%.1f,\"upstream_p99_ms\":%.1f,"
      "\"downstream_p50_ms\":%.1f,\"downstream_p99_ms\":%.1f}\n",
      latencies.size(), pick(latencies, 0.50), pick(latencies, 0.99), pick(latencies, 1.0),
      pick(upstream, 0.50), pick(upstream, 0.99), pick(downstream, 0.50), pick(downstream, 0.99));
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return 0;
}

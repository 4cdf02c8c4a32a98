// The raw consumer ceiling for bench/live/run: a plain librdkafka consumer that reads every
// partition of one topic from the beginning and only counts messages, with the fetch settings
// handoffd's consumer uses on the embedded broker (processor/live/kafka_conf.h: kConsumerDefaults
// and kEmbeddedConsumerDefaults): fetch.wait.max.ms 5
// (the embedded broker answers an empty fetch only when it expires; with librdkafka's 500 ms
// default two of five passes of one run took 0.71 s instead of ~0.2 s, none since) and the larger
// local queue. Prints one JSON line:
// {"messages":N,"bytes":B,"seconds":S,"rate":R,"cpu_seconds":C} (C: the process's CPU time, all
// threads, from the assignment to the last message). Usage: live_raw_consumer BOOTSTRAP TOPIC COUNT
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "bench/live/bench_consumer.h"
#include "processor/cpu_time.h"
#include "processor/live/kafka_conf.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: live_raw_consumer BOOTSTRAP TOPIC COUNT\n");
    return 2;
  }
  const char* topic = argv[2];
  long long want = std::atoll(argv[3]);
  std::vector<std::pair<const char*, const char*>> settings(handoffd::kConsumerDefaults.begin(),
                                                            handoffd::kConsumerDefaults.end());
  settings.insert(settings.end(), handoffd::kEmbeddedConsumerDefaults.begin(),
                  handoffd::kEmbeddedConsumerDefaults.end());
  rd_kafka_t* rk =
      handoffd::bench::NewBenchConsumer("live_raw_consumer", argv[1], "bench-raw", settings);
  if (rk == nullptr) return 1;
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(8);
  if (!handoffd::bench::AddAllPartitions("live_raw_consumer", rk, topic, parts,
                                         [](int32_t) { return RD_KAFKA_OFFSET_BEGINNING; })) {
    return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = handoffd::ProcessCpuSeconds();
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
  const double cpu = handoffd::ProcessCpuSeconds() - cpu0;
  std::printf(
      "{\"messages\":%lld,\"bytes\":%lld,\"seconds\":%.3f,\"rate\":%.0f,\"cpu_seconds\":%.3f}\n",
      got, bytes, seconds, got / seconds, cpu);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return got == want ? 0 : 1;
}

// The embedded broker (librdkafka's mock cluster): every requested topic exists with the
// requested partitions, also for many topics, where librdkafka 2.0.2's lost mock wake-ups used
// to stall start-up for seconds and trip the "hung creating topics" watchdog (which ends the
// process, so this test fails by dying).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "processor/live/embedded_broker.h"

namespace handoffd {
namespace {

// topic -> partition count, from a metadata request of a separate client over TCP.
std::map<std::string, int> TopicsOf(const std::string& bootstrap) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> guard(rk, rd_kafka_destroy);
  const rd_kafka_metadata_t* md = nullptr;
  std::map<std::string, int> topics;
  if (rd_kafka_metadata(rk, 1, nullptr, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) return topics;
  for (int i = 0; i < md->topic_cnt; ++i) {
    topics[md->topics[i].topic] = md->topics[i].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  return topics;
}

TEST(LiveEmbeddedBroker, CreatesEveryTopicWithTheRequestedPartitions) {
  std::vector<std::string> topics = AllTopics(DefaultConfig().topics);
  EmbeddedBroker broker;
  std::string error;
  ASSERT_TRUE(broker.Start(topics, 6, &error)) << error;
  EXPECT_EQ(broker.bootstrap().rfind("127.0.0.1:", 0), 0u) << broker.bootstrap();
  std::map<std::string, int> seen = TopicsOf(broker.bootstrap());
  EXPECT_EQ(seen.size(), topics.size());
  for (const std::string& topic : topics) EXPECT_EQ(seen[topic], 6) << topic;
}

// 400 creations: with one lost wake-up in four costing 1 s each, the old code needed about 100 s
// and its 15 s watchdog ended the process.
TEST(LiveEmbeddedBroker, ManyTopicsAreCreatedWithoutStalling) {
  std::vector<std::string> topics;
  for (int i = 0; i < 400; ++i) topics.push_back("bench.state." + std::to_string(i));
  EmbeddedBroker broker;
  std::string error;
  ASSERT_TRUE(broker.Start(topics, 2, &error)) << error;
  std::map<std::string, int> seen = TopicsOf(broker.bootstrap());
  EXPECT_EQ(seen.size(), topics.size());
  for (const std::string& topic : topics) EXPECT_EQ(seen[topic], 2) << topic;
}

// The broker's end of a client connection (it runs in this process): the socket whose peer is
// the client's local address; -1 while the broker has not accepted it yet.
int AcceptedEndOf(int client) {
  sockaddr_in local{};
  socklen_t len = sizeof local;
  getsockname(client, reinterpret_cast<sockaddr*>(&local), &len);
  for (int fd = 0; fd < 4096; ++fd) {
    sockaddr_in peer{};
    socklen_t peer_len = sizeof peer;
    if (fd == client || getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
      continue;
    }
    if (peer.sin_family == AF_INET && peer.sin_port == local.sin_port &&
        peer.sin_addr.s_addr == local.sin_addr.s_addr) {
      return fd;
    }
  }
  return -1;
}

// With Nagle's algorithm on, a small response written while the previous one is unacknowledged
// waits for the client's delayed ACK (about 40 ms): every exactly_once commit did.
TEST(LiveEmbeddedBroker, ConnectionsHaveNaglesAlgorithmOff) {
  EmbeddedBroker broker;
  std::string error;
  ASSERT_TRUE(broker.Start({"agent.events"}, 1, &error)) << error;
  const std::string& bootstrap = broker.bootstrap();
  const size_t colon = bootstrap.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(bootstrap.substr(colon + 1))));
  ASSERT_EQ(inet_pton(AF_INET, bootstrap.substr(0, colon).c_str(), &addr.sin_addr), 1);
  const int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(client, 0);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
      << std::strerror(errno);
  int accepted = -1;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
       accepted < 0 && std::chrono::steady_clock::now() < deadline;) {
    accepted = AcceptedEndOf(client);
    if (accepted < 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE(accepted, 0) << "the broker did not accept the connection";
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  ASSERT_EQ(getsockopt(accepted, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  EXPECT_NE(nodelay, 0) << "Nagle's algorithm is on for the broker's end of the connection";
  close(client);
}

TEST(LiveEmbeddedBroker, SeveralBrokersStartAndStopInOneProcess) {
  for (int round = 0; round < 5; ++round) {
    EmbeddedBroker broker;
    std::string error;
    ASSERT_TRUE(broker.Start({"a", "b", "c"}, 3, &error)) << error;
    EXPECT_EQ(TopicsOf(broker.bootstrap()).size(), 3u) << "round " << round;
  }
}

}  // namespace
}  // namespace handoffd

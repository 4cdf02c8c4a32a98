// MetricsServer: a real listener on loopback, spoken to over a plain TCP socket the way Prometheus
// and a Kubernetes probe would (GET, read the whole response).
#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include "metrics/metrics.h"
#include "processor/live/heartbeat.h"

namespace handoffd {
namespace {

struct Response {
  int status = 0;  // 0: could not connect
  std::string head;
  std::string body;
};

Response Get(int port, const std::string& path, const std::string& method = "GET") {
  Response r;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return r;
  }
  const std::string request =
      method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return r;
  }
  std::string raw;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) raw.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t split = raw.find("\r\n\r\n");
  if (split == std::string::npos || raw.size() < 12) return r;
  r.head = raw.substr(0, split);
  r.body = raw.substr(split + 4);
  r.status = std::stoi(raw.substr(9, 3));
  return r;
}

// One server for the suite: stopping a civetweb server takes about a second (its accept loop
// polls with a timeout), so the tests share it and only the lifecycle tests start their own.
class MetricsServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    config_ = std::make_unique<Config>(DefaultConfig());
    registry_ = std::make_unique<prometheus::Registry>();
    metrics_ = std::make_unique<Metrics>(*registry_, *config_);
    std::string error;
    // /healthz as the worker wires it: its main loop's Heartbeat, here on a fake clock.
    server_ = MetricsServer::Start(
        "127.0.0.1:0", *registry_, [] { return ready_.load(); }, &error,
        [] { return heartbeat_.Stalled(SteadyAt(now_s_.load()), std::chrono::seconds(60)); });
    ASSERT_NE(server_, nullptr) << error;
    ASSERT_GT(server_->port(), 0);
  }
  static void TearDownTestSuite() {
    server_.reset();
    metrics_.reset();
    registry_.reset();
    config_.reset();
  }
  void SetUp() override {
    ready_ = false;
    heartbeat_.Beat(SteadyAt(1000), std::chrono::system_clock::now());
    now_s_ = 1000;
  }

  static Heartbeat::SteadyTime SteadyAt(int64_t seconds) {
    return Heartbeat::SteadyTime(std::chrono::seconds(seconds));
  }

  static int port() { return server_->port(); }

  static inline std::unique_ptr<Config> config_;
  static inline std::unique_ptr<prometheus::Registry> registry_;
  static inline std::unique_ptr<Metrics> metrics_;
  static inline std::atomic<bool> ready_{false};
  static inline Heartbeat heartbeat_;
  static inline std::atomic<int64_t> now_s_{0};  // the fake steady clock, in seconds
  static inline std::unique_ptr<MetricsServer> server_;
};

TEST_F(MetricsServerTest, MetricsPathServesTheCurrentExposition) {
  metrics_->OnAcknowledged(Severity::kP1, 60);
  Response r = Get(port(), "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r.head;
  EXPECT_NE(r.body.find("handoffd_time_to_ack_seconds_sum{severity=\"P1\"} 60"), std::string::npos);
  EXPECT_EQ(r.body, SerializeText(*registry_));

  metrics_->OnAcknowledged(Severity::kP1, 120);  // a later scrape sees the new value
  EXPECT_NE(Get(port(), "/metrics").body.find("_sum{severity=\"P1\"} 180"), std::string::npos);
}

TEST_F(MetricsServerTest, HealthzIsOkWhileTheProcessIsUpEvenWhenNotReady) {
  Response r = Get(port(), "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
}

// A worker whose main loop hangs (a stuck Kafka call, a restore blocking the rebalance callback)
// still answers HTTP on the server's own threads: /healthz must say so, or nothing restarts it.
TEST_F(MetricsServerTest, HealthzIs503WithTheReasonOnceTheMainLoopStopsBeating) {
  now_s_ = 1059;  // 59 s after the last beat: within the 60 s threshold
  EXPECT_EQ(Get(port(), "/healthz").status, 200);
  now_s_ = 1075;
  Response r = Get(port(), "/healthz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "main loop stalled: no progress for 75 s (threshold 60 s)\n");
  heartbeat_.Beat(SteadyAt(1075), std::chrono::system_clock::now());  // the loop moves again
  EXPECT_EQ(Get(port(), "/healthz").status, 200);
}

TEST_F(MetricsServerTest, ReadyzFollowsTheReadinessCallback) {
  EXPECT_EQ(Get(port(), "/readyz").status, 503);
  ready_ = true;
  EXPECT_EQ(Get(port(), "/readyz").status, 200);
  ready_ = false;  // e.g. a rebalance took the partitions away
  EXPECT_EQ(Get(port(), "/readyz").status, 503);
}

TEST_F(MetricsServerTest, OtherPathsAndMethodsAreRefused) {
  EXPECT_EQ(Get(port(), "/").status, 404);
  EXPECT_EQ(Get(port(), "/metricsx").status, 404);
  EXPECT_EQ(Get(port(), "/metrics/extra").status, 404);
  EXPECT_EQ(Get(port(), "/metrics", "POST").status, 405);
}

TEST_F(MetricsServerTest, StopsListeningWhenDestroyed) {
  std::string error;
  auto own = MetricsServer::Start("127.0.0.1:0", *registry_, nullptr, &error);
  ASSERT_NE(own, nullptr) << error;
  const int own_port = own->port();
  EXPECT_EQ(Get(own_port, "/healthz").status, 200);
  own.reset();
  EXPECT_EQ(Get(own_port, "/healthz").status, 0);
}

TEST_F(MetricsServerTest, SecondServerOnABoundPortFailsWithAReason) {
  std::string error;
  auto second =
      MetricsServer::Start("127.0.0.1:" + std::to_string(port()), *registry_, nullptr, &error);
  EXPECT_EQ(second, nullptr);
  EXPECT_NE(error.find("cannot listen on 127.0.0.1:"), std::string::npos) << error;
}

TEST_F(MetricsServerTest, WithoutACallbackTheServerIsAlwaysReady) {
  std::string error;
  auto always = MetricsServer::Start("127.0.0.1:0", *registry_, nullptr, &error);
  ASSERT_NE(always, nullptr) << error;
  EXPECT_EQ(Get(always->port(), "/readyz").status, 200);
}

TEST_F(MetricsServerTest, MalformedListenAddressesAreRejected) {
  for (const char* listen : {"localhost:9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http",
                             "127.0.0.1:70000", "::1:9464", ""}) {
    std::string error;
    EXPECT_EQ(MetricsServer::Start(listen, *registry_, nullptr, &error), nullptr) << listen;
    EXPECT_NE(error.find("metrics.listen"), std::string::npos) << listen << ": " << error;
  }
}

}  // namespace
}  // namespace handoffd

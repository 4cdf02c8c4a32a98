#include "processor/live/embedded_broker.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "processor/log.h"
#include "processor/thread_name.h"

// librdkafka 2.0.2's mock cluster accepts its clients' connections with accept(2) and leaves
// Nagle's algorithm on. A client that sends a request while the mock's previous response is
// still unacknowledged (its ACK held back by the client's delayed-ACK timer, as when a producer
// pipelines requests) then gets the next small response only when that timer fires: measured,
// 68 of ~180 Produce responses to the worker's producer took 40-49 ms, and every exactly_once
// commit waited ~42 ms for its last one. A real broker sets TCP_NODELAY on its connections.
//
// This definition interposes the C library's accept for the whole process (the executable's
// symbol comes first in the dynamic lookup): it accepts through the C library and then turns
// Nagle's algorithm off. The other caller in the process is the metrics HTTP server, for which
// TCP_NODELAY is harmless; the call fails without effect on a non-TCP socket.
extern "C" int accept(int fd, sockaddr* addr, socklen_t* len) {
  using AcceptFn = int (*)(int, sockaddr*, socklen_t*);
  static const auto real = reinterpret_cast<AcceptFn>(dlsym(RTLD_NEXT, "accept"));
  if (real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  const int conn = real(fd, addr, len);
  if (conn >= 0) {
    const int one = 1;
    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return conn;
}

namespace handoffd {
namespace {

// How often MockWaker checks for a stalled call, and how long topic creation and shutdown may
// take before the process gives up (the mock calls block without a timeout).
constexpr std::chrono::milliseconds kWakeInterval{2};
constexpr std::chrono::seconds kCreateDeadline{15};
constexpr std::chrono::seconds kStopDeadline{10};

// librdkafka 2.0.2's mock thread serves its ops queue (rd_kafka_mock_topic_create, cluster
// shutdown) only when its poll(2) returns, and can lose the wake-up of an op: after poll returns
// it serves the queue and only then drains its wake-up socket, which also swallows the byte
// written for an op enqueued in between (the caller enqueues its next op as soon as the previous
// one is answered). That op then waits for the poll's 1 s timeout; about one topic in four
// did, so 41 topics took 4 to 15 s and tripped the old 15 s watchdog.
//
// While a MockWaker lives, its thread watches a progress counter the caller bumps after every
// mock call; when a call has not finished within kWakeInterval it connects to the mock's
// listener and closes the connection again. A pending connection keeps the listener readable
// until the mock accepts it, so the mock's poll returns and it serves its ops queue: a lost
// wake-up costs at most a few milliseconds. If the calls are still not done by `deadline`, it
// logs `what` and ends the process, rather than leave a broker that never answers.
class MockWaker {
 public:
  MockWaker(const std::string& bootstrap, std::chrono::seconds deadline, const char* what)
      : what_(what), deadline_(std::chrono::steady_clock::now() + deadline) {
    size_t colon = bootstrap.rfind(':');
    addr_.sin_family = AF_INET;
    addr_ok_ = colon != std::string::npos &&
               inet_pton(AF_INET, bootstrap.substr(0, colon).c_str(), &addr_.sin_addr) == 1;
    if (addr_ok_) addr_.sin_port = htons(static_cast<uint16_t>(std::atoi(&bootstrap[colon + 1])));
    thread_ = std::thread([this] {
      NameThisThread("hd-mock-waker");
      Run();
    });
  }
  ~MockWaker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  MockWaker(const MockWaker&) = delete;
  MockWaker& operator=(const MockWaker&) = delete;

  // Call after each mock call returns.
  void Progress() { done_.fetch_add(1, std::memory_order_relaxed); }
  int done() const { return done_.load(std::memory_order_relaxed); }

 private:
  void Run() {
    int seen = -1;
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, kWakeInterval, [this] { return stop_; })) {
      int now = done();
      if (now == seen) Poke();
      seen = now;
      if (std::chrono::steady_clock::now() > deadline_) {
        Log(LogLevel::kError, what_,
            {{"calls_done", std::to_string(now)},
             {"hint", "librdkafka mock cluster stopped serving its ops queue"}});
        _exit(1);
      }
    }
  }

  // Opens a TCP connection to the mock's listener and closes it. Waits (briefly) for the
  // handshake so the connection is in the listener's accept queue before it is closed.
  void Poke() const {
    if (!addr_ok_) return;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0 &&
        errno == EINPROGRESS) {
      pollfd pfd = {fd, POLLOUT, 0};
      poll(&pfd, 1, 100);
    }
    close(fd);
  }

  const char* what_;
  std::chrono::steady_clock::time_point deadline_;
  sockaddr_in addr_ = {};
  bool addr_ok_ = false;
  std::atomic<int> done_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

std::vector<std::string> AllTopics(const TopicsConfig& t) {
  return {t.events,  t.acks,        t.page,  t.owner_queue, t.tickets, t.decisions,
          t.pending, t.escalations, t.audit, t.dlq,         t.state};
}

EmbeddedBroker::~EmbeddedBroker() {
  if (cluster_ != nullptr) {
    // Shutdown is a mock op too and can lose its wake-up like topic creation.
    MockWaker waker(bootstrap_, kStopDeadline, "embedded broker hung stopping");
    rd_kafka_mock_cluster_destroy(cluster_);
  }
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
  // Known as soon as the cluster exists (the listener is bound in rd_kafka_mock_cluster_new).
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  {
    MockWaker waker(bootstrap_, kCreateDeadline, "embedded broker hung creating topics");
    for (const std::string& topic : topics) {
      rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1);
      waker.Progress();
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        *error = "cannot create topic " + topic + ": " + rd_kafka_err2str(err);
        return false;
      }
    }
  }
  Log(LogLevel::kInfo, "embedded broker started",
      {{"bootstrap", bootstrap_},
       {"partitions", std::to_string(partitions)},
       {"topics", std::to_string(topics.size())}});
  return true;
}

}  // namespace handoffd

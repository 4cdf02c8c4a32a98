// The HTTP endpoint of the live worker: /metrics (Prometheus text exposition of a Registry),
// /healthz (200 while the process is up and the health callback finds nothing wrong, else 503
// with its one-line reason) and /readyz (200 when the readiness callback says the
// assigned partitions are restored and consuming, else 503), all on `metrics.listen`.
#pragma once

#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace handoffd {

// The server is civetweb (libcivetweb, the HTTP library under prometheus-cpp's Exposer, already a
// dependency) used directly rather than through prometheus::Exposer: Exposer can only map a path
// to a Collectable and always answers 200, so it cannot say 503 on /readyz, and a second listener
// just for the probes would be one more port to document and open. civetweb handles the HTTP
// parsing, keep-alive and timeouts we would otherwise write by hand.
// Thread-safe: requests are served on civetweb's worker threads (2); the destructor stops them.
class MetricsServer {
 public:
  // Called on a server thread for each /readyz request; must be thread-safe and quick.
  using ReadinessFn = std::function<bool()>;
  // Called on a server thread for each /healthz request; must be thread-safe and quick. Returns
  // an empty string when healthy, else a one-line reason (the 503 body).
  using HealthFn = std::function<std::string()>;

  // Starts serving. `listen` is "host:port" with a numeric IPv4 host ("127.0.0.1:9464",
  // "0.0.0.0:9464") or a bracketed IPv6 one ("[::1]:9464"); port 0 picks a free port (see port()).
  // An empty `ready` means always ready; an empty `health` always healthy.
  // REQUIRES: registry outlives the server.
  // Returns nullptr and sets *error (when error is not null) when `listen` is malformed or the
  // address cannot be bound (in use, not local, no permission).
  static std::unique_ptr<MetricsServer> Start(std::string_view listen,
                                              const prometheus::Registry& registry,
                                              ReadinessFn ready, std::string* error,
                                              HealthFn health = nullptr);

  ~MetricsServer();  // stops listening and waits for requests in flight
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port actually bound (useful with port 0).
  int port() const { return port_; }

 private:
  class Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// The Prometheus text exposition (format 0.0.4) of everything in `registry`, as a scrape of
// /metrics would return it (`handoffd replay --metrics-out FILE` writes this). Cannot fail.
std::string SerializeText(const prometheus::Registry& registry);

}  // namespace handoffd

#include "metrics/metrics_server.h"

#include <CivetServer.h>
#include <prometheus/text_serializer.h>

#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "config/listen_address.h"

namespace handoffd {
namespace {

constexpr const char* kExpositionType = "text/plain; version=0.0.4; charset=utf-8";

void Respond(mg_connection* conn, int status, const char* reason, const char* content_type,
             std::string_view body) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            status, reason, content_type, body.size());
  mg_write(conn, body.data(), body.size());
}

void RefuseMethod(mg_connection* conn) {
  mg_printf(conn,
            "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n");
}

// One path, GET only: other methods get 405 (civetweb itself would answer 404).
class Handler : public CivetHandler {
 public:
  using Fn = std::function<int(mg_connection*)>;  // writes the response, returns its status
  explicit Handler(Fn fn) : fn_(std::move(fn)) {}

  using CivetHandler::handleDelete;
  using CivetHandler::handleGet;
  using CivetHandler::handleOptions;
  using CivetHandler::handlePatch;
  using CivetHandler::handlePost;
  using CivetHandler::handlePut;
  bool handleGet(CivetServer* /*server*/, mg_connection* conn, int* status_code) override {
    *status_code = fn_(conn);
    return true;
  }
  bool handleGet(CivetServer* server, mg_connection* conn) override {
    int status = 0;
    return handleGet(server, conn, &status);
  }
  bool handlePost(CivetServer*, mg_connection* conn) override { return Refuse(conn); }
  bool handlePut(CivetServer*, mg_connection* conn) override { return Refuse(conn); }
  bool handleDelete(CivetServer*, mg_connection* conn) override { return Refuse(conn); }
  bool handlePatch(CivetServer*, mg_connection* conn) override { return Refuse(conn); }
  bool handleOptions(CivetServer*, mg_connection* conn) override { return Refuse(conn); }

 private:
  static bool Refuse(mg_connection* conn) {
    RefuseMethod(conn);
    return true;
  }
  Fn fn_;
};

// The civetweb listening_ports spelling of `listen`, or an empty string when it breaks the rule
// of config/listen_address.h (which the config loader checks too).
std::string ToCivetPorts(std::string_view listen) {
  std::optional<ListenAddress> addr = ParseListenAddress(listen);
  if (!addr) return "";
  return addr->host + ":" + std::to_string(addr->port);
}

}  // namespace

class MetricsServer::Impl {
 public:
  Impl(const prometheus::Registry& registry, ReadinessFn ready, HealthFn health)
      : metrics_([&registry](mg_connection* conn) {
          Respond(conn, 200, "OK", kExpositionType, SerializeText(registry));
          return 200;
        }),
        healthz_([health = std::move(health)](mg_connection* conn) {
          const std::string why = health ? health() : std::string();
          if (why.empty()) {
            Respond(conn, 200, "OK", "text/plain; charset=utf-8", "ok\n");
            return 200;
          }
          Respond(conn, 503, "Service Unavailable", "text/plain; charset=utf-8", why + "\n");
          return 503;
        }),
        readyz_([ready = std::move(ready)](mg_connection* conn) {
          if (!ready || ready()) {
            Respond(conn, 200, "OK", "text/plain; charset=utf-8", "ready\n");
            return 200;
          }
          Respond(conn, 503, "Service Unavailable", "text/plain; charset=utf-8", "not ready\n");
          return 503;
        }) {}

  // Throws CivetException when the address cannot be bound (caught by Start).
  int Listen(const std::string& ports) {
    const std::vector<std::string> options = {"listening_ports",    ports,  "num_threads", "2",
                                              "request_timeout_ms", "10000"};
    server_ = std::make_unique<CivetServer>(options);
    // "$" makes the match exact: /metricsfoo and /metrics/x are 404, not /metrics.
    server_->addHandler("/metrics$", metrics_);
    server_->addHandler("/healthz$", healthz_);
    server_->addHandler("/readyz$", readyz_);
    const std::vector<int> bound = server_->getListeningPorts();
    return bound.empty() ? 0 : bound.front();
  }

  ~Impl() {
    if (server_) server_->close();  // stop threads before the handlers go away
  }

 private:
  Handler metrics_;
  Handler healthz_;
  Handler readyz_;
  std::unique_ptr<CivetServer> server_;
};

std::unique_ptr<MetricsServer> MetricsServer::Start(std::string_view listen,
                                                    const prometheus::Registry& registry,
                                                    ReadinessFn ready, std::string* error,
                                                    HealthFn health) {
  const std::string ports = ToCivetPorts(listen);
  if (ports.empty()) {
    if (error) {
      *error = "metrics.listen \"" + std::string(listen) + "\" is not " +
               std::string(kListenAddressRule);
    }
    return nullptr;
  }
  auto impl = std::make_unique<Impl>(registry, std::move(ready), std::move(health));
  int port = 0;
  try {
    port = impl->Listen(ports);
  } catch (const std::exception&) {
    if (error) {
      *error = "cannot listen on " + std::string(listen) +
               " (address in use, not a local address, or no permission)";
    }
    return nullptr;
  }
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl), port));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

MetricsServer::~MetricsServer() = default;

std::string SerializeText(const prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace handoffd

#include "processor/live/kafka_conf.h"

#include <algorithm>
#include <cctype>

#include "processor/log.h"

namespace handoffd {
namespace {

void LogCallback(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  // syslog levels: 0..3 error, 4 warning, 5..6 info, 7 debug.
  LogLevel lvl = level <= 3   ? LogLevel::kError
                 : level == 4 ? LogLevel::kWarn
                 : level <= 6 ? LogLevel::kInfo
                              : LogLevel::kDebug;
  // A broker connection that failed (refused, closed, timed out, TLS or SASL refused) is logged
  // by librdkafka as an error with facility FAIL, and reported once more through the error
  // callback, whose line carries the severity (LogKafkaError).
  if (lvl == LogLevel::kError && std::string_view(fac) == "FAIL") lvl = LogLevel::kWarn;
  // kafka.properties goes to every client, so a consumer setting (session.timeout.ms) reaches
  // the producers too, and librdkafka warns that "this producer instance" ignores it: expected,
  // not something to act on. Other CONFWARN lines (deprecated or unknown-to-this-version
  // properties) stay warnings.
  if (lvl == LogLevel::kWarn && std::string_view(fac) == "CONFWARN" &&
      std::string_view(buf).find(" property and will be ignored by this ") !=
          std::string_view::npos) {
    lvl = LogLevel::kDebug;
  }
  if (!LogEnabled(lvl)) return;
  Log(lvl, "librdkafka", {{"client", rd_kafka_name(rk)}, {"facility", fac}, {"text", buf}});
}

void ErrorCallback(rd_kafka_t* rk, int err, const char* reason, void* /*opaque*/) {
  LogKafkaError(rk, static_cast<rd_kafka_resp_err_t>(err), reason);
}

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
}

// librdkafka's reason for refusing key=value, with every stand-alone occurrence of the value
// replaced: its messages quote the value ("Invalid value \"x\" for configuration property").
std::string Reason(rd_kafka_conf_res_t res, const std::string& key, const std::string& value,
                   const char* errstr) {
  if (res != RD_KAFKA_CONF_UNKNOWN && IsSecretProperty(key)) {
    return "invalid value for configuration property \"" + key + "\" (not shown)";
  }
  std::string text = errstr;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) {
    text.pop_back();
  }
  if (value.empty()) return text;
  const std::string hidden = "(value not shown)";
  for (size_t at = text.find(value); at != std::string::npos; at = text.find(value, at)) {
    const size_t end = at + value.size();
    const bool alone =
        (at == 0 || !IsNameChar(text[at - 1])) && (end == text.size() || !IsNameChar(text[end]));
    if (alone) {
      text.replace(at, value.size(), hidden);
      at += hidden.size();
    } else {
      at = end;
    }
  }
  return text;
}

bool Set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value,
         std::string* error) {
  char errstr[512];
  const rd_kafka_conf_res_t res =
      rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr);
  if (res != RD_KAFKA_CONF_OK) {
    *error = "kafka property rejected: " + key + ": " + Reason(res, key, value, errstr);
    return false;
  }
  return true;
}

}  // namespace

std::map<std::string, std::string> ConsumerDefaults(const Config& config, bool embedded_broker) {
  std::map<std::string, std::string> defaults;
  auto add = [&](const auto& settings) {
    for (const auto& [key, value] : settings) {
      if (config.kafka.properties.count(key) == 0) defaults[key] = value;
    }
  };
  add(kConsumerDefaults);
  if (embedded_broker) add(kEmbeddedConsumerDefaults);
  return defaults;
}

bool IsSecretProperty(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (std::string_view word : {"password", "secret", "key", "token", "sasl.jaas"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

std::string CheckKafkaProperty(const std::string& key, const std::string& value) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  const rd_kafka_conf_res_t res =
      rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr);
  rd_kafka_conf_destroy(conf);
  return res == RD_KAFKA_CONF_OK ? std::string() : Reason(res, key, value, errstr);
}

bool IsTransientKafkaError(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
      return true;
    default:
      return false;
  }
}

void LogKafkaError(const rd_kafka_t* rk, rd_kafka_resp_err_t err, const char* reason) {
  const LogLevel lvl = IsTransientKafkaError(err) ? LogLevel::kWarn : LogLevel::kError;
  if (!LogEnabled(lvl)) return;
  Log(lvl, "kafka error",
      {{"client", rd_kafka_name(rk)},
       {"error", rd_kafka_err2name(err)},
       {"reason", reason != nullptr ? reason : ""}});
}

rd_kafka_conf_t* MakeKafkaConf(const Config& config, const std::string& bootstrap,
                               const std::map<std::string, std::string>& overrides,
                               std::string* error) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  bool ok = Set(conf, "bootstrap.servers", bootstrap, error);
  for (const auto& [key, value] : config.kafka.properties) {
    if (ok) ok = Set(conf, key, value, error);
  }
  for (const auto& [key, value] : overrides) {
    if (ok) ok = Set(conf, key, value, error);
  }
  if (!ok) {
    rd_kafka_conf_destroy(conf);
    return nullptr;
  }
  rd_kafka_conf_set_log_cb(conf, LogCallback);
  rd_kafka_conf_set_error_cb(conf, ErrorCallback);
  return conf;
}

rd_kafka_t* NewKafkaClient(rd_kafka_type_t type, rd_kafka_conf_t* conf, std::string_view what,
                           std::string* error) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    *error = "cannot create " + std::string(what) + " client: " + errstr;
  }
  return rk;
}

std::string CheckKafkaClientConfig(const Config& config) {
  std::string error;
  // log_level 0: librdkafka would warn that a client without bootstrap servers cannot connect.
  rd_kafka_conf_t* conf = MakeKafkaConf(config, "", {{"log_level", "0"}}, &error);
  if (conf == nullptr) return error;
  char errstr[512] = {};
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk != nullptr) {
    rd_kafka_destroy(rk);
    return "";
  }
  rd_kafka_conf_destroy(conf);
  std::string reason = errstr;
  // OpenSSL's reasons may quote a file name or a key; a property's value never reaches the log.
  for (const auto& [key, value] : config.kafka.properties) {
    if (value.empty() || (value.size() <= 3 && !IsSecretProperty(key))) continue;
    for (size_t at = reason.find(value); at != std::string::npos; at = reason.find(value, at)) {
      reason.replace(at, value.size(), "(value not shown)");
      at += std::string_view("(value not shown)").size();
    }
  }
  return reason;
}

void LogKafkaProperties(const Config& config) {
  for (const auto& [key, value] : config.kafka.properties) {
    Log(LogLevel::kInfo, "kafka property",
        {{"key", key}, {"value", IsSecretProperty(key) ? std::string("<redacted>") : value}});
  }
}

std::string_view MessageTopic(const rd_kafka_message_t* msg) {
  if (msg->rkt == nullptr) return {};
  return rd_kafka_topic_name(msg->rkt);
}

}  // namespace handoffd

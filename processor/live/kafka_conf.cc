#include "processor/live/kafka_conf.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <vector>

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

// `name`'s value in `conf` as librdkafka prints it ("" when it cannot).
std::string ConfValue(const rd_kafka_conf_t* conf, const char* name) {
  char buf[512];
  size_t size = sizeof buf;
  if (rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK) return "";
  return buf;
}

// Whether the user set `key` under any of `names` (a property and its librdkafka aliases).
bool UserSets(const Config& config, std::initializer_list<const char*> names) {
  return std::any_of(names.begin(), names.end(),
                     [&](const char* name) { return config.kafka.properties.count(name) != 0; });
}

// Why kafka.properties may not set `key` = `value` because handoffd needs the setting, or "".
// `key` = `value` has been accepted by librdkafka.
std::string RequiredSettingClash(const std::string& key, const std::string& value) {
  for (const auto& [name, why] : kPerClientKafkaSettings) {
    if (key == name) return std::string(why) + "; remove the property";
  }
  // A conf with handoffd's settings, then the user's property over them: a setting it changed,
  // under its own name or an alias, is one handoffd would silently replace or break.
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const RequiredKafkaSetting& r : kRequiredKafkaSettings) {
    rd_kafka_conf_set(conf, r.name, r.value, errstr, sizeof errstr);
  }
  std::vector<std::string> needed;
  for (const RequiredKafkaSetting& r : kRequiredKafkaSettings) {
    needed.push_back(ConfValue(conf, r.name));
  }
  rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr);
  std::string why;
  for (size_t i = 0; i < kRequiredKafkaSettings.size() && why.empty(); ++i) {
    const RequiredKafkaSetting& r = kRequiredKafkaSettings[i];
    if (ConfValue(conf, r.name) == needed[i]) continue;
    why = (key == r.name ? "" : "sets " + std::string(r.name) + ", and ") + "handoffd needs " +
          r.name + "=" + r.value + " (" + r.why + "); remove the property";
  }
  rd_kafka_conf_destroy(conf);
  return why;
}

}  // namespace

WorkerClientOverrides WorkerClientSettings(const Config& config, const std::string& instance,
                                           bool embedded_broker) {
  const bool exactly_once = config.kafka.processing_guarantee == ProcessingGuarantee::kExactlyOnce;
  const std::string client = "handoffd-" + instance;
  WorkerClientOverrides out;
  std::map<std::string, std::string> consumer_common;
  for (const RequiredKafkaSetting& r : kRequiredKafkaSettings) {
    (r.producer ? out.producer : consumer_common)[r.name] = r.value;
  }
  // handoffd's own defaults (kafka_conf.h: why each); a value set in kafka.properties wins.
  consumer_common.merge(ConsumerDefaults(config, embedded_broker));
  out.producer["client.id"] = client;
  // librdkafka 2.0.2 sends one Produce request per partition, and handoffd writes to eight
  // topics' partitions. at_least_once: with a short linger a backlog turns into about one request
  // per record, which costs the client and the broker more CPU than the records themselves
  // (measured: 14k outputs per 300k events took the broker 0.19 s of CPU at 1 ms, 0.07 s at
  // 100 ms). So the linger is long, and the worker kicks the producer once it has read what there
  // is (Worker::Run): a caught-up worker's records go out at once, a backlog's in large batches.
  // exactly_once: 1 ms. Its outputs wait for the commit on a real cluster anyway, but the
  // embedded broker shows them to read_committed readers before it (docs/live-mode.md), and
  // there 100 ms of linger put exactly_once p99 at 2k events/s at 117 ms instead of 21; its
  // throughput did not change (each commit flushes). A user-set value (under either of its
  // names) wins.
  if (!UserSets(config, {"linger.ms", "queue.buffering.max.ms"})) {
    out.producer["linger.ms"] = exactly_once ? "1" : "100";
  }
  if (exactly_once) out.producer["transactional.id"] = config.kafka.group_id + "-" + instance;
  auto with = [&](std::map<std::string, std::string> extra) {
    for (const auto& kv : consumer_common) extra.insert(kv);
    return extra;
  };
  out.consumer = with({{"group.id", config.kafka.group_id}, {"client.id", client}});
  if (!exactly_once) {
    // at_least_once: the worker stores the group offsets (for lag tools only) once the
    // changelog has them (Worker::CommitGroupOffsets), and librdkafka's auto-commit timer
    // commits what is stored; it skips a rebalance. A manual rd_kafka_commit() answered
    // ILLEGAL_GENERATION during a rebalance makes librdkafka 2.0.2 drop the whole assignment as
    // lost (librdkafka issue 4059, fixed after 2.0.2): every cooperative rebalance then took
    // every partition from every member (no revocation commit, all restored again).
    // enable.auto.offset.store stays false: nothing is committed that the worker did not store.
    out.consumer["enable.auto.commit"] = "true";
  }
  // Never subscribed: group.id only satisfies librdkafka, no group is joined.
  out.acks = with({{"group.id", config.kafka.group_id + ".acks"}, {"client.id", client + "-acks"}});
  // Short fetch waits: a restore reads one partition after the other, and a fetch long-polling
  // the previous one would delay the next by fetch.wait.max.ms.
  out.restorer = with({{"group.id", config.kafka.group_id + ".restore"},
                       {"client.id", client + "-restore"},
                       {"fetch.wait.max.ms", "10"}});
  return out;
}

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
  if (res != RD_KAFKA_CONF_OK) return Reason(res, key, value, errstr);
  return RequiredSettingClash(key, value);
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

std::string CheckKafkaClientConfig(const Config& config, bool embedded_broker) {
  const bool exactly_once = config.kafka.processing_guarantee == ProcessingGuarantee::kExactlyOnce;
  const WorkerClientOverrides worker = WorkerClientSettings(config, "check", embedded_broker);
  struct Client {
    rd_kafka_type_t type;
    const std::map<std::string, std::string>* overrides;
    std::string what;  // "" for the admin client (the properties alone)
  };
  const std::map<std::string, std::string> none;
  const Client clients[] = {
      {RD_KAFKA_PRODUCER, &none, ""},
      {RD_KAFKA_PRODUCER, &worker.producer,
       exactly_once ? "worker's producer (idempotent, transactional: exactly_once)"
                    : "worker's producer (idempotent)"},
      {RD_KAFKA_CONSUMER, &worker.consumer, "worker's consumer"},
      {RD_KAFKA_CONSUMER, &worker.acks, "worker's acks consumer"},
      {RD_KAFKA_CONSUMER, &worker.restorer, "worker's state restore consumer"},
      {RD_KAFKA_CONSUMER, &none, "topic metadata client"},
  };
  std::string reason;
  for (const Client& c : clients) {
    std::map<std::string, std::string> overrides = *c.overrides;
    // librdkafka would warn that a client without bootstrap servers cannot connect.
    overrides["log_level"] = "0";
    std::string error;
    rd_kafka_conf_t* conf = MakeKafkaConf(config, "", overrides, &error);
    if (conf == nullptr) return error;
    char errstr[512] = {};
    rd_kafka_t* rk = rd_kafka_new(c.type, conf, errstr, sizeof errstr);
    if (rk != nullptr) {
      rd_kafka_destroy(rk);
      continue;
    }
    rd_kafka_conf_destroy(conf);
    reason = (c.what.empty() ? "" : "the " + c.what + ": ") + errstr;
    break;
  }
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

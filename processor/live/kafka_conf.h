// librdkafka configuration from handoffd's Config: bootstrap servers, the user's
// kafka.properties passed through unchanged, and handoffd's own settings on top. Also routes
// librdkafka's log lines into handoffd's structured log. Secrets never reach the log: property
// keys matching password|secret|key|token|sasl.jaas are logged by name only.
#pragma once

#include <librdkafka/rdkafka.h>

#include <array>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "config/config.h"

namespace handoffd {

// The worker's consumer settings that differ from librdkafka's defaults for speed, on any
// cluster (user-set kafka.properties win); bench/live's raw consumer uses them too, so the two
// read alike.
// librdkafka 2.0.2 stops fetching a partition whose local queue holds queued.min.messages
// (default 100,000) or queued.max.messages.kbytes (64 MiB) and looks at it again only after a
// fixed 1 s backoff (newer versions: fetch.queue.backoff.ms). A worker that drains the queue in
// less than that then idles until the backoff ends: measured, half of a backlog's read time.
// The queue must hold more than one second of processing: 1M records / 256 MiB.
inline constexpr std::array<std::pair<const char*, const char*>, 2> kConsumerDefaults = {{
    {"queued.min.messages", "1000000"},
    {"queued.max.messages.kbytes", "262144"},
}};

// The consumers' settings on the embedded broker only (see ConsumerDefaults; user-set
// kafka.properties win). Both work around librdkafka 2.0.2's mock; a real cluster keeps
// librdkafka's defaults, which suit it.
// - fetch.wait.max.ms 5: the mock answers an empty fetch only when fetch.wait.max.ms expires,
//   even when data arrives earlier, so that wait is the event-to-packet latency floor there
//   (librdkafka's default is 500 ms). A real broker answers as soon as data arrives: there the
//   wait only sets how often an idle consumer asks, and 5 ms would send each broker ~200 empty
//   fetches a second per consumer (the worker has two).
// - session.timeout.ms 6000, heartbeat.interval.ms 1000: the mock starts a rebalance when a
//   member joins or leaves a running group and elects the assignment only when
//   session.timeout.ms - 1 s has passed, even when every member rejoined at once. With
//   librdkafka's default 45 s, a worker added to a running group got its partitions after 88 s
//   (cooperative-sticky: two rebalances) and a graceful leave moved them after 43 s; 6 s makes
//   that ~10 s and ~4 s, and a member killed without leaving is dropped after 6 s. The heartbeat
//   (default 3 s) stays well inside the session. A real cluster's coordinator rebalances as soon
//   as the members have rejoined.
inline constexpr std::array<std::pair<const char*, const char*>, 3> kEmbeddedConsumerDefaults = {{
    {"fetch.wait.max.ms", "5"},
    {"session.timeout.ms", "6000"},
    {"heartbeat.interval.ms", "1000"},
}};

// handoffd's defaults for the worker's consumers: kConsumerDefaults, plus
// kEmbeddedConsumerDefaults when `embedded_broker`, leaving out every key config.kafka.properties
// sets (the user's value wins and MakeKafkaConf applies it).
std::map<std::string, std::string> ConsumerDefaults(const Config& config, bool embedded_broker);

// True for property names whose values must never be logged.
bool IsSecretProperty(std::string_view name);

// Whether librdkafka accepts `key` = `value` (rd_kafka_conf_set on a scratch conf): an empty
// string when it does, else librdkafka's reason ("No such configuration property: \"x\"") with
// the value taken out: it never appears in the result, and for secret properties (above) an
// invalid value is reported without librdkafka's text. Settings that only conflict with each
// other are found later, by rd_kafka_new. Thread-safe.
std::string CheckKafkaProperty(const std::string& key, const std::string& value);

// Whether librdkafka recovers from `err` by itself: a lost or refused connection, a broker that
// cannot be resolved, every broker down, a timed-out request. Such errors are logged as
// warnings (a broker restart must not look like a handoffd failure); every other error needs an
// operator (credentials, TLS, ACLs, a fatal client error) and is logged as an error.
bool IsTransientKafkaError(rd_kafka_resp_err_t err);

// One log line for an error librdkafka reports through its error callback:
// msg="kafka error" client= error=<name, e.g. _TRANSPORT> reason=, at warn or error (above).
void LogKafkaError(const rd_kafka_t* rk, rd_kafka_resp_err_t err, const char* reason);

// Creates a conf with bootstrap.servers = `bootstrap`, then config.kafka.properties, then
// `overrides` (handoffd's own settings for this client; they win). Installs the log callback and
// an error callback that calls LogKafkaError (a client may replace it to count errors too).
// Returns nullptr and sets *error (naming the key, never the value) when librdkafka rejects a
// setting. The caller owns the conf (rd_kafka_new takes it over on success).
rd_kafka_conf_t* MakeKafkaConf(const Config& config, const std::string& bootstrap,
                               const std::map<std::string, std::string>& overrides,
                               std::string* error);

// rd_kafka_new with `conf`, which it takes over (also on failure). Returns nullptr and sets
// *error to "cannot create <what> client: <librdkafka's reason>" when librdkafka refuses.
rd_kafka_t* NewKafkaClient(rd_kafka_type_t type, rd_kafka_conf_t* conf, std::string_view what,
                           std::string* error);

// Whether librdkafka can build a client from config.kafka.properties: rd_kafka_new (a producer)
// on a conf without bootstrap servers, so it connects nowhere and needs no cluster. Catches what
// neither rd_kafka_conf_set (CheckKafkaProperty) nor the config loader can: files that cannot be
// read (ssl.ca.location, ssl.keystore.location, ...) and settings that conflict. Returns an
// empty string when it can, else librdkafka's reason with every property value longer than
// three characters, and every secret property's value (IsSecretProperty), replaced by
// "(value not shown)". Quick (no I/O but the files the properties name); thread-safe.
std::string CheckKafkaClientConfig(const Config& config);

// Logs the effective user properties (names; values except for secrets) once at start-up.
void LogKafkaProperties(const Config& config);

// "<topic>" of a message, or "" when it has none.
std::string_view MessageTopic(const rd_kafka_message_t* msg);

}  // namespace handoffd

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

// Settings the worker's clients depend on. kafka.properties may repeat one with the same value
// (after librdkafka's parsing: "1" is "true", "all" is "-1") but not change it, under its name or
// an alias (`request.required.acks` is `acks`): CheckKafkaProperty refuses it, naming the
// setting and `why`. WorkerClientOverrides sets each on the clients of its kind.
struct RequiredKafkaSetting {
  const char* name;
  const char* value;
  bool producer;  // the producer's setting; else the consumers'
  const char* why;
};
inline constexpr std::array<RequiredKafkaSetting, 8> kRequiredKafkaSettings = {{
    {"enable.idempotence", "true", true,
     "its producer is idempotent: a retried send must not duplicate an output, and exactly_once "
     "transactions need it"},
    {"acks", "all", true, "its idempotent producer needs every in-sync replica's acknowledgement"},
    {"enable.auto.commit", "false", false,
     "the worker decides which input offsets are committed, with the outputs and state they "
     "produced"},
    {"enable.auto.offset.store", "false", false,
     "the worker commits the offsets its changelog records, not the last one read"},
    {"enable.partition.eof", "true", false,
     "the worker learns from it that a partition has caught up (the event-time merge of events "
     "and acks and the state restore wait for it)"},
    {"auto.offset.reset", "earliest", false,
     "an input offset no longer on the broker resumes at the partition's first record, so no "
     "event is skipped"},
    {"isolation.level", "read_committed", false,
     "records of aborted transactions (an exactly_once worker's changelog) must not be applied"},
    {"partition.assignment.strategy", "cooperative-sticky", false,
     "the worker takes and hands over partitions incrementally (incremental assign)"},
}};

// Properties handoffd sets per client, which kafka.properties cannot set at all
// (CheckKafkaProperty refuses them): client.id (handoffd-<instance>, -acks, -restore) and
// transactional.id (exactly_once: <group_id>-<instance>; at_least_once uses no transactions, and
// a transactional producer could not send outside one).
inline constexpr std::array<std::pair<const char*, const char*>, 2> kPerClientKafkaSettings = {{
    {"client.id",
     "handoffd names each of its clients (handoffd-<instance>, -acks, -restore; run --instance "
     "sets the instance)"},
    {"transactional.id",
     "handoffd sets it under exactly_once (<group_id>-<instance>), and at_least_once uses no "
     "transactions"},
}};

// The settings handoffd puts on top of config.kafka.properties for each of the worker's clients
// (MakeKafkaConf's `overrides`); the worker builds its clients from them and
// CheckKafkaClientConfig checks them, so that check-config and run agree.
struct WorkerClientOverrides {
  std::map<std::string, std::string> producer;  // idempotent; transactional under exactly_once
  std::map<std::string, std::string> consumer;  // the group member (events)
  std::map<std::string, std::string> acks;      // assigned only, follows the events partitions
  std::map<std::string, std::string> restorer;  // assigned only, reads the changelog
};

// `instance` names the clients (client.id) and, under exactly_once, the transactional.id;
// `embedded_broker` adds kEmbeddedConsumerDefaults (see ConsumerDefaults).
WorkerClientOverrides WorkerClientSettings(const Config& config, const std::string& instance,
                                           bool embedded_broker);

// handoffd's defaults for the worker's consumers: kConsumerDefaults, plus
// kEmbeddedConsumerDefaults when `embedded_broker`, leaving out every key config.kafka.properties
// sets (the user's value wins and MakeKafkaConf applies it).
std::map<std::string, std::string> ConsumerDefaults(const Config& config, bool embedded_broker);

// True for property names whose values must never be logged.
bool IsSecretProperty(std::string_view name);

// Whether kafka.properties may set `key` = `value`: librdkafka accepts it (rd_kafka_conf_set on
// a scratch conf), it is not one of kPerClientKafkaSettings, and it leaves every
// kRequiredKafkaSettings entry as handoffd needs it. Returns an empty string when it may, else
// the reason: librdkafka's ("No such configuration property: \"x\"") with the value taken out,
// or which setting handoffd needs and why. The value never appears in the result, and for
// secret properties (above) an invalid value is reported without librdkafka's text. Settings
// that only conflict with each other are found by CheckKafkaClientConfig. Thread-safe.
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

// Whether librdkafka can build every client handoffd makes from config.kafka.properties: the
// admin and metadata clients (the properties alone) and the worker's four
// (WorkerClientSettings, with `embedded_broker`), each by rd_kafka_new on a conf without
// bootstrap servers, so it connects nowhere and needs no cluster. Catches what neither
// rd_kafka_conf_set (CheckKafkaProperty) nor the config loader can: files that cannot be read
// (ssl.ca.location, ssl.keystore.location, ...) and settings that conflict with each other or
// with handoffd's own (`max.in.flight` above 5 with the idempotent producer, `socket.timeout.ms`
// above exactly_once's `transaction.timeout.ms`, `max.poll.interval.ms` below the session
// timeout). Returns an empty string when it can, else librdkafka's reason, after "the <client>: "
// for every client but the admin client ("the worker's consumer: ..."), with every property
// value longer than three
// characters, and every secret property's value (IsSecretProperty), replaced by "(value not
// shown)". Quick (no I/O but the files the properties name); thread-safe.
std::string CheckKafkaClientConfig(const Config& config, bool embedded_broker = false);

// Logs the effective user properties (names; values except for secrets) once at start-up.
void LogKafkaProperties(const Config& config);

// "<topic>" of a message, or "" when it has none.
std::string_view MessageTopic(const rd_kafka_message_t* msg);

}  // namespace handoffd

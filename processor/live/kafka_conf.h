// librdkafka configuration from handoffd's Config: bootstrap servers, the user's
// kafka.properties passed through unchanged, and handoffd's own settings on top. Also routes
// librdkafka's log lines into handoffd's structured log. Secrets never reach the log: property
// keys matching password|secret|key|token|sasl.jaas are logged by name only.
#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <string>
#include <string_view>

#include "config/config.h"

namespace handoffd {

// True for property names whose values must never be logged.
bool IsSecretProperty(std::string_view name);

// Creates a conf with bootstrap.servers = `bootstrap`, then config.kafka.properties, then
// `overrides` (handoffd's own settings for this client; they win). Installs the log callback.
// Returns nullptr and sets *error (naming the key, never the value) when librdkafka rejects a
// setting. The caller owns the conf (rd_kafka_new takes it over on success).
rd_kafka_conf_t* MakeKafkaConf(const Config& config, const std::string& bootstrap,
                               const std::map<std::string, std::string>& overrides,
                               std::string* error);

// rd_kafka_new with `conf`, which it takes over (also on failure). Returns nullptr and sets
// *error to "cannot create <what> client: <librdkafka's reason>" when librdkafka refuses.
rd_kafka_t* NewKafkaClient(rd_kafka_type_t type, rd_kafka_conf_t* conf, std::string_view what,
                           std::string* error);

// Logs the effective user properties (names; values except for secrets) once at start-up.
void LogKafkaProperties(const Config& config);

// "<topic>" of a message, or "" when it has none.
std::string_view MessageTopic(const rd_kafka_message_t* msg);

}  // namespace handoffd

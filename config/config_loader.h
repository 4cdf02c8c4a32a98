// Loads the YAML configuration (contract section 9) with yaml-cpp, applies --set overrides and
// validates everything. Start-up only, so failures are exceptions: ConfigError's message names
// the file, the line and the dotted key ("config/handoffd.yaml:12: workflows.x.severity: ...").
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.h"

namespace handoffd {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Checks one kafka.properties entry the way the Kafka client will (the config layer does not
// know librdkafka; processor/live/kafka_conf.h has CheckKafkaProperty). Returns an empty string
// when the entry is accepted, else the reason, which must not contain the value (a secret).
using PropertyCheck = std::function<std::string(const std::string& key, const std::string& value)>;

// Reads `path` over DefaultConfig(). `overrides` are "dotted.key=value" strings (--set); a value
// is parsed as YAML ("kafka.properties.security.protocol=SASL_SSL" sets a map entry, properties
// keys may contain dots). Unknown keys, wrong types and out-of-range values throw ConfigError,
// and so does a kafka property `check_property` (when given) rejects, at the property's line.
Config LoadConfig(const std::string& path, const std::vector<std::string>& overrides,
                  const PropertyCheck& check_property = {});

// Same, from YAML text; `name` stands in for the file name in messages.
Config LoadConfigFromString(const std::string& yaml, const std::string& name,
                            const std::vector<std::string>& overrides,
                            const PropertyCheck& check_property = {});

}  // namespace handoffd

// Loads the YAML configuration (contract section 9) with yaml-cpp, applies --set overrides and
// validates everything. Start-up only, so failures are exceptions: ConfigError's message names
// the file, the line and the dotted key ("config/handoffd.yaml:12: workflows.x.severity: ...").
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
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

// One command-line override of a config key, applied in command-line order (a later one wins).
// `--set key=value` carries YAML text; `--set-env key=VAR` carries VAR's content, which is set
// as a string byte for byte (no YAML parsing: a password may start with "*" or be "null") and,
// as it is usually a secret, never appears in an error message.
struct ConfigOverride {
  // --set: "dotted.key=value", the value is YAML.
  ConfigOverride(std::string assignment) : text(std::move(assignment)) {}  // NOLINT: implicit
  ConfigOverride(const char* assignment) : text(assignment) {}             // NOLINT: implicit

  // --set-env: `key` gets the string `value`, read from the environment variable `env_var`
  // (named in messages in place of the value).
  static ConfigOverride Literal(std::string key, std::string value, std::string env_var) {
    ConfigOverride o(std::move(key));
    o.value = std::move(value);
    o.env_var = std::move(env_var);
    o.literal = true;
    return o;
  }

  std::string text;     // --set: "key=value"; literal: the key
  std::string value;    // literal only
  std::string env_var;  // literal only
  bool literal = false;

  bool operator==(const ConfigOverride&) const = default;
};

// Reads `path` over DefaultConfig(). A --set value is parsed as YAML
// ("kafka.properties.security.protocol=SASL_SSL" sets a map entry, properties keys may contain
// dots); a literal one is a string. Unknown keys, wrong types and out-of-range values throw
// ConfigError, and so does a kafka property `check_property` (when given) rejects, at the
// property's line. Errors about a literal override name its key and variable, not its value.
Config LoadConfig(const std::string& path, const std::vector<ConfigOverride>& overrides,
                  const PropertyCheck& check_property = {});

// Same, from YAML text; `name` stands in for the file name in messages.
Config LoadConfigFromString(const std::string& yaml, const std::string& name,
                            const std::vector<ConfigOverride>& overrides,
                            const PropertyCheck& check_property = {});

}  // namespace handoffd

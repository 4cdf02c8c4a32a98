// Creates handoffd's topics on a real cluster with the Kafka admin API: partitions and
// replication from config (kafka.partitions, kafka.replication_factor), cleanup.policy=compact
// for the state changelog. Existing topics are left as they are. Start-up only.
#pragma once

#include <string>

#include "config/config.h"

namespace handoffd {

// Creates every missing topic of AllTopics(config.topics) on `bootstrap`, using
// config.kafka.properties for security settings. Returns false and sets *error when the
// cluster cannot be reached within `timeout_ms` or refuses a topic (other than "already
// exists"). Do not call against the embedded broker (the mock times out on CreateTopics).
bool CreateMissingTopics(const Config& config, const std::string& bootstrap, int timeout_ms,
                         std::string* error);

}  // namespace handoffd

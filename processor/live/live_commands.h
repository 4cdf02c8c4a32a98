// Entry points of the commands that talk to Kafka: `run` (the live worker), `broker` (the
// embedded broker, standalone), `generate` (a synthetic agent fleet) and `topics create`.
// Each takes the arguments after the command name and returns the process exit code.
#pragma once

#include <string>
#include <vector>

namespace handoffd {

int RunCommand(const std::vector<std::string>& args);
int BrokerCommand(const std::vector<std::string>& args);
int GenerateCommand(const std::vector<std::string>& args);
int TopicsCommand(const std::vector<std::string>& args);

}  // namespace handoffd

// Placeholder until live mode lands (issue 3): the commands exist and say so.
#include "processor/live/live_commands.h"

#include <iostream>

namespace handoffd {
namespace {
int NotBuilt(const char* name) {
  std::cerr << "level=error msg=\"command not built yet\" command=" << name << "\n";
  return 2;
}
}  // namespace

int RunCommand(const std::vector<std::string>&) { return NotBuilt("run"); }
int BrokerCommand(const std::vector<std::string>&) { return NotBuilt("broker"); }
int GenerateCommand(const std::vector<std::string>&) { return NotBuilt("generate"); }
int TopicsCommand(const std::vector<std::string>&) { return NotBuilt("topics"); }

}  // namespace handoffd

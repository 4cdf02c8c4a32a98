// handoffd: AI-agent events in, routed handoff packets out. Dispatches the sub-commands of
// contract section 10 (run, replay, check-config) and the operational ones (broker, generate,
// topics, version).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "processor/cli/replay.h"
#include "processor/live/live_commands.h"
#include "processor/log.h"

namespace {

constexpr const char kUsage[] =
    "usage: handoffd <command> [flags]\n"
    "\n"
    "commands:\n"
    "  run          --config FILE [--set k=v ...] [--instance NAME]\n"
    "               live consumer-group worker\n"
    "  replay       --config FILE [--set k=v ...] [--advance-to TS] [--metrics-out FILE]\n"
    "               [EVENTS.jsonl | -]\n"
    "               replay a JSONL stream of events and acks; records to stdout\n"
    "  check-config --config FILE [--set k=v ...]\n"
    "               validate a config file; errors name the file, line and key\n"
    "  broker       [--partitions N] [--bootstrap-file F] [--config FILE [--set k=v ...]]\n"
    "               [--extra-topics T,..]\n"
    "               embedded Kafka broker on loopback (librdkafka mock cluster)\n"
    "  generate     --config FILE [--set k=v ...] --rate N [--duration S | --count N]\n"
    "               [--seed K]   synthetic agent fleet into the events and acks topics\n"
    "  topics       create --config FILE [--set k=v ...]\n"
    "               create missing topics on a real cluster\n"
    "  version\n"
    "\n"
    "--set KEY=VALUE      override a config key; VALUE is YAML (quote specials: 'k=\"*x\"')\n"
    "--set-env KEY=VAR    set KEY to environment variable VAR's value, as a plain string\n"
    "                     (for secrets: no YAML parsing, not in argv, not in error messages)\n"
    "                     both are accepted wherever --set is shown, applied in order\n";

}  // namespace

int main(int argc, char** argv) {
  if (!handoffd::SetLogLevelFromEnv()) {
    handoffd::Log(handoffd::LogLevel::kError, "bad environment",
                  {{"key", "HANDOFFD_LOG_LEVEL"},
                   {"value", std::getenv("HANDOFFD_LOG_LEVEL")},
                   {"expected", "debug|info|warn|error"}});
    return 2;
  }
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string_view cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  // `handoffd run --help` and the like: the usage, not "unknown flag --help".
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  if (cmd == "replay") return handoffd::ReplayCommand(args);
  if (cmd == "check-config") return handoffd::CheckConfigCommand(args);
  if (cmd == "run") return handoffd::RunCommand(args);
  if (cmd == "broker") return handoffd::BrokerCommand(args);
  if (cmd == "generate") return handoffd::GenerateCommand(args);
  if (cmd == "topics") return handoffd::TopicsCommand(args);
  if (cmd == "version" || cmd == "--version") {
    // As every other command: what it does not take is refused, not ignored.
    if (!args.empty()) {
      handoffd::Log(handoffd::LogLevel::kError, "bad arguments",
                    {{"command", "version"},
                     {"error", "unexpected argument \"" + args[0] + "\" (version takes none)"}});
      return 2;
    }
    std::printf("handoffd %s\n", HANDOFFD_VERSION);
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "handoffd: unknown command '%.*s'\n\n%s", static_cast<int>(cmd.size()),
               cmd.data(), kUsage);
  return 2;
}

// A small command-line parser shared by every handoffd command: `--flag value`, `--flag=value`,
// repeated `--set k=v` and `--set-env k=VAR`, and positional arguments. Start-up only; errors
// are CliError.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config_loader.h"

namespace handoffd {

class CliError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CliArgs {
  std::map<std::string, std::string> flags;  // "--config" -> "FILE"
  std::vector<ConfigOverride> sets;          // every --set and --set-env, in order
  std::vector<std::string> positional;       // "-" included

  std::optional<std::string> Get(const std::string& flag) const;
  std::string Require(const std::string& flag) const;  // throws CliError naming the flag

  // The flag's value as a number, nullopt when the flag is absent. The whole value must be one
  // ("10x", "" and "ten" are not; "1e3" and "2.5" are numbers, "2.5" is not an integer), finite
  // and at least `min`: else throws CliError naming the flag and the value.
  std::optional<double> GetNumber(const std::string& flag, double min) const;
  std::optional<int64_t> GetInteger(const std::string& flag, int64_t min) const;

  // Throws CliError naming `command` and the first positional argument, if there is one.
  void ExpectNoPositional(const std::string& command, const std::string& takes) const;
};

// The value of an environment variable, or nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// The process environment (getenv).
std::optional<std::string> ProcessEnv(const std::string& name);

// `value_flags` take a value; `bool_flags` do not. `--set` and `--set-env` are accepted by every
// command. `--set-env KEY=VAR` reads VAR through `env` now; VAR unset throws CliError naming it.
// Unknown flags and a value flag given twice throw CliError. Messages never contain a --set-env
// value.
CliArgs ParseCliArgs(const std::vector<std::string>& args,
                     const std::vector<std::string>& value_flags,
                     const std::vector<std::string>& bool_flags = {},
                     const EnvLookup& env = ProcessEnv);

}  // namespace handoffd

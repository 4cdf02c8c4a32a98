// A small command-line parser shared by every handoffd command: `--flag value`, `--flag=value`,
// repeated `--set k=v`, and positional arguments. Start-up only; errors are CliError.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace handoffd {

class CliError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CliArgs {
  std::map<std::string, std::string> flags;  // "--config" -> "FILE" (last one wins)
  std::vector<std::string> sets;             // every --set value, in order
  std::vector<std::string> positional;       // "-" included

  std::optional<std::string> Get(const std::string& flag) const;
  std::string Require(const std::string& flag) const;  // throws CliError naming the flag
};

// `value_flags` take a value; `bool_flags` do not. Unknown flags throw CliError.
CliArgs ParseCliArgs(const std::vector<std::string>& args,
                     const std::vector<std::string>& value_flags,
                     const std::vector<std::string>& bool_flags = {});

}  // namespace handoffd

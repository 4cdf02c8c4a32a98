#include "processor/cli_args.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace handoffd {

std::optional<std::string> CliArgs::Get(const std::string& flag) const {
  auto it = flags.find(flag);
  if (it == flags.end()) return std::nullopt;
  return it->second;
}

std::string CliArgs::Require(const std::string& flag) const {
  auto v = Get(flag);
  if (!v) throw CliError("missing required flag " + flag);
  return *v;
}

std::optional<double> CliArgs::GetNumber(const std::string& flag, double min) const {
  std::optional<std::string> text = Get(flag);
  if (!text) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text->c_str(), &end);
  // strtod also takes leading spaces, "inf" and "nan": none is a count, a rate or a duration.
  if (text->empty() || *end != '\0' || errno != 0 || !std::isfinite(value) ||
      std::isspace(static_cast<unsigned char>(text->front())) != 0) {
    throw CliError(flag + ": expected a number, got \"" + *text + "\"");
  }
  if (value < min) {
    std::ostringstream bound;
    bound << min;
    throw CliError(flag + ": must be at least " + bound.str() + ", got " + *text);
  }
  return value;
}

std::optional<int64_t> CliArgs::GetInteger(const std::string& flag, int64_t min) const {
  std::optional<std::string> text = Get(flag);
  if (!text) return std::nullopt;
  int64_t value = 0;
  const char* begin = text->data();
  const char* end = begin + text->size();
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (text->empty() || ec != std::errc() || ptr != end) {
    throw CliError(flag + ": expected an integer, got \"" + *text + "\"");
  }
  if (value < min) {
    throw CliError(flag + ": must be at least " + std::to_string(min) + ", got " + *text);
  }
  return value;
}

void CliArgs::ExpectNoPositional(const std::string& command, const std::string& takes) const {
  if (positional.empty()) return;
  throw CliError("unexpected argument \"" + positional[0] + "\" (" + command + " takes " + takes +
                 " only)");
}

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

namespace {

bool IsEnvName(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// "--set-env kafka.properties.sasl.password=KAFKA_PASSWORD": the key gets the variable's content.
// The text after '=' is not echoed unless it is a variable name: "=$KAFKA_PASSWORD" expanded by
// a shell would be the secret itself.
ConfigOverride SetFromEnv(const std::string& assignment, const EnvLookup& env) {
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw CliError("--set-env: expected key.path=ENV_VAR (the variable's name)");
  }
  std::string key = assignment.substr(0, eq);
  std::string var = assignment.substr(eq + 1);
  if (!IsEnvName(var)) {
    throw CliError("--set-env " + key +
                   ": after '=' give an environment variable's name ([A-Za-z_][A-Za-z0-9_]*), "
                   "not its value or $NAME (not shown)");
  }
  std::optional<std::string> value = env(var);
  if (!value) {
    throw CliError("--set-env " + key + ": environment variable " + var + " is not set");
  }
  return ConfigOverride::Literal(std::move(key), std::move(*value), std::move(var));
}

}  // namespace

CliArgs ParseCliArgs(const std::vector<std::string>& args,
                     const std::vector<std::string>& value_flags,
                     const std::vector<std::string>& bool_flags, const EnvLookup& env) {
  auto has = [](const std::vector<std::string>& v, const std::string& f) {
    return std::find(v.begin(), v.end(), f) != v.end();
  };
  CliArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      out.positional.push_back(a);
      continue;
    }
    std::string flag = a;
    std::optional<std::string> value;
    if (auto eq = a.find('='); eq != std::string::npos) {
      flag = a.substr(0, eq);
      value = a.substr(eq + 1);
    }
    if (flag == "--set" || flag == "--set-env" || has(value_flags, flag)) {
      if (!value) {
        if (i + 1 >= args.size()) throw CliError("flag " + flag + " needs a value");
        value = args[++i];
      }
      if (flag == "--set") {
        out.sets.emplace_back(*value);
      } else if (flag == "--set-env") {
        out.sets.push_back(SetFromEnv(*value, env));
      } else if (auto [it, added] = out.flags.emplace(flag, *value); !added) {
        // Two --config (or --rate, ...) are a mistake in a script or a unit file; which one
        // would win is not obvious, so neither does.
        throw CliError("flag " + flag + " given twice (\"" + it->second + "\" and \"" + *value +
                       "\"); give it once");
      }
    } else if (has(bool_flags, flag)) {
      if (value) throw CliError("flag " + flag + " takes no value");
      out.flags[flag] = "true";
    } else {
      throw CliError("unknown flag " + flag);
    }
  }
  return out;
}

}  // namespace handoffd

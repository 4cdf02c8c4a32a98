#include "processor/cli_args.h"

#include <algorithm>

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

CliArgs ParseCliArgs(const std::vector<std::string>& args,
                     const std::vector<std::string>& value_flags,
                     const std::vector<std::string>& bool_flags) {
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
    if (flag == "--set" || has(value_flags, flag)) {
      if (!value) {
        if (i + 1 >= args.size()) throw CliError("flag " + flag + " needs a value");
        value = args[++i];
      }
      if (flag == "--set") {
        out.sets.push_back(*value);
      } else {
        out.flags[flag] = *value;
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

#include "processor/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "processor/json_text.h"
#include "processor/time_format.h"

namespace handoffd {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

std::string_view LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// logfmt: bare when the value needs no quoting, else a JSON string (same escaping as packets).
void AppendValue(std::string* out, std::string_view v) {
  bool quote =
      v.empty() || v.find_first_of(" \"=\\") != std::string_view::npos ||
      std::any_of(v.begin(), v.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
  if (quote) {
    AppendJsonString(out, v);
  } else {
    out->append(v);
  }
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool SetLogLevelFromEnv() {
  const char* v = std::getenv("HANDOFFD_LOG_LEVEL");
  if (v == nullptr) return true;
  std::string_view s(v);
  if (s == "debug") {
    SetLogLevel(LogLevel::kDebug);
  } else if (s == "info") {
    SetLogLevel(LogLevel::kInfo);
  } else if (s == "warn") {
    SetLogLevel(LogLevel::kWarn);
  } else if (s == "error") {
    SetLogLevel(LogLevel::kError);
  } else {
    return false;
  }
  return true;
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  if (!LogEnabled(level)) return;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::string line;
  line.reserve(128);
  line.append("ts=");
  line.append(FormatRfc3339Ms(now));
  line.append(" level=");
  line.append(LevelName(level));
  line.append(" msg=");
  AppendValue(&line, msg);
  for (const auto& [k, v] : fields) {
    line.push_back(' ');
    line.append(k);
    line.push_back('=');
    AppendValue(&line, v);
  }
  line.push_back('\n');
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(2, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace handoffd

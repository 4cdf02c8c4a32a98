// Structured logging: one line per event on stderr, `ts=... level=... msg="..." key=value ...`.
// Thread-safe (one write(2) per line). Values are quoted when they contain spaces, quotes or '='.
// Secrets must never be passed as values; callers log key names only.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace handoffd {

enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };

// Lines below this level are dropped. Default kInfo; HANDOFFD_LOG_LEVEL=debug|info|warn|error
// in the environment sets it at start-up (see SetLogLevelFromEnv).
void SetLogLevel(LogLevel level);
void SetLogLevelFromEnv();
bool LogEnabled(LogLevel level);

using LogField = std::pair<std::string_view, std::string>;

void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

}  // namespace handoffd

// Structured logging: one line per event on stderr, `ts=... level=... msg="..." key=value ...`.
// Thread-safe (one write(2) per line). Values are quoted when they contain spaces, quotes or '='.
// Secrets must never be passed as values; callers log key names only.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace handoffd {

enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };

// Lines below this level are dropped. Default kInfo; HANDOFFD_LOG_LEVEL=debug|info|warn|error
// in the environment sets it at start-up (see SetLogLevelFromEnv).
void SetLogLevel(LogLevel level);
// Returns false, changing nothing, when HANDOFFD_LOG_LEVEL is set to anything else (a typo such
// as "warning" must not leave an operator reading info lines they asked to drop, or the reverse).
bool SetLogLevelFromEnv();
bool LogEnabled(LogLevel level);

using LogField = std::pair<std::string_view, std::string>;

void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

// Bounds a line that can repeat per record (a refused produce request fails every record in it)
// to one per `interval`; the lines left out are counted and reported by the next one.
// Thread-safe: the worker's pipeline threads and the threads serving delivery reports share one.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::steady_clock::duration interval) : interval_(interval) {}
  // True when a line may be written now; *suppressed is then the number of lines left out
  // since the last one written (log it as a field).
  bool Allow(std::chrono::steady_clock::time_point now, int64_t* suppressed) {
    std::lock_guard lock(mu_);
    if (written_ && now - last_ < interval_) {
      ++suppressed_;
      return false;
    }
    written_ = true;
    last_ = now;
    *suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  std::mutex mu_;
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  bool written_ = false;
  int64_t suppressed_ = 0;
};

}  // namespace handoffd

// CPU time of the whole process, for log lines and benchmarks that report what work cost.
#pragma once

#include <sys/resource.h>

namespace handoffd {

// User + system CPU time of every thread of this process so far, in seconds.
inline double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace handoffd

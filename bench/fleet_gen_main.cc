// fleet_gen: writes N synthetic fleet lines (processor/fleet.h) to stdout, one JSON object per
// line, as input for `handoffd replay` benchmarks. Deterministic for a seed.
// Usage: fleet_gen [--lines N] [--seed S] [--failure-rate F] [--invalid-rate F]
//                  [--duplicate-rate F] [--concurrent-runs N]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "processor/fleet.h"

int main(int argc, char** argv) {
  handoffd::FleetOptions options;
  long long lines = 1'000'000;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "fleet_gen: %s needs a value\n", argv[i]);
      return 2;
    }
    const char* value = argv[++i];
    if (flag == "--lines") {
      lines = std::atoll(value);
    } else if (flag == "--seed") {
      options.seed = std::strtoull(value, nullptr, 10);
    } else if (flag == "--failure-rate") {
      options.failure_rate = std::atof(value);
    } else if (flag == "--invalid-rate") {
      options.invalid_rate = std::atof(value);
    } else if (flag == "--duplicate-rate") {
      options.duplicate_rate = std::atof(value);
    } else if (flag == "--concurrent-runs") {
      options.concurrent_runs = std::atoi(value);
    } else {
      std::fprintf(stderr, "fleet_gen: unknown flag %s\n", argv[i - 1]);
      return 2;
    }
  }
  handoffd::Fleet fleet(options);
  std::string buf;
  buf.reserve(1 << 20);
  for (long long n = 0; n < lines; ++n) {
    fleet.Next(&buf);
    buf.push_back('\n');
    if (buf.size() > (1 << 20) - 4096) {
      if (std::fwrite(buf.data(), 1, buf.size(), stdout) != buf.size()) return 1;
      buf.clear();
    }
  }
  if (std::fwrite(buf.data(), 1, buf.size(), stdout) != buf.size()) return 1;
  return std::fflush(stdout) == 0 ? 0 : 1;
}

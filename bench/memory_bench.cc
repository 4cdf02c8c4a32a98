// Memory per active run: 1,000,000 runs that started and never completed (run_started, a
// step_started and a tool_call each) in one Engine, measured as the growth of the process's
// resident set over the runs. Lines are written on the fly into one reused buffer, so the input
// costs no memory. Usage: memory_bench [RUNS] (default 1000000). Figures: bench/README.md.
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "config/config_loader.h"
#include "processor/pipeline.h"

namespace {

// Resident bytes from /proc/self/statm (second field, in pages).
int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0;
  int64_t resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * sysconf(_SC_PAGESIZE);
}

class NullSink : public handoffd::OutputSink {
 public:
  void Emit(const handoffd::OutputRecord& /*record*/) override { ++records; }
  int64_t records = 0;
};

constexpr const char* kWorkflows[] = {"refund-review", "ledger-close", "invoice-match",
                                      "support-triage", "adhoc-research"};

}  // namespace

int main(int argc, char** argv) {
  const int64_t runs = argc > 1 ? std::atoll(argv[1]) : 1'000'000;
  const char* config_path = std::getenv("HANDOFFD_BENCH_CONFIG");
  handoffd::Config config = handoffd::LoadConfig(
      config_path != nullptr ? config_path : HANDOFFD_SOURCE_DIR "/config/handoffd.yaml", {});
  if (config.limits.max_active_runs < runs) config.limits.max_active_runs = runs;

  handoffd::Pipeline pipeline(config, nullptr);
  NullSink sink;
  handoffd::SourceRef source{config.topics.events, 0, 0};
  std::string line;
  line.reserve(512);
  // Event time advances 0.1 ms per run: 1M runs span 100 s, well inside every stall timeout, so
  // no timer fires and every run stays active.
  const int64_t start_ms = 1795226400000;
  auto feed = [&](int64_t run, int kind) {
    char buf[512];
    const char* wf = kWorkflows[run % 5];
    int64_t ts = start_ms + run / 10;
    int n = 0;
    const long long r = static_cast<long long>(run);
    const long long t = static_cast<long long>(ts);
    switch (kind) {
      case 0:
        n = std::snprintf(buf, sizeof(buf),
                          "{\"event_id\":\"r%lld:1\",\"run_id\":\"run-%08lld\","
                          "\"type\":\"run_started\",\"ts\":%lld,"
                          "\"workflow_id\":\"%s\",\"objective\":\"bench run\"}",
                          r, r, t, wf);
        break;
      case 1:
        n = std::snprintf(buf, sizeof(buf),
                          "{\"event_id\":\"r%lld:2\",\"run_id\":\"run-%08lld\","
                          "\"type\":\"step_started\",\"ts\":%lld,\"step\":\"load_order\"}",
                          r, r, t);
        break;
      default:
        n = std::snprintf(buf, sizeof(buf),
                          "{\"event_id\":\"r%lld:3\",\"run_id\":\"run-%08lld\","
                          "\"type\":\"tool_call\",\"ts\":%lld,\"step\":\"load_order\","
                          "\"tool\":\"db.query\",\"status\":\"ok\",\"cost_usd\":0.0042,"
                          "\"tokens\":812,\"duration_ms\":35}",
                          r, r, t);
        break;
    }
    line.assign(buf, static_cast<size_t>(n));
    if (!pipeline.Handle({}, line, source, &sink)) {
      std::fprintf(stderr, "memory_bench: event rejected: %s\n", line.c_str());
      std::exit(1);
    }
    ++source.offset;
  };

  // Warm up the allocator, the decoder and the engine's fixed structures with a few runs first,
  // so the delta is the runs' own cost.
  const int64_t warmup = 1000;
  for (int64_t r = 0; r < warmup; ++r) {
    for (int k = 0; k < 3; ++k) feed(r, k);
  }
  const int64_t before = ResidentBytes();
  for (int64_t r = warmup; r < warmup + runs; ++r) {
    for (int k = 0; k < 3; ++k) feed(r, k);
  }
  const int64_t after = ResidentBytes();
  const int64_t active = pipeline.engine().active_runs();
  std::printf("memory_bench: runs=%" PRId64 " active_runs=%" PRId64
              " rss_before_mib=%.1f "
              "rss_after_mib=%.1f bytes_per_active_run=%.0f records=%" PRId64 "\n",
              runs, active, before / 1048576.0, after / 1048576.0,
              static_cast<double>(after - before) / static_cast<double>(runs), sink.records);
  return active == runs + warmup ? 0 : 1;
}

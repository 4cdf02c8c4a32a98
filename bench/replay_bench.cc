// Replay throughput on one core: the decoder alone and the whole core path (Pipeline: decode +
// engine + DLQ) over 1,000,000 mixed synthetic fleet events held in memory, plus the fleet
// generator itself. Items/s is events per second of CPU time. Figures: bench/README.md.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "processor/decoder.h"
#include "processor/fleet.h"
#include "processor/pipeline.h"

namespace handoffd {
namespace {

constexpr int kEvents = 1'000'000;

// All lines in one buffer (as a file read into memory), padded at the end for DecodePadded.
struct Corpus {
  std::string text;
  std::vector<std::string_view> lines;
};

const Corpus& Events() {
  static const Corpus* corpus = [] {
    auto* c = new Corpus;
    FleetOptions options;  // the defaults: 10% failing runs, 0.2% invalid, 0.5% duplicates
    options.seed = 2026;
    Fleet fleet(options);
    std::vector<size_t> ends;
    ends.reserve(kEvents);
    for (int i = 0; i < kEvents; ++i) {
      fleet.Next(&c->text);
      ends.push_back(c->text.size());
      c->text.push_back('\n');
    }
    c->text.append(simdjson::SIMDJSON_PADDING, ' ');
    size_t begin = 0;
    for (size_t end : ends) {
      c->lines.emplace_back(c->text.data() + begin, end - begin);
      begin = end + 1;
    }
    return c;
  }();
  return *corpus;
}

// The shipped config (its catalog holds the fleet's four catalog workflows); override with
// HANDOFFD_BENCH_CONFIG.
const Config& BenchConfig() {
  static const Config* config = [] {
    const char* path = std::getenv("HANDOFFD_BENCH_CONFIG");
    return new Config(
        LoadConfig(path != nullptr ? path : HANDOFFD_SOURCE_DIR "/config/handoffd.yaml", {}));
  }();
  return *config;
}

class CountingSink : public OutputSink {
 public:
  void Emit(const OutputRecord& record) override {
    ++counts_[static_cast<size_t>(record.role)];
    bytes_ += record.value.size();
  }
  int64_t count(TopicRole role) const { return counts_[static_cast<size_t>(role)]; }
  int64_t total() const {
    int64_t t = 0;
    for (int64_t c : counts_) t += c;
    return t;
  }
  int64_t bytes() const { return bytes_; }

 private:
  int64_t counts_[kTopicRoleCount] = {};
  int64_t bytes_ = 0;
};

void BM_FleetGenerate(benchmark::State& state) {
  Fleet fleet(FleetOptions{});
  std::string line;
  line.reserve(1024);
  int64_t bytes = 0;
  for (auto _ : state) {
    line.clear();
    fleet.Next(&line);
    bytes += static_cast<int64_t>(line.size());
    benchmark::DoNotOptimize(line.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_FleetGenerate);

// Decode (with the copy into the decoder's padded buffer, as Pipeline does).
void BM_Decode(benchmark::State& state) {
  const Corpus& corpus = Events();
  Decoder decoder(1 << 20);
  Event event;
  int64_t invalid = 0;
  for (auto _ : state) {
    for (std::string_view line : corpus.lines) {
      invalid += !decoder.Decode(line, &event).empty();
      benchmark::DoNotOptimize(event.ts_ms);
    }
  }
  state.SetItemsProcessed(state.iterations() * kEvents);
  state.counters["invalid_per_pass"] = static_cast<double>(invalid) / state.iterations();
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

// Decode in place: the input buffer already has simdjson's padding.
void BM_DecodePadded(benchmark::State& state) {
  const Corpus& corpus = Events();
  const char* end = corpus.text.data() + corpus.text.size();
  Decoder decoder(1 << 20);
  Event event;
  for (auto _ : state) {
    for (std::string_view line : corpus.lines) {
      size_t allocated = static_cast<size_t>(end - line.data());
      benchmark::DoNotOptimize(decoder.DecodePadded(line, allocated, &event).size());
    }
  }
  state.SetItemsProcessed(state.iterations() * kEvents);
}
BENCHMARK(BM_DecodePadded)->Unit(benchmark::kMillisecond);

// The core end to end: every event through a fresh Pipeline (decode, engine, DLQ), records
// counted by the sink. State grows from empty, as in a replay.
void BM_Pipeline(benchmark::State& state) {
  const Corpus& corpus = Events();
  const Config& config = BenchConfig();
  CountingSink sink;
  int64_t active_runs = 0;
  for (auto _ : state) {
    Pipeline pipeline(config, nullptr);
    SourceRef source{config.topics.events, 0, 0};
    for (std::string_view line : corpus.lines) {
      pipeline.Handle({}, line, source, &sink);
      ++source.offset;
    }
    active_runs = pipeline.engine().active_runs();
  }
  state.SetItemsProcessed(state.iterations() * kEvents);
  auto per_pass = [&](int64_t n) { return static_cast<double>(n) / state.iterations(); };
  state.counters["records_per_pass"] = per_pass(sink.total());
  state.counters["dlq_per_pass"] = per_pass(sink.count(TopicRole::kDlq));
  state.counters["audit_per_pass"] = per_pass(sink.count(TopicRole::kAudit));
  state.counters["active_runs_at_end"] = static_cast<double>(active_runs);
}
BENCHMARK(BM_Pipeline)->Unit(benchmark::kMillisecond)->MinTime(3.0);

}  // namespace
}  // namespace handoffd

BENCHMARK_MAIN();

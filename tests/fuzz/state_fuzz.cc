// libFuzzer target: changelog run states (processor/state_codec.h) as a restarted worker reads
// them. A state is one of a set of real encodings (fleet traffic through an Engine), edited by the
// fuzzer's bytes. Engine::RestoreRun must accept or refuse it without a crash or a sanitizer
// report; a restored run must then take more events, acks and a month of timers like any other;
// and every state the engine writes on the way must restore and encode again byte for byte.
//
// Input: byte 0 picks the state; then edits of 3 bytes each: op (low 2 bits: overwrite, insert,
// erase, truncate) with the position's low bits in the rest, the position's high byte, a value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config_loader.h"
#include "processor/decoder.h"
#include "processor/engine.h"
#include "processor/fleet.h"
#include "tests/fuzz/touch.h"

namespace {

using handoffd::ChangelogSink;
using handoffd::Config;
using handoffd::Decoder;
using handoffd::Engine;
using handoffd::Event;
using handoffd::OutputRecord;
using handoffd::OutputSink;
using handoffd::SourceRef;

// Touches every byte of every record so ASan catches views into freed memory.
class TouchingSink : public OutputSink {
 public:
  void Emit(const OutputRecord& r) override {
    for (std::string_view s : {r.key, r.value, r.ce_id, r.ce_type, r.error, r.source}) {
      sum_ += handoffd::fuzz::Touch(s);
    }
  }

 private:
  size_t sum_ = 0;
};

class MapChangelog : public ChangelogSink {
 public:
  void PutRun(std::string_view run_id, std::string_view state) override {
    runs[std::string(run_id)] = std::string(state);
  }
  std::map<std::string, std::string> runs;
};

const Config& TheConfig() {
  static const Config config =
      handoffd::LoadConfig(HANDOFFD_SOURCE_DIR "/config/handoffd.yaml", {});
  return config;
}

// Real encodings: fleet traffic with many failures (so runs hold packets, acks and escalations)
// through one Engine, drained every 500 lines; the last state of each of up to 256 runs.
const std::vector<std::pair<std::string, std::string>>& Seeds() {
  static const std::vector<std::pair<std::string, std::string>> seeds = [] {
    handoffd::FleetOptions options;
    options.seed = 7;
    options.failure_rate = 0.6;
    options.concurrent_runs = 32;
    handoffd::Fleet fleet(options);
    Decoder decoder(1 << 20);
    Engine engine(TheConfig(), nullptr);
    TouchingSink sink;
    MapChangelog log;
    std::string line;
    Event event;
    for (int i = 0; i < 20000; ++i) {
      line.clear();
      fleet.Next(&line);
      if (decoder.Decode(line, &event).empty()) {
        engine.Process(event, SourceRef{"agent.events", 0, i}, &sink);
      }
      if (i % 500 == 499) engine.DrainChanges(&log);
    }
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& [id, state] : log.runs) {
      if (!state.empty() && out.size() < 256) out.emplace_back(id, state);
    }
    if (out.empty()) std::abort();
    return out;
  }();
  return seeds;
}

void Feed(Engine* engine, Decoder* decoder, const std::string& json, int64_t offset,
          OutputSink* sink) {
  Event event;
  if (!decoder->Decode(json, &event).empty()) std::abort();  // the lines below are valid
  engine->Process(event, SourceRef{"agent.events", 0, offset}, sink);
}

// Every run state the engine holds, written out, restores into a fresh engine and encodes again
// to the same bytes.
void ExpectRoundTrip(Engine* engine) {
  engine->MarkAllChanged();
  MapChangelog written;
  engine->DrainChanges(&written);
  for (const auto& [run_id, bytes] : written.runs) {
    if (bytes.empty()) continue;  // a tombstone
    Engine again(TheConfig(), nullptr);
    if (!again.RestoreRun(run_id, bytes)) std::abort();
    again.MarkAllChanged();
    MapChangelog rewritten;
    again.DrainChanges(&rewritten);
    if (rewritten.runs.at(run_id) != bytes) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& seeds = Seeds();
  if (size == 0) return 0;
  const auto& [run_id, seed] = seeds[data[0] % seeds.size()];
  std::string state = seed;
  for (size_t i = 1; i + 3 <= size; i += 3) {
    const size_t pos = ((size_t{data[i]} >> 2) | (size_t{data[i + 1]} << 6)) % (state.size() + 1);
    const char value = static_cast<char>(data[i + 2]);
    switch (data[i] & 3) {
      case 0:
        if (pos < state.size()) state[pos] = value;
        break;
      case 1:
        state.insert(pos, 1, value);
        break;
      case 2:
        if (pos < state.size()) state.erase(pos, 1);
        break;
      default:
        state.resize(pos);
        break;
    }
  }

  static Decoder decoder(1 << 20);
  TouchingSink sink;
  Engine engine(TheConfig(), nullptr);
  if (!engine.RestoreRun(run_id, state)) return 0;

  // The run goes on: a failure, acks and a resolve of its first packets, the end of the run.
  const std::string id = "\"run_id\":\"" + run_id + "\"";
  const std::string ts = ",\"ts\":\"2026-11-21T04:00:00Z\"";
  Feed(&engine, &decoder,
       "{\"event_id\":\"fz1\"," + id + ",\"type\":\"step_failed\"" + ts +
           ",\"step\":\"fetch\",\"error\":{\"code\":\"write_failed\",\"message\":\"disk\"}}",
       1, &sink);
  for (int n = 1; n <= 3; ++n) {
    Feed(&engine, &decoder,
         "{" + id + ",\"type\":\"handoff_acknowledged\"" + ts + ",\"packet_id\":\"" + run_id + "#" +
             std::to_string(n) + "\",\"by\":\"oncall\"}",
         1 + n, &sink);
  }
  Feed(&engine, &decoder,
       "{" + id + ",\"type\":\"handoff_resolved\"" + ts + ",\"packet_id\":\"" + run_id +
           "#1\",\"by\":\"oncall\"}",
       5, &sink);
  Feed(&engine, &decoder,
       "{\"event_id\":\"fz2\"," + id + ",\"type\":\"run_completed\"" + ts +
           ",\"outcome\":\"failure\"}",
       6, &sink);
  // What the engine writes for the run now restores and encodes again to the same bytes; and
  // again after a month of event time (SLA timers, escalations, stall checks; by then retention
  // has usually forgotten the run, which leaves a tombstone and nothing to check).
  ExpectRoundTrip(&engine);
  engine.AdvanceWatermark(handoffd::FleetOptions{}.start_ms + 30LL * 24 * 3600 * 1000, &sink);
  ExpectRoundTrip(&engine);
  return 0;
}

// `handoffd replay`: runs the core over a JSONL file of events and acks and writes every output
// record to stdout as one line {"topic":..,"key":..,"value":{..}} (DLQ: "value_raw" + "error",
// and "value_base64" when the input line is not UTF-8). Every line is valid JSON.
// Deterministic: the same input and config give the same bytes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <istream>
#include <string>
#include <vector>

#include "config/config.h"
#include "processor/engine_observer.h"
#include "processor/output.h"

namespace handoffd {

// Formats OutputRecords as replay lines into a buffered FILE*. Counts records per topic role.
class ReplayWriter : public OutputSink {
 public:
  // REQUIRES: config and out outlive the writer.
  ReplayWriter(const TopicsConfig& topics, std::FILE* out);
  ~ReplayWriter() override;

  void Emit(const OutputRecord& record) override;
  // Writes what is buffered and flushes `out`. Returns false when a write or the flush failed
  // (disk full, closed pipe, ...); the failure sticks: ok() stays false and later records are
  // dropped, since the output is incomplete anyway.
  bool Flush();
  bool ok() const { return error_ == 0; }
  int error() const { return error_; }  // errno of the first failed write, 0 when none
  int64_t count(TopicRole role) const { return counts_[static_cast<size_t>(role)]; }

 private:
  const TopicsConfig& topics_;
  std::FILE* out_;
  std::string buf_;
  std::string repaired_;  // a dead letter that is not UTF-8, with U+FFFD; reused
  int error_ = 0;
  int64_t counts_[kTopicRoleCount] = {};
};

struct ReplayStats {
  int64_t lines = 0;
  int64_t invalid = 0;
  double elapsed_s = 0;
};

struct ReplayOptions {
  std::optional<int64_t> advance_to_ms;  // move the watermark here at the end
  bool progress = false;                 // progress line on stderr (when it is a terminal)
};

// Replays `in` line by line; empty lines are skipped but keep their line number (the offset
// in `source`). Never fails on bad input: bad lines become DLQ records.
ReplayStats Replay(const Config& config, std::istream& in, const ReplayOptions& options,
                   EngineObserver* observer, ReplayWriter* writer);

// The command: `replay --config FILE [--set k=v ...] [--advance-to TS] [--metrics-out FILE]
// [EVENTS.jsonl | -]`. Returns the exit code (0 ok, 2 usage or config error, 1 I/O error: the
// input cannot be opened or is a directory, stdout or --metrics-out cannot be written).
int ReplayCommand(const std::vector<std::string>& args);

// `check-config --config FILE [--set ...]`: 0 when valid, 2 with "file:line: key: what" (or an
// unexpected positional argument).
int CheckConfigCommand(const std::vector<std::string>& args);

}  // namespace handoffd

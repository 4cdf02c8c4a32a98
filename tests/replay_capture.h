// ReplayCapture: runs handoffd::Replay in-process and returns what `handoffd replay` would have
// written to stdout, whole and split into lines. Shared by the golden and contract tests.
#pragma once

#include <cstdio>
#include <istream>
#include <sstream>
#include <string>
#include <vector>

#include "processor/cli/replay.h"

namespace handoffd {

struct ReplayCapture {
  std::string text;
  std::vector<std::string> lines;
};

inline ReplayCapture CaptureReplay(const Config& config, std::istream& in,
                                   const ReplayOptions& options, EngineObserver* observer) {
  std::FILE* out = std::tmpfile();
  {
    ReplayWriter writer(config.topics, out);
    Replay(config, in, options, observer, &writer);
  }
  std::rewind(out);
  ReplayCapture result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, out)) > 0) result.text.append(buf, n);
  std::fclose(out);
  std::istringstream lines(result.text);
  for (std::string line; std::getline(lines, line);) result.lines.push_back(line);
  return result;
}

}  // namespace handoffd

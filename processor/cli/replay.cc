#include "processor/cli/replay.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>

#include "config/config_loader.h"
#include "metrics/metrics.h"
#include "processor/cli_args.h"
#include "processor/json_text.h"
#include "processor/live/kafka_conf.h"
#include "processor/log.h"
#include "processor/pipeline.h"
#include "processor/time_format.h"

namespace handoffd {
namespace {

constexpr size_t kFlushBytes = 1 << 20;
constexpr size_t kReadBytes = 1 << 20;

void AppendKey(std::string* out, std::string_view key) {
  if (key.empty()) {
    out->append("null");
  } else {
    AppendJsonString(out, key);
  }
}

std::optional<int64_t> ParseTimeArg(const std::string& text) {
  int64_t ms = 0;
  if (ParseRfc3339Ms(text, &ms)) return ms;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (!text.empty() && end != nullptr && *end == '\0') return static_cast<int64_t>(v);
  return std::nullopt;
}

}  // namespace

ReplayWriter::ReplayWriter(const TopicsConfig& topics, std::FILE* out)
    : topics_(topics), out_(out) {
  buf_.reserve(kFlushBytes + 64 * 1024);
}

ReplayWriter::~ReplayWriter() { Flush(); }

void ReplayWriter::Emit(const OutputRecord& record) {
  ++counts_[static_cast<size_t>(record.role)];
  buf_.append("{\"topic\":");
  AppendJsonString(&buf_, topics_.ForRole(record.role));
  buf_.append(",\"key\":");
  AppendKey(&buf_, record.key);
  if (record.role == TopicRole::kDlq) {
    buf_.append(",\"value_raw\":");
    if (IsValidUtf8(record.value)) {
      AppendJsonString(&buf_, record.value);
    } else {
      // JSON text must be UTF-8: the line as text with U+FFFD for each byte that is not, and
      // the exact bytes beside it.
      repaired_.clear();
      AppendUtf8Replacing(&repaired_, record.value);
      AppendJsonString(&buf_, repaired_);
      buf_.append(",\"value_base64\":\"");
      AppendBase64(&buf_, record.value);
      buf_.push_back('"');
    }
    buf_.append(",\"error\":");
    AppendJsonString(&buf_, record.error);
  } else {
    buf_.append(",\"value\":");
    buf_.append(record.value);
  }
  buf_.append("}\n");
  if (buf_.size() >= kFlushBytes) Flush();
}

bool ReplayWriter::Flush() {
  errno = 0;
  if (error_ == 0 && !buf_.empty() &&
      std::fwrite(buf_.data(), 1, buf_.size(), out_) != buf_.size()) {
    error_ = errno != 0 ? errno : EIO;
  }
  buf_.clear();
  if (error_ == 0 && std::fflush(out_) != 0) error_ = errno != 0 ? errno : EIO;
  return error_ == 0;
}

ReplayStats Replay(const Config& config, std::istream& in, const ReplayOptions& options,
                   EngineObserver* observer, ReplayWriter* writer) {
  auto start = std::chrono::steady_clock::now();
  auto last_progress = start;
  Pipeline pipeline(config, observer);
  ReplayStats stats;
  SourceRef source{config.topics.events, 0, 0};
  int64_t offset = -1;
  auto handle_line = [&](std::string_view line) {
    ++offset;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return;
    source.offset = offset;
    ++stats.lines;
    if (!pipeline.Handle({}, line, source, writer)) ++stats.invalid;
    if (options.progress && (stats.lines & 0xFFFF) == 0) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_progress > std::chrono::milliseconds(500)) {
        last_progress = now;
        double s = std::chrono::duration<double>(now - start).count();
        std::fprintf(stderr, "\rreplay: %lld events, %lld invalid, %.0f events/s   ",
                     static_cast<long long>(stats.lines), static_cast<long long>(stats.invalid),
                     stats.lines / (s > 0 ? s : 1));
      }
    }
  };
  // Lines are cut out of large blocks read from `in` and handed over as views: std::getline
  // copied every line into a std::string one character class test at a time (~500
  // instructions per event, 13% of a replay). Same lines as getline: split at '\n', a last
  // line without '\n' counts, nothing after a final '\n'. A line longer than the buffer
  // grows it (oversized lines are still read whole and dead-lettered as "oversized").
  std::string buf(kReadBytes, '\0');
  size_t begin = 0;  // first byte of the line not yet handled
  size_t end = 0;    // end of the bytes read so far
  while (true) {
    if (begin == end) {
      begin = end = 0;
    } else if (end == buf.size()) {
      // No room behind the partial line: move it to the front, or grow when it fills it all.
      if (begin == 0) {
        buf.resize(buf.size() * 2);
      } else {
        std::memmove(buf.data(), buf.data() + begin, end - begin);
        end -= begin;
        begin = 0;
      }
    }
    in.read(buf.data() + end, static_cast<std::streamsize>(buf.size() - end));
    const auto got = static_cast<size_t>(in.gcount());
    if (got == 0) break;
    const size_t scanned = end;
    end += got;
    const char* base = buf.data();
    for (const char* nl =
             static_cast<const char*>(std::memchr(base + scanned, '\n', end - scanned));
         nl != nullptr;
         nl = static_cast<const char*>(std::memchr(base + begin, '\n', end - begin))) {
      handle_line(std::string_view(base + begin, static_cast<size_t>(nl - (base + begin))));
      begin = static_cast<size_t>(nl - base) + 1;
    }
  }
  if (begin < end) handle_line(std::string_view(buf.data() + begin, end - begin));
  if (options.advance_to_ms) pipeline.engine().AdvanceWatermark(*options.advance_to_ms, writer);
  writer->Flush();
  if (options.progress) std::fprintf(stderr, "\r\033[K");
  stats.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

int ReplayCommand(const std::vector<std::string>& args) {
  Config config;
  CliArgs cli;
  ReplayOptions options;
  try {
    cli = ParseCliArgs(args, {"--config", "--advance-to", "--metrics-out"});
    if (cli.positional.size() > 1) throw CliError("replay takes at most one input file");
    config = LoadConfig(cli.Require("--config"), cli.sets);
    if (auto t = cli.Get("--advance-to")) {
      options.advance_to_ms = ParseTimeArg(*t);
      if (!options.advance_to_ms) {
        throw CliError("--advance-to: not an RFC 3339 time or epoch milliseconds: " + *t);
      }
    }
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "replay: bad arguments", {{"error", e.what()}});
    return 2;
  }
  std::string input = cli.positional.empty() ? "-" : cli.positional[0];
  std::ifstream file;
  std::istream* in = &std::cin;
  if (input != "-") {
    // A directory opens, then reads as nothing: it would replay 0 events and exit 0.
    std::error_code ec;
    if (std::filesystem::is_directory(input, ec)) {
      Log(LogLevel::kError, "replay: cannot open input",
          {{"file", input}, {"error", "is a directory"}});
      return 1;
    }
    file.open(input, std::ios::binary);
    if (!file) {
      Log(LogLevel::kError, "replay: cannot open input",
          {{"file", input}, {"error", std::strerror(errno)}});
      return 1;
    }
    in = &file;
  }
  std::ios::sync_with_stdio(false);
  options.progress = ::isatty(2) != 0;

  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<Metrics> metrics;
  auto metrics_out = cli.Get("--metrics-out");
  if (metrics_out) metrics = std::make_unique<Metrics>(*registry, config);

  ReplayWriter writer(config.topics, stdout);
  ReplayStats stats = Replay(config, *in, options, metrics.get(), &writer);
  if (!writer.ok()) {
    // Output cut short (e.g. "> /dev/full"): a consumer of stdout must not take it as complete.
    Log(LogLevel::kError, "replay: cannot write output",
        {{"file", "stdout"}, {"error", std::strerror(writer.error())}});
    return 1;
  }

  if (metrics_out) {
    std::ofstream out(*metrics_out, std::ios::binary | std::ios::trunc);
    out << prometheus::TextSerializer().Serialize(registry->Collect());
    out.flush();
    if (!out) {
      Log(LogLevel::kError, "replay: cannot write metrics", {{"file", *metrics_out}});
      return 1;
    }
  }
  auto n = [](int64_t v) { return std::to_string(v); };
  char rate[32];
  std::snprintf(rate, sizeof rate, "%.0f",
                stats.lines / (stats.elapsed_s > 0 ? stats.elapsed_s : 1));
  char elapsed[32];
  std::snprintf(elapsed, sizeof elapsed, "%.3f", stats.elapsed_s);
  Log(LogLevel::kInfo, "replay finished",
      {{"events", n(stats.lines)},
       {"invalid", n(stats.invalid)},
       {"page", n(writer.count(TopicRole::kPage))},
       {"owner_queue", n(writer.count(TopicRole::kOwnerQueue))},
       {"tickets", n(writer.count(TopicRole::kTickets))},
       {"decisions", n(writer.count(TopicRole::kDecisions))},
       {"pending", n(writer.count(TopicRole::kPending))},
       {"escalations", n(writer.count(TopicRole::kEscalations))},
       {"audit", n(writer.count(TopicRole::kAudit))},
       {"dlq", n(writer.count(TopicRole::kDlq))},
       {"elapsed_s", elapsed},
       {"events_per_s", rate}});
  return 0;
}

int CheckConfigCommand(const std::vector<std::string>& args) {
  try {
    CliArgs cli = ParseCliArgs(args, {"--config"});
    cli.ExpectNoPositional("check-config", "--config FILE and --set");
    std::string path = cli.Require("--config");
    // Kafka properties are checked with librdkafka as `run` would set them, so that a misspelled
    // one fails here, at its line, rather than when the worker creates its clients.
    Config config = LoadConfig(path, cli.sets, CheckKafkaProperty);
    // What only building a client catches (a TLS file that cannot be read, settings that
    // conflict with each other or with the worker's own), with clients built as `run` builds
    // them but without bootstrap servers: they connect nowhere.
    const std::string why =
        CheckKafkaClientConfig(config, config.kafka.bootstrap_servers == "embedded");
    if (!why.empty()) throw std::runtime_error(path + ": kafka.properties: " + why);
    Log(LogLevel::kInfo, "config ok",
        {{"file", path}, {"workflows", std::to_string(config.workflows.size())}});
    return 0;
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "config invalid", {{"error", e.what()}});
    std::fprintf(stdout, "%s\n", e.what());
    return 2;
  }
}

}  // namespace handoffd

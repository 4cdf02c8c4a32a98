// The Kafka-facing commands: run (the live worker), broker (embedded broker, standalone),
// generate (synthetic fleet) and topics create. Start-up errors are logged and turned into exit
// codes: 2 for usage/config errors, 1 for runtime failures.
#include "processor/live/live_commands.h"

#include <prometheus/registry.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <thread>

#include "config/config_loader.h"
#include "metrics/metrics.h"
#include "metrics/metrics_server.h"
#include "processor/cli_args.h"
#include "processor/live/embedded_broker.h"
#include "processor/live/kafka_conf.h"
#include "processor/live/synthetic_fleet.h"
#include "processor/live/topic_admin.h"
#include "processor/live/worker.h"
#include "processor/log.h"
#include "processor/thread_name.h"

namespace handoffd {
namespace {

std::atomic<bool> g_stop{false};
// Set just before the worker starts its Kafka clients. Until then nothing has been assigned,
// produced or committed, so a stop signal has nothing to finish.
std::atomic<bool> g_worker_starting{false};

void OnSignal(int) { g_stop.store(true); }

void InstallSignalHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

// After a stop signal, the process must be gone within `timeout_ms` (+ a small grace): a
// watchdog ends it if a Kafka call hangs, rather than leaving a stuck pod. A signal during the
// start-up checks (which wait up to 15 s each for an unreachable cluster) ends it at once with
// exit code 0, as a stop does once running.
void StartShutdownWatchdog(int64_t timeout_ms) {
  std::thread([timeout_ms] {
    NameThisThread("hd-shutdown");
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!g_worker_starting.load()) {
      Log(LogLevel::kInfo, "stopped before start", {{"reason", "signal"}});
      _exit(0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms + 1000));
    Log(LogLevel::kError, "shutdown timed out", {{"timeout_ms", std::to_string(timeout_ms)}});
    _exit(1);
  }).detach();
}

bool LoadConfigLogged(const CliArgs& cli, Config* config) {
  try {
    *config = LoadConfig(cli.Require("--config"), cli.sets, CheckKafkaProperty);
    return true;
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "bad configuration", {{"error", e.what()}});
    return false;
  }
}

// A configuration librdkafka refuses while building a client (a TLS file it cannot read,
// settings that conflict) is a bad configuration: exit code 2, which deploy/ does not restart
// (RestartPreventExitStatus=2), since a restart cannot fix it. Checked before any broker is
// asked, so the command fails at once instead of after the start-up checks' waits.
// `embedded_broker`: the worker's consumers get the embedded broker's settings (kafka_conf.h). A
// `handoffd broker` found at a host:port is checked as a real cluster, which decides the same:
// the topic metadata client keeps librdkafka's 45 s session on both, and the embedded 6 s session
// only makes the worker's consumers' constraints (max.poll.interval.ms) looser than its.
bool CheckKafkaClientLogged(const Config& config, bool embedded_broker) {
  const std::string why = CheckKafkaClientConfig(config, embedded_broker);
  if (why.empty()) return true;
  Log(LogLevel::kError, "bad configuration", {{"error", "kafka.properties: " + why}});
  return false;
}

std::string DefaultInstance() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "host");
  return std::string(host) + "-" + std::to_string(getpid());
}

bool WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Turns CliError into a logged usage error.
template <typename Fn>
int Guarded(const char* command, Fn fn) {
  try {
    return fn();
  } catch (const CliError& e) {
    Log(LogLevel::kError, "bad arguments", {{"command", command}, {"error", e.what()}});
    return 2;
  }
}

std::string PartitionCount(int32_t count) {
  return count == CoPartitioning::kMissing ? "missing" : std::to_string(count);
}

// The worker joins events, acks and state partition p: with different counts, some runs' acks or
// state sit in a partition no worker reads with them. Logs one line naming the three topics and
// their counts and returns false when they differ, a topic is missing or metadata is unreadable.
bool CheckCoPartitioned(const Config& config, const std::string& bootstrap, bool real_cluster) {
  // A topic created a moment ago on a real cluster may not be in every broker's metadata yet;
  // the embedded broker created its topics before returning.
  const int missing_grace_ms = real_cluster ? 5000 : 0;
  CoPartitioning counts;
  std::string error;
  if (!ReadCoPartitioning(config, bootstrap, 15000, missing_grace_ms, &counts, &error)) {
    Log(LogLevel::kError, "cannot check topic partitions", {{"error", error}});
    return false;
  }
  if (counts.ok()) return true;
  Log(LogLevel::kError, "topics not co-partitioned",
      {{"events", PartitionCount(counts.events)},
       {"acks", PartitionCount(counts.acks)},
       {"state", PartitionCount(counts.state)},
       {"events_topic", config.topics.events},
       {"acks_topic", config.topics.acks},
       {"state_topic", config.topics.state},
       {"hint",
        "topics.events, topics.acks and topics.state need the same partition count (partition p "
        "of each holds the same runs); handoffd topics create makes a missing acks or state topic "
        "with the events topic's count"}});
  return false;
}

// Checks the configs of the topics the worker produces to on a real cluster
// (CheckTopicConfigs): one line at level error per problem, naming the topic, key, value and
// effect, and handoffd_topic_config_problem when `metrics` is given; a line at warn when they
// cannot be read. Returns the number of problems found.
size_t CheckTopicConfigsLogged(const Config& config, const std::string& bootstrap,
                               Metrics* metrics) {
  std::vector<TopicConfigProblem> problems;
  std::string error;
  const bool read = CheckTopicConfigs(config, bootstrap, 15000, &problems, &error);
  if (!read) {
    Log(LogLevel::kWarn, "topic configs not checked",
        {{"error", error},
         {"hint", "the account needs DescribeConfigs on handoffd's topics for this check"}});
  }
  for (const TopicConfigProblem& problem : problems) {
    Log(LogLevel::kError, "topic config problem",
        {{"topic", problem.topic},
         {"problem", problem.problem},
         {"key", problem.key},
         {"value", problem.value},
         {"effect", problem.effect}});
    if (metrics != nullptr) metrics->SetTopicConfigProblem(problem.topic, problem.problem);
  }
  if (read && problems.empty()) {
    Log(LogLevel::kInfo, "topic configs checked",
        {{"topics", std::to_string(ProducedTopics(config).size())}});
  }
  return problems.size();
}

}  // namespace

int RunCommand(const std::vector<std::string>& args) {
  return Guarded("run", [&] {
    CliArgs cli = ParseCliArgs(args, {"--config", "--instance"});
    cli.ExpectNoPositional("run", "--config FILE, --set and --instance");
    // The instance names the exactly_once transactional id (<group_id>-<instance>): two workers
    // started with an empty one (an unset variable in a unit file) would fence each other.
    if (std::optional<std::string> instance = cli.Get("--instance");
        instance.has_value() && instance->empty()) {
      throw CliError("--instance must not be empty (it names the worker's transactional id)");
    }
    Config config;
    if (!LoadConfigLogged(cli, &config)) return 2;
    LogKafkaProperties(config);
    if (!CheckKafkaClientLogged(config, config.kafka.bootstrap_servers == "embedded")) return 2;
    InstallSignalHandlers();
    StartShutdownWatchdog(config.kafka.shutdown_timeout_ms);
    std::string bootstrap = config.kafka.bootstrap_servers;
    std::unique_ptr<EmbeddedBroker> broker;
    std::string error;
    // The embedded broker: started here, or a `handoffd broker` recognised by its cluster id.
    bool embedded = false;
    if (bootstrap == "embedded") {
      broker = std::make_unique<EmbeddedBroker>();
      if (!broker->Start(AllTopics(config.topics), config.kafka.partitions, &error)) {
        Log(LogLevel::kError, "embedded broker failed", {{"error", error}});
        return 1;
      }
      bootstrap = broker->bootstrap();
      embedded = true;
    } else if (!CreateMissingTopics(config, bootstrap, 15000, &error, &embedded)) {
      // Not fatal: the account may lack CreateTopics rights while the topics exist.
      Log(LogLevel::kWarn, "topic creation skipped", {{"error", error}});
    }
    if (!CheckCoPartitioned(config, bootstrap, !embedded)) return 1;

    prometheus::Registry registry;
    Metrics metrics(registry, config);
    // Logged and exported, not fatal: the account running the worker may not be allowed to
    // change topic configs, and the worker runs correctly until the problem bites.
    if (!embedded) CheckTopicConfigsLogged(config, bootstrap, &metrics);
    Worker worker(config, bootstrap, cli.Get("--instance").value_or(DefaultInstance()), &metrics);
    if (embedded) worker.UseEmbeddedBrokerSettings();
    std::unique_ptr<MetricsServer> server = MetricsServer::Start(
        config.metrics.listen, registry, [&worker] { return worker.ready(); }, &error,
        [&worker] { return worker.Unhealthy(); });
    if (server == nullptr) {
      Log(LogLevel::kError, "metrics server failed",
          {{"listen", config.metrics.listen}, {"error", error}});
      return 1;
    }
    Log(LogLevel::kInfo, "metrics listening",
        {{"listen", config.metrics.listen}, {"port", std::to_string(server->port())}});
    g_worker_starting.store(true);
    if (!worker.Start(&error)) {
      Log(LogLevel::kError, "worker failed to start", {{"error", error}});
      return 1;
    }
    return worker.Run(g_stop);
  });
}

int BrokerCommand(const std::vector<std::string>& args) {
  return Guarded("broker", [&] {
    CliArgs cli =
        ParseCliArgs(args, {"--partitions", "--bootstrap-file", "--config", "--extra-topics"});
    cli.ExpectNoPositional("broker",
                           "--partitions, --bootstrap-file, --config, --set and --extra-topics");
    // Like every other command, --set and --set-env change the --config file's settings: without
    // one they would change nothing, silently.
    if (!cli.Get("--config") && !cli.sets.empty()) {
      throw CliError(
          "--set and --set-env need --config FILE (broker without --config uses the built-in "
          "defaults)");
    }
    Config config = DefaultConfig();
    if (cli.Get("--config") && !LoadConfigLogged(cli, &config)) return 2;
    // "4x" was read as 4. The bound is kafka.partitions' (config/README.md).
    const int64_t partitions = cli.GetInteger("--partitions", 1).value_or(config.kafka.partitions);
    if (partitions > (1 << 20)) {
      throw CliError("--partitions: must be 1..1048576, got " + std::to_string(partitions));
    }
    std::vector<std::string> topics = AllTopics(config.topics);
    // Extra topics (comma-separated), e.g. one state changelog per benchmark run.
    if (auto extra = cli.Get("--extra-topics")) {
      size_t start = 0;
      while (start <= extra->size()) {
        size_t comma = extra->find(',', start);
        if (comma == std::string::npos) comma = extra->size();
        if (comma > start) topics.push_back(extra->substr(start, comma - start));
        start = comma + 1;
      }
    }
    EmbeddedBroker broker;
    std::string error;
    if (!broker.Start(topics, static_cast<int32_t>(partitions), &error)) {
      Log(LogLevel::kError, "embedded broker failed", {{"error", error}});
      return 1;
    }
    if (auto file = cli.Get("--bootstrap-file")) {
      if (!WriteFileAtomically(*file, broker.bootstrap())) {
        Log(LogLevel::kError, "cannot write bootstrap file", {{"path", *file}});
        return 1;
      }
    }
    std::printf("%s\n", broker.bootstrap().c_str());
    std::fflush(stdout);
    InstallSignalHandlers();
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Log(LogLevel::kInfo, "embedded broker stopping");
    return 0;
  });
}

int TopicsCommand(const std::vector<std::string>& args) {
  return Guarded("topics", [&] {
    CliArgs cli = ParseCliArgs(args, {"--config"});
    if (cli.positional.size() != 1 || cli.positional[0] != "create") {
      throw CliError("usage: handoffd topics create --config FILE [--set k=v ...]");
    }
    Config config;
    if (!LoadConfigLogged(cli, &config)) return 2;
    if (!CheckKafkaClientLogged(config, false)) return 2;
    if (config.kafka.bootstrap_servers == "embedded") {
      Log(LogLevel::kError, "topics create needs a real cluster",
          {{"hint", "set kafka.bootstrap_servers; the embedded broker creates its own topics"}});
      return 2;
    }
    std::string error;
    bool embedded = false;
    if (!CreateMissingTopics(config, config.kafka.bootstrap_servers, 30000, &error, &embedded)) {
      Log(LogLevel::kError, "topic creation failed", {{"error", error}});
      return 1;
    }
    // Existing topics are left as they are; the deploy step is where their configs are fixed.
    // The embedded broker has no DescribeConfigs (nor topic configs).
    if (!embedded &&
        CheckTopicConfigsLogged(config, config.kafka.bootstrap_servers, nullptr) != 0) {
      return 1;
    }
    return 0;
  });
}

int GenerateCommand(const std::vector<std::string>& args) {
  return Guarded("generate", [&] {
    CliArgs cli = ParseCliArgs(args, {"--config", "--rate", "--duration", "--seed", "--count"});
    cli.ExpectNoPositional("generate",
                           "--config FILE, --set, --rate, --duration, --count and --seed");
    // Every number is checked whole: "10x" was read as 10 and "ten" as 0 (--duration and --count
    // 0 sent nothing and exited 0; a negative one ran until stopped).
    cli.Require("--rate");
    const double rate = *cli.GetNumber("--rate", 0);
    if (!(rate > 0)) throw CliError("--rate must be a positive number of events per second");
    const double duration_s = cli.GetNumber("--duration", 0).value_or(-1);
    const int64_t count = cli.GetInteger("--count", 0).value_or(-1);
    const auto seed = static_cast<uint64_t>(cli.GetInteger("--seed", 0).value_or(1));
    Config config;
    if (!LoadConfigLogged(cli, &config)) return 2;
    if (!CheckKafkaClientLogged(config, false)) return 2;
    if (config.kafka.bootstrap_servers == "embedded") {
      throw CliError("generate needs a broker address (--set kafka.bootstrap_servers=HOST:PORT)");
    }
    std::string error;
    rd_kafka_conf_t* conf = MakeKafkaConf(config, config.kafka.bootstrap_servers,
                                          {{"enable.idempotence", "true"},
                                           {"linger.ms", "5"},
                                           {"client.id", "handoffd-generate"},
                                           {"delivery.report.only.error", "true"}},
                                          &error);
    if (conf == nullptr) {
      Log(LogLevel::kError, "bad kafka properties", {{"error", error}});
      return 2;
    }
    // Records the broker never took (a broker gone mid-run, message.timeout.ms): counted, so
    // that the run ends with exit 1 instead of claiming what it did not deliver.
    std::atomic<int64_t> undelivered{0};
    rd_kafka_conf_set_opaque(conf, &undelivered);
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
      if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        static_cast<std::atomic<int64_t>*>(opaque)->fetch_add(1, std::memory_order_relaxed);
      }
    });
    LogLimiter produce_log(std::chrono::seconds(1));
    rd_kafka_t* producer = NewKafkaClient(RD_KAFKA_PRODUCER, conf, "producer", &error);
    if (producer == nullptr) {  // rd_kafka_new connects nowhere: only the settings can fail
      Log(LogLevel::kError, "bad configuration", {{"error", error}});
      return 2;
    }
    // Fetch the topics' metadata before the first record: otherwise the first records wait for
    // a refresh (about a second), which would show up as latency of wall-clock-stamped events.
    rd_kafka_topic_t* events_topic =
        rd_kafka_topic_new(producer, config.topics.events.c_str(), nullptr);
    rd_kafka_topic_t* acks_topic =
        rd_kafka_topic_new(producer, config.topics.acks.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(producer, 1, nullptr, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(md);
    }
    std::vector<std::string> workflows;
    for (const auto& [id, wf] : config.workflows) workflows.push_back(id);
    SyntheticFleet fleet(workflows, seed);
    InstallSignalHandlers();
    auto t0 = std::chrono::steady_clock::now();
    // Event times are the wall clock at t0 plus the steady time since: one clock read per
    // record (the generator shares the benchmark's CPUs with the worker it measures).
    const int64_t wall0_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    constexpr int64_t kBurst = 1024;
    int64_t sent = 0;
    int64_t acks = 0;
    FleetRecord record;
    while (!g_stop.load()) {
      const auto since_t0 = std::chrono::steady_clock::now() - t0;
      double elapsed = std::chrono::duration<double>(since_t0).count();
      if (duration_s >= 0 && elapsed >= duration_s) break;
      if (count >= 0 && sent >= count) break;
      int64_t due = static_cast<int64_t>(elapsed * rate) + 1;
      if (sent >= due) {
        rd_kafka_poll(producer, 1);
        continue;
      }
      // The records due by now (at most kBurst, so the duration is checked often whatever the
      // rate), with this one clock reading: at 500k records/s about 500 share a millisecond,
      // and the generator shares the benchmark's CPUs with the worker it measures.
      due = std::min(due, sent + kBurst);
      if (count >= 0) due = std::min(due, count);
      const int64_t now_ms =
          wall0_ms + std::chrono::duration_cast<std::chrono::milliseconds>(since_t0).count();
      for (; sent < due && !g_stop.load(); ++sent) {
        fleet.Next(now_ms, &record);
        // The handles made above: by name, librdkafka would look the topic up for every record.
        rd_kafka_topic_t* topic = record.is_ack ? acks_topic : events_topic;
        for (;;) {
          // The record's timestamp is the event time (librdkafka would read the clock again).
          rd_kafka_resp_err_t err =
              rd_kafka_producev(producer, RD_KAFKA_V_RKT(topic),
                                RD_KAFKA_V_KEY(record.run_id.data(), record.run_id.size()),
                                RD_KAFKA_V_VALUE(record.json.data(), record.json.size()),
                                RD_KAFKA_V_TIMESTAMP(now_ms),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
          if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(producer, 10);
            continue;
          }
          if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            undelivered.fetch_add(1, std::memory_order_relaxed);
            int64_t suppressed = 0;
            if (produce_log.Allow(std::chrono::steady_clock::now(), &suppressed)) {
              Log(LogLevel::kError, "produce failed",
                  {{"error", rd_kafka_err2str(err)}, {"suppressed", std::to_string(suppressed)}});
            }
          }
          break;
        }
        if (record.is_ack) ++acks;
        if (sent % 256 == 0)
          rd_kafka_poll(producer, 0);  // delivery reports: nothing to do per record
      }
    }
    rd_kafka_flush(producer, 30000);
    const int64_t unflushed = rd_kafka_outq_len(producer);
    rd_kafka_topic_destroy(events_topic);
    rd_kafka_topic_destroy(acks_topic);
    rd_kafka_destroy(producer);
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Log(LogLevel::kInfo, "generate done",
        {{"records", std::to_string(sent)},
         {"acks", std::to_string(acks)},
         {"runs", std::to_string(fleet.runs_started())},
         {"seconds", std::to_string(elapsed)}});
    const int64_t failed = undelivered.load();
    if (failed > 0 || unflushed > 0) {
      Log(LogLevel::kError, "records not delivered",
          {{"failed", std::to_string(failed)},
           {"unflushed", std::to_string(unflushed)},
           {"records", std::to_string(sent)}});
      return 1;
    }
    return 0;
  });
}

}  // namespace handoffd

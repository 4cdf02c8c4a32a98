// Tests for config/config_loader: the shipped config and the test catalog load, absent keys keep
// their defaults, every kind of mistake is reported with file, line and key, and --set overrides
// go through the same checks.
#include "config/config_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace handoffd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kSource = HANDOFFD_SOURCE_DIR;
const std::string kData = HANDOFFD_TEST_DATA;

// The ConfigError message for `yaml` (named "c.yaml"), or "no error".
std::string ErrorOf(const std::string& yaml, const std::vector<ConfigOverride>& overrides = {}) {
  try {
    LoadConfigFromString(yaml, "c.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

Config Load(const std::string& yaml, const std::vector<ConfigOverride>& overrides = {}) {
  return LoadConfigFromString(yaml, "c.yaml", overrides);
}

size_t Index(FailureClass c) { return static_cast<size_t>(c); }

TEST(ConfigLoaderTest, ShippedConfigLoadsWithItsCatalog) {
  Config c = LoadConfig(kSource + "/config/handoffd.yaml", {});
  ASSERT_EQ(c.workflows.size(), 4u);

  const WorkflowConfig* refund = c.FindWorkflow("refund-review");
  ASSERT_NE(refund, nullptr);
  EXPECT_EQ(refund->id, "refund-review");
  EXPECT_EQ(refund->severity, Severity::kP2);
  EXPECT_EQ(refund->owner_primary, "customer-success-lead");
  EXPECT_EQ(refund->owner_backup, "support-oncall");
  EXPECT_TRUE(refund->rollback_command.has_value());
  EXPECT_EQ(refund->blast_radius_users, 10);
  EXPECT_EQ(refund->blast_radius_jobs, 1);
  EXPECT_EQ(refund->amount_threshold, 500.0);
  EXPECT_EQ(refund->confidence_threshold, 0.9);
  EXPECT_EQ(refund->budget.cost_usd, 2.0);
  EXPECT_EQ(refund->budget.tool_calls, 40);
  EXPECT_EQ(refund->budget.duration_s, 1800);
  EXPECT_TRUE(refund->recommended_actions[Index(FailureClass::kLowConfidence)].has_value());
  EXPECT_FALSE(refund->recommended_actions[Index(FailureClass::kStalled)].has_value());

  const WorkflowConfig* ledger = c.FindWorkflow("ledger-close");
  ASSERT_NE(ledger, nullptr);
  EXPECT_EQ(ledger->severity, Severity::kP1);
  EXPECT_TRUE(ledger->objective.has_value());
  EXPECT_TRUE(ledger->owner_primary.has_value());
  EXPECT_FALSE(ledger->owner_backup.has_value());
  EXPECT_FALSE(ledger->rollback_command.has_value());
  EXPECT_EQ(ledger->blast_radius_users, 200);
  EXPECT_EQ(ledger->blast_radius_jobs, 1);

  ASSERT_NE(c.FindWorkflow("invoice-match"), nullptr);
  EXPECT_EQ(c.FindWorkflow("invoice-match")->severity, Severity::kP3);
  const WorkflowConfig* triage = c.FindWorkflow("support-triage");
  ASSERT_NE(triage, nullptr);
  EXPECT_EQ(triage->severity, Severity::kP2);
  EXPECT_EQ(triage->stall_timeout_s, 300);
  EXPECT_FALSE(triage->always_page);

  EXPECT_EQ(c.kafka.bootstrap_servers, "embedded");
  EXPECT_EQ(c.classes[Index(FailureClass::kPermissionDenied)].min_severity, Severity::kP2);
  ASSERT_FALSE(c.rules.empty());
  EXPECT_EQ(c.rules.front().codes, (std::vector<std::string>{"rate_limited", "quota_exceeded"}));
}

// The shipped file writes the defaults out; a drift between it and DefaultConfig() would mean
// the file documents values the binary does not use.
TEST(ConfigLoaderTest, ShippedConfigStatesTheBuiltInDefaults) {
  Config c = LoadConfig(kSource + "/config/handoffd.yaml", {});
  Config d = DefaultConfig();
  EXPECT_EQ(c.kafka.group_id, d.kafka.group_id);
  EXPECT_EQ(c.kafka.processing_guarantee, d.kafka.processing_guarantee);
  EXPECT_EQ(c.kafka.commit_interval_ms, d.kafka.commit_interval_ms);
  EXPECT_EQ(c.kafka.shutdown_timeout_ms, d.kafka.shutdown_timeout_ms);
  EXPECT_EQ(c.kafka.max_failed_commits, d.kafka.max_failed_commits);
  EXPECT_EQ(c.kafka.partitions, d.kafka.partitions);
  EXPECT_EQ(c.kafka.replication_factor, d.kafka.replication_factor);
  EXPECT_TRUE(c.kafka.properties.empty());
  for (int r = 0; r < kTopicRoleCount; ++r) {
    EXPECT_EQ(c.topics.ForRole(static_cast<TopicRole>(r)),
              d.topics.ForRole(static_cast<TopicRole>(r)));
  }
  EXPECT_EQ(c.topics.events, d.topics.events);
  EXPECT_EQ(c.topics.acks, d.topics.acks);
  EXPECT_EQ(c.topics.state, d.topics.state);
  EXPECT_EQ(c.metrics.listen, d.metrics.listen);
  EXPECT_EQ(c.time.allowed_lateness_ms, d.time.allowed_lateness_ms);
  EXPECT_EQ(c.time.max_future_ms, d.time.max_future_ms);
  EXPECT_EQ(c.time.max_past_ms, d.time.max_past_ms);
  EXPECT_EQ(c.limits.max_event_bytes, d.limits.max_event_bytes);
  EXPECT_EQ(c.limits.max_active_runs, d.limits.max_active_runs);
  EXPECT_EQ(c.limits.max_seen_event_ids_per_run, d.limits.max_seen_event_ids_per_run);
  EXPECT_EQ(c.limits.max_open_packets_per_run, d.limits.max_open_packets_per_run);
  EXPECT_EQ(c.limits.completed_run_retention_s, d.limits.completed_run_retention_s);
  EXPECT_EQ(c.limits.max_field_bytes, d.limits.max_field_bytes);
  EXPECT_EQ(c.defaults.severity, d.defaults.severity);
  EXPECT_EQ(c.defaults.confidence_threshold, d.defaults.confidence_threshold);
  EXPECT_EQ(c.defaults.max_retries, d.defaults.max_retries);
  EXPECT_EQ(c.defaults.stall_timeout_s, d.defaults.stall_timeout_s);
  EXPECT_EQ(c.defaults.p1_max_hold_s, d.defaults.p1_max_hold_s);
  EXPECT_EQ(c.defaults.p1_blast_radius_users, d.defaults.p1_blast_radius_users);
  for (int i = 0; i < kFailureClassCount; ++i) {
    EXPECT_EQ(c.defaults.recommended_actions[i], d.defaults.recommended_actions[i])
        << ToString(static_cast<FailureClass>(i));
  }
  for (int s = 0; s < kSeverityCount; ++s) {
    EXPECT_EQ(c.sla[s].min_score, d.sla[s].min_score);
    EXPECT_EQ(c.sla[s].first_response_s, d.sla[s].first_response_s);
    EXPECT_EQ(c.sla[s].ttl_s, d.sla[s].ttl_s);
    EXPECT_EQ(c.sla[s].escalation_route, d.sla[s].escalation_route);
    EXPECT_EQ(c.sla[s].decision_authority, d.sla[s].decision_authority);
  }
}

TEST(ConfigLoaderTest, TestCatalogHasWhatTheScenariosAssume) {
  Config c = LoadConfig(kData + "/test-catalog.yaml", {});
  ASSERT_EQ(c.workflows.size(), 2u);
  const WorkflowConfig* refund = c.FindWorkflow("refund-review");
  ASSERT_NE(refund, nullptr);
  EXPECT_EQ(refund->severity, Severity::kP2);
  EXPECT_TRUE(refund->owner_primary && refund->owner_backup && refund->rollback_command);
  const WorkflowConfig* ledger = c.FindWorkflow("ledger-close");
  ASSERT_NE(ledger, nullptr);
  EXPECT_EQ(ledger->severity, Severity::kP1);
  EXPECT_TRUE(ledger->owner_primary.has_value());
  EXPECT_FALSE(ledger->owner_backup.has_value());
  EXPECT_FALSE(ledger->rollback_command.has_value());
  EXPECT_FALSE(ledger->always_page);
  EXPECT_EQ(c.defaults.p1_max_hold_s, 60);
}

TEST(ConfigLoaderTest, EmptyDocumentGivesDefaultsWithNoCatalog) {
  Config c = Load("");
  Config d = DefaultConfig();
  EXPECT_TRUE(c.workflows.empty());
  EXPECT_EQ(c.rules.size(), d.rules.size());
  EXPECT_EQ(c.kafka.bootstrap_servers, "embedded");
  EXPECT_EQ(c.topics.page, "handoff.page");
  EXPECT_EQ(c.Sla(Severity::kP2).min_score, 85);
  EXPECT_EQ(Load("# only a comment\n").workflows.size(), 0u);
}

TEST(ConfigLoaderTest, AbsentKeysKeepTheirDefaults) {
  Config c = Load(
      "kafka: {group_id: g2}\n"
      "sla:\n"
      "  P1: {first_response_s: 120}\n"
      "defaults: {recommended_actions: {stalled: \"Ping the agent\"}}\n"
      "workflows:\n"
      "  bare:\n"
      "  partial: {owner: {backup: b}}\n");
  EXPECT_EQ(c.kafka.group_id, "g2");
  EXPECT_EQ(c.kafka.bootstrap_servers, "embedded");
  EXPECT_EQ(c.kafka.processing_guarantee, ProcessingGuarantee::kExactlyOnce);
  // A partly given band keeps the band's other defaults.
  EXPECT_EQ(c.Sla(Severity::kP1).first_response_s, 120);
  EXPECT_EQ(c.Sla(Severity::kP1).min_score, 90);
  EXPECT_EQ(c.Sla(Severity::kP1).ttl_s, 3600);
  EXPECT_EQ(c.Sla(Severity::kP1).escalation_route, "oncall + incident-captain");
  // One class's text replaced; the others keep the built-in text.
  EXPECT_EQ(c.defaults.recommended_actions[Index(FailureClass::kStalled)], "Ping the agent");
  EXPECT_EQ(c.defaults.recommended_actions[Index(FailureClass::kMissingInput)],
            DefaultConfig().defaults.recommended_actions[Index(FailureClass::kMissingInput)]);
  ASSERT_NE(c.FindWorkflow("bare"), nullptr);
  EXPECT_EQ(c.FindWorkflow("bare")->id, "bare");
  EXPECT_FALSE(c.FindWorkflow("bare")->severity.has_value());
  EXPECT_FALSE(c.FindWorkflow("partial")->owner_primary.has_value());
  EXPECT_EQ(c.FindWorkflow("partial")->owner_backup, "b");
}

TEST(ConfigLoaderTest, UserRulesComeBeforeTheBuiltInRules) {
  Config c = Load(
      "rules:\n"
      "  - {codes: [rate_limited], class: downstream_write_failure}\n"
      "  - codes: [timeout]\n"
      "    class: missing_input\n");
  size_t builtins = DefaultConfig().rules.size();
  ASSERT_EQ(c.rules.size(), builtins + 2);
  EXPECT_EQ(c.rules[0].codes, std::vector<std::string>{"rate_limited"});
  EXPECT_EQ(c.rules[0].failure_class, FailureClass::kDownstreamWriteFailure);
  // "timeout" is built in as downstream_write_failure; the user's rule is found first.
  EXPECT_EQ(c.rules[1].codes, std::vector<std::string>{"timeout"});
  EXPECT_EQ(c.rules[1].failure_class, FailureClass::kMissingInput);
  EXPECT_EQ(c.rules[2].codes, DefaultConfig().rules[0].codes);
}

TEST(ConfigLoaderTest, PropertyValuesOfAnyScalarTypeAreKeptAsText) {
  Config c = Load(
      "kafka:\n"
      "  properties:\n"
      "    linger.ms: 5\n"
      "    enable.idempotence: true\n"
      "    security.protocol: SASL_SSL\n");
  EXPECT_EQ(c.kafka.properties.at("linger.ms"), "5");
  EXPECT_EQ(c.kafka.properties.at("enable.idempotence"), "true");
  EXPECT_EQ(c.kafka.properties.at("security.protocol"), "SASL_SSL");
}

TEST(ConfigLoaderTest, PropertyThatDuplicatesAConfigKeyIsAnError) {
  EXPECT_EQ(ErrorOf("kafka:\n  properties:\n    bootstrap.servers: h:9092\n"),
            "c.yaml:3: kafka.properties.bootstrap.servers: set kafka.bootstrap_servers instead");
  EXPECT_EQ(ErrorOf("", {"kafka.properties.group.id=g"}),
            "--set:kafka.properties.group.id: set kafka.group_id instead");
}

// The commands pass librdkafka's check (processor/live/kafka_conf.h); a fake stands in here.
TEST(ConfigLoaderTest, PropertyTheClientRejectsIsAnErrorAtItsLine) {
  PropertyCheck check = [](const std::string& key, const std::string& value) -> std::string {
    if (value == "hunter2") ADD_FAILURE() << "the check must see the value, not report it";
    return key == "security.protocl" ? "No such configuration property: \"" + key + "\"" : "";
  };
  auto error_of = [&](const std::string& yaml, const std::vector<ConfigOverride>& sets) {
    try {
      LoadConfigFromString(yaml, "c.yaml", sets, check);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of("kafka:\n  group_id: g\n  properties:\n    linger.ms: 5\n"
                     "    security.protocl: SASL_SSL\n",
                     {}),
            "c.yaml:5: kafka.properties.security.protocl: No such configuration property: "
            "\"security.protocl\"");
  EXPECT_EQ(error_of("", {"kafka.properties.security.protocl=SSL"}),
            "--set:kafka.properties.security.protocl: No such configuration property: "
            "\"security.protocl\"");
  // Keys handoffd sets itself keep their own message.
  EXPECT_EQ(error_of("kafka: {properties: {group.id: g}}\n", {}),
            "c.yaml:1: kafka.properties.group.id: set kafka.group_id instead");
  EXPECT_EQ(error_of("kafka: {properties: {security.protocol: SSL}}\n", {}), "no error");
}

TEST(ConfigLoaderTest, AtLeastOnceIsAccepted) {
  EXPECT_EQ(Load("kafka: {processing_guarantee: at_least_once}\n").kafka.processing_guarantee,
            ProcessingGuarantee::kAtLeastOnce);
}

// Each error names the file, the 1-based line and the dotted key.

TEST(ConfigLoaderTest, UnknownTopLevelKeyIsAnError) {
  EXPECT_THAT(ErrorOf("kafka: {}\nworkflow:\n  x: {}\n"),
              HasSubstr("c.yaml:2: workflow: unknown key (expected one of: kafka, topics"));
}

TEST(ConfigLoaderTest, MisspelledNestedKeyIsAnErrorNotADefault) {
  EXPECT_EQ(ErrorOf("workflows:\n"
                    "  refund-review:\n"
                    "    severity: P2\n"
                    "    owner:\n"
                    "      primry: alice\n"),
            "c.yaml:5: workflows.refund-review.owner.primry: unknown key (expected one of: "
            "primary, backup)");
  EXPECT_THAT(ErrorOf("sla:\n  P2: {min_scor: 80}\n"), HasSubstr("c.yaml:2: sla.P2.min_scor:"));
  EXPECT_THAT(ErrorOf("sla:\n  P4: {min_score: 80}\n"), HasSubstr("c.yaml:2: sla.P4: unknown key"));
  EXPECT_THAT(ErrorOf("limits:\n  max_events_bytes: 10\n"),
              HasSubstr("c.yaml:2: limits.max_events_bytes: unknown key"));
}

TEST(ConfigLoaderTest, RepeatedKeyIsAnError) {
  EXPECT_EQ(ErrorOf("time:\n  allowed_lateness_ms: 1\n  allowed_lateness_ms: 2\n"),
            "c.yaml:3: time.allowed_lateness_ms: duplicate key");
}

TEST(ConfigLoaderTest, StringWhereANumberIsExpectedIsAnError) {
  EXPECT_EQ(ErrorOf("defaults:\n  severity: P2\n  stall_timeout_s: ten\n"),
            "c.yaml:3: defaults.stall_timeout_s: expected an integer, got \"ten\"");
  // Quoted digits are a string too.
  EXPECT_EQ(ErrorOf("defaults:\n  max_retries: \"3\"\n"),
            "c.yaml:2: defaults.max_retries: expected an integer, got a string");
  // A tag does not make a number either.
  EXPECT_EQ(ErrorOf("defaults:\n  max_retries: !!str 3\n"),
            "c.yaml:2: defaults.max_retries: expected an integer, got a string");
  EXPECT_EQ(ErrorOf("workflows:\n  w: {always_page: !!str true}\n"),
            "c.yaml:2: workflows.w.always_page: expected true or false, got a string");
  EXPECT_EQ(ErrorOf("defaults:\n  confidence_threshold: !x 0.5\n"),
            "c.yaml:2: defaults.confidence_threshold: expected a number, got a scalar tagged "
            "\"!x\" (write it plain, without a tag)");
  EXPECT_EQ(ErrorOf("kafka:\n  partitions: 2.5\n"),
            "c.yaml:2: kafka.partitions: expected an integer, got \"2.5\"");
  EXPECT_THAT(ErrorOf("workflows:\n  w:\n    budget: {cost_usd: lots}\n"),
              HasSubstr("c.yaml:3: workflows.w.budget.cost_usd: expected a number"));
  EXPECT_THAT(ErrorOf("workflows:\n  w:\n    always_page: maybe\n"),
              HasSubstr("c.yaml:3: workflows.w.always_page: expected true or false"));
}

TEST(ConfigLoaderTest, MapOrListWhereAScalarIsExpectedIsAnError) {
  EXPECT_EQ(ErrorOf("kafka:\n  group_id: [a, b]\n"),
            "c.yaml:2: kafka.group_id: expected a string, got a list");
  EXPECT_EQ(ErrorOf("topics: handoff.page\n"), "c.yaml:1: topics: expected a map, got a scalar");
  EXPECT_EQ(ErrorOf("workflows:\n  w:\n    objective:\n"),
            "c.yaml:3: workflows.w.objective: expected a string, got nothing");
}

TEST(ConfigLoaderTest, NegativeDurationIsAnError) {
  EXPECT_EQ(ErrorOf("time: {allowed_lateness_ms: 0}\nworkflows:\n  w:\n    stall_timeout_s: -5\n"),
            "c.yaml:4: workflows.w.stall_timeout_s: must be at least 1, got -5");
  EXPECT_EQ(ErrorOf("time:\n  allowed_lateness_ms: -1\n"),
            "c.yaml:2: time.allowed_lateness_ms: must be at least 0, got -1");
  // Names and ids are cut at 256 bytes; a field bound below that would cut text shorter than ids.
  EXPECT_EQ(ErrorOf("limits:\n  max_field_bytes: 100\n"),
            "c.yaml:2: limits.max_field_bytes: must be at least 256, got 100");
  EXPECT_THAT(ErrorOf("sla:\n  P3:\n    ttl_s: -60\n"),
              HasSubstr("c.yaml:3: sla.P3.ttl_s: must be"));
}

TEST(ConfigLoaderTest, ConfidenceThresholdOutsideZeroToOneIsAnError) {
  EXPECT_EQ(ErrorOf("defaults:\n  confidence_threshold: 1.5\n"),
            "c.yaml:2: defaults.confidence_threshold: must be 0..1, got 1.5");
  EXPECT_EQ(ErrorOf("workflows:\n  w: {confidence_threshold: -0.1}\n"),
            "c.yaml:2: workflows.w.confidence_threshold: must be 0..1, got -0.1");
  EXPECT_THAT(ErrorOf("defaults:\n  confidence_threshold: .nan\n"),
              HasSubstr("c.yaml:2: defaults.confidence_threshold: must be 0..1"));
}

TEST(ConfigLoaderTest, MinScoreOutsideZeroToHundredIsAnError) {
  EXPECT_EQ(ErrorOf("sla:\n  P1: {min_score: 101}\n"),
            "c.yaml:2: sla.P1.min_score: must be 0..100, got 101");
}

TEST(ConfigLoaderTest, PartitionsBelowOneIsAnError) {
  EXPECT_EQ(ErrorOf("kafka:\n  group_id: g\n  partitions: 0\n"),
            "c.yaml:3: kafka.partitions: must be 1..1048576, got 0");
}

TEST(ConfigLoaderTest, SeverityOtherThanP1ToP3IsAnError) {
  EXPECT_EQ(
      ErrorOf("workflows:\n  w:\n    severity: P0\n"),
      "c.yaml:3: workflows.w.severity: \"P0\" is not a severity (expected one of: P1, P2, P3)");
  EXPECT_THAT(ErrorOf("classes:\n  stalled: {min_severity: high}\n"),
              HasSubstr("c.yaml:2: classes.stalled.min_severity: \"high\" is not a severity"));
}

TEST(ConfigLoaderTest, ClassNameNotInTheContractIsAnError) {
  EXPECT_THAT(ErrorOf("classes:\n  timeouts: {min_severity: P1}\n"),
              HasSubstr("c.yaml:2: classes.timeouts: \"timeouts\" is not a failure class"));
  EXPECT_THAT(
      ErrorOf("defaults:\n  recommended_actions:\n    stall: x\n"),
      HasSubstr("c.yaml:3: defaults.recommended_actions.stall: \"stall\" is not a failure"));
  EXPECT_THAT(ErrorOf("rules:\n  - {codes: [x], class: downstream}\n"),
              HasSubstr("c.yaml:2: rules[0].class: \"downstream\" is not a failure class"));
  // Known, but not a class an error code can produce.
  EXPECT_THAT(
      ErrorOf("rules:\n  - {codes: [x], class: stalled}\n"),
      HasSubstr("c.yaml:2: rules[0].class: class \"stalled\" is not triggered by error codes"));
}

TEST(ConfigLoaderTest, RuleWithoutCodesIsAnError) {
  EXPECT_EQ(ErrorOf("rules:\n  - {codes: [a], class: missing_input}\n"
                    "  - codes: []\n    class: missing_input\n"),
            "c.yaml:3: rules[1].codes: must list at least one code");
  EXPECT_EQ(ErrorOf("rules:\n  - {class: missing_input}\n"),
            "c.yaml:2: rules[0].codes: missing (a rule needs codes)");
  EXPECT_EQ(ErrorOf("rules:\n  - codes: [a, '']\n    class: missing_input\n"),
            "c.yaml:2: rules[0].codes[1]: must not be empty");
  EXPECT_EQ(ErrorOf("rules: {codes: [a], class: missing_input}\n"),
            "c.yaml:1: rules: expected a list of rules, got a map");
}

TEST(ConfigLoaderTest, UnknownProcessingGuaranteeIsAnError) {
  EXPECT_EQ(ErrorOf("kafka:\n  processing_guarantee: exactly-once\n"),
            "c.yaml:2: kafka.processing_guarantee: \"exactly-once\" is not exactly_once or "
            "at_least_once");
}

TEST(ConfigLoaderTest, TopicMistakesAreErrors) {
  EXPECT_THAT(ErrorOf("topics:\n  page: \"handoff page\"\n"),
              HasSubstr("c.yaml:2: topics.page: \"handoff page\" is not a valid Kafka topic name"));
  EXPECT_EQ(ErrorOf("topics:\n  dlq: agent.events\n"),
            "c.yaml:2: topics.dlq: topic \"agent.events\" is also used for topics.events");
}

// check-config must refuse what `run` cannot bind: the metrics server takes numeric hosts only.
TEST(ConfigLoaderTest, ListenAddressMustBeWhatTheMetricsServerCanBind) {
  for (const char* bad : {"localhost", "localhost:9464", ":0", "not a host:80",
                          "127.0.0.1:", "127.0.0.1:70000", "::1:9464", "[localhost]:9464"}) {
    EXPECT_EQ(ErrorOf(std::string("metrics:\n  listen: \"") + bad + "\"\n"),
              std::string("c.yaml:2: metrics.listen: \"") + bad +
                  "\" is not host:port with a numeric IPv4 or [IPv6] host and a port 0..65535")
        << bad;
  }
  for (const char* good : {"127.0.0.1:9464", "0.0.0.0:0", "[::1]:9464", "[::]:65535"}) {
    EXPECT_EQ(Load(std::string("metrics: {listen: \"") + good + "\"}\n").metrics.listen, good);
  }
  EXPECT_THAT(ErrorOf("", {"metrics.listen=localhost:9464"}),
              HasSubstr("--set:metrics.listen: \"localhost:9464\" is not host:port"));
}

TEST(ConfigLoaderTest, UnparsableYamlReportsTheParserLine) {
  EXPECT_THAT(ErrorOf("kafka:\n  group_id: g\n  properties: {a: 1\nmetrics: {}\n"),
              HasSubstr("c.yaml:4: (yaml): "));
  EXPECT_THAT(ErrorOf("time:\n  allowed_lateness_ms: 1\n   x: 2\n"),
              HasSubstr("c.yaml:3: (yaml): "));
  EXPECT_EQ(ErrorOf("- a\n- b\n"), "c.yaml:1: (document): expected a map of sections, got a list");
}

// Config text ends up in packet JSON and Prometheus labels, which must be UTF-8.
TEST(ConfigLoaderTest, TextThatIsNotUtf8IsAnErrorNamingTheKey) {
  EXPECT_EQ(ErrorOf("workflows:\n  caf\xe9: {severity: P2}\n"),
            "c.yaml:2: workflows.caf\\xe9: not valid UTF-8");
  EXPECT_EQ(ErrorOf("workflows:\n  w:\n    objective: \"caf\xe9 au lait\"\n"),
            "c.yaml:3: workflows.w.objective: not valid UTF-8");
  EXPECT_EQ(ErrorOf("rules:\n  - {codes: [ok, \"b\xc3\"], class: missing_input}\n"),
            "c.yaml:2: rules[0].codes[1]: not valid UTF-8");
  EXPECT_EQ(ErrorOf("sla:\n  P1: {escalation_route: \"\xed\xa0\x80\"}\n"),  // a surrogate
            "c.yaml:2: sla.P1.escalation_route: not valid UTF-8");
  EXPECT_EQ(ErrorOf("kafka:\n  group_\xff: g\n"), "c.yaml:2: kafka.group_\\xff: not valid UTF-8");
  // Property values may be secrets: the key is named, the value is not shown.
  std::string err = ErrorOf("kafka:\n  properties:\n    sasl.password: \"hunter\xe9\"\n");
  EXPECT_EQ(err, "c.yaml:3: kafka.properties.sasl.password: not valid UTF-8");
  EXPECT_EQ(ErrorOf("kafka:\n  properties:\n    client.\xe9: x\n"),
            "c.yaml:3: kafka.properties.client.\\xe9: not valid UTF-8");
  EXPECT_EQ(ErrorOf("", {"workflows.w.owner.primary=al\xe9"}),
            "--set:workflows.w.owner.primary: not valid UTF-8");
  EXPECT_EQ(ErrorOf("", {"workflows.caf\xe9.severity=P1"}),
            "--set:workflows.caf\\xe9.severity: not valid UTF-8");
  // Valid multi-byte text is fine.
  EXPECT_EQ(Load("workflows:\n  caf\xc3\xa9: {objective: \"\xe2\x82\xac 5\"}\n")
                .FindWorkflow("caf\xc3\xa9")
                ->objective,
            "\xe2\x82\xac 5");
}

// YAML::Load reads the first document only: what follows a "---" would silently not apply.
TEST(ConfigLoaderTest, SecondYamlDocumentIsAnErrorAtItsStart) {
  EXPECT_EQ(ErrorOf("kafka: {group_id: g}\n---\ndefaults: {severity: P1}\n"),
            "c.yaml:2: (yaml): a second YAML document starts here; the config is one document "
            "(remove the \"---\" and merge it into the first)");
  EXPECT_THAT(ErrorOf("---\nkafka: {group_id: g}\n# two\n--- \n"), HasSubstr("c.yaml:4: (yaml):"));
  // An explicit start of the one document, and an explicit end, are fine.
  EXPECT_EQ(Load("---\nkafka: {group_id: g}\n...\n").kafka.group_id, "g");
}

TEST(ConfigLoaderTest, MissingFileIsAnError) {
  try {
    LoadConfig(kData + "/no-such-config.yaml", {});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no-such-config.yaml: cannot open: No such file"));
  }
  EXPECT_THROW(LoadConfig(kData, {}), ConfigError);  // a directory
}

TEST(ConfigLoaderTest, SetOnTopOfAFileIsNamedAsTheSetNotAFileLine) {
  try {
    LoadConfig(kData + "/test-catalog.yaml", {"workflows.ledger-close.severity=P9"});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("--set:workflows.ledger-close.severity: \"P9\""));
  }
}

TEST(ConfigLoaderTest, PropertyValuesNeverAppearInErrors) {
  std::string err = ErrorOf("kafka:\n  properties:\n    sasl.password: [hunter2]\n");
  EXPECT_THAT(err, HasSubstr("c.yaml:3: kafka.properties.sasl.password: expected a scalar"));
  EXPECT_THAT(err, Not(HasSubstr("hunter2")));
  err = ErrorOf("", {"kafka.properties.sasl.password={hunter2: 1}"});
  EXPECT_THAT(err, HasSubstr("--set:kafka.properties.sasl.password: expected a scalar"));
  EXPECT_THAT(err, Not(HasSubstr("hunter2")));
  // An unquoted " #" would start a YAML comment and silently cut the password short.
  err = ErrorOf("", {"kafka.properties.sasl.password=hunter2 #x"});
  EXPECT_EQ(
      err,
      "--set:kafka.properties.sasl.password: value contains a YAML comment (\" #\"); quote it or "
      "use --set-env");
  EXPECT_EQ(Load("", {"kafka.properties.sasl.password=\"hunter2 #x\""})
                .kafka.properties.at("sasl.password"),
            "hunter2 #x");
  // "&x" and "!x" are YAML anchor and tag syntax: unquoted, they would silently vanish.
  for (const char* value : {"&hunter2 x", "!hunter2 x", "[&a x]", "{a: !t x}", "!!str 5"}) {
    err = ErrorOf("", {std::string("kafka.properties.sasl.password=") + value});
    EXPECT_EQ(err,
              "--set:kafka.properties.sasl.password: value contains a YAML anchor (\"&\") or tag "
              "(\"!\"); quote it or use --set-env")
        << value;
  }
  EXPECT_EQ(Load("", {"kafka.properties.sasl.password='&hunter2 x'"})
                .kafka.properties.at("sasl.password"),
            "&hunter2 x");
  EXPECT_EQ(Load("", {"workflows.w.objective=a&b !c"}).FindWorkflow("w")->objective, "a&b !c");
  err = ErrorOf("", {"kafka.properties.sasl.password=[hunter2"});
  EXPECT_THAT(err, HasSubstr("--set:kafka.properties.sasl.password: value is not valid YAML"));
  EXPECT_THAT(err, Not(HasSubstr("hunter2")));
}

// --set

TEST(ConfigLoaderTest, SetReplacesAScalar) {
  Config c = Load("kafka:\n  bootstrap_servers: embedded\n",
                  {"kafka.bootstrap_servers=127.0.0.1:9092", "defaults.max_retries=5"});
  EXPECT_EQ(c.kafka.bootstrap_servers, "127.0.0.1:9092");
  EXPECT_EQ(c.defaults.max_retries, 5);
}

TEST(ConfigLoaderTest, SetReachesNestedKeysAndCreatesMissingOnes) {
  Config c = LoadConfig(kSource + "/config/handoffd.yaml",
                        {"workflows.refund-review.budget.cost_usd=3",
                         "workflows.new-flow.severity=P1", "sla.P3.ttl_s=86400"});
  EXPECT_EQ(c.FindWorkflow("refund-review")->budget.cost_usd, 3.0);
  // Siblings of the overridden key are untouched.
  EXPECT_EQ(c.FindWorkflow("refund-review")->budget.tool_calls, 40);
  ASSERT_NE(c.FindWorkflow("new-flow"), nullptr);
  EXPECT_EQ(c.FindWorkflow("new-flow")->severity, Severity::kP1);
  EXPECT_EQ(c.Sla(Severity::kP3).ttl_s, 86400);
  EXPECT_EQ(c.Sla(Severity::kP3).min_score, 70);
}

TEST(ConfigLoaderTest, SetOfAPropertyKeepsTheDotsInItsName) {
  Config c =
      Load("kafka:\n  properties: {security.protocol: SASL_SSL}\n",
           {"kafka.properties.sasl.password=s3cret", "kafka.properties.sasl.mechanism=PLAIN"});
  EXPECT_EQ(c.kafka.properties.size(), 3u);
  EXPECT_EQ(c.kafka.properties.at("sasl.password"), "s3cret");
  EXPECT_EQ(c.kafka.properties.at("sasl.mechanism"), "PLAIN");
  EXPECT_EQ(c.kafka.properties.at("security.protocol"), "SASL_SSL");
}

TEST(ConfigLoaderTest, SetMatchesAWorkflowIdThatContainsDots) {
  Config c =
      Load("workflows:\n  billing.v2: {severity: P3}\n", {"workflows.billing.v2.severity=P1"});
  ASSERT_EQ(c.workflows.size(), 1u);
  EXPECT_EQ(c.FindWorkflow("billing.v2")->severity, Severity::kP1);
}

TEST(ConfigLoaderTest, SetValueIsYaml) {
  Config c = Load("", {"rules=[{codes: [rate_limited], class: downstream_write_failure}]",
                       "workflows.w.owner={primary: a, backup: b}"});
  EXPECT_EQ(c.rules.front().codes, std::vector<std::string>{"rate_limited"});
  EXPECT_EQ(c.FindWorkflow("w")->owner_backup, "b");
}

TEST(ConfigLoaderTest, SetOfAnUnknownKeyFails) {
  EXPECT_EQ(ErrorOf("", {"kafka.bootstrap_server=x:1"}),
            "--set:kafka.bootstrap_server: unknown key (expected one of: bootstrap_servers, "
            "group_id, processing_guarantee, properties, commit_interval_ms, shutdown_timeout_ms, "
            "max_failed_commits, pipeline_threads, partitions, replication_factor)");
  EXPECT_THAT(ErrorOf("", {"workflows.w.budget.dollars=3"}),
              HasSubstr("--set:workflows.w.budget.dollars: unknown key"));
}

TEST(ConfigLoaderTest, SetValuesGetTheSameChecksAsTheFile) {
  EXPECT_EQ(ErrorOf("kafka: {partitions: 3}\n", {"kafka.partitions=0"}),
            "--set:kafka.partitions: must be 1..1048576, got 0");
  EXPECT_EQ(ErrorOf("", {"kafka.pipeline_threads=0"}),
            "--set:kafka.pipeline_threads: must be 1..64, got 0");
  EXPECT_EQ(ErrorOf("", {"workflows.w={severity: P7}"}),
            "--set:workflows.w.severity: \"P7\" is not a severity (expected one of: P1, P2, P3)");
  // A file error outside any --set key still names the file line.
  EXPECT_EQ(ErrorOf("kafka: {partitions: 0}\n", {"kafka.group_id=g"}),
            "c.yaml:1: kafka.partitions: must be 1..1048576, got 0");
}

// A --set that only walks through a map of the file does not make the file's mistakes its own,
// and a mistake the --set made is not blamed on the file.
TEST(ConfigLoaderTest, ErrorsAreBlamedOnTheSourceThatMadeThem) {
  EXPECT_EQ(ErrorOf("kafka:\n  group_id: a\nkafka:\n  group_id: b\n", {"kafka.group_id=c"}),
            "c.yaml:3: kafka: duplicate key");
  EXPECT_EQ(
      ErrorOf("workflows:\n  w: {severity: P2}\nworkflows: {}\n", {"workflows.w.severity=P1"}),
      "c.yaml:3: workflows: duplicate key");
  EXPECT_EQ(ErrorOf("topics:\n  events: in\n", {"topics.acks=in"}),
            "--set:topics.acks: topic \"in\" is also used for topics.events");
  EXPECT_EQ(ErrorOf("topics:\n  acks: x\n  events: in\n", {"topics.acks=in"}),
            "--set:topics.acks: topic \"in\" is also used for topics.events");
  // Both in the file: the later one is named.
  EXPECT_EQ(ErrorOf("topics:\n  events: in\n  acks: in\n"),
            "c.yaml:3: topics.acks: topic \"in\" is also used for topics.events");
}

TEST(ConfigLoaderTest, MalformedSetIsAnError) {
  EXPECT_EQ(ErrorOf("", {"kafka.group_id"}), "--set: expected key.path=value");
  EXPECT_EQ(ErrorOf("", {"kafka..group_id=x"}), "--set:kafka..group_id: empty segment in key");
  EXPECT_EQ(ErrorOf("kafka: {group_id: g}\n", {"kafka.group_id.x=1"}),
            "--set:kafka.group_id.x: kafka.group_id is not a map");
  // The --set creates kafka.group_id as a map; the error names the key it broke.
  EXPECT_EQ(ErrorOf("", {"kafka.group_id.x=1"}),
            "--set:kafka.group_id: expected a string, got a map");
}

// --set-env (ConfigOverride::Literal): the environment variable's content, as a string

TEST(ConfigLoaderTest, SetEnvValueIsKeptByteForByteWithoutYamlParsing) {
  const std::vector<std::string> values = {
      "*star", "&anchor x", "!tag x",   "%pct",       "@at",   "[bracket", "{brace",
      "|pipe", ">fold",     "pa ss #x", "key: value", "null",  "~",        "\"abc\"",
      "'abc'", " abc ",     "a\nb\n",   "-",          "#hash", "tab\tin",  "back\\slash",
      "true",  "010",       "1e3",      "caf\xc3\xa9"};
  for (const std::string& v : values) {
    Config c = Load("kafka: {properties: {sasl.password: from-file}}\n",
                    {ConfigOverride::Literal("kafka.properties.sasl.password", v, "PW")});
    EXPECT_EQ(c.kafka.properties.at("sasl.password"), v);
    EXPECT_EQ(Load("", {ConfigOverride::Literal("workflows.w.objective", v, "OBJ")})
                  .FindWorkflow("w")
                  ->objective,
              v);
  }
}

TEST(ConfigLoaderTest, SetEnvAndSetApplyInCommandLineOrder) {
  EXPECT_EQ(
      Load("", {"kafka.group_id=first", ConfigOverride::Literal("kafka.group_id", "env", "G")})
          .kafka.group_id,
      "env");
  EXPECT_EQ(Load("", {ConfigOverride::Literal("kafka.group_id", "env", "G"), "kafka.group_id=last"})
                .kafka.group_id,
            "last");
}

TEST(ConfigLoaderTest, SetEnvErrorsNameTheKeyAndVariableNeverTheValue) {
  // A string where a number is expected: the same check as a quoted --set value.
  std::string err = ErrorOf("", {ConfigOverride::Literal("kafka.partitions", "12", "PARTS")});
  EXPECT_EQ(err, "--set-env:kafka.partitions=PARTS: expected an integer, got a string");
  // Messages that quote a value show the variable's name in its place.
  err = ErrorOf("", {ConfigOverride::Literal("kafka.processing_guarantee", "s3cret!", "PG")});
  EXPECT_EQ(err,
            "--set-env:kafka.processing_guarantee=PG: \"(value of PG)\" is not exactly_once or "
            "at_least_once");
  err = ErrorOf("", {ConfigOverride::Literal("metrics.listen", "hunter2", "LISTEN")});
  EXPECT_THAT(err, HasSubstr("--set-env:metrics.listen=LISTEN: "));
  EXPECT_THAT(err, Not(HasSubstr("hunter2")));
  // A property the client rejects: the check sees the value, the message does not.
  PropertyCheck check = [](const std::string&, const std::string& value) -> std::string {
    return value == "hunter2" ? "bad value" : "";
  };
  try {
    LoadConfigFromString(
        "", "c.yaml", {ConfigOverride::Literal("kafka.properties.sasl.password", "hunter2", "PW")},
        check);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "--set-env:kafka.properties.sasl.password=PW: bad value");
  }
  EXPECT_EQ(ErrorOf("", {ConfigOverride::Literal("kafka..x", "hunter2", "PW")}),
            "--set-env:kafka..x: empty segment in key");
  EXPECT_EQ(ErrorOf("", {ConfigOverride::Literal("kafka.group_id", "", "EMPTY")}),
            "--set-env:kafka.group_id=EMPTY: must not be empty");
}

}  // namespace
}  // namespace handoffd

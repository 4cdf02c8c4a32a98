// Metrics: observer calls in, Prometheus text exposition out. Each test reads the exposition the
// way Prometheus would (series text -> value) and checks what a dashboard or alert would see.
#include "metrics/metrics.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "metrics/metrics_server.h"
#include "processor/pipeline.h"

namespace handoffd {
namespace {

// Series ("name{label=\"v\",...}") -> sample value, from the text exposition.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

Config CatalogConfig() {
  Config config = DefaultConfig();
  WorkflowConfig wf;
  wf.id = "refund-review";
  wf.severity = Severity::kP2;
  config.workflows.emplace(wf.id, wf);
  wf = WorkflowConfig();
  wf.id = "ledger-close";
  wf.blast_radius_users = 5000;  // at or over p1_blast_radius_users: its packets are P1
  config.workflows.emplace(wf.id, wf);
  config.classes[static_cast<size_t>(FailureClass::kPermissionDenied)].min_severity = Severity::kP1;
  return config;
}

class MetricsTest : public ::testing::Test {
 protected:
  std::map<std::string, double> Scrape() { return Samples(SerializeText(registry_)); }
  std::string Text() { return SerializeText(registry_); }

  Config config_ = CatalogConfig();
  prometheus::Registry registry_;
  Metrics metrics_{registry_, config_};
};

TEST_F(MetricsTest, EveryContractFamilyIsExposedWithHelpAndType) {
  // Families with a label from the catalog or an enum are visible before the first event.
  metrics_.OnRunCompleted("refund-review", Outcome::kSuccess);
  metrics_.OnIncidentOpened("refund-review", FailureClass::kMissingInput, Severity::kP2);
  metrics_.OnHandoff("refund-review", HandoffKind::kException, Severity::kP2, Gate::kNotify);
  metrics_.OnSlaBreach("refund-review", Severity::kP2, 2);
  metrics_.OnInvalidEvent("invalid_json");
  metrics_.SetConsumerLag("agent.events", 0, 1);
  metrics_.SetWatermarkDelay(0, 1);
  metrics_.OnDeliveryFailure("handoff.page");
  const std::string text = Text();
  for (const char* family : {"handoffd_runs_started_total counter",
                             "handoffd_runs_completed_total counter",
                             "handoffd_exceptions_total counter",
                             "handoffd_handoffs_total counter",
                             "handoffd_time_to_ack_seconds histogram",
                             "handoffd_sla_breaches_total counter",
                             "handoffd_packets_expired_total counter",
                             "handoffd_hcs_score histogram",
                             "handoffd_missing_fields_total counter",
                             "handoffd_events_total counter",
                             "handoffd_events_invalid_total counter",
                             "handoffd_active_runs gauge",
                             "handoffd_open_packets gauge",
                             "handoffd_limit_hits_total counter",
                             "handoffd_consumer_lag_records gauge",
                             "handoffd_watermark_delay_seconds gauge",
                             "handoffd_records_produced_total counter",
                             "handoffd_delivery_failures_total counter",
                             "handoffd_commit_duration_seconds histogram",
                             "handoffd_commit_failures_total counter",
                             "handoffd_restore_duration_seconds histogram",
                             "handoffd_restored_records_total counter",
                             "handoffd_assigned_partitions gauge",
                             "handoffd_build_info gauge"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + family), std::string::npos) << family;
  }
  EXPECT_NE(text.find("# HELP handoffd_time_to_ack_seconds Seconds from"), std::string::npos);
}

TEST_F(MetricsTest, ZeroSeriesExistBeforeTheFirstEvent) {
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_events_total{type=\"run_started\"}"), 0);
  EXPECT_EQ(s.at("handoffd_events_total{type=\"unknown\"}"), 0);
  EXPECT_EQ(s.at("handoffd_runs_started_total{workflow=\"refund-review\"}"), 0);
  EXPECT_EQ(s.at("handoffd_runs_started_total{workflow=\"_other\"}"), 0);
  EXPECT_EQ(s.at("handoffd_time_to_ack_seconds_count{severity=\"P3\"}"), 0);
  EXPECT_EQ(s.at("handoffd_open_packets{severity=\"P1\"}"), 0);
  EXPECT_EQ(s.at("handoffd_missing_fields_total{field=\"owner.backup\"}"), 0);
  EXPECT_EQ(s.at("handoffd_limit_hits_total{limit=\"max_active_runs\"}"), 0);
  EXPECT_EQ(s.at("handoffd_records_produced_total{topic=\"handoff.page\"}"), 0);
  int builds = 0;
  for (const auto& [series, value] : s) {
    if (!series.starts_with("handoffd_build_info{")) continue;
    ++builds;
    EXPECT_EQ(value, 1);
    EXPECT_NE(series, "handoffd_build_info{version=\"\"}");
    EXPECT_NE(series, "handoffd_build_info{version=\"unknown\"}");  // CMake passes the version
  }
  EXPECT_EQ(builds, 1);
}

TEST_F(MetricsTest, LikelySeriesOfCatalogWorkflowsStartAtZeroSoRateSeesTheFirstOne) {
  auto s = Scrape();
  // Catalog severity P2; a class whose minimum is P1 is raised to P1.
  EXPECT_EQ(s.at("handoffd_exceptions_total{failure_class=\"missing_input\",severity=\"P2\","
                 "workflow=\"refund-review\"}"),
            0);
  EXPECT_EQ(s.at("handoffd_exceptions_total{failure_class=\"permission_denied\",severity=\"P1\","
                 "workflow=\"refund-review\"}"),
            0);
  EXPECT_EQ(s.count("handoffd_exceptions_total{failure_class=\"missing_input\",severity=\"P3\","
                    "workflow=\"refund-review\"}"),
            0u);
  // The blast radius lift makes ledger-close P1; no catalog severity, no run severity.
  EXPECT_EQ(s.at("handoffd_exceptions_total{failure_class=\"stalled\",severity=\"P1\","
                 "workflow=\"ledger-close\"}"),
            0);
  // Workflows outside the catalog get the default severity.
  EXPECT_EQ(s.at("handoffd_exceptions_total{failure_class=\"stalled\",severity=\"P3\","
                 "workflow=\"_other\"}"),
            0);
  EXPECT_EQ(s.at("handoffd_runs_completed_total{outcome=\"cancelled\",workflow=\"refund-review\"}"),
            0);
  EXPECT_EQ(
      s.at("handoffd_sla_breaches_total{level=\"3\",severity=\"P2\",workflow=\"refund-review\"}"),
      0);
  // Planned handoffs are not exceptions.
  EXPECT_EQ(Text().find("failure_class=\"business_judgment\""), std::string::npos);
}

TEST_F(MetricsTest, WorkflowOutsideTheCatalogIsReportedAsOther) {
  metrics_.OnRunStarted("refund-review");
  metrics_.OnRunStarted("refund-review");
  metrics_.OnRunStarted("someone-elses-workflow");
  metrics_.OnRunStarted("_other");
  metrics_.OnIncidentOpened("not-in-catalog", FailureClass::kStalled, Severity::kP3);
  metrics_.OnSlaBreach("not-in-catalog", Severity::kP3, 2);
  metrics_.OnHandoff("not-in-catalog", HandoffKind::kException, Severity::kP3, Gate::kTicket);
  metrics_.OnRunCompleted("not-in-catalog", Outcome::kFailure);
  const std::string text = Text();
  EXPECT_EQ(text.find("someone-elses-workflow"), std::string::npos);
  EXPECT_EQ(text.find("not-in-catalog"), std::string::npos);
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_runs_started_total{workflow=\"refund-review\"}"), 2);
  EXPECT_EQ(s.at("handoffd_runs_started_total{workflow=\"_other\"}"), 2);
  EXPECT_EQ(s.at("handoffd_exceptions_total{failure_class=\"stalled\",severity=\"P3\",workflow="
                 "\"_other\"}"),
            1);
  EXPECT_EQ(s.at("handoffd_sla_breaches_total{level=\"2\",severity=\"P3\",workflow=\"_other\"}"),
            1);
  EXPECT_EQ(s.at("handoffd_handoffs_total{gate=\"ticket\",kind=\"exception\",severity=\"P3\","
                 "workflow=\"_other\"}"),
            1);
  EXPECT_EQ(s.at("handoffd_runs_completed_total{outcome=\"failure\",workflow=\"_other\"}"), 1);
}

TEST_F(MetricsTest, ExceptionsCountPerClassAndSeverityButPlannedHandoffsDoNot) {
  metrics_.OnIncidentOpened("ledger-close", FailureClass::kDownstreamWriteFailure, Severity::kP1);
  metrics_.OnIncidentOpened("ledger-close", FailureClass::kDownstreamWriteFailure, Severity::kP1);
  metrics_.OnIncidentOpened("ledger-close", FailureClass::kLowConfidence, Severity::kP2);
  metrics_.OnIncidentOpened("ledger-close", FailureClass::kRiskAuthorization, Severity::kP1);
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_exceptions_total{failure_class=\"downstream_write_failure\","
                 "severity=\"P1\",workflow=\"ledger-close\"}"),
            2);
  EXPECT_EQ(s.at("handoffd_exceptions_total{failure_class=\"low_confidence\",severity=\"P2\","
                 "workflow=\"ledger-close\"}"),
            1);
  EXPECT_EQ(Text().find("risk_authorization"), std::string::npos);
}

TEST_F(MetricsTest, TimeToAckHistogramGivesMttaAsSumOverCount) {
  metrics_.OnAcknowledged(Severity::kP1, 60);
  metrics_.OnAcknowledged(Severity::kP1, 120);
  metrics_.OnAcknowledged(Severity::kP1, 240);
  metrics_.OnAcknowledged(Severity::kP2, 1000);
  auto s = Scrape();
  const double sum = s.at("handoffd_time_to_ack_seconds_sum{severity=\"P1\"}");
  const double count = s.at("handoffd_time_to_ack_seconds_count{severity=\"P1\"}");
  EXPECT_EQ(count, 3);
  EXPECT_DOUBLE_EQ(sum / count, 140);
  EXPECT_EQ(s.at("handoffd_time_to_ack_seconds_bucket{severity=\"P1\",le=\"30\"}"), 0);
  EXPECT_EQ(s.at("handoffd_time_to_ack_seconds_bucket{severity=\"P1\",le=\"60\"}"), 1);
  EXPECT_EQ(s.at("handoffd_time_to_ack_seconds_bucket{severity=\"P1\",le=\"120\"}"), 2);
  EXPECT_EQ(s.at("handoffd_time_to_ack_seconds_bucket{severity=\"P1\",le=\"300\"}"), 3);
  EXPECT_EQ(s.at("handoffd_time_to_ack_seconds_bucket{severity=\"P1\",le=\"28800\"}"), 3);
  EXPECT_EQ(s.at("handoffd_time_to_ack_seconds_bucket{severity=\"P2\",le=\"900\"}"), 0);
  EXPECT_EQ(s.at("handoffd_time_to_ack_seconds_bucket{severity=\"P2\",le=\"1800\"}"), 1);
}

TEST_F(MetricsTest, HcsIsObservedRawAndFinalPerSeverity) {
  metrics_.OnScored(Severity::kP2, 55, 95);
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_hcs_score_bucket{severity=\"P2\",stage=\"raw\",le=\"50\"}"), 0);
  EXPECT_EQ(s.at("handoffd_hcs_score_bucket{severity=\"P2\",stage=\"raw\",le=\"60\"}"), 1);
  EXPECT_EQ(s.at("handoffd_hcs_score_bucket{severity=\"P2\",stage=\"final\",le=\"90\"}"), 0);
  EXPECT_EQ(s.at("handoffd_hcs_score_bucket{severity=\"P2\",stage=\"final\",le=\"100\"}"), 1);
  EXPECT_EQ(s.at("handoffd_hcs_score_sum{severity=\"P2\",stage=\"final\"}"), 95);
  EXPECT_EQ(s.at("handoffd_hcs_score_count{severity=\"P1\",stage=\"final\"}"), 0);
}

TEST_F(MetricsTest, EventsInvalidEventsAndMissingFieldsAreCountedByLabel) {
  metrics_.OnEvent(EventType::kStepFailed);
  metrics_.OnEvent(EventType::kStepFailed);
  metrics_.OnEvent(EventType::kHandoffAcknowledged);
  metrics_.OnInvalidEvent("missing_field:run_id");
  metrics_.OnInvalidEvent("missing_field:run_id");
  metrics_.OnMissingField("rollback_command");
  metrics_.OnLimitHit("max_open_packets_per_run");
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_events_total{type=\"step_failed\"}"), 2);
  EXPECT_EQ(s.at("handoffd_events_total{type=\"handoff_acknowledged\"}"), 1);
  EXPECT_EQ(s.at("handoffd_events_invalid_total{reason=\"missing_field:run_id\"}"), 2);
  EXPECT_EQ(s.at("handoffd_missing_fields_total{field=\"rollback_command\"}"), 1);
  EXPECT_EQ(s.at("handoffd_limit_hits_total{limit=\"max_open_packets_per_run\"}"), 1);
}

// The DLQ ratio alert and the dashboard's input rate sum rate() over reasons: with no series
// they show nothing, and a reason's first dead letter would be invisible to rate().
TEST_F(MetricsTest, EveryDeadLetterReasonStartsAtZero) {
  auto s = Scrape();
  size_t reasons = 0;
  for (const auto& [series, value] : s) {
    if (!series.starts_with("handoffd_events_invalid_total{")) continue;
    ++reasons;
    EXPECT_EQ(value, 0) << series;
  }
  EXPECT_EQ(reasons, DeadLetterReasons().size());
  for (const char* reason :
       {"oversized", "invalid_json", "not_object", "missing_field:run_id", "wrong_type:confidence",
        "bad_timestamp", "stale_timestamp", "retired_run"}) {
    EXPECT_EQ(s.count("handoffd_events_invalid_total{reason=\"" + std::string(reason) + "\"}"), 1u)
        << reason;
  }
}

TEST_F(MetricsTest, FreeTextLabelsStopGrowingAtTheBound) {
  const size_t before = DeadLetterReasons().size();  // created at zero
  const size_t extra = 44;
  for (size_t i = 0; i < Metrics::kMaxDynamicLabels + extra; ++i) {
    metrics_.OnInvalidEvent("reason_" + std::to_string(i));
  }
  auto s = Scrape();
  size_t reasons = 0;
  for (const auto& [series, value] : s) {
    if (series.starts_with("handoffd_events_invalid_total{")) ++reasons;
  }
  EXPECT_EQ(reasons, Metrics::kMaxDynamicLabels + 1);  // + "_other"
  EXPECT_EQ(s.at("handoffd_events_invalid_total{reason=\"_other\"}"), extra + before);
  EXPECT_EQ(s.at("handoffd_events_invalid_total{reason=\"reason_0\"}"), 1);
}

TEST_F(MetricsTest, SlaBreachesAndExpiriesCarryLevelAndSeverity) {
  metrics_.OnSlaBreach("refund-review", Severity::kP2, 2);
  metrics_.OnSlaBreach("refund-review", Severity::kP2, 3);
  metrics_.OnSlaBreach("refund-review", Severity::kP2, 3);
  metrics_.OnSlaBreach("refund-review", Severity::kP2, 42);
  metrics_.OnExpired(Severity::kP2);
  auto s = Scrape();
  EXPECT_EQ(
      s.at("handoffd_sla_breaches_total{level=\"2\",severity=\"P2\",workflow=\"refund-review\"}"),
      1);
  EXPECT_EQ(
      s.at("handoffd_sla_breaches_total{level=\"3\",severity=\"P2\",workflow=\"refund-review\"}"),
      2);
  EXPECT_EQ(s.at("handoffd_sla_breaches_total{level=\"_other\",severity=\"P2\",workflow="
                 "\"refund-review\"}"),
            1);
  EXPECT_EQ(s.at("handoffd_packets_expired_total{severity=\"P2\"}"), 1);
}

TEST_F(MetricsTest, GaugesFollowTheLatestLevel) {
  metrics_.OnActiveRuns(10);
  metrics_.OnActiveRuns(4);
  metrics_.OnOpenPackets(Severity::kP1, 3);
  metrics_.SetAssignedPartitions(2);
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_active_runs"), 4);
  EXPECT_EQ(s.at("handoffd_open_packets{severity=\"P1\"}"), 3);
  EXPECT_EQ(s.at("handoffd_assigned_partitions"), 2);
}

TEST_F(MetricsTest, PartitionObserversAddUpAndTakeTheirShareBackWhenDropped) {
  auto p0 = metrics_.NewPartitionObserver();
  auto p1 = metrics_.NewPartitionObserver();
  p0->OnActiveRuns(5);
  p1->OnActiveRuns(7);
  p0->OnActiveRuns(6);
  p0->OnOpenPackets(Severity::kP2, 2);
  p1->OnOpenPackets(Severity::kP2, 1);
  p1->OnRunStarted("refund-review");  // non-level hooks are forwarded unchanged
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_active_runs"), 0);  // the active-runs level waits for Flush()
  EXPECT_EQ(s.at("handoffd_open_packets{severity=\"P2\"}"), 3);
  p0->Flush();
  p1->Flush();
  s = Scrape();
  EXPECT_EQ(s.at("handoffd_active_runs"), 13);
  EXPECT_EQ(s.at("handoffd_open_packets{severity=\"P2\"}"), 3);
  EXPECT_EQ(s.at("handoffd_runs_started_total{workflow=\"refund-review\"}"), 1);
  p1.reset();  // partition revoked
  s = Scrape();
  EXPECT_EQ(s.at("handoffd_active_runs"), 6);
  EXPECT_EQ(s.at("handoffd_open_packets{severity=\"P2\"}"), 2);
}

TEST_F(MetricsTest, PartitionObserversPublishEventCountsOnFlushAndWhenDropped) {
  auto p0 = metrics_.NewPartitionObserver();
  auto p1 = metrics_.NewPartitionObserver();
  for (int i = 0; i < 3; ++i) p0->OnEvent(EventType::kStepFailed);
  p1->OnEvent(EventType::kStepFailed);
  p1->OnEvent(EventType::kRunStarted);
  p1->OnActiveRuns(4);
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_events_total{type=\"step_failed\"}"), 0);
  p0->Flush();
  s = Scrape();
  EXPECT_EQ(s.at("handoffd_events_total{type=\"step_failed\"}"), 3);
  EXPECT_EQ(s.at("handoffd_events_total{type=\"run_started\"}"), 0);
  p0->Flush();  // nothing new: nothing counted twice
  p1.reset();   // revoked before its next flush: its counts are not lost, its level goes
  s = Scrape();
  EXPECT_EQ(s.at("handoffd_events_total{type=\"step_failed\"}"), 4);
  EXPECT_EQ(s.at("handoffd_events_total{type=\"run_started\"}"), 1);
  EXPECT_EQ(s.at("handoffd_active_runs"), 0);
}

TEST_F(MetricsTest, PartitionGaugesAreDroppedOnRevocation) {
  metrics_.SetConsumerLag("agent.events", 0, 120);
  metrics_.SetConsumerLag("handoff.acks", 0, 3);
  metrics_.SetConsumerLag("agent.events", 1, 7);
  metrics_.SetConsumerLag("agent.events", 0, 100);
  metrics_.SetWatermarkDelay(0, 2.5);
  metrics_.SetWatermarkDelay(1, 1.5);
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_consumer_lag_records{partition=\"0\",topic=\"agent.events\"}"), 100);
  EXPECT_EQ(s.at("handoffd_watermark_delay_seconds{partition=\"0\"}"), 2.5);
  metrics_.ClearPartition(0);
  s = Scrape();
  EXPECT_EQ(s.count("handoffd_consumer_lag_records{partition=\"0\",topic=\"agent.events\"}"), 0u);
  EXPECT_EQ(s.count("handoffd_consumer_lag_records{partition=\"0\",topic=\"handoff.acks\"}"), 0u);
  EXPECT_EQ(s.count("handoffd_watermark_delay_seconds{partition=\"0\"}"), 0u);
  EXPECT_EQ(s.at("handoffd_consumer_lag_records{partition=\"1\",topic=\"agent.events\"}"), 7);
  EXPECT_EQ(s.at("handoffd_watermark_delay_seconds{partition=\"1\"}"), 1.5);
  metrics_.SetConsumerLag("agent.events", 0, 9);  // reassigned later: the series comes back
  EXPECT_EQ(Scrape().at("handoffd_consumer_lag_records{partition=\"0\",topic=\"agent.events\"}"),
            9);
}

TEST_F(MetricsTest, CommitsRestoresAndProducedRecordsAreCounted) {
  metrics_.OnCommit(0.004, true);
  metrics_.OnCommit(0.2, false);
  metrics_.OnRestore(3, 1.5, 1200);
  EXPECT_EQ(Scrape().at("handoffd_restores_truncated_total"), 0);  // exported from the start
  metrics_.OnRestore(4, 0.5, 10, /*truncated=*/true);
  metrics_.OnRecordsProduced("handoff.page", 3);
  metrics_.OnRecordsProduced("handoff.audit", 5);
  metrics_.OnDeliveryFailure("handoff.page");
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_commit_duration_seconds_count"), 2);
  EXPECT_EQ(s.at("handoffd_commit_duration_seconds_bucket{le=\"0.005\"}"), 1);
  EXPECT_EQ(s.at("handoffd_commit_failures_total"), 1);
  EXPECT_EQ(s.at("handoffd_restore_duration_seconds_sum"), 2);
  EXPECT_EQ(s.at("handoffd_restored_records_total"), 1210);
  EXPECT_EQ(s.at("handoffd_restores_truncated_total"), 1);
  EXPECT_EQ(s.at("handoffd_records_produced_total{topic=\"handoff.page\"}"), 3);
  EXPECT_EQ(s.at("handoffd_records_produced_total{topic=\"handoff.audit\"}"), 5);
  EXPECT_EQ(s.at("handoffd_delivery_failures_total{topic=\"handoff.page\"}"), 1);
}

TEST_F(MetricsTest, KafkaClientErrorsAreCountedByNameFromZero) {
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_kafka_errors_total{error=\"_TRANSPORT\",transient=\"true\"}"), 0);
  EXPECT_EQ(s.at("handoffd_kafka_errors_total{error=\"_ALL_BROKERS_DOWN\",transient=\"true\"}"), 0);
  metrics_.OnKafkaError("_TRANSPORT", true);
  metrics_.OnKafkaError("_TRANSPORT", true);
  metrics_.OnKafkaError("_AUTHENTICATION", false);
  s = Scrape();
  EXPECT_EQ(s.at("handoffd_kafka_errors_total{error=\"_TRANSPORT\",transient=\"true\"}"), 2);
  EXPECT_EQ(s.at("handoffd_kafka_errors_total{error=\"_AUTHENTICATION\",transient=\"false\"}"), 1);
}

TEST_F(MetricsTest, RecordsNotKeyedByRunIdAreCountedPerInputTopicFromZero) {
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_key_mismatch_total{topic=\"agent.events\"}"), 0);
  EXPECT_EQ(s.at("handoffd_key_mismatch_total{topic=\"handoff.acks\"}"), 0);
  auto observer = metrics_.NewPartitionObserver();
  observer->OnKeyMismatch("agent.events");
  observer->OnKeyMismatch("agent.events");
  s = Scrape();
  EXPECT_EQ(s.at("handoffd_key_mismatch_total{topic=\"agent.events\"}"), 2);
  EXPECT_EQ(s.at("handoffd_key_mismatch_total{topic=\"handoff.acks\"}"), 0);
}

TEST_F(MetricsTest, EventsAheadOfTheirRecordTimeAreCountedPerInputTopicFromZero) {
  auto s = Scrape();
  EXPECT_EQ(s.at("handoffd_events_ahead_total{topic=\"agent.events\"}"), 0);
  EXPECT_EQ(s.at("handoffd_events_ahead_total{topic=\"handoff.acks\"}"), 0);
  auto observer = metrics_.NewPartitionObserver();
  observer->OnEventAhead("handoff.acks");
  s = Scrape();
  EXPECT_EQ(s.at("handoffd_events_ahead_total{topic=\"handoff.acks\"}"), 1);
}

TEST_F(MetricsTest, ConcurrentEnginesLoseNoCountWhileChildrenAreCreated) {
  constexpr int kThreads = 4;
  constexpr int kCalls = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this] {
      auto observer = metrics_.NewPartitionObserver();
      for (int i = 0; i < kCalls; ++i) {
        // Every thread races to create the same lazily created children first.
        observer->OnHandoff("ledger-close", HandoffKind::kException, Severity::kP1,
                            static_cast<Gate>(i % 8));
        observer->OnInvalidEvent("reason_" + std::to_string(i % 20));
        observer->OnActiveRuns(i % 7);
      }
      observer->OnActiveRuns(1);
      metrics_.OnRunStarted("refund-review");
    });
  }
  for (auto& t : threads) t.join();
  auto s = Scrape();
  double handoffs = 0;
  double invalid = 0;
  for (const auto& [series, value] : s) {
    if (series.starts_with("handoffd_handoffs_total{")) handoffs += value;
    if (series.starts_with("handoffd_events_invalid_total{")) invalid += value;
  }
  EXPECT_EQ(handoffs, kThreads * kCalls);
  EXPECT_EQ(invalid, kThreads * kCalls);
  EXPECT_EQ(s.at("handoffd_handoffs_total{gate=\"escalate\",kind=\"exception\",severity=\"P1\","
                 "workflow=\"ledger-close\"}"),
            kThreads * kCalls / 8);
  EXPECT_EQ(s.at("handoffd_runs_started_total{workflow=\"refund-review\"}"), kThreads);
  // The observers are gone, and their shares with them.
  EXPECT_EQ(s.at("handoffd_active_runs"), 0);
}

TEST_F(MetricsTest, TwoRegistriesAreIndependent) {
  prometheus::Registry other_registry;
  Metrics other(other_registry, config_);
  other.OnRunStarted("refund-review");
  EXPECT_EQ(Samples(SerializeText(other_registry))
                .at("handoffd_runs_started_total{workflow=\"refund-review\"}"),
            1);
  EXPECT_EQ(Scrape().at("handoffd_runs_started_total{workflow=\"refund-review\"}"), 0);
}

}  // namespace
}  // namespace handoffd

#include "processor/live/synthetic_fleet.h"

#include "processor/time_format.h"

namespace handoffd {
namespace {

// `,"name":"value"` appended to *out. The scripts leave the ts out; Next() appends it at
// emission: "{...,"ts":"<time>"}".
void AppendField(std::string* out, std::string_view name, std::string_view value) {
  out->append(",\"").append(name).append("\":\"").append(value).push_back('"');
}

std::string Field(std::string_view name, std::string_view value) {
  std::string out;
  AppendField(&out, name, value);
  return out;
}

}  // namespace

SyntheticFleet::SyntheticFleet(std::vector<std::string> workflows, uint64_t seed, int concurrency)
    : workflows_(std::move(workflows)), rng_(seed) {
  if (workflows_.empty()) workflows_.push_back("demo-workflow");
  runs_.resize(static_cast<size_t>(concurrency > 0 ? concurrency : 1));
}

SyntheticFleet::Run SyntheticFleet::NewRun(int64_t now_ms) {
  Run run;
  ++runs_started_;
  run.workflow = workflows_[rng_() % workflows_.size()];
  run.id = run.workflow + "-" + std::to_string(now_ms) + "-" + std::to_string(runs_started_);
  auto ev = [&](const char* type, const std::string& rest) {
    return std::string("\"type\":\"") + type + "\"" + rest;
  };
  const char* severities[] = {"P1", "P2", "P3", "P3"};
  std::string owner = ",\"owner\":{\"primary\":\"agent-ops\",\"backup\":\"platform-oncall\"}";
  run.script.push_back(ev("run_started", Field("workflow_id", run.workflow) +
                                             Field("objective", "Synthetic " + run.workflow) +
                                             Field("severity", severities[rng_() % 4]) + owner));
  int steps = 2 + static_cast<int>(rng_() % 3);
  // The mix: 70% succeed, 10% fail, 5% exhaust retries, 5% low confidence, 6% planned
  // handoff, 4% stall (stop emitting: the stall timer fires later).
  uint64_t roll = rng_() % 100;
  for (int s = 0; s < steps; ++s) {
    std::string step = Field("step", "step_" + std::to_string(s));
    run.script.push_back(ev("step_started", step));
    run.script.push_back(ev("tool_call", step + Field("tool", "search.query") +
                                             Field("status", "ok") + Field("side_effect", "none") +
                                             ",\"cost_usd\":0.01,\"tokens\":420"));
    bool last = s == steps - 1;
    if (last && roll >= 70 && roll < 80) {
      const char* codes[] = {"missing_input", "write_failed", "permission_denied", "schema_invalid",
                             "weird_error"};
      run.script.push_back(ev("step_failed", step + ",\"error\":{\"code\":\"" + codes[rng_() % 5] +
                                                 "\",\"message\":\"synthetic failure\"}"));
      run.acked_packet = true;
    } else if (last && roll >= 80 && roll < 85) {
      for (int r = 0; r < 4; ++r) {
        run.script.push_back(ev("step_failed", step + ",\"error\":{\"code\":\"timeout\"},"
                                                      "\"retryable\":true"));
      }
      run.acked_packet = true;
    } else if (last && roll >= 85 && roll < 90) {
      run.script.push_back(
          ev("decision", step + ",\"confidence\":0.42" + Field("action", "refund")));
      run.acked_packet = true;
    } else if (last && roll >= 90 && roll < 96) {
      run.script.push_back(ev("handoff_requested", step +
                                                       Field("reason", "needs a human decision") +
                                                       Field("handoff_type", "business_judgment") +
                                                       Field("owner_role", "team-lead")));
      run.acked_packet = true;
    } else if (last && roll >= 96) {
      return run;  // stalls: no further events
    } else {
      run.script.push_back(ev("step_succeeded", step));
    }
  }
  run.script.push_back(
      ev("run_completed", Field("outcome", run.acked_packet ? "failure" : "success")));
  return run;
}

void SyntheticFleet::Next(int64_t now_ms, FleetRecord* out) {
  // Appended in place (out->json keeps its capacity): this runs once per generated record, and
  // at high rates hundreds of records share a millisecond and its formatted time.
  if (now_ms != ts_ms_) {
    FormatRfc3339Ms(now_ms, ts_);
    ts_ms_ = now_ms;
  }
  const std::string_view ts_view(ts_, kRfc3339MsLength);
  std::string& json = out->json;
  json.clear();
  if (!acks_.empty() && acks_.begin()->first <= now_ms) {
    PendingAck ack = std::move(acks_.begin()->second);
    acks_.erase(acks_.begin());
    out->is_ack = true;
    out->run_id = ack.run_id;
    json.append("{\"type\":\"").append(ack.type).append("\"");
    AppendField(&json, "run_id", ack.run_id);
    AppendField(&json, "by", "synthetic-oncall");
    AppendField(&json, "ts", ts_view);
    json.push_back('}');
    return;
  }
  Run& run = runs_[rng_() % runs_.size()];
  if (run.next >= run.script.size()) {
    // A finished run: most packets get acknowledged a few seconds later, some never (they
    // escalate), a third of the acknowledged ones are resolved after that.
    if (run.acked_packet && rng_() % 10 < 7) {
      int64_t delay = 2000 + static_cast<int64_t>(rng_() % 8000);
      acks_.emplace(now_ms + delay, PendingAck{run.id, "handoff_acknowledged"});
      if (rng_() % 3 == 0) {
        acks_.emplace(now_ms + delay + 5000, PendingAck{run.id, "handoff_resolved"});
      }
    }
    run = NewRun(now_ms);
  }
  out->is_ack = false;
  out->run_id = run.id;
  json.append("{\"event_id\":\"e").append(std::to_string(++event_seq_)).append("\"");
  AppendField(&json, "run_id", run.id);
  json.push_back(',');
  json.append(run.script[run.next++]);
  AppendField(&json, "ts", ts_view);
  json.push_back('}');
}

}  // namespace handoffd

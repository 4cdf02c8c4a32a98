// Hooks through which the pure core reports what the metrics (contract section 8) count. The
// core never touches a metrics registry; metrics/ implements this interface. Every hook has a
// no-op default so tests and replay without metrics pass a plain EngineObserver.
// `workflow` is always bounded: a catalog id, or "_other".
#pragma once

#include <cstdint>
#include <string_view>

#include "processor/types.h"

namespace handoffd {

class EngineObserver {
 public:
  virtual ~EngineObserver() = default;

  virtual void OnEvent(EventType /*type*/) {}
  virtual void OnInvalidEvent(std::string_view /*reason*/) {}
  virtual void OnRunStarted(std::string_view /*workflow*/) {}
  virtual void OnRunCompleted(std::string_view /*workflow*/, Outcome /*outcome*/) {}
  // A new incident (packet revision 1). For exceptions, also counts handoffd_exceptions_total.
  virtual void OnIncidentOpened(std::string_view /*workflow*/, FailureClass /*cls*/,
                                Severity /*severity*/) {}
  // Every packet record on a routing topic (pending included), with its gate.
  virtual void OnHandoff(std::string_view /*workflow*/, HandoffKind /*kind*/, Severity /*severity*/,
                         Gate /*gate*/) {}
  // HCS at first emission: raw (before enrichment) and final.
  virtual void OnScored(Severity /*severity*/, double /*raw*/, double /*final_score*/) {}
  // Once per field listed in a packet's missing_fields at first emission.
  virtual void OnMissingField(std::string_view /*field*/) {}
  virtual void OnAcknowledged(Severity /*severity*/, double /*seconds_to_ack*/) {}
  virtual void OnSlaBreach(std::string_view /*workflow*/, Severity /*severity*/, int /*level*/) {}
  virtual void OnExpired(Severity /*severity*/) {}
  virtual void OnActiveRuns(int64_t /*count*/) {}
  virtual void OnOpenPackets(Severity /*severity*/, int64_t /*count*/) {}
  // A limits.* bound was hit ("max_active_runs", "max_seen_event_ids_per_run", ...).
  virtual void OnLimitHit(std::string_view /*limit*/) {}
  // Live mode: a valid record of `topic` whose Kafka key is not its run_id (Pipeline).
  virtual void OnKeyMismatch(std::string_view /*topic*/) {}
  // Live mode: a record of `topic` whose event time is more than time.max_future_ms ahead of its
  // Kafka timestamp (Pipeline).
  virtual void OnEventAhead(std::string_view /*topic*/) {}

  // Publishes what the observer buffers. Live mode's per-partition observers
  // (Metrics::NewPartitionObserver) count events and track the active-runs level locally, since
  // an atomic update of a shared series per event cost ~2% of a catch-up's CPU; the worker calls
  // this every wall-clock tick (100 ms), and destruction publishes the rest.
  virtual void Flush() {}
};

}  // namespace handoffd

// Value types shared by every handoffd module: severities, failure classes, event types and the
// output topics. Names and their wire spellings live together so the contract has one source.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace handoffd {

// Lower value = more severe, so "highest severity" is std::min.
enum class Severity : uint8_t { kP1 = 0, kP2 = 1, kP3 = 2 };
inline constexpr int kSeverityCount = 3;

// Failure classes (kind exception) followed by planned-handoff classes (kind planned).
enum class FailureClass : uint8_t {
  kMissingInput,
  kDuplicateEntity,
  kConflictingContext,
  kDownstreamWriteFailure,
  kSchemaInvalid,
  kPermissionDenied,
  kUnsupportedRequest,
  kUnclassifiedFailure,
  kRetryExhausted,
  kLowConfidence,
  kBudgetExceeded,
  kStalled,
  kRiskAuthorization,
  kBusinessJudgment,
  kEvidenceGap,
};
inline constexpr int kFailureClassCount = 15;

enum class HandoffKind : uint8_t { kException, kPlanned };

enum class EventType : uint8_t {
  kRunStarted,
  kStepStarted,
  kStepSucceeded,
  kStepFailed,
  kToolCall,
  kDecision,
  kHandoffRequested,
  kHeartbeat,
  kRunCompleted,
  kHandoffAcknowledged,  // from handoff.acks
  kHandoffResolved,      // from handoff.acks
  kUnknown,              // valid envelope, type this version does not know: counted and skipped
};
inline constexpr int kEventTypeCount = 12;

// Output topics, by role. Config maps each role to a topic name.
enum class TopicRole : uint8_t {
  kPage,
  kOwnerQueue,
  kTickets,
  kDecisions,
  kPending,
  kEscalations,
  kAudit,
  kDlq,
};
inline constexpr int kTopicRoleCount = 8;

enum class Gate : uint8_t {
  kPage,
  kHeld,
  kNotify,
  kOwnerQueueIncomplete,
  kTicket,
  kTicketTemplateRequired,
  kDecision,
  kEscalate,
};

enum class SideEffect : uint8_t { kNone, kReversible, kIrreversible, kExternal };
enum class Risk : uint8_t { kLow, kHigh, kIrreversible, kExternal };
enum class ToolStatus : uint8_t { kOk, kError };
enum class Outcome : uint8_t { kSuccess, kFailure, kCancelled };
enum class HandoffType : uint8_t { kBusinessJudgment, kRiskAuthorization, kEvidenceGap };

// Wire spellings ("P1", "missing_input", "run_started", "owner_queue_incomplete", ...).
std::string_view ToString(Severity s);
std::string_view ToString(FailureClass c);
std::string_view ToString(HandoffKind k);
std::string_view ToString(EventType t);
std::string_view ToString(Gate g);
std::string_view ToString(Outcome o);
std::string_view ToString(HandoffType t);
std::string_view ToString(SideEffect s);
std::string_view ToString(Risk r);

// Parse wire spellings; std::nullopt when the text is not one of the enum's spellings.
std::optional<Severity> ParseSeverity(std::string_view s);
std::optional<FailureClass> ParseFailureClass(std::string_view s);
EventType ParseEventType(std::string_view s);  // kUnknown for anything else
std::optional<SideEffect> ParseSideEffect(std::string_view s);
std::optional<Risk> ParseRisk(std::string_view s);
std::optional<ToolStatus> ParseToolStatus(std::string_view s);
std::optional<Outcome> ParseOutcome(std::string_view s);
std::optional<HandoffType> ParseHandoffType(std::string_view s);

constexpr HandoffKind KindOf(FailureClass c) {
  return c >= FailureClass::kRiskAuthorization ? HandoffKind::kPlanned : HandoffKind::kException;
}

}  // namespace handoffd

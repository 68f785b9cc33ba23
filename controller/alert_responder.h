#pragma once

// Automated response: detectors' alerts in (POST /v1/alerts), decisions out, and the guard
// rails in between. Every alert goes the same way, whatever its format, batch or rule:
//
//   parse -> first matching rule (no_rule) -> the address it is about and its segment
//   (refused: none in a segment) -> protected (policy-protected segment, management, the
//   config's protected_hosts, the controller's and the gateways' own addresses, the detector's
//   own address) -> the detector token's segment scope (out_of_scope) -> already cut
//   (deduplicated: attached to the open action) -> dry-run -> the detector's rate (rate_limited)
//   -> the circuit breaker (breaker_open: becomes a proposal) -> mode approve (a proposal) ->
//   an isolate with the rule's TTL, signed by the controller on behalf of the detector and
//   marked automatic (acted) -> the rule's escalation (N distinct hosts of one segment within W
//   seconds: the segment too, through the same guards).
//
// "Act now, approve later": an automatic action always carries a TTL; an operator confirms it
// (a permanent isolate in the operator's name) or releases it (a release order the agents
// accept only while the isolation is still automatic); otherwise the agents lift it by
// themselves when the TTL runs out. Proposals wait for confirm (then act) or release (decline).
//
// Contracts:
//   - Not thread-safe: the controller's io thread, like OrdersService.
//   - Every alert is audited (event "alert": detector, format, SHA-256 of the record's bytes,
//     rule, decision, reason, order); a batch's entries are written with one sync at its end,
//     before the answer.
//   - Nothing from the alert but its addresses decides what is cut; text from it is only
//     recorded (length-limited by the parser).
//   - The breaker opens on the max_actions+1-th automatic action within its window, or when an
//     action would leave more than max_segments_percent of the non-default segments isolated;
//     it stays open (persisted) until an operator closes it with a reason.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/audit_sink.h"
#include "common/clock.h"
#include "common/ip_prefix.h"
#include "common/policy.h"
#include "controller/alerts/alert_formats.h"
#include "controller/alerts/guard_rails.h"
#include "controller/alerts/response_config.h"
#include "controller/auto_actions.h"
#include "controller/orders_service.h"

namespace shadan::controller {

enum class AlertDecision {
  kActed,
  kDryRun,
  kDeduplicated,
  kRateLimited,
  kBreakerOpen,
  kOutOfScope,
  kProtected,
  kNoRule,
  kRefused,
};
const char* alertDecisionName(AlertDecision decision);  // "acted", "dry_run", ...

struct AlertResult {
  AlertDecision decision = AlertDecision::kRefused;
  std::optional<std::string> order_id;  // the order, proposal or open action it led to
  std::string reason;
  std::optional<std::string> rule{};                // the response rule that matched
  std::optional<std::string> escalated_order_id{};  // the segment order an escalation made

  nlohmann::json toJson() const;  // {"decision","order_id","reason"[,"rule","escalation"]}
};

struct IntakeAnswer {
  std::vector<AlertResult> results;
  // > 0: the whole request was over the detector's intake limit and nothing of it was taken;
  // the API answers 429 with this Retry-After.
  int64_t retry_after_s = 0;
};

struct CircuitBreakerState {
  bool open = false;
  int64_t since_ms = 0;
  std::string reason;
  std::string by;  // "automatic" or the operator who opened it
};

class AlertResponder {
 public:
  // Everything passed by reference must outlive the responder. `tokens` gives each detector's
  // segment scope.
  AlertResponder(const ResponseConfig& config, const std::vector<ApiToken>& tokens,
                 const Policy& policy, OrdersService& orders, ControllerStore& store,
                 AuditSink& audit, const Clock& clock);

  // Loads the open automatic actions and the breaker from the store.
  Status load();

  // Addresses never cut automatically besides the config's: the controller's own and the
  // gateways' (agents' connections), asked for at each alert.
  void setProtectedAddresses(std::function<std::vector<IpPrefix>()> source) {
    protected_addresses_ = std::move(source);
  }

  // One request of `caller` (a detector) from `peer` (its address, when known).
  Result<IntakeAnswer> intake(const Caller& caller, const std::optional<IpPrefix>& peer,
                              AlertFormat format, std::string_view body);

  // Operators: confirm / release an automatic action or a proposal by id.
  Result<nlohmann::json> confirm(const Caller& caller, const std::string& id,
                                 const std::string& reason);
  Result<nlohmann::json> release(const Caller& caller, const std::string& id,
                                 const std::string& reason);
  // A detector says the condition behind its quarantine of `host` is gone (fail2ban's unban,
  // Wazuh's delete): releases its own open actions for that host.
  Result<nlohmann::json> clear(const Caller& caller, const IpPrefix& host,
                               const std::string& reason);

  // Operators: open or close the circuit breaker by hand.
  Status setBreaker(const Caller& caller, bool open, const std::string& reason);

  // Closes actions and proposals whose time ran out. Called by the controller's sweep timer.
  Status sweep();

  // {"breaker":{...},"detectors":[...],"actions":[open actions],"alerts":{counters}}
  nlohmann::json status();
  // Alerts taken since start by decision (alertDecisionName()), and "requests_over_limit".
  const std::map<std::string, int64_t>& decisionCounts() const { return counters_; }
  // The most recent decisions, newest first (at most `limit`, kept in memory: the audit log is
  // the record).
  nlohmann::json recentAlerts(size_t limit) const;
  // Open actions and proposals, for GET /v1/approvals ("confirm or release").
  nlohmann::json openActions() const;

 private:
  struct DetectorState {
    std::optional<std::vector<std::string>> segments;
    TokenBucket actions;
    TokenBucket intake;
  };
  struct Target;  // what one alert is about (alert_responder.cc)

  int64_t nowMs() const;
  DetectorState& detector(const std::string& name);
  AlertResult decide(const Caller& caller, const std::optional<IpPrefix>& peer, const Alert& alert,
                     const std::string& raw_sha256, int64_t now);
  std::optional<std::string> protectedReason(const Target& target,
                                             const std::optional<IpPrefix>& peer) const;
  std::optional<std::string> breakerTrips(const Target& target, int64_t now);
  // Is `segment` isolated (store's segment view, read once per batch)?
  bool segmentIsolated(const std::string& segment);
  static AutoAction newAction(const Caller& caller, const ResponseRule& rule, const Target& target,
                              AutoActionState state, int64_t now);
  // The prologue of confirm and release: `caller` must be an operator (else kForbidden naming
  // `verb`), `reason` valid; expired actions are swept first, so one whose time ran out is found
  // closed. The action `id`, or kNotFound, or kConflict when it is no longer open.
  Result<AutoAction> openAction(const Caller& caller, const std::string& id,
                                const std::string& reason, std::string_view verb);
  // A release of `action` (active) by `caller`: a restore marked automatic.
  Result<OrderAccepted> releaseOrder(const Caller& caller, const AutoAction& action,
                                     const std::string& reason);
  AlertResult propose(const Caller& caller, const ResponseRule& rule, const Target& target,
                      AlertDecision decision, const std::string& why, int64_t now);
  AlertResult act(const Caller& caller, const ResponseRule& rule, const Target& target,
                  int64_t now);
  void escalate(const Caller& caller, const ResponseRule& rule, const Target& host_target,
                const std::optional<IpPrefix>& peer, int64_t now, AlertResult& result);
  Result<OrderAccepted> isolateFor(const Caller& caller, const AutoAction& action,
                                   const std::string& reason, bool automatic);
  Status closeAction(AutoAction action, AutoActionState state, const Caller& caller,
                     const std::string& reason, std::optional<std::string> followup);
  Status saveBreaker();
  void remember(const Caller& caller, const Alert* alert, const AlertResult& result, int64_t now);

  const ResponseConfig& config_;
  const Policy& policy_;
  OrdersService& orders_;
  ControllerStore& store_;
  AuditSink& audit_;
  const Clock& clock_;
  AutoActions actions_;
  std::map<std::string, DetectorState> detectors_;
  ActionWindow window_;
  CircuitBreakerState breaker_;
  std::function<std::vector<IpPrefix>()> protected_addresses_;
  // The most recent decisions as taken; turned into JSON only when asked (recentAlerts), since
  // a storm remembers thousands a second and reads them rarely.
  struct RecentAlert {
    std::string detector;
    int64_t time_ms = 0;
    AlertResult result;
    std::optional<Alert> alert;
  };
  std::deque<RecentAlert> recent_;
  std::map<std::string, int64_t> counters_;  // per decision, plus "requests_over_limit"
  std::optional<std::set<std::string>> isolated_segments_;  // per batch; reset by intake and act
};

}  // namespace shadan::controller

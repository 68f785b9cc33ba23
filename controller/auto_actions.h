#pragma once

// Automatic actions: what a response rule did (an isolate order with a TTL, "act now") or
// proposed (an approval request, when the rule's mode is `approve` or the circuit breaker is
// open), and what became of it: confirmed by an operator (a permanent isolate of the same
// target), released (a release order the agents accept only for isolations that are still
// automatic), declined (a proposal an operator turned down), or expired (its TTL ran out, the
// agents lifted it by themselves). Kept as documents of the controller store, so they survive
// a restart; the open ones are also held in memory (the responder looks them up per alert).
//
// Contracts:
//   - Not thread-safe (the controller's io thread).
//   - Every change is written to the store before the in-memory copy changes.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/ip_prefix.h"
#include "common/isolation_scope.h"
#include "common/result.h"
#include "controller/alerts/response_config.h"
#include "controller/store.h"

namespace shadan::controller {

inline constexpr const char* kAutoActionKind = "auto_action";

enum class AutoActionState { kProposed, kActive, kConfirmed, kReleased, kDeclined, kExpired };
const char* autoActionStateName(AutoActionState state);

struct AutoAction {
  // The isolate order's id for an action taken; an id of its own for a proposal.
  std::string id;
  AutoActionState state = AutoActionState::kActive;
  std::string detector;  // token name
  std::string rule;      // response rule name
  IsolationScope scope = IsolationScope::kHost;
  std::string segment;
  std::optional<IpPrefix> host;  // host scope
  std::string profile = "full";
  int64_t ttl_s = 0;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;  // active: when the agents lift it; proposed: when it lapses
  std::string why;         // "rule eve-trojan", "breaker open: ...", "mode approve"
  int64_t alerts = 1;      // alerts attached (the first and every deduplicated one)
  int64_t last_alert_ms = 0;
  std::optional<std::string> followup_order_id;  // the confirm isolate or the release
  std::optional<std::string> closed_by;          // identity that confirmed/released/declined
  std::optional<std::string> closed_reason;

  bool open() const {
    return state == AutoActionState::kProposed || state == AutoActionState::kActive;
  }
  // Does this action already cover `host` of `segment` (its host, or its whole segment)?
  bool covers(const std::string& host_segment, const std::optional<IpPrefix>& address) const;
  nlohmann::json toJson() const;
  static Result<AutoAction> fromJson(const std::string& text);
};

class AutoActions {
 public:
  explicit AutoActions(ControllerStore& store) : store_(store) {}

  // Loads the open actions from the store (at start).
  Status load();
  // Writes `action` (new or changed) and updates the in-memory view.
  Status put(const AutoAction& action);
  // Updates the in-memory view now and leaves the write to the next flush(): an alert batch
  // stages every deduplicated alert's count and every proposal, then writes them in one store
  // transaction before it answers (a storm costs one commit per batch, not one per alert).
  void stage(const AutoAction& action);
  // Writes every staged action in one transaction. On failure they stay staged (the next
  // flush() tries again) and the in-memory view keeps them.
  Status flush();
  size_t staged() const { return staged_.size(); }
  // An action by id (open ones from memory, closed ones from the store).
  Result<std::optional<AutoAction>> find(const std::string& id);
  const std::map<std::string, AutoAction>& open() const { return open_; }
  // The open action that already covers `address` in `segment` (or the segment itself when
  // `address` is nullopt), if any: the one an alert is attached to instead of a new order.
  const AutoAction* covering(const std::string& segment,
                             const std::optional<IpPrefix>& address) const;
  // Distinct hosts of `segment` with an open host action created at or after `since_ms`.
  size_t distinctHostsSince(const std::string& segment, int64_t since_ms) const;
  // Open actions whose time ran out by `now_ms` (the caller closes them as expired).
  std::vector<AutoAction> lapsed(int64_t now_ms) const;

 private:
  void remember(const AutoAction& action);

  ControllerStore& store_;
  std::map<std::string, AutoAction> open_;
  std::map<std::string, AutoAction> staged_;  // by id; written by flush()
  // Open host actions by (segment, host): covering() answers a repeated alert without a scan
  // (a storm repeats the same hosts thousands of times a second).
  std::map<std::pair<std::string, IpPrefix>, std::string> open_hosts_;
  // Ids of the other open actions (segment actions, host actions on a prefix): the only ones
  // covering() has to scan.
  std::set<std::string> open_wide_;
};

}  // namespace shadan::controller

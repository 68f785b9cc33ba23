#include "agents/link_holder.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "agents/agent_core.h"
#include "agents/ladder.h"

namespace shadan::agent {

Status checkLinkDownSafe(RouteBackend& routes, const Policy& policy,
                         const std::string& gateway_id) {
  const Gateway* gateway = policy.findGateway(gateway_id);
  if (!gateway || gateway->link_down.empty()) return okStatus();
  for (const ManagementRule& rule : policy.always_allow) {
    Result<std::string> via = routes.outputInterfaceTo(rule.prefix);
    if (!via.ok()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "link-down refused: the route to management prefix " +
                           rule.prefix.toString() + " cannot be read (" + via.error().message +
                           ")");
    }
    if (std::find(gateway->link_down.begin(), gateway->link_down.end(), *via) !=
        gateway->link_down.end()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "link-down refused: the management path to " + rule.prefix.toString() +
                           " leaves through " + *via + ", which it would cut");
    }
  }
  return okStatus();
}

LinkHoldResult holdLinks(RouteBackend& routes, const std::vector<std::string>& down,
                         const std::vector<std::string>& release) {
  LinkHoldResult result;
  const auto set = [&](const std::string& ifname, bool up) {
    Result<bool> is_up = routes.isLinkUp(ifname);
    if (!is_up.ok()) {
      result.errors.push_back(ifname + ": " + is_up.error().message);
      return;
    }
    if (*is_up == up) return;
    if (Status status = routes.setLinkUp(ifname, up); !status.ok()) {
      result.errors.push_back(ifname + ": " + status.error().message);
      return;
    }
    result.changed.push_back({ifname, up});
  };
  for (const std::string& ifname : down) set(ifname, false);
  for (const std::string& ifname : release) {
    if (std::find(down.begin(), down.end(), ifname) == down.end()) set(ifname, true);
  }
  return result;
}

namespace {

bool holdsLinkDown(const DesiredState& state) {
  return std::any_of(state.isolations.begin(), state.isolations.end(), [](const auto& active) {
    return active.isolation.scope == IsolationScope::kUplink && active.link_down;
  });
}

}  // namespace

void AgentCore::holdLinksOf(const DesiredState& previous, const DesiredState& next,
                            const std::string& reason, std::vector<std::string>& warnings) {
  const std::vector<std::string> down = linksHeldDown(policy_, gateway_id_, holdsLinkDown(next));
  const std::vector<std::string> release =
      linksHeldDown(policy_, gateway_id_, holdsLinkDown(previous));
  if (down.empty() && release.empty()) return;
  const LinkHoldResult held = holdLinks(routes_, down, release);
  if (held.changed.empty() && held.errors.empty()) return;
  AuditEvent entry = bareEvent("links");
  entry.outcome = held.errors.empty() ? "ok" : "failed";
  entry.reason = reason;
  nlohmann::json changed = nlohmann::json::array();
  for (const LinkChange& change : held.changed) {
    changed.push_back({{"interface", change.ifname}, {"state", change.up ? "up" : "down"}});
  }
  entry.detail = nlohmann::json{{"changed", changed}};
  if (!held.errors.empty()) (*entry.detail)["errors"] = held.errors;
  for (const std::string& error : held.errors) warnings.push_back("link not held: " + error);
  (void)audit(std::move(entry));
}

}  // namespace shadan::agent

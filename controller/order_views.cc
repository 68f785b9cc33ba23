#include "controller/order_views.h"

#include <span>

#include "common/strict_json.h"

namespace shadan::controller {

using nlohmann::json;

Result<json> OrderViews::orderJson(const OrderRecord& order, bool with_acks) {
  json gateways = json::object();
  SHADAN_ASSIGN_OR_RETURN(auto dispatches, ctx_.store.dispatchesForOrder(order.command_id));
  for (const auto& d : dispatches) {
    json entry = {{"state", dispatchStateName(d.state)},
                  {"seq", d.seq},
                  {"sent_at", timeOrNull(d.sent_ms)},
                  {"updated_at", timeOrNull(d.updated_ms)}};
    if (with_acks) {
      entry["ack"] = d.ack_json.empty() ? json(nullptr) : json::parse(d.ack_json, nullptr, false);
    }
    gateways[d.agent_id] = std::move(entry);
  }
  // Targets not dispatched yet (awaiting approval) show as waiting.
  for (const auto& target : order.targets) {
    if (!gateways.contains(target)) gateways[target] = {{"state", "awaiting_approval"}};
  }
  json out = {{"order_id", order.command_id},
              {"action", order.action},
              {"segment", order.segment},
              {"profile", order.profile},
              {"state", orderStateName(order.state)},
              {"requested_by", order.requested_by},
              {"reason", order.reason},
              {"ticket", order.ticket ? json(*order.ticket) : json(nullptr)},
              {"drill", order.drill},
              {"created_at", timeOrNull(order.created_ms)},
              {"expires_at", timeOrNull(order.expires_at_ms)},
              {"gateways", std::move(gateways)}};
  if (with_acks) {
    SHADAN_ASSIGN_OR_RETURN(auto approval, ctx_.store.getApproval(order.command_id));
    if (approval.has_value()) {
      const auto approvers = ctx_.operatorIdentities(approval->signatures);
      out["approval"] = {{"approval_id", approval->approval_id},
                         {"state", approvalStateName(approval->state)},
                         {"needed", approval->needed},
                         {"have", approvers.size()},
                         {"approvers", approvers}};
    }
  }
  return out;
}

Result<json> OrderViews::status() {
  json segments = json::object();
  for (const auto& [name, segment] : ctx_.policy.segments) {
    segments[name] = {
        {"isolated", false}, {"profile", nullptr}, {"gen", 0}, {"protected", segment.is_protected}};
  }
  SHADAN_ASSIGN_OR_RETURN(auto stored, ctx_.store.listSegments());
  for (const auto& s : stored) {
    if (!segments.contains(s.segment)) continue;
    segments[s.segment]["isolated"] = s.isolated;
    segments[s.segment]["profile"] = s.isolated ? json(s.profile) : json(nullptr);
    segments[s.segment]["gen"] = s.gen;
  }
  json gateways = json::object();
  for (const auto& [id, gateway] : ctx_.policy.gateways) {
    gateways[id] = {{"connected", ctx_.channel.connected(id)},
                    {"last_seen", nullptr},
                    {"enrollment", "unknown"},
                    {"state", json::object()}};
  }
  SHADAN_ASSIGN_OR_RETURN(auto agents, ctx_.store.listAgents());
  for (const auto& agent : agents) {
    json& entry = gateways[agent.agent_id];
    entry["connected"] = ctx_.channel.connected(agent.agent_id);
    entry["last_seen"] = timeOrNull(agent.last_seen_ms);
    entry["enrollment"] = agentStatusName(agent.status);
    entry["state"] = agent.last_state_json.empty()
                         ? json::object()
                         : json::parse(agent.last_state_json, nullptr, false);
  }
  json orders = json::array();
  SHADAN_ASSIGN_OR_RETURN(auto recent, ctx_.store.listOrders(ctx_.options.status_orders));
  for (const auto& order : recent) {
    SHADAN_ASSIGN_OR_RETURN(auto entry, orderJson(order, false));
    orders.push_back(std::move(entry));
  }
  return json{{"segments", std::move(segments)},
              {"gateways", std::move(gateways)},
              {"orders", std::move(orders)}};
}

Result<json> OrderViews::order(const std::string& order_id) {
  SHADAN_ASSIGN_OR_RETURN(auto order, ctx_.store.getOrder(order_id));
  if (!order.has_value()) {
    return makeError(ErrorCode::kNotFound, "no order " + quoteForMessage(order_id));
  }
  return orderJson(*order, true);
}

Result<json> OrderViews::pendingApprovals() {
  SHADAN_ASSIGN_OR_RETURN(auto approvals, ctx_.store.pendingApprovals());
  json out = json::array();
  for (const auto& approval : approvals) {
    SHADAN_ASSIGN_OR_RETURN(auto order, ctx_.store.getOrder(approval.command_id));
    const auto approvers = ctx_.operatorIdentities(approval.signatures);
    json entry = {{"approval_id", approval.approval_id},
                  {"order_id", approval.command_id},
                  {"payloadType", approval.payload_type},
                  {"payload", base64Encode(std::span<const uint8_t>(
                                  reinterpret_cast<const uint8_t*>(approval.payload.data()),
                                  approval.payload.size()))},
                  {"rule", approval.rule},
                  {"needed", approval.needed},
                  {"have", approvers.size()},
                  {"approvers", approvers},
                  {"expires_at", formatRfc3339(approval.expires_ms)}};
    if (order.has_value()) {
      entry["action"] = order->action;
      entry["segment"] = order->segment;
      entry["profile"] = order->profile;
      entry["requested_by"] = order->requested_by;
      entry["reason"] = order->reason;
    }
    out.push_back(std::move(entry));
  }
  return json{{"approvals", std::move(out)}};
}

Result<json> OrderViews::agents() {
  SHADAN_ASSIGN_OR_RETURN(auto agents, ctx_.store.listAgents());
  json out = json::array();
  for (const auto& agent : agents) {
    out.push_back({{"agent_id", agent.agent_id},
                   {"keyid", agent.keyid},
                   {"status", agentStatusName(agent.status)},
                   {"key_known", agent.public_key.has_value()},
                   {"connected", ctx_.channel.connected(agent.agent_id)},
                   {"first_seen", timeOrNull(agent.first_seen_ms)},
                   {"last_seen", timeOrNull(agent.last_seen_ms)}});
  }
  return json{{"agents", std::move(out)}};
}

}  // namespace shadan::controller

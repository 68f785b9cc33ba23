#include "controller/order_views.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/orders.h"
#include "common/strict_json.h"
#include "controller/gateway_ladder.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

// How many of the newest orders status() reads to find each segment's latest dispatched order.
// Orders come from people and detectors acting on incidents, so this covers months; a segment
// whose last order is older shows "unknown" rather than a guess.
constexpr size_t kOrdersReadForSegments = 2000;

// What the store and the channel say about one gateway of one order.
struct GatewayFact {
  std::string delivery;             // see order_views.h
  std::optional<std::string> note;  // why a queued dispatch was not sent
  bool connected = false;
  std::optional<int64_t> until_ms;  // an applied isolate with a ttl: lifted on its own from then
  bool lapsed = false;              // ... and that time has passed
};

// Agents by id, for a view that looks up every gateway of a fleet (a scan each made an order's
// view of 10,000 gateways quadratic).
class AgentIndex {
 public:
  explicit AgentIndex(const std::vector<AgentRecord>& agents) {
    by_id_.reserve(agents.size());
    for (const auto& agent : agents) by_id_.emplace(agent.agent_id, &agent);
  }
  const AgentRecord* find(const std::string& id) const {
    const auto found = by_id_.find(id);
    return found == by_id_.end() ? nullptr : found->second;
  }

 private:
  std::unordered_map<std::string_view, const AgentRecord*> by_id_;
};

// `dispatch` is null while the order awaits approval (or expired awaiting it).
GatewayFact gatewayFact(const OrderRecord& order, const DispatchRecord* dispatch,
                        const AgentRecord* agent, bool connected, std::optional<int64_t> ttl_s,
                        int64_t now) {
  GatewayFact fact;
  fact.connected = connected;
  if (dispatch == nullptr) {
    fact.delivery = order.state == OrderState::kExpired ? "expired" : "awaiting_approval";
    return fact;
  }
  switch (dispatch->state) {
    case DispatchState::kPending:
      // Delivery::deliverPending sends only on a live session of an approved agent, and sends
      // again after every reconnect: anything else is still waiting at the controller.
      if (!connected) {
        fact.delivery = "queued";
        fact.note = agent == nullptr ? "gateway never connected" : "gateway offline";
      } else if (agent == nullptr || agent->status != AgentStatus::kApproved) {
        fact.delivery = "queued";
        fact.note = "agent not approved";
      } else if (dispatch->sent_ms == 0) {
        fact.delivery = "queued";
        fact.note = "not sent yet";
      } else {
        fact.delivery = "pending";
      }
      return fact;
    case DispatchState::kApplied:
    case DispatchState::kAlreadyApplied:
      fact.delivery = dispatchStateName(dispatch->state);
      break;
    case DispatchState::kFailed:
    case DispatchState::kRejected:
    case DispatchState::kExpired:
      fact.delivery = dispatchStateName(dispatch->state);
      return fact;
  }
  if (order.action == "isolate" && ttl_s) {
    // The agent lifts a timed isolation at its apply time + ttl, or later when an earlier
    // order asked for more; the ack's time (or, without one, its arrival) is the lower bound.
    int64_t from = dispatch->updated_ms;
    if (auto ack = parseAck(dispatch->ack_json); ack.ok() && ack->applied_at_ms) {
      from = *ack->applied_at_ms;
    }
    fact.until_ms = from + *ttl_s * 1000;
    fact.lapsed = now >= *fact.until_ms;
  }
  return fact;
}

// Counts over one order's gateways.
struct Tally {
  int total = 0;
  int applied = 0;  // applied or already_applied, and not lapsed
  int pending = 0;
  int queued = 0;
  int offline = 0;  // queued because the gateway is not connected
  int failed = 0;   // failed or rejected
  int expired = 0;
  int awaiting = 0;
  int lapsed = 0;
  std::optional<int64_t> until_ms;  // the earliest ttl end among those still applied

  void add(const GatewayFact& fact) {
    ++total;
    if (fact.delivery == "applied" || fact.delivery == "already_applied") {
      if (fact.lapsed) {
        ++lapsed;
      } else {
        ++applied;
        if (fact.until_ms) until_ms = std::min(until_ms.value_or(*fact.until_ms), *fact.until_ms);
      }
    } else if (fact.delivery == "pending") {
      ++pending;
    } else if (fact.delivery == "queued") {
      ++queued;
      if (!fact.connected) ++offline;
    } else if (fact.delivery == "failed" || fact.delivery == "rejected") {
      ++failed;
    } else if (fact.delivery == "expired") {
      ++expired;
    } else {
      ++awaiting;
    }
  }

  std::string outcome() const {
    if (awaiting > 0) return "awaiting_approval";
    if (total > 0 && applied == total) return "applied";
    if (applied > 0) return "partial";
    if (pending > 0) return "pending";
    if (queued > 0) return "queued";
    if (lapsed > 0) return "lapsed";
    if (total > 0 && expired == total) return "expired";
    return "failed";
  }

  json toJson() const {
    return {{"total", total},     {"applied", applied}, {"pending", pending},
            {"queued", queued},   {"offline", offline}, {"failed", failed},
            {"expired", expired}, {"lapsed", lapsed},   {"awaiting_approval", awaiting}};
  }
};

// The segment's state when `action` is its latest dispatched order and `outcome` that order's.
std::string segmentState(const std::string& action, const std::string& outcome) {
  if (outcome == "applied") return action == "isolate" ? "isolated" : "open";
  if (outcome == "partial" || outcome == "pending" || outcome == "queued" || outcome == "lapsed") {
    return outcome;
  }
  return "failed";  // failed or expired: no gateway applied it and none will
}

}  // namespace

// Where each gateway's session is: on this controller (its channel) or, with several
// controllers on one store, on another (the store's presence records, store.h).
struct Sessions {
  OrdersContext& ctx;
  std::map<std::string, std::string> presence;  // agent → the controller its session is on
  bool connected(const std::string& id) const {
    return ctx.channel.connected(id) || presence.count(id) != 0;
  }
  json connectedTo(const std::string& id) const {
    const auto found = presence.find(id);
    return found == presence.end() ? json(nullptr) : json(found->second);
  }
};

namespace {

Result<Sessions> readSessions(OrdersContext& ctx) {
  SHADAN_ASSIGN_OR_RETURN(auto presence, ctx.store.presence());
  return Sessions{ctx, std::move(presence)};
}

// One order's facts: per gateway, and counted.
struct OrderFacts {
  std::optional<Authz> authz;  // the order's authz, when its stored bytes parse
  std::map<std::string, GatewayFact> gateways;
  std::map<std::string, const DispatchRecord*> dispatches;
  Tally tally;
};

}  // namespace

namespace {

// The facts of `order`, whose dispatches are `dispatches`, as of now.
OrderFacts orderFacts(OrdersContext& ctx, const OrderRecord& order,
                      const std::vector<DispatchRecord>& dispatches,
                      const std::vector<AgentRecord>& agents, const Sessions& sessions) {
  OrderFacts facts;
  std::optional<int64_t> ttl_s;
  if (auto authz = parseAuthz(order.authz_payload); authz.ok()) {
    ttl_s = authz->ttl_s;
    // The agents cap a drill's ttl at the policy's agent.drill_max_ttl_s (the policy is the
    // same on the controller and every agent), and so does this view.
    if (authz->drill && ttl_s) ttl_s = std::min(*ttl_s, ctx.policy.agent.drill_max_ttl_s);
    facts.authz = std::move(*authz);
  }
  std::vector<std::string> ids = order.targets;
  const std::unordered_set<std::string_view> targets(order.targets.begin(), order.targets.end());
  for (const auto& dispatch : dispatches) {
    facts.dispatches[dispatch.agent_id] = &dispatch;
    if (targets.count(dispatch.agent_id) == 0) ids.push_back(dispatch.agent_id);
  }
  const AgentIndex index(agents);
  const int64_t now = ctx.nowMs();
  for (const auto& id : ids) {
    const auto dispatch = facts.dispatches.find(id);
    GatewayFact fact =
        gatewayFact(order, dispatch == facts.dispatches.end() ? nullptr : dispatch->second,
                    index.find(id), sessions.connected(id), ttl_s, now);
    facts.tally.add(fact);
    facts.gateways[id] = std::move(fact);
  }
  return facts;
}

// "hosts" of a host order and "link_down" of an uplink isolate, from its authz.
void addRungMembers(const std::optional<Authz>& authz, json& out) {
  if (!authz) return;
  if (authz->scope == IsolationScope::kHost) {
    json hosts = json::array();
    for (const IpPrefix& host : authz->hosts) hosts.push_back(host.toString());
    out["hosts"] = std::move(hosts);
  }
  if (authz->scope == IsolationScope::kUplink && authz->action == OrderAction::kIsolate) {
    out["link_down"] = authz->link_down;
  }
}

// Per gateway, whether its uplink links are down as far as its acks say: true once it applied
// an uplink isolate with link_down, until it applied an uplink restore (another isolate
// without link_down does not set them up). Gateways that applied no uplink order among
// `recent` (newest first) are absent.
Result<std::map<std::string, bool>> uplinkLinkDown(OrdersContext& ctx,
                                                   const std::vector<OrderRecord>& recent) {
  std::map<std::string, bool> out;
  std::set<std::string> decided;
  for (const auto& order : recent) {
    if (order.scope != IsolationScope::kUplink || order.state != OrderState::kDispatched) continue;
    auto authz = parseAuthz(order.authz_payload);
    if (!authz.ok()) continue;
    const bool restore = authz->action == OrderAction::kRestore;
    SHADAN_ASSIGN_OR_RETURN(auto dispatches, ctx.store.dispatchesForOrder(order.command_id));
    for (const auto& dispatch : dispatches) {
      if ((dispatch.state != DispatchState::kApplied &&
           dispatch.state != DispatchState::kAlreadyApplied) ||
          decided.count(dispatch.agent_id) != 0) {
        continue;
      }
      out[dispatch.agent_id] = authz->link_down;
      if (restore || authz->link_down) decided.insert(dispatch.agent_id);
    }
  }
  return out;
}

}  // namespace

Result<json> OrderViews::orderJson(const OrderRecord& order, bool with_acks,
                                   const std::vector<AgentRecord>& agents,
                                   const Sessions& sessions) {
  SHADAN_ASSIGN_OR_RETURN(auto dispatches, ctx_.store.dispatchesForOrder(order.command_id));
  const OrderFacts facts = orderFacts(ctx_, order, dispatches, agents, sessions);
  json gateways = json::object();
  for (const auto& [id, fact] : facts.gateways) {
    json entry;
    if (const auto found = facts.dispatches.find(id); found != facts.dispatches.end()) {
      const DispatchRecord& d = *found->second;
      entry = {{"state", dispatchStateName(d.state)},
               {"seq", d.seq},
               {"sent_at", timeOrNull(d.sent_ms)},
               {"updated_at", timeOrNull(d.updated_ms)}};
      if (with_acks) {
        entry["ack"] = d.ack_json.empty() ? json(nullptr) : json::parse(d.ack_json, nullptr, false);
      }
    } else {
      entry = {{"state", "awaiting_approval"}};  // not dispatched yet
    }
    entry["delivery"] = fact.delivery;
    entry["connected"] = fact.connected;
    if (fact.note) entry["note"] = *fact.note;
    if (fact.until_ms) {
      entry["until"] = formatRfc3339(*fact.until_ms);
      entry["lapsed"] = fact.lapsed;
    }
    gateways[id] = std::move(entry);
  }
  json out = {{"order_id", order.command_id},
              {"action", order.action},
              {"scope", isolationScopeName(order.scope)},
              {"segment", order.segment.empty() ? json(nullptr) : json(order.segment)},
              {"profile", order.profile},
              {"state", orderStateName(order.state)},
              {"outcome", facts.tally.outcome()},
              {"counts", facts.tally.toJson()},
              {"requested_by", order.requested_by},
              {"reason", order.reason},
              {"ticket", order.ticket ? json(*order.ticket) : json(nullptr)},
              {"drill", order.drill},
              {"created_at", timeOrNull(order.created_ms)},
              {"expires_at", timeOrNull(order.expires_at_ms)},
              {"gateways", std::move(gateways)}};
  addRungMembers(facts.authz, out);
  if (with_acks) {
    SHADAN_ASSIGN_OR_RETURN(auto approval, ctx_.store.getApproval(order.command_id));
    if (approval.has_value()) {
      const auto approvers = ctx_.operatorIdentities(approval->signatures, order.drill);
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
  SHADAN_ASSIGN_OR_RETURN(auto agents, ctx_.store.listAgents());
  SHADAN_ASSIGN_OR_RETURN(const Sessions sessions, readSessions(ctx_));
  json segments = json::object();
  for (const auto& [name, segment] : ctx_.policy.segments) {
    json bordered_by = json::array();
    for (const auto& [id, gateway] : ctx_.policy.gateways) {
      if (std::count(gateway.borders.begin(), gateway.borders.end(), name) > 0) {
        bordered_by.push_back(id);
      }
    }
    const size_t bordering = bordered_by.size();
    segments[name] = {{"isolated", false},
                      {"profile", nullptr},
                      {"gen", 0},
                      {"protected", segment.is_protected},
                      {"state", "open"},
                      {"order_id", nullptr},
                      {"action", nullptr},
                      {"applied", 0},
                      {"gateways", bordering},
                      {"counts", nullptr},
                      {"by_gateway", json::object()},
                      {"bordered_by", std::move(bordered_by)},
                      {"until", nullptr}};
  }
  SHADAN_ASSIGN_OR_RETURN(auto stored, ctx_.store.listSegments());
  for (const auto& s : stored) {
    if (!segments.contains(s.segment)) continue;
    segments[s.segment]["isolated"] = s.isolated;
    segments[s.segment]["profile"] = s.isolated ? json(s.profile) : json(nullptr);
    segments[s.segment]["gen"] = s.gen;
  }
  // Newest first. A segment's gen is allocated in the transaction that first stores its order,
  // so the newest dispatched order of a segment has the highest gen of those dispatched: the one
  // the agents hold (they refuse lower gens).
  SHADAN_ASSIGN_OR_RETURN(auto recent, ctx_.store.listOrders(std::max(kOrdersReadForSegments,
                                                                      ctx_.options.status_orders)));
  std::map<std::string, const OrderRecord*> latest;
  for (const auto& order : recent) {
    // Host orders name a segment too, but a segment's state is about its own cut.
    if (order.state == OrderState::kDispatched && order.scope == IsolationScope::kSegment &&
        segments.contains(order.segment)) {
      latest.emplace(order.segment, &order);
    }
  }
  for (auto& [name, segment] : segments.items()) {
    const auto found = latest.find(name);
    if (found == latest.end()) {
      // Nothing dispatched among the orders read: never ordered, or ordered too long ago.
      if (segment["isolated"] == true) segment["state"] = "unknown";
      continue;
    }
    const OrderRecord& order = *found->second;
    SHADAN_ASSIGN_OR_RETURN(auto dispatches, ctx_.store.dispatchesForOrder(order.command_id));
    const OrderFacts facts = orderFacts(ctx_, order, dispatches, agents, sessions);
    json by_gateway = json::object();
    for (const auto& [id, fact] : facts.gateways) by_gateway[id] = fact.delivery;
    segment["state"] = segmentState(order.action, facts.tally.outcome());
    segment["order_id"] = order.command_id;
    segment["action"] = order.action;
    segment["applied"] = facts.tally.applied;
    segment["gateways"] = facts.tally.total;
    segment["counts"] = facts.tally.toJson();
    segment["by_gateway"] = std::move(by_gateway);
    segment["until"] =
        facts.tally.until_ms ? json(formatRfc3339(*facts.tally.until_ms)) : json(nullptr);
  }
  json gateways = json::object();
  for (const auto& [id, gateway] : ctx_.policy.gateways) {
    gateways[id] = {{"connected", sessions.connected(id)},
                    {"connected_to", sessions.connectedTo(id)},
                    {"last_seen", nullptr},
                    {"enrollment", "unknown"},
                    {"state", json::object()},
                    {"unacked", 0}};
  }
  for (const auto& agent : agents) {
    json& entry = gateways[agent.agent_id];
    entry["connected"] = sessions.connected(agent.agent_id);
    entry["connected_to"] = sessions.connectedTo(agent.agent_id);
    entry["last_seen"] = timeOrNull(agent.last_seen_ms);
    entry["enrollment"] = agentStatusName(agent.status);
    entry["state"] = agent.last_state_json.empty()
                         ? json::object()
                         : json::parse(agent.last_state_json, nullptr, false);
  }
  SHADAN_ASSIGN_OR_RETURN(auto link_down, uplinkLinkDown(ctx_, recent));
  OrderReader pending_orders(ctx_.store);  // once per order, not once per gateway
  const AgentIndex index(agents);
  std::vector<std::string> ids;
  for (const auto& [id, entry] : gateways.items()) ids.push_back(id);
  SHADAN_ASSIGN_OR_RETURN(auto all_waiting, ctx_.store.pendingDispatchesOf(ids));
  size_t next = 0;
  for (auto& [id, entry] : gateways.items()) {
    const std::vector<DispatchRecord>& waiting = all_waiting[next++];
    entry["unacked"] = waiting.size();
    const AgentRecord* agent = index.find(id);
    GatewayLadder ladder = ladderFromLastState(agent == nullptr ? "" : agent->last_state_json);
    if (const auto found = link_down.find(id); found != link_down.end()) {
      ladder.link_down = found->second;
    }
    for (const auto& dispatch : waiting) {
      SHADAN_ASSIGN_OR_RETURN(const OrderRecord* order, pending_orders.get(dispatch.command_id));
      if (order == nullptr) continue;
      ladder.pending.push_back(
          PendingRung{order->command_id, order->action, order->scope, order->segment});
    }
    entry["ladder"] = ladder.toJson();
  }
  json orders = json::array();
  for (size_t i = 0; i < recent.size() && i < ctx_.options.status_orders; ++i) {
    SHADAN_ASSIGN_OR_RETURN(auto entry, orderJson(recent[i], false, agents, sessions));
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
  SHADAN_ASSIGN_OR_RETURN(auto agents, ctx_.store.listAgents());
  SHADAN_ASSIGN_OR_RETURN(const Sessions sessions, readSessions(ctx_));
  return orderJson(*order, true, agents, sessions);
}

Result<json> OrderViews::pendingApprovals() {
  SHADAN_ASSIGN_OR_RETURN(auto approvals, ctx_.store.pendingApprovals());
  json out = json::array();
  for (const auto& approval : approvals) {
    SHADAN_ASSIGN_OR_RETURN(auto order, ctx_.store.getOrder(approval.command_id));
    const auto approvers =
        ctx_.operatorIdentities(approval.signatures, order.has_value() && order->drill);
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
      entry["scope"] = isolationScopeName(order->scope);
      entry["segment"] = order->segment.empty() ? json(nullptr) : json(order->segment);
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
  SHADAN_ASSIGN_OR_RETURN(const Sessions sessions, readSessions(ctx_));
  json out = json::array();
  for (const auto& agent : agents) {
    out.push_back({{"agent_id", agent.agent_id},
                   {"keyid", agent.keyid},
                   {"status", agentStatusName(agent.status)},
                   {"key_known", agent.public_key.has_value()},
                   {"connected", sessions.connected(agent.agent_id)},
                   {"connected_to", sessions.connectedTo(agent.agent_id)},
                   {"first_seen", timeOrNull(agent.first_seen_ms)},
                   {"last_seen", timeOrNull(agent.last_seen_ms)}});
  }
  return json{{"agents", std::move(out)}};
}

Result<json> OrderViews::preview(const OrderPlan& plan) {
  const OrderTarget& target = plan.target;
  const bool isolate = plan.action == OrderAction::kIsolate;
  json out = {{"action", orderActionName(plan.action)},
              {"scope", isolationScopeName(target.scope)},
              {"segment", target.segment.empty() ? json(nullptr) : json(target.segment)},
              {"profile", plan.profile},
              {"ttl_s", plan.ttl_s ? json(*plan.ttl_s) : json(nullptr)},
              {"drill", plan.drill}};
  json hosts = json::array();
  for (const IpPrefix& host : target.hosts) hosts.push_back(host.toString());
  out["hosts"] = std::move(hosts);
  if (target.link_down) out["link_down"] = true;
  json notes = json::array();
  out["signing"] = plan.rule.empty()
                       ? json{{"by", "controller"}, {"rule", nullptr}, {"operators", 0}}
                       : json{{"by", "operators"}, {"rule", plan.rule}, {"operators", plan.needed}};
  if (!plan.rule.empty()) {
    notes.push_back("waits for " + std::to_string(plan.needed) + " operator signature" +
                    (plan.needed == 1 ? "" : "s") + " (rule " + plan.rule +
                    ") before any gateway acts");
  }

  SHADAN_ASSIGN_OR_RETURN(auto agents, ctx_.store.listAgents());
  SHADAN_ASSIGN_OR_RETURN(const Sessions sessions, readSessions(ctx_));
  const AgentIndex index(agents);
  json gateways = json::array();
  size_t offline = 0;
  for (const std::string& id : target.gateways) {
    const AgentRecord* agent = index.find(id);
    const bool connected = sessions.connected(id);
    const bool approved = agent != nullptr && agent->status == AgentStatus::kApproved;
    if (!connected || !approved) ++offline;
    json gateway = {{"gateway_id", id},
                    {"connected", connected},
                    {"enrollment", agent == nullptr ? "unknown" : agentStatusName(agent->status)}};
    // The gateway's interfaces facing what is cut: the segment's, or for an uplink the default
    // segment's.
    std::string facing = target.segment;
    if (target.scope == IsolationScope::kUplink && ctx_.policy.defaultSegment() != nullptr) {
      facing = ctx_.policy.defaultSegment()->name;
    }
    if (const Gateway* policy_gateway = ctx_.policy.findGateway(id);
        policy_gateway != nullptr && !facing.empty()) {
      const auto found = policy_gateway->interfaces.find(facing);
      if (found != policy_gateway->interfaces.end()) gateway["interfaces"] = found->second;
    }
    gateways.push_back(std::move(gateway));
  }
  if (offline > 0) {
    notes.push_back(std::to_string(offline) + " of " + std::to_string(target.gateways.size()) +
                    " gateways cannot act now (offline or not approved): the order waits for "
                    "them at the controller until its authorization expires");
  }
  out["gateways"] = std::move(gateways);

  // What is cut: the segment's prefixes, the hosts, or the gateways' uplinks / everything.
  json cuts = {{"prefixes", json::array()}};
  const Profile* profile = ctx_.policy.findProfile(plan.profile);
  switch (target.scope) {
    case IsolationScope::kSegment:
      if (const Segment* segment = ctx_.policy.findSegment(target.segment); segment != nullptr) {
        for (const IpPrefix& prefix : segment->prefixes)
          cuts["prefixes"].push_back(prefix.toString());
      }
      cuts["what"] = "segment " + target.segment;
      break;
    case IsolationScope::kHost:
      cuts["prefixes"] = out["hosts"];
      cuts["what"] = "hosts in segment " + target.segment;
      break;
    case IsolationScope::kUplink:
      cuts["what"] = "the uplink (the default segment) of each gateway";
      break;
    case IsolationScope::kIsland:
      cuts["what"] = "every segment of each gateway from every other";
      break;
  }
  if (profile != nullptr && !profile->isFull()) {
    cuts["from"] = profile->peers;
  } else {
    cuts["from"] = "everything";
  }
  out["cuts"] = std::move(cuts);

  // What stays open whatever the order: management flows always; a profile's allow list
  // during an isolate.
  json management = json::array();
  for (const ManagementRule& rule : ctx_.policy.always_allow) {
    json item = {{"prefix", rule.prefix.toString()},
                 {"proto", l4ProtoName(rule.proto)},
                 {"description", rule.description}};
    item["port"] = rule.port ? json(*rule.port) : json(nullptr);
    management.push_back(std::move(item));
  }
  json allow = json::array();
  if (isolate && profile != nullptr) {
    for (const AllowRule& rule : profile->allow) {
      allow.push_back({{"prefix", rule.prefix.toString()}, {"description", rule.description}});
    }
  }
  out["keeps"] = {{"management", std::move(management)}, {"allow", std::move(allow)}};
  if (plan.drill) {
    notes.push_back("a drill: every audit entry says so, and the isolation ends on its own");
  }
  out["notes"] = std::move(notes);
  return out;
}

}  // namespace shadan::controller

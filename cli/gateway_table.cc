#include "cli/gateway_table.h"

#include <algorithm>
#include <ostream>

#include "cli/controller_context.h"
#include "common/duration.h"
#include "common/ed25519.h"
#include "common/orders.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

// Hosts shown per segment in the ladder table before "(+N more)".
constexpr size_t kHostsShown = 3;

std::string joinedStrings(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

// The strings of a JSON array; anything else is skipped.
std::vector<std::string> stringsOf(const Json& array) {
  std::vector<std::string> out;
  if (!array.is_array()) return out;
  for (const Json& item : array) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

std::string targetText(const std::string& scope, const std::string& segment,
                       const std::vector<std::string>& hosts, bool link_down) {
  if (scope == "uplink") return link_down ? "uplink (links down)" : "uplink";
  if (scope == "island") return "island";
  if (scope == "host") {
    return (hosts.size() == 1 ? "host " : "hosts ") + joinedStrings(hosts, ", ") + " in " + segment;
  }
  return segment;
}

// The ack of a gateway as the controller reports it: a DSSE ack envelope (decoded and parsed
// for display only; the controller verified it), or plain fields.
void fillFromAck(const Json& ack, GatewayRow& row) {
  if (!ack.is_object()) return;
  if (ack.contains("envelope")) return fillFromAck(ack["envelope"], row);
  if (ack.contains("payload") && ack["payload"].is_string()) {
    auto bytes = base64Decode(ack["payload"].get<std::string>());
    if (!bytes.ok()) return;
    auto parsed = parseAck(std::string(bytes->begin(), bytes->end()));
    if (!parsed.ok()) return;
    if (parsed->applied_at_ms) row.applied_at = formatRfc3339(*parsed->applied_at_ms);
    row.ruleset = parsed->ruleset_sha256;
    if (parsed->reason) row.reason = *parsed->reason;
    return;
  }
  if (row.applied_at == "-") row.applied_at = jsonText(ack, "applied_at");
  if (row.ruleset == "-") row.ruleset = jsonText(ack, "ruleset_sha256");
  if (row.reason == "-") row.reason = jsonText(ack, "reason");
}

GatewayRow gatewayRow(const std::string& id, const Json& entry) {
  GatewayRow row;
  row.gateway = id;
  if (entry.is_string()) {
    row.state = entry.get<std::string>();
    return row;
  }
  row.state = firstJsonText(entry, {"delivery", "state"});
  row.note = jsonText(entry, "note");
  row.delivery_known = entry.is_object() && entry.contains("delivery");
  row.applied_at = jsonText(entry, "applied_at");
  row.ruleset = jsonText(entry, "ruleset_sha256");
  row.reason = jsonText(entry, "reason");
  for (auto [key, slot] : {std::pair{"sent_at", &row.sent_ms}, {"updated_at", &row.updated_ms}}) {
    if (std::string value = jsonText(entry, key); value != "-") {
      if (auto ms = parseRfc3339UtcMillis(value); ms.ok()) *slot = *ms;
    }
  }
  if (entry.is_object() && entry.contains("ack")) fillFromAck(entry["ack"], row);
  return row;
}

// Dispatch sent -> ack received, both on the controller's clock; nullopt until answered.
std::optional<int64_t> ackMillis(const GatewayRow& row) {
  if (!isFinalGatewayState(row.state) || row.state == "expired" || !row.sent_ms ||
      !row.updated_ms) {
    return std::nullopt;
  }
  return *row.updated_ms - *row.sent_ms;
}

}  // namespace

bool isFinalGatewayState(const std::string& state) {
  return state == "applied" || state == "already_applied" || state == "failed" ||
         state == "rejected" || state == "expired";
}
bool isAppliedGatewayState(const std::string& state) {
  return state == "applied" || state == "already_applied";
}

std::vector<GatewayRow> gatewayRows(const Json& order) {
  std::vector<GatewayRow> rows;
  const Json* gateways = nullptr;
  if (order.is_object() && order.contains("gateways")) {
    gateways = &order["gateways"];
  } else if (order.is_object() && order.contains("order") && order["order"].is_object() &&
             order["order"].contains("gateways")) {
    gateways = &order["order"]["gateways"];
  }
  if (gateways == nullptr) return rows;
  if (gateways->is_object()) {
    for (const auto& [id, entry] : gateways->items()) rows.push_back(gatewayRow(id, entry));
  } else if (gateways->is_array()) {
    for (const Json& entry : *gateways) {
      if (entry.is_string()) {
        GatewayRow row;
        row.gateway = entry.get<std::string>();
        row.state = "pending";
        rows.push_back(std::move(row));
      } else {
        rows.push_back(gatewayRow(firstJsonText(entry, {"gateway", "agent_id", "id"}), entry));
      }
    }
  }
  return rows;
}

void printGatewayTable(std::ostream& out, const std::vector<GatewayRow>& rows) {
  std::vector<std::vector<std::string>> table = {
      {"GATEWAY", "STATE", "APPLIED_AT", "ACK_MS", "RULESET", "REASON"}};
  std::optional<int64_t> first_sent;
  std::optional<int64_t> last_ack;
  bool all_answered = !rows.empty();
  for (const GatewayRow& row : rows) {
    const std::optional<int64_t> ack_ms = ackMillis(row);
    table.push_back({row.gateway, row.state, row.applied_at, ack_ms ? std::to_string(*ack_ms) : "-",
                     row.ruleset == "-" ? "-" : row.ruleset.substr(0, 12),
                     row.reason == "-" ? row.note : row.reason});
    if (!ack_ms) {
      all_answered = false;
      continue;
    }
    first_sent = std::min(first_sent.value_or(*row.sent_ms), *row.sent_ms);
    last_ack = std::max(last_ack.value_or(*row.updated_ms), *row.updated_ms);
  }
  printTable(out, table);
  // What an operator wants to know in an emergency: how long until every gateway answered.
  if (all_answered && first_sent && last_ack) {
    out << "dispatch -> last ack: " << (*last_ack - *first_sent) << " ms (" << rows.size()
        << " gateway" << (rows.size() == 1 ? "" : "s") << ", controller clock)\n";
  }
}

std::string describeGateway(const GatewayRow& row) {
  std::string why;
  if (row.state == "queued") {
    why = row.note == "-" ? "not sent yet" : row.note;
  } else if (row.state == "pending") {
    why = row.delivery_known ? "sent, no ack yet" : "no ack yet";
  } else if (row.state == "expired") {
    why = "no ack before the order expired";
  } else if (row.state == "awaiting_approval") {
    why = "not dispatched yet";
  } else if (row.reason != "-") {
    why = row.reason;
  }
  return row.gateway + " " + row.state + (why.empty() ? "" : " (" + why + ")");
}

std::string describeGateways(const std::vector<GatewayRow>& rows, bool (*pick)(const GatewayRow&)) {
  std::string out;
  for (const GatewayRow& row : rows) {
    if (pick(row)) out += (out.empty() ? "" : ", ") + describeGateway(row);
  }
  return out;
}

std::string orderFactsText(const std::vector<GatewayRow>& rows) {
  if (rows.empty()) return "the controller reports no gateways";
  const auto applied = [](const GatewayRow& r) { return isAppliedGatewayState(r.state); };
  const auto waiting = [](const GatewayRow& r) { return !isFinalGatewayState(r.state); };
  const auto failed = [](const GatewayRow& r) {
    return isFinalGatewayState(r.state) && !isAppliedGatewayState(r.state);
  };
  if (std::all_of(rows.begin(), rows.end(), applied)) {
    std::string names;
    for (const GatewayRow& row : rows) names += (names.empty() ? "" : ", ") + row.gateway;
    return "applied on every gateway (" + names + ")";
  }
  std::string out;
  std::string names;
  for (const GatewayRow& row : rows) {
    if (applied(row)) names += (names.empty() ? "" : ", ") + row.gateway;
  }
  if (!names.empty()) out = "applied on: " + names;
  for (auto [label, pick] :
       {std::pair<const char*, bool (*)(const GatewayRow&)>{"not yet applied: ", waiting},
        {"failed on: ", failed}}) {
    if (std::string text = describeGateways(rows, pick); !text.empty()) {
      out += (out.empty() ? "" : "; ") + std::string(label) + text;
    }
  }
  return out;
}

std::string orderTargetText(const Json& order) {
  if (!order.is_object()) return "-";
  const std::string scope = jsonText(order, "scope");
  const bool link_down = order.contains("link_down") && order["link_down"].is_boolean() &&
                         order["link_down"].get<bool>();
  return targetText(
      scope, jsonText(order, "segment"),
      order.contains("hosts") ? stringsOf(order["hosts"]) : std::vector<std::string>{}, link_down);
}

std::string authzTargetText(const Authz& authz) {
  std::vector<std::string> hosts;
  for (const IpPrefix& host : authz.hosts) hosts.push_back(host.toString());
  return targetText(isolationScopeName(authz.scope), authz.segment, hosts, authz.link_down);
}

bool hasLadder(const Json& gateways) {
  if (!gateways.is_object()) return false;
  for (const auto& [id, gateway] : gateways.items()) {
    if (gateway.is_object() && gateway.contains("ladder") && gateway["ladder"].is_object()) {
      return true;
    }
  }
  return false;
}

void printLadderTable(std::ostream& out, const Json& gateways) {
  std::vector<std::vector<std::string>> table = {
      {"GATEWAY", "SEGMENTS", "HOSTS", "UPLINK", "ISLAND", "NOT_ACKED"}};
  for (const auto& [id, gateway] : gateways.items()) {
    if (!gateway.is_object() || !gateway.contains("ladder") || !gateway["ladder"].is_object()) {
      continue;
    }
    const Json& ladder = gateway["ladder"];
    std::vector<std::string> segments;
    if (ladder.contains("segments") && ladder["segments"].is_object()) {
      for (const auto& [segment, profiles] : ladder["segments"].items()) {
        for (const std::string& profile : stringsOf(profiles)) {
          segments.push_back(segment + ":" + profile);
        }
      }
    }
    const std::vector<std::string> unlisted = ladder.contains("hosts_unlisted")
                                                  ? stringsOf(ladder["hosts_unlisted"])
                                                  : std::vector<std::string>{};
    std::vector<std::string> hosts;
    if (ladder.contains("hosts") && ladder["hosts"].is_object()) {
      for (const auto& [segment, listed] : ladder["hosts"].items()) {
        std::vector<std::string> shown = stringsOf(listed);
        std::string cell = segment;
        if (!shown.empty()) {
          const size_t more = shown.size() > kHostsShown ? shown.size() - kHostsShown : 0;
          shown.resize(std::min(shown.size(), kHostsShown));
          cell += " " + joinedStrings(shown, ",");
          if (more > 0) cell += " (+" + std::to_string(more) + " more)";
        }
        if (std::find(unlisted.begin(), unlisted.end(), segment) != unlisted.end()) {
          cell += " (more than the ack lists)";
        }
        hosts.push_back(std::move(cell));
      }
    }
    std::string uplink = "-";
    if (ladder.contains("uplink") && ladder["uplink"].is_object()) {
      const Json& cut = ladder["uplink"];
      uplink =
          cut.contains("link_down") && cut["link_down"].is_boolean() && cut["link_down"].get<bool>()
              ? "CUT, LINKS DOWN"
              : "CUT";
    }
    const bool island = ladder.contains("island") && ladder["island"].is_object();
    std::vector<std::string> pending;
    if (ladder.contains("pending") && ladder["pending"].is_array()) {
      for (const Json& order : ladder["pending"]) {
        const std::string scope = jsonText(order, "scope");
        std::string text = jsonText(order, "action") + " " + scope;
        if (std::string segment = jsonText(order, "segment"); segment != "-") {
          text += " " + segment;
        }
        pending.push_back(std::move(text));
      }
    }
    table.push_back({id, segments.empty() ? "-" : joinedStrings(segments, ","),
                     hosts.empty() ? "-" : joinedStrings(hosts, "; "), uplink,
                     island ? "ISLAND" : "-",
                     pending.empty() ? "-" : joinedStrings(pending, ", ")});
  }
  printTable(out, table);
}

}  // namespace shadan

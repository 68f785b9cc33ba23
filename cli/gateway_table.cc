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

}  // namespace shadan

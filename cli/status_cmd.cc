#include "cli/status_cmd.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cli/gateway_table.h"
#include "cli/response_view.h"
#include "cli/shadanctl.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

bool isTrue(const Json& object, const char* key) {
  return object.is_object() && object.contains(key) && object[key].is_boolean() &&
         object[key].get<bool>();
}

// The segment's state as the gateways' acks say it (the controller's "state"). ISOLATED in
// capitals, as before, but only when every bordering gateway applied the isolate. A controller
// that reports no state gets "unknown": its "isolated" says what was requested, not what holds.
std::string segmentStateText(const Json& segment) {
  const std::string state = jsonText(segment, "state");
  if (state == "-") return "unknown";
  if (state == "isolated") return "ISOLATED";
  return state;
}

// "1/2" of the latest order's gateways applied it.
std::string appliedText(const Json& segment) {
  const std::string applied = jsonText(segment, "applied");
  const std::string total = jsonText(segment, "gateways");
  if (applied == "-" || total == "-" || jsonText(segment, "order_id") == "-") return "-";
  return applied + "/" + total;
}

// The gateways that have not applied the segment's latest order, and (offline) when status
// says they are not connected; "until T" for a timed isolation that holds.
std::string segmentNote(const Json& segment, const Json& gateways) {
  std::string note;
  if (segment.is_object() && segment.contains("by_gateway") && segment["by_gateway"].is_object()) {
    for (const auto& [id, delivery] : segment["by_gateway"].items()) {
      const std::string text = delivery.is_string() ? delivery.get<std::string>() : "-";
      if (isAppliedGatewayState(text)) continue;
      note += (note.empty() ? "" : ", ") + id + " " + text;
      if (gateways.is_object() && gateways.contains(id) && gateways[id].is_object() &&
          gateways[id].contains("connected") && !isTrue(gateways[id], "connected")) {
        note += " (offline)";
      }
    }
  }
  if (std::string until = jsonText(segment, "until"); until != "-") {
    note += (note.empty() ? "" : ", ") + ("until " + until);
  }
  if (jsonText(segment, "state") == "-" && isTrue(segment, "isolated")) {
    note += (note.empty() ? "" : ", ") + std::string("isolate requested, no facts reported");
  }
  return note.empty() ? "-" : note;
}

// The segment:profile entries the gateway's last verified ack listed as isolated.
std::string ackedIsolations(const Json& gateway) {
  if (!gateway.is_object() || !gateway.contains("state") || !gateway["state"].is_object() ||
      !gateway["state"].contains("isolated") || !gateway["state"]["isolated"].is_array()) {
    return "-";
  }
  std::string out;
  for (const Json& entry : gateway["state"]["isolated"]) {
    out += (out.empty() ? "" : ",") + (entry.is_string() ? entry.get<std::string>() : entry.dump());
  }
  return out.empty() ? "none" : out;
}

}  // namespace

int runStatusCommand(const CommandOptions& options, ControllerContext& ctx) {
  std::optional<std::string> order_id = options.value("--order");
  if (order_id && !isSafePathSegment(*order_id)) {
    return ctx.usage("invalid order id " + quoteForMessage(*order_id));
  }
  auto api = ctx.transport(options);
  if (!api.ok()) return ctx.usage(api.error().message);
  const std::string path = order_id ? "/v1/orders/" + *order_id : "/v1/status";
  auto response = (*api)->request("GET", path, std::nullopt);
  if (!response.ok()) return ctx.transportFailure(response.error());
  if (!response->ok()) return ctx.refused(*response, "the status request");
  const Json& body = response->body;
  if (ctx.json()) {
    ctx.out() << body.dump() << "\n";
    return kExitOk;
  }
  if (order_id) {
    ctx.out() << "order " << *order_id;
    for (const char* key : {"action", "segment", "profile"}) {
      if (std::string value = jsonText(body, key); value != "-")
        ctx.out() << "  " << key << " " << value;
    }
    // The rung, for anything but a segment order (whose line stays as it always was).
    if (std::string scope = jsonText(body, "scope"); scope != "-" && scope != "segment") {
      ctx.out() << "  scope " << orderTargetText(body);
    }
    // The outcome over its gateways; the bare order state ("dispatched") says nothing of them.
    if (std::string outcome = jsonText(body, "outcome"); outcome != "-") {
      ctx.out() << "  outcome " << outcome;
    } else if (std::string state = jsonText(body, "state"); state != "-") {
      ctx.out() << "  state " << state;
    }
    ctx.out() << "\n";
    const std::vector<GatewayRow> rows = gatewayRows(body);
    printGatewayTable(ctx.out(), rows);
    if (!rows.empty()) ctx.out() << orderFactsText(rows) << "\n";
    return kExitOk;
  }
  if (body.contains("segments") && body["segments"].is_object()) {
    const Json gateways = body.contains("gateways") ? body["gateways"] : Json::object();
    std::vector<std::vector<std::string>> table = {
        {"SEGMENT", "STATE", "PROFILE", "GEN", "PROTECTED", "LATEST", "APPLIED", "NOT_APPLIED"}};
    for (const auto& [name, segment] : body["segments"].items()) {
      table.push_back({name, segmentStateText(segment), jsonText(segment, "profile"),
                       jsonText(segment, "gen"), jsonText(segment, "protected"),
                       jsonText(segment, "action"), appliedText(segment),
                       segmentNote(segment, gateways)});
    }
    printTable(ctx.out(), table);
  }
  if (body.contains("gateways") && body["gateways"].is_object()) {
    ctx.out() << "\n";
    std::vector<std::vector<std::string>> table = {
        {"GATEWAY", "CONNECTED", "LAST_SEEN", "ENROLLMENT", "UNACKED", "LAST_ACK_ISOLATIONS"}};
    for (const auto& [name, gateway] : body["gateways"].items()) {
      table.push_back({name, (isTrue(gateway, "connected") ? "yes" : "NO") + connectedOn(gateway),
                       jsonText(gateway, "last_seen"), jsonText(gateway, "enrollment"),
                       jsonText(gateway, "unacked"), ackedIsolations(gateway)});
    }
    printTable(ctx.out(), table);
    if (hasLadder(body["gateways"])) {
      ctx.out() << "\nladder (what each gateway's last ack says is cut; NOT_ACKED: orders it has "
                   "not acked):\n";
      printLadderTable(ctx.out(), body["gateways"]);
    }
  }
  if (body.contains("orders") && body["orders"].is_array() && !body["orders"].empty()) {
    ctx.out() << "\nrecent orders:\n";
    for (const Json& order : body["orders"]) {
      ctx.out() << "  " << firstJsonText(order, {"order_id", "id", "command_id"}) << "  "
                << jsonText(order, "action") << " " << orderTargetText(order) << "  "
                << firstJsonText(order, {"outcome", "state"});
      for (const GatewayRow& row : gatewayRows(order)) {
        ctx.out() << "  " << row.gateway << "=" << row.state;
      }
      ctx.out() << "\n";
    }
  }
  // Only from a controller with automatic response configured; other answers print as before.
  if (body.contains("response") && body["response"].is_object()) {
    printResponseStatus(ctx.out(), body["response"]);
  }
  return kExitOk;
}

}  // namespace shadan

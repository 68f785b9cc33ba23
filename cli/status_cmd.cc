#include "cli/status_cmd.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>

#include "cli/gateway_table.h"
#include "cli/shadanctl.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

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
    for (const char* key : {"action", "segment", "profile", "state"}) {
      if (std::string value = jsonText(body, key); value != "-")
        ctx.out() << "  " << key << " " << value;
    }
    ctx.out() << "\n";
    printGatewayTable(ctx.out(), gatewayRows(body));
    return kExitOk;
  }
  if (body.contains("segments") && body["segments"].is_object()) {
    std::vector<std::vector<std::string>> table = {
        {"SEGMENT", "STATE", "PROFILE", "GEN", "PROTECTED"}};
    for (const auto& [name, segment] : body["segments"].items()) {
      const bool isolated = segment.is_object() && segment.contains("isolated") &&
                            segment["isolated"].is_boolean() && segment["isolated"].get<bool>();
      table.push_back({name, isolated ? "ISOLATED" : "open", jsonText(segment, "profile"),
                       jsonText(segment, "gen"), jsonText(segment, "protected")});
    }
    printTable(ctx.out(), table);
  }
  if (body.contains("gateways") && body["gateways"].is_object()) {
    ctx.out() << "\n";
    std::vector<std::vector<std::string>> table = {
        {"GATEWAY", "CONNECTED", "LAST_SEEN", "ENROLLMENT"}};
    for (const auto& [name, gateway] : body["gateways"].items()) {
      const bool connected = gateway.is_object() && gateway.contains("connected") &&
                             gateway["connected"].is_boolean() && gateway["connected"].get<bool>();
      table.push_back({name, connected ? "yes" : "NO", jsonText(gateway, "last_seen"),
                       jsonText(gateway, "enrollment")});
    }
    printTable(ctx.out(), table);
  }
  if (body.contains("orders") && body["orders"].is_array() && !body["orders"].empty()) {
    ctx.out() << "\nrecent orders:\n";
    for (const Json& order : body["orders"]) {
      ctx.out() << "  " << firstJsonText(order, {"order_id", "id", "command_id"}) << "  "
                << jsonText(order, "action") << " " << jsonText(order, "segment") << "  "
                << jsonText(order, "state");
      for (const GatewayRow& row : gatewayRows(order)) {
        ctx.out() << "  " << row.gateway << "=" << row.state;
      }
      ctx.out() << "\n";
    }
  }
  return kExitOk;
}

}  // namespace shadan

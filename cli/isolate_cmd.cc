#include "cli/isolate_cmd.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>

#include "cli/gateway_table.h"
#include "cli/shadanctl.h"
#include "common/duration.h"
#include "common/ip_prefix.h"
#include "common/isolation_scope.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kMaxWaitSeconds = 3600;

// The rung the options name: the request members that say so, and the words messages use.
struct ScopeChoice {
  Json members;
  std::string what;  // "lgwan", "host 10.20.0.5", "hosts 10.20.0.5, 10.20.0.6", "uplink", "island"
};

Error usageError(const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument, message);
}

// "a,b" -> {"a", "b"}; an empty item (",", "a,,b", "") is refused.
Result<std::vector<std::string>> commaList(const std::string& option, const std::string& value) {
  std::vector<std::string> items;
  size_t start = 0;
  for (;;) {
    const size_t comma = value.find(',', start);
    const std::string item =
        value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty()) {
      return usageError(option + ": empty item in " + quoteForMessage(value));
    }
    items.push_back(item);
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

// --host ADDR[,ADDR...]: each an address or prefix no wider than a host quarantine takes, each
// once, at most kMaxHostsPerOrder; sent in canonical form. Which segment they lie in (and
// whether in one) is the controller's check, against its policy.
Result<Json> hostsFromOption(const std::string& value) {
  SHADAN_ASSIGN_OR_RETURN(auto items, commaList("--host", value));
  if (items.size() > kMaxHostsPerOrder) {
    return usageError("--host: at most " + std::to_string(kMaxHostsPerOrder) +
                      " addresses per order, not " + std::to_string(items.size()));
  }
  std::vector<IpPrefix> seen;
  Json hosts = Json::array();
  for (const std::string& item : items) {
    auto host = IpPrefix::parse(item);
    if (!host.ok()) {
      return usageError("--host: " + quoteForMessage(item) +
                        " is not an address or prefix: " + host.error().message);
    }
    const int widest = minHostPrefixLength(host->family());
    if (host->length() < widest) {
      return usageError("--host: " + host->toString() + " is wider than /" +
                        std::to_string(widest) + " (isolate the segment instead)");
    }
    if (std::find(seen.begin(), seen.end(), *host) != seen.end()) {
      return usageError("--host: " + host->toString() + " given twice");
    }
    seen.push_back(*host);
    hosts.push_back(host->toString());
  }
  return hosts;
}

Result<Json> gatewaysFromOption(const std::string& value) {
  SHADAN_ASSIGN_OR_RETURN(auto items, commaList("--gateways", value));
  Json gateways = Json::array();
  for (const std::string& item : items) {
    if (!isSafePathSegment(item)) {
      return usageError("--gateways: invalid gateway name " + quoteForMessage(item));
    }
    if (std::find(gateways.begin(), gateways.end(), Json(item)) != gateways.end()) {
      return usageError("--gateways: " + item + " given twice");
    }
    gateways.push_back(item);
  }
  return gateways;
}

// Exactly one of SEGMENT, --host, --uplink, --island; --link-down only with an uplink isolate
// (restore does not take it at all), --gateways only with --uplink or --island.
Result<ScopeChoice> scopeFromOptions(const std::string& action, const CommandOptions& options) {
  std::vector<std::string> given;
  if (!options.positionals.empty()) given.push_back(quoteForMessage(options.positionals[0]));
  for (const char* option : {"--host", "--uplink", "--island"}) {
    if (options.has(option)) given.push_back(option);
  }
  if (given.empty()) {
    return usageError("'" + action +
                      "' needs a SEGMENT, --host ADDR[,ADDR...], --uplink or --island");
  }
  if (given.size() > 1) {
    std::string list;
    for (const std::string& g : given) list += (list.empty() ? "" : " and ") + g;
    return usageError("'" + action +
                      "' takes exactly one of SEGMENT, --host, --uplink and --island, not " + list);
  }
  const bool uplink = options.has("--uplink");
  const bool island = options.has("--island");
  if (options.has("--link-down") && !uplink) {
    return usageError("--link-down goes with --uplink only (it sets the uplink's links down)");
  }
  if (options.has("--gateways") && !uplink && !island) {
    return usageError(
        "--gateways goes with --uplink or --island only (a SEGMENT or --host order goes to every "
        "gateway bordering the segment)");
  }
  ScopeChoice choice;
  if (!options.positionals.empty()) {
    const std::string& segment = options.positionals[0];
    if (!isSafePathSegment(segment)) {
      return usageError("invalid segment name " + quoteForMessage(segment));
    }
    choice.members = {{"segment", segment}};
    choice.what = segment;
    return choice;
  }
  if (auto host = options.value("--host")) {
    SHADAN_ASSIGN_OR_RETURN(auto hosts, hostsFromOption(*host));
    std::string listed;
    for (const Json& h : hosts) listed += (listed.empty() ? "" : ", ") + h.get<std::string>();
    choice.what = (hosts.size() == 1 ? "host " : "hosts ") + listed;
    choice.members = {{"scope", "host"}, {"hosts", std::move(hosts)}};
    return choice;
  }
  choice.what = uplink ? "uplink" : "island";
  choice.members = {{"scope", choice.what}};
  if (auto gateways = options.value("--gateways")) {
    SHADAN_ASSIGN_OR_RETURN(auto listed, gatewaysFromOption(*gateways));
    choice.members["gateways"] = std::move(listed);
  }
  if (options.has("--link-down")) {
    choice.members["link_down"] = true;
    choice.what = "uplink (links down)";
  }
  return choice;
}

// Polls the order until every gateway answered or `wait_seconds` passed, then prints the
// per-gateway table. Exit 0 only when every gateway applied it.
int waitForOrder(ControllerContext& ctx, ApiTransport& api, const std::string& order_id,
                 const Json& accepted, uint64_t wait_seconds) {
  const auto deadline = ctx.env().monotonic_now() + std::chrono::seconds(wait_seconds);
  Json last;
  std::vector<GatewayRow> rows;
  bool complete = false;
  for (;;) {
    auto response = api.request("GET", "/v1/orders/" + order_id, std::nullopt);
    if (!response.ok()) return ctx.transportFailure(response.error());
    if (!response->ok()) return ctx.refused(*response, "the order status of " + order_id);
    last = response->body;
    rows = gatewayRows(last);
    complete = !rows.empty() && std::all_of(rows.begin(), rows.end(), [](const GatewayRow& r) {
      return isFinalGatewayState(r.state);
    });
    const auto now = ctx.env().monotonic_now();
    if (complete || now >= deadline) break;
    ctx.env().sleep(std::min<std::chrono::milliseconds>(
        ctx.env().poll_interval,
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)));
  }
  const bool all_ok = complete && std::all_of(rows.begin(), rows.end(), [](const GatewayRow& r) {
                        return isAppliedGatewayState(r.state);
                      });
  const size_t pending = static_cast<size_t>(std::count_if(
      rows.begin(), rows.end(), [](const GatewayRow& r) { return !isFinalGatewayState(r.state); }));
  if (ctx.json()) {
    ctx.out() << Json{{"order_id", order_id},
                      {"accepted", accepted},
                      {"order", last},
                      {"complete", complete}}
                     .dump()
              << "\n";
  } else {
    ctx.out() << "order " << order_id << "\n";
    printGatewayTable(ctx.out(), rows);
  }
  if (!complete) {
    ctx.err() << "shadanctl: gave up waiting after " << wait_seconds << " s: "
              << (rows.empty() ? std::string("the controller reports no gateways")
                               : std::to_string(pending) + " gateway(s) still pending: " +
                                     describeGateways(rows,
                                                      [](const GatewayRow& r) {
                                                        return !isFinalGatewayState(r.state);
                                                      }))
              << "\n";
    return kExitFailure;
  }
  if (!all_ok) {
    ctx.err() << "shadanctl: the order did not apply on every gateway: "
              << describeGateways(
                     rows, [](const GatewayRow& r) { return !isAppliedGatewayState(r.state); })
              << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

// Without --wait: one read of the order, so the answer says what is true right after the
// controller accepted it (a gateway that is offline has nothing yet), never just "dispatched".
void reportAccepted(ControllerContext& ctx, ApiTransport& api, const std::string& action,
                    const std::string& what, const std::string& order_id, const Json& answer) {
  ctx.out() << action << " of " << what << ": order " << order_id << " accepted; ";
  auto response = api.request("GET", "/v1/orders/" + order_id, std::nullopt);
  std::vector<GatewayRow> rows;
  if (response.ok() && response->ok()) rows = gatewayRows(response->body);
  if (rows.empty()) {
    // Nothing read back: say what is known, which is only where it was sent.
    std::string names;
    if (answer.contains("gateways") && answer["gateways"].is_array()) {
      for (const Json& gateway : answer["gateways"]) {
        names += (names.empty() ? "" : ", ") +
                 (gateway.is_string() ? gateway.get<std::string>()
                                      : firstJsonText(gateway, {"gateway", "agent_id", "id"}));
      }
    }
    ctx.out() << "not confirmed by any gateway yet"
              << (names.empty() ? std::string() : " (targets: " + names + ")");
    if (!response.ok()) {
      ctx.out() << "; could not read it back: " << response.error().message;
    } else if (!response->ok()) {
      ctx.out() << "; could not read it back: HTTP " << response->status;
    }
    ctx.out() << "\n";
  } else {
    ctx.out() << orderFactsText(rows) << "\n";
    if (std::all_of(rows.begin(), rows.end(),
                    [](const GatewayRow& r) { return isAppliedGatewayState(r.state); })) {
      return;
    }
  }
  ctx.out() << "follow it with: shadanctl status --order " << order_id
            << " (or --wait SECONDS to wait for every gateway)\n";
}

}  // namespace

int runIsolateCommand(const std::string& action, const CommandOptions& options,
                      ControllerContext& ctx) {
  auto scope = scopeFromOptions(action, options);
  if (!scope.ok()) return ctx.usage(scope.error().message);
  auto reason = options.value("--reason");
  if (!reason) return ctx.usage("'" + action + "' needs --reason TEXT (it is audited)");
  if (Status valid = validateReason(*reason); !valid.ok()) return ctx.usage(valid.error().message);
  Json body = scope->members;
  body["reason"] = *reason;
  if (auto profile = options.value("--profile")) {
    if (!isSafePathSegment(*profile)) {
      return ctx.usage("invalid profile name " + quoteForMessage(*profile));
    }
    body["profile"] = *profile;
  }
  if (auto ticket = options.value("--ticket")) {
    if (ticket->empty() || ticket->size() > 128) {
      return ctx.usage("--ticket must be 1-128 characters");
    }
    body["ticket"] = *ticket;
  }
  if (auto ttl = options.value("--ttl")) {
    auto duration = parseDuration(*ttl);
    if (!duration.ok()) return ctx.usage("--ttl: " + duration.error().message);
    if (duration->count() % 1000 != 0) return ctx.usage("--ttl must be whole seconds");
    body["ttl_s"] = duration->count() / 1000;
  }
  if (options.has("--drill")) body["drill"] = true;
  std::optional<uint64_t> wait_seconds;
  if (auto wait = options.value("--wait")) {
    auto seconds = parseCount("--wait", *wait, 1, kMaxWaitSeconds);
    if (!seconds.ok()) return ctx.usage(seconds.error().message);
    wait_seconds = *seconds;
  }

  auto api = ctx.transport(options);
  if (!api.ok()) return ctx.usage(api.error().message);
  auto response = (*api)->request("POST", "/v1/" + action, body);
  if (!response.ok()) return ctx.transportFailure(response.error());
  if (!response->ok()) return ctx.refused(*response, "the " + action + " of " + scope->what);

  const Json& answer = response->body;
  // Hosts as the controller resolved them: with the segment they lie in ("host 10.20.0.5 of
  // lgwan").
  const std::string what = jsonText(answer, "scope") == "host" && jsonText(answer, "segment") != "-"
                               ? orderTargetText(answer)
                               : scope->what;
  const std::string order_id = jsonText(answer, "order_id");
  const std::string state = jsonText(answer, "state");
  if (state == "awaiting_approval") {
    if (ctx.json()) {
      ctx.out() << answer.dump() << "\n";
    } else {
      ctx.out() << action << " of " << what << " is awaiting approval: order " << order_id
                << ", approval " << jsonText(answer, "approval_id");
      if (answer.contains("needed")) {
        ctx.out() << " (" << jsonText(answer, "have") << " of " << jsonText(answer, "needed")
                  << " operator signatures)";
      }
      ctx.out() << "\napprove with: shadanctl approve " << jsonText(answer, "approval_id")
                << " --key YOUR.key\n";
    }
    return kExitAwaitingApproval;
  }
  if (!wait_seconds || !isSafePathSegment(order_id)) {
    if (wait_seconds) {
      ctx.err() << "shadanctl: cannot wait: the answer names no usable order_id\n";
      return kExitFailure;
    }
    if (ctx.json()) {
      ctx.out() << answer.dump() << "\n";
    } else if (isSafePathSegment(order_id)) {
      reportAccepted(ctx, **api, action, what, order_id, answer);
    } else {
      ctx.out() << action << " of " << what << ": accepted (" << state
                << "), but the answer names no usable order_id\n";
    }
    return kExitOk;
  }
  return waitForOrder(ctx, **api, order_id, answer, *wait_seconds);
}

}  // namespace shadan

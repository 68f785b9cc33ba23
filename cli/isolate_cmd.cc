#include "cli/isolate_cmd.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>

#include "cli/gateway_table.h"
#include "cli/shadanctl.h"
#include "common/duration.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kMaxWaitSeconds = 3600;

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
                    const std::string& segment, const std::string& order_id, const Json& answer) {
  ctx.out() << action << " of " << segment << ": order " << order_id << " accepted; ";
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
  const std::string& segment = options.positionals[0];
  if (!isSafePathSegment(segment)) {
    return ctx.usage("invalid segment name " + quoteForMessage(segment));
  }
  auto reason = options.value("--reason");
  if (!reason) return ctx.usage("'" + action + "' needs --reason TEXT (it is audited)");
  if (Status valid = validateReason(*reason); !valid.ok()) return ctx.usage(valid.error().message);
  Json body = {{"segment", segment}, {"reason", *reason}};
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
  if (!response->ok()) return ctx.refused(*response, "the " + action + " of " + segment);

  const Json& answer = response->body;
  const std::string order_id = jsonText(answer, "order_id");
  const std::string state = jsonText(answer, "state");
  if (state == "awaiting_approval") {
    if (ctx.json()) {
      ctx.out() << answer.dump() << "\n";
    } else {
      ctx.out() << action << " of " << segment << " is awaiting approval: order " << order_id
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
      reportAccepted(ctx, **api, action, segment, order_id, answer);
    } else {
      ctx.out() << action << " of " << segment << ": accepted (" << state
                << "), but the answer names no usable order_id\n";
    }
    return kExitOk;
  }
  return waitForOrder(ctx, **api, order_id, answer, *wait_seconds);
}

}  // namespace shadan

#include "cli/alerts_cmd.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <vector>

#include "cli/gateway_table.h"
#include "cli/response_view.h"
#include "cli/shadanctl.h"
#include "common/strict_json.h"

namespace shadan {

const char* const kAlertsUsage = R"(  shadanctl alerts [--limit N] [--json]
      The controller's latest decisions on detectors' alerts, newest first: when, which
      detector, what the alert led to (acted, deduplicated, rate_limited, breaker_open,
      protected, out_of_scope, no_rule, refused, dry_run), the response rule, the addresses,
      the order or automatic action, and why. The controller keeps them in memory since it
      started; the audit log is the record. --limit: how many (1-1000, default 100).
)";

const char* const kConfirmUsage = R"(  shadanctl confirm ACTION_ID --reason TEXT [--json]
      Make an automatic action yours: the controller isolates the same target again in your
      name and without a TTL, so it holds until restored with approvals. A proposal (nothing
      cut yet) is cut now. --reason is required (at most 512 characters) and audited.
)";

const char* const kReleaseUsage = R"(  shadanctl release ACTION_ID --reason TEXT [--json]
      Lift an automatic action: a release order the gateways accept only while the isolation
      is still automatic (not confirmed, not ordered by an operator). A proposal is declined:
      nothing was cut. --reason is required (at most 512 characters) and audited.
)";

const char* const kBreakerUsage = R"(  shadanctl breaker [--json]
  shadanctl breaker open --reason TEXT [--json]
  shadanctl breaker close --reason TEXT [--json]
      The circuit breaker of automatic response. While it is open no alert cuts anything: each
      becomes a proposal waiting for confirm or release. It opens by itself when too many
      automatic actions come within its window or one would leave too many segments isolated,
      and stays open until an operator closes it. --reason (open, close) is required and
      audited.
)";

namespace {

using Json = nlohmann::json;

constexpr size_t kReasonWidth = 60;

// "src -> dst" of the alert an entry was about; "-" when the record did not parse.
std::string addressesText(const Json& entry) {
  if (!entry.contains("alert") || !entry["alert"].is_object()) return "-";
  return jsonCell(entry["alert"], "src") + " -> " + jsonCell(entry["alert"], "dst");
}

// The order or action an alert led to, and the segment order its escalation made.
std::string orderText(const Json& entry) {
  std::string out = jsonCell(entry, "order_id");
  if (entry.contains("escalation") && entry["escalation"].is_object()) {
    out += " (escalation " + jsonCell(entry["escalation"], "order_id") + ")";
  }
  return out;
}

// What an order answer cuts, as an automatic action's target reads: "segment lgwan",
// "host 10.20.0.5 in lgwan".
std::string orderTarget(const Json& order) {
  if (jsonText(order, "scope") == "segment") return "segment " + jsonCell(order, "segment");
  return displayCell(orderTargetText(order));
}

void printBreaker(std::ostream& out, const Json& breaker) {
  out << "circuit breaker: " << breakerSummary(breaker) << "\n";
  out << "window: " << jsonCell(breaker, "actions_in_window") << " automatic action(s) in the last "
      << jsonCell(breaker, "window_s") << " s (it opens above " << jsonCell(breaker, "max_actions")
      << ", or when an action would leave more than " << jsonCell(breaker, "max_segments_percent")
      << "% of the segments isolated)\n";
  if (breaker.is_object() && breaker.value("open", false)) {
    out << "while it is open, alerts become proposals (shadanctl approvals); close it with: "
           "shadanctl breaker close --reason TEXT\n";
  }
}

}  // namespace

int runAlertsCommand(const CommandOptions& options, ControllerContext& ctx) {
  std::string path = "/v1/alerts";
  if (auto limit = options.value("--limit")) {
    auto count = parseCount("--limit", *limit, 1, 1000);
    if (!count.ok()) return ctx.usage(count.error().message);
    path += "?limit=" + std::to_string(*count);
  }
  auto api = ctx.transport(options);
  if (!api.ok()) return ctx.usage(api.error().message);
  auto response = (*api)->request("GET", path, std::nullopt);
  if (!response.ok()) return ctx.transportFailure(response.error());
  if (!response->ok()) return ctx.refused(*response, "the alerts request");
  const Json& body = response->body;
  if (ctx.json()) {
    ctx.out() << body.dump() << "\n";
    return kExitOk;
  }
  const Json empty = Json::array();
  const Json& alerts = body.is_object() && body.contains("alerts") && body["alerts"].is_array()
                           ? body["alerts"]
                           : empty;
  if (alerts.empty()) {
    ctx.out() << "no alerts since the controller started (it keeps the latest in memory; the "
                 "audit log has them all)\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> table = {
      {"TIME", "DETECTOR", "DECISION", "RULE", "SRC -> DST", "ORDER", "REASON"}};
  for (const Json& entry : alerts) {
    table.push_back({jsonCell(entry, "time"), jsonCell(entry, "detector"),
                     jsonCell(entry, "decision"), jsonCell(entry, "rule"), addressesText(entry),
                     orderText(entry), jsonCell(entry, "reason", kReasonWidth)});
  }
  printTable(ctx.out(), table);
  return kExitOk;
}

int runAutoActionCommand(const std::string& action, const CommandOptions& options,
                         ControllerContext& ctx) {
  const std::string& id = options.positionals[0];
  if (!isSafePathSegment(id)) return ctx.usage("invalid action id " + quoteForMessage(id));
  auto reason = options.value("--reason");
  if (!reason) return ctx.usage("'" + action + "' needs --reason TEXT (it is audited)");
  if (Status valid = validateReason(*reason); !valid.ok()) return ctx.usage(valid.error().message);
  auto api = ctx.transport(options);
  if (!api.ok()) return ctx.usage(api.error().message);
  auto response =
      (*api)->request("POST", "/v1/orders/" + id + "/" + action, Json{{"reason", *reason}});
  if (!response.ok()) return ctx.transportFailure(response.error());
  if (!response->ok()) {
    const int code = ctx.refused(
        *response,
        std::string(action == "confirm" ? "the confirmation" : "the release") + " of " + id);
    if (response->status == 404 || response->status == 409) {
      ctx.err() << "shadanctl: the automatic actions still open are listed by 'shadanctl "
                   "approvals'\n";
    }
    return code;
  }
  const Json& answer = response->body;
  const Json order = answer.is_object() && answer.contains("order") && answer["order"].is_object()
                         ? answer["order"]
                         : Json();
  const bool awaiting = jsonText(order, "state") == "awaiting_approval";
  if (ctx.json()) {
    ctx.out() << answer.dump() << "\n";
    return awaiting ? kExitAwaitingApproval : kExitOk;
  }
  const std::string state = jsonCell(answer, "state");
  const std::string order_id = jsonCell(order, "order_id");
  if (state == "declined") {
    ctx.out() << "declined proposal " << id << ": nothing had been cut, nothing to lift\n";
    return kExitOk;
  }
  if (state == "confirmed") {
    ctx.out() << "confirmed automatic action " << id << ": order " << order_id << " isolates "
              << orderTarget(order) << " in your name, without a TTL";
  } else if (state == "released") {
    ctx.out() << "released automatic action " << id << ": order " << order_id << " lifts "
              << orderTarget(order) << " (the gateways refuse it if the isolation is no longer "
              << "automatic)";
  } else {
    ctx.out() << "automatic action " << id << ": " << state;
    if (order.is_null()) {
      ctx.out() << "\n";
      return kExitOk;
    }
    ctx.out() << ", order " << order_id;
  }
  if (awaiting) {
    const std::string approval = jsonCell(order, "approval_id");
    ctx.out() << "; awaiting approval " << approval;
    if (order.contains("needed")) {
      ctx.out() << " (" << jsonCell(order, "have") << " of " << jsonCell(order, "needed")
                << " operator signatures)";
    }
    ctx.out() << "\napprove with: shadanctl approve " << approval << " --key YOUR.key\n";
    return kExitAwaitingApproval;
  }
  ctx.out() << "; state " << jsonCell(order, "state") << "\n"
            << "follow it with: shadanctl status --order " << order_id << "\n";
  return kExitOk;
}

int runBreakerCommand(const CommandOptions& options, ControllerContext& ctx) {
  const auto& words = options.positionals;
  if (!words.empty() && words[0] != "open" && words[0] != "close") {
    return ctx.usage("unknown breaker subcommand " + quoteForMessage(words[0]) +
                     " (subcommands: open, close)");
  }
  std::optional<Json> body;
  std::string path = "/v1/breaker";
  if (words.empty()) {
    if (options.has("--reason")) return ctx.usage("--reason is for 'breaker open' and 'close'");
  } else {
    auto reason = options.value("--reason");
    if (!reason) return ctx.usage("'breaker " + words[0] + "' needs --reason TEXT (it is audited)");
    if (Status valid = validateReason(*reason); !valid.ok()) {
      return ctx.usage(valid.error().message);
    }
    body = Json{{"reason", *reason}};
    path += "/" + words[0];
  }
  auto api = ctx.transport(options);
  if (!api.ok()) return ctx.usage(api.error().message);
  auto response = (*api)->request(body ? "POST" : "GET", path, body);
  if (!response.ok()) return ctx.transportFailure(response.error());
  if (!response->ok()) {
    return ctx.refused(*response, words.empty() ? std::string("the breaker request")
                                                : "to " + words[0] + " the circuit breaker");
  }
  if (ctx.json()) {
    ctx.out() << response->body.dump() << "\n";
  } else {
    printBreaker(ctx.out(), response->body);
  }
  return kExitOk;
}

}  // namespace shadan

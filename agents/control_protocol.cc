#include "agents/control_protocol.h"

#include <map>
#include <set>

#include "common/strict_json.h"

namespace shadan::agent {
namespace {

const std::map<std::string, ErrorCode>& errorCodesByName() {
  static const std::map<std::string, ErrorCode> kCodes = {
      {"invalid_argument", ErrorCode::kInvalidArgument},
      {"parse", ErrorCode::kParse},
      {"policy", ErrorCode::kPolicy},
      {"not_found", ErrorCode::kNotFound},
      {"kernel", ErrorCode::kKernel},
      {"io", ErrorCode::kIo},
      {"state", ErrorCode::kState},
      {"unavailable", ErrorCode::kUnavailable},
      {"internal", ErrorCode::kInternal},
  };
  return kCodes;
}

// One isolation's identity as answers show it: scope, label, segment (segment and host), host.
nlohmann::json isolationJson(const Isolation& isolation) {
  nlohmann::json item = {{"scope", isolationScopeName(isolation.scope)},
                         {"label", isolationLabel(isolation)},
                         {"segment", isolation.segment},
                         {"profile", isolation.profile}};
  if (isolation.host) item["host"] = isolation.host->toCidr();
  return item;
}

nlohmann::json pairsJson(const std::vector<Isolation>& pairs) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : pairs) list.push_back(isolationJson(p));
  return list;
}

nlohmann::json changeAnswer(const AgentCore& core, const std::string& command,
                            const ChangeResult& result) {
  nlohmann::json routes = nlohmann::json::array();
  for (const auto& route : result.report.routes_after) routes.push_back(route.toCidr());
  nlohmann::json answer = {{"ok", true},
                           {"command", command},
                           {"gateway", core.gatewayId()},
                           {"changed", result.changed || result.repaired},
                           {"repaired", result.repaired},
                           {"action", result.action},
                           {"isolations", isolationsJson(result.state, core.nowMs())},
                           {"expired", pairsJson(result.expired)},
                           {"ruleset_sha256_before", result.report.before.sha256},
                           {"ruleset_sha256", result.report.after.sha256},
                           {"table_present", result.report.after.present},
                           {"blackhole_routes", routes},
                           {"conntrack_deleted", result.conntrack_deleted},
                           {"warnings", result.warnings}};
  if (result.isolation) {
    answer["scope"] = isolationScopeName(result.isolation->scope);
    answer["segment"] = result.isolation->segment;
    answer["profile"] = result.isolation->profile;
  }
  if (result.isolations.size() > 1 ||
      (result.isolations.size() == 1 && result.isolations.front().host)) {
    nlohmann::json hosts = nlohmann::json::array();
    for (const Isolation& isolation : result.isolations) {
      if (isolation.host) hosts.push_back(isolation.host->toCidr());
    }
    answer["hosts"] = std::move(hosts);
  }
  if (result.audit) {
    answer["audit"] = {{"log_seq", result.audit->log_seq},
                       {"entry_hash", result.audit->entry_hash}};
  }
  return answer;
}

nlohmann::json statusAnswer(AgentCore& core) {
  KernelStatus kernel = core.kernelStatus();
  nlohmann::json doc = {{"ok", kernel.state != KernelState::kUnknown},
                        {"command", "status"},
                        {"gateway", core.gatewayId()},
                        {"policy", core.policy().name},
                        {"policy_sha256", core.policy().source_sha256},
                        {"isolations", isolationsJson(core.desired(), core.nowMs())},
                        {"applied_ruleset_sha256", core.desired().applied_ruleset_sha256},
                        {"kernel", {{"state", kernelStateName(kernel.state)}}}};
  // Each isolation's drop counters: numbers, or null and why (status never fails for them).
  const DropCounts dropped = core.dropCounts();
  for (size_t i = 0; i < core.desired().isolations.size(); ++i) {
    nlohmann::json& item = doc["isolations"][i];
    const auto count = dropped.find(core.desired().isolations[i].isolation);
    if (count == dropped.end()) continue;
    if (count->second.ok()) {
      item["dropped"] = {{"packets", count->second->packets}, {"bytes", count->second->bytes}};
    } else {
      item["dropped"] = nullptr;
      item["dropped_error"] = count->second.error().message;
    }
  }
  if (kernel.live) {
    doc["kernel"]["table_present"] = kernel.live->present;
    doc["kernel"]["ruleset_sha256"] = kernel.live->sha256;
  } else {
    doc["kernel"]["error"] = kernel.error;
    doc["error"] = {{"code", "kernel"}, {"message", "cannot read the kernel: " + kernel.error}};
  }
  return doc;
}

// "scope", "hosts", "link_down": which rung an isolate or restore is about.
Status parseLadder(const nlohmann::json& doc, ControlRequest& request) {
  const auto bad = [](const std::string& why) {
    return makeError(ErrorCode::kInvalidArgument, "control request: " + why);
  };
  if (doc.contains("scope")) {
    const std::optional<IsolationScope> scope =
        doc["scope"].is_string() ? parseIsolationScope(doc["scope"].get<std::string>())
                                 : std::nullopt;
    if (!scope) return bad("\"scope\" must be \"host\", \"segment\", \"uplink\" or \"island\"");
    request.scope = scope;
  }
  if (doc.contains("hosts")) {
    if (request.scope != IsolationScope::kHost) return bad("\"hosts\" goes with scope host");
    if (!doc["hosts"].is_array() || doc["hosts"].empty()) {
      return bad("\"hosts\" must be a non-empty array of addresses or prefixes");
    }
    for (const nlohmann::json& item : doc["hosts"]) {
      if (!item.is_string()) return bad("\"hosts\" must hold strings");
      Result<IpPrefix> host = IpPrefix::parse(item.get<std::string>());
      if (!host.ok()) return bad("\"hosts\": " + host.error().message);
      request.hosts.push_back(*host);
    }
  } else if (request.scope == IsolationScope::kHost) {
    return bad("scope host needs \"hosts\"");
  }
  if (doc.contains("link_down")) {
    if (!doc["link_down"].is_boolean()) return bad("\"link_down\" must be a boolean");
    request.link_down = doc["link_down"].get<bool>();
    if (request.link_down && request.scope != IsolationScope::kUplink) {
      return bad("\"link_down\" goes with scope uplink");
    }
  }
  return okStatus();
}

}  // namespace

nlohmann::json isolationsJson(const DesiredState& state, int64_t now_ms) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& active : state.isolations) {
    nlohmann::json item = isolationJson(active.isolation);
    item["since"] = formatRfc3339(active.since_unix_ms);
    item["origin"] = active.origin;
    if (active.link_down) item["link_down"] = true;
    if (active.expires_unix_ms) {
      const int64_t left_ms = *active.expires_unix_ms - now_ms;
      item["expires"] = formatRfc3339(*active.expires_unix_ms);
      item["remaining_s"] = left_ms > 0 ? (left_ms + 999) / 1000 : 0;
      // Past its deadline and still here: nothing lifted it (no daemon ran).
      if (left_ms <= 0) item["overdue"] = true;
    }
    if (active.drill) item["drill"] = true;
    if (active.automatic) item["automatic"] = true;
    list.push_back(std::move(item));
  }
  return list;
}

Result<Isolation> isolationFromJson(const nlohmann::json& item) {
  const auto text = [&](const char* key) {
    return item.is_object() && item.contains(key) && item[key].is_string()
               ? item[key].get<std::string>()
               : std::string();
  };
  Isolation isolation{text("segment"), text("profile")};
  const std::string scope = text("scope");
  if (!scope.empty()) {
    const std::optional<IsolationScope> parsed = parseIsolationScope(scope);
    if (!parsed) return makeError(ErrorCode::kParse, "isolation: unknown scope \"" + scope + "\"");
    isolation.scope = *parsed;
  }
  if (const std::string host = text("host"); !host.empty()) {
    SHADAN_ASSIGN_OR_RETURN(IpPrefix prefix, IpPrefix::parse(host));
    isolation.host = prefix;
  }
  if (isolation.profile.empty()) return makeError(ErrorCode::kParse, "isolation: no profile");
  return isolation;
}

bool isPlainUserName(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         name.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string_view::npos;
}

nlohmann::json ControlRequest::toJson() const {
  nlohmann::json doc = {{"op", op}};
  if (scope) doc["scope"] = isolationScopeName(*scope);
  if (!hosts.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const IpPrefix& host : hosts) list.push_back(host.toString());
    doc["hosts"] = std::move(list);
  }
  if (link_down) doc["link_down"] = true;
  if (segment) doc["segment"] = *segment;
  if (profile) doc["profile"] = *profile;
  if (ttl) doc["ttl_ms"] = ttl->count();
  if (all) doc["all"] = true;
  if (drill) doc["drill"] = true;
  if (envelope) doc["envelope"] = *envelope;
  if (command) doc["command"] = *command;
  if (reason) doc["reason"] = *reason;
  if (gateway) doc["gateway"] = *gateway;
  if (policy_sha256) doc["policy_sha256"] = *policy_sha256;
  if (sudo_user) doc["sudo_user"] = *sudo_user;
  return doc;
}

Result<ControlRequest> parseControlRequest(std::string_view text) {
  SHADAN_ASSIGN_OR_RETURN(auto parsed,
                          parseStrictJson(text, "control request", kMaxControlRequestBytes));
  const nlohmann::json& doc = parsed;
  const auto bad = [](const std::string& why) {
    return makeError(ErrorCode::kInvalidArgument, "control request: " + why);
  };
  if (!doc.is_object()) return bad("not a JSON object");
  static const std::set<std::string> kKnown = {"op",      "segment",       "profile",  "ttl_ms",
                                               "all",     "drill",         "envelope", "command",
                                               "reason",  "scope",         "hosts",    "link_down",
                                               "gateway", "policy_sha256", "sudo_user"};
  for (const auto& [key, value] : doc.items()) {
    if (!kKnown.count(key)) return bad("unknown field " + quoteForMessage(key));
  }
  ControlRequest request;
  if (!doc.contains("op") || !doc["op"].is_string()) return bad("\"op\" must be a string");
  request.op = doc["op"].get<std::string>();
  for (const char* key : {"segment", "profile"}) {
    if (!doc.contains(key)) continue;
    if (!doc[key].is_string() || doc[key].get<std::string>().empty() ||
        doc[key].get<std::string>().size() > 64) {
      return bad(std::string("\"") + key + "\" must be a non-empty string of at most 64 bytes");
    }
  }
  if (doc.contains("envelope")) {
    if (!doc["envelope"].is_string() || doc["envelope"].get<std::string>().empty()) {
      return bad("\"envelope\" must be a non-empty string");
    }
    request.envelope = doc["envelope"].get<std::string>();
  }
  for (const char* key : {"command", "reason"}) {
    if (!doc.contains(key)) continue;
    if (!doc[key].is_string() || doc[key].get<std::string>().empty() ||
        doc[key].get<std::string>().size() > kMaxRefusalReasonBytes) {
      return bad(std::string("\"") + key + "\" must be a non-empty string of at most " +
                 std::to_string(kMaxRefusalReasonBytes) + " bytes");
    }
  }
  if (doc.contains("gateway")) {
    if (!doc["gateway"].is_string() || doc["gateway"].get<std::string>().empty() ||
        doc["gateway"].get<std::string>().size() > 64) {
      return bad("\"gateway\" must be a non-empty string of at most 64 bytes");
    }
    request.gateway = doc["gateway"].get<std::string>();
  }
  if (doc.contains("policy_sha256")) {
    const auto& digest = doc["policy_sha256"];
    if (!digest.is_string() || digest.get<std::string>().size() != 64 ||
        digest.get<std::string>().find_first_not_of("0123456789abcdef") != std::string::npos) {
      return bad("\"policy_sha256\" must be 64 lower-case hex digits");
    }
    request.policy_sha256 = digest.get<std::string>();
  }
  if (doc.contains("sudo_user")) {
    const auto& user = doc["sudo_user"];
    if (!user.is_string() || !isPlainUserName(user.get<std::string>())) {
      return bad("\"sudo_user\" must be 1-64 of [A-Za-z0-9._-]");
    }
    request.sudo_user = user.get<std::string>();
  }
  if (doc.contains("command")) request.command = doc["command"].get<std::string>();
  if (doc.contains("reason")) request.reason = doc["reason"].get<std::string>();
  if (doc.contains("segment")) request.segment = doc["segment"].get<std::string>();
  if (doc.contains("profile")) request.profile = doc["profile"].get<std::string>();
  if (doc.contains("ttl_ms")) {
    if (!doc["ttl_ms"].is_number_integer() || doc["ttl_ms"].get<int64_t>() <= 0 ||
        doc["ttl_ms"].get<int64_t>() > 366ll * 86'400'000) {
      return bad("\"ttl_ms\" must be a positive integer of at most 366 days");
    }
    request.ttl = std::chrono::milliseconds(doc["ttl_ms"].get<int64_t>());
  }
  for (const char* key : {"all", "drill"}) {
    if (doc.contains(key) && !doc[key].is_boolean()) {
      return bad(std::string("\"") + key + "\" must be a boolean");
    }
  }
  request.all = doc.value("all", false);
  request.drill = doc.value("drill", false);
  SHADAN_RETURN_IF_ERROR(parseLadder(doc, request));

  const bool ladder = request.scope.has_value();
  if ((ladder || request.link_down) && request.op != "isolate" && request.op != "restore") {
    return bad("\"scope\", \"hosts\" and \"link_down\" are only for isolate and restore");
  }
  if (request.op == "isolate") {
    if (!request.segment && !ladder) return bad("isolate needs \"segment\" (or \"scope\")");
    if (request.all) return bad("\"all\" is only for restore");
  } else if (request.op == "restore") {
    if (request.all == (request.segment.has_value() || ladder)) {
      return bad("restore needs \"segment\" or \"all\": true (or \"scope\")");
    }
    if (request.link_down) return bad("\"link_down\" is only for isolate");
    if (request.all && request.profile) return bad("\"profile\" does not go with \"all\"");
    if (request.ttl) return bad("\"ttl_ms\" is only for isolate");
    if (request.drill) return bad("\"drill\" is only for isolate");
  } else if (request.op == "status") {
    if (request.segment || request.profile || request.ttl || request.all || request.drill) {
      return bad("status takes no arguments");
    }
  } else if (request.op == "verify" || request.op == "apply_file") {
    if (!request.envelope) return bad(request.op + " needs \"envelope\"");
    if (request.segment || request.profile || request.ttl || request.all || request.drill) {
      return bad(request.op + " takes only \"envelope\"");
    }
  } else if (request.op == "refused") {
    static const std::set<std::string> kRefusable = {"isolate", "restore", "apply-file"};
    if (!request.command || !kRefusable.count(*request.command) || !request.reason) {
      return bad("refused needs \"command\" (isolate, restore or apply-file) and \"reason\"");
    }
    if (request.segment || request.profile || request.ttl || request.all || request.drill ||
        request.envelope) {
      return bad("refused takes only \"command\" and \"reason\"");
    }
  } else {
    return bad("unknown op " + quoteForMessage(request.op));
  }
  if (request.command && request.op != "refused") return bad("\"command\" is only for refused");
  if (request.reason && request.op != "refused" && request.op != "isolate" &&
      request.op != "restore") {
    return bad("\"reason\" is only for isolate, restore and refused");
  }
  if (request.sudo_user && request.op != "isolate" && request.op != "restore") {
    return bad("\"sudo_user\" is only for isolate and restore");
  }
  if (request.envelope && request.op != "verify" && request.op != "apply_file") {
    return bad("\"envelope\" is only for verify and apply_file");
  }
  return request;
}

nlohmann::json errorAnswer(const std::string& command, const Error& error) {
  return {{"ok", false},
          {"command", command},
          {"error", {{"code", errorCodeName(error.code)}, {"message", error.message}}}};
}

std::optional<Error> answerError(const nlohmann::json& answer) {
  if (!answer.is_object() || !answer.contains("error")) return std::nullopt;
  const auto& error = answer["error"];
  ErrorCode code = ErrorCode::kInternal;
  std::string message = "malformed answer";
  if (error.is_object()) {
    if (error.contains("code") && error["code"].is_string()) {
      const auto it = errorCodesByName().find(error["code"].get<std::string>());
      if (it != errorCodesByName().end()) code = it->second;
    }
    if (error.contains("message") && error["message"].is_string()) {
      message = error["message"].get<std::string>();
    }
  }
  return Error{code, message};
}

nlohmann::json handleControlRequest(AgentCore& core, const ControlRequest& request,
                                    const std::string& origin, const std::string& requested_by) {
  std::string who = requested_by.empty() ? origin : requested_by;
  if (request.sudo_user) who += " sudo_user=" + *request.sudo_user;
  // One writer, one policy: a command started for another gateway or with another policy file
  // than this agent runs would be judged against the wrong policy ("unknown segment" for a
  // segment its own file defines). Say what differs instead.
  if (request.gateway && *request.gateway != core.gatewayId()) {
    return errorAnswer(
        request.op, makeError(ErrorCode::kInvalidArgument,
                              "the agent on this state directory is gateway \"" + core.gatewayId() +
                                  "\", not \"" + *request.gateway + "\""));
  }
  // status only reads: it answers with the daemon's policy (its name and sha256), and the CLI
  // warns about the difference instead.
  if (request.op != "status" && request.policy_sha256 && !core.policy().source_sha256.empty() &&
      *request.policy_sha256 != core.policy().source_sha256) {
    return errorAnswer(
        request.op,
        makeError(ErrorCode::kInvalidArgument,
                  "the agent on this state directory runs another policy (\"" + core.policy().name +
                      "\", sha256 " + core.policy().source_sha256.substr(0, 16) +
                      "...) than --policy gave (sha256 " + request.policy_sha256->substr(0, 16) +
                      "...): give the daemon's policy file, or reload the daemon with the new one "
                      "(systemctl reload shadan-agent, or SIGHUP)"));
  }
  if (request.op == "status") return statusAnswer(core);
  if (request.op == "refused") {
    // A local command refused before it could be handled (its policy file did not load): on
    // record like every other refusal. The reason is the CLI's own error message.
    core.auditEvent(
        "local_command_refused", "rejected",
        nlohmann::json{
            {"command", *request.command}, {"reason", *request.reason}, {"origin", origin}});
    return {{"ok", true}, {"command", "refused"}};
  }
  if (request.op == "isolate") {
    IsolateRequest isolate;
    isolate.scope = request.scope.value_or(IsolationScope::kSegment);
    isolate.segment = request.segment.value_or("");
    isolate.hosts = request.hosts;
    isolate.link_down = request.link_down;
    isolate.profile = request.profile.value_or("full");
    isolate.ttl = request.ttl;
    isolate.drill = request.drill;
    isolate.origin = origin;
    isolate.requested_by = who;
    isolate.reason = request.reason;
    auto result = core.isolate(isolate);
    if (!result.ok()) return errorAnswer(request.op, result.error());
    return changeAnswer(core, request.op, *result);
  }
  if (request.op == "restore") {
    RestoreRequest restore;
    if (!request.all) restore.segment = request.segment;
    restore.scope = request.scope;
    restore.hosts = request.hosts;
    restore.profile = request.profile;
    restore.origin = origin;
    restore.requested_by = who;
    restore.reason = request.reason;
    auto result = core.restore(restore);
    if (!result.ok()) return errorAnswer(request.op, result.error());
    return changeAnswer(core, request.op, *result);
  }
  if (request.op == "verify") {
    OrderVerification verification = core.checkEnvelope(*request.envelope);
    nlohmann::json answer = {{"ok", true},
                             {"command", "verify"},
                             {"gateway", core.gatewayId()},
                             {"accepted", verification.ok()}};
    if (verification.ok()) {
      const VerifiedOrder& order = verification.order();
      answer["order"] = {
          {"command_id", order.authz.command_id},
          {"action", order.authz.action == OrderAction::kIsolate ? "isolate" : "restore"},
          {"segment", order.authz.segment},
          {"profile", order.authz.profile},
          {"requested_by", order.authz.requested_by},
          {"signers", order.signer_identities},
          {"breakglass", order.breakglass},
          {"on_behalf", order.on_behalf}};
    } else {
      answer["reason"] = verification.rejection().code();
      answer["message"] = verification.rejection().message;
    }
    return answer;
  }
  if (request.op == "apply_file") {
    auto result = core.applyBreakglass(*request.envelope);
    if (!result.ok()) return errorAnswer("apply-file", result.error());
    return changeAnswer(core, "apply-file", *result);
  }
  return errorAnswer(request.op,
                     makeError(ErrorCode::kInvalidArgument, "unknown op \"" + request.op + "\""));
}

}  // namespace shadan::agent

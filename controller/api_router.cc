#include "controller/api_router.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/decimal.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/sha256.h"
#include "common/strict_json.h"
#include "controller/console.h"
#include "controller/store.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

std::vector<uint8_t> sha256Bytes(std::string_view data) {
  std::vector<uint8_t> out(32);
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &size, sha256Md(), nullptr) != 1 ||
      size != out.size()) {
    std::abort();  // SHA-256 cannot fail with valid arguments: a broken invariant
  }
  return out;
}

int statusForError(const Error& error) {
  switch (error.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kParse:
      return 400;
    case ErrorCode::kPolicy:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kUnavailable:
      return 409;
    case ErrorCode::kNoSpace:
      return 507;
    default:
      return 500;
  }
}

const char* codeForStatus(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 429:
      return "too_many_requests";
    case 507:
      return "insufficient_storage";
    default:
      return "internal";
  }
}

// The reason an operator gives when signing an approval or approving an agent.
constexpr StringRules kApprovalReason{.non_empty = true, .max_bytes = 512};

// Errors name the member: `body: /reason: must not be empty`.
StrictObjectReader bodyReader(const json& body) {
  return StrictObjectReader(body, "body", "", StrictJsonWording::kFields);
}

ApiResponse fromError(const Error& error) {
  const int status = statusForError(error);
  if (status == 500) {
    logger("api")->error("internal error: {}", error.message);
    return apiError(500, "internal", "internal error; see the controller's log");
  }
  if (error.code == ErrorCode::kUnavailable &&
      error.message.find(kStoreOutcomeUnknown) != std::string::npos) {
    // etcd stopped answering with a commit in flight: it may be recorded (and then sent), or
    // not. The audit log says commit_unknown; the order's status tells once etcd is back.
    logger("api")->error("event=store_outcome_unknown error=\"{}\"", error.message);
    return apiError(503, "store_outcome_unknown",
                    "store stopped answering during the write: it may have been recorded; check "
                    "the status before retrying");
  }
  if (error.code == ErrorCode::kUnavailable &&
      error.message.find(kStoreUnavailable) != std::string::npos) {
    // etcd is out of reach: the transaction was not committed, so nothing is recorded or sent.
    logger("api")->error("event=store_unavailable error=\"{}\"", error.message);
    return apiError(503, "store_unavailable", "store unreachable: nothing recorded or sent; retry");
  }
  if (status == 507) {
    // Nothing was stored: a full store, or an audit entry that found no room, rolls the
    // transaction back (OrdersContext::auditedTransaction). The operator retries once the
    // controller's state directory has room again. The path stays in the log.
    logger("api")->error("event=no_space error=\"{}\"", error.message);
    return apiError(507, codeForStatus(507),
                    "the controller's disk is full; free space in its state directory, retry");
  }
  return apiError(status, codeForStatus(status), error.message);
}

// A request body: a strict JSON object with only `allowed` members. An empty body is `{}`.
Result<json> parseBody(const std::string& text, std::initializer_list<std::string_view> allowed) {
  SHADAN_ASSIGN_OR_RETURN(auto parsed,
                          parseStrictJson(text.empty() ? "{}" : text, "body", kApiMaxBodyBytes));
  if (!parsed.is_object()) return makeError(ErrorCode::kParse, "body: must be a JSON object");
  if (Status members = bodyReader(parsed).checkMembers({}, allowed); !members.ok()) {
    return members.error();
  }
  return parsed;
}

#define SHADAN_API_TRY(var, expr) \
  auto var = (expr);              \
  if (!var.ok()) return fromError(var.error())

ApiResponse accepted(const Result<OrderAccepted>& result) {
  if (!result.ok()) return fromError(result.error());
  return ApiResponse{202, result->toJson()};
}

ApiResponse ok(const Result<json>& result) {
  if (!result.ok()) return fromError(result.error());
  return ApiResponse{200, *result};
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    parts.emplace_back(path.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

// Path parameters (order, approval and agent ids) are plain names: no escapes, no dots.
bool validPathId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// The rung members of an isolate or restore body, shape only (controller/order_target.h checks
// them against the policy). `segment` stays required for a segment order, as it always was.
struct BodyTarget {
  IsolationScope scope = IsolationScope::kSegment;
  std::string segment;
  std::vector<std::string> hosts;
  std::vector<std::string> gateways;
};

Result<BodyTarget> readTarget(const StrictObjectReader& body) {
  BodyTarget target;
  SHADAN_ASSIGN_OR_RETURN(auto scope, body.optionalString("scope", kNonEmptyString));
  if (scope) {
    const std::optional<IsolationScope> parsed = parseIsolationScope(*scope);
    if (!parsed) {
      return body.error("scope", "must be \"segment\", \"host\", \"uplink\" or \"island\"");
    }
    target.scope = *parsed;
  }
  if (target.scope == IsolationScope::kSegment) {
    SHADAN_ASSIGN_OR_RETURN(auto segment, body.string("segment", kNonEmptyString));
    target.segment = std::move(segment);
  } else {
    SHADAN_ASSIGN_OR_RETURN(auto segment, body.optionalString("segment", kNonEmptyString));
    if (segment) target.segment = std::move(*segment);
  }
  SHADAN_ASSIGN_OR_RETURN(auto hosts, body.optionalStrings("hosts"));
  if (hosts) {
    if (hosts->empty()) return body.error("hosts", "must not be empty");
    target.hosts = std::move(*hosts);
  }
  SHADAN_ASSIGN_OR_RETURN(auto gateways, body.optionalStrings("gateways"));
  if (gateways) {
    if (gateways->empty()) return body.error("gateways", "must not be empty (omit it for all)");
    target.gateways = std::move(*gateways);
  }
  return target;
}

// The value of `name` in the query of `target` (no percent-decoding: the values the API takes
// are plain words and numbers), nullopt when absent.
std::optional<std::string> queryParameter(std::string_view target, std::string_view name) {
  const size_t question = target.find('?');
  if (question == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return std::string(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

bool allowed(const Caller& caller, const std::vector<ApiRole>& roles) {
  for (ApiRole role : roles) {
    if (caller.role == role) return true;
  }
  return false;
}

}  // namespace

bool apiIsBulk(std::string_view method, std::string_view target) {
  return method == "POST" && target.substr(0, target.find('?')) == "/v1/alerts";
}

size_t apiBodyLimit(std::string_view method, std::string_view target) {
  return apiIsBulk(method, target) ? kAlertBodyMaxBytes : kApiMaxBodyBytes;
}

ApiResponse apiError(int status, const std::string& code, const std::string& message) {
  return ApiResponse{status, json{{"error", {{"code", code}, {"message", message}}}}};
}

TokenTable::TokenTable(const std::vector<ApiToken>& tokens) {
  for (const auto& token : tokens) {
    auto hash = hexDecode(token.sha256_hex);
    if (!hash.ok() || hash->size() != 32) continue;  // the config loader already checked
    entries_.push_back(Entry{std::move(*hash), Caller{token.name, token.role, token.segments}});
  }
}

std::optional<Caller> TokenTable::authenticate(std::string_view authorization) const {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kScheme[i]) {
      return std::nullopt;
    }
  }
  const std::string_view token = authorization.substr(kScheme.size());
  const std::vector<uint8_t> presented = sha256Bytes(token);
  std::optional<Caller> found;
  // Every entry is compared, matched or not, so timing does not tell which one matched.
  for (const auto& entry : entries_) {
    if (CRYPTO_memcmp(presented.data(), entry.hash.data(), presented.size()) == 0) {
      found = entry.caller;
    }
  }
  return found;
}

// One request on its way through the table: the caller (null for a route served without a
// token) and the path parameters in the order of the pattern's {placeholders}.
struct ApiRouter::Call {
  const ApiRequest& request;
  const Caller* caller;
  std::string path;
  std::vector<std::string> params;
};

struct ApiRouter::Route {
  const char* method;
  const char* path;
  std::vector<ApiRole> roles;  // empty: any valid token
  bool authenticated = true;
  enum Needs { kNothing, kResponder, kMetrics, kOpenApi, kConsole, kAudit } needs = kNothing;
  ApiResponse (ApiRouter::*handler)(const Call&);
};

const std::vector<ApiRouter::Route>& ApiRouter::table() {
  using enum ApiRole;
  using R = Route;
  static const std::vector<Route> routes = {
      {"POST", "/v1/isolate", {kOperator, kDetector}, true, R::kNothing, &ApiRouter::isolate},
      {"POST", "/v1/restore", {kOperator}, true, R::kNothing, &ApiRouter::restore},
      {"POST", "/v1/isolate/preview", {kOperator}, true, R::kNothing, &ApiRouter::previewIsolate},
      {"POST", "/v1/restore/preview", {kOperator}, true, R::kNothing, &ApiRouter::previewRestore},
      {"GET", "/v1/approvals", {kOperator, kAuditor}, true, R::kNothing, &ApiRouter::listApprovals},
      {"POST",
       "/v1/approvals/{approval_id}/signatures",
       {kOperator},
       true,
       R::kNothing,
       &ApiRouter::signApproval},
      {"GET", "/v1/status", {}, true, R::kNothing, &ApiRouter::status},
      {"GET", "/v1/orders/{order_id}", {}, true, R::kNothing, &ApiRouter::order},
      {"GET", "/v1/agents", {}, true, R::kNothing, &ApiRouter::agents},
      {"POST",
       "/v1/agents/{agent_id}/approve",
       {kOperator},
       true,
       R::kNothing,
       &ApiRouter::approveAgent},
      {"POST", "/v1/alerts", {kDetector}, true, R::kResponder, &ApiRouter::intakeAlerts},
      {"GET", "/v1/alerts", {kOperator, kAuditor}, true, R::kResponder, &ApiRouter::recentAlerts},
      {"POST", "/v1/alerts/clear", {kDetector}, true, R::kResponder, &ApiRouter::clearAlerts},
      {"POST",
       "/v1/orders/{order_id}/confirm",
       {kOperator},
       true,
       R::kResponder,
       &ApiRouter::confirmAction},
      {"POST",
       "/v1/orders/{order_id}/release",
       {kOperator},
       true,
       R::kResponder,
       &ApiRouter::releaseAction},
      {"POST", "/v1/breaker/open", {kOperator}, true, R::kResponder, &ApiRouter::openBreaker},
      {"POST", "/v1/breaker/close", {kOperator}, true, R::kResponder, &ApiRouter::closeBreaker},
      {"GET", "/v1/breaker", {}, true, R::kResponder, &ApiRouter::breaker},
      {"GET", "/v1/audit", {kOperator, kAuditor}, true, R::kAudit, &ApiRouter::audit},
      {"GET", "/v1/events", {}, true, R::kNothing, &ApiRouter::events},
      {"GET", "/metrics", {}, true, R::kMetrics, &ApiRouter::metrics},
      {"GET", "/v1/openapi.json", {}, false, R::kOpenApi, &ApiRouter::openApi},
      {"GET", "/", {}, false, R::kConsole, &ApiRouter::consoleIndex},
      {"GET", "/console/{file}", {}, false, R::kConsole, &ApiRouter::consoleFile},
  };
  return routes;
}

bool ApiRouter::serves(const Route& route) const {
  switch (route.needs) {
    case Route::kResponder:
      return responder_ != nullptr;
    case Route::kMetrics:
      return static_cast<bool>(metrics_);
    case Route::kOpenApi:
      return !openapi_.empty();
    case Route::kConsole:
      return console_;
    case Route::kAudit:
      return audit_ != nullptr;
    default:
      return true;
  }
}

std::vector<ApiRouteInfo> ApiRouter::routes() const {
  std::vector<ApiRouteInfo> out;
  for (const Route& route : table()) {
    if (!serves(route)) continue;
    ApiRouteInfo info{route.method, route.path, {}, route.authenticated};
    for (ApiRole role : route.roles) info.roles.emplace_back(apiRoleName(role));
    out.push_back(std::move(info));
  }
  return out;
}

namespace {
// The path parameters of `parts` under `pattern` ("/v1/orders/{order_id}"), nullopt when the
// path is not one of the pattern's. A placeholder takes any one non-empty part: handlers check
// the id itself and answer 404 naming what they looked for.
std::optional<std::vector<std::string>> matchPath(std::string_view pattern,
                                                  const std::vector<std::string>& parts) {
  const std::vector<std::string> want = splitPath(pattern);
  if (want.size() != parts.size()) return std::nullopt;
  std::vector<std::string> params;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i].starts_with('{')) {
      if (parts[i].empty()) return std::nullopt;
      params.push_back(parts[i]);
    } else if (want[i] != parts[i]) {
      return std::nullopt;
    }
  }
  return params;
}
}  // namespace

ApiRouter::ApiRouter(const TokenTable& tokens, OrdersService& orders)
    : tokens_(tokens), orders_(orders) {}

ApiResponse ApiRouter::handle(const ApiRequest& request) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  const std::vector<std::string> parts = splitPath(path);  // "", "v1", ...
  const Route* found = nullptr;
  bool path_known = false;
  std::vector<std::string> params;
  for (const Route& route : table()) {
    if (!serves(route)) continue;
    auto matched = matchPath(route.path, parts);
    if (!matched) continue;
    path_known = true;
    if (request.method != route.method) continue;
    found = &route;
    params = std::move(*matched);
    break;
  }
  if (found != nullptr && !found->authenticated) {
    return (this->*found->handler)(Call{request, nullptr, path, std::move(params)});
  }
  // Outside /v1 only the paths served answer anything but 404; under it, nothing is said about
  // which paths exist before the caller has shown a token.
  if (!path_known && (parts.size() < 3 || !parts[0].empty() || parts[1] != "v1")) {
    return apiError(404, "not_found", "no such endpoint");
  }
  const std::optional<Caller> caller = tokens_.authenticate(request.authorization);
  if (!caller) return apiError(401, "unauthorized", "a valid bearer token is required");
  if (found == nullptr) {
    return apiError(404, "not_found", "no such endpoint: " + request.method + " " + path);
  }
  if (!found->roles.empty() && !allowed(*caller, found->roles)) {
    return apiError(403, "forbidden",
                    "role " + std::string(apiRoleName(caller->role)) + " may not call " +
                        request.method + " " + path);
  }
  return (this->*found->handler)(Call{request, &*caller, path, std::move(params)});
}

namespace {
// What isolate and restore bodies share: the rung, the profile, the reason and the ticket.
struct OrderFields {
  BodyTarget target;
  std::optional<std::string> profile;
  std::string reason;
  std::optional<std::string> ticket;
};

Result<OrderFields> readOrderFields(const StrictObjectReader& body) {
  OrderFields fields;
  SHADAN_ASSIGN_OR_RETURN(fields.target, readTarget(body));
  SHADAN_ASSIGN_OR_RETURN(fields.profile, body.optionalString("profile", kNonEmptyString));
  SHADAN_ASSIGN_OR_RETURN(fields.reason, body.string("reason", kNonEmptyString));
  SHADAN_ASSIGN_OR_RETURN(fields.ticket, body.optionalString("ticket", kNonEmptyString));
  return fields;
}

template <typename Request>
void applyOrderFields(OrderFields fields, Request& request) {
  request.scope = fields.target.scope;
  request.segment = std::move(fields.target.segment);
  request.hosts = std::move(fields.target.hosts);
  request.gateways = std::move(fields.target.gateways);
  if (fields.profile) request.profile = std::move(*fields.profile);
  request.reason = std::move(fields.reason);
  request.ticket = std::move(fields.ticket);
}
}  // namespace

namespace {
Result<IsolateRequest> readIsolateRequest(const std::string& text) {
  SHADAN_ASSIGN_OR_RETURN(
      auto doc, parseBody(text, {"scope", "segment", "hosts", "gateways", "link_down", "profile",
                                 "reason", "ticket", "ttl_s", "drill"}));
  const StrictObjectReader body = bodyReader(doc);
  IsolateRequest isolate;
  SHADAN_ASSIGN_OR_RETURN(auto fields, readOrderFields(body));
  SHADAN_ASSIGN_OR_RETURN(auto ttl, body.optionalInteger("ttl_s"));
  SHADAN_ASSIGN_OR_RETURN(auto drill, body.optionalBoolean("drill"));
  SHADAN_ASSIGN_OR_RETURN(auto link_down, body.optionalBoolean("link_down"));
  applyOrderFields(std::move(fields), isolate);
  isolate.link_down = link_down.value_or(false);
  isolate.ttl_s = ttl;
  isolate.drill = drill.value_or(false);
  // A drill ends on its own: the agents refuse a drill isolate without a ttl.
  if (isolate.drill && !isolate.ttl_s) {
    return body.error("ttl_s", "is required for a drill (drills end on their own)");
  }
  return isolate;
}

Result<RestoreRequest> readRestoreRequest(const std::string& text) {
  SHADAN_ASSIGN_OR_RETURN(auto doc, parseBody(text, {"scope", "segment", "hosts", "gateways",
                                                     "profile", "reason", "ticket", "drill"}));
  const StrictObjectReader body = bodyReader(doc);
  RestoreRequest restore;
  SHADAN_ASSIGN_OR_RETURN(auto fields, readOrderFields(body));
  SHADAN_ASSIGN_OR_RETURN(auto drill, body.optionalBoolean("drill"));
  applyOrderFields(std::move(fields), restore);
  restore.drill = drill.value_or(false);
  return restore;
}
}  // namespace

ApiResponse ApiRouter::isolate(const Call& call) {
  SHADAN_API_TRY(isolate, readIsolateRequest(call.request.body));
  return accepted(orders_.isolate(*call.caller, *isolate));
}

ApiResponse ApiRouter::restore(const Call& call) {
  SHADAN_API_TRY(restore, readRestoreRequest(call.request.body));
  return accepted(orders_.restore(*call.caller, *restore));
}

ApiResponse ApiRouter::previewIsolate(const Call& call) {
  SHADAN_API_TRY(isolate, readIsolateRequest(call.request.body));
  return ok(orders_.previewIsolate(*call.caller, *isolate));
}

ApiResponse ApiRouter::previewRestore(const Call& call) {
  SHADAN_API_TRY(restore, readRestoreRequest(call.request.body));
  return ok(orders_.previewRestore(*call.caller, *restore));
}

ApiResponse ApiRouter::listApprovals(const Call&) {
  auto pending = orders_.pendingApprovals();
  if (pending.ok() && responder_ != nullptr) {
    if (Status swept = responder_->sweep(); !swept.ok()) return fromError(swept.error());
    // Automatic actions wait for "confirm or release", not for signatures: listed apart.
    json automatic = json::array();
    for (json& action : responder_->openActions()) {
      action["kind"] = "automatic";
      automatic.push_back(std::move(action));
    }
    (*pending)["automatic"] = std::move(automatic);
  }
  return ok(pending);
}

ApiResponse ApiRouter::signApproval(const Call& call) {
  const std::string& approval_id = call.params[0];
  if (!validPathId(approval_id)) return apiError(404, "not_found", "no such approval");
  SHADAN_API_TRY(doc, parseBody(call.request.body, {"keyid", "sig", "reason"}));
  const StrictObjectReader body = bodyReader(*doc);
  SHADAN_API_TRY(keyid, body.string("keyid", kNonEmptyString));
  SHADAN_API_TRY(sig, body.string("sig", kNonEmptyString));
  SHADAN_API_TRY(reason, body.optionalString("reason", kApprovalReason));
  auto progress = orders_.addApprovalSignature(*call.caller, approval_id, *keyid, *sig);
  if (!progress.ok()) return fromError(progress.error());
  return ApiResponse{200, progress->toJson()};
}

ApiResponse ApiRouter::status(const Call&) {
  auto status = orders_.status();
  if (status.ok()) (*status)["alarms"] = alarms_ ? alarms_() : json::array();
  if (status.ok() && cluster_) (*status)["cluster"] = cluster_();
  if (status.ok()) {
    for (auto& [id, gateway] : (*status)["gateways"].items()) {
      gateway["last_repair"] = repairs_ ? repairs_(id) : json(nullptr);
    }
  }
  if (status.ok() && responder_ != nullptr) {
    if (Status swept = responder_->sweep(); !swept.ok()) return fromError(swept.error());
    (*status)["response"] = responder_->status();
  }
  return ok(status);
}

ApiResponse ApiRouter::order(const Call& call) {
  if (!validPathId(call.params[0])) return apiError(404, "not_found", "no such order");
  return ok(orders_.order(call.params[0]));
}

ApiResponse ApiRouter::agents(const Call&) { return ok(orders_.agents()); }

ApiResponse ApiRouter::approveAgent(const Call& call) {
  const std::string& agent_id = call.params[0];
  if (!validPathId(agent_id)) return apiError(404, "not_found", "no such agent");
  SHADAN_API_TRY(doc, parseBody(call.request.body, {"reason"}));
  const StrictObjectReader body = bodyReader(*doc);
  SHADAN_API_TRY(reason, body.string("reason", kApprovalReason));
  auto status = orders_.approveAgent(*call.caller, agent_id, *reason);
  if (!status.ok()) return fromError(status.error());
  return ApiResponse{200, json{{"agent_id", agent_id}, {"status", "approved"}}};
}

ApiResponse ApiRouter::intakeAlerts(const Call& call) {
  const ApiRequest& request = call.request;
  const Caller& caller = *call.caller;
  if (request.body.size() > kAlertBodyMaxBytes) {
    return apiError(413, "payload_too_large",
                    "alert batch larger than " + std::to_string(kAlertBodyMaxBytes) + " bytes");
  }
  const std::optional<std::string> query_format = queryParameter(request.target, "format");
  SHADAN_API_TRY(format, alertFormatOf(query_format, request.content_type));
  std::optional<IpPrefix> peer;
  if (auto parsed = IpPrefix::parse(request.peer); parsed.ok()) peer = *parsed;
  SHADAN_API_TRY(answer, responder_->intake(caller, peer, *format, request.body));
  if (answer->retry_after_s > 0) {
    ApiResponse refused = apiError(
        429, "too_many_requests",
        "over the intake limit of detector " + caller.name + "; nothing of this request was taken");
    refused.retry_after_s = answer->retry_after_s;
    return refused;
  }
  json results = json::array();
  for (const AlertResult& result : answer->results) results.push_back(result.toJson());
  return ApiResponse{200, json{{"results", std::move(results)}}};
}

ApiResponse ApiRouter::audit(const Call& call) {
  const std::string& target = call.request.target;
  const size_t question = target.find('?');
  SHADAN_API_TRY(query, parseAuditQuery(question == std::string::npos
                                            ? std::string_view()
                                            : std::string_view(target).substr(question + 1)));
  return ok(audit_->read(*query));
}

ApiResponse ApiRouter::recentAlerts(const Call& call) {
  size_t limit = 100;
  if (auto text = queryParameter(call.request.target, "limit")) {
    const auto value = parseWholeDecimal<size_t>(*text);
    if (!value || *value < 1 || *value > 1000) {
      return apiError(400, "bad_request", "limit: must be 1..1000");
    }
    limit = *value;
  }
  return ApiResponse{200, json{{"alerts", responder_->recentAlerts(limit)}}};
}

ApiResponse ApiRouter::clearAlerts(const Call& call) {
  SHADAN_API_TRY(doc, parseBody(call.request.body, {"host", "reason"}));
  const StrictObjectReader body = bodyReader(*doc);
  SHADAN_API_TRY(host_text, body.string("host", kNonEmptyString));
  SHADAN_API_TRY(reason, body.string("reason", kApprovalReason));
  auto host = IpPrefix::parse(*host_text);
  if (!host.ok()) return apiError(400, "bad_request", "body: /host: " + host.error().message);
  return ok(responder_->clear(*call.caller, *host, *reason));
}

namespace {
// The body of confirm, release and the breaker's open and close: a reason only.
Result<std::string> reasonOf(const std::string& body) {
  SHADAN_ASSIGN_OR_RETURN(auto doc, parseBody(body, {"reason"}));
  return bodyReader(doc).string("reason", kApprovalReason);
}
}  // namespace

ApiResponse ApiRouter::confirmAction(const Call& call) {
  if (!validPathId(call.params[0])) return apiError(404, "not_found", "no such automatic action");
  SHADAN_API_TRY(reason, reasonOf(call.request.body));
  return ok(responder_->confirm(*call.caller, call.params[0], *reason));
}

ApiResponse ApiRouter::releaseAction(const Call& call) {
  if (!validPathId(call.params[0])) return apiError(404, "not_found", "no such automatic action");
  SHADAN_API_TRY(reason, reasonOf(call.request.body));
  return ok(responder_->release(*call.caller, call.params[0], *reason));
}

ApiResponse ApiRouter::openBreaker(const Call& call) { return setBreaker(call, true); }

ApiResponse ApiRouter::closeBreaker(const Call& call) { return setBreaker(call, false); }

ApiResponse ApiRouter::setBreaker(const Call& call, bool open) {
  SHADAN_API_TRY(reason, reasonOf(call.request.body));
  if (Status set = responder_->setBreaker(*call.caller, open, *reason); !set.ok()) {
    return fromError(set.error());
  }
  return ApiResponse{200, responder_->status()["breaker"]};
}

ApiResponse ApiRouter::breaker(const Call&) {
  return ApiResponse{200, responder_->status()["breaker"]};
}

ApiResponse ApiRouter::metrics(const Call&) {
  ApiResponse response{200, nullptr};
  response.text = metrics_();
  response.content_type = std::string(kMetricsContentType);
  return response;
}

ApiResponse ApiRouter::events(const Call&) {
  ApiResponse response{200, nullptr};
  response.event_stream = true;
  return response;
}

namespace {
ApiResponse consoleAnswer(const ConsoleFile& file) {
  ApiResponse response{200, nullptr};
  response.text = std::string(file.body);
  response.content_type = std::string(file.content_type);
  response.headers = {{"Content-Security-Policy", std::string(kConsoleContentSecurityPolicy)},
                      {"X-Frame-Options", "DENY"},
                      {"Referrer-Policy", "no-referrer"},
                      {"ETag", "\"" + std::string(file.sha256) + "\""}};
  return response;
}
}  // namespace

ApiResponse ApiRouter::consoleIndex(const Call&) {
  for (const ConsoleFile& file : consoleFiles()) {
    if (file.name == "index.html") return consoleAnswer(file);
  }
  return apiError(404, "not_found", "no console in this build");
}

ApiResponse ApiRouter::consoleFile(const Call& call) {
  for (const ConsoleFile& file : consoleFiles()) {
    if (file.name == call.params[0]) return consoleAnswer(file);
  }
  return apiError(404, "not_found", "no such console file");
}

ApiResponse ApiRouter::openApi(const Call&) {
  ApiResponse response{200, nullptr};
  response.text = openapi_;
  response.content_type = "application/json";
  return response;
}

}  // namespace shadan::controller

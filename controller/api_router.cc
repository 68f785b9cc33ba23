#include "controller/api_router.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <charconv>

#include "common/logging.h"
#include "common/sha256.h"
#include "common/strict_json.h"

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

bool allowed(const Caller& caller, std::initializer_list<ApiRole> roles) {
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

ApiRouter::ApiRouter(const TokenTable& tokens, OrdersService& orders)
    : tokens_(tokens), orders_(orders) {}

ApiResponse ApiRouter::handle(const ApiRequest& request) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  const std::vector<std::string> parts = splitPath(path);  // "", "v1", ...
  if (parts.size() < 3 || !parts[0].empty() || parts[1] != "v1") {
    return apiError(404, "not_found", "no such endpoint");
  }
  const std::optional<Caller> caller = tokens_.authenticate(request.authorization);
  if (!caller) return apiError(401, "unauthorized", "a valid bearer token is required");

  const std::string& resource = parts[2];
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  auto forbid = [&]() {
    return apiError(403, "forbidden",
                    "role " + std::string(apiRoleName(caller->role)) + " may not call " +
                        request.method + " " + path);
  };
  using enum ApiRole;

  if (parts.size() == 3 && resource == "isolate" && post) {
    if (!allowed(*caller, {kOperator, kDetector})) return forbid();
    SHADAN_API_TRY(doc,
                   parseBody(request.body, {"scope", "segment", "hosts", "gateways", "link_down",
                                            "profile", "reason", "ticket", "ttl_s", "drill"}));
    const StrictObjectReader body = bodyReader(*doc);
    IsolateRequest isolate;
    SHADAN_API_TRY(target, readTarget(body));
    SHADAN_API_TRY(profile, body.optionalString("profile", kNonEmptyString));
    SHADAN_API_TRY(reason, body.string("reason", kNonEmptyString));
    SHADAN_API_TRY(ticket, body.optionalString("ticket", kNonEmptyString));
    SHADAN_API_TRY(ttl, body.optionalInteger("ttl_s"));
    SHADAN_API_TRY(drill, body.optionalBoolean("drill"));
    SHADAN_API_TRY(link_down, body.optionalBoolean("link_down"));
    isolate.scope = target->scope;
    isolate.segment = target->segment;
    isolate.hosts = target->hosts;
    isolate.gateways = target->gateways;
    isolate.link_down = link_down->value_or(false);
    if (*profile) isolate.profile = **profile;
    isolate.reason = *reason;
    isolate.ticket = *ticket;
    isolate.ttl_s = *ttl;
    isolate.drill = drill->value_or(false);
    // A drill ends on its own: the agents refuse a drill isolate without a ttl.
    if (isolate.drill && !isolate.ttl_s) {
      return fromError(body.error("ttl_s", "is required for a drill (drills end on their own)"));
    }
    return accepted(orders_.isolate(*caller, isolate));
  }
  if (parts.size() == 3 && resource == "restore" && post) {
    if (!allowed(*caller, {kOperator})) return forbid();
    SHADAN_API_TRY(doc, parseBody(request.body, {"scope", "segment", "hosts", "gateways", "profile",
                                                 "reason", "ticket", "drill"}));
    const StrictObjectReader body = bodyReader(*doc);
    RestoreRequest restore;
    SHADAN_API_TRY(target, readTarget(body));
    SHADAN_API_TRY(profile, body.optionalString("profile", kNonEmptyString));
    SHADAN_API_TRY(reason, body.string("reason", kNonEmptyString));
    SHADAN_API_TRY(ticket, body.optionalString("ticket", kNonEmptyString));
    SHADAN_API_TRY(restore_drill, body.optionalBoolean("drill"));
    restore.drill = restore_drill->value_or(false);
    restore.scope = target->scope;
    restore.segment = target->segment;
    restore.hosts = target->hosts;
    restore.gateways = target->gateways;
    if (*profile) restore.profile = **profile;
    restore.reason = *reason;
    restore.ticket = *ticket;
    return accepted(orders_.restore(*caller, restore));
  }
  if (parts.size() == 3 && resource == "approvals" && get) {
    if (!allowed(*caller, {kOperator, kAuditor})) return forbid();
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
  if (parts.size() == 5 && resource == "approvals" && parts[4] == "signatures" && post) {
    if (!allowed(*caller, {kOperator})) return forbid();
    if (!validPathId(parts[3])) return apiError(404, "not_found", "no such approval");
    SHADAN_API_TRY(doc, parseBody(request.body, {"keyid", "sig", "reason"}));
    const StrictObjectReader body = bodyReader(*doc);
    SHADAN_API_TRY(keyid, body.string("keyid", kNonEmptyString));
    SHADAN_API_TRY(sig, body.string("sig", kNonEmptyString));
    SHADAN_API_TRY(reason, body.optionalString("reason", kApprovalReason));
    auto progress = orders_.addApprovalSignature(*caller, parts[3], *keyid, *sig);
    if (!progress.ok()) return fromError(progress.error());
    return ApiResponse{200, progress->toJson()};
  }
  if (parts.size() == 3 && resource == "status" && get) {
    auto status = orders_.status();
    if (status.ok()) (*status)["alarms"] = alarms_ ? alarms_() : json::array();
    if (status.ok() && responder_ != nullptr) {
      if (Status swept = responder_->sweep(); !swept.ok()) return fromError(swept.error());
      (*status)["response"] = responder_->status();
    }
    return ok(status);
  }
  if (parts.size() == 4 && resource == "orders" && get) {
    if (!validPathId(parts[3])) return apiError(404, "not_found", "no such order");
    return ok(orders_.order(parts[3]));
  }
  if (parts.size() == 3 && resource == "agents" && get) {
    return ok(orders_.agents());
  }
  if (parts.size() == 5 && resource == "agents" && parts[4] == "approve" && post) {
    if (!allowed(*caller, {kOperator})) return forbid();
    if (!validPathId(parts[3])) return apiError(404, "not_found", "no such agent");
    SHADAN_API_TRY(doc, parseBody(request.body, {"reason"}));
    const StrictObjectReader body = bodyReader(*doc);
    SHADAN_API_TRY(reason, body.string("reason", kApprovalReason));
    auto status = orders_.approveAgent(*caller, parts[3], *reason);
    if (!status.ok()) return fromError(status.error());
    return ApiResponse{200, json{{"agent_id", parts[3]}, {"status", "approved"}}};
  }
  if (responder_ != nullptr && (resource == "alerts" || resource == "breaker" ||
                                (resource == "orders" && parts.size() == 5))) {
    return handleResponse(request, *caller, parts);
  }
  return apiError(404, "not_found", "no such endpoint: " + request.method + " " + path);
}

ApiResponse ApiRouter::handleResponse(const ApiRequest& request, const Caller& caller,
                                      const std::vector<std::string>& parts) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  const std::string& resource = parts[2];
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  auto forbid = [&]() {
    return apiError(403, "forbidden",
                    "role " + std::string(apiRoleName(caller.role)) + " may not call " +
                        request.method + " " + path);
  };
  using enum ApiRole;
  auto reasonOf = [&](const std::string& body) -> Result<std::string> {
    SHADAN_ASSIGN_OR_RETURN(auto doc, parseBody(body, {"reason"}));
    return bodyReader(doc).string("reason", kApprovalReason);
  };

  if (parts.size() == 3 && resource == "alerts" && post) {
    if (!allowed(caller, {kDetector})) return forbid();
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
      ApiResponse refused = apiError(429, "too_many_requests",
                                     "over the intake limit of detector " + caller.name +
                                         "; nothing of this request was taken");
      refused.retry_after_s = answer->retry_after_s;
      return refused;
    }
    json results = json::array();
    for (const AlertResult& result : answer->results) results.push_back(result.toJson());
    return ApiResponse{200, json{{"results", std::move(results)}}};
  }
  if (parts.size() == 3 && resource == "alerts" && get) {
    if (!allowed(caller, {kOperator, kAuditor})) return forbid();
    size_t limit = 100;
    if (auto text = queryParameter(request.target, "limit")) {
      size_t value = 0;
      const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
      if (ec != std::errc() || end != text->data() + text->size() || value < 1 || value > 1000) {
        return apiError(400, "bad_request", "limit: must be 1..1000");
      }
      limit = value;
    }
    return ApiResponse{200, json{{"alerts", responder_->recentAlerts(limit)}}};
  }
  if (parts.size() == 4 && resource == "alerts" && parts[3] == "clear" && post) {
    if (!allowed(caller, {kDetector})) return forbid();
    SHADAN_API_TRY(doc, parseBody(request.body, {"host", "reason"}));
    const StrictObjectReader body = bodyReader(*doc);
    SHADAN_API_TRY(host_text, body.string("host", kNonEmptyString));
    SHADAN_API_TRY(reason, body.string("reason", kApprovalReason));
    auto host = IpPrefix::parse(*host_text);
    if (!host.ok()) return apiError(400, "bad_request", "body: /host: " + host.error().message);
    return ok(responder_->clear(caller, *host, *reason));
  }
  if (parts.size() == 5 && resource == "orders" && post &&
      (parts[4] == "confirm" || parts[4] == "release")) {
    if (!allowed(caller, {kOperator})) return forbid();
    if (!validPathId(parts[3])) return apiError(404, "not_found", "no such automatic action");
    SHADAN_API_TRY(reason, reasonOf(request.body));
    return ok(parts[4] == "confirm" ? responder_->confirm(caller, parts[3], *reason)
                                    : responder_->release(caller, parts[3], *reason));
  }
  if (parts.size() == 4 && resource == "breaker" && post &&
      (parts[3] == "open" || parts[3] == "close")) {
    if (!allowed(caller, {kOperator})) return forbid();
    SHADAN_API_TRY(reason, reasonOf(request.body));
    const bool open = parts[3] == "open";
    if (Status set = responder_->setBreaker(caller, open, *reason); !set.ok()) {
      return fromError(set.error());
    }
    return ApiResponse{200, responder_->status()["breaker"]};
  }
  if (parts.size() == 3 && resource == "breaker" && get) {
    return ApiResponse{200, responder_->status()["breaker"]};
  }
  return apiError(404, "not_found", "no such endpoint: " + request.method + " " + path);
}

}  // namespace shadan::controller

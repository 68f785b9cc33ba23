#pragma once

// The HTTPS API without the transport: authentication (bearer tokens), roles, strict request
// bodies, and the mapping of OrdersService results to status codes and JSON. The Beast server
// (controller/api_server.h) only moves bytes; tests call the router directly.
//
// Contracts:
//   - Tokens are never stored or compared in clear: the presented token is hashed (SHA-256) and
//     compared with every configured hash with CRYPTO_memcmp (constant time, no early exit).
//   - Order of checks: 401 (no or unknown token), 403 (role), 400 (body), then the service.
//   - Bodies are strict JSON objects (parseStrictJson: no duplicate keys, no floats) with only
//     the documented fields; an unknown field is a 400 naming it.
//   - Errors are {"error":{"code","message"}}; neither tokens nor bodies are ever logged.

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "controller/alert_responder.h"
#include "controller/audit_views.h"
#include "controller/config.h"
#include "controller/orders_service.h"

namespace shadan::controller {

inline constexpr size_t kApiMaxBodyBytes = 64 * 1024;

class TokenTable {
 public:
  explicit TokenTable(const std::vector<ApiToken>& tokens);
  // The caller for an `Authorization` header value ("Bearer <token>"); nullopt otherwise.
  std::optional<Caller> authenticate(std::string_view authorization) const;

 private:
  struct Entry {
    std::vector<uint8_t> hash;  // 32 bytes
    Caller caller;
  };
  std::vector<Entry> entries_;
};

struct ApiRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and optional query
  std::string authorization;
  std::string body;
  std::string content_type{};  // the Content-Type header ("" if none)
  std::string peer{};          // the client's IP address ("" if unknown)
};

struct ApiResponse {
  int status = 200;
  nlohmann::json body;
  int64_t retry_after_s = 0;  // > 0: sent as Retry-After (429)
  // An answer that is not JSON (GET /metrics): sent as it is, with `content_type`.
  std::optional<std::string> text = std::nullopt;
  std::string content_type = {};
  // More header fields (the console's Content-Security-Policy, its ETag).
  std::vector<std::pair<std::string, std::string>> headers = {};
  // GET /v1/events: the server keeps the connection open and sends it the events it is given
  // (ApiServer::publish) until either side closes.
  bool event_stream = false;
};

// One endpoint as the router serves it (and docs/openapi.yaml must describe it).
struct ApiRouteInfo {
  std::string method;              // "GET", "POST"
  std::string path;                // "/v1/orders/{order_id}/confirm"
  std::vector<std::string> roles;  // apiRoleName()s allowed; empty: any valid token
  bool authenticated = true;       // false: served without a token
};

// The largest body of a request to `method` `target`: POST /v1/alerts takes batches of up to
// kAlertBodyMaxBytes, everything else kApiMaxBodyBytes. The server applies it after the headers.
size_t apiBodyLimit(std::string_view method, std::string_view target);
// Bulk requests (POST /v1/alerts) wait in the server's bulk lane and run one per turn of the io
// loop, so an operator's request never queues behind a storm of alert batches.
bool apiIsBulk(std::string_view method, std::string_view target);

ApiResponse apiError(int status, const std::string& code, const std::string& message);

class ApiRouter {
 public:
  // Both must outlive the router.
  ApiRouter(const TokenTable& tokens, OrdersService& orders);

  ApiResponse handle(const ApiRequest& request);

  // Standing alarms for GET /v1/status ("alarms": [...]), e.g. AuditMirror::alarms(); an
  // empty list when not set.
  void setAlarmSource(std::function<nlohmann::json()> alarms) { alarms_ = std::move(alarms); }
  // This controller among several on one etcd, for GET /v1/status ("cluster": {"controller",
  // "leading", "leader"}); unset (one controller on SQLite): no "cluster" member.
  void setClusterSource(std::function<nlohmann::json()> cluster) { cluster_ = std::move(cluster); }
  // Per gateway in GET /v1/status, "last_repair": the newest time its own audit log says it
  // found its rules or routes tampered with and rebuilt them (AuditMirror::lastRepair), or
  // null; null for every gateway when not set.
  void setRepairSource(std::function<nlohmann::json(const std::string& agent_id)> repairs) {
    repairs_ = std::move(repairs);
  }
  // The detectors' intake and the automatic actions (POST /v1/alerts, confirm, release,
  // breaker); without one those endpoints answer 404. Must outlive the router.
  void setAlertResponder(AlertResponder* responder) { responder_ = responder; }
  // GET /metrics: the Prometheus exposition this returns (common/metrics.h), for any valid
  // token; without one set, 404.
  void setMetricsSource(std::function<std::string()> render) { metrics_ = std::move(render); }
  // GET /v1/openapi.json: this document, served without a token; without one set, 404.
  void setOpenApiDocument(std::string json_text) { openapi_ = std::move(json_text); }
  // GET / and GET /console/{file}: the operator console (controller/console.h), without a
  // token; not served unless enabled.
  void serveConsole(bool enabled) { console_ = enabled; }
  // GET /v1/audit: the audit logs read and verified (controller/audit_views.h); without one
  // set, 404. Must outlive the router.
  void setAuditReader(AuditReader* reader) { audit_ = reader; }

  // The endpoints served now (those of the alert responder, metrics and the OpenAPI document
  // only once set), in the order they are matched.
  std::vector<ApiRouteInfo> routes() const;

 private:
  struct Call;
  struct Route;
  static const std::vector<Route>& table();
  bool serves(const Route& route) const;

  ApiResponse isolate(const Call& call);
  ApiResponse restore(const Call& call);
  ApiResponse previewIsolate(const Call& call);
  ApiResponse previewRestore(const Call& call);
  ApiResponse listApprovals(const Call& call);
  ApiResponse signApproval(const Call& call);
  ApiResponse status(const Call& call);
  ApiResponse order(const Call& call);
  ApiResponse agents(const Call& call);
  ApiResponse approveAgent(const Call& call);
  ApiResponse intakeAlerts(const Call& call);
  ApiResponse recentAlerts(const Call& call);
  ApiResponse clearAlerts(const Call& call);
  ApiResponse confirmAction(const Call& call);
  ApiResponse releaseAction(const Call& call);
  ApiResponse openBreaker(const Call& call);
  ApiResponse closeBreaker(const Call& call);
  ApiResponse setBreaker(const Call& call, bool open);
  ApiResponse breaker(const Call& call);
  ApiResponse metrics(const Call& call);
  ApiResponse events(const Call& call);
  ApiResponse audit(const Call& call);
  ApiResponse openApi(const Call& call);
  ApiResponse consoleIndex(const Call& call);
  ApiResponse consoleFile(const Call& call);

  const TokenTable& tokens_;
  OrdersService& orders_;
  std::function<nlohmann::json()> alarms_;
  std::function<nlohmann::json()> cluster_;
  AlertResponder* responder_ = nullptr;
  std::function<std::string()> metrics_;
  std::string openapi_;
  bool console_ = false;
  AuditReader* audit_ = nullptr;
  std::function<nlohmann::json(const std::string&)> repairs_;
};

}  // namespace shadan::controller

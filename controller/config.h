#pragma once

// The controller's configuration file (JSON, strict):
//
//   {"api":       {"listen": "127.0.0.1:8443",
//                  "limits": {"max_connections": 1024, "max_connections_per_peer": 64,
//                             "handshake_timeout_s": 10, "request_timeout_s": 30,
//                             "max_header_bytes": 16384}},
//    "agent_hub": {"listen": "0.0.0.0:8444", "heartbeat_s": 10,
//                  "limits": {"max_handshakes": 256, "max_handshakes_per_peer": 64,
//                             "hello_timeout_s": 10, "max_queued_bytes": 67108864}},
//    "tls":       {"ca": "/etc/shadan/ca.crt", "cert": "/etc/shadan/controller.crt",
//                  "key": "/etc/shadan/controller.key", "crl": "/etc/shadan/ca.crl"},
//    "policy": "/etc/shadan/policy.json", "trust": "/etc/shadan/trust.json",
//    "signing_key": "/etc/shadan/controller.ed25519", "state_dir": "/var/lib/shadan-controller",
//    "tokens": [{"name": "sato", "role": "operator", "sha256": "<64 hex>"}],
//    "orders": {"authz_validity_s": 1800, "approval_validity_s": 3600,
//               "dispatch_validity_s": 300},
//    "log_level": "info", "audit_export": "off",
//    "metrics_listen": "127.0.0.1:9464",
//    "store": {"kind": "etcd", "endpoints": ["https://10.0.0.5:2379"], "prefix": "/shadan/",
//              "timeout_ms": 5000, "tls": {"ca": "...", "cert": "...", "key": "..."}},
//    "response": {...}}                      (controller/alerts/response_config.h)
//
// Contracts:
//   - Parsing is strict: duplicate keys, floats and unknown members are refused; every error is
//     kParse and reads `<source>: <JSON pointer>: <reason>`.
//   - `tls.crl`, `orders`, `agent_hub.heartbeat_s`, both `limits` (and each member of them),
//     `log_level`, `audit_export`, `metrics_listen` and `store` are optional (defaults below;
//     docs/security.md "Limits").
//   - `store`: {"kind": "sqlite"} (the default: controller.db in state_dir) or {"kind": "etcd",
//     "endpoints": [1-7 etcd client URLs, checked by parseEtcdEndpoint], "prefix" (starts and
//     ends with "/"), "timeout_ms" (100-60000), "tls" (required with an https endpoint)}
//     (docs/ha.md).
//   - Token names are unique, 1-64 of [a-z0-9_.-]; a token hash appears once (two names for one
//     secret would make the caller's identity ambiguous).
//   - Paths are taken as written; their contents are loaded (and checked) by main.cc.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/listen_address.h"
#include "common/result.h"
#include "controller/alerts/response_config.h"
#include "controller/etcd_client.h"

namespace shadan::controller {

inline constexpr size_t kControllerConfigMaxBytes = 256 * 1024;

enum class ApiRole { kOperator, kDetector, kAuditor };
const char* apiRoleName(ApiRole role);

// What one HTTPS API listener lets its clients hold (controller/api_server.h enforces it).
struct ApiLimits {
  // Connections open at once, TLS handshakes included; more are closed as they are accepted.
  size_t max_connections = 1024;
  // Of those, from one IP address: one client cannot take the room every other one needs.
  size_t max_connections_per_peer = 64;
  std::chrono::milliseconds handshake_timeout{10'000};
  // From the moment a request is awaited (after the handshake, or after the last answer on a
  // kept-alive connection) until all of it, headers and body, has arrived. A client sending a
  // byte a second is closed when this runs out.
  std::chrono::milliseconds request_timeout{30'000};
  size_t max_header_bytes = 16 * 1024;
  // Connections from one peer that may end badly (failed or stalled handshake, headers or body
  // over the limit, a request not in on time, a 401) in a burst, and how many more a minute
  // after it; past that the peer's new connections are closed at accept (PeerPenalties).
  size_t peer_failures_burst = 20;
  size_t peer_failures_per_min = 60;
};

// What the agent hub lets a connection do before and after its hello (controller/agent_hub.h).
struct HubLimits {
  // Connections between accept and hello at once; more wait in the listen backlog.
  size_t max_handshakes = 256;
  // Of those, from one IP address; more are closed as they are accepted (a gateway retries).
  size_t max_handshakes_per_peer = 64;
  std::chrono::milliseconds hello_timeout{10'000};
  // Bytes waiting to be written to one agent; past this the agent is not reading and its
  // session is closed (it reconnects and what it had not acked is resent). Far above the
  // largest legitimate burst: every dispatch an agent has pending, sent at its hello.
  size_t max_queued_bytes = 64 * 1024 * 1024;
  // As the API's (ApiLimits): connections closed before their hello, per peer.
  size_t peer_failures_burst = 20;
  size_t peer_failures_per_min = 60;
};

struct ApiToken {
  std::string name;
  ApiRole role = ApiRole::kAuditor;
  std::string sha256_hex;  // lower-case hex SHA-256 of the token bytes
  // Detector tokens only: the segments its alerts may act on (`"segments": ["office"]`, or
  // ["*"] for every unprotected segment). Absent: its alerts act on none (they are recorded
  // and answered `out_of_scope`), and POST /v1/isolate is not limited (as before alerts).
  std::optional<std::vector<std::string>> segments{};
};

struct OrderTimings {
  int64_t authz_validity_s = 1800;     // isolate authz signed on behalf of a caller
  int64_t approval_validity_s = 3600;  // authz awaiting operator signatures
  int64_t dispatch_validity_s = 300;   // one dispatch envelope (re-signed when resent)
};

// Where the orders, dispatches, approvals and enrollments live (controller/store.h). The audit
// log stays in state_dir whatever the store.
// The etcd store's options (controller/etcd_store.h), as the config gives them.
struct EtcdStoreOptions {
  std::vector<EtcdEndpoint> endpoints;
  std::string prefix = "/shadan/";
  std::chrono::milliseconds timeout{5000};
  // PEM files for https members: the CA that signed their certificates, and this controller's
  // client certificate and key (etcd's --client-cert-auth).
  std::string tls_ca{};
  std::string tls_cert{};
  std::string tls_key{};
  // This controller's name in the presence records (StoreConfig::controller_name, resolved);
  // empty: it records none.
  std::string controller_name{};

  EtcdClientOptions client() const {
    return EtcdClientOptions{endpoints, timeout, tls_ca, tls_cert, tls_key};
  }
};

struct StoreConfig {
  enum class Kind { kSqlite, kEtcd };
  Kind kind = Kind::kSqlite;
  EtcdStoreOptions etcd{};  // kind kEtcd
  // kind kEtcd: the controllers on one etcd elect a leader (controller/leadership.h). This
  // controller's name there (default: the host name) and the leader's lease TTL.
  std::string controller_name{};
  std::chrono::seconds leader_ttl{3};
};

// StoreConfig::controller_name, or the host name when it is empty.
Result<std::string> controllerNameOf(const StoreConfig& store);

struct ControllerConfig {
  ListenAddress api_listen;
  ApiLimits api_limits;
  ListenAddress hub_listen;
  int64_t heartbeat_s = 10;
  HubLimits hub_limits;
  std::filesystem::path tls_ca;
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
  // The CA's revocation list (`shadanctl ca revoke`); empty: none. Read at start.
  std::filesystem::path tls_crl;
  std::filesystem::path policy_file;
  std::filesystem::path trust_file;
  std::filesystem::path signing_key_file;
  std::filesystem::path state_dir;
  StoreConfig store;
  std::vector<ApiToken> tokens;
  OrderTimings orders;
  std::string log_level = "info";
  // A copy of every audit entry to journald or syslog (common/audit_export.h):
  // off | journald | syslog | auto. The hash-chained log stays the record.
  std::string audit_export = "off";
  // A plain-HTTP listener for Prometheus (GET /metrics without a token,
  // common/metrics_server.h); none by default: /metrics on the API takes any valid token.
  std::optional<ListenAddress> metrics_listen;
  // What detectors' alerts lead to (controller/alerts/response_config.h); no rules by default.
  ResponseConfig response{};
};

Result<ControllerConfig> parseControllerConfig(std::string_view json_text, std::string_view source);
Result<ControllerConfig> loadControllerConfig(const std::filesystem::path& path);

}  // namespace shadan::controller

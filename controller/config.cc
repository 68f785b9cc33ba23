#include "controller/config.h"

#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/channel.h"
#include "common/strict_json.h"
#include "controller/etcd_client.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

bool validTokenName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool isLowerHex64(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<ApiRole> parseRole(std::string_view text) {
  if (text == "operator") return ApiRole::kOperator;
  if (text == "detector") return ApiRole::kDetector;
  if (text == "auditor") return ApiRole::kAuditor;
  return makeError(ErrorCode::kParse, "must be operator, detector or auditor");
}

// Reads `{"listen": ...}`, and "heartbeat_s" too if `heartbeat_s` is given, and "limits".
Result<ListenAddress> readListen(const StrictObjectReader& section, int64_t* heartbeat_s) {
  SHADAN_RETURN_IF_ERROR(heartbeat_s != nullptr
                             ? section.checkMembers({}, {"listen", "heartbeat_s", "limits"})
                             : section.checkMembers({}, {"listen", "limits"}));
  SHADAN_ASSIGN_OR_RETURN(auto text, section.string("listen", kNonEmptyString));
  auto address = parseListenAddress(text);
  if (!address.ok()) return section.error("listen", address.error().message);
  if (heartbeat_s != nullptr && section.has("heartbeat_s")) {
    SHADAN_ASSIGN_OR_RETURN(auto value, section.integer("heartbeat_s", 1, 3600));
    *heartbeat_s = value;
  }
  return address;
}

// One optional integer member of a "limits" object, within [min, max].
template <typename T>
Status readLimit(const StrictObjectReader& limits, const char* name, int64_t min, int64_t max,
                 T& out) {
  if (!limits.has(name)) return okStatus();
  SHADAN_ASSIGN_OR_RETURN(auto value, limits.integer(name, min, max));
  out = static_cast<T>(value);
  return okStatus();
}

Status readSeconds(const StrictObjectReader& limits, const char* name, int64_t min, int64_t max,
                   std::chrono::milliseconds& out) {
  int64_t seconds = std::chrono::duration_cast<std::chrono::seconds>(out).count();
  SHADAN_RETURN_IF_ERROR(readLimit(limits, name, min, max, seconds));
  out = std::chrono::seconds(seconds);
  return okStatus();
}

// "<total>" and "<total>_per_peer": counts of at least one, the second at most the first.
Status readTotalAndPerPeer(const StrictObjectReader& limits, const std::string& total_name,
                           size_t& total, size_t& per_peer) {
  const std::string per_peer_name = total_name + "_per_peer";
  SHADAN_RETURN_IF_ERROR(readLimit(limits, total_name.c_str(), 1, 1'000'000, total));
  SHADAN_RETURN_IF_ERROR(readLimit(limits, per_peer_name.c_str(), 1, 1'000'000, per_peer));
  if (per_peer > total) {
    return limits.error(per_peer_name,
                        "must not exceed " + total_name + " (" + std::to_string(total) + ")");
  }
  return okStatus();
}

Result<ApiLimits> readApiLimits(const StrictObjectReader& api) {
  ApiLimits limits;
  SHADAN_ASSIGN_OR_RETURN(auto section, api.optionalObject("limits"));
  if (!section) return limits;
  const StrictObjectReader& r = *section;
  SHADAN_RETURN_IF_ERROR(r.checkMembers(
      {},
      {"max_connections", "max_connections_per_peer", "handshake_timeout_s", "request_timeout_s",
       "max_header_bytes", "peer_failures_burst", "peer_failures_per_min"}));
  SHADAN_RETURN_IF_ERROR(readTotalAndPerPeer(r, "max_connections", limits.max_connections,
                                             limits.max_connections_per_peer));
  SHADAN_RETURN_IF_ERROR(readSeconds(r, "handshake_timeout_s", 1, 300, limits.handshake_timeout));
  SHADAN_RETURN_IF_ERROR(readSeconds(r, "request_timeout_s", 1, 3600, limits.request_timeout));
  SHADAN_RETURN_IF_ERROR(
      readLimit(r, "max_header_bytes", 1024, 1024 * 1024, limits.max_header_bytes));
  SHADAN_RETURN_IF_ERROR(
      readLimit(r, "peer_failures_burst", 1, 1'000'000, limits.peer_failures_burst));
  SHADAN_RETURN_IF_ERROR(
      readLimit(r, "peer_failures_per_min", 1, 1'000'000, limits.peer_failures_per_min));
  return limits;
}

Result<HubLimits> readHubLimits(const StrictObjectReader& hub) {
  HubLimits limits;
  SHADAN_ASSIGN_OR_RETURN(auto section, hub.optionalObject("limits"));
  if (!section) return limits;
  const StrictObjectReader& r = *section;
  SHADAN_RETURN_IF_ERROR(
      r.checkMembers({}, {"max_handshakes", "max_handshakes_per_peer", "hello_timeout_s",
                          "max_queued_bytes", "peer_failures_burst", "peer_failures_per_min"}));
  SHADAN_RETURN_IF_ERROR(readTotalAndPerPeer(r, "max_handshakes", limits.max_handshakes,
                                             limits.max_handshakes_per_peer));
  SHADAN_RETURN_IF_ERROR(readSeconds(r, "hello_timeout_s", 1, 300, limits.hello_timeout));
  // At least one message of the largest size the channel allows must fit.
  SHADAN_RETURN_IF_ERROR(readLimit(r, "max_queued_bytes",
                                   static_cast<int64_t>(kAgentChannelMaxMessageBytes),
                                   int64_t{1} << 32, limits.max_queued_bytes));
  SHADAN_RETURN_IF_ERROR(
      readLimit(r, "peer_failures_burst", 1, 1'000'000, limits.peer_failures_burst));
  SHADAN_RETURN_IF_ERROR(
      readLimit(r, "peer_failures_per_min", 1, 1'000'000, limits.peer_failures_per_min));
  return limits;
}

Result<std::vector<ApiToken>> readTokens(const StrictObjectReader& root) {
  SHADAN_ASSIGN_OR_RETURN(auto array, root.array("tokens"));
  std::vector<ApiToken> tokens;
  std::set<std::string> names;
  std::set<std::string> hashes;
  for (size_t i = 0; i < array.size(); ++i) {
    SHADAN_ASSIGN_OR_RETURN(auto entry, array.object(i));
    SHADAN_RETURN_IF_ERROR(entry.checkMembers({}, {"name", "role", "sha256", "segments"}));
    ApiToken token;
    SHADAN_ASSIGN_OR_RETURN(auto name, entry.string("name", kNonEmptyString));
    if (!validTokenName(name)) return entry.error("name", "must be 1-64 of [a-z0-9_.-]");
    if (!names.insert(name).second) {
      return entry.error("name", "duplicate token name " + quoteForMessage(name));
    }
    token.name = name;
    SHADAN_ASSIGN_OR_RETURN(auto role_text, entry.string("role", kNonEmptyString));
    auto role = parseRole(role_text);
    if (!role.ok()) return entry.error("role", role.error().message);
    token.role = *role;
    SHADAN_ASSIGN_OR_RETURN(auto hash, entry.string("sha256", kNonEmptyString));
    if (!isLowerHex64(hash)) {
      return entry.error("sha256",
                         "must be 64 lower-case hex digits (shadan-controller hash-token)");
    }
    if (!hashes.insert(hash).second) {
      return entry.error("sha256", "the same token is configured twice");
    }
    token.sha256_hex = hash;
    if (entry.has("segments")) {
      if (token.role != ApiRole::kDetector) {
        return entry.error("segments", "only a detector token is scoped to segments");
      }
      SHADAN_ASSIGN_OR_RETURN(auto segments, entry.strings("segments"));
      if (segments.empty()) return entry.error("segments", "must not be empty (omit it)");
      std::set<std::string> seen;
      for (const auto& segment : segments) {
        if (segment.empty() || !seen.insert(segment).second) {
          return entry.error("segments", "names a segment twice or an empty one");
        }
      }
      if (seen.count("*") != 0 && segments.size() != 1) {
        return entry.error("segments", "\"*\" stands alone");
      }
      token.segments = std::move(segments);
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// A controller's name among those on one etcd: logs, the leader key, `status`.
constexpr StringRules kControllerName{.non_empty = true, .max_bytes = 64, .no_control = true};

Result<StoreConfig> readStore(const StrictObjectReader& root) {
  StoreConfig store;
  SHADAN_ASSIGN_OR_RETURN(auto section, root.optionalObject("store"));
  if (!section) return store;
  const StrictObjectReader& reader = *section;
  SHADAN_ASSIGN_OR_RETURN(auto kind, reader.string("kind", kNonEmptyString));
  if (kind == "sqlite") {
    SHADAN_RETURN_IF_ERROR(reader.checkMembers({"kind"}, {}));
    return store;
  }
  if (kind != "etcd") return reader.error("kind", "must be sqlite or etcd");
  SHADAN_RETURN_IF_ERROR(reader.checkMembers(
      {"kind", "endpoints"}, {"prefix", "timeout_ms", "tls", "controller_name", "leader_ttl_s"}));
  store.kind = StoreConfig::Kind::kEtcd;
  SHADAN_ASSIGN_OR_RETURN(auto endpoints, reader.strings("endpoints"));
  bool any_tls = false;
  if (endpoints.empty() || endpoints.size() > 7) {
    return reader.error("endpoints", "must list 1 to 7 etcd members");
  }
  for (const auto& endpoint : endpoints) {
    auto parsed = parseEtcdEndpoint(endpoint);
    if (!parsed.ok()) return reader.error("endpoints", parsed.error().message);
    any_tls = any_tls || parsed->tls;
    store.etcd.endpoints.push_back(*parsed);
  }
  if (reader.has("prefix")) {
    SHADAN_ASSIGN_OR_RETURN(auto prefix, reader.string("prefix", kNonEmptyString));
    if (prefix.size() < 2 || prefix.front() != '/' || prefix.back() != '/' || prefix.size() > 128) {
      return reader.error("prefix", "must start and end with \"/\" (at most 128 characters)");
    }
    store.etcd.prefix = prefix;
  }
  if (reader.has("timeout_ms")) {
    SHADAN_ASSIGN_OR_RETURN(auto timeout, reader.integer("timeout_ms", 100, 60'000));
    store.etcd.timeout = std::chrono::milliseconds(timeout);
  }
  if (reader.has("controller_name")) {
    SHADAN_ASSIGN_OR_RETURN(store.controller_name,
                            reader.string("controller_name", kControllerName));
  }
  if (reader.has("leader_ttl_s")) {
    SHADAN_ASSIGN_OR_RETURN(auto ttl, reader.integer("leader_ttl_s", 2, 60));
    store.leader_ttl = std::chrono::seconds(ttl);
  }
  SHADAN_ASSIGN_OR_RETURN(auto tls_section, reader.optionalObject("tls"));
  if (any_tls && !tls_section) return reader.error("tls", "is required with an https endpoint");
  if (tls_section) {
    const StrictObjectReader& tls = *tls_section;
    SHADAN_RETURN_IF_ERROR(tls.checkMembers({"ca", "cert", "key"}, {}));
    SHADAN_ASSIGN_OR_RETURN(auto ca, tls.string("ca", kNonEmptyString));
    SHADAN_ASSIGN_OR_RETURN(auto cert, tls.string("cert", kNonEmptyString));
    SHADAN_ASSIGN_OR_RETURN(auto key, tls.string("key", kNonEmptyString));
    store.etcd.tls_ca = ca;
    store.etcd.tls_cert = cert;
    store.etcd.tls_key = key;
  }
  return store;
}

}  // namespace

const char* apiRoleName(ApiRole role) {
  switch (role) {
    case ApiRole::kOperator:
      return "operator";
    case ApiRole::kDetector:
      return "detector";
    case ApiRole::kAuditor:
      return "auditor";
  }
  return "?";
}

Result<ControllerConfig> parseControllerConfig(std::string_view json_text,
                                               std::string_view source) {
  SHADAN_ASSIGN_OR_RETURN(auto parsed,
                          parseStrictJson(json_text, source, kControllerConfigMaxBytes));
  // Configuration errors name the member itself: `<file>: /api/listen: ...`.
  const StrictObjectReader root(parsed, source, "", StrictJsonWording::kFields);
  // Only the sections are required up front; the other members say "is required" when read,
  // so a file's errors are reported in the order of this function.
  SHADAN_RETURN_IF_ERROR(
      root.checkMembers({"api", "agent_hub", "tls"},
                        {"policy", "trust", "signing_key", "state_dir", "tokens", "orders",
                         "log_level", "audit_export", "response", "metrics_listen", "store"}));
  ControllerConfig config;

  {
    SHADAN_ASSIGN_OR_RETURN(auto api, root.object("api"));
    SHADAN_ASSIGN_OR_RETURN(auto address, readListen(api, nullptr));
    config.api_listen = address;
    SHADAN_ASSIGN_OR_RETURN(auto limits, readApiLimits(api));
    config.api_limits = limits;
  }
  {
    SHADAN_ASSIGN_OR_RETURN(auto hub, root.object("agent_hub"));
    SHADAN_ASSIGN_OR_RETURN(auto address, readListen(hub, &config.heartbeat_s));
    config.hub_listen = address;
    SHADAN_ASSIGN_OR_RETURN(auto limits, readHubLimits(hub));
    config.hub_limits = limits;
  }
  {
    SHADAN_ASSIGN_OR_RETURN(auto section, root.object("tls"));
    const StrictObjectReader& tls = section;
    SHADAN_RETURN_IF_ERROR(tls.checkMembers({}, {"ca", "cert", "key", "crl"}));
    SHADAN_ASSIGN_OR_RETURN(auto ca, tls.string("ca", kNonEmptyString));
    SHADAN_ASSIGN_OR_RETURN(auto cert, tls.string("cert", kNonEmptyString));
    SHADAN_ASSIGN_OR_RETURN(auto key, tls.string("key", kNonEmptyString));
    config.tls_ca = ca;
    config.tls_cert = cert;
    config.tls_key = key;
    if (tls.has("crl")) {
      SHADAN_ASSIGN_OR_RETURN(auto crl, tls.string("crl", kNonEmptyString));
      config.tls_crl = crl;
    }
  }
  struct PathField {
    const char* key;
    std::filesystem::path* out;
  };
  for (const PathField& field :
       {PathField{"policy", &config.policy_file}, PathField{"trust", &config.trust_file},
        PathField{"signing_key", &config.signing_key_file},
        PathField{"state_dir", &config.state_dir}}) {
    SHADAN_ASSIGN_OR_RETURN(auto value, root.string(field.key, kNonEmptyString));
    *field.out = value;
  }
  SHADAN_ASSIGN_OR_RETURN(auto store, readStore(root));
  config.store = std::move(store);
  SHADAN_ASSIGN_OR_RETURN(auto tokens, readTokens(root));
  config.tokens = std::move(tokens);

  SHADAN_ASSIGN_OR_RETURN(auto orders_section, root.optionalObject("orders"));
  if (orders_section) {
    const StrictObjectReader& orders = *orders_section;
    SHADAN_RETURN_IF_ERROR(orders.checkMembers(
        {}, {"authz_validity_s", "approval_validity_s", "dispatch_validity_s"}));
    // Upper bounds follow the agent's verifier: 24 h per authz, 15 min per dispatch.
    if (orders.has("authz_validity_s")) {
      SHADAN_ASSIGN_OR_RETURN(auto value, orders.integer("authz_validity_s", 60, 24 * 3600));
      config.orders.authz_validity_s = value;
    }
    if (orders.has("approval_validity_s")) {
      SHADAN_ASSIGN_OR_RETURN(auto value, orders.integer("approval_validity_s", 60, 24 * 3600));
      config.orders.approval_validity_s = value;
    }
    if (orders.has("dispatch_validity_s")) {
      SHADAN_ASSIGN_OR_RETURN(auto value, orders.integer("dispatch_validity_s", 10, 15 * 60));
      config.orders.dispatch_validity_s = value;
    }
  }
  if (root.has("log_level")) {
    SHADAN_ASSIGN_OR_RETURN(auto level, root.string("log_level", kNonEmptyString));
    static const std::set<std::string> kLevels = {"debug", "info", "warn", "error", "off"};
    if (kLevels.count(level) == 0) {
      return root.error("log_level", "must be debug, info, warn, error or off");
    }
    config.log_level = level;
  }
  if (root.has("audit_export")) {
    SHADAN_ASSIGN_OR_RETURN(auto mode, root.string("audit_export", kNonEmptyString));
    static const std::set<std::string> kModes = {"off", "journald", "syslog", "auto"};
    if (kModes.count(mode) == 0) {
      return root.error("audit_export", "must be off, journald, syslog or auto");
    }
    config.audit_export = mode;
  }
  SHADAN_ASSIGN_OR_RETURN(auto metrics_listen,
                          root.optionalString("metrics_listen", kNonEmptyString));
  if (metrics_listen) {
    auto address = parseListenAddress(*metrics_listen);
    if (!address.ok()) return root.error("metrics_listen", address.error().message);
    if (address->host == config.api_listen.host && address->port == config.api_listen.port &&
        address->port != 0) {
      return root.error("metrics_listen", "must not be the API's address");
    }
    config.metrics_listen = *address;
  }
  SHADAN_ASSIGN_OR_RETURN(auto response, root.optionalObject("response"));
  if (response) {
    SHADAN_ASSIGN_OR_RETURN(auto parsed_response, parseResponseConfig(*response));
    config.response = std::move(parsed_response);
  }
  return config;
}

Result<std::string> controllerNameOf(const StoreConfig& store) {
  if (!store.controller_name.empty()) return store.controller_name;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    return makeError(ErrorCode::kInvalidArgument,
                     "store: no controller_name and no host name to use instead");
  }
  return std::string(host);
}

Result<ControllerConfig> loadControllerConfig(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(ErrorCode::kNotFound, "cannot read config file " + path.string());
  std::string text;
  char buffer[8192];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > kControllerConfigMaxBytes) {
      return makeError(ErrorCode::kParse, path.string() + ": larger than " +
                                              std::to_string(kControllerConfigMaxBytes) + " bytes");
    }
  }
  return parseControllerConfig(text, path.string());
}

}  // namespace shadan::controller

#include "controller/config.h"

#include <arpa/inet.h>

#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/strict_json.h"

namespace shadan {
namespace {

using nlohmann::json;

// Reads one JSON object member by member, naming the pointer of every bad value.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string source, std::string pointer)
      : object_(object), source_(std::move(source)), pointer_(std::move(pointer)) {}

  Error error(std::string_view key, const std::string& reason) const {
    return makeError(
        ErrorCode::kParse,
        source_ + ": " + jsonPointerDisplay(jsonPointerAppend(pointer_, key)) + ": " + reason);
  }
  Error selfError(const std::string& reason) const {
    return makeError(ErrorCode::kParse,
                     source_ + ": " + jsonPointerDisplay(pointer_) + ": " + reason);
  }

  // Fails unless the value is an object whose members are all in `allowed`.
  Status checkShape(const std::set<std::string>& allowed) const {
    if (!object_.is_object()) return selfError("must be an object");
    for (const auto& [key, value] : object_.items()) {
      if (allowed.count(key) == 0) return error(key, "unknown field " + quoteForMessage(key));
    }
    return okStatus();
  }

  bool has(const std::string& key) const { return object_.contains(key); }

  Result<std::string> string(const std::string& key, bool non_empty = true) const {
    if (!object_.contains(key)) return error(key, "is required");
    const json& value = object_.at(key);
    if (!value.is_string()) return error(key, "must be a string");
    std::string text = value.get<std::string>();
    if (non_empty && text.empty()) return error(key, "must not be empty");
    return text;
  }

  Result<int64_t> integer(const std::string& key, int64_t min, int64_t max) const {
    if (!object_.contains(key)) return error(key, "is required");
    const json& value = object_.at(key);
    if (!value.is_number_integer()) return error(key, "must be an integer");
    const int64_t number = value.get<int64_t>();
    if (number < min || number > max) {
      return error(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    return number;
  }

  const json& at(const std::string& key) const { return object_.at(key); }
  std::string pointerOf(const std::string& key) const { return jsonPointerAppend(pointer_, key); }
  const std::string& source() const { return source_; }

 private:
  const json& object_;
  std::string source_;
  std::string pointer_;
};

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

Result<ListenAddress> readListen(const ObjectReader& section, int64_t* heartbeat_s) {
  std::set<std::string> allowed = {"listen"};
  if (heartbeat_s != nullptr) allowed.insert("heartbeat_s");
  SHADAN_RETURN_IF_ERROR(section.checkShape(allowed));
  auto text = section.string("listen");
  if (!text.ok()) return text.error();
  auto address = parseListenAddress(*text);
  if (!address.ok()) return section.error("listen", address.error().message);
  if (heartbeat_s != nullptr && section.has("heartbeat_s")) {
    auto value = section.integer("heartbeat_s", 1, 3600);
    if (!value.ok()) return value.error();
    *heartbeat_s = *value;
  }
  return address;
}

Result<std::vector<ApiToken>> readTokens(const ObjectReader& root) {
  if (!root.has("tokens")) return root.error("tokens", "is required");
  const json& array = root.at("tokens");
  const std::string pointer = root.pointerOf("tokens");
  if (!array.is_array()) return root.error("tokens", "must be an array");
  std::vector<ApiToken> tokens;
  std::set<std::string> names;
  std::set<std::string> hashes;
  for (size_t i = 0; i < array.size(); ++i) {
    ObjectReader entry(array[i], root.source(), jsonPointerAppend(pointer, i));
    SHADAN_RETURN_IF_ERROR(entry.checkShape({"name", "role", "sha256"}));
    ApiToken token;
    auto name = entry.string("name");
    if (!name.ok()) return name.error();
    if (!validTokenName(*name)) return entry.error("name", "must be 1-64 of [a-z0-9_.-]");
    if (!names.insert(*name).second) {
      return entry.error("name", "duplicate token name " + quoteForMessage(*name));
    }
    token.name = *name;
    auto role_text = entry.string("role");
    if (!role_text.ok()) return role_text.error();
    auto role = parseRole(*role_text);
    if (!role.ok()) return entry.error("role", role.error().message);
    token.role = *role;
    auto hash = entry.string("sha256");
    if (!hash.ok()) return hash.error();
    if (!isLowerHex64(*hash)) {
      return entry.error("sha256",
                         "must be 64 lower-case hex digits (shadan-controller hash-token)");
    }
    if (!hashes.insert(*hash).second) {
      return entry.error("sha256", "the same token is configured twice");
    }
    token.sha256_hex = *hash;
    tokens.push_back(std::move(token));
  }
  return tokens;
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

Result<ListenAddress> parseListenAddress(std::string_view text) {
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return makeError(ErrorCode::kParse, "must be [IPv6]:port");
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    in6_addr v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) {
      return makeError(ErrorCode::kParse,
                       "host " + quoteForMessage(host) + " is not an IPv6 address");
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return makeError(ErrorCode::kParse, "must be host:port");
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) != 1) {
      return makeError(
          ErrorCode::kParse,
          "host " + quoteForMessage(host) + " is not an IPv4 address (write IPv6 as [addr]:port)");
    }
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return makeError(ErrorCode::kParse, "port " + quoteForMessage(port_text) + " is not 0-65535");
  }
  return ListenAddress{host, static_cast<uint16_t>(port)};
}

Result<ControllerConfig> parseControllerConfig(std::string_view json_text,
                                               std::string_view source) {
  auto parsed = parseStrictJson(json_text, source, kControllerConfigMaxBytes);
  if (!parsed.ok()) return parsed.error();
  const std::string src(source);
  ObjectReader root(*parsed, src, "");
  SHADAN_RETURN_IF_ERROR(
      root.checkShape({"api", "agent_hub", "tls", "policy", "trust", "signing_key", "state_dir",
                       "tokens", "orders", "log_level", "audit_export"}));
  ControllerConfig config;

  for (const char* key : {"api", "agent_hub", "tls"}) {
    if (!root.has(key)) return root.error(key, "is required");
  }
  {
    ObjectReader api(root.at("api"), src, root.pointerOf("api"));
    auto address = readListen(api, nullptr);
    if (!address.ok()) return address.error();
    config.api_listen = *address;
  }
  {
    ObjectReader hub(root.at("agent_hub"), src, root.pointerOf("agent_hub"));
    auto address = readListen(hub, &config.heartbeat_s);
    if (!address.ok()) return address.error();
    config.hub_listen = *address;
  }
  {
    ObjectReader tls(root.at("tls"), src, root.pointerOf("tls"));
    SHADAN_RETURN_IF_ERROR(tls.checkShape({"ca", "cert", "key"}));
    auto ca = tls.string("ca");
    if (!ca.ok()) return ca.error();
    auto cert = tls.string("cert");
    if (!cert.ok()) return cert.error();
    auto key = tls.string("key");
    if (!key.ok()) return key.error();
    config.tls_ca = *ca;
    config.tls_cert = *cert;
    config.tls_key = *key;
  }
  struct PathField {
    const char* key;
    std::filesystem::path* out;
  };
  for (const PathField& field :
       {PathField{"policy", &config.policy_file}, PathField{"trust", &config.trust_file},
        PathField{"signing_key", &config.signing_key_file},
        PathField{"state_dir", &config.state_dir}}) {
    auto value = root.string(field.key);
    if (!value.ok()) return value.error();
    *field.out = *value;
  }
  auto tokens = readTokens(root);
  if (!tokens.ok()) return tokens.error();
  config.tokens = std::move(*tokens);

  if (root.has("orders")) {
    ObjectReader orders(root.at("orders"), src, root.pointerOf("orders"));
    SHADAN_RETURN_IF_ERROR(
        orders.checkShape({"authz_validity_s", "approval_validity_s", "dispatch_validity_s"}));
    // Upper bounds follow the agent's verifier: 24 h per authz, 15 min per dispatch.
    if (orders.has("authz_validity_s")) {
      auto value = orders.integer("authz_validity_s", 60, 24 * 3600);
      if (!value.ok()) return value.error();
      config.orders.authz_validity_s = *value;
    }
    if (orders.has("approval_validity_s")) {
      auto value = orders.integer("approval_validity_s", 60, 24 * 3600);
      if (!value.ok()) return value.error();
      config.orders.approval_validity_s = *value;
    }
    if (orders.has("dispatch_validity_s")) {
      auto value = orders.integer("dispatch_validity_s", 10, 15 * 60);
      if (!value.ok()) return value.error();
      config.orders.dispatch_validity_s = *value;
    }
  }
  if (root.has("log_level")) {
    auto level = root.string("log_level");
    if (!level.ok()) return level.error();
    static const std::set<std::string> kLevels = {"debug", "info", "warn", "error", "off"};
    if (kLevels.count(*level) == 0) {
      return root.error("log_level", "must be debug, info, warn, error or off");
    }
    config.log_level = *level;
  }
  if (root.has("audit_export")) {
    auto mode = root.string("audit_export");
    if (!mode.ok()) return mode.error();
    static const std::set<std::string> kModes = {"off", "journald", "syslog", "auto"};
    if (kModes.count(*mode) == 0) {
      return root.error("audit_export", "must be off, journald, syslog or auto");
    }
    config.audit_export = *mode;
  }
  return config;
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

}  // namespace shadan

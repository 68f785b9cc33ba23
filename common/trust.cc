#include "common/trust.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "common/orders.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

constexpr int kMaxThreshold = 64;
constexpr size_t kMaxIdentityBytes = 128;

class TrustParser {
 public:
  explicit TrustParser(std::string_view source) : source_(source) {}

  Error error(std::string_view pointer, const std::string& what) const {
    return makeError(ErrorCode::kParse,
                     std::string(source_) + ": " + jsonPointerDisplay(pointer) + ": " + what);
  }

  Status checkMembers(const Json& object, std::string_view pointer,
                      std::initializer_list<std::string_view> required,
                      std::initializer_list<std::string_view> optional) const {
    if (!object.is_object()) return error(pointer, "must be an object");
    for (const auto& [key, unused] : object.items()) {
      if (std::find(required.begin(), required.end(), key) == required.end() &&
          std::find(optional.begin(), optional.end(), key) == optional.end()) {
        return error(pointer, "unknown member " + quoteForMessage(key));
      }
    }
    for (std::string_view name : required) {
      if (!object.contains(name)) {
        return error(pointer, "missing member \"" + std::string(name) + "\"");
      }
    }
    return okStatus();
  }

  Result<int64_t> integer(const Json& value, std::string_view pointer, int64_t min,
                          int64_t max) const {
    if (!value.is_number_integer() ||
        (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(max))) {
      return error(pointer, "must be an integer between " + std::to_string(min) + " and " +
                                std::to_string(max));
    }
    const int64_t out = value.get<int64_t>();
    if (out < min || out > max) {
      return error(pointer, "must be an integer between " + std::to_string(min) + " and " +
                                std::to_string(max));
    }
    return out;
  }

  Result<TrustKey> key(const Json& value, std::string_view pointer) const {
    SHADAN_RETURN_IF_ERROR(
        checkMembers(value, pointer, {"keyid", "public_key", "identity", "roles"}, {}));
    TrustKey out;
    const std::string public_key_pointer = jsonPointerAppend(pointer, "public_key");
    const Json& public_key = value.at("public_key");
    if (!public_key.is_string()) return error(public_key_pointer, "must be a base64 string");
    auto raw = base64Decode(public_key.get<std::string>());
    if (!raw.ok()) return error(public_key_pointer, raw.error().message);
    if (raw->size() != kEd25519PublicKeyBytes) {
      return error(public_key_pointer,
                   "is " + std::to_string(raw->size()) + " bytes, an Ed25519 key is 32");
    }
    std::memcpy(out.public_key.data(), raw->data(), raw->size());
    out.keyid = ed25519KeyId(out.public_key);

    const Json& keyid = value.at("keyid");
    if (!keyid.is_string() || keyid.get<std::string>() != out.keyid) {
      return error(jsonPointerAppend(pointer, "keyid"),
                   "must be the lower-case hex SHA-256 of public_key (" + out.keyid + ")");
    }

    const std::string identity_pointer = jsonPointerAppend(pointer, "identity");
    const Json& identity = value.at("identity");
    if (!identity.is_string()) return error(identity_pointer, "must be a string");
    out.identity = identity.get<std::string>();
    const bool identity_ok = !out.identity.empty() && out.identity.size() <= kMaxIdentityBytes &&
                             std::all_of(out.identity.begin(), out.identity.end(), [](char c) {
                               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                      (c >= '0' && c <= '9') || std::strchr(":._@-", c) != nullptr;
                             });
    if (!identity_ok) {
      return error(identity_pointer, "must be 1-" + std::to_string(kMaxIdentityBytes) +
                                         " of [A-Za-z0-9:._@-] (e.g. \"op:sato\")");
    }

    const std::string roles_pointer = jsonPointerAppend(pointer, "roles");
    const Json& roles = value.at("roles");
    if (!roles.is_array() || roles.empty()) {
      return error(roles_pointer, "must be a non-empty array of roles");
    }
    for (size_t i = 0; i < roles.size(); ++i) {
      const std::string role_pointer = jsonPointerAppend(roles_pointer, i);
      std::optional<TrustRole> role;
      if (roles[i].is_string()) {
        for (TrustRole candidate : {TrustRole::kOperator, TrustRole::kBreakglass,
                                    TrustRole::kController, TrustRole::kAgent}) {
          if (roles[i].get<std::string>() == trustRoleName(candidate)) role = candidate;
        }
      }
      if (!role) {
        return error(role_pointer,
                     "must be \"operator\", \"breakglass\", \"controller\" or \"agent\"");
      }
      if (!out.roles.insert(*role).second) return error(role_pointer, "duplicate role");
    }
    return out;
  }

  Status thresholds(const Json& value, std::string_view pointer, TrustThresholds& out) const {
    SHADAN_RETURN_IF_ERROR(checkMembers(
        value, pointer, {}, {"isolate", "isolate_protected", "restore", "breakglass_isolate"}));
    auto count = [&](const Json& action, std::string_view action_pointer, const char* name,
                     int& target) -> Status {
      if (!action.contains(name)) return okStatus();
      auto n = integer(action.at(name), jsonPointerAppend(action_pointer, name), 1, kMaxThreshold);
      if (!n.ok()) return n.error();
      target = static_cast<int>(*n);
      return okStatus();
    };
    if (value.contains("isolate")) {
      const std::string p = jsonPointerAppend(pointer, "isolate");
      const Json& isolate = value.at("isolate");
      SHADAN_RETURN_IF_ERROR(checkMembers(isolate, p, {}, {"operators", "controller_on_behalf"}));
      SHADAN_RETURN_IF_ERROR(count(isolate, p, "operators", out.isolate_operators));
      if (isolate.contains("controller_on_behalf")) {
        const Json& flag = isolate.at("controller_on_behalf");
        if (!flag.is_boolean()) {
          return error(jsonPointerAppend(p, "controller_on_behalf"), "must be true or false");
        }
        out.isolate_controller_on_behalf = flag.get<bool>();
      }
    }
    struct Single {
      const char* action;
      const char* member;
      int& target;
    };
    for (const Single& single :
         {Single{"isolate_protected", "operators", out.isolate_protected_operators},
          Single{"restore", "operators", out.restore_operators},
          Single{"breakglass_isolate", "breakglass", out.breakglass_isolate}}) {
      if (!value.contains(single.action)) continue;
      const std::string p = jsonPointerAppend(pointer, single.action);
      SHADAN_RETURN_IF_ERROR(checkMembers(value.at(single.action), p, {}, {single.member}));
      SHADAN_RETURN_IF_ERROR(count(value.at(single.action), p, single.member, single.target));
    }
    return okStatus();
  }

 private:
  std::string_view source_;
};

}  // namespace

const char* trustRoleName(TrustRole role) {
  switch (role) {
    case TrustRole::kOperator:
      return "operator";
    case TrustRole::kBreakglass:
      return "breakglass";
    case TrustRole::kController:
      return "controller";
    case TrustRole::kAgent:
      return "agent";
  }
  return "agent";
}

const TrustKey* Trust::findKey(std::string_view keyid) const {
  for (const auto& key : keys) {
    if (key.keyid == keyid) return &key;
  }
  return nullptr;
}

bool Trust::isExpired(std::chrono::system_clock::time_point now) const {
  return toUnixMillis(now) > expires_at_ms;
}

Result<Trust> parseTrust(std::string_view json_text, std::string_view source) {
  auto doc = parseStrictJson(json_text, source, kTrustMaxBytes);
  if (!doc.ok()) return doc.error();
  const TrustParser p(source);
  SHADAN_RETURN_IF_ERROR(
      p.checkMembers(*doc, "", {"shadan_trust", "version", "expires_at", "keys"}, {"thresholds"}));
  auto format =
      p.integer(doc->at("shadan_trust"), "/shadan_trust", kTrustFormatVersion, kTrustFormatVersion);
  if (!format.ok()) return format.error();

  Trust trust;
  auto version = p.integer(doc->at("version"), "/version", 1, std::numeric_limits<int64_t>::max());
  if (!version.ok()) return version.error();
  trust.version = *version;

  const Json& expires = doc->at("expires_at");
  if (!expires.is_string()) return p.error("/expires_at", "must be an RFC 3339 UTC time string");
  auto expires_ms = parseRfc3339UtcMillis(expires.get<std::string>());
  if (!expires_ms.ok()) return p.error("/expires_at", expires_ms.error().message);
  trust.expires_at_ms = *expires_ms;

  const Json& keys = doc->at("keys");
  if (!keys.is_array() || keys.empty()) return p.error("/keys", "must be a non-empty array");
  // identity -> roles over all of its keys, to keep authorities apart per person, not per key.
  std::map<std::string, std::set<TrustRole>> identity_roles;
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string pointer = jsonPointerAppend("/keys", i);
    auto key = p.key(keys[i], pointer);
    if (!key.ok()) return key.error();
    if (trust.findKey(key->keyid) != nullptr) {
      return p.error(jsonPointerAppend(pointer, "keyid"), "duplicate key " + key->keyid);
    }
    auto& roles = identity_roles[key->identity];
    roles.insert(key->roles.begin(), key->roles.end());
    const bool exclusive = roles.count(TrustRole::kController) || roles.count(TrustRole::kAgent);
    if (exclusive && roles.size() > 1) {
      return p.error(jsonPointerAppend(pointer, "roles"),
                     "identity " + quoteForMessage(key->identity) +
                         " mixes roles: a controller or agent identity holds no other role");
    }
    if (key->hasRole(TrustRole::kBreakglass) && !key->hasRole(TrustRole::kOperator)) {
      return p.error(jsonPointerAppend(pointer, "roles"),
                     "breakglass is a subset of operators: this key needs \"operator\" too");
    }
    trust.keys.push_back(std::move(*key));
  }

  if (doc->contains("thresholds")) {
    SHADAN_RETURN_IF_ERROR(p.thresholds(doc->at("thresholds"), "/thresholds", trust.thresholds));
  }
  return trust;
}

Result<Trust> loadTrustFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(ErrorCode::kIo, path.string() + ": cannot open");
  std::string text;
  char buffer[8192];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > kTrustMaxBytes) {
      return makeError(ErrorCode::kParse, path.string() + ": larger than " +
                                              std::to_string(kTrustMaxBytes) + " bytes");
    }
  }
  if (in.bad()) return makeError(ErrorCode::kIo, path.string() + ": read error");
  return parseTrust(text, path.string());
}

Status acceptTrustUpdate(int64_t held_version, const Trust& candidate, const Clock& clock) {
  if (candidate.isExpired(clock.now())) {
    return makeError(ErrorCode::kInvalidArgument,
                     "trust version " + std::to_string(candidate.version) + " expired at " +
                         formatRfc3339(candidate.expires_at_ms));
  }
  if (candidate.version < held_version) {
    return makeError(ErrorCode::kInvalidArgument,
                     "trust version " + std::to_string(candidate.version) +
                         " is older than the version held (" + std::to_string(held_version) +
                         "): a rollback is refused");
  }
  return okStatus();
}

}  // namespace shadan

#include "common/trust.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "common/orders.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

constexpr int kMaxThreshold = 64;
constexpr size_t kMaxIdentityBytes = 128;

// Trust files have always said "must be an integer between <min> and <max>" for any bad count.
Result<int64_t> boundedInteger(const StrictObjectReader& r, std::string_view name, int64_t min,
                               int64_t max) {
  auto value = r.integer(name, min, max);
  if (!value.ok()) {
    return r.error(
        name, "must be an integer between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return value;
}

Result<TrustKey> readKey(const StrictObjectReader& r) {
  SHADAN_RETURN_IF_ERROR(r.checkMembers({"keyid", "public_key", "identity", "roles"}));
  TrustKey out;
  const Json& public_key = r.at("public_key");
  if (!public_key.is_string()) return r.error("public_key", "must be a base64 string");
  auto raw = base64Decode(public_key.get<std::string>());
  if (!raw.ok()) return r.error("public_key", raw.error().message);
  if (raw->size() != kEd25519PublicKeyBytes) {
    return r.error("public_key",
                   "is " + std::to_string(raw->size()) + " bytes, an Ed25519 key is 32");
  }
  std::memcpy(out.public_key.data(), raw->data(), raw->size());
  out.keyid = ed25519KeyId(out.public_key);

  const Json& keyid = r.at("keyid");
  if (!keyid.is_string() || keyid.get<std::string>() != out.keyid) {
    return r.error("keyid", "must be the lower-case hex SHA-256 of public_key (" + out.keyid + ")");
  }

  SHADAN_ASSIGN_OR_RETURN(auto identity, r.string("identity"));
  out.identity = std::move(identity);
  const bool identity_ok = !out.identity.empty() && out.identity.size() <= kMaxIdentityBytes &&
                           std::all_of(out.identity.begin(), out.identity.end(), [](char c) {
                             return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                    (c >= '0' && c <= '9') || std::strchr(":._@-", c) != nullptr;
                           });
  if (!identity_ok) {
    return r.error("identity", "must be 1-" + std::to_string(kMaxIdentityBytes) +
                                   " of [A-Za-z0-9:._@-] (e.g. \"op:sato\")");
  }

  SHADAN_ASSIGN_OR_RETURN(auto roles, r.array("roles", 1, std::numeric_limits<size_t>::max(),
                                              "must be a non-empty array of roles"));
  for (size_t i = 0; i < roles.size(); ++i) {
    std::optional<TrustRole> role;
    if (roles.at(i).is_string()) role = trustRoleFromName(roles.at(i).get<std::string>());
    if (!role) {
      return roles.error(
          i, "must be \"operator\", \"breakglass\", \"controller\", \"agent\" or \"drill\"");
    }
    if (!out.roles.insert(*role).second) return roles.error(i, "duplicate role");
  }
  return out;
}

// Sets `target` from the member `name` of `action`, if it has one.
Status readCount(const StrictObjectReader& action, std::string_view name, int& target) {
  if (!action.has(name)) return okStatus();
  SHADAN_ASSIGN_OR_RETURN(auto n, boundedInteger(action, name, 1, kMaxThreshold));
  target = static_cast<int>(n);
  return okStatus();
}

// `thresholds.scopes`: which approval rule an isolate of each rung needs. Each member is
// optional (the default stays) and names a rule, never a count, so a file cannot make a rung
// cheaper than the segment isolate rule.
Status readScopes(const StrictObjectReader& r, TrustThresholds& out) {
  SHADAN_RETURN_IF_ERROR(r.checkMembers({}, {"host", "segment", "uplink", "island"}));
  struct Rung {
    const char* name;
    ScopeApproval& target;
  };
  for (const Rung& rung : {Rung{"host", out.host}, Rung{"segment", out.segment},
                           Rung{"uplink", out.uplink}, Rung{"island", out.island}}) {
    SHADAN_ASSIGN_OR_RETURN(auto rule, r.optionalString(rung.name));
    if (!rule) continue;
    if (*rule == "as_segment") {
      rung.target = ScopeApproval::kAsSegment;
    } else if (*rule == "isolate_protected") {
      rung.target = ScopeApproval::kProtected;
    } else {
      return r.error(rung.name, "must be \"as_segment\" or \"isolate_protected\"");
    }
  }
  return okStatus();
}

Status readThresholds(const StrictObjectReader& r, TrustThresholds& out) {
  SHADAN_RETURN_IF_ERROR(r.checkMembers(
      {}, {"isolate", "isolate_protected", "restore", "release", "breakglass_isolate", "scopes"}));
  SHADAN_ASSIGN_OR_RETURN(auto isolate, r.optionalObject("isolate"));
  if (isolate) {
    const StrictObjectReader& action = *isolate;
    SHADAN_RETURN_IF_ERROR(action.checkMembers({}, {"operators", "controller_on_behalf"}));
    SHADAN_RETURN_IF_ERROR(readCount(action, "operators", out.isolate_operators));
    SHADAN_ASSIGN_OR_RETURN(auto on_behalf, action.optionalBoolean("controller_on_behalf"));
    if (on_behalf) out.isolate_controller_on_behalf = *on_behalf;
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
    SHADAN_ASSIGN_OR_RETURN(auto action, r.optionalObject(single.action));
    if (!action) continue;
    SHADAN_RETURN_IF_ERROR(action->checkMembers({}, {single.member}));
    SHADAN_RETURN_IF_ERROR(readCount(*action, single.member, single.target));
  }
  SHADAN_ASSIGN_OR_RETURN(auto release, r.optionalObject("release"));
  if (release) {
    SHADAN_RETURN_IF_ERROR(release->checkMembers({}, {"controller_on_behalf"}));
    SHADAN_ASSIGN_OR_RETURN(auto on_behalf, release->optionalBoolean("controller_on_behalf"));
    if (on_behalf) out.release_controller_on_behalf = *on_behalf;
  }
  SHADAN_ASSIGN_OR_RETURN(auto scopes, r.optionalObject("scopes"));
  if (scopes) SHADAN_RETURN_IF_ERROR(readScopes(*scopes, out));
  return okStatus();
}

bool isDrillIdentity(std::string_view identity) {
  return identity.size() > 6 && identity.substr(0, 6) == "drill:";
}

// The purpose rules of the header comment, for key `index` (JSON pointer /keys/<index>).
Status checkPurpose(const StrictObjectReader& entry, const TrustKey& key, TrustPurpose purpose) {
  const std::string which = "key " + key.keyid + " of " + quoteForMessage(key.identity);
  if (purpose == TrustPurpose::kProduction) {
    if (key.hasRole(TrustRole::kDrill) || isDrillIdentity(key.identity)) {
      return entry.error(key.hasRole(TrustRole::kDrill) ? "roles" : "identity",
                         which +
                             " is a drill key: drill keys are never accepted by a production "
                             "trust file (a drill lab's trust file says \"purpose\": \"lab\")");
    }
    return okStatus();
  }
  for (TrustRole role : {TrustRole::kOperator, TrustRole::kBreakglass}) {
    if (key.hasRole(role)) {
      return entry.error("roles", which + " holds " + quoteForMessage(trustRoleName(role)) +
                                      ": a lab trust file holds no operator or breakglass key "
                                      "(its people are drill:<name> with the role \"drill\")");
    }
  }
  return okStatus();
}

}  // namespace

const char* trustPurposeName(TrustPurpose purpose) {
  return purpose == TrustPurpose::kLab ? "lab" : "production";
}

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
    case TrustRole::kDrill:
      return "drill";
  }
  return "agent";
}

std::optional<TrustRole> trustRoleFromName(std::string_view name) {
  for (TrustRole role : {TrustRole::kOperator, TrustRole::kBreakglass, TrustRole::kController,
                         TrustRole::kAgent, TrustRole::kDrill}) {
    if (name == trustRoleName(role)) return role;
  }
  return std::nullopt;
}

Status checkIdentityRoles(std::string_view identity, const std::set<TrustRole>& roles) {
  const auto hasPrefix = [&](std::string_view prefix) {
    return identity.size() > prefix.size() && identity.substr(0, prefix.size()) == prefix;
  };
  std::set<TrustRole> allowed;
  std::string what;
  if (identity == "controller") {
    allowed = {TrustRole::kController};
    what = "the controller identity holds only \"controller\"";
  } else if (hasPrefix("agent:")) {
    allowed = {TrustRole::kAgent};
    what = "an agent:<id> identity holds only \"agent\"";
  } else if (hasPrefix("drill:")) {
    allowed = {TrustRole::kDrill};
    what = "a drill:<name> identity holds only \"drill\"";
  } else if (hasPrefix("op:")) {
    allowed = {TrustRole::kOperator, TrustRole::kBreakglass};
    what = "an op:<name> identity holds \"operator\", optionally with \"breakglass\"";
  } else {
    what =
        "identities are op:<name> (operator, breakglass), agent:<id> (agent) or controller "
        "(controller); in a lab trust file, drill:<name> (drill)";
  }
  const auto refuse = [&](TrustRole role, std::string_view qualifier) -> Status {
    return makeError(ErrorCode::kInvalidArgument, "identity " + quoteForMessage(identity) +
                                                      " may not hold the role " +
                                                      quoteForMessage(trustRoleName(role)) +
                                                      std::string(qualifier) + ": " + what);
  };
  for (TrustRole role : roles) {
    if (!allowed.contains(role)) return refuse(role, "");
  }
  if (roles.contains(TrustRole::kBreakglass) && !roles.contains(TrustRole::kOperator)) {
    return refuse(TrustRole::kBreakglass, " without \"operator\"");
  }
  return okStatus();
}

std::vector<std::string> identityRoleWarnings(const Trust& trust) {
  std::vector<std::string> warnings;
  for (size_t i = 0; i < trust.keys.size(); ++i) {
    const TrustKey& key = trust.keys[i];
    if (Status rule = checkIdentityRoles(key.identity, key.roles); !rule.ok()) {
      warnings.push_back("keys[" + std::to_string(i) + "]: " + rule.error().message);
    }
  }
  return warnings;
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
  SHADAN_ASSIGN_OR_RETURN(auto doc, parseStrictJson(json_text, source, kTrustMaxBytes));
  const StrictObjectReader r(doc, source);
  SHADAN_RETURN_IF_ERROR(
      r.checkMembers({"shadan_trust", "version", "expires_at", "keys"}, {"purpose", "thresholds"}));
  SHADAN_RETURN_IF_ERROR(
      boundedInteger(r, "shadan_trust", kTrustFormatVersion, kTrustFormatVersion));

  Trust trust;
  SHADAN_ASSIGN_OR_RETURN(auto version,
                          boundedInteger(r, "version", 1, std::numeric_limits<int64_t>::max()));
  trust.version = version;

  const Json& expires = r.at("expires_at");
  if (!expires.is_string()) return r.error("expires_at", "must be an RFC 3339 UTC time string");
  auto expires_ms = parseRfc3339UtcMillis(expires.get<std::string>());
  if (!expires_ms.ok()) return r.error("expires_at", expires_ms.error().message);
  trust.expires_at_ms = *expires_ms;

  SHADAN_ASSIGN_OR_RETURN(auto purpose, r.optionalString("purpose"));
  if (purpose) {
    if (*purpose == "lab") {
      trust.purpose = TrustPurpose::kLab;
    } else if (*purpose != "production") {
      return r.error("purpose", "must be \"production\" or \"lab\"");
    }
  }

  SHADAN_ASSIGN_OR_RETURN(auto keys, r.array("keys", 1));
  // identity -> roles over all of its keys, to keep authorities apart per person, not per key.
  std::map<std::string, std::set<TrustRole>> identity_roles;
  for (size_t i = 0; i < keys.size(); ++i) {
    // A key that is not an object fails in readKey's checkMembers, with the same message.
    const StrictObjectReader entry(keys.at(i), source, keys.pointerOf(i));
    SHADAN_ASSIGN_OR_RETURN(auto key, readKey(entry));
    if (trust.findKey(key.keyid) != nullptr) {
      return entry.error("keyid", "duplicate key " + key.keyid);
    }
    auto& roles = identity_roles[key.identity];
    roles.insert(key.roles.begin(), key.roles.end());
    const bool exclusive = roles.count(TrustRole::kController) || roles.count(TrustRole::kAgent);
    if (exclusive && roles.size() > 1) {
      return entry.error("roles",
                         "identity " + quoteForMessage(key.identity) +
                             " mixes roles: a controller or agent identity holds no other role");
    }
    if (roles.count(TrustRole::kDrill) && roles.size() > 1) {
      return entry.error("roles", "identity " + quoteForMessage(key.identity) +
                                      " mixes roles: a drill identity holds no other role");
    }
    SHADAN_RETURN_IF_ERROR(checkPurpose(entry, key, trust.purpose));
    if (key.hasRole(TrustRole::kBreakglass) && !key.hasRole(TrustRole::kOperator)) {
      return entry.error("roles",
                         "breakglass is a subset of operators: this key needs \"operator\" too");
    }
    trust.keys.push_back(std::move(key));
  }

  SHADAN_ASSIGN_OR_RETURN(auto thresholds, r.optionalObject("thresholds"));
  if (thresholds) SHADAN_RETURN_IF_ERROR(readThresholds(*thresholds, trust.thresholds));
  return trust;
}

std::string serializeTrust(const Trust& trust) {
  using Json = nlohmann::ordered_json;
  Json doc;
  doc["shadan_trust"] = kTrustFormatVersion;
  doc["version"] = trust.version;
  doc["expires_at"] = formatRfc3339(trust.expires_at_ms);
  doc["purpose"] = trustPurposeName(trust.purpose);
  doc["keys"] = Json::array();
  for (const TrustKey& key : trust.keys) {
    Json roles = Json::array();
    for (TrustRole role : key.roles) roles.push_back(trustRoleName(role));
    doc["keys"].push_back({{"keyid", ed25519KeyId(key.public_key)},
                           {"public_key", base64Encode(key.public_key)},
                           {"identity", key.identity},
                           {"roles", roles}});
  }
  const TrustThresholds& t = trust.thresholds;
  const auto rule = [](ScopeApproval approval) {
    return approval == ScopeApproval::kAsSegment ? "as_segment" : "isolate_protected";
  };
  doc["thresholds"] = {{"isolate",
                        {{"operators", t.isolate_operators},
                         {"controller_on_behalf", t.isolate_controller_on_behalf}}},
                       {"isolate_protected", {{"operators", t.isolate_protected_operators}}},
                       {"restore", {{"operators", t.restore_operators}}},
                       {"release", {{"controller_on_behalf", t.release_controller_on_behalf}}},
                       {"breakglass_isolate", {{"breakglass", t.breakglass_isolate}}},
                       {"scopes",
                        {{"host", rule(t.host)},
                         {"segment", rule(t.segment)},
                         {"uplink", rule(t.uplink)},
                         {"island", rule(t.island)}}}};
  return doc.dump();
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
  SHADAN_ASSIGN_OR_RETURN(auto trust, parseTrust(text, path.string()));
  for (const std::string& warning : identityRoleWarnings(trust)) {
    logger("trust")->warn("file={} event=identity_rule_broken detail={}", path.string(), warning);
  }
  return trust;
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

#include "common/policy_parser.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "common/strict_json.h"

namespace shadan::policy_detail {
namespace {

using nlohmann::json;

constexpr size_t kMaxPolicyNameChars = 64;
constexpr size_t kMaxInterfaceNameChars = 15;  // IFNAMSIZ - 1

// What the kernel's dev_valid_name() accepts: 1..15 bytes, not "." or "..", no '/', ':' or
// whitespace. Control characters are refused as well.
bool isValidInterfaceName(std::string_view name) {
  if (name.empty() || name.size() > kMaxInterfaceNameChars || name == "." || name == "..") {
    return false;
  }
  return std::none_of(name.begin(), name.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return c == '/' || c == ':' || c == ' ' || byte < 0x20 || byte == 0x7f;
  });
}

}  // namespace

Result<LoadedPolicy> PolicyParser::parse(const json& root) {
  SHADAN_RETURN_IF_ERROR(
      reader_.checkObject(root, "", {"shadan_policy", "name", "segments", "gateways", "profiles"},
                          {"management", "agent"}));
  SHADAN_RETURN_IF_ERROR(parseVersion(root.at("shadan_policy"), "/shadan_policy"));
  SHADAN_ASSIGN_OR_RETURN(auto name, parsePolicyName(root.at("name"), "/name"));
  loaded_.policy.name = std::move(name);
  SHADAN_RETURN_IF_ERROR(parseSegments(root.at("segments"), "/segments"));
  SHADAN_RETURN_IF_ERROR(parseGateways(root.at("gateways"), "/gateways"));
  if (root.contains("management")) {
    SHADAN_RETURN_IF_ERROR(parseManagement(root.at("management"), "/management"));
  }
  if (loaded_.policy.always_allow.empty()) {
    warn("/management/always_allow",
         "no management.always_allow rules: an isolation would also cut the agent's path to "
         "the controller");
  }
  SHADAN_RETURN_IF_ERROR(parseProfiles(root.at("profiles"), "/profiles"));
  if (root.contains("agent")) {
    SHADAN_RETURN_IF_ERROR(parseAgentOptions(root.at("agent"), "/agent"));
  }
  return std::move(loaded_);
}

void PolicyParser::warn(std::string pointer, std::string message) {
  loaded_.warnings.push_back(PolicyWarning{std::move(pointer), std::move(message)});
}

Status PolicyParser::parseVersion(const json& value, std::string_view pointer) const {
  if (!value.is_number_integer()) return reader_.typeError(value, pointer, "an integer");
  if (value != kPolicyFormatVersion) {
    return reader_.fail(pointer, "unsupported policy format version " + value.dump() +
                                     " (this build reads " + std::to_string(kPolicyFormatVersion) +
                                     ")");
  }
  return okStatus();
}

Result<std::string> PolicyParser::parsePolicyName(const json& value,
                                                  std::string_view pointer) const {
  SHADAN_ASSIGN_OR_RETURN(auto name, reader_.parseString(value, pointer));
  if (name.empty() || utf8Length(name) > kMaxPolicyNameChars || hasControlCharacter(name)) {
    return reader_.fail(pointer, "policy name must be 1.." + std::to_string(kMaxPolicyNameChars) +
                                     " characters without control characters");
  }
  return name;
}

Status PolicyParser::parseSegments(const json& segments, std::string_view pointer) {
  if (!segments.is_object()) return reader_.typeError(segments, pointer, "an object");
  if (segments.empty()) return reader_.fail(pointer, "a policy needs at least one segment");
  std::string default_pointer;
  for (const auto& [name, value] : segments.items()) {
    const std::string segment_pointer = jsonPointerAppend(pointer, name);
    SHADAN_RETURN_IF_ERROR(reader_.checkName(name, segment_pointer, "segment"));
    SHADAN_RETURN_IF_ERROR(reader_.checkObject(
        value, segment_pointer, {}, {"description", "prefixes", "protected", "default"}));
    Segment segment;
    segment.name = name;
    SHADAN_ASSIGN_OR_RETURN(auto description, reader_.optionalDescription(value, segment_pointer));
    segment.description = std::move(description);
    if (value.contains("protected")) {
      SHADAN_ASSIGN_OR_RETURN(auto is_protected,
                              reader_.parseBool(value.at("protected"),
                                                jsonPointerAppend(segment_pointer, "protected")));
      segment.is_protected = is_protected;
    }
    if (value.contains("default")) {
      const std::string flag_pointer = jsonPointerAppend(segment_pointer, "default");
      SHADAN_ASSIGN_OR_RETURN(auto is_default,
                              reader_.parseBool(value.at("default"), flag_pointer));
      segment.is_default = is_default;
      if (segment.is_default) {
        if (!default_pointer.empty()) {
          return reader_.fail(flag_pointer, "a second default segment (the first is at " +
                                                default_pointer + "): at most one is allowed");
        }
        default_pointer = flag_pointer;
      }
    }
    const std::string prefixes_pointer = jsonPointerAppend(segment_pointer, "prefixes");
    if (value.contains("prefixes")) {
      const json& prefixes = value.at("prefixes");
      if (!prefixes.is_array()) return reader_.typeError(prefixes, prefixes_pointer, "an array");
      for (size_t i = 0; i < prefixes.size(); ++i) {
        SHADAN_ASSIGN_OR_RETURN(
            auto prefix, reader_.parsePrefix(prefixes[i], jsonPointerAppend(prefixes_pointer, i)));
        segment.prefixes.push_back(prefix);
      }
    }
    if (segment.is_default && !segment.prefixes.empty()) {
      return reader_.fail(
          prefixes_pointer,
          "the default segment means every address not in another segment; it takes "
          "no prefixes");
    }
    if (!segment.is_default && segment.prefixes.empty()) {
      return reader_.fail(prefixes_pointer,
                          "a segment needs at least one prefix (or \"default\": true)");
    }
    loaded_.policy.segments.emplace(name, std::move(segment));
  }
  return checkPrefixOverlaps(pointer);
}

// Every prefix belongs to at most one segment: an address in two segments would make
// "isolate X" cut part of Y. Within a segment, a duplicate or nested prefix is redundant and
// would make the dataplane's interval sets reject the set.
Status PolicyParser::checkPrefixOverlaps(std::string_view pointer) const {
  struct Entry {
    IpPrefix prefix;
    std::string segment;
    size_t index;
  };
  std::vector<Entry> entries;
  for (const auto& [name, segment] : loaded_.policy.segments) {
    for (size_t i = 0; i < segment.prefixes.size(); ++i) {
      entries.push_back(Entry{segment.prefixes[i], name, i});
    }
  }
  // Sorted by (family, address, length): if any two prefixes overlap, one contains the other,
  // and then the container sorts right before some prefix it contains — so comparing
  // neighbours finds the first overlap.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.prefix, a.segment, a.index) < std::tie(b.prefix, b.segment, b.index);
  });
  const auto entryPointer = [pointer](const Entry& entry) {
    return jsonPointerAppend(
        jsonPointerAppend(jsonPointerAppend(pointer, entry.segment), "prefixes"), entry.index);
  };
  for (size_t i = 1; i < entries.size(); ++i) {
    const Entry& outer = entries[i - 1];
    const Entry& inner = entries[i];
    if (!outer.prefix.contains(inner.prefix)) continue;
    const std::string where = outer.segment == inner.segment
                                  ? "in the same segment"
                                  : "of segment \"" + outer.segment + "\"";
    const std::string what = outer.prefix == inner.prefix ? "duplicates" : "overlaps";
    return reader_.fail(entryPointer(inner), "prefix " + inner.prefix.toCidr() + " " + what + " " +
                                                 outer.prefix.toCidr() + " " + where + " (" +
                                                 entryPointer(outer) + ")");
  }
  return okStatus();
}

Status PolicyParser::parseGateways(const json& gateways, std::string_view pointer) {
  if (!gateways.is_object()) return reader_.typeError(gateways, pointer, "an object");
  if (gateways.empty()) warn(std::string(pointer), "no gateways: no isolation can be enforced");
  std::set<std::string> bordered;
  for (const auto& [id, value] : gateways.items()) {
    const std::string gateway_pointer = jsonPointerAppend(pointer, id);
    SHADAN_RETURN_IF_ERROR(reader_.checkName(id, gateway_pointer, "gateway"));
    SHADAN_RETURN_IF_ERROR(
        reader_.checkObject(value, gateway_pointer, {}, {"borders", "interfaces", "link_down"}));
    Gateway gateway;
    gateway.id = id;
    const std::string borders_pointer = jsonPointerAppend(gateway_pointer, "borders");
    if (value.contains("borders")) {
      SHADAN_ASSIGN_OR_RETURN(auto borders,
                              parseSegmentList(value.at("borders"), borders_pointer, "segment"));
      gateway.borders = std::move(borders);
    }
    if (gateway.borders.empty()) {
      warn(borders_pointer, "gateway \"" + id + "\" borders no segment: it enforces nothing");
    }
    bordered.insert(gateway.borders.begin(), gateway.borders.end());
    if (value.contains("interfaces")) {
      SHADAN_RETURN_IF_ERROR(parseInterfaces(
          value.at("interfaces"), jsonPointerAppend(gateway_pointer, "interfaces"), gateway));
    }
    // After "interfaces", whatever the key order in the file: link_down names are checked
    // against the gateway's interfaces of the default segment.
    if (value.contains("link_down")) {
      SHADAN_RETURN_IF_ERROR(parseLinkDown(
          value.at("link_down"), jsonPointerAppend(gateway_pointer, "link_down"), gateway));
    }
    loaded_.policy.gateways.emplace(id, std::move(gateway));
  }
  if (!gateways.empty()) {
    for (const auto& [name, segment] : loaded_.policy.segments) {
      if (bordered.count(name) == 0) {
        warn("/segments/" + name,
             "no gateway borders segment \"" + name + "\": isolating it would cut nothing");
      }
    }
  }
  return okStatus();
}

// A list of known, distinct segment names (gateway borders, profile peers).
Result<std::vector<std::string>> PolicyParser::parseSegmentList(const json& value,
                                                                std::string_view pointer,
                                                                std::string_view what) const {
  if (!value.is_array()) return reader_.typeError(value, pointer, "an array");
  std::vector<std::string> names;
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string item_pointer = jsonPointerAppend(pointer, i);
    SHADAN_ASSIGN_OR_RETURN(auto name, reader_.parseString(value[i], item_pointer));
    if (loaded_.policy.segments.count(name) == 0) {
      return reader_.fail(item_pointer,
                          "unknown " + std::string(what) + " " + quoteForMessage(name));
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return reader_.fail(item_pointer, "segment " + quoteForMessage(name) + " listed twice");
    }
    names.push_back(std::move(name));
  }
  return names;
}

Status PolicyParser::parseInterfaces(const json& value, std::string_view pointer,
                                     Gateway& gateway) const {
  if (!value.is_object()) return reader_.typeError(value, pointer, "an object");
  for (const auto& [segment, names] : value.items()) {
    const std::string segment_pointer = jsonPointerAppend(pointer, segment);
    if (loaded_.policy.segments.count(segment) == 0) {
      return reader_.fail(segment_pointer, "unknown segment " + quoteForMessage(segment));
    }
    if (std::find(gateway.borders.begin(), gateway.borders.end(), segment) ==
        gateway.borders.end()) {
      return reader_.fail(segment_pointer, "segment " + quoteForMessage(segment) +
                                               " is not in this gateway's borders");
    }
    if (!names.is_array()) return reader_.typeError(names, segment_pointer, "an array");
    if (names.empty()) {
      return reader_.fail(segment_pointer, "empty interface list (omit the segment instead)");
    }
    std::vector<std::string> interfaces;
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string item_pointer = jsonPointerAppend(segment_pointer, i);
      SHADAN_ASSIGN_OR_RETURN(auto name, parseInterfaceName(names[i], item_pointer));
      if (std::find(interfaces.begin(), interfaces.end(), name) != interfaces.end()) {
        return reader_.fail(item_pointer, "interface " + quoteForMessage(name) + " listed twice");
      }
      interfaces.push_back(std::move(name));
    }
    gateway.interfaces.emplace(segment, std::move(interfaces));
  }
  return okStatus();
}

Result<std::string> PolicyParser::parseInterfaceName(const json& value,
                                                     std::string_view pointer) const {
  SHADAN_ASSIGN_OR_RETURN(auto name, reader_.parseString(value, pointer));
  if (!isValidInterfaceName(name)) {
    return reader_.fail(pointer, "invalid interface name " + quoteForMessage(name) +
                                     ": 1..15 characters, no '/', ':' or whitespace");
  }
  return name;
}

// Setting a link down cuts everything on it, management included, so the policy names each
// interface that may go down, and only uplinks qualify: the gateway's interfaces of the default
// segment. An empty list allows nothing, like an absent one.
Status PolicyParser::parseLinkDown(const json& value, std::string_view pointer,
                                   Gateway& gateway) const {
  if (!value.is_array()) return reader_.typeError(value, pointer, "an array");
  const Segment* default_segment = loaded_.policy.defaultSegment();
  if (!value.empty() && default_segment == nullptr) {
    return reader_.fail(pointer,
                        "link_down names uplink interfaces, those of the default segment, and "
                        "this policy has no default segment");
  }
  std::vector<std::string> names;
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string item_pointer = jsonPointerAppend(pointer, i);
    SHADAN_ASSIGN_OR_RETURN(auto name, parseInterfaceName(value[i], item_pointer));
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return reader_.fail(item_pointer, "interface " + quoteForMessage(name) + " listed twice");
    }
    const auto uplinks = gateway.interfaces.find(default_segment->name);
    if (uplinks == gateway.interfaces.end() ||
        std::find(uplinks->second.begin(), uplinks->second.end(), name) == uplinks->second.end()) {
      return reader_.fail(item_pointer,
                          quoteForMessage(name) + " is not an interface of the default segment " +
                              quoteForMessage(default_segment->name) + " on this gateway");
    }
    names.push_back(std::move(name));
  }
  gateway.link_down = std::move(names);
  return okStatus();
}

Status PolicyParser::parseAgentOptions(const json& agent, std::string_view pointer) {
  SHADAN_RETURN_IF_ERROR(reader_.checkObject(
      agent, pointer, {}, {"lockout_check", "conntrack", "on_controller_loss", "drill_max_ttl_s"}));
  AgentOptions& options = loaded_.policy.agent;
  if (agent.contains("lockout_check")) {
    SHADAN_ASSIGN_OR_RETURN(
        auto mode,
        reader_.parseChoice(agent.at("lockout_check"), jsonPointerAppend(pointer, "lockout_check"),
                            {"warn", "refuse"}));
    options.lockout_check = mode == 0 ? LockoutCheckMode::kWarn : LockoutCheckMode::kRefuse;
  }
  if (agent.contains("on_controller_loss")) {
    SHADAN_ASSIGN_OR_RETURN(
        auto mode,
        reader_.parseChoice(agent.at("on_controller_loss"),
                            jsonPointerAppend(pointer, "on_controller_loss"), {"keep", "revert"}));
    options.on_controller_loss =
        mode == 0 ? ControllerLossMode::kKeep : ControllerLossMode::kRevert;
  }
  if (agent.contains("drill_max_ttl_s")) {
    SHADAN_ASSIGN_OR_RETURN(
        auto ttl, reader_.parseInteger(agent.at("drill_max_ttl_s"),
                                       jsonPointerAppend(pointer, "drill_max_ttl_s"), kMinDrillTtlS,
                                       kMaxDrillTtlS));
    options.drill_max_ttl_s = ttl;
  }
  if (agent.contains("conntrack")) {
    const std::string conntrack_pointer = jsonPointerAppend(pointer, "conntrack");
    const json& conntrack = agent.at("conntrack");
    SHADAN_RETURN_IF_ERROR(reader_.checkObject(conntrack, conntrack_pointer, {},
                                               {"delete_on_isolate", "flush_on_restore"}));
    if (conntrack.contains("delete_on_isolate")) {
      SHADAN_ASSIGN_OR_RETURN(
          auto mode, reader_.parseChoice(conntrack.at("delete_on_isolate"),
                                         jsonPointerAppend(conntrack_pointer, "delete_on_isolate"),
                                         {"if-nat", "always", "never"}));
      options.conntrack_on_isolate = mode == 0   ? ConntrackOnIsolate::kIfNat
                                     : mode == 1 ? ConntrackOnIsolate::kAlways
                                                 : ConntrackOnIsolate::kNever;
    }
    if (conntrack.contains("flush_on_restore")) {
      SHADAN_ASSIGN_OR_RETURN(
          auto flush, reader_.parseBool(conntrack.at("flush_on_restore"),
                                        jsonPointerAppend(conntrack_pointer, "flush_on_restore")));
      options.conntrack_flush_on_restore = flush;
    }
  }
  return okStatus();
}

Status PolicyParser::parseManagement(const json& management, std::string_view pointer) {
  SHADAN_RETURN_IF_ERROR(reader_.checkObject(management, pointer, {}, {"always_allow"}));
  if (!management.contains("always_allow")) return okStatus();
  const std::string list_pointer = jsonPointerAppend(pointer, "always_allow");
  const json& rules = management.at("always_allow");
  if (!rules.is_array()) return reader_.typeError(rules, list_pointer, "an array");
  for (size_t i = 0; i < rules.size(); ++i) {
    SHADAN_ASSIGN_OR_RETURN(auto rule,
                            parseManagementRule(rules[i], jsonPointerAppend(list_pointer, i)));
    loaded_.policy.always_allow.push_back(std::move(rule));
  }
  return okStatus();
}

Result<ManagementRule> PolicyParser::parseManagementRule(const json& value,
                                                         std::string_view pointer) const {
  SHADAN_RETURN_IF_ERROR(
      reader_.checkObject(value, pointer, {"prefix"}, {"description", "proto", "port"}));
  ManagementRule rule;
  SHADAN_ASSIGN_OR_RETURN(auto description, reader_.optionalDescription(value, pointer));
  rule.description = std::move(description);
  SHADAN_ASSIGN_OR_RETURN(
      auto prefix, reader_.parsePrefix(value.at("prefix"), jsonPointerAppend(pointer, "prefix")));
  rule.prefix = prefix;

  if (value.contains("proto")) {
    const std::string proto_pointer = jsonPointerAppend(pointer, "proto");
    SHADAN_ASSIGN_OR_RETURN(auto proto, reader_.parseString(value.at("proto"), proto_pointer));
    if (proto == "tcp") {
      rule.proto = L4Proto::kTcp;
    } else if (proto == "udp") {
      rule.proto = L4Proto::kUdp;
    } else if (proto == "sctp") {
      rule.proto = L4Proto::kSctp;
    } else if (proto == "icmp") {
      rule.proto = L4Proto::kIcmp;
    } else if (proto == "icmpv6") {
      rule.proto = L4Proto::kIcmpv6;
    } else {
      return reader_.fail(proto_pointer, "unknown proto " + quoteForMessage(proto) +
                                             " (allowed: tcp, udp, sctp, icmp, icmpv6)");
    }
    if (rule.proto == L4Proto::kIcmp && rule.prefix.family() != IpFamily::kV4) {
      return reader_.fail(proto_pointer, "proto icmp needs an IPv4 prefix (use icmpv6 for IPv6)");
    }
    if (rule.proto == L4Proto::kIcmpv6 && rule.prefix.family() != IpFamily::kV6) {
      return reader_.fail(proto_pointer, "proto icmpv6 needs an IPv6 prefix (use icmp for IPv4)");
    }
  }

  if (value.contains("port")) {
    const std::string port_pointer = jsonPointerAppend(pointer, "port");
    if (rule.proto != L4Proto::kTcp && rule.proto != L4Proto::kUdp &&
        rule.proto != L4Proto::kSctp) {
      return reader_.fail(port_pointer, "port needs proto tcp, udp or sctp");
    }
    SHADAN_ASSIGN_OR_RETURN(auto port,
                            reader_.parseInteger(value.at("port"), port_pointer, 1, 65535));
    rule.port = static_cast<uint16_t>(port);
  }
  return rule;
}

Status PolicyParser::parseProfiles(const json& profiles, std::string_view pointer) {
  if (!profiles.is_object()) return reader_.typeError(profiles, pointer, "an object");
  for (const auto& [name, value] : profiles.items()) {
    SHADAN_ASSIGN_OR_RETURN(auto profile,
                            parseProfile(name, value, jsonPointerAppend(pointer, name)));
    loaded_.policy.profiles.emplace(name, std::move(profile));
  }
  const auto full = loaded_.policy.profiles.find("full");
  if (full == loaded_.policy.profiles.end()) {
    return reader_.fail(jsonPointerAppend(pointer, "full"),
                        "missing the \"full\" profile (every policy has one)");
  }
  // Operators reach for "full" in an emergency: it must mean exactly "cut everything but
  // management", never less.
  if (!full->second.peers.empty()) {
    return reader_.fail(jsonPointerAppend(jsonPointerAppend(pointer, "full"), "peers"),
                        "the \"full\" profile cuts everything: it takes no peers");
  }
  if (!full->second.allow.empty()) {
    return reader_.fail(
        jsonPointerAppend(jsonPointerAppend(pointer, "full"), "allow"),
        "the \"full\" profile keeps only management reachable: put allow exceptions in "
        "another profile");
  }
  return okStatus();
}

Result<Profile> PolicyParser::parseProfile(const std::string& name, const json& value,
                                           std::string_view pointer) const {
  SHADAN_RETURN_IF_ERROR(reader_.checkName(name, pointer, "profile"));
  SHADAN_RETURN_IF_ERROR(reader_.checkObject(
      value, pointer, {}, {"description", "peers", "allow", "blackhole_routes"}));
  Profile profile;
  profile.name = name;
  SHADAN_ASSIGN_OR_RETURN(auto description, reader_.optionalDescription(value, pointer));
  profile.description = std::move(description);

  if (value.contains("peers")) {
    const std::string peers_pointer = jsonPointerAppend(pointer, "peers");
    SHADAN_ASSIGN_OR_RETURN(auto peers,
                            parseSegmentList(value.at("peers"), peers_pointer, "peer segment"));
    // An empty list would silently turn a limited cut into a full one.
    if (peers.empty()) {
      return reader_.fail(peers_pointer, "empty peers list (omit \"peers\" for a full cut)");
    }
    profile.peers = std::move(peers);
  }

  if (value.contains("allow")) {
    const std::string allow_pointer = jsonPointerAppend(pointer, "allow");
    const json& allow = value.at("allow");
    if (!allow.is_array()) return reader_.typeError(allow, allow_pointer, "an array");
    if (allow.empty())
      return reader_.fail(allow_pointer, "empty allow list (omit \"allow\" instead)");
    for (size_t i = 0; i < allow.size(); ++i) {
      const std::string rule_pointer = jsonPointerAppend(allow_pointer, i);
      SHADAN_RETURN_IF_ERROR(
          reader_.checkObject(allow[i], rule_pointer, {"prefix"}, {"description"}));
      AllowRule rule;
      SHADAN_ASSIGN_OR_RETURN(auto rule_description,
                              reader_.optionalDescription(allow[i], rule_pointer));
      rule.description = std::move(rule_description);
      SHADAN_ASSIGN_OR_RETURN(
          auto prefix,
          reader_.parsePrefix(allow[i].at("prefix"), jsonPointerAppend(rule_pointer, "prefix")));
      rule.prefix = prefix;
      profile.allow.push_back(std::move(rule));
    }
  }

  if (value.contains("blackhole_routes")) {
    const std::string flag_pointer = jsonPointerAppend(pointer, "blackhole_routes");
    SHADAN_ASSIGN_OR_RETURN(auto blackhole,
                            reader_.parseBool(value.at("blackhole_routes"), flag_pointer));
    // A blackhole route drops everything to the segment, so it cannot express a cut limited
    // to some peers.
    if (blackhole && !profile.peers.empty()) {
      return reader_.fail(flag_pointer,
                          "blackhole_routes is only allowed on a profile without peers");
    }
    profile.blackhole_routes = blackhole;
  }
  return profile;
}

}  // namespace shadan::policy_detail

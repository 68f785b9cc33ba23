#include "cli/lab/lab.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "common/logging.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxIfnameLength = 15;  // IFNAMSIZ - 1

// The standard lab. cli/lab/specs/segments.json holds the same topology as a file (a unit test
// keeps the two equal); the copy here lets shadanctl work without any data files installed.
constexpr const char* kStandardLabJson = R"json({
  "name": "segments",
  "description": "One gateway gw (forwarding, foreign accept-all table like firewalld) and one host per segment: office, servers, mgmt (controller), inet (the internet).",
  "nodes": [
    {
      "name": "gw",
      "role": "gateway",
      "nftables": [
        "table inet foreign {",
        "  chain input { type filter hook input priority 0; policy accept; }",
        "  chain forward { type filter hook forward priority 0; policy accept; }",
        "  chain output { type filter hook output priority 0; policy accept; }",
        "}"
      ]
    },
    { "name": "office", "role": "host",
      "routes": [ { "to": "default", "via": "10.20.0.1" }, { "to": "default", "via": "fd00:20::1" } ] },
    { "name": "servers", "role": "host",
      "routes": [ { "to": "default", "via": "10.30.0.1" }, { "to": "default", "via": "fd00:30::1" } ] },
    { "name": "mgmt", "role": "host",
      "routes": [ { "to": "default", "via": "10.99.0.1" }, { "to": "default", "via": "fd00:99::1" } ] },
    { "name": "inet", "role": "host",
      "routes": [ { "to": "default", "via": "203.0.113.1" }, { "to": "default", "via": "2001:db8:113::1" } ] }
  ],
  "links": [
    { "a": { "node": "gw", "ifname": "office", "addresses": ["10.20.0.1/24", "fd00:20::1/64"] },
      "b": { "node": "office", "ifname": "eth0", "addresses": ["10.20.0.2/24", "fd00:20::2/64"] } },
    { "a": { "node": "gw", "ifname": "servers", "addresses": ["10.30.0.1/24", "fd00:30::1/64"] },
      "b": { "node": "servers", "ifname": "eth0", "addresses": ["10.30.0.2/24", "fd00:30::2/64"] } },
    { "a": { "node": "gw", "ifname": "mgmt", "addresses": ["10.99.0.1/24", "fd00:99::1/64"] },
      "b": { "node": "mgmt", "ifname": "eth0", "addresses": ["10.99.0.10/24", "fd00:99::10/64"] } },
    { "a": { "node": "gw", "ifname": "inet", "addresses": ["203.0.113.1/24", "2001:db8:113::1/64"] },
      "b": { "node": "inet", "ifname": "eth0", "addresses": ["203.0.113.2/24", "2001:db8:113::2/64"] } }
  ]
})json";

Result<std::array<uint8_t, 16>> addressBytes(IpFamily family, const std::string& text) {
  std::array<uint8_t, 16> bytes{};
  const int af = family == IpFamily::kV4 ? AF_INET : AF_INET6;
  if (::inet_pton(af, text.c_str(), bytes.data()) != 1) {
    return makeError(ErrorCode::kParse, "'" + text + "' is not an IP address");
  }
  return bytes;
}

// Parses a bare address; the length is the host length.
Result<LabAddress> parseBareAddress(std::string_view text) {
  const std::string address(text);
  std::array<uint8_t, 16> bytes{};
  LabAddress parsed;
  if (::inet_pton(AF_INET, address.c_str(), bytes.data()) == 1) {
    parsed.family = IpFamily::kV4;
    parsed.length = 32;
  } else if (::inet_pton(AF_INET6, address.c_str(), bytes.data()) == 1) {
    parsed.family = IpFamily::kV6;
    parsed.length = 128;
  } else {
    return makeError(ErrorCode::kParse, "'" + address + "' is not an IPv4 or IPv6 address");
  }
  char canonical[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(parsed.family == IpFamily::kV4 ? AF_INET : AF_INET6, bytes.data(), canonical,
              sizeof(canonical));
  parsed.address = canonical;
  return parsed;
}

// ---- strict JSON helpers; every error names source and JSON pointer ----

Error specError(const std::string& source, const std::string& pointer, const std::string& why) {
  return makeError(ErrorCode::kParse,
                   source + ": " + (pointer.empty() ? "/" : pointer) + ": " + why);
}

Status checkObject(const Json& value, const std::string& source, const std::string& pointer,
                   const std::set<std::string>& allowed, const std::set<std::string>& required) {
  if (!value.is_object()) return specError(source, pointer, "must be an object");
  for (const auto& [key, unused] : value.items()) {
    if (!allowed.contains(key)) return specError(source, pointer + "/" + key, "unknown key");
  }
  for (const std::string& key : required) {
    if (!value.contains(key)) return specError(source, pointer + "/" + key, "is required");
  }
  return okStatus();
}

Result<std::string> getString(const Json& object, const std::string& key, const std::string& source,
                              const std::string& pointer) {
  const Json& value = object.at(key);
  if (!value.is_string()) return specError(source, pointer + "/" + key, "must be a string");
  return value.get<std::string>();
}

Result<std::vector<std::string>> getStringArray(const Json& object, const std::string& key,
                                                const std::string& source,
                                                const std::string& pointer) {
  const Json& value = object.at(key);
  if (!value.is_array()) return specError(source, pointer + "/" + key, "must be an array");
  std::vector<std::string> strings;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string()) {
      return specError(source, pointer + "/" + key + "/" + std::to_string(i), "must be a string");
    }
    strings.push_back(value[i].get<std::string>());
  }
  return strings;
}

bool validNodeName(const std::string& name) {
  static const std::regex kPattern("^[a-z][a-z0-9-]{0,14}$");
  return std::regex_match(name, kPattern);
}

bool validIfname(const std::string& name) {
  static const std::regex kPattern("^[A-Za-z0-9_.-]{1,15}$");
  return std::regex_match(name, kPattern) && name != "lo" && name != "." && name != "..";
}

// nlohmann keeps the last of duplicated keys silently; a strict spec rejects them.
Result<Json> parseJsonRejectingDuplicates(std::string_view text, const std::string& source) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  const Json::parser_callback_t check = [&](int /*depth*/, Json::parse_event_t event,
                                            Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Json::parse_event_t::key && !open_objects.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  try {
    Json json = Json::parse(text.begin(), text.end(), check);
    if (!duplicate.empty()) {
      return makeError(ErrorCode::kParse, source + ": duplicate key '" + duplicate + "'");
    }
    return json;
  } catch (const Json::exception& e) {
    return makeError(ErrorCode::kParse, source + ": not valid JSON: " + e.what());
  }
}

Result<LabEndpoint> parseEndpoint(const Json& value, const std::string& source,
                                  const std::string& pointer) {
  SHADAN_RETURN_IF_ERROR(
      checkObject(value, source, pointer, {"node", "ifname", "addresses"}, {"node"}));
  LabEndpoint endpoint;
  SHADAN_ASSIGN_OR_RETURN(auto node, getString(value, "node", source, pointer));
  endpoint.node = node;
  if (value.contains("ifname")) {
    SHADAN_ASSIGN_OR_RETURN(auto ifname, getString(value, "ifname", source, pointer));
    if (!validIfname(ifname)) {
      return specError(source, pointer + "/ifname",
                       "'" + ifname + "' is not an interface name (1-15 of A-Za-z0-9_.-, not lo)");
    }
    endpoint.ifname = ifname;
  }
  if (value.contains("addresses")) {
    SHADAN_ASSIGN_OR_RETURN(auto texts, getStringArray(value, "addresses", source, pointer));
    for (size_t i = 0; i < texts.size(); ++i) {
      auto address = LabAddress::parse(texts[i]);
      if (!address.ok()) {
        return specError(source, pointer + "/addresses/" + std::to_string(i),
                         address.error().message);
      }
      endpoint.addresses.push_back(*address);
    }
  }
  return endpoint;
}

Result<LabRoute> parseRoute(const Json& value, const std::string& source,
                            const std::string& pointer) {
  SHADAN_RETURN_IF_ERROR(checkObject(value, source, pointer, {"to", "via"}, {"to", "via"}));
  SHADAN_ASSIGN_OR_RETURN(auto to, getString(value, "to", source, pointer));
  SHADAN_ASSIGN_OR_RETURN(auto via_text, getString(value, "via", source, pointer));
  auto via = parseBareAddress(via_text);
  if (!via.ok()) return specError(source, pointer + "/via", via.error().message);
  LabRoute route;
  route.via = *via;
  if (to != "default") {
    auto prefix = IpPrefix::parse(to);
    if (!prefix.ok()) return specError(source, pointer + "/to", prefix.error().message);
    if (prefix->family() != via->family) {
      return specError(source, pointer + "/via", "address family differs from /to");
    }
    route.to = *prefix;
  }
  return route;
}

Result<LabNode> parseNode(const Json& value, const std::string& source,
                          const std::string& pointer) {
  SHADAN_RETURN_IF_ERROR(checkObject(value, source, pointer, {"name", "role", "routes", "nftables"},
                                     {"name", "role"}));
  LabNode node;
  SHADAN_ASSIGN_OR_RETURN(auto name, getString(value, "name", source, pointer));
  if (!validNodeName(name)) {
    return specError(source, pointer + "/name",
                     "'" + name + "' is not a node name (^[a-z][a-z0-9-]{0,14}$)");
  }
  node.name = name;
  SHADAN_ASSIGN_OR_RETURN(auto role, getString(value, "role", source, pointer));
  if (role == "host") {
    node.role = LabRole::kHost;
  } else if (role == "gateway") {
    node.role = LabRole::kGateway;
  } else {
    return specError(source, pointer + "/role",
                     "must be \"host\" or \"gateway\", not '" + role + "'");
  }
  if (value.contains("routes")) {
    const Json& routes = value.at("routes");
    if (!routes.is_array()) return specError(source, pointer + "/routes", "must be an array");
    for (size_t i = 0; i < routes.size(); ++i) {
      SHADAN_ASSIGN_OR_RETURN(
          auto route, parseRoute(routes[i], source, pointer + "/routes/" + std::to_string(i)));
      node.routes.push_back(route);
    }
  }
  if (value.contains("nftables")) {
    SHADAN_ASSIGN_OR_RETURN(auto lines, getStringArray(value, "nftables", source, pointer));
    for (const std::string& line : lines) node.nftables += line + "\n";
  }
  return node;
}

// Cross-checks that need the whole spec: references, uniqueness, on-link gateways.
Status validateSpec(LabSpec& spec, const std::string& source) {
  std::set<std::string> node_names;
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    if (!node_names.insert(spec.nodes[i].name).second) {
      return specError(source, "/nodes/" + std::to_string(i) + "/name",
                       "duplicate node '" + spec.nodes[i].name + "'");
    }
  }
  std::map<std::string, std::set<std::string>> ifnames;  // node -> interface names
  std::map<std::string, std::string> address_owner;      // address -> JSON pointer
  for (size_t i = 0; i < spec.links.size(); ++i) {
    LabLink& link = spec.links[i];
    const std::string pointer = "/links/" + std::to_string(i);
    if (link.a.node == link.b.node) {
      return specError(source, pointer, "both ends are on node '" + link.a.node + "'");
    }
    auto check_end = [&](LabEndpoint& end, const LabEndpoint& peer,
                         const std::string& end_pointer) -> Status {
      if (!node_names.contains(end.node)) {
        return specError(source, end_pointer + "/node", "unknown node '" + end.node + "'");
      }
      // By default an interface is named for the node at its other end ("office" on gw).
      if (end.ifname.empty()) end.ifname = peer.node;
      if (!ifnames[end.node].insert(end.ifname).second) {
        return specError(source, end_pointer + "/ifname",
                         "node '" + end.node + "' already has an interface '" + end.ifname + "'");
      }
      for (size_t k = 0; k < end.addresses.size(); ++k) {
        const std::string address_pointer = end_pointer + "/addresses/" + std::to_string(k);
        auto [it, fresh] = address_owner.emplace(end.addresses[k].address, address_pointer);
        if (!fresh) {
          return specError(
              source, address_pointer,
              "address " + end.addresses[k].address + " is already used at " + it->second);
        }
      }
      return okStatus();
    };
    SHADAN_RETURN_IF_ERROR(check_end(link.a, link.b, pointer + "/a"));
    SHADAN_RETURN_IF_ERROR(check_end(link.b, link.a, pointer + "/b"));
  }
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    const LabNode& node = spec.nodes[i];
    const std::vector<const LabEndpoint*> endpoints = spec.endpointsOf(node.name);
    std::set<std::pair<std::string, int>> destinations;
    for (size_t r = 0; r < node.routes.size(); ++r) {
      const LabRoute& route = node.routes[r];
      const std::string pointer = "/nodes/" + std::to_string(i) + "/routes/" + std::to_string(r);
      const bool on_link = std::any_of(endpoints.begin(), endpoints.end(), [&](const auto* end) {
        return std::any_of(end->addresses.begin(), end->addresses.end(),
                           [&](const LabAddress& own) { return own.onLink(route.via); });
      });
      if (!on_link) {
        return specError(source, pointer + "/via",
                         route.via.address + " is not on any link of node '" + node.name + "'");
      }
      if (!destinations.emplace(route.toText(), static_cast<int>(route.via.family)).second) {
        return specError(source, pointer + "/to", "duplicate route to " + route.toText());
      }
    }
  }
  return okStatus();
}

// First whitespace-separated word of each line of `ip netns list` ("name (id: 3)").
std::set<std::string> parseNetnsList(const std::string& text) {
  std::set<std::string> names;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string name;
    if (words >> name) names.insert(name);
  }
  return names;
}

std::string familyFlag(IpFamily family) { return family == IpFamily::kV4 ? "-4" : "-6"; }

}  // namespace

// ---- LabAddress / LabSpec ----

Result<LabAddress> LabAddress::parse(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return makeError(ErrorCode::kParse,
                     "'" + std::string(text) + "' needs a prefix length (\"10.20.0.2/24\")");
  }
  SHADAN_ASSIGN_OR_RETURN(auto parsed, parseBareAddress(text.substr(0, slash)));
  const std::string length_text(text.substr(slash + 1));
  const int max = parsed.length;
  if (length_text.empty() || length_text.size() > 3 ||
      length_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(length_text) > max || std::stoi(length_text) < 1) {
    return makeError(ErrorCode::kParse, "'" + std::string(text) + "' has an invalid prefix length");
  }
  parsed.length = std::stoi(length_text);
  return parsed;
}

bool LabAddress::onLink(const LabAddress& other) const {
  if (family != other.family) return false;
  auto own_bytes = addressBytes(family, address);
  auto other_bytes = addressBytes(other.family, other.address);
  if (!own_bytes.ok() || !other_bytes.ok()) return false;
  const IpPrefix network = IpPrefix::fromBytes(family, *own_bytes, length);
  const IpPrefix host =
      IpPrefix::fromBytes(family, *other_bytes, family == IpFamily::kV4 ? 32 : 128);
  return network.contains(host);
}

const char* labRoleName(LabRole role) { return role == LabRole::kGateway ? "gateway" : "host"; }

const LabNode* LabSpec::findNode(std::string_view node) const {
  for (const LabNode& candidate : nodes) {
    if (candidate.name == node) return &candidate;
  }
  return nullptr;
}

std::vector<const LabEndpoint*> LabSpec::endpointsOf(std::string_view node) const {
  std::vector<const LabEndpoint*> endpoints;
  for (const LabLink& link : links) {
    if (link.a.node == node) endpoints.push_back(&link.a);
    if (link.b.node == node) endpoints.push_back(&link.b);
  }
  return endpoints;
}

std::optional<LabAddress> LabSpec::firstAddress(std::string_view node, IpFamily family) const {
  for (const LabEndpoint* endpoint : endpointsOf(node)) {
    for (const LabAddress& address : endpoint->addresses) {
      if (address.family == family) return address;
    }
  }
  return std::nullopt;
}

Result<LabSpec> parseLabSpec(std::string_view json_text, const std::string& source) {
  SHADAN_ASSIGN_OR_RETURN(auto json, parseJsonRejectingDuplicates(json_text, source));
  SHADAN_RETURN_IF_ERROR(
      checkObject(json, source, "", {"name", "description", "nodes", "links"}, {"name", "nodes"}));
  LabSpec spec;
  SHADAN_ASSIGN_OR_RETURN(auto name, getString(json, "name", source, ""));
  if (name.empty()) return specError(source, "/name", "must not be empty");
  spec.name = name;
  if (json.contains("description")) {
    SHADAN_ASSIGN_OR_RETURN(auto description, getString(json, "description", source, ""));
    spec.description = description;
  }
  const Json& nodes = json.at("nodes");
  if (!nodes.is_array() || nodes.empty()) {
    return specError(source, "/nodes", "must be a non-empty array");
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    SHADAN_ASSIGN_OR_RETURN(auto node, parseNode(nodes[i], source, "/nodes/" + std::to_string(i)));
    spec.nodes.push_back(std::move(node));
  }
  if (json.contains("links")) {
    const Json& links = json.at("links");
    if (!links.is_array()) return specError(source, "/links", "must be an array");
    for (size_t i = 0; i < links.size(); ++i) {
      const std::string pointer = "/links/" + std::to_string(i);
      SHADAN_RETURN_IF_ERROR(checkObject(links[i], source, pointer, {"a", "b"}, {"a", "b"}));
      SHADAN_ASSIGN_OR_RETURN(auto a, parseEndpoint(links[i].at("a"), source, pointer + "/a"));
      SHADAN_ASSIGN_OR_RETURN(auto b, parseEndpoint(links[i].at("b"), source, pointer + "/b"));
      spec.links.push_back(LabLink{std::move(a), std::move(b)});
    }
  }
  SHADAN_RETURN_IF_ERROR(validateSpec(spec, source));
  return spec;
}

Result<LabSpec> loadLabSpecFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(ErrorCode::kNotFound, "cannot open lab spec " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return makeError(ErrorCode::kIo, "cannot read lab spec " + path.string());
  return parseLabSpec(text.str(), path.string());
}

const LabSpec& standardLabSpec() {
  static const LabSpec kSpec = [] {
    auto spec = parseLabSpec(kStandardLabJson, "built-in lab spec");
    // The built-in spec is part of the program: if it does not parse, the program is broken.
    if (!spec.ok()) detail::resultAccessFailure(spec.error().message.c_str());
    return std::move(spec).value();
  }();
  return kSpec;
}

Status validateLabName(std::string_view name) {
  static const std::regex kPattern("^[a-z0-9-]{1,8}$");
  if (!std::regex_match(name.begin(), name.end(), kPattern)) {
    return makeError(
        ErrorCode::kInvalidArgument,
        "invalid lab name '" + std::string(name) + "': use 1 to 8 characters of a-z, 0-9 and '-'");
  }
  return okStatus();
}

std::string defaultLabName() { return "p" + std::to_string(::getpid()); }

std::string labNetnsPrefix(std::string_view lab_name) {
  return "sd-" + std::string(lab_name) + "-";
}

// ---- Lab ----

Lab::Lab(LabSpec spec, std::string name, CommandRunner& runner)
    : spec_(std::move(spec)), name_(std::move(name)), runner_(runner) {
  if (!validateLabName(name_).ok()) {
    detail::resultAccessFailure(("Lab with an invalid name: " + name_).c_str());
  }
}

Lab::~Lab() {
  if (detached_) return;
  Status status = down();
  if (!status.ok()) {
    logger("lab")->error("event=teardown_failed lab={} error=\"{}\"", name_,
                         status.error().message);
  }
}

std::string Lab::nsName(std::string_view node) const { return prefix() + std::string(node); }

Status Lab::run(const std::vector<std::string>& argv, const std::string& stdin_data) {
  SHADAN_RETURN_IF_ERROR(runChecked(runner_, argv, stdin_data));
  return okStatus();
}

Status Lab::sysctl(const std::string& ns, const std::vector<std::string>& settings) {
  std::vector<std::string> argv = {"ip", "netns", "exec", ns, "sysctl", "-q", "-w"};
  argv.insert(argv.end(), settings.begin(), settings.end());
  return run(argv);
}

Status Lab::up() {
  auto listing = runChecked(runner_, {"ip", "netns", "list"});
  if (!listing.ok()) return listing.error().withContext("lab " + name_);
  const std::set<std::string> existing = parseNetnsList(listing->out);
  for (const LabNode& node : spec_.nodes) {
    if (existing.contains(nsName(node.name))) {
      // Someone else's (or an earlier) lab: never tear that down on our failure.
      return makeError(ErrorCode::kInvalidArgument,
                       "lab " + name_ + " already exists (netns " + nsName(node.name) +
                           "); take it down first: shadanctl lab down --name " + name_);
    }
  }
  logger("lab")->info("event=lab_up lab={} spec={}", name_, spec_.name);
  Status built = build();
  if (!built.ok()) {
    Status cleaned = down();
    if (!cleaned.ok()) {
      logger("lab")->error("event=teardown_failed lab={} error=\"{}\"", name_,
                           cleaned.error().message);
    }
    return built.error().withContext("lab " + name_ + " up failed (torn down)");
  }
  return okStatus();
}

Status Lab::build() {
  for (const LabNode& node : spec_.nodes) {
    SHADAN_RETURN_IF_ERROR(run({"ip", "netns", "add", nsName(node.name)}));
  }
  for (const LabNode& node : spec_.nodes) {
    const std::string ns = nsName(node.name);
    SHADAN_RETURN_IF_ERROR(run({"ip", "-n", ns, "link", "set", "lo", "up"}));
    // Interface names always follow a keyword ("name", "dev"): ip would read a bare "h" as
    // "help".
    // Before any veth exists, so every interface inherits "no duplicate address detection":
    // IPv6 addresses are usable at once instead of after ~1 s of tentative state.
    std::vector<std::string> settings = {"net.ipv6.conf.all.accept_dad=0",
                                         "net.ipv6.conf.default.accept_dad=0"};
    if (node.role == LabRole::kGateway) {
      settings.insert(settings.end(), {"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"});
    }
    SHADAN_RETURN_IF_ERROR(sysctl(ns, settings));  // one process per node
  }
  for (const LabLink& link : spec_.links) {
    SHADAN_RETURN_IF_ERROR(
        run({"ip", "-n", nsName(link.a.node), "link", "add", "name", link.a.ifname, "type", "veth",
             "peer", "name", link.b.ifname, "netns", nsName(link.b.node)}));
    for (const LabEndpoint* end : {&link.a, &link.b}) {
      const std::string ns = nsName(end->node);
      for (const LabAddress& address : end->addresses) {
        std::vector<std::string> argv = {"ip",  "-n",       ns, "addr", "add", address.toCidr(),
                                         "dev", end->ifname};
        if (address.family == IpFamily::kV6) argv.push_back("nodad");
        SHADAN_RETURN_IF_ERROR(run(argv));
      }
      SHADAN_RETURN_IF_ERROR(run({"ip", "-n", ns, "link", "set", "dev", end->ifname, "up"}));
    }
  }
  // Routes: one `ip -batch` per node and family, not one process per route (a lab built from a
  // 50-gateway policy has some 20,000 routes: 5 minutes one by one). ip stops at the first
  // route it cannot add and names its line.
  for (const LabNode& node : spec_.nodes) {
    for (IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
      std::string batch;
      for (const LabRoute& route : node.routes) {
        if (route.via.family != family) continue;
        batch += "route add " + route.toText() + " via " + route.via.address + "\n";
      }
      if (batch.empty()) continue;
      SHADAN_RETURN_IF_ERROR(
          run({"ip", "-n", nsName(node.name), familyFlag(family), "-batch", "-"}, batch));
    }
  }
  for (const LabNode& node : spec_.nodes) {
    if (node.nftables.empty()) continue;
    SHADAN_RETURN_IF_ERROR(
        run({"ip", "netns", "exec", nsName(node.name), "nft", "-f", "-"}, node.nftables));
  }
  return okStatus();
}

Status Lab::down() {
  auto listing = runChecked(runner_, {"ip", "netns", "list"});
  if (!listing.ok()) return listing.error().withContext("lab " + name_ + " down");
  const std::set<std::string> existing = parseNetnsList(listing->out);
  std::optional<Error> first_error;
  // Every namespace gets its delete even when one fails: leave as little behind as possible.
  for (auto node = spec_.nodes.rbegin(); node != spec_.nodes.rend(); ++node) {
    const std::string ns = nsName(node->name);
    if (!existing.contains(ns)) continue;
    Status deleted = run({"ip", "netns", "del", ns});
    if (!deleted.ok() && !first_error) first_error = deleted.error();
  }
  if (first_error) return first_error->withContext("lab " + name_ + " down");
  return okStatus();
}

}  // namespace shadan

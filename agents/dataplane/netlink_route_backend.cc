#include "agents/dataplane/netlink_route_backend.h"

#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/route.h>
#include <netlink/route/rtnl.h>
#include <netlink/route/rule.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

namespace shadan::agent {
namespace {

struct RouteDeleter {
  void operator()(rtnl_route* route) const { rtnl_route_put(route); }
};
struct RuleDeleter {
  void operator()(rtnl_rule* rule) const { rtnl_rule_put(rule); }
};
struct AddrDeleter {
  void operator()(nl_addr* addr) const { nl_addr_put(addr); }
};
struct CacheDeleter {
  void operator()(nl_cache* cache) const { nl_cache_free(cache); }
};
using RoutePtr = std::unique_ptr<rtnl_route, RouteDeleter>;
using RulePtr = std::unique_ptr<rtnl_rule, RuleDeleter>;
using AddrPtr = std::unique_ptr<nl_addr, AddrDeleter>;
using CachePtr = std::unique_ptr<nl_cache, CacheDeleter>;

constexpr std::array<IpFamily, 2> kFamilies = {IpFamily::kV4, IpFamily::kV6};

size_t familyIndex(IpFamily family) { return family == IpFamily::kV4 ? 0 : 1; }

const char* familyName(IpFamily family) { return family == IpFamily::kV4 ? "IPv4" : "IPv6"; }

// The metric the kernel gives a route added without one (IPv4: 0; IPv6: IP6_RT_PRIO_USER).
// Ours are added with it explicitly, so the route key (table, prefix, metric) is known up front.
uint32_t defaultMetric(IpFamily family) { return family == IpFamily::kV4 ? 0 : 1024; }

int addressFamily(IpFamily family) { return family == IpFamily::kV4 ? AF_INET : AF_INET6; }

std::optional<IpFamily> ipFamilyOf(int family) {
  if (family == AF_INET) return IpFamily::kV4;
  if (family == AF_INET6) return IpFamily::kV6;
  return std::nullopt;
}

std::string libnlError(int err) { return nl_geterror(err); }

std::string tableName() { return std::to_string(kShadanRouteTable); }

// One route of a table we look at, as the kernel dumped it.
struct DumpedRoute {
  IpPrefix prefix;
  uint8_t protocol = 0;
  uint8_t type = 0;
  RoutePtr route;  // our reference to the dumped object, for deletion

  bool isOurs() const { return protocol == kShadanRouteProtocol && type == RTN_BLACKHOLE; }

  // e.g. "10.0.0.0/8 (protocol static, type unicast)", for error messages.
  std::string describe() const {
    std::array<char, 32> protocol_name{};
    std::array<char, 32> type_name{};
    rtnl_route_proto2str(protocol, protocol_name.data(), protocol_name.size());
    nl_rtntype2str(type, type_name.data(), type_name.size());
    return prefix.toCidr() + " (protocol " + protocol_name.data() + ", type " + type_name.data() +
           ")";
  }
};

struct RouteDump {
  std::vector<DumpedRoute> table;        // every route of kShadanRouteTable, ours or not
  std::vector<DumpedRoute> legacy_main;  // our blackholes in main, left by older builds
};

// The destination of a dumped route as an IpPrefix; nullopt for families we do not manage.
std::optional<IpPrefix> destinationOf(rtnl_route* route) {
  const std::optional<IpFamily> ip_family = ipFamilyOf(rtnl_route_get_family(route));
  if (!ip_family) return std::nullopt;
  std::array<uint8_t, 16> bytes{};
  int length = 0;
  if (nl_addr* dst = rtnl_route_get_dst(route); dst != nullptr) {
    // A default route may come back as a zero-length address.
    const unsigned int size = std::min<unsigned int>(nl_addr_get_len(dst), bytes.size());
    if (size > 0) std::memcpy(bytes.data(), nl_addr_get_binary_addr(dst), size);
    length = static_cast<int>(nl_addr_get_prefixlen(dst));
  }
  return IpPrefix::fromBytes(*ip_family, bytes, length);
}

Result<RouteDump> dumpRoutes(nl_sock* sock) {
  nl_cache* raw_cache = nullptr;
  // AF_UNSPEC: one dump of every family and every table.
  if (int err = rtnl_route_alloc_cache(sock, AF_UNSPEC, 0, &raw_cache); err < 0) {
    return makeError(ErrorCode::kKernel, "route dump: " + libnlError(err));
  }
  CachePtr cache(raw_cache);
  RouteDump dump;
  for (nl_object* object = nl_cache_get_first(cache.get()); object != nullptr;
       object = nl_cache_get_next(object)) {
    // Every object of a route cache is an rtnl_route (libnl's own object model).
    auto* route = reinterpret_cast<rtnl_route*>(object);
    const uint32_t table = rtnl_route_get_table(route);
    if (table != kShadanRouteTable && table != RT_TABLE_MAIN) continue;
    std::optional<IpPrefix> prefix = destinationOf(route);
    if (!prefix) continue;
    rtnl_route_get(route);  // the cache drops its reference when freed; keep ours
    DumpedRoute dumped{*prefix, rtnl_route_get_protocol(route), rtnl_route_get_type(route),
                       RoutePtr(route)};
    if (table == kShadanRouteTable) {
      dump.table.push_back(std::move(dumped));
    } else if (dumped.isOurs()) {
      dump.legacy_main.push_back(std::move(dumped));
    }
  }
  return dump;
}

// One of our FIB rules (our protocol tag, lookup kShadanRouteTable), as the kernel dumped it.
struct DumpedRule {
  IpFamily family = IpFamily::kV4;
  uint32_t priority = 0;
  RulePtr rule;  // for deletion: carries priority, table and protocol, so only this rule matches
};

Result<std::vector<DumpedRule>> dumpOurRules(nl_sock* sock) {
  nl_cache* raw_cache = nullptr;
  if (int err = rtnl_rule_alloc_cache(sock, AF_UNSPEC, &raw_cache); err < 0) {
    return makeError(ErrorCode::kKernel, "rule dump: " + libnlError(err));
  }
  CachePtr cache(raw_cache);
  std::vector<DumpedRule> rules;
  for (nl_object* object = nl_cache_get_first(cache.get()); object != nullptr;
       object = nl_cache_get_next(object)) {
    // Every object of a rule cache is an rtnl_rule.
    auto* rule = reinterpret_cast<rtnl_rule*>(object);
    const std::optional<IpFamily> family = ipFamilyOf(rtnl_rule_get_family(rule));
    uint8_t protocol = 0;
    if (!family || rtnl_rule_get_protocol(rule, &protocol) < 0 ||
        protocol != kShadanRouteProtocol || rtnl_rule_get_table(rule) != kShadanRouteTable) {
      continue;
    }
    nl_object_get(object);  // the cache drops its reference when freed; keep ours
    rules.push_back(DumpedRule{*family, rtnl_rule_get_prio(rule), RulePtr(rule)});
  }
  return rules;
}

Result<RoutePtr> buildBlackhole(const IpPrefix& prefix) {
  const int family = addressFamily(prefix.family());
  const size_t size = prefix.family() == IpFamily::kV4 ? 4 : 16;
  AddrPtr dst(nl_addr_build(family, prefix.bytes().data(), size));
  RoutePtr route(rtnl_route_alloc());
  if (!dst || !route) return makeError(ErrorCode::kInternal, "libnl: out of memory");
  nl_addr_set_prefixlen(dst.get(), prefix.length());
  rtnl_route_set_family(route.get(), static_cast<uint8_t>(family));
  rtnl_route_set_table(route.get(), kShadanRouteTable);
  rtnl_route_set_protocol(route.get(), kShadanRouteProtocol);
  rtnl_route_set_type(route.get(), RTN_BLACKHOLE);
  // A blackhole has no next hop: its scope is universe (what `ip route add blackhole` sends).
  rtnl_route_set_scope(route.get(), RT_SCOPE_UNIVERSE);
  rtnl_route_set_priority(route.get(), defaultMetric(prefix.family()));
  // set_dst takes its own reference; ours is dropped by AddrPtr.
  if (int err = rtnl_route_set_dst(route.get(), dst.get()); err < 0) {
    return makeError(ErrorCode::kInternal,
                     "libnl: destination " + prefix.toCidr() + ": " + libnlError(err));
  }
  return route;
}

// `pref kShadanRulePriority lookup kShadanRouteTable protocol kShadanRouteProtocol`, no selector:
// every lookup of the family goes through our table first.
Result<RulePtr> buildRule(IpFamily family) {
  RulePtr rule(rtnl_rule_alloc());
  if (!rule) return makeError(ErrorCode::kInternal, "libnl: out of memory");
  rtnl_rule_set_family(rule.get(), addressFamily(family));
  rtnl_rule_set_prio(rule.get(), kShadanRulePriority);
  rtnl_rule_set_table(rule.get(), kShadanRouteTable);
  rtnl_rule_set_action(rule.get(), FR_ACT_TO_TBL);
  if (int err = rtnl_rule_set_protocol(rule.get(), kShadanRouteProtocol); err < 0) {
    return makeError(ErrorCode::kInternal, "libnl: rule protocol: " + libnlError(err));
  }
  return rule;
}

std::string ruleName(IpFamily family, uint32_t priority) {
  return std::string(familyName(family)) + " rule (pref " + std::to_string(priority) + " lookup " +
         tableName() + ")";
}

std::string joined(const std::vector<std::string>& items) {
  if (items.empty()) return "nothing";
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// What sync() learns and decides about one address family.
struct FamilyState {
  const DumpedRoute* foreign = nullptr;  // first foreign route in our table: the table is shared
  bool wanted = false;                   // some desired prefix is of this family
  int installed = 0;                     // desired prefixes in the table after the add step
  std::vector<std::string> not_installed;
  bool rule_still_present = false;  // removing our rule failed: keep the routes behind it
};

}  // namespace

void NetlinkRouteBackend::SockDeleter::operator()(nl_sock* sock) const { nl_socket_free(sock); }

Result<std::unique_ptr<NetlinkRouteBackend>> NetlinkRouteBackend::create() {
  SockPtr sock(nl_socket_alloc());
  if (!sock) return makeError(ErrorCode::kInternal, "nl_socket_alloc failed");
  if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) {
    return makeError(ErrorCode::kKernel, "netlink route socket: " + libnlError(err));
  }
  return std::unique_ptr<NetlinkRouteBackend>(new NetlinkRouteBackend(std::move(sock)));
}

NetlinkRouteBackend::NetlinkRouteBackend(SockPtr sock) : sock_(std::move(sock)) {}

NetlinkRouteBackend::~NetlinkRouteBackend() = default;

Status NetlinkRouteBackend::sync(const std::vector<IpPrefix>& desired_input) {
  std::vector<IpPrefix> desired = desired_input;
  std::sort(desired.begin(), desired.end());
  desired.erase(std::unique(desired.begin(), desired.end()), desired.end());

  // Both dumps before any change: a failed dump changes nothing.
  SHADAN_ASSIGN_OR_RETURN(RouteDump dumped_routes, dumpRoutes(sock_.get()));
  const RouteDump& routes = dumped_routes;
  SHADAN_ASSIGN_OR_RETURN(std::vector<DumpedRule> dumped_rules, dumpOurRules(sock_.get()));
  const std::vector<DumpedRule>& rules = dumped_rules;

  std::array<FamilyState, 2> families;
  for (const DumpedRoute& route : routes.table) {
    FamilyState& state = families[familyIndex(route.prefix.family())];
    if (!route.isOurs() && state.foreign == nullptr) state.foreign = &route;
  }

  std::vector<std::string> failures;
  std::vector<std::string> changes;

  // 1. Routes first: a rule must never point at a table that lacks them.
  for (const IpPrefix& prefix : desired) {
    FamilyState& state = families[familyIndex(prefix.family())];
    state.wanted = true;
    const bool present =
        std::any_of(routes.table.begin(), routes.table.end(),
                    [&](const DumpedRoute& r) { return r.isOurs() && r.prefix == prefix; });
    if (present) {
      ++state.installed;
      continue;
    }
    if (state.foreign != nullptr) {
      state.not_installed.push_back(prefix.toCidr());
      continue;
    }
    Result<RoutePtr> route = buildBlackhole(prefix);
    if (!route.ok()) {
      failures.push_back(route.error().message);
      continue;
    }
    // CREATE|REPLACE: the table is ours, and this is idempotent if the route appeared since the
    // dump.
    if (int err = rtnl_route_add(sock_.get(), route.value().get(), NLM_F_CREATE | NLM_F_REPLACE);
        err < 0) {
      failures.push_back("add blackhole " + prefix.toCidr() + ": " + libnlError(err));
      continue;
    }
    ++state.installed;
    changes.push_back("added " + prefix.toCidr());
  }

  // 2. Rules: one per family while the table holds desired routes of it and no foreign route.
  for (IpFamily family : kFamilies) {
    FamilyState& state = families[familyIndex(family)];
    if (state.wanted && state.foreign != nullptr) {
      failures.push_back(std::string(familyName(family)) + ": table " + tableName() +
                         " holds a foreign route " + state.foreign->describe() +
                         ", another user of this table id: no " + familyName(family) +
                         " rule, not installed: " + joined(state.not_installed));
    }
    const bool keep = state.wanted && state.foreign == nullptr && state.installed > 0;
    const DumpedRule* keeper = nullptr;
    if (keep) {
      for (const DumpedRule& rule : rules) {
        if (rule.family == family && rule.priority == kShadanRulePriority) {
          keeper = &rule;
          break;
        }
      }
      if (keeper == nullptr) {
        Result<RulePtr> rule = buildRule(family);
        if (!rule.ok()) {
          failures.push_back(rule.error().message);
        } else if (int err = rtnl_rule_add(sock_.get(), rule.value().get(), 0); err < 0) {
          failures.push_back("add " + ruleName(family, kShadanRulePriority) + ": " +
                             libnlError(err));
        } else {
          changes.push_back("added " + ruleName(family, kShadanRulePriority));
        }
      }
    }
    // Everything else of ours goes: the whole family's rules when it is not kept, otherwise
    // stale priorities and duplicates.
    for (const DumpedRule& rule : rules) {
      if (rule.family != family || &rule == keeper) continue;
      int err = rtnl_rule_delete(sock_.get(), rule.rule.get(), 0);
      if (err < 0 && err != -NLE_OBJ_NOTFOUND) {  // already gone is what we wanted
        failures.push_back("remove " + ruleName(family, rule.priority) + ": " + libnlError(err));
        if (!keep) state.rule_still_present = true;
        continue;
      }
      changes.push_back("removed " + ruleName(family, rule.priority));
    }
  }

  // 3. Routes no longer desired, after the rules that pointed at them.
  for (const DumpedRoute& route : routes.table) {
    if (!route.isOurs() || std::binary_search(desired.begin(), desired.end(), route.prefix)) {
      continue;
    }
    if (families[familyIndex(route.prefix.family())].rule_still_present) {
      failures.push_back("remove blackhole " + route.prefix.toCidr() + ": kept, the " +
                         familyName(route.prefix.family()) + " rule could not be removed first");
      continue;
    }
    // Delete with the dumped object: it carries the exact key (table and metric included).
    int err = rtnl_route_delete(sock_.get(), route.route.get(), 0);
    if (err < 0 && err != -NLE_OBJ_NOTFOUND) {
      failures.push_back("remove blackhole " + route.prefix.toCidr() + ": " + libnlError(err));
      continue;
    }
    changes.push_back("removed " + route.prefix.toCidr());
  }
  for (const DumpedRoute& route : routes.legacy_main) {
    int err = rtnl_route_delete(sock_.get(), route.route.get(), 0);
    if (err < 0 && err != -NLE_OBJ_NOTFOUND) {
      failures.push_back("remove legacy main-table blackhole " + route.prefix.toCidr() + ": " +
                         libnlError(err));
      continue;
    }
    changes.push_back("removed legacy main-table " + route.prefix.toCidr());
  }

  if (!failures.empty()) {
    return makeError(ErrorCode::kKernel,
                     "route sync: " + joined(failures) + " (changed: " + joined(changes) + ")");
  }
  return okStatus();
}

Result<std::vector<IpPrefix>> NetlinkRouteBackend::list() {
  SHADAN_ASSIGN_OR_RETURN(RouteDump dumped, dumpRoutes(sock_.get()));
  std::vector<IpPrefix> ours;
  for (const DumpedRoute& route : dumped.table) {
    if (route.isOurs()) ours.push_back(route.prefix);
  }
  std::sort(ours.begin(), ours.end());
  ours.erase(std::unique(ours.begin(), ours.end()), ours.end());
  return ours;
}

}  // namespace shadan::agent

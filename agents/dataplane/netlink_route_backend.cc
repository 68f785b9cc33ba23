#include "agents/dataplane/netlink_route_backend.h"

#include <fcntl.h>
#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/attr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <netlink/route/rtnl.h>
#include <netlink/route/rule.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "common/strict_json.h"

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
struct LinkDeleter {
  void operator()(rtnl_link* link) const { rtnl_link_put(link); }
};
struct MsgDeleter {
  void operator()(nl_msg* msg) const { nlmsg_free(msg); }
};
struct CbDeleter {
  void operator()(nl_cb* cb) const { nl_cb_put(cb); }
};
using RoutePtr = std::unique_ptr<rtnl_route, RouteDeleter>;
using RulePtr = std::unique_ptr<rtnl_rule, RuleDeleter>;
using AddrPtr = std::unique_ptr<nl_addr, AddrDeleter>;
using CachePtr = std::unique_ptr<nl_cache, CacheDeleter>;
using LinkPtr = std::unique_ptr<rtnl_link, LinkDeleter>;
using MsgPtr = std::unique_ptr<nl_msg, MsgDeleter>;
using CbPtr = std::unique_ptr<nl_cb, CbDeleter>;

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

std::string interfaceName(const std::string& ifname) { return quoteForMessage(ifname); }

// The kernel's view of one interface, by name (`ifindex` 0) or by index (`ifname` empty).
Result<LinkPtr> getLink(nl_sock* sock, int ifindex, const std::string& ifname) {
  rtnl_link* raw = nullptr;
  const int err =
      rtnl_link_get_kernel(sock, ifindex, ifindex == 0 ? ifname.c_str() : nullptr, &raw);
  const std::string what = ifindex == 0 ? "interface " + interfaceName(ifname)
                                        : "interface index " + std::to_string(ifindex);
  // ENODEV is what the kernel answers for an unknown name or index.
  if (err == -NLE_NODEV || err == -NLE_OBJ_NOTFOUND) {
    return makeError(ErrorCode::kNotFound, "no " + what);
  }
  if (err < 0) return makeError(ErrorCode::kKernel, what + ": " + libnlError(err));
  return LinkPtr(raw);
}

Result<LinkPtr> getLinkByName(nl_sock* sock, const std::string& ifname) {
  // What the kernel's dev_valid_name() refuses by length or NUL; it would answer EINVAL.
  if (ifname.empty() || ifname.size() >= IFNAMSIZ || ifname.find('\0') != std::string::npos) {
    return makeError(ErrorCode::kInvalidArgument,
                     "invalid interface name " + interfaceName(ifname) + ": 1..15 bytes");
  }
  return getLink(sock, 0, ifname);
}

bool isUp(rtnl_link* link) { return (rtnl_link_get_flags(link) & IFF_UP) != 0; }

// What the kernel answered to one RTM_GETROUTE: a route (then an ack), or an error.
struct RouteLookup {
  bool done = false;
  int error = 0;  // the kernel's errno (positive); 0 when it answered with a route
  bool answered = false;
  bool malformed = false;
  uint8_t type = RTN_UNSPEC;
  uint32_t oif = 0;  // 0: the route names no output interface
};

int onLookupRoute(nl_msg* msg, void* arg) {
  auto* lookup = static_cast<RouteLookup*>(arg);
  nlmsghdr* header = nlmsg_hdr(msg);
  if (header->nlmsg_type != RTM_NEWROUTE) return NL_SKIP;
  std::array<nlattr*, RTA_MAX + 1> attrs{};
  if (nlmsg_parse(header, sizeof(rtmsg), attrs.data(), RTA_MAX, nullptr) < 0 ||
      (attrs[RTA_OIF] != nullptr && nla_len(attrs[RTA_OIF]) < static_cast<int>(sizeof(uint32_t)))) {
    lookup->malformed = true;
    return NL_OK;
  }
  lookup->answered = true;
  lookup->type = static_cast<const rtmsg*>(nlmsg_data(header))->rtm_type;
  if (attrs[RTA_OIF] != nullptr) lookup->oif = nla_get_u32(attrs[RTA_OIF]);
  return NL_OK;
}

int onLookupAck(nl_msg* /*msg*/, void* arg) {
  static_cast<RouteLookup*>(arg)->done = true;
  return NL_STOP;
}

int onLookupError(sockaddr_nl* /*peer*/, nlmsgerr* error, void* arg) {
  auto* lookup = static_cast<RouteLookup*>(arg);
  lookup->error = -error->error;
  lookup->done = true;
  return NL_STOP;
}

// Route types whose lookup means "no path out of this host".
bool isNoRouteType(uint8_t type) {
  return type == RTN_UNREACHABLE || type == RTN_PROHIBIT || type == RTN_THROW;
}

// Errnos with which the kernel answers a lookup that finds no path: no matching route
// (ENETUNREACH; also what a `throw` route ends in), an unreachable route (EHOSTUNREACH), a
// prohibit route (EACCES). A blackhole answers EINVAL, deliberately not here (route_backend.h).
bool isNoRouteErrno(int error) {
  return error == ENETUNREACH || error == EHOSTUNREACH || error == EACCES;
}

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

namespace {

// By default the kernel drops a link's IPv6 addresses when it goes down and does not give them
// back when it comes up, so a link-down and its restore would leave the uplink without IPv6
// until someone re-adds them. Keeping them (net.ipv6.conf.IF.keep_addr_on_down) makes the
// restore bring the link back as it was. No such file: IPv6 is off on that link, nothing to keep.
Status keepIpv6AddressesOnDown(const std::string& ifname) {
  // Interface names never contain '/' (the kernel refuses them); check anyway, it is a path.
  if (ifname.empty() || ifname.find('/') != std::string::npos || ifname == "." || ifname == "..") {
    return makeError(ErrorCode::kInvalidArgument, "bad interface name " + interfaceName(ifname));
  }
  const std::string path = "/proc/sys/net/ipv6/conf/" + ifname + "/keep_addr_on_down";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return okStatus();
    return makeError(ErrorCode::kKernel, "open " + path + ": " + std::strerror(errno));
  }
  const ssize_t written = ::write(fd, "1", 1);
  const int write_errno = errno;
  ::close(fd);
  if (written != 1) {
    return makeError(ErrorCode::kKernel, "write " + path + ": " + std::strerror(write_errno));
  }
  return okStatus();
}

}  // namespace

Status NetlinkRouteBackend::setLinkUp(const std::string& ifname, bool up) {
  SHADAN_ASSIGN_OR_RETURN(LinkPtr link, getLinkByName(sock_.get(), ifname));
  if (isUp(link.get()) == up) return okStatus();
  if (!up) SHADAN_RETURN_IF_ERROR(keepIpv6AddressesOnDown(ifname));
  LinkPtr change(rtnl_link_alloc());
  if (!change) return makeError(ErrorCode::kInternal, "libnl: out of memory");
  // Only IFF_UP is in the change mask: every other flag stays as the kernel has it.
  if (up) {
    rtnl_link_set_flags(change.get(), IFF_UP);
  } else {
    rtnl_link_unset_flags(change.get(), IFF_UP);
  }
  // The request addresses the link by the index just read, so a rename in between cannot
  // redirect it to another interface.
  const int err = rtnl_link_change(sock_.get(), link.get(), change.get(), 0);
  if (err == -NLE_NODEV || err == -NLE_OBJ_NOTFOUND) {
    return makeError(ErrorCode::kNotFound, "no interface " + interfaceName(ifname));
  }
  if (err < 0) {
    return makeError(ErrorCode::kKernel, std::string("set interface ") + interfaceName(ifname) +
                                             (up ? " up: " : " down: ") + libnlError(err));
  }
  return okStatus();
}

Result<bool> NetlinkRouteBackend::isLinkUp(const std::string& ifname) {
  SHADAN_ASSIGN_OR_RETURN(LinkPtr link, getLinkByName(sock_.get(), ifname));
  return isUp(link.get());
}

// A request of our own on the libnl socket rather than rtnl_route_lookup(): that one passes the
// kernel's errno through nl_syserr2nlerr(), which folds ENETUNREACH and EHOSTUNREACH into
// NLE_FAILURE, so "no route" could not be told from a failed lookup; and it drops the route
// type. Here the error callback keeps the errno, and the request carries exactly what `ip route
// get ADDR` sends: family, a host-length destination, RTA_DST.
Result<std::string> NetlinkRouteBackend::outputInterfaceTo(const IpPrefix& destination) {
  const IpFamily family = destination.family();
  const std::string what = "route lookup for " + destination.addressString();
  MsgPtr msg(nlmsg_alloc_simple(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_ACK));
  if (!msg) return makeError(ErrorCode::kInternal, "libnl: out of memory");
  rtmsg header{};
  header.rtm_family = static_cast<uint8_t>(addressFamily(family));
  header.rtm_dst_len = static_cast<uint8_t>(destination.maxLength());
  const int size = family == IpFamily::kV4 ? 4 : 16;
  if (nlmsg_append(msg.get(), &header, sizeof header, NLMSG_ALIGNTO) < 0 ||
      nla_put(msg.get(), RTA_DST, size, destination.bytes().data()) < 0) {
    return makeError(ErrorCode::kInternal, what + ": libnl: message too small");
  }
  // A clone of the socket's handlers, so the callbacks below apply to this exchange only.
  const CbPtr socket_cb(nl_socket_get_cb(sock_.get()));  // takes a reference
  CbPtr cb(nl_cb_clone(socket_cb.get()));
  if (!cb) return makeError(ErrorCode::kInternal, "libnl: out of memory");
  RouteLookup lookup;
  nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, onLookupRoute, &lookup);
  nl_cb_set(cb.get(), NL_CB_ACK, NL_CB_CUSTOM, onLookupAck, &lookup);
  nl_cb_err(cb.get(), NL_CB_CUSTOM, onLookupError, &lookup);
  if (int err = nl_send_auto(sock_.get(), msg.get()); err < 0) {
    return makeError(ErrorCode::kKernel, what + ": " + libnlError(err));
  }
  // The kernel answers with the route and then the ack, or with an error alone.
  while (!lookup.done) {
    const int err = nl_recvmsgs(sock_.get(), cb.get());
    if (lookup.done) break;
    if (err < 0) return makeError(ErrorCode::kKernel, what + ": " + libnlError(err));
  }
  if (lookup.error != 0) {
    if (isNoRouteErrno(lookup.error)) return std::string();
    return makeError(ErrorCode::kKernel,
                     what + ": " + std::generic_category().message(lookup.error));
  }
  if (lookup.malformed || !lookup.answered) {
    return makeError(ErrorCode::kKernel, what + ": the kernel's answer carries no route");
  }
  if (lookup.type == RTN_BLACKHOLE) {
    return makeError(ErrorCode::kKernel, what + ": a blackhole route");
  }
  if (isNoRouteType(lookup.type) || lookup.oif == 0) return std::string();
  SHADAN_ASSIGN_OR_RETURN(LinkPtr link,
                          getLink(sock_.get(), static_cast<int>(lookup.oif), std::string()));
  const char* name = rtnl_link_get_name(link.get());
  if (name == nullptr) {
    return makeError(ErrorCode::kKernel,
                     what + ": interface index " + std::to_string(lookup.oif) + " has no name");
  }
  return std::string(name);
}

}  // namespace shadan::agent

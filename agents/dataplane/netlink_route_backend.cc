#include "agents/dataplane/netlink_route_backend.h"

#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/route.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

namespace shadan {
namespace {

struct RouteDeleter {
  void operator()(rtnl_route* route) const { rtnl_route_put(route); }
};
struct AddrDeleter {
  void operator()(nl_addr* addr) const { nl_addr_put(addr); }
};
struct CacheDeleter {
  void operator()(nl_cache* cache) const { nl_cache_free(cache); }
};
using RoutePtr = std::unique_ptr<rtnl_route, RouteDeleter>;
using AddrPtr = std::unique_ptr<nl_addr, AddrDeleter>;
using CachePtr = std::unique_ptr<nl_cache, CacheDeleter>;

// The metric the kernel gives a route added without one (IPv4: 0; IPv6: IP6_RT_PRIO_USER).
// Ours are added with it explicitly, so the route key (table, prefix, metric) is known up front.
uint32_t defaultMetric(IpFamily family) { return family == IpFamily::kV4 ? 0 : 1024; }

int addressFamily(IpFamily family) { return family == IpFamily::kV4 ? AF_INET : AF_INET6; }

std::string libnlError(int err) { return nl_geterror(err); }

// One route of the main table, as the kernel dumped it.
struct MainRoute {
  IpPrefix prefix;
  uint8_t protocol = 0;
  uint8_t type = 0;
  uint8_t tos = 0;
  uint32_t metric = 0;
  RoutePtr route;  // our reference to the dumped object, for deletion

  bool isOurs() const { return protocol == kShadanRouteProtocol && type == RTN_BLACKHOLE; }
};

// The destination of a dumped route as an IpPrefix; nullopt for families we do not manage.
std::optional<IpPrefix> destinationOf(rtnl_route* route) {
  const uint8_t family = rtnl_route_get_family(route);
  if (family != AF_INET && family != AF_INET6) return std::nullopt;
  const IpFamily ip_family = family == AF_INET ? IpFamily::kV4 : IpFamily::kV6;
  std::array<uint8_t, 16> bytes{};
  int length = 0;
  if (nl_addr* dst = rtnl_route_get_dst(route); dst != nullptr) {
    // A default route may come back as a zero-length address.
    const unsigned int size = std::min<unsigned int>(nl_addr_get_len(dst), bytes.size());
    if (size > 0) std::memcpy(bytes.data(), nl_addr_get_binary_addr(dst), size);
    length = static_cast<int>(nl_addr_get_prefixlen(dst));
  }
  return IpPrefix::fromBytes(ip_family, bytes, length);
}

Result<std::vector<MainRoute>> dumpMainTable(nl_sock* sock) {
  nl_cache* raw_cache = nullptr;
  // AF_UNSPEC: one dump of every family.
  if (int err = rtnl_route_alloc_cache(sock, AF_UNSPEC, 0, &raw_cache); err < 0) {
    return makeError(ErrorCode::kKernel, "route dump: " + libnlError(err));
  }
  CachePtr cache(raw_cache);
  std::vector<MainRoute> routes;
  for (nl_object* object = nl_cache_get_first(cache.get()); object != nullptr;
       object = nl_cache_get_next(object)) {
    // Every object of a route cache is an rtnl_route (libnl's own object model).
    auto* route = reinterpret_cast<rtnl_route*>(object);
    if (rtnl_route_get_table(route) != RT_TABLE_MAIN) continue;
    std::optional<IpPrefix> prefix = destinationOf(route);
    if (!prefix) continue;
    rtnl_route_get(route);  // the cache drops its reference when freed; keep ours
    routes.push_back(MainRoute{*prefix, rtnl_route_get_protocol(route), rtnl_route_get_type(route),
                               rtnl_route_get_tos(route), rtnl_route_get_priority(route),
                               RoutePtr(route)});
  }
  return routes;
}

Result<RoutePtr> buildBlackhole(const IpPrefix& prefix) {
  const int family = addressFamily(prefix.family());
  const size_t size = prefix.family() == IpFamily::kV4 ? 4 : 16;
  AddrPtr dst(nl_addr_build(family, prefix.bytes().data(), size));
  RoutePtr route(rtnl_route_alloc());
  if (!dst || !route) return makeError(ErrorCode::kInternal, "libnl: out of memory");
  nl_addr_set_prefixlen(dst.get(), prefix.length());
  rtnl_route_set_family(route.get(), static_cast<uint8_t>(family));
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
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

std::string joined(const std::vector<std::string>& items) {
  if (items.empty()) return "nothing";
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
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

  Result<std::vector<MainRoute>> dumped = dumpMainTable(sock_.get());
  if (!dumped.ok()) return dumped.error();
  const std::vector<MainRoute>& routes = dumped.value();

  std::vector<std::string> failures;
  std::vector<std::string> changes;

  for (const IpPrefix& prefix : desired) {
    const bool present = std::any_of(routes.begin(), routes.end(), [&](const MainRoute& r) {
      return r.isOurs() && r.prefix == prefix;
    });
    if (present) continue;
    const auto foreign = std::find_if(routes.begin(), routes.end(), [&](const MainRoute& r) {
      return !r.isOurs() && r.prefix == prefix && r.tos == 0 &&
             r.metric == defaultMetric(prefix.family());
    });
    if (foreign != routes.end()) {
      failures.push_back("add blackhole " + prefix.toCidr() +
                         ": a foreign route holds this prefix (protocol " +
                         std::to_string(foreign->protocol) + ", type " +
                         std::to_string(foreign->type) + "); left alone");
      continue;
    }
    Result<RoutePtr> route = buildBlackhole(prefix);
    if (!route.ok()) {
      failures.push_back(route.error().message);
      continue;
    }
    // CREATE|REPLACE: idempotent if the same route appeared since the dump.
    if (int err = rtnl_route_add(sock_.get(), route.value().get(), NLM_F_CREATE | NLM_F_REPLACE);
        err < 0) {
      failures.push_back("add blackhole " + prefix.toCidr() + ": " + libnlError(err));
      continue;
    }
    changes.push_back("added " + prefix.toCidr());
  }

  for (const MainRoute& route : routes) {
    if (!route.isOurs() || std::binary_search(desired.begin(), desired.end(), route.prefix)) {
      continue;
    }
    // Delete with the dumped object: it carries the exact key (metric included).
    int err = rtnl_route_delete(sock_.get(), route.route.get(), 0);
    if (err < 0 && err != -NLE_OBJ_NOTFOUND) {  // already gone is what we wanted
      failures.push_back("remove blackhole " + route.prefix.toCidr() + ": " + libnlError(err));
      continue;
    }
    changes.push_back("removed " + route.prefix.toCidr());
  }

  if (!failures.empty()) {
    return makeError(ErrorCode::kKernel,
                     "route sync: " + joined(failures) + " (changed: " + joined(changes) + ")");
  }
  return okStatus();
}

Result<std::vector<IpPrefix>> NetlinkRouteBackend::list() {
  Result<std::vector<MainRoute>> dumped = dumpMainTable(sock_.get());
  if (!dumped.ok()) return dumped.error();
  std::vector<IpPrefix> ours;
  for (const MainRoute& route : dumped.value()) {
    if (route.isOurs()) ours.push_back(route.prefix);
  }
  std::sort(ours.begin(), ours.end());
  ours.erase(std::unique(ours.begin(), ours.end()), ours.end());
  return ours;
}

}  // namespace shadan

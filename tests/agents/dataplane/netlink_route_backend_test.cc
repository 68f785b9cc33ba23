// Integration tests of NetlinkRouteBackend against the real kernel. main() moves the process into
// a private network namespace first (see below) and every test then starts in a fresh one of its
// own; without root every test is skipped.

#include "agents/dataplane/netlink_route_backend.h"

#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/private_netns.h"

namespace shadan::agent {
namespace {

using test_support::CommandResult;
using test_support::runCommand;

IpPrefix prefix(const char* text) {
  auto parsed = IpPrefix::parse(text);
  if (!parsed.ok()) {
    ADD_FAILURE() << text << ": " << parsed.error().message;
    return IpPrefix{};
  }
  return parsed.value();
}

std::vector<IpPrefix> prefixes(std::initializer_list<const char*> texts) {
  std::vector<IpPrefix> out;
  for (const char* text : texts) out.push_back(prefix(text));
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Our table and rule as `ip` prints them.
const std::string kTable = std::to_string(kShadanRouteTable);
const std::string kOurRule = std::to_string(kShadanRulePriority) + ":\tfrom all lookup " + kTable +
                             " proto " + std::to_string(kShadanRouteProtocol);

// Our table as `ip -4` / `ip -6` prints it. A table that never held a route of a family does not
// exist for it, and `ip` then fails: that is the empty table, so its error is dropped.
std::string tableRoutes(const char* family_flag) {
  return runCommand(std::string("ip ") + family_flag + " route show table " + kTable +
                    " 2>/dev/null")
      .output;
}

// Route and rule notifications the kernel multicasts in the current network namespace. The
// kernel queues them before it acks the request that caused them, so once sync() returns every
// notification it caused is readable here: no sleeping, no race.
class RouteEventMonitor {
 public:
  // Returns false (with a test failure) if the socket cannot be set up.
  bool open() {
    fd_.reset(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
    if (fd_.get() < 0) {
      ADD_FAILURE() << "netlink socket: " << std::strerror(errno);
      return false;
    }
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      ADD_FAILURE() << "bind: " << std::strerror(errno);
      return false;
    }
    for (int group :
         {RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE}) {
      if (setsockopt(fd_.get(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) != 0) {
        ADD_FAILURE() << "join group " << group << ": " << std::strerror(errno);
        return false;
      }
    }
    return true;
  }

  // Message types (RTM_NEWROUTE, RTM_DELRULE, ...) received since the last call, in order.
  std::vector<uint16_t> drain() {
    std::vector<uint16_t> types;
    std::array<char, 65536> buffer{};
    while (true) {
      const ssize_t n = recv(fd_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) ADD_FAILURE() << std::strerror(errno);
        break;
      }
      size_t offset = 0;
      while (offset + sizeof(nlmsghdr) <= static_cast<size_t>(n)) {
        nlmsghdr header{};
        std::memcpy(&header, buffer.data() + offset, sizeof header);
        if (header.nlmsg_len < sizeof header) break;
        types.push_back(header.nlmsg_type);
        offset += NLMSG_ALIGN(header.nlmsg_len);
      }
    }
    return types;
  }

 private:
  // Owns one file descriptor.
  struct Fd {
    Fd() = default;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int value = -1;
    ~Fd() {
      if (value >= 0) close(value);
    }
    void reset(int fd) {
      if (value >= 0) close(value);
      value = fd;
    }
    int get() const { return value; }
  };
  Fd fd_;
};

class NetlinkRouteBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test_support::inPrivateNetns())
      GTEST_SKIP() << "needs root (runs in a private network namespace)";
    // Every test gets a fresh namespace of its own (main() already left the host's): nothing
    // one test leaves behind can reach the next, and it all vanishes with the process.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    ASSERT_EQ(runCommand("ip link set lo up").exit_code, 0);
    ASSERT_EQ(tableRoutes("-4") + tableRoutes("-6") +
                  runCommand("{ ip rule show; ip -6 rule show; } | grep " + kTable).output,
              "");
    auto created = NetlinkRouteBackend::create();
    ASSERT_TRUE(created.ok()) << created.error().message;
    backend_ = std::move(created.value());
  }

  std::vector<IpPrefix> listed() {
    auto ours = backend_->list();
    EXPECT_TRUE(ours.ok()) << ours.error().message;
    return ours.ok() ? ours.value() : std::vector<IpPrefix>{};
  }

  static std::string ourRoutes() { return tableRoutes("-4") + tableRoutes("-6"); }
  static std::string rules(const char* family_flag) {
    return runCommand(std::string("ip ") + family_flag + " rule show").output;
  }
  static std::string mainTables() {
    return runCommand("ip route show table main; ip -6 route show table main").output;
  }

  // A gateway leg: veth d0 (peer d1) directly connected to 10.20.0.0/24, 10.21.0.0/24 and
  // fd00:20::/64, fd00:21::/64 (dummy interfaces are not available on every test kernel).
  static void addConnectedSegments() {
    ASSERT_EQ(runCommand("ip link add d0 type veth peer name d1 && "
                         "ip addr add 10.20.0.1/24 dev d0 && ip addr add 10.21.0.1/24 dev d0 && "
                         "ip -6 addr add fd00:20::1/64 dev d0 nodad && "
                         "ip -6 addr add fd00:21::1/64 dev d0 nodad && "
                         "ip link set d0 up && ip link set d1 up")
                  .exit_code,
              0);
  }

  std::unique_ptr<NetlinkRouteBackend> backend_;
};

// `ip route get` of a destination whose lookup ends in a blackhole fails with the blackhole's
// error, EINVAL ("Invalid argument"); no route would be ENETUNREACH, unreachable EHOSTUNREACH,
// prohibit EACCES.
void expectBlackholed(const std::string& get_command) {
  const CommandResult result = runCommand(get_command);
  EXPECT_NE(result.exit_code, 0) << get_command << ": " << result.output;
  EXPECT_TRUE(contains(result.output, "Invalid argument")) << get_command << ": " << result.output;
}

void expectRoutedVia(const std::string& get_command, const std::string& device) {
  const CommandResult result = runCommand(get_command);
  EXPECT_EQ(result.exit_code, 0) << get_command << ": " << result.output;
  EXPECT_TRUE(contains(result.output, "dev " + device)) << get_command << ": " << result.output;
}

TEST_F(NetlinkRouteBackendTest, SyncPutsBlackholesInOwnTableForBothFamilies) {
  const auto desired =
      prefixes({"fd00:20::/48", "10.30.1.0/24", "10.20.0.0/16", "10.99.0.10", "fd00:21::1"});
  ASSERT_TRUE(backend_->sync(desired).ok());

  EXPECT_EQ(listed(),
            prefixes({"10.20.0.0/16", "10.30.1.0/24", "10.99.0.10", "fd00:20::/48", "fd00:21::1"}));
  const std::string v4 = tableRoutes("-4");
  EXPECT_TRUE(contains(v4, "blackhole 10.20.0.0/16 proto 83")) << v4;
  EXPECT_TRUE(contains(v4, "blackhole 10.30.1.0/24 proto 83")) << v4;
  EXPECT_TRUE(contains(v4, "blackhole 10.99.0.10 proto 83")) << v4;
  const std::string v6 = tableRoutes("-6");
  EXPECT_TRUE(contains(v6, "blackhole fd00:20::/48")) << v6;
  EXPECT_TRUE(contains(v6, "blackhole fd00:21::1")) << v6;
  // Our table only: nothing of ours in main (or anywhere else).
  EXPECT_EQ(mainTables(), "");
  const std::string all_tables =
      runCommand("ip -4 route show table all proto 83; ip -6 route show table all proto 83").output;
  size_t lines = 0;
  for (char c : all_tables) lines += c == '\n' ? 1 : 0;
  EXPECT_EQ(lines, 5u) << all_tables;
  // One rule per family.
  EXPECT_TRUE(contains(rules("-4"), kOurRule)) << rules("-4");
  EXPECT_TRUE(contains(rules("-6"), kOurRule)) << rules("-6");
}

TEST_F(NetlinkRouteBackendTest, SecondSyncIsIdempotent) {
  const auto desired = prefixes({"10.20.0.0/16", "fd00:20::/48"});
  ASSERT_TRUE(backend_->sync(desired).ok());
  const std::string first = ourRoutes() + rules("-4") + rules("-6");
  ASSERT_TRUE(backend_->sync(desired).ok());
  EXPECT_EQ(ourRoutes() + rules("-4") + rules("-6"), first);
  EXPECT_EQ(listed(), desired);
  // Duplicates in the input are one route.
  ASSERT_TRUE(backend_->sync(prefixes({"10.20.0.0/16", "10.20.0.0/16", "fd00:20::/48"})).ok());
  EXPECT_EQ(ourRoutes() + rules("-4") + rules("-6"), first);
}

TEST_F(NetlinkRouteBackendTest, SteadyStateSyncSendsNoChanges) {
  RouteEventMonitor monitor;
  ASSERT_TRUE(monitor.open());
  const auto desired = prefixes({"10.20.0.0/16", "10.21.0.0/16", "fd00:20::/48"});
  ASSERT_TRUE(backend_->sync(desired).ok());
  // The monitor sees changes (3 routes, 2 rules)...
  EXPECT_EQ(monitor.drain().size(), 5u);
  // ... and none from syncing the same set again, in any order or with duplicates.
  ASSERT_TRUE(backend_->sync(desired).ok());
  EXPECT_TRUE(monitor.drain().empty());
  ASSERT_TRUE(
      backend_->sync(prefixes({"fd00:20::/48", "10.21.0.0/16", "10.20.0.0/16", "10.20.0.0/16"}))
          .ok());
  EXPECT_TRUE(monitor.drain().empty());
  ASSERT_TRUE(backend_->sync({}).ok());
  EXPECT_EQ(monitor.drain().size(), 5u);
  ASSERT_TRUE(backend_->sync({}).ok());
  EXPECT_TRUE(monitor.drain().empty());
}

TEST_F(NetlinkRouteBackendTest, RuleComesAfterTheRoutesAndGoesBeforeTheLastOne) {
  RouteEventMonitor monitor;
  ASSERT_TRUE(monitor.open());
  ASSERT_TRUE(backend_->sync(prefixes({"10.20.0.0/24", "fd00:20::/64"})).ok());
  EXPECT_EQ(monitor.drain(),
            (std::vector<uint16_t>{RTM_NEWROUTE, RTM_NEWROUTE, RTM_NEWRULE, RTM_NEWRULE}));
  // Another route of a family that has its rule: only the route.
  ASSERT_TRUE(backend_->sync(prefixes({"10.20.0.0/24", "10.21.0.0/24", "fd00:20::/64"})).ok());
  EXPECT_EQ(monitor.drain(), (std::vector<uint16_t>{RTM_NEWROUTE}));
  // Not the last route of IPv4: the rule stays.
  ASSERT_TRUE(backend_->sync(prefixes({"10.21.0.0/24", "fd00:20::/64"})).ok());
  EXPECT_EQ(monitor.drain(), (std::vector<uint16_t>{RTM_DELROUTE}));
  ASSERT_TRUE(backend_->sync({}).ok());
  EXPECT_EQ(monitor.drain(),
            (std::vector<uint16_t>{RTM_DELRULE, RTM_DELRULE, RTM_DELROUTE, RTM_DELROUTE}));
}

TEST_F(NetlinkRouteBackendTest, SyncRemovesOursThatAreNoLongerDesired) {
  ASSERT_TRUE(backend_->sync(prefixes({"10.20.0.0/16", "10.21.0.0/16", "fd00:20::/48"})).ok());
  ASSERT_TRUE(backend_->sync(prefixes({"10.21.0.0/16"})).ok());
  EXPECT_EQ(listed(), prefixes({"10.21.0.0/16"}));
  ASSERT_TRUE(backend_->sync({}).ok());
  EXPECT_TRUE(listed().empty());
  EXPECT_EQ(ourRoutes(), "");
}

TEST_F(NetlinkRouteBackendTest, RulesExistOnlyWhileTheTableHoldsRoutesOfTheirFamily) {
  const std::string v4_before = rules("-4");
  const std::string v6_before = rules("-6");
  EXPECT_FALSE(contains(v4_before, "lookup " + kTable)) << v4_before;

  ASSERT_TRUE(backend_->sync(prefixes({"10.20.0.0/24"})).ok());
  EXPECT_TRUE(contains(rules("-4"), kOurRule)) << rules("-4");
  EXPECT_EQ(rules("-6"), v6_before);

  ASSERT_TRUE(backend_->sync(prefixes({"fd00:20::/64"})).ok());
  EXPECT_EQ(rules("-4"), v4_before);
  EXPECT_TRUE(contains(rules("-6"), kOurRule)) << rules("-6");

  ASSERT_TRUE(backend_->sync({}).ok());
  EXPECT_EQ(rules("-4"), v4_before);
  EXPECT_EQ(rules("-6"), v6_before);
}

TEST_F(NetlinkRouteBackendTest, BlackholeWinsOverConnectedRouteIPv4) {
  addConnectedSegments();
  expectRoutedVia("ip route get 10.20.0.5", "d0");

  ASSERT_TRUE(backend_->sync(prefixes({"10.20.0.0/24"})).ok());
  expectBlackholed("ip route get 10.20.0.5");
  // A lookup that finds nothing in our table falls through to main.
  expectRoutedVia("ip route get 10.21.0.5", "d0");
  // The connected route is untouched.
  EXPECT_TRUE(contains(runCommand("ip route show 10.20.0.0/24").output, "dev d0"));

  ASSERT_TRUE(backend_->sync({}).ok());
  expectRoutedVia("ip route get 10.20.0.5", "d0");
}

TEST_F(NetlinkRouteBackendTest, BlackholeWinsOverConnectedRouteIPv6) {
  addConnectedSegments();
  expectRoutedVia("ip -6 route get fd00:20::5", "d0");

  ASSERT_TRUE(backend_->sync(prefixes({"fd00:20::/64"})).ok());
  expectBlackholed("ip -6 route get fd00:20::5");
  expectRoutedVia("ip -6 route get fd00:21::5", "d0");
  EXPECT_TRUE(contains(runCommand("ip -6 route show fd00:20::/64").output, "dev d0"));

  ASSERT_TRUE(backend_->sync({}).ok());
  expectRoutedVia("ip -6 route get fd00:20::5", "d0");
}

TEST_F(NetlinkRouteBackendTest, RoutesAndRulesTaggedWithOurProtocolByOthersAreOurs) {
  // e.g. left behind by a previous agent process: a route, our rule, and a rule with a stale
  // priority (an older build).
  ASSERT_EQ(runCommand("ip route add blackhole 10.40.0.0/16 proto 83 table " + kTable).exit_code,
            0);
  ASSERT_EQ(runCommand("ip rule add pref 83 lookup " + kTable + " proto 83").exit_code, 0);
  ASSERT_EQ(runCommand("ip -6 rule add pref 90 lookup " + kTable + " proto 83").exit_code, 0);
  EXPECT_EQ(listed(), prefixes({"10.40.0.0/16"}));

  // The stale IPv6 rule goes even though IPv6 is wanted; the IPv4 rule is reused.
  ASSERT_TRUE(backend_->sync(prefixes({"10.40.0.0/16", "fd00:20::/64"})).ok());
  const std::string v6 = rules("-6");
  EXPECT_TRUE(contains(v6, kOurRule)) << v6;
  EXPECT_FALSE(contains(v6, "90:")) << v6;

  ASSERT_TRUE(backend_->sync({}).ok());
  EXPECT_EQ(ourRoutes(), "");
  EXPECT_FALSE(contains(rules("-4") + rules("-6"), "lookup " + kTable));
}

TEST_F(NetlinkRouteBackendTest, LeftoverRuleWithoutRoutesIsRemoved) {
  ASSERT_EQ(runCommand("ip -6 rule add pref 83 lookup " + kTable + " proto 83").exit_code, 0);
  ASSERT_TRUE(backend_->sync({}).ok());
  EXPECT_FALSE(contains(rules("-6"), "lookup " + kTable)) << rules("-6");
}

TEST_F(NetlinkRouteBackendTest, LegacyMainTableBlackholesAreRemoved) {
  // What builds before the own table installed: ours, never desired in main.
  ASSERT_EQ(runCommand("ip route add blackhole 10.40.0.0/16 proto 83").exit_code, 0);
  ASSERT_EQ(runCommand("ip -6 route add blackhole fd00:40::/48 proto 83").exit_code, 0);
  ASSERT_TRUE(backend_->sync(prefixes({"10.40.0.0/16"})).ok());
  EXPECT_EQ(mainTables(), "");
  EXPECT_EQ(listed(), prefixes({"10.40.0.0/16"}));  // now in our table
}

TEST_F(NetlinkRouteBackendTest, ForeignRoutesAndRulesAreNeverTouched) {
  addConnectedSegments();
  ASSERT_EQ(runCommand("ip route add blackhole 10.77.0.0/16").exit_code, 0);  // proto boot
  ASSERT_EQ(runCommand("ip route add blackhole 10.78.0.0/16 proto static").exit_code, 0);
  ASSERT_EQ(runCommand("ip route add unreachable 10.79.0.0/16 proto 84").exit_code, 0);
  ASSERT_EQ(runCommand("ip -6 route add blackhole fd00:77::/48").exit_code, 0);
  // Our protocol, but not a blackhole: not ours to remove.
  ASSERT_EQ(runCommand("ip route add prohibit 10.80.0.0/16 proto 83").exit_code, 0);
  // The prefixes we are about to isolate, held by foreign routes in main and in another table.
  ASSERT_EQ(runCommand("ip route add blackhole 10.30.0.0/16").exit_code, 0);
  ASSERT_EQ(runCommand("ip route add blackhole 10.20.0.0/24 table 100 proto 83").exit_code, 0);
  // Foreign rules, one of them even looking up our table (other protocol).
  ASSERT_EQ(runCommand("ip rule add pref 100 from 10.1.0.0/16 lookup 100").exit_code, 0);
  ASSERT_EQ(runCommand("ip rule add pref 83 lookup " + kTable + " proto static").exit_code, 0);
  ASSERT_EQ(runCommand("ip -6 rule add pref 200 to fd00:99::/64 lookup 200").exit_code, 0);
  const auto snapshot = [] {
    return runCommand("ip -4 route show table all | grep -v 'table " + kTable +
                      "'; ip -6 route show table all | grep -v 'table " + kTable +
                      "'; ip rule show | grep -v 'proto 83'; ip -6 rule show | grep -v 'proto 83'")
        .output;
  };
  const std::string before = snapshot();
  ASSERT_TRUE(contains(before, "lookup " + kTable + " proto static")) << before;

  ASSERT_TRUE(backend_->sync(prefixes({"10.20.0.0/24", "10.30.0.0/16", "fd00:20::/64"})).ok());
  EXPECT_EQ(listed(), prefixes({"10.20.0.0/24", "10.30.0.0/16", "fd00:20::/64"}));
  EXPECT_EQ(snapshot(), before);
  ASSERT_TRUE(backend_->sync({}).ok());
  EXPECT_TRUE(listed().empty());
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(ourRoutes(), "");
}

TEST_F(NetlinkRouteBackendTest, ForeignRouteInOurTableKeepsThatFamilysRuleOut) {
  ASSERT_EQ(runCommand("ip route add unreachable 10.60.0.0/16 table " + kTable).exit_code, 0);
  const std::string foreign_before = tableRoutes("-4");

  const Status status = backend_->sync(prefixes({"10.20.0.0/24", "fd00:20::/64"}));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kKernel);
  const std::string& message = status.error().message;
  EXPECT_TRUE(contains(message, "10.60.0.0/16")) << message;  // names the foreign route
  EXPECT_TRUE(contains(message, "not installed: 10.20.0.0/24")) << message;
  EXPECT_TRUE(contains(message, "added fd00:20::/64")) << message;
  // IPv4: no route of ours, no rule; the foreign route is exactly as it was. IPv6 is unaffected.
  EXPECT_EQ(listed(), prefixes({"fd00:20::/64"}));
  EXPECT_EQ(tableRoutes("-4"), foreign_before);
  EXPECT_FALSE(contains(rules("-4"), "lookup " + kTable)) << rules("-4");
  EXPECT_TRUE(contains(rules("-6"), kOurRule)) << rules("-6");

  ASSERT_TRUE(backend_->sync({}).ok());  // nothing IPv4 wanted: no conflict to report
  EXPECT_EQ(tableRoutes("-4"), foreign_before);
  EXPECT_EQ(tableRoutes("-6"), "");
}

TEST_F(NetlinkRouteBackendTest, ForeignRouteAppearingInOurTableRemovesOurRule) {
  ASSERT_TRUE(backend_->sync(prefixes({"10.20.0.0/24"})).ok());
  ASSERT_TRUE(contains(rules("-4"), kOurRule));
  ASSERT_EQ(runCommand("ip route add default dev lo table " + kTable).exit_code, 0);

  const Status status = backend_->sync(prefixes({"10.20.0.0/24"}));
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(contains(status.error().message, "removed IPv4 rule")) << status.error().message;
  // Our rule no longer steers every lookup into a default route we do not own.
  EXPECT_FALSE(contains(rules("-4"), "lookup " + kTable)) << rules("-4");
  EXPECT_EQ(listed(), prefixes({"10.20.0.0/24"}));
  EXPECT_TRUE(contains(tableRoutes("-4"), "default dev lo"));
}

}  // namespace
}  // namespace shadan::agent

// Integration tests of RouteMonitor against the real kernel: `ip` changes routes, rules and links
// and the monitor must report them. main() moves the process into a private network namespace
// first and every test then starts in a fresh one of its own; without root every test is skipped.

#include "agents/dataplane/route_monitor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/private_netns.h"

namespace shadan::agent {
namespace {

using test_support::CommandResult;
using test_support::runCommand;

const std::string kTable = std::to_string(kShadanRouteTable);
const std::string kPriority = std::to_string(kShadanRulePriority);
const std::string kProtocol = std::to_string(kShadanRouteProtocol);

class RouteMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test_support::inPrivateNetns())
      GTEST_SKIP() << "needs root (runs in a private network namespace)";
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    monitor_ = open(RouteMonitorOptions{});
    ASSERT_NE(monitor_, nullptr);
    run("ip link set lo up");
    (void)drain();
  }

  static std::unique_ptr<RouteMonitor> open(const RouteMonitorOptions& options) {
    auto opened = RouteMonitor::open(options);
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    return opened.ok() ? std::move(opened.value()) : nullptr;
  }

  static void run(const std::string& command) {
    const CommandResult result = runCommand(command);
    ASSERT_EQ(result.exit_code, 0) << command << ": " << result.output;
  }

  std::vector<RouteChangeEvent> drain() { return drain(*monitor_); }
  static std::vector<RouteChangeEvent> drain(RouteMonitor& monitor) {
    auto events = monitor.drain();
    EXPECT_TRUE(events.ok()) << events.error().message;
    return events.ok() ? events.value() : std::vector<RouteChangeEvent>{};
  }

  // Runs `command` and returns the events of `kind` it caused for `subject` (the prefix of a
  // route or rule, the name of a link). Other events are expected around it and filtered out:
  // the kernel adds and removes routes of its own asynchronously (IPv6 link-local and multicast
  // routes once a link's carrier comes up).
  std::vector<RouteChangeEvent> eventsOf(const std::string& command, RouteChangeEvent::Kind kind,
                                         const std::string& subject) {
    run(command);
    std::vector<RouteChangeEvent> matching;
    for (const RouteChangeEvent& event : drain()) {
      EXPECT_FALSE(event.lost);
      const std::string& name =
          event.kind == RouteChangeEvent::kLinkChanged ? event.ifname : event.prefix;
      if (event.kind == kind && name == subject) matching.push_back(event);
    }
    return matching;
  }

  std::unique_ptr<RouteMonitor> monitor_;
};

TEST_F(RouteMonitorTest, FdIsNonBlockingAndIdleDrainIsEmpty) {
  const int flags = fcntl(monitor_->fd(), F_GETFL);
  ASSERT_GE(flags, 0);
  EXPECT_NE(flags & O_NONBLOCK, 0);
  EXPECT_TRUE(drain().empty());
}

TEST_F(RouteMonitorTest, OurBlackholeAddedAndDeleted) {
  const std::string route = "blackhole 10.9.0.0/24 proto " + kProtocol + " table " + kTable;
  std::vector<RouteChangeEvent> added =
      eventsOf("ip route add " + route, RouteChangeEvent::kRouteAdded, "10.9.0.0/24");
  ASSERT_EQ(added.size(), 1u);
  EXPECT_TRUE(added[0].ours);
  EXPECT_EQ(added[0].family, AF_INET);
  EXPECT_EQ(added[0].prefix, "10.9.0.0/24");
  EXPECT_EQ(added[0].table, kShadanRouteTable);
  EXPECT_EQ(added[0].protocol, kShadanRouteProtocol);

  std::vector<RouteChangeEvent> deleted =
      eventsOf("ip route del " + route, RouteChangeEvent::kRouteDeleted, "10.9.0.0/24");
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_TRUE(deleted[0].ours);
  EXPECT_EQ(deleted[0].prefix, "10.9.0.0/24");

  const std::string route6 = "blackhole fd00:9::/64 proto " + kProtocol + " table " + kTable;
  added = eventsOf("ip -6 route add " + route6, RouteChangeEvent::kRouteAdded, "fd00:9::/64");
  ASSERT_EQ(added.size(), 1u);
  EXPECT_TRUE(added[0].ours);
  EXPECT_EQ(added[0].family, AF_INET6);
  EXPECT_EQ(added[0].prefix, "fd00:9::/64");
  deleted = eventsOf("ip -6 route del " + route6, RouteChangeEvent::kRouteDeleted, "fd00:9::/64");
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_TRUE(deleted[0].ours);
}

TEST_F(RouteMonitorTest, ForeignRoutesAreNotOurs) {
  run("ip link add d0 type veth peer name d1 && ip link set d1 up && ip link set d0 up && "
      "ip addr add 10.50.0.1/24 dev d0");
  (void)drain();
  std::vector<RouteChangeEvent> added = eventsOf("ip route add 10.60.0.0/24 via 10.50.0.2",
                                                 RouteChangeEvent::kRouteAdded, "10.60.0.0/24");
  ASSERT_EQ(added.size(), 1u);
  EXPECT_FALSE(added[0].ours);
  EXPECT_EQ(added[0].prefix, "10.60.0.0/24");
  EXPECT_EQ(added[0].table, static_cast<uint32_t>(RT_TABLE_MAIN));

  // A foreign blackhole with our prefix is still not ours.
  added = eventsOf("ip route add blackhole 10.9.0.0/24 table 100", RouteChangeEvent::kRouteAdded,
                   "10.9.0.0/24");
  ASSERT_EQ(added.size(), 1u);
  EXPECT_FALSE(added[0].ours);
  EXPECT_EQ(added[0].table, 100u);

  std::vector<RouteChangeEvent> deleted = eventsOf("ip route del 10.60.0.0/24 via 10.50.0.2",
                                                   RouteChangeEvent::kRouteDeleted, "10.60.0.0/24");
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_FALSE(deleted[0].ours);
}

TEST_F(RouteMonitorTest, RuleEvents) {
  const std::string rule = "pref " + kPriority + " lookup " + kTable + " proto " + kProtocol;
  for (const char* family : {"-4", "-6"}) {
    SCOPED_TRACE(family);
    std::vector<RouteChangeEvent> added = eventsOf(
        std::string("ip ") + family + " rule add " + rule, RouteChangeEvent::kRuleAdded, "");
    ASSERT_EQ(added.size(), 1u);
    EXPECT_TRUE(added[0].ours);
    EXPECT_EQ(added[0].family, std::string(family) == "-4" ? AF_INET : AF_INET6);
    EXPECT_EQ(added[0].priority, kShadanRulePriority);
    EXPECT_EQ(added[0].table, kShadanRouteTable);
    EXPECT_EQ(added[0].prefix, "");
    std::vector<RouteChangeEvent> deleted = eventsOf(
        std::string("ip ") + family + " rule del " + rule, RouteChangeEvent::kRuleDeleted, "");
    ASSERT_EQ(deleted.size(), 1u);
    EXPECT_TRUE(deleted[0].ours);
  }

  // Without our tag but steering into our table: counts as ours.
  std::vector<RouteChangeEvent> steering = eventsOf(
      "ip rule add pref " + kPriority + " lookup " + kTable, RouteChangeEvent::kRuleAdded, "");
  ASSERT_EQ(steering.size(), 1u);
  EXPECT_TRUE(steering[0].ours);

  std::vector<RouteChangeEvent> foreign =
      eventsOf("ip rule add pref 100 from 10.1.0.0/16 lookup 100", RouteChangeEvent::kRuleAdded,
               "10.1.0.0/16");
  ASSERT_EQ(foreign.size(), 1u);
  EXPECT_FALSE(foreign[0].ours);
  EXPECT_EQ(foreign[0].prefix, "10.1.0.0/16");
  EXPECT_EQ(foreign[0].priority, 100u);
  foreign = eventsOf("ip rule del pref 100 from 10.1.0.0/16 lookup 100",
                     RouteChangeEvent::kRuleDeleted, "10.1.0.0/16");
  ASSERT_EQ(foreign.size(), 1u);
  EXPECT_FALSE(foreign[0].ours);
}

TEST_F(RouteMonitorTest, LinkEvents) {
  // A veth pair: the kernel of this machine has no dummy driver.
  std::vector<RouteChangeEvent> links =
      eventsOf("ip link add d0 type veth peer name d1", RouteChangeEvent::kLinkChanged, "d0");
  ASSERT_FALSE(links.empty());
  EXPECT_GT(links[0].ifindex, 0u);
  EXPECT_FALSE(links[0].ours);
  EXPECT_EQ(links[0].family, AF_UNSPEC);

  links = eventsOf("ip link del d0", RouteChangeEvent::kLinkChanged, "d0");
  EXPECT_FALSE(links.empty());
}

TEST_F(RouteMonitorTest, OverflowIsReportedAsLostAndMonitoringContinues) {
  // The smallest receive buffer the kernel allows holds a few notifications; a thousand route
  // changes, not drained while they happen, must overflow it.
  RouteMonitorOptions options;
  options.receive_buffer_bytes = 1;
  std::unique_ptr<RouteMonitor> tiny = open(options);
  ASSERT_NE(tiny, nullptr);

  const std::string batch_path =
      "/tmp/shadan_route_monitor_test_" + std::to_string(getpid()) + ".batch";
  {
    std::ofstream batch(batch_path);
    for (int i = 0; i < 1000; ++i) {
      batch << "route add blackhole 10.77." << (i / 256) << '.' << (i % 256) << "/32 table 100\n";
    }
  }
  const CommandResult result = runCommand("ip -batch " + batch_path);
  std::remove(batch_path.c_str());
  ASSERT_EQ(result.exit_code, 0) << result.output;

  std::vector<RouteChangeEvent> events = drain(*tiny);
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(std::any_of(events.begin(), events.end(),
                          [](const RouteChangeEvent& event) { return event.lost; }));

  // The socket recovers: the next change is reported.
  run("ip route add blackhole 10.9.0.0/24 proto " + kProtocol + " table " + kTable);
  events = drain(*tiny);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].lost);
  EXPECT_EQ(events[0].kind, RouteChangeEvent::kRouteAdded);
  EXPECT_TRUE(events[0].ours);
}

}  // namespace
}  // namespace shadan::agent

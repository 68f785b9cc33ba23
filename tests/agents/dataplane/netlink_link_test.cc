// Integration tests of NetlinkRouteBackend's links and route lookups (the link-down rung) against
// the real kernel. main() moves the process into a private network namespace first and every
// test then starts in a fresh one of its own, so the host's links are never touched and whatever
// a test leaves behind vanishes with it, even when it fails; without root every test is skipped.
// `ip` runs as a child of the test and so inspects the test's namespace: what `ip -n NS` would
// show for a named one.

#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

// After <net/if.h>: the linux headers below must not pull in <linux/if.h>, which clashes with it.
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "agents/dataplane/netlink_route_backend.h"
#include "common/unique_fd.h"
#include "tests/support/private_netns.h"

namespace shadan::agent {
namespace {

using test_support::runCommand;

IpPrefix prefix(const char* text) {
  auto parsed = IpPrefix::parse(text);
  if (!parsed.ok()) {
    ADD_FAILURE() << text << ": " << parsed.error().message;
    return IpPrefix{};
  }
  return parsed.value();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// `ip link show dev IFNAME`: the flags between < and >, e.g. {"BROADCAST", "UP", "LOWER_UP"}.
std::vector<std::string> ipLinkFlags(const std::string& output) {
  std::vector<std::string> flags;
  const size_t open = output.find('<');
  const size_t close = output.find('>', open);
  if (open == std::string::npos || close == std::string::npos) return flags;
  std::istringstream list(output.substr(open + 1, close - open - 1));
  for (std::string flag; std::getline(list, flag, ',');) flags.push_back(flag);
  return flags;
}

bool hasFlag(const std::vector<std::string>& flags, const std::string& flag) {
  for (const std::string& f : flags) {
    if (f == flag) return true;
  }
  return false;
}

// RTM_NEWLINK notifications of one interface whose change mask holds IFF_UP: what an
// administrative up/down multicasts, synchronously, before the request is acked. Carrier changes
// (linkwatch, possibly late) carry no IFF_UP in the mask, so they cannot make a count flaky.
class LinkUpEventMonitor {
 public:
  // Returns false (with a test failure) if the socket cannot be set up.
  bool open() {
    fd_.reset(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
    if (!fd_.valid()) {
      ADD_FAILURE() << "netlink socket: " << std::strerror(errno);
      return false;
    }
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    local.nl_groups = RTMGRP_LINK;
    if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      ADD_FAILURE() << "bind: " << std::strerror(errno);
      return false;
    }
    return true;
  }

  // Such notifications for `ifindex` received since the last call.
  int drain(unsigned int ifindex) {
    int count = 0;
    std::array<char, 65536> buffer{};
    while (true) {
      const ssize_t n = recv(fd_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) ADD_FAILURE() << std::strerror(errno);
        break;
      }
      size_t offset = 0;
      while (offset + NLMSG_LENGTH(sizeof(ifinfomsg)) <= static_cast<size_t>(n)) {
        nlmsghdr header{};
        std::memcpy(&header, buffer.data() + offset, sizeof header);
        if (header.nlmsg_len < sizeof header) break;
        if (header.nlmsg_type == RTM_NEWLINK &&
            header.nlmsg_len >= NLMSG_LENGTH(sizeof(ifinfomsg))) {
          ifinfomsg info{};
          std::memcpy(&info, buffer.data() + offset + NLMSG_HDRLEN, sizeof info);
          if (static_cast<unsigned int>(info.ifi_index) == ifindex &&
              (info.ifi_change & IFF_UP) != 0) {
            ++count;
          }
        }
        offset += NLMSG_ALIGN(header.nlmsg_len);
      }
    }
    return count;
  }

 private:
  UniqueFd fd_;
};

class NetlinkLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test_support::inPrivateNetns())
      GTEST_SKIP() << "needs root (runs in a private network namespace)";
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    // An uplink (veth up0, peer up1) with a gateway behind it and a LAN leg (veth lan0, peer
    // lan1), both families on the uplink. Dummy interfaces are not available on every test
    // kernel; veth pairs are.
    const auto setup = runCommand(
        "ip link set lo up && "
        "ip link add up0 type veth peer name up1 && ip link add lan0 type veth peer name lan1 && "
        "ip addr add 192.0.2.1/24 dev up0 && ip -6 addr add 2001:db8:1::1/64 dev up0 nodad && "
        "ip addr add 10.20.0.1/24 dev lan0 && "
        "ip link set up0 up && ip link set up1 up && ip link set lan0 up && ip link set lan1 up && "
        "ip route add 198.51.100.0/24 via 192.0.2.2 dev up0");
    ASSERT_EQ(setup.exit_code, 0) << setup.output;
    auto created = NetlinkRouteBackend::create();
    ASSERT_TRUE(created.ok()) << created.error().message;
    backend_ = std::move(created.value());
  }

  static std::string ipLinkShow(const std::string& ifname) {
    return runCommand("ip link show dev " + ifname).output;
  }

  bool linkUp(const std::string& ifname) {
    auto up = backend_->isLinkUp(ifname);
    EXPECT_TRUE(up.ok()) << up.error().message;
    return up.ok() && up.value();
  }

  std::string outputInterface(const char* destination) {
    auto name = backend_->outputInterfaceTo(prefix(destination));
    EXPECT_TRUE(name.ok()) << destination << ": " << name.error().message;
    return name.ok() ? name.value() : "<error>";
  }

  std::unique_ptr<NetlinkRouteBackend> backend_;
};

TEST_F(NetlinkLinkTest, SetsTheLinkDownAndUpAgain) {
  EXPECT_TRUE(linkUp("up0"));

  ASSERT_TRUE(backend_->setLinkUp("up0", false).ok());
  EXPECT_FALSE(linkUp("up0"));
  std::string shown = ipLinkShow("up0");
  EXPECT_FALSE(hasFlag(ipLinkFlags(shown), "UP")) << shown;
  EXPECT_TRUE(contains(shown, " state DOWN ")) << shown;
  // Only that interface: its peer and the LAN leg stay administratively up.
  EXPECT_TRUE(hasFlag(ipLinkFlags(ipLinkShow("up1")), "UP")) << ipLinkShow("up1");
  EXPECT_TRUE(linkUp("lan0"));

  ASSERT_TRUE(backend_->setLinkUp("up0", true).ok());
  EXPECT_TRUE(linkUp("up0"));
  shown = ipLinkShow("up0");
  EXPECT_TRUE(hasFlag(ipLinkFlags(shown), "UP")) << shown;
  EXPECT_FALSE(contains(shown, " state DOWN ")) << shown;
}

TEST_F(NetlinkLinkTest, SeesAForeignChange) {
  ASSERT_EQ(runCommand("ip link set up0 down").exit_code, 0);
  EXPECT_FALSE(linkUp("up0"));
  ASSERT_EQ(runCommand("ip link set up0 up").exit_code, 0);
  EXPECT_TRUE(linkUp("up0"));
}

TEST_F(NetlinkLinkTest, ChangesOnlyTheUpFlag) {
  ASSERT_EQ(runCommand("ip link set up0 promisc on && ip link set up0 multicast off").exit_code, 0);
  ASSERT_TRUE(backend_->setLinkUp("up0", false).ok());
  ASSERT_TRUE(backend_->setLinkUp("up0", true).ok());
  const auto flags = ipLinkFlags(ipLinkShow("up0"));
  EXPECT_TRUE(hasFlag(flags, "UP")) << ipLinkShow("up0");
  EXPECT_TRUE(hasFlag(flags, "PROMISC")) << ipLinkShow("up0");
  EXPECT_FALSE(hasFlag(flags, "MULTICAST")) << ipLinkShow("up0");
}

TEST_F(NetlinkLinkTest, HoldingTheStateEmitsNoUpDownEvent) {
  const unsigned int up0 = if_nametoindex("up0");
  ASSERT_NE(up0, 0u);
  LinkUpEventMonitor monitor;
  ASSERT_TRUE(monitor.open());

  ASSERT_TRUE(backend_->setLinkUp("up0", true).ok());
  EXPECT_EQ(monitor.drain(up0), 0);
  ASSERT_TRUE(backend_->setLinkUp("up0", false).ok());
  EXPECT_GE(monitor.drain(up0), 1);  // the monitor does see a real change
  ASSERT_TRUE(backend_->setLinkUp("up0", false).ok());
  EXPECT_EQ(monitor.drain(up0), 0);
  EXPECT_FALSE(linkUp("up0"));
}

TEST_F(NetlinkLinkTest, UnknownInterfaceIsNotFound) {
  const Status set = backend_->setLinkUp("nosuch0", false);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(contains(set.error().message, "\"nosuch0\"")) << set.error().message;

  const auto read = backend_->isLinkUp("nosuch0");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(contains(read.error().message, "\"nosuch0\"")) << read.error().message;
}

TEST_F(NetlinkLinkTest, NameNoInterfaceCanHaveIsInvalid) {
  for (const std::string& name : {std::string(), std::string(16, 'a'), std::string("up\0", 3)}) {
    const Status set = backend_->setLinkUp(name, false);
    ASSERT_FALSE(set.ok());
    EXPECT_EQ(set.error().code, ErrorCode::kInvalidArgument) << set.error().message;
    const auto read = backend_->isLinkUp(name);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.error().code, ErrorCode::kInvalidArgument) << read.error().message;
  }
  EXPECT_TRUE(linkUp("up0"));
}

TEST_F(NetlinkLinkTest, OutputInterfaceIsWhatIpRouteGetSays) {
  ASSERT_EQ(runCommand("ip route add default via 10.20.0.2 dev lan0").exit_code, 0);
  struct Case {
    const char* destination;
    const char* address;  // the first address of `destination`, for `ip route get`
    const char* device;
  };
  const Case cases[] = {
      {"198.51.100.0/24", "198.51.100.0", "up0"},  // via a gateway on the uplink
      {"198.51.100.77", "198.51.100.77", "up0"},
      {"192.0.2.0/24", "192.0.2.0", "up0"},  // connected
      {"10.20.0.9", "10.20.0.9", "lan0"},
      {"203.0.113.0/24", "203.0.113.0", "lan0"},  // the default route
      {"2001:db8:1::/64", "2001:db8:1::", "up0"},
      {"2001:db8:1::42", "2001:db8:1::42", "up0"},
      {"192.0.2.1", "192.0.2.1", "lo"},  // the host's own address
  };
  for (const Case& c : cases) {
    EXPECT_EQ(outputInterface(c.destination), c.device) << c.destination;
    const auto get = runCommand(std::string("ip route get ") + c.address);
    EXPECT_TRUE(contains(get.output, std::string("dev ") + c.device + " "))
        << c.address << ": " << get.output;
  }
}

TEST_F(NetlinkLinkTest, NoRouteIsEmpty) {
  ASSERT_EQ(runCommand("ip route add unreachable 10.66.0.0/16 && "
                       "ip route add prohibit 10.67.0.0/16 && "
                       "ip -6 route add unreachable 2001:db8:66::/48")
                .exit_code,
            0);
  EXPECT_EQ(outputInterface("203.0.113.0/24"), "");  // no default route here
  EXPECT_EQ(outputInterface("2001:db8:99::/64"), "");
  EXPECT_EQ(outputInterface("10.66.1.1"), "");
  EXPECT_EQ(outputInterface("10.67.0.0/16"), "");
  EXPECT_EQ(outputInterface("2001:db8:66::1"), "");
  // `ip` agrees that these have no route.
  EXPECT_NE(runCommand("ip route get 203.0.113.0").exit_code, 0);
  EXPECT_NE(runCommand("ip route get 10.66.1.1").exit_code, 0);
}

TEST_F(NetlinkLinkTest, BlackholeIsAnErrorNotNoRoute) {
  ASSERT_EQ(runCommand("ip route add blackhole 10.68.0.0/16 && "
                       "ip -6 route add blackhole 2001:db8:68::/48")
                .exit_code,
            0);
  for (const char* destination : {"10.68.0.0/16", "2001:db8:68::1"}) {
    const auto name = backend_->outputInterfaceTo(prefix(destination));
    ASSERT_FALSE(name.ok()) << destination << " -> \"" << name.value() << "\"";
    EXPECT_EQ(name.error().code, ErrorCode::kKernel);
    EXPECT_TRUE(contains(name.error().message, "route lookup for ")) << name.error().message;
  }
}

TEST_F(NetlinkLinkTest, LookupFollowsTheKernelAsItIsNow) {
  // With the uplink down the kernel drops the routes through it: a caller that must keep a path
  // off a link asks before setting it down.
  EXPECT_EQ(outputInterface("198.51.100.0/24"), "up0");
  ASSERT_TRUE(backend_->setLinkUp("up0", false).ok());
  EXPECT_EQ(outputInterface("198.51.100.0/24"), "");
  EXPECT_EQ(outputInterface("10.20.0.0/24"), "lan0");
}

}  // namespace
}  // namespace shadan::agent

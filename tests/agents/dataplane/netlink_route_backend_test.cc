// Integration tests of NetlinkRouteBackend against the real kernel. main() moves the process into
// a fresh network namespace first (see below); without root every test is skipped.

#include "agents/dataplane/netlink_route_backend.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace shadan {
namespace {

// Set by main() once the process lives in a namespace of its own; nothing touches the kernel
// unless it is true.
bool g_private_netns = false;

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

// Runs `command` through /bin/sh; the child inherits our (private) network namespace.
CommandResult runCommand(const std::string& command) {
  struct PipeCloser {
    void operator()(FILE* pipe) const { (void)pclose(pipe); }
  };
  CommandResult result;
  FILE* raw = popen((command + " 2>&1").c_str(), "r");
  if (raw == nullptr) return result;
  std::unique_ptr<FILE, PipeCloser> pipe(raw);
  char chunk[4096];
  size_t n = 0;
  while ((n = std::fread(chunk, 1, sizeof chunk, pipe.get())) > 0) result.output.append(chunk, n);
  const int status = pclose(pipe.release());
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

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

class NetlinkRouteBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!g_private_netns) GTEST_SKIP() << "needs root (runs in a private network namespace)";
    // The namespace is ours alone: start every test with an empty main table. (A fresh
    // namespace has no IPv4 main table yet, and flushing it then fails: check the result.)
    (void)runCommand("ip route flush table main; ip -6 route flush table main");
    ASSERT_EQ(runCommand("ip route show table main; ip -6 route show table main").output, "");
    auto created = NetlinkRouteBackend::create();
    ASSERT_TRUE(created.ok()) << created.error().message;
    backend_ = std::move(created.value());
  }

  std::vector<IpPrefix> listed() {
    auto ours = backend_->list();
    EXPECT_TRUE(ours.ok()) << ours.error().message;
    return ours.ok() ? ours.value() : std::vector<IpPrefix>{};
  }

  static std::string ourRoutes() {
    return runCommand("ip route show proto 83; ip -6 route show proto 83").output;
  }

  std::unique_ptr<NetlinkRouteBackend> backend_;
};

TEST_F(NetlinkRouteBackendTest, SyncAddsBlackholesForBothFamilies) {
  const auto desired =
      prefixes({"fd00:20::/48", "10.30.1.0/24", "10.20.0.0/16", "10.99.0.10", "fd00:21::1"});
  ASSERT_TRUE(backend_->sync(desired).ok());

  EXPECT_EQ(listed(),
            prefixes({"10.20.0.0/16", "10.30.1.0/24", "10.99.0.10", "fd00:20::/48", "fd00:21::1"}));
  const std::string v4 = runCommand("ip route show proto 83").output;
  EXPECT_TRUE(contains(v4, "blackhole 10.20.0.0/16")) << v4;
  EXPECT_TRUE(contains(v4, "blackhole 10.30.1.0/24")) << v4;
  EXPECT_TRUE(contains(v4, "blackhole 10.99.0.10")) << v4;
  const std::string v6 = runCommand("ip -6 route show proto 83").output;
  EXPECT_TRUE(contains(v6, "blackhole fd00:20::/48")) << v6;
  EXPECT_TRUE(contains(v6, "blackhole fd00:21::1")) << v6;
  // Main table only: `ip` names the table of every route outside main.
  const std::string all_tables =
      runCommand("ip route show table all proto 83; ip -6 route show table all proto 83").output;
  EXPECT_TRUE(contains(all_tables, "blackhole 10.20.0.0/16")) << all_tables;
  EXPECT_FALSE(contains(all_tables, "table")) << all_tables;
}

TEST_F(NetlinkRouteBackendTest, SecondSyncIsIdempotent) {
  const auto desired = prefixes({"10.20.0.0/16", "fd00:20::/48"});
  ASSERT_TRUE(backend_->sync(desired).ok());
  const std::string first = ourRoutes();
  ASSERT_TRUE(backend_->sync(desired).ok());
  EXPECT_EQ(ourRoutes(), first);
  EXPECT_EQ(listed(), desired);
  // Duplicates in the input are one route.
  ASSERT_TRUE(backend_->sync(prefixes({"10.20.0.0/16", "10.20.0.0/16", "fd00:20::/48"})).ok());
  EXPECT_EQ(ourRoutes(), first);
}

TEST_F(NetlinkRouteBackendTest, SyncRemovesOursThatAreNoLongerDesired) {
  ASSERT_TRUE(backend_->sync(prefixes({"10.20.0.0/16", "10.21.0.0/16", "fd00:20::/48"})).ok());
  ASSERT_TRUE(backend_->sync(prefixes({"10.21.0.0/16"})).ok());
  EXPECT_EQ(listed(), prefixes({"10.21.0.0/16"}));
  ASSERT_TRUE(backend_->sync({}).ok());
  EXPECT_TRUE(listed().empty());
  EXPECT_EQ(ourRoutes(), "");
}

TEST_F(NetlinkRouteBackendTest, RoutesTaggedWithOurProtocolByOthersAreOurs) {
  // e.g. left behind by a previous agent process.
  ASSERT_EQ(runCommand("ip route add blackhole 10.40.0.0/16 proto 83").exit_code, 0);
  EXPECT_EQ(listed(), prefixes({"10.40.0.0/16"}));
  ASSERT_TRUE(backend_->sync({}).ok());
  EXPECT_EQ(ourRoutes(), "");
}

TEST_F(NetlinkRouteBackendTest, ForeignRoutesAreNeverTouched) {
  ASSERT_EQ(runCommand("ip route add blackhole 10.77.0.0/16").exit_code, 0);  // proto boot
  ASSERT_EQ(runCommand("ip route add blackhole 10.78.0.0/16 proto static").exit_code, 0);
  ASSERT_EQ(runCommand("ip route add unreachable 10.79.0.0/16 proto 84").exit_code, 0);
  ASSERT_EQ(runCommand("ip -6 route add blackhole fd00:77::/48").exit_code, 0);
  // Our protocol, but not a blackhole: not ours to remove.
  ASSERT_EQ(runCommand("ip route add prohibit 10.80.0.0/16 proto 83").exit_code, 0);
  const std::string all_before =
      runCommand("ip route show table main; ip -6 route show table main").output;

  ASSERT_TRUE(backend_->sync(prefixes({"10.20.0.0/16", "fd00:20::/48"})).ok());
  EXPECT_EQ(listed(), prefixes({"10.20.0.0/16", "fd00:20::/48"}));
  ASSERT_TRUE(backend_->sync({}).ok());
  EXPECT_TRUE(listed().empty());
  EXPECT_EQ(runCommand("ip route show table main; ip -6 route show table main").output, all_before);
}

TEST_F(NetlinkRouteBackendTest, DesiredPrefixHeldByForeignRouteIsReportedAndLeftAlone) {
  ASSERT_EQ(runCommand("ip route add blackhole 10.77.0.0/16").exit_code, 0);  // proto boot
  const std::string foreign_before = runCommand("ip route show 10.77.0.0/16").output;

  const Status status = backend_->sync(prefixes({"10.20.0.0/16", "10.77.0.0/16"}));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kKernel);
  EXPECT_TRUE(contains(status.error().message, "10.77.0.0/16")) << status.error().message;
  EXPECT_TRUE(contains(status.error().message, "added 10.20.0.0/16")) << status.error().message;
  // The rest was still applied (isolation is the fail-safe direction); the foreign route is
  // exactly as it was.
  EXPECT_EQ(listed(), prefixes({"10.20.0.0/16"}));
  EXPECT_EQ(runCommand("ip route show 10.77.0.0/16").output, foreign_before);
  EXPECT_TRUE(contains(foreign_before, "blackhole 10.77.0.0/16")) << foreign_before;
  EXPECT_FALSE(contains(foreign_before, "proto")) << foreign_before;  // boot is not printed
}

TEST_F(NetlinkRouteBackendTest, OursAndForeignCanShareAPrefixWithDifferentMetrics) {
  ASSERT_EQ(runCommand("ip route add blackhole 10.50.0.0/16 metric 100").exit_code, 0);
  ASSERT_TRUE(backend_->sync(prefixes({"10.50.0.0/16"})).ok());
  EXPECT_EQ(listed(), prefixes({"10.50.0.0/16"}));
  ASSERT_TRUE(backend_->sync({}).ok());
  const std::string left = runCommand("ip route show 10.50.0.0/16").output;
  EXPECT_TRUE(contains(left, "metric 100")) << left;
  EXPECT_TRUE(listed().empty());
}

}  // namespace
}  // namespace shadan

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Before anything opens a netlink socket: every route these tests create lives in this
  // namespace and vanishes with the process.
  if (geteuid() == 0) {
    if (unshare(CLONE_NEWNET) == 0) {
      shadan::g_private_netns = true;
    } else {
      std::fprintf(stderr, "unshare(CLONE_NEWNET) failed: %s; kernel tests skipped\n",
                   std::strerror(errno));
    }
  }
  return RUN_ALL_TESTS();
}

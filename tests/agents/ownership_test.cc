// The daemon serves the questions "who owns this gateway?": however many are asked, each asker
// learns the daemon's pid (the queue of its gateway lock never fills). No root.

#include "agents/ownership.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

namespace shadan::agent {
namespace {

using namespace std::chrono_literals;

TEST(OwnershipTest, EveryAskerLearnsTheDaemonsPid) {
  const std::string table = "test-ownership-" + std::to_string(::getpid());
  auto lock = GatewayLock::acquire(table, GatewayLock::Role::kDaemon, 0ms);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  boost::asio::io_context io;
  const auto served = serveOwnerQueries(io, *lock);
  ASSERT_TRUE(served);
  for (int i = 0; i < 64; ++i) {
    const GatewayOwner owner = GatewayLock::holder(table);
    EXPECT_TRUE(owner.daemon);
    EXPECT_EQ(owner.pid, ::getpid()) << "query " << i;
    io.poll();  // the daemon's loop takes the connection off the queue
  }
}

TEST(OwnershipTest, TheOwnerMarkNamesTheStateDirectoryAbsoluteAndNormal) {
  const std::string cwd = std::filesystem::current_path().string();
  EXPECT_EQ(agentOwnerMark("gw", "state/./x/"),
            "shadan-agent gateway=gw state=" + cwd + "/state/x");
  EXPECT_EQ(agentOwnerMark("gw", "/var/lib/shadan"), agentOwnerMark("gw", "/var/lib//shadan/"));
}

}  // namespace
}  // namespace shadan::agent

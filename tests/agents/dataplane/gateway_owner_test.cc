// The gateway lock: abstract UNIX socket names are per network namespace, so two locks of one
// name in this process meet exactly as two agent processes on one gateway would. No root; each
// test uses a table name of its own so that nothing else on the machine can hold it.

#include "agents/dataplane/gateway_owner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace shadan::agent {
namespace {

using namespace std::chrono_literals;

std::string uniqueTable(const char* what) {
  return std::string("test-") + what + "-" + std::to_string(::getpid());
}

TEST(GatewayLockTest, ADaemonHolderIsRefusedAtOnceAndNamedByPid) {
  const std::string table = uniqueTable("daemon");
  auto daemon = GatewayLock::acquire(table, GatewayLock::Role::kDaemon, 0ms);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message;

  const auto start = std::chrono::steady_clock::now();
  auto second = GatewayLock::acquire(table, GatewayLock::Role::kCommand, 60s);
  ASSERT_FALSE(second.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);  // not the 60 s wait
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(second.error().message.find("daemon (pid " + std::to_string(::getpid())),
            std::string::npos)
      << second.error().message;

  const GatewayOwner owner = GatewayLock::holder(table);
  EXPECT_TRUE(owner.daemon);
  EXPECT_EQ(owner.pid, ::getpid());
}

// Nobody takes the askers' connections off this lock's queue: once it is full, asking must still
// answer at once ("a daemon", pid unknown) instead of blocking in connect() for good.
TEST(GatewayLockTest, AskingNeverBlocksOnAFullQueue) {
  const std::string table = uniqueTable("queue");
  auto daemon = GatewayLock::acquire(table, GatewayLock::Role::kDaemon, 0ms);
  ASSERT_TRUE(daemon.ok()) << daemon.error().message;
  for (int i = 0; i < 64; ++i) {
    const GatewayOwner owner = GatewayLock::holder(table);
    ASSERT_TRUE(owner.daemon) << "query " << i;
  }
  auto refused = GatewayLock::acquire(table, GatewayLock::Role::kCommand, 0ms);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("the shadan-agent daemon"), std::string::npos)
      << refused.error().message;
}

TEST(GatewayLockTest, ACommandHolderIsWaitedForThenNamedAsACommand) {
  const std::string table = uniqueTable("command");
  auto command = GatewayLock::acquire(table, GatewayLock::Role::kCommand, 0ms);
  ASSERT_TRUE(command.ok()) << command.error().message;
  auto second = GatewayLock::acquire(table, GatewayLock::Role::kDaemon, 50ms);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("another shadan-agent command"), std::string::npos)
      << second.error().message;
  EXPECT_FALSE(GatewayLock::holder(table).daemon);
}

TEST(GatewayLockTest, ReleasedWithItsHolder) {
  const std::string table = uniqueTable("release");
  {
    auto first = GatewayLock::acquire(table, GatewayLock::Role::kDaemon, 0ms);
    ASSERT_TRUE(first.ok()) << first.error().message;
    GatewayLock moved = std::move(first).value();  // moving keeps it held
    EXPECT_FALSE(GatewayLock::acquire(table, GatewayLock::Role::kCommand, 0ms).ok());
  }
  auto again = GatewayLock::acquire(table, GatewayLock::Role::kCommand, 0ms);
  EXPECT_TRUE(again.ok()) << again.error().message;
}

TEST(GatewayLockTest, OtherTablesAreOtherLocks) {
  auto a = GatewayLock::acquire(uniqueTable("a"), GatewayLock::Role::kDaemon, 0ms);
  auto b = GatewayLock::acquire(uniqueTable("b"), GatewayLock::Role::kDaemon, 0ms);
  EXPECT_TRUE(a.ok());
  EXPECT_TRUE(b.ok());
}

}  // namespace
}  // namespace shadan::agent

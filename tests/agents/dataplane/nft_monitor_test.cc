// Integration tests of NftMonitor against the real kernel: `nft` runs as a child process and the
// monitor must report its transactions. main() moves the process into a private network namespace
// first and every test then starts in a fresh one of its own (nf_tables rulesets are per
// namespace); without root every test is skipped.

#include "agents/dataplane/nft_monitor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/private_netns.h"

namespace shadan::agent {
namespace {

struct Child {
  pid_t pid = -1;
  int exit_code = -1;
};

// Runs `nft args...` as a direct child (fork + exec, no shell), so the pid the kernel reports for
// its commit is the one fork returned. Waits for it: the kernel has queued the transaction's
// notifications before nft gets its ack, so they are readable once it exits.
Child runNft(std::vector<std::string> args) {
  std::string program = "nft";
  std::vector<char*> argv{program.data()};
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  Child child;
  child.pid = fork();
  if (child.pid == 0) {
    execvp("nft", argv.data());
    _exit(127);
  }
  if (child.pid < 0) return child;
  int status = 0;
  while (waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
  }
  child.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return child;
}

bool hasKind(const NftChangeEvent& event, const std::string& kind) {
  return std::find(event.kinds.begin(), event.kinds.end(), kind) != event.kinds.end();
}

class NftMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test_support::inPrivateNetns())
      GTEST_SKIP() << "needs root (runs in a private network namespace)";
    // A fresh, empty ruleset per test: nothing one test leaves behind reaches the next.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    monitor_ = open(NftMonitorOptions{});
    ASSERT_NE(monitor_, nullptr);
  }

  static std::unique_ptr<NftMonitor> open(const NftMonitorOptions& options) {
    auto opened = NftMonitor::open(options);
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    return opened.ok() ? std::move(opened.value()) : nullptr;
  }

  static std::vector<NftChangeEvent> drain(NftMonitor& monitor) {
    auto events = monitor.drain();
    EXPECT_TRUE(events.ok()) << events.error().message;
    return events.ok() ? events.value() : std::vector<NftChangeEvent>{};
  }

  // Runs nft and returns the one event its transaction must produce.
  NftChangeEvent expectOneEvent(std::vector<std::string> args) {
    const Child child = runNft(args);
    EXPECT_EQ(child.exit_code, 0);
    const std::vector<NftChangeEvent> events = drain(*monitor_);
    EXPECT_EQ(events.size(), 1u);
    if (events.size() != 1) return NftChangeEvent{};
    EXPECT_FALSE(events[0].lost);
    EXPECT_EQ(events[0].pid, static_cast<uint32_t>(child.pid));
    EXPECT_EQ(events[0].comm, "nft");
    return events[0];
  }

  uint32_t currentGeneration() {
    auto generation = monitor_->currentGeneration();
    EXPECT_TRUE(generation.ok()) << generation.error().message;
    return generation.ok() ? generation.value() : 0;
  }

  std::unique_ptr<NftMonitor> monitor_;
};

TEST_F(NftMonitorTest, FdIsNonBlockingAndIdleDrainIsEmpty) {
  const int flags = fcntl(monitor_->fd(), F_GETFL);
  ASSERT_GE(flags, 0);
  EXPECT_NE(flags & O_NONBLOCK, 0);
  EXPECT_TRUE(drain(*monitor_).empty());
}

TEST_F(NftMonitorTest, AddingOurTableIsReportedWithTheCommitter) {
  const NftChangeEvent event = expectOneEvent({"add", "table", "inet", "shadan"});
  EXPECT_TRUE(event.touched_our_table);
  EXPECT_FALSE(event.deleted_our_table);
  EXPECT_EQ(event.kinds, std::vector<std::string>{"newtable"});
  EXPECT_EQ(currentGeneration(), event.gen_id);
}

TEST_F(NftMonitorTest, FlushRulesetDeletesOurTable) {
  const NftChangeEvent added = expectOneEvent({"add", "table", "inet", "shadan"});
  const NftChangeEvent chain = expectOneEvent(
      {"add", "chain", "inet", "shadan", "input", "{ type filter hook input priority 0; }"});
  EXPECT_TRUE(chain.touched_our_table);
  const NftChangeEvent rule = expectOneEvent({"add", "rule", "inet", "shadan", "input", "drop"});
  EXPECT_TRUE(rule.touched_our_table);
  EXPECT_TRUE(hasKind(rule, "newrule"));
  EXPECT_GT(rule.gen_id, added.gen_id);

  const NftChangeEvent flushed = expectOneEvent({"flush", "ruleset"});
  EXPECT_TRUE(flushed.touched_our_table);
  EXPECT_TRUE(flushed.deleted_our_table);
  EXPECT_TRUE(hasKind(flushed, "deltable"));
  EXPECT_TRUE(hasKind(flushed, "delchain"));
  EXPECT_GT(flushed.gen_id, rule.gen_id);
  EXPECT_EQ(currentGeneration(), flushed.gen_id);
}

TEST_F(NftMonitorTest, DeletingRulesOfOursTouchesButDoesNotDeleteTheTable) {
  (void)expectOneEvent({"add", "table", "inet", "shadan"});
  (void)expectOneEvent({"add", "chain", "inet", "shadan", "input"});
  (void)expectOneEvent({"add", "rule", "inet", "shadan", "input", "counter"});
  const NftChangeEvent flushed = expectOneEvent({"flush", "chain", "inet", "shadan", "input"});
  EXPECT_TRUE(flushed.touched_our_table);
  EXPECT_FALSE(flushed.deleted_our_table);
  EXPECT_EQ(flushed.kinds, std::vector<std::string>{"delrule"});
}

TEST_F(NftMonitorTest, OtherTablesAreNotOurs) {
  const NftChangeEvent other = expectOneEvent({"add", "table", "inet", "other"});
  EXPECT_FALSE(other.touched_our_table);
  EXPECT_EQ(other.kinds, std::vector<std::string>{"newtable"});
  // Same name, another family.
  const NftChangeEvent ip = expectOneEvent({"add", "table", "ip", "shadan"});
  EXPECT_FALSE(ip.touched_our_table);
  EXPECT_GT(ip.gen_id, other.gen_id);
  EXPECT_EQ(currentGeneration(), ip.gen_id);

  // Flushing a ruleset without our table does not delete it either.
  const NftChangeEvent flushed = expectOneEvent({"flush", "ruleset"});
  EXPECT_FALSE(flushed.touched_our_table);
  EXPECT_FALSE(flushed.deleted_our_table);
  EXPECT_TRUE(hasKind(flushed, "deltable"));
}

TEST_F(NftMonitorTest, ConfiguredTableIsWatched) {
  NftMonitorOptions options;
  options.table_family = "ip";
  options.table_name = "custom";
  std::unique_ptr<NftMonitor> custom = open(options);
  ASSERT_NE(custom, nullptr);
  ASSERT_EQ(runNft({"add", "table", "ip", "custom"}).exit_code, 0);
  ASSERT_EQ(runNft({"add", "table", "inet", "shadan"}).exit_code, 0);
  const std::vector<NftChangeEvent> events = drain(*custom);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].touched_our_table);
  EXPECT_FALSE(events[1].touched_our_table);
  EXPECT_EQ(drain(*monitor_).size(), 2u);  // every subscriber gets every event
}

TEST_F(NftMonitorTest, UnknownFamilyIsRejected) {
  NftMonitorOptions options;
  options.table_family = "inet6";
  auto opened = NftMonitor::open(options);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(NftMonitorTest, GenerationOfAnUnchangedRulesetIsStable) {
  const uint32_t before = currentGeneration();
  EXPECT_EQ(currentGeneration(), before);
  const NftChangeEvent event = expectOneEvent({"add", "table", "inet", "other"});
  EXPECT_NE(event.gen_id, before);
  EXPECT_EQ(currentGeneration(), event.gen_id);
}

TEST_F(NftMonitorTest, OverflowIsReportedAsLostAndMonitoringContinues) {
  // The smallest receive buffer the kernel allows holds a notification or two; one transaction
  // of a few hundred rules, not drained while it runs, must overflow it.
  NftMonitorOptions options;
  options.receive_buffer_bytes = 1;
  std::unique_ptr<NftMonitor> tiny = open(options);
  ASSERT_NE(tiny, nullptr);

  const std::string script_path =
      "/tmp/shadan_nft_monitor_test_" + std::to_string(getpid()) + ".nft";
  {
    std::ofstream script(script_path);
    script << "table inet shadan {\n  chain input {\n";
    for (int i = 0; i < 400; ++i) script << "    tcp dport " << (1000 + i) << " drop\n";
    script << "  }\n}\n";
  }
  const Child child = runNft({"-f", script_path});
  std::remove(script_path.c_str());
  ASSERT_EQ(child.exit_code, 0);

  std::vector<NftChangeEvent> events = drain(*tiny);
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(std::any_of(events.begin(), events.end(),
                          [](const NftChangeEvent& event) { return event.lost; }));

  // The socket recovers: the next transaction is reported in full.
  const Child next = runNft({"add", "table", "inet", "other"});
  ASSERT_EQ(next.exit_code, 0);
  events = drain(*tiny);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].lost);
  EXPECT_EQ(events[0].pid, static_cast<uint32_t>(next.pid));
  EXPECT_FALSE(events[0].touched_our_table);
}

}  // namespace
}  // namespace shadan::agent

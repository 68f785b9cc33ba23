// The exit codes of shadan-agent, as documented (agents/agent_cli.h, docs/agent-cli.md), and
// the messages that go with them: usage errors in one line plus a pointer to the command's
// help, names listed where a name was wrong, "needs root", and the wait for a busy lock.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/agents/agent_cli_harness.h"

namespace shadan::agent {
namespace {

using testing::AgentCliHarness;
using testing::kLabPolicy;
using testing::withLab;

enum class Fault {
  kNone,
  kKernelRefuses,
  kNotRoot,
  kGatewayOwned,
  kDaemonSeesDrift,    // a daemon answers status: our table was changed
  kDaemonSeesOverdue,  // a daemon answers status: a deadline passed and nothing lifted it
};

struct ExitCase {
  std::vector<std::string> args;
  int expected;
  Fault fault = Fault::kNone;
};

class AgentCliExitCodesTest : public ::testing::Test {
 protected:
  // A policy file that parses as JSON but is not a valid policy.
  std::string invalidPolicy() {
    const auto path = std::filesystem::temp_directory_path() /
                      ("shadan-exit-codes-" + std::to_string(::getpid()) + ".json");
    std::ofstream(path) << R"({"shadan_policy": 1, "name": "x"})";
    temp_files_.push_back(path);
    return path.string();
  }

  void TearDown() override {
    for (const auto& path : temp_files_) std::filesystem::remove(path);
  }

  AgentCliHarness cli_;
  std::vector<std::filesystem::path> temp_files_;
};

// Every documented code at least once; each row a command line and the code it must give.
TEST_F(AgentCliExitCodesTest, EveryDocumentedCodeIsTheOneGiven) {
  const std::string invalid = invalidPolicy();
  const std::vector<ExitCase> cases = {
      // 0: done.
      {{"--help"}, kExitOk},
      {{"--version"}, kExitOk},
      {{"isolate", "--help"}, kExitOk},
      {withLab({"isolate", "office"}), kExitOk},
      {withLab({"restore", "--all", "--reason", "all clear"}), kExitOk},
      {withLab({"status"}), kExitOk},
      {{"plan", "office", "--policy", kLabPolicy, "--gateway", "gw"}, kExitOk},
      {{"policy", "check", kLabPolicy}, kExitOk},
      {{"policy", "check", kLabPolicy, "--gateway", "gw"}, kExitOk},
      {{"policy", "show", "--policy", kLabPolicy}, kExitOk},
      // 1: the kernel or the state failed; or the command needs root and has none.
      {withLab({"isolate", "office"}), kExitFailed, Fault::kKernelRefuses},
      {withLab({"status"}), kExitFailed, Fault::kNotRoot},
      {withLab({"isolate", "office"}), kExitFailed, Fault::kNotRoot},
      // 2: bad command line, including a missing required option.
      {{}, kExitUsage},
      {{"frobnicate"}, kExitUsage},
      {withLab({"isolate", "office", "--bogus"}), kExitUsage},
      {withLab({"isolate"}), kExitUsage},
      {withLab({"isolate", "office", "--ttl", "soon"}), kExitUsage},
      {{"isolate", "office", "--gateway", "gw", "--state-dir", "/s"}, kExitUsage},
      {{"isolate", "office", "--policy", kLabPolicy, "--state-dir", "/s"}, kExitUsage},
      {{"isolate", "office", "--policy", kLabPolicy, "--gateway", "gw"}, kExitUsage},
      {{"status", "--policy", kLabPolicy, "--gateway", "gw"}, kExitUsage},
      {{"plan", "--gateway", "gw"}, kExitUsage},
      {withLab({"status", "--log-level", "chatty"}), kExitUsage},
      {{"policy", "check"}, kExitUsage},
      {{"policy", "frobnicate"}, kExitUsage},
      // 3: the request is invalid for the policy, or the policy is unusable.
      {{"isolate", "office", "--policy", "/nonexistent/policy.json", "--gateway", "gw",
        "--state-dir", "/s"},
       kExitRejected},
      {{"status", "--policy", "/nonexistent/policy.json", "--gateway", "gw", "--state-dir", "/s"},
       kExitRejected},
      {{"isolate", "office", "--policy", invalid, "--gateway", "gw", "--state-dir", "/s"},
       kExitRejected},
      {{"isolate", "office", "--policy", kLabPolicy, "--gateway", "gw9", "--state-dir", "/s"},
       kExitRejected},
      {withLab({"isolate", "offfice"}), kExitRejected},
      {withLab({"isolate", "office", "--profile", "gentle"}), kExitRejected},
      {{"plan", "offfice", "--policy", kLabPolicy, "--gateway", "gw"}, kExitRejected},
      {{"policy", "check", invalid}, kExitRejected},
      {{"policy", "check", "/nonexistent/policy.json"}, kExitRejected},
      {{"policy", "check", kLabPolicy, "--gateway", "gw9"}, kExitRejected},
      // 4: busy: another agent owns the gateway.
      {withLab({"isolate", "office"}), kExitBusy, Fault::kGatewayOwned},
      {withLab({"restore", "--all", "--reason", "all clear"}), kExitBusy, Fault::kGatewayOwned},
      // 5, 6: status is not in sync, or a deadline is overdue.
      {withLab({"status"}), kExitDrift, Fault::kDaemonSeesDrift},
      {withLab({"status"}), kExitOverdue, Fault::kDaemonSeesOverdue},
  };
  std::set<int> seen;
  for (const auto& c : cases) {
    AgentCliHarness cli;
    cli.kernel_refuses = c.fault == Fault::kKernelRefuses;
    cli.net_admin = c.fault != Fault::kNotRoot;
    if (c.fault == Fault::kGatewayOwned) cli.gateway_owner = "owned by the daemon (pid 7)";
    if (c.fault == Fault::kDaemonSeesDrift || c.fault == Fault::kDaemonSeesOverdue) {
      nlohmann::json isolation = {{"segment", "office"}, {"profile", "full"}};
      if (c.fault == Fault::kDaemonSeesOverdue) isolation["overdue"] = true;
      cli.daemon_answer = nlohmann::json{
          {"ok", true},
          {"command", "status"},
          {"gateway", "gw"},
          {"isolations", nlohmann::json::array({isolation})},
          {"kernel", {{"state", c.fault == Fault::kDaemonSeesDrift ? "drift" : "in_sync"}}}};
    }
    std::string line;
    for (const auto& arg : c.args) line += arg + " ";
    const auto result = cli.run(c.args);
    EXPECT_EQ(result.code, c.expected) << line << "\n" << result.err;
    seen.insert(c.expected);
  }
  EXPECT_EQ(seen, (std::set<int>{kExitOk, kExitFailed, kExitUsage, kExitRejected, kExitBusy,
                                 kExitDrift, kExitOverdue}));
}

// A usage error is one line naming the mistake plus where to read more, never the whole usage.
TEST_F(AgentCliExitCodesTest, UsageErrorsAreOneLinePlusTheCommandsHelp) {
  struct Case {
    std::vector<std::string> args;
    std::string see;  // the second line
  };
  const std::vector<Case> cases = {
      {{}, "(see shadan-agent --help)"},
      {{"frobnicate"}, "(see shadan-agent --help)"},
      {{"--bogus"}, "(see shadan-agent --help)"},
      {withLab({"isolate", "office", "--bogus"}), "(see shadan-agent isolate --help)"},
      {{"--policy", kLabPolicy, "isolate", "--profile"}, "(see shadan-agent isolate --help)"},
      {withLab({"isolate"}), "(see shadan-agent isolate --help)"},
      {withLab({"restore"}), "(see shadan-agent restore --help)"},
      {withLab({"status", "office"}), "(see shadan-agent status --help)"},
      {withLab({"status", "--log-level", "chatty"}), "(see shadan-agent status --help)"},
      {{"status", "--policy", kLabPolicy, "--gateway", "gw"}, "(see shadan-agent status --help)"},
      {{"plan", "a", "b", "--policy", kLabPolicy, "--gateway", "gw"},
       "(see shadan-agent plan --help)"},
      {withLab({"verify"}), "(see shadan-agent verify --help)"},
      {withLab({"apply-file"}), "(see shadan-agent apply-file --help)"},
      {withLab({"run", "--controller", "nowhere"}), "(see shadan-agent run --help)"},
      {{"policy"}, "(see shadan-agent policy --help)"},
      {{"policy", "check"}, "(see shadan-agent policy --help)"},
      {{"policy", "show", "--state-dir", "/s"}, "(see shadan-agent policy --help)"},
  };
  for (const auto& c : cases) {
    const auto result = cli_.run(c.args);
    const std::string line = c.args.empty() ? "(nothing)" : c.args[0];
    EXPECT_EQ(result.code, kExitUsage) << line;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 2) << result.err;
    EXPECT_EQ(result.err.rfind("shadan-agent: ", 0), 0u) << result.err;
    EXPECT_NE(result.err.find("\n" + c.see + "\n"), std::string::npos) << result.err;
    EXPECT_EQ(result.out, "") << line;
  }
}

TEST_F(AgentCliExitCodesTest, UnknownNamesListTheValidOnes) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::string segments = "(segments: internet, mgmt, office, servers)";
  const std::string profiles =
      "(profiles: forensic, full, full-blackhole, internet-only, servers-only)";
  const std::vector<Case> cases = {
      {{"frobnicate"},
       "unknown command \"frobnicate\" (commands: run, check-config, init, isolate, restore, "
       "status, plan, "
       "verify, "
       "apply-file, policy)"},
      {withLab({"isolate", "offfice"}), "unknown segment \"offfice\" " + segments},
      {withLab({"restore", "offfice", "--reason", "r"}), "unknown segment \"offfice\" " + segments},
      {withLab({"isolate", "office", "--profile", "gentle"}),
       "unknown profile \"gentle\" " + profiles},
      {withLab({"restore", "office", "--profile", "gentle", "--reason", "r"}),
       "unknown profile \"gentle\" " + profiles},
      {{"plan", "offfice", "--policy", kLabPolicy, "--gateway", "gw"},
       "unknown segment \"offfice\" " + segments},
      {{"plan", "office", "--profile", "gentle", "--policy", kLabPolicy, "--gateway", "gw"},
       "unknown profile \"gentle\" " + profiles},
      {{"policy", "check", kLabPolicy, "--gateway", "gw9"}, "no gateway \"gw9\" (gateways: gw)"},
  };
  for (const auto& c : cases) {
    const auto result = cli_.run(c.args);
    EXPECT_NE(result.code, kExitOk) << c.expected;
    EXPECT_NE(result.err.find(c.expected), std::string::npos)
        << "expected \"" << c.expected << "\" in: " << result.err;
  }
}

// Without CAP_NET_ADMIN and no daemon to hand the command to, the command says it needs root
// before it touches the state directory or the kernel.
TEST_F(AgentCliExitCodesTest, WithoutNetAdminALocalCommandSaysItNeedsRoot) {
  cli_.net_admin = false;
  for (const auto& args : {withLab({"status"}), withLab({"isolate", "office"}),
                           withLab({"restore", "--all", "--reason", "r"})}) {
    const auto result = cli_.run(args);
    EXPECT_EQ(result.code, kExitFailed) << args[0];
    EXPECT_NE(result.err.find("shadan-agent: " + args[0] + ": needs root (CAP_NET_ADMIN)"),
              std::string::npos)
        << result.err;
  }
  EXPECT_EQ(cli_.state_opens, 0);
  EXPECT_EQ(cli_.firewall_opens, 0);

  // The offline commands need no root.
  EXPECT_EQ(cli_.run({"plan", "office", "--policy", kLabPolicy, "--gateway", "gw"}).code, kExitOk);
  EXPECT_EQ(cli_.run({"policy", "check", kLabPolicy}).code, kExitOk);

  // A daemon that answers does the work: no root needed to ask it.
  cli_.daemon_answer = nlohmann::json{{"ok", true},
                                      {"command", "status"},
                                      {"gateway", "gw"},
                                      {"policy", "lab"},
                                      {"isolations", nlohmann::json::array()},
                                      {"kernel", {{"state", "in_sync"}}}};
  const auto asked = cli_.run(withLab({"status"}));
  EXPECT_EQ(asked.code, kExitOk) << asked.err;
  EXPECT_EQ(asked.err.find("needs root"), std::string::npos) << asked.err;
}

// Another process holds the state directory: the command says once what it waits for and for
// how long (the wait it really applies), then goes on when the lock is free.
TEST_F(AgentCliExitCodesTest, ABusyLockIsWaitedForAndSaidOnce) {
  cli_.state_busy_for = 3;
  const auto result = cli_.run(withLab({"isolate", "office"}));
  EXPECT_EQ(result.code, kExitOk) << result.err;
  EXPECT_EQ(cli_.state_opens, 4);
  const std::string waiting =
      "shadan-agent: waiting for /nonexistent/state/lock (held by another shadan-agent "
      "process), up to " +
      std::to_string(kStateDirLockWait.count()) + " s\n";
  const auto first = result.err.find(waiting);
  ASSERT_NE(first, std::string::npos) << result.err;
  EXPECT_EQ(result.err.find(waiting, first + 1), std::string::npos) << result.err;
  EXPECT_EQ(kStateDirLockWait, std::chrono::seconds(10));  // as docs/agent-cli.md says
}

}  // namespace
}  // namespace shadan::agent

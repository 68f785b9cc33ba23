#include "agents/agent_cli.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agents/agent_cli_output.h"
#include "agents/planner/planner.h"
#include "tests/fakes/fake_backends.h"

namespace shadan::agent {
namespace {

using testing::FakeAuditSink;
using testing::FakeClock;
using testing::FakeConntrackBackend;
using testing::FakeFirewallBackend;
using testing::FakeRouteBackend;
using testing::FakeStateStore;

// The CLI owns what its factories return; these forward to fakes the test keeps.
class ForwardingFirewall : public FirewallBackend {
 public:
  explicit ForwardingFirewall(FirewallBackend& inner) : inner_(inner) {}
  Status apply(std::string_view script) override { return inner_.apply(script); }
  Result<TableSnapshot> readTable() override { return inner_.readTable(); }
  Result<std::string> listRuleset() override { return inner_.listRuleset(); }
  Result<nlohmann::json> listForeignRulesetJson() override {
    return inner_.listForeignRulesetJson();
  }

 private:
  FirewallBackend& inner_;
};

class ForwardingRoutes : public RouteBackend {
 public:
  explicit ForwardingRoutes(RouteBackend& inner) : inner_(inner) {}
  Status sync(const std::vector<IpPrefix>& desired) override { return inner_.sync(desired); }
  Result<std::vector<IpPrefix>> list() override { return inner_.list(); }
  Status setLinkUp(const std::string& ifname, bool up) override {
    return inner_.setLinkUp(ifname, up);
  }
  Result<bool> isLinkUp(const std::string& ifname) override { return inner_.isLinkUp(ifname); }
  Result<std::string> outputInterfaceTo(const IpPrefix& destination) override {
    return inner_.outputInterfaceTo(destination);
  }

 private:
  RouteBackend& inner_;
};

class ForwardingConntrack : public ConntrackBackend {
 public:
  explicit ForwardingConntrack(ConntrackBackend& inner) : inner_(inner) {}
  Result<size_t> deleteMatching(const std::vector<IpPrefix>& p) override {
    return inner_.deleteMatching(p);
  }
  Result<size_t> count(const std::vector<IpPrefix>& p) override { return inner_.count(p); }

 private:
  ConntrackBackend& inner_;
};

class ForwardingStore : public StateStore {
 public:
  explicit ForwardingStore(StateStore& inner) : inner_(inner) {}
  Result<DesiredState> load() override { return inner_.load(); }
  Status save(const DesiredState& state) override { return inner_.save(state); }
  Status rememberAck(int64_t seq, const std::string& envelope, int64_t at_ms,
                     int64_t keep_ms) override {
    return inner_.rememberAck(seq, envelope, at_ms, keep_ms);
  }
  Result<std::vector<StoredAck>> recentAcks(int64_t since_ms, size_t limit) override {
    return inner_.recentAcks(since_ms, limit);
  }

 private:
  StateStore& inner_;
};

const std::string kLabPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";

class AgentCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.open_firewall = [this]() -> Result<FirewallBackendPtr> {
      ++firewall_opens_;
      if (kernel_unavailable_) return makeError(ErrorCode::kKernel, "no netlink here");
      return FirewallBackendPtr(std::make_unique<ForwardingFirewall>(firewall_));
    };
    env_.open_routes = [this]() -> Result<RouteBackendPtr> {
      return RouteBackendPtr(std::make_unique<ForwardingRoutes>(routes_));
    };
    env_.open_conntrack = [this]() -> Result<ConntrackBackendPtr> {
      return ConntrackBackendPtr(std::make_unique<ForwardingConntrack>(conntrack_));
    };
    env_.open_audit = [this](const std::filesystem::path&,
                             const std::string&) -> Result<AgentEnvironment::AuditHandle> {
      return AgentEnvironment::AuditHandle{
          std::shared_ptr<AuditSink>(&audit_, [](AuditSink*) {}),
          std::shared_ptr<const Signer>(&agent_key_, [](const Signer*) {})};
    };
    env_.open_state = [this](const std::filesystem::path& dir) -> Result<StateStorePtr> {
      opened_state_dir_ = dir;
      return StateStorePtr(std::make_unique<ForwardingStore>(store_));
    };
    env_.ask_daemon = [this](
                          const std::filesystem::path&,
                          const ControlRequest& request) -> Result<std::optional<nlohmann::json>> {
      daemon_requests_.push_back(request.toJson());
      if (daemon_answer_) return std::optional<nlohmann::json>(*daemon_answer_);
      return std::optional<nlohmann::json>();
    };
    env_.claim_gateway = [this]() -> Result<std::shared_ptr<void>> {
      ++gateway_claims_;
      if (gateway_owner_) return makeError(ErrorCode::kUnavailable, *gateway_owner_);
      return std::shared_ptr<void>(std::make_shared<int>(0));
    };
    // No defaults from this machine's /etc/shadan or /var/lib/shadan: every test names its own.
    env_.defaults = AgentDefaults{"", "", {}};
    env_.create_state = [this](const std::filesystem::path& dir) -> Result<StateStorePtr> {
      created_state_dir_ = dir;
      return StateStorePtr(std::make_unique<ForwardingStore>(store_));
    };
    env_.uid = 1000;
    env_.sudo_user = "sato";
    env_.confirm = [this](const std::string& question) {
      questions_.push_back(question);
      return confirm_answer_;
    };
    env_.run_daemon = [this](const DaemonOptions& options) {
      daemon_options_ = options;
      return 0;
    };
    env_.clock = &clock_;
    env_.out = &out_;
    env_.err = &err_;
  }

  // Runs the CLI with the standard --policy/--gateway/--state-dir appended.
  int run(std::vector<std::string> args, bool with_common = true) {
    out_.str("");
    err_.str("");
    if (with_common) {
      for (const char* a : {"--policy", kLabPolicy.c_str(), "--gateway", "gw", "--state-dir",
                            "/nonexistent/state"}) {
        args.emplace_back(a);
      }
    }
    return runAgentCli(args, env_);
  }

  std::string writeTempPolicy(const std::string& text) {
    const auto path = std::filesystem::temp_directory_path() /
                      ("shadan-cli-test-" + std::to_string(::getpid()) + ".json");
    std::ofstream(path) << text;
    temp_files_.push_back(path);
    return path.string();
  }

  void TearDown() override {
    for (const auto& path : temp_files_) std::filesystem::remove_all(path);
  }

  FakeFirewallBackend firewall_;
  FakeRouteBackend routes_;
  FakeStateStore store_;
  FakeClock clock_;
  FakeConntrackBackend conntrack_;
  FakeAuditSink audit_;
  Ed25519Signer agent_key_{Ed25519KeyPair::generate()};
  AgentEnvironment env_;
  std::ostringstream out_;
  std::ostringstream err_;
  int firewall_opens_ = 0;
  bool kernel_unavailable_ = false;
  std::filesystem::path opened_state_dir_;
  std::vector<nlohmann::json> daemon_requests_;
  std::optional<nlohmann::json> daemon_answer_;
  std::optional<DaemonOptions> daemon_options_;
  // The gateway lock: how often a command took it, and the owner that holds it (refused).
  int gateway_claims_ = 0;
  std::filesystem::path created_state_dir_;
  // The confirmation prompt: questions asked, and the operator's answer.
  std::vector<std::string> questions_;
  bool confirm_answer_ = false;
  std::optional<std::string> gateway_owner_;
  std::vector<std::filesystem::path> temp_files_;
};

TEST_F(AgentCliTest, HelpPrintsUsageAndSucceeds) {
  EXPECT_EQ(run({"--help"}, false), kExitOk);
  EXPECT_NE(out_.str().find("usage: shadan-agent"), std::string::npos);
  EXPECT_NE(out_.str().find("restore --all"), std::string::npos);
}

TEST_F(AgentCliTest, NoCommandIsAUsageError) {
  EXPECT_EQ(run({}, false), kExitUsage);
  EXPECT_NE(err_.str().find("usage:"), std::string::npos);
}

TEST_F(AgentCliTest, BadCommandLinesAreNamed) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"isolate", "office", "--bogus"}, "unknown option --bogus"},
      {{"isolate", "office", "--profile"}, "--profile needs a value"},
      {{"isolate", "office", "--profile=full", "--profile=full"}, "--profile given twice"},
      {{"frobnicate"}, "unknown command \"frobnicate\""},
      {{"isolate"}, "isolate takes exactly one SEGMENT"},
      {{"isolate", "office", "servers"}, "isolate takes exactly one SEGMENT"},
      {{"restore"}, "restore takes exactly one SEGMENT, or --all"},
      {{"restore", "office", "--all"}, "restore takes exactly one SEGMENT, or --all"},
      {{"status", "office"}, "status takes no arguments"},
      {{"isolate", "office", "--json=yes"}, "--json takes no value"},
      {{"status", "--log-level", "chatty"}, "--log-level must be one of"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(run(c.args, false), kExitUsage) << c.expected;
    EXPECT_NE(err_.str().find(c.expected), std::string::npos)
        << "expected \"" << c.expected << "\" in: " << err_.str();
    EXPECT_TRUE(firewall_.scripts.empty());
  }
}

TEST_F(AgentCliTest, MissingRequiredOptionsAreNamed) {
  EXPECT_EQ(run({"isolate", "office", "--gateway", "gw", "--state-dir", "/x"}, false), kExitUsage);
  EXPECT_NE(err_.str().find("--policy is required"), std::string::npos);
  EXPECT_EQ(run({"isolate", "office", "--policy", kLabPolicy, "--gateway", "gw"}, false),
            kExitUsage);
  EXPECT_NE(err_.str().find("--state-dir is required"), std::string::npos);
}

TEST_F(AgentCliTest, IsolatePersistsThenApplies) {
  ASSERT_EQ(run({"isolate", "office"}), kExitOk) << err_.str();
  EXPECT_EQ(opened_state_dir_, "/nonexistent/state");
  ASSERT_EQ(store_.state.isolations.size(), 1u);
  EXPECT_EQ(store_.state.isolations[0].isolation, (Isolation{"office", "full"}));
  EXPECT_EQ(store_.state.isolations[0].origin, "local-cli");
  EXPECT_EQ(store_.state.isolations[0].since_unix_ms, toUnixMillis(clock_.now()));
  EXPECT_NE(firewall_.table.find("table inet shadan"), std::string::npos);
  EXPECT_EQ(store_.state.applied_ruleset_sha256, sha256Hex(firewall_.table));
  EXPECT_NE(out_.str().find("isolated office on gw"), std::string::npos);
}

TEST_F(AgentCliTest, TheTableCarriesTheOwnerMarkOfThisAgent) {
  ASSERT_EQ(run({"isolate", "office"}), kExitOk) << err_.str();
  EXPECT_EQ(ownerMarkOf(firewall_.table), "shadan-agent gateway=gw state=/nonexistent/state");
  EXPECT_EQ(gateway_claims_, 1);
}

// One gateway, one writer: with a daemon on another state directory running, a local change
// is refused naming it, and neither the kernel nor the state is touched.
TEST_F(AgentCliTest, AChangeIsRefusedWhileAnotherAgentOwnsTheGateway) {
  gateway_owner_ =
      "table inet shadan of this network namespace is owned by the shadan-agent daemon (pid 7: "
      "shadan-agent run --state-dir /var/lib/shadan)";
  EXPECT_EQ(run({"isolate", "office"}), kExitBusy);
  EXPECT_NE(err_.str().find("owned by the shadan-agent daemon (pid 7"), std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find("this command's state directory is /nonexistent/state"),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(out_.str().find("isolated"), std::string::npos) << out_.str();
  EXPECT_TRUE(firewall_.scripts.empty());
  EXPECT_TRUE(store_.state.isolations.empty());
  EXPECT_EQ(run({"restore", "--all", "--reason", "all clear"}), kExitBusy);
  EXPECT_TRUE(firewall_.scripts.empty());
}

// The other half of ownership: a table another agent wrote (its owner mark) is not replaced,
// even when that agent is not running.
TEST_F(AgentCliTest, AChangeRefusesATableMarkedByAnotherAgent) {
  firewall_.table =
      "table inet shadan {\n\tcomment \"shadan-agent gateway=gw state=/other/state\"\n}\n";
  EXPECT_EQ(run({"isolate", "office"}), kExitBusy);
  EXPECT_NE(err_.str().find("state=/other/state"), std::string::npos) << err_.str();
  EXPECT_TRUE(firewall_.scripts.empty());
  EXPECT_TRUE(store_.state.isolations.empty());
  ASSERT_FALSE(audit_.events.empty());
  EXPECT_EQ(audit_.events.back().outcome, "rejected");
}

// The state says isolated but the kernel lost the table: isolate puts it back and says
// "repaired" (not "already isolated"), in JSON too, and the audit entry says so.
TEST_F(AgentCliTest, IsolateRebuildingAMissingTableSaysRepaired) {
  ASSERT_EQ(run({"isolate", "office"}), kExitOk) << err_.str();
  const std::string applied = firewall_.table;
  firewall_.table.clear();  // nft flush ruleset
  ASSERT_EQ(run({"isolate", "office"}), kExitOk) << err_.str();
  EXPECT_EQ(firewall_.table, applied);
  EXPECT_NE(out_.str().find("repaired: isolated office on gw"), std::string::npos) << out_.str();
  EXPECT_EQ(out_.str().find("already isolated"), std::string::npos) << out_.str();
  EXPECT_EQ(audit_.events.back().outcome, "repaired");
  firewall_.table.clear();
  ASSERT_EQ(run({"isolate", "office", "--json"}), kExitOk) << err_.str();
  const auto answer = nlohmann::json::parse(out_.str());
  EXPECT_TRUE(answer["changed"].get<bool>());
  EXPECT_TRUE(answer["repaired"].get<bool>());
}

TEST(AgentCliOutputTest, ApplyFileNamesTheSignedActionAndSegmentNotTheFile) {
  AgentCliOptions options;
  options.command = "apply-file";
  options.positional = {"cut.json"};
  const nlohmann::json answer = {
      {"ok", true},        {"command", "apply-file"}, {"action", "isolate"}, {"segment", "office"},
      {"profile", "full"}, {"gateway", "gw"},         {"changed", true}};
  std::ostringstream out;
  std::ostringstream err;
  printChangeAnswer(answer, options, out, err);
  EXPECT_NE(out.str().find("isolated office (full) on gw"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("cut.json"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("restored"), std::string::npos) << out.str();
}

// Accountability: a local change records who ran it (uid, SUDO_USER) and why.
TEST_F(AgentCliTest, LocalChangesRecordTheInvokingUserAndTheReason) {
  ASSERT_EQ(run({"isolate", "office", "--reason", "EDR alert on pc-12"}), kExitOk) << err_.str();
  const AuditEvent& isolated = audit_.events.back();
  ASSERT_TRUE(isolated.who);
  EXPECT_EQ(isolated.who->requested_by, "local-cli uid=1000 sudo_user=sato");
  ASSERT_TRUE(isolated.why);
  EXPECT_EQ(isolated.why->reason, "EDR alert on pc-12");

  EXPECT_EQ(run({"restore", "office"}), kExitUsage);  // a restore needs its why
  EXPECT_NE(err_.str().find("restore needs --reason"), std::string::npos) << err_.str();
  EXPECT_EQ(store_.state.isolations.size(), 1u);
  ASSERT_EQ(run({"restore", "office", "--reason", "pc-12 reimaged"}), kExitOk) << err_.str();
  EXPECT_EQ(audit_.events.back().why->reason, "pc-12 reimaged");
  EXPECT_EQ(run({"isolate", "office", "--reason", "two\nlines"}), kExitUsage);
  EXPECT_EQ(run({"status", "--reason", "x"}), kExitUsage);
}

// A protected segment is not cut by accident: a reason and a yes on the terminal (or --yes).
TEST_F(AgentCliTest, IsolatingAProtectedSegmentNeedsAReasonAndAConfirmation) {
  EXPECT_EQ(run({"isolate", "mgmt"}), kExitUsage);
  EXPECT_NE(err_.str().find("protected"), std::string::npos) << err_.str();
  EXPECT_TRUE(questions_.empty());

  confirm_answer_ = false;  // the operator said no, or there is no terminal
  EXPECT_EQ(run({"isolate", "mgmt", "--reason", "ransomware on jump host"}), kExitRejected);
  ASSERT_EQ(questions_.size(), 1u);
  EXPECT_NE(questions_[0].find("PROTECTED segment \"mgmt\""), std::string::npos);
  EXPECT_NE(err_.str().find("--yes"), std::string::npos) << err_.str();
  EXPECT_TRUE(store_.state.isolations.empty());
  EXPECT_TRUE(firewall_.scripts.empty());

  confirm_answer_ = true;
  EXPECT_EQ(run({"isolate", "mgmt", "--reason", "ransomware on jump host"}), kExitOk) << err_.str();
  EXPECT_EQ(questions_.size(), 2u);
  ASSERT_EQ(run({"restore", "mgmt", "--reason", "clean"}), kExitOk) << err_.str();

  confirm_answer_ = false;  // a script says so up front
  EXPECT_EQ(run({"isolate", "mgmt", "--reason", "scripted", "--yes"}), kExitOk) << err_.str();
  EXPECT_EQ(questions_.size(), 2u);
}

TEST_F(AgentCliTest, IsolatingTwiceLeavesTheSameRuleset) {
  ASSERT_EQ(run({"isolate", "office"}), kExitOk);
  const std::string first = firewall_.table;
  ASSERT_EQ(run({"isolate", "office"}), kExitOk);
  EXPECT_EQ(firewall_.table, first);
  EXPECT_EQ(store_.state.isolations.size(), 1u);
  EXPECT_NE(out_.str().find("already isolated office"), std::string::npos);
}

TEST_F(AgentCliTest, ProfilesAreKeptAsPairs) {
  ASSERT_EQ(run({"isolate", "office", "--profile", "internet-only"}), kExitOk) << err_.str();
  ASSERT_EQ(run({"isolate", "servers"}), kExitOk) << err_.str();
  ASSERT_EQ(store_.state.isolations.size(), 2u);
  EXPECT_EQ(store_.state.isolations[0].isolation, (Isolation{"office", "internet-only"}));
  EXPECT_EQ(store_.state.isolations[1].isolation, (Isolation{"servers", "full"}));
}

TEST_F(AgentCliTest, RejectedRequestsTouchNeitherKernelNorState) {
  const std::string bad_policy = writeTempPolicy(R"({"shadan_policy": 1, "name": "x"})");
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"isolate", "offfice", "--policy", kLabPolicy, "--gateway", "gw", "--state-dir", "/s"},
       "unknown segment \"offfice\""},
      {{"isolate", "office", "--profile", "nope", "--policy", kLabPolicy, "--gateway", "gw",
        "--state-dir", "/s"},
       "unknown profile \"nope\""},
      {{"isolate", "office", "--policy", kLabPolicy, "--gateway", "gw9", "--state-dir", "/s"},
       "gateway \"gw9\" is not in policy"},
      {{"isolate", "office", "--policy", bad_policy, "--gateway", "gw", "--state-dir", "/s"},
       bad_policy},
      {{"isolate", "office", "--policy", "/nonexistent/policy.json", "--gateway", "gw",
        "--state-dir", "/s"},
       "/nonexistent/policy.json"},
      {{"restore", "offfice", "--reason", "r", "--policy", kLabPolicy, "--gateway", "gw",
        "--state-dir", "/s"},
       "unknown segment \"offfice\""},
  };
  for (const auto& c : cases) {
    EXPECT_NE(run(c.args, false), kExitOk) << c.expected;
    EXPECT_NE(err_.str().find(c.expected), std::string::npos)
        << "expected \"" << c.expected << "\" in: " << err_.str();
    EXPECT_TRUE(firewall_.scripts.empty()) << c.expected;
    EXPECT_EQ(store_.saves, 0) << c.expected;
  }
}

TEST_F(AgentCliTest, KernelRefusalPutsTheStoredStateBack) {
  ASSERT_EQ(run({"isolate", "servers"}), kExitOk);
  const DesiredState before = store_.state;
  const std::string table_before = firewall_.table;
  firewall_.fail_applies = 1;
  EXPECT_EQ(run({"isolate", "office"}), kExitFailed);
  EXPECT_NE(err_.str().find("fake kernel says no"), std::string::npos);
  EXPECT_EQ(store_.state, before);
  EXPECT_EQ(firewall_.table, table_before);
}

TEST_F(AgentCliTest, RestoreLiftsOneSegmentOrAll) {
  ASSERT_EQ(run({"isolate", "office"}), kExitOk);
  ASSERT_EQ(run({"isolate", "servers"}), kExitOk);
  ASSERT_EQ(run({"restore", "office", "--reason", "all clear"}), kExitOk) << err_.str();
  ASSERT_EQ(store_.state.isolations.size(), 1u);
  EXPECT_EQ(store_.state.isolations[0].isolation.segment, "servers");
  EXPECT_NE(out_.str().find("restored office"), std::string::npos);

  ASSERT_EQ(run({"restore", "--all", "--reason", "all clear"}), kExitOk) << err_.str();
  EXPECT_TRUE(store_.state.isolations.empty());
  EXPECT_EQ(firewall_.table, "");  // nothing isolated: no Shadan table at all
}

TEST_F(AgentCliTest, RestoringAKnownSegmentThatIsNotIsolatedIsHarmless) {
  ASSERT_EQ(run({"restore", "office", "--reason", "all clear"}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("nothing to restore for office"), std::string::npos);
  EXPECT_EQ(firewall_.table, "");
}

TEST_F(AgentCliTest, StatusReportsInSyncAndDrift) {
  ASSERT_EQ(run({"isolate", "office"}), kExitOk);
  ASSERT_EQ(run({"status", "--json"}), kExitOk) << err_.str();
  auto doc = nlohmann::json::parse(out_.str());
  EXPECT_EQ(doc["kernel"]["state"], "in_sync");
  ASSERT_EQ(doc["isolations"].size(), 1u);
  EXPECT_EQ(doc["isolations"][0]["segment"], "office");
  EXPECT_EQ(doc["isolations"][0]["profile"], "full");

  // A status that is not in sync says so in its exit code too (it exited 0 before).
  firewall_.table += "# someone was here\n";
  ASSERT_EQ(run({"status", "--json"}), kExitDrift);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["kernel"]["state"], "drift");

  firewall_.table.clear();
  ASSERT_EQ(run({"status"}), kExitDrift);
  EXPECT_NE(out_.str().find("kernel: missing"), std::string::npos);
  EXPECT_NE(out_.str().find("NOTHING IS CUT"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("office  profile=full"), std::string::npos);
}

TEST_F(AgentCliTest, StatusExitsNonZeroForATableNobodyWants) {
  firewall_.table = "table inet shadan {\n}\n";
  EXPECT_EQ(run({"status"}), kExitDrift);
  EXPECT_NE(out_.str().find("kernel: unexpected_table"), std::string::npos) << out_.str();
}

TEST_F(AgentCliTest, StatusSaysWhetherADaemonRuns) {
  ASSERT_EQ(run({"status"}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("daemon: NOT running"), std::string::npos) << out_.str();
  ASSERT_EQ(run({"status", "--json"}), kExitOk);
  EXPECT_FALSE(nlohmann::json::parse(out_.str())["daemon"].get<bool>());

  daemon_answer_ = nlohmann::json{{"ok", true},
                                  {"command", "status"},
                                  {"gateway", "gw"},
                                  {"isolations", nlohmann::json::array()},
                                  {"kernel", {{"state", "in_sync"}}}};
  ASSERT_EQ(run({"status"}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("daemon: running"), std::string::npos) << out_.str();
}

// --ttl promises that the isolation ends on its own: only a running daemon can keep that.
TEST_F(AgentCliTest, TtlWithoutADaemonIsRefusedAndChangesNothing) {
  EXPECT_EQ(run({"isolate", "office", "--ttl", "30m"}), kExitRejected);
  EXPECT_NE(err_.str().find("--ttl needs the daemon"), std::string::npos) << err_.str();
  EXPECT_EQ(out_.str().find("restores itself"), std::string::npos) << out_.str();
  EXPECT_TRUE(store_.state.isolations.empty());
  EXPECT_TRUE(firewall_.scripts.empty());
  EXPECT_EQ(run({"isolate", "office", "--ttl-without-daemon"}), kExitUsage);
  EXPECT_EQ(run({"restore", "office", "--ttl-without-daemon"}), kExitUsage);
}

// Stored anyway (explicitly): status shows the time left, then flags the deadline as overdue
// and exits non-zero, instead of listing it as an ordinary active isolation.
TEST_F(AgentCliTest, AnOverdueDeadlineIsFlaggedAndStatusExitsNonZero) {
  ASSERT_EQ(run({"isolate", "office", "--ttl", "30m", "--ttl-without-daemon"}), kExitOk)
      << err_.str();
  EXPECT_NE(out_.str().find("NOT lifted at that time"), std::string::npos) << out_.str();
  ASSERT_EQ(run({"status"}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("restores itself in 30m0s"), std::string::npos) << out_.str();
  clock_.advance(std::chrono::minutes(31));
  EXPECT_EQ(run({"status"}), kExitOverdue);
  EXPECT_NE(out_.str().find("OVERDUE"), std::string::npos) << out_.str();
  EXPECT_EQ(run({"status", "--json"}), kExitOverdue);
  const auto doc = nlohmann::json::parse(out_.str());
  EXPECT_TRUE(doc["isolations"][0]["overdue"].get<bool>());
  EXPECT_EQ(doc["isolations"][0]["remaining_s"], 0);
}

TEST_F(AgentCliTest, StatusWithoutKernelAccessStillShowsDesiredStateButFails) {
  ASSERT_EQ(run({"isolate", "office"}), kExitOk);
  kernel_unavailable_ = true;
  EXPECT_EQ(run({"status"}), kExitFailed);
  EXPECT_NE(out_.str().find("office"), std::string::npos);
  EXPECT_NE(out_.str().find("kernel: unknown (no netlink here)"), std::string::npos);
}

TEST_F(AgentCliTest, OfflineStatusJsonMarksDrills) {
  ASSERT_EQ(run({"isolate", "office", "--drill", "--ttl", "30m", "--ttl-without-daemon"}), kExitOk)
      << err_.str();
  kernel_unavailable_ = true;
  EXPECT_EQ(run({"status", "--json"}), kExitFailed);
  auto doc = nlohmann::json::parse(out_.str());
  EXPECT_EQ(doc["kernel"]["state"], "unknown");
  ASSERT_EQ(doc["isolations"].size(), 1u);
  EXPECT_EQ(doc["isolations"][0]["segment"], "office");
  EXPECT_EQ(doc["isolations"][0]["drill"], true);
  EXPECT_TRUE(doc["isolations"][0].contains("expires"));
}

TEST_F(AgentCliTest, PlanPrintsWithoutApplying) {
  ASSERT_EQ(run({"plan", "office", "--policy", kLabPolicy, "--gateway", "gw"}, false), kExitOk)
      << err_.str();
  EXPECT_NE(out_.str().find("table inet shadan {"), std::string::npos);
  EXPECT_EQ(firewall_opens_, 0);
  EXPECT_TRUE(firewall_.scripts.empty());
}

TEST_F(AgentCliTest, TtlIsStoredAsADeadline) {
  ASSERT_EQ(run({"isolate", "office", "--ttl", "30m", "--ttl-without-daemon"}), kExitOk)
      << err_.str();
  ASSERT_EQ(store_.state.isolations.size(), 1u);
  ASSERT_TRUE(store_.state.isolations[0].expires_unix_ms.has_value());
  EXPECT_EQ(*store_.state.isolations[0].expires_unix_ms, toUnixMillis(clock_.now()) + 30 * 60'000);
  EXPECT_EQ(out_.str().find("restores itself at"), std::string::npos) << out_.str();
  // Without a daemon, nobody wakes up at the deadline: the CLI says who honours it.
  EXPECT_NE(err_.str().find("honoured by the next shadan-agent command"), std::string::npos);
}

TEST_F(AgentCliTest, ExpiredIsolationsAreLiftedByTheNextCommand) {
  ASSERT_EQ(run({"isolate", "office", "--ttl", "4s", "--ttl-without-daemon"}), kExitOk);
  clock_.advance(std::chrono::seconds(5));
  ASSERT_EQ(run({"isolate", "servers"}), kExitOk) << err_.str();
  ASSERT_EQ(store_.state.isolations.size(), 1u);
  EXPECT_EQ(store_.state.isolations[0].isolation.segment, "servers");
  EXPECT_NE(out_.str().find("expired: office (full)"), std::string::npos);
}

TEST_F(AgentCliTest, BadTtlIsAUsageError) {
  for (const char* ttl : {"0s", "5", "1y", "-3s", "1.5h", "400d"}) {
    EXPECT_EQ(run({"isolate", "office", "--ttl", ttl}), kExitUsage) << ttl;
    EXPECT_NE(err_.str().find("--ttl: invalid duration"), std::string::npos) << err_.str();
  }
  EXPECT_EQ(run({"restore", "office", "--ttl", "4s"}), kExitUsage);
  EXPECT_TRUE(firewall_.scripts.empty());
}

TEST_F(AgentCliTest, RequestsGoToTheDaemonWhenOneAnswers) {
  daemon_answer_ = nlohmann::json{{"ok", true},
                                  {"command", "isolate"},
                                  {"gateway", "gw"},
                                  {"changed", true},
                                  {"isolations", nlohmann::json::array()},
                                  {"table_present", true},
                                  {"ruleset_sha256", "abc"}};
  ASSERT_EQ(run({"isolate", "office", "--profile", "internet-only", "--ttl", "4s"}), kExitOk)
      << err_.str();
  ASSERT_EQ(daemon_requests_.size(), 1u);
  // The request names the command's gateway and policy, so the daemon can refuse a mismatch.
  nlohmann::json sent = daemon_requests_[0];
  EXPECT_EQ(sent["gateway"], "gw");
  EXPECT_EQ(sent["policy_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(sent["sudo_user"], "sato");  // the daemon adds the uid the kernel vouches for
  sent.erase("gateway");
  sent.erase("policy_sha256");
  sent.erase("sudo_user");
  EXPECT_EQ(sent, (nlohmann::json{{"op", "isolate"},
                                  {"segment", "office"},
                                  {"profile", "internet-only"},
                                  {"ttl_ms", 4000}}));
  // One writer: the CLI touched neither the kernel nor the store itself.
  EXPECT_TRUE(firewall_.scripts.empty());
  EXPECT_EQ(store_.saves, 0);
  EXPECT_EQ(opened_state_dir_, "");
  EXPECT_NE(out_.str().find("isolated office (internet-only) on gw"), std::string::npos);
}

TEST_F(AgentCliTest, CommandsRefusedForABadPolicyAreAudited) {
  const std::string bad_policy = writeTempPolicy(R"({"shadan_policy": 1, "name": )");
  const auto state_dir =
      std::filesystem::temp_directory_path() / ("shadan-cli-refused-" + std::to_string(::getpid()));
  std::filesystem::create_directories(state_dir);
  temp_files_.push_back(state_dir);
  const std::vector<std::string> common = {"--policy", bad_policy,    "--gateway",
                                           "gw",       "--state-dir", state_dir.string()};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), common.begin(), common.end());
    return args;
  };
  // No daemon: the CLI writes the entry itself, and touches neither kernel nor state.
  EXPECT_NE(run(with({"isolate", "office"}), false), kExitOk);
  ASSERT_EQ(audit_.names(), (std::vector<std::string>{"local_command_refused"}));
  EXPECT_EQ(audit_.events[0].outcome, "rejected");
  EXPECT_NE(audit_.events[0].reason->find(bad_policy), std::string::npos)
      << *audit_.events[0].reason;
  EXPECT_EQ((*audit_.events[0].detail)["command"], "isolate");
  EXPECT_TRUE(firewall_.scripts.empty());
  EXPECT_EQ(store_.saves, 0);

  // A daemon serves the directory: the refusal is handed to it (it holds the log).
  daemon_answer_ = nlohmann::json{{"ok", true}, {"command", "refused"}};
  EXPECT_NE(run(with({"restore", "office", "--reason", "all clear"}), false), kExitOk);
  ASSERT_FALSE(daemon_requests_.empty());
  EXPECT_EQ(daemon_requests_.back()["op"], "refused");
  EXPECT_EQ(daemon_requests_.back()["command"], "restore");
  EXPECT_EQ(audit_.events.size(), 1u);

  // Usage errors and dry runs are not refusals of an action.
  daemon_requests_.clear();
  EXPECT_NE(run({"isolate", "office", "--gateway", "gw"}, false), kExitOk);  // no --policy
  EXPECT_TRUE(daemon_requests_.empty());
  EXPECT_EQ(audit_.events.size(), 1u);
}

TEST_F(AgentCliTest, DaemonRefusalsKeepTheirExitCodes) {
  daemon_answer_ = errorAnswer("isolate", makeError(ErrorCode::kNotFound, "unknown segment"));
  EXPECT_EQ(run({"isolate", "office"}), kExitRejected);
  EXPECT_NE(err_.str().find("unknown segment"), std::string::npos);
  daemon_answer_ = errorAnswer("isolate", makeError(ErrorCode::kKernel, "netlink said no"));
  EXPECT_EQ(run({"isolate", "office"}), kExitFailed);
}

TEST_F(AgentCliTest, RunOptionsAreCheckedBeforeStarting) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"run", "--audit-export", "papertrail"}, "--audit-export must be one of"},
      {{"run", "--controller", "10.99.0.10"}, "--controller must be HOST:PORT"},
      {{"run", "--controller", "10.99.0.10:99999"}, "--controller must be HOST:PORT"},
      {{"run", "--controller", "10.99.0.10:8443"}, "--controller needs --tls-dir"},
      {{"run", "--tls-dir", "/etc/shadan/tls"}, "go with --controller"},
      {{"run", "--controller-grace", "soon"}, "--controller-grace: invalid duration"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(run(c.args), kExitUsage) << c.expected;
    EXPECT_NE(err_.str().find(c.expected), std::string::npos) << err_.str();
    EXPECT_FALSE(daemon_options_.has_value());
  }
  ASSERT_EQ(run({"run", "--audit-export", "syslog", "--controller", "[fd00:99::10]:8443",
                 "--tls-dir", "/t", "--controller-pin", "ab", "--controller-grace", "30s"}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(daemon_options_->audit_export, "syslog");
  ASSERT_TRUE(daemon_options_->controller.has_value());
  EXPECT_EQ(daemon_options_->controller->host, "fd00:99::10");
  EXPECT_EQ(daemon_options_->controller->port, 8443);
  EXPECT_EQ(daemon_options_->controller_loss_grace, std::chrono::seconds(30));
}

TEST_F(AgentCliTest, RunValidatesTheConfigurationBeforeStarting) {
  EXPECT_EQ(run({"run", "--policy", kLabPolicy, "--gateway", "nope", "--state-dir", "/s"}, false),
            kExitRejected);
  EXPECT_FALSE(daemon_options_.has_value());
  ASSERT_EQ(run({"run"}), kExitOk);
  ASSERT_TRUE(daemon_options_.has_value());
  EXPECT_EQ(daemon_options_->gateway, "gw");
  EXPECT_EQ(daemon_options_->state_dir, "/nonexistent/state");
}

TEST_F(AgentCliTest, JsonErrorsAreMachineReadable) {
  EXPECT_EQ(run({"isolate", "nowhere", "--json"}), kExitRejected);
  auto doc = nlohmann::json::parse(out_.str());
  EXPECT_EQ(doc["ok"], false);
  EXPECT_EQ(doc["error"]["code"], "not_found");
}

}  // namespace
}  // namespace shadan::agent

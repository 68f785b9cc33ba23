#include "agents/agent_core.h"

#include <gtest/gtest.h>

#include <fstream>

#include "agents/control_protocol.h"
#include "tests/fakes/fake_backends.h"

namespace shadan::agent {
namespace {

using namespace std::chrono_literals;
using testing::FakeAuditSink;
using testing::FakeClock;
using testing::FakeConntrackBackend;
using testing::FakeFirewallBackend;
using testing::FakeRouteBackend;
using testing::FakeStateStore;

const std::string kLabPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";

class AgentCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = loadPolicyFile(kLabPolicy);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    policy_ = std::move(loaded).value().policy;
    core_ = makeCore();
  }

  std::unique_ptr<AgentCore> makeCore() {
    return std::make_unique<AgentCore>(
        policy_, "gw",
        AgentCoreDeps{store_, firewall_, routes_, conntrack_, audit_, clock_, "host1", "0.1.0"});
  }

  // The core keeps its own copy of the policy: a test that changes policy_ builds a new core on
  // the same fakes (the same stored state, the same kernel).
  void rebuildCore() {
    core_ = makeCore();
    ASSERT_TRUE(core_->load().ok());
  }

  IsolateRequest isolateReq(const std::string& segment,
                            std::optional<std::chrono::milliseconds> ttl,
                            const std::string& profile = "full") {
    IsolateRequest request;
    request.segment = segment;
    request.profile = profile;
    request.ttl = ttl;
    return request;
  }

  Policy policy_;
  FakeFirewallBackend firewall_;
  FakeRouteBackend routes_;
  FakeStateStore store_;
  FakeClock clock_;
  FakeConntrackBackend conntrack_;
  FakeAuditSink audit_;
  std::unique_ptr<AgentCore> core_;
};

TEST_F(AgentCoreTest, StartAppliesThePersistedStateBeforeAnythingElse) {
  store_.state.isolations = {ActiveIsolation{{"office", "full"}, 1, std::nullopt, "local-cli"}};
  auto started = core_->start();
  ASSERT_TRUE(started.ok()) << started.error().message;
  EXPECT_NE(firewall_.table.find("seg_office_v4"), std::string::npos);
  EXPECT_EQ(store_.state.applied_ruleset_sha256, sha256Hex(firewall_.table));
  EXPECT_FALSE(started->changed);
}

TEST_F(AgentCoreTest, StartHonoursDeadlinesThatPassedWhileNothingRan) {
  const int64_t now = toUnixMillis(clock_.now());
  store_.state.isolations = {
      ActiveIsolation{{"office", "full"}, 1, now - 1000, "local-cli"},
      ActiveIsolation{{"servers", "full"}, 1, now + 60'000, "local-cli"},
  };
  auto started = core_->start();
  ASSERT_TRUE(started.ok()) << started.error().message;
  ASSERT_EQ(started->expired.size(), 1u);
  EXPECT_EQ(started->expired[0].segment, "office");
  ASSERT_EQ(store_.state.isolations.size(), 1u);
  EXPECT_EQ(store_.state.isolations[0].isolation.segment, "servers");
  EXPECT_EQ(firewall_.table.find("seg_office_v4"), std::string::npos);
  EXPECT_NE(firewall_.table.find("seg_servers_v4"), std::string::npos);
}

TEST_F(AgentCoreTest, ExpireDueLiftsOnlyWhatIsDueAndTouchesNothingOtherwise) {
  ASSERT_TRUE(core_->start().ok());
  ASSERT_TRUE(core_->isolate(isolateReq("office", 4s)).ok());
  ASSERT_TRUE(core_->isolate(isolateReq("servers", std::nullopt)).ok());
  ASSERT_EQ(core_->nextDeadline(), clock_.now() + 4s);

  const size_t applies = firewall_.scripts.size();
  clock_.advance(3s);
  auto early = core_->expireDue();
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(early->changed);
  EXPECT_EQ(firewall_.scripts.size(), applies);

  clock_.advance(1s);
  auto due = core_->expireDue();
  ASSERT_TRUE(due.ok());
  EXPECT_TRUE(due->changed);
  ASSERT_EQ(due->expired.size(), 1u);
  EXPECT_EQ(due->expired[0].segment, "office");
  EXPECT_EQ(core_->nextDeadline(), std::nullopt);
  EXPECT_EQ(firewall_.table.find("seg_office_v4"), std::string::npos);
  EXPECT_NE(firewall_.table.find("seg_servers_v4"), std::string::npos);
}

TEST_F(AgentCoreTest, ReIsolatingKeepsTheLaterDeadlineAndNeverShortensAPermanentCut) {
  ASSERT_TRUE(core_->start().ok());
  ASSERT_TRUE(core_->isolate(isolateReq("office", 10s)).ok());
  ASSERT_TRUE(core_->isolate(isolateReq("office", 5s)).ok());  // shorter: ignored
  EXPECT_EQ(core_->nextDeadline(), clock_.now() + 10s);
  ASSERT_TRUE(core_->isolate(isolateReq("office", 60s)).ok());  // longer: extends
  EXPECT_EQ(core_->nextDeadline(), clock_.now() + 60s);
  ASSERT_TRUE(core_->isolate(isolateReq("office", std::nullopt)).ok());  // until restored
  EXPECT_EQ(core_->nextDeadline(), std::nullopt);
  ASSERT_TRUE(core_->isolate(isolateReq("office", 5s)).ok());  // cannot make it timed again
  EXPECT_EQ(core_->nextDeadline(), std::nullopt);
}

TEST_F(AgentCoreTest, ReconcileRepairsDriftAndMissingButLeavesAnIntactTableAlone) {
  ASSERT_TRUE(core_->start().ok());
  ASSERT_TRUE(core_->isolate(isolateReq("office", std::nullopt)).ok());
  const std::string good = firewall_.table;
  const size_t applies = firewall_.scripts.size();

  auto intact = core_->reconcile(false);
  ASSERT_TRUE(intact.ok());
  EXPECT_FALSE(intact->repaired);
  EXPECT_EQ(firewall_.scripts.size(), applies);

  firewall_.table += "chain sneaky { }\n";  // someone edited our table
  auto drift = core_->reconcile(false);
  ASSERT_TRUE(drift.ok());
  EXPECT_TRUE(drift->repaired);
  EXPECT_EQ(drift->found, KernelState::kDrift);
  EXPECT_EQ(firewall_.table, good);

  firewall_.table.clear();  // nft flush ruleset
  auto missing = core_->reconcile(false);
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->repaired);
  EXPECT_EQ(missing->found, KernelState::kMissing);
  EXPECT_EQ(firewall_.table, good);

  auto forced = core_->reconcile(true);
  ASSERT_TRUE(forced.ok());
  EXPECT_TRUE(forced->repaired);
  EXPECT_EQ(firewall_.scripts.size(), applies + 3);
}

TEST_F(AgentCoreTest, KernelRefusalLeavesStoreAndMemoryAsTheyWere) {
  ASSERT_TRUE(core_->start().ok());
  ASSERT_TRUE(core_->isolate(isolateReq("servers", std::nullopt)).ok());
  const DesiredState before = store_.state;
  firewall_.fail_applies = 1;
  auto refused = core_->isolate(isolateReq("office", std::nullopt));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(store_.state, before);
  EXPECT_EQ(core_->desired(), before);
}

TEST_F(AgentCoreTest, ValidationNamesWhatIsWrong) {
  ASSERT_TRUE(core_->start().ok());
  EXPECT_NE(core_->isolate(isolateReq("nowhere", std::nullopt))
                .error()
                .message.find("unknown segment \"nowhere\""),
            std::string::npos);
  EXPECT_NE(core_->isolate(isolateReq("office", std::nullopt, "gentle"))
                .error()
                .message.find("unknown profile \"gentle\""),
            std::string::npos);
  RestoreRequest restore;
  restore.segment = "nowhere";
  EXPECT_EQ(core_->restore(restore).error().code, ErrorCode::kNotFound);
}

TEST_F(AgentCoreTest, ResyncRoutesPutsBackTheDesiredBlackholes) {
  ASSERT_TRUE(core_->start().ok());
  ASSERT_TRUE(core_->isolate(isolateReq("office", std::nullopt, "full-blackhole")).ok());
  const auto desired = routes_.routes;
  ASSERT_FALSE(desired.empty());
  routes_.routes.clear();  // ip route del …
  ASSERT_TRUE(core_->resyncRoutes().ok());
  EXPECT_EQ(routes_.routes, desired);
}

}  // namespace
}  // namespace shadan::agent

namespace shadan::agent {
namespace {

nlohmann::json lockoutFixture(const std::string& name) {
  const std::string path = std::string(SHADAN_SOURCE_DIR) + "/tests/golden/lockout/" + name;
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST_F(AgentCoreTest, EveryDecisionIsAuditedInOrderWithRulesetHashes) {
  ASSERT_TRUE(core_->start().ok());
  audit_.events.clear();
  auto result = core_->isolate(isolateReq("office", std::nullopt));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(audit_.names(), (std::vector<std::string>{"accepted", "applied"}));
  const AuditEvent& applied = audit_.events[1];
  EXPECT_EQ(applied.what->action, "isolate");
  EXPECT_EQ(applied.what->segment, "office");
  EXPECT_EQ(applied.what->ruleset_before, sha256Hex(""));
  EXPECT_EQ(applied.what->ruleset_after, sha256Hex(firewall_.table));
  EXPECT_EQ(applied.who->requested_by, "local-cli");
  EXPECT_EQ(applied.where->agent_id, "gw");
  ASSERT_TRUE(result->audit.has_value());
  EXPECT_EQ(result->audit->log_seq, 1u);

  audit_.events.clear();
  ASSERT_FALSE(core_->isolate(isolateReq("nowhere", std::nullopt)).ok());
  ASSERT_EQ(audit_.names(), std::vector<std::string>{"rejected"});
  EXPECT_NE(audit_.events[0].reason->find("unknown segment"), std::string::npos);

  audit_.events.clear();
  firewall_.fail_applies = 1;
  ASSERT_FALSE(core_->isolate(isolateReq("servers", std::nullopt)).ok());
  EXPECT_EQ(audit_.names(), (std::vector<std::string>{"accepted", "failed"}));
}

TEST_F(AgentCoreTest, DrillsAreMarkedAndNeedATtl) {
  ASSERT_TRUE(core_->start().ok());
  auto request = isolateReq("office", std::nullopt);
  request.drill = true;
  auto refused = core_->isolate(request);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("a drill needs a ttl"), std::string::npos);
  request.ttl = 30s;
  ASSERT_TRUE(core_->isolate(request).ok());
  EXPECT_TRUE(store_.state.isolations[0].drill);
  EXPECT_EQ(audit_.events.back().drill, true);
  // A real order for the same pair makes it real, and permanent.
  ASSERT_TRUE(core_->isolate(isolateReq("office", std::nullopt)).ok());
  EXPECT_FALSE(store_.state.isolations[0].drill);
  EXPECT_FALSE(store_.state.isolations[0].expires_unix_ms.has_value());
}

TEST_F(AgentCoreTest, AuditFailureBlocksARestoreButNotAnIsolation) {
  ASSERT_TRUE(core_->start().ok());
  audit_.fail = true;
  auto isolated = core_->isolate(isolateReq("office", std::nullopt));
  ASSERT_TRUE(isolated.ok()) << isolated.error().message;
  ASSERT_FALSE(isolated->warnings.empty());
  EXPECT_NE(isolated->warnings[0].find("audit failed"), std::string::npos);

  RestoreRequest restore;
  restore.segment = "office";
  auto restored = core_->restore(restore);
  ASSERT_FALSE(restored.ok());
  EXPECT_NE(restored.error().message.find("refusing to restore without an audit record"),
            std::string::npos);
  EXPECT_TRUE(core_->desired().contains(Isolation{"office", "full"}));
}

TEST_F(AgentCoreTest, LockoutCheckWarnsByDefaultAndRefusesWhenThePolicySaysSo) {
  ASSERT_TRUE(core_->start().ok());
  firewall_.ruleset_json = lockoutFixture("drop_controller_port.json");
  auto warned = core_->isolate(isolateReq("office", std::nullopt));
  ASSERT_TRUE(warned.ok()) << warned.error().message;
  ASSERT_FALSE(warned->warnings.empty());
  EXPECT_NE(warned->warnings[0].find("management path"), std::string::npos);

  policy_.agent.lockout_check = LockoutCheckMode::kRefuse;
  rebuildCore();
  const size_t applies = firewall_.scripts.size();
  auto refused = core_->isolate(isolateReq("servers", std::nullopt));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("foreign rule drops the management path"),
            std::string::npos);
  EXPECT_EQ(firewall_.scripts.size(), applies);
  EXPECT_FALSE(core_->desired().contains(Isolation{"servers", "full"}));
  EXPECT_EQ(audit_.events.back().event, "rejected");

  firewall_.ruleset_json = lockoutFixture("firewalld_accept_all.json");
  auto clean = core_->isolate(isolateReq("servers", std::nullopt));
  ASSERT_TRUE(clean.ok()) << clean.error().message;
  EXPECT_TRUE(clean->warnings.empty());
}

TEST_F(AgentCoreTest, ConntrackEntriesGoWhereNatIsConfigured) {
  ASSERT_TRUE(core_->start().ok());
  ASSERT_TRUE(core_->isolate(isolateReq("office", std::nullopt)).ok());
  EXPECT_TRUE(conntrack_.deletions.empty());  // no NAT on this gateway

  firewall_.ruleset_json = lockoutFixture("nat_masquerade.json");
  auto result = core_->isolate(isolateReq("servers", std::nullopt));
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(conntrack_.deletions.size(), 1u);
  const auto& prefixes = conntrack_.deletions[0];
  ASSERT_EQ(prefixes.size(), 2u);
  EXPECT_EQ(prefixes[0].toCidr(), "10.30.0.0/24");
  EXPECT_EQ(prefixes[1].toCidr(), "fd00:30::/64");
  EXPECT_EQ(result->conntrack_deleted, 3u);

  // Restoring flushes only when the policy asks for it.
  RestoreRequest restore;
  restore.segment = "office";
  ASSERT_TRUE(core_->restore(restore).ok());
  EXPECT_EQ(conntrack_.deletions.size(), 1u);
  policy_.agent.conntrack_flush_on_restore = true;
  rebuildCore();
  restore.segment = "servers";
  ASSERT_TRUE(core_->restore(restore).ok());
  ASSERT_EQ(conntrack_.deletions.size(), 2u);
  EXPECT_EQ(conntrack_.deletions[1][0].toCidr(), "10.30.0.0/24");
}

TEST_F(AgentCoreTest, ControllerLossRevertsDrillsButNeverRealIsolations) {
  ASSERT_TRUE(core_->start().ok());
  auto drill = isolateReq("office", 1h);
  drill.drill = true;
  ASSERT_TRUE(core_->isolate(drill).ok());
  ASSERT_TRUE(core_->isolate(isolateReq("servers", std::nullopt)).ok());
  auto reverted = core_->revertDrills("controller unreachable for 5m");
  ASSERT_TRUE(reverted.ok()) << reverted.error().message;
  EXPECT_TRUE(reverted->changed);
  EXPECT_FALSE(core_->desired().contains(Isolation{"office", "full"}));
  EXPECT_TRUE(core_->desired().contains(Isolation{"servers", "full"}));
  EXPECT_EQ(audit_.events.back().what->action, "revert_drills");
  EXPECT_EQ(firewall_.table.find("seg_office_v4"), std::string::npos);

  const size_t applies = firewall_.scripts.size();
  auto again = core_->revertDrills("still unreachable");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  EXPECT_EQ(firewall_.scripts.size(), applies);
}

TEST_F(AgentCoreTest, RepairsAreAuditedWithTheProcessThatChangedTheTable) {
  ASSERT_TRUE(core_->start().ok());
  ASSERT_TRUE(core_->isolate(isolateReq("office", std::nullopt)).ok());
  audit_.events.clear();
  firewall_.table.clear();
  auto repaired = core_->reconcile(false, RepairTrigger{"foreign change", 4242, "nft"});
  ASSERT_TRUE(repaired.ok());
  ASSERT_EQ(audit_.names(), std::vector<std::string>{"repaired"});
  const auto& detail = *audit_.events[0].detail;
  EXPECT_EQ(detail["changed_by_pid"], 4242);
  EXPECT_EQ(detail["changed_by_comm"], "nft");
  EXPECT_EQ(detail["found"], "missing");

  audit_.events.clear();
  ASSERT_TRUE(core_->reconcile(true, RepairTrigger{"periodic", {}, {}}).ok());
  EXPECT_TRUE(audit_.events.empty());  // an intact table re-applied is routine
}

}  // namespace
}  // namespace shadan::agent

namespace shadan::agent {
namespace {

// One policy, one gateway: the daemon refuses a request from a command started with another
// policy file or for another gateway, saying so (not "unknown segment"), and changes nothing.
TEST_F(AgentCoreTest, TheDaemonRefusesARequestMadeWithAnotherPolicyOrGateway) {
  ASSERT_TRUE(core_->load().ok());
  ControlRequest request;
  request.op = "isolate";
  request.segment = "office";
  request.policy_sha256 = std::string(64, 'a');
  nlohmann::json answer = handleControlRequest(*core_, request, "test");
  ASSERT_TRUE(answerError(answer)) << answer.dump();
  EXPECT_NE(answerError(answer)->message.find("runs another policy"), std::string::npos);
  EXPECT_TRUE(firewall_.scripts.empty());

  request.policy_sha256 = policy_.source_sha256;
  request.gateway = "other-gw";
  answer = handleControlRequest(*core_, request, "test");
  ASSERT_TRUE(answerError(answer)) << answer.dump();
  EXPECT_NE(answerError(answer)->message.find("is gateway \"gw\", not \"other-gw\""),
            std::string::npos);
  EXPECT_TRUE(firewall_.scripts.empty());

  request.gateway = "gw";
  answer = handleControlRequest(*core_, request, "test");
  EXPECT_FALSE(answerError(answer)) << answer.dump();
  EXPECT_FALSE(firewall_.scripts.empty());
}

}  // namespace
}  // namespace shadan::agent

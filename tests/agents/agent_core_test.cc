#include "agents/agent_core.h"

#include <gtest/gtest.h>

#include "tests/fakes/fake_backends.h"

namespace shadan {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
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
    core_ = std::make_unique<AgentCore>(policy_, "gw", store_, firewall_, routes_, clock_);
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
}  // namespace shadan

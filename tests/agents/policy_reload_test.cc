// PolicyReloader: a reload swaps the policy (and trust) in one kernel transaction, or is refused
// and changes nothing — never lifting an active isolation. Fakes only: no root, no kernel.
#include "agents/policy_reload.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "common/sha256.h"
#include "tests/fakes/fake_backends.h"

namespace shadan::agent {
namespace {

using nlohmann::json;
using testing::FakeAuditSink;
using testing::FakeClock;
using testing::FakeConntrackBackend;
using testing::FakeFirewallBackend;
using testing::FakeRouteBackend;
using testing::FakeStateStore;

const std::string kLabPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";

json labPolicyJson() {
  std::ifstream in(kLabPolicy);
  return json::parse(in);
}

// `doc` as the loader would have read it from a file, with the digest of its text.
PolicyFile policyFile(const json& doc) {
  const std::string text = doc.dump(2);
  auto loaded = parsePolicy(text, "policy.json");
  EXPECT_TRUE(loaded.ok()) << loaded.error().message;
  return PolicyFile{std::move(loaded).value().policy, {}, "policy.json", sha256Hex(text)};
}

// The lab policy, renamed, with a second host kept reachable by the `forensic` profile.
json labWithAllowRule() {
  json doc = labPolicyJson();
  doc["name"] = "lab-v2";
  doc["profiles"]["forensic"]["allow"].push_back(
      {{"description", "second workstation"}, {"prefix", "10.30.0.77/32"}});
  return doc;
}

class PolicyReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    current_ = policyFile(labPolicyJson());
    core_ = std::make_unique<AgentCore>(
        current_.policy, "gw",
        AgentCoreDeps{store_, firewall_, routes_, conntrack_, audit_, clock_, "host1", "0.1.0"});
    ASSERT_TRUE(core_->start().ok());
    reloader_ = std::make_unique<PolicyReloader>(*core_, ReloadSources{"policy.json", {}}, current_,
                                                 &agent_key_);
  }

  void isolate(const std::string& segment, const std::string& profile = "forensic") {
    IsolateRequest request;
    request.segment = segment;
    request.profile = profile;
    auto isolated = core_->isolate(request);
    ASSERT_TRUE(isolated.ok()) << isolated.error().message;
  }

  Trust trust(int64_t version) const {
    Trust t;
    t.version = version;
    t.expires_at_ms = clock_.unixMillis() + 3'600'000;
    return t;
  }

  const AuditEvent& lastAudit() const { return audit_.events.back(); }

  PolicyFile current_;
  FakeFirewallBackend firewall_;
  FakeRouteBackend routes_;
  FakeStateStore store_;
  FakeClock clock_;
  FakeConntrackBackend conntrack_;
  FakeAuditSink audit_;
  Ed25519Signer agent_key_{Ed25519KeyPair::generate()};
  std::unique_ptr<AgentCore> core_;
  std::unique_ptr<PolicyReloader> reloader_;
};

TEST_F(PolicyReloadTest, NewPolicyIsAppliedInOneTransactionAndAudited) {
  isolate("office");
  const std::string table_before = firewall_.table;
  const size_t applies = firewall_.scripts.size();
  const PolicyFile next = policyFile(labWithAllowRule());

  auto reloaded = reloader_->reload(next, std::nullopt, "SIGHUP");
  ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;

  EXPECT_EQ(firewall_.scripts.size(), applies + 1) << "one kernel transaction";
  EXPECT_NE(firewall_.table, table_before);
  EXPECT_NE(firewall_.table.find("10.30.0.77"), std::string::npos) << firewall_.table;
  EXPECT_EQ(core_->policy().name, "lab-v2");
  ASSERT_EQ(core_->desired().isolations.size(), 1u);  // the cut holds, under the new rules
  EXPECT_EQ(core_->desired().isolations[0].isolation, (Isolation{"office", "forensic"}));
  EXPECT_EQ(store_.state.applied_ruleset_sha256, sha256Hex(firewall_.table));
  EXPECT_EQ(reloader_->policySha256(), next.sha256);
  EXPECT_EQ(reloaded->ruleset_before, sha256Hex(table_before));
  EXPECT_EQ(reloaded->ruleset_after, sha256Hex(firewall_.table));

  const AuditEvent& entry = lastAudit();
  EXPECT_EQ(entry.event, "policy_reloaded");
  EXPECT_EQ(entry.outcome, "ok");
  ASSERT_TRUE(entry.detail);
  EXPECT_EQ((*entry.detail)["policy_before"], (json{{"name", "lab"}, {"sha256", current_.sha256}}));
  EXPECT_EQ((*entry.detail)["policy_after"], (json{{"name", "lab-v2"}, {"sha256", next.sha256}}));
  EXPECT_EQ(entry.what->ruleset_after, sha256Hex(firewall_.table));

  // What comes after the reload is checked against the new policy.
  auto kernel = core_->kernelStatus();
  EXPECT_EQ(kernel.state, KernelState::kInSync);
}

// Each way a new policy could silently lift the active office:forensic cut.
TEST_F(PolicyReloadTest, PolicyThatWouldLiftAnActiveIsolationIsRefusedAndTheOldPlanKept) {
  const std::vector<std::pair<std::string, std::function<void(json&)>>> cases = {
      {"segment \"office\" is not in the new policy",
       [](json& doc) {
         doc["segments"].erase("office");
         doc["gateways"]["gw"]["borders"] = {"servers", "mgmt", "internet"};
       }},
      {"gateway \"gw\" no longer borders segment \"office\"",
       [](json& doc) {
         doc["gateways"]["gw"]["borders"] = {"servers", "mgmt", "internet"};
       }},
      {"gateway \"gw\" is not in the new policy",
       [](json& doc) {
         doc["gateways"] = {{"other-gw", {{"borders", {"office"}}}}};
       }},
  };
  isolate("office");
  const std::string table = firewall_.table;
  const size_t applies = firewall_.scripts.size();
  const DesiredState state = store_.state;
  for (const auto& [why, edit] : cases) {
    SCOPED_TRACE(why);
    json doc = labWithAllowRule();
    edit(doc);
    auto reloaded = reloader_->reload(policyFile(doc), std::nullopt, "SIGHUP");
    ASSERT_FALSE(reloaded.ok());
    EXPECT_NE(reloaded.error().message.find(why), std::string::npos) << reloaded.error().message;
    EXPECT_EQ(firewall_.scripts.size(), applies) << "nothing applied";
    EXPECT_EQ(firewall_.table, table);
    EXPECT_EQ(store_.state, state);
    EXPECT_EQ(core_->policy().name, "lab");
    EXPECT_EQ(reloader_->policySha256(), current_.sha256);
    EXPECT_EQ(lastAudit().event, "policy_reload_refused");
    EXPECT_EQ(lastAudit().outcome, "rejected");
    EXPECT_EQ(lastAudit().reason, reloaded.error().message);
  }
  // The old policy still rules: the new allow rule is nowhere.
  auto reconciled = core_->reconcile(true);
  ASSERT_TRUE(reconciled.ok()) << reconciled.error().message;
  EXPECT_EQ(firewall_.table, table);
}

TEST_F(PolicyReloadTest, ProfileOfAnActiveIsolationMustStayInThePolicy) {
  isolate("office");
  json doc = labPolicyJson();
  doc["profiles"].erase("forensic");
  auto reloaded = reloader_->reload(policyFile(doc), std::nullopt, "SIGHUP");
  ASSERT_FALSE(reloaded.ok());
  EXPECT_NE(reloaded.error().message.find("office:forensic (profile \"forensic\""),
            std::string::npos)
      << reloaded.error().message;
  EXPECT_NE(core_->policy().findProfile("forensic"), nullptr);
}

TEST_F(PolicyReloadTest, SegmentThatIsNotIsolatedMayLeaveThePolicy) {
  isolate("office");
  json doc = labPolicyJson();
  doc["segments"].erase("servers");
  doc["gateways"]["gw"]["borders"] = {"office", "mgmt", "internet"};
  doc["profiles"].erase("servers-only");
  auto reloaded = reloader_->reload(policyFile(doc), std::nullopt, "SIGHUP");
  ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;
  EXPECT_EQ(core_->policy().findSegment("servers"), nullptr);
}

TEST_F(PolicyReloadTest, KernelFailureKeepsTheOldPolicyAndRuleset) {
  isolate("office");
  const std::string table = firewall_.table;
  const DesiredState state = store_.state;
  firewall_.fail_applies = 1;

  auto reloaded = reloader_->reload(policyFile(labWithAllowRule()), std::nullopt, "SIGHUP");
  ASSERT_FALSE(reloaded.ok());
  EXPECT_NE(reloaded.error().message.find("fake kernel says no"), std::string::npos);
  EXPECT_EQ(firewall_.table, table);
  EXPECT_EQ(store_.state, state);
  EXPECT_EQ(core_->policy().name, "lab");
  EXPECT_EQ(reloader_->policySha256(), current_.sha256);
  EXPECT_EQ(lastAudit().event, "policy_reload_refused");
  EXPECT_EQ(lastAudit().outcome, "failed");

  // Later applies still plan the old policy: no allow rule appears.
  auto reconciled = core_->reconcile(true);
  ASSERT_TRUE(reconciled.ok()) << reconciled.error().message;
  EXPECT_EQ(firewall_.table, table);
}

TEST_F(PolicyReloadTest, NewerTrustIsUsedAndItsVersionStored) {
  ASSERT_TRUE(core_->useTrust(trust(2), agent_key_).ok());
  auto reloaded = reloader_->reload(policyFile(labWithAllowRule()), trust(3), "SIGHUP");
  ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;
  EXPECT_EQ(reloaded->trust_version, 3);
  EXPECT_EQ(store_.state.trust_version, 3);
  EXPECT_EQ((*lastAudit().detail)["trust_version"], 3);
}

TEST_F(PolicyReloadTest, OlderOrExpiredTrustIsRefusedAndKeepsThePolicy) {
  ASSERT_TRUE(core_->useTrust(trust(5), agent_key_).ok());
  Trust expired = trust(6);
  expired.expires_at_ms = clock_.unixMillis() - 1;
  for (const Trust& refused : {trust(4), expired}) {
    const size_t applies = firewall_.scripts.size();
    auto reloaded = reloader_->reload(policyFile(labWithAllowRule()), refused, "SIGHUP");
    ASSERT_FALSE(reloaded.ok());
    EXPECT_NE(reloaded.error().message.find("trust"), std::string::npos);
    EXPECT_EQ(firewall_.scripts.size(), applies);
    EXPECT_EQ(core_->policy().name, "lab");
    EXPECT_EQ(store_.state.trust_version, 5);
    EXPECT_EQ(lastAudit().event, "policy_reload_refused");
  }
}

TEST_F(PolicyReloadTest, FileThatDoesNotLoadIsRefusedAndAudited) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("shadan-reload-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / "policy.json";
  std::ofstream(path) << labPolicyJson().dump();
  auto read = readPolicyFile(path);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->sha256, sha256Hex(labPolicyJson().dump()));

  PolicyReloader reloader(*core_, ReloadSources{path, {}}, current_, nullptr);
  std::ofstream(path) << "{\"shadan_policy\": 1,";  // an editor's half-written file
  const size_t applies = firewall_.scripts.size();
  auto reloaded = reloader.reloadFiles("SIGHUP");
  ASSERT_FALSE(reloaded.ok());
  EXPECT_NE(reloaded.error().message.find(path.string()), std::string::npos)
      << reloaded.error().message;
  EXPECT_EQ(firewall_.scripts.size(), applies);
  EXPECT_EQ(core_->policy().name, "lab");
  EXPECT_EQ(lastAudit().event, "policy_reload_refused");
  EXPECT_EQ(lastAudit().reason, reloaded.error().message);

  std::ofstream(path) << labWithAllowRule().dump();
  auto fixed = reloader.reloadFiles("SIGHUP");
  ASSERT_TRUE(fixed.ok()) << fixed.error().message;
  EXPECT_EQ(core_->policy().name, "lab-v2");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace shadan::agent

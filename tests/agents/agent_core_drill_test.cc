// Drill safety on the agent (issue #17): a signed drill isolate without a ttl is refused and
// changes nothing; a drill's ttl is capped at the policy's agent.drill_max_ttl_s and the audit
// entries and the ack say so; with a lab trust file only drill orders are applied; every entry
// about a drill order is marked drill.
#include <gtest/gtest.h>

#include "agents/agent_core.h"
#include "agents/signed_orders.h"
#include "common/dsse.h"
#include "common/orders.h"
#include "tests/agents/agent_core_orders_fixture.h"

namespace shadan::agent {
namespace {

using nlohmann::json;

constexpr const char* kCmd1 = "11111111-1111-4111-8111-111111111111";
constexpr const char* kCmd2 = "22222222-2222-4222-8222-222222222222";

class AgentCoreDrillTest : public AgentCoreOrdersFixture {
 protected:
  AgentCoreDrillTest() : AgentCoreOrdersFixture({"operator"}) {}

  void SetUp() override {
    policy_ = loadPolicyFile(kLabPolicy).value().policy;
    policy_.agent.drill_max_ttl_s = 600;
    startCore(store_);
  }

  json drillIsolate(const std::string& command_id, int64_t gen,
                    std::optional<int64_t> ttl_s) const {
    json doc = {{"v", 1},
                {"command_id", command_id},
                {"action", "isolate"},
                {"segment", "office"},
                {"profile", "full"},
                {"segment_gen", gen},
                {"targets", {"gw"}},
                {"requested_by", "op:sato"},
                {"reason", "cutoff drill"},
                {"drill", true},
                {"issued_at", at(std::chrono::seconds(-10))},
                {"expires_at", at(std::chrono::minutes(30))}};
    if (ttl_s) doc["ttl_s"] = *ttl_s;
    return doc;
  }

  static Ack ackOf(const OrderOutcome& outcome) {
    auto envelope = dsseEnvelopeFromJson(outcome.ack_envelope, "ack", "");
    EXPECT_TRUE(envelope.ok());
    return parseAck(envelope->payload).value();
  }

  // The events appended after `from`, each of which must say drill.
  void expectAllDrill(size_t from) const {
    ASSERT_GT(audit_.events.size(), from);
    for (size_t i = from; i < audit_.events.size(); ++i) {
      EXPECT_EQ(audit_.events[i].drill, std::optional<bool>(true)) << audit_.events[i].event;
    }
  }
};

TEST_F(AgentCoreDrillTest, DrillIsolateWithoutTtlIsRejectedAuditedAndChangesNothing) {
  const std::string table_before = firewall_.table;
  const size_t from = audit_.events.size();
  auto outcome = core_->handleDispatch(dispatch(drillIsolate(kCmd1, 1, std::nullopt), {&sato_}, 1));
  ASSERT_TRUE(outcome.rejection.has_value());
  EXPECT_EQ(outcome.rejection->code(), "drill_without_ttl");
  const Ack ack = ackOf(outcome);
  EXPECT_EQ(ack.result, AckResult::kRejected);
  EXPECT_EQ(ack.reason, "drill_without_ttl");
  EXPECT_EQ(ack.seq, 1);
  EXPECT_TRUE(core_->desired().isolations.empty());
  EXPECT_EQ(firewall_.table, table_before);
  EXPECT_EQ(core_->desired().replay.last_seq, 0);  // the seq is not consumed
  ASSERT_EQ(audit_.events.size(), from + 1);       // one entry: the refusal
  EXPECT_EQ(audit_.events.back().event, "rejected");
  EXPECT_NE(audit_.events.back().reason->find("drill_without_ttl"), std::string::npos);
  expectAllDrill(from);
}

TEST_F(AgentCoreDrillTest, LongerDrillTtlIsCappedAndTheEntriesAndAckSaySo) {
  const size_t from = audit_.events.size();
  const int64_t now = toUnixMillis(clock_.now());
  auto outcome = core_->handleDispatch(dispatch(drillIsolate(kCmd1, 1, 7200), {&sato_}, 1));
  ASSERT_FALSE(outcome.rejection.has_value()) << outcome.rejection->message;
  const Ack ack = ackOf(outcome);
  EXPECT_EQ(ack.result, AckResult::kApplied);
  const std::string note = "ttl capped from 7200 s to 600 s by agent.drill_max_ttl_s";
  EXPECT_EQ(ack.reason, note);

  ASSERT_EQ(core_->desired().isolations.size(), 1u);
  const ActiveIsolation& active = core_->desired().isolations[0];
  EXPECT_TRUE(active.drill);
  EXPECT_EQ(active.expires_unix_ms, now + 600 * 1000);  // the capped ttl, not the order's

  std::vector<std::string> events;
  for (size_t i = from; i < audit_.events.size(); ++i) {
    const AuditEvent& e = audit_.events[i];
    events.push_back(e.event);
    ASSERT_TRUE(e.detail.has_value()) << e.event;
    EXPECT_EQ((*e.detail)["ttl_capped"], note) << e.event;
  }
  EXPECT_EQ(events, (std::vector<std::string>{"accepted", "applied"}));
  expectAllDrill(from);

  // The cap lifts it when the capped ttl runs out.
  clock_.advance(std::chrono::seconds(600));
  auto expired = core_->expireDue();
  ASSERT_TRUE(expired.ok());
  EXPECT_TRUE(core_->desired().isolations.empty());
  EXPECT_EQ(audit_.events.back().drill, std::optional<bool>(true));  // an expiry of drills
}

TEST_F(AgentCoreDrillTest, DrillTtlWithinTheCapIsKeptAndAckedWithoutANote) {
  const int64_t now = toUnixMillis(clock_.now());
  auto outcome = core_->handleDispatch(dispatch(drillIsolate(kCmd1, 1, 300), {&sato_}, 1));
  ASSERT_FALSE(outcome.rejection.has_value()) << outcome.rejection->message;
  const Ack ack = ackOf(outcome);
  EXPECT_EQ(ack.result, AckResult::kApplied);
  EXPECT_FALSE(ack.reason.has_value());
  ASSERT_EQ(core_->desired().isolations.size(), 1u);
  EXPECT_EQ(core_->desired().isolations[0].expires_unix_ms, now + 300 * 1000);
  EXPECT_FALSE(audit_.events.back().detail.has_value() &&
               audit_.events.back().detail->contains("ttl_capped"));
}

TEST_F(AgentCoreDrillTest, CapHelpersCapDrillsOnly) {
  Authz authz;
  authz.ttl_s = 7200;
  AgentOptions options;                          // default cap 3600
  EXPECT_EQ(appliedTtlS(authz, options), 7200);  // not a drill: never capped
  EXPECT_FALSE(ttlCapNote(authz, options).has_value());
  authz.drill = true;
  EXPECT_EQ(appliedTtlS(authz, options), 3600);
  EXPECT_EQ(ttlCapNote(authz, options),
            "ttl capped from 7200 s to 3600 s by agent.drill_max_ttl_s");
  authz.ttl_s.reset();
  EXPECT_FALSE(appliedTtlS(authz, options).has_value());
}

class AgentCoreLabTrustTest : public AgentCoreDrillTest {
 protected:
  void SetUp() override {
    AgentCoreDrillTest::SetUp();
    json lab = {
        {"shadan_trust", 1},
        {"version", 3},
        {"expires_at", "2030-01-01T00:00:00Z"},
        {"purpose", "lab"},
        {"keys",
         {trustKey(sato_, "drill:sato", {"drill"}), trustKey(tanaka_, "drill:tanaka", {"drill"}),
          trustKey(controller_, "controller", {"controller"}),
          trustKey(agent_, "agent:gw", {"agent"})}}};
    ASSERT_TRUE(core_->useTrust(parseTrust(lab.dump(), "lab.json").value(), agent_).ok());
  }
};

TEST_F(AgentCoreLabTrustTest, RefusesANonDrillOrderAndAppliesADrill) {
  const std::string table_before = firewall_.table;
  json real = drillIsolate(kCmd1, 1, 300);
  real["drill"] = false;
  real["requested_by"] = "drill:sato";
  auto refused = core_->handleDispatch(dispatch(real, {&sato_}, 1));
  ASSERT_TRUE(refused.rejection.has_value());
  EXPECT_EQ(refused.rejection->code(), "lab_trust_requires_drill");
  EXPECT_EQ(ackOf(refused).reason, "lab_trust_requires_drill");
  EXPECT_TRUE(core_->desired().isolations.empty());
  EXPECT_EQ(firewall_.table, table_before);
  EXPECT_NE(audit_.events.back().reason->find("lab_trust_requires_drill"), std::string::npos);

  json drill = drillIsolate(kCmd2, 1, 300);
  drill["requested_by"] = "drill:sato";
  auto applied = core_->handleDispatch(dispatch(drill, {&sato_}, 2));
  ASSERT_FALSE(applied.rejection.has_value()) << applied.rejection->message;
  EXPECT_EQ(ackOf(applied).result, AckResult::kApplied);
  ASSERT_EQ(core_->desired().isolations.size(), 1u);
  EXPECT_TRUE(core_->desired().isolations[0].drill);
}

}  // namespace
}  // namespace shadan::agent

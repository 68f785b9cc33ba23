// Drill safety in the verifier (issue #17): a drill isolate always carries a ttl_s; a lab trust
// file admits drill orders only; drill keys count as operators on drill orders only.
#include <gtest/gtest.h>

#include "tests/agents/order_verifier_fixture.h"

namespace shadan::agent {
namespace {

class DrillOrderTest : public OrderVerifierTest {
 protected:
  DrillOrderTest() : drill_sato_(keyFromByte(20)), drill_kato_(keyFromByte(21)) {}

  // The example isolate as a 30-minute drill.
  static json drillIsolate() {
    return edited(authzDoc(), [](json& d) {
      d["drill"] = true;
      d["ttl_s"] = 1800;
    });
  }

  // A lab trust file: two drill identities, the controller and the agents; no operator.
  void useLabTrust() {
    json doc = {{"shadan_trust", 1},
                {"version", 4},
                {"expires_at", "2027-01-01T00:00:00Z"},
                {"purpose", "lab"},
                {"keys",
                 {keyEntry(drill_sato_, "drill:sato", {"drill"}),
                  keyEntry(drill_kato_, "drill:kato", {"drill"}),
                  keyEntry(controller_, "controller", {"controller"}),
                  keyEntry(agent_, "agent:core-gw", {"agent"}),
                  keyEntry(other_agent_, "agent:inet-gw", {"agent"})}}};
    trust_ = parseTrust(doc.dump(), "lab-trust.json").value();
  }

  static json byDrillSato(json doc) {
    doc["requested_by"] = "drill:sato";
    return doc;
  }

  Ed25519Signer drill_sato_, drill_kato_;
};

TEST_F(DrillOrderTest, ReasonCodesAreStable) {
  EXPECT_STREQ(rejectReasonCode(RejectReason::kDrillWithoutTtl), "drill_without_ttl");
  EXPECT_STREQ(rejectReasonCode(RejectReason::kLabTrustRequiresDrill), "lab_trust_requires_drill");
}

TEST_F(DrillOrderTest, DrillIsolateWithoutTtlIsRejectedAndMarkedDrill) {
  json doc = drillIsolate();
  doc.erase("ttl_s");
  auto verdict = verify(dispatchBytes(doc, {&sato_}));
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.rejection().code(), "drill_without_ttl");
  EXPECT_TRUE(verdict.rejection().drill);
  EXPECT_EQ(verdict.rejection().claimed_seq, 1843);

  auto timed = verify(dispatchBytes(drillIsolate(), {&sato_}));
  ASSERT_TRUE(timed.ok()) << timed.rejection().message;
  EXPECT_TRUE(timed.order().authz.drill);

  // A restore has no ttl: a drill restore needs none.
  json restore = edited(restoreDoc(), [](json& d) { d["drill"] = true; });
  auto restored = verify(dispatchBytes(restore, {&sato_, &tanaka_}));
  EXPECT_TRUE(restored.ok()) << restored.rejection().message;
}

TEST_F(DrillOrderTest, RejectionOfARealOrderIsNotMarkedDrill) {
  auto verdict = verify(dispatchBytes(authzDoc(), {&eve_}));
  ASSERT_FALSE(verdict.ok());
  EXPECT_FALSE(verdict.rejection().drill);
  auto threshold = verify(dispatchBytes(restoreDoc(), {&sato_}));
  ASSERT_FALSE(threshold.ok());
  EXPECT_EQ(threshold.rejection().code(), "threshold_not_met");
  EXPECT_FALSE(threshold.rejection().drill);
}

TEST_F(DrillOrderTest, LabTrustAcceptsDrillOrdersSignedByDrillKeys) {
  useLabTrust();
  auto isolate = verify(dispatchBytes(byDrillSato(drillIsolate()), {&drill_sato_}));
  ASSERT_TRUE(isolate.ok()) << isolate.rejection().message;
  EXPECT_EQ(isolate.order().signer_identities, std::vector<std::string>{"drill:sato"});

  // Restore: two distinct drill identities meet the restore rule of operators.
  json restore = byDrillSato(edited(restoreDoc(), [](json& d) { d["drill"] = true; }));
  auto restored = verify(dispatchBytes(restore, {&drill_sato_, &drill_kato_}));
  ASSERT_TRUE(restored.ok()) << restored.rejection().message;
  EXPECT_EQ(restored.order().signer_identities,
            (std::vector<std::string>{"drill:sato", "drill:kato"}));
  auto one = verify(dispatchBytes(restore, {&drill_sato_}));
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.rejection().code(), "threshold_not_met");
  EXPECT_TRUE(one.rejection().drill);
}

TEST_F(DrillOrderTest, LabTrustRefusesEveryOrderThatIsNotADrill) {
  useLabTrust();
  json real_isolate = byDrillSato(edited(drillIsolate(), [](json& d) { d["drill"] = false; }));
  json on_behalf = edited(authzDoc(), [](json& d) {
    d["on_behalf_of"] = "op:sato";
    d["ttl_s"] = 600;
  });
  json real_restore = byDrillSato(restoreDoc());
  struct Case {
    const char* name;
    std::string bytes;
  };
  for (const Case& c :
       {Case{"isolate", dispatchBytes(real_isolate, {&drill_sato_})},
        Case{"controller on behalf", dispatchBytes(on_behalf, {&controller_})},
        Case{"restore", dispatchBytes(real_restore, {&drill_sato_, &drill_kato_})}}) {
    auto verdict = verify(c.bytes);
    ASSERT_FALSE(verdict.ok()) << c.name;
    EXPECT_EQ(verdict.rejection().code(), "lab_trust_requires_drill") << c.name;
    EXPECT_FALSE(verdict.rejection().drill) << c.name;
  }
  // The break-glass path too (a lab file has no breakglass key, but the reason comes first).
  const std::string file =
      envelopeJson(kAuthzPayloadType, real_isolate.dump(), {&drill_sato_}).dump();
  auto breakglass = verifyBreakglass(file, trust_, policy_, clock_, {}, "core-gw");
  ASSERT_FALSE(breakglass.ok());
  EXPECT_EQ(breakglass.rejection().code(), "lab_trust_requires_drill");
}

// A drill key never counts for a real order. A production trust file cannot list one (parseTrust
// refuses it), so this builds the Trust by hand to show the verifier does not count it anyway.
TEST_F(DrillOrderTest, DrillKeyCountsAsOperatorOnDrillOrdersOnly) {
  TrustKey drill{drill_sato_.keyId(), drill_sato_.publicKey(), "drill:sato", {TrustRole::kDrill}};
  trust_.keys.push_back(drill);
  json real = byDrillSato(authzDoc());
  auto verdict = verify(dispatchBytes(real, {&drill_sato_}));
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.rejection().code(), "threshold_not_met");
  auto drill_order = verify(dispatchBytes(byDrillSato(drillIsolate()), {&drill_sato_}));
  EXPECT_TRUE(drill_order.ok()) << drill_order.rejection().message;
}

// With a production trust file, an order signed by a drill key cannot verify: the key is not
// (cannot be) in the file.
TEST_F(DrillOrderTest, ProductionTrustNeverVerifiesADrillKey) {
  auto verdict = verify(dispatchBytes(byDrillSato(drillIsolate()), {&drill_sato_}));
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.rejection().code(), "unknown_keyid");
}

}  // namespace
}  // namespace shadan::agent

// Automatic response in the verifier (issue #16): an automatic isolate is the controller's own,
// on behalf of a detector, and always timed; a release (an automatic restore) may be signed by
// the controller on behalf of a caller when the trust file allows it; every other restore still
// needs the restore threshold of operators.
#include <gtest/gtest.h>

#include "tests/agents/order_verifier_fixture.h"

namespace shadan::agent {
namespace {

class AutomaticOrderTest : public OrderVerifierTest {
 protected:
  // The example isolate made automatic: the controller signs it for detector:ids-1, 30 min ttl.
  static json automaticIsolate() {
    return edited(authzDoc(), [](json& d) {
      d["automatic"] = true;
      d["ttl_s"] = 1800;
      d["on_behalf_of"] = "detector:ids-1";
      d["requested_by"] = "detector:ids-1";
    });
  }

  // A release of automatic isolations of lgwan, for web:sato (an operator's web session).
  static json release() {
    return edited(restoreDoc(), [](json& d) {
      d["automatic"] = true;
      d["on_behalf_of"] = "web:sato";
      d["requested_by"] = "web:sato";
    });
  }

  void useThresholds(const json& thresholds) {
    json doc = trustDoc();
    doc["thresholds"] = thresholds;
    trust_ = parseTrust(doc.dump(), "trust.json").value();
  }
};

TEST_F(AutomaticOrderTest, ReasonCodesAreStable) {
  EXPECT_STREQ(rejectReasonCode(RejectReason::kAutomaticWithoutTtl), "automatic_without_ttl");
  EXPECT_STREQ(rejectReasonCode(RejectReason::kAutomaticNotOnBehalf), "automatic_not_on_behalf");
  EXPECT_STREQ(rejectReasonCode(RejectReason::kReleaseNotAutomatic), "release_not_automatic");
}

TEST_F(AutomaticOrderTest, AutomaticIsolateByTheControllerOnBehalfIsAccepted) {
  auto result = verify(dispatchBytes(automaticIsolate(), {&controller_}));
  ASSERT_TRUE(result.ok()) << result.rejection().code() << ": " << result.rejection().message;
  EXPECT_TRUE(result.order().authz.automatic);
  EXPECT_TRUE(result.order().on_behalf);
  EXPECT_EQ(result.order().signer_identities, std::vector<std::string>{"controller"});

  // A host quarantine, the usual automatic response.
  const json host = edited(automaticIsolate(), [](json& d) {
    d["scope"] = "host";
    d["hosts"] = {"10.20.0.5"};
  });
  auto quarantine = verify(dispatchBytes(host, {&controller_}));
  ASSERT_TRUE(quarantine.ok()) << quarantine.rejection().message;
  EXPECT_EQ(quarantine.order().authz.scope, IsolationScope::kHost);
}

TEST_F(AutomaticOrderTest, ReleaseByTheControllerOnBehalfIsAccepted) {
  auto result = verify(dispatchBytes(release(), {&controller_}));
  ASSERT_TRUE(result.ok()) << result.rejection().code() << ": " << result.rejection().message;
  EXPECT_EQ(result.order().authz.action, OrderAction::kRestore);
  EXPECT_TRUE(result.order().authz.automatic);
  EXPECT_TRUE(result.order().on_behalf);
  EXPECT_EQ(result.order().signer_identities, std::vector<std::string>{"controller"});
}

TEST_F(AutomaticOrderTest, RefusesAutomaticOrdersOutOfShape) {
  struct Case {
    const char* name;
    json authz;
    Signers signers;
    RejectReason expected;
    const char* message;  // a substring of the rejection's message
  };
  const std::vector<Case> cases = {
      {"automatic isolate without ttl",
       edited(automaticIsolate(), [](json& d) { d.erase("ttl_s"); }),
       {&controller_},
       RejectReason::kAutomaticWithoutTtl,
       "always carries a ttl_s"},
      {"automatic isolate signed by an operator",
       edited(automaticIsolate(),
              [](json& d) {
                d.erase("on_behalf_of");
                d["requested_by"] = "op:sato";
              }),
       {&sato_},
       RejectReason::kAutomaticNotOnBehalf,
       "never signed by operators (signed by op:sato)"},
      {"automatic isolate co-signed by an operator",
       automaticIsolate(),
       {&controller_, &sato_},
       RejectReason::kAutomaticNotOnBehalf,
       "never signed by operators"},
      {"automatic isolate by the controller for nobody",
       edited(automaticIsolate(),
              [](json& d) {
                d.erase("on_behalf_of");
                d["requested_by"] = "controller";
              }),
       {&controller_},
       RejectReason::kAutomaticNotOnBehalf,
       "on behalf of a named caller"},
      {"automatic isolate of a protected segment",
       edited(automaticIsolate(), [](json& d) { d["segment"] = "mgmt"; }),
       {&controller_},
       RejectReason::kThresholdNotMet,
       "an automatic response never cuts what needs operators"},
      {"automatic isolate of the uplink (isolate_protected by default)",
       edited(automaticIsolate(),
              [](json& d) {
                d["scope"] = "uplink";
                d.erase("segment");
              }),
       {&controller_},
       RejectReason::kThresholdNotMet,
       "isolate of uplink"},
      {"automatic isolate for another caller than requested_by",
       edited(automaticIsolate(), [](json& d) { d["requested_by"] = "detector:other"; }),
       {&controller_},
       RejectReason::kRequestedByNotASigner,
       "requested_by"},
      {"release signed by two operators",
       edited(release(),
              [](json& d) {
                d.erase("on_behalf_of");
                d["requested_by"] = "op:sato";
              }),
       {&sato_, &tanaka_},
       RejectReason::kAutomaticNotOnBehalf,
       "an automatic restore is never signed by operators"},
      {"release without on_behalf_of",
       edited(release(),
              [](json& d) {
                d.erase("on_behalf_of");
                d["requested_by"] = "controller";
              }),
       {&controller_},
       RejectReason::kAutomaticNotOnBehalf,
       "on behalf of a named caller"},
      {"release for another caller than requested_by",
       edited(release(), [](json& d) { d["requested_by"] = "web:tanaka"; }),
       {&controller_},
       RejectReason::kRequestedByNotASigner,
       "requested_by"},
      // A plain restore is exactly what it was: operators only.
      {"restore (not automatic) by the controller on behalf",
       edited(release(), [](json& d) { d.erase("automatic"); }),
       {&controller_},
       RejectReason::kThresholdNotMet,
       "restore needs 2 distinct operator(s)"},
  };
  for (const Case& c : cases) {
    auto result = verify(dispatchBytes(c.authz, c.signers));
    ASSERT_FALSE(result.ok()) << c.name << ": accepted";
    EXPECT_EQ(result.rejection().code(), rejectReasonCode(c.expected))
        << c.name << ": " << result.rejection().message;
    EXPECT_NE(result.rejection().message.find(c.message), std::string::npos)
        << c.name << ": " << result.rejection().message;
  }
}

TEST_F(AutomaticOrderTest, TrustDisallowingReleaseOnBehalfRefusesIt) {
  useThresholds({{"release", {{"controller_on_behalf", false}}}});
  auto result = verify(dispatchBytes(release(), {&controller_}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.rejection().reason, RejectReason::kThresholdNotMet);
  EXPECT_NE(result.rejection().message.find("thresholds.release.controller_on_behalf is false"),
            std::string::npos)
      << result.rejection().message;
  // The automatic isolate and the operators' restore are not affected by the release rule.
  EXPECT_TRUE(verify(dispatchBytes(automaticIsolate(), {&controller_})).ok());
  EXPECT_TRUE(verify(dispatchBytes(restoreDoc(), {&sato_, &tanaka_})).ok());
}

TEST_F(AutomaticOrderTest, TrustDisallowingIsolateOnBehalfRefusesAutomaticIsolates) {
  useThresholds({{"isolate", {{"controller_on_behalf", false}}}});
  auto result = verify(dispatchBytes(automaticIsolate(), {&controller_}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.rejection().reason, RejectReason::kThresholdNotMet);
  // The release rule is its own: a release still passes.
  EXPECT_TRUE(verify(dispatchBytes(release(), {&controller_})).ok());
}

TEST_F(AutomaticOrderTest, ScopesMakingAUplinkAsSegmentLetAnAutomaticIsolatePassTheThreshold) {
  // With uplink under the segment rule, the threshold passes; step 7 then judges the gateway
  // (core-gw has no interfaces of the default segment in this policy).
  useThresholds({{"scopes", {{"uplink", "as_segment"}}}});
  const json uplink = edited(automaticIsolate(), [](json& d) {
    d["scope"] = "uplink";
    d.erase("segment");
  });
  auto result = verify(dispatchBytes(uplink, {&controller_}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.rejection().reason, RejectReason::kNoUplinkInterfaces);
}

TEST_F(AutomaticOrderTest, BreakglassFileIsNeverAutomatic) {
  const json authz = edited(authzDoc(), [](json& d) {
    d["automatic"] = true;
    d["ttl_s"] = 600;
  });
  auto result =
      verifyBreakglass(envelopeJson(kAuthzPayloadType, authz.dump(), {&sato_, &tanaka_}).dump(),
                       trust_, policy_, clock_, replay_.seen_command_ids, "core-gw");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.rejection().reason, RejectReason::kAutomaticNotOnBehalf);
}

}  // namespace
}  // namespace shadan::agent

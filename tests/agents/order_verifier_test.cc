#include "agents/orders/order_verifier.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "common/strict_json.h"
#include "tests/agents/order_verifier_fixture.h"
#include "tests/fakes/fake_clock.h"

namespace shadan::agent {
// Defined outside the anonymous namespace: the fixture (order_verifier_fixture.h) is shared.
std::vector<HostileCase> OrderVerifierTest::hostileCases() const {
  const auto good = [this] { return goodBytes(); };
  // The good dispatch envelope as JSON, to tamper with after signing.
  const auto good_envelope = [this] { return json::parse(goodBytes()); };
  const auto with_authz = [this](const json& authz, Signers signers) {
    return [this, authz, signers] { return dispatchBytes(authz, signers); };
  };
  const auto with_dispatch = [this](std::function<void(json&)> edit) {
    return [this, edit] { return dispatchBytes(authzDoc(), {&sato_}, edit); };
  };
  const json unknown_segment = edited(authzDoc(), [](json& d) { d["segment"] = "nope"; });

  return {
      // Step 1: size, envelope, type.
      {"oversized", [=, this] { return good() + std::string(kDsseEnvelopeMaxBytes, ' '); },
       RejectReason::kOversized},
      {"truncated",
       [=, this] {
         const std::string b = good();
         return b.substr(0, b.size() / 2);
       },
       RejectReason::kBadEnvelope},
      {"empty", [] { return std::string(); }, RejectReason::kBadEnvelope},
      {"extra envelope member",
       [=, this] { return edited(good_envelope(), [](json& d) { d["x"] = 1; }).dump(); },
       RejectReason::kBadEnvelope},
      {"bad base64 payload",
       [=, this] { return edited(good_envelope(), [](json& d) { d["payload"] = "!!!!"; }).dump(); },
       RejectReason::kBadEnvelope},
      {"duplicate key in envelope",
       [=, this] {
         std::string text = good();
         return "{\"payloadType\":\"x\"," + text.substr(1);
       },
       RejectReason::kDuplicateKey},
      {"tampered payloadType",
       [=, this] {
         return edited(good_envelope(),
                       [](json& d) { d["payloadType"] = std::string(kAuthzPayloadType); })
             .dump();
       },
       RejectReason::kWrongPayloadType},
      {"ack type signed by the controller",
       [=, this] {
         return signedDispatch(dispatchDoc(json::parse(good())).dump(), {}, kAckPayloadType);
       },
       RejectReason::kWrongPayloadType},
      // Step 2: controller signature.
      {"tampered payload",
       [=, this] {
         return edited(
                    good_envelope(),
                    [&](json& d) {
                      json dispatch =
                          dispatchDoc(envelopeJson(kAuthzPayloadType, authzDoc().dump(), {&sato_}));
                      dispatch["seq"] = 99999;
                      const std::string text = dispatch.dump();
                      d["payload"] = base64Encode(std::vector<uint8_t>(text.begin(), text.end()));
                    })
             .dump();
       },
       RejectReason::kBadControllerSignature},
      {"dispatch signed by an unknown key",
       [=, this] {
         return signedDispatch(
             dispatchDoc(envelopeJson(kAuthzPayloadType, authzDoc().dump(), {&sato_})).dump(),
             {&eve_});
       },
       RejectReason::kBadControllerSignature},
      {"dispatch signed by an operator, not the controller",
       [=, this] {
         return signedDispatch(
             dispatchDoc(envelopeJson(kAuthzPayloadType, authzDoc().dump(), {&sato_})).dump(),
             {&sato_});
       },
       RejectReason::kBadControllerSignature},
      {"controller signature plus a forged second one",
       [=, this] {
         return edited(good_envelope(),
                       [&](json& d) {
                         d["signatures"].push_back(
                             {{"keyid", controller_.keyId()},
                              {"sig", base64Encode(std::vector<uint8_t>(64, 1))}});
                       })
             .dump();
       },
       RejectReason::kBadControllerSignature},
      // Step 3: the dispatch itself.
      {"duplicate key in dispatch",
       [=, this] {
         std::string text =
             dispatchDoc(envelopeJson(kAuthzPayloadType, authzDoc().dump(), {&sato_})).dump();
         text.insert(1, R"("seq":2000000,)");
         return signedDispatch(text);
       },
       RejectReason::kDuplicateKey},
      {"dispatch version 2", with_dispatch([](json& d) { d["v"] = 2; }), RejectReason::kBadPayload},
      {"dispatch unknown member", with_dispatch([](json& d) { d["priority"] = 1; }),
       RejectReason::kBadPayload},
      {"addressed to another agent", with_dispatch([](json& d) { d["agent_id"] = "inet-gw"; }),
       RejectReason::kNotForThisAgent},
      {"wrong agent_key", with_dispatch([this](json& d) { d["agent_key"] = other_agent_.keyId(); }),
       RejectReason::kWrongAgentKey},
      // Step 4: freshness.
      {"expired dispatch", with_dispatch([](json& d) {
         d["issued_at"] = "2026-11-26T09:50:00Z";
         d["expires_at"] = "2026-11-26T10:00:59Z";
       }),
       RejectReason::kStale},
      {"issued in the future beyond the skew", with_dispatch([](json& d) {
         d["issued_at"] = "2026-11-26T10:03:01Z";
         d["expires_at"] = "2026-11-26T10:08:00Z";
       }),
       RejectReason::kFromTheFuture},
      {"dispatch window over 15 minutes",
       with_dispatch([](json& d) { d["expires_at"] = "2026-11-26T10:17:01Z"; }),
       RejectReason::kValidityTooLong},
      // Step 5: order.
      {"replayed seq (equal)", good, RejectReason::kReplayedSeq,
       [](AgentReplayState& r) { r.last_seq = 1843; }},
      {"replayed seq (lower)", good, RejectReason::kReplayedSeq,
       [](AgentReplayState& r) { r.last_seq = 5000; }},
      // Step 6: the authz signatures and threshold.
      {"authz payloadType of a dispatch",
       [=, this] {
         return signedDispatch(
             dispatchDoc(envelopeJson(kDispatchPayloadType, authzDoc().dump(), {&sato_})).dump());
       },
       RejectReason::kWrongPayloadType},
      {"authz payload altered by the controller",
       [=, this] {
         json authz_envelope = envelopeJson(kAuthzPayloadType, authzDoc().dump(), {&sato_});
         const std::string changed = restoreDoc().dump();
         authz_envelope["payload"] =
             base64Encode(std::vector<uint8_t>(changed.begin(), changed.end()));
         return signedDispatch(dispatchDoc(authz_envelope).dump());
       },
       RejectReason::kBadAuthzSignature},
      {"authz payloadType altered by the controller",
       [=, this] {
         json authz_envelope = envelopeJson(kAuthzPayloadType, authzDoc().dump(), {&sato_});
         authz_envelope["payloadType"] = "application/vnd.shadan.authz.v2+json";
         return signedDispatch(dispatchDoc(authz_envelope).dump());
       },
       RejectReason::kWrongPayloadType},
      {"authz signed by an unknown key", with_authz(authzDoc(), {&eve_}),
       RejectReason::kUnknownKeyid},
      {"authz with an unknown extra signature", with_authz(authzDoc(), {&sato_, &eve_}),
       RejectReason::kUnknownKeyid},
      {"duplicate key in authz",
       [=, this] {
         std::string text = authzDoc().dump();
         text.insert(1, R"("action":"restore",)");
         return signedDispatch(dispatchDoc(envelopeJson(kAuthzPayloadType, text, {&sato_})).dump());
       },
       RejectReason::kDuplicateKey},
      {"authz without a reason",
       with_authz(edited(authzDoc(), [](json& d) { d.erase("reason"); }), {&sato_}),
       RejectReason::kBadPayload},
      {"valid signature by a key without the role (agent key)",
       with_authz(edited(authzDoc(), [](json& d) { d["requested_by"] = "agent:core-gw"; }),
                  {&agent_}),
       RejectReason::kThresholdNotMet},
      {"restore padded with the same key twice", with_authz(restoreDoc(), {&sato_, &sato_}),
       RejectReason::kThresholdNotMet},
      {"restore by two keys of the same identity",
       with_authz(restoreDoc(), {&sato_, &sato_laptop_}), RejectReason::kThresholdNotMet},
      {"restore by one operator", with_authz(restoreDoc(), {&tanaka_, &agent_}),
       RejectReason::kThresholdNotMet},
      {"restore signed by the controller alone", with_authz(restoreDoc(), {&controller_}),
       RejectReason::kThresholdNotMet},
      {"restore by the controller on behalf of a caller",
       with_authz(edited(restoreDoc(),
                         [](json& d) {
                           d["on_behalf_of"] = "web:sato";
                           d["requested_by"] = "web:sato";
                         }),
                  {&controller_}),
       RejectReason::kThresholdNotMet},
      {"controller without on_behalf_of", with_authz(authzDoc(), {&controller_}),
       RejectReason::kThresholdNotMet},
      {"on_behalf_of without the controller",
       with_authz(edited(authzDoc(), [](json& d) { d["on_behalf_of"] = "detector:ids-1"; }),
                  {&sato_}),
       RejectReason::kBadOnBehalf},
      {"protected isolate by one operator",
       with_authz(edited(authzDoc(), [](json& d) { d["segment"] = "mgmt"; }), {&sato_}),
       RejectReason::kThresholdNotMet},
      {"protected isolate by the controller on behalf",
       with_authz(edited(authzDoc(),
                         [](json& d) {
                           d["segment"] = "mgmt";
                           d["on_behalf_of"] = "detector:ids-1";
                           d["requested_by"] = "detector:ids-1";
                         }),
                  {&controller_}),
       RejectReason::kThresholdNotMet},
      {"unknown segment counts as protected", with_authz(unknown_segment, {&sato_}),
       RejectReason::kThresholdNotMet},
      {"requested_by not a signer", with_authz(authzDoc(), {&tanaka_}),
       RejectReason::kRequestedByNotASigner},
      {"on-behalf requested_by is not the caller",
       with_authz(edited(authzDoc(), [](json& d) { d["on_behalf_of"] = "detector:ids-1"; }),
                  {&controller_}),
       RejectReason::kRequestedByNotASigner},
      // Step 7: semantics.
      {"not in targets",
       with_authz(edited(authzDoc(), [](json& d) { d["targets"] = {"inet-gw"}; }), {&sato_}),
       RejectReason::kNotATarget},
      {"authz expired",
       with_authz(edited(authzDoc(),
                         [](json& d) {
                           d["issued_at"] = "2026-11-26T09:00:00Z";
                           d["expires_at"] = "2026-11-26T10:00:59Z";
                         }),
                  {&sato_}),
       RejectReason::kAuthzExpired},
      {"authz from the future",
       with_authz(edited(authzDoc(),
                         [](json& d) {
                           d["issued_at"] = "2026-11-26T10:05:00Z";
                           d["expires_at"] = "2026-11-26T10:35:00Z";
                         }),
                  {&sato_}),
       RejectReason::kFromTheFuture},
      {"authz window over 24 hours",
       with_authz(edited(authzDoc(), [](json& d) { d["expires_at"] = "2026-11-27T10:01:01Z"; }),
                  {&sato_}),
       RejectReason::kValidityTooLong},
      {"command id replayed", good, RejectReason::kCommandReplayed,
       [](AgentReplayState& r) {
         r.seen_command_ids.insert("5f0c7a4e-2b1d-4c3a-9e8f-0a1b2c3d4e5f");
       }},
      {"older restore after a newer isolate", with_authz(restoreDoc(), {&sato_, &tanaka_}),
       RejectReason::kOldSegmentGen, [](AgentReplayState& r) { r.segment_gens["lgwan"] = 59; }},
      {"same segment_gen again", good, RejectReason::kOldSegmentGen,
       [](AgentReplayState& r) { r.segment_gens["lgwan"] = 58; }},
      {"unknown segment", with_authz(unknown_segment, {&sato_, &tanaka_}),
       RejectReason::kUnknownSegment},
      {"unknown profile",
       with_authz(edited(authzDoc(), [](json& d) { d["profile"] = "nope"; }), {&sato_}),
       RejectReason::kUnknownProfile},
  };
}

namespace {

TEST_F(OrderVerifierTest, IsolateByOneOperator) {
  auto result = verify(goodBytes());
  ASSERT_TRUE(result.ok()) << result.rejection().code() << ": " << result.rejection().message;
  const VerifiedOrder& order = result.order();
  ASSERT_TRUE(order.dispatch.has_value());
  EXPECT_EQ(order.dispatch->seq, 1843);
  EXPECT_EQ(order.dispatch->agent_id, "core-gw");
  EXPECT_EQ(order.controller_keyid, controller_.keyId());
  EXPECT_EQ(order.authz.action, OrderAction::kIsolate);
  EXPECT_EQ(order.authz.segment, "lgwan");
  EXPECT_EQ(order.authz.segment_gen, 58);
  EXPECT_EQ(order.signer_identities, std::vector<std::string>{"op:sato"});
  EXPECT_EQ(order.signer_keyids, std::vector<std::string>{sato_.keyId()});
  EXPECT_FALSE(order.on_behalf);
  EXPECT_FALSE(order.breakglass);
  // authz_sha256 is the hash of the exact signed authz bytes.
  EXPECT_EQ(order.authz_sha256, sha256Hex(authzDoc().dump()));
}

TEST_F(OrderVerifierTest, IsolateByControllerOnBehalf) {
  const json authz = edited(authzDoc(), [](json& d) {
    d["on_behalf_of"] = "detector:ids-1";
    d["requested_by"] = "detector:ids-1";
  });
  auto result = verify(dispatchBytes(authz, {&controller_}));
  ASSERT_TRUE(result.ok()) << result.rejection().code() << ": " << result.rejection().message;
  EXPECT_TRUE(result.order().on_behalf);
  EXPECT_EQ(result.order().signer_identities, std::vector<std::string>{"controller"});
  EXPECT_EQ(result.order().authz.on_behalf_of, "detector:ids-1");
}

TEST_F(OrderVerifierTest, RestoreByTwoOperators) {
  auto result = verify(dispatchBytes(restoreDoc(), {&sato_, &tanaka_}));
  ASSERT_TRUE(result.ok()) << result.rejection().code() << ": " << result.rejection().message;
  EXPECT_EQ(result.order().authz.action, OrderAction::kRestore);
  EXPECT_EQ(result.order().signer_identities, (std::vector<std::string>{"op:sato", "op:tanaka"}));
  // The controller may co-sign the envelope; it does not count, and is not refused.
  auto with_controller = verify(dispatchBytes(restoreDoc(), {&sato_, &controller_, &tanaka_}));
  ASSERT_TRUE(with_controller.ok()) << with_controller.rejection().message;
  EXPECT_EQ(with_controller.order().signer_identities,
            (std::vector<std::string>{"op:sato", "op:tanaka"}));
}

TEST_F(OrderVerifierTest, ProtectedIsolateByTwoOperators) {
  const json authz = edited(authzDoc(), [](json& d) {
    d["segment"] = "mgmt";
    d["segment_gen"] = 4;
  });
  auto result = verify(dispatchBytes(authz, {&sato_, &suzuki_}));
  ASSERT_TRUE(result.ok()) << result.rejection().code() << ": " << result.rejection().message;
  EXPECT_EQ(result.order().signer_identities, (std::vector<std::string>{"op:sato", "op:suzuki"}));
}

TEST_F(OrderVerifierTest, AcceptsIssuedAtWithinTheSkew) {
  auto result = verify(dispatchBytes(authzDoc(), {&sato_}, [](json& d) {
    d["issued_at"] = "2026-11-26T10:02:59Z";
    d["expires_at"] = "2026-11-26T10:07:00Z";
  }));
  EXPECT_TRUE(result.ok()) << result.rejection().message;
  // Just expired, still inside the skew.
  auto late = verify(dispatchBytes(authzDoc(), {&sato_}, [](json& d) {
    d["issued_at"] = "2026-11-26T09:56:00Z";
    d["expires_at"] = "2026-11-26T10:01:01Z";
  }));
  EXPECT_TRUE(late.ok()) << late.rejection().message;
}

// Dispatch envelopes to refuse, one or more per check of steps 1-7, with their reason code.
TEST_F(OrderVerifierTest, RefusesHostileInputsWithTheirReasonCode) {
  const std::vector<HostileCase> cases = hostileCases();
  for (const HostileCase& c : cases) {
    AgentReplayState replay = replay_;
    if (c.edit_replay) c.edit_replay(replay);
    auto result = verifyDispatch(c.bytes(), trust_, self_, replay, policy_, clock_);
    ASSERT_FALSE(result.ok()) << c.name << ": accepted";
    EXPECT_EQ(result.rejection().code(), rejectReasonCode(c.expected))
        << c.name << ": " << result.rejection().message;
    EXPECT_FALSE(result.rejection().message.empty()) << c.name;
  }
}

// The daemon hands the verifier the envelope its controller frame parsed: the verdict must be
// the one the text of that envelope gets (what the daemon used to pass, envelope.dump()).
TEST_F(OrderVerifierTest, ParsedEnvelopeGetsTheVerdictOfItsText) {
  // An envelope over the cap as JSON, not only as padded text: a member holding the padding
  // (refused as oversized before its shape is looked at), and a well-formed envelope whose
  // signature list makes it large (refused too, but the seq it claims can still be read).
  const auto padded = [this](size_t bytes) {
    json envelope = json::parse(goodBytes());
    envelope["padding"] = std::string(bytes, 'x');
    return envelope.dump();
  };
  const auto heavy_signature = [this](size_t bytes) {
    json envelope = json::parse(goodBytes());
    envelope["signatures"].push_back(
        {{"keyid", eve_.keyId()}, {"sig", base64Encode(std::vector<uint8_t>(bytes, 7))}});
    return envelope.dump();
  };
  std::vector<HostileCase> cases = hostileCases();
  cases.push_back({"oversized by a member", [=] { return padded(kDsseEnvelopeMaxBytes); },
                   RejectReason::kOversized});
  cases.push_back({"oversized by a signature", [=] { return heavy_signature(100 * 1024); },
                   RejectReason::kOversized});
  cases.push_back({"over the frame cap", [=] { return heavy_signature(200 * 1024); },
                   RejectReason::kOversized});

  size_t compared = 0;
  for (const HostileCase& c : cases) {
    AgentReplayState replay = replay_;
    if (c.edit_replay) c.edit_replay(replay);
    // What the controller link would hand over; text it refuses never reaches the verifier.
    auto doc = parseStrictJson(c.bytes(), "frame", 1 << 20);
    if (!doc.ok()) continue;
    ++compared;
    auto from_text = verifyDispatch(doc->dump(), trust_, self_, replay, policy_, clock_);
    auto from_json = verifyDispatchJson(*doc, trust_, self_, replay, policy_, clock_);
    ASSERT_EQ(from_json.ok(), from_text.ok()) << c.name;
    // "oversized" is oversized by whitespace only, which parsing drops: both accept it.
    if (from_text.ok()) {
      EXPECT_EQ(from_json.order().dispatch->seq, from_text.order().dispatch->seq) << c.name;
      EXPECT_EQ(from_json.order().authz_sha256, from_text.order().authz_sha256) << c.name;
      EXPECT_EQ(from_json.order().signer_identities, from_text.order().signer_identities);
      continue;
    }
    EXPECT_EQ(from_text.rejection().code(), rejectReasonCode(c.expected))
        << c.name << ": " << from_text.rejection().message;
    EXPECT_EQ(from_json.rejection().code(), from_text.rejection().code()) << c.name;
    if (doc->dump().size() <= kDispatchClaimMaxBytes) {
      EXPECT_EQ(from_json.rejection().message, from_text.rejection().message) << c.name;
    } else {
      EXPECT_NE(from_json.rejection().message.find("of more than 262144 bytes"), std::string::npos)
          << from_json.rejection().message;
    }
    EXPECT_EQ(from_json.rejection().claimed_seq, from_text.rejection().claimed_seq) << c.name;
  }
  // Only the cases that are not JSON at all (truncated, empty, duplicate keys in the envelope)
  // are left out.
  EXPECT_EQ(compared, cases.size() - 3);

  const json good = json::parse(goodBytes());
  auto accepted = verifyDispatchJson(good, trust_, self_, replay_, policy_, clock_);
  ASSERT_TRUE(accepted.ok()) << accepted.rejection().message;
  EXPECT_EQ(accepted.order().dispatch->seq, 1843);
}

// A rejection names the seq the dispatch claimed whenever its envelope and payload parse, up to
// the frame cap, whatever step refused it; never for an envelope that does not parse.
TEST_F(OrderVerifierTest, RejectionNamesTheClaimedSeq) {
  struct Case {
    const char* name;
    std::string bytes;
    std::optional<int64_t> seq;
  };
  json big = json::parse(goodBytes());
  big["signatures"].push_back(
      {{"keyid", eve_.keyId()}, {"sig", base64Encode(std::vector<uint8_t>(100 * 1024, 7))}});
  json huge = json::parse(goodBytes());
  huge["signatures"].push_back(
      {{"keyid", eve_.keyId()}, {"sig", base64Encode(std::vector<uint8_t>(200 * 1024, 7))}});
  const std::vector<Case> cases = {
      {"not for this agent",
       dispatchBytes(authzDoc(), {&sato_}, [](json& d) { d["agent_id"] = "inet-gw"; }), 1843},
      {"signed by an operator",
       signedDispatch(
           dispatchDoc(envelopeJson(kAuthzPayloadType, authzDoc().dump(), {&sato_})).dump(),
           {&sato_}),
       1843},
      {"oversized, well formed", big.dump(), 1843},
      {"over the frame cap", huge.dump(), std::nullopt},
      {"not JSON", "{\"payloadType\":", std::nullopt},
      {"payload not a dispatch", signedDispatch(R"({"v":1})"), std::nullopt},
  };
  for (const Case& c : cases) {
    auto result = verify(c.bytes);
    ASSERT_FALSE(result.ok()) << c.name;
    EXPECT_EQ(result.rejection().claimed_seq, c.seq) << c.name;
  }
  const FakeClock later(ms("2027-01-01T00:00:01Z"));
  auto expired_trust = verifyDispatch(goodBytes(), trust_, self_, replay_, policy_, later);
  ASSERT_FALSE(expired_trust.ok());
  EXPECT_EQ(expired_trust.rejection().claimed_seq, 1843);
}

TEST_F(OrderVerifierTest, TrustDisallowingOnBehalfRefusesIt) {
  json doc = trustDoc();
  doc["thresholds"] = {{"isolate", {{"controller_on_behalf", false}}}};
  trust_ = parseTrust(doc.dump(), "trust.json").value();
  const json authz = edited(authzDoc(), [](json& d) {
    d["on_behalf_of"] = "detector:ids-1";
    d["requested_by"] = "detector:ids-1";
  });
  auto result = verify(dispatchBytes(authz, {&controller_}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.rejection().reason, RejectReason::kThresholdNotMet);
  // An operator signature still suffices under the same trust.
  EXPECT_TRUE(verify(goodBytes()).ok());
}

TEST_F(OrderVerifierTest, RaisedIsolateThresholdNeedsMoreOperators) {
  json doc = trustDoc();
  doc["thresholds"] = {{"isolate", {{"operators", 2}}}};
  trust_ = parseTrust(doc.dump(), "trust.json").value();
  auto one = verify(goodBytes());
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.rejection().reason, RejectReason::kThresholdNotMet);
  EXPECT_TRUE(verify(dispatchBytes(authzDoc(), {&sato_, &suzuki_})).ok());
}

TEST_F(OrderVerifierTest, ExpiredTrustRefusesEverything) {
  const FakeClock later(ms("2027-01-01T00:00:01Z"));
  auto result = verifyDispatch(goodBytes(), trust_, self_, replay_, policy_, later);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.rejection().reason, RejectReason::kTrustExpired);
}

TEST_F(OrderVerifierTest, RejectionConvertsToAnError) {
  auto result = verify(dispatchBytes(authzDoc(), {&tanaka_}));
  ASSERT_FALSE(result.ok());
  const Error error = result.rejection().toError();
  EXPECT_EQ(error.message.rfind("requested_by_not_a_signer: ", 0), 0u) << error.message;
}

// ---------------------------------------------------------------------------------------------
// Break-glass

class BreakglassTest : public OrderVerifierTest {
 protected:
  static json breakglassDoc() {
    return edited(authzDoc(), [](json& d) {
      d["command_id"] = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
      d["expires_at"] = "2026-11-26T10:31:00Z";
    });
  }

  OrderVerification verifyFile(const json& authz, const Signers& signers,
                               std::string_view type = kAuthzPayloadType) const {
    return verifyBreakglass(envelopeJson(type, authz.dump(), signers).dump(), trust_, policy_,
                            clock_, replay_.seen_command_ids, "core-gw");
  }
};

TEST_F(BreakglassTest, IsolateByTwoBreakglassIdentities) {
  auto result = verifyFile(breakglassDoc(), {&sato_, &tanaka_});
  ASSERT_TRUE(result.ok()) << result.rejection().code() << ": " << result.rejection().message;
  EXPECT_TRUE(result.order().breakglass);
  EXPECT_FALSE(result.order().dispatch.has_value());
  EXPECT_TRUE(result.order().controller_keyid.empty());
  EXPECT_EQ(result.order().signer_identities, (std::vector<std::string>{"op:sato", "op:tanaka"}));
  EXPECT_EQ(result.order().authz_sha256, sha256Hex(breakglassDoc().dump()));
}

TEST_F(BreakglassTest, RefusesWhatBreakglassMayNotDo) {
  struct Case {
    const char* name;
    json authz;
    Signers signers;
    RejectReason expected;
  };
  const std::vector<Case> cases = {
      {"restore",
       edited(breakglassDoc(), [](json& d) { d["action"] = "restore"; }),
       {&sato_, &tanaka_},
       RejectReason::kBreakglassNotIsolate},
      {"one identity", breakglassDoc(), {&sato_}, RejectReason::kThresholdNotMet},
      {"two keys of one identity",
       breakglassDoc(),
       {&sato_, &sato_laptop_},
       RejectReason::kThresholdNotMet},
      {"an operator without breakglass",
       breakglassDoc(),
       {&sato_, &suzuki_},
       RejectReason::kThresholdNotMet},
      {"the controller", breakglassDoc(), {&sato_, &controller_}, RejectReason::kThresholdNotMet},
      {"requested_by not a breakglass signer",
       edited(breakglassDoc(), [](json& d) { d["requested_by"] = "op:suzuki"; }),
       {&sato_, &tanaka_, &suzuki_},
       RejectReason::kRequestedByNotASigner},
      {"on behalf",
       edited(breakglassDoc(), [](json& d) { d["on_behalf_of"] = "x"; }),
       {&sato_, &tanaka_},
       RejectReason::kBadOnBehalf},
      {"validity over an hour",
       edited(breakglassDoc(), [](json& d) { d["expires_at"] = "2026-11-26T11:01:01Z"; }),
       {&sato_, &tanaka_},
       RejectReason::kValidityTooLong},
      {"expired",
       edited(breakglassDoc(),
              [](json& d) {
                d["issued_at"] = "2026-11-26T09:00:00Z";
                d["expires_at"] = "2026-11-26T09:30:00Z";
              }),
       {&sato_, &tanaka_},
       RejectReason::kAuthzExpired},
      {"command id reused",
       edited(breakglassDoc(),
              [](json& d) { d["command_id"] = "00000000-0000-4000-8000-000000000001"; }),
       {&sato_, &tanaka_},
       RejectReason::kCommandReplayed},
      {"not a target",
       edited(breakglassDoc(), [](json& d) { d["targets"] = {"inet-gw"}; }),
       {&sato_, &tanaka_},
       RejectReason::kNotATarget},
      {"unknown segment",
       edited(breakglassDoc(), [](json& d) { d["segment"] = "nope"; }),
       {&sato_, &tanaka_},
       RejectReason::kUnknownSegment},
      {"unknown key", breakglassDoc(), {&sato_, &tanaka_, &eve_}, RejectReason::kUnknownKeyid},
  };
  for (const Case& c : cases) {
    auto result = verifyFile(c.authz, c.signers);
    ASSERT_FALSE(result.ok()) << c.name << ": accepted";
    EXPECT_EQ(result.rejection().code(), rejectReasonCode(c.expected))
        << c.name << ": " << result.rejection().message;
  }
  // A dispatch envelope is not a break-glass file.
  auto dispatch = verifyBreakglass(goodBytes(), trust_, policy_, clock_, {}, "core-gw");
  ASSERT_FALSE(dispatch.ok());
  EXPECT_EQ(dispatch.rejection().reason, RejectReason::kWrongPayloadType);
  // Nor is garbage.
  auto garbage = verifyBreakglass("{\"payloadType\":", trust_, policy_, clock_, {}, "core-gw");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.rejection().reason, RejectReason::kBadEnvelope);
}

}  // namespace
}  // namespace shadan::agent

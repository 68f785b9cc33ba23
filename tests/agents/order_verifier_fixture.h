#pragma once

// The fixture of the order verifier's tests (order_verifier_test.cc, order_target_test.cc): a
// trust file with operators, break-glass holders, the controller and two agents; a policy; an
// agent's replay state; and helpers that sign an authz, wrap it in a dispatch and sign that.

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agents/orders/order_verifier.h"
#include "tests/fakes/fake_clock.h"

namespace shadan::agent {

using nlohmann::json;

using testing::FakeClock;

inline int64_t ms(const char* text) { return parseRfc3339UtcMillis(text).value(); }

inline Ed25519KeyPair keyFromByte(uint8_t byte) {
  std::vector<uint8_t> seed(kEd25519SeedBytes, byte);
  return Ed25519KeyPair::fromSeed(seed).value();
}

inline json keyEntry(const Ed25519Signer& key, const std::string& identity,
                     const std::vector<std::string>& roles) {
  return {{"keyid", key.keyId()},
          {"public_key", base64Encode(key.publicKey())},
          {"identity", identity},
          {"roles", roles}};
}

inline constexpr const char* kPolicy = R"({
  "shadan_policy": 1,
  "name": "verifier-test",
  "segments": {
    "lgwan":    {"prefixes": ["10.20.0.0/24"]},
    "mgmt":     {"prefixes": ["10.99.0.0/24"], "protected": true},
    "internet": {"default": true}
  },
  "gateways": {"core-gw": {"borders": ["lgwan", "mgmt", "internet"]},
               "inet-gw": {"borders": ["internet"]}},
  "management": {"always_allow": [{"prefix": "10.99.0.10/32"}]},
  "profiles": {"full": {}, "internet-only": {"peers": ["internet"]}}
})";

using Signers = std::vector<const Signer*>;

struct HostileCase {
  std::string name;
  std::function<std::string()> bytes;
  RejectReason expected;
  std::function<void(AgentReplayState&)> edit_replay = {};
};

class OrderVerifierTest : public ::testing::Test {
 protected:
  OrderVerifierTest()
      : sato_(keyFromByte(1)),
        sato_laptop_(keyFromByte(2)),
        tanaka_(keyFromByte(3)),
        suzuki_(keyFromByte(4)),
        controller_(keyFromByte(5)),
        agent_(keyFromByte(6)),
        other_agent_(keyFromByte(7)),
        eve_(keyFromByte(8)),
        clock_(ms("2026-11-26T10:02:00Z")) {
    trust_ = parseTrust(trustDoc().dump(), "trust.json").value();
    policy_ = parsePolicy(kPolicy, "policy.json").value().policy;
    self_ = AgentSelf{"core-gw", agent_.keyId()};
    replay_.last_seq = 1842;
    replay_.seen_command_ids = {"00000000-0000-4000-8000-000000000001"};
    replay_.segment_gens = {{"lgwan", 57}, {"mgmt", 3}};
  }

  json trustDoc() const {
    return {{"shadan_trust", 1},
            {"version", 4},
            {"expires_at", "2027-01-01T00:00:00Z"},
            {"keys",
             {keyEntry(sato_, "op:sato", {"operator", "breakglass"}),
              keyEntry(sato_laptop_, "op:sato", {"operator", "breakglass"}),
              keyEntry(tanaka_, "op:tanaka", {"operator", "breakglass"}),
              keyEntry(suzuki_, "op:suzuki", {"operator"}),
              keyEntry(controller_, "controller", {"controller"}),
              keyEntry(agent_, "agent:core-gw", {"agent"}),
              keyEntry(other_agent_, "agent:inet-gw", {"agent"})}}};
  }

  // An isolate of lgwan by op:sato, valid 10:01-10:31.
  static json authzDoc() {
    return {{"v", 1},
            {"command_id", "5f0c7a4e-2b1d-4c3a-9e8f-0a1b2c3d4e5f"},
            {"action", "isolate"},
            {"segment", "lgwan"},
            {"profile", "full"},
            {"segment_gen", 58},
            {"targets", {"core-gw", "inet-gw"}},
            {"requested_by", "op:sato"},
            {"reason", "JPCERT notice 2026-11-26"},
            {"drill", false},
            {"issued_at", "2026-11-26T10:01:00Z"},
            {"expires_at", "2026-11-26T10:31:00Z"}};
  }

  static json restoreDoc() {
    json doc = authzDoc();
    doc["action"] = "restore";
    doc["reason"] = "all clear";
    return doc;
  }

  static json envelopeJson(std::string_view type, const std::string& payload,
                           const Signers& signers) {
    return dsseEnvelopeToJson(signDsse(type, payload, signers).value());
  }

  json dispatchDoc(const json& authz_envelope) const {
    return {{"v", 1},
            {"agent_id", "core-gw"},
            {"agent_key", agent_.keyId()},
            {"seq", 1843},
            {"issued_at", "2026-11-26T10:02:00Z"},
            {"expires_at", "2026-11-26T10:07:00Z"},
            {"authz", authz_envelope}};
  }

  std::string signedDispatch(const std::string& dispatch_payload, Signers signers = {},
                             std::string_view type = kDispatchPayloadType) const {
    if (signers.empty()) signers = {&controller_};
    return envelopeJson(type, dispatch_payload, signers).dump();
  }

  // The full chain: authz signed by `authz_signers`, wrapped in a dispatch (optionally edited)
  // signed by the controller.
  std::string dispatchBytes(const json& authz, const Signers& authz_signers,
                            const std::function<void(json&)>& edit_dispatch = {}) const {
    json dispatch = dispatchDoc(envelopeJson(kAuthzPayloadType, authz.dump(), authz_signers));
    if (edit_dispatch) edit_dispatch(dispatch);
    return signedDispatch(dispatch.dump());
  }

  std::string goodBytes() const { return dispatchBytes(authzDoc(), {&sato_}); }

  std::vector<HostileCase> hostileCases() const;

  OrderVerification verify(const std::string& bytes) const {
    return verifyDispatch(bytes, trust_, self_, replay_, policy_, clock_);
  }

  Ed25519Signer sato_, sato_laptop_, tanaka_, suzuki_, controller_, agent_, other_agent_, eve_;
  FakeClock clock_;
  Trust trust_;
  Policy policy_;
  AgentSelf self_;
  AgentReplayState replay_;
};

template <typename Edit>
json edited(json doc, Edit edit) {
  edit(doc);
  return doc;
}

}  // namespace shadan::agent

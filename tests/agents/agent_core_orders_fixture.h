#pragma once

// The fixture of AgentCore's signed-order tests (agent_core_orders_test.cc,
// agent_core_release_test.cc): the lab policy on gateway "gw", AgentCore over fakes, a trust
// file with two operators (op:sato, op:tanaka), the controller and the agent, and a helper that
// wraps a signed authz in a dispatch signed by the controller.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agents/agent_core.h"
#include "common/dsse.h"
#include "common/orders.h"
#include "tests/fakes/fake_backends.h"

namespace shadan::agent {

inline const std::string kLabPolicy =
    std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";

inline nlohmann::json trustKey(const Ed25519Signer& key, const std::string& identity,
                               const std::vector<std::string>& roles) {
  return {{"keyid", key.keyId()},
          {"public_key", base64Encode(key.publicKey())},
          {"identity", identity},
          {"roles", roles}};
}

class AgentCoreOrdersFixture : public ::testing::Test {
 protected:
  // `operator_roles`: the roles op:sato and op:tanaka hold in the trust file.
  explicit AgentCoreOrdersFixture(std::vector<std::string> operator_roles)
      : operator_roles_(std::move(operator_roles)) {}

  void SetUp() override {
    policy_ = loadPolicyFile(kLabPolicy).value().policy;
    startCore(store_);
  }

  // A new core_ on `store`, started, with the trust file in use.
  void startCore(StateStore& store) {
    core_ = std::make_unique<AgentCore>(
        policy_, "gw",
        AgentCoreDeps{store, firewall_, routes_, conntrack_, audit_, clock_, "host", "0.1.0"});
    ASSERT_TRUE(core_->start().ok());
    nlohmann::json trust = {{"shadan_trust", 1},
                            {"version", 2},
                            {"expires_at", "2030-01-01T00:00:00Z"},
                            {"keys",
                             {trustKey(sato_, "op:sato", operator_roles_),
                              trustKey(tanaka_, "op:tanaka", operator_roles_),
                              trustKey(controller_, "controller", {"controller"}),
                              trustKey(agent_, "agent:gw", {"agent"})}}};
    ASSERT_TRUE(core_->useTrust(parseTrust(trust.dump(), "trust.json").value(), agent_).ok());
  }

  // The fake clock's now + `offset`, as RFC 3339.
  std::string at(std::chrono::seconds offset) const {
    return formatRfc3339(toUnixMillis(clock_.now() + offset));
  }

  // `authz_doc` signed by `authz_signers`, in a dispatch to gw with `seq`, signed by the
  // controller and valid from 5 s ago for 5 minutes.
  std::string dispatch(const nlohmann::json& authz_doc, std::vector<const Signer*> authz_signers,
                       int64_t seq) const {
    nlohmann::json envelope =
        dsseEnvelopeToJson(signDsse(kAuthzPayloadType, authz_doc.dump(), authz_signers).value());
    nlohmann::json doc = {{"v", 1},
                          {"agent_id", "gw"},
                          {"agent_key", agent_.keyId()},
                          {"seq", seq},
                          {"issued_at", at(std::chrono::seconds(-5))},
                          {"expires_at", at(std::chrono::minutes(5))},
                          {"authz", envelope}};
    const Signer* controller[] = {&controller_};
    return serializeDsseEnvelope(signDsse(kDispatchPayloadType, doc.dump(), controller).value());
  }

  const std::vector<std::string> operator_roles_;
  Ed25519Signer sato_{Ed25519KeyPair::generate()};
  Ed25519Signer tanaka_{Ed25519KeyPair::generate()};
  Ed25519Signer controller_{Ed25519KeyPair::generate()};
  Ed25519Signer agent_{Ed25519KeyPair::generate()};
  Policy policy_;
  shadan::testing::FakeFirewallBackend firewall_;
  shadan::testing::FakeRouteBackend routes_;
  shadan::testing::FakeStateStore store_;
  shadan::testing::FakeClock clock_;
  shadan::testing::FakeConntrackBackend conntrack_;
  shadan::testing::FakeAuditSink audit_;
  std::unique_ptr<AgentCore> core_;  // last: destroyed before the fakes it uses
};

}  // namespace shadan::agent

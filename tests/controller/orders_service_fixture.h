#pragma once

// The fixture of the OrdersService tests (orders_service_test.cc, order_views_test.cc): the
// service over a temp SQLite store, a fake hub, a fake clock and a fake audit sink, and helpers
// that play the agents' part (hello, verification with the agent's own verifier, signed acks).

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agents/orders/order_verifier.h"
#include "controller/orders_service.h"
#include "tests/controller/controller_test_support.h"

namespace shadan::controller {

using namespace shadan::agent;  // NOLINT: the agent under test

using nlohmann::json;
using testing::FakeAuditSink;
using testing::FakeClock;
using testing::FakeHub;
using testing::TempDir;
using testing::TestKeys;

class OrdersServiceTest : public ::testing::Test {
 protected:
  OrdersServiceTest() {
    policy_ = parsePolicy(testing::kTestPolicy, "policy.json").value().policy;
    trust_ = parseTrust(keys_.trustDoc().dump(), "trust.json").value();
    store_ = openSqliteControllerStore(dir_.path().string()).value();
    OrdersServiceOptions options;
    options.new_id = [this]() {
      char id[40];
      std::snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", ++next_id_);
      return std::string(id);
    };
    service_ = std::make_unique<OrdersService>(policy_, trust_, keys_.controller, *store_, hub_,
                                               audit_, clock_, std::move(options));
  }

  // A service whose batches wait in `later_` (the controller's io_context in production) until
  // runDeferred().
  void useDeferringService() {
    OrdersServiceOptions options;
    options.new_id = [this]() {
      char id[40];
      std::snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", ++next_id_);
      return std::string(id);
    };
    options.defer = [this](std::function<void()> work) { later_.push_back(std::move(work)); };
    service_ = std::make_unique<OrdersService>(policy_, trust_, keys_.controller, *store_, hub_,
                                               audit_, clock_, std::move(options));
  }
  void runDeferred() {
    for (auto& work : std::exchange(later_, {})) work();
  }
  // A deferring service with core-gw and edge-gw enrolled and connected, and an isolate of
  // lgwan (whose borders they are) sent to both.
  auto isolateBothOnADeferringService() {
    useDeferringService();
    enroll("core-gw", keys_.core_gw);
    enroll("edge-gw", keys_.edge_gw);
    runDeferred();
    return service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, {}, false});
  }

  void connect(const std::string& agent_id, const Ed25519Signer& key, int64_t last_seq = 0) {
    hub_.online.insert(agent_id);
    service_->onHello(AgentHello{agent_id, key.keyId(), last_seq, "0.1.0", std::nullopt});
  }

  // Enrolled, approved and connected.
  void enroll(const std::string& agent_id, const Ed25519Signer& key) {
    connect(agent_id, key);
    ASSERT_TRUE(service_->approveAgent(sato_, agent_id, "enrolled at install").ok());
  }

  // Runs the agent's own verification (agents/orders/order_verifier.h) on a dispatch message.
  OrderVerification agentVerifies(const json& message, const std::string& agent_id,
                                  const Ed25519Signer& key, AgentReplayState replay = {}) {
    EXPECT_EQ(message["type"], "dispatch");
    return verifyDispatch(message["envelope"].dump(), trust_, AgentSelf{agent_id, key.keyId()},
                          replay, policy_, clock_);
  }

  Dispatch dispatchOf(const json& message) {
    auto envelope = dsseEnvelopeFromJson(message["envelope"], "test", "/envelope").value();
    return parseDispatch(envelope.payload).value();
  }

  Status sign(const std::string& approval_id, const Ed25519Signer& key) {
    auto approvals = service_->pendingApprovals().value();
    for (const auto& approval : approvals["approvals"]) {
      if (approval["approval_id"] != approval_id) continue;
      auto payload = base64Decode(approval["payload"].get<std::string>()).value();
      const std::string body(payload.begin(), payload.end());
      auto sig = key.sign(dssePae(approval["payloadType"].get<std::string>(), body)).value();
      SHADAN_RETURN_IF_ERROR(
          service_->addApprovalSignature(sato_, approval_id, key.keyId(), base64Encode(sig)));
      return okStatus();
    }
    return makeError(ErrorCode::kNotFound, "no pending approval " + approval_id);
  }

  // A signed ack; a rejected or failed one names a reason and applied nothing. `isolated` is
  // its state_after.isolated.
  json ackEnvelope(const Ed25519Signer& key, const std::string& agent_id, int64_t seq,
                   const std::string& command_id, AckResult result = AckResult::kApplied,
                   const std::vector<std::string>& isolated = {"lgwan:full"}) {
    Ack ack;
    ack.agent_id = agent_id;
    ack.seq = seq;
    ack.command_id = command_id;
    ack.result = result;
    ack.isolated = isolated;
    ack.ruleset_sha256 = std::string(64, 'b');
    ack.received_at_ms = toUnixMillis(clock_.now());
    if (result == AckResult::kApplied) {
      ack.applied_at_ms = ack.received_at_ms;
    } else if (result != AckResult::kAlreadyApplied) {
      ack.reason = "nft_failed";
    }
    ack.audit = AckAudit{12, std::string(64, 'c')};
    const Signer* signers[] = {&key};
    return dsseEnvelopeToJson(signDsse(kAckPayloadType, serializeAck(ack), signers).value());
  }

  std::string dispatchState(const std::string& order_id, const std::string& agent_id) {
    return service_->order(order_id).value()["gateways"][agent_id]["state"].get<std::string>();
  }

  TestKeys keys_;
  TempDir dir_;
  Policy policy_;
  Trust trust_;
  ControllerStorePtr store_;
  FakeHub hub_;
  FakeAuditSink audit_;
  FakeClock clock_{testing::kControllerTestStartMs};
  int next_id_ = 0;
  std::vector<std::function<void()>> later_;  // useDeferringService()
  std::unique_ptr<OrdersService> service_;
  const Caller sato_{"sato", ApiRole::kOperator};
  const Caller tanaka_{"tanaka", ApiRole::kOperator};
  const Caller ids_{"ids-1", ApiRole::kDetector};
};

}  // namespace shadan::controller

#include "controller/orders_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "common/sha256.h"
#include "controller/api_router.h"
#include "tests/controller/orders_service_fixture.h"

namespace shadan::controller {
namespace {

TEST_F(OrdersServiceTest, IsolateFansOutToEveryBorderingGatewayWithPerAgentSeq) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);

  auto first =
      service_->isolate(ids_, IsolateRequest{"lgwan", "full", "IDS alert 42", {}, {}, false});
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->state, "dispatched");
  EXPECT_EQ(first->gateways, (std::vector<std::string>{"core-gw", "edge-gw"}));
  auto second =
      service_->isolate(sato_, IsolateRequest{"internet", "full", "drill", {}, 600, true});
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->gateways, (std::vector<std::string>{"core-gw", "edge-gw"}));

  for (const auto& [agent_id, key] : std::vector<std::pair<std::string, const Ed25519Signer*>>{
           {"core-gw", &keys_.core_gw}, {"edge-gw", &keys_.edge_gw}}) {
    ASSERT_EQ(hub_.sent[agent_id].size(), 2u) << agent_id;
    auto verified = agentVerifies(hub_.sent[agent_id][0], agent_id, *key);
    ASSERT_TRUE(verified.ok()) << verified.rejection().message;
    EXPECT_EQ(verified.order().dispatch->seq, 1);
    EXPECT_EQ(verified.order().authz.on_behalf_of, "detector:ids-1");
    EXPECT_EQ(verified.order().authz.requested_by, "detector:ids-1");
    EXPECT_EQ(verified.order().authz.segment_gen, 1);
    EXPECT_TRUE(verified.order().on_behalf);
    EXPECT_EQ(dispatchOf(hub_.sent[agent_id][1]).seq, 2);
  }
  auto status = service_->status().value();
  EXPECT_EQ(status["segments"]["lgwan"]["isolated"], true);
  EXPECT_EQ(status["segments"]["mgmt"]["isolated"], false);
  EXPECT_EQ(status["orders"].size(), 2u);
  EXPECT_TRUE(audit_.has("order_requested"));
  EXPECT_TRUE(audit_.has("dispatch_sent"));
}

TEST_F(OrdersServiceTest, DetectorIsRefusedForAProtectedSegment) {
  enroll("core-gw", keys_.core_gw);
  auto refused = service_->isolate(ids_, IsolateRequest{"mgmt", "full", "alert", {}, {}, false});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kPolicy);
  EXPECT_TRUE(hub_.sent["core-gw"].empty());

  auto waiting = service_->isolate(sato_, IsolateRequest{"mgmt", "full", "breach", {}, {}, false});
  ASSERT_TRUE(waiting.ok()) << waiting.error().message;
  EXPECT_EQ(waiting->state, "awaiting_approval");
  EXPECT_EQ(waiting->needed, 2);
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
}

TEST_F(OrdersServiceTest, AuditorMayNotIsolate) {
  auto refused = service_->isolate(Caller{"aud", ApiRole::kAuditor},
                                   IsolateRequest{"lgwan", "full", "x", {}, {}, false});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kPolicy);
}

TEST_F(OrdersServiceTest, RestoreWaitsForTwoDistinctOperatorSignatures) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  auto restore = service_->restore(sato_, RestoreRequest{"lgwan", "full", "all clear", "INC-1"});
  ASSERT_TRUE(restore.ok()) << restore.error().message;
  EXPECT_EQ(restore->state, "awaiting_approval");
  EXPECT_EQ(restore->needed, 2);
  EXPECT_EQ(restore->have, 0);
  ASSERT_TRUE(restore->approval_id.has_value());
  const std::string id = *restore->approval_id;

  ASSERT_TRUE(sign(id, keys_.sato).ok());
  // A second key of the same person does not count twice.
  ASSERT_TRUE(sign(id, keys_.sato_laptop).ok());
  auto approvals = service_->pendingApprovals().value()["approvals"];
  ASSERT_EQ(approvals.size(), 1u);
  EXPECT_EQ(approvals[0]["have"], 1);
  // The controller's key is not an operator key.
  auto controller = sign(id, keys_.controller);
  ASSERT_FALSE(controller.ok());
  EXPECT_EQ(controller.error().code, ErrorCode::kPolicy);
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  EXPECT_EQ(dispatchState(id, "core-gw"), "awaiting_approval");

  ASSERT_TRUE(sign(id, keys_.tanaka).ok());
  EXPECT_TRUE(service_->pendingApprovals().value()["approvals"].empty());
  ASSERT_EQ(hub_.sent["core-gw"].size(), 1u);
  ASSERT_EQ(hub_.sent["edge-gw"].size(), 1u);
  auto verified = agentVerifies(hub_.sent["core-gw"][0], "core-gw", keys_.core_gw);
  ASSERT_TRUE(verified.ok()) << verified.rejection().message;
  EXPECT_EQ(verified.order().authz.action, OrderAction::kRestore);
  EXPECT_EQ(verified.order().signer_identities, (std::vector<std::string>{"op:sato", "op:tanaka"}));
  EXPECT_FALSE(verified.order().on_behalf);
  EXPECT_EQ(dispatchState(id, "core-gw"), "pending");
  EXPECT_TRUE(audit_.has("order_approved"));
}

TEST_F(OrdersServiceTest, RestoreWaitsForTheRequesterToSign) {
  enroll("core-gw", keys_.core_gw);
  auto restore = service_->restore(tanaka_, RestoreRequest{"lgwan", "full", "all clear", {}});
  ASSERT_TRUE(restore.ok());
  // Two operators, but not tanaka who asked: agents would refuse requested_by_not_a_signer.
  ASSERT_TRUE(sign(*restore->approval_id, keys_.sato).ok());
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  ASSERT_TRUE(sign(*restore->approval_id, keys_.tanaka).ok());
  EXPECT_EQ(hub_.sent["core-gw"].size(), 1u);
}

TEST_F(OrdersServiceTest, InvalidSignatureIsRefused) {
  auto restore = service_->restore(sato_, RestoreRequest{"lgwan", "full", "all clear", {}});
  ASSERT_TRUE(restore.ok());
  auto sig = keys_.sato.sign(dssePae(kAuthzPayloadType, "something else")).value();
  auto refused = service_->addApprovalSignature(sato_, *restore->approval_id, keys_.sato.keyId(),
                                                base64Encode(sig));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  auto unknown = service_->addApprovalSignature(sato_, *restore->approval_id, keys_.eve.keyId(),
                                                base64Encode(sig));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kPolicy);
  EXPECT_EQ(service_->pendingApprovals().value()["approvals"][0]["have"], 0);
  EXPECT_TRUE(audit_.has("approval_signature_refused"));
}

TEST_F(OrdersServiceTest, OfflineAgentGetsItsDispatchOnHello) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  hub_.online.erase("edge-gw");
  service_->onDisconnect("edge-gw");
  auto order = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, {}, false});
  ASSERT_TRUE(order.ok());
  EXPECT_EQ(hub_.sent["core-gw"].size(), 1u);
  EXPECT_TRUE(hub_.sent["edge-gw"].empty());
  EXPECT_EQ(dispatchState(order->order_id, "edge-gw"), "pending");

  clock_.advance(std::chrono::minutes(10));  // past one dispatch window: re-signed fresh
  connect("edge-gw", keys_.edge_gw);
  ASSERT_EQ(hub_.sent["edge-gw"].size(), 1u);
  auto verified = agentVerifies(hub_.sent["edge-gw"][0], "edge-gw", keys_.edge_gw);
  ASSERT_TRUE(verified.ok()) << verified.rejection().message;
  EXPECT_EQ(verified.order().dispatch->seq, 1);
  EXPECT_EQ(verified.order().authz.command_id, order->order_id);
}

TEST_F(OrdersServiceTest, UnackedDispatchIsResentOnReconnectUnlessTheAgentHadIt) {
  enroll("core-gw", keys_.core_gw);
  auto order = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, {}, false});
  ASSERT_TRUE(order.ok());
  ASSERT_EQ(hub_.sent["core-gw"].size(), 1u);
  // A new order on the same session does not repeat the first one.
  ASSERT_TRUE(
      service_->isolate(sato_, IsolateRequest{"internet", "full", "b", {}, {}, false}).ok());
  ASSERT_EQ(hub_.sent["core-gw"].size(), 2u);

  service_->onDisconnect("core-gw");
  connect("core-gw", keys_.core_gw, /*last_seq=*/0);
  ASSERT_EQ(hub_.sent["core-gw"].size(), 4u);
  EXPECT_EQ(dispatchOf(hub_.sent["core-gw"][2]).seq, 1);  // same seq, fresh signature
  EXPECT_EQ(dispatchOf(hub_.sent["core-gw"][3]).seq, 2);

  service_->onDisconnect("core-gw");
  connect("core-gw", keys_.core_gw, /*last_seq=*/1);  // it had seq 1; the ack was lost
  ASSERT_EQ(hub_.sent["core-gw"].size(), 5u);
  EXPECT_EQ(dispatchOf(hub_.sent["core-gw"][4]).seq, 2);
}

TEST_F(OrdersServiceTest, ExpiredDispatchIsMarkedExpired) {
  enroll("edge-gw", keys_.edge_gw);
  hub_.online.erase("edge-gw");
  auto order = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, {}, false});
  ASSERT_TRUE(order.ok());
  clock_.advance(std::chrono::minutes(31));  // authz validity is 30 minutes
  ASSERT_TRUE(service_->sweep().ok());
  EXPECT_EQ(dispatchState(order->order_id, "edge-gw"), "expired");
  EXPECT_EQ(dispatchState(order->order_id, "core-gw"), "expired");
  connect("edge-gw", keys_.edge_gw);
  EXPECT_TRUE(hub_.sent["edge-gw"].empty());
  EXPECT_TRUE(audit_.has("dispatch_expired"));
}

TEST_F(OrdersServiceTest, ExpiredApprovalIsNoLongerPending) {
  auto restore = service_->restore(sato_, RestoreRequest{"lgwan", "full", "all clear", {}});
  ASSERT_TRUE(restore.ok());
  clock_.advance(std::chrono::hours(2));
  EXPECT_TRUE(service_->pendingApprovals().value()["approvals"].empty());
  auto late = sign(*restore->approval_id, keys_.sato);
  EXPECT_FALSE(late.ok());
  EXPECT_EQ(service_->order(restore->order_id).value()["state"], "expired");
}

TEST_F(OrdersServiceTest, AckUpdatesTheDispatchOnlyWhenItVerifies) {
  enroll("core-gw", keys_.core_gw);
  auto order = service_->isolate(sato_, IsolateRequest{"mgmt", "full", "x", {}, {}, false});
  ASSERT_TRUE(order.ok());  // awaiting: no dispatch for mgmt yet
  auto lgwan = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, {}, false});
  ASSERT_TRUE(lgwan.ok());
  const int64_t seq = dispatchOf(hub_.sent["core-gw"].at(0)).seq;

  // Signed by another agent's key.
  auto forged =
      service_->onAck("core-gw", ackEnvelope(keys_.edge_gw, "core-gw", seq, lgwan->order_id));
  ASSERT_FALSE(forged.ok());
  EXPECT_EQ(dispatchState(lgwan->order_id, "core-gw"), "pending");
  // The same, vouched for by the hub with the key a hello announced (edge-gw's): that key is not
  // the one enrolled for core-gw, so the vouching counts for nothing.
  auto vouched =
      service_->onAck("core-gw", ackEnvelope(keys_.edge_gw, "core-gw", seq, lgwan->order_id),
                      keys_.edge_gw.publicKey());
  ASSERT_FALSE(vouched.ok());
  EXPECT_EQ(dispatchState(lgwan->order_id, "core-gw"), "pending");
  // A seq the controller never dispatched.
  auto unknown =
      service_->onAck("core-gw", ackEnvelope(keys_.core_gw, "core-gw", seq + 7, lgwan->order_id));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  // The right seq with another command id.
  auto mismatch = service_->onAck("core-gw", ackEnvelope(keys_.core_gw, "core-gw", seq,
                                                         "00000000-0000-4000-8000-000000000099"));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(dispatchState(lgwan->order_id, "core-gw"), "pending");

  // Vouched for with the enrolled key: taken as the hub verified it.
  auto good =
      service_->onAck("core-gw", ackEnvelope(keys_.core_gw, "core-gw", seq, lgwan->order_id),
                      keys_.core_gw.publicKey());
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(dispatchState(lgwan->order_id, "core-gw"), "applied");
  auto detail = service_->order(lgwan->order_id).value();
  EXPECT_EQ(detail["gateways"]["core-gw"]["ack"]["result"], "applied");
  auto status = service_->status().value();
  EXPECT_EQ(status["gateways"]["core-gw"]["state"]["isolated"], json::array({"lgwan:full"}));
  EXPECT_TRUE(audit_.has("ack_refused"));
  EXPECT_TRUE(audit_.has("ack_received"));
}

TEST_F(OrdersServiceTest, AckSentAgainIsIgnoredAndALateOneStillCounts) {
  // Agents send their recent acks again after every reconnect: a second copy changes nothing
  // and is not audited again; an ack that arrives after its dispatch expired is taken.
  enroll("core-gw", keys_.core_gw);
  auto lgwan = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, {}, false});
  ASSERT_TRUE(lgwan.ok());
  const int64_t seq = dispatchOf(hub_.sent["core-gw"].at(0)).seq;
  const auto received = [&] {
    return std::count_if(audit_.events.begin(), audit_.events.end(),
                         [](const AuditEvent& e) { return e.event == "ack_received"; });
  };
  const json ack = ackEnvelope(keys_.core_gw, "core-gw", seq, lgwan->order_id);
  ASSERT_TRUE(service_->onAck("core-gw", ack).ok());
  ASSERT_EQ(received(), 1);
  const json before = service_->order(lgwan->order_id).value();
  EXPECT_TRUE(service_->onAck("core-gw", ack).ok());
  EXPECT_EQ(received(), 1);
  EXPECT_EQ(service_->order(lgwan->order_id).value(), before);

  // Another order whose ack only comes after the controller gave the dispatch up.
  auto internet = service_->isolate(sato_, IsolateRequest{"internet", "full", "b", {}, {}, false});
  ASSERT_TRUE(internet.ok());
  const int64_t late_seq = dispatchOf(hub_.sent["core-gw"].back()).seq;
  clock_.advance(std::chrono::minutes(31));
  ASSERT_TRUE(service_->sweep().ok());
  ASSERT_EQ(dispatchState(internet->order_id, "core-gw"), "expired");
  EXPECT_TRUE(
      service_
          ->onAck("core-gw", ackEnvelope(keys_.core_gw, "core-gw", late_seq, internet->order_id))
          .ok());
  EXPECT_EQ(dispatchState(internet->order_id, "core-gw"), "applied");
  EXPECT_EQ(received(), 2);
}

TEST_F(OrdersServiceTest, UnapprovedAgentGetsNothingUntilApproved) {
  connect("core-gw", keys_.core_gw);
  auto agents = service_->agents().value()["agents"];
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0]["status"], "pending");
  auto order = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, {}, false});
  ASSERT_TRUE(order.ok());
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  // Its acks are refused too.
  EXPECT_FALSE(
      service_->onAck("core-gw", ackEnvelope(keys_.core_gw, "core-gw", 1, order->order_id)).ok());

  ASSERT_TRUE(service_->approveAgent(sato_, "core-gw", "checked the key fingerprint").ok());
  ASSERT_EQ(hub_.sent["core-gw"].size(), 1u);
  EXPECT_TRUE(agentVerifies(hub_.sent["core-gw"][0], "core-gw", keys_.core_gw).ok());
  EXPECT_TRUE(audit_.has("agent_enrollment_pending"));
  EXPECT_TRUE(audit_.has("agent_approved"));
}

TEST_F(OrdersServiceTest, NewAgentKeyNeedsApprovalAgain) {
  enroll("core-gw", keys_.core_gw);
  connect("core-gw", keys_.eve);  // same id, unknown key
  auto order = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, {}, false});
  ASSERT_TRUE(order.ok());
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  // Eve's key is not in the trust file: it cannot be approved.
  auto approve = service_->approveAgent(sato_, "core-gw", "looks fine");
  ASSERT_FALSE(approve.ok());
  EXPECT_EQ(approve.error().code, ErrorCode::kUnavailable);
}

TEST_F(OrdersServiceTest, KeyCarriedInTheHelloIsEnrolledOnlyByAnOperator) {
  // A fleet's agents need not be in the trust file: the hello carries the public key. It is
  // still pending until an operator approves it, and then its acks verify with that key.
  Ed25519Signer branch(Ed25519KeyPair::generate());  // listed nowhere
  hub_.online.insert("core-gw");
  service_->onHello(AgentHello{"core-gw", branch.keyId(), 0, "0.1.0", branch.publicKey()});
  auto order = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, {}, false});
  ASSERT_TRUE(order.ok());
  EXPECT_TRUE(hub_.sent["core-gw"].empty());  // pending: nothing yet
  EXPECT_FALSE(service_->onAck("core-gw", ackEnvelope(branch, "core-gw", 1, order->order_id)).ok());

  ASSERT_TRUE(service_->approveAgent(sato_, "core-gw", "fingerprint read over the phone").ok());
  ASSERT_EQ(hub_.sent["core-gw"].size(), 1u);
  const int64_t seq = dispatchOf(hub_.sent["core-gw"][0]).seq;
  EXPECT_FALSE(
      service_->onAck("core-gw", ackEnvelope(keys_.core_gw, "core-gw", seq, order->order_id))
          .ok());  // the trust file's key for core-gw is not the enrolled one
  ASSERT_TRUE(
      service_->onAck("core-gw", ackEnvelope(branch, "core-gw", seq, order->order_id)).ok());
  EXPECT_EQ(dispatchState(order->order_id, "core-gw"), "applied");
}

TEST_F(OrdersServiceTest, AcksOfAMomentAreCheckedTogetherAndEachRefusalIsAudited) {
  // With a deferring loop, the acks of the moment are taken at once and checked together (their
  // store reads in one go); a forged, an unknown and a mismatched one among them are refused and
  // audited each, and change nothing; the good ones are stored.
  auto order = isolateBothOnADeferringService();
  ASSERT_TRUE(order.ok());
  const int64_t core_seq = dispatchOf(hub_.sent["core-gw"].at(0)).seq;
  const int64_t edge_seq = dispatchOf(hub_.sent["edge-gw"].at(0)).seq;
  const auto refusals = [&] {
    return std::count_if(audit_.events.begin(), audit_.events.end(),
                         [](const AuditEvent& e) { return e.event == "ack_refused"; });
  };
  const auto before = refusals();
  EXPECT_TRUE(
      service_->onAck("core-gw", ackEnvelope(keys_.edge_gw, "core-gw", core_seq, order->order_id))
          .ok());  // forged: taken, refused when checked
  EXPECT_TRUE(
      service_
          ->onAck("core-gw", ackEnvelope(keys_.core_gw, "core-gw", core_seq + 7, order->order_id))
          .ok());  // unknown seq
  EXPECT_TRUE(service_
                  ->onAck("edge-gw", ackEnvelope(keys_.edge_gw, "edge-gw", edge_seq,
                                                 "00000000-0000-4000-8000-000000000099"))
                  .ok());  // the right seq, another command
  EXPECT_TRUE(service_->onAck("edge-gw", json{{"payload", 7}}).ok());  // not an envelope
  EXPECT_TRUE(
      service_->onAck("core-gw", ackEnvelope(keys_.core_gw, "core-gw", core_seq, order->order_id))
          .ok());
  EXPECT_EQ(refusals(), before);  // nothing checked yet
  EXPECT_EQ(later_.size(), 1u);   // one check for the lot
  runDeferred();
  EXPECT_EQ(refusals(), before + 4);
  EXPECT_EQ(dispatchState(order->order_id, "core-gw"), "applied");
  EXPECT_EQ(dispatchState(order->order_id, "edge-gw"), "pending");
  EXPECT_TRUE(
      service_->onAck("edge-gw", ackEnvelope(keys_.edge_gw, "edge-gw", edge_seq, order->order_id))
          .ok());
  runDeferred();
  EXPECT_EQ(dispatchState(order->order_id, "edge-gw"), "applied");
  EXPECT_EQ(refusals(), before + 4);
}

TEST_F(OrdersServiceTest, AcksAndHellosThatArriveTogetherAreWrittenTogether) {
  // With a deferring loop (the controller's io_context), the acks of a fan-out are checked
  // together, stored in one transaction and audited with one sync, and hellos deliver their
  // pending dispatches in one batch.
  auto order = isolateBothOnADeferringService();
  ASSERT_TRUE(order.ok());
  ASSERT_EQ(hub_.sent["core-gw"].size(), 1u);
  ASSERT_EQ(hub_.sent["edge-gw"].size(), 1u);
  const json core_ack = ackEnvelope(keys_.core_gw, "core-gw",
                                    dispatchOf(hub_.sent["core-gw"][0]).seq, order->order_id);
  const json edge_ack = ackEnvelope(keys_.edge_gw, "edge-gw",
                                    dispatchOf(hub_.sent["edge-gw"][0]).seq, order->order_id);
  const size_t buffered_before = audit_.buffered;
  ASSERT_TRUE(service_->onAck("core-gw", core_ack).ok());
  ASSERT_TRUE(service_->onAck("core-gw", core_ack).ok());  // a copy before the write: once
  ASSERT_TRUE(service_->onAck("edge-gw", edge_ack).ok());
  EXPECT_EQ(later_.size(), 1u);                                     // one flush for the lot
  EXPECT_EQ(dispatchState(order->order_id, "core-gw"), "pending");  // not written yet
  runDeferred();
  EXPECT_EQ(dispatchState(order->order_id, "core-gw"), "applied");
  EXPECT_EQ(dispatchState(order->order_id, "edge-gw"), "applied");
  EXPECT_EQ(std::count_if(audit_.events.begin(), audit_.events.end(),
                          [](const AuditEvent& e) { return e.event == "ack_received"; }),
            2);
  EXPECT_EQ(audit_.buffered - buffered_before, 1u);  // the last of the two carries the sync

  // Both agents come back after a drop while an order waits: one hello batch delivers both.
  service_->onDisconnect("core-gw");
  service_->onDisconnect("edge-gw");
  hub_.online.clear();
  runDeferred();
  auto next = service_->isolate(sato_, IsolateRequest{"internet", "full", "b", {}, {}, false});
  ASSERT_TRUE(next.ok());
  connect("core-gw", keys_.core_gw);
  connect("edge-gw", keys_.edge_gw);
  EXPECT_EQ(hub_.sent["core-gw"].size(), 1u);  // nothing until the batch runs
  EXPECT_EQ(later_.size(), 1u);
  runDeferred();
  ASSERT_EQ(hub_.sent["core-gw"].size(), 2u);
  ASSERT_EQ(hub_.sent["edge-gw"].size(), 2u);
  EXPECT_TRUE(agentVerifies(hub_.sent["edge-gw"][1], "edge-gw", keys_.edge_gw).ok());
}

TEST_F(OrdersServiceTest, GatewaysNotYetCaughtUpGetAnOrderInOneBatch) {
  // An isolate issued while the hellos of the moment are still waiting for their batch (a
  // restart, a fleet that just connected): every such gateway's dispatches are signed, stored
  // and audited together, not one transaction and one sync per gateway.
  useDeferringService();
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  // Both drop and come back; their new sessions' hellos wait for the batch.
  service_->onDisconnect("core-gw");
  service_->onDisconnect("edge-gw");
  hub_.online.clear();
  runDeferred();
  connect("core-gw", keys_.core_gw);
  connect("edge-gw", keys_.edge_gw);
  ASSERT_EQ(later_.size(), 1u);
  const size_t buffered_before = audit_.buffered;
  auto order = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, {}, false});
  ASSERT_TRUE(order.ok());
  ASSERT_EQ(hub_.sent["core-gw"].size(), 1u);
  ASSERT_EQ(hub_.sent["edge-gw"].size(), 1u);
  EXPECT_TRUE(agentVerifies(hub_.sent["edge-gw"][0], "edge-gw", keys_.edge_gw).ok());
  EXPECT_EQ(std::count_if(audit_.events.begin(), audit_.events.end(),
                          [](const AuditEvent& e) { return e.event == "dispatch_sent"; }),
            2);
  EXPECT_EQ(audit_.buffered - buffered_before, 1u);  // two dispatches, one sync
  // The hello batch that runs after finds both already served: nothing is sent twice.
  runDeferred();
  EXPECT_EQ(hub_.sent["core-gw"].size(), 1u);
  EXPECT_EQ(hub_.sent["edge-gw"].size(), 1u);
}

TEST_F(OrdersServiceTest, ABatchGoesOutInChunksEachStoredAndAuditedBeforeItsFlush) {
  // Chunks of one here (256 in production): each dispatch is committed, audited with its own
  // sync and handed to the network before the next is signed.
  OrdersServiceOptions options;
  options.new_id = [this] {
    return "00000000-0000-4000-8000-00000000030" + std::to_string(++next_id_);
  };
  options.delivery_chunk = 1;
  service_ = std::make_unique<OrdersService>(policy_, trust_, keys_.controller, *store_, hub_,
                                             audit_, clock_, std::move(options));
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  struct AtFlush {
    size_t sent = 0;
    size_t audited = 0;
    size_t unsynced = 0;
    size_t stored = 0;
  };
  std::vector<AtFlush> flushes;
  const size_t buffered_before = audit_.buffered;
  std::string order_id;
  hub_.on_flush = [&] {
    AtFlush at;
    for (const auto& [agent, messages] : hub_.sent) at.sent += messages.size();
    at.audited = static_cast<size_t>(
        std::count_if(audit_.events.begin(), audit_.events.end(),
                      [](const AuditEvent& e) { return e.event == "dispatch_sent"; }));
    at.unsynced = audit_.buffered - buffered_before;
    for (const char* agent : {"core-gw", "edge-gw"}) {
      auto dispatches = store_->pendingDispatches(agent);
      if (dispatches.ok()) {
        for (const auto& d : *dispatches) at.stored += d.envelope.empty() ? 0 : 1;
      }
    }
    flushes.push_back(at);
  };
  auto order = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, {}, false});
  ASSERT_TRUE(order.ok()) << order.error().message;
  ASSERT_EQ(flushes.size(), 2u);
  for (size_t i = 0; i < flushes.size(); ++i) {
    SCOPED_TRACE("flush " + std::to_string(i));
    EXPECT_EQ(flushes[i].sent, i + 1);
    EXPECT_EQ(flushes[i].audited, i + 1);
    EXPECT_EQ(flushes[i].stored, i + 1);  // committed before it went out
  }
  EXPECT_EQ(flushes.back().unsynced, 0u);  // every chunk's entry carried its own sync
  for (const auto& [agent_id, key] : std::vector<std::pair<std::string, const Ed25519Signer*>>{
           {"core-gw", &keys_.core_gw}, {"edge-gw", &keys_.edge_gw}}) {
    ASSERT_EQ(hub_.sent[agent_id].size(), 1u) << agent_id;
    auto verified = agentVerifies(hub_.sent[agent_id][0], agent_id, *key);
    EXPECT_TRUE(verified.ok()) << agent_id;
    // Written as text around the stored envelope: the bytes the JSON form would give.
    ASSERT_EQ(hub_.sent_text[agent_id].size(), 1u) << agent_id;
    EXPECT_EQ(hub_.sent_text[agent_id][0], hub_.sent[agent_id][0].dump());
    auto stored = store_->pendingDispatches(agent_id);
    ASSERT_TRUE(stored.ok() && stored->size() == 1u) << agent_id;
    EXPECT_EQ(hub_.sent[agent_id][0],
              dispatchMessage(nlohmann::json::parse(stored->at(0).envelope)));
  }
}

TEST_F(OrdersServiceTest, OrderToManyGatewaysSaysBorderingAndTheAgentsTakeIt) {
  OrdersServiceOptions options;
  options.new_id = [this] {
    return "00000000-0000-4000-8000-00000000020" + std::to_string(++next_id_);
  };
  options.listed_targets_max = 1;  // lgwan's two gateways are "many" here
  service_ = std::make_unique<OrdersService>(policy_, trust_, keys_.controller, *store_, hub_,
                                             audit_, clock_, std::move(options));
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  auto order = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, {}, false});
  ASSERT_TRUE(order.ok()) << order.error().message;
  EXPECT_EQ(order->gateways, (std::vector<std::string>{"core-gw", "edge-gw"}));
  for (const auto& [agent_id, key] : std::vector<std::pair<std::string, const Ed25519Signer*>>{
           {"core-gw", &keys_.core_gw}, {"edge-gw", &keys_.edge_gw}}) {
    ASSERT_EQ(hub_.sent[agent_id].size(), 1u) << agent_id;
    auto verified = agentVerifies(hub_.sent[agent_id][0], agent_id, *key);
    ASSERT_TRUE(verified.ok()) << agent_id << ": " << verified.rejection().message;
    EXPECT_TRUE(verified.order().authz.targets_bordering);
    EXPECT_TRUE(verified.order().authz.targets.empty());
  }
  // The controller's own view still names every gateway.
  const json view = service_->order(order->order_id).value();
  EXPECT_TRUE(view["gateways"].contains("core-gw"));
  EXPECT_TRUE(view["gateways"].contains("edge-gw"));
}

TEST_F(OrdersServiceTest, SegmentGenerationGrowsPerAuthz) {
  enroll("core-gw", keys_.core_gw);
  ASSERT_TRUE(service_->isolate(sato_, IsolateRequest{"lgwan", "full", "a", {}, {}, false}).ok());
  ASSERT_TRUE(service_->isolate(sato_, IsolateRequest{"lgwan", "full", "b", {}, {}, false}).ok());
  ASSERT_EQ(hub_.sent["core-gw"].size(), 2u);
  auto first = agentVerifies(hub_.sent["core-gw"][0], "core-gw", keys_.core_gw);
  AgentReplayState replay;
  replay.last_seq = 1;
  replay.segment_gens["lgwan"] = 1;
  auto second = agentVerifies(hub_.sent["core-gw"][1], "core-gw", keys_.core_gw, replay);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok()) << second.rejection().message;
  EXPECT_EQ(first.order().authz.segment_gen, 1);
  EXPECT_EQ(second.order().authz.segment_gen, 2);
  EXPECT_EQ(service_->status().value()["segments"]["lgwan"]["gen"], 2);
}

TEST_F(OrdersServiceTest, UnknownSegmentOrProfileIsNotFound) {
  auto segment = service_->isolate(sato_, IsolateRequest{"nope", "full", "x", {}, {}, false});
  ASSERT_FALSE(segment.ok());
  EXPECT_EQ(segment.error().code, ErrorCode::kNotFound);
  auto profile = service_->isolate(sato_, IsolateRequest{"lgwan", "nope", "x", {}, {}, false});
  ASSERT_FALSE(profile.ok());
  EXPECT_EQ(profile.error().code, ErrorCode::kNotFound);
  auto reason = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "", {}, {}, false});
  ASSERT_FALSE(reason.ok());
  EXPECT_EQ(reason.error().code, ErrorCode::kInvalidArgument);
}

// The store of the test whose every transaction from `fail_commits_from` on fails as its commit
// would (after its body ran, so its writes are rolled back): a full disk at COMMIT.
class CommitFailingStore : public ControllerStore {
 public:
  explicit CommitFailingStore(ControllerStore& inner) : inner_(inner) {}
  bool fail_commits = false;
  int commits_before_failing = -1;  // >= 0: that many transactions commit, the next fail
  Error failure{ErrorCode::kNoSpace, "commit: database or disk is full"};

  Status transaction(const std::function<Status()>& fn) override {
    return inner_.transaction([&]() -> Status {
      SHADAN_RETURN_IF_ERROR(fn());
      if (commits_before_failing > 0) {
        --commits_before_failing;
      } else if (fail_commits || commits_before_failing == 0) {
        return failure;
      }
      return okStatus();
    });
  }
  Result<std::optional<AgentRecord>> getAgent(const std::string& id) override {
    return inner_.getAgent(id);
  }
  Status putAgent(const AgentRecord& agent) override { return inner_.putAgent(agent); }
  Result<std::vector<AgentRecord>> listAgents() override { return inner_.listAgents(); }
  Result<int64_t> nextSeq(const std::string& id) override { return inner_.nextSeq(id); }
  Result<int64_t> nextSegmentGen(const std::string& key) override {
    return inner_.nextSegmentGen(key);
  }
  Status putSegment(const SegmentRecord& segment) override { return inner_.putSegment(segment); }
  Result<std::vector<SegmentRecord>> listSegments() override { return inner_.listSegments(); }
  Result<std::optional<OrderRecord>> getOrder(const std::string& id) override {
    return inner_.getOrder(id);
  }
  Status putOrder(const OrderRecord& order) override { return inner_.putOrder(order); }
  Result<std::vector<OrderRecord>> listOrders(size_t limit) override {
    return inner_.listOrders(limit);
  }
  Status putDispatch(const DispatchRecord& dispatch) override {
    return inner_.putDispatch(dispatch);
  }
  Result<std::map<std::string, int64_t>> orderCounts() override { return inner_.orderCounts(); }
  Result<std::map<std::string, int64_t>> dispatchCounts() override {
    return inner_.dispatchCounts();
  }
  Result<std::vector<DispatchRecord>> dispatchesForOrder(const std::string& id) override {
    return inner_.dispatchesForOrder(id);
  }
  Result<std::vector<DispatchRecord>> pendingDispatches(const std::string& id) override {
    return inner_.pendingDispatches(id);
  }
  Result<std::vector<DispatchRecord>> allPendingDispatches() override {
    return inner_.allPendingDispatches();
  }
  Result<std::optional<DispatchRecord>> dispatchBySeq(const std::string& id, int64_t seq) override {
    return inner_.dispatchBySeq(id, seq);
  }
  Result<std::optional<ApprovalRecord>> getApproval(const std::string& id) override {
    return inner_.getApproval(id);
  }
  Status putApproval(const ApprovalRecord& approval) override {
    return inner_.putApproval(approval);
  }
  Result<std::vector<ApprovalRecord>> pendingApprovals() override {
    return inner_.pendingApprovals();
  }
  Status putDocument(const StoredDocument& document) override {
    return inner_.putDocument(document);
  }
  Result<std::optional<StoredDocument>> getDocument(const std::string& kind,
                                                    const std::string& id) override {
    return inner_.getDocument(kind, id);
  }
  Result<std::vector<StoredDocument>> openDocuments(const std::string& kind) override {
    return inner_.openDocuments(kind);
  }

 private:
  ControllerStore& inner_;
};

TEST_F(OrdersServiceTest, AnOrderWhoseAuditEntryFailsIsNeitherStoredNorDelivered) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  audit_.fail = true;
  auto refused =
      service_->isolate(sato_, IsolateRequest{"lgwan", "full", "IDS alert 42", {}, {}, false});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("audit log"), std::string::npos)
      << refused.error().message;
  audit_.fail = false;
  // Nothing was stored: no order, no dispatch for a later hello to deliver unaudited.
  EXPECT_TRUE(service_->status().value()["orders"].empty());
  EXPECT_TRUE(store_->allPendingDispatches().value().empty());
  connect("core-gw", keys_.core_gw);
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  EXPECT_FALSE(audit_.has("order_requested"));

  // A restore: the signature that meets the rule, when its entry fails, counts for nothing.
  auto restore = service_->restore(sato_, RestoreRequest{"lgwan", "full", "all clear", {}});
  ASSERT_TRUE(restore.ok()) << restore.error().message;
  ASSERT_TRUE(sign(*restore->approval_id, keys_.sato).ok());
  audit_.fail = true;
  EXPECT_FALSE(sign(*restore->approval_id, keys_.tanaka).ok());
  audit_.fail = false;
  EXPECT_EQ(service_->pendingApprovals().value()["approvals"][0]["have"], 1);
  EXPECT_TRUE(store_->allPendingDispatches().value().empty());
  connect("edge-gw", keys_.edge_gw);
  EXPECT_TRUE(hub_.sent["edge-gw"].empty());
  EXPECT_FALSE(audit_.has("order_approved"));
  // Once the log takes entries again, the same signature goes through.
  ASSERT_TRUE(sign(*restore->approval_id, keys_.tanaka).ok());
  EXPECT_EQ(hub_.sent["core-gw"].size(), 1u);
  EXPECT_TRUE(audit_.has("order_approved"));
}

TEST_F(OrdersServiceTest, ACommitThatFailsAfterItsAuditEntryIsMarkedInTheTrail) {
  CommitFailingStore failing(*store_);
  OrdersServiceOptions options;
  options.new_id = [] { return std::string("00000000-0000-4000-8000-0000000000aa"); };
  service_ = std::make_unique<OrdersService>(policy_, trust_, keys_.controller, failing, hub_,
                                             audit_, clock_, std::move(options));
  enroll("core-gw", keys_.core_gw);
  failing.fail_commits = true;
  auto refused =
      service_->isolate(sato_, IsolateRequest{"lgwan", "full", "IDS alert 42", {}, {}, false});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kNoSpace);
  failing.fail_commits = false;

  EXPECT_TRUE(service_->status().value()["orders"].empty());
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  ASSERT_GE(audit_.events.size(), 2u);
  const AuditEvent& requested = audit_.events[audit_.events.size() - 2];
  const AuditEvent& failed = audit_.events.back();
  EXPECT_EQ(requested.event, "order_requested");
  EXPECT_EQ(failed.event, "commit_failed");
  EXPECT_EQ(failed.outcome, "not_recorded");
  EXPECT_EQ(failed.reason, "no_space");
  EXPECT_EQ(failed.command_id, requested.command_id);
  EXPECT_EQ(failed.detail.value()["event"], "order_requested");
  service_.reset();  // before `failing`, which it holds
}

// etcd stopped answering with the commit in flight (EtcdControllerStore could not find out):
// the trail and the API say "unknown", not "not recorded"; a store that was not reached at all
// says nothing was recorded.
TEST_F(OrdersServiceTest, ACommitOfUnknownOutcomeIsSaidSoInTheTrailAndTheApi) {
  CommitFailingStore failing(*store_);
  service_ = std::make_unique<OrdersService>(policy_, trust_, keys_.controller, failing, hub_,
                                             audit_, clock_, OrdersServiceOptions{});
  TokenTable tokens(
      std::vector<ApiToken>{{"sato", ApiRole::kOperator, sha256Hex("operator-token")}});
  ApiRouter router(tokens, *service_);
  const ApiRequest isolate{"POST", "/v1/isolate", "Bearer operator-token",
                           R"({"segment":"lgwan","reason":"worm"})"};
  enroll("core-gw", keys_.core_gw);
  failing.fail_commits = true;

  failing.failure = makeError(ErrorCode::kUnavailable, std::string(kStoreOutcomeUnknown) +
                                                           ": etcd 127.0.0.1:2379: answer: "
                                                           "end of stream");
  ApiResponse unknown = router.handle(isolate);
  EXPECT_EQ(unknown.status, 503) << unknown.body.dump();
  EXPECT_EQ(unknown.body["error"]["code"], "store_outcome_unknown");
  const std::string said = unknown.body["error"]["message"].get<std::string>();
  EXPECT_EQ(said.find("nothing recorded"), std::string::npos) << said;
  ASSERT_GE(audit_.events.size(), 2u);
  EXPECT_EQ(audit_.events[audit_.events.size() - 2].event, "order_requested");
  EXPECT_EQ(audit_.events.back().event, "commit_unknown");
  EXPECT_EQ(audit_.events.back().outcome, "unknown");
  EXPECT_EQ(audit_.events.back().reason, "store_outcome_unknown");
  EXPECT_EQ(audit_.events.back().command_id, audit_.events[audit_.events.size() - 2].command_id);

  failing.failure = makeError(ErrorCode::kUnavailable, std::string(kStoreUnavailable) +
                                                           ": etcd 127.0.0.1:2379: connect: "
                                                           "connection refused");
  ApiResponse unreachable = router.handle(isolate);
  EXPECT_EQ(unreachable.status, 503) << unreachable.body.dump();
  EXPECT_EQ(unreachable.body["error"]["code"], "store_unavailable");
  EXPECT_EQ(audit_.events.back().event, "commit_failed");
  EXPECT_EQ(audit_.events.back().outcome, "not_recorded");
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  service_.reset();  // before `failing`, which it holds
}

// The store failed the delivery's commit (on etcd: the member died with it in flight) after the
// order was recorded: the gateway stays connected with its dispatch pending, and the next
// follow tick sends it, once, instead of leaving it to the gateway's next hello; the same for
// an ack whose write failed.
TEST_F(OrdersServiceTest, ADeliveryOrAnAckTheStoreFailedIsTriedAgainAtTheNextTick) {
  CommitFailingStore failing(*store_);
  service_ = std::make_unique<OrdersService>(policy_, trust_, keys_.controller, failing, hub_,
                                             audit_, clock_, OrdersServiceOptions{});
  enroll("core-gw", keys_.core_gw);
  failing.failure = makeError(ErrorCode::kUnavailable, std::string(kStoreUnavailable) +
                                                           ": etcd 127.0.0.1:2379: answer: "
                                                           "connection reset by peer");
  failing.commits_before_failing = 1;  // the order's commit, then the delivery's fails
  auto order =
      service_->isolate(sato_, IsolateRequest{"lgwan", "full", "IDS alert 42", {}, {}, false});
  ASSERT_TRUE(order.ok()) << order.error().message;
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  EXPECT_EQ(dispatchState(order->order_id, "core-gw"), "pending");
  // Still failing: nothing sent, and it is tried again after a second, not at every look.
  failing.commits_before_failing = 0;
  ASSERT_TRUE(service_->deliverCreatedElsewhere().ok());
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  failing.commits_before_failing = -1;
  ASSERT_TRUE(service_->deliverCreatedElsewhere().ok());
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  clock_.advance(std::chrono::seconds(1));
  ASSERT_TRUE(service_->deliverCreatedElsewhere().ok());
  ASSERT_EQ(hub_.sent["core-gw"].size(), 1u);
  EXPECT_EQ(dispatchOf(hub_.sent["core-gw"][0]).agent_id, "core-gw");
  ASSERT_TRUE(service_->deliverCreatedElsewhere().ok());
  EXPECT_EQ(hub_.sent["core-gw"].size(), 1u);  // once

  // Its ack's write fails as well: the agent stays connected and will not send it again by
  // itself, so the next tick checks it again and stores it, once.
  const json ack = ackEnvelope(keys_.core_gw, "core-gw", dispatchOf(hub_.sent["core-gw"][0]).seq,
                               order->order_id);
  failing.commits_before_failing = 0;
  EXPECT_TRUE(service_->onAck("core-gw", ack).ok());
  EXPECT_EQ(dispatchState(order->order_id, "core-gw"), "pending");
  EXPECT_FALSE(audit_.has("ack_received"));
  failing.commits_before_failing = -1;
  ASSERT_TRUE(service_->deliverCreatedElsewhere().ok());
  EXPECT_EQ(dispatchState(order->order_id, "core-gw"), "applied");
  ASSERT_TRUE(service_->deliverCreatedElsewhere().ok());
  EXPECT_EQ(std::count_if(audit_.events.begin(), audit_.events.end(),
                          [](const AuditEvent& e) { return e.event == "ack_received"; }),
            1);
  service_.reset();  // before `failing`, which it holds
}

}  // namespace
}  // namespace shadan::controller

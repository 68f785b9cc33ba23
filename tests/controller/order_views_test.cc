#include "controller/order_views.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tests/controller/orders_service_fixture.h"

namespace shadan::controller {
namespace {

// Facts, not intent: what status and the order view call applied, isolated or open is what the
// gateways' verified acks say.
class OrderViewsTest : public OrdersServiceTest {
 protected:
  // The agent's ack of the last dispatch it was sent for `order_id`.
  Status ack(const std::string& agent_id, const Ed25519Signer& key, const std::string& order_id,
             AckResult result = AckResult::kApplied) {
    for (auto it = hub_.sent[agent_id].rbegin(); it != hub_.sent[agent_id].rend(); ++it) {
      const Dispatch dispatch = dispatchOf(*it);
      auto authz = parseAuthz(dispatch.authz.payload).value();
      if (authz.command_id != order_id) continue;
      return service_->onAck(agent_id, ackEnvelope(key, agent_id, dispatch.seq, order_id, result));
    }
    return makeError(ErrorCode::kNotFound, agent_id + " was sent no dispatch of " + order_id);
  }

  json segment(const std::string& name) { return service_->status().value()["segments"][name]; }
  json gateway(const std::string& order_id, const std::string& agent_id) {
    return service_->order(order_id).value()["gateways"][agent_id];
  }

  std::string isolateLgwan(std::optional<int64_t> ttl_s = std::nullopt) {
    auto order =
        service_->isolate(sato_, IsolateRequest{"lgwan", "full", "alert", {}, ttl_s, false});
    EXPECT_TRUE(order.ok()) << order.error().message;
    return order.ok() ? order->order_id : "";
  }

  // A restore of lgwan signed by two operators, so dispatched.
  std::string restoreLgwan() {
    auto restore = service_->restore(sato_, RestoreRequest{"lgwan", "full", "all clear", {}});
    EXPECT_TRUE(restore.ok());
    if (!restore.ok()) return "";
    EXPECT_TRUE(sign(*restore->approval_id, keys_.sato).ok());
    EXPECT_TRUE(sign(*restore->approval_id, keys_.tanaka).ok());
    return restore->order_id;
  }
};

TEST_F(OrderViewsTest, GatewaysThatNeverConnectedAreQueuedAndTheSegmentIsNotIsolated) {
  // The administrator's case: the order is accepted and stored, but no gateway has it.
  const std::string id = isolateLgwan();
  ASSERT_FALSE(id.empty());
  for (const char* gw : {"core-gw", "edge-gw"}) {
    const json entry = gateway(id, gw);
    EXPECT_EQ(entry["delivery"], "queued") << gw;
    EXPECT_EQ(entry["note"], "gateway never connected") << gw;
    EXPECT_EQ(entry["connected"], false) << gw;
  }
  const json order = service_->order(id).value();
  EXPECT_EQ(order["outcome"], "queued");
  EXPECT_EQ(order["counts"]["applied"], 0);
  EXPECT_EQ(order["counts"]["offline"], 2);

  const json lgwan = segment("lgwan");
  EXPECT_EQ(lgwan["state"], "queued");
  EXPECT_NE(lgwan["state"], "isolated");
  EXPECT_EQ(lgwan["applied"], 0);
  EXPECT_EQ(lgwan["gateways"], 2);
  EXPECT_EQ(lgwan["counts"]["offline"], 2);
  EXPECT_EQ(lgwan["order_id"], id);
  EXPECT_EQ(lgwan["action"], "isolate");
  EXPECT_EQ(lgwan["by_gateway"], (json{{"core-gw", "queued"}, {"edge-gw", "queued"}}));
  EXPECT_EQ(lgwan["isolated"], true);  // requested: the latest dispatched order is an isolate
  EXPECT_EQ(segment("mgmt")["state"], "open");
  EXPECT_TRUE(segment("mgmt")["order_id"].is_null());
}

TEST_F(OrderViewsTest, OneOfTwoAppliedIsPartialAndBothAreIsolated) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  const std::string id = isolateLgwan();
  EXPECT_EQ(gateway(id, "core-gw")["delivery"], "pending");  // sent, no ack yet
  EXPECT_EQ(segment("lgwan")["state"], "pending");

  ASSERT_TRUE(ack("core-gw", keys_.core_gw, id).ok());
  json lgwan = segment("lgwan");
  EXPECT_EQ(lgwan["state"], "partial");
  EXPECT_EQ(lgwan["applied"], 1);
  EXPECT_EQ(lgwan["gateways"], 2);
  EXPECT_EQ(lgwan["by_gateway"], (json{{"core-gw", "applied"}, {"edge-gw", "pending"}}));
  EXPECT_EQ(service_->order(id).value()["outcome"], "partial");

  ASSERT_TRUE(ack("edge-gw", keys_.edge_gw, id, AckResult::kAlreadyApplied).ok());
  lgwan = segment("lgwan");
  EXPECT_EQ(lgwan["state"], "isolated");
  EXPECT_EQ(lgwan["applied"], 2);
  EXPECT_TRUE(lgwan["until"].is_null());
  EXPECT_EQ(service_->order(id).value()["outcome"], "applied");
  EXPECT_EQ(gateway(id, "edge-gw")["delivery"], "already_applied");
}

TEST_F(OrderViewsTest, AGatewayThatWentOfflineIsQueuedAndCounted) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  hub_.online.erase("edge-gw");
  service_->onDisconnect("edge-gw");
  const std::string id = isolateLgwan();
  ASSERT_TRUE(ack("core-gw", keys_.core_gw, id).ok());
  const json edge = gateway(id, "edge-gw");
  EXPECT_EQ(edge["state"], "pending");  // the stored dispatch state, as before
  EXPECT_EQ(edge["delivery"], "queued");
  EXPECT_EQ(edge["note"], "gateway offline");
  const json lgwan = segment("lgwan");
  EXPECT_EQ(lgwan["state"], "partial");
  EXPECT_EQ(lgwan["counts"]["offline"], 1);
  EXPECT_EQ(lgwan["counts"]["queued"], 1);
  const json status = service_->status().value();
  EXPECT_EQ(status["gateways"]["edge-gw"]["unacked"], 1);
  EXPECT_EQ(status["gateways"]["core-gw"]["unacked"], 0);

  // It reconnects, gets the order, applies it.
  connect("edge-gw", keys_.edge_gw);
  EXPECT_EQ(gateway(id, "edge-gw")["delivery"], "pending");
  ASSERT_TRUE(ack("edge-gw", keys_.edge_gw, id).ok());
  EXPECT_EQ(segment("lgwan")["state"], "isolated");
}

TEST_F(OrderViewsTest, AnUnapprovedAgentIsQueuedWithTheReason) {
  connect("core-gw", keys_.core_gw);  // online, enrollment pending
  const std::string id = isolateLgwan();
  const json core = gateway(id, "core-gw");
  EXPECT_EQ(core["delivery"], "queued");
  EXPECT_EQ(core["note"], "agent not approved");
  EXPECT_EQ(core["connected"], true);
  EXPECT_EQ(segment("lgwan")["counts"]["offline"], 1);  // edge-gw only
}

TEST_F(OrderViewsTest, RejectedOrFailedEverywhereIsFailedNotIsolated) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  const std::string id = isolateLgwan();
  ASSERT_TRUE(ack("core-gw", keys_.core_gw, id, AckResult::kRejected).ok());
  EXPECT_EQ(segment("lgwan")["state"], "pending");  // edge-gw may still apply it
  ASSERT_TRUE(ack("edge-gw", keys_.edge_gw, id, AckResult::kFailed).ok());
  const json lgwan = segment("lgwan");
  EXPECT_EQ(lgwan["state"], "failed");
  EXPECT_EQ(lgwan["counts"]["failed"], 2);
  EXPECT_EQ(service_->order(id).value()["outcome"], "failed");
}

TEST_F(OrderViewsTest, ExpiredWithoutAnyAckIsFailed) {
  const std::string id = isolateLgwan();
  clock_.advance(std::chrono::minutes(31));  // past the authz validity
  EXPECT_EQ(service_->order(id).value()["outcome"], "expired");
  EXPECT_EQ(segment("lgwan")["state"], "failed");
  EXPECT_EQ(gateway(id, "core-gw")["delivery"], "expired");
}

TEST_F(OrderViewsTest, ARestoreIsOpenOnlyOnceEveryGatewayAppliedIt) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  const std::string isolate = isolateLgwan();
  ASSERT_TRUE(ack("core-gw", keys_.core_gw, isolate).ok());
  ASSERT_TRUE(ack("edge-gw", keys_.edge_gw, isolate).ok());
  ASSERT_EQ(segment("lgwan")["state"], "isolated");

  const std::string restore = restoreLgwan();
  ASSERT_FALSE(restore.empty());
  json lgwan = segment("lgwan");
  EXPECT_EQ(lgwan["isolated"], false);   // the intent changed at once...
  EXPECT_EQ(lgwan["state"], "pending");  // ...the gateways have not answered
  EXPECT_EQ(lgwan["action"], "restore");
  EXPECT_EQ(lgwan["order_id"], restore);

  ASSERT_TRUE(ack("core-gw", keys_.core_gw, restore).ok());
  EXPECT_EQ(segment("lgwan")["state"], "partial");
  ASSERT_TRUE(ack("edge-gw", keys_.edge_gw, restore).ok());
  lgwan = segment("lgwan");
  EXPECT_EQ(lgwan["state"], "open");
  EXPECT_EQ(lgwan["applied"], 2);
}

TEST_F(OrderViewsTest, ARestoreAwaitingApprovalLeavesTheSegmentAsTheAcksSay) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  const std::string isolate = isolateLgwan();
  ASSERT_TRUE(ack("core-gw", keys_.core_gw, isolate).ok());
  ASSERT_TRUE(ack("edge-gw", keys_.edge_gw, isolate).ok());
  auto restore = service_->restore(sato_, RestoreRequest{"lgwan", "full", "all clear", {}});
  ASSERT_TRUE(restore.ok());
  const json lgwan = segment("lgwan");
  EXPECT_EQ(lgwan["state"], "isolated");
  EXPECT_EQ(lgwan["order_id"], isolate);
  const json order = service_->order(restore->order_id).value();
  EXPECT_EQ(order["outcome"], "awaiting_approval");
  EXPECT_EQ(order["gateways"]["core-gw"]["delivery"], "awaiting_approval");
}

TEST_F(OrderViewsTest, ATimedIsolationLapsesOnItsOwn) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  const std::string id = isolateLgwan(/*ttl_s=*/600);
  ASSERT_TRUE(ack("core-gw", keys_.core_gw, id).ok());
  ASSERT_TRUE(ack("edge-gw", keys_.edge_gw, id).ok());
  json lgwan = segment("lgwan");
  EXPECT_EQ(lgwan["state"], "isolated");
  EXPECT_EQ(lgwan["until"], formatRfc3339(testing::kControllerTestStartMs + 600'000));
  EXPECT_EQ(gateway(id, "core-gw")["lapsed"], false);

  clock_.advance(std::chrono::minutes(10));
  lgwan = segment("lgwan");
  EXPECT_EQ(lgwan["state"], "lapsed");
  EXPECT_EQ(lgwan["applied"], 0);
  EXPECT_EQ(lgwan["counts"]["lapsed"], 2);
  EXPECT_EQ(gateway(id, "core-gw")["lapsed"], true);
  EXPECT_EQ(gateway(id, "core-gw")["delivery"], "applied");  // what the ack said
}

TEST_F(OrderViewsTest, TheNewestDispatchedOrderDecides) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  const std::string first = isolateLgwan();
  ASSERT_TRUE(ack("core-gw", keys_.core_gw, first).ok());
  ASSERT_TRUE(ack("edge-gw", keys_.edge_gw, first).ok());
  const std::string second = isolateLgwan();
  const json lgwan = segment("lgwan");
  EXPECT_EQ(lgwan["order_id"], second);
  EXPECT_EQ(lgwan["state"], "pending");
  EXPECT_EQ(lgwan["gen"], 2);
}

}  // namespace
}  // namespace shadan::controller

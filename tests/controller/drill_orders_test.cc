// Drill safety on the controller (issue #17): a drill isolate needs a ttl_s; every audit entry
// about a drill order is marked drill; the view caps a drill's ttl like the agents; with a lab
// trust file only drill orders are taken, and the lab's drill keys approve them.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "tests/controller/orders_service_fixture.h"

namespace shadan::controller {
namespace {

class DrillOrdersTest : public OrdersServiceTest {
 protected:
  // Every entry that names `order_id`, in order; each must be marked drill (or not at all).
  std::vector<std::string> entriesOf(const std::string& order_id, bool drill) const {
    std::vector<std::string> names;
    for (const AuditEvent& e : audit_.events) {
      if (e.command_id != order_id) continue;
      names.push_back(e.event);
      if (drill) {
        EXPECT_EQ(e.drill, std::optional<bool>(true)) << e.event;
      } else {
        EXPECT_NE(e.drill, std::optional<bool>(true)) << e.event;
      }
    }
    return names;
  }

  void ack(const std::string& agent_id, const Ed25519Signer& key, size_t index,
           const std::string& order_id) {
    const int64_t seq = dispatchOf(hub_.sent[agent_id].at(index)).seq;
    ASSERT_TRUE(service_->onAck(agent_id, ackEnvelope(key, agent_id, seq, order_id)).ok());
  }
};

TEST_F(DrillOrdersTest, DrillIsolateWithoutTtlIsABadRequestNamingTtl) {
  enroll("core-gw", keys_.core_gw);
  auto refused = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "drill", {}, {}, true});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused.error().message.rfind("ttl_s: ", 0), 0u) << refused.error().message;
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  EXPECT_TRUE(store_->listOrders(10).value().empty());
}

TEST_F(DrillOrdersTest, EveryEntryOfADrillOrdersLifeIsMarkedDrill) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  auto isolate = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "drill", {}, 600, true});
  ASSERT_TRUE(isolate.ok()) << isolate.error().message;
  ack("core-gw", keys_.core_gw, 0, isolate->order_id);
  ack("edge-gw", keys_.edge_gw, 0, isolate->order_id);
  EXPECT_EQ(entriesOf(isolate->order_id, true),
            (std::vector<std::string>{"order_requested", "dispatch_sent", "dispatch_sent",
                                      "ack_received", "ack_received"}));

  RestoreRequest request{"lgwan", "full", "drill over", {}};
  request.drill = true;
  auto restore = service_->restore(sato_, request);
  ASSERT_TRUE(restore.ok()) << restore.error().message;
  ASSERT_TRUE(sign(*restore->approval_id, keys_.sato).ok());
  ASSERT_TRUE(sign(*restore->approval_id, keys_.tanaka).ok());
  auto verified = agentVerifies(hub_.sent["core-gw"].at(1), "core-gw", keys_.core_gw);
  ASSERT_TRUE(verified.ok()) << verified.rejection().message;
  EXPECT_TRUE(verified.order().authz.drill);
  ack("core-gw", keys_.core_gw, 1, restore->order_id);
  EXPECT_EQ(
      entriesOf(restore->order_id, true),
      (std::vector<std::string>{"order_requested", "approval_signature_added", "order_approved",
                                "dispatch_sent", "dispatch_sent", "ack_received"}));
  EXPECT_EQ(service_->order(restore->order_id).value()["drill"], true);
}

TEST_F(DrillOrdersTest, ExpiriesOfADrillAreMarkedDrillAndRealOrdersAreNot) {
  enroll("edge-gw", keys_.edge_gw);
  hub_.online.erase("edge-gw");
  auto isolate = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "drill", {}, 600, true});
  ASSERT_TRUE(isolate.ok());
  RestoreRequest request{"lgwan", "full", "drill over", {}};
  request.drill = true;
  auto restore = service_->restore(sato_, request);
  ASSERT_TRUE(restore.ok());
  auto real = service_->restore(sato_, RestoreRequest{"lgwan", "full", "all clear", {}});
  ASSERT_TRUE(real.ok());
  clock_.advance(std::chrono::hours(2));
  ASSERT_TRUE(service_->sweep().ok());
  const auto isolate_entries = entriesOf(isolate->order_id, true);
  EXPECT_NE(std::find(isolate_entries.begin(), isolate_entries.end(), "dispatch_expired"),
            isolate_entries.end());
  EXPECT_EQ(entriesOf(restore->order_id, true),
            (std::vector<std::string>{"order_requested", "approval_expired"}));
  // A real restore's entries keep their shape: no drill member at all.
  EXPECT_EQ(entriesOf(real->order_id, false),
            (std::vector<std::string>{"order_requested", "approval_expired"}));
}

TEST_F(DrillOrdersTest, ViewCapsADrillsTtlLikeTheAgents) {
  enroll("core-gw", keys_.core_gw);
  auto isolate = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "drill", {}, 7200, true});
  ASSERT_TRUE(isolate.ok());
  ack("core-gw", keys_.core_gw, 0, isolate->order_id);
  const json view = service_->order(isolate->order_id).value();
  // Applied now; the policy's default cap is 3600 s, not the order's 7200.
  EXPECT_EQ(view["gateways"]["core-gw"]["until"],
            formatRfc3339(toUnixMillis(clock_.now()) + 3600 * 1000));
}

class LabControllerTest : public OrdersServiceTest {
 protected:
  LabControllerTest() {
    json doc = {{"shadan_trust", 1},
                {"version", 1},
                {"expires_at", "2027-06-01T00:00:00Z"},
                {"purpose", "lab"},
                {"keys",
                 {testing::keyEntry(keys_.sato, "drill:sato", {"drill"}),
                  testing::keyEntry(keys_.tanaka, "drill:tanaka", {"drill"}),
                  testing::keyEntry(keys_.controller, "controller", {"controller"}),
                  testing::keyEntry(keys_.core_gw, "agent:core-gw", {"agent"}),
                  testing::keyEntry(keys_.edge_gw, "agent:edge-gw", {"agent"})}}};
    trust_ = parseTrust(doc.dump(), "lab-trust.json").value();
  }
};

TEST_F(LabControllerTest, RefusesEveryOrderThatIsNotADrill) {
  enroll("core-gw", keys_.core_gw);
  auto isolate = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "real", {}, 600, false});
  ASSERT_FALSE(isolate.ok());
  EXPECT_EQ(isolate.error().code, ErrorCode::kPolicy);
  EXPECT_EQ(isolate.error().message.rfind("lab_trust_requires_drill: ", 0), 0u);
  auto restore = service_->restore(sato_, RestoreRequest{"lgwan", "full", "real", {}});
  ASSERT_FALSE(restore.ok());
  EXPECT_EQ(restore.error().message.rfind("lab_trust_requires_drill: ", 0), 0u);
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  EXPECT_TRUE(store_->listOrders(10).value().empty());
}

TEST_F(LabControllerTest, OperatorsActAsTheirDrillIdentitiesAndDrillKeysApprove) {
  enroll("core-gw", keys_.core_gw);
  auto isolate = service_->isolate(sato_, IsolateRequest{"lgwan", "full", "drill", {}, 600, true});
  ASSERT_TRUE(isolate.ok()) << isolate.error().message;
  auto cut = agentVerifies(hub_.sent["core-gw"].at(0), "core-gw", keys_.core_gw);
  ASSERT_TRUE(cut.ok()) << cut.rejection().message;
  EXPECT_EQ(cut.order().authz.requested_by, "drill:sato");

  RestoreRequest request{"lgwan", "full", "drill over", {}};
  request.drill = true;
  auto restore = service_->restore(tanaka_, request);
  ASSERT_TRUE(restore.ok()) << restore.error().message;
  ASSERT_TRUE(sign(*restore->approval_id, keys_.sato).ok());
  ASSERT_TRUE(sign(*restore->approval_id, keys_.tanaka).ok());
  ASSERT_EQ(hub_.sent["core-gw"].size(), 2u);
  auto lifted = agentVerifies(hub_.sent["core-gw"][1], "core-gw", keys_.core_gw);
  ASSERT_TRUE(lifted.ok()) << lifted.rejection().message;
  EXPECT_EQ(lifted.order().authz.requested_by, "drill:tanaka");
  EXPECT_EQ(lifted.order().signer_identities,
            (std::vector<std::string>{"drill:sato", "drill:tanaka"}));
}

// A lab's own detectors: the responder's automatic isolate (and its release) are drills there,
// so the lab's agents apply them.
TEST_F(LabControllerTest, AutomaticResponsesOfALabAreDrills) {
  enroll("core-gw", keys_.core_gw);
  IsolateRequest request{"lgwan", "full", "alert 42", {}, 600, false};
  request.automatic = true;
  auto isolate = service_->isolate(ids_, request);
  ASSERT_TRUE(isolate.ok()) << isolate.error().message;
  auto verified = agentVerifies(hub_.sent["core-gw"].at(0), "core-gw", keys_.core_gw);
  ASSERT_TRUE(verified.ok()) << verified.rejection().message;
  EXPECT_TRUE(verified.order().authz.drill);
  EXPECT_TRUE(verified.order().authz.automatic);
  EXPECT_EQ(service_->order(isolate->order_id).value()["drill"], true);
}

// With a production trust file the drill role cannot be listed; built by hand here, a drill key
// still approves nothing real.
TEST_F(DrillOrdersTest, DrillKeyMayNotApproveARealOrder) {
  trust_.keys.push_back(
      TrustKey{keys_.eve.keyId(), keys_.eve.publicKey(), "drill:eve", {TrustRole::kDrill}});
  auto restore = service_->restore(sato_, RestoreRequest{"lgwan", "full", "all clear", {}});
  ASSERT_TRUE(restore.ok());
  auto refused = sign(*restore->approval_id, keys_.eve);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kPolicy);
  EXPECT_NE(refused.error().message.find("a drill key signs drill orders only"), std::string::npos)
      << refused.error().message;
}

}  // namespace
}  // namespace shadan::controller

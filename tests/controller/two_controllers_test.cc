// Two controllers on one etcd (a real member on loopback, no root), each with the agents
// connected to it: an order made on one reaches a gateway connected to the other, once.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "controller/etcd_store.h"
#include "controller/orders_service.h"
#include "tests/controller/controller_test_support.h"
#include "tests/support/etcd_member.h"

namespace shadan::controller {
namespace {

using ::shadan::testing::EtcdMember;
using ::shadan::testing::FakeAuditSink;
using ::shadan::testing::FakeClock;
using ::shadan::testing::FakeHub;
using ::shadan::testing::TempDir;
using ::shadan::testing::TestKeys;

// One controller: its own store connection, hub (its agents), audit log and service.
struct ControllerUnderTest {
  ControllerUnderTest(const EtcdMember& member, const Policy& policy, const Trust& trust,
                      const TestKeys& keys, const FakeClock& clock)
      : store(openEtcdControllerStore(EtcdStoreOptions{{member.endpoint()}, "/shadan/"}).value()),
        service(policy, trust, keys.controller, *store, hub, audit, clock, OrdersServiceOptions{}) {
  }
  ControllerStorePtr store;
  FakeHub hub;
  FakeAuditSink audit;
  OrdersService service;
};

class TwoControllersTest : public ::testing::Test {
 protected:
  TwoControllersTest() {
    policy_ = parsePolicy(testing::kTestPolicy, "policy.json").value().policy;
    trust_ = parseTrust(keys_.trustDoc().dump(), "trust.json").value();
    a_ = std::make_unique<ControllerUnderTest>(member_, policy_, trust_, keys_, clock_);
    b_ = std::make_unique<ControllerUnderTest>(member_, policy_, trust_, keys_, clock_);
    // Each starts following the store before its agents say hello, as the controller does.
    EXPECT_TRUE(a_->service.deliverCreatedElsewhere().ok());
    EXPECT_TRUE(b_->service.deliverCreatedElsewhere().ok());
  }
  void enroll(ControllerUnderTest& on, const std::string& agent_id, const Ed25519Signer& key) {
    on.hub.online.insert(agent_id);
    on.service.onHello(AgentHello{agent_id, key.keyId(), 0, "0.1.0", std::nullopt});
    ASSERT_TRUE(on.service.approveAgent(sato_, agent_id, "enrolled at install").ok());
  }

  TestKeys keys_;
  TempDir dir_;
  EtcdMember member_{dir_.path()};
  Policy policy_;
  Trust trust_;
  FakeClock clock_{testing::kControllerTestStartMs};
  std::unique_ptr<ControllerUnderTest> a_;
  std::unique_ptr<ControllerUnderTest> b_;
  const Caller sato_{"sato", ApiRole::kOperator};
};

TEST_F(TwoControllersTest, AnOrderMadeOnOneReachesAGatewayConnectedToTheOtherOnce) {
  enroll(*a_, "edge-gw", keys_.edge_gw);
  enroll(*b_, "core-gw", keys_.core_gw);
  auto order = a_->service.isolate(sato_, IsolateRequest{"lgwan", "full", "worm", {}, {}, false});
  ASSERT_TRUE(order.ok()) << order.error().message;
  // Made on a: edge-gw (on a) has it at once; core-gw (on b) not yet, and never from a.
  EXPECT_EQ(a_->hub.sent["edge-gw"].size(), 1u);
  EXPECT_TRUE(b_->hub.sent["core-gw"].empty());

  ASSERT_TRUE(b_->service.deliverCreatedElsewhere().ok());
  ASSERT_EQ(b_->hub.sent["core-gw"].size(), 1u);
  EXPECT_EQ(b_->hub.sent["core-gw"][0]["type"], "dispatch");
  // Looking again sends nothing twice; a's own look does not resend what it sent.
  ASSERT_TRUE(b_->service.deliverCreatedElsewhere().ok());
  ASSERT_TRUE(a_->service.deliverCreatedElsewhere().ok());
  EXPECT_EQ(b_->hub.sent["core-gw"].size(), 1u);
  EXPECT_EQ(a_->hub.sent["edge-gw"].size(), 1u);
  EXPECT_TRUE(a_->hub.sent["core-gw"].empty());
  EXPECT_TRUE(b_->hub.sent["edge-gw"].empty());

  // Both dispatches are recorded sent, each with its own seq 1.
  auto dispatches = a_->store->dispatchesForOrder(order->order_id).value();
  ASSERT_EQ(dispatches.size(), 2u);
  for (const auto& dispatch : dispatches) {
    EXPECT_EQ(dispatch.seq, 1) << dispatch.agent_id;
    EXPECT_GT(dispatch.sent_ms, 0) << dispatch.agent_id;
  }
}

TEST_F(TwoControllersTest, AGatewayNotConnectedAnywhereGetsItsOrderAtItsHello) {
  enroll(*b_, "core-gw", keys_.core_gw);
  b_->hub.online.erase("core-gw");
  b_->service.onDisconnect("core-gw");
  auto order = a_->service.isolate(sato_, IsolateRequest{"lgwan", "full", "worm", {}, {}, false});
  ASSERT_TRUE(order.ok()) << order.error().message;
  ASSERT_TRUE(b_->service.deliverCreatedElsewhere().ok());
  EXPECT_TRUE(b_->hub.sent["core-gw"].empty());  // not connected: stays pending
  // It comes back on a.
  a_->hub.online.insert("core-gw");
  a_->service.onHello(AgentHello{"core-gw", keys_.core_gw.keyId(), 0, "0.1.0", std::nullopt});
  EXPECT_EQ(a_->hub.sent["core-gw"].size(), 1u);
  ASSERT_TRUE(a_->service.deliverCreatedElsewhere().ok());
  EXPECT_EQ(a_->hub.sent["core-gw"].size(), 1u);
}

}  // namespace
}  // namespace shadan::controller

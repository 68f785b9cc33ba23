// Two controllers on one etcd (a real member on loopback, no root), each with the agents
// connected to it: an order made on one reaches a gateway connected to the other, once.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

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
                      const TestKeys& keys, const FakeClock& clock, const std::string& name)
      : store(
            openEtcdControllerStore(
                EtcdClient::make(EtcdClientOptions{{member.endpoint()}}).value(), "/shadan/", name)
                .value()),
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
    a_ = std::make_unique<ControllerUnderTest>(member_, policy_, trust_, keys_, clock_, "ctl-a");
    b_ = std::make_unique<ControllerUnderTest>(member_, policy_, trust_, keys_, clock_, "ctl-b");
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

// status on either controller shows every gateway connected, and where: the presence records
// each writes under a lease of its own.
TEST_F(TwoControllersTest, StatusOnEitherShowsWhereEachGatewayIsConnected) {
  enroll(*a_, "edge-gw", keys_.edge_gw);
  enroll(*b_, "core-gw", keys_.core_gw);
  const auto gateway = [](ControllerUnderTest& on, const std::string& id) {
    auto status = on.service.status();
    EXPECT_TRUE(status.ok()) << status.error().message;
    return status.ok() ? (*status)["gateways"][id] : nlohmann::json();
  };
  for (ControllerUnderTest* on : {a_.get(), b_.get()}) {
    EXPECT_EQ(gateway(*on, "edge-gw")["connected"], true);
    EXPECT_EQ(gateway(*on, "edge-gw")["connected_to"], "ctl-a");
    EXPECT_EQ(gateway(*on, "core-gw")["connected"], true);
    EXPECT_EQ(gateway(*on, "core-gw")["connected_to"], "ctl-b");
  }
  const auto agents = b_->service.agents().value()["agents"];
  ASSERT_EQ(agents.size(), 2u);
  for (const auto& agent : agents) EXPECT_EQ(agent["connected"], true) << agent.dump();

  // edge-gw moves to b before a sees its session end: a's late disconnect leaves b's record.
  b_->hub.online.insert("edge-gw");
  b_->service.onHello(AgentHello{"edge-gw", keys_.edge_gw.keyId(), 0, "0.1.0", std::nullopt});
  a_->hub.online.erase("edge-gw");
  a_->service.onDisconnect("edge-gw");
  EXPECT_EQ(gateway(*a_, "edge-gw")["connected"], true);
  EXPECT_EQ(gateway(*a_, "edge-gw")["connected_to"], "ctl-b");

  // Gone from b too: connected nowhere.
  b_->hub.online.erase("edge-gw");
  b_->service.onDisconnect("edge-gw");
  EXPECT_EQ(gateway(*a_, "edge-gw")["connected"], false);
  EXPECT_EQ(gateway(*a_, "edge-gw")["connected_to"], nullptr);

  // b's lease ends (etcd lost it, or b was out of reach longer than its TTL): its records go
  // with it; b's look notices within a third of the TTL and writes them again.
  auto client = EtcdClient::make(EtcdClientOptions{{member_.endpoint()}}).value();
  EtcdRangeRequest request;
  request.key = "/shadan/presence/core-gw";
  const auto record = client->range(request).value();
  ASSERT_EQ(record.kvs.size(), 1u);
  ASSERT_NE(record.kvs.front().lease, 0);
  ASSERT_TRUE(client->leaseRevoke(record.kvs.front().lease).ok());
  EXPECT_EQ(gateway(*a_, "core-gw")["connected"], false);
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  ASSERT_TRUE(b_->service.deliverCreatedElsewhere().ok());
  EXPECT_EQ(gateway(*a_, "core-gw")["connected_to"], "ctl-b");

  // A controller that stops takes its records with it at once.
  b_.reset();
  EXPECT_EQ(gateway(*a_, "core-gw")["connected"], false);

  // One killed -9 leaves its records until its lease runs out (here: written as it would have);
  // started again under the same name, it drops them at once: none of its gateways is back.
  const auto lease = client->leaseGrant(std::chrono::seconds(60)).value();
  ASSERT_EQ(
      client->txn({}, {EtcdWrite{"/shadan/presence/core-gw", "ctl-c", lease.id}}).value().outcome,
      EtcdTxnResult::Outcome::kApplied);
  EXPECT_EQ(gateway(*a_, "core-gw")["connected_to"], "ctl-c");
  auto restarted = openEtcdControllerStore(
      EtcdClient::make(EtcdClientOptions{{member_.endpoint()}}).value(), "/shadan/", "ctl-c");
  ASSERT_TRUE(restarted.ok()) << restarted.error().message;
  EXPECT_EQ(gateway(*a_, "core-gw")["connected"], false);
}

}  // namespace
}  // namespace shadan::controller

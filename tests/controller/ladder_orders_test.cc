// The escalation ladder through the order logic: every rung's authz, targets, approval rule and
// generation; refusals that store and send nothing; and the ladder status shows per gateway.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "controller/orders_service.h"
#include "tests/controller/orders_service_fixture.h"

namespace shadan::controller {
namespace {

using Strings = std::vector<std::string>;

class LadderOrdersTest : public OrdersServiceTest {
 protected:
  // The service refers to policy_ and trust_, so changing them here changes what it sees.
  LadderOrdersTest() {
    policy_ = parsePolicy(testing::kLadderTestPolicy, "policy.json").value().policy;
  }

  static IsolateRequest isolateOf(IsolationScope scope, Strings hosts = {}, Strings gateways = {},
                                  bool link_down = false) {
    IsolateRequest request;
    request.scope = scope;
    request.reason = "incident INC-9";
    request.hosts = std::move(hosts);
    request.gateways = std::move(gateways);
    request.link_down = link_down;
    return request;
  }

  static RestoreRequest restoreOf(IsolationScope scope, Strings hosts = {}, Strings gateways = {}) {
    RestoreRequest request;
    request.scope = scope;
    request.reason = "all clear";
    request.hosts = std::move(hosts);
    request.gateways = std::move(gateways);
    return request;
  }

  // The authz of the `index`th dispatch sent to `agent_id`.
  Authz authzSent(const std::string& agent_id, size_t index = 0) {
    return parseAuthz(dispatchOf(hub_.sent[agent_id].at(index)).authz.payload).value();
  }

  // The agent acks its dispatch of `order_id`, listing `isolated` as its state after.
  Status ack(const std::string& agent_id, const Ed25519Signer& key, const std::string& order_id,
             const Strings& isolated) {
    for (const json& message : hub_.sent[agent_id]) {
      const Dispatch dispatch = dispatchOf(message);
      if (parseAuthz(dispatch.authz.payload).value().command_id != order_id) continue;
      return service_->onAck(agent_id, ackEnvelope(key, agent_id, dispatch.seq, order_id,
                                                   AckResult::kApplied, isolated));
    }
    return makeError(ErrorCode::kNotFound, agent_id + " was sent no dispatch of " + order_id);
  }

  // Signs the approval by sato and tanaka, which meets every default threshold.
  void approveByTwo(const std::string& approval_id) {
    ASSERT_TRUE(sign(approval_id, keys_.sato).ok());
    ASSERT_TRUE(sign(approval_id, keys_.tanaka).ok());
  }

  // The detail of the newest order_requested audit entry.
  json requestedDetail() {
    for (auto it = audit_.events.rbegin(); it != audit_.events.rend(); ++it) {
      if (it->event == "order_requested") return it->detail.value_or(json());
    }
    return json();
  }

  int64_t generationOf(const std::string& key) {
    const std::vector<SegmentRecord> rows = store_->listSegments().value();
    for (const auto& row : rows) {
      if (row.segment == key) return row.gen;
    }
    return 0;
  }
};

TEST_F(LadderOrdersTest, HostQuarantineGoesToTheGatewaysBorderingTheHostsSegment) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  auto accepted =
      service_->isolate(ids_, isolateOf(IsolationScope::kHost, {"10.20.0.5", "10.20.0.16/28"}));
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
  EXPECT_EQ(accepted->state, "dispatched");
  EXPECT_EQ(accepted->gateways, (Strings{"core-gw", "edge-gw"}));
  EXPECT_EQ(accepted->toJson(), json::parse(R"({"order_id":")" + accepted->order_id + R"(",
      "state":"dispatched","gateways":["core-gw","edge-gw"],"scope":"host","segment":"lgwan",
      "hosts":["10.20.0.5","10.20.0.16/28"]})"));

  for (const char* gw : {"core-gw", "edge-gw"}) {
    const Authz authz = authzSent(gw);
    EXPECT_EQ(authz.scope, IsolationScope::kHost) << gw;
    EXPECT_EQ(authz.segment, "lgwan");
    ASSERT_EQ(authz.hosts.size(), 2u);
    EXPECT_EQ(authz.hosts[0].toString(), "10.20.0.5");
    EXPECT_EQ(authz.segment_gen, 1);
    EXPECT_FALSE(authz.link_down);
    EXPECT_EQ(authz.on_behalf_of, "detector:ids-1");
    EXPECT_EQ(authz.targets, (Strings{"core-gw", "edge-gw"}));
  }
  const json order = service_->order(accepted->order_id).value();
  EXPECT_EQ(order["scope"], "host");
  EXPECT_EQ(order["segment"], "lgwan");
  EXPECT_EQ(order["hosts"], json::array({"10.20.0.5", "10.20.0.16/28"}));
  const json requested = requestedDetail();
  EXPECT_EQ(requested["scope"], "host");
  EXPECT_EQ(requested["hosts"], json::array({"10.20.0.5", "10.20.0.16/28"}));
}

TEST_F(LadderOrdersTest, EachRungCountsItsOwnGeneration) {
  ASSERT_TRUE(service_->isolate(ids_, isolateOf(IsolationScope::kHost, {"10.20.0.5"})).ok());
  ASSERT_TRUE(service_->isolate(ids_, isolateOf(IsolationScope::kHost, {"10.20.0.6"})).ok());
  ASSERT_TRUE(service_->isolate(ids_, IsolateRequest{"lgwan", "full", "worm", {}, {}, false}).ok());
  ASSERT_TRUE(service_->isolate(sato_, isolateOf(IsolationScope::kUplink)).ok());
  ASSERT_TRUE(service_->isolate(sato_, isolateOf(IsolationScope::kIsland)).ok());
  ASSERT_TRUE(service_->restore(sato_, restoreOf(IsolationScope::kUplink)).ok());
  EXPECT_EQ(generationOf("host:lgwan"), 2);
  EXPECT_EQ(generationOf("lgwan"), 1);
  EXPECT_EQ(generationOf("@uplink"), 2);
  EXPECT_EQ(generationOf("@island"), 1);
  // What was last ordered under each key (host orders were dispatched on behalf; uplink and
  // island wait for approval, so their rows hold only the counter).
  const std::vector<SegmentRecord> rows = store_->listSegments().value();
  for (const auto& row : rows) {
    if (row.segment == "host:lgwan" || row.segment == "lgwan") {
      EXPECT_TRUE(row.isolated) << row.segment;
    } else {
      EXPECT_FALSE(row.isolated) << row.segment;
    }
  }
}

TEST_F(LadderOrdersTest, HostRefusalsStoreAndSendNothing) {
  enroll("core-gw", keys_.core_gw);
  const size_t audited = audit_.events.size();
  for (const Strings& hosts : std::vector<Strings>{{"8.8.8.8"},
                                                   {"10.30.0.100"},
                                                   {"10.30.0.0/16"},
                                                   {"10.20.0.0/24"},
                                                   {"10.20.0.5", "10.30.0.5"},
                                                   {"10.20.0.999"},
                                                   {}}) {
    auto refused = service_->isolate(sato_, isolateOf(IsolationScope::kHost, hosts));
    ASSERT_FALSE(refused.ok()) << ::testing::PrintToString(hosts);
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument) << refused.error().message;
    auto restore = service_->restore(sato_, restoreOf(IsolationScope::kHost, hosts));
    ASSERT_FALSE(restore.ok()) << ::testing::PrintToString(hosts);
  }
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  EXPECT_TRUE(store_->listOrders(10).value().empty());
  EXPECT_TRUE(store_->listSegments().value().empty());  // no generation taken
  EXPECT_EQ(audit_.events.size(), audited);
}

TEST_F(LadderOrdersTest, HostOfAProtectedSegmentNeedsTheProtectedRule) {
  auto refused = service_->isolate(ids_, isolateOf(IsolationScope::kHost, {"10.99.0.5"}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kPolicy);
  EXPECT_NE(refused.error().message.find("protected segment mgmt"), std::string::npos);

  auto waiting = service_->isolate(sato_, isolateOf(IsolationScope::kHost, {"10.99.0.5"}));
  ASSERT_TRUE(waiting.ok()) << waiting.error().message;
  EXPECT_EQ(waiting->state, "awaiting_approval");
  EXPECT_EQ(waiting->needed, 2);
  EXPECT_EQ(service_->pendingApprovals().value()["approvals"][0]["rule"], "isolate_protected");
}

TEST_F(LadderOrdersTest, UplinkOpensAnApprovalByDefaultAndDetectorsAreRefused) {
  enroll("core-gw", keys_.core_gw);
  enroll("edge-gw", keys_.edge_gw);
  auto refused = service_->isolate(ids_, isolateOf(IsolationScope::kUplink));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kPolicy);
  EXPECT_NE(refused.error().message.find("detectors may not isolate the uplink"), std::string::npos)
      << refused.error().message;

  auto waiting = service_->isolate(sato_, isolateOf(IsolationScope::kUplink));
  ASSERT_TRUE(waiting.ok()) << waiting.error().message;
  EXPECT_EQ(waiting->state, "awaiting_approval");
  EXPECT_EQ(waiting->needed, 2);
  EXPECT_EQ(waiting->gateways, (Strings{"core-gw", "edge-gw"}));  // lab-gw has no uplink
  EXPECT_EQ(waiting->toJson()["scope"], "uplink");
  EXPECT_FALSE(waiting->toJson().contains("segment"));
  EXPECT_TRUE(hub_.sent["core-gw"].empty());
  const json approval = service_->pendingApprovals().value()["approvals"][0];
  EXPECT_EQ(approval["rule"], "isolate_protected");
  EXPECT_EQ(approval["scope"], "uplink");
  EXPECT_EQ(approval["segment"], nullptr);

  approveByTwo(*waiting->approval_id);
  ASSERT_EQ(hub_.sent["core-gw"].size(), 1u);
  ASSERT_EQ(hub_.sent["edge-gw"].size(), 1u);
  const Authz authz = authzSent("core-gw");
  EXPECT_EQ(authz.scope, IsolationScope::kUplink);
  EXPECT_EQ(authz.segment, "");
  EXPECT_TRUE(authz.hosts.empty());
  EXPECT_EQ(authz.segment_gen, 1);
  EXPECT_FALSE(authz.on_behalf_of.has_value());
  EXPECT_EQ(service_->order(waiting->order_id).value()["segment"], nullptr);
  EXPECT_EQ(service_->order(waiting->order_id).value()["link_down"], false);
}

TEST_F(LadderOrdersTest, IslandOpensAnApprovalForEveryGatewayOrTheNamedOnes) {
  auto refused = service_->isolate(ids_, isolateOf(IsolationScope::kIsland));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kPolicy);

  auto every = service_->isolate(sato_, isolateOf(IsolationScope::kIsland));
  ASSERT_TRUE(every.ok()) << every.error().message;
  EXPECT_EQ(every->state, "awaiting_approval");
  EXPECT_EQ(every->gateways, (Strings{"core-gw", "edge-gw", "lab-gw"}));

  enroll("edge-gw", keys_.edge_gw);
  auto named = service_->isolate(sato_, isolateOf(IsolationScope::kIsland, {}, {"edge-gw"}));
  ASSERT_TRUE(named.ok()) << named.error().message;
  EXPECT_EQ(named->gateways, (Strings{"edge-gw"}));
  approveByTwo(*named->approval_id);
  ASSERT_EQ(hub_.sent["edge-gw"].size(), 1u);
  EXPECT_EQ(authzSent("edge-gw").scope, IsolationScope::kIsland);
  EXPECT_EQ(authzSent("edge-gw").targets, (Strings{"edge-gw"}));
}

TEST_F(LadderOrdersTest, TheTrustFileMayLetTheControllerCutTheUplinkOnBehalf) {
  trust_.thresholds.uplink = ScopeApproval::kAsSegment;
  policy_.gateways["core-gw"].link_down = {"eth0"};
  enroll("core-gw", keys_.core_gw);
  auto accepted =
      service_->isolate(ids_, isolateOf(IsolationScope::kUplink, {}, {"core-gw"}, true));
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
  EXPECT_EQ(accepted->state, "dispatched");
  const Authz authz = authzSent("core-gw");
  EXPECT_TRUE(authz.link_down);
  EXPECT_EQ(authz.on_behalf_of, "detector:ids-1");
  EXPECT_EQ(requestedDetail()["link_down"], true);
  // The island still needs the protected rule.
  auto island = service_->isolate(ids_, isolateOf(IsolationScope::kIsland));
  ASSERT_FALSE(island.ok());
  EXPECT_EQ(island.error().code, ErrorCode::kPolicy);
}

TEST_F(LadderOrdersTest, GatewayRefusalsStoreAndSendNothing) {
  struct Case {
    IsolateRequest request;
    ErrorCode code;
  };
  const std::vector<Case> cases = {
      {isolateOf(IsolationScope::kUplink, {}, {"nope-gw"}), ErrorCode::kNotFound},
      {isolateOf(IsolationScope::kIsland, {}, {"nope-gw"}), ErrorCode::kNotFound},
      {isolateOf(IsolationScope::kUplink, {}, {"lab-gw"}), ErrorCode::kInvalidArgument},
      {isolateOf(IsolationScope::kIsland, {}, {}, true), ErrorCode::kInvalidArgument},
      {isolateOf(IsolationScope::kUplink, {}, {}, true), ErrorCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto refused = service_->isolate(sato_, c.request);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, c.code) << refused.error().message;
  }
  auto restore = service_->restore(sato_, restoreOf(IsolationScope::kUplink, {}, {"lab-gw"}));
  ASSERT_FALSE(restore.ok());
  EXPECT_TRUE(store_->listOrders(10).value().empty());
  EXPECT_TRUE(store_->pendingApprovals().value().empty());
  EXPECT_TRUE(store_->listSegments().value().empty());
}

TEST_F(LadderOrdersTest, RestoreOfHostsLiftsOnlyTheNamedHosts) {
  enroll("core-gw", keys_.core_gw);
  ASSERT_TRUE(
      service_->isolate(ids_, isolateOf(IsolationScope::kHost, {"10.20.0.5", "10.20.0.6"})).ok());
  auto restore = service_->restore(sato_, restoreOf(IsolationScope::kHost, {"10.20.0.6"}));
  ASSERT_TRUE(restore.ok()) << restore.error().message;
  EXPECT_EQ(restore->state, "awaiting_approval");
  EXPECT_EQ(restore->needed, 2);
  EXPECT_EQ(service_->pendingApprovals().value()["approvals"][0]["rule"], "restore");
  approveByTwo(*restore->approval_id);
  ASSERT_EQ(hub_.sent["core-gw"].size(), 2u);
  const Authz authz = authzSent("core-gw", 1);
  EXPECT_EQ(authz.action, OrderAction::kRestore);
  EXPECT_EQ(authz.scope, IsolationScope::kHost);
  ASSERT_EQ(authz.hosts.size(), 1u);
  EXPECT_EQ(authz.hosts[0].toString(), "10.20.0.6");
  EXPECT_EQ(authz.segment_gen, 2);  // after the isolate's 1, under host:lgwan
}

TEST_F(LadderOrdersTest, RestoreOfUplinkAndIslandWaitForTheRestoreRule) {
  trust_.thresholds.uplink = ScopeApproval::kAsSegment;  // restores are never on behalf
  auto uplink = service_->restore(sato_, restoreOf(IsolationScope::kUplink));
  ASSERT_TRUE(uplink.ok()) << uplink.error().message;
  EXPECT_EQ(uplink->state, "awaiting_approval");
  EXPECT_EQ(uplink->gateways, (Strings{"core-gw", "edge-gw"}));
  auto island = service_->restore(sato_, restoreOf(IsolationScope::kIsland, {}, {"lab-gw"}));
  ASSERT_TRUE(island.ok()) << island.error().message;
  EXPECT_EQ(island->gateways, (Strings{"lab-gw"}));
  // Held: a range-for over a member of the temporary Result would read it after its end
  // (found by make test-asan).
  const json pending = service_->pendingApprovals().value();
  ASSERT_EQ(pending["approvals"].size(), 2u);
  for (const json& approval : pending["approvals"]) {
    EXPECT_EQ(approval["rule"], "restore");
    EXPECT_EQ(approval["needed"], 2);
  }
}

TEST_F(LadderOrdersTest, StatusShowsTheLadderOfEachGateway) {
  trust_.thresholds.uplink = ScopeApproval::kAsSegment;
  policy_.gateways["core-gw"].link_down = {"eth0"};
  enroll("core-gw", keys_.core_gw);  // edge-gw never connects

  auto host = service_->isolate(ids_, isolateOf(IsolationScope::kHost, {"10.20.0.5"}));
  ASSERT_TRUE(host.ok()) << host.error().message;
  ASSERT_TRUE(ack("core-gw", keys_.core_gw, host->order_id, {"lgwan/10.20.0.5/32:full"}).ok());
  auto uplink = service_->isolate(ids_, isolateOf(IsolationScope::kUplink, {}, {"core-gw"}, true));
  ASSERT_TRUE(uplink.ok()) << uplink.error().message;
  ASSERT_TRUE(
      ack("core-gw", keys_.core_gw, uplink->order_id, {"lgwan/10.20.0.5/32:full", "@uplink:full"})
          .ok());

  const json status = service_->status().value();
  const json& core = status["gateways"]["core-gw"]["ladder"];
  EXPECT_EQ(core["segments"], json::object());
  EXPECT_EQ(core["hosts"], json::parse(R"({"lgwan":["10.20.0.5"]})"));
  EXPECT_EQ(core["uplink"], json::parse(R"({"profiles":["full"],"link_down":true})"));
  EXPECT_EQ(core["island"], nullptr);
  EXPECT_TRUE(core["acked_at"].is_string());
  EXPECT_EQ(core["pending"], json::array());
  // The fields from before the ladder are still there.
  EXPECT_EQ(status["gateways"]["core-gw"]["state"]["isolated"],
            json::array({"lgwan/10.20.0.5/32:full", "@uplink:full"}));
  EXPECT_EQ(status["gateways"]["core-gw"]["unacked"], 0);

  const json& edge = status["gateways"]["edge-gw"]["ladder"];
  EXPECT_EQ(edge["acked_at"], nullptr);
  EXPECT_EQ(edge["uplink"], nullptr);
  EXPECT_EQ(edge["pending"], json::parse(R"([{"order_id":")" + host->order_id +
                                         R"(","action":"isolate","scope":"host",
                                             "segment":"lgwan"}])"));
  EXPECT_EQ(status["gateways"]["lab-gw"]["ladder"]["pending"], json::array());

  // A host order is not the segment's own cut: lgwan is still open.
  EXPECT_EQ(status["segments"]["lgwan"]["state"], "open");
  EXPECT_EQ(status["segments"]["lgwan"]["isolated"], false);
  EXPECT_EQ(status["segments"]["lgwan"]["order_id"], nullptr);
}

TEST_F(LadderOrdersTest, LinkDownHoldsUntilAnUplinkRestoreTheGatewayApplied) {
  trust_.thresholds.uplink = ScopeApproval::kAsSegment;
  policy_.gateways["core-gw"].link_down = {"eth0"};
  enroll("core-gw", keys_.core_gw);
  auto cut = service_->isolate(ids_, isolateOf(IsolationScope::kUplink, {}, {"core-gw"}));
  ASSERT_TRUE(cut.ok());
  ASSERT_TRUE(ack("core-gw", keys_.core_gw, cut->order_id, {"@uplink:full"}).ok());
  EXPECT_EQ(service_->status().value()["gateways"]["core-gw"]["ladder"]["uplink"]["link_down"],
            false);

  auto down = service_->isolate(ids_, isolateOf(IsolationScope::kUplink, {}, {"core-gw"}, true));
  ASSERT_TRUE(down.ok());
  // Not acked yet: as far as the acks say, the links are up.
  json ladder = service_->status().value()["gateways"]["core-gw"]["ladder"];
  EXPECT_EQ(ladder["uplink"]["link_down"], false);
  EXPECT_EQ(ladder["pending"][0]["scope"], "uplink");
  ASSERT_TRUE(ack("core-gw", keys_.core_gw, down->order_id, {"@uplink:full"}).ok());
  // An isolate without link_down does not bring links up; only a restore does.
  auto again = service_->isolate(ids_, isolateOf(IsolationScope::kUplink, {}, {"core-gw"}));
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(ack("core-gw", keys_.core_gw, again->order_id, {"@uplink:full"}).ok());
  EXPECT_EQ(service_->status().value()["gateways"]["core-gw"]["ladder"]["uplink"]["link_down"],
            true);

  auto restore = service_->restore(sato_, restoreOf(IsolationScope::kUplink, {}, {"core-gw"}));
  ASSERT_TRUE(restore.ok());
  approveByTwo(*restore->approval_id);
  ASSERT_TRUE(ack("core-gw", keys_.core_gw, restore->order_id, {}).ok());
  ladder = service_->status().value()["gateways"]["core-gw"]["ladder"];
  EXPECT_EQ(ladder["uplink"], nullptr);
  EXPECT_EQ(ladder["segments"], json::object());
}

}  // namespace
}  // namespace shadan::controller

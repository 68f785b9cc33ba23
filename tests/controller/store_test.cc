#include "controller/store.h"

#include <gtest/gtest.h>

#include "common/sqlite.h"
#include "tests/controller/controller_test_support.h"

namespace shadan::controller {
namespace {

using testing::TempDir;

class ControllerStoreTest : public ::testing::Test {
 protected:
  ControllerStorePtr open() { return openSqliteControllerStore(dir_.path().string()).value(); }
  TempDir dir_;
};

TEST_F(ControllerStoreTest, EverythingSurvivesReopen) {
  const auto key = testing::keyFromByte(9);
  AgentRecord agent{"core-gw", key.keyId(), key.publicKey(),     AgentStatus::kApproved,
                    10,        20,          R"({"isolated":[]})"};
  OrderRecord order;
  order.command_id = "00000000-0000-4000-8000-000000000001";
  order.action = "restore";
  order.segment = "lgwan";
  order.profile = "full";
  order.requested_by = "op:sato";
  order.reason = "all clear";
  order.ticket = "INC-1";
  order.state = OrderState::kAwaitingApproval;
  order.authz_payload = std::string("{\"v\":1}\0x", 9);  // bytes, not text
  order.targets = {"core-gw", "edge-gw"};
  order.expires_at_ms = 99;
  order.created_ms = 5;
  order.updated_ms = 6;
  DispatchRecord dispatch{"core-gw",
                          order.command_id,
                          3,
                          "{}",
                          50,
                          DispatchState::kApplied,
                          R"({"result":"applied"})",
                          1,
                          2,
                          3};
  ApprovalRecord approval;
  approval.approval_id = order.command_id;
  approval.command_id = order.command_id;
  approval.payload_type = "application/vnd.shadan.authz.v1+json";
  approval.payload = order.authz_payload;
  approval.rule = "restore";
  approval.needed = 2;
  approval.signatures = {DsseSignature{std::string(64, 'a'), std::vector<uint8_t>(64, 7)}};
  approval.created_ms = 5;
  approval.expires_ms = 99;
  {
    auto store = open();
    ASSERT_TRUE(store->putAgent(agent).ok());
    ASSERT_EQ(store->nextSeq("core-gw").value(), 1);
    ASSERT_EQ(store->nextSeq("core-gw").value(), 2);
    ASSERT_EQ(store->nextSeq("edge-gw").value(), 1);
    ASSERT_EQ(store->nextSegmentGen("lgwan").value(), 1);
    ASSERT_TRUE(store->putSegment(SegmentRecord{"lgwan", 1, true, "full"}).ok());
    ASSERT_TRUE(store->putOrder(order).ok());
    ASSERT_TRUE(store->putDispatch(dispatch).ok());
    ASSERT_TRUE(store->putApproval(approval).ok());
  }
  auto store = open();
  EXPECT_EQ(store->getAgent("core-gw").value(), agent);
  EXPECT_FALSE(store->getAgent("nope").value().has_value());
  EXPECT_EQ(store->nextSeq("core-gw").value(), 3);
  EXPECT_EQ(store->nextSegmentGen("lgwan").value(), 2);
  auto segments = store->listSegments().value();
  ASSERT_EQ(segments.size(), 1u);
  EXPECT_EQ(segments[0].gen, 2);
  EXPECT_TRUE(segments[0].isolated);
  EXPECT_EQ(store->getOrder(order.command_id).value(), order);
  EXPECT_EQ(store->dispatchBySeq("core-gw", 3).value(), dispatch);
  EXPECT_EQ(store->dispatchesForOrder(order.command_id).value().size(), 1u);
  EXPECT_TRUE(store->pendingDispatches("core-gw").value().empty());
  EXPECT_EQ(store->getApproval(order.command_id).value(), approval);
  EXPECT_EQ(store->pendingApprovals().value().size(), 1u);
}

TEST_F(ControllerStoreTest, FailedTransactionLeavesNothing) {
  auto store = open();
  Status status = store->transaction([&]() -> Status {
    EXPECT_EQ(store->nextSeq("core-gw").value(), 1);
    return makeError(ErrorCode::kInternal, "boom");
  });
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(store->nextSeq("core-gw").value(), 1);
  ASSERT_TRUE(store
                  ->transaction([&]() -> Status {
                    return store->nextSeq("core-gw").ok() ? okStatus()
                                                          : makeError(ErrorCode::kState, "x");
                  })
                  .ok());
  EXPECT_EQ(store->nextSeq("core-gw").value(), 3);
}

TEST_F(ControllerStoreTest, PendingDispatchesComeInCreationOrder) {
  auto store = open();
  for (const char* id : {"c", "a", "b"}) {
    ASSERT_TRUE(
        store->putDispatch(DispatchRecord{"gw", id, 0, "", 0, DispatchState::kPending, "", 1, 0, 1})
            .ok());
  }
  auto pending = store->pendingDispatches("gw").value();
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[0].command_id, "c");
  EXPECT_EQ(pending[2].command_id, "b");
}

TEST_F(ControllerStoreTest, OrdersKeepTheirRungAndAStoreFromBeforeTheLadderGainsIt) {
  {
    // The orders table as controllers before the escalation ladder made it, with one order.
    auto db = openSqliteDb((dir_.path() / "controller.db").string(), std::chrono::seconds(1));
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(sqliteExec(db->get(), R"sql(
CREATE TABLE orders (
  id INTEGER PRIMARY KEY AUTOINCREMENT, command_id TEXT NOT NULL UNIQUE, action TEXT NOT NULL,
  segment TEXT NOT NULL, profile TEXT NOT NULL, requested_by TEXT NOT NULL, reason TEXT NOT NULL,
  ticket TEXT, drill INTEGER NOT NULL, state TEXT NOT NULL, authz_payload BLOB NOT NULL,
  authz_envelope TEXT NOT NULL, targets TEXT NOT NULL, expires_at INTEGER NOT NULL,
  created INTEGER NOT NULL, updated INTEGER NOT NULL) STRICT;
INSERT INTO orders (command_id, action, segment, profile, requested_by, reason, drill, state,
  authz_payload, authz_envelope, targets, expires_at, created, updated)
  VALUES ('old-1', 'isolate', 'lgwan', 'full', 'op:sato', 'worm', 0, 'dispatched', X'7B7D', '',
          '["core-gw"]', 9, 1, 1);
)sql",
                           "old schema")
                    .ok());
  }
  auto store = open();
  auto old = store->getOrder("old-1").value();
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->scope, IsolationScope::kSegment);
  EXPECT_EQ(old->segment, "lgwan");

  OrderRecord uplink;
  uplink.command_id = "new-1";
  uplink.action = "isolate";
  uplink.scope = IsolationScope::kUplink;
  uplink.profile = "full";
  uplink.targets = {"core-gw"};
  ASSERT_TRUE(store->putOrder(uplink).ok());
  store.reset();
  store = open();  // the column is added once
  EXPECT_EQ(store->getOrder("new-1").value(), uplink);
  const auto orders = store->listOrders(10).value();
  ASSERT_EQ(orders.size(), 2u);
  EXPECT_EQ(orders[0].scope, IsolationScope::kUplink);
  EXPECT_EQ(orders[1].scope, IsolationScope::kSegment);
}

}  // namespace
}  // namespace shadan::controller

#include "controller/store.h"

#include <gtest/gtest.h>

#include "common/sqlite.h"
#include "tests/controller/controller_test_support.h"
#include "tests/controller/store_contract.h"

namespace shadan::controller {
namespace {

using testing::TempDir;

// SQLite under a fresh directory; open() is a new connection to the same file.
struct SqliteStoreMaker {
  ControllerStorePtr open() { return openSqliteControllerStore(dir.path().string()).value(); }
  TempDir dir;
};

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, StoreContractTest, SqliteStoreMaker);

namespace {

class ControllerStoreTest : public ::testing::Test {
 protected:
  ControllerStorePtr open() { return openSqliteControllerStore(dir_.path().string()).value(); }
  TempDir dir_;
};

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

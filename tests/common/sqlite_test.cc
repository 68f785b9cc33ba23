#include "common/sqlite.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shadan {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

class SqliteTest : public ::testing::Test {
 protected:
  SqliteTest() : db_(openSqliteDb(":memory:", 100ms).value()) {
    EXPECT_TRUE(sqliteExec(db_.get(),
                           "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, data BLOB, "
                           "n INTEGER) STRICT",
                           "schema")
                    .ok());
  }

  SqliteStatement prepare(const char* sql, std::string what = "test statement") {
    auto statement = SqliteStatement::prepare(db_.get(), sql, std::move(what));
    EXPECT_TRUE(statement.ok()) << statement.error().message;
    return std::move(statement).value();
  }

  int64_t count() {
    SqliteStatement s = prepare("SELECT count(*) FROM t");
    EXPECT_EQ(s.step().value(), SqliteStep::kRow);
    return s.columnInt64(0);
  }

  SqliteDbPtr db_;
};

// SQLITE_FULL (here: the page limit; on a gateway: the disk) is kNoSpace, not a broken store.
TEST_F(SqliteTest, AFullDatabaseIsNoSpace) {
  ASSERT_TRUE(sqliteExec(db_.get(), "PRAGMA max_page_count = 8", "limit").ok());
  const std::string blob(4096, 'x');
  Status last = okStatus();
  for (int i = 0; i < 64 && last.ok(); ++i) {
    last =
        prepare("INSERT INTO t (id, data) VALUES (?1, ?2)").bindInt64(1, i).bindBlob(2, blob).run();
  }
  ASSERT_FALSE(last.ok());
  EXPECT_EQ(last.error().code, ErrorCode::kNoSpace) << last.error().message;
  const Status exec = sqliteExec(db_.get(), "INSERT INTO t (data) VALUES (zeroblob(65536))", "big");
  ASSERT_FALSE(exec.ok());
  EXPECT_EQ(exec.error().code, ErrorCode::kNoSpace) << exec.error().message;
  // Any other failure stays a store error.
  const Status bad = sqliteExec(db_.get(), "INSERT INTO nosuch VALUES (1)", "bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kState);
}

TEST_F(SqliteTest, EveryBoundTypeReadsBackUnchanged) {
  const std::string text_with_nul = "a\0b"s;
  const std::string blob = "\x00\xff\x01"s;
  ASSERT_TRUE(prepare("INSERT INTO t (id, name, data, n) VALUES (?1, ?2, ?3, ?4)")
                  .bindInt64(1, 7)
                  .bindText(2, text_with_nul)
                  .bindBlob(3, blob)
                  .bindNull(4)
                  .run()
                  .ok());

  SqliteStatement s = prepare("SELECT id, name, data, n FROM t");
  ASSERT_EQ(s.step().value(), SqliteStep::kRow);
  EXPECT_EQ(s.columnInt64(0), 7);
  EXPECT_EQ(s.columnText(1), text_with_nul);
  EXPECT_EQ(s.columnView(2), blob);
  EXPECT_TRUE(s.columnIsNull(3));
  EXPECT_EQ(s.columnOptionalInt64(3), std::nullopt);
  EXPECT_EQ(s.columnOptionalText(3), std::nullopt);
  EXPECT_EQ(s.columnText(3), "");
  EXPECT_EQ(s.columnOptionalInt64(0), 7);
  EXPECT_EQ(s.step().value(), SqliteStep::kDone);
}

TEST_F(SqliteTest, RunResetsAndClearsBindingsForTheNextUse) {
  SqliteStatement insert = prepare("INSERT INTO t (name, n) VALUES (?1, ?2)");
  ASSERT_TRUE(insert.bindText(1, "first").bindOptionalInt64(2, 5).run().ok());
  // Only the name bound this time: the number from the first use must not linger.
  ASSERT_TRUE(insert.bindOptionalText(1, std::string("second")).run().ok());

  std::vector<std::string> rows;
  SqliteStatement select = prepare("SELECT name, n FROM t ORDER BY id");
  ASSERT_TRUE(select
                  .forEachRow([&](const SqliteStatement& row) -> Status {
                    rows.push_back(
                        row.columnText(0) + "=" +
                        (row.columnIsNull(1) ? "null" : std::to_string(row.columnInt64(1))));
                    return okStatus();
                  })
                  .ok());
  EXPECT_EQ(rows, (std::vector<std::string>{"first=5", "second=null"}));
  // forEachRow reset the statement: it runs again from the first row.
  ASSERT_EQ(select.step().value(), SqliteStep::kRow);
  EXPECT_EQ(select.columnText(0), "first");
}

TEST_F(SqliteTest, ForEachRowStopsAtTheFirstErrorOfTheCallback) {
  SqliteStatement insert = prepare("INSERT INTO t (n) VALUES (?1)");
  for (int64_t n : {1, 2, 3}) ASSERT_TRUE(insert.bindInt64(1, n).run().ok());
  int seen = 0;
  const Status status =
      prepare("SELECT n FROM t ORDER BY n").forEachRow([&](const SqliteStatement&) -> Status {
        if (++seen == 2) return makeError(ErrorCode::kParse, "bad row");
        return okStatus();
      });
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kParse);
  EXPECT_EQ(seen, 2);
}

TEST_F(SqliteTest, PrepareErrorNamesThePurpose) {
  auto statement = SqliteStatement::prepare(db_.get(), "SELECT nope FROM t", "load widgets");
  ASSERT_FALSE(statement.ok());
  EXPECT_EQ(statement.error().code, ErrorCode::kState);
  EXPECT_NE(statement.error().message.find("load widgets: prepare: "), std::string::npos)
      << statement.error().message;
  EXPECT_NE(statement.error().message.find("nope"), std::string::npos);
  EXPECT_FALSE(SqliteStatement::prepare(db_.get(), "  ", "blank").ok());
}

TEST_F(SqliteTest, StepErrorNamesThePurposeAndTheStatementStaysUsable) {
  SqliteStatement insert = prepare("INSERT INTO t (name) VALUES (?1)", "store name");
  ASSERT_TRUE(insert.bindText(1, "same").run().ok());
  const Status duplicate = insert.bindText(1, "same").run();
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kState);
  EXPECT_EQ(duplicate.error().message.rfind("store name: ", 0), 0u) << duplicate.error().message;
  EXPECT_NE(duplicate.error().message.find("UNIQUE"), std::string::npos);
  EXPECT_TRUE(insert.bindText(1, "other").run().ok());
  EXPECT_EQ(count(), 2);
}

TEST_F(SqliteTest, FailedBindIsReportedByTheNextStepAndForgottenByReset) {
  SqliteStatement insert = prepare("INSERT INTO t (name) VALUES (?1)", "store name");
  const Status status = insert.bindText(1, "x").bindInt64(2, 9).run();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("store name: bind parameter 2"), std::string::npos)
      << status.error().message;
  EXPECT_EQ(count(), 0);  // nothing half-written
  EXPECT_TRUE(insert.bindText(1, "x").run().ok());
  EXPECT_EQ(count(), 1);
}

TEST_F(SqliteTest, ExecRunsSeveralStatementsAndNamesThePurposeOnError) {
  ASSERT_TRUE(
      sqliteExec(db_.get(), "INSERT INTO t (n) VALUES (1); INSERT INTO t (n) VALUES (2);", "seed")
          .ok());
  EXPECT_EQ(count(), 2);
  const Status failed = sqliteExec(db_.get(), "INSERT INTO nowhere VALUES (1)", "seed more");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kState);
  EXPECT_EQ(failed.error().message.rfind("seed more: ", 0), 0u) << failed.error().message;
}

TEST_F(SqliteTest, TransactionIsRolledBackUnlessCommitted) {
  {
    auto txn = SqliteTransaction::begin(db_.get());
    ASSERT_TRUE(txn.ok()) << txn.error().message;
    ASSERT_TRUE(sqliteExec(db_.get(), "INSERT INTO t (n) VALUES (1)", "insert").ok());
  }
  EXPECT_EQ(count(), 0);
  {
    auto txn = SqliteTransaction::begin(db_.get());
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(sqliteExec(db_.get(), "INSERT INTO t (n) VALUES (2)", "insert").ok());
    ASSERT_TRUE(txn->commit().ok());
  }
  EXPECT_EQ(count(), 1);
}

TEST_F(SqliteTest, PreparedTransactionStatementsAreReusable) {
  auto prepared = SqliteTransactionStatements::prepare(db_.get());
  ASSERT_TRUE(prepared.ok()) << prepared.error().message;
  SqliteStatement insert = prepare("INSERT INTO t (n) VALUES (?1)");
  for (int64_t n = 1; n <= 3; ++n) {
    auto txn = SqliteTransaction::begin(*prepared);
    ASSERT_TRUE(txn.ok()) << txn.error().message;
    ASSERT_TRUE(insert.bindInt64(1, n).run().ok());
    if (n != 2) {
      ASSERT_TRUE(txn->commit().ok());  // the second one is rolled back
    }
  }
  std::vector<int64_t> kept;
  ASSERT_TRUE(prepare("SELECT n FROM t ORDER BY n")
                  .forEachRow([&](const SqliteStatement& row) -> Status {
                    kept.push_back(row.columnInt64(0));
                    return okStatus();
                  })
                  .ok());
  EXPECT_EQ(kept, (std::vector<int64_t>{1, 3}));
}

TEST_F(SqliteTest, NestedBeginFailsAndLeavesTheOuterTransactionAlone) {
  auto outer = SqliteTransaction::begin(db_.get());
  ASSERT_TRUE(outer.ok());
  ASSERT_TRUE(sqliteExec(db_.get(), "INSERT INTO t (n) VALUES (1)", "insert").ok());
  auto inner = SqliteTransaction::begin(db_.get());
  ASSERT_FALSE(inner.ok());
  EXPECT_EQ(inner.error().code, ErrorCode::kState);
  ASSERT_TRUE(outer->commit().ok());
  EXPECT_EQ(count(), 1);
}

TEST(SqliteOpenTest, OpenFailureNamesThePath) {
  auto db = openSqliteDb("/nonexistent-shadan-dir/x.db", 10ms);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kState);
  EXPECT_NE(db.error().message.find("/nonexistent-shadan-dir/x.db"), std::string::npos)
      << db.error().message;
}

}  // namespace
}  // namespace shadan

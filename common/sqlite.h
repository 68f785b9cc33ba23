#pragma once

// The one thin layer over the SQLite C API that both stores use (the agent's desired state,
// agents/state/sqlite_state_store.cc, and the controller's store, controller/store.cc): RAII
// handles, statements that name their purpose in every error, and a transaction guard.
//
// Contracts:
//   - Errors are values: every failure is an Error with ErrorCode::kState whose message names
//     what the statement was for, followed by SQLite's own message.
//   - A connection and its statements are used from one thread (opened with NOMUTEX).
//   - Statements must be destroyed before their connection (declare the SqliteDbPtr first, or
//     reset the statements first).
//   - A bind that fails (index out of range, value too big) is reported by the next step() or
//     run(), so a chain of binds needs no checks of its own.

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"

namespace shadan {

using SqliteDbPtr = std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)>;
using SqliteStmtPtr = std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)>;

// kState "<what>: <SQLite's last message on db>" ("out of memory" without a connection).
Error sqliteError(sqlite3* db, std::string_view what);

// Opens (creating if missing) the database at `path` for reading and writing, one thread at a
// time, waiting up to `busy_timeout` for another connection's lock before failing with BUSY.
Result<SqliteDbPtr> openSqliteDb(const std::string& path, std::chrono::milliseconds busy_timeout);

// Runs SQL that returns no rows, possibly several statements (a schema, a PRAGMA). Compiles it
// every time: for statements run often, prepare a SqliteStatement once instead.
Status sqliteExec(sqlite3* db, const char* sql, std::string_view what);

enum class SqliteStep { kRow, kDone };

// One prepared statement. Binding indexes and column indexes follow SQLite: parameters count
// from 1, result columns from 0. Text and blob values are copied when bound
// (SQLITE_TRANSIENT), so the caller's strings need not outlive the call.
class SqliteStatement {
 public:
  // Compiles the first statement of `sql`; an error names `what`.
  static Result<SqliteStatement> prepare(sqlite3* db, std::string_view sql, std::string what);

  SqliteStatement(SqliteStatement&&) noexcept = default;
  SqliteStatement& operator=(SqliteStatement&&) noexcept = default;

  SqliteStatement& bindInt64(int index, int64_t value);
  SqliteStatement& bindText(int index, std::string_view value);
  SqliteStatement& bindBlob(int index, std::string_view value);
  SqliteStatement& bindNull(int index);
  SqliteStatement& bindOptionalText(int index, const std::optional<std::string>& value);
  SqliteStatement& bindOptionalInt64(int index, const std::optional<int64_t>& value);

  // The next row, or kDone. To run the statement again, reset() it first.
  Result<SqliteStep> step();

  // Runs a statement that returns no rows (or whose rows were already read) to its end, then
  // resets it with its bindings cleared, ready for the next use, whether or not it failed.
  Status run();

  // Calls `row(*this)` (returning Status) for every row, then resets the statement with its
  // bindings cleared. Stops at the first error, of SQLite or of `row`.
  template <typename RowFn>
  Status forEachRow(RowFn&& row) {
    Status status = okStatus();
    for (;;) {
      auto next = step();
      if (!next.ok()) {
        status = next.error();
        break;
      }
      if (*next == SqliteStep::kDone) break;
      status = row(static_cast<const SqliteStatement&>(*this));
      if (!status.ok()) break;
    }
    reset();
    return status;
  }

  // Back to before the first step, bindings cleared (all NULL), any bind error forgotten.
  void reset();

  // Columns of the current row (valid after step() returned kRow).
  bool columnIsNull(int index) const;
  int64_t columnInt64(int index) const;
  // The bytes of a TEXT or BLOB column ("" for NULL), never converted.
  std::string columnText(int index) const;
  // Like columnText, but only valid until the next step(), reset() or column call on `index`.
  std::string_view columnView(int index) const;
  std::optional<std::string> columnOptionalText(int index) const;
  std::optional<int64_t> columnOptionalInt64(int index) const;

  const std::string& what() const { return what_; }

 private:
  SqliteStatement(sqlite3* db, SqliteStmtPtr stmt, std::string what)
      : db_(db), stmt_(std::move(stmt)), what_(std::move(what)) {}
  void noteBind(int rc, int index);

  sqlite3* db_;
  SqliteStmtPtr stmt_;
  std::string what_;
  std::optional<Error> bind_error_;  // the first failed bind since the last reset
};

// BEGIN IMMEDIATE, COMMIT and ROLLBACK prepared once, for a connection that commits often
// (compiling them costs more than running them).
struct SqliteTransactionStatements {
  SqliteStatement begin;
  SqliteStatement commit;
  SqliteStatement rollback;

  static Result<SqliteTransactionStatements> prepare(sqlite3* db);
};

// An open write transaction (BEGIN IMMEDIATE: the write lock is taken at the start, so a busy
// database fails here rather than at the first write). Rolled back when destroyed unless
// commit() succeeded; a failed commit() is rolled back too. Transactions do not nest.
class SqliteTransaction {
 public:
  [[nodiscard]] static Result<SqliteTransaction> begin(sqlite3* db);
  // The same with prepared statements, which must outlive the transaction.
  [[nodiscard]] static Result<SqliteTransaction> begin(SqliteTransactionStatements& prepared);

  SqliteTransaction(SqliteTransaction&& other) noexcept;
  SqliteTransaction& operator=(SqliteTransaction&&) = delete;
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;
  ~SqliteTransaction();

  Status commit();

 private:
  SqliteTransaction(sqlite3* db, SqliteTransactionStatements* prepared)
      : db_(db), prepared_(prepared) {}
  void rollback();

  sqlite3* db_;
  SqliteTransactionStatements* prepared_;  // null: compile the SQL each time
  bool open_ = true;
};

}  // namespace shadan

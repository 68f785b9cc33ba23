#include "common/sqlite.h"

#include <limits>

namespace shadan {

namespace {

// A full disk is its own code: the caller may say so and retry, where a corrupt store is not.
ErrorCode codeForSqlite(int rc) {
  return (rc & 0xff) == SQLITE_FULL ? ErrorCode::kNoSpace : ErrorCode::kState;
}

}  // namespace

Error sqliteError(sqlite3* db, std::string_view what) {
  return makeError(db ? codeForSqlite(sqlite3_extended_errcode(db)) : ErrorCode::kState,
                   std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

Result<SqliteDbPtr> openSqliteDb(const std::string& path, std::chrono::milliseconds busy_timeout) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  // Even a failed open may allocate a handle (it carries the error message): close it too.
  SqliteDbPtr db(raw, &sqlite3_close_v2);
  if (rc != SQLITE_OK) return sqliteError(db.get(), "cannot open " + path);
  sqlite3_busy_timeout(db.get(), static_cast<int>(busy_timeout.count()));
  return db;
}

Status sqliteExec(sqlite3* db, const char* sql, std::string_view what) {
  char* message = nullptr;
  if (const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message); rc != SQLITE_OK) {
    std::string text = message ? message : (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_free(message);
    return makeError(codeForSqlite(rc), std::string(what) + ": " + text);
  }
  return okStatus();
}

Result<SqliteStatement> SqliteStatement::prepare(sqlite3* db, std::string_view sql,
                                                 std::string what) {
  if (sql.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return makeError(ErrorCode::kState, what + ": prepare: SQL too long");
  }
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
  SqliteStmtPtr stmt(raw, &sqlite3_finalize);
  if (rc != SQLITE_OK) return sqliteError(db, what + ": prepare");
  // Empty SQL or only a comment compiles to no statement at all: a broken call, not a state.
  if (stmt == nullptr) return makeError(ErrorCode::kState, what + ": prepare: empty SQL");
  return SqliteStatement(db, std::move(stmt), std::move(what));
}

void SqliteStatement::noteBind(int rc, int index) {
  if (rc == SQLITE_OK || bind_error_) return;
  bind_error_ = makeError(ErrorCode::kState, what_ + ": bind parameter " + std::to_string(index) +
                                                 ": " + sqlite3_errstr(rc));
}

SqliteStatement& SqliteStatement::bindInt64(int index, int64_t value) {
  noteBind(sqlite3_bind_int64(stmt_.get(), index, value), index);
  return *this;
}

SqliteStatement& SqliteStatement::bindText(int index, std::string_view value) {
  // sqlite3_bind_text64 takes the length as an unsigned 64-bit count: no int overflow.
  noteBind(sqlite3_bind_text64(stmt_.get(), index, value.data(), value.size(), SQLITE_TRANSIENT,
                               SQLITE_UTF8),
           index);
  return *this;
}

SqliteStatement& SqliteStatement::bindBlob(int index, std::string_view value) {
  noteBind(sqlite3_bind_blob64(stmt_.get(), index, value.data(), value.size(), SQLITE_TRANSIENT),
           index);
  return *this;
}

SqliteStatement& SqliteStatement::bindNull(int index) {
  noteBind(sqlite3_bind_null(stmt_.get(), index), index);
  return *this;
}

SqliteStatement& SqliteStatement::bindOptionalText(int index,
                                                   const std::optional<std::string>& value) {
  return value ? bindText(index, *value) : bindNull(index);
}

SqliteStatement& SqliteStatement::bindOptionalInt64(int index,
                                                    const std::optional<int64_t>& value) {
  return value ? bindInt64(index, *value) : bindNull(index);
}

Result<SqliteStep> SqliteStatement::step() {
  if (bind_error_) return *bind_error_;
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return SqliteStep::kRow;
  if (rc == SQLITE_DONE) return SqliteStep::kDone;
  return sqliteError(db_, what_);
}

Status SqliteStatement::run() {
  Status status = okStatus();
  for (;;) {
    auto next = step();
    if (!next.ok()) {
      status = next.error();
      break;
    }
    if (*next == SqliteStep::kDone) break;
  }
  reset();
  return status;
}

void SqliteStatement::reset() {
  // sqlite3_reset repeats the error of the last step, which step() has already reported.
  (void)sqlite3_reset(stmt_.get());
  (void)sqlite3_clear_bindings(stmt_.get());
  bind_error_.reset();
}

bool SqliteStatement::columnIsNull(int index) const {
  return sqlite3_column_type(stmt_.get(), index) == SQLITE_NULL;
}

int64_t SqliteStatement::columnInt64(int index) const {
  return sqlite3_column_int64(stmt_.get(), index);
}

std::string_view SqliteStatement::columnView(int index) const {
  // Blob first, then bytes: the order SQLite documents for a pointer and a size that agree.
  const void* data = sqlite3_column_blob(stmt_.get(), index);
  const int size = sqlite3_column_bytes(stmt_.get(), index);
  if (data == nullptr) return {};
  return std::string_view(static_cast<const char*>(data), static_cast<size_t>(size));
}

std::string SqliteStatement::columnText(int index) const { return std::string(columnView(index)); }

std::optional<std::string> SqliteStatement::columnOptionalText(int index) const {
  if (columnIsNull(index)) return std::nullopt;
  return columnText(index);
}

std::optional<int64_t> SqliteStatement::columnOptionalInt64(int index) const {
  if (columnIsNull(index)) return std::nullopt;
  return columnInt64(index);
}

Result<SqliteTransactionStatements> SqliteTransactionStatements::prepare(sqlite3* db) {
  SHADAN_ASSIGN_OR_RETURN(auto begin,
                          SqliteStatement::prepare(db, "BEGIN IMMEDIATE", "begin transaction"));
  SHADAN_ASSIGN_OR_RETURN(auto commit, SqliteStatement::prepare(db, "COMMIT", "commit"));
  SHADAN_ASSIGN_OR_RETURN(auto rollback, SqliteStatement::prepare(db, "ROLLBACK", "rollback"));
  return SqliteTransactionStatements{std::move(begin), std::move(commit), std::move(rollback)};
}

Result<SqliteTransaction> SqliteTransaction::begin(sqlite3* db) {
  SHADAN_RETURN_IF_ERROR(sqliteExec(db, "BEGIN IMMEDIATE", "begin transaction"));
  return SqliteTransaction(db, nullptr);
}

Result<SqliteTransaction> SqliteTransaction::begin(SqliteTransactionStatements& prepared) {
  SHADAN_RETURN_IF_ERROR(prepared.begin.run());
  return SqliteTransaction(nullptr, &prepared);
}

SqliteTransaction::SqliteTransaction(SqliteTransaction&& other) noexcept
    : db_(other.db_), prepared_(other.prepared_), open_(other.open_) {
  other.open_ = false;
}

SqliteTransaction::~SqliteTransaction() {
  if (open_) rollback();
}

Status SqliteTransaction::commit() {
  Status committed = prepared_ ? prepared_->commit.run() : sqliteExec(db_, "COMMIT", "commit");
  if (!committed.ok()) {
    rollback();
    return committed;
  }
  open_ = false;
  return okStatus();
}

void SqliteTransaction::rollback() {
  open_ = false;
  // Nothing to report to: the caller is already returning an error or unwinding. If even the
  // rollback fails, SQLite rolls back itself when the connection closes.
  (void)(prepared_ ? prepared_->rollback.run() : sqliteExec(db_, "ROLLBACK", "rollback"));
}

}  // namespace shadan

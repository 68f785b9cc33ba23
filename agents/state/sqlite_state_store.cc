#include "agents/state/sqlite_state_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <string_view>
#include <thread>

namespace shadan {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS seen_commands (
  command_id      TEXT PRIMARY KEY,
  forget_after_ms INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS acks (
  seq      INTEGER PRIMARY KEY,
  envelope TEXT NOT NULL,
  at_ms    INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS segment_gens (
  segment TEXT PRIMARY KEY,
  gen     INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS isolations (
  segment    TEXT NOT NULL,
  profile    TEXT NOT NULL,
  since_ms   INTEGER NOT NULL,
  expires_ms INTEGER,
  origin     TEXT NOT NULL,
  drill      INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (segment, profile)
) STRICT;
)sql";

struct StmtDeleter {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

Error sqliteError(sqlite3* db, const std::string& what) {
  return makeError(ErrorCode::kState, what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

Status exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    return makeError(ErrorCode::kState, std::string("sqlite: ") + text);
  }
  return okStatus();
}

Result<StmtPtr> prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return sqliteError(db, "prepare");
  }
  return StmtPtr(raw);
}

// Steps a statement that returns no rows, then leaves it reset with no bindings, ready for the
// next use.
Status runStatement(sqlite3* db, sqlite3_stmt* stmt, const std::string& what) {
  const int rc = sqlite3_step(stmt);
  std::optional<Error> error;
  if (rc != SQLITE_DONE) error = sqliteError(db, what);
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (error) return *error;
  return okStatus();
}

void bindText(sqlite3_stmt* stmt, int index, std::string_view text) {
  sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

// Rolls back an open transaction unless commit() was reached. With prepared COMMIT / ROLLBACK
// statements (the hot path) it steps those; without, it compiles the SQL each time.
class TransactionGuard {
 public:
  explicit TransactionGuard(sqlite3* db, sqlite3_stmt* commit = nullptr,
                            sqlite3_stmt* rollback = nullptr)
      : db_(db), commit_(commit), rollback_(rollback) {}
  ~TransactionGuard() {
    if (committed_) return;
    (void)(rollback_ ? runStatement(db_, rollback_, "rollback") : exec(db_, "ROLLBACK"));
  }
  TransactionGuard(const TransactionGuard&) = delete;
  TransactionGuard& operator=(const TransactionGuard&) = delete;

  Status commit() {
    SHADAN_RETURN_IF_ERROR(commit_ ? runStatement(db_, commit_, "commit") : exec(db_, "COMMIT"));
    committed_ = true;
    return okStatus();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* commit_;
  sqlite3_stmt* rollback_;
  bool committed_ = false;
};

Result<int> takeLock(const std::filesystem::path& lock_path, std::chrono::milliseconds wait) {
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return makeError(ErrorCode::kState,
                     "cannot open " + lock_path.string() + ": " + std::strerror(errno));
  }
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK || std::chrono::steady_clock::now() >= deadline) {
      const int saved = errno;
      ::close(fd);
      if (saved == EWOULDBLOCK) {
        return makeError(ErrorCode::kUnavailable,
                         "state directory is in use by another shadan-agent process (lock " +
                             lock_path.string() + ")");
      }
      return makeError(ErrorCode::kState,
                       "cannot lock " + lock_path.string() + ": " + std::strerror(saved));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return fd;
}

}  // namespace

struct SqliteStateStore::Statements {
  StmtPtr begin, commit, rollback, synchronous_normal, synchronous_full;
  StmtPtr clear_isolations, delete_isolation, put_isolation;
  StmtPtr put_meta;
  StmtPtr clear_seen, delete_seen, insert_seen;
  StmtPtr clear_gens, delete_gen, put_gen;
  StmtPtr put_ack, drop_old_acks, recent_acks;

  static Result<std::unique_ptr<Statements>> prepareAll(sqlite3* db) {
    auto statements = std::make_unique<Statements>();
    const std::pair<StmtPtr*, const char*> sql[] = {
        {&statements->begin, "BEGIN IMMEDIATE"},
        {&statements->commit, "COMMIT"},
        {&statements->rollback, "ROLLBACK"},
        {&statements->synchronous_normal, "PRAGMA synchronous=NORMAL"},
        {&statements->synchronous_full, "PRAGMA synchronous=FULL"},
        {&statements->clear_isolations, "DELETE FROM isolations"},
        {&statements->delete_isolation,
         "DELETE FROM isolations WHERE segment = ?1 AND profile = ?2"},
        {&statements->put_isolation,
         "INSERT OR REPLACE INTO isolations(segment, profile, since_ms, expires_ms, origin, drill) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
        {&statements->put_meta, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)"},
        {&statements->clear_seen, "DELETE FROM seen_commands"},
        {&statements->delete_seen, "DELETE FROM seen_commands WHERE command_id = ?1"},
        {&statements->insert_seen,
         "INSERT OR IGNORE INTO seen_commands(command_id, forget_after_ms) VALUES (?1, ?2)"},
        {&statements->clear_gens, "DELETE FROM segment_gens"},
        {&statements->delete_gen, "DELETE FROM segment_gens WHERE segment = ?1"},
        {&statements->put_gen, "INSERT OR REPLACE INTO segment_gens(segment, gen) VALUES (?1, ?2)"},
        {&statements->put_ack,
         "INSERT OR REPLACE INTO acks(seq, envelope, at_ms) VALUES (?1, ?2, ?3)"},
        {&statements->drop_old_acks, "DELETE FROM acks WHERE at_ms < ?1"},
        {&statements->recent_acks,
         "SELECT seq, envelope FROM (SELECT seq, envelope FROM acks WHERE at_ms >= ?1 "
         "ORDER BY seq DESC LIMIT ?2) ORDER BY seq"},
    };
    for (const auto& [slot, text] : sql) {
      auto prepared = prepare(db, text);
      if (!prepared.ok()) return prepared.error().withContext(text);
      *slot = std::move(prepared).value();
    }
    return statements;
  }
};

std::vector<Isolation> DesiredState::isolationPairs() const {
  std::vector<Isolation> pairs;
  pairs.reserve(isolations.size());
  for (const auto& active : isolations) pairs.push_back(active.isolation);
  return pairs;
}

bool DesiredState::contains(const Isolation& isolation) const {
  return std::any_of(isolations.begin(), isolations.end(),
                     [&](const ActiveIsolation& a) { return a.isolation == isolation; });
}

SqliteStateStore::SqliteStateStore(DbPtr db, int lock_fd) : db_(std::move(db)), lock_fd_(lock_fd) {}

SqliteStateStore::~SqliteStateStore() {
  statements_.reset();  // finalized before the connection closes
  db_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<SqliteStateStore>> SqliteStateStore::open(
    const std::filesystem::path& state_dir, std::chrono::milliseconds lock_wait) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) {
    return makeError(ErrorCode::kState,
                     "cannot create state directory " + state_dir.string() + ": " + ec.message());
  }
  struct stat st {};
  if (::stat(state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return makeError(ErrorCode::kState,
                     "state directory " + state_dir.string() + " is not a directory");
  }
  // The state decides what the firewall does: nobody but the owner may read or write it.
  if ((st.st_mode & 077) != 0) (void)::chmod(state_dir.c_str(), 0700);

  auto lock = takeLock(state_dir / "lock", lock_wait);
  if (!lock.ok()) return lock.error();
  const int lock_fd = lock.value();

  const auto db_path = state_dir / "agent.db";
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(db_path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw, &sqlite3_close_v2);
  if (rc != SQLITE_OK) {
    ::close(lock_fd);
    return sqliteError(raw, "cannot open " + db_path.string());
  }
  std::unique_ptr<SqliteStateStore> store(new SqliteStateStore(std::move(db), lock_fd));
  sqlite3* handle = store->db_.get();
  sqlite3_busy_timeout(handle, 2000);

  const auto init = [&]() -> Status {
    SHADAN_RETURN_IF_ERROR(exec(handle, "PRAGMA journal_mode=WAL"));
    SHADAN_RETURN_IF_ERROR(exec(handle, "PRAGMA synchronous=FULL"));
    SHADAN_RETURN_IF_ERROR(exec(handle, "BEGIN IMMEDIATE"));
    TransactionGuard txn(handle);
    SHADAN_RETURN_IF_ERROR(exec(handle, kSchema));
    auto select = prepare(handle, "SELECT value FROM meta WHERE key = 'schema_version'");
    if (!select.ok()) return select.error();
    const int step = sqlite3_step(select->get());
    if (step == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(select->get(), 0));
      const std::string version = text ? text : "";
      if (version != std::to_string(kSchemaVersion)) {
        return makeError(ErrorCode::kState,
                         "state database " + db_path.string() + " has schema version " + version +
                             ", this agent understands " + std::to_string(kSchemaVersion));
      }
    } else if (step == SQLITE_DONE) {
      SHADAN_RETURN_IF_ERROR(
          exec(handle, ("INSERT INTO meta(key, value) VALUES ('schema_version', '" +
                        std::to_string(kSchemaVersion) + "')")
                           .c_str()));
    } else {
      return sqliteError(handle, "read schema version");
    }
    select->reset();
    // Databases created before drills were recorded lack the column.
    auto columns =
        prepare(handle, "SELECT 1 FROM pragma_table_info('isolations') WHERE name='drill'");
    if (!columns.ok()) return columns.error();
    const bool has_drill = sqlite3_step(columns->get()) == SQLITE_ROW;
    columns->reset();
    if (!has_drill) {
      SHADAN_RETURN_IF_ERROR(
          exec(handle, "ALTER TABLE isolations ADD COLUMN drill INTEGER NOT NULL DEFAULT 0"));
    }
    // Databases created before command ids could be forgotten lack the column: their ids are
    // kept (NULL), as before.
    auto forget = prepare(
        handle, "SELECT 1 FROM pragma_table_info('seen_commands') WHERE name='forget_after_ms'");
    if (!forget.ok()) return forget.error();
    const bool has_forget = sqlite3_step(forget->get()) == SQLITE_ROW;
    forget->reset();
    if (!has_forget) {
      SHADAN_RETURN_IF_ERROR(
          exec(handle, "ALTER TABLE seen_commands ADD COLUMN forget_after_ms INTEGER"));
    }
    return txn.commit();
  };
  if (auto status = init(); !status.ok()) {
    return status.error().withContext("state database " + db_path.string());
  }
  auto statements = Statements::prepareAll(handle);
  if (!statements.ok()) {
    return statements.error().withContext("state database " + db_path.string());
  }
  store->statements_ = std::move(statements).value();
  return store;
}

Result<DesiredState> SqliteStateStore::load() {
  auto stmt =
      prepare(db_.get(),
              "SELECT segment, profile, since_ms, expires_ms, origin, drill FROM isolations "
              "ORDER BY segment, profile");
  if (!stmt.ok()) return stmt.error();
  DesiredState state;
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    sqlite3_stmt* s = stmt->get();
    ActiveIsolation active;
    active.isolation.segment = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    active.isolation.profile = reinterpret_cast<const char*>(sqlite3_column_text(s, 1));
    active.since_unix_ms = sqlite3_column_int64(s, 2);
    if (sqlite3_column_type(s, 3) != SQLITE_NULL)
      active.expires_unix_ms = sqlite3_column_int64(s, 3);
    active.origin = reinterpret_cast<const char*>(sqlite3_column_text(s, 4));
    active.drill = sqlite3_column_int(s, 5) != 0;
    state.isolations.push_back(std::move(active));
  }
  if (rc != SQLITE_DONE) return sqliteError(db_.get(), "load isolations");

  auto meta = prepare(db_.get(), "SELECT key, value FROM meta");
  if (!meta.ok()) return meta.error();
  while ((rc = sqlite3_step(meta->get())) == SQLITE_ROW) {
    const std::string key = reinterpret_cast<const char*>(sqlite3_column_text(meta->get(), 0));
    const std::string value = reinterpret_cast<const char*>(sqlite3_column_text(meta->get(), 1));
    if (key == "applied_ruleset_sha256") state.applied_ruleset_sha256 = value;
    if (key == "last_seq") state.replay.last_seq = std::stoll(value);
    if (key == "trust_version") state.trust_version = std::stoll(value);
  }
  if (rc != SQLITE_DONE) return sqliteError(db_.get(), "load meta");

  // In key order (BINARY collation = byte order, the set's order): each insert appends.
  auto seen = prepare(db_.get(),
                      "SELECT command_id, forget_after_ms FROM seen_commands ORDER BY command_id");
  if (!seen.ok()) return seen.error();
  while ((rc = sqlite3_step(seen->get())) == SQLITE_ROW) {
    const std::string_view id(reinterpret_cast<const char*>(sqlite3_column_text(seen->get(), 0)),
                              static_cast<size_t>(sqlite3_column_bytes(seen->get(), 0)));
    if (!CommandIdSet::fits(id)) {
      return makeError(ErrorCode::kState, "stored command id of " + std::to_string(id.size()) +
                                              " bytes is longer than any this agent accepts");
    }
    const int64_t forget_after = sqlite3_column_type(seen->get(), 1) == SQLITE_NULL
                                     ? CommandIdSet::kKeepForever
                                     : sqlite3_column_int64(seen->get(), 1);
    state.replay.seen_command_ids.insert(id, forget_after);
  }
  if (rc != SQLITE_DONE) return sqliteError(db_.get(), "load seen commands");

  auto gens = prepare(db_.get(), "SELECT segment, gen FROM segment_gens");
  if (!gens.ok()) return gens.error();
  while ((rc = sqlite3_step(gens->get())) == SQLITE_ROW) {
    state.replay.segment_gens[reinterpret_cast<const char*>(sqlite3_column_text(gens->get(), 0))] =
        sqlite3_column_int64(gens->get(), 1);
  }
  if (rc != SQLITE_DONE) return sqliteError(db_.get(), "load segment generations");
  stored_ = state;
  return state;
}

Status SqliteStateStore::unsynced(const std::function<Status()>& write) {
  sqlite3* handle = db_.get();
  SHADAN_RETURN_IF_ERROR(
      runStatement(handle, statements_->synchronous_normal.get(), "PRAGMA synchronous=NORMAL"));
  Status written = write();
  // Every other commit must stay durable: if FULL cannot be restored, say so loudly.
  Status restored =
      runStatement(handle, statements_->synchronous_full.get(), "PRAGMA synchronous=FULL");
  if (!restored.ok()) return restored.error().withContext("restoring synchronous=FULL");
  return written;
}

Status SqliteStateStore::saveUnsynced(const DesiredState& state) {
  return unsynced([&] { return save(state); });
}

Status SqliteStateStore::rememberAck(int64_t seq, const std::string& envelope, int64_t at_ms,
                                     int64_t keep_ms) {
  sqlite3* handle = db_.get();
  Statements& st = *statements_;
  return unsynced([&]() -> Status {
    SHADAN_RETURN_IF_ERROR(runStatement(handle, st.begin.get(), "begin transaction"));
    TransactionGuard txn(handle, st.commit.get(), st.rollback.get());
    sqlite3_bind_int64(st.put_ack.get(), 1, seq);
    bindText(st.put_ack.get(), 2, envelope);
    sqlite3_bind_int64(st.put_ack.get(), 3, at_ms);
    SHADAN_RETURN_IF_ERROR(runStatement(handle, st.put_ack.get(), "remember ack"));
    sqlite3_bind_int64(st.drop_old_acks.get(), 1, at_ms - keep_ms);
    SHADAN_RETURN_IF_ERROR(runStatement(handle, st.drop_old_acks.get(), "drop old acks"));
    return txn.commit();
  });
}

Result<std::vector<StoredAck>> SqliteStateStore::recentAcks(int64_t since_ms, size_t limit) {
  sqlite3* handle = db_.get();
  sqlite3_stmt* s = statements_->recent_acks.get();
  sqlite3_bind_int64(s, 1, since_ms);
  sqlite3_bind_int64(s, 2, static_cast<int64_t>(limit));
  std::vector<StoredAck> envelopes;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    envelopes.push_back(
        StoredAck{sqlite3_column_int64(s, 0),
                  std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, 1)),
                              static_cast<size_t>(sqlite3_column_bytes(s, 1)))});
  }
  std::optional<Error> error;
  if (rc != SQLITE_DONE) error = sqliteError(handle, "read remembered acks");
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (error) return *error;
  return envelopes;
}

Status SqliteStateStore::save(const DesiredState& state) {
  sqlite3* handle = db_.get();
  Statements& st = *statements_;
  SHADAN_RETURN_IF_ERROR(runStatement(handle, st.begin.get(), "begin transaction"));
  // Whatever fails below, the transaction is rolled back and the stored state is untouched.
  TransactionGuard txn(handle, st.commit.get(), st.rollback.get());
  SHADAN_RETURN_IF_ERROR(writeChanges(state));
  SHADAN_RETURN_IF_ERROR(txn.commit());
  stored_ = state;
  return okStatus();
}

Status SqliteStateStore::writeChanges(const DesiredState& state) {
  sqlite3* handle = db_.get();
  Statements& st = *statements_;
  const DesiredState* old = stored_ ? &*stored_ : nullptr;

  // Isolations, keyed by (segment, profile).
  const auto put_isolation = [&](const ActiveIsolation& active) -> Status {
    sqlite3_stmt* s = st.put_isolation.get();
    bindText(s, 1, active.isolation.segment);
    bindText(s, 2, active.isolation.profile);
    sqlite3_bind_int64(s, 3, active.since_unix_ms);
    if (active.expires_unix_ms) sqlite3_bind_int64(s, 4, *active.expires_unix_ms);
    bindText(s, 5, active.origin);
    sqlite3_bind_int(s, 6, active.drill ? 1 : 0);
    return runStatement(
        handle, s, "store isolation " + active.isolation.segment + ":" + active.isolation.profile);
  };
  if (!old) {
    SHADAN_RETURN_IF_ERROR(runStatement(handle, st.clear_isolations.get(), "clear isolations"));
    for (const auto& active : state.isolations) SHADAN_RETURN_IF_ERROR(put_isolation(active));
  } else if (old->isolations != state.isolations) {
    for (const auto& was : old->isolations) {
      if (state.contains(was.isolation)) continue;
      bindText(st.delete_isolation.get(), 1, was.isolation.segment);
      bindText(st.delete_isolation.get(), 2, was.isolation.profile);
      SHADAN_RETURN_IF_ERROR(runStatement(handle, st.delete_isolation.get(), "delete isolation"));
    }
    for (const auto& active : state.isolations) {
      const auto same = std::find(old->isolations.begin(), old->isolations.end(), active);
      if (same == old->isolations.end()) SHADAN_RETURN_IF_ERROR(put_isolation(active));
    }
  }

  // Meta values.
  const auto put_meta = [&](const char* key, const std::string& value) -> Status {
    sqlite3_bind_text(st.put_meta.get(), 1, key, -1, SQLITE_STATIC);
    bindText(st.put_meta.get(), 2, value);
    return runStatement(handle, st.put_meta.get(), std::string("store ") + key);
  };
  if (!old || old->applied_ruleset_sha256 != state.applied_ruleset_sha256) {
    SHADAN_RETURN_IF_ERROR(put_meta("applied_ruleset_sha256", state.applied_ruleset_sha256));
  }
  if (!old || old->replay.last_seq != state.replay.last_seq) {
    SHADAN_RETURN_IF_ERROR(put_meta("last_seq", std::to_string(state.replay.last_seq)));
  }
  if (!old || old->trust_version != state.trust_version) {
    SHADAN_RETURN_IF_ERROR(put_meta("trust_version", std::to_string(state.trust_version)));
  }

  // Command ids: both sets are sorted, so one walk finds what was added and what was dropped.
  const auto insert_seen = [&](CommandIdSet::const_iterator at) -> Status {
    bindText(st.insert_seen.get(), 1, *at);
    if (at.forgetAfterMs() != CommandIdSet::kKeepForever) {
      sqlite3_bind_int64(st.insert_seen.get(), 2, at.forgetAfterMs());
    }
    return runStatement(handle, st.insert_seen.get(), "store command id");
  };
  const auto delete_seen = [&](std::string_view id) -> Status {
    bindText(st.delete_seen.get(), 1, id);
    return runStatement(handle, st.delete_seen.get(), "forget command id");
  };
  const CommandIdSet& ids = state.replay.seen_command_ids;
  if (!old) {
    SHADAN_RETURN_IF_ERROR(runStatement(handle, st.clear_seen.get(), "clear command ids"));
    for (auto at = ids.begin(); at != ids.end(); ++at) SHADAN_RETURN_IF_ERROR(insert_seen(at));
  } else if (!ids.sharesStorageWith(old->replay.seen_command_ids)) {
    auto was = old->replay.seen_command_ids.begin();
    const auto was_end = old->replay.seen_command_ids.end();
    auto now = ids.begin();
    while (was != was_end || now != ids.end()) {
      if (now == ids.end() || (was != was_end && *was < *now)) {
        SHADAN_RETURN_IF_ERROR(delete_seen(*was++));
      } else if (was == was_end || *now < *was) {
        SHADAN_RETURN_IF_ERROR(insert_seen(now++));
      } else {
        ++was;
        ++now;
      }
    }
  }

  // Segment generations.
  const auto put_gen = [&](const std::string& segment, int64_t gen) -> Status {
    bindText(st.put_gen.get(), 1, segment);
    sqlite3_bind_int64(st.put_gen.get(), 2, gen);
    return runStatement(handle, st.put_gen.get(), "store segment gen");
  };
  const auto& gens = state.replay.segment_gens;
  if (!old) {
    SHADAN_RETURN_IF_ERROR(runStatement(handle, st.clear_gens.get(), "clear segment gens"));
    for (const auto& [segment, gen] : gens) SHADAN_RETURN_IF_ERROR(put_gen(segment, gen));
  } else if (old->replay.segment_gens != gens) {
    for (const auto& [segment, gen] : old->replay.segment_gens) {
      if (gens.contains(segment)) continue;
      bindText(st.delete_gen.get(), 1, segment);
      SHADAN_RETURN_IF_ERROR(runStatement(handle, st.delete_gen.get(), "delete segment gen"));
    }
    for (const auto& [segment, gen] : gens) {
      const auto was = old->replay.segment_gens.find(segment);
      if (was == old->replay.segment_gens.end() || was->second != gen) {
        SHADAN_RETURN_IF_ERROR(put_gen(segment, gen));
      }
    }
  }
  return okStatus();
}

}  // namespace shadan

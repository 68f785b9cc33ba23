#include "agents/state/sqlite_state_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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
  command_id TEXT PRIMARY KEY
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

using StmtPtr = std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)>;

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
  return StmtPtr(raw, &sqlite3_finalize);
}

// Rolls back an open transaction unless commit() was reached.
class TransactionGuard {
 public:
  explicit TransactionGuard(sqlite3* db) : db_(db) {}
  ~TransactionGuard() {
    if (!committed_) (void)exec(db_, "ROLLBACK");
  }
  Status commit() {
    SHADAN_RETURN_IF_ERROR(exec(db_, "COMMIT"));
    committed_ = true;
    return okStatus();
  }

 private:
  sqlite3* db_;
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
    return txn.commit();
  };
  if (auto status = init(); !status.ok()) {
    return status.error().withContext("state database " + db_path.string());
  }
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

  auto seen = prepare(db_.get(), "SELECT command_id FROM seen_commands");
  if (!seen.ok()) return seen.error();
  while ((rc = sqlite3_step(seen->get())) == SQLITE_ROW) {
    state.replay.seen_command_ids.insert(
        reinterpret_cast<const char*>(sqlite3_column_text(seen->get(), 0)));
  }
  if (rc != SQLITE_DONE) return sqliteError(db_.get(), "load seen commands");
  stored_command_ids_ = state.replay.seen_command_ids;

  auto gens = prepare(db_.get(), "SELECT segment, gen FROM segment_gens");
  if (!gens.ok()) return gens.error();
  while ((rc = sqlite3_step(gens->get())) == SQLITE_ROW) {
    state.replay.segment_gens[reinterpret_cast<const char*>(sqlite3_column_text(gens->get(), 0))] =
        sqlite3_column_int64(gens->get(), 1);
  }
  if (rc != SQLITE_DONE) return sqliteError(db_.get(), "load segment generations");
  return state;
}

Status SqliteStateStore::saveUnsynced(const DesiredState& state) {
  SHADAN_RETURN_IF_ERROR(exec(db_.get(), "PRAGMA synchronous=NORMAL"));
  Status saved = save(state);
  // Every other commit must stay durable: if FULL cannot be restored, say so loudly.
  Status restored = exec(db_.get(), "PRAGMA synchronous=FULL");
  if (!restored.ok()) return restored.error().withContext("restoring synchronous=FULL");
  return saved;
}

Status SqliteStateStore::save(const DesiredState& state) {
  sqlite3* handle = db_.get();
  SHADAN_RETURN_IF_ERROR(exec(handle, "BEGIN IMMEDIATE"));
  TransactionGuard txn(handle);
  SHADAN_RETURN_IF_ERROR(exec(handle, "DELETE FROM isolations"));
  auto insert =
      prepare(handle,
              "INSERT INTO isolations(segment, profile, since_ms, expires_ms, origin, drill) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!insert.ok()) return insert.error();
  for (const auto& active : state.isolations) {
    sqlite3_stmt* s = insert->get();
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, active.isolation.segment.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, active.isolation.profile.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, active.since_unix_ms);
    if (active.expires_unix_ms) {
      sqlite3_bind_int64(s, 4, *active.expires_unix_ms);
    } else {
      sqlite3_bind_null(s, 4);
    }
    sqlite3_bind_text(s, 5, active.origin.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 6, active.drill ? 1 : 0);
    if (sqlite3_step(s) != SQLITE_DONE) {
      return sqliteError(
          handle, "store isolation " + active.isolation.segment + ":" + active.isolation.profile);
    }
  }
  auto meta = prepare(handle, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)");
  if (!meta.ok()) return meta.error();
  const std::pair<const char*, std::string> values[] = {
      {"applied_ruleset_sha256", state.applied_ruleset_sha256},
      {"last_seq", std::to_string(state.replay.last_seq)},
      {"trust_version", std::to_string(state.trust_version)},
  };
  for (const auto& [key, value] : values) {
    sqlite3_reset(meta->get());
    sqlite3_bind_text(meta->get(), 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(meta->get(), 2, value.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(meta->get()) != SQLITE_DONE)
      return sqliteError(handle, std::string("store ") + key);
  }
  auto seen = prepare(handle, "INSERT OR IGNORE INTO seen_commands(command_id) VALUES (?1)");
  if (!seen.ok()) return seen.error();
  std::vector<const std::string*> added;
  for (const auto& id : state.replay.seen_command_ids) {
    if (stored_command_ids_.contains(id)) continue;
    added.push_back(&id);
    sqlite3_reset(seen->get());
    sqlite3_bind_text(seen->get(), 1, id.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(seen->get()) != SQLITE_DONE) return sqliteError(handle, "store command id");
  }
  auto gens = prepare(handle, "INSERT OR REPLACE INTO segment_gens(segment, gen) VALUES (?1, ?2)");
  if (!gens.ok()) return gens.error();
  for (const auto& [segment, gen] : state.replay.segment_gens) {
    sqlite3_reset(gens->get());
    sqlite3_bind_text(gens->get(), 1, segment.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(gens->get(), 2, gen);
    if (sqlite3_step(gens->get()) != SQLITE_DONE) return sqliteError(handle, "store segment gen");
  }
  SHADAN_RETURN_IF_ERROR(txn.commit());
  for (const std::string* id : added) stored_command_ids_.insert(*id);
  return okStatus();
}

}  // namespace shadan

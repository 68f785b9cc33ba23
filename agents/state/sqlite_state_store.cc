#include "agents/state/sqlite_state_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace shadan::agent {
namespace {

// 2: isolations are rungs of the ladder (scope, host, link_down); version 1 databases are
// migrated on open. An agent that predates version 2 refuses the database rather than reading a
// host quarantine as a segment cut.
// 3: isolations record whether an automatic response applied them (`automatic`); version 2
// databases are migrated in place (their isolations are not automatic), version 1 through 2. An
// agent that predates version 3 refuses the database: rewriting it without the column would
// quietly turn an automatic isolation into one only operators may lift, and back again later.
constexpr int kSchemaVersion = 3;

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
)sql";

// The isolations of schema 3: rungs of the ladder, keyed by (scope, segment, host, profile).
constexpr const char* kIsolationsTable = R"sql(
CREATE TABLE IF NOT EXISTS isolations (
  scope      TEXT NOT NULL DEFAULT 'segment',
  segment    TEXT NOT NULL,
  host       TEXT NOT NULL DEFAULT '',
  profile    TEXT NOT NULL,
  since_ms   INTEGER NOT NULL,
  expires_ms INTEGER,
  origin     TEXT NOT NULL,
  drill      INTEGER NOT NULL DEFAULT 0,
  link_down  INTEGER NOT NULL DEFAULT 0,
  automatic  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (scope, segment, host, profile)
) STRICT;
)sql";

// Version 1 keyed isolations by (segment, profile): SQLite cannot change a primary key in place,
// so the table is rebuilt (inside the opening transaction; its rows are segment isolations).
constexpr const char* kRenameVersion1 = "ALTER TABLE isolations RENAME TO isolations_v1;";
constexpr const char* kCopyVersion1 = R"sql(
INSERT INTO isolations(segment, profile, since_ms, expires_ms, origin, drill)
  SELECT segment, profile, since_ms, expires_ms, origin, drill FROM isolations_v1;
DROP TABLE isolations_v1;
UPDATE meta SET value = '2' WHERE key = 'schema_version';
)sql";

// Version 2 lacks isolations.automatic (a version 1 table rebuilt above already has it).
constexpr const char* kAddAutomatic =
    "ALTER TABLE isolations ADD COLUMN automatic INTEGER NOT NULL DEFAULT 0;";
constexpr const char* kMarkVersion3 = "UPDATE meta SET value = '3' WHERE key = 'schema_version';";

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

// Whether `table` has a column `column` (schemas of older agents lack some).
Result<bool> hasColumn(sqlite3* db, const char* table, const char* column) {
  SHADAN_ASSIGN_OR_RETURN(auto query, SqliteStatement::prepare(
                                          db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
                                          std::string("look for column ") + table + "." + column));
  SHADAN_ASSIGN_OR_RETURN(auto step, query.bindText(1, table).bindText(2, column).step());
  return step == SqliteStep::kRow;
}

// The statements of the hot path, by what they do.
enum class Sql {
  kSynchronousNormal,
  kSynchronousFull,
  kClearIsolations,
  kDeleteIsolation,
  kPutIsolation,
  kPutMeta,
  kClearSeen,
  kDeleteSeen,
  kInsertSeen,
  kClearGens,
  kDeleteGen,
  kPutGen,
  kPutAck,
  kDropOldAcks,
  kRecentAcks,
  kCount,
};

struct SqlText {
  Sql id;
  const char* sql;
  const char* what;  // names the statement in its errors
};

// In the order of Sql (checked when they are prepared).
constexpr SqlText kStatementTexts[] = {
    {Sql::kSynchronousNormal, "PRAGMA synchronous=NORMAL", "PRAGMA synchronous=NORMAL"},
    {Sql::kSynchronousFull, "PRAGMA synchronous=FULL", "PRAGMA synchronous=FULL"},
    {Sql::kClearIsolations, "DELETE FROM isolations", "clear isolations"},
    {Sql::kDeleteIsolation,
     "DELETE FROM isolations WHERE segment = ?1 AND profile = ?2 AND scope = ?3 AND host = ?4",
     "delete isolation"},
    {Sql::kPutIsolation,
     "INSERT OR REPLACE INTO isolations(segment, profile, since_ms, expires_ms, origin, drill, "
     "scope, host, link_down, automatic) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
     "store isolation"},
    {Sql::kPutMeta, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)", "store meta value"},
    {Sql::kClearSeen, "DELETE FROM seen_commands", "clear command ids"},
    {Sql::kDeleteSeen, "DELETE FROM seen_commands WHERE command_id = ?1", "forget command id"},
    {Sql::kInsertSeen,
     "INSERT OR IGNORE INTO seen_commands(command_id, forget_after_ms) VALUES (?1, ?2)",
     "store command id"},
    {Sql::kClearGens, "DELETE FROM segment_gens", "clear segment gens"},
    {Sql::kDeleteGen, "DELETE FROM segment_gens WHERE segment = ?1", "delete segment gen"},
    {Sql::kPutGen, "INSERT OR REPLACE INTO segment_gens(segment, gen) VALUES (?1, ?2)",
     "store segment gen"},
    {Sql::kPutAck, "INSERT OR REPLACE INTO acks(seq, envelope, at_ms) VALUES (?1, ?2, ?3)",
     "remember ack"},
    {Sql::kDropOldAcks, "DELETE FROM acks WHERE at_ms < ?1", "drop old acks"},
    {Sql::kRecentAcks,
     "SELECT seq, envelope FROM (SELECT seq, envelope FROM acks WHERE at_ms >= ?1 "
     "ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
     "read remembered acks"},
};
static_assert(std::size(kStatementTexts) == static_cast<size_t>(Sql::kCount));

}  // namespace

struct SqliteStateStore::Statements {
  SqliteTransactionStatements transaction;
  std::vector<SqliteStatement> by_id;  // indexed by Sql

  SqliteStatement& operator[](Sql id) { return by_id[static_cast<size_t>(id)]; }

  static Result<std::unique_ptr<Statements>> prepareAll(sqlite3* db) {
    SHADAN_ASSIGN_OR_RETURN(auto transaction, SqliteTransactionStatements::prepare(db));
    std::vector<SqliteStatement> by_id;
    by_id.reserve(std::size(kStatementTexts));
    for (const SqlText& text : kStatementTexts) {
      // A table out of order is a broken invariant of this file, not a state to report.
      if (static_cast<size_t>(text.id) != by_id.size()) std::abort();
      SHADAN_ASSIGN_OR_RETURN(auto prepared, SqliteStatement::prepare(db, text.sql, text.what));
      by_id.push_back(std::move(prepared));
    }
    return std::unique_ptr<Statements>(new Statements{std::move(transaction), std::move(by_id)});
  }
};

std::vector<Isolation> DesiredState::isolationPairs() const {
  std::vector<Isolation> pairs;
  pairs.reserve(isolations.size());
  for (const auto& active : isolations) pairs.push_back(active.isolation);
  return pairs;
}

const ActiveIsolation* DesiredState::find(const Isolation& isolation) const {
  const auto it = std::lower_bound(
      isolations.begin(), isolations.end(), isolation,
      [](const ActiveIsolation& active, const Isolation& key) { return active.isolation < key; });
  if (it != isolations.end() && it->isolation == isolation) return &*it;
  return nullptr;
}

bool DesiredState::contains(const Isolation& isolation) const { return find(isolation) != nullptr; }

SqliteStateStore::SqliteStateStore(SqliteDbPtr db, int lock_fd)
    : db_(std::move(db)), lock_fd_(lock_fd) {}

SqliteStateStore::~SqliteStateStore() {
  statements_.reset();  // finalized before the connection closes
  db_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<SqliteStateStore>> SqliteStateStore::open(
    const std::filesystem::path& state_dir, std::chrono::milliseconds lock_wait,
    bool create_directory) {
  std::error_code ec;
  if (!create_directory && !std::filesystem::exists(state_dir, ec)) {
    return makeError(ErrorCode::kNotFound,
                     "state directory " + state_dir.string() +
                         " does not exist (a typo? it is made by `shadan-agent init --state-dir " +
                         state_dir.string() + "` or by the daemon's first start)");
  }
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

  SHADAN_ASSIGN_OR_RETURN(auto lock, takeLock(state_dir / "lock", lock_wait));
  const int lock_fd = lock;

  const auto db_path = state_dir / "agent.db";
  auto db = openSqliteDb(db_path.string(), std::chrono::milliseconds(2000));
  if (!db.ok()) {
    ::close(lock_fd);
    return db.error();
  }
  std::unique_ptr<SqliteStateStore> store(new SqliteStateStore(std::move(db).value(), lock_fd));
  sqlite3* handle = store->db_.get();

  const auto init = [&]() -> Status {
    SHADAN_RETURN_IF_ERROR(sqliteExec(handle, "PRAGMA journal_mode=WAL", "PRAGMA journal_mode"));
    SHADAN_RETURN_IF_ERROR(sqliteExec(handle, "PRAGMA synchronous=FULL", "PRAGMA synchronous"));
    SHADAN_ASSIGN_OR_RETURN(auto txn, SqliteTransaction::begin(handle));
    SHADAN_RETURN_IF_ERROR(sqliteExec(handle, kSchema, "create schema"));
    // An older table keeps its place (and is migrated below); a new database gets the current
    // schema.
    SHADAN_RETURN_IF_ERROR(sqliteExec(handle, kIsolationsTable, "create isolations"));
    SHADAN_ASSIGN_OR_RETURN(
        auto select,
        SqliteStatement::prepare(handle, "SELECT value FROM meta WHERE key = 'schema_version'",
                                 "read schema version"));
    SHADAN_ASSIGN_OR_RETURN(auto step, select.step());
    if (step == SqliteStep::kRow) {
      std::string version = select.columnText(0);
      if (version == "1") {
        select.reset();
        // Version 1 databases created before drills were recorded lack that column too.
        SHADAN_ASSIGN_OR_RETURN(auto had_drill, hasColumn(handle, "isolations", "drill"));
        if (!had_drill) {
          SHADAN_RETURN_IF_ERROR(sqliteExec(
              handle, "ALTER TABLE isolations ADD COLUMN drill INTEGER NOT NULL DEFAULT 0",
              "add column isolations.drill"));
        }
        const std::string migrate = std::string(kRenameVersion1) + kIsolationsTable + kCopyVersion1;
        SHADAN_RETURN_IF_ERROR(sqliteExec(handle, migrate.c_str(), "migrate schema 1 to 2"));
        version = "2";
      }
      if (version == "2") {
        select.reset();
        SHADAN_ASSIGN_OR_RETURN(auto had_automatic, hasColumn(handle, "isolations", "automatic"));
        if (!had_automatic) {
          SHADAN_RETURN_IF_ERROR(
              sqliteExec(handle, kAddAutomatic, "add column isolations.automatic"));
        }
        SHADAN_RETURN_IF_ERROR(sqliteExec(handle, kMarkVersion3, "migrate schema 2 to 3"));
      } else if (version != std::to_string(kSchemaVersion)) {
        return makeError(ErrorCode::kState,
                         "state database " + db_path.string() + " has schema version " + version +
                             ", this agent understands " + std::to_string(kSchemaVersion));
      }
    } else {
      SHADAN_RETURN_IF_ERROR(
          sqliteExec(handle,
                     ("INSERT INTO meta(key, value) VALUES ('schema_version', '" +
                      std::to_string(kSchemaVersion) + "')")
                         .c_str(),
                     "store schema version"));
    }
    select.reset();
    // Databases created before drills were recorded lack the column.
    SHADAN_ASSIGN_OR_RETURN(auto has_drill, hasColumn(handle, "isolations", "drill"));
    if (!has_drill) {
      SHADAN_RETURN_IF_ERROR(
          sqliteExec(handle, "ALTER TABLE isolations ADD COLUMN drill INTEGER NOT NULL DEFAULT 0",
                     "add column isolations.drill"));
    }
    // Databases created before command ids could be forgotten lack the column: their ids are
    // kept (NULL), as before.
    SHADAN_ASSIGN_OR_RETURN(auto has_forget, hasColumn(handle, "seen_commands", "forget_after_ms"));
    if (!has_forget) {
      SHADAN_RETURN_IF_ERROR(
          sqliteExec(handle, "ALTER TABLE seen_commands ADD COLUMN forget_after_ms INTEGER",
                     "add column seen_commands.forget_after_ms"));
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
  sqlite3* handle = db_.get();
  DesiredState state;
  SHADAN_ASSIGN_OR_RETURN(
      auto isolations,
      SqliteStatement::prepare(handle,
                               "SELECT segment, profile, since_ms, expires_ms, origin, drill, "
                               "scope, host, link_down, automatic FROM isolations",
                               "load isolations"));
  SHADAN_RETURN_IF_ERROR(isolations.forEachRow([&](const SqliteStatement& row) -> Status {
    ActiveIsolation active;
    active.isolation.segment = row.columnText(0);
    active.isolation.profile = row.columnText(1);
    active.since_unix_ms = row.columnInt64(2);
    active.expires_unix_ms = row.columnOptionalInt64(3);
    active.origin = row.columnText(4);
    active.drill = row.columnInt64(5) != 0;
    const std::string scope = row.columnText(6);
    const std::optional<IsolationScope> parsed = parseIsolationScope(scope);
    if (!parsed) {
      return makeError(ErrorCode::kState, "isolation " + active.isolation.segment + ":" +
                                              active.isolation.profile + " has unknown scope \"" +
                                              scope + "\"");
    }
    active.isolation.scope = *parsed;
    const std::string host = row.columnText(7);
    if (!host.empty()) {
      SHADAN_ASSIGN_OR_RETURN(IpPrefix prefix, IpPrefix::parse(host));
      active.isolation.host = prefix;
    }
    active.link_down = row.columnInt64(8) != 0;
    active.automatic = row.columnInt64(9) != 0;
    state.isolations.push_back(std::move(active));
    return okStatus();
  }));
  // The documented order (the struct's, which SQL text order is not for host prefixes).
  std::sort(
      state.isolations.begin(), state.isolations.end(),
      [](const ActiveIsolation& a, const ActiveIsolation& b) { return a.isolation < b.isolation; });

  SHADAN_ASSIGN_OR_RETURN(
      auto meta, SqliteStatement::prepare(handle, "SELECT key, value FROM meta", "load meta"));
  SHADAN_RETURN_IF_ERROR(meta.forEachRow([&](const SqliteStatement& row) -> Status {
    const std::string key = row.columnText(0);
    const std::string value = row.columnText(1);
    if (key == "applied_ruleset_sha256") state.applied_ruleset_sha256 = value;
    if (key == "last_seq") state.replay.last_seq = std::stoll(value);
    if (key == "trust_version") state.trust_version = std::stoll(value);
    return okStatus();
  }));

  // In key order (BINARY collation = byte order, the set's order): each insert appends.
  SHADAN_ASSIGN_OR_RETURN(
      auto seen,
      SqliteStatement::prepare(
          handle, "SELECT command_id, forget_after_ms FROM seen_commands ORDER BY command_id",
          "load seen commands"));
  SHADAN_RETURN_IF_ERROR(seen.forEachRow([&](const SqliteStatement& row) -> Status {
    const std::string_view id = row.columnView(0);
    if (!CommandIdSet::fits(id)) {
      return makeError(ErrorCode::kState, "stored command id of " + std::to_string(id.size()) +
                                              " bytes is longer than any this agent accepts");
    }
    state.replay.seen_command_ids.insert(
        id, row.columnOptionalInt64(1).value_or(CommandIdSet::kKeepForever));
    return okStatus();
  }));

  SHADAN_ASSIGN_OR_RETURN(auto gens,
                          SqliteStatement::prepare(handle, "SELECT segment, gen FROM segment_gens",
                                                   "load segment gens"));
  SHADAN_RETURN_IF_ERROR(gens.forEachRow([&](const SqliteStatement& row) -> Status {
    state.replay.segment_gens[row.columnText(0)] = row.columnInt64(1);
    return okStatus();
  }));
  stored_ = state;
  return state;
}

Status SqliteStateStore::unsynced(const std::function<Status()>& write) {
  Statements& st = *statements_;
  SHADAN_RETURN_IF_ERROR(st[Sql::kSynchronousNormal].run());
  Status written = write();
  // Every other commit must stay durable: if FULL cannot be restored, say so loudly.
  Status restored = st[Sql::kSynchronousFull].run();
  if (!restored.ok()) return restored.error().withContext("restoring synchronous=FULL");
  return written;
}

Status SqliteStateStore::saveUnsynced(const DesiredState& state) {
  return unsynced([&] { return save(state); });
}

Status SqliteStateStore::rememberAck(int64_t seq, const std::string& envelope, int64_t at_ms,
                                     int64_t keep_ms) {
  Statements& st = *statements_;
  return unsynced([&]() -> Status {
    SHADAN_ASSIGN_OR_RETURN(auto txn, SqliteTransaction::begin(st.transaction));
    SHADAN_RETURN_IF_ERROR(
        st[Sql::kPutAck].bindInt64(1, seq).bindText(2, envelope).bindInt64(3, at_ms).run());
    SHADAN_RETURN_IF_ERROR(st[Sql::kDropOldAcks].bindInt64(1, at_ms - keep_ms).run());
    return txn.commit();
  });
}

Result<std::vector<StoredAck>> SqliteStateStore::recentAcks(int64_t since_ms, size_t limit) {
  std::vector<StoredAck> envelopes;
  SHADAN_RETURN_IF_ERROR(
      (*statements_)[Sql::kRecentAcks]
          .bindInt64(1, since_ms)
          .bindInt64(2, static_cast<int64_t>(limit))
          .forEachRow([&](const SqliteStatement& row) -> Status {
            envelopes.push_back(StoredAck{row.columnInt64(0), row.columnText(1)});
            return okStatus();
          }));
  return envelopes;
}

Status SqliteStateStore::save(const DesiredState& state) {
  SHADAN_ASSIGN_OR_RETURN(auto txn, SqliteTransaction::begin(statements_->transaction));
  // Whatever fails below, the transaction is rolled back and the stored state is untouched.
  SHADAN_RETURN_IF_ERROR(writeChanges(state));
  SHADAN_RETURN_IF_ERROR(txn.commit());
  stored_ = state;
  return okStatus();
}

Status SqliteStateStore::writeChanges(const DesiredState& state) {
  Statements& st = *statements_;
  const DesiredState* old = stored_ ? &*stored_ : nullptr;

  // Isolations, keyed by (scope, segment, host, profile).
  const auto host_text = [](const Isolation& isolation) {
    return isolation.host ? isolation.host->toCidr() : std::string();
  };
  const auto put_isolation = [&](const ActiveIsolation& active) -> Status {
    Status status = st[Sql::kPutIsolation]
                        .bindText(1, active.isolation.segment)
                        .bindText(2, active.isolation.profile)
                        .bindInt64(3, active.since_unix_ms)
                        .bindOptionalInt64(4, active.expires_unix_ms)
                        .bindText(5, active.origin)
                        .bindInt64(6, active.drill ? 1 : 0)
                        .bindText(7, isolationScopeName(active.isolation.scope))
                        .bindText(8, host_text(active.isolation))
                        .bindInt64(9, active.link_down ? 1 : 0)
                        .bindInt64(10, active.automatic ? 1 : 0)
                        .run();
    if (!status.ok()) return status.error().withContext(isolationLabel(active.isolation));
    return okStatus();
  };
  if (!old) {
    SHADAN_RETURN_IF_ERROR(st[Sql::kClearIsolations].run());
    for (const auto& active : state.isolations) SHADAN_RETURN_IF_ERROR(put_isolation(active));
  } else if (old->isolations != state.isolations) {
    // Both lists are sorted by isolation (DesiredState's contract), so a host quarantine of ten
    // thousand addresses costs n log n here, not n squared.
    for (const auto& was : old->isolations) {
      if (state.contains(was.isolation)) continue;
      SHADAN_RETURN_IF_ERROR(st[Sql::kDeleteIsolation]
                                 .bindText(1, was.isolation.segment)
                                 .bindText(2, was.isolation.profile)
                                 .bindText(3, isolationScopeName(was.isolation.scope))
                                 .bindText(4, host_text(was.isolation))
                                 .run());
    }
    for (const auto& active : state.isolations) {
      const ActiveIsolation* same = old->find(active.isolation);
      if (same == nullptr || !(*same == active)) SHADAN_RETURN_IF_ERROR(put_isolation(active));
    }
  }

  // Meta values.
  const auto put_meta = [&](const char* key, const std::string& value) -> Status {
    Status status = st[Sql::kPutMeta].bindText(1, key).bindText(2, value).run();
    if (!status.ok()) return status.error().withContext(key);
    return okStatus();
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
    SqliteStatement& insert = st[Sql::kInsertSeen];
    insert.bindText(1, *at);
    if (at.forgetAfterMs() == CommandIdSet::kKeepForever) {
      insert.bindNull(2);
    } else {
      insert.bindInt64(2, at.forgetAfterMs());
    }
    return insert.run();
  };
  const auto delete_seen = [&](std::string_view id) -> Status {
    return st[Sql::kDeleteSeen].bindText(1, id).run();
  };
  const CommandIdSet& ids = state.replay.seen_command_ids;
  if (!old) {
    SHADAN_RETURN_IF_ERROR(st[Sql::kClearSeen].run());
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
    return st[Sql::kPutGen].bindText(1, segment).bindInt64(2, gen).run();
  };
  const auto& gens = state.replay.segment_gens;
  if (!old) {
    SHADAN_RETURN_IF_ERROR(st[Sql::kClearGens].run());
    for (const auto& [segment, gen] : gens) SHADAN_RETURN_IF_ERROR(put_gen(segment, gen));
  } else if (old->replay.segment_gens != gens) {
    for (const auto& [segment, gen] : old->replay.segment_gens) {
      if (gens.contains(segment)) continue;
      SHADAN_RETURN_IF_ERROR(st[Sql::kDeleteGen].bindText(1, segment).run());
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

}  // namespace shadan::agent

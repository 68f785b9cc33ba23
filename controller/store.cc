#include "controller/store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

namespace shadan {
namespace {

using nlohmann::json;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS agents (
  agent_id    TEXT PRIMARY KEY,
  keyid       TEXT NOT NULL,
  public_key  TEXT,
  status      TEXT NOT NULL,
  first_seen  INTEGER NOT NULL,
  last_seen   INTEGER NOT NULL,
  last_state  TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE TABLE IF NOT EXISTS agent_seq (
  agent_id TEXT PRIMARY KEY,
  seq      INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS segments (
  segment  TEXT PRIMARY KEY,
  gen      INTEGER NOT NULL,
  isolated INTEGER NOT NULL DEFAULT 0,
  profile  TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE TABLE IF NOT EXISTS orders (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  command_id     TEXT NOT NULL UNIQUE,
  action         TEXT NOT NULL,
  segment        TEXT NOT NULL,
  profile        TEXT NOT NULL,
  requested_by   TEXT NOT NULL,
  reason         TEXT NOT NULL,
  ticket         TEXT,
  drill          INTEGER NOT NULL,
  state          TEXT NOT NULL,
  authz_payload  BLOB NOT NULL,
  authz_envelope TEXT NOT NULL,
  targets        TEXT NOT NULL,
  expires_at     INTEGER NOT NULL,
  created        INTEGER NOT NULL,
  updated        INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS dispatches (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  agent_id         TEXT NOT NULL,
  command_id       TEXT NOT NULL,
  seq              INTEGER NOT NULL,
  envelope         TEXT NOT NULL,
  envelope_expires INTEGER NOT NULL,
  state            TEXT NOT NULL,
  ack_json         TEXT NOT NULL,
  created          INTEGER NOT NULL,
  sent             INTEGER NOT NULL,
  updated          INTEGER NOT NULL,
  UNIQUE (agent_id, command_id)
) STRICT;
CREATE INDEX IF NOT EXISTS dispatches_by_seq ON dispatches (agent_id, seq);
CREATE TABLE IF NOT EXISTS approvals (
  approval_id  TEXT PRIMARY KEY,
  command_id   TEXT NOT NULL,
  payload_type TEXT NOT NULL,
  payload      BLOB NOT NULL,
  rule         TEXT NOT NULL,
  needed       INTEGER NOT NULL,
  signatures   TEXT NOT NULL,
  state        TEXT NOT NULL,
  created      INTEGER NOT NULL,
  expires      INTEGER NOT NULL
) STRICT;
)sql";

using DbPtr = std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)>;

Error sqliteError(sqlite3* db, const std::string& what) {
  return makeError(ErrorCode::kState, "controller store: " + what + ": " +
                                          (db ? sqlite3_errmsg(db) : "out of memory"));
}

Status exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    return makeError(ErrorCode::kState, "controller store: " + text);
  }
  return okStatus();
}

// A prepared statement with positional binding (1-based, in call order).
class Statement {
 public:
  static Result<Statement> prepare(sqlite3* db, const char* sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
      return sqliteError(db, "prepare");
    }
    return Statement(db, StmtPtr(raw, &sqlite3_finalize));
  }

  Statement& text(const std::string& value) {
    sqlite3_bind_text(stmt_.get(), next_++, value.data(), static_cast<int>(value.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Statement& blob(const std::string& value) {
    sqlite3_bind_blob(stmt_.get(), next_++, value.data(), static_cast<int>(value.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Statement& optionalText(const std::optional<std::string>& value) {
    if (value) return text(*value);
    sqlite3_bind_null(stmt_.get(), next_++);
    return *this;
  }
  Statement& integer(int64_t value) {
    sqlite3_bind_int64(stmt_.get(), next_++, value);
    return *this;
  }

  // True while a row is available.
  Result<bool> step() {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return sqliteError(db_, "step");
  }
  Status run() {
    auto row = step();
    if (!row.ok()) return row.error();
    return okStatus();
  }

  std::string columnText(int i) const {
    const void* data = sqlite3_column_blob(stmt_.get(), i);
    const int size = sqlite3_column_bytes(stmt_.get(), i);
    if (data == nullptr) return {};
    return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
  }
  std::optional<std::string> columnOptionalText(int i) const {
    if (sqlite3_column_type(stmt_.get(), i) == SQLITE_NULL) return std::nullopt;
    return columnText(i);
  }
  int64_t columnInt(int i) const { return sqlite3_column_int64(stmt_.get(), i); }

 private:
  Statement(sqlite3* db, StmtPtr stmt) : db_(db), stmt_(std::move(stmt)) {}
  sqlite3* db_;
  StmtPtr stmt_;
  int next_ = 1;
};

template <typename T, typename ParseFn>
Result<std::vector<T>> collect(Statement& statement, ParseFn parse) {
  std::vector<T> out;
  for (;;) {
    auto row = statement.step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    auto item = parse(statement);
    if (!item.ok()) return item.error();
    out.push_back(std::move(*item));
  }
  return out;
}

Error corrupt(const std::string& what) {
  return makeError(ErrorCode::kState, "controller store: corrupt " + what);
}

template <typename Enum, size_t N>
Result<Enum> enumFromName(const std::string& name, const std::array<Enum, N>& values,
                          const char* (*nameOf)(Enum), const char* what) {
  for (Enum value : values) {
    if (name == nameOf(value)) return value;
  }
  return corrupt(std::string(what) + " " + name);
}

constexpr std::array<AgentStatus, 2> kAgentStatuses = {AgentStatus::kPending,
                                                       AgentStatus::kApproved};
constexpr std::array<OrderState, 3> kOrderStates = {OrderState::kAwaitingApproval,
                                                    OrderState::kDispatched, OrderState::kExpired};
constexpr std::array<DispatchState, 6> kDispatchStates = {
    DispatchState::kPending, DispatchState::kApplied,  DispatchState::kAlreadyApplied,
    DispatchState::kFailed,  DispatchState::kRejected, DispatchState::kExpired};
constexpr std::array<ApprovalState, 3> kApprovalStates = {
    ApprovalState::kPending, ApprovalState::kComplete, ApprovalState::kExpired};

constexpr const char* kAgentColumns =
    "agent_id, keyid, public_key, status, first_seen, last_seen, last_state";
Result<AgentRecord> agentFromRow(const Statement& s) {
  AgentRecord agent;
  agent.agent_id = s.columnText(0);
  agent.keyid = s.columnText(1);
  if (auto key = s.columnOptionalText(2)) {
    auto bytes = base64Decode(*key);
    if (!bytes.ok() || bytes->size() != kEd25519PublicKeyBytes) {
      return corrupt("public key of agent " + agent.agent_id);
    }
    Ed25519PublicKey public_key{};
    std::copy(bytes->begin(), bytes->end(), public_key.begin());
    agent.public_key = public_key;
  }
  auto status = enumFromName(s.columnText(3), kAgentStatuses, &agentStatusName, "agent status");
  if (!status.ok()) return status.error();
  agent.status = *status;
  agent.first_seen_ms = s.columnInt(4);
  agent.last_seen_ms = s.columnInt(5);
  agent.last_state_json = s.columnText(6);
  return agent;
}

constexpr const char* kOrderColumns =
    "command_id, action, segment, profile, requested_by, reason, ticket, drill, state, "
    "authz_payload, authz_envelope, targets, expires_at, created, updated";
Result<OrderRecord> orderFromRow(const Statement& s) {
  OrderRecord order;
  order.command_id = s.columnText(0);
  order.action = s.columnText(1);
  order.segment = s.columnText(2);
  order.profile = s.columnText(3);
  order.requested_by = s.columnText(4);
  order.reason = s.columnText(5);
  order.ticket = s.columnOptionalText(6);
  order.drill = s.columnInt(7) != 0;
  auto state = enumFromName(s.columnText(8), kOrderStates, &orderStateName, "order state");
  if (!state.ok()) return state.error();
  order.state = *state;
  order.authz_payload = s.columnText(9);
  order.authz_envelope = s.columnText(10);
  json targets = json::parse(s.columnText(11), nullptr, false);
  if (!targets.is_array()) return corrupt("targets of order " + order.command_id);
  for (const auto& target : targets) {
    if (!target.is_string()) return corrupt("targets of order " + order.command_id);
    order.targets.push_back(target.get<std::string>());
  }
  order.expires_at_ms = s.columnInt(12);
  order.created_ms = s.columnInt(13);
  order.updated_ms = s.columnInt(14);
  return order;
}

constexpr const char* kDispatchColumns =
    "agent_id, command_id, seq, envelope, envelope_expires, state, ack_json, created, sent, "
    "updated";
Result<DispatchRecord> dispatchFromRow(const Statement& s) {
  DispatchRecord dispatch;
  dispatch.agent_id = s.columnText(0);
  dispatch.command_id = s.columnText(1);
  dispatch.seq = s.columnInt(2);
  dispatch.envelope = s.columnText(3);
  dispatch.envelope_expires_ms = s.columnInt(4);
  auto state = enumFromName(s.columnText(5), kDispatchStates, &dispatchStateName, "dispatch state");
  if (!state.ok()) return state.error();
  dispatch.state = *state;
  dispatch.ack_json = s.columnText(6);
  dispatch.created_ms = s.columnInt(7);
  dispatch.sent_ms = s.columnInt(8);
  dispatch.updated_ms = s.columnInt(9);
  return dispatch;
}

constexpr const char* kApprovalColumns =
    "approval_id, command_id, payload_type, payload, rule, needed, signatures, state, created, "
    "expires";
Result<ApprovalRecord> approvalFromRow(const Statement& s) {
  ApprovalRecord approval;
  approval.approval_id = s.columnText(0);
  approval.command_id = s.columnText(1);
  approval.payload_type = s.columnText(2);
  approval.payload = s.columnText(3);
  approval.rule = s.columnText(4);
  approval.needed = static_cast<int>(s.columnInt(5));
  json signatures = json::parse(s.columnText(6), nullptr, false);
  if (!signatures.is_array()) return corrupt("signatures of approval " + approval.approval_id);
  for (const auto& entry : signatures) {
    if (!entry.is_object() || !entry.contains("keyid") || !entry.contains("sig") ||
        !entry["keyid"].is_string() || !entry["sig"].is_string()) {
      return corrupt("signatures of approval " + approval.approval_id);
    }
    auto sig = base64Decode(entry["sig"].get<std::string>());
    if (!sig.ok()) return corrupt("signatures of approval " + approval.approval_id);
    approval.signatures.push_back(DsseSignature{entry["keyid"].get<std::string>(), *sig});
  }
  auto state = enumFromName(s.columnText(7), kApprovalStates, &approvalStateName, "approval state");
  if (!state.ok()) return state.error();
  approval.state = *state;
  approval.created_ms = s.columnInt(8);
  approval.expires_ms = s.columnInt(9);
  return approval;
}

std::string sqlSelect(const char* columns, const char* rest) {
  return std::string("SELECT ") + columns + " " + rest;
}

}  // namespace

const char* agentStatusName(AgentStatus status) {
  return status == AgentStatus::kApproved ? "approved" : "pending";
}

const char* orderStateName(OrderState state) {
  switch (state) {
    case OrderState::kAwaitingApproval:
      return "awaiting_approval";
    case OrderState::kDispatched:
      return "dispatched";
    case OrderState::kExpired:
      return "expired";
  }
  return "?";
}

const char* dispatchStateName(DispatchState state) {
  switch (state) {
    case DispatchState::kPending:
      return "pending";
    case DispatchState::kApplied:
      return "applied";
    case DispatchState::kAlreadyApplied:
      return "already_applied";
    case DispatchState::kFailed:
      return "failed";
    case DispatchState::kRejected:
      return "rejected";
    case DispatchState::kExpired:
      return "expired";
  }
  return "?";
}

const char* approvalStateName(ApprovalState state) {
  switch (state) {
    case ApprovalState::kPending:
      return "pending";
    case ApprovalState::kComplete:
      return "complete";
    case ApprovalState::kExpired:
      return "expired";
  }
  return "?";
}

class SqliteControllerStore : public ControllerStore {
 public:
  explicit SqliteControllerStore(DbPtr db) : db_(std::move(db)) {}

  Status transaction(const std::function<Status()>& fn) override {
    SHADAN_RETURN_IF_ERROR(exec(db_.get(), "BEGIN IMMEDIATE"));
    Status status = fn();
    if (!status.ok()) {
      (void)exec(db_.get(), "ROLLBACK");
      return status;
    }
    Status committed = exec(db_.get(), "COMMIT");
    if (!committed.ok()) (void)exec(db_.get(), "ROLLBACK");
    return committed;
  }

  Result<std::optional<AgentRecord>> getAgent(const std::string& agent_id) override {
    auto s = Statement::prepare(db_.get(),
                                sqlSelect(kAgentColumns, "FROM agents WHERE agent_id = ?").c_str());
    if (!s.ok()) return s.error();
    s->text(agent_id);
    return one<AgentRecord>(*s, agentFromRow);
  }

  Status putAgent(const AgentRecord& agent) override {
    auto s =
        Statement::prepare(db_.get(),
                           "INSERT OR REPLACE INTO agents (agent_id, keyid, public_key, "
                           "status, first_seen, last_seen, last_state) VALUES (?,?,?,?,?,?,?)");
    if (!s.ok()) return s.error();
    std::optional<std::string> key;
    if (agent.public_key) key = base64Encode(*agent.public_key);
    s->text(agent.agent_id)
        .text(agent.keyid)
        .optionalText(key)
        .text(agentStatusName(agent.status))
        .integer(agent.first_seen_ms)
        .integer(agent.last_seen_ms)
        .text(agent.last_state_json);
    return s->run();
  }

  Result<std::vector<AgentRecord>> listAgents() override {
    auto s = Statement::prepare(db_.get(),
                                sqlSelect(kAgentColumns, "FROM agents ORDER BY agent_id").c_str());
    if (!s.ok()) return s.error();
    return collect<AgentRecord>(*s, agentFromRow);
  }

  Result<int64_t> nextSeq(const std::string& agent_id) override {
    return nextCounter(
        "INSERT INTO agent_seq (agent_id, seq) VALUES (?, 1) "
        "ON CONFLICT (agent_id) DO UPDATE SET seq = seq + 1 RETURNING seq",
        agent_id);
  }

  Result<int64_t> nextSegmentGen(const std::string& segment) override {
    return nextCounter(
        "INSERT INTO segments (segment, gen) VALUES (?, 1) "
        "ON CONFLICT (segment) DO UPDATE SET gen = gen + 1 RETURNING gen",
        segment);
  }

  Status putSegment(const SegmentRecord& segment) override {
    auto s = Statement::prepare(
        db_.get(),
        "INSERT OR REPLACE INTO segments (segment, gen, isolated, profile) VALUES (?,?,?,?)");
    if (!s.ok()) return s.error();
    s->text(segment.segment)
        .integer(segment.gen)
        .integer(segment.isolated ? 1 : 0)
        .text(segment.profile);
    return s->run();
  }

  Result<std::vector<SegmentRecord>> listSegments() override {
    auto s = Statement::prepare(
        db_.get(), "SELECT segment, gen, isolated, profile FROM segments ORDER BY segment");
    if (!s.ok()) return s.error();
    return collect<SegmentRecord>(*s, [](const Statement& row) -> Result<SegmentRecord> {
      return SegmentRecord{row.columnText(0), row.columnInt(1), row.columnInt(2) != 0,
                           row.columnText(3)};
    });
  }

  Result<std::optional<OrderRecord>> getOrder(const std::string& command_id) override {
    auto s = Statement::prepare(
        db_.get(), sqlSelect(kOrderColumns, "FROM orders WHERE command_id = ?").c_str());
    if (!s.ok()) return s.error();
    s->text(command_id);
    return one<OrderRecord>(*s, orderFromRow);
  }

  Status putOrder(const OrderRecord& order) override {
    auto s = Statement::prepare(
        db_.get(),
        "INSERT INTO orders (command_id, action, segment, profile, requested_by, reason, ticket, "
        "drill, state, authz_payload, authz_envelope, targets, expires_at, created, updated) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (command_id) DO UPDATE SET "
        "action = excluded.action, segment = excluded.segment, profile = excluded.profile, "
        "requested_by = excluded.requested_by, reason = excluded.reason, "
        "ticket = excluded.ticket, drill = excluded.drill, state = excluded.state, "
        "authz_payload = excluded.authz_payload, authz_envelope = excluded.authz_envelope, "
        "targets = excluded.targets, expires_at = excluded.expires_at, "
        "created = excluded.created, updated = excluded.updated");
    if (!s.ok()) return s.error();
    s->text(order.command_id)
        .text(order.action)
        .text(order.segment)
        .text(order.profile)
        .text(order.requested_by)
        .text(order.reason)
        .optionalText(order.ticket)
        .integer(order.drill ? 1 : 0)
        .text(orderStateName(order.state))
        .blob(order.authz_payload)
        .text(order.authz_envelope)
        .text(json(order.targets).dump())
        .integer(order.expires_at_ms)
        .integer(order.created_ms)
        .integer(order.updated_ms);
    return s->run();
  }

  Result<std::vector<OrderRecord>> listOrders(size_t limit) override {
    auto s = Statement::prepare(
        db_.get(), sqlSelect(kOrderColumns, "FROM orders ORDER BY id DESC LIMIT ?").c_str());
    if (!s.ok()) return s.error();
    s->integer(static_cast<int64_t>(limit));
    return collect<OrderRecord>(*s, orderFromRow);
  }

  Status putDispatch(const DispatchRecord& d) override {
    auto s = Statement::prepare(
        db_.get(),
        "INSERT INTO dispatches (agent_id, command_id, seq, envelope, envelope_expires, state, "
        "ack_json, created, sent, updated) VALUES (?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (agent_id, command_id) DO UPDATE SET seq = excluded.seq, "
        "envelope = excluded.envelope, envelope_expires = excluded.envelope_expires, "
        "state = excluded.state, ack_json = excluded.ack_json, created = excluded.created, "
        "sent = excluded.sent, updated = excluded.updated");
    if (!s.ok()) return s.error();
    s->text(d.agent_id)
        .text(d.command_id)
        .integer(d.seq)
        .text(d.envelope)
        .integer(d.envelope_expires_ms)
        .text(dispatchStateName(d.state))
        .text(d.ack_json)
        .integer(d.created_ms)
        .integer(d.sent_ms)
        .integer(d.updated_ms);
    return s->run();
  }

  Result<std::vector<DispatchRecord>> dispatchesForOrder(const std::string& command_id) override {
    auto s = Statement::prepare(
        db_.get(),
        sqlSelect(kDispatchColumns, "FROM dispatches WHERE command_id = ? ORDER BY agent_id")
            .c_str());
    if (!s.ok()) return s.error();
    s->text(command_id);
    return collect<DispatchRecord>(*s, dispatchFromRow);
  }

  Result<std::vector<DispatchRecord>> pendingDispatches(const std::string& agent_id) override {
    auto s = Statement::prepare(
        db_.get(), sqlSelect(kDispatchColumns,
                             "FROM dispatches WHERE agent_id = ? AND state = 'pending' ORDER BY id")
                       .c_str());
    if (!s.ok()) return s.error();
    s->text(agent_id);
    return collect<DispatchRecord>(*s, dispatchFromRow);
  }

  Result<std::vector<DispatchRecord>> allPendingDispatches() override {
    auto s = Statement::prepare(
        db_.get(),
        sqlSelect(kDispatchColumns, "FROM dispatches WHERE state = 'pending' ORDER BY id").c_str());
    if (!s.ok()) return s.error();
    return collect<DispatchRecord>(*s, dispatchFromRow);
  }

  Result<std::optional<DispatchRecord>> dispatchBySeq(const std::string& agent_id,
                                                      int64_t seq) override {
    auto s = Statement::prepare(
        db_.get(),
        sqlSelect(kDispatchColumns, "FROM dispatches WHERE agent_id = ? AND seq = ?").c_str());
    if (!s.ok()) return s.error();
    s->text(agent_id).integer(seq);
    return one<DispatchRecord>(*s, dispatchFromRow);
  }

  Result<std::optional<ApprovalRecord>> getApproval(const std::string& approval_id) override {
    auto s = Statement::prepare(
        db_.get(), sqlSelect(kApprovalColumns, "FROM approvals WHERE approval_id = ?").c_str());
    if (!s.ok()) return s.error();
    s->text(approval_id);
    return one<ApprovalRecord>(*s, approvalFromRow);
  }

  Status putApproval(const ApprovalRecord& a) override {
    json signatures = json::array();
    for (const auto& sig : a.signatures) {
      signatures.push_back({{"keyid", sig.keyid}, {"sig", base64Encode(sig.sig)}});
    }
    auto s = Statement::prepare(
        db_.get(),
        "INSERT OR REPLACE INTO approvals (approval_id, command_id, payload_type, payload, rule, "
        "needed, signatures, state, created, expires) VALUES (?,?,?,?,?,?,?,?,?,?)");
    if (!s.ok()) return s.error();
    s->text(a.approval_id)
        .text(a.command_id)
        .text(a.payload_type)
        .blob(a.payload)
        .text(a.rule)
        .integer(a.needed)
        .text(signatures.dump())
        .text(approvalStateName(a.state))
        .integer(a.created_ms)
        .integer(a.expires_ms);
    return s->run();
  }

  Result<std::vector<ApprovalRecord>> pendingApprovals() override {
    auto s = Statement::prepare(
        db_.get(),
        sqlSelect(kApprovalColumns, "FROM approvals WHERE state = 'pending' ORDER BY created")
            .c_str());
    if (!s.ok()) return s.error();
    return collect<ApprovalRecord>(*s, approvalFromRow);
  }

 private:
  template <typename T, typename ParseFn>
  Result<std::optional<T>> one(Statement& s, ParseFn parse) {
    auto rows = collect<T>(s, parse);
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return std::optional<T>();
    return std::optional<T>(std::move(rows->front()));
  }

  Result<int64_t> nextCounter(const char* sql, const std::string& key) {
    auto s = Statement::prepare(db_.get(), sql);
    if (!s.ok()) return s.error();
    s->text(key);
    auto row = s->step();
    if (!row.ok()) return row.error();
    if (!*row) return corrupt("counter for " + key);
    const int64_t value = s->columnInt(0);
    SHADAN_RETURN_IF_ERROR(s->run());  // finish the statement so the write completes
    return value;
  }

  DbPtr db_;
};

Result<ControllerStorePtr> openSqliteControllerStore(const std::string& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) {
    return makeError(ErrorCode::kState,
                     "cannot create state directory " + state_dir + ": " + ec.message());
  }
  ::chmod(state_dir.c_str(), 0700);
  const std::string path = (std::filesystem::path(state_dir) / "controller.db").string();
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw, &sqlite3_close_v2);
  if (rc != SQLITE_OK) return sqliteError(db.get(), "open " + path);
  sqlite3_busy_timeout(db.get(), 5000);
  SHADAN_RETURN_IF_ERROR(exec(db.get(), "PRAGMA journal_mode=WAL"));
  SHADAN_RETURN_IF_ERROR(exec(db.get(), "PRAGMA synchronous=FULL"));
  SHADAN_RETURN_IF_ERROR(exec(db.get(), "PRAGMA foreign_keys=ON"));
  SHADAN_RETURN_IF_ERROR(exec(db.get(), kSchema));
  return ControllerStorePtr(std::make_unique<SqliteControllerStore>(std::move(db)));
}

}  // namespace shadan

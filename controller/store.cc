#include "controller/store.h"

#include <sys/stat.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>

#include "common/sqlite.h"
#include "controller/store_documents.h"
#include "controller/store_records.h"

namespace shadan::controller {
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
  updated        INTEGER NOT NULL,
  scope          TEXT NOT NULL DEFAULT 'segment'
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

// Every statement names what it is for; errors read "controller store: <purpose>: <why>".
Result<SqliteStatement> prepare(sqlite3* db, std::string_view sql, const char* purpose) {
  return SqliteStatement::prepare(db, sql, std::string("controller store: ") + purpose);
}

template <typename T, typename ParseFn>
Result<std::vector<T>> collect(SqliteStatement& statement, ParseFn parse) {
  std::vector<T> out;
  SHADAN_RETURN_IF_ERROR(statement.forEachRow([&](const SqliteStatement& row) -> Status {
    SHADAN_ASSIGN_OR_RETURN(auto item, parse(row));
    out.push_back(std::move(item));
    return okStatus();
  }));
  return out;
}

template <typename T, typename ParseFn>
Result<std::optional<T>> one(SqliteStatement& statement, ParseFn parse) {
  SHADAN_ASSIGN_OR_RETURN(auto rows, collect<T>(statement, parse));
  if (rows.empty()) return std::optional<T>();
  return std::optional<T>(std::move(rows.front()));
}

Error corrupt(const std::string& what) {
  return makeError(ErrorCode::kState, "controller store: corrupt " + what);
}

template <typename Enum>
Result<Enum> enumOrCorrupt(std::optional<Enum> value, const std::string& name, const char* what) {
  if (!value) return corrupt(std::string(what) + " " + name);
  return *value;
}

constexpr const char* kAgentColumns =
    "agent_id, keyid, public_key, status, first_seen, last_seen, last_state";
Result<AgentRecord> agentFromRow(const SqliteStatement& s) {
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
  SHADAN_ASSIGN_OR_RETURN(auto status, enumOrCorrupt(parseAgentStatus(s.columnText(3)),
                                                     s.columnText(3), "agent status"));
  agent.status = status;
  agent.first_seen_ms = s.columnInt64(4);
  agent.last_seen_ms = s.columnInt64(5);
  agent.last_state_json = s.columnText(6);
  return agent;
}

constexpr const char* kOrderColumns =
    "command_id, action, segment, profile, requested_by, reason, ticket, drill, state, "
    "authz_payload, authz_envelope, targets, expires_at, created, updated, scope";
Result<OrderRecord> orderFromRow(const SqliteStatement& s) {
  OrderRecord order;
  order.command_id = s.columnText(0);
  order.action = s.columnText(1);
  order.segment = s.columnText(2);
  order.profile = s.columnText(3);
  order.requested_by = s.columnText(4);
  order.reason = s.columnText(5);
  order.ticket = s.columnOptionalText(6);
  order.drill = s.columnInt64(7) != 0;
  SHADAN_ASSIGN_OR_RETURN(
      auto state, enumOrCorrupt(parseOrderState(s.columnText(8)), s.columnText(8), "order state"));
  order.state = state;
  order.authz_payload = s.columnText(9);
  order.authz_envelope = s.columnText(10);
  json targets = json::parse(s.columnText(11), nullptr, false);
  if (!targets.is_array()) return corrupt("targets of order " + order.command_id);
  for (const auto& target : targets) {
    if (!target.is_string()) return corrupt("targets of order " + order.command_id);
    order.targets.push_back(target.get<std::string>());
  }
  order.expires_at_ms = s.columnInt64(12);
  order.created_ms = s.columnInt64(13);
  order.updated_ms = s.columnInt64(14);
  const std::optional<IsolationScope> scope = parseIsolationScope(s.columnText(15));
  if (!scope) return corrupt("scope of order " + order.command_id);
  order.scope = *scope;
  return order;
}

constexpr const char* kDispatchColumns =
    "agent_id, command_id, seq, envelope, envelope_expires, state, ack_json, created, sent, "
    "updated";
Result<DispatchRecord> dispatchFromRow(const SqliteStatement& s) {
  DispatchRecord dispatch;
  dispatch.agent_id = s.columnText(0);
  dispatch.command_id = s.columnText(1);
  dispatch.seq = s.columnInt64(2);
  dispatch.envelope = s.columnText(3);
  dispatch.envelope_expires_ms = s.columnInt64(4);
  SHADAN_ASSIGN_OR_RETURN(auto state, enumOrCorrupt(parseDispatchState(s.columnText(5)),
                                                    s.columnText(5), "dispatch state"));
  dispatch.state = state;
  dispatch.ack_json = s.columnText(6);
  dispatch.created_ms = s.columnInt64(7);
  dispatch.sent_ms = s.columnInt64(8);
  dispatch.updated_ms = s.columnInt64(9);
  return dispatch;
}

constexpr const char* kApprovalColumns =
    "approval_id, command_id, payload_type, payload, rule, needed, signatures, state, created, "
    "expires";
Result<ApprovalRecord> approvalFromRow(const SqliteStatement& s) {
  ApprovalRecord approval;
  approval.approval_id = s.columnText(0);
  approval.command_id = s.columnText(1);
  approval.payload_type = s.columnText(2);
  approval.payload = s.columnText(3);
  approval.rule = s.columnText(4);
  approval.needed = static_cast<int>(s.columnInt64(5));
  auto signatures = signaturesFromJson(json::parse(s.columnText(6), nullptr, false));
  if (!signatures) return corrupt("signatures of approval " + approval.approval_id);
  approval.signatures = std::move(*signatures);
  SHADAN_ASSIGN_OR_RETURN(auto state, enumOrCorrupt(parseApprovalState(s.columnText(7)),
                                                    s.columnText(7), "approval state"));
  approval.state = state;
  approval.created_ms = s.columnInt64(8);
  approval.expires_ms = s.columnInt64(9);
  return approval;
}

std::string sqlSelect(const char* columns, const char* rest) {
  return std::string("SELECT ") + columns + " " + rest;
}

// A store made before the escalation ladder has no orders.scope: add it, every existing order
// being a segment order (CREATE TABLE IF NOT EXISTS leaves an existing table as it was).
Status addOrderScopeColumn(sqlite3* db) {
  SHADAN_ASSIGN_OR_RETURN(
      auto s, prepare(db, "SELECT 1 FROM pragma_table_info('orders') WHERE name = 'scope'",
                      "look for orders.scope"));
  SHADAN_ASSIGN_OR_RETURN(auto found, s.step());
  SHADAN_RETURN_IF_ERROR(s.run());
  if (found == SqliteStep::kRow) return okStatus();
  return sqliteExec(db, "ALTER TABLE orders ADD COLUMN scope TEXT NOT NULL DEFAULT 'segment'",
                    "controller store: add orders.scope");
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
  explicit SqliteControllerStore(SqliteDbPtr db) : db_(std::move(db)) {}

  Status transaction(const std::function<Status()>& fn) override {
    if (!transaction_statements_) {
      auto prepared = SqliteTransactionStatements::prepare(db_.get());
      if (!prepared.ok()) return prepared.error().withContext("controller store");
      transaction_statements_.emplace(std::move(*prepared));
    }
    auto txn = SqliteTransaction::begin(*transaction_statements_);
    if (!txn.ok()) return txn.error().withContext("controller store");
    SHADAN_RETURN_IF_ERROR(fn());  // the guard rolls back
    if (auto committed = txn->commit(); !committed.ok()) {
      return committed.error().withContext("controller store");
    }
    return okStatus();
  }

  Result<std::optional<AgentRecord>> getAgent(const std::string& agent_id) override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s, cached(sqlSelect(kAgentColumns, "FROM agents WHERE agent_id = ?1"), "get agent"));
    s->bindText(1, agent_id);
    return one<AgentRecord>(*s, agentFromRow);
  }

  Status putAgent(const AgentRecord& agent) override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s, cached("INSERT OR REPLACE INTO agents (agent_id, keyid, public_key, status, "
                       "first_seen, last_seen, last_state) VALUES (?1,?2,?3,?4,?5,?6,?7)",
                       "put agent"));
    std::optional<std::string> key;
    if (agent.public_key) key = base64Encode(*agent.public_key);
    return s->bindText(1, agent.agent_id)
        .bindText(2, agent.keyid)
        .bindOptionalText(3, key)
        .bindText(4, agentStatusName(agent.status))
        .bindInt64(5, agent.first_seen_ms)
        .bindInt64(6, agent.last_seen_ms)
        .bindText(7, agent.last_state_json)
        .run();
  }

  Result<std::vector<AgentRecord>> listAgents() override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s, cached(sqlSelect(kAgentColumns, "FROM agents ORDER BY agent_id"), "list agents"));
    return collect<AgentRecord>(*s, agentFromRow);
  }

  Result<int64_t> nextSeq(const std::string& agent_id) override {
    return nextCounter(
        "INSERT INTO agent_seq (agent_id, seq) VALUES (?1, 1) "
        "ON CONFLICT (agent_id) DO UPDATE SET seq = seq + 1 RETURNING seq",
        "next seq", agent_id);
  }

  Result<int64_t> nextSegmentGen(const std::string& key) override {
    return nextCounter(
        "INSERT INTO segments (segment, gen) VALUES (?1, 1) "
        "ON CONFLICT (segment) DO UPDATE SET gen = gen + 1 RETURNING gen",
        "next segment generation", key);
  }

  Status putSegment(const SegmentRecord& segment) override {
    SHADAN_ASSIGN_OR_RETURN(auto s, cached("INSERT OR REPLACE INTO segments (segment, gen, "
                                           "isolated, profile) VALUES (?1,?2,?3,?4)",
                                           "put segment"));
    return s->bindText(1, segment.segment)
        .bindInt64(2, segment.gen)
        .bindInt64(3, segment.isolated ? 1 : 0)
        .bindText(4, segment.profile)
        .run();
  }

  Result<std::vector<SegmentRecord>> listSegments() override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s, cached("SELECT segment, gen, isolated, profile FROM segments ORDER BY segment",
                       "list segments"));
    return collect<SegmentRecord>(*s, [](const SqliteStatement& row) -> Result<SegmentRecord> {
      return SegmentRecord{row.columnText(0), row.columnInt64(1), row.columnInt64(2) != 0,
                           row.columnText(3)};
    });
  }

  Result<std::optional<OrderRecord>> getOrder(const std::string& command_id) override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s, cached(sqlSelect(kOrderColumns, "FROM orders WHERE command_id = ?1"), "get order"));
    s->bindText(1, command_id);
    return one<OrderRecord>(*s, orderFromRow);
  }

  Status putOrder(const OrderRecord& order) override {
    auto s = cached(
        "INSERT INTO orders (command_id, action, segment, profile, requested_by, reason, ticket, "
        "drill, state, authz_payload, authz_envelope, targets, expires_at, created, updated, "
        "scope) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16) "
        "ON CONFLICT (command_id) DO UPDATE SET "
        "action = excluded.action, segment = excluded.segment, scope = excluded.scope, "
        "profile = excluded.profile, "
        "requested_by = excluded.requested_by, reason = excluded.reason, "
        "ticket = excluded.ticket, drill = excluded.drill, state = excluded.state, "
        "authz_payload = excluded.authz_payload, authz_envelope = excluded.authz_envelope, "
        "targets = excluded.targets, expires_at = excluded.expires_at, "
        "created = excluded.created, updated = excluded.updated",
        "put order");
    if (!s.ok()) return s.error();
    return (*s)
        ->bindText(1, order.command_id)
        .bindText(2, order.action)
        .bindText(3, order.segment)
        .bindText(4, order.profile)
        .bindText(5, order.requested_by)
        .bindText(6, order.reason)
        .bindOptionalText(7, order.ticket)
        .bindInt64(8, order.drill ? 1 : 0)
        .bindText(9, orderStateName(order.state))
        .bindBlob(10, order.authz_payload)
        .bindText(11, order.authz_envelope)
        .bindText(12, json(order.targets).dump())
        .bindInt64(13, order.expires_at_ms)
        .bindInt64(14, order.created_ms)
        .bindInt64(15, order.updated_ms)
        .bindText(16, isolationScopeName(order.scope))
        .run();
  }

  Result<std::vector<OrderRecord>> listOrders(size_t limit) override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s,
        cached(sqlSelect(kOrderColumns, "FROM orders ORDER BY id DESC LIMIT ?1"), "list orders"));
    s->bindInt64(1, static_cast<int64_t>(limit));
    return collect<OrderRecord>(*s, orderFromRow);
  }

  Status putDispatch(const DispatchRecord& d) override {
    auto s = cached(
        "INSERT INTO dispatches (agent_id, command_id, seq, envelope, envelope_expires, state, "
        "ack_json, created, sent, updated) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) "
        "ON CONFLICT (agent_id, command_id) DO UPDATE SET seq = excluded.seq, "
        "envelope = excluded.envelope, envelope_expires = excluded.envelope_expires, "
        "state = excluded.state, ack_json = excluded.ack_json, created = excluded.created, "
        "sent = excluded.sent, updated = excluded.updated",
        "put dispatch");
    if (!s.ok()) return s.error();
    return (*s)
        ->bindText(1, d.agent_id)
        .bindText(2, d.command_id)
        .bindInt64(3, d.seq)
        .bindText(4, d.envelope)
        .bindInt64(5, d.envelope_expires_ms)
        .bindText(6, dispatchStateName(d.state))
        .bindText(7, d.ack_json)
        .bindInt64(8, d.created_ms)
        .bindInt64(9, d.sent_ms)
        .bindInt64(10, d.updated_ms)
        .run();
  }

  Result<std::map<std::string, int64_t>> orderCounts() override {
    return countByState("SELECT state, COUNT(*) FROM orders GROUP BY state", "count orders");
  }

  Result<std::map<std::string, int64_t>> dispatchCounts() override {
    return countByState("SELECT state, COUNT(*) FROM dispatches GROUP BY state",
                        "count dispatches");
  }

  Result<std::vector<DispatchRecord>> dispatchesForOrder(const std::string& command_id) override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s, cached(sqlSelect(kDispatchColumns,
                                 "FROM dispatches WHERE command_id = ?1 ORDER BY agent_id"),
                       "dispatches of order"));
    s->bindText(1, command_id);
    return collect<DispatchRecord>(*s, dispatchFromRow);
  }

  Result<std::vector<DispatchRecord>> pendingDispatches(const std::string& agent_id) override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s, cached(sqlSelect(kDispatchColumns,
                                 "FROM dispatches WHERE agent_id = ?1 AND state = 'pending' "
                                 "ORDER BY id"),
                       "pending dispatches of agent"));
    s->bindText(1, agent_id);
    return collect<DispatchRecord>(*s, dispatchFromRow);
  }

  Result<std::vector<DispatchRecord>> allPendingDispatches() override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s,
        cached(sqlSelect(kDispatchColumns, "FROM dispatches WHERE state = 'pending' ORDER BY id"),
               "pending dispatches"));
    return collect<DispatchRecord>(*s, dispatchFromRow);
  }

  Result<std::optional<DispatchRecord>> dispatchBySeq(const std::string& agent_id,
                                                      int64_t seq) override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s,
        cached(sqlSelect(kDispatchColumns, "FROM dispatches WHERE agent_id = ?1 AND seq = ?2"),
               "dispatch by seq"));
    s->bindText(1, agent_id).bindInt64(2, seq);
    return one<DispatchRecord>(*s, dispatchFromRow);
  }

  Result<std::optional<ApprovalRecord>> getApproval(const std::string& approval_id) override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s, cached(sqlSelect(kApprovalColumns, "FROM approvals WHERE approval_id = ?1"),
                       "get approval"));
    s->bindText(1, approval_id);
    return one<ApprovalRecord>(*s, approvalFromRow);
  }

  Status putApproval(const ApprovalRecord& a) override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s,
        cached(
            "INSERT OR REPLACE INTO approvals (approval_id, command_id, payload_type, payload, "
            "rule, "
            "needed, signatures, state, created, expires) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
            "put approval"));
    return s->bindText(1, a.approval_id)
        .bindText(2, a.command_id)
        .bindText(3, a.payload_type)
        .bindBlob(4, a.payload)
        .bindText(5, a.rule)
        .bindInt64(6, a.needed)
        .bindText(7, signaturesToJson(a.signatures).dump())
        .bindText(8, approvalStateName(a.state))
        .bindInt64(9, a.created_ms)
        .bindInt64(10, a.expires_ms)
        .run();
  }

  Result<std::vector<ApprovalRecord>> pendingApprovals() override {
    SHADAN_ASSIGN_OR_RETURN(
        auto s, cached(sqlSelect(kApprovalColumns,
                                 "FROM approvals WHERE state = 'pending' ORDER BY created"),
                       "pending approvals"));
    return collect<ApprovalRecord>(*s, approvalFromRow);
  }

  Status putDocument(const StoredDocument& document) override {
    return putStoredDocument(db_.get(), document);
  }
  Result<std::optional<StoredDocument>> getDocument(const std::string& kind,
                                                    const std::string& id) override {
    return getStoredDocument(db_.get(), kind, id);
  }
  Result<std::vector<StoredDocument>> openDocuments(const std::string& kind) override {
    return openStoredDocuments(db_.get(), kind);
  }

 private:
  // An upsert RETURNING the new value of a counter.
  Result<int64_t> nextCounter(const char* sql, const char* purpose, const std::string& key) {
    SHADAN_ASSIGN_OR_RETURN(auto s, cached(sql, purpose));
    s->bindText(1, key);
    SHADAN_ASSIGN_OR_RETURN(auto row, s->step());
    if (row != SqliteStep::kRow) return corrupt("counter for " + key);
    const int64_t value = s->columnInt64(0);
    SHADAN_RETURN_IF_ERROR(s->run());  // finish the statement so the write completes
    return value;
  }

  // A statement from the cache, reset (bindings cleared, its read finished) when this goes.
  class Cached {
   public:
    explicit Cached(SqliteStatement& statement) : statement_(&statement) {}
    Cached(Cached&& other) noexcept : statement_(std::exchange(other.statement_, nullptr)) {}
    Cached& operator=(Cached&&) = delete;
    ~Cached() {
      if (statement_ != nullptr) statement_->reset();
    }
    SqliteStatement* operator->() const { return statement_; }
    SqliteStatement& operator*() const { return *statement_; }

   private:
    SqliteStatement* statement_;
  };

  Result<std::map<std::string, int64_t>> countByState(std::string_view sql, const char* purpose) {
    SHADAN_ASSIGN_OR_RETURN(auto s, cached(sql, purpose));
    std::map<std::string, int64_t> counts;
    SHADAN_RETURN_IF_ERROR(s->forEachRow([&](const SqliteStatement& row) -> Status {
      counts[row.columnText(0)] = row.columnInt64(1);
      return okStatus();
    }));
    return counts;
  }

  // Compiled once per connection: compiling an INSERT cost more than running it, and a fan-out
  // to thousands of gateways runs the same few statements thousands of times.
  Result<Cached> cached(std::string_view sql, const char* purpose) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
      SHADAN_ASSIGN_OR_RETURN(auto statement, prepare(db_.get(), sql, purpose));
      it = statements_.emplace(std::string(sql), std::move(statement)).first;
    }
    return Cached(it->second);
  }

  SqliteDbPtr db_;
  // Finalized before the connection closes (declared after it).
  std::map<std::string, SqliteStatement, std::less<>> statements_;
  std::optional<SqliteTransactionStatements> transaction_statements_;
};

Result<std::vector<std::optional<AgentRecord>>> ControllerStore::getAgents(
    const std::vector<std::string>& agent_ids) {
  std::vector<std::optional<AgentRecord>> out;
  out.reserve(agent_ids.size());
  for (const std::string& agent_id : agent_ids) {
    SHADAN_ASSIGN_OR_RETURN(auto agent, getAgent(agent_id));
    out.push_back(std::move(agent));
  }
  return out;
}

Result<std::vector<ControllerStore::AckSubject>> ControllerStore::ackSubjects(
    const std::vector<AckQuery>& queries) {
  std::vector<AckSubject> out(queries.size());
  for (size_t i = 0; i < queries.size(); ++i) {
    SHADAN_ASSIGN_OR_RETURN(out[i].agent, getAgent(queries[i].agent_id));
    if (queries[i].seq <= 0) continue;  // no dispatch has a seq before it is sent
    SHADAN_ASSIGN_OR_RETURN(out[i].dispatch, dispatchBySeq(queries[i].agent_id, queries[i].seq));
  }
  return out;
}

Status ControllerStore::notePresence(const std::vector<std::string>&,
                                     const std::vector<std::string>&) {
  return okStatus();
}

Status ControllerStore::keepPresence() { return okStatus(); }

Result<std::map<std::string, std::string>> ControllerStore::presence() {
  return std::map<std::string, std::string>{};
}

Result<std::vector<std::vector<DispatchRecord>>> ControllerStore::pendingDispatchesOf(
    const std::vector<std::string>& agent_ids) {
  std::vector<std::vector<DispatchRecord>> out;
  out.reserve(agent_ids.size());
  for (const std::string& agent_id : agent_ids) {
    SHADAN_ASSIGN_OR_RETURN(auto pending, pendingDispatches(agent_id));
    out.push_back(std::move(pending));
  }
  return out;
}

Result<std::vector<int64_t>> ControllerStore::nextSeqs(const std::vector<std::string>& agent_ids) {
  std::vector<int64_t> out;
  out.reserve(agent_ids.size());
  for (const std::string& agent_id : agent_ids) {
    SHADAN_ASSIGN_OR_RETURN(const int64_t seq, nextSeq(agent_id));
    out.push_back(seq);
  }
  return out;
}

Result<ControllerStore::PendingCreated> ControllerStore::pendingCreatedSince(int64_t) {
  return PendingCreated{};
}

Status makeControllerStateDir(const std::filesystem::path& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) {
    return makeError(ErrorCode::kState,
                     "cannot create state directory " + state_dir.string() + ": " + ec.message());
  }
  ::chmod(state_dir.c_str(), 0700);
  return okStatus();
}

Result<ControllerStorePtr> openSqliteControllerStore(const std::string& state_dir) {
  SHADAN_RETURN_IF_ERROR(makeControllerStateDir(state_dir));
  const std::string path = (std::filesystem::path(state_dir) / "controller.db").string();
  auto db = openSqliteDb(path, std::chrono::milliseconds(5000));
  if (!db.ok()) return db.error().withContext("controller store");
  sqlite3* handle = db->get();
  SHADAN_RETURN_IF_ERROR(sqliteExec(handle, "PRAGMA journal_mode=WAL", "controller store"));
  SHADAN_RETURN_IF_ERROR(sqliteExec(handle, "PRAGMA synchronous=FULL", "controller store"));
  SHADAN_RETURN_IF_ERROR(sqliteExec(handle, "PRAGMA foreign_keys=ON", "controller store"));
  SHADAN_RETURN_IF_ERROR(sqliteExec(handle, kSchema, "controller store: schema"));
  SHADAN_RETURN_IF_ERROR(addOrderScopeColumn(handle));
  SHADAN_RETURN_IF_ERROR(createDocumentsTable(handle));
  return ControllerStorePtr(std::make_unique<SqliteControllerStore>(std::move(db).value()));
}

}  // namespace shadan::controller

#pragma once

// The controller's persisted state behind one interface (leveldb's Env idea), so an etcd or
// Raft store can replace SQLite later without touching the order logic.
//
// Contracts:
//   - Every write is durable when it returns (SQLite: WAL, synchronous=FULL).
//   - transaction(fn) runs fn and commits all of its writes at once, or none if fn fails.
//     Transactions do not nest.
//   - Not thread-safe: the controller calls it from its one io_context thread.
//   - Times are Unix milliseconds.
//   - A store on the network (etcd) fails with kUnavailable and a message that starts with
//     kStoreUnavailable when it could not reach its backend and nothing was written, and with
//     kStoreOutcomeUnknown when a commit was sent and whether it took effect could not be
//     learnt (the backend stopped answering mid-write). The API and the audit tell them apart.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/dsse.h"
#include "common/ed25519.h"
#include "common/isolation_scope.h"
#include "common/result.h"

namespace shadan::controller {

inline constexpr std::string_view kStoreUnavailable = "controller store unavailable";
inline constexpr std::string_view kStoreOutcomeUnknown = "controller store outcome unknown";

enum class AgentStatus { kPending, kApproved };
const char* agentStatusName(AgentStatus status);

struct AgentRecord {
  std::string agent_id;
  std::string keyid;                           // the key the agent presented in its hello
  std::optional<Ed25519PublicKey> public_key;  // known once the trust file lists the keyid
  AgentStatus status = AgentStatus::kPending;
  int64_t first_seen_ms = 0;
  int64_t last_seen_ms = 0;
  std::string last_state_json;  // state_after of the last verified ack ("" if none)

  bool operator==(const AgentRecord&) const = default;
};

enum class OrderState { kAwaitingApproval, kDispatched, kExpired };
const char* orderStateName(OrderState state);

struct OrderRecord {
  std::string command_id;
  std::string action;  // "isolate" | "restore"
  // The rung; hosts and link_down are in the authz payload. Orders stored before the ladder
  // read back as kSegment.
  IsolationScope scope = IsolationScope::kSegment;
  std::string segment;  // segment and host orders; "" for uplink and island
  std::string profile;
  std::string requested_by;
  std::string reason;
  std::optional<std::string> ticket;
  bool drill = false;
  OrderState state = OrderState::kAwaitingApproval;
  std::string authz_payload;   // the exact authz bytes (what operators sign)
  std::string authz_envelope;  // serialised DSSE envelope once signed; "" while awaiting
  std::vector<std::string> targets;
  int64_t expires_at_ms = 0;  // of the authz
  int64_t created_ms = 0;
  int64_t updated_ms = 0;

  bool operator==(const OrderRecord&) const = default;
};

enum class DispatchState { kPending, kApplied, kAlreadyApplied, kFailed, kRejected, kExpired };
const char* dispatchStateName(DispatchState state);

struct DispatchRecord {
  std::string agent_id;
  std::string command_id;
  int64_t seq = 0;       // 0 until first signed for delivery
  std::string envelope;  // serialised dispatch DSSE envelope; "" until first signed
  int64_t envelope_expires_ms = 0;
  DispatchState state = DispatchState::kPending;
  std::string ack_json;  // the verified ack payload ("" until acked)
  int64_t created_ms = 0;
  int64_t sent_ms = 0;  // last delivery attempt, 0 if never
  int64_t updated_ms = 0;

  bool operator==(const DispatchRecord&) const = default;
};

enum class ApprovalState { kPending, kComplete, kExpired };
const char* approvalStateName(ApprovalState state);

struct ApprovalRecord {
  std::string approval_id;  // equals the order's command_id
  std::string command_id;
  std::string payload_type;
  std::string payload;  // the exact authz bytes to sign
  std::string rule;     // "restore" | "isolate" | "isolate_protected"
  int needed = 0;
  std::vector<DsseSignature> signatures;  // verified operator signatures, in arrival order
  ApprovalState state = ApprovalState::kPending;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;

  bool operator==(const ApprovalRecord&) const = default;
};

// One generation counter and what was last ordered under it. `segment` is the generationKey()
// of the rung: a segment's name, "host:<segment>" for the hosts of a segment, "@uplink",
// "@island". For a host key `isolated` says the last dispatched host order was an isolate (other
// hosts of the segment may be quarantined either way).
struct SegmentRecord {
  std::string segment;
  int64_t gen = 0;
  bool isolated = false;  // as last ordered (dispatched), not as acked
  std::string profile;

  bool operator==(const SegmentRecord&) const = default;
};

// A small JSON document by kind and id, for state that is not an order: the alert responder's
// automatic actions and its circuit breaker (controller/alert_responder.h). `open` marks the
// documents still in play; openDocuments() lists those of a kind, oldest first.
struct StoredDocument {
  std::string kind;
  std::string id;
  std::string body;  // JSON text
  bool open = false;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;

  bool operator==(const StoredDocument&) const = default;
};

class ControllerStore {
 public:
  virtual ~ControllerStore() = default;

  virtual Status transaction(const std::function<Status()>& fn) = 0;

  virtual Result<std::optional<AgentRecord>> getAgent(const std::string& agent_id) = 0;
  virtual Status putAgent(const AgentRecord& agent) = 0;
  virtual Result<std::vector<AgentRecord>> listAgents() = 0;
  // getAgent() of each (nullopt for one not enrolled), in the order asked: a fan-out's reads
  // together (on etcd a round trip per few dozen agents, not one per agent).
  virtual Result<std::vector<std::optional<AgentRecord>>> getAgents(
      const std::vector<std::string>& agent_ids);

  // The next seq for `agent_id` (1, 2, ...), persisted before it is returned.
  virtual Result<int64_t> nextSeq(const std::string& agent_id) = 0;
  // nextSeq() of each in turn (an agent named twice gets two seqs), read together.
  virtual Result<std::vector<int64_t>> nextSeqs(const std::vector<std::string>& agent_ids);

  // The next generation of `key` (1, 2, ...), persisted before it is returned. `key` is a
  // generationKey() (common/isolation_scope.h); for a segment order, the segment's name.
  virtual Result<int64_t> nextSegmentGen(const std::string& key) = 0;
  virtual Status putSegment(const SegmentRecord& segment) = 0;
  virtual Result<std::vector<SegmentRecord>> listSegments() = 0;

  virtual Result<std::optional<OrderRecord>> getOrder(const std::string& command_id) = 0;
  virtual Status putOrder(const OrderRecord& order) = 0;
  // Most recent first.
  virtual Result<std::vector<OrderRecord>> listOrders(size_t limit) = 0;

  virtual Status putDispatch(const DispatchRecord& dispatch) = 0;
  virtual Result<std::vector<DispatchRecord>> dispatchesForOrder(const std::string& command_id) = 0;
  // How many orders and how many dispatches there are in each state (orderStateName(),
  // dispatchStateName() → count; states without any are absent), for the metrics.
  virtual Result<std::map<std::string, int64_t>> orderCounts() = 0;
  virtual Result<std::map<std::string, int64_t>> dispatchCounts() = 0;
  // Pending dispatches of one agent in creation order (the order they must be delivered in).
  virtual Result<std::vector<DispatchRecord>> pendingDispatches(const std::string& agent_id) = 0;
  virtual Result<std::vector<DispatchRecord>> allPendingDispatches() = 0;
  // Presence: which controller each agent's session is on, so that `status` on any controller
  // of a cluster shows the whole fleet connected. notePresence() records this controller's
  // sessions (agents connected here now, agents whose session here ended: a record another
  // controller has written since is left alone); keepPresence() keeps its records alive and
  // is called often (the 200 ms look): on etcd they live under a lease of this store's, so a
  // controller that dies or loses etcd takes its records with it within the lease's TTL, and
  // they are written again once it has a lease again. presence() answers every controller's
  // records, agent → controller name. These defaults keep none and answer none: a store of one
  // controller (SQLite), whose own sessions are the whole truth.
  virtual Status notePresence(const std::vector<std::string>& connected,
                              const std::vector<std::string>& gone);
  virtual Status keepPresence();
  virtual Result<std::map<std::string, std::string>> presence();
  // pendingDispatches() of each of `agent_ids`, one list per id, in order. A store that can
  // read many agents' lists in a round trip (etcd) overrides this default, which asks
  // pendingDispatches() for each: what makes a delivery to hundreds of agents, or the status
  // of a fleet, cost a few round trips instead of two per agent.
  virtual Result<std::vector<std::vector<DispatchRecord>>> pendingDispatchesOf(
      const std::vector<std::string>& agent_ids);
  virtual Result<std::optional<DispatchRecord>> dispatchBySeq(const std::string& agent_id,
                                                              int64_t seq) = 0;
  // What an ack of `seq` from `agent_id` is checked against: getAgent(agent_id) and
  // dispatchBySeq(agent_id, seq) (none for seq 0). `command_id`, when the ack names one, lets a
  // store read both with the other acks' in a round trip (etcd); the answer is the same
  // either way. One subject per query, in order.
  struct AckQuery {
    std::string agent_id;
    int64_t seq = 0;
    std::optional<std::string> command_id;
  };
  struct AckSubject {
    std::optional<AgentRecord> agent;
    std::optional<DispatchRecord> dispatch;
  };
  virtual Result<std::vector<AckSubject>> ackSubjects(const std::vector<AckQuery>& queries);
  // Pending dispatches created after `cursor`, in creation order, as (agent_id, command_id),
  // and the cursor to pass next time; cursor 0: none, only where to start. For a store that
  // several controllers share (etcd): each delivers to its own connected agents what another
  // created. A store of one controller (SQLite) answers none: that controller delivers what it
  // creates itself.
  struct PendingCreated {
    std::vector<std::pair<std::string, std::string>> dispatches;
    int64_t cursor = 0;
  };
  virtual Result<PendingCreated> pendingCreatedSince(int64_t cursor);

  virtual Result<std::optional<ApprovalRecord>> getApproval(const std::string& approval_id) = 0;
  virtual Status putApproval(const ApprovalRecord& approval) = 0;
  virtual Result<std::vector<ApprovalRecord>> pendingApprovals() = 0;

  // Inserts or replaces the document (kind, id); `created_ms` is kept from the first put.
  virtual Status putDocument(const StoredDocument& document) = 0;
  virtual Result<std::optional<StoredDocument>> getDocument(const std::string& kind,
                                                            const std::string& id) = 0;
  virtual Result<std::vector<StoredDocument>> openDocuments(const std::string& kind) = 0;
};

using ControllerStorePtr = std::unique_ptr<ControllerStore>;

// Orders read from the store at most once each, for one pass over many dispatches: an order's
// record lists every target, so reading it per dispatch made a pass over a fan-out to
// thousands of gateways quadratic. A record stays at its address for the reader's life.
class OrderReader {
 public:
  explicit OrderReader(ControllerStore& store) : store_(store) {}
  // The order, or nullptr when the store has none.
  Result<const OrderRecord*> get(const std::string& command_id) {
    auto known = orders_.find(command_id);
    if (known == orders_.end()) {
      SHADAN_ASSIGN_OR_RETURN(auto order, store_.getOrder(command_id));
      known = orders_.emplace(command_id, std::move(order)).first;
    }
    return known->second ? &*known->second : nullptr;
  }

 private:
  ControllerStore& store_;
  std::map<std::string, std::optional<OrderRecord>> orders_;
};

// <state_dir>/controller.db, created (directory 0700) if missing.
class SqliteControllerStore;
Result<ControllerStorePtr> openSqliteControllerStore(const std::string& state_dir);
// Creates the controller's state directory if missing and makes it 0700 (every store: the audit
// log lives there whatever holds the records).
Status makeControllerStateDir(const std::filesystem::path& state_dir);

}  // namespace shadan::controller

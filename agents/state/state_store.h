#pragma once

// The agent's persisted desired state: which isolations must hold on this gateway. The kernel
// is made to match it; it survives crashes and reboots (the daemon re-applies it at start).
//
// Implementations: SqliteStateStore (the state directory); unit tests use an in-memory fake.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agents/orders/order_verifier.h"
#include "agents/planner/planner.h"
#include "common/result.h"

namespace shadan::agent {

struct ActiveIsolation {
  Isolation isolation;
  int64_t since_unix_ms = 0;
  std::optional<int64_t> expires_unix_ms;  // timed cuts and drills
  std::string origin;                      // "local-cli", later "order:<command_id>"
  bool drill = false;                      // a rehearsal (always with a deadline)
  // uplink only: the policy's link_down interfaces are also held administratively down.
  bool link_down = false;
  // Applied by an automatic isolate (an automatic response, Authz::automatic) and not ordered
  // since by anything that is not: only such an isolation may be lifted by a release (see
  // mergeIsolations and firstNotReleasable in agents/ladder.h).
  bool automatic = false;
  friend bool operator==(const ActiveIsolation&, const ActiveIsolation&) = default;
};

struct DesiredState {
  std::vector<ActiveIsolation> isolations;  // sorted by isolation (operator<), unique
  // SHA-256 of our table as read back after the last successful apply ("" if never applied):
  // lets `status` tell an intact table from one someone changed.
  std::string applied_ruleset_sha256;
  // Replay and order protection for signed orders (PROTOCOL.md step 8): last dispatch seq, the
  // command ids seen, each segment's last generation. Persisted in the same transaction as the
  // isolations. Command ids are forgotten once their authz can no longer be accepted
  // (CommandIdSet::forgetExpired, commandIdForgetAfterMs).
  AgentReplayState replay;
  // The version of the trust file this agent holds: it never accepts an older one.
  int64_t trust_version = 0;

  std::vector<Isolation> isolationPairs() const;
  // Binary search (the list is sorted); nullptr when `isolation` is not active.
  const ActiveIsolation* find(const Isolation& isolation) const;
  bool contains(const Isolation& isolation) const;
  friend bool operator==(const DesiredState&, const DesiredState&) = default;
};

struct StoredAck {
  int64_t seq = 0;
  std::string envelope;  // the DSSE envelope, serialised
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  virtual Result<DesiredState> load() = 0;

  // Replaces the stored state in ONE durable transaction: after it returns OK the state survives
  // a crash or power loss; after an error the previous state is intact.
  virtual Status save(const DesiredState& state) = 0;

  // Like save(), atomic, but not necessarily durable yet: a crash may lose this transaction
  // (never tear it, never reorder it before an earlier one); the next save() makes it durable.
  // Only for facts that can be recomputed, such as the hash of the table the kernel holds
  // (re-read at every start), never for isolations or replay state. Stores without a cheaper
  // path keep this default.
  virtual Status saveUnsynced(const DesiredState& state) { return save(state); }

  // The signed acks of verified orders (by dispatch seq), kept so that an ack lost with a
  // connection or a restart can be sent again; the controller ignores one it already has.
  // Written like saveUnsynced(): atomic, durable with the next save(). Acks older than
  // `at_ms - keep_ms` are dropped by the same call.
  virtual Status rememberAck(int64_t seq, const std::string& envelope, int64_t at_ms,
                             int64_t keep_ms) = 0;
  // The remembered acks since `since_ms`, at most `limit`, the newest ones, in seq order.
  virtual Result<std::vector<StoredAck>> recentAcks(int64_t since_ms, size_t limit) = 0;
};

using StateStorePtr = std::unique_ptr<StateStore>;

}  // namespace shadan::agent

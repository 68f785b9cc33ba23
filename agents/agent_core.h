#pragma once

// AgentCore: the one writer of a gateway's desired state and kernel dataplane.
//
// Every way of changing what the gateway enforces — the local CLI without a daemon, the daemon's
// control socket, signed orders from the controller and break-glass files (verified by
// SignedOrders, agents/signed_orders.h, which this class owns), timers and repairs — goes
// through one AgentCore, which
//   - validates the request against the policy (segment, profile, borders) before anything else,
//   - commits the new desired state (one durable transaction), then
//   - applies it in one kernel transaction (Enforcer) and, if the kernel refuses, puts the stored
//     state back, so an error leaves state and kernel as they were.
//
// Threading: not thread-safe. It borrows its backends, which are bound to one thread; the
// caller (CLI or daemon loop) calls it from that thread only. All borrowed objects must outlive
// it. The policy is its own copy: the daemon's reload (agents/policy_reload.h) swaps it.

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agents/dataplane/conntrack_backend.h"
#include "agents/dataplane/firewall_backend.h"
#include "agents/dataplane/route_backend.h"
#include "agents/drop_counters.h"
#include "agents/enforcer.h"
#include "agents/ladder.h"
#include "agents/orders/order_verifier.h"
#include "agents/state/state_store.h"
#include "common/audit_sink.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/policy.h"
#include "common/result.h"
#include "common/trust.h"

namespace shadan::agent {

struct ChangeResult {
  bool changed = false;  // the desired state changed (false: it was already so; re-applied)
  // The desired state was already so, but the kernel did not hold it (our table was missing or
  // altered) and applying it again changed the kernel.
  bool repaired = false;
  std::string action;                  // "isolate", "restore", ... (audit `what.action`)
  std::optional<Isolation> isolation;  // what it was about, when one (the first of several hosts)
  std::vector<Isolation> isolations;   // an isolate: every isolation it asked for
  DesiredState state;                  // after the change
  EnforceReport report;                // the kernel before and after
  std::vector<Isolation> expired;      // isolations removed because their deadline passed
  std::vector<std::string> warnings;   // e.g. lockout-check findings, audit trouble
  size_t conntrack_deleted = 0;
  std::optional<AuditReceipt> audit;  // the entry recording the outcome
};

// How the kernel compares with what this agent applied last.
enum class KernelState {
  kInSync,           // our table is exactly what was applied
  kDrift,            // our table is there but differs (someone changed it)
  kMissing,          // isolations are desired but our table is gone
  kUnexpectedTable,  // nothing is desired but a table of ours is there
  kUnknown,          // the kernel could not be read
};
const char* kernelStateName(KernelState state);

struct KernelStatus {
  KernelState state = KernelState::kUnknown;
  std::optional<TableSnapshot> live;
  std::string error;  // why the kernel could not be read (kUnknown)
};

struct RepairResult {
  bool repaired = false;  // the table was re-applied
  KernelState found = KernelState::kInSync;
  std::string sha256_before;  // what was found
  std::string sha256_after;   // what is there now
};

// Who and what to blame in a repair's audit entry.
struct RepairTrigger {
  std::string reason;  // "foreign change", "events lost", "generation changed", "periodic"...
  std::optional<uint32_t> pid;
  std::optional<std::string> comm;
};

// The side effects an AgentCore works through; all borrowed, all must outlive it.
struct AgentCoreDeps {
  StateStore& store;
  FirewallBackend& firewall;
  RouteBackend& routes;
  ConntrackBackend& conntrack;
  AuditSink& audit;
  const Clock& clock;
  std::string host;     // for the audit trail's `where`
  std::string version;  // ditto
  // This agent's owner mark (ownerMark in agents/planner/planner.h), written into the table it
  // applies. With a mark set, a change or start refuses a table that carries another agent's
  // mark. Empty: no mark written, none checked.
  std::string owner_mark = {};
};

// The outcome of one signed order: the ack to send back (signed by the agent key), and what
// happened. Every order gets an ack, rejected ones included (PROTOCOL.md).
struct OrderOutcome {
  Ack ack;
  nlohmann::json ack_envelope;  // DSSE envelope object of the ack
  std::optional<OrderRejection> rejection;
  std::optional<ChangeResult> change;  // when it was carried out
};

class SignedOrders;    // agents/signed_orders.h
class PolicyReloader;  // agents/policy_reload.h

class AgentCore {
 public:
  AgentCore(const Policy& policy, std::string gateway_id, AgentCoreDeps deps);
  ~AgentCore();
  AgentCore(const AgentCore&) = delete;
  AgentCore& operator=(const AgentCore&) = delete;

  // Loads the stored desired state, drops isolations whose deadline has passed (a deadline that
  // passed while nothing ran is honoured now) and applies the rest: the fail-closed start of the
  // daemon. Either this or load() must be called once before anything else.
  Result<ChangeResult> start();

  // Loads the stored desired state without touching the kernel (one-shot local commands, which
  // then make exactly one change).
  Status load();

  Result<ChangeResult> isolate(const IsolateRequest& request);
  Result<ChangeResult> restore(const RestoreRequest& request);

  // The controller has been unreachable for longer than the grace period and the policy says
  // `on_controller_loss: revert`: lifts the drill isolations (never real ones). With nothing
  // to lift it changes nothing.
  Result<ChangeResult> revertDrills(const std::string& why);

  // Removes every isolation whose deadline is at or before now and applies. With nothing due it
  // changes nothing and touches no kernel (changed == false, report empty).
  Result<ChangeResult> expireDue();

  // The earliest deadline among the active isolations.
  std::optional<std::chrono::system_clock::time_point> nextDeadline() const;

  // Reads our table back; if it is not what was applied last (or `force`), applies the desired
  // state again, whole.
  // Every repair is audited with its trigger (and the process that changed the table, when the
  // kernel named one).
  Result<RepairResult> reconcile(bool force, const RepairTrigger& trigger = {"check", {}, {}});

  // Syncs the blackhole routes of the desired state again (after a route or link event);
  // audited when it had to change something.
  Status resyncRoutes(const std::string& reason = "route event");

  // Records a daemon-level event (start, stop, ...) in the audit trail.
  void auditEvent(const std::string& event, const std::string& outcome,
                  const std::optional<nlohmann::json>& detail = std::nullopt);

  KernelStatus kernelStatus();

  // What each active isolation's drops have dropped so far, read from the kernel now, apart
  // from kernelStatus() (whose hash must not see counters); for status. Changes nothing.
  DropCounts dropCounts() {
    std::vector<Isolation> active;
    for (const ActiveIsolation& entry : desired_.isolations) active.push_back(entry.isolation);
    return readDropCounts(firewall_, policy_, gateway_id_, active);
  }

  const DesiredState& desired() const { return desired_; }
  // Since this core was made, for the metrics: times the kernel did not hold our table and
  // reconcile() applied it again (re-applying an intact table is not one), and signed orders
  // by the result of their ack (ackResultName(): "applied", "rejected", ...).
  uint64_t repairCount() const { return repairs_; }
  const std::map<std::string, uint64_t>& orderResults() const { return order_results_; }
  const Policy& policy() const { return policy_; }
  const std::string& gatewayId() const { return gateway_id_; }
  // Now on this core's wall clock, Unix ms (deadlines are dated with it).
  int64_t nowMs() const;

  // Signed orders: these forward to SignedOrders (agents/signed_orders.h) and are defined in
  // signed_orders.cc. They need the trust file and the agent's own key: useTrust refuses a trust
  // file that is expired or older than the one this agent held before (persisted).
  Status useTrust(Trust trust, const Signer& agent_key);

  // PROTOCOL.md steps 1-9 for one dispatch envelope from the controller: verify, persist
  // (replay state and desired state in one transaction), apply, audit, and a signed ack.
  // An automatic isolate marks its new isolations automatic (mergeIsolations); a release (an
  // automatic restore) that would lift one that is not is rejected whole, nothing stored
  // (release_not_automatic).
  // The envelope as it arrived inside the already strictly parsed controller frame: verified as
  // it is, never serialised or parsed again.
  OrderOutcome handleDispatch(const nlohmann::json& envelope);
  // The envelope as text (tests, benchmarks): size-capped and strictly parsed once, then the
  // same steps. The std::string overload only keeps a std::string argument from being ambiguous
  // between the other two (json converts from a string too).
  OrderOutcome handleDispatch(std::string_view envelope_bytes);
  OrderOutcome handleDispatch(const std::string& envelope_bytes) {
    return handleDispatch(std::string_view(envelope_bytes));
  }

  // Keeps the signed ack of a verified order (applied, already applied or failed) for a day, so
  // that an ack lost with a connection or a restart can be sent again. Called after the ack is
  // on its way, off the order's path. Acks of rejected dispatches are not kept: their seq is
  // whatever an unverified dispatch claimed. A failure is logged, not returned.
  void rememberAck(const OrderOutcome& outcome);
  // The acks kept by rememberAck() (the newest kResendAcks of the last day), oldest first.
  std::vector<std::pair<int64_t, nlohmann::json>> recentAcks();
  static constexpr size_t kResendAcks = 32;
  static constexpr std::chrono::hours kKeepAcks{24};

  // Break-glass: an isolate authz signed by the breakglass threshold, from a file, no controller.
  Result<ChangeResult> applyBreakglass(std::string_view authz_envelope_bytes);

  // Would this envelope (a dispatch, or a break-glass authz) be accepted now? Changes nothing.
  OrderVerification checkEnvelope(std::string_view envelope_bytes) const;

 private:
  // SignedOrders is the signed-order half of this class, in its own file: it builds the next
  // desired state of a verified order from desired_ and hands it to commitAndApply, audits
  // through audit()/baseEvent()/rejected(), reads last_receipt_, and keeps acks in store_. It
  // writes desired_ only through commitAndApply and storeTrustVersion.
  friend class SignedOrders;
  // PolicyReloader swaps policy_ (and the trust) on a reload: it checks the new policy against
  // desired_, applies its plan through enforcer_, audits through audit()/bareEvent(), and
  // writes desired_ only through storeTrustVersion and the applied ruleset hash.
  friend class PolicyReloader;

  // What a change is, for commitAndApply's branches and for the audit trail.
  enum class ActionKind {
    kIsolate,
    kRestore,
    kExpire,
    kStart,
    kRevertDrills,
    kRepair,
    kOrder,       // a dispatch refused before it said what it wanted
    kBreakglass,  // a break-glass file refused before it said what it wanted
  };
  // The audit trail's `what.action` ("isolate", "revert_drills", ...).
  static const char* actionName(ActionKind kind);

  struct Action {
    ActionKind kind;
    std::optional<Isolation> isolation;  // for the audit trail's what.segment/profile
    std::string requested_by;
    bool drill = false;
    const VerifiedOrder* order = nullptr;              // for signed orders: who signed, ids, reason
    std::optional<std::string> reason = std::nullopt;  // for local commands: their --reason
    // The rung and hosts (what.scope, what.hosts) and, for an isolate, every isolation asked for.
    IsolationScope scope = IsolationScope::kSegment;
    std::vector<IpPrefix> hosts = {};
    std::vector<Isolation> isolations = {};
  };

  // Commits `next`, applies it, and puts `desired_` back in store and memory if the kernel
  // refuses; `changed` says whether `next` differs from the current desired state. In order:
  // plan, lockout check (refuses before anything is written), "accepted" audit entry, commit,
  // apply (undone on a kernel refusal), conntrack, ruleset hash, "applied" audit entry.
  Result<ChangeResult> commitAndApply(DesiredState next, bool changed,
                                      std::vector<Isolation> expired, const Action& action);
  // Safety rule 1, for a change that adds an isolation: foreign rules that would drop the
  // management path. Findings are added to `warnings`; the error is the refusal when the policy
  // says so. The foreign ruleset it read is left in `foreign_ruleset` for forgetConntrack.
  std::optional<Error> checkLockout(std::optional<nlohmann::json>& foreign_ruleset,
                                    std::vector<std::string>& warnings);
  // After the kernel took `next`: deletes the conntrack entries the policy wants gone for this
  // change. A failure is a warning in `result`; the change stands.
  void forgetConntrack(const Action& action, bool changed, const DesiredState& previous,
                       const DesiredState& next, std::optional<nlohmann::json>& foreign_ruleset,
                       ChangeResult& result);
  // The kernel refused `next` after it was committed: puts the isolations of `previous` back
  // (keeping the replay state of `next`), audits the failure and returns the error to report.
  Error undoCommit(const DesiredState& previous, const DesiredState& next, bool changed,
                   const Action& action, Error error);
  // After the kernel took `next`: holds down the links an uplink link-down of `next` wants down
  // and sets up those `previous` held down and `next` does not (agents/link_holder.h). Audited
  // (`links`) when something had to change; a link that cannot be set is a warning and an
  // audited failure, never an undo of the cut. Defined in link_holder.cc.
  void holdLinksOf(const DesiredState& previous, const DesiredState& next,
                   const std::string& reason, std::vector<std::string>& warnings);
  // Appends an audit entry; a failure is logged loudly and returned, never thrown.
  enum class AuditDurability { kSynced, kBuffered };
  Result<AuditReceipt> audit(AuditEvent event,
                             AuditDurability durability = AuditDurability::kSynced);
  // An entry with `event` and where it happened, and nothing else.
  AuditEvent bareEvent(const std::string& event) const;
  // bareEvent plus who asked and what for `action`.
  AuditEvent baseEvent(const std::string& event, const Action& action) const;
  Error rejected(const Action& action, Error error);
  // Persists `version` as the trust file version this agent holds.
  Status storeTrustVersion(int64_t version);
  Result<EnforceReport> applyDesired(const DesiredState& state);
  // One gateway, one owner: refuses when our table carries another agent's owner mark.
  Status checkTableOwner();
  // Drops isolations whose deadline is at or before now; returns what was dropped.
  std::vector<Isolation> dropExpired(DesiredState& state) const;

  Policy policy_;  // replaced whole by a reload, never edited in place
  std::string gateway_id_;
  AgentCoreDeps deps_;
  StateStore& store_;
  FirewallBackend& firewall_;
  RouteBackend& routes_;
  const Clock& clock_;
  Enforcer enforcer_;
  DesiredState desired_;
  std::optional<AuditReceipt> last_receipt_;  // of the latest entry this core appended
  std::unique_ptr<SignedOrders> orders_;      // never null
  uint64_t repairs_ = 0;
  std::map<std::string, uint64_t> order_results_;
};

}  // namespace shadan::agent

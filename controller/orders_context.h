#pragma once

// What the parts of the order logic share (controller/order_commands.h, approvals.h,
// delivery.h, order_views.h): the collaborators OrdersService was given, the clock, the audit
// append, and the small helpers every part answers errors and audit events with. Internal to
// the controller library: the API router and main.cc see only OrdersService.
//
// Contracts: everything referenced must outlive the context (OrdersService's constructor
// contract); not thread-safe, like OrdersService.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/audit_sink.h"
#include "common/clock.h"
#include "common/dsse.h"
#include "common/ed25519.h"
#include "common/policy.h"
#include "common/result.h"
#include "common/trust.h"
#include "controller/agent_hub.h"
#include "controller/order_types.h"
#include "controller/store.h"

// SHADAN_RETURN_IF_ERROR around a store transaction whose body uses it too (a distinct local
// name, so -Wshadow stays quiet).
#define SHADAN_RETURN_IF_ERROR_TX(expr)                                \
  do {                                                                 \
    Status transaction_status_ = (expr);                               \
    if (!transaction_status_.ok()) return transaction_status_.error(); \
  } while (0)

namespace shadan::controller {

struct OrdersContext {
  OrdersContext(const Policy& policy_in, const Trust& trust_in, const Signer& controller_key_in,
                ControllerStore& store_in, AgentHub& channel_in, AuditSink& audit_in,
                const Clock& clock_in, OrdersServiceOptions options_in);

  const Policy& policy;
  const Trust& trust;
  const Signer& controller_key;
  ControllerStore& store;
  AgentHub& channel;
  AuditSink& audit_sink;
  const Clock& clock;
  OrdersServiceOptions options;  // new_id is always set

  int64_t nowMs() const;
  // Appends `event` to the audit log; a failure is logged here and returned for the caller.
  // `synced` false: written but not yet synced (AuditSink::appendBuffered); the next synced
  // append covers it. For a batch of entries of which the last is synced.
  Status audit(AuditEvent event, bool synced = true);
  // Runs `fn` in one store transaction and appends the audit entry it returns as the
  // transaction's last step, so nothing is stored that the audit log does not show: a failed
  // append (e.g. no_space) rolls the change back and is the answer. Should the commit itself
  // fail after the append, a `commit_failed` entry naming the same command follows it, so the
  // trail says the change never took effect; or, when a store on the network could not say
  // whether the commit took effect (kStoreOutcomeUnknown), a `commit_unknown` entry (outcome
  // `unknown`): the order's status tells once the store answers again.
  Status auditedTransaction(const std::function<Result<AuditEvent>()>& fn);
  // options.defer, or at once when there is none.
  void defer(std::function<void()> work);
  // Distinct identities among `signatures` (all already verified), in order, whose keys sign as
  // operators on an order that is (or is not) a drill (TrustKey::signsAsOperator).
  std::vector<std::string> operatorIdentities(const std::vector<DsseSignature>& signatures,
                                              bool drill_order) const;
  // The identity an order of `caller` is requested by (its authz requested_by): the caller's
  // identity, except that with a lab trust file an operator token `NAME` acts as drill:NAME,
  // the identity its drill key has there (the lab's people are drill identities, and the
  // agents want the requester among the signers).
  std::string requesterOf(const Caller& caller) const;
  // With a lab trust file, refuses (forbidden) an order that is not a drill.
  Status checkLabDrill(bool drill) const;
};

// The errors the API maps to status codes (see OrdersService).
inline Error forbidden(const std::string& message) {
  return makeError(ErrorCode::kPolicy, message);
}
inline Error badRequest(const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument, message);
}
inline Error conflict(const std::string& message) {
  return makeError(ErrorCode::kUnavailable, message);
}

// A reason as the API accepts it: not empty, at most 512 bytes, no control character (the
// agents' authz parser refuses one: an order with it would be signed, sent and refused by every
// gateway).
Status checkReason(const std::string& reason);
// A ticket as an authz carries it: 1-256 bytes, no control character.
Status checkTicket(const std::optional<std::string>& ticket);

// RFC 3339 for a time that was set, null for 0.
nlohmann::json timeOrNull(int64_t ms);

// Builds an AuditEvent field by field (designated initializers would have to name every
// member to keep -Wmissing-field-initializers quiet).
class AuditEventBuilder {
 public:
  explicit AuditEventBuilder(std::string name) { e_.event = std::move(name); }
  AuditEventBuilder& outcome(std::string v);
  AuditEventBuilder& reason(std::optional<std::string> v);
  AuditEventBuilder& requestedBy(std::string v);
  AuditEventBuilder& approvers(std::vector<std::string> v);
  AuditEventBuilder& keyids(std::vector<std::string> v);
  AuditEventBuilder& controller(std::string v);
  AuditEventBuilder& what(std::string action, std::string segment, std::string profile);
  AuditEventBuilder& why(std::string reason, std::optional<std::string> ticket);
  AuditEventBuilder& agent(std::string agent_id, std::optional<std::string> version = std::nullopt);
  AuditEventBuilder& command(std::string v);
  AuditEventBuilder& seq(int64_t v);  // only a positive seq is recorded
  AuditEventBuilder& authzSha256(std::string v);
  AuditEventBuilder& drill(bool v);
  // drill=true when `v`; nothing otherwise, so the entries of real orders keep their shape.
  AuditEventBuilder& markDrill(bool v);
  AuditEventBuilder& detail(nlohmann::json v);
  AuditEvent build() { return std::move(e_); }

 private:
  AuditWho& who();
  AuditEvent e_;
};

}  // namespace shadan::controller

#pragma once

// SignedOrders: the signed-order half of AgentCore (PROTOCOL.md "Agent verification order").
//
// It holds the trust file and the agent's own key, has each dispatch (or break-glass file)
// verified by agents/orders/order_verifier.h, carries a verified order out through the core's one
// commit-and-apply path, and answers every dispatch, rejected ones included, with an ack signed
// by the agent key. It also keeps the acks of verified orders for resending.
//
// Owned by one AgentCore, which forwards its public order methods here; callers use those.
// Threading: the core's (one thread). The core outlives it.

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "agents/agent_core.h"
#include "agents/orders/order_verifier.h"
#include "common/ed25519.h"
#include "common/orders.h"
#include "common/result.h"
#include "common/trust.h"

namespace shadan::agent {

// How long this agent lets the isolations of a signed isolate last: its ttl_s, except that a
// drill's is capped at the policy's agent.drill_max_ttl_s (issue #17). nullopt: no ttl.
std::optional<int64_t> appliedTtlS(const Authz& authz, const AgentOptions& options);

// When appliedTtlS capped the ttl: "ttl capped from <X> s to <Y> s by agent.drill_max_ttl_s",
// which the order's audit entries carry (detail.ttl_capped) and its ack (reason, on an applied
// or already_applied ack); nullopt otherwise.
std::optional<std::string> ttlCapNote(const Authz& authz, const AgentOptions& options);

class SignedOrders {
 public:
  explicit SignedOrders(AgentCore& core);

  // Contracts as documented on the AgentCore methods of the same names.
  Status useTrust(Trust trust, const Signer& agent_key);
  OrderOutcome handleDispatch(const nlohmann::json& envelope);
  OrderOutcome handleDispatch(std::string_view envelope_bytes);
  void rememberAck(const OrderOutcome& outcome);
  std::vector<std::pair<int64_t, nlohmann::json>> recentAcks();
  Result<ChangeResult> applyBreakglass(std::string_view authz_envelope_bytes);
  OrderVerification checkEnvelope(std::string_view envelope_bytes) const;

 private:
  using Action = AgentCore::Action;
  using ActionKind = AgentCore::ActionKind;

  bool ready() const { return trust_.has_value() && agent_key_ != nullptr; }
  AgentSelf self() const;
  // An ack stamped with this agent and the time the dispatch arrived.
  Ack receivedAck() const;
  // The ack for a dispatch that arrived before useTrust(): rejected, and not audited.
  OrderOutcome refuseUntrusted(Ack ack);
  // The rest of handleDispatch once `verification` is known (both overloads): audit a
  // rejection, or apply the order; then the signed ack.
  OrderOutcome answer(Ack ack, const OrderVerification& verification);
  // A release (a restore marked automatic) lifts automatic isolations only, all or nothing:
  // the rejection (release_not_automatic) naming the first isolation it would lift that is not
  // automatic; nullopt for any other order, or when the release may go ahead.
  std::optional<OrderRejection> checkRelease(const VerifiedOrder& order) const;
  // A verified order's change of the desired state (replay state included), committed and
  // applied by the core.
  Result<ChangeResult> applyVerified(const VerifiedOrder& order);
  // Completes `ack` (isolations now, ruleset hash, audit reference) and signs it.
  OrderOutcome finishOrder(Ack ack, std::optional<OrderRejection> rejection,
                           std::optional<ChangeResult> change);

  AgentCore& core_;
  std::optional<Trust> trust_;
  const Signer* agent_key_ = nullptr;
};

}  // namespace shadan::agent

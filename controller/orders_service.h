#pragma once

// The controller's order logic: API requests and agent messages in, signed orders, dispatches,
// approvals, store writes and audit entries out. No sockets and no threads: the API server and
// the agent hub call it, and tests drive it with a fake channel, a fake clock and a temp store.
//
// Contracts:
//   - Not thread-safe: call it from the controller's one io_context thread.
//   - Every state change is written to the store in one transaction and then audited (the audit
//     entry is durable before the caller answers the request).
//   - The controller signs an authz itself only as the trust file allows: an isolate of an
//     unprotected segment "on behalf of" the caller (isolate.controller_on_behalf). Restores and
//     protected isolates wait for operator signatures (distinct operator identities, each
//     verified against the trust file over the exact PAE), the requester among them, exactly
//     as agents/order_verifier.h will check them again on every gateway.
//   - Dispatches are signed at delivery time (seq per agent, allocated on first delivery and
//     kept; the envelope re-signed with a fresh window when the old one lapsed), delivered in
//     creation order to connected, approved agents, kept pending otherwise, and marked expired
//     once their authz has expired.
//   - Errors map to API answers by code: kInvalidArgument/kParse 400, kPolicy 403 (refused by
//     role, trust or policy), kNotFound 404, kUnavailable 409 (not in a state that allows it),
//     anything else 500.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/audit_sink.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/orders.h"
#include "common/policy.h"
#include "common/trust.h"
#include "controller/agent_hub.h"
#include "controller/config.h"
#include "controller/store.h"

namespace shadan {

// An authenticated API caller (from the token table).
struct Caller {
  std::string name;
  ApiRole role = ApiRole::kAuditor;
  // "op:<name>", "detector:<name>", "auditor:<name>": the identity recorded in orders and audit.
  std::string identity() const;
};

struct IsolateRequest {
  std::string segment;
  std::string profile = "full";
  std::string reason;
  std::optional<std::string> ticket;
  std::optional<int64_t> ttl_s;
  bool drill = false;
};

struct RestoreRequest {
  std::string segment;
  std::string profile = "full";
  std::string reason;
  std::optional<std::string> ticket;
};

// What POST /v1/isolate and /v1/restore answer.
struct OrderAccepted {
  std::string order_id;
  std::string state;  // "dispatched" | "awaiting_approval"
  std::vector<std::string> gateways;
  std::optional<std::string> approval_id;
  int needed = 0;
  int have = 0;

  nlohmann::json toJson() const;
};

// An approval after a signature was added.
struct ApprovalProgress {
  std::string approval_id;
  std::string order_id;
  std::string state;  // "pending" | "complete"
  int needed = 0;
  int have = 0;
  std::vector<std::string> approvers;  // distinct operator identities counted so far

  nlohmann::json toJson() const;
};

// The agent's hello, as the hub parsed it (the hub has already matched agent_id with the
// client certificate). main.cc converts the hub's HelloMessage.
struct AgentHello {
  std::string agent_id;
  std::string agent_key;  // keyid
  int64_t last_seq = 0;
  std::string version;
  // The agent's public key, when the channel carries it (its keyid must equal agent_key);
  // otherwise the key is looked up in the trust file (an `agent` key of "agent:<agent_id>").
  std::optional<Ed25519PublicKey> public_key;
};

struct OrdersServiceOptions {
  OrderTimings timings;
  // Fresh command ids (UUID v4); tests pass a counter.
  std::function<std::string()> new_id;
  size_t status_orders = 20;  // recent orders listed by status()
};

class OrdersService {
 public:
  // Everything passed by reference must outlive the service. `controller_key` signs dispatches
  // and on-behalf authz; its keyid must be a `controller` key of `trust`.
  OrdersService(const Policy& policy, const Trust& trust, const Signer& controller_key,
                ControllerStore& store, AgentHub& channel, AuditSink& audit, const Clock& clock,
                OrdersServiceOptions options);

  Result<OrderAccepted> isolate(const Caller& caller, const IsolateRequest& request);
  Result<OrderAccepted> restore(const Caller& caller, const RestoreRequest& request);

  // Pending approvals: [{"approval_id","order_id","payloadType","payload"(base64),"rule",
  // "needed","have","approvers","expires_at","segment","action"}].
  Result<nlohmann::json> pendingApprovals();
  // Adds one operator signature (`sig_base64` over PAE(payloadType, payload)) and dispatches
  // the order once the threshold is met.
  Result<ApprovalProgress> addApprovalSignature(const Caller& caller,
                                                const std::string& approval_id,
                                                const std::string& keyid,
                                                const std::string& sig_base64);

  Result<nlohmann::json> status();
  Result<nlohmann::json> order(const std::string& order_id);
  Result<nlohmann::json> agents();
  Status approveAgent(const Caller& caller, const std::string& agent_id, const std::string& reason);

  // From the agent hub.
  void onHello(const AgentHello& hello);
  // The DSSE ack envelope of an {"type":"ack"} message from the session of `agent_id`.
  Status onAck(const std::string& agent_id, const nlohmann::json& envelope);
  void onDisconnect(const std::string& agent_id);

  // Expires approvals and dispatches whose authz has lapsed. Called by a timer and before
  // status answers.
  Status sweep();

 private:
  struct Built {
    Authz authz;
    std::string payload;
  };
  Result<Built> buildAuthz(const Caller& caller, OrderAction action, const std::string& segment,
                           const std::string& profile, const std::string& reason,
                           const std::optional<std::string>& ticket,
                           const std::optional<int64_t>& ttl_s, bool drill, int64_t validity_s);
  Result<OrderAccepted> awaitApproval(const Caller& caller, Built built, const std::string& rule,
                                      int needed);
  // Records the signed authz envelope, its dispatches and the segment state, then delivers.
  Status dispatchOrder(OrderRecord order, const DsseEnvelope& authz_envelope);
  Status deliverPending(const std::string& agent_id);
  Status deliver(DispatchRecord dispatch, const AgentRecord& agent, const OrderRecord& order);
  Status expireDispatch(DispatchRecord dispatch, const std::string& why);
  // Distinct operator identities among `signatures` (all already verified).
  std::vector<std::string> operatorIdentities(const std::vector<DsseSignature>& signatures) const;
  Status audit(AuditEvent event);
  std::optional<Ed25519PublicKey> agentKeyFromTrust(const std::string& agent_id,
                                                    const std::string& keyid) const;
  Result<nlohmann::json> orderJson(const OrderRecord& order, bool with_acks);
  int64_t nowMs() const;

  const Policy& policy_;
  const Trust& trust_;
  const Signer& controller_key_;
  ControllerStore& store_;
  AgentHub& channel_;
  AuditSink& audit_;
  const Clock& clock_;
  OrdersServiceOptions options_;
  std::map<std::string, int64_t> last_seq_;  // from each agent's latest hello
  // Command ids already sent on each agent's current session (not sent twice on one session;
  // sent again after a reconnect).
  std::map<std::string, std::set<std::string>> sent_on_session_;
};

// A random UUID v4 in lower-case canonical form (libsodium's CSPRNG).
std::string randomUuid();

}  // namespace shadan

#pragma once

// The values that cross the OrdersService facade (controller/orders_service.h): API callers and
// requests in, answers out, the agent's hello, the service's options. Plain data; the JSON
// forms are what the HTTPS API answers.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/ed25519.h"
#include "common/isolation_scope.h"
#include "common/orders.h"
#include "controller/config.h"
#include "controller/order_target.h"

namespace shadan::controller {

// An authenticated API caller (from the token table).
struct Caller {
  std::string name;
  ApiRole role = ApiRole::kAuditor;
  // "op:<name>", "detector:<name>", "auditor:<name>": the identity recorded in orders and audit.
  std::string identity() const;
  // A detector token's `segments` (controller/config.h): the segments it may isolate, "*" for
  // every unprotected one; nullopt: not scoped (POST /v1/isolate as before alerts).
  std::optional<std::vector<std::string>> segments{};
};

// The rung fields come last so that segment requests keep their short aggregate form
// ({"lgwan", "full", "reason", ...}).
struct IsolateRequest {
  // segment scope: required. host scope: optional, and when given it must be the segment the
  // hosts lie in. uplink and island: must be empty.
  std::string segment;
  std::string profile = "full";
  std::string reason;
  std::optional<std::string> ticket;
  std::optional<int64_t> ttl_s;
  bool drill = false;  // a drill: needs a ttl_s (400 naming ttl_s otherwise)
  IsolationScope scope = IsolationScope::kSegment;
  // host scope only: 1 .. kMaxHostsPerOrder addresses or prefixes, as the caller wrote them.
  std::vector<std::string> hosts{};
  // uplink and island only: the gateways to cut (empty: the default of the scope).
  std::vector<std::string> gateways{};
  bool link_down = false;  // uplink only
  // Made by an automatic response (controller/alert_responder.h): signed on behalf of the
  // detector, marked `automatic` in the authz; it must carry a ttl_s.
  bool automatic = false;
};

struct RestoreRequest {
  std::string segment;
  std::string profile = "full";
  std::string reason;
  std::optional<std::string> ticket;
  IsolationScope scope = IsolationScope::kSegment;
  std::vector<std::string> hosts{};     // host scope: lifts these hosts only
  std::vector<std::string> gateways{};  // uplink and island only
  // A release of automatic isolations (AlertResponder::release/clear): signed by the controller
  // on behalf of the caller where the trust file allows it; the agents apply it only while
  // every isolation it lifts is still automatic.
  bool automatic = false;
  // The restore of a drill: the authz says `drill`, and every audit entry about it too. With a
  // lab trust file every order must be one (lab_trust_requires_drill).
  bool drill = false;
};

// What an isolate or restore request would make, every check passed and nothing stored
// (OrderCommands::planIsolate / planRestore).
struct OrderPlan {
  OrderAction action = OrderAction::kIsolate;
  OrderTarget target;
  std::string profile;
  std::optional<int64_t> ttl_s;
  bool drill = false;  // after the lab rule (an automatic order of a lab controller is one)
  // The approval rule the order waits for ("isolate", "isolate_protected", "restore") and how
  // many operators it needs; "" when the controller signs it at once on behalf of the caller.
  std::string rule;
  int needed = 0;
  bool release = false;  // a restore signed by the controller as a release of automatic ones
};

// What POST /v1/isolate and /v1/restore answer.
struct OrderAccepted {
  std::string order_id;
  std::string state;                  // "dispatched" | "awaiting_approval"
  std::vector<std::string> gateways;  // the target gateways
  std::optional<std::string> approval_id;
  int needed = 0;
  int have = 0;
  // The rung (answered as "scope"; for host and segment also "segment", for host "hosts" in
  // canonical form).
  IsolationScope scope = IsolationScope::kSegment;
  std::string segment{};
  std::vector<IpPrefix> hosts{};

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
  // A segment or host order to more gateways than this says "targets":"bordering" instead of
  // listing them (Authz::targets_bordering): the list would ride in every dispatch.
  size_t listed_targets_max = 256;
  // Dispatches of one batch signed, stored (one transaction), audited (one sync) and handed to
  // the network together before the next are prepared (Delivery::deliverBatch). At least 1.
  size_t delivery_chunk = 256;
  // Runs `work` soon, after the handlers already queued (the controller posts it to its io
  // loop): what lets acks and hellos that arrive together share one store transaction and one
  // audit sync. Empty: `work` runs at once (each ack and hello is written on its own).
  std::function<void(std::function<void()> work)> defer = {};
};

// A random UUID v4 in lower-case canonical form (libsodium's CSPRNG).
std::string randomUuid();

}  // namespace shadan::controller

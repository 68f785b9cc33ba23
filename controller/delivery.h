#pragma once

// The agents' side of the order logic: recording a signed order's dispatches, delivering them
// (seq allocated per agent on first delivery and kept, the dispatch envelope signed at delivery
// time, creation order, once per session), acks, expiry of undelivered dispatches, and the
// enrollment that gates all of it (hello, key changes, operator approval, disconnect).
//
// Contracts: as OrdersService (controller/orders_service.h), which owns one Delivery and is
// its only caller. Delivery to an agent that is not connected, or not approved, is no error:
// the dispatch stays pending until the agent's next hello or its approval.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/dsse.h"
#include "common/ed25519.h"
#include "common/result.h"
#include "controller/order_types.h"
#include "controller/orders_context.h"
#include "controller/store.h"

namespace shadan::controller {

class Delivery {
 public:
  // `context` must outlive the Delivery.
  explicit Delivery(OrdersContext& context) : ctx_(context) {}

  // Inside the caller's store transaction: stores `order` as dispatched with its signed authz
  // envelope, one pending dispatch per target, and the segment's new state. Delivers nothing:
  // call deliverToTargets() once the transaction has committed.
  Status recordDispatch(OrderRecord order, const DsseEnvelope& authz_envelope);
  // deliverPending() for each of `targets`; failures are logged (the dispatches stay pending).
  void deliverToTargets(const std::vector<std::string>& targets);
  // The dispatches of the order `command_id` just recorded, to each of `targets`: sent at once
  // to a gateway whose earlier pending dispatches were all sent on its current session (so
  // creation order holds), else by deliverPending(). Failures are logged, as above. What makes
  // a burst of orders (an alert batch) cost one store read per order instead of one per
  // dispatch still in flight.
  void deliverOrder(const std::string& command_id, const std::vector<std::string>& targets);
  // Sends the agent's pending dispatches, in creation order, if it is connected and approved.
  Status deliverPending(const std::string& agent_id);
  // Marks pending dispatches whose authz has lapsed by `now` (Unix ms) as expired (part of
  // OrdersService::sweep).
  Status expireLapsed(int64_t now);

  void onHello(const AgentHello& hello);
  Status onAck(const std::string& agent_id, const nlohmann::json& envelope);
  void onDisconnect(const std::string& agent_id);
  Status approveAgent(const Caller& caller, const std::string& agent_id, const std::string& reason);

 private:
  Status deliver(DispatchRecord dispatch, const AgentRecord& agent, const OrderRecord& order);
  Status expireDispatch(DispatchRecord dispatch, const std::string& why);
  // Whether the order `command_id` is a drill, for its audit entries (false when unknown).
  bool isDrillOrder(const std::string& command_id);
  std::optional<Ed25519PublicKey> agentKeyFromTrust(const std::string& agent_id,
                                                    const std::string& keyid) const;

  OrdersContext& ctx_;
  std::map<std::string, int64_t> last_seq_;  // from each agent's latest hello
  // Command ids already sent on each agent's current session (not sent twice on one session;
  // sent again after a reconnect).
  std::map<std::string, std::set<std::string>> sent_on_session_;
  // Agents whose every pending dispatch was sent on their current session (set by a complete
  // deliverPending(), cleared by a new session, a disconnect or a failed send).
  std::set<std::string> caught_up_;
};

}  // namespace shadan::controller

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
#include "common/metrics.h"
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
  // The pending dispatches of each of `targets` that is connected and approved, in one batch
  // (one transaction, one audit sync); failures are logged (the dispatches stay pending).
  void deliverToTargets(const std::vector<std::string>& targets);
  // The dispatches of the order `command_id` just recorded, to each of `targets`: sent at once
  // to a gateway whose earlier pending dispatches were all sent on its current session (so
  // creation order holds), else by deliverPending(). Failures are logged, as above. What makes
  // a burst of orders (an alert batch) cost one store read per order instead of one per
  // dispatch still in flight.
  void deliverOrder(const std::string& command_id, const std::vector<std::string>& targets);
  // Sends the agent's pending dispatches, in creation order, if it is connected and approved.
  Status deliverPending(const std::string& agent_id);
  // With a store several controllers share: delivers to this controller's connected agents the
  // pending dispatches created since the last call (by another controller; those this one
  // created and already sent are skipped without a read). The first call only notes where to
  // start (an agent's hello delivers what was pending before). Then tries again what a store
  // that did not answer (on etcd: a lost member) left undone and would otherwise wait for the
  // agents' next hello: acks whose write failed, and deliveries to connected agents.
  Status deliverCreatedElsewhere();
  // Marks pending dispatches whose authz has lapsed by `now` (Unix ms) as expired (part of
  // OrdersService::sweep).
  Status expireLapsed(int64_t now);

  // A hello: enrollment decided now; the agent's last_seen and the delivery of its pending
  // dispatches are batched with the other hellos of the moment (ctx.defer): a reconnect storm
  // of N agents writes a few transactions, not N.
  void onHello(const AgentHello& hello);
  // Without ctx.defer: verifies the ack now (a refusal is audited and returned) and stores it.
  // With it (the controller's io_context): the acks of the moment are verified together, their
  // agents and dispatches read together (on etcd a round trip per few dozen acks, not per
  // ack), and a refusal is audited then (the answer here is only "taken"); the dispatches'
  // new states and the ack_received entries are written in one transaction and one audit
  // sync. Until then a second copy of the same ack is ignored. `verified_with`: the key the
  // hub already verified every signature with (AgentHubCallbacks::on_ack); it spares the
  // check here only when it is the enrolled key.
  Status onAck(const std::string& agent_id, const nlohmann::json& envelope,
               const std::optional<Ed25519PublicKey>& verified_with = std::nullopt);
  void onDisconnect(const std::string& agent_id);
  Status approveAgent(const Caller& caller, const std::string& agent_id, const std::string& reason);

  // Seconds from a dispatch's last sending to its verified ack being stored, per ack.
  const Histogram& ackLatency() const { return ack_latency_; }

 private:
  // One dispatch to sign and send, with what it is sent to and for.
  struct Outgoing {
    DispatchRecord dispatch;
    const AgentRecord* agent = nullptr;
    const OrderRecord* order = nullptr;
  };
  // An ack as it came, waiting for the moment's other acks.
  struct IncomingAck {
    std::string agent_id;
    nlohmann::json envelope;
    std::optional<Ed25519PublicKey> verified_with;
  };
  // An ack verified and waiting for the batch's transaction.
  struct StagedAck {
    DispatchRecord dispatch;
    AgentRecord agent;
    AuditEvent audit;
    IncomingAck incoming;  // as it came: checked again should its write fail
  };
  // Signs every dispatch of `batch` (a seq allocated where it has none) and stores them, then
  // audits each and sends each, in chunks of options.delivery_chunk: ONE transaction and one audit
  // sync per chunk, and the chunk handed to the network (AgentHub::flush) before the next is
  // signed, so the first gateways verify and apply while the controller prepares the rest instead
  // of every gateway waiting for the last signature. Nothing of a chunk is sent when its
  // transaction fails, and the chunks after it are not attempted (the caller knows what was
  // sent from sent_on_session_).
  Status deliverBatch(std::vector<Outgoing>& batch);
  // The pending dispatches of `agents` (connected and approved, as loaded by the caller) in one
  // batch; each agent all of whose dispatches were sent is caught up. The first error.
  Status deliverPendingOf(const std::vector<AgentRecord>& agents);
  // Those of `agent_ids` that are connected and approved (delivery to others waits for their
  // hello or their approval), their records read together.
  Result<std::vector<AgentRecord>> deliverable(const std::vector<std::string>& agent_ids);
  // Of `pending` (the agent's pending dispatches, as the store lists them), those that
  // deliverPending would send to `agent`, appended to `batch` (their orders kept alive in
  // `orders`); expires those whose authz lapsed.
  Status collectPending(const AgentRecord& agent, std::vector<DispatchRecord> pending,
                        std::vector<Outgoing>& batch, OrderReader& orders);
  // Verifies `acks` (their store reads together) and stages those that hold, then stores the
  // staged ones; each one's answer, in order.
  std::vector<Status> checkAcks(const std::vector<IncomingAck>& acks);
  // The checks of one ack against what the store holds (`subject`); stages it when they hold.
  Status checkAck(const IncomingAck& incoming, const DsseEnvelope& envelope, const Result<Ack>& ack,
                  ControllerStore::AckSubject subject);
  // Audits and logs the refusal of an ack; returns `error`.
  Status refuseAck(const std::string& agent_id, Error error);
  void flushAcks();
  // deliverCreatedElsewhere's second part: retry_acks_ and behind_, backing off while it fails.
  void retryLeftUndone();
  void flushHellos();
  Status expireDispatch(DispatchRecord dispatch, const std::string& why);
  // Whether the order `command_id` is a drill, for its audit entries (false when unknown).
  // Remembered: an order's record holds its every target, so reading it for each of its
  // thousands of acks would make a fan-out quadratic.
  bool isDrillOrder(const std::string& command_id);
  std::optional<Ed25519PublicKey> agentKeyFromTrust(const std::string& agent_id,
                                                    const std::string& keyid) const;

  OrdersContext& ctx_;
  bool presence_failing_ = false;            // keepPresence failing, said once
  std::map<std::string, int64_t> last_seq_;  // from each agent's latest hello
  // Command ids already sent on each agent's current session (not sent twice on one session;
  // sent again after a reconnect).
  std::map<std::string, std::set<std::string>> sent_on_session_;
  // Agents whose every pending dispatch was sent on their current session (set by a complete
  // deliverPending(), cleared by a new session, a disconnect or a failed send).
  std::set<std::string> caught_up_;
  std::vector<IncomingAck> incoming_acks_;
  std::vector<StagedAck> staged_acks_;
  std::set<std::pair<std::string, int64_t>> staged_seqs_;  // (agent, seq) of staged_acks_
  // Agents whose hello or disconnect came since the last flushHellos: last seen (ms), and
  // whether their pending dispatches are to be delivered.
  std::map<std::string, std::pair<int64_t, bool>> seen_;
  int64_t created_cursor_ = 0;  // deliverCreatedElsewhere's place in the store
  // Connected agents not all of whose pending dispatches could be sent (a failed delivery);
  // deliverCreatedElsewhere tries them again.
  std::set<std::string> behind_;
  // Acks whose write failed, to be checked again (deliverCreatedElsewhere): the agent keeps its
  // connection and so does not send them again by itself.
  std::vector<IncomingAck> retry_acks_;
  int64_t retry_at_ms_ = 0;     // not before (0: at the next look)
  int64_t retry_delay_ms_ = 0;  // the last wait, doubled while tries fail
  // isDrillOrder's memory; an order's flag never changes.
  std::map<std::string, bool> drill_orders_;
  Histogram ack_latency_{latencyBucketsSeconds()};
};

}  // namespace shadan::controller

#pragma once

// The controller's end of the agent channel (PROTOCOL.md "Channel"; issue3 contract):
// wss://HOST:PORT/v1/agent, TLS 1.3 with a client certificate from the private CA, one JSON
// object per WebSocket text frame.
//
// AgentHub is what the order logic needs (send a message to an agent, ask whether it is
// connected), so that logic can be tested with a fake. WebSocketAgentHub is the real server.
//
// The messages are common/channel.h; the session mechanics shared with the agent's end
// (queue, heartbeat, read loop, close) are common/channel_session.h.
//
// Session lifecycle (WebSocketAgentHub):
//   1. TLS handshake; the verified client certificate's CN is the agent id.
//   2. HTTP upgrade; any path but /v1/agent gets 404, a non-upgrade request 400.
//   3. The first message must be a hello within hello_timeout, with "agent_id" equal to the
//      certificate's CN. The session becomes the agent's current session (so send() from inside
//      on_hello already reaches it), then on_hello decides: false closes it (and an older
//      session, if any, stays current); true closes the agent's older session, if any.
//   4. Then: "ack" -> on_ack(agent_id, envelope); "audit" / "audit_checkpoint" (shape checked
//      with common/audit_ship.h) -> on_audit(agent_id, message); "ping" -> answered with
//      "pong"; "pong" only counts as a sign of life. Anything else -- a second hello, an unknown
//      type, a binary frame, JSON that parseStrictJson refuses, a message over max_message_bytes --
//      closes the session.
//   5. Each side sends {"type":"ping"} every heartbeat_interval; a session that received nothing
//      for heartbeat_misses intervals is closed.
// on_disconnect(agent_id) runs when the agent's current session ends; not for a session that
// was replaced or rejected, and never from stop() or the destructor.
//
// Threading: connections (accept, TLS handshakes, WebSocket frames, JSON parsing, heartbeats)
// run on the hub's own network threads (options.network_threads, each with its own io_context;
// a session lives on one of them), so a burst of thousands of handshakes after a restart costs
// those threads, not the orders and acks. Every callback runs on the core io_context given to
// create() (driven by one thread), in the order the session's messages arrived; send(),
// connected(), agentAddresses() and stop() are called on that thread. The core thread never
// holds a session: it knows sessions by id and hands them text to write, and learns of their
// end one post later (until then connected() still says true and send() is dropped quietly;
// delivery is known from acks anyway). The io_context must outlive the hub; destroying the hub
// (or stop()) closes the listener and every session and joins the network threads, and
// handlers still queued on the core io_context then do nothing.

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "common/channel.h"
#include "common/result.h"

namespace shadan::controller {

class AgentHub {
 public:
  virtual ~AgentHub() = default;
  // Queues `message` (one JSON object) for the agent's current session; messages to one agent
  // are written in order, one at a time. kUnavailable when the agent has no session,
  // kInvalidArgument when the message is larger than the channel allows. Queued is not
  // delivered: delivery is known from the agent's ack.
  virtual Status send(const std::string& agent_id, const nlohmann::json& message) = 0;
  // As send(), for a message the caller already holds as text (one JSON object, e.g. built
  // around an envelope serialized for the store): a fan-out need not build and serialize each
  // dispatch twice. This default parses it and calls send().
  virtual Status sendText(const std::string& agent_id, std::string text);
  virtual bool connected(const std::string& agent_id) const = 0;
  // Hands what send() queued so far to the network now instead of when the current handler
  // returns: a long batch lets the first gateways start on their part while the rest is
  // prepared. A hub that writes at send() has nothing to do.
  virtual void flush() {}
};

struct AgentHubOptions {
  std::string bind_address = "0.0.0.0";
  uint16_t port = 0;  // 0: any free port (tests); see WebSocketAgentHub::port()
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string crl_file;  // the CA's revocation list; empty: none (common/tls.h)
  std::chrono::milliseconds hello_timeout = kChannelHelloTimeout;
  std::chrono::milliseconds heartbeat_interval = kChannelHeartbeatInterval;
  int heartbeat_misses = kChannelHeartbeatMisses;
  size_t max_message_bytes = kAgentChannelMaxMessageBytes;
  // Threads for connections; at least 1.
  int network_threads = 1;
  // Connections between accept and hello at once; more wait in the listen backlog until one
  // finishes. Ten thousand handshakes interleaved on one thread all finish late (each waits
  // behind every other's next step), past the agents' connect timeout, and they all dial
  // again; a bounded number finishes in order.
  size_t max_handshakes = 256;
  // Of those, from one IP address; more are closed as they are accepted, before any TLS (the
  // gateway dials again), so one source cannot fill every slot with handshakes it never ends.
  size_t max_handshakes_per_peer = 64;
  // Connections from one peer that may close before their hello (a failed TLS handshake, no
  // client certificate, no hello in time) in a burst, and how many more a minute after it; past
  // that the peer's new connections are closed as they are accepted, before any TLS, until its
  // bucket refills (controller/peer_penalties.h). Gateways that connect properly never count.
  size_t peer_failures_burst = 20;
  size_t peer_failures_per_min = 60;
  // Bytes queued for one session and not yet written; past this the peer is not reading and
  // the session is closed ("not reading"). At least max_message_bytes.
  size_t max_queued_bytes = 64 * 1024 * 1024;
};

struct AgentHubCallbacks {
  // `session_id` is unique per session for the life of the hub. Return false to reject.
  std::function<bool(uint64_t session_id, const std::string& agent_id, const HelloMessage& hello)>
      on_hello;
  // `verified_with`: set when every signature on the envelope verified, on the network thread,
  // as an ack (verifyDsse with kAckPayloadType) under the public key the session's hello carried
  // (keyid ed25519KeyId of it); absent when the hello carried none or a signature did not
  // verify. A check made off the core thread, against a key the agent announced: it may stand
  // in for the core's own only when that key is the agent's enrolled key (Delivery::onAck).
  std::function<void(const std::string& agent_id, const nlohmann::json& envelope,
                     const std::optional<Ed25519PublicKey>& verified_with)>
      on_ack;
  std::function<void(const std::string& agent_id)> on_disconnect;
  // An audit-shipping message ("audit" or "audit_checkpoint", common/audit_ship.h), its shape
  // already checked. Without this callback such a message closes the session like any unknown
  // type.
  std::function<void(const std::string& agent_id, const nlohmann::json& message)> on_audit;
};

class WebSocketAgentHub : public AgentHub {
 public:
  // Loads the TLS context, binds and starts accepting. Errors: bad TLS files, a bind failure.
  static Result<std::unique_ptr<WebSocketAgentHub>> create(boost::asio::io_context& io,
                                                           AgentHubOptions options,
                                                           AgentHubCallbacks callbacks);
  ~WebSocketAgentHub() override;
  WebSocketAgentHub(const WebSocketAgentHub&) = delete;
  WebSocketAgentHub& operator=(const WebSocketAgentHub&) = delete;

  Status send(const std::string& agent_id, const nlohmann::json& message) override;
  Status sendText(const std::string& agent_id, std::string text) override;
  bool connected(const std::string& agent_id) const override;
  void flush() override;

  // The bound port (the real one when options.port was 0).
  uint16_t port() const;
  // Sessions in any phase, including ones that have not said hello yet (any thread).
  size_t sessionCount() const;
  // Agents connected now, after their hello was accepted (the core thread).
  size_t connectedCount() const;
  // The IP addresses of the agents connected now, after their hello was accepted (a stranger
  // who only opened a TLS connection is not among them): addresses an automatic response must
  // never cut (controller/alert_responder.h).
  std::vector<std::string> agentAddresses() const;
  // Closes the listener and every session and joins the network threads; idempotent.
  void stop();
  // Runs `answered` once every network thread has got to it (on the last of them): the
  // watchdog's probe of those loops (common/watchdog.h). Any thread.
  void probe(std::function<void()> answered);

  class Impl;

 private:
  explicit WebSocketAgentHub(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace shadan::controller

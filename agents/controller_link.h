#pragma once

// The agent's end of the agent channel (PROTOCOL.md "Channel"; issue3 contract): the agent
// dials out to wss://HOST:PORT/v1/agent with its client certificate, pins the controller's
// key, says hello and then receives dispatches and sends acks.
//
// Contracts:
//   - start() validates the options and loads the TLS context (errors as values: bad files, a
//     key readable by others, a malformed pin, a certificate whose CN is not agent_id); from
//     then on the link keeps trying: resolve, TCP connect, TLS 1.3 handshake (pin checked before
//     any byte is sent), WebSocket upgrade, hello {"type":"hello","agent_id","agent_key",
//     "last_seq": callbacks.last_seq(),"version"}, then the read loop.
//   - The session itself (queue, heartbeat, read loop, close) is common/channel_session.h; the
//     messages are common/channel.h.
//   - connected() turns true once the hello is queued (on_connected runs then); a failure at
//     any point closes the connection, runs on_disconnected(reason) if on_connected had run,
//     and schedules the next attempt after a jittered exponential backoff (backoffDelay), to
//     the next of the controllers' addresses when there are several (more_controllers).
//   - send() queues a message only while connected (kUnavailable otherwise). Nothing is kept
//     across connections: the caller keeps its outbox of unacknowledged acks and sends it again
//     from on_connected. Messages on one connection are written in order, one at a time.
//   - Incoming: "dispatch" -> on_dispatch(envelope object); "audit_resume" / "audit_ack"
//     (shape checked) -> on_audit(message); "ping" -> answered with "pong";
//     "pong" -> a sign of life. Any other type, a binary frame, JSON that parseStrictJson
//     refuses or a message over max_message_bytes closes the connection (and a reconnect
//     follows). The link does not verify dispatches: that is agents/orders/order_verifier.h.
//   - Heartbeat: {"type":"ping"} every heartbeat_interval; silence for heartbeat_misses
//     intervals closes the connection.
//   - Single-threaded: everything, callbacks included, runs on the given io_context, which must
//     outlive the link. Destroying the link (or stop()) closes the connection without running
//     on_disconnected, and handlers still queued then do nothing.

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
#include <vector>

#include "agents/controller_address.h"
#include "agents/orders_channel.h"
#include "common/channel.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/tls.h"

namespace shadan::agent {

struct LinkOptions {
  std::string host;
  uint16_t port = 0;
  // Other controllers of the same deployment (several on one etcd, docs/ha.md), dialled in
  // turn: after a failed attempt or a lost connection the next attempt goes to the next
  // address (host:port first, then these, round and round). Same CA and pin for all.
  std::vector<ControllerAddress> more_controllers{};
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string controller_pin;  // hex SHA-256 of the controller's SubjectPublicKeyInfo
  std::string agent_id;        // must equal the CN of cert_file
  std::string agent_keyid;     // keyid of the agent's Ed25519 signing key
  // Its public key, sent in the hello (the controller enrolls it on an operator's approval).
  std::optional<Ed25519PublicKey> agent_public_key = std::nullopt;
  std::string version = SHADAN_VERSION;
  std::chrono::milliseconds connect_timeout{10'000};  // resolve to hello, per attempt
  std::chrono::milliseconds heartbeat_interval = kChannelHeartbeatInterval;
  int heartbeat_misses = kChannelHeartbeatMisses;
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
  double backoff_jitter = 0.2;  // each delay is scaled by a uniform factor in [1-j, 1+j]
  std::chrono::milliseconds backoff_reset_after{30'000};  // a connection this long resets it
  size_t max_message_bytes = kAgentChannelMaxMessageBytes;
  uint64_t jitter_seed = 0;  // 0: from std::random_device
};

struct LinkCallbacks {
  std::function<void(const nlohmann::json& envelope)> on_dispatch;
  std::function<void()> on_connected;
  std::function<void(const std::string& reason)> on_disconnected;
  std::function<uint64_t()> last_seq;  // for the hello; 0 when not given
  // "audit_resume" / "audit_ack" from the controller (common/audit_ship.h), shape checked.
  // Without this callback they close the connection like any unknown type.
  std::function<void(const nlohmann::json& message)> on_audit;
  // A frame the link refused (malformed or duplicate-key JSON, unknown type, binary, larger
  // than max_message_bytes), with the reason; the session is closed right after.
  std::function<void(const std::string& reason)> on_message_rejected;
};

// The delay before reconnect attempt `attempt` (0 = the first retry): initial * 2^attempt,
// capped at max, times (1 + jitter * (2 * unit_random - 1)), unit_random in [0, 1).
std::chrono::milliseconds backoffDelay(const LinkOptions& options, unsigned attempt,
                                       double unit_random);

// The channel's client TLS context from its files (CA, the agent's certificate and key, the
// controller's pin), after checking the certificate is the agent's own (its common name is
// `agent_id`): what start() loads, and what `shadan-agent check-config` checks.
Result<TlsContextPtr> loadLinkTls(const std::string& ca_file, const std::string& cert_file,
                                  const std::string& key_file, const std::string& controller_pin,
                                  const std::string& agent_id);

class ControllerLink : public OrdersChannel {
 public:
  ControllerLink(boost::asio::io_context& io, LinkOptions options, LinkCallbacks callbacks,
                 const Clock& clock);
  ~ControllerLink() override;
  ControllerLink(const ControllerLink&) = delete;
  ControllerLink& operator=(const ControllerLink&) = delete;

  // Validates the options, loads the TLS context and starts the first attempt. Once only.
  Status start();
  // Closes the connection and stops reconnecting; idempotent.
  void stop();

  Status send(const nlohmann::json& message) override;
  bool connected() const override;
  // Since when the link has been without a connection (from start() or the last loss);
  // nullopt while connected.
  std::optional<std::chrono::system_clock::time_point> disconnectedSince() const;
  // Attempts made so far (successful or not); for tests and status.
  uint64_t attempts() const;
  // The controller the current (or next) attempt dials.
  ControllerAddress controller() const;
  // Why the last attempt or connection ended ("" before any failure), e.g.
  // "TLS handshake: controller certificate does not match the pinned key".
  std::string lastError() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace shadan::agent

#pragma once

// One JSON-over-WebSocket session of the agent channel (common/channel.h), the part both ends
// share: the write queue, the heartbeat, the read loop with its checks, and the close. The agent's
// link (agents/controller_link.cc) adds the dialling side (resolve, connect, TLS client
// handshake, WebSocket upgrade, hello); the controller's hub (controller/agent_hub.cc) adds the
// accepting side (TLS server handshake, upgrade request, hello check).
//
// Contracts:
//   - A derived class does its handshakes on ws(), then calls startReading(). Every text frame
//     is strictly parsed (common/strict_json.h: duplicate keys refused) and must be an object
//     with a string "type". Once open (markOpen()), "ping" is answered with "pong" and "pong"
//     only counts as a sign of life; every other message goes to onMessage(). Before markOpen()
//     every message goes to onMessage() (the hub insists on a hello first).
//   - Refused input (a binary frame, a frame over max_message_bytes, malformed JSON, no string
//     "type", a ping or pong with other members) calls reject(reason), whose default is
//     fail(reason); a derived class may report it first.
//   - armDeadline(d, what): unless markOpen() was called within d, fail(what).
//   - startHeartbeat(): a "ping" every heartbeat_interval; a session that received nothing for
//     heartbeat_misses intervals fails with "heartbeat: nothing received for N ms".
//   - write() queues one frame; frames are written in order, one at a time. sendJson() also
//     serialises and checks the size against max_message_bytes. A write() that would take the
//     queue past max_queued_bytes fails the session ("<peer> is not reading: ...") at once: a
//     peer that stops reading costs a bounded amount of memory, and the frame is not queued.
//   - fail(reason) closes the socket at once (no close frame: the peer misbehaved or went
//     silent, or we stop), drops the queue, and calls onClosed(reason, was_open) once.
//   - Single-threaded: everything runs on the stream's executor. The session is owned by
//     shared_ptrs (its owner's and its pending handlers'); handlers that run after fail() do
//     nothing.

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <utility>
// clang-format off
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
// clang-format on
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/channel.h"
#include "common/result.h"
#include "common/tls_socket.h"

namespace shadan {

struct ChannelLimits {
  size_t max_message_bytes = kAgentChannelMaxMessageBytes;
  std::chrono::milliseconds heartbeat_interval = kChannelHeartbeatInterval;
  int heartbeat_misses = kChannelHeartbeatMisses;
  // Who is at the other end, for reasons: "controller" or "agent".
  std::string peer = "peer";
  // Bytes queued and not yet written (the frame being written included) that make the peer one
  // that is not reading: write() past this fails the session instead of growing the queue.
  size_t max_queued_bytes = 64 * 1024 * 1024;
};

// The text of one message, or kInvalidArgument when it cannot be serialised or is larger than
// `max_message_bytes`.
Result<std::string> channelMessageText(const nlohmann::json& message, size_t max_message_bytes);
// kInvalidArgument when a message of `bytes` is larger than `max_message_bytes`.
Status checkChannelMessageSize(size_t bytes, size_t max_message_bytes);

class ChannelSession : public std::enable_shared_from_this<ChannelSession> {
 public:
  using WsStream = boost::beast::websocket::stream<TlsSocket>;

  virtual ~ChannelSession() = default;
  ChannelSession(const ChannelSession&) = delete;
  ChannelSession& operator=(const ChannelSession&) = delete;

  void write(std::string text);
  // kInvalidArgument when the message cannot be serialised or is larger than the channel allows.
  Status sendJson(const nlohmann::json& message);
  void fail(const std::string& reason);

  bool isOpen() const { return open_ && !closed_; }
  bool closed() const { return closed_; }

 protected:
  // The dialling side: a fresh stream on `io`.
  ChannelSession(boost::asio::io_context& io, boost::asio::ssl::context& tls, ChannelLimits limits);
  // The accepting side: a connected socket.
  ChannelSession(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& tls,
                 ChannelLimits limits);

  WsStream& ws() { return ws_; }
  TlsSocket& tls() { return ws_.next_layer(); }
  boost::asio::ip::tcp::socket& socket() { return ws_.next_layer().next_layer(); }
  const ChannelLimits& limits() const { return limits_; }

  void armDeadline(std::chrono::milliseconds delay, std::string what);
  void markOpen();
  void startReading();
  void startHeartbeat();

  // A message that passed the checks above (type is its "type").
  virtual void onMessage(const std::string& type, const nlohmann::json& message) = 0;
  virtual void reject(const std::string& reason) { fail(reason); }
  // Once per session, from fail(). Derived classes release what they hold here.
  virtual void onClosed(const std::string& reason, bool was_open) = 0;

 private:
  void read();
  void handle(const std::string& text);
  void scheduleHeartbeat();
  void writeNext();

  WsStream ws_;
  const ChannelLimits limits_;
  boost::asio::steady_timer deadline_;
  boost::asio::steady_timer heartbeat_timer_;
  boost::beast::flat_buffer read_buffer_;
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  std::chrono::steady_clock::time_point last_received_ = std::chrono::steady_clock::now();
  bool writing_ = false;
  bool open_ = false;
  bool closed_ = false;
};

}  // namespace shadan

#include "controller/agent_hub.h"

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/audit_ship.h"
#include "common/channel_session.h"
#include "common/dsse.h"
#include "common/ed25519.h"
#include "common/logging.h"
#include "common/orders.h"
#include "common/strict_json.h"
#include "common/tls.h"
#include "controller/peer_penalties.h"

namespace shadan::controller {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;

constexpr size_t kUpgradeRequestMaxBytes = 8 * 1024;

}  // namespace

namespace {

class Session;

}  // namespace

Status AgentHub::sendText(const std::string& agent_id, std::string text) {
  auto message =
      parseStrictJson(text, "message to agent " + quoteForMessage(agent_id), text.size());
  if (!message.ok()) return message.error();
  return send(agent_id, *message);
}

class WebSocketAgentHub::Impl : public std::enable_shared_from_this<WebSocketAgentHub::Impl> {
 public:
  Impl(asio::io_context& core, AgentHubOptions options, AgentHubCallbacks callbacks,
       TlsContextPtr tls);
  ~Impl();

  Status listen();
  void start();
  void stop();
  void probe(std::function<void()> answered);
  Status send(const std::string& agent_id, const Json& message);
  Status sendText(const std::string& agent_id, std::string text);
  bool connected(const std::string& agent_id) const;
  // Core thread: what send() queued goes to the network threads now.
  void flushToNet();
  uint16_t port() const { return port_; }
  size_t sessionCount() const { return session_count_.load(); }
  std::vector<std::string> agentAddresses() const;
  size_t connectedCount() const { return current_.size(); }

  // Network threads: a session's events, handed to the core thread in order.
  void helloFromNet(const std::shared_ptr<Session>& session, const HelloMessage& hello);
  void messageFromNet(const std::shared_ptr<Session>& session, bool audit, Json message,
                      std::optional<Ed25519PublicKey> verified_with = std::nullopt);
  void endedOnNet(const std::shared_ptr<Session>& session);

  // A session from `address` said hello, or closed before (`failed`: the peer's bucket of
  // failures pays for it): its handshake slot is free (any network thread).
  // `key` is the peer's PeerPenalties::peerKey, charged a failure when `failed`.
  void handshakeDone(const std::string& address, const std::string& key, bool failed);

  // Network thread `net`: a session closed before its hello; the count to log now, or 0.
  uint64_t unfinishedClosed(size_t net) {
    return nets_[net]->unfinished_closed.tick(std::chrono::steady_clock::now());
  }

  bool handlesAudit() const { return static_cast<bool>(callbacks_.on_audit); }
  spdlog::logger& log() { return *log_; }

 private:
  // One network thread's world: its io_context and the sessions living on it (touched only
  // on that thread).
  struct Net {
    asio::io_context io{1};
    std::unordered_map<uint64_t, std::shared_ptr<Session>> sessions;
    // Events for the core thread made in this turn of the loop: they go over in one post.
    std::vector<std::function<void(Impl&)>> to_core;
    EveryInterval unfinished_closed{std::chrono::seconds(1)};  // sessions closed before hello
    std::thread thread;
  };
  // From the core thread to a session: a message to write, or the reason to close it.
  struct Outgoing {
    uint64_t session_id = 0;
    bool close = false;
    std::string text;  // the message, or the reason
  };
  // What the core thread knows of an agent's current session.
  struct Current {
    uint64_t session_id = 0;
    size_t net = 0;
    std::string address;
  };

  void accept();
  // Network thread `net`: queues `event` for the core thread. One post per turn of the loop,
  // not per message: at a fan-out's thousand acks, a post each made the two threads contend
  // for the core's queue lock (and wait out each other's preemption on a busy machine).
  void toCore(size_t net, std::function<void(Impl&)> event);
  // Core thread: queues `item` for its session's network thread, likewise one post per turn.
  void toNet(size_t net, Outgoing item);
  static Error notConnected(const std::string& agent_id);
  // Core thread.
  void helloOnCore(uint64_t session_id, size_t net, const std::string& address,
                   const HelloMessage& hello);
  void endedOnCore(uint64_t session_id, const std::string& agent_id);

  // Declared first: destroyed last, after the acceptor and sessions that live on them.
  std::vector<std::unique_ptr<Net>> nets_;
  asio::io_context& core_;
  const AgentHubOptions options_;
  const AgentHubCallbacks callbacks_;
  TlsContextPtr tls_;
  tcp::acceptor acceptor_;          // nets_[0]
  asio::steady_timer retry_timer_;  // nets_[0]
  std::shared_ptr<spdlog::logger> log_;
  uint16_t port_ = 0;
  std::atomic<size_t> session_count_{0};
  uint64_t next_session_id_ = 1;  // nets_[0]
  size_t handshaking_ = 0;        // nets_[0]: sessions accepted that have not said hello
  std::unordered_map<std::string, size_t> handshaking_per_peer_;  // nets_[0]: by address
  PeerPenalties penalties_;  // nets_[0]: peers whose connections close before hello
  EveryInterval refused_{std::chrono::seconds(1)};  // nets_[0]
  bool accept_paused_ = false;                      // nets_[0]: max_handshakes reached
  bool started_ = false;
  // Core thread.
  bool stopped_ = false;
  std::map<std::string, Current> current_;     // agent id -> its current session
  std::set<uint64_t> accepted_;                // sessions whose hello was accepted, until they end
  std::vector<std::vector<Outgoing>> to_net_;  // per network thread, waiting for flushToNet()
  bool to_net_posted_ = false;
};

namespace {

// One agent connection: the accepting half of the channel on top of the shared session
// (common/channel_session.h). Lives on one network thread, owned by that thread's session
// table and by its pending handlers; holds the hub weakly so handlers that outlive the hub do
// nothing.
class Session : public ChannelSession {
 public:
  Session(tcp::socket socket, asio::ssl::context& tls, std::weak_ptr<WebSocketAgentHub::Impl> hub,
          uint64_t id, size_t net, std::string address, std::string peer_key,
          const AgentHubOptions& options)
      : ChannelSession(std::move(socket), tls,
                       ChannelLimits{options.max_message_bytes, options.heartbeat_interval,
                                     options.heartbeat_misses, "agent", options.max_queued_bytes}),
        hub_(std::move(hub)),
        id_(id),
        net_(net),
        hello_timeout_(options.hello_timeout),
        address_(std::move(address)),
        peer_key_(std::move(peer_key)) {}

  uint64_t id() const { return id_; }
  size_t net() const { return net_; }
  const std::string& agentId() const { return agent_id_; }
  const std::string& address() const { return address_; }

  void start() {
    armDeadline(hello_timeout_,
                "no hello within " + std::to_string(hello_timeout_.count()) + " ms");
    tls().async_handshake(asio::ssl::stream_base::server,
                          [self = shared(), this](beast::error_code ec) { onTlsHandshake(ec); });
  }

 private:
  std::shared_ptr<Session> shared() {
    return std::static_pointer_cast<Session>(shared_from_this());
  }

  // The peer misbehaved, went silent or was replaced, or the hub stops.
  void onClosed(const std::string& reason, bool) override {
    if (auto hub = hub_.lock()) {
      if (hello_done_) {
        hub->log().info("session={} agent={} event=closed reason=\"{}\"", id_, agent_id_, reason);
      } else {
        hub->handshakeDone(address_, peer_key_, /*failed=*/true);
        // Connections that never said hello come by the thousand in a flood or a reconnect
        // storm: one line a second per network thread, with a count.
        if (const uint64_t count = hub->unfinishedClosed(net_)) {
          hub->log().info(
              "event=closed_before_hello count={} last_session={} last_peer={} last_agent={} "
              "reason=\"{}\"",
              count, id_, address_, agent_id_.empty() ? "-" : agent_id_, reason);
        }
      }
      hub->endedOnNet(shared());
    }
  }

  void onTlsHandshake(beast::error_code ec) {
    if (closed()) return;
    SSL* ssl = tls().native_handle();
    if (ec) return fail("TLS handshake: " + tlsHandshakeFailureReason(ec, ssl));
    auto name = peerCommonName(ssl);
    if (!name.ok()) return fail("client certificate: " + name.error().message);
    agent_id_ = *name;
    parser_.emplace();
    parser_->header_limit(kUpgradeRequestMaxBytes);
    parser_->body_limit(kUpgradeRequestMaxBytes);
    http::async_read(
        tls(), buffer_, *parser_,
        [self = shared(), this](beast::error_code read_ec, size_t) { onUpgradeRequest(read_ec); });
  }

  void onUpgradeRequest(beast::error_code ec) {
    if (closed()) return;
    if (ec) return fail("upgrade request: " + ec.message());
    const auto& request = parser_->get();
    if (request.target() != kAgentChannelPath || !websocket::is_upgrade(request)) {
      const bool path_ok = request.target() == kAgentChannelPath;
      response_.emplace(path_ok ? http::status::bad_request : http::status::not_found,
                        request.version());
      response_->set(http::field::content_type, "text/plain");
      response_->body() = path_ok ? "WebSocket upgrade required\n" : "not found\n";
      response_->keep_alive(false);
      response_->prepare_payload();
      const std::string reason = path_ok ? "not a WebSocket upgrade" : "unknown path";
      http::async_write(tls(), *response_, [self = shared(), reason](beast::error_code, size_t) {
        self->fail(reason);
      });
      return;
    }
    ws().read_message_max(limits().max_message_bytes);
    ws().set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
      response.set(http::field::server, "shadan-controller");
    }));
    ws().async_accept(request, [self = shared(), this](beast::error_code accept_ec) {
      if (closed()) return;
      if (accept_ec) return fail("WebSocket accept: " + accept_ec.message());
      parser_.reset();
      buffer_ = beast::flat_buffer();
      startReading();
    });
  }

  void onMessage(const std::string& type, const Json& message) override {
    auto hub = hub_.lock();
    if (!hub) return;
    if (type == kHelloType) {
      if (hello_done_) return fail("second hello");
      auto hello = parseHelloMessage(message);
      if (!hello.ok()) return fail("malformed " + hello.error().message);
      if (hello->agent_id != agent_id_) {
        return fail("hello agent_id " + quoteForMessage(hello->agent_id) +
                    " differs from the certificate's CN " + quoteForMessage(agent_id_));
      }
      hello_done_ = true;
      if (hello->public_key) {
        hello_key_ = *hello->public_key;
        hello_keyid_ = ed25519KeyId(*hello->public_key);
      }
      markOpen();
      hub->handshakeDone(address_, peer_key_, /*failed=*/false);
      hub->log().info("session={} agent={} event=hello last_seq={} version={}", id_, agent_id_,
                      hello->last_seq, quoteForMessage(hello->version));
      // The core thread decides; a rejected session is closed from there.
      hub->helloFromNet(shared(), *hello);
      startHeartbeat();
      return;
    }
    if (!hello_done_) return fail("first message is " + quoteForMessage(type) + ", not hello");
    if (type == kAckType) {
      auto envelope = channelEnvelope(message);
      if (!envelope.ok()) return fail("malformed message: " + envelope.error().message);
      hub->messageFromNet(shared(), false, Json(**envelope), verifiedWithHelloKey(**envelope));
    } else if ((type == kAuditEntriesType || type == kAuditCheckpointType) && hub->handlesAudit()) {
      std::optional<Error> shape;
      if (type == kAuditEntriesType) {
        if (auto first = parseAuditEntries(message); !first.ok()) shape = first.error();
      } else if (auto second = parseAuditCheckpointMessage(message); !second.ok()) {
        shape = second.error();
      }
      if (shape) return fail("malformed message: " + shape->message);
      hub->messageFromNet(shared(), true, Json(message));
    } else {
      fail("unknown message type " + quoteForMessage(type));
    }
  }

  // The hello's key when every signature on the ack `envelope` verifies with it: the costly
  // part of checking an ack, done here so the core thread need not (AgentHubCallbacks::on_ack).
  std::optional<Ed25519PublicKey> verifiedWithHelloKey(const Json& envelope) const {
    if (!hello_key_) return std::nullopt;
    auto parsed = dsseEnvelopeFromJson(envelope, "ack", "/envelope");
    if (!parsed.ok()) return std::nullopt;  // the core refuses it with the reason
    auto verification = verifyDsse(*parsed, kAckPayloadType, [this](std::string_view keyid) {
      return keyid == hello_keyid_ ? hello_key_ : std::nullopt;
    });
    if (!verification.ok() || !verification->allValid()) return std::nullopt;
    return hello_key_;
  }

  std::weak_ptr<WebSocketAgentHub::Impl> hub_;
  const uint64_t id_;
  const size_t net_;
  const std::chrono::milliseconds hello_timeout_;
  const std::string address_;
  const std::string peer_key_;  // PeerPenalties::peerKey(address_), charged when it fails
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::string agent_id_;
  bool hello_done_ = false;
  std::optional<Ed25519PublicKey> hello_key_;  // the key the hello carried, if any
  std::string hello_keyid_;
};

}  // namespace

WebSocketAgentHub::Impl::Impl(asio::io_context& core, AgentHubOptions options,
                              AgentHubCallbacks callbacks, TlsContextPtr tls)
    : nets_([&] {
        std::vector<std::unique_ptr<Net>> nets;
        for (int i = 0; i < std::max(1, options.network_threads); ++i) {
          nets.push_back(std::make_unique<Net>());
        }
        return nets;
      }()),
      core_(core),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      tls_(std::move(tls)),
      acceptor_(nets_[0]->io),
      retry_timer_(nets_[0]->io),
      log_(logger("hub")),
      penalties_(options_.peer_failures_burst, options_.peer_failures_per_min),
      to_net_(nets_.size()) {}

WebSocketAgentHub::Impl::~Impl() {
  // stop() ran (the hub's destructor calls it); this only covers a failed create().
  for (auto& net : nets_) {
    net->io.stop();
    if (net->thread.joinable()) net->thread.join();
  }
}

Status WebSocketAgentHub::Impl::listen() {
  beast::error_code ec;
  const auto address = asio::ip::make_address(options_.bind_address, ec);
  if (ec) {
    return makeError(
        ErrorCode::kInvalidArgument,
        "bind address " + quoteForMessage(options_.bind_address) + ": " + ec.message());
  }
  const tcp::endpoint endpoint(address, options_.port);
  const std::string where = options_.bind_address + " port " + std::to_string(options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return makeError(ErrorCode::kIo, "agent channel: listen on " + where + ": " + ec.message());
  port_ = acceptor_.local_endpoint(ec).port();
  if (ec) return makeError(ErrorCode::kIo, "agent channel: " + where + ": " + ec.message());
  log_->info("event=listening address={} port={} path={} threads={}", options_.bind_address, port_,
             kAgentChannelPath, nets_.size());
  return okStatus();
}

void WebSocketAgentHub::Impl::start() {
  started_ = true;
  accept();
  for (size_t i = 0; i < nets_.size(); ++i) {
    Net& net = *nets_[i];
    net.thread = std::thread([&net, i] {
      const std::string name = "shadan-hub-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      // Sessions come and go; the thread stays until stop().
      auto work = asio::make_work_guard(net.io);
      net.io.run();
    });
  }
}

void WebSocketAgentHub::Impl::accept() {
  // Sessions are spread over the network threads; the acceptor lives on the first.
  const uint64_t id = next_session_id_;
  const size_t index = id % nets_.size();
  acceptor_.async_accept(nets_[index]->io, [weak = weak_from_this(), index](beast::error_code ec,
                                                                            tcp::socket socket) {
    auto self = weak.lock();
    if (!self || !self->acceptor_.is_open() || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors and the like: log and retry shortly rather than spin.
      self->log_->warn("event=accept_failed error=\"{}\"", ec.message());
      self->retry_timer_.expires_after(std::chrono::milliseconds(200));
      self->retry_timer_.async_wait([weak](beast::error_code wait_ec) {
        if (auto hub = weak.lock(); hub && !wait_ec && hub->acceptor_.is_open()) hub->accept();
      });
      return;
    }
    beast::error_code peer_ec;
    const tcp::endpoint peer = socket.remote_endpoint(peer_ec);
    if (peer_ec) return self->accept();  // gone already; the socket closes here
    std::string address = peer.address().to_string();
    const auto now = std::chrono::steady_clock::now();
    std::string key = PeerPenalties::peerKey(peer.address());
    const bool admitted = self->penalties_.admits(key, now);
    const auto known = self->handshaking_per_peer_.find(address);
    const size_t handshaking = known == self->handshaking_per_peer_.end() ? 0 : known->second;
    if (!admitted || handshaking >= self->options_.max_handshakes_per_peer) {
      // Closed before any TLS; the limits are per address, the count logged once a second.
      if (const uint64_t count = self->refused_.tick(now)) {
        self->log_->warn("event=connections_refused count={} limit={} last_peer={} handshaking={}",
                         count, admitted ? "max_handshakes_per_peer" : "peer_failures", address,
                         self->handshaking_);
      }
      return self->accept();
    }
    size_t& from_peer = self->handshaking_per_peer_[address];
    ++from_peer;
    beast::error_code option_ec;
    socket.set_option(tcp::no_delay(true), option_ec);
    const uint64_t session_id = self->next_session_id_++;
    ++self->session_count_;
    ++self->handshaking_;
    asio::post(
        self->nets_[index]->io, [weak, index, session_id, address = std::move(address),
                                 key = std::move(key), socket = std::move(socket)]() mutable {
          auto hub = weak.lock();
          if (!hub) return;
          auto session =
              std::make_shared<Session>(std::move(socket), *hub->tls_, weak, session_id, index,
                                        std::move(address), std::move(key), hub->options_);
          hub->nets_[index]->sessions.emplace(session_id, session);
          session->start();
        });
    if (self->handshaking_ >= self->options_.max_handshakes) {
      self->accept_paused_ = true;  // handshakeDone() resumes
      return;
    }
    self->accept();
  });
}

void WebSocketAgentHub::Impl::handshakeDone(const std::string& address, const std::string& key,
                                            bool failed) {
  asio::post(nets_[0]->io, [weak = weak_from_this(), address, key, failed] {
    auto self = weak.lock();
    if (!self) return;
    if (failed) self->penalties_.fail(key, std::chrono::steady_clock::now());
    if (self->handshaking_ == 0) return;
    --self->handshaking_;
    if (auto it = self->handshaking_per_peer_.find(address);
        it != self->handshaking_per_peer_.end() && --it->second == 0) {
      self->handshaking_per_peer_.erase(it);
    }
    if (self->accept_paused_ && self->acceptor_.is_open() &&
        self->handshaking_ < self->options_.max_handshakes) {
      self->accept_paused_ = false;
      self->accept();
    }
  });
}

void WebSocketAgentHub::Impl::stop() {
  if (!stopped_) {
    stopped_ = true;
    current_.clear();
    accepted_.clear();
  }
  if (!started_) return;
  started_ = false;
  for (size_t i = 0; i < nets_.size(); ++i) {
    Net& net = *nets_[i];
    asio::post(net.io, [this, &net, i] {
      if (i == 0) {
        beast::error_code ignored;
        acceptor_.close(ignored);
        retry_timer_.cancel();
      }
      // Sessions tell endedOnNet(), which leaves the table alone once it has been taken.
      auto sessions = std::move(net.sessions);
      net.sessions.clear();
      for (auto& [id, session] : sessions) session->fail("hub stopped");
      net.io.stop();
    });
  }
  for (auto& net : nets_) {
    if (net->thread.joinable()) net->thread.join();
  }
  session_count_ = 0;
}

void WebSocketAgentHub::Impl::toCore(size_t net, std::function<void(Impl&)> event) {
  Net& n = *nets_[net];
  n.to_core.push_back(std::move(event));
  if (n.to_core.size() > 1) return;
  // Runs after the handlers ready in this turn, so their events ride along.
  asio::post(n.io, [weak = weak_from_this(), net] {
    auto self = weak.lock();
    if (!self) return;
    auto events = std::move(self->nets_[net]->to_core);
    self->nets_[net]->to_core.clear();
    asio::post(self->core_, [weak, events = std::move(events)] {
      auto hub = weak.lock();
      if (!hub) return;
      for (const auto& queued : events) queued(*hub);
    });
  });
}

void WebSocketAgentHub::Impl::toNet(size_t net, Outgoing item) {
  to_net_[net].push_back(std::move(item));
  if (to_net_posted_) return;
  to_net_posted_ = true;
  asio::post(core_, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->flushToNet();
  });
}

void WebSocketAgentHub::Impl::flushToNet() {
  to_net_posted_ = false;
  for (size_t net = 0; net < nets_.size(); ++net) {
    if (to_net_[net].empty()) continue;
    asio::post(nets_[net]->io,
               [weak = weak_from_this(), net, items = std::exchange(to_net_[net], {})]() mutable {
                 auto self = weak.lock();
                 if (!self) return;
                 auto& sessions = self->nets_[net]->sessions;
                 for (Outgoing& item : items) {
                   auto found = sessions.find(item.session_id);
                   if (found == sessions.end()) continue;  // ended meanwhile
                   if (item.close) {
                     const std::shared_ptr<Session> session = found->second;
                     session->fail(item.text);
                   } else {
                     found->second->write(std::move(item.text));
                   }
                 }
               });
  }
}

void WebSocketAgentHub::Impl::helloFromNet(const std::shared_ptr<Session>& session,
                                           const HelloMessage& hello) {
  toCore(session->net(), [id = session->id(), net = session->net(), address = session->address(),
                          hello](Impl& hub) { hub.helloOnCore(id, net, address, hello); });
}

void WebSocketAgentHub::Impl::messageFromNet(const std::shared_ptr<Session>& session, bool audit,
                                             Json message,
                                             std::optional<Ed25519PublicKey> verified_with) {
  toCore(session->net(), [id = session->id(), agent_id = session->agentId(), audit,
                          message = std::move(message), verified_with](Impl& hub) {
    if (hub.stopped_ || hub.accepted_.count(id) == 0) return;
    if (audit) {
      if (hub.callbacks_.on_audit) hub.callbacks_.on_audit(agent_id, message);
    } else if (hub.callbacks_.on_ack) {
      hub.callbacks_.on_ack(agent_id, message, verified_with);
    }
  });
}

void WebSocketAgentHub::Impl::endedOnNet(const std::shared_ptr<Session>& session) {
  // Only while the table still holds it: stop() takes the table first.
  auto& sessions = nets_[session->net()]->sessions;
  if (sessions.erase(session->id()) == 0) return;
  --session_count_;
  toCore(session->net(), [id = session->id(), agent_id = session->agentId()](Impl& hub) {
    hub.endedOnCore(id, agent_id);
  });
}

void WebSocketAgentHub::Impl::helloOnCore(uint64_t session_id, size_t net,
                                          const std::string& address, const HelloMessage& hello) {
  if (stopped_) return;
  std::optional<Current> previous;
  if (auto it = current_.find(hello.agent_id); it != current_.end()) previous = it->second;
  // Current before on_hello runs, so the callback can already send to this session.
  current_[hello.agent_id] = Current{session_id, net, address};
  accepted_.insert(session_id);
  const bool accepted =
      !callbacks_.on_hello || callbacks_.on_hello(session_id, hello.agent_id, hello);
  if (stopped_) return;
  if (!accepted) {
    accepted_.erase(session_id);
    auto it = current_.find(hello.agent_id);
    if (it != current_.end() && it->second.session_id == session_id) {
      if (previous) {
        it->second = *previous;
      } else {
        current_.erase(it);
      }
    }
    return toNet(net, Outgoing{session_id, true, "hello rejected"});
  }
  if (previous && previous->session_id != session_id) {
    accepted_.erase(previous->session_id);
    toNet(previous->net, Outgoing{previous->session_id, true,
                                  "replaced by session " + std::to_string(session_id)});
  }
}

void WebSocketAgentHub::Impl::endedOnCore(uint64_t session_id, const std::string& agent_id) {
  if (stopped_) return;
  accepted_.erase(session_id);
  auto current = current_.find(agent_id);
  if (current == current_.end() || current->second.session_id != session_id) return;
  current_.erase(current);
  if (callbacks_.on_disconnect) callbacks_.on_disconnect(agent_id);
}

std::vector<std::string> WebSocketAgentHub::Impl::agentAddresses() const {
  std::vector<std::string> out;
  for (const auto& [agent_id, current] : current_) {
    if (!current.address.empty()) out.push_back(current.address);
  }
  return out;
}

Status WebSocketAgentHub::Impl::send(const std::string& agent_id, const Json& message) {
  if (!connected(agent_id)) return notConnected(agent_id);
  SHADAN_ASSIGN_OR_RETURN(std::string text,
                          channelMessageText(message, options_.max_message_bytes));
  return sendText(agent_id, std::move(text));
}

Status WebSocketAgentHub::Impl::sendText(const std::string& agent_id, std::string text) {
  auto it = current_.find(agent_id);
  if (stopped_ || it == current_.end()) return notConnected(agent_id);
  SHADAN_RETURN_IF_ERROR(checkChannelMessageSize(text.size(), options_.max_message_bytes));
  toNet(it->second.net, Outgoing{it->second.session_id, false, std::move(text)});
  return okStatus();
}

Error WebSocketAgentHub::Impl::notConnected(const std::string& agent_id) {
  return makeError(ErrorCode::kUnavailable,
                   "agent " + quoteForMessage(agent_id) + " is not connected");
}

bool WebSocketAgentHub::Impl::connected(const std::string& agent_id) const {
  return !stopped_ && current_.count(agent_id) != 0;
}

Result<std::unique_ptr<WebSocketAgentHub>> WebSocketAgentHub::create(asio::io_context& io,
                                                                     AgentHubOptions options,
                                                                     AgentHubCallbacks callbacks) {
  if (options.heartbeat_interval.count() <= 0 || options.heartbeat_misses < 1 ||
      options.hello_timeout.count() <= 0 || options.max_message_bytes == 0 ||
      options.network_threads < 1 || options.max_handshakes == 0 ||
      options.max_handshakes_per_peer == 0 || options.peer_failures_burst == 0 ||
      options.peer_failures_per_min == 0) {
    return makeError(ErrorCode::kInvalidArgument,
                     "agent channel: heartbeat, hello timeout, message size, handshake limits, "
                     "peer failures and threads must be positive");
  }
  if (options.max_queued_bytes < options.max_message_bytes) {
    return makeError(ErrorCode::kInvalidArgument,
                     "agent channel: max_queued_bytes must hold one message of max_message_bytes");
  }
  auto tls =
      makeServerTlsContext(options.ca_file, options.cert_file, options.key_file, options.crl_file);
  if (!tls.ok()) return tls.error().withContext("agent channel TLS");
  auto impl = std::make_shared<Impl>(io, std::move(options), std::move(callbacks), *tls);
  SHADAN_RETURN_IF_ERROR(impl->listen());
  impl->start();
  return std::unique_ptr<WebSocketAgentHub>(new WebSocketAgentHub(std::move(impl)));
}

WebSocketAgentHub::WebSocketAgentHub(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

WebSocketAgentHub::~WebSocketAgentHub() { impl_->stop(); }

Status WebSocketAgentHub::send(const std::string& agent_id, const Json& message) {
  return impl_->send(agent_id, message);
}

Status WebSocketAgentHub::sendText(const std::string& agent_id, std::string text) {
  return impl_->sendText(agent_id, std::move(text));
}

bool WebSocketAgentHub::connected(const std::string& agent_id) const {
  return impl_->connected(agent_id);
}

void WebSocketAgentHub::flush() { impl_->flushToNet(); }

uint16_t WebSocketAgentHub::port() const { return impl_->port(); }

size_t WebSocketAgentHub::sessionCount() const { return impl_->sessionCount(); }

size_t WebSocketAgentHub::connectedCount() const { return impl_->connectedCount(); }

std::vector<std::string> WebSocketAgentHub::agentAddresses() const {
  return impl_->agentAddresses();
}

void WebSocketAgentHub::stop() { impl_->stop(); }

void WebSocketAgentHub::probe(std::function<void()> answered) { impl_->probe(std::move(answered)); }

void WebSocketAgentHub::Impl::probe(std::function<void()> answered) {
  struct Round {
    std::atomic<size_t> left;
    std::function<void()> answered;
  };
  auto round = std::make_shared<Round>();
  round->left = nets_.size();
  round->answered = std::move(answered);
  for (const auto& net : nets_) {
    asio::post(net->io, [round] {
      if (round->left.fetch_sub(1) == 1) round->answered();
    });
  }
}

}  // namespace shadan::controller

#include "controller/agent_hub.h"

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <map>
#include <utility>

#include "common/audit_ship.h"
#include "common/channel_session.h"
#include "common/logging.h"
#include "common/strict_json.h"
#include "common/tls.h"

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

class WebSocketAgentHub::Impl : public std::enable_shared_from_this<WebSocketAgentHub::Impl> {
 public:
  Impl(asio::io_context& io, AgentHubOptions options, AgentHubCallbacks callbacks,
       TlsContextPtr tls)
      : io_(io),
        options_(std::move(options)),
        callbacks_(std::move(callbacks)),
        tls_(std::move(tls)),
        acceptor_(io),
        retry_timer_(io),
        log_(logger("hub")) {}

  Status listen();
  void accept();
  void stop();
  Status send(const std::string& agent_id, const Json& message);
  bool connected(const std::string& agent_id) const;
  uint16_t port() const { return port_; }
  size_t sessionCount() const { return sessions_.size(); }
  std::vector<std::string> agentAddresses() const;

  // Called by sessions (on the io_context thread).
  bool helloReceived(const std::shared_ptr<Session>& session, const HelloMessage& hello);
  void ackReceived(const std::string& agent_id, const Json& envelope) {
    if (callbacks_.on_ack) callbacks_.on_ack(agent_id, envelope);
  }
  bool handlesAudit() const { return static_cast<bool>(callbacks_.on_audit); }
  void auditReceived(const std::string& agent_id, const Json& message) {
    if (callbacks_.on_audit) callbacks_.on_audit(agent_id, message);
  }
  void sessionEnded(uint64_t session_id, const std::string& agent_id);

  const AgentHubOptions& options() const { return options_; }
  spdlog::logger& log() { return *log_; }

 private:
  asio::io_context& io_;
  AgentHubOptions options_;
  AgentHubCallbacks callbacks_;
  TlsContextPtr tls_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  std::shared_ptr<spdlog::logger> log_;
  uint16_t port_ = 0;
  bool stopped_ = false;
  uint64_t next_session_id_ = 1;
  std::map<uint64_t, std::shared_ptr<Session>> sessions_;
  std::map<std::string, std::shared_ptr<Session>> current_;  // agent id -> its session
  std::map<uint64_t, std::string> addresses_;                // session id -> peer IP
};

namespace {

// One agent connection: the accepting half of the channel on top of the shared session
// (common/channel_session.h). Owned by the hub's session map and by its pending handlers;
// holds the hub weakly so handlers that outlive the hub do nothing.
class Session : public ChannelSession {
 public:
  Session(tcp::socket socket, asio::ssl::context& tls, std::weak_ptr<WebSocketAgentHub::Impl> hub,
          uint64_t id, const AgentHubOptions& options)
      : ChannelSession(std::move(socket), tls,
                       ChannelLimits{options.max_message_bytes, options.heartbeat_interval,
                                     options.heartbeat_misses, "agent"}),
        hub_(std::move(hub)),
        id_(id),
        options_(options) {}

  uint64_t id() const { return id_; }
  const std::string& agentId() const { return agent_id_; }

  void start() {
    armDeadline(options_.hello_timeout,
                "no hello within " + std::to_string(options_.hello_timeout.count()) + " ms");
    ws().next_layer().async_handshake(
        asio::ssl::stream_base::server,
        [self = shared(), this](beast::error_code ec) { onTlsHandshake(ec); });
  }

 private:
  std::shared_ptr<Session> shared() {
    return std::static_pointer_cast<Session>(shared_from_this());
  }

  // The peer misbehaved, went silent or was replaced, or the hub stops.
  void onClosed(const std::string& reason, bool) override {
    if (auto hub = hub_.lock()) {
      hub->log().info("session={} agent={} event=closed reason=\"{}\"", id_,
                      agent_id_.empty() ? "-" : agent_id_, reason);
      hub->sessionEnded(id_, agent_id_);
    }
  }

  void onTlsHandshake(beast::error_code ec) {
    if (closed()) return;
    SSL* ssl = ws().next_layer().native_handle();
    if (ec) return fail("TLS handshake: " + tlsHandshakeFailureReason(ec, ssl));
    auto name = peerCommonName(ssl);
    if (!name.ok()) return fail("client certificate: " + name.error().message);
    agent_id_ = *name;
    parser_.emplace();
    parser_->header_limit(kUpgradeRequestMaxBytes);
    parser_->body_limit(kUpgradeRequestMaxBytes);
    http::async_read(
        ws().next_layer(), buffer_, *parser_,
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
      http::async_write(
          ws().next_layer(), *response_,
          [self = shared(), reason](beast::error_code, size_t) { self->fail(reason); });
      return;
    }
    ws().read_message_max(options_.max_message_bytes);
    ws().set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
      response.set(http::field::server, "shadan-controller");
    }));
    ws().async_accept(request, [self = shared(), this](beast::error_code accept_ec) {
      if (closed()) return;
      if (accept_ec) return fail("WebSocket accept: " + accept_ec.message());
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
      markOpen();
      hub->log().info("session={} agent={} event=hello last_seq={} version={}", id_, agent_id_,
                      hello->last_seq, quoteForMessage(hello->version));
      if (!hub->helloReceived(shared(), *hello)) return fail("hello rejected");
      startHeartbeat();
      return;
    }
    if (!hello_done_) return fail("first message is " + quoteForMessage(type) + ", not hello");
    if (type == kAckType) {
      auto envelope = channelEnvelope(message);
      if (!envelope.ok()) return fail("malformed message: " + envelope.error().message);
      hub->ackReceived(agent_id_, **envelope);
    } else if ((type == kAuditEntriesType || type == kAuditCheckpointType) && hub->handlesAudit()) {
      std::optional<Error> shape;
      if (type == kAuditEntriesType) {
        if (auto first = parseAuditEntries(message); !first.ok()) shape = first.error();
      } else if (auto second = parseAuditCheckpointMessage(message); !second.ok()) {
        shape = second.error();
      }
      if (shape) return fail("malformed message: " + shape->message);
      hub->auditReceived(agent_id_, message);
    } else {
      fail("unknown message type " + quoteForMessage(type));
    }
  }

  std::weak_ptr<WebSocketAgentHub::Impl> hub_;
  const uint64_t id_;
  const AgentHubOptions options_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::string agent_id_;
  bool hello_done_ = false;
};

}  // namespace

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
  log_->info("event=listening address={} port={} path={}", options_.bind_address, port_,
             kAgentChannelPath);
  return okStatus();
}

void WebSocketAgentHub::Impl::accept() {
  acceptor_.async_accept([weak = weak_from_this()](beast::error_code ec, tcp::socket socket) {
    auto self = weak.lock();
    if (!self || self->stopped_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors and the like: log and retry shortly rather than spin.
      self->log_->warn("event=accept_failed error=\"{}\"", ec.message());
      self->retry_timer_.expires_after(std::chrono::milliseconds(200));
      self->retry_timer_.async_wait([weak](beast::error_code wait_ec) {
        if (auto hub = weak.lock(); hub && !wait_ec && !hub->stopped_) hub->accept();
      });
      return;
    }
    beast::error_code option_ec;
    socket.set_option(tcp::no_delay(true), option_ec);
    const uint64_t id = self->next_session_id_++;
    if (auto endpoint = socket.remote_endpoint(option_ec); !option_ec) {
      self->addresses_[id] = endpoint.address().to_string();
    }
    auto session =
        std::make_shared<Session>(std::move(socket), *self->tls_, weak, id, self->options_);
    self->sessions_.emplace(id, session);
    session->start();
    self->accept();
  });
}

void WebSocketAgentHub::Impl::stop() {
  if (stopped_) return;
  stopped_ = true;
  beast::error_code ec;
  acceptor_.close(ec);
  retry_timer_.cancel();
  // Sessions tell sessionEnded(), which ignores them once stopped_ is set.
  auto sessions = std::move(sessions_);
  sessions_.clear();
  current_.clear();
  for (auto& [id, session] : sessions) session->fail("hub stopped");
}

bool WebSocketAgentHub::Impl::helloReceived(const std::shared_ptr<Session>& session,
                                            const HelloMessage& hello) {
  if (stopped_) return false;
  std::shared_ptr<Session> previous;
  if (auto it = current_.find(hello.agent_id); it != current_.end()) previous = it->second;
  // Current before on_hello runs, so the callback can already send to this session.
  current_[hello.agent_id] = session;
  const bool accepted =
      !callbacks_.on_hello || callbacks_.on_hello(session->id(), hello.agent_id, hello);
  if (stopped_) return false;
  if (!accepted) {
    auto it = current_.find(hello.agent_id);
    if (it != current_.end() && it->second == session) {
      if (previous && !previous->closed()) {
        it->second = previous;
      } else {
        current_.erase(it);
      }
    }
    return false;
  }
  if (previous && previous != session) {
    previous->fail("replaced by session " + std::to_string(session->id()));
  }
  return true;
}

std::vector<std::string> WebSocketAgentHub::Impl::agentAddresses() const {
  std::vector<std::string> out;
  for (const auto& [agent_id, session] : current_) {
    auto it = addresses_.find(session->id());
    if (it != addresses_.end()) out.push_back(it->second);
  }
  return out;
}

void WebSocketAgentHub::Impl::sessionEnded(uint64_t session_id, const std::string& agent_id) {
  if (stopped_) return;
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return;
  const std::shared_ptr<Session> session = it->second;
  sessions_.erase(it);
  addresses_.erase(session_id);
  auto current = current_.find(agent_id);
  if (current == current_.end() || current->second != session) return;
  current_.erase(current);
  if (callbacks_.on_disconnect) callbacks_.on_disconnect(agent_id);
}

Status WebSocketAgentHub::Impl::send(const std::string& agent_id, const Json& message) {
  auto it = current_.find(agent_id);
  if (stopped_ || it == current_.end() || it->second->closed()) {
    return makeError(ErrorCode::kUnavailable,
                     "agent " + quoteForMessage(agent_id) + " is not connected");
  }
  return it->second->sendJson(message);
}

bool WebSocketAgentHub::Impl::connected(const std::string& agent_id) const {
  auto it = current_.find(agent_id);
  return !stopped_ && it != current_.end() && !it->second->closed();
}

Result<std::unique_ptr<WebSocketAgentHub>> WebSocketAgentHub::create(asio::io_context& io,
                                                                     AgentHubOptions options,
                                                                     AgentHubCallbacks callbacks) {
  if (options.heartbeat_interval.count() <= 0 || options.heartbeat_misses < 1 ||
      options.hello_timeout.count() <= 0 || options.max_message_bytes == 0) {
    return makeError(ErrorCode::kInvalidArgument,
                     "agent channel: heartbeat, hello timeout and message size must be positive");
  }
  auto tls = makeServerTlsContext(options.ca_file, options.cert_file, options.key_file);
  if (!tls.ok()) return tls.error().withContext("agent channel TLS");
  auto impl = std::make_shared<Impl>(io, std::move(options), std::move(callbacks), *tls);
  SHADAN_RETURN_IF_ERROR(impl->listen());
  impl->accept();
  return std::unique_ptr<WebSocketAgentHub>(new WebSocketAgentHub(std::move(impl)));
}

WebSocketAgentHub::WebSocketAgentHub(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

WebSocketAgentHub::~WebSocketAgentHub() { impl_->stop(); }

Status WebSocketAgentHub::send(const std::string& agent_id, const Json& message) {
  return impl_->send(agent_id, message);
}

bool WebSocketAgentHub::connected(const std::string& agent_id) const {
  return impl_->connected(agent_id);
}

uint16_t WebSocketAgentHub::port() const { return impl_->port(); }

size_t WebSocketAgentHub::sessionCount() const { return impl_->sessionCount(); }

std::vector<std::string> WebSocketAgentHub::agentAddresses() const {
  return impl_->agentAddresses();
}

void WebSocketAgentHub::stop() { impl_->stop(); }

}  // namespace shadan::controller

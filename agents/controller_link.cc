#include "agents/controller_link.h"

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cmath>
#include <random>
#include <utility>

#include "common/audit_ship.h"
#include "common/channel.h"
#include "common/channel_session.h"
#include "common/logging.h"
#include "common/strict_json.h"
#include "common/tls.h"

namespace shadan::agent {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// The largest exponent used for the backoff: 2^20 * 0.5 s is far beyond any sane maximum.
constexpr unsigned kMaxBackoffExponent = 20;

class Connection;

}  // namespace

std::chrono::milliseconds backoffDelay(const LinkOptions& options, unsigned attempt,
                                       double unit_random) {
  const double base = static_cast<double>(options.backoff_initial.count()) *
                      std::ldexp(1.0, static_cast<int>(std::min(attempt, kMaxBackoffExponent)));
  const double capped = std::min(base, static_cast<double>(options.backoff_max.count()));
  const double factor = 1.0 + options.backoff_jitter * (2.0 * unit_random - 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(capped * factor)));
}

class ControllerLink::Impl : public std::enable_shared_from_this<ControllerLink::Impl> {
 public:
  Impl(asio::io_context& io, LinkOptions options, LinkCallbacks callbacks, const Clock& clock)
      : io_(io),
        options_(std::move(options)),
        callbacks_(std::move(callbacks)),
        clock_(clock),
        retry_timer_(io),
        rng_(options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}()),
        log_(logger("link")) {}

  Status start();
  void stop();
  Status send(const Json& message);
  bool connected() const;
  std::optional<std::chrono::system_clock::time_point> disconnectedSince() const {
    if (connected()) return std::nullopt;
    return disconnected_since_;
  }
  uint64_t attempts() const { return attempts_; }
  const std::string& lastError() const { return last_error_; }
  ControllerAddress controller() const {
    if (addresses_.empty()) return ControllerAddress{options_.host, options_.port};
    return addresses_[current_];
  }

  // Called by the current connection (on the io_context thread).
  void connectionOpened(const Connection* connection);
  void connectionLost(const Connection* connection, const std::string& reason, bool was_open);
  void dispatchReceived(const Json& envelope) {
    if (callbacks_.on_dispatch) callbacks_.on_dispatch(envelope);
  }
  bool handlesAudit() const { return static_cast<bool>(callbacks_.on_audit); }
  void auditReceived(const Json& message) {
    if (callbacks_.on_audit) callbacks_.on_audit(message);
  }
  void messageRejected(const std::string& reason) {
    if (callbacks_.on_message_rejected) callbacks_.on_message_rejected(reason);
  }

  const LinkOptions& options() const { return options_; }
  asio::ssl::context& tls() { return *tls_; }
  uint64_t lastSeq() const { return callbacks_.last_seq ? callbacks_.last_seq() : 0; }
  spdlog::logger& log() { return *log_; }

 private:
  void connect();

  asio::io_context& io_;
  LinkOptions options_;
  LinkCallbacks callbacks_;
  const Clock& clock_;
  TlsContextPtr tls_;
  asio::steady_timer retry_timer_;
  std::mt19937_64 rng_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<Connection> connection_;
  std::optional<std::chrono::system_clock::time_point> disconnected_since_;
  SteadyClock::time_point opened_at_{};
  std::string last_error_;
  std::vector<ControllerAddress> addresses_;  // host:port, then more_controllers
  size_t current_ = 0;                        // the one the current attempt dials
  unsigned backoff_attempt_ = 0;
  uint64_t attempts_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

namespace {

// One attempt and, if it gets that far, one open connection: the dialling half of the channel
// on top of the shared session (common/channel_session.h). Owned by the link and by its pending
// handlers; holds the link weakly so handlers that outlive it do nothing.
class Connection : public ChannelSession {
 public:
  Connection(asio::io_context& io, std::weak_ptr<ControllerLink::Impl> link,
             asio::ssl::context& tls, LinkOptions options)
      : ChannelSession(io, tls, limitsOf(options)),
        resolver_(io),
        link_(std::move(link)),
        options_(std::move(options)) {}

  void start() {
    armDeadline(options_.connect_timeout,
                "no connection within " + std::to_string(options_.connect_timeout.count()) + " ms");
    resolver_.async_resolve(
        options_.host, std::to_string(options_.port),
        [self = shared(), this](beast::error_code ec, const tcp::resolver::results_type& to) {
          if (closed()) return;
          if (ec) return fail("resolve " + options_.host + ": " + ec.message());
          asio::async_connect(socket(), to,
                              [self, this](beast::error_code connect_ec, const tcp::endpoint&) {
                                onConnect(connect_ec);
                              });
        });
  }

 private:
  static ChannelLimits limitsOf(const LinkOptions& options) {
    return ChannelLimits{options.max_message_bytes, options.heartbeat_interval,
                         options.heartbeat_misses, "controller"};
  }
  std::shared_ptr<Connection> shared() {
    return std::static_pointer_cast<Connection>(shared_from_this());
  }

  void onConnect(beast::error_code ec) {
    if (closed()) return;
    if (ec) {
      return fail("connect " + options_.host + " port " + std::to_string(options_.port) + ": " +
                  ec.message());
    }
    beast::error_code option_ec;
    socket().set_option(tcp::no_delay(true), option_ec);
    SSL* ssl = tls().native_handle();
    beast::error_code address_ec;
    asio::ip::make_address(options_.host, address_ec);
    // SNI only for names; RFC 6066 forbids literal addresses. (SSL_set_tlsext_host_name is a
    // macro with a C cast; OpenSSL copies the name.)
    if (address_ec) {
      std::string name = options_.host;
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name.data());
    }
    tls().async_handshake(
        asio::ssl::stream_base::client,
        [self = shared(), this](beast::error_code tls_ec) { onTlsHandshake(tls_ec); });
  }

  void onTlsHandshake(beast::error_code ec) {
    if (closed()) return;
    if (ec) {
      return fail("TLS handshake: " + tlsHandshakeFailureReason(ec, tls().native_handle()));
    }
    ws().read_message_max(options_.max_message_bytes);
    ws().set_option(websocket::stream_base::decorator([](websocket::request_type& request) {
      request.set(http::field::user_agent, "shadan-agent");
    }));
    const bool literal_v6 = options_.host.find(':') != std::string::npos;
    const std::string host = (literal_v6 ? "[" + options_.host + "]" : options_.host) + ":" +
                             std::to_string(options_.port);
    ws().async_handshake(host, kAgentChannelPath, [self = shared(), this](beast::error_code ws_ec) {
      onWebSocketHandshake(ws_ec);
    });
  }

  void onWebSocketHandshake(beast::error_code ec) {
    if (closed()) return;
    // In TLS 1.3 the server judges the client certificate after the client has finished its
    // handshake, so a refused certificate shows up here, as an alert on the first read.
    if (ec) {
      std::string reason = ec.message();
      if (ec.category() == asio::error::get_ssl_category()) {
        reason = tlsHandshakeFailureReason(ec, tls().native_handle());
      }
      return fail("WebSocket handshake: " + reason);
    }
    auto link = link_.lock();
    if (!link) return;
    write(helloMessage(HelloMessage{options_.agent_id, options_.agent_keyid, link->lastSeq(),
                                    options_.version, options_.agent_public_key})
              .dump());
    markOpen();
    startReading();
    startHeartbeat();
    link->connectionOpened(this);
  }

  // A message from the controller that the link refuses to interpret: closes the session like
  // any failure, and tells the daemon first, which audits it (no ack: there is no seq to
  // answer). The reconnect backoff bounds how often a hostile controller can cause this.
  void reject(const std::string& reason) override {
    if (auto link = link_.lock()) link->messageRejected(reason);
    fail(reason);
  }

  void onClosed(const std::string& reason, bool was_open) override {
    resolver_.cancel();
    if (auto link = link_.lock()) link->connectionLost(this, reason, was_open);
  }

  void onMessage(const std::string& type, const Json& message) override {
    auto link = link_.lock();
    if (!link) return;
    if (type == kDispatchType) {
      auto envelope = channelEnvelope(message);
      if (!envelope.ok()) return reject("malformed message: " + envelope.error().message);
      link->dispatchReceived(**envelope);
    } else if ((type == kAuditResumeType || type == kAuditAckType) && link->handlesAudit()) {
      std::optional<Error> shape;
      if (type == kAuditResumeType) {
        if (auto resume = parseAuditResume(message); !resume.ok()) shape = resume.error();
      } else if (auto ack = parseAuditAck(message); !ack.ok()) {
        shape = ack.error();
      }
      if (shape) return reject("malformed message: " + shape->message);
      link->auditReceived(message);
    } else {
      reject("unknown message type " + quoteForMessage(type));
    }
  }

  tcp::resolver resolver_;
  std::weak_ptr<ControllerLink::Impl> link_;
  const LinkOptions options_;
};

}  // namespace

Status ControllerLink::Impl::start() {
  if (started_) return makeError(ErrorCode::kInternal, "controller link: start() called twice");
  const LinkOptions& o = options_;
  if (o.host.empty() || o.port == 0) {
    return makeError(ErrorCode::kInvalidArgument, "controller link: host and port are required");
  }
  for (const ControllerAddress& other : o.more_controllers) {
    if (other.host.empty() || other.port == 0) {
      return makeError(ErrorCode::kInvalidArgument,
                       "controller link: every controller needs a host and a port");
    }
  }
  if (o.agent_id.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "controller link: agent_id is required");
  }
  if (o.agent_keyid.size() != 64 ||
      o.agent_keyid.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return makeError(ErrorCode::kInvalidArgument,
                     "controller link: agent_keyid must be 64 lower-case hex characters");
  }
  if (o.connect_timeout.count() <= 0 || o.heartbeat_interval.count() <= 0 ||
      o.heartbeat_misses < 1 || o.backoff_initial.count() <= 0 ||
      o.backoff_max < o.backoff_initial || o.backoff_jitter < 0 || o.backoff_jitter >= 1 ||
      o.max_message_bytes == 0) {
    return makeError(ErrorCode::kInvalidArgument,
                     "controller link: timeouts, heartbeat, backoff and message size must be "
                     "positive (jitter in [0, 1))");
  }
  SHADAN_ASSIGN_OR_RETURN(
      tls_, loadLinkTls(o.ca_file, o.cert_file, o.key_file, o.controller_pin, o.agent_id));
  started_ = true;
  addresses_.push_back(ControllerAddress{o.host, o.port});
  addresses_.insert(addresses_.end(), o.more_controllers.begin(), o.more_controllers.end());
  disconnected_since_ = clock_.now();
  connect();
  return okStatus();
}

Result<TlsContextPtr> loadLinkTls(const std::string& ca_file, const std::string& cert_file,
                                  const std::string& key_file, const std::string& controller_pin,
                                  const std::string& agent_id) {
  auto tls = makeClientTlsContext(ca_file, cert_file, key_file, controller_pin);
  if (!tls.ok()) return tls.error().withContext("controller link TLS");
  auto name = certificateCommonName(cert_file);
  if (!name.ok()) return name.error().withContext("controller link");
  if (*name != agent_id) {
    return makeError(ErrorCode::kInvalidArgument, "controller link: certificate " + cert_file +
                                                      " is for " + quoteForMessage(*name) +
                                                      ", not agent " + quoteForMessage(agent_id));
  }
  return std::move(*tls);
}

void ControllerLink::Impl::connect() {
  if (stopped_) return;
  ++attempts_;
  LinkOptions dial = options_;
  dial.host = addresses_[current_].host;
  dial.port = addresses_[current_].port;
  log_->debug("event=connecting host={} port={} attempt={}", dial.host, dial.port, attempts_);
  connection_ = std::make_shared<Connection>(io_, weak_from_this(), *tls_, std::move(dial));
  connection_->start();
}

void ControllerLink::Impl::stop() {
  if (stopped_) return;
  stopped_ = true;
  retry_timer_.cancel();
  if (auto connection = std::move(connection_)) connection->fail("link stopped");
}

void ControllerLink::Impl::connectionOpened(const Connection* connection) {
  if (stopped_ || connection != connection_.get()) return;
  opened_at_ = SteadyClock::now();
  disconnected_since_.reset();
  log_->info("event=connected host={} port={} agent={}", addresses_[current_].host,
             addresses_[current_].port, options_.agent_id);
  if (callbacks_.on_connected) callbacks_.on_connected();
}

void ControllerLink::Impl::connectionLost(const Connection* connection, const std::string& reason,
                                          bool was_open) {
  if (stopped_ || connection != connection_.get()) return;
  connection_.reset();
  if (was_open && SteadyClock::now() - opened_at_ >= options_.backoff_reset_after) {
    backoff_attempt_ = 0;
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto delay = backoffDelay(options_, backoff_attempt_, unit(rng_));
  backoff_attempt_ = std::min(backoff_attempt_ + 1, kMaxBackoffExponent);
  const std::string from = addresses_[current_].text();
  current_ = (current_ + 1) % addresses_.size();  // the next controller, if there are several
  if (was_open) {
    disconnected_since_ = clock_.now();
    log_->warn("event=disconnected controller={} reason=\"{}\" retry_ms={} next={}", from, reason,
               delay.count(), addresses_[current_].text());
  } else {
    log_->warn("event=connect_failed controller={} reason=\"{}\" retry_ms={} next={}", from, reason,
               delay.count(), addresses_[current_].text());
  }
  last_error_ = reason;
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
    if (auto link = weak.lock(); link && !ec) link->connect();
  });
  if (was_open && callbacks_.on_disconnected) callbacks_.on_disconnected(reason);
}

Status ControllerLink::Impl::send(const Json& message) {
  if (!connected()) {
    return makeError(ErrorCode::kUnavailable, "controller link: not connected");
  }
  return connection_->sendJson(message);
}

bool ControllerLink::Impl::connected() const {
  return !stopped_ && connection_ && connection_->isOpen();
}

ControllerLink::ControllerLink(asio::io_context& io, LinkOptions options, LinkCallbacks callbacks,
                               const Clock& clock)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(callbacks), clock)) {}

ControllerLink::~ControllerLink() { impl_->stop(); }

Status ControllerLink::start() { return impl_->start(); }
void ControllerLink::stop() { impl_->stop(); }
Status ControllerLink::send(const Json& message) { return impl_->send(message); }
bool ControllerLink::connected() const { return impl_->connected(); }
std::optional<std::chrono::system_clock::time_point> ControllerLink::disconnectedSince() const {
  return impl_->disconnectedSince();
}
uint64_t ControllerLink::attempts() const { return impl_->attempts(); }
std::string ControllerLink::lastError() const { return impl_->lastError(); }
ControllerAddress ControllerLink::controller() const { return impl_->controller(); }

}  // namespace shadan::agent

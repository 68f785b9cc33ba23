#include "controller/api_server.h"

#include <pthread.h>

#include <array>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include "common/logging.h"
#include "controller/bulk_lane.h"
#include "controller/peer_penalties.h"

namespace shadan::controller {

namespace asio = boost::asio;

namespace {
class ApiSession;
// An answer as it goes on the wire.
struct WireAnswer {
  int status = 200;
  int64_t retry_after_s = 0;
  std::string body;  // JSON text, or the response's own text
  std::string content_type = "application/json";
  bool event_stream = false;  // ApiResponse::event_stream
  std::vector<std::pair<std::string, std::string>> headers = {};
};
WireAnswer wire(const ApiResponse& response) {
  if (response.event_stream) return {response.status, 0, "", "text/event-stream", true};
  if (response.text) {
    return {response.status, response.retry_after_s, *response.text, response.content_type,
            false,           response.headers};
  }
  return {response.status, response.retry_after_s, response.body.dump() + "\n"};
}
constexpr size_t kBulkQueueMax = 64;
constexpr size_t kBulkQueueMaxBytes = 64 * 1024 * 1024;
}  // namespace

// The way between the two threads. A session on the network thread submits its request and
// waits, parked here by ticket; the core thread routes it (bulk requests through the lane) and
// posts the answer back to the network thread, where the parked session sends it. The core
// thread never holds a session: sessions live and die on the network thread only.
class ApiCoreLink : public std::enable_shared_from_this<ApiCoreLink> {
 public:
  ApiCoreLink(asio::io_context& core, asio::io_context& net, ApiRouter& router)
      : core_(core),
        net_(&net),
        router_(router),
        bulk_(std::make_shared<BulkLane>(core, kBulkQueueMax, kBulkQueueMaxBytes)) {}

  // Network thread.
  void submit(std::shared_ptr<ApiSession> session, ApiRequest request);
  // Any thread: answers computed after this are dropped.
  void close() {
    const std::lock_guard<std::mutex> lock(mutex_);
    net_ = nullptr;
  }
  // After the network thread has stopped: the parked sessions and the event streams go (before
  // their io_context).
  void releaseParked() {
    parked_.clear();
    streams_.clear();
  }

  // Network thread: the sessions that hold an event stream (GET /v1/events).
  bool addStream(const std::shared_ptr<ApiSession>& session);
  void removeStream(const std::shared_ptr<ApiSession>& session) { streams_.erase(session); }
  // Any thread: `event` (one whole Server-Sent Event) to every stream.
  void publish(std::string event);
  // Network thread.
  void closeStreams();
  size_t streamCount() const { return streams_.size(); }

 private:
  // Core thread.
  void route(uint64_t ticket, ApiRequest request);
  void answer(uint64_t ticket, const ApiResponse& response);

  asio::io_context& core_;
  std::mutex mutex_;
  asio::io_context* net_;           // guarded by mutex_; null once closed
  ApiRouter& router_;               // core thread only
  std::shared_ptr<BulkLane> bulk_;  // core thread only
  std::unordered_map<uint64_t, std::shared_ptr<ApiSession>> parked_;  // network thread only
  uint64_t next_ticket_ = 0;                                          // network thread only
  std::set<std::shared_ptr<ApiSession>> streams_;                     // network thread only
};

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Writing one answer; a client that does not read it is closed.
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);
constexpr size_t kLingerMaxBytes = 1024 * 1024;
// Events waiting for one stream's client to read them; a client further behind is closed (it
// reconnects and reads the state afresh: every event only says that something changed).
constexpr size_t kStreamQueueMax = 16;

}  // namespace

struct ApiConnectionCounts {
  explicit ApiConnectionCounts(const ApiLimits& limits)
      : penalties(limits.peer_failures_burst, limits.peer_failures_per_min) {}
  size_t open = 0;
  std::unordered_map<std::string, size_t> per_peer;
  // Failed handshakes: thousands during an attack, so one log line a second with a count.
  EveryInterval handshake_failures{std::chrono::seconds(1)};
  // Peers whose connections end badly (PeerPenalties); their new ones are refused at accept.
  PeerPenalties penalties;
};

namespace {

// One connection's place in the counts, taken when it is accepted and given back when its
// session ends (on the network thread, or after it has stopped).
class ConnectionSlot {
 public:
  ConnectionSlot(std::shared_ptr<ApiConnectionCounts> counts, std::string peer)
      : counts_(std::move(counts)), peer_(std::move(peer)) {
    ++counts_->open;
    ++counts_->per_peer[peer_];
  }
  ~ConnectionSlot() {
    --counts_->open;
    const auto it = counts_->per_peer.find(peer_);
    if (--it->second == 0) counts_->per_peer.erase(it);
  }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ApiConnectionCounts& counts() const { return *counts_; }

 private:
  std::shared_ptr<ApiConnectionCounts> counts_;
  std::string peer_;
};

// One TLS connection: handshake, then request/response pairs until the peer closes, asks to
// close, or errs.
class ApiSession : public std::enable_shared_from_this<ApiSession> {
 public:
  ApiSession(tcp::socket socket, asio::ssl::context& tls, ApiCoreLink& core,
             const ApiLimits& limits, const tcp::endpoint& peer, std::string peer_key,
             std::shared_ptr<ApiConnectionCounts> counts)
      : stream_(std::move(socket), tls),
        core_(core),
        limits_(limits),
        peer_(peer.address().to_string() + ":" + std::to_string(peer.port())),
        peer_address_(peer.address().to_string()),
        peer_key_(std::move(peer_key)),
        slot_(std::move(counts), peer_address_) {}

  void run() {
    beast::get_lowest_layer(stream_).expires_after(limits_.handshake_timeout);
    stream_.async_handshake(
        asio::ssl::stream_base::server,
        [self = shared_from_this()](const boost::system::error_code& ec) {
          if (ec) {
            self->penalize();
            const uint64_t count =
                self->slot_.counts().handshake_failures.tick(std::chrono::steady_clock::now());
            if (count > 0) {
              logger("api")->info("event=tls_handshake_failed count={} last_peer={} error=\"{}\"",
                                  count, self->peer_, ec.message());
            }
            return;
          }
          self->read();
        });
  }

  // Network thread: the core's answer to the request submitted last.
  void answer(WireAnswer answer) {
    if (answer.event_stream && answer.status == 200) return startStream();
    respond(std::move(answer), method_, path_, keep_alive_);
  }

  // Network thread: one event for this session's stream (GET /v1/events).
  void push(const std::string& event) {
    if (!streaming_) return;
    if (queue_.size() >= kStreamQueueMax) {
      logger("api")->info("event=event_stream_closed peer={} why=\"client does not read\"", peer_);
      return endStream();
    }
    queue_.push_back(event);
    writeEvents();
  }

  // Network thread: the server stops.
  void endStream() {
    if (!streaming_) return;
    streaming_ = false;
    queue_.clear();
    core_.removeStream(shared_from_this());
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(limits_.max_header_bytes));
    // One deadline for the wait, the headers and the body: trickling bytes does not extend it.
    beast::get_lowest_layer(stream_).expires_after(limits_.request_timeout);
    // The headers first: the body limit depends on the endpoint (alert batches are larger).
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
          if (ec) return self->onRead(ec);
          const auto& header = self->parser_->get();
          self->body_limit_ =
              apiBodyLimit(std::string(header.method_string()), std::string(header.target()));
          self->parser_->body_limit(self->body_limit_);
          // A declared length over the limit is refused now, not after reading up to it.
          const auto declared = self->parser_->content_length();
          if (declared && *declared > self->body_limit_) {
            return self->onRead(http::error::body_limit);
          }
          http::async_read(
              self->stream_, self->buffer_, *self->parser_,
              [self](const boost::system::error_code& read_ec, size_t) { self->onRead(read_ec); });
        });
  }

  void onRead(const boost::system::error_code& ec) {
    if (ec == http::error::end_of_stream || ec == asio::ssl::error::stream_truncated) {
      return shutdown();
    }
    if (ec == http::error::body_limit) {
      penalize();
      return respond(
          wire(apiError(413, "payload_too_large",
                        "request body larger than " + std::to_string(body_limit_) + " bytes")),
          "-", "-", false);
    }
    if (ec == http::error::header_limit) {
      penalize();
      return respond(wire(apiError(400, "bad_request", "request headers too large")), "-", "-",
                     false);
    }
    if (ec) {
      // A connection that never brought a whole request in time (slow-loris, a client that
      // connects and waits) is a failure; an idle kept-alive one after its answers is not.
      if (ec == beast::error::timeout && (answered_ == 0 || parser_->got_some())) penalize();
      if (ec != beast::error::timeout && ec != asio::error::operation_aborted) {
        logger("api")->info("read failed peer={} error={}", peer_, ec.message());
      }
      return;
    }
    const auto& request = parser_->get();
    ApiRequest api;
    api.method = std::string(request.method_string());
    api.target = std::string(request.target());
    if (auto it = request.find(http::field::authorization); it != request.end()) {
      api.authorization = std::string(it->value());
    }
    if (auto it = request.find(http::field::content_type); it != request.end()) {
      api.content_type = std::string(it->value());
    }
    api.peer = peer_address_;
    api.body = std::move(parser_->get().body());
    method_ = api.method;
    path_ = api.target.substr(0, api.target.find('?'));
    keep_alive_ = request.keep_alive();
    // The session waits, parked in the link, while the core thread decides.
    core_.submit(shared_from_this(), std::move(api));
  }

  void respond(WireAnswer answer, const std::string& method, const std::string& path,
               bool keep_alive) {
    logger("api")->info("request peer={} method={} path={} status={}", peer_, method, path,
                        answer.status);
    ++answered_;
    // A wrong or missing token: guessing them costs the guesser its bucket.
    if (answer.status == 401) penalize();
    response_.emplace();
    response_->version(11);
    response_->result(static_cast<unsigned>(answer.status));
    response_->set(http::field::server, "shadan-controller");
    response_->set(http::field::content_type, answer.content_type);
    response_->set(http::field::cache_control, "no-store");
    response_->set("X-Content-Type-Options", "nosniff");
    for (const auto& [name, value] : answer.headers) response_->set(name, value);
    if (answer.status == 401) response_->set(http::field::www_authenticate, "Bearer");
    if (answer.retry_after_s > 0) {
      response_->set(http::field::retry_after, std::to_string(answer.retry_after_s));
    }
    response_->body() = std::move(answer.body);
    response_->keep_alive(keep_alive);
    response_->prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(kWriteTimeout);
    http::async_write(
        stream_, *response_,
        [self = shared_from_this(), keep_alive](const boost::system::error_code& ec, size_t) {
          if (ec) return;
          if (!keep_alive) return self->shutdown();
          self->read();
        });
  }

  // The answer to GET /v1/events: headers without a length, then events until either side goes.
  // The client sends nothing more; a read that completes means it closed (or broke protocol).
  void startStream() {
    if (!core_.addStream(shared_from_this())) {
      ApiResponse busy = apiError(429, "too_many_requests", "too many event streams; retry later");
      busy.retry_after_s = 5;
      return respond(wire(busy), method_, path_, false);
    }
    logger("api")->info("request peer={} method={} path={} status=200 stream=open", peer_, method_,
                        path_);
    ++answered_;
    streaming_ = true;
    queue_.push_back(
        "HTTP/1.1 200 OK\r\nServer: shadan-controller\r\nContent-Type: text/event-stream\r\n"
        "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
        ": shadan events\n\n");
    writeEvents();
    watchForClose();
  }

  void watchForClose() {
    stream_.async_read_some(asio::buffer(drain_buffer_),
                            [self = shared_from_this()](const boost::system::error_code&, size_t) {
                              self->endStream();
                            });
  }

  void writeEvents() {
    if (writing_ || queue_.empty() || !streaming_) return;
    writing_ = true;
    beast::get_lowest_layer(stream_).expires_after(kWriteTimeout);
    asio::async_write(stream_, asio::buffer(queue_.front()),
                      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                        self->writing_ = false;
                        if (ec || !self->streaming_) return self->endStream();
                        // No deadline between events: the pending read must not time out.
                        beast::get_lowest_layer(self->stream_).expires_never();
                        self->queue_.pop_front();
                        self->writeEvents();
                      });
  }

  void penalize() { slot_.counts().penalties.fail(peer_key_, std::chrono::steady_clock::now()); }

  void shutdown() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    stream_.async_shutdown(
        [self = shared_from_this()](const boost::system::error_code&) { self->lingeringClose(); });
  }

  // After answering a request we did not read to its end (413, bad headers), closing at once
  // would make the kernel reset the connection because unread bytes are pending, and a reset
  // can destroy our answer before the client reads it (RFC 9112 section 9.6). So: stop sending,
  // then read and discard what the client still sends, bounded in time and bytes, then close.
  void lingeringClose() {
    auto& socket = beast::get_lowest_layer(stream_).socket();
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    beast::get_lowest_layer(stream_).expires_after(kLingerTimeout);
    drain();
  }

  void drain() {
    beast::get_lowest_layer(stream_).async_read_some(
        asio::buffer(drain_buffer_),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t bytes) {
          self->drained_ += bytes;
          if (ec || self->drained_ > kLingerMaxBytes) {
            beast::get_lowest_layer(self->stream_).close();
            return;
          }
          self->drain();
        });
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  ApiCoreLink& core_;
  const ApiLimits& limits_;  // the server's, which outlives every session
  std::string method_ = "-";
  std::string path_ = "-";
  bool keep_alive_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::string peer_;
  std::string peer_address_;
  std::string peer_key_;  // PeerPenalties::peerKey
  ConnectionSlot slot_;
  uint64_t answered_ = 0;  // answers sent on this connection
  size_t body_limit_ = kApiMaxBodyBytes;
  std::array<char, 4096> drain_buffer_{};
  size_t drained_ = 0;
  // GET /v1/events: the stream is open; what waits to be written (the head first).
  bool streaming_ = false;
  bool writing_ = false;
  std::deque<std::string> queue_;
};

}  // namespace

void ApiCoreLink::submit(std::shared_ptr<ApiSession> session, ApiRequest request) {
  const uint64_t ticket = ++next_ticket_;
  parked_.emplace(ticket, std::move(session));
  asio::post(core_, [self = shared_from_this(), ticket, request = std::move(request)]() mutable {
    self->route(ticket, std::move(request));
  });
}

void ApiCoreLink::route(uint64_t ticket, ApiRequest request) {
  if (!apiIsBulk(request.method, request.target)) return answer(ticket, router_.handle(request));
  const size_t bytes = request.body.size();
  auto job = [self = shared_from_this(), ticket, request = std::move(request)] {
    self->answer(ticket, self->router_.handle(request));
  };
  if (!bulk_->push(bytes, std::move(job))) {
    ApiResponse busy = apiError(429, "busy", "the controller's alert queue is full; retry later");
    busy.retry_after_s = 1;
    answer(ticket, busy);
  }
}

void ApiCoreLink::answer(uint64_t ticket, const ApiResponse& response) {
  // The JSON text is made here: a document's nodes allocated on the core thread and freed on the
  // network thread would make the two threads contend for the core's malloc arena.
  WireAnswer text = wire(response);
  const std::lock_guard<std::mutex> lock(mutex_);
  if (net_ == nullptr) return;
  asio::post(*net_, [self = shared_from_this(), ticket, text = std::move(text)]() mutable {
    auto it = self->parked_.find(ticket);
    if (it == self->parked_.end()) return;
    const std::shared_ptr<ApiSession> session = std::move(it->second);
    self->parked_.erase(it);
    session->answer(std::move(text));
  });
}

bool ApiCoreLink::addStream(const std::shared_ptr<ApiSession>& session) {
  if (streams_.size() >= ApiServer::kMaxEventStreams) return false;
  streams_.insert(session);
  return true;
}

void ApiCoreLink::publish(std::string event) {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (net_ == nullptr) return;
  asio::post(*net_, [self = shared_from_this(), event = std::move(event)] {
    // A copy: a stream that fails while being written to leaves the set.
    const std::vector<std::shared_ptr<ApiSession>> streams(self->streams_.begin(),
                                                           self->streams_.end());
    for (const auto& session : streams) session->push(event);
  });
}

void ApiCoreLink::closeStreams() {
  const std::vector<std::shared_ptr<ApiSession>> streams(streams_.begin(), streams_.end());
  for (const auto& session : streams) session->endStream();
}

ApiServer::ApiServer(asio::io_context& core, TlsContextPtr tls, ApiRouter& router, ApiLimits limits)
    : core_(core),
      tls_(std::move(tls)),
      limits_(limits),
      counts_(std::make_shared<ApiConnectionCounts>(limits_)),
      net_(std::make_unique<asio::io_context>(1)),
      acceptor_(*net_),
      link_(std::make_shared<ApiCoreLink>(core, *net_, router)),
      retry_timer_(std::make_unique<asio::steady_timer>(*net_)),
      keepalive_timer_(std::make_unique<asio::steady_timer>(*net_)) {}

ApiServer::~ApiServer() {
  link_->close();
  net_->stop();
  if (thread_.joinable()) thread_.join();
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  link_->releaseParked();
  retry_timer_.reset();
  keepalive_timer_.reset();
}

Result<std::unique_ptr<ApiServer>> ApiServer::create(asio::io_context& core, TlsContextPtr tls,
                                                     const ListenAddress& address,
                                                     ApiRouter& router, ApiLimits limits) {
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address.host, ec);
  if (ec) return makeError(ErrorCode::kInvalidArgument, "api listen address: " + ec.message());
  if (limits.max_connections == 0 || limits.max_connections_per_peer == 0 ||
      limits.handshake_timeout.count() <= 0 || limits.request_timeout.count() <= 0 ||
      limits.max_header_bytes == 0 || limits.max_header_bytes > UINT32_MAX ||
      limits.peer_failures_burst == 0 || limits.peer_failures_per_min == 0) {
    return makeError(ErrorCode::kInvalidArgument,
                     "api limits: connections, timeouts, header size and peer failures must be "
                     "positive");
  }
  std::unique_ptr<ApiServer> server(new ApiServer(core, std::move(tls), router, limits));
  const tcp::endpoint endpoint(ip, address.port);
  const std::string where = address.host + ":" + std::to_string(address.port);
  if (server->acceptor_.open(endpoint.protocol(), ec); ec) {
    return makeError(ErrorCode::kIo, "api: cannot open socket for " + where + ": " + ec.message());
  }
  if (server->acceptor_.set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return makeError(ErrorCode::kIo, "api: setsockopt on " + where + ": " + ec.message());
  }
  if (server->acceptor_.bind(endpoint, ec); ec) {
    return makeError(ErrorCode::kIo, "api: cannot bind " + where + ": " + ec.message());
  }
  if (server->acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return makeError(ErrorCode::kIo, "api: cannot listen on " + where + ": " + ec.message());
  }
  server->port_ = server->acceptor_.local_endpoint(ec).port();
  if (ec) return makeError(ErrorCode::kIo, "api: getsockname on " + where + ": " + ec.message());
  return server;
}

void ApiServer::start() {
  if (thread_.joinable()) return;
  core_work_.emplace(core_.get_executor());
  accept();
  keepStreamsAlive();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "shadan-api");
    net_->run();
  });
}

void ApiServer::stop() {
  core_work_.reset();
  asio::post(*net_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_->cancel();
    keepalive_timer_->cancel();
    link_->closeStreams();
  });
}

void ApiServer::publish(std::string event) { link_->publish(std::move(event)); }

void ApiServer::keepStreamsAlive() {
  keepalive_timer_->expires_after(ApiServer::kStreamKeepalive);
  keepalive_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    // A comment line: clients ignore it; a peer that went away is found by the write.
    if (link_->streamCount() > 0) link_->publish(": keepalive\n\n");
    keepStreamsAlive();
  });
}

void ApiServer::probe(std::function<void()> answered) { asio::post(*net_, std::move(answered)); }

void ApiServer::accept() {
  acceptor_.async_accept(*net_, [this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // EMFILE, ENFILE, ENOBUFS: accepting again at once would spin the network thread.
      logger("api")->warn("event=accept_failed error=\"{}\" retry_ms={}", ec.message(),
                          kAcceptRetry.count());
      retry_timer_->expires_after(kAcceptRetry);
      retry_timer_->async_wait([this](const boost::system::error_code& wait_ec) {
        if (!wait_ec && acceptor_.is_open()) accept();
      });
      return;
    }
    boost::system::error_code peer_ec;
    const tcp::endpoint peer = socket.remote_endpoint(peer_ec);
    if (!peer_ec) {
      const std::string address = peer.address().to_string();
      std::string key = PeerPenalties::peerKey(peer.address());
      const auto it = counts_->per_peer.find(address);
      const size_t from_peer = it == counts_->per_peer.end() ? 0 : it->second;
      if (counts_->open >= limits_.max_connections) {
        noteRefused(address, "max_connections");
      } else if (from_peer >= limits_.max_connections_per_peer) {
        noteRefused(address, "max_connections_per_peer");
      } else if (!counts_->penalties.admits(key, std::chrono::steady_clock::now())) {
        noteRefused(address, "peer_failures");
      } else {
        // Answers go out as more than one TLS record; without this the second waits for the
        // client's delayed ACK of the first (40 ms per answer).
        boost::system::error_code option_ec;
        socket.set_option(tcp::no_delay(true), option_ec);
        std::make_shared<ApiSession>(std::move(socket), *tls_, *link_, limits_, peer,
                                     std::move(key), counts_)
            ->run();
      }
    }
    // A refused socket (or one whose peer is already gone) closes here, before any TLS.
    accept();
  });
}

void ApiServer::noteRefused(const std::string& peer, const char* why) {
  if (const uint64_t count = refused_.tick(std::chrono::steady_clock::now()); count > 0) {
    logger("api")->warn("event=connections_refused count={} limit={} last_peer={} open={}", count,
                        why, peer, counts_->open);
  }
}

}  // namespace shadan::controller

#include "controller/api_server.h"

#include <array>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <optional>

#include "common/logging.h"
#include "controller/bulk_lane.h"

namespace shadan::controller {

namespace asio = boost::asio;

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kIdleTimeout = std::chrono::seconds(30);
constexpr uint32_t kHeaderLimit = 16 * 1024;
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr size_t kLingerMaxBytes = 1024 * 1024;
constexpr size_t kBulkQueueMax = 64;
constexpr size_t kBulkQueueMaxBytes = 64 * 1024 * 1024;

// One TLS connection: handshake, then request/response pairs until the peer closes, asks to
// close, or errs.
class ApiSession : public std::enable_shared_from_this<ApiSession> {
 public:
  ApiSession(tcp::socket socket, asio::ssl::context& tls, ApiRouter& router,
             std::shared_ptr<BulkLane> bulk)
      : stream_(std::move(socket), tls), router_(router), bulk_(std::move(bulk)) {
    boost::system::error_code ec;
    const auto endpoint = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) {
      peer_address_ = endpoint.address().to_string();
      peer_ = peer_address_ + ":" + std::to_string(endpoint.port());
    }
  }

  void run() {
    beast::get_lowest_layer(stream_).expires_after(kHandshakeTimeout);
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this()](const boost::system::error_code& ec) {
                              if (ec) {
                                logger("api")->info("tls handshake failed peer={} error={}",
                                                    self->peer_, ec.message());
                                return;
                              }
                              self->read();
                            });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
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
      return respond(apiError(413, "payload_too_large",
                              "request body larger than " + std::to_string(body_limit_) + " bytes"),
                     "-", "-", false);
    }
    if (ec == http::error::header_limit) {
      return respond(apiError(400, "bad_request", "request headers too large"), "-", "-", false);
    }
    if (ec) {
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
    api.body = request.body();
    const std::string path = api.target.substr(0, api.target.find('?'));
    const bool keep_alive = request.keep_alive();
    if (!apiIsBulk(api.method, api.target)) {
      return respond(router_.handle(api), api.method, path, keep_alive);
    }
    const size_t bytes = api.body.size();
    auto job = [self = shared_from_this(), api = std::move(api), path, keep_alive] {
      self->respond(self->router_.handle(api), api.method, path, keep_alive);
    };
    if (!bulk_->push(bytes, std::move(job))) {
      ApiResponse busy = apiError(429, "busy", "the controller's alert queue is full; retry later");
      busy.retry_after_s = 1;
      respond(busy, "POST", path, keep_alive);  // apiIsBulk: POST only
    }
  }

  void respond(const ApiResponse& answer, const std::string& method, const std::string& path,
               bool keep_alive) {
    logger("api")->info("request peer={} method={} path={} status={}", peer_, method, path,
                        answer.status);
    response_.emplace();
    response_->version(11);
    response_->result(static_cast<unsigned>(answer.status));
    response_->set(http::field::server, "shadan-controller");
    response_->set(http::field::content_type, "application/json");
    response_->set(http::field::cache_control, "no-store");
    if (answer.status == 401) response_->set(http::field::www_authenticate, "Bearer");
    if (answer.retry_after_s > 0) {
      response_->set(http::field::retry_after, std::to_string(answer.retry_after_s));
    }
    response_->body() = answer.body.dump() + "\n";
    response_->keep_alive(keep_alive);
    response_->prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    http::async_write(
        stream_, *response_,
        [self = shared_from_this(), keep_alive](const boost::system::error_code& ec, size_t) {
          if (ec) return;
          if (!keep_alive) return self->shutdown();
          self->read();
        });
  }

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
  ApiRouter& router_;
  std::shared_ptr<BulkLane> bulk_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::string peer_ = "?";
  std::string peer_address_;
  size_t body_limit_ = kApiMaxBodyBytes;
  std::array<char, 4096> drain_buffer_{};
  size_t drained_ = 0;
};

}  // namespace

ApiServer::ApiServer(asio::io_context& io, TlsContextPtr tls, ApiRouter& router)
    : io_(io),
      tls_(std::move(tls)),
      router_(router),
      acceptor_(io),
      bulk_(std::make_shared<BulkLane>(io, kBulkQueueMax, kBulkQueueMaxBytes)) {}

ApiServer::~ApiServer() { stop(); }

Result<std::unique_ptr<ApiServer>> ApiServer::create(asio::io_context& io, TlsContextPtr tls,
                                                     const ListenAddress& address,
                                                     ApiRouter& router) {
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address.host, ec);
  if (ec) return makeError(ErrorCode::kInvalidArgument, "api listen address: " + ec.message());
  std::unique_ptr<ApiServer> server(new ApiServer(io, std::move(tls), router));
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
  return server;
}

void ApiServer::start() { accept(); }

void ApiServer::stop() {
  boost::system::error_code ec;
  if (acceptor_.is_open()) acceptor_.close(ec);
}

uint16_t ApiServer::port() const {
  boost::system::error_code ec;
  const auto endpoint = acceptor_.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void ApiServer::accept() {
  acceptor_.async_accept(io_, [this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      // Answers go out as more than one TLS record; without this the second waits for the
      // client's delayed ACK of the first (40 ms per answer).
      boost::system::error_code option_ec;
      socket.set_option(tcp::no_delay(true), option_ec);
      std::make_shared<ApiSession>(std::move(socket), *tls_, router_, bulk_)->run();
    }
    accept();
  });
}

}  // namespace shadan::controller

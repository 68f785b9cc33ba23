#include "common/metrics_server.h"

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <utility>
//
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

#include "common/logging.h"
#include "common/metrics.h"

namespace shadan {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kReadTimeout = std::chrono::seconds(5);
constexpr auto kWriteTimeout = std::chrono::seconds(10);
constexpr uint32_t kMaxHeadBytes = 4096;
}  // namespace

struct MetricsServer::Shared {
  explicit Shared(asio::io_context& io) : acceptor(io) {}
  tcp::acceptor acceptor;
  std::function<std::string()> render;  // empty once the server is gone
  size_t open = 0;
};

namespace {

class MetricsSession : public std::enable_shared_from_this<MetricsSession> {
 public:
  MetricsSession(tcp::socket socket, std::shared_ptr<MetricsServer::Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {
    ++shared_->open;
  }
  ~MetricsSession() { --shared_->open; }

  void start() {
    parser_.header_limit(kMaxHeadBytes);
    parser_.body_limit(0);
    stream_.expires_after(kReadTimeout);
    http::async_read(
        stream_, buffer_, parser_,
        [self = shared_from_this()](const beast::error_code& ec, size_t) { self->onRead(ec); });
  }

 private:
  void onRead(const beast::error_code& ec) {
    if (ec) {
      if (ec == http::error::header_limit || ec == http::error::body_limit ||
          ec == http::error::unexpected_body) {
        return answer(http::status::bad_request, "request too large\n");
      }
      return;  // a timeout or a client gone: nothing to answer
    }
    const auto& request = parser_.get();
    const std::string_view target(request.target().data(), request.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (request.method() != http::verb::get) {
      return answer(http::status::method_not_allowed, "only GET is served\n");
    }
    if (path != "/metrics") return answer(http::status::not_found, "only /metrics is served\n");
    if (!shared_->render) return answer(http::status::service_unavailable, "stopping\n");
    answer(http::status::ok, shared_->render(), kMetricsContentType);
  }

  void answer(http::status status, std::string body, std::string_view type = "text/plain") {
    response_.version(11);
    response_.result(status);
    response_.set(http::field::content_type, beast::string_view(type.data(), type.size()));
    response_.set(http::field::cache_control, "no-store");
    if (status == http::status::method_not_allowed) response_.set(http::field::allow, "GET");
    response_.keep_alive(false);
    response_.body() = std::move(body);
    response_.prepare_payload();
    stream_.expires_after(kWriteTimeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](const beast::error_code&, size_t) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
                      });
  }

  beast::tcp_stream stream_;
  std::shared_ptr<MetricsServer::Shared> shared_;
  beast::flat_buffer buffer_{kMaxHeadBytes};
  http::request_parser<http::empty_body> parser_;
  http::response<http::string_body> response_;
};

void accept(const std::shared_ptr<MetricsServer::Shared>& shared) {
  shared->acceptor.async_accept([shared](const beast::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !shared->acceptor.is_open()) return;
    if (!ec) {
      if (shared->open >= MetricsServer::kMaxConnections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<MetricsSession>(std::move(socket), shared)->start();
      }
    }
    accept(shared);
  });
}

}  // namespace

MetricsServer::MetricsServer(std::shared_ptr<Shared> shared, uint16_t port)
    : shared_(std::move(shared)), port_(port) {}

MetricsServer::~MetricsServer() {
  shared_->render = nullptr;
  beast::error_code ignored;
  shared_->acceptor.close(ignored);
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(asio::io_context& io,
                                                            const ListenAddress& address,
                                                            std::function<std::string()> render) {
  auto shared = std::make_shared<Shared>(io);
  shared->render = std::move(render);
  const std::string where = address.host + ":" + std::to_string(address.port);
  beast::error_code ec;
  const auto ip = asio::ip::make_address(address.host, ec);
  if (ec)
    return makeError(ErrorCode::kInvalidArgument, "metrics listen " + where + ": bad address");
  const tcp::endpoint endpoint(ip, address.port);
  shared->acceptor.open(endpoint.protocol(), ec);
  if (!ec) shared->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) shared->acceptor.bind(endpoint, ec);
  if (!ec) shared->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return makeError(ErrorCode::kUnavailable,
                     "metrics listen " + where + ": cannot listen: " + ec.message());
  }
  const uint16_t port = shared->acceptor.local_endpoint().port();
  accept(shared);
  logger("metrics")->info("event=metrics_listening address={} port={}", address.host, port);
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(shared), port));
}

}  // namespace shadan

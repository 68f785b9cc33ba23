#pragma once

// The controller's HTTPS API transport: Boost.Beast HTTP/1.1 over TLS 1.3 (the context comes
// from common/tls.h), every request handed to an ApiRouter. Bytes only; no API logic here.
//
// Contracts:
//   - Runs on the io_context it is given, single-threaded; the router is called on that thread.
//   - Request bodies over kApiMaxBodyBytes are answered 413 without reading them, headers are
//     capped at 16 KiB, and a connection idle for 30 s (or a handshake slower than 10 s) is
//     closed.
//   - Alert batches (apiIsBulk) run one per turn of the io loop from a bounded queue, behind
//     every other request already read; when the queue is full (64 requests or 64 MiB) they are
//     answered 429 with Retry-After: 1 at once and nothing of them is taken.
//   - Never logs request bodies or the Authorization header; one access log line per request
//     (method, path, status, peer).

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <utility>

#include "common/result.h"
#include "common/tls.h"
#include "controller/api_router.h"
#include "controller/bulk_lane.h"
#include "controller/config.h"

namespace shadan::controller {

class ApiServer {
 public:
  // Binds and listens on `address` (port 0: any free port; see port()). `router` must outlive
  // the server.
  static Result<std::unique_ptr<ApiServer>> create(boost::asio::io_context& io, TlsContextPtr tls,
                                                   const ListenAddress& address, ApiRouter& router);
  ~ApiServer();

  // Starts accepting connections.
  void start();
  // Stops accepting; open connections finish their current request and close.
  void stop();
  uint16_t port() const;

 private:
  ApiServer(boost::asio::io_context& io, TlsContextPtr tls, ApiRouter& router);
  void accept();

  boost::asio::io_context& io_;
  TlsContextPtr tls_;
  ApiRouter& router_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<BulkLane> bulk_;
};

}  // namespace shadan::controller

#pragma once

// The controller's HTTPS API transport: Boost.Beast HTTP/1.1 over TLS 1.3 (the context comes
// from common/tls.h), every request handed to an ApiRouter. Bytes only; no API logic here.
//
// Threads: connections (accept, TLS handshakes, reading and writing requests, answers' JSON
// text) run on the server's own network thread; every request is handed to the router on the
// core io_context's thread, the one thread of the controller's state, and its answer goes back to
// the network thread. So a burst of handshakes or a slow client costs the network thread, not
// the orders and acks on the core thread, and an operator's handshake does not wait behind an
// alert batch.
//
// Contracts:
//   - The router is called on the core io_context's thread only.
//   - Request bodies over kApiMaxBodyBytes are answered 413 without reading them, headers are
//     capped at 16 KiB, and a connection idle for 30 s (or a handshake slower than 10 s) is
//     closed.
//   - Alert batches (apiIsBulk) run one per turn of the core io loop from a bounded queue,
//     behind every other request already handed over; when the queue is full (64 requests or
//     64 MiB) they are answered 429 with Retry-After: 1 at once and nothing of them is taken.
//   - Never logs request bodies or the Authorization header; one access log line per request
//     (method, path, status, peer).

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "common/result.h"
#include "common/tls.h"
#include "controller/api_router.h"
#include "controller/config.h"

namespace shadan::controller {

class ApiCoreLink;  // api_server.cc: hands requests to the core thread, answers back

class ApiServer {
 public:
  // Binds and listens on `address` (port 0: any free port; see port()). `router` must outlive
  // the server; it is called on `core`'s thread.
  static Result<std::unique_ptr<ApiServer>> create(boost::asio::io_context& core, TlsContextPtr tls,
                                                   const ListenAddress& address, ApiRouter& router);
  // Stops the network thread and drops every connection; answers the core computes later are
  // discarded.
  ~ApiServer();

  // Starts the network thread accepting connections. From here until stop() the server counts as
  // work of `core` (its run() does not return for lack of it).
  void start();
  // Stops accepting; open connections finish their current request if the core still runs.
  void stop();
  uint16_t port() const { return port_; }

 private:
  ApiServer(boost::asio::io_context& core, TlsContextPtr tls, ApiRouter& router);
  void accept();

  boost::asio::io_context& core_;
  TlsContextPtr tls_;
  std::unique_ptr<boost::asio::io_context> net_;  // outlives the acceptor and every session
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<ApiCoreLink> link_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      core_work_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace shadan::controller

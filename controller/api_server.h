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
//   - Limits (ApiLimits, controller/config.h; docs/security.md "Limits"): at most
//     max_connections open at once and max_connections_per_peer from one IP address, TLS
//     handshakes included; a connection past either is closed as it is accepted, before any
//     TLS, and counted in a log line at most once a second. A handshake slower than
//     handshake_timeout, and a request not wholly received within request_timeout of being
//     awaited (a slow-loris client, an idle kept-alive connection), are closed. Headers over
//     max_header_bytes are answered 400; request bodies over kApiMaxBodyBytes (or the
//     endpoint's limit) 413 without reading them, chunked or not.
//   - When accept itself fails (no file descriptors left) the server retries after 100 ms
//     instead of spinning, and logs it.
//   - Alert batches (apiIsBulk) run one per turn of the core io loop from a bounded queue,
//     behind every other request already handed over; when the queue is full (64 requests or
//     64 MiB) they are answered 429 with Retry-After: 1 at once and nothing of them is taken.
//   - Never logs request bodies or the Authorization header; one access log line per request
//     (method, path, status, peer).

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "common/logging.h"
#include "common/result.h"
#include "common/tls.h"
#include "controller/api_router.h"
#include "controller/config.h"

namespace shadan::controller {

class ApiCoreLink;           // api_server.cc: hands requests to the core thread, answers back
struct ApiConnectionCounts;  // api_server.cc

class ApiServer {
 public:
  // GET /v1/events streams open at once (each one also holds a connection); more are 429.
  static constexpr size_t kMaxEventStreams = 256;
  // A comment goes down every stream this often, so a client that vanished is found.
  static constexpr std::chrono::seconds kStreamKeepalive{15};

  // Binds and listens on `address` (port 0: any free port; see port()). `router` must outlive
  // the server; it is called on `core`'s thread.
  static Result<std::unique_ptr<ApiServer>> create(boost::asio::io_context& core, TlsContextPtr tls,
                                                   const ListenAddress& address, ApiRouter& router,
                                                   ApiLimits limits = {});
  // Stops the network thread and drops every connection; answers the core computes later are
  // discarded.
  ~ApiServer();

  // Starts the network thread accepting connections. From here until stop() the server counts as
  // work of `core` (its run() does not return for lack of it).
  void start();
  // Stops accepting; open connections finish their current request if the core still runs.
  void stop();
  uint16_t port() const { return port_; }
  // Runs `answered` on the network thread when it gets to it: the watchdog's probe of that
  // thread's loop (common/watchdog.h). Any thread.
  void probe(std::function<void()> answered);
  // Sends `event`, one whole Server-Sent Event ("event: changed\ndata: {}\n\n"), to every open
  // GET /v1/events stream. Any thread.
  void publish(std::string event);

 private:
  ApiServer(boost::asio::io_context& core, TlsContextPtr tls, ApiRouter& router, ApiLimits limits);
  void accept();
  // Network thread: a refused connection, logged at most once a second with a count.
  void noteRefused(const std::string& peer, const char* why);
  // Network thread: a comment on every event stream every kStreamKeepalive.
  void keepStreamsAlive();

  boost::asio::io_context& core_;
  TlsContextPtr tls_;
  const ApiLimits limits_;
  // Open connections, in all and per peer address; shared with every session, which gives its
  // place back when it ends (network thread only).
  std::shared_ptr<ApiConnectionCounts> counts_;
  std::unique_ptr<boost::asio::io_context> net_;  // outlives the acceptor and every session
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<ApiCoreLink> link_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      core_work_;
  uint16_t port_ = 0;
  std::unique_ptr<boost::asio::steady_timer> retry_timer_;      // accept failed: wait, then retry
  std::unique_ptr<boost::asio::steady_timer> keepalive_timer_;  // event streams
  EveryInterval refused_{std::chrono::seconds(1)};              // network thread
  std::thread thread_;
};

}  // namespace shadan::controller

#pragma once

// The plain-HTTP listener a daemon's metrics are scraped from: `GET /metrics` answers the
// Prometheus text exposition (common/metrics.h), nothing else is served.
//
// Contracts:
//   - Runs on the io_context it is given; `render` is called on that thread, so it may read the
//     state that thread owns.
//   - No TLS and no token: bind it to loopback or a management address. It serves counts and
//     states (segment and gateway names among them), never a secret.
//   - Hostile clients cost little: at most kMaxConnections at once (more are closed as they are
//     accepted), one request per connection, a request head of at most 4 KiB and no body, 5 s
//     to send it and 10 s to take the answer.
//   - `GET /metrics` 200; any other path 404; any other method 405 (with Allow: GET).

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/listen_address.h"
#include "common/result.h"

namespace shadan {

class MetricsServer {
 public:
  static constexpr size_t kMaxConnections = 16;

  // Binds and starts accepting (kUnavailable naming the address when it cannot bind).
  static Result<std::unique_ptr<MetricsServer>> start(boost::asio::io_context& io,
                                                      const ListenAddress& address,
                                                      std::function<std::string()> render);
  // Stops accepting; a request still in flight is answered 503.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  uint16_t port() const { return port_; }

  struct Shared;  // the listener and its sessions' state (metrics_server.cc)

 private:
  MetricsServer(std::shared_ptr<Shared> shared, uint16_t port);
  std::shared_ptr<Shared> shared_;
  uint16_t port_ = 0;
};

}  // namespace shadan

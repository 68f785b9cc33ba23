#pragma once

// What the agent's orders session (agents/orders_session.h) sends through: the agent's end of
// the channel to the controller. ControllerLink implements it over mutual-TLS WebSocket; tests
// and the load generator put their own behind it.

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace shadan::agent {

class OrdersChannel {
 public:
  virtual ~OrdersChannel() = default;
  virtual bool connected() const = 0;
  // Queues one message on the current connection, in order; kUnavailable when not connected.
  // Queued is not delivered: the controller's answers tell.
  virtual Status send(const nlohmann::json& message) = 0;
};

}  // namespace shadan::agent

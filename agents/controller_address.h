#pragma once

// Where the agent dials a controller (the agent channel): a host and a port. Several make a
// deployment with more than one controller (docs/ha.md).

#include <cstdint>
#include <string>

namespace shadan::agent {

struct ControllerAddress {
  std::string host;  // a name or an IP address (no brackets)
  uint16_t port = 0;

  // "ctl.lab:8444", "[fd00::1]:8444"
  std::string text() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

}  // namespace shadan::agent

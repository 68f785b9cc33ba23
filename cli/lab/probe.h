#pragma once

// Traffic probes that prove reachability (or a cut) with real packets between lab namespaces.
//
// Every probe makes its sockets inside the namespaces involved (netns.h) and runs in-process:
// no ping, no nc. A probe answers true (the packets made it), false (they did not, within the
// timeout) or an error (the probe itself could not run: no such namespace, not root, bad
// address). Use short timeouts where failure is expected and generous ones where success is.
// Needs root. Safe to run several probes at once from different threads.

#include <chrono>
#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace shadan {

// Opens a TCP listener on to_addr:port in `to_ns` (port 0: any free port), connects to it from
// `from_ns` and returns true only if the listener accepted the connection within `timeout`.
Result<bool> tcpConnect(const std::string& from_ns, const std::string& to_ns,
                        const std::string& to_addr, uint16_t port,
                        std::chrono::milliseconds timeout);

// Binds a UDP socket on to_addr:port in `to_ns` (port 0: any free port) that echoes what it
// receives, sends a fresh token to it from a socket connected in `from_ns` (again every 100 ms)
// and returns true only if the token comes back within `timeout`; false if it does not, or if
// the path answers with an ICMP error (a reject).
Result<bool> udpRoundTrip(const std::string& from_ns, const std::string& to_ns,
                          const std::string& to_addr, uint16_t port,
                          std::chrono::milliseconds timeout);

// Sends one ICMP (IPv4) or ICMPv6 echo request from `from_ns` to `to_addr` over a raw socket
// and returns true if the matching echo reply (same id, sequence and source) arrives in time.
Result<bool> icmpEcho(const std::string& from_ns, const std::string& to_addr,
                      std::chrono::milliseconds timeout);

// A TCP connection held open across a change (an isolation being applied, say), to show what
// happens to flows that were ESTABLISHED before it. Both ends live in this object; roundTrip()
// moves bytes client -> server -> client over the lab, so both directions cross the gateway.
class EstablishedFlow {
 public:
  EstablishedFlow(std::string from_ns, std::string to_ns, std::string to_addr, uint16_t port = 0);

  // Listens in to_ns, connects from from_ns and accepts. REQUIRES: not already open.
  Status open(std::chrono::milliseconds timeout);
  // Sends a fresh token and returns true if it comes back echoed within `timeout`; false if it
  // does not, or if the connection was closed or reset. REQUIRES: open() succeeded.
  Result<bool> roundTrip(std::chrono::milliseconds timeout);
  bool isOpen() const { return client_.valid() && server_.valid(); }

 private:
  std::string from_ns_;
  std::string to_ns_;
  std::string to_addr_;
  uint16_t port_;
  UniqueFd client_;
  UniqueFd server_;
  std::string received_;  // bytes echoed back to the client, not yet matched to a token
  uint64_t next_token_ = 0;
};

}  // namespace shadan

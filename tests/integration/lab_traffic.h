#pragma once

// Real packets between the namespaces of a lab (cli/lab/lab.h), for the integration tests:
// hosts named by node and address, single probes that turn a probe that cannot run into a test
// failure, a batch of expectations whose probes all run at once, and polling with a deadline.
//
// Needs root (the probes make sockets inside the lab's namespaces). Not thread-safe itself; the
// batch starts its own threads and joins them before it returns.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cli/lab/lab.h"

namespace shadan {

// A lab node as an end of traffic: its node name (the namespace) and the addresses probes use.
struct LabHost {
  const char* node;
  const char* v4;
  const char* v6;
};

// True if a TCP connection from `from` to `to` (port 0: any free port) is accepted within
// `timeout`. A probe that cannot run at all is an EXPECT failure, and false.
bool tcpReaches(const Lab& lab, const LabHost& from, const LabHost& to, bool v6, uint16_t port,
                std::chrono::milliseconds timeout);

// True if an ICMP (v6: ICMPv6) echo from `from` to `to` is answered within `timeout`. A probe
// that cannot run is an EXPECT failure, and false.
bool pingReaches(const Lab& lab, const LabHost& from, const LabHost& to, bool v6,
                 std::chrono::milliseconds timeout);

// Polls `done` every `interval` until it holds or `timeout` passes; true if it held.
bool waitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = std::chrono::milliseconds(5));

// Expectations about reachability, checked together: every probe runs at the same time, so a
// batch of cuts costs one `should_fail` wait instead of one per probe. A cut is proven by probes
// that wait `should_fail` in vain, an open path by probes that succeed within `should_pass`.
//
// Probes to the same fixed port of the same address cannot listen at once; check() runs those
// one after another (in the order added) and everything else in parallel.
class TrafficCheck {
 public:
  TrafficCheck(const Lab& lab, std::chrono::milliseconds should_fail,
               std::chrono::milliseconds should_pass)
      : lab_(lab), should_fail_(should_fail), should_pass_(should_pass) {}

  // TCP (any port) and ICMP echo, a -> b and b -> a, IPv4 and IPv6: all cut / all through.
  TrafficCheck& cut(const LabHost& a, const LabHost& b);
  TrafficCheck& open(const LabHost& a, const LabHost& b);
  // One TCP connection from -> to:port (0: any) of one family that must (not) be accepted.
  TrafficCheck& tcp(const LabHost& from, const LabHost& to, bool v6, uint16_t port, bool reaches);
  // One echo from -> to of one family that must (not) be answered.
  TrafficCheck& icmp(const LabHost& from, const LabHost& to, bool v6, bool reaches);

  // Runs every probe added so far and adds one EXPECT failure, prefixed with `when`, for each
  // probe that went the other way (or could not run). Clears the batch.
  void check(const std::string& when);

 private:
  struct Probe {
    bool is_tcp = true;
    LabHost from;
    LabHost to;
    bool v6 = false;
    uint16_t port = 0;
    bool reaches = true;
  };

  const Lab& lab_;
  std::chrono::milliseconds should_fail_;
  std::chrono::milliseconds should_pass_;
  std::vector<Probe> probes_;
};

}  // namespace shadan

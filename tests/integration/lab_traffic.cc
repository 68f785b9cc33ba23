#include "tests/integration/lab_traffic.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <thread>

#include "cli/lab/probe.h"

namespace shadan {

bool tcpReaches(const Lab& lab, const LabHost& from, const LabHost& to, bool v6, uint16_t port,
                std::chrono::milliseconds timeout) {
  auto reached =
      tcpConnect(lab.nsName(from.node), lab.nsName(to.node), v6 ? to.v6 : to.v4, port, timeout);
  EXPECT_TRUE(reached.ok()) << reached.error().message;
  return reached.ok() && reached.value();
}

bool pingReaches(const Lab& lab, const LabHost& from, const LabHost& to, bool v6,
                 std::chrono::milliseconds timeout) {
  auto reached = icmpEcho(lab.nsName(from.node), v6 ? to.v6 : to.v4, timeout);
  EXPECT_TRUE(reached.ok()) << reached.error().message;
  return reached.ok() && reached.value();
}

bool waitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

TrafficCheck& TrafficCheck::cut(const LabHost& a, const LabHost& b) {
  for (bool v6 : {false, true}) {
    tcp(a, b, v6, 0, false);
    tcp(b, a, v6, 0, false);
    icmp(a, b, v6, false);
    icmp(b, a, v6, false);
  }
  return *this;
}

TrafficCheck& TrafficCheck::open(const LabHost& a, const LabHost& b) {
  for (bool v6 : {false, true}) {
    tcp(a, b, v6, 0, true);
    tcp(b, a, v6, 0, true);
    icmp(a, b, v6, true);
    icmp(b, a, v6, true);
  }
  return *this;
}

TrafficCheck& TrafficCheck::tcp(const LabHost& from, const LabHost& to, bool v6, uint16_t port,
                                bool reaches) {
  probes_.push_back(Probe{true, from, to, v6, port, reaches});
  return *this;
}

TrafficCheck& TrafficCheck::icmp(const LabHost& from, const LabHost& to, bool v6, bool reaches) {
  probes_.push_back(Probe{false, from, to, v6, 0, reaches});
  return *this;
}

void TrafficCheck::check(const std::string& when) {
  // One lane per fixed listening address:port (its probes in order), one per other probe.
  std::map<std::string, std::vector<const Probe*>> fixed;
  std::vector<std::vector<const Probe*>> lanes;
  for (const Probe& probe : probes_) {
    if (probe.is_tcp && probe.port != 0) {
      const std::string key = std::string(probe.v6 ? probe.to.v6 : probe.to.v4) + "/" +
                              probe.to.node + ":" + std::to_string(probe.port);
      fixed[key].push_back(&probe);
    } else {
      lanes.push_back({&probe});
    }
  }
  for (auto& [key, lane] : fixed) lanes.push_back(std::move(lane));

  struct Outcome {
    const Probe* probe;
    bool reached;
    std::string error;
  };
  std::mutex mutex;
  std::vector<Outcome> outcomes;
  std::vector<std::thread> threads;
  threads.reserve(lanes.size());
  for (const auto& lane : lanes) {
    threads.emplace_back([&, lane] {
      for (const Probe* probe : lane) {
        const auto timeout = probe->reaches ? should_pass_ : should_fail_;
        const std::string to_addr = probe->v6 ? probe->to.v6 : probe->to.v4;
        // gtest assertions are not made on these threads: outcomes are reported below.
        Result<bool> reached =
            probe->is_tcp ? tcpConnect(lab_.nsName(probe->from.node), lab_.nsName(probe->to.node),
                                       to_addr, probe->port, timeout)
                          : icmpEcho(lab_.nsName(probe->from.node), to_addr, timeout);
        std::lock_guard<std::mutex> lock(mutex);
        outcomes.push_back(Outcome{probe, reached.ok() && reached.value(),
                                   reached.ok() ? std::string() : reached.error().message});
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  for (const Outcome& outcome : outcomes) {
    const Probe& p = *outcome.probe;
    const std::string what = when + ": " + p.from.node + " -> " + p.to.node + " " +
                             (p.is_tcp ? "tcp" : "icmp") + (p.v6 ? "6" : "4") +
                             (p.port != 0 ? " port " + std::to_string(p.port) : "");
    if (!outcome.error.empty()) {
      ADD_FAILURE() << what << ": the probe could not run: " << outcome.error;
    } else if (outcome.reached != p.reaches) {
      ADD_FAILURE() << what
                    << (p.reaches ? ": expected through, was cut" : ": expected cut, got through");
    }
  }
  probes_.clear();
}

}  // namespace shadan

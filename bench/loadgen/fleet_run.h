#pragma once

// One load-generator run: the fleet's credentials (fleet_setup.h), a real shadan-controller
// started from the same build on loopback (or several on a three-member etcd cluster the run
// starts), N simulated agents (sim_agent.h) spread over a few io threads and over the
// controllers, and the operator's side of an order through the real HTTPS API. Scenarios
// (scenarios.h) are sequences of these steps; every time they report comes from here.
//
// Times: an order's "ack time" for a gateway is the controller's own record of when it stored
// that gateway's verified ack (the order view's updated_at) minus the wall-clock time just
// before the loadgen sent the request (same machine, same clock). Connect times are from the
// agents' start to their hello being on the wire.
//
// Not thread-safe: one thread (main) drives it; the agents live on the io threads.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/loadgen/fleet_setup.h"
#include "bench/loadgen/proc_stats.h"
#include "bench/loadgen/sim_agent.h"
#include "cli/lab/daemon_child.h"
#include "common/result.h"

namespace shadan::loadgen {

struct RunOptions {
  size_t agents = 100;
  unsigned io_threads = 2;
  std::string work_root = "/tmp";  // the run's private directory is made in here
  std::string controller_bin;      // shadan-controller
  std::string controller_log_level = "info";
  // "sqlite" (the default) or "etcd": the controller's store on one etcd member the run starts
  // (etcd_bin) on loopback (docs/ha.md), to set the store's cost beside SQLite's.
  std::string store = "sqlite";
  std::string etcd_bin = "/usr/bin/etcd";
  // Controllers sharing the store; more than one needs store "etcd" and runs three etcd
  // members. Agent i starts at controller i % controllers and moves on to the next.
  size_t controllers = 1;
  bool keep = false;  // keep the run's directory (logs, state, credentials)
  std::chrono::seconds phase_timeout{120};
};

// p50/p95/p99/max of a set of milliseconds (nearest rank).
struct Percentiles {
  size_t count = 0;
  double min = 0, p50 = 0, p95 = 0, p99 = 0, max = 0;
  static Percentiles of(std::vector<double> values);
  nlohmann::json toJson() const;
};

// What one order did across the fleet.
struct OrderRun {
  std::string order_id;
  size_t targets = 0;
  size_t acked = 0;                      // dispatches the controller holds a verified ack for
  std::vector<double> ack_ms;            // per acked gateway: request -> ack stored
  std::map<std::string, size_t> states;  // dispatch state -> gateways
  size_t handled = 0;                    // agents that handled the dispatch (any outcome)
  size_t applied = 0;                    // ... whose outcome was applied or already_applied
  size_t redelivered = 0;                // dispatches an agent handled more than once
  size_t duplicates = 0;                 // ... applied more than once (never, if all is well)
  // Per agent index: the controller holds its verified ack and it applied the order exactly
  // once (a redelivery it refused as a replay does not count against it).
  std::vector<bool> once;
  nlohmann::json toJson() const;
};

class FleetRun {
 public:
  explicit FleetRun(RunOptions options);
  ~FleetRun();  // agents and controller stopped, the directory removed unless keep
  FleetRun(const FleetRun&) = delete;
  FleetRun& operator=(const FleetRun&) = delete;

  // Credentials, enrollment, the controller, the agents; returns once every agent is connected.
  Status setUp();

  // An operator isolates the fleet's segment; returns once every target acked (or the phase
  // timeout passed: acked < targets then).
  Result<OrderRun> isolate(const std::string& reason);
  // An operator restores it; both operators sign; the clock starts at the last signature.
  Result<OrderRun> restore(const std::string& reason);
  // Sends the request of an order and returns its id; waitOrder() follows it.
  Result<std::string> requestIsolate(const std::string& reason);
  // The restore's request and both signatures: its id and the time of the last signature.
  Result<std::pair<std::string, int64_t>> requestRestore(const std::string& reason);
  Result<OrderRun> waitOrder(const std::string& order_id, int64_t requested_ms);

  // The controllers (all, or the index-th): SIGTERM and wait, or SIGKILL; started again with the
  // same config and state.
  Status stopController(int signal);
  Status stopController(size_t index, int signal);
  Status startController();
  Status startController(size_t index);
  bool controllerRunning(size_t index) const;
  // Etcd member `index` (SIGKILL: lost as a machine is); the others carry on as a quorum.
  Status stopEtcdMember(size_t index, int signal);
  // Starts a stopped member again on its data directory; returns once it answers a read (once
  // the cluster has a quorum and a leader: start the others without waiting for it to answer).
  Status startEtcdMember(size_t index, bool wait = true);
  // The operator's requests go to this controller (default 0).
  void useController(size_t index) { api_controller_ = index; }
  size_t apiController() const { return api_controller_; }
  // The leading controller's index, as the controllers' status says (several on etcd); waits up
  // to `timeout` for one to lead.
  Result<size_t> leader(std::chrono::milliseconds timeout) const;
  // When agent `index` last (re)connected (wall-clock ms).
  int64_t connectedAt(size_t index) const;
  // Agents now connected to controller `index`.
  std::vector<size_t> agentsOn(size_t index) const;
  // Dispatch outcomes the agents have had so far, all orders together.
  size_t outcomes() const;
  // Agents whose own state holds `segment` isolated now.
  size_t agentsHolding(const std::string& segment);
  // GET /v1/status on the operator's controller (segments, gateways, the recent orders).
  Result<nlohmann::json> status() const { return api(0, "GET", "/v1/status"); }
  // Per agent index: when it first handled `command_id`'s dispatch (wall-clock ms), 0 if not yet.
  std::vector<int64_t> firstHandled(const std::string& command_id) const;
  // Every agent connected (after a restart, say); false at timeout.
  bool waitConnected(std::chrono::milliseconds timeout);
  size_t connected() const;
  // Milliseconds from `since_ms` (wall clock) until each agent's latest (re)connect.
  std::vector<double> connectTimesSince(int64_t since_ms) const;
  // Drops agent `index`'s connection (its link stops) or brings it back (a new link).
  void stopAgent(size_t index);
  void startAgent(size_t index);

  // Controller `index`'s process (0: the first; for a single controller, the one).
  Result<ProcStats> controllerStats(size_t index = 0) const;
  // Waits until the controller is quiet (under 5% of a core in two 300 ms windows in a row: the
  // connect burst's hellos and first audit shipping done), so an order is measured against a
  // settled fleet as in production, not against its own start-up. Milliseconds waited; at most
  // `timeout`.
  Result<int64_t> settle(std::chrono::milliseconds timeout) const;
  const Fleet& fleet() const { return fleet_; }
  const RunOptions& options() const { return options_; }
  double credentialsMs() const { return fleet_.credentials_ms; }

  class Observer;

 private:
  Result<nlohmann::json> api(size_t op, const std::string& method, const std::string& path,
                             const std::optional<nlohmann::json>& body = std::nullopt) const;
  Result<nlohmann::json> apiOn(size_t controller, size_t op, const std::string& method,
                               const std::string& path,
                               const std::optional<nlohmann::json>& body = std::nullopt) const;
  Status waitControllerReady(size_t index, std::chrono::milliseconds timeout);
  // The running controllers' CPU seconds together.
  Result<double> controllersCpuS() const;
  Status signApproval(const std::string& approval_id, size_t op);
  void onAgentThread(size_t index, std::function<void()> work);

  RunOptions options_;
  Fleet fleet_;
  Status startEtcd();
  Status waitEtcdMember(size_t index, std::chrono::steady_clock::time_point deadline);

  std::vector<std::unique_ptr<DaemonChild>> etcd_;  // with store "etcd"; stopped after controllers
  std::vector<std::unique_ptr<DaemonChild>> controllers_;  // null: stopped
  size_t api_controller_ = 0;
  std::unique_ptr<Observer> observer_;
  std::vector<std::unique_ptr<boost::asio::io_context>> ios_;
  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<SimAgent>> agents_;
  bool set_up_ = false;
};

}  // namespace shadan::loadgen

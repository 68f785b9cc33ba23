#include "bench/loadgen/scenarios.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <random>
#include <thread>

#include "common/clock.h"

namespace shadan::loadgen {
namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

int64_t nowMs() { return toUnixMillis(std::chrono::system_clock::now()); }

std::string cpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

Json machine() { return {{"cpus", std::thread::hardware_concurrency()}, {"cpu", cpuModel()}}; }

Json baseReport(const std::string& name, const FleetRun& run) {
  return {{"scenario", name},
          {"agents", run.options().agents},
          {"controllers", run.options().controllers},
          {"io_threads", run.options().io_threads},
          {"store", run.options().store},
          {"machine", machine()},
          {"setup", {{"credentials_ms", run.credentialsMs()}}}};
}

// Every target acked and every agent handled the order once.
bool orderComplete(const OrderRun& order, size_t agents) {
  return order.targets == agents && order.acked == agents && order.applied == agents &&
         order.redelivered == 0;
}

// Agents whose every one of `orders` the controller holds an ack for and which each applied once.
size_t ackedOnce(const std::vector<const OrderRun*>& orders, size_t agents) {
  size_t count = 0;
  for (size_t i = 0; i < agents; ++i) {
    bool all = true;
    for (const OrderRun* order : orders) all = all && i < order->once.size() && order->once[i];
    count += all ? 1 : 0;
  }
  return count;
}

// The first running controller's process ("controller"); with several, each in "controllers".
void addController(Json& report, const FleetRun& run) {
  const size_t n = run.options().controllers;
  for (size_t k = 0; k < n; ++k) {
    auto stats = run.controllerStats(k);
    if (!stats.ok()) continue;
    if (!report.contains("controller")) {
      report["controller"] = stats->toJson();
      report["controller_rss_anon_kb"] = stats->rss_anon_kb;
    }
    if (n > 1) report["controller_procs"][run.fleet().controllers[k].name] = stats->toJson();
  }
}

// The top-level summary fields are those of `order`.
void headline(Json& report, const OrderRun& order) {
  const Percentiles p = Percentiles::of(order.ack_ms);
  report["acked"] = order.acked;
  report["duplicates"] = order.duplicates;
  report["p50_ms"] = p.p50;
  report["p95_ms"] = p.p95;
  report["p99_ms"] = p.p99;
  report["max_ms"] = p.max;
}

// An isolate requested beside (the API answers once the answering controller's own agents
// have it, by which time the fan-out is under way everywhere), returned the moment the first
// agent has handled it (or the phase timeout passed): the request, and when it was sent.
struct IsolateUnderWay {
  std::future<Result<std::string>> order_id;
  int64_t requested_ms = 0;
};
IsolateUnderWay isolateUntilTheFirstAgentHasIt(FleetRun& run, const ScenarioOptions& options) {
  const size_t outcomes_before = run.outcomes();
  IsolateUnderWay out;
  out.requested_ms = nowMs();
  out.order_id = std::async(std::launch::async,
                            [&run] { return run.requestIsolate("shadan-loadgen fanout"); });
  const auto deadline = SteadyClock::now() + options.run.phase_timeout;
  while (run.outcomes() == outcomes_before && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return out;
}

// The leader is killed the moment the first agent has handled the isolate, which is requested
// on a follower; returns the isolate (waited for on that follower) and fills the report's
// failover fields.
Result<OrderRun> isolateKillingTheLeader(FleetRun& run, const ScenarioOptions& options,
                                         Json& report) {
  const size_t controllers = run.options().controllers;
  SHADAN_ASSIGN_OR_RETURN(const size_t leader, run.leader(options.run.phase_timeout));
  run.useController((leader + 1) % controllers);
  report["leader"] = run.fleet().controllers[leader].name;
  report["requested_on"] = run.fleet().controllers[run.apiController()].name;
  IsolateUnderWay isolating = isolateUntilTheFirstAgentHasIt(run, options);
  const int64_t requested = isolating.requested_ms;
  const std::vector<size_t> orphans = run.agentsOn(leader);
  const int64_t killed = nowMs();
  SHADAN_RETURN_IF_ERROR(run.stopController(leader, SIGKILL));
  SHADAN_ASSIGN_OR_RETURN(const std::string order_id, isolating.order_id.get());
  // Which of the leader's agents still lacked the order when it died: theirs is the failover.
  const std::vector<int64_t> first = run.firstHandled(order_id);
  std::vector<size_t> pending;
  for (const size_t i : orphans) {
    if (first[i] == 0 || first[i] > killed) pending.push_back(i);
  }
  SHADAN_ASSIGN_OR_RETURN(const OrderRun isolate, run.waitOrder(order_id, requested));
  const std::vector<int64_t> handled = run.firstHandled(order_id);
  std::vector<double> failover;
  for (const size_t i : pending) {
    if (handled[i] != 0) failover.push_back(static_cast<double>(handled[i] - killed));
  }
  const Percentiles p = Percentiles::of(failover);
  report["killed_after_ms"] = killed - requested;
  report["orphans"] = orphans.size();
  report["orphans_pending"] = pending.size();
  // Killed -> orders flowing again: the first orphan that lacked the order has it. When the
  // leader had delivered to all of its agents before it died, nothing of the order waited on
  // the failover; it is then measured to the first orphan's reconnect to another controller
  // (from where its next order would come), and the basis says so.
  if (!failover.empty()) {
    report["failover_basis"] = "dispatch";
    report["failover_ms"] = p.min;
    report["failover_all_ms"] = p.max;
  } else if (pending.empty() && !orphans.empty()) {
    std::vector<double> back;
    for (const size_t i : orphans) {
      if (run.connectedAt(i) > killed) back.push_back(double(run.connectedAt(i) - killed));
    }
    report["failover_basis"] = "reconnect";
    const Percentiles r = Percentiles::of(back);
    report["failover_ms"] = back.empty() ? Json(nullptr) : Json(r.min);
    report["failover_all_ms"] = back.size() == orphans.size() ? Json(r.max) : Json(nullptr);
  }
  report["leader_after"] = nullptr;
  if (auto next = run.leader(options.run.phase_timeout); next.ok()) {
    report["leader_after"] = run.fleet().controllers[*next].name;
  }
  return isolate;
}

// The etcd member every controller talks to first is killed the moment the first agent has
// handled the isolate: a quorum of two carries the rest of the fan-out.
Result<OrderRun> isolateKillingAnEtcdMember(FleetRun& run, const ScenarioOptions& options,
                                            Json& report) {
  IsolateUnderWay isolating = isolateUntilTheFirstAgentHasIt(run, options);
  const int64_t killed = nowMs();
  SHADAN_RETURN_IF_ERROR(run.stopEtcdMember(0, SIGKILL));
  report["etcd_member_killed"] = run.fleet().etcd_members[0].name;
  report["killed_after_ms"] = killed - isolating.requested_ms;
  SHADAN_ASSIGN_OR_RETURN(const std::string order_id, isolating.order_id.get());
  return run.waitOrder(order_id, isolating.requested_ms);
}

Result<Json> fanout(const ScenarioOptions& options) {
  if ((options.kill_leader || options.kill_etcd_member) && options.run.controllers < 2) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--kill-leader and --kill-etcd-member need several controllers");
  }
  if (options.kill_leader && options.kill_etcd_member) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--kill-leader and --kill-etcd-member are separate runs");
  }
  FleetRun run(options.run);
  const int64_t started = nowMs();
  SHADAN_RETURN_IF_ERROR(run.setUp());
  Json report = baseReport("fanout", run);
  report["phases"]["connect"] = Percentiles::of(run.connectTimesSince(started)).toJson();
  SHADAN_ASSIGN_OR_RETURN(report["settle_ms"], run.settle(options.run.phase_timeout));
  report["failover_ms"] = nullptr;
  Result<OrderRun> isolated = options.kill_leader ? isolateKillingTheLeader(run, options, report)
                              : options.kill_etcd_member
                                  ? isolateKillingAnEtcdMember(run, options, report)
                                  : run.isolate("shadan-loadgen fanout");
  if (!isolated.ok()) return isolated.error();
  const OrderRun& isolate = *isolated;
  SHADAN_ASSIGN_OR_RETURN(const OrderRun restore, run.restore("shadan-loadgen fanout done"));
  report["phases"]["isolate"] = isolate.toJson();
  report["phases"]["restore"] = restore.toJson();
  headline(report, isolate);
  const size_t agents = run.options().agents;
  // Agents whose every order was acknowledged and applied exactly once; orders applied more
  // than once anywhere.
  report["acked"] = ackedOnce({&isolate, &restore}, agents);
  report["duplicates"] = isolate.duplicates + restore.duplicates;
  // A killed controller's agents may be sent a dispatch again by the next (its ack died with
  // it): they refuse the replayed seq and apply nothing twice, so "exactly once" is one
  // application per agent and order.
  report["complete"] =
      options.kill_etcd_member ? report["acked"] == agents && report["duplicates"] == 0
      : options.kill_leader    ? report["acked"] == agents && report["duplicates"] == 0 &&
                                  !report["failover_ms"].is_null()
                            : orderComplete(isolate, agents) && orderComplete(restore, agents);
  addController(report, run);
  return report;
}

Result<Json> storm(const ScenarioOptions& options) {
  FleetRun run(options.run);
  SHADAN_RETURN_IF_ERROR(run.setUp());
  Json report = baseReport("storm", run);
  addController(report, run);
  report["controller_before"] = report["controller"];
  const int64_t killed = nowMs();
  SHADAN_RETURN_IF_ERROR(run.stopController(SIGKILL));
  SHADAN_RETURN_IF_ERROR(run.startController());
  const int64_t back = nowMs();
  // Issued while the agents are still dialling back: delivered as each one says hello.
  SHADAN_ASSIGN_OR_RETURN(const std::string order_id, run.requestIsolate("shadan-loadgen storm"));
  const bool all_back = run.waitConnected(options.run.phase_timeout);
  const int64_t reconnected = nowMs();
  SHADAN_ASSIGN_OR_RETURN(const OrderRun order, run.waitOrder(order_id, back));
  report["controller_down_ms"] = back - killed;
  report["all_back_ms"] = all_back ? Json(reconnected - killed) : Json(nullptr);
  report["phases"]["reconnect"] = Percentiles::of(run.connectTimesSince(killed)).toJson();
  report["phases"]["isolate"] = order.toJson();
  headline(report, order);
  report["complete"] = all_back && orderComplete(order, run.options().agents);
  addController(report, run);
  return report;
}

Result<Json> churn(const ScenarioOptions& options) {
  FleetRun run(options.run);
  SHADAN_RETURN_IF_ERROR(run.setUp());
  Json report = baseReport("churn", run);
  const size_t agents = run.options().agents;
  std::mt19937_64 random(42);
  std::uniform_int_distribution<size_t> pick(0, agents - 1);
  const auto period = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::duration<double>(1.0 / std::max(0.1, options.churn_per_s)));
  const auto begin = SteadyClock::now();
  const auto until = begin + options.duration;
  std::vector<std::pair<SteadyClock::time_point, size_t>> down;  // back at, agent
  size_t dropped = 0;
  // The isolate at the start, the restore half-way: both fan out while agents come and go.
  const int64_t isolate_at = nowMs();
  SHADAN_ASSIGN_OR_RETURN(const std::string isolate_id, run.requestIsolate("loadgen churn"));
  std::optional<std::pair<std::string, int64_t>> restore;
  while (SteadyClock::now() < until) {
    const size_t index = pick(random);
    run.stopAgent(index);
    ++dropped;
    down.emplace_back(SteadyClock::now() + std::chrono::milliseconds(500), index);
    while (!down.empty() && down.front().first <= SteadyClock::now()) {
      run.startAgent(down.front().second);
      down.erase(down.begin());
    }
    if (!restore && SteadyClock::now() >= begin + options.duration / 2) {
      SHADAN_ASSIGN_OR_RETURN(restore, run.requestRestore("loadgen churn done"));
    }
    std::this_thread::sleep_for(period);
  }
  for (const auto& entry : down) run.startAgent(entry.second);
  if (!restore) {
    SHADAN_ASSIGN_OR_RETURN(restore, run.requestRestore("loadgen churn done"));
  }
  const bool all_back = run.waitConnected(options.run.phase_timeout);
  // Acks of agents dropped mid-order arrive after their reconnect.
  SHADAN_ASSIGN_OR_RETURN(const OrderRun isolated, run.waitOrder(isolate_id, isolate_at));
  SHADAN_ASSIGN_OR_RETURN(const OrderRun restored, run.waitOrder(restore->first, restore->second));
  report["dropped"] = dropped;
  report["churn_per_s"] = options.churn_per_s;
  report["duration_s"] = options.duration.count();
  report["phases"]["isolate"] = isolated.toJson();
  report["phases"]["restore"] = restored.toJson();
  headline(report, isolated);
  // A dropped agent may be sent a dispatch again after its reconnect (the controller had no
  // ack yet): it answers with a rejection of the replayed seq and applies nothing twice, so the
  // measure of "exactly once" here is one applied outcome per agent and order.
  report["complete"] = all_back && isolated.acked == agents && isolated.applied == agents &&
                       restored.acked == agents && restored.applied == agents;
  addController(report, run);
  return report;
}

Result<Json> soak(const ScenarioOptions& options) {
  FleetRun run(options.run);
  SHADAN_RETURN_IF_ERROR(run.setUp());
  Json report = baseReport("soak", run);
  // Let the connect burst (hellos, audit shipping) settle before measuring idle.
  std::this_thread::sleep_for(std::chrono::seconds(5));
  SHADAN_ASSIGN_OR_RETURN(const ProcStats before, run.controllerStats());
  const auto start = SteadyClock::now();
  std::this_thread::sleep_for(options.duration);
  SHADAN_ASSIGN_OR_RETURN(const ProcStats after, run.controllerStats());
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  report["duration_s"] = seconds;
  report["controller_cpu_percent"] = 100.0 * (after.cpu_s - before.cpu_s) / seconds;
  report["connected_at_end"] = run.connected();
  report["complete"] = run.connected() == run.options().agents;
  addController(report, run);
  return report;
}

}  // namespace

Result<Json> runScenario(const std::string& name, const ScenarioOptions& options) {
  if (name == "fanout") return fanout(options);
  if (name == "storm") return storm(options);
  if (name == "churn") return churn(options);
  if (name == "soak") return soak(options);
  return makeError(ErrorCode::kInvalidArgument,
                   "unknown scenario \"" + name + "\" (fanout, storm, churn, soak)");
}

bool reportComplete(const Json& report) { return report.value("complete", false); }

}  // namespace shadan::loadgen

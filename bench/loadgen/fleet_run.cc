#include "bench/loadgen/fleet_run.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <unordered_map>

#include "cli/api_client.h"
#include "common/clock.h"
#include "common/dsse.h"
#include "common/orders.h"
#include "controller/etcd_client.h"

namespace shadan::loadgen {
namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

int64_t nowMs() { return toUnixMillis(std::chrono::system_clock::now()); }

// Dispatch states the controller holds an agent's verified ack for.
const Json& gatewaysOf(const Json& view) {
  static const Json kNone = Json::object();
  const auto found = view.find("gateways");
  return found != view.end() && found->is_object() ? *found : kNone;
}

// A child's last words: the run's directory (and so its log) goes away with the run.
std::string lastLine(const std::string& log) {
  std::ifstream in(log);
  std::string line, last = "(no output)";
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last.size() > 400 ? last.substr(0, 400) + "..." : last;
}

bool isAcked(const std::string& state) {
  return state == "applied" || state == "already_applied" || state == "rejected" ||
         state == "failed";
}

}  // namespace

// ---- what the agents report (their io threads) ------------------------------------------

class FleetRun::Observer final : public SimObserver {
 public:
  explicit Observer(size_t agents) : connected_at_(agents), up_(agents), port_(agents) {}

  void onConnected(size_t index, uint16_t controller) override {
    port_[index].store(controller);
    connected_at_[index].store(nowMs());
    if (!up_[index].exchange(true)) ++connected_;
  }
  void onDisconnected(size_t index) override {
    if (up_[index].exchange(false)) --connected_;
  }
  void onOutcome(size_t index, const agent::OrderOutcome& outcome) override {
    ++outcomes_;
    if (!outcome.ack.command_id) return;  // a dispatch refused before it named its order
    const bool applied = outcome.ack.result == AckResult::kApplied ||
                         outcome.ack.result == AckResult::kAlreadyApplied;
    const int64_t now = nowMs();
    std::lock_guard lock(mutex_);
    Tally& tally = commands_[*outcome.ack.command_id];
    if (tally.times.empty()) {
      tally.times.assign(connected_at_.size(), 0);
      tally.applied_times.assign(connected_at_.size(), 0);
      tally.first_ms.assign(connected_at_.size(), 0);
    }
    if (tally.times[index]++ == 0) {
      ++tally.handled;
      tally.first_ms[index] = now;
    }
    if (applied) {
      ++tally.applied;
      ++tally.applied_times[index];
    }
  }

  size_t connected() const { return connected_.load(); }
  int64_t connectedAt(size_t index) const { return connected_at_[index].load(); }
  bool up(size_t index) const { return up_[index].load(); }
  uint16_t controllerOf(size_t index) const { return port_[index].load(); }
  size_t outcomes() const { return outcomes_.load(); }
  // (agents that handled it, handled-and-applied, extra deliveries, extra applications)
  struct Counts {
    size_t handled = 0;
    size_t applied = 0;
    size_t redelivered = 0;
    size_t duplicates = 0;
    std::vector<uint32_t> applied_times;  // per agent
  };
  Counts counts(const std::string& command_id) const {
    std::lock_guard lock(mutex_);
    const auto found = commands_.find(command_id);
    if (found == commands_.end()) return {};
    const Tally& tally = found->second;
    Counts counts{tally.handled, tally.applied, 0, 0, tally.applied_times};
    for (const uint32_t n : tally.times) counts.redelivered += n > 1 ? n - 1 : 0;
    for (const uint32_t n : tally.applied_times) counts.duplicates += n > 1 ? n - 1 : 0;
    return counts;
  }
  std::vector<int64_t> firstHandled(const std::string& command_id) const {
    std::lock_guard lock(mutex_);
    const auto found = commands_.find(command_id);
    if (found == commands_.end()) return std::vector<int64_t>(connected_at_.size(), 0);
    return found->second.first_ms;
  }

 private:
  struct Tally {
    std::vector<uint32_t> times;          // per agent: how often it handled this order's dispatch
    std::vector<uint32_t> applied_times;  // ... and applied it (already_applied included)
    std::vector<int64_t> first_ms;        // ... when it first handled it
    size_t handled = 0;
    size_t applied = 0;
  };
  std::vector<std::atomic<int64_t>> connected_at_;
  std::vector<std::atomic<bool>> up_;
  std::vector<std::atomic<uint16_t>> port_;  // the controller (hub port) it last connected to
  std::atomic<size_t> connected_{0};
  std::atomic<size_t> outcomes_{0};
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Tally> commands_;
};

// ---- numbers -----------------------------------------------------------------------------

Percentiles Percentiles::of(std::vector<double> values) {
  Percentiles out;
  out.count = values.size();
  if (values.empty()) return out;
  std::sort(values.begin(), values.end());
  const auto rank = [&](double q) {
    const size_t n = values.size();
    const size_t at = static_cast<size_t>(std::ceil(q * static_cast<double>(n)));
    return values[std::min(n - 1, at == 0 ? 0 : at - 1)];
  };
  out.min = values.front();
  out.p50 = rank(0.50);
  out.p95 = rank(0.95);
  out.p99 = rank(0.99);
  out.max = values.back();
  return out;
}

Json Percentiles::toJson() const {
  return {{"count", count}, {"min_ms", min}, {"p50_ms", p50},
          {"p95_ms", p95},  {"p99_ms", p99}, {"max_ms", max}};
}

Json OrderRun::toJson() const {
  Json out = Percentiles::of(ack_ms).toJson();
  out["order_id"] = order_id;
  out["targets"] = targets;
  out["acked"] = acked;
  out["states"] = states;
  out["agents_handled"] = handled;
  out["agents_applied"] = applied;
  out["redelivered"] = redelivered;
  out["duplicates"] = duplicates;
  return out;
}

// ---- the run -----------------------------------------------------------------------------

FleetRun::FleetRun(RunOptions options) : options_(std::move(options)) {}

FleetRun::~FleetRun() {
  if (!threads_.empty()) {
    // Each io thread stops its own agents, then the threads end.
    std::vector<std::promise<void>> done(ios_.size());
    for (size_t t = 0; t < ios_.size(); ++t) {
      boost::asio::post(*ios_[t], [this, t, &done] {
        for (size_t i = t; i < agents_.size(); i += ios_.size()) {
          if (agents_[i]) agents_[i]->stop();
        }
        done[t].set_value();
      });
    }
    for (auto& promise : done) promise.get_future().wait();
  }
  for (auto& io : ios_) io->stop();
  for (auto& thread : threads_) thread.join();
  agents_.clear();
  for (auto& controller : controllers_) {
    if (controller) (void)controller->stop(SIGTERM, std::chrono::seconds(30));
  }
  for (auto& member : etcd_) {
    if (member) (void)member->stop(SIGTERM, std::chrono::seconds(10));
  }
  if (!options_.keep && !fleet_.dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(fleet_.dir, ignored);
  }
}

void FleetRun::onAgentThread(size_t index, std::function<void()> work) {
  boost::asio::post(*ios_[index % ios_.size()], std::move(work));
}

Status FleetRun::setUp() {
  // One descriptor per agent here, and one per agent in the controller, which inherits this
  // limit (docs/controller.md). Raised as far as this process may (root may raise the hard
  // limit too).
  const rlim_t needed = static_cast<rlim_t>(options_.agents) + 1024;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < needed) {
    rlimit raised{std::max(needed, limit.rlim_cur), std::max(needed, limit.rlim_max)};
    if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      raised = {limit.rlim_max, limit.rlim_max};
      (void)::setrlimit(RLIMIT_NOFILE, &raised);
    }
  }
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < needed) {
    return makeError(
        ErrorCode::kUnavailable,
        std::to_string(options_.agents) + " agents need " + std::to_string(needed) +
            " file descriptors (one per agent here and in the controller); the limit is " +
            std::to_string(limit.rlim_cur) + " (raise it with ulimit -n)");
  }
  FleetRequest request;
  request.dir = options_.work_root + "/shadan-loadgen." + std::to_string(::getpid()) + "." +
                std::to_string(nowMs());
  request.agents = options_.agents;
  request.threads = std::max(1u, std::thread::hardware_concurrency());
  request.controller_log_level = options_.controller_log_level;
  if (options_.store != "sqlite" && options_.store != "etcd") {
    return makeError(ErrorCode::kInvalidArgument, "--store must be sqlite or etcd");
  }
  request.etcd = options_.store == "etcd";
  request.controllers = options_.controllers;
  SHADAN_ASSIGN_OR_RETURN(fleet_, makeFleet(request));
  controllers_.resize(fleet_.controllers.size());
  if (fleet_.etcd) SHADAN_RETURN_IF_ERROR(startEtcd());
  SHADAN_RETURN_IF_ERROR(enrollFleet(fleet_));
  SHADAN_RETURN_IF_ERROR(startController());

  observer_ = std::make_unique<Observer>(options_.agents);
  const unsigned threads = std::max(1u, options_.io_threads);
  for (unsigned t = 0; t < threads; ++t) {
    ios_.push_back(std::make_unique<boost::asio::io_context>(1));
  }
  agents_.resize(options_.agents);
  std::vector<std::promise<Status>> started(options_.agents);
  for (size_t i = 0; i < options_.agents; ++i) {
    agents_[i] = std::make_unique<SimAgent>(
        *ios_[i % threads], agentEndpoint(fleet_, i), fleet_.agents[i],
        agentPolicy(fleet_, fleet_.agents[i].id), fleet_.trust, *observer_);
    onAgentThread(i, [this, i, &started] { started[i].set_value(agents_[i]->start()); });
  }
  for (auto& io : ios_) {
    threads_.emplace_back([io = io.get()] {
      auto guard = boost::asio::make_work_guard(*io);
      io->run();
    });
  }
  for (size_t i = 0; i < options_.agents; ++i) {
    Status status = started[i].get_future().get();
    if (!status.ok()) return status.error().withContext("agent " + fleet_.agents[i].id);
  }
  if (!waitConnected(options_.phase_timeout)) {
    return makeError(ErrorCode::kUnavailable,
                     std::to_string(connected()) + " of " + std::to_string(options_.agents) +
                         " agents connected within " +
                         std::to_string(options_.phase_timeout.count()) +
                         " s (controller log: " + fleet_.controllers[0].log + ")");
  }
  set_up_ = true;
  return okStatus();
}

// The run's etcd members, waited for until each answers a read (up to 20 s): a member of a
// cluster answers once the cluster has a leader.
Status FleetRun::startEtcd() {
  etcd_.resize(fleet_.etcd_members.size());
  for (size_t k = 0; k < fleet_.etcd_members.size(); ++k) {
    SHADAN_RETURN_IF_ERROR(startEtcdMember(k, /*wait=*/false));
  }
  const auto deadline = SteadyClock::now() + std::chrono::seconds(20);
  for (size_t k = 0; k < fleet_.etcd_members.size(); ++k) {
    SHADAN_RETURN_IF_ERROR(waitEtcdMember(k, deadline));
  }
  return okStatus();
}

Status FleetRun::startEtcdMember(size_t index, bool wait) {
  const FleetEtcdMember& member = fleet_.etcd_members.at(index);
  if (etcd_.at(index)) return okStatus();
  std::filesystem::create_directories(member.dir);
  DaemonChildOptions child;
  child.argv = etcdArgv(fleet_, index, options_.etcd_bin);
  child.log_path = member.dir + "/log";
  SHADAN_ASSIGN_OR_RETURN(etcd_[index], DaemonChild::start(child));
  if (!wait) return okStatus();
  return waitEtcdMember(index, SteadyClock::now() + std::chrono::seconds(20));
}

Status FleetRun::waitEtcdMember(size_t index, SteadyClock::time_point deadline) {
  const FleetEtcdMember& member = fleet_.etcd_members.at(index);
  auto client = controller::EtcdClient::make(controller::EtcdClientOptions{
      {controller::EtcdEndpoint{"127.0.0.1", member.client_port, false}},
      std::chrono::milliseconds(1000)});
  if (!client.ok()) return client.error();
  std::string last = "no answer yet";
  for (;;) {
    if (!etcd_[index]->running()) {
      return makeError(ErrorCode::kUnavailable,
                       "etcd member " + member.name + " exited: " + lastLine(member.dir + "/log"));
    }
    controller::EtcdRangeRequest probe;
    probe.key = "/";
    auto answer = (*client)->range(probe);
    if (answer.ok()) return okStatus();
    last = answer.error().message;
    if (SteadyClock::now() >= deadline) {
      return makeError(ErrorCode::kUnavailable,
                       "etcd member " + member.name + " did not answer within 20 s: " + last);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Status FleetRun::startController() {
  for (size_t k = 0; k < controllers_.size(); ++k) {
    if (!controllers_[k]) SHADAN_RETURN_IF_ERROR(startController(k));
  }
  return okStatus();
}

Status FleetRun::startController(size_t index) {
  const FleetController& setup = fleet_.controllers.at(index);
  DaemonChildOptions child;
  child.argv = {options_.controller_bin, "run", "--config", setup.config};
  child.log_path = setup.log;
  SHADAN_ASSIGN_OR_RETURN(controllers_.at(index), DaemonChild::start(child));
  return waitControllerReady(index, std::chrono::seconds(30));
}

Status FleetRun::stopController(int signal) {
  Status result = okStatus();
  for (size_t k = 0; k < controllers_.size(); ++k) {
    if (Status stopped = stopController(k, signal); !stopped.ok() && result.ok()) result = stopped;
  }
  return result;
}

Status FleetRun::stopController(size_t index, int signal) {
  auto& controller = controllers_.at(index);
  if (!controller) return okStatus();
  auto stopped = controller->stop(signal, std::chrono::seconds(30));
  controller.reset();
  if (!stopped.ok()) return stopped.error();
  return okStatus();
}

Status FleetRun::stopEtcdMember(size_t index, int signal) {
  if (index >= etcd_.size() || !etcd_[index]) return okStatus();
  auto stopped = etcd_[index]->stop(signal, std::chrono::seconds(10));
  etcd_[index].reset();
  if (!stopped.ok()) return stopped.error();
  return okStatus();
}

size_t FleetRun::agentsHolding(const std::string& segment) {
  std::vector<std::promise<bool>> holds(agents_.size());
  for (size_t i = 0; i < agents_.size(); ++i) {
    onAgentThread(i, [this, i, &segment, &holds] {
      const auto segments = agents_[i]->isolatedSegments();
      holds[i].set_value(std::find(segments.begin(), segments.end(), segment) != segments.end());
    });
  }
  size_t count = 0;
  for (auto& held : holds) count += held.get_future().get() ? 1 : 0;
  return count;
}

bool FleetRun::controllerRunning(size_t index) const {
  return index < controllers_.size() && controllers_[index] && controllers_[index]->running();
}

Result<size_t> FleetRun::leader(std::chrono::milliseconds timeout) const {
  if (controllers_.size() == 1) return size_t{0};
  const auto deadline = SteadyClock::now() + timeout;
  std::string last = "no controller answered";
  for (;;) {
    for (size_t k = 0; k < controllers_.size(); ++k) {
      if (!controllerRunning(k)) continue;
      auto status = apiOn(k, 0, "GET", "/v1/status");
      if (!status.ok()) {
        last = status.error().message;
        continue;
      }
      const Json cluster = status->value("cluster", Json::object());
      if (!cluster.value("leading", false)) {
        last = "no controller leads yet";
        continue;
      }
      if (cluster.value("controller", "") != fleet_.controllers[k].name) {
        return makeError(ErrorCode::kInternal, "controller " + fleet_.controllers[k].name +
                                                   " calls itself " +
                                                   cluster.value("controller", ""));
      }
      return k;
    }
    if (SteadyClock::now() >= deadline) {
      return makeError(ErrorCode::kUnavailable, "no controller leads: " + last);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::vector<size_t> FleetRun::agentsOn(size_t index) const {
  std::vector<size_t> out;
  const uint16_t port = fleet_.controllers.at(index).hub_port;
  for (size_t i = 0; i < options_.agents; ++i) {
    if (observer_->up(i) && observer_->controllerOf(i) == port) out.push_back(i);
  }
  return out;
}

int64_t FleetRun::connectedAt(size_t index) const { return observer_->connectedAt(index); }

size_t FleetRun::outcomes() const { return observer_ ? observer_->outcomes() : 0; }

std::vector<int64_t> FleetRun::firstHandled(const std::string& command_id) const {
  return observer_->firstHandled(command_id);
}

Status FleetRun::waitControllerReady(size_t index, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  std::string last = "no answer yet";
  DaemonChild& controller = *controllers_.at(index);
  while (SteadyClock::now() < deadline) {
    if (!controller.running()) {
      return makeError(ErrorCode::kUnavailable,
                       "shadan-controller " + fleet_.controllers[index].name + " exited (" +
                           std::to_string(controller.exitCode().value_or(-1)) +
                           "): " + lastLine(fleet_.controllers[index].log));
    }
    auto answer = apiOn(index, 0, "GET", "/v1/status");
    if (answer.ok()) return okStatus();
    last = answer.error().message;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return makeError(ErrorCode::kUnavailable, "the controller's API did not answer: " + last);
}

Result<Json> FleetRun::api(size_t op, const std::string& method, const std::string& path,
                           const std::optional<Json>& body) const {
  return apiOn(api_controller_, op, method, path, body);
}

Result<Json> FleetRun::apiOn(size_t controller, size_t op, const std::string& method,
                             const std::string& path, const std::optional<Json>& body) const {
  ApiClientOptions client;
  client.url = ControllerUrl{"127.0.0.1", fleet_.controllers.at(controller).api_port, true};
  client.ca_file = fleet_.endpoint.ca_file;
  client.token = fleet_.operators.at(op).token;
  client.timeout = std::chrono::seconds(60);
  client.max_response_bytes = 256u << 20;  // the view of an order to 50,000 gateways
  SHADAN_ASSIGN_OR_RETURN(const ApiResponse answer, ApiClient(client).request(method, path, body));
  if (!answer.ok()) {
    return makeError(ErrorCode::kUnavailable, method + " " + path + ": " + answer.errorSummary());
  }
  return answer.body;
}

bool FleetRun::waitConnected(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (connected() < options_.agents) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

size_t FleetRun::connected() const { return observer_ ? observer_->connected() : 0; }

std::vector<double> FleetRun::connectTimesSince(int64_t since_ms) const {
  std::vector<double> out;
  for (size_t i = 0; i < options_.agents; ++i) {
    const int64_t at = observer_->connectedAt(i);
    if (at >= since_ms) out.push_back(static_cast<double>(at - since_ms));
  }
  return out;
}

void FleetRun::stopAgent(size_t index) {
  onAgentThread(index, [agent = agents_[index].get()] { agent->disconnect(); });
}

void FleetRun::startAgent(size_t index) {
  onAgentThread(index, [agent = agents_[index].get()] { (void)agent->connect(); });
}

Result<ProcStats> FleetRun::controllerStats(size_t index) const {
  if (!controllerRunning(index)) {
    return makeError(ErrorCode::kUnavailable, "the controller is not running");
  }
  return readProcStats(controllers_[index]->pid());
}

Result<double> FleetRun::controllersCpuS() const {
  double total = 0;
  for (size_t k = 0; k < controllers_.size(); ++k) {
    if (!controllerRunning(k)) continue;
    SHADAN_ASSIGN_OR_RETURN(const ProcStats stats, controllerStats(k));
    total += stats.cpu_s;
  }
  return total;
}

Result<int64_t> FleetRun::settle(std::chrono::milliseconds timeout) const {
  constexpr auto kWindow = std::chrono::milliseconds(300);
  constexpr double kQuietShare = 0.05;
  const auto started = SteadyClock::now();
  SHADAN_ASSIGN_OR_RETURN(double before, controllersCpuS());
  int quiet_windows = 0;  // in a row: one quiet window can fall between two bursts
  const double quiet = kQuietShare * 0.3 * static_cast<double>(controllers_.size());
  for (;;) {
    std::this_thread::sleep_for(kWindow);
    SHADAN_ASSIGN_OR_RETURN(double after, controllersCpuS());
    const auto waited = SteadyClock::now() - started;
    quiet_windows = after - before < quiet ? quiet_windows + 1 : 0;
    if (quiet_windows == 2 || waited >= timeout) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(waited).count();
    }
    before = after;
  }
}

Result<std::string> FleetRun::requestIsolate(const std::string& reason) {
  SHADAN_ASSIGN_OR_RETURN(
      const Json answer,
      api(0, "POST", "/v1/isolate", Json{{"segment", kFleetSegment}, {"reason", reason}}));
  return answer.value("order_id", "");
}

Result<OrderRun> FleetRun::isolate(const std::string& reason) {
  const int64_t requested = nowMs();
  SHADAN_ASSIGN_OR_RETURN(const std::string order_id, requestIsolate(reason));
  return waitOrder(order_id, requested);
}

Result<OrderRun> FleetRun::restore(const std::string& reason) {
  SHADAN_ASSIGN_OR_RETURN(const auto requested, requestRestore(reason));
  return waitOrder(requested.first, requested.second);
}

Result<std::pair<std::string, int64_t>> FleetRun::requestRestore(const std::string& reason) {
  SHADAN_ASSIGN_OR_RETURN(
      const Json answer,
      api(0, "POST", "/v1/restore", Json{{"segment", kFleetSegment}, {"reason", reason}}));
  const std::string order_id = answer.value("order_id", "");
  const std::string approval_id = answer.value("approval_id", order_id);
  SHADAN_RETURN_IF_ERROR(signApproval(approval_id, 0));
  const int64_t requested = nowMs();  // the second signature releases the dispatches
  SHADAN_RETURN_IF_ERROR(signApproval(approval_id, 1));
  return std::make_pair(order_id, requested);
}

Status FleetRun::signApproval(const std::string& approval_id, size_t op) {
  SHADAN_ASSIGN_OR_RETURN(const Json listed, api(op, "GET", "/v1/approvals"));
  const auto approvals = listed.find("approvals");
  if (approvals == listed.end() || !approvals->is_array()) {
    return makeError(ErrorCode::kParse, "GET /v1/approvals: no approvals array");
  }
  for (const Json& entry : *approvals) {
    if (entry.value("approval_id", "") != approval_id) continue;
    const std::string type = entry.value("payloadType", "");
    SHADAN_ASSIGN_OR_RETURN(const auto bytes, base64Decode(entry.value("payload", "")));
    const std::string payload(bytes.begin(), bytes.end());
    const Signer& key = *fleet_.operators.at(op).key;
    SHADAN_ASSIGN_OR_RETURN(const auto signature, key.sign(dssePae(type, payload)));
    SHADAN_RETURN_IF_ERROR(api(op, "POST", "/v1/approvals/" + approval_id + "/signatures",
                               Json{{"keyid", key.keyId()}, {"sig", base64Encode(signature)}}));
    return okStatus();
  }
  return makeError(ErrorCode::kNotFound, "no pending approval " + approval_id);
}

Result<OrderRun> FleetRun::waitOrder(const std::string& order_id, int64_t requested_ms) {
  OrderRun run;
  run.order_id = order_id;
  const auto deadline = SteadyClock::now() + options_.phase_timeout;
  // The agents say when each has handled its dispatch; only then is the controller asked (its
  // view of a large order is not free to build).
  while (observer_->counts(order_id).handled < options_.agents && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Json view;
  for (;;) {
    SHADAN_ASSIGN_OR_RETURN(view, api(0, "GET", "/v1/orders/" + order_id));
    size_t acked = 0;
    size_t targets = 0;
    for (const auto& [gateway, entry] : gatewaysOf(view).items()) {
      ++targets;
      if (isAcked(entry.value("state", ""))) ++acked;
    }
    if ((targets > 0 && acked == targets) || SteadyClock::now() >= deadline) break;
    // Seldom: the times are the controller's own record of each ack, so asking less often
    // changes no figure, while each view of a thousand-gateway order costs the controller.
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  for (const auto& [gateway, entry] : gatewaysOf(view).items()) {
    ++run.targets;
    const std::string state = entry.value("state", "unknown");
    ++run.states[state];
    if (!isAcked(state) || !entry.contains("updated_at") || !entry["updated_at"].is_string()) {
      continue;
    }
    ++run.acked;
    if (auto at = parseRfc3339UtcMillis(entry["updated_at"].get<std::string>()); at.ok()) {
      run.ack_ms.push_back(static_cast<double>(*at - requested_ms));
    }
  }
  const Observer::Counts counts = observer_->counts(order_id);
  run.handled = counts.handled;
  run.applied = counts.applied;
  run.redelivered = counts.redelivered;
  run.duplicates = counts.duplicates;
  run.once.assign(options_.agents, false);
  for (size_t i = 0; i < options_.agents; ++i) {
    const auto entry = gatewaysOf(view).find(fleet_.agents[i].id);
    const bool acked =
        entry != gatewaysOf(view).end() &&
        (entry->value("state", "") == "applied" || entry->value("state", "") == "already_applied");
    run.once[i] = acked && i < counts.applied_times.size() && counts.applied_times[i] == 1;
  }
  return run;
}

}  // namespace shadan::loadgen

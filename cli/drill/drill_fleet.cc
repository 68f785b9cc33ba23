#include "cli/drill/drill_fleet.h"

#include <unistd.h>

#include <filesystem>
#include <thread>

#include "cli/lab/netns.h"

namespace shadan::drill {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr auto kPoll = std::chrono::milliseconds(50);
constexpr auto kApiTimeout = std::chrono::milliseconds(5000);

bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

}  // namespace

Result<DrillBinaries> findDrillBinaries(const std::string& self_exe,
                                        const std::optional<std::string>& bin_dir) {
  const fs::path base = bin_dir ? fs::path(*bin_dir) : fs::path(self_exe).parent_path();
  // Installed side by side, or the build tree (cli/, controller/, agents/).
  const std::vector<std::pair<fs::path, fs::path>> layouts = {
      {base / "shadan-controller", base / "shadan-agent"},
      {base / ".." / "controller" / "shadan-controller", base / ".." / "agents" / "shadan-agent"},
      {base / "controller" / "shadan-controller", base / "agents" / "shadan-agent"}};
  std::string tried;
  for (const auto& [controller, agent] : layouts) {
    if (executable(controller) && executable(agent)) {
      return DrillBinaries{fs::weakly_canonical(controller).string(),
                           fs::weakly_canonical(agent).string()};
    }
    tried += (tried.empty() ? "" : ", ") + controller.lexically_normal().string() + " + " +
             agent.lexically_normal().string();
  }
  return makeError(ErrorCode::kNotFound, "shadan-controller and shadan-agent not found (tried " +
                                             tried +
                                             "); build them (make build) or give --bin-dir DIR");
}

DrillFleet::DrillFleet(const PolicyLab& policy_lab, const Lab& lab, const DrillPki& pki,
                       DrillBinaries binaries, std::string policy_file, std::string log_dir)
    : policy_lab_(policy_lab),
      lab_(lab),
      pki_(pki),
      binaries_(std::move(binaries)),
      policy_file_(std::move(policy_file)),
      log_dir_(std::move(log_dir)),
      controller_ns_(lab.nsName(policy_lab.controller_node)) {}

DrillFleet::~DrillFleet() = default;

std::string DrillFleet::gatewayNetns(const std::string& gateway) const {
  return lab_.nsName(policy_lab_.gateway_nodes.at(gateway));
}

ApiClientOptions DrillFleet::clientOptions(const std::string& token_name) const {
  ApiClientOptions options;
  options.url = ControllerUrl{pki_.api_host, pki_.api_port, true};
  options.ca_file = pki_.ca_cert;
  options.token = pki_.tokens.at(token_name);
  options.timeout = kApiTimeout;
  return options;
}

Result<ApiResponse> DrillFleet::api(const std::string& token_name, const std::string& method,
                                    const std::string& path,
                                    const std::optional<nlohmann::json>& body) {
  const ApiClientOptions options = clientOptions(token_name);
  std::optional<Result<ApiResponse>> answer;
  Status ran = runInNetns(controller_ns_, [&]() -> Status {
    ApiClient client(options);
    answer.emplace(client.request(method, path, body));
    return okStatus();
  });
  SHADAN_RETURN_IF_ERROR(ran);
  return std::move(*answer);
}

Result<RawApiResponse> DrillFleet::apiRaw(const std::string& token_name,
                                          const RawApiRequest& request) {
  const ApiClientOptions options = clientOptions(token_name);
  std::optional<Result<RawApiResponse>> answer;
  Status ran = runInNetns(controller_ns_, [&]() -> Status {
    ApiClient client(options);
    answer.emplace(client.requestRaw(request));
    return okStatus();
  });
  SHADAN_RETURN_IF_ERROR(ran);
  return std::move(*answer);
}

Status DrillFleet::startController(std::chrono::milliseconds timeout) {
  if (controller_ && controller_->running()) return okStatus();
  SHADAN_ASSIGN_OR_RETURN(
      controller_,
      DaemonChild::start({controller_ns_,
                          {binaries_.controller, "run", "--config", pki_.controller_config},
                          log_dir_ + "/controller.log"}));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last = "no answer yet";
  for (;;) {
    if (!controller_->running()) {
      return makeError(ErrorCode::kUnavailable,
                       "shadan-controller exited with status " +
                           std::to_string(controller_->exitCode().value_or(-1)) + " (see " +
                           log_dir_ + "/controller.log)");
    }
    auto status = api(kDrillOperators[0], "GET", "/v1/status");
    if (status.ok() && status->ok()) return okStatus();
    last = status.ok() ? "HTTP " + std::to_string(status->status) : status.error().message;
    if (std::chrono::steady_clock::now() >= deadline) {
      return makeError(ErrorCode::kUnavailable, "the controller's API did not answer within " +
                                                    std::to_string(timeout.count()) + " ms (" +
                                                    last + "; see " + log_dir_ +
                                                    "/controller.log)");
    }
    std::this_thread::sleep_for(kPoll);
  }
}

Status DrillFleet::stopController() {
  if (!controller_) return okStatus();
  auto stopped = controller_->stop(SIGTERM);
  controller_.reset();
  SHADAN_ASSIGN_OR_RETURN(const int code, std::move(stopped));
  if (code != 0) {
    return makeError(ErrorCode::kIo, "shadan-controller exited with status " +
                                         std::to_string(code) + " (see " + log_dir_ +
                                         "/controller.log)");
  }
  return okStatus();
}

bool DrillFleet::controllerRunning() { return controller_ && controller_->running(); }

Status DrillFleet::startAgent(const std::string& gateway) {
  auto& slot = agents_[gateway];
  if (slot && slot->running()) return okStatus();
  const DrillPkiGateway& paths = pki_.gateways.at(gateway);
  SHADAN_ASSIGN_OR_RETURN(
      slot, DaemonChild::start(
                {gatewayNetns(gateway),
                 {binaries_.agent, "run", "--policy", policy_file_, "--gateway", gateway,
                  "--state-dir", paths.state_dir, "--trust", pki_.trust_file, "--controller",
                  hostPort(pki_.api_host, pki_.hub_port), "--tls-dir", paths.tls_dir,
                  "--controller-pin", pki_.controller_pin, "--log-level", "info"},
                 log_dir_ + "/agent-" + gateway + ".log"}));
  return okStatus();
}

Status DrillFleet::stopAgent(const std::string& gateway, int signal) {
  auto found = agents_.find(gateway);
  if (found == agents_.end() || !found->second) return okStatus();
  auto stopped = found->second->stop(signal);
  found->second.reset();
  SHADAN_ASSIGN_OR_RETURN(const int code, std::move(stopped));
  if (signal == SIGTERM && code != 0) {
    return makeError(ErrorCode::kIo, "shadan-agent on " + gateway + " exited with status " +
                                         std::to_string(code) + " (see " + log_dir_ + "/agent-" +
                                         gateway + ".log)");
  }
  return okStatus();
}

Result<bool> DrillFleet::agentsAre(const std::string& status) {
  SHADAN_ASSIGN_OR_RETURN(auto answer, api(kDrillOperators[0], "GET", "/v1/agents"));
  if (!answer.ok()) {
    return makeError(ErrorCode::kUnavailable, "GET /v1/agents: " + answer.errorSummary());
  }
  for (const auto& [gateway, node] : policy_lab_.gateway_nodes) {
    bool found = false;
    for (const Json& agent : answer.body.value("agents", Json::array())) {
      if (agent.value("agent_id", "") == gateway && agent.value("status", "") == status &&
          agent.value("connected", false)) {
        found = true;
      }
    }
    if (!found) return false;
  }
  return true;
}

Status DrillFleet::waitAgents(const std::string& status, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto all = agentsAre(status);
    if (all.ok() && *all) return okStatus();
    if (std::chrono::steady_clock::now() >= deadline) {
      return makeError(ErrorCode::kUnavailable,
                       "not every agent was " + status + " and connected within " +
                           std::to_string(timeout.count()) + " ms" +
                           (all.ok() ? "" : " (" + all.error().message + ")") + "; see " +
                           log_dir_ + "/agent-*.log");
    }
    std::this_thread::sleep_for(kPoll);
  }
}

Status DrillFleet::start(std::chrono::milliseconds timeout) {
  SHADAN_RETURN_IF_ERROR(startController(timeout));
  for (const auto& [gateway, node] : policy_lab_.gateway_nodes) {
    SHADAN_RETURN_IF_ERROR(startAgent(gateway));
  }
  SHADAN_RETURN_IF_ERROR(waitAgents("pending", timeout));
  for (const auto& [gateway, node] : policy_lab_.gateway_nodes) {
    SHADAN_ASSIGN_OR_RETURN(auto approved,
                            api(kDrillOperators[0], "POST", "/v1/agents/" + gateway + "/approve",
                                Json{{"reason", "drill: the lab's gateway " + gateway}}));
    if (!approved.ok()) {
      return makeError(ErrorCode::kUnavailable,
                       "enrolling " + gateway + ": " + approved.errorSummary());
    }
  }
  return waitAgents("approved", timeout);
}

Status DrillFleet::stop() {
  std::string failed;
  for (auto& [gateway, child] : agents_) {
    if (!child) continue;
    Status stopped = stopAgent(gateway, SIGTERM);
    if (!stopped.ok()) failed += (failed.empty() ? "" : "; ") + stopped.error().message;
  }
  Status stopped = stopController();
  if (!stopped.ok()) failed += (failed.empty() ? "" : "; ") + stopped.error().message;
  if (!failed.empty()) return makeError(ErrorCode::kIo, failed);
  return okStatus();
}

}  // namespace shadan::drill

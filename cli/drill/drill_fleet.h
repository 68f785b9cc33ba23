#pragma once

// The real daemons of a drill: shadan-controller in the lab's controller namespace and one
// shadan-agent per gateway in the gateway's namespace, started with the drill's credentials
// (drill_pki.h), and the controller's API as the drill's operators and detectors use it.
//
// API requests run on a short-lived thread inside the controller's namespace (runInNetns), so
// the caller's thread never changes namespace and the API need not be reachable from the root
// namespace. Not thread-safe; `policy_lab`, `lab` and `pki` must outlive the fleet. The
// destructor SIGKILLs whatever still runs (stop() is the clean way).

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/api_client.h"
#include "cli/drill/drill_pki.h"
#include "cli/lab/daemon_child.h"
#include "cli/lab/lab.h"
#include "cli/lab/policy_lab.h"

namespace shadan::drill {

struct DrillBinaries {
  std::string controller;  // shadan-controller
  std::string agent;       // shadan-agent
};

// The daemons next to `self_exe` (shadanctl): in the build tree cli/shadanctl finds
// ../controller/shadan-controller and ../agents/shadan-agent; installed, both sit beside it.
// With `bin_dir`, only there (either layout). Errors name every path tried.
Result<DrillBinaries> findDrillBinaries(const std::string& self_exe,
                                        const std::optional<std::string>& bin_dir);

class DrillFleet {
 public:
  DrillFleet(const PolicyLab& policy_lab, const Lab& lab, const DrillPki& pki,
             DrillBinaries binaries, std::string policy_file, std::string log_dir);
  ~DrillFleet();

  // Starts the controller and waits until its API answers; starts every agent, waits until each
  // dialled in, enrolls it as the first operator, waits until each is approved and connected.
  Status start(std::chrono::milliseconds timeout);
  // Agents first (each ships its final audit checkpoint to the controller), then the
  // controller, each with SIGTERM. Errors name the daemons that did not stop cleanly.
  Status stop();

  Status startController(std::chrono::milliseconds timeout);
  Status stopController();
  bool controllerRunning();
  Status startAgent(const std::string& gateway);
  // SIGTERM (clean) or SIGKILL; waits for the exit.
  Status stopAgent(const std::string& gateway, int signal);

  // One request as `token_name` (a key of pki.tokens) from the controller's namespace.
  Result<ApiResponse> api(const std::string& token_name, const std::string& method,
                          const std::string& path,
                          const std::optional<nlohmann::json>& body = std::nullopt);
  Result<RawApiResponse> apiRaw(const std::string& token_name, const RawApiRequest& request);

  // Every gateway's agent is `status` (pending, approved) and connected.
  Result<bool> agentsAre(const std::string& status);
  Status waitAgents(const std::string& status, std::chrono::milliseconds timeout);

  const std::string& controllerNetns() const { return controller_ns_; }
  std::string gatewayNetns(const std::string& gateway) const;
  const std::string& logDir() const { return log_dir_; }

 private:
  // The API client of `token_name` (a key of the drill PKI's tokens) for the controller.
  ApiClientOptions clientOptions(const std::string& token_name) const;
  const PolicyLab& policy_lab_;
  const Lab& lab_;
  const DrillPki& pki_;
  DrillBinaries binaries_;
  std::string policy_file_;
  std::string log_dir_;
  std::string controller_ns_;
  std::unique_ptr<DaemonChild> controller_;
  std::map<std::string, std::unique_ptr<DaemonChild>> agents_;
};

}  // namespace shadan::drill

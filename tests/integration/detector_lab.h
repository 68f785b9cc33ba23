#pragma once

// The namespace lab the detector integration tests share: a real shadan-controller and a real
// shadan-agent, and the detector's own daemon (fail2ban-server, crowdsec) that a derived fixture
// starts on the management host.
//
// The lab: gateway gw; the office segment on two links (host A pc1 on 10.20.0.0/24, host B pc2
// on 10.21.0.0/24); servers (srv); the management host mgmt, which runs the controller (API
// 10.99.0.10:8443, agent hub :8444) and the detector (it reaches the API locally).
//
// SetUp (root only; otherwise it skips): a temporary directory, the lab, a CA with the
// controller's server certificate and the agent's client certificate, signing keys and the trust
// file, the policy, the tokens (operator `sato`; one detector token per detectorNames(), scoped
// to office), the controller with responseRules(), the agent on gw enrolled by sato. Every token
// is in the directory as NAME.header (`Authorization: Bearer ...`, for curl -H @FILE) and
// NAME.token (the token and a newline), both 0600.
//
// TearDown: a derived fixture stops its detector first (it talks to the controller), then calls
// DetectorLabTest::TearDown(), which dumps the logs and the gateway's ruleset when the test
// failed, stops the agent and the controller, deletes the namespaces (sd-<labTag()><pid>-<node>)
// and removes the directory (kept, and named, when the test failed).

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/lab/command_runner.h"
#include "cli/lab/daemon_child.h"
#include "cli/lab/lab.h"
#include "tests/integration/agent_process.h"
#include "tests/integration/lab_traffic.h"

namespace shadan {

inline constexpr LabHost kDetectorHostA{"pc1", "10.20.0.2", ""};
inline constexpr LabHost kDetectorHostB{"pc2", "10.21.0.2", ""};  // host A's neighbour in office
inline constexpr LabHost kDetectorServer{"srv", "10.30.0.2", ""};
inline constexpr const char* kDetectorControllerIp = "10.99.0.10";
// The controller's API as the detector on mgmt reaches it.
inline constexpr const char* kDetectorApi = "https://10.99.0.10:8443";

class DetectorLabTest : public ::testing::Test {
 protected:
  // Long enough for a packet across a veth to come back; a pass must never be flaky.
  static constexpr std::chrono::milliseconds kShouldFail{300};
  static constexpr std::chrono::milliseconds kShouldPass{3000};
  static constexpr std::chrono::seconds kStartWithin{20};

  // One letter: lab and directory names of one test binary differ from another's.
  virtual char labTag() const = 0;
  // The detector tokens the controller knows (role detector, segments ["office"]).
  virtual std::vector<std::string> detectorNames() const = 0;
  // The controller's response.rules (docs/detectors.md).
  virtual nlohmann::json responseRules() const = 0;

  void SetUp() override;
  void TearDown() override;

  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  std::string ns(const char* node) const { return lab_->nsName(node); }
  // Writes `text` to file(name) with `mode` (an ASSERT failure when it cannot).
  void writeFile(const std::string& name, const std::string& text, mode_t mode = 0644);
  // The bearer token made for `name` (sato or a detector).
  std::string token(const std::string& name) const;

  // curl inside mgmt against the controller's API, as `who` (its header file). nullopt when
  // curl itself failed (no answer); otherwise the HTTP status and the parsed body.
  struct Answer {
    int status = 0;
    nlohmann::json body;
    std::string text;
  };
  std::optional<Answer> api(const std::string& who, const std::string& method,
                            const std::string& path, const std::string& body = "");
  // The controller's recent decisions (GET /v1/alerts), for messages.
  std::string recentAlerts();

  bool tcp(const LabHost& from, const LabHost& to) {
    return tcpReaches(*lab_, from, to, /*v6=*/false, 0, kShouldFail);
  }
  TrafficCheck traffic() { return TrafficCheck(*lab_, kShouldFail, kShouldPass); }
  // Waits up to `within` until `host` no longer reaches the server, then proves the quarantine
  // both ways over TCP and ICMP while `neighbour` still passes. `trigger` names what should have
  // caused it, for messages.
  void expectQuarantined(const LabHost& host, const LabHost& neighbour, std::chrono::seconds within,
                         const std::string& trigger);

  // Logs (names in the directory) printed when the test failed, besides the daemons' own.
  std::vector<std::string> logs_to_dump_;
  std::filesystem::path dir_;
  std::unique_ptr<ProcessCommandRunner> runner_;
  std::unique_ptr<Lab> lab_;

 private:
  std::string makeToken(const std::string& name);
  void makeCredentials();
  void startController();
  void startAgentAndEnroll();
  void dumpState();

  std::string server_pin_;
  std::unique_ptr<DaemonChild> controller_;
  std::unique_ptr<AgentProcess> agent_;
};

}  // namespace shadan

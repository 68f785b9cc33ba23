#pragma once

// The whole shadan-agent CLI over fakes, for tests that only look at what a command line
// prints and returns: every factory hands out a fresh fake, shaped by the knobs below. (The
// fixture of agent_cli_test.cc keeps its fakes across commands; these tests need no state.)

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "agents/agent_cli.h"
#include "tests/fakes/fake_backends.h"

namespace shadan::agent::testing {

inline const std::string kLabPolicy =
    std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";

// --policy, --gateway and --state-dir for the lab policy's gateway.
inline const std::vector<std::string> kLabCommon = {
    "--policy", kLabPolicy, "--gateway", "gw", "--state-dir", "/nonexistent/state"};

// `args` followed by kLabCommon.
inline std::vector<std::string> withLab(std::vector<std::string> args) {
  args.insert(args.end(), kLabCommon.begin(), kLabCommon.end());
  return args;
}

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

class AgentCliHarness {
 public:
  AgentCliHarness() {
    env_.open_firewall = [this]() -> Result<FirewallBackendPtr> {
      ++firewall_opens;
      auto firewall = std::make_unique<shadan::testing::FakeFirewallBackend>();
      if (kernel_refuses) firewall->fail_applies = 1000;
      return FirewallBackendPtr(std::move(firewall));
    };
    env_.open_routes = []() -> Result<RouteBackendPtr> {
      return RouteBackendPtr(std::make_unique<shadan::testing::FakeRouteBackend>());
    };
    env_.open_conntrack = []() -> Result<ConntrackBackendPtr> {
      return ConntrackBackendPtr(std::make_unique<shadan::testing::FakeConntrackBackend>());
    };
    env_.open_audit = [this](const std::filesystem::path&,
                             const std::string&) -> Result<AgentEnvironment::AuditHandle> {
      return AgentEnvironment::AuditHandle{
          std::shared_ptr<AuditSink>(&audit_, [](AuditSink*) {}),
          std::shared_ptr<const Signer>(&agent_key_, [](const Signer*) {})};
    };
    env_.open_state = [this](const std::filesystem::path&) -> Result<StateStorePtr> {
      ++state_opens;
      if (state_busy_for > 0) {
        --state_busy_for;
        return makeError(ErrorCode::kUnavailable,
                         "state directory is in use by another shadan-agent process");
      }
      return StateStorePtr(std::make_unique<shadan::testing::FakeStateStore>());
    };
    env_.ask_daemon = [this](const std::filesystem::path&,
                             const ControlRequest&) -> Result<std::optional<nlohmann::json>> {
      return daemon_answer;
    };
    env_.claim_gateway = [this]() -> Result<std::shared_ptr<void>> {
      if (gateway_owner) return makeError(ErrorCode::kUnavailable, *gateway_owner);
      return std::shared_ptr<void>(std::make_shared<int>(0));
    };
    env_.has_net_admin = [this] { return net_admin; };
    env_.defaults = AgentDefaults{"", "", {}};  // nothing from this machine's /etc/shadan
    env_.create_state = [this](const std::filesystem::path& dir) -> Result<StateStorePtr> {
      created_state_dirs.push_back(dir);
      return StateStorePtr(std::make_unique<shadan::testing::FakeStateStore>());
    };
    env_.run_daemon = [](const DaemonOptions&) { return 0; };
    env_.clock = &clock_;
  }

  CliRun run(const std::vector<std::string>& args) {
    std::ostringstream out;
    std::ostringstream err;
    env_.out = &out;
    env_.err = &err;
    CliRun result;
    result.code = runAgentCli(args, env_);
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  // Knobs, read at each call of the factory they shape.
  bool kernel_refuses = false;                  // every nftables transaction fails
  std::optional<std::string> gateway_owner;     // another agent holds the gateway lock
  bool net_admin = true;                        // what has_net_admin answers
  int state_busy_for = 0;                       // open_state is kUnavailable this many times
  std::optional<nlohmann::json> daemon_answer;  // nullopt: no daemon listens

  int firewall_opens = 0;
  std::vector<std::filesystem::path> created_state_dirs;  // by init
  int state_opens = 0;

 private:
  shadan::testing::FakeClock clock_;
  shadan::testing::FakeAuditSink audit_;
  Ed25519Signer agent_key_{Ed25519KeyPair::generate()};
  AgentEnvironment env_;
};

}  // namespace shadan::agent::testing

#include "agents/agent_setup.h"

#include <fstream>
#include <set>
#include <string_view>
#include <vector>

#include "common/duration.h"
#include "common/listen_address.h"

namespace shadan::agent {
namespace {
// Controllers one agent may be given: a deployment runs three (docs/ha.md); more is a typo.
constexpr size_t kMaxControllers = 7;
}  // namespace

std::optional<std::string> gatewayFromEnvFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  constexpr std::string_view kKey = "SHADAN_GATEWAY=";
  while (std::getline(in, line)) {
    const size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line.compare(start, kKey.size(), kKey) != 0) continue;
    std::string value = line.substr(start + kKey.size());
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r'))
      value.pop_back();
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    if (!value.empty()) return value;
  }
  return std::nullopt;
}

void applyAgentDefaults(AgentCliOptions& options, const AgentDefaults& defaults) {
  std::error_code ec;
  const auto exists = [&](const std::filesystem::path& path) {
    return std::filesystem::exists(path, ec);
  };
  const std::string& command = options.command;
  const bool have_config = !defaults.config_dir.empty();
  if (command == "policy") {
    // Offline checks of the file named: no gateway, state directory or trust of this host
    // slips in (policy check refuses options it was not given). Only show reads the installed
    // policy when none is named.
    const bool show = !options.positional.empty() && options.positional[0] == "show";
    if (show && !options.policy && have_config && exists(defaults.config_dir / "policy.json")) {
      options.policy = (defaults.config_dir / "policy.json").string();
    }
    return;
  }
  if (!options.policy && have_config && exists(defaults.config_dir / "policy.json")) {
    options.policy = (defaults.config_dir / "policy.json").string();
  }
  if (!options.gateway) {
    std::optional<std::string> from_env;
    if (defaults.getenv) from_env = defaults.getenv("SHADAN_GATEWAY");
    if (from_env && !from_env->empty()) {
      options.gateway = *from_env;
    } else if (have_config) {
      if (auto from_file = gatewayFromEnvFile(defaults.config_dir / "agent.env")) {
        options.gateway = *from_file;
      }
    }
  }
  if (!options.state_dir && !defaults.state_dir.empty() &&
      (command != "plan" || exists(defaults.state_dir))) {
    options.state_dir = defaults.state_dir.string();
  }
  if (!options.trust && have_config &&
      (command == "run" || command == "check-config" || command == "verify" ||
       command == "apply-file") &&
      exists(defaults.config_dir / "trust.json")) {
    options.trust = (defaults.config_dir / "trust.json").string();
  }
}

std::string defaultHint(const std::string& option, const AgentDefaults& defaults) {
  if (defaults.config_dir.empty()) return "";
  if (option == "--policy") {
    return " (or install it as " + (defaults.config_dir / "policy.json").string() + ")";
  }
  if (option == "--gateway") {
    return " (or set SHADAN_GATEWAY, in the environment or in " +
           (defaults.config_dir / "agent.env").string() + ")";
  }
  return "";
}

Result<DaemonOptions> daemonOptionsFrom(const AgentCliOptions& options) {
  const auto bad = [](const std::string& why) {
    return makeError(ErrorCode::kInvalidArgument, why);
  };
  DaemonOptions daemon_options;
  daemon_options.policy_path = *options.policy;
  daemon_options.gateway = *options.gateway;
  daemon_options.state_dir = *options.state_dir;
  if (options.controller) {
    // HOST:PORT, or several controllers of one deployment: HOST:PORT,HOST:PORT,...
    std::vector<ControllerAddress> addresses;
    std::string_view rest = *options.controller;
    while (true) {
      const size_t comma = rest.find(',');
      const std::string address(rest.substr(0, comma));
      const auto colon = address.rfind(':');
      int port = 0;
      if (colon != std::string::npos) {
        const std::string digits = address.substr(colon + 1);
        if (!digits.empty() && digits.size() <= 5 &&
            digits.find_first_not_of("0123456789") == std::string::npos) {
          port = std::stoi(digits);
        }
      }
      if (colon == std::string::npos || colon == 0 || port < 1 || port > 65535) {
        return bad("--controller must be HOST:PORT[,HOST:PORT...], got \"" + address + "\"");
      }
      std::string host = address.substr(0, colon);
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      }
      addresses.push_back(ControllerAddress{host, static_cast<uint16_t>(port)});
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    if (addresses.size() > kMaxControllers) {
      return bad("--controller: at most " + std::to_string(kMaxControllers) + " controllers");
    }
    if (!options.tls_dir || !options.controller_pin) {
      return bad("--controller needs --tls-dir and --controller-pin");
    }
    daemon_options.controller = ControllerEndpoint{
        addresses.front().host, addresses.front().port, *options.tls_dir, *options.controller_pin,
        std::vector<ControllerAddress>(addresses.begin() + 1, addresses.end())};
  } else if (options.tls_dir || options.controller_pin) {
    return bad("--tls-dir and --controller-pin go with --controller");
  }
  if (options.audit_export) {
    static const std::set<std::string> kModes = {"off", "journald", "syslog", "auto"};
    if (!kModes.count(*options.audit_export)) {
      return bad("--audit-export must be one of off|journald|syslog|auto");
    }
    daemon_options.audit_export = *options.audit_export;
  }
  if (options.metrics_listen) {
    auto address = parseListenAddress(*options.metrics_listen);
    if (!address.ok()) return bad("--metrics-listen: " + address.error().message);
    daemon_options.metrics_listen = *address;
  }
  if (options.controller_grace) {
    auto grace = parseDuration(*options.controller_grace);
    if (!grace.ok()) return bad("--controller-grace: " + grace.error().message);
    daemon_options.controller_loss_grace = *grace;
  }
  return daemon_options;
}

}  // namespace shadan::agent

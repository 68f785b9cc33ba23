#include "agents/agent_cli_options.h"

#include <map>

namespace shadan::agent {

const char* const kAgentCliUsage = R"(usage: shadan-agent COMMAND [ARGS] [OPTIONS]

Local control of a Shadan gateway agent (break-glass and lab use).

commands:
  run                                  the agent daemon: applies the stored state at once, keeps
                                       it applied, serves the commands below over its socket
  isolate SEGMENT [--profile NAME] [--ttl DURATION]
                                       cut SEGMENT on this gateway (profile default: full);
                                       with --ttl (4s, 30m, 2h, 1d) the daemon restores it
                                       then (refused when no daemon runs, unless
                                       --ttl-without-daemon: stored, honoured later);
                                       --drill marks a rehearsal (needs --ttl);
                                       --reason TEXT is audited (required for a protected
                                       segment, which also asks to confirm; --yes for scripts)
  restore SEGMENT [--profile NAME] --reason TEXT
                                       lift SEGMENT's isolation (all its profiles unless --profile)
  restore --all --reason TEXT          lift every isolation on this gateway
  status                               desired state, and whether the kernel holds it
  plan [SEGMENT [--profile NAME]]      print the nftables document (current state, plus SEGMENT)
                                       without applying anything
  verify FILE                          would this signed envelope (dispatch, or break-glass authz)
                                       be accepted now, and if not, why (needs --trust)
  apply-file FILE                      break-glass: apply a breakglass-signed isolate authz from a
                                       file, with no controller (needs --trust)

options:
  --policy FILE      the Shadan policy (required)
  --gateway ID       this gateway's id in the policy (required)
  --state-dir DIR    where the desired state is kept (required, except for plan)
  --trust FILE       the trust file (keys, roles, thresholds) for signed orders

run only:
  --controller HOST:PORT    dial the controller (mutual TLS 1.3, WebSocket); standalone without
  --tls-dir DIR             ca.crt, agent.crt, agent.key for that channel
  --controller-pin HEX      SHA-256 of the controller certificate's public key (shadanctl ca pin)
  --controller-grace DUR    how long the controller may be gone before policy
                            agent.on_controller_loss=revert lifts drills (default 5m)
  --audit-export MODE       also send audit entries to journald or syslog (RFC 5424):
                            off (default) | journald | syslog | auto
  --json             machine-readable output on stdout

With a daemon running on the state directory, isolate/restore/status are handed to it (one
writer); without one they act on the kernel directly.
  --log-level LEVEL  debug|info|warn|error|off (default warn)
  -h, --help         this text
  --version          print the version

exit codes: 0 ok, 1 kernel or state failure (nothing changed), 2 bad command line,
            3 request invalid for the policy (nothing changed), 4 state directory busy or
            gateway owned by another agent, 5 status: the kernel does not hold what was
            applied, 6 status: an isolation's deadline is overdue
)";

Result<AgentCliOptions> parseAgentCliArgs(const std::vector<std::string>& args) {
  AgentCliOptions options;
  const std::map<std::string, std::optional<std::string> AgentCliOptions::*> valued = {
      {"--profile", &AgentCliOptions::profile},
      {"--policy", &AgentCliOptions::policy},
      {"--gateway", &AgentCliOptions::gateway},
      {"--state-dir", &AgentCliOptions::state_dir},
      {"--log-level", &AgentCliOptions::log_level},
      {"--ttl", &AgentCliOptions::ttl},
      {"--reason", &AgentCliOptions::reason},
      {"--trust", &AgentCliOptions::trust},
      {"--controller", &AgentCliOptions::controller},
      {"--tls-dir", &AgentCliOptions::tls_dir},
      {"--controller-pin", &AgentCliOptions::controller_pin},
      {"--controller-grace", &AgentCliOptions::controller_grace},
      {"--audit-export", &AgentCliOptions::audit_export},
  };
  const std::map<std::string, bool AgentCliOptions::*> flags = {
      {"--all", &AgentCliOptions::all},
      {"--drill", &AgentCliOptions::drill},
      {"--ttl-without-daemon", &AgentCliOptions::ttl_without_daemon},
      {"--yes", &AgentCliOptions::yes},
      {"--json", &AgentCliOptions::json},
      {"--help", &AgentCliOptions::help},
      {"-h", &AgentCliOptions::help},
      {"--version", &AgentCliOptions::version},
  };
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::optional<std::string> inline_value;
    if (arg.rfind("--", 0) == 0) {
      if (const auto eq = arg.find('='); eq != std::string::npos) {
        inline_value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      }
    }
    if (const auto it = valued.find(arg); it != valued.end()) {
      std::string value;
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return makeError(ErrorCode::kInvalidArgument, arg + " needs a value");
      }
      if (value.empty()) return makeError(ErrorCode::kInvalidArgument, arg + " needs a value");
      if (options.*(it->second)) {
        return makeError(ErrorCode::kInvalidArgument, arg + " given twice");
      }
      options.*(it->second) = value;
    } else if (const auto flag = flags.find(arg); flag != flags.end()) {
      if (inline_value) return makeError(ErrorCode::kInvalidArgument, arg + " takes no value");
      options.*(flag->second) = true;
    } else if (arg.size() > 1 && arg[0] == '-') {
      return makeError(ErrorCode::kInvalidArgument, "unknown option " + arg);
    } else if (options.command.empty()) {
      options.command = arg;
    } else {
      options.positional.push_back(arg);
    }
  }
  return options;
}

}  // namespace shadan::agent

#include "agents/agent_cli_options.h"

#include <algorithm>
#include <map>

namespace shadan::agent {

const char* const kAgentCliUsage = R"(usage: shadan-agent COMMAND [ARGS] [OPTIONS]
       shadan-agent COMMAND --help          that command's arguments and options

Local control of a Shadan gateway agent (break-glass and lab use).

commands:
  run                                  the agent daemon: applies the stored state at once, keeps
                                       it applied, serves the commands below over its socket
  isolate SEGMENT [--profile NAME] [--ttl DURATION [--drill]]
                                       cut SEGMENT on this gateway (profile default: full);
                                       with --ttl (4s, 30m, 2h, 1d) the daemon restores it
                                       then (refused when no daemon runs, unless
                                       --ttl-without-daemon: stored, honoured later);
                                       --drill marks a rehearsal (needs --ttl);
                                       --reason TEXT is audited (required for a protected
                                       segment, which also asks to confirm; --yes for scripts)
  isolate --host ADDR[,ADDR...] | --uplink [--link-down] | --island
                                       the other rungs of the ladder: quarantine hosts of one
                                       segment; cut the uplink (and set its links down); cut
                                       every segment from every other (same options as above)
  restore SEGMENT [--profile NAME] --reason TEXT
                                       lift SEGMENT's isolation (all its profiles unless --profile)
  restore --host ADDR[,ADDR...] | --uplink | --island --reason TEXT
                                       lift that rung only (never another)
  restore --all --reason TEXT          lift every isolation on this gateway
  status                               desired state, and whether the kernel holds it
  plan [SEGMENT|--host|--uplink|--island] [--profile NAME]
                                       print the nftables document (current state, plus the rung)
                                       without applying anything
  verify FILE                          would this signed envelope (dispatch, or break-glass authz)
                                       be accepted now, and if not, why (needs --trust)
  apply-file FILE                      break-glass: apply a breakglass-signed isolate authz from a
                                       file, with no controller (needs --trust)
  policy check FILE [--gateway ID]     validate a policy file offline (and that the gateway can
                                       plan every isolation it borders); no root needed
  policy show --policy FILE            the policy's segments, profiles and gateways; no root needed
  init                                 create the state directory and the agent key (the only
                                       local command that creates one, besides run)
  check-config                         load and check what run would (policy, every isolation
                                       planned, trust, controller TLS files) without starting

options (an installed gateway needs none of the first four):
  --policy FILE      the Shadan policy (default /etc/shadan/policy.json)
  --gateway ID       this gateway's id in the policy (default $SHADAN_GATEWAY, or
                     SHADAN_GATEWAY=... in /etc/shadan/agent.env)
  --state-dir DIR    where the desired state is kept (default /var/lib/shadan; never created
                     by a command other than run and init)
  --trust FILE       the trust file (keys, roles, thresholds) for signed orders (default
                     /etc/shadan/trust.json when it exists)
  --json             machine-readable output on stdout
  --log-level LEVEL  debug|info|warn|error|off (default warn)
  -h, --help         this text (after a COMMAND: that command's)
  --version          print the version

run and check-config only:
  --controller HOST:PORT    dial the controller (mutual TLS 1.3, WebSocket); standalone without;
                            HOST:PORT,HOST:PORT,...: several controllers, dialled in turn
  --tls-dir DIR             ca.crt, agent.crt, agent.key for that channel
  --controller-pin HEX      SHA-256 of the controller certificate's public key (shadanctl ca pin)
  --controller-grace DUR    how long the controller may be gone before policy
                            agent.on_controller_loss=revert lifts drills (default 5m)
  --audit-export MODE       also send audit entries to journald or syslog (RFC 5424):
                            off (default) | journald | syslog | auto
  --metrics-listen ADDR     serve Prometheus metrics on http://ADDR/metrics (IP:PORT, no TLS,
                            no token: loopback or a management address)

With a daemon running on the state directory, isolate/restore/status/verify/apply-file are
handed to it (one writer); without one they act on the kernel directly, which needs root
(CAP_NET_ADMIN).

exit codes: 0 ok, 1 kernel or state failure (nothing changed; also: needs root),
            2 bad command line, 3 request invalid for the policy (nothing changed),
            4 state directory or gateway busy (another agent owns it), 5 status: the kernel
            does not hold what was applied, 6 status: an isolation's deadline is overdue
)";

namespace {

struct OptionHelp {
  std::string_view flag;  // as typed, with its value's name: "--profile NAME"
  std::string_view text;  // may span lines ('\n'); continuation lines are indented to match
};

constexpr OptionHelp kPolicyOption{"--policy FILE",
                                   "the Shadan policy (default /etc/shadan/policy.json)"};
constexpr OptionHelp kGatewayOption{"--gateway ID",
                                    "this gateway's id in the policy (default $SHADAN_GATEWAY,\n"
                                    "or SHADAN_GATEWAY=... in /etc/shadan/agent.env)"};
constexpr OptionHelp kStateDirOption{"--state-dir DIR",
                                     "where the desired state is kept (default /var/lib/shadan;\n"
                                     "it must exist: see init)"};
constexpr OptionHelp kJsonOption{"--json", "machine-readable output on stdout"};
constexpr OptionHelp kLogLevelOption{"--log-level LEVEL",
                                     "debug|info|warn|error|off (default warn)"};

struct CommandHelp {
  std::string_view name;   // "isolate", "policy check"
  std::string_view usage;  // what follows "usage: shadan-agent "
  std::string_view about;
  std::vector<OptionHelp> options;
};

const std::vector<CommandHelp>& commandHelps() {
  static const std::vector<CommandHelp> kHelps = {
      {"run",
       "run --policy FILE --gateway ID --state-dir DIR [--trust FILE]\n"
       "                        [--controller HOST:PORT --tls-dir DIR --controller-pin HEX]\n"
       "                        [--controller-grace DUR] [--audit-export MODE]\n"
       "                        [--metrics-listen ADDR]",
       "The agent daemon: applies the stored state at once, keeps it applied (repairs drift,\n"
       "lifts isolations whose --ttl ran out), and serves isolate, restore, status, verify and\n"
       "apply-file over its control socket in the state directory. SIGHUP re-reads --policy and\n"
       "--trust. Needs root (CAP_NET_ADMIN).",
       {kPolicyOption,
        kGatewayOption,
        kStateDirOption,
        {"--trust FILE", "the trust file (keys, roles, thresholds) for signed orders"},
        {"--controller HOST:PORT",
         "dial the controller (mutual TLS 1.3, WebSocket); standalone without;\n"
         "HOST:PORT,HOST:PORT,...: several controllers, dialled in turn"},
        {"--tls-dir DIR", "ca.crt, agent.crt, agent.key for that channel"},
        {"--controller-pin HEX",
         "SHA-256 of the controller certificate's public key (shadanctl ca pin)"},
        {"--controller-grace DUR",
         "how long the controller may be gone before policy\n"
         "agent.on_controller_loss=revert lifts drills (default 5m)"},
        {"--audit-export MODE",
         "also send audit entries to journald or syslog (RFC 5424):\n"
         "off (default) | journald | syslog | auto"},
        {"--metrics-listen ADDR",
         "serve Prometheus metrics on http://ADDR/metrics (IP:PORT or\n"
         "[IPv6]:PORT; plain HTTP, no token: bind loopback or a management\n"
         "address; docs/metrics.md)"},
        kLogLevelOption}},
      {"check-config",
       "check-config --policy FILE --gateway ID --state-dir DIR [--trust FILE]\n"
       "                        [--controller HOST:PORT --tls-dir DIR --controller-pin HEX]\n"
       "                        [--controller-grace DUR] [--audit-export MODE]\n"
       "                        [--metrics-listen ADDR] [--json]",
       "What run would load, loaded and checked without starting: the policy, and that every\n"
       "isolation this gateway borders plans; the trust file (not expired); with --controller,\n"
       "the channel's TLS files (they load, the certificate is this gateway's, the pin is well\n"
       "formed); the state directory (a directory, or absent: run makes it). No root, no\n"
       "kernel, no daemon, nothing written. Exit 0 when run would start on it.",
       {kPolicyOption,
        kGatewayOption,
        kStateDirOption,
        {"--trust FILE", "the trust file (keys, roles, thresholds) for signed orders"},
        {"--controller HOST:PORT", "the controller run would dial"},
        {"--tls-dir DIR", "ca.crt, agent.crt, agent.key for that channel"},
        {"--controller-pin HEX",
         "SHA-256 of the controller certificate's public key (shadanctl ca pin)"},
        {"--controller-grace DUR", "as for run"},
        {"--audit-export MODE", "as for run: off | journald | syslog | auto"},
        {"--metrics-listen ADDR", "as for run"},
        kJsonOption,
        kLogLevelOption}},
      {"init",
       "init --gateway ID --state-dir DIR [--json]",
       "Create the state directory (0700), its database and the agent's key, and print the key\n"
       "id and where its public half is (it goes into the trust file as agent:ID). Local\n"
       "commands never create a state directory, so that a mistyped --state-dir is an error;\n"
       "the daemon's first start creates one too.",
       {kGatewayOption, kStateDirOption, kJsonOption, kLogLevelOption}},
      {"isolate",
       "isolate SEGMENT | --host ADDR[,ADDR...] | --uplink [--link-down] | --island\n"
       "                            [--profile NAME] [--reason TEXT] [--yes]\n"
       "                            [--ttl DURATION [--drill] [--ttl-without-daemon]]\n"
       "                            --policy FILE --gateway ID --state-dir DIR [--json]",
       "Cut one rung of the ladder on this gateway: SEGMENT; hosts of one segment (--host);\n"
       "everything through the default segment's interfaces (--uplink); or every segment from\n"
       "every other and from the default segment (--island). Management is never cut. The\n"
       "isolation is added to the desired state, then the kernel is made to hold it in one\n"
       "transaction. Isolating what is already isolated changes nothing; if the table was\n"
       "altered or removed it is rebuilt and the answer says \"repaired\". A protected segment\n"
       "(or a host in one) and --uplink/--island need --reason and a confirmation.",
       {{"--host ADDR[,ADDR...]",
         "quarantine these addresses or prefixes (at most /24 or /120), all\n"
         "in one segment the policy names (not management, not the default)"},
        {"--uplink", "cut everything crossing the gateway's default-segment interfaces"},
        {"--link-down",
         "with --uplink: also set the policy's link_down interfaces down and\n"
         "hold them down (refused when the management route uses one)"},
        {"--island", "cut every segment from every other and from the default segment"},
        {"--profile NAME", "the policy profile to cut with (default: full)"},
        {"--reason TEXT",
         "why (at most 512 bytes, one line); audited with your uid and SUDO_USER;\n"
         "required for a protected segment"},
        {"--yes", "isolate a protected segment without asking on the terminal (scripts)"},
        {"--ttl DURATION",
         "the daemon restores it after DURATION: 4s, 30m, 2h, 1d (at most 366d);\n"
         "refused when no daemon runs on the state directory"},
        {"--drill", "mark the isolation as a rehearsal (needs --ttl)"},
        {"--ttl-without-daemon",
         "with --ttl and no daemon: store the deadline anyway; the next daemon\n"
         "start or shadan-agent command after it lifts it, and status shows it overdue"},
        kPolicyOption,
        kGatewayOption,
        kStateDirOption,
        kJsonOption,
        kLogLevelOption}},
      {"restore",
       "restore SEGMENT | --host ADDR[,ADDR...] | --uplink | --island [--profile NAME]\n"
       "                            --reason TEXT --policy FILE --gateway ID --state-dir DIR\n"
       "                            [--json]\n"
       "       shadan-agent restore --all --reason TEXT\n"
       "                            --policy FILE --gateway ID --state-dir DIR [--json]",
       "Lift one rung: SEGMENT's isolation (every profile it is isolated under, or only\n"
       "--profile's), the named hosts' quarantine, the uplink cut (and its link-down), or the\n"
       "island; or with --all every isolation on this gateway. Restoring one rung never lifts\n"
       "another: a host quarantined inside a cut segment stays quarantined when the segment is\n"
       "restored. With nothing left isolated, Shadan's table is deleted.",
       {{"--host ADDR[,ADDR...]", "lift the quarantine of these addresses or prefixes"},
        {"--uplink", "lift the uplink cut (links held down come up again)"},
        {"--island", "lift the island"},
        {"--profile NAME", "lift only the isolation under this profile"},
        {"--all", "lift every isolation (no SEGMENT)"},
        {"--reason TEXT",
         "why (required; at most 512 bytes, one line); audited with your\n"
         "uid and SUDO_USER"},
        kPolicyOption,
        kGatewayOption,
        kStateDirOption,
        kJsonOption,
        kLogLevelOption}},
      {"status",
       "status --policy FILE --gateway ID --state-dir DIR [--json]",
       "The desired state (active isolations, what each one's drop rules dropped since the table\n"
       "was last applied, the time left to each deadline, OVERDUE ones),\n"
       "whether a daemon runs, and whether the kernel holds the state: in_sync, drift, missing,\n"
       "unexpected_table, or unknown. Exit 0 only when in sync with nothing overdue; 5 for\n"
       "drift, missing or unexpected_table; 6 for an overdue deadline. Asks the daemon when one\n"
       "runs; otherwise reads the kernel, which needs root (CAP_NET_ADMIN).",
       {kPolicyOption, kGatewayOption, kStateDirOption, kJsonOption, kLogLevelOption}},
      {"plan",
       "plan [SEGMENT | --host ADDR[,ADDR...] | --uplink | --island] [--profile NAME]\n"
       "                            --policy FILE --gateway ID [--state-dir DIR] [--json]",
       "Print the nftables document and the blackhole routes for the current desired state\n"
       "(with --state-dir) plus the rung given (SEGMENT, --host, --uplink or --island), without\n"
       "applying anything. No root needed.",
       {{"--host ADDR[,ADDR...]", "plan a quarantine of these hosts"},
        {"--uplink", "plan the uplink cut"},
        {"--island", "plan the island"},
        {"--profile NAME", "the profile the rung would be cut with (default: full)"},
        kPolicyOption,
        kGatewayOption,
        {"--state-dir DIR", "start from the isolations stored there (optional)"},
        kJsonOption,
        kLogLevelOption}},
      {"verify",
       "verify FILE --policy FILE --gateway ID --state-dir DIR --trust FILE [--json]",
       "Would this signed envelope (a dispatch, or a break-glass authz) be accepted now, and if\n"
       "not, why. A dry run: nothing is changed or recorded. Exit 0 accepted, 3 rejected.",
       {kPolicyOption,
        kGatewayOption,
        kStateDirOption,
        {"--trust FILE", "the trust file the signatures are checked against (required)"},
        kJsonOption,
        kLogLevelOption}},
      {"apply-file",
       "apply-file FILE --policy FILE --gateway ID --state-dir DIR --trust FILE [--json]",
       "Break-glass: apply a breakglass-signed isolate authz from FILE, with no controller. The\n"
       "signatures, the threshold and the deadline are checked as for a controller's order;\n"
       "applied or refused, it is on the audit record.",
       {kPolicyOption,
        kGatewayOption,
        kStateDirOption,
        {"--trust FILE", "the trust file the signatures are checked against (required)"},
        kJsonOption,
        kLogLevelOption}},
      {"policy check",
       "policy check FILE [--gateway ID] [--json]",
       "Validate a policy file offline, like `nft -c`: prints its warnings, exits 0 when it is\n"
       "valid and 3, naming the file, the JSON pointer and the reason, when it is not. With\n"
       "--gateway, also plans every (segment, profile) isolation that gateway borders. No root\n"
       "needed; nothing is changed.",
       {{"--gateway ID", "also check that this gateway can plan every isolation"},
        kJsonOption,
        kLogLevelOption}},
      {"policy show",
       "policy show --policy FILE [--json]",
       "Print the policy: its segments with their prefixes (and which are protected or the\n"
       "default), its profiles, and its gateways with the segments they border. No root needed.",
       {{"--policy FILE", "the Shadan policy (required)"}, kJsonOption, kLogLevelOption}},
  };
  return kHelps;
}

// "isolate" -> its help; "policy check" and "policy show" are looked up by both words.
const CommandHelp* findCommandHelp(std::string_view name) {
  for (const auto& help : commandHelps()) {
    if (help.name == name) return &help;
  }
  return nullptr;
}

std::string renderCommandHelp(const CommandHelp& help) {
  constexpr size_t kFlagColumn = 26;
  std::string text = "usage: shadan-agent " + std::string(help.usage) + "\n\n" +
                     std::string(help.about) + "\n\noptions:\n";
  std::vector<OptionHelp> options = help.options;
  options.push_back({"-h, --help", "this text"});
  for (const auto& option : options) {
    std::string line = "  " + std::string(option.flag);
    line.append(line.size() < kFlagColumn ? kFlagColumn - line.size() : 1, ' ');
    for (const char c : option.text) {
      line += c;
      if (c == '\n') line.append(kFlagColumn, ' ');
    }
    text += line + "\n";
  }
  return text;
}

// Options that take a value, and flags: the parser's vocabulary.
using ValuedMember = std::optional<std::string> AgentCliOptions::*;
using FlagMember = bool AgentCliOptions::*;

const std::map<std::string, ValuedMember>& valuedOptions() {
  static const std::map<std::string, ValuedMember> kValued = {
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
      {"--metrics-listen", &AgentCliOptions::metrics_listen},
      {"--host", &AgentCliOptions::host},
  };
  return kValued;
}

const std::map<std::string, FlagMember>& flagOptions() {
  static const std::map<std::string, FlagMember> kFlags = {
      {"--all", &AgentCliOptions::all},
      {"--uplink", &AgentCliOptions::uplink},
      {"--island", &AgentCliOptions::island},
      {"--link-down", &AgentCliOptions::link_down},
      {"--drill", &AgentCliOptions::drill},
      {"--ttl-without-daemon", &AgentCliOptions::ttl_without_daemon},
      {"--yes", &AgentCliOptions::yes},
      {"--json", &AgentCliOptions::json},
      {"--help", &AgentCliOptions::help},
      {"-h", &AgentCliOptions::help},
      {"--version", &AgentCliOptions::version},
  };
  return kFlags;
}

}  // namespace

Result<RungOptions> rungOf(const AgentCliOptions& options) {
  const bool isolate = options.command == "isolate";
  const auto usage = [](const std::string& why) {
    return makeError(ErrorCode::kInvalidArgument, why);
  };
  const int named = static_cast<int>(options.positional.size()) + (options.host ? 1 : 0) +
                    (options.uplink ? 1 : 0) + (options.island ? 1 : 0) +
                    (!isolate && options.all ? 1 : 0);
  if (isolate && options.all) return usage("--all is only for restore");
  if (named != 1 || options.positional.size() > 1) {
    return usage(options.command + " takes exactly one SEGMENT" + (isolate ? "" : ", or --all") +
                 ", or one of --host ADDR[,ADDR...], --uplink, --island");
  }
  if (options.link_down && (!isolate || !options.uplink)) {
    return usage("--link-down goes with isolate --uplink only");
  }
  RungOptions rung;
  rung.link_down = options.link_down;
  if (options.positional.size() == 1) {
    rung.scope = IsolationScope::kSegment;
    rung.segment = options.positional[0];
  } else if (options.uplink) {
    rung.scope = IsolationScope::kUplink;
  } else if (options.island) {
    rung.scope = IsolationScope::kIsland;
  } else if (options.host) {
    rung.scope = IsolationScope::kHost;
    std::string_view rest = *options.host;
    while (true) {
      const size_t comma = rest.find(',');
      const std::string_view item = rest.substr(0, comma);
      Result<IpPrefix> host = IpPrefix::parse(item);
      if (!host.ok()) return usage("--host: " + host.error().message);
      rung.hosts.push_back(*host);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return rung;
}

std::string agentCommandNames() {
  std::string names;
  for (const auto& help : commandHelps()) {
    const std::string_view name = help.name.substr(0, help.name.find(' '));  // "policy check"
    if (names.size() >= name.size() && names.ends_with(name)) continue;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  return names;
}

std::optional<std::string> agentCommandUsage(const AgentCliOptions& options) {
  if (options.command == "policy") {
    const std::string sub = options.positional.empty() ? "" : options.positional[0];
    if (const auto* help = findCommandHelp("policy " + sub)) return renderCommandHelp(*help);
    return renderCommandHelp(*findCommandHelp("policy check")) + "\n" +
           renderCommandHelp(*findCommandHelp("policy show"));
  }
  if (options.command.find(' ') != std::string::npos) return std::nullopt;
  const auto* help = findCommandHelp(options.command);
  if (!help) return std::nullopt;
  return renderCommandHelp(*help);
}

std::string usageErrorText(const std::string& command, const std::string& message) {
  const bool known = !command.empty() && command.find(' ') == std::string::npos &&
                     (command == "policy" || findCommandHelp(command));
  return "shadan-agent: " + message + "\n(see shadan-agent " + (known ? command + " " : "") +
         "--help)\n";
}

std::vector<std::string> givenOptionNames(const AgentCliOptions& options) {
  std::vector<std::string> names;
  for (const auto& [name, member] : valuedOptions()) {
    if (options.*member) names.push_back(name);
  }
  for (const auto& [name, member] : flagOptions()) {
    if (options.*member && name != "-h") names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string commandNameIn(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() > 1 && arg[0] == '-') {
      if (arg.find('=') == std::string::npos && valuedOptions().count(arg)) ++i;  // its value
      continue;
    }
    return arg;
  }
  return "";
}

Result<AgentCliOptions> parseAgentCliArgs(const std::vector<std::string>& args) {
  AgentCliOptions options;
  const auto& valued = valuedOptions();
  const auto& flags = flagOptions();
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

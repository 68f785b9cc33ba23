#include "cli/controller_cmd.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli/agents_cmd.h"
#include "cli/alerts_cmd.h"
#include "cli/approval_cmd.h"
#include "cli/controller_context.h"
#include "cli/isolate_cmd.h"
#include "cli/options.h"
#include "cli/shadanctl.h"
#include "cli/status_cmd.h"

namespace shadan {
namespace {

// Each command's own lines of the usage; `shadanctl COMMAND --help` prints its lines and the
// connection options, `controllerCommandsUsage()` all of them.
constexpr const char* kIsolateUsage =
    R"(  shadanctl isolate (SEGMENT | --host ADDR[,ADDR...] | --uplink [--link-down] | --island)
                    [--gateways GW[,GW...]] [--profile P] --reason TEXT [--ticket T]
                    [--ttl DURATION] [--drill] [--wait SECONDS] [--json]
      Ask the controller to cut one rung of the escalation ladder, exactly one of:
        SEGMENT   the whole segment
        --host    up to 256 addresses or prefixes (at most /24 IPv4, /120 IPv6) of one segment;
                  the controller finds the segment from its policy
        --uplink  everything crossing the gateways' interfaces of the default segment, except
                  management; --link-down also sets those links down where the policy allows
        --island  every segment cut from every other and from the default segment
      --gateways: only these gateways (--uplink, --island; default every gateway with an uplink,
      every gateway); SEGMENT and --host go to every gateway bordering the segment. Uplink and
      island wait for isolate_protected approvals unless the trust file says otherwise.
      Profile "full" unless --profile. --reason is required (at most 512 characters) and
      audited. --ticket: 1-128 characters. --ttl: a timed cut that lifts itself (e.g. 30m).
      --drill: marked as a drill (needs --ttl). --wait: poll the order until every gateway answered
      (applied, failed, rejected) or SECONDS pass (1-3600), then print a per-gateway table.
)";

constexpr const char* kRestoreUsage =
    R"(  shadanctl restore (SEGMENT | --host ADDR[,ADDR...] | --uplink | --island)
                    [--gateways GW[,GW...]] [--profile P] --reason TEXT [--ticket T] [--drill]
                    [--json]
      Ask to lift one rung (as for isolate: --host lifts the named hosts only, and nothing else
      that is cut); needs approvals by two distinct operators (shadanctl approve). --drill: the
      restore of a drill, marked as a drill (a lab controller takes drill orders only).
)";

constexpr const char* kStatusUsage = R"(  shadanctl status [--order ID] [--json]
      Segments, gateways (with the ladder: which rungs each gateway's last ack says hold),
      recent orders and, when the controller runs automatic response, its circuit breaker and
      open automatic actions; or one order's per-gateway state.
)";

constexpr const char* kApprovalsUsage = R"(  shadanctl approvals [--json]
      Orders waiting for operator signatures, then automatic actions waiting for confirm or
      release.
)";

constexpr const char* kApproveUsage = R"(  shadanctl approve APPROVAL_ID --key FILE [--yes] [--json]
      Show what the pending order says, then sign it with your operator key (the exact DSSE
      PAE bytes) and send the signature. --yes skips the confirmation; without a terminal on
      stdin --yes is required. The controller dispatches once enough distinct operators signed
      and the requester is among them.
)";

constexpr const char* kAgentsUsage = R"(  shadanctl agents [--json]
  shadanctl agents approve AGENT_ID --reason TEXT [--json]
      Enrolled and pending agents; approve a pending agent (no trust on first use).
)";

constexpr const char* kConnectionUsage = R"(
connection options:
  --controller https://HOST:PORT   the controller's API
  --ca FILE                        the CA that issued the controller's certificate (the only
                                   trust anchor; the system store is never used)
  --token-file FILE                your API token (mode 0600); or set SHADAN_TOKEN
  --config FILE                    JSON {"controller","ca","token_file"}; default
                                   ~/.config/shadan/shadanctl.json if it exists
  --timeout SECONDS                per request (1-600, default 10)
  --json                           print the controller's answer as JSON

exit codes: 0 done, 1 the controller refused or the order failed, 2 usage (nothing was done),
            3 the controller could not be reached or TLS failed, 4 awaiting approval
)";

// What one controller command accepts besides the connection options and --json, and what
// runs it once its options parsed.
struct ControllerSubcommand {
  const char* name;
  const char* usage;  // its own lines of the usage text
  std::set<std::string> with_value;
  std::set<std::string> flags;
  size_t positionals = 0;
  // The positional the command cannot do without ("a SEGMENT"); nullptr: none is required.
  const char* required = nullptr;
  int (*run)(const CommandOptions&, ControllerContext&);
};

const std::vector<ControllerSubcommand>& subcommands() {
  static const std::vector<ControllerSubcommand> kSubcommands = {
      {"isolate",
       kIsolateUsage,
       {"--host", "--gateways", "--profile", "--reason", "--ticket", "--ttl", "--wait"},
       {"--uplink", "--island", "--link-down", "--drill"},
       1,
       nullptr,  // a SEGMENT or a scope option: runIsolateCommand checks
       [](const CommandOptions& options, ControllerContext& ctx) {
         return runIsolateCommand("isolate", options, ctx);
       }},
      {"restore",
       kRestoreUsage,
       {"--host", "--gateways", "--profile", "--reason", "--ticket"},
       {"--uplink", "--island", "--drill"},
       1,
       nullptr,
       [](const CommandOptions& options, ControllerContext& ctx) {
         return runIsolateCommand("restore", options, ctx);
       }},
      {"status", kStatusUsage, {"--order"}, {}, 0, nullptr, runStatusCommand},
      {"approvals", kApprovalsUsage, {}, {}, 0, nullptr, runApprovalsCommand},
      {"approve", kApproveUsage, {"--key"}, {"--yes"}, 1, "an APPROVAL_ID", runApproveCommand},
      {"agents", kAgentsUsage, {"--reason"}, {}, 2, nullptr, runAgentsCommand},  // [approve
                                                                                 // AGENT_ID]
      {"alerts", kAlertsUsage, {"--limit"}, {}, 0, nullptr, runAlertsCommand},
      {"confirm",
       kConfirmUsage,
       {"--reason"},
       {},
       1,
       "an ACTION_ID",
       [](const CommandOptions& options, ControllerContext& ctx) {
         return runAutoActionCommand("confirm", options, ctx);
       }},
      {"release",
       kReleaseUsage,
       {"--reason"},
       {},
       1,
       "an ACTION_ID",
       [](const CommandOptions& options, ControllerContext& ctx) {
         return runAutoActionCommand("release", options, ctx);
       }},
      {"breaker", kBreakerUsage, {"--reason"}, {}, 1, nullptr, runBreakerCommand},  // [open|close]
  };
  return kSubcommands;
}

const ControllerSubcommand* findSubcommand(const std::string& name) {
  for (const ControllerSubcommand& subcommand : subcommands()) {
    if (subcommand.name == name) return &subcommand;
  }
  return nullptr;
}

OptionSpec optionSpec(const ControllerSubcommand& subcommand) {
  OptionSpec spec;
  spec.command = subcommand.name;
  spec.with_value = {"--controller", "--ca", "--token-file", "--config", "--timeout"};
  spec.with_value.insert(subcommand.with_value.begin(), subcommand.with_value.end());
  spec.flags = {"--json"};
  spec.flags.insert(subcommand.flags.begin(), subcommand.flags.end());
  spec.max_positionals = subcommand.positionals;
  // Never accept a secret on the command line: other users see argv in ps.
  spec.refused = {{"--token", kNoTokenOnArgv}};
  spec.quote = QuoteStyle::kJson;
  return spec;
}

}  // namespace

ControllerCmdEnv defaultControllerCmdEnv() {
  static const SystemClock kSystemClock;
  ControllerCmdEnv env;
  env.make_transport = [](const ApiClientOptions& options) -> std::unique_ptr<ApiTransport> {
    return std::make_unique<ApiClient>(options);
  };
  env.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
  env.in = &std::cin;
  env.stdin_is_tty = ::isatty(STDIN_FILENO) == 1;
  env.monotonic_now = [] { return std::chrono::steady_clock::now(); };
  env.sleep = [](std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); };
  env.clock = &kSystemClock;
  return env;
}

bool isControllerCommand(const std::string& name) { return findSubcommand(name) != nullptr; }

std::string controllerCommandsUsage() {
  std::string usage = "usage:\n";
  for (const ControllerSubcommand& subcommand : subcommands()) usage += subcommand.usage;
  return usage + kConnectionUsage;
}

std::string controllerCommandUsage(const std::string& name) {
  const ControllerSubcommand* subcommand = findSubcommand(name);
  if (subcommand == nullptr) return controllerCommandsUsage();
  return std::string("usage:\n") + subcommand->usage + kConnectionUsage;
}

int runControllerCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                         const ControllerCmdEnv& env) {
  const ControllerSubcommand* subcommand = args.empty() ? nullptr : findSubcommand(args[0]);
  if (subcommand == nullptr) {
    return printUsageError(err, "", "not a controller command");
  }
  auto options = parseCommandOptions(args, 1, optionSpec(*subcommand));
  if (!options.ok()) return printUsageError(err, subcommand->name, options.error().message);
  if (options->help) {
    out << controllerCommandUsage(subcommand->name);
    return kExitOk;
  }
  ControllerContext ctx(out, err, env, subcommand->name, options->has("--json"));
  if (subcommand->required != nullptr && options->positionals.empty()) {
    return ctx.usage("'" + std::string(subcommand->name) + "' needs " + subcommand->required);
  }
  return subcommand->run(*options, ctx);
}

}  // namespace shadan

#include "cli/shadanctl.h"

#include <cstdio>

#include "cli/audit_cmd.h"
#include "cli/ca_cmd.h"
#include "cli/controller_cmd.h"
#include "cli/drill_cmd.h"
#include "cli/forward_cmd.h"
#include "cli/init_cmd.h"
#include "cli/keys_cmd.h"
#include "cli/lab_cmd.h"
#include "cli/response_view.h"
#include "cli/sign_cmd.h"
#include "cli/trust_cmd.h"

namespace shadan {
namespace {

constexpr const char* kUsage = R"(usage: shadanctl COMMAND [options]
       shadanctl COMMAND --help     that command's options (also: shadanctl help COMMAND)

commands:
  lab        build, probe and remove a network-namespace lab: up, down, probe
  drill      cutoff drills: list, show, check scenarios; run one in a lab; report
  audit      verify and show a tamper-evident audit log: verify, show
  keygen     generate an Ed25519 key pair
  ca         the private CA of the agent channel: init, issue, pin, revoke
  isolate    ask the controller to isolate a segment
  restore    ask to lift an isolation (two approvals)
  status     segments, gateways and orders at the controller
  approvals  orders waiting for operator signatures; automatic actions to confirm or release
  approve    sign a pending order with your operator key
  agents     enrolled and pending agents; agents approve: approve a pending one
  alerts     the controller's latest decisions on detectors' alerts
  confirm    make an automatic action permanent, in your name
  release    lift an automatic action (or decline a proposal)
  breaker    the circuit breaker of automatic response: open, close
  forward    follow a detector's log (eve, zeek-notice) and post its alerts to the controller
  sign       make a signed authz file offline (break-glass)
  trust      the trust file: init, add, remove, show
  init       a starting configuration: init controller, init agent (into /etc/shadan)

options:
  -h, --help     show this help
  --version      print the version
)";

bool isHelpWord(const std::string& word) { return word == "-h" || word == "--help"; }

class Shadanctl {
 public:
  Shadanctl(std::ostream& out, std::ostream& err, CommandRunner& runner)
      : out_(out), err_(err), runner_(runner) {}

  int run(const std::vector<std::string>& args) {
    if (args.empty()) {
      return printUsageError(err_, "",
                             "no command; usage: shadanctl COMMAND [options] (commands: " +
                                 joinNames(shadanctlCommands()) + ")");
    }
    if (isHelpWord(args[0]) || (args[0] == "help" && args.size() == 1)) {
      out_ << kUsage;
      return kExitOk;
    }
    if (args[0] == "help") {
      // "help COMMAND [SUBCOMMAND]" is "COMMAND [SUBCOMMAND] --help".
      std::vector<std::string> asked(args.begin() + 1, args.end());
      asked.push_back("--help");
      return run(asked);
    }
    if (args[0] == "--version") {
      out_ << "shadanctl " << SHADAN_VERSION << "\n";
      return kExitOk;
    }
    if (args[0] == "lab") return runLabCommand(args, out_, err_, runner_);
    if (args[0] == "drill") return runDrillCommand(args, out_, err_, runner_);
    if (args[0] == "audit") return runAuditCommand(args, out_, err_);
    if (args[0] == "keygen") return runKeygenCommand(args, out_, err_);
    if (args[0] == "ca") return runCaCommand(args, out_, err_);
    if (args[0] == "init") return runInitCommand(args, out_, err_);
    if (isControllerCommand(args[0])) {
      return runControllerCommand(args, out_, err_, defaultControllerCmdEnv());
    }
    if (args[0] == "forward") return runForwardCommand(args, out_, err_, defaultForwardCmdEnv());
    if (args[0] == "sign") return runSignCommand(args, out_, err_, SystemClock());
    if (args[0] == "trust") return runTrustCommand(args, out_, err_, SystemClock());
    return printUsageError(
        err_, "",
        "unknown command '" + args[0] + "' (commands: " + joinNames(shadanctlCommands()) + ")");
  }

 private:
  std::ostream& out_;
  std::ostream& err_;
  CommandRunner& runner_;
};

// The message on one line whatever the operator typed: a newline in a quoted word would split
// the error and could fake a second line.
std::string oneLine(const std::string& message) { return displayCell(message, std::string::npos); }

}  // namespace

const std::vector<std::string>& shadanctlCommands() {
  static const std::vector<std::string> kCommands = {
      "lab",     "drill",     "audit",   "keygen", "ca",     "isolate", "restore",
      "status",  "approvals", "approve", "agents", "alerts", "confirm", "release",
      "breaker", "forward",   "sign",    "trust",  "init"};
  return kCommands;
}

int printUsageError(std::ostream& err, const std::string& command, const std::string& message) {
  err << "shadanctl: " << oneLine(message) << "\n"
      << "see 'shadanctl " << (command.empty() ? "" : command + " ") << "--help'\n";
  return kExitUsage;
}

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

int runShadanctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                 CommandRunner& runner) {
  return Shadanctl(out, err, runner).run(args);
}

}  // namespace shadan

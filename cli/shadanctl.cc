#include "cli/shadanctl.h"

#include "cli/audit_cmd.h"
#include "cli/ca_cmd.h"
#include "cli/controller_cmd.h"
#include "cli/keys_cmd.h"
#include "cli/lab_cmd.h"
#include "cli/sign_cmd.h"
#include "cli/trust_cmd.h"

namespace shadan {
namespace {

constexpr const char* kUsage = R"(usage: shadanctl <command> [options]

commands:
  lab      build, probe and remove a network-namespace lab (see shadanctl lab --help)
  audit    verify and show a tamper-evident audit log (see shadanctl audit --help)
  keygen   generate an Ed25519 key pair (see shadanctl keygen --help)
  ca       the private CA of the agent channel: init, issue, pin (see shadanctl ca --help)
  isolate  ask the controller to isolate a segment     (see shadanctl isolate --help)
  restore  ask to lift an isolation (two approvals)   (see shadanctl restore --help)
  status   segments, gateways and orders at the controller
  approvals  orders waiting for operator signatures
  approve  sign a pending order with your operator key
  agents   enrolled and pending agents; approve a pending one
  sign     make a signed authz file offline (break-glass) (see shadanctl sign --help)
  trust    the trust file: init, add, remove, show keys and roles (see shadanctl trust --help)

options:
  -h, --help     show this help
  --version      print the version
)";

class Shadanctl {
 public:
  Shadanctl(std::ostream& out, std::ostream& err, CommandRunner& runner)
      : out_(out), err_(err), runner_(runner) {}

  int run(const std::vector<std::string>& args) {
    if (args.empty()) {
      err_ << kUsage;
      return kExitUsage;
    }
    if (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
      out_ << kUsage;
      return kExitOk;
    }
    if (args[0] == "--version") {
      out_ << "shadanctl " << SHADAN_VERSION << "\n";
      return kExitOk;
    }
    if (args[0] == "lab") return runLabCommand(args, out_, err_, runner_);
    if (args[0] == "audit") return runAuditCommand(args, out_, err_);
    if (args[0] == "keygen") return runKeygenCommand(args, out_, err_);
    if (args[0] == "ca") return runCaCommand(args, out_, err_);
    if (isControllerCommand(args[0])) {
      return runControllerCommand(args, out_, err_, defaultControllerCmdEnv());
    }
    if (args[0] == "sign") return runSignCommand(args, out_, err_, SystemClock());
    if (args[0] == "trust") return runTrustCommand(args, out_, err_, SystemClock());
    return usageError("unknown command '" + args[0] + "'", kUsage);
  }

 private:
  int usageError(const std::string& message, const char* usage) {
    err_ << "shadanctl: " << message << "\n\n" << usage;
    return kExitUsage;
  }

  std::ostream& out_;
  std::ostream& err_;
  CommandRunner& runner_;
};

}  // namespace

int runShadanctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                 CommandRunner& runner) {
  return Shadanctl(out, err, runner).run(args);
}

}  // namespace shadan

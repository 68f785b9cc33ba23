#include "agents/agent_cli.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "agents/agent_core.h"
#include "agents/planner/planner.h"
#include "common/duration.h"
#include "common/logging.h"
#include "common/policy.h"
#include "common/trust.h"

namespace shadan {
namespace {

std::string hostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

constexpr const char* kUsage = R"(usage: shadan-agent COMMAND [ARGS] [OPTIONS]

Local control of a Shadan gateway agent (break-glass and lab use).

commands:
  run                                  the agent daemon: applies the stored state at once, keeps
                                       it applied, serves the commands below over its socket
  isolate SEGMENT [--profile NAME] [--ttl DURATION]
                                       cut SEGMENT on this gateway (profile default: full);
                                       with --ttl (4s, 30m, 2h, 1d) it restores itself;
                                       --drill marks a rehearsal (needs --ttl)
  restore SEGMENT [--profile NAME]     lift SEGMENT's isolation (all its profiles unless --profile)
  restore --all                        lift every isolation on this gateway
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
            3 request invalid for the policy (nothing changed), 4 state directory busy
)";

struct Options {
  std::string command;
  std::vector<std::string> positional;
  std::optional<std::string> profile;
  std::optional<std::string> policy;
  std::optional<std::string> gateway;
  std::optional<std::string> state_dir;
  std::optional<std::string> log_level;
  std::optional<std::string> ttl;
  std::optional<std::string> trust;
  std::optional<std::string> controller;
  std::optional<std::string> tls_dir;
  std::optional<std::string> controller_pin;
  std::optional<std::string> controller_grace;
  std::optional<std::string> audit_export;
  bool all = false;
  bool drill = false;
  bool json = false;
  bool help = false;
  bool version = false;
};

// Parses the command line. Options may appear anywhere after the command, as `--opt value` or
// `--opt=value`. Errors name the offending argument.
Result<Options> parseArgs(const std::vector<std::string>& args) {
  Options options;
  const std::map<std::string, std::optional<std::string> Options::*> valued = {
      {"--profile", &Options::profile},
      {"--policy", &Options::policy},
      {"--gateway", &Options::gateway},
      {"--state-dir", &Options::state_dir},
      {"--log-level", &Options::log_level},
      {"--ttl", &Options::ttl},
      {"--trust", &Options::trust},
      {"--controller", &Options::controller},
      {"--tls-dir", &Options::tls_dir},
      {"--controller-pin", &Options::controller_pin},
      {"--controller-grace", &Options::controller_grace},
      {"--audit-export", &Options::audit_export},
  };
  const std::map<std::string, bool Options::*> flags = {
      {"--all", &Options::all},   {"--drill", &Options::drill}, {"--json", &Options::json},
      {"--help", &Options::help}, {"-h", &Options::help},       {"--version", &Options::version},
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

// Shared by every command: the validated policy and gateway.
struct Context {
  LoadedPolicy loaded;
  std::string gateway;
};

class Command {
 public:
  Command(const Options& options, const AgentEnvironment& env) : options_(options), env_(env) {}

  int run() {
    if (options_.command == "isolate") return isolate();
    if (options_.command == "restore") return restore();
    if (options_.command == "status") return status();
    if (options_.command == "plan") return plan();
    if (options_.command == "run") return daemon();
    if (options_.command == "verify") return envelopeCommand("verify");
    if (options_.command == "apply-file") return envelopeCommand("apply_file");
    return usageError("unknown command \"" + options_.command + "\"");
  }

 private:
  std::ostream& out() const { return *env_.out; }
  std::ostream& err() const { return *env_.err; }

  int usageError(const std::string& message) const {
    err() << "shadan-agent: " << message << "\n(see shadan-agent --help)\n";
    return kExitUsage;
  }

  static int exitCodeFor(const Error& error) {
    switch (error.code) {
      case ErrorCode::kInvalidArgument:
      case ErrorCode::kPolicy:
      case ErrorCode::kNotFound:
      case ErrorCode::kParse:
        return kExitRejected;
      case ErrorCode::kUnavailable:
        return kExitBusy;
      default:
        return kExitFailed;
    }
  }

  // Reports an error on stderr (and as JSON on stdout with --json) and maps it to an exit code.
  int fail(const Error& error) const {
    err() << "shadan-agent: " << options_.command << ": " << error.message << "\n";
    if (options_.json) out() << errorAnswer(options_.command, error).dump(2) << "\n";
    return exitCodeFor(error);
  }

  // Checks the options every command shares and loads the policy.
  Result<Context> loadContext(bool need_state_dir) const {
    if (!options_.policy) return makeError(ErrorCode::kInvalidArgument, "--policy is required");
    if (!options_.gateway) return makeError(ErrorCode::kInvalidArgument, "--gateway is required");
    if (need_state_dir && !options_.state_dir) {
      return makeError(ErrorCode::kInvalidArgument, "--state-dir is required");
    }
    auto loaded = loadPolicyFile(*options_.policy);
    if (!loaded.ok()) return loaded.error();
    for (const auto& warning : loaded->warnings) {
      err() << "shadan-agent: warning: " << *options_.policy << ": " << warning.pointer << ": "
            << warning.message << "\n";
    }
    if (!loaded->policy.findGateway(*options_.gateway)) {
      return makeError(ErrorCode::kNotFound, "gateway \"" + *options_.gateway +
                                                 "\" is not in policy " + *options_.policy);
    }
    return Context{std::move(loaded).value(), *options_.gateway};
  }

  // Hands `request` to the daemon serving the state directory, or carries it out in-process
  // when none runs. A daemon that is still starting holds the lock without listening yet: wait
  // for it (bounded) rather than report "busy".
  Result<nlohmann::json> dispatch(const Context& context, const ControlRequest& request) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      auto answer = env_.ask_daemon(*options_.state_dir, request);
      if (!answer.ok()) return answer.error();
      if (answer->has_value()) return std::move(answer->value());

      auto store = env_.open_state(*options_.state_dir);
      if (store.ok()) return handleLocally(context, request, **store);
      if (store.error().code != ErrorCode::kUnavailable ||
          std::chrono::steady_clock::now() >= deadline) {
        return store.error();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  Result<nlohmann::json> handleLocally(const Context& context, const ControlRequest& request,
                                       StateStore& store) const {
    auto firewall = env_.open_firewall();
    if (!firewall.ok()) {
      if (request.op != "status") return firewall.error();
      // status still shows the desired state without kernel access.
      auto state = store.load();
      if (!state.ok()) return state.error();
      nlohmann::json doc = errorAnswer("status", firewall.error());
      doc["gateway"] = context.gateway;
      doc["policy"] = context.loaded.policy.name;
      doc["isolations"] = isolationsJson(*state);
      doc["kernel"] = {{"state", "unknown"}, {"error", firewall.error().message}};
      return doc;
    }
    auto routes = env_.open_routes();
    if (!routes.ok()) return routes.error();
    auto conntrack = env_.open_conntrack();
    if (!conntrack.ok()) return conntrack.error();
    auto audit = env_.open_audit(*options_.state_dir, context.gateway);
    if (!audit.ok()) return audit.error();
    AgentCore core(context.loaded.policy, context.gateway,
                   AgentCoreDeps{store, **firewall, **routes, **conntrack, *audit->sink,
                                 *env_.clock, hostName(), SHADAN_VERSION});
    SHADAN_RETURN_IF_ERROR(core.load());
    if (options_.trust) {
      auto trust = loadTrustFile(*options_.trust);
      if (!trust.ok()) return trust.error();
      if (auto used = core.useTrust(std::move(trust).value(), *audit->key); !used.ok()) {
        return used.error().withContext("trust file " + *options_.trust);
      }
    }
    auto answer = handleControlRequest(core, request, "local-cli");
    if (request.ttl && answer.value("ok", false)) {
      err() << "shadan-agent: note: no daemon runs on " << *options_.state_dir
            << ": the deadline is stored and honoured by the next shadan-agent command or "
               "daemon start after it\n";
    }
    return answer;
  }

  // Prints an answer (human or JSON) and returns the exit code it means.
  int finish(const nlohmann::json& answer, const std::function<void()>& human) const {
    const auto error = answerError(answer);
    if (options_.json) {
      out() << answer.dump(2) << "\n";
    } else if (!error || answer.contains("isolations")) {
      human();
    }
    if (error) {
      err() << "shadan-agent: " << options_.command << ": " << error->message << "\n";
      return exitCodeFor(*error);
    }
    return kExitOk;
  }

  int isolate() {
    if (options_.positional.size() != 1) return usageError("isolate takes exactly one SEGMENT");
    if (options_.all) return usageError("--all is only for restore");
    ControlRequest request;
    request.op = "isolate";
    request.segment = options_.positional[0];
    request.profile = options_.profile;
    request.drill = options_.drill;
    if (options_.drill && !options_.ttl) {
      return usageError("--drill needs --ttl: drills end on their own");
    }
    if (options_.ttl) {
      auto ttl = parseDuration(*options_.ttl);
      if (!ttl.ok()) return usageError("--ttl: " + ttl.error().message);
      request.ttl = *ttl;
    }
    return change(request);
  }

  int restore() {
    if (options_.all == !options_.positional.empty() || options_.positional.size() > 1) {
      return usageError("restore takes exactly one SEGMENT, or --all");
    }
    if (options_.all && options_.profile) return usageError("--profile does not go with --all");
    if (options_.ttl) return usageError("--ttl is only for isolate");
    if (options_.drill) return usageError("--drill is only for isolate");
    ControlRequest request;
    request.op = "restore";
    request.all = options_.all;
    if (!options_.all) request.segment = options_.positional[0];
    request.profile = options_.profile;
    return change(request);
  }

  // A state-changing command refused before it could be handled (its policy file did not
  // load, or does not name this gateway) is still a refused local action, and refused actions
  // are on record: through the daemon when one serves the state directory, else straight into
  // the agent's audit log. Only for an existing state directory: a refusal never creates one.
  void recordRefusal(const std::string& command, const Error& error) const {
    if (!options_.policy || !options_.gateway || !options_.state_dir) return;  // usage errors
    std::error_code ignored;
    if (!std::filesystem::is_directory(*options_.state_dir, ignored)) return;
    const std::string reason = error.message.substr(0, kMaxRefusalReasonBytes);
    ControlRequest refused;
    refused.op = "refused";
    refused.command = command;
    refused.reason = reason;
    auto answer = env_.ask_daemon(*options_.state_dir, refused);
    if (answer.ok() && answer->has_value() && !answerError(**answer)) return;
    const auto not_audited = [&](const Error& why) {
      err() << "shadan-agent: warning: the refusal could not be audited: " << why.message << "\n";
    };
    auto store = env_.open_state(*options_.state_dir);
    if (!store.ok()) return not_audited(store.error());
    auto audit = env_.open_audit(*options_.state_dir, *options_.gateway);
    if (!audit.ok()) return not_audited(audit.error());
    AuditEvent event;
    event.event = "local_command_refused";
    event.outcome = "rejected";
    event.reason = reason;
    event.where = AuditWhere{*options_.gateway, hostName(), std::string(SHADAN_VERSION)};
    event.detail = nlohmann::json{{"command", command}, {"origin", "local-cli"}};
    if (auto appended = audit->sink->append(event); !appended.ok()) {
      not_audited(appended.error());
    }
  }

  int change(const ControlRequest& request) {
    auto context = loadContext(true);
    if (!context.ok()) {
      recordRefusal(request.op, context.error());
      return fail(context.error());
    }
    auto answer = dispatch(*context, request);
    if (!answer.ok()) return fail(answer.error());
    return finish(*answer, [&] { printChange(*answer); });
  }

  void printChange(const nlohmann::json& answer) const {
    const bool changed = answer.value("changed", false);
    const std::string subject =
        options_.all ? std::string("all segments")
                     : options_.positional[0] +
                           (options_.profile ? " (" + *options_.profile + ")" : std::string());
    const std::string gateway = answer.value("gateway", "");
    if (options_.command == "isolate") {
      out() << (changed ? "isolated " : "already isolated ") << subject << " on " << gateway
            << "\n";
    } else {
      out() << (changed ? "restored " : "nothing to restore for ") << subject << " on " << gateway
            << "\n";
    }
    for (const auto& isolation : answer.value("isolations", nlohmann::json::array())) {
      if (isolation.contains("expires") && isolation["segment"] == options_.positional.at(0) &&
          options_.command == "isolate") {
        out() << "restores itself at " << isolation["expires"].get<std::string>() << " ("
              << isolation["profile"].get<std::string>() << ")\n";
      }
    }
    for (const auto& warning : answer.value("warnings", nlohmann::json::array())) {
      err() << "shadan-agent: warning: " << warning.get<std::string>() << "\n";
    }
    if (answer.value("conntrack_deleted", 0) > 0) {
      out() << "conntrack entries deleted: " << answer.value("conntrack_deleted", 0) << "\n";
    }
    for (const auto& expired : answer.value("expired", nlohmann::json::array())) {
      out() << "expired: " << expired["segment"].get<std::string>() << " ("
            << expired["profile"].get<std::string>() << ")\n";
    }
    out() << "ruleset sha256 "
          << (answer.value("table_present", false) ? answer.value("ruleset_sha256", "")
                                                   : std::string("(no table)"))
          << "\n";
    out() << "active isolations: " << answer.value("isolations", nlohmann::json::array()).size()
          << "\n";
  }

  int status() {
    if (!options_.positional.empty()) return usageError("status takes no arguments");
    if (options_.ttl || options_.profile || options_.all || options_.drill) {
      return usageError("status takes no --ttl, --profile, --all or --drill");
    }
    auto context = loadContext(true);
    if (!context.ok()) return fail(context.error());
    ControlRequest request;
    request.op = "status";
    auto answer = dispatch(*context, request);
    if (!answer.ok()) return fail(answer.error());
    return finish(*answer, [&] { printStatus(*answer); });
  }

  void printStatus(const nlohmann::json& answer) const {
    out() << "gateway " << answer.value("gateway", "") << " (policy " << answer.value("policy", "")
          << ")\n";
    const auto isolations = answer.value("isolations", nlohmann::json::array());
    if (isolations.empty()) {
      out() << "no active isolation\n";
    } else {
      out() << "active isolations:\n";
      for (const auto& i : isolations) {
        out() << "  " << i.value("segment", "") << "  profile=" << i.value("profile", "")
              << "  since=" << i.value("since", "")
              << (i.contains("expires") ? "  expires=" + i.value("expires", "") : std::string())
              << "  origin=" << i.value("origin", "") << "\n";
      }
    }
    const auto kernel = answer.value("kernel", nlohmann::json::object());
    out() << "kernel: " << kernel.value("state", "unknown");
    if (kernel.value("table_present", false)) {
      out() << " (table inet shadan sha256 " << kernel.value("ruleset_sha256", "") << ")";
    }
    if (kernel.contains("error")) out() << " (" << kernel.value("error", "") << ")";
    out() << "\n";
  }

  int plan() {
    if (options_.positional.size() > 1) return usageError("plan takes at most one SEGMENT");
    if (options_.profile && options_.positional.empty()) {
      return usageError("--profile needs a SEGMENT");
    }
    auto context = loadContext(false);
    if (!context.ok()) return fail(context.error());
    std::vector<Isolation> isolations;
    if (options_.state_dir) {
      auto current = currentIsolations(*context);
      if (!current.ok()) return fail(current.error());
      isolations = std::move(current).value();
    }
    if (!options_.positional.empty()) {
      const Policy& policy = context->loaded.policy;
      const std::string& segment = options_.positional[0];
      const std::string profile = options_.profile.value_or("full");
      if (!policy.findSegment(segment)) {
        return fail(makeError(ErrorCode::kNotFound, "unknown segment \"" + segment + "\""));
      }
      if (!policy.findProfile(profile)) {
        return fail(makeError(ErrorCode::kNotFound, "unknown profile \"" + profile + "\""));
      }
      isolations.push_back(Isolation{segment, profile});
    }
    auto plan = planGateway(context->loaded.policy, context->gateway, isolations);
    if (!plan.ok()) return fail(plan.error());
    if (options_.json) {
      nlohmann::json routes = nlohmann::json::array();
      for (const auto& route : plan->blackhole_routes) routes.push_back(route.toCidr());
      nlohmann::json doc = {{"ok", true},
                            {"command", "plan"},
                            {"gateway", context->gateway},
                            {"nft_script", plan->nft_script},
                            {"blackhole_routes", routes}};
      out() << doc.dump(2) << "\n";
    } else {
      out() << plan->nft_script;
      for (const auto& route : plan->blackhole_routes) {
        out() << "# blackhole route " << route.toCidr() << "\n";
      }
    }
    return kExitOk;
  }

  // The isolations in force: from the daemon when one runs, else from the store. Needs no
  // kernel access, so `plan` works without root.
  Result<std::vector<Isolation>> currentIsolations(const Context&) const {
    ControlRequest request;
    request.op = "status";
    auto answer = env_.ask_daemon(*options_.state_dir, request);
    if (!answer.ok()) return answer.error();
    std::vector<Isolation> isolations;
    if (answer->has_value()) {
      for (const auto& i : answer->value().value("isolations", nlohmann::json::array())) {
        isolations.push_back(Isolation{i.value("segment", ""), i.value("profile", "")});
      }
      return isolations;
    }
    auto store = env_.open_state(*options_.state_dir);
    if (!store.ok()) return store.error();
    auto state = (*store)->load();
    if (!state.ok()) return state.error();
    return state->isolationPairs();
  }

  // verify FILE / apply-file FILE: the envelope file goes to the daemon (or the local core).
  int envelopeCommand(const std::string& op) {
    if (options_.positional.size() != 1) {
      return usageError(options_.command + " takes exactly one FILE");
    }
    if (options_.ttl || options_.profile || options_.all || options_.drill) {
      return usageError(options_.command + " takes no --ttl, --profile, --all or --drill");
    }
    auto context = loadContext(true);
    if (!context.ok()) {
      // verify is a dry run: nothing was refused. apply-file is break-glass: on record.
      if (op == "apply_file") recordRefusal("apply-file", context.error());
      return fail(context.error());
    }
    const std::string& path = options_.positional[0];
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(makeError(ErrorCode::kIo, "cannot read " + path));
    std::string text(kMaxControlRequestBytes / 2 + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxControlRequestBytes / 2) {
      return fail(makeError(ErrorCode::kInvalidArgument, path + ": larger than any envelope"));
    }
    ControlRequest request;
    request.op = op;
    request.envelope = text;
    auto answer = dispatch(*context, request);
    if (!answer.ok()) return fail(answer.error());
    if (op == "verify") {
      const bool accepted = answer->value("accepted", false);
      int code = finish(*answer, [&] {
        if (accepted) {
          const auto order = answer->value("order", nlohmann::json::object());
          out() << "would be accepted: " << order.value("action", "") << " "
                << order.value("segment", "") << " (" << order.value("profile", "") << ")"
                << " requested by " << order.value("requested_by", "") << ", signed by "
                << order.value("signers", nlohmann::json::array()).dump() << "\n";
        } else {
          out() << "would be REJECTED: " << answer->value("reason", "") << ": "
                << answer->value("message", "") << "\n";
        }
      });
      if (code == kExitOk && !accepted) code = kExitRejected;
      return code;
    }
    return finish(*answer, [&] {
      out() << "break-glass isolation applied from " << path << "\n";
      printChange(*answer);
    });
  }

  int daemon() {
    if (!options_.positional.empty()) return usageError("run takes no arguments");
    if (options_.ttl || options_.profile || options_.all || options_.json || options_.drill) {
      return usageError(
          "run takes only --policy, --gateway, --state-dir, --trust, --controller, --tls-dir, "
          "--controller-pin, --controller-grace, --audit-export and --log-level");
    }
    // Validate the configuration here too, so a bad one stops startup with one clear message.
    auto context = loadContext(true);
    if (!context.ok()) return fail(context.error());
    DaemonOptions daemon_options;
    daemon_options.policy_path = *options_.policy;
    daemon_options.gateway = *options_.gateway;
    daemon_options.state_dir = *options_.state_dir;
    if (options_.controller) {
      const std::string& address = *options_.controller;
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
        return usageError("--controller must be HOST:PORT, got \"" + address + "\"");
      }
      if (!options_.tls_dir || !options_.controller_pin) {
        return usageError("--controller needs --tls-dir and --controller-pin");
      }
      std::string host = address.substr(0, colon);
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      }
      daemon_options.controller = ControllerEndpoint{host, static_cast<uint16_t>(port),
                                                     *options_.tls_dir, *options_.controller_pin};
    } else if (options_.tls_dir || options_.controller_pin) {
      return usageError("--tls-dir and --controller-pin go with --controller");
    }
    if (options_.audit_export) {
      static const std::set<std::string> kModes = {"off", "journald", "syslog", "auto"};
      if (!kModes.count(*options_.audit_export)) {
        return usageError("--audit-export must be one of off|journald|syslog|auto");
      }
      daemon_options.audit_export = *options_.audit_export;
    }
    if (options_.controller_grace) {
      auto grace = parseDuration(*options_.controller_grace);
      if (!grace.ok()) return usageError("--controller-grace: " + grace.error().message);
      daemon_options.controller_loss_grace = *grace;
    }
    if (options_.trust) {
      // A malformed or expired trust file stops startup with one clear message.
      auto trust = loadTrustFile(*options_.trust);
      if (!trust.ok()) return fail(trust.error());
      daemon_options.trust_path = *options_.trust;
    }
    return env_.run_daemon(daemon_options);
  }

  const Options& options_;
  const AgentEnvironment& env_;
};

}  // namespace

int runAgentCli(const std::vector<std::string>& args, const AgentEnvironment& env) {
  auto options = parseArgs(args);
  if (!options.ok()) {
    *env.err << "shadan-agent: " << options.error().message << "\n(see shadan-agent --help)\n";
    return kExitUsage;
  }
  if (options->version) {
    *env.out << "shadan-agent " << SHADAN_VERSION << "\n";
    return kExitOk;
  }
  if (options->help || options->command.empty()) {
    *(options->help ? env.out : env.err) << kUsage;
    return options->help ? kExitOk : kExitUsage;
  }
  if (options->log_level) {
    static const std::set<std::string> kLevels = {"debug", "info", "warn", "error", "off"};
    if (!kLevels.count(*options->log_level)) {
      *env.err << "shadan-agent: --log-level must be one of debug|info|warn|error|off\n";
      return kExitUsage;
    }
    setLogLevel(*options->log_level);
  }
  return Command(*options, env).run();
}

}  // namespace shadan

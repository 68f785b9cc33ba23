#include "agents/agent_cli.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "agents/agent_cli_options.h"
#include "agents/agent_cli_output.h"
#include "agents/agent_core.h"
#include "agents/controller_link.h"
#include "agents/ownership.h"
#include "agents/planner/planner.h"
#include "agents/policy_cmd.h"
#include "agents/policy_names.h"
#include "common/duration.h"
#include "common/listen_address.h"
#include "common/logging.h"
#include "common/orders.h"
#include "common/policy.h"
#include "common/trust.h"

namespace shadan::agent {
namespace {

std::string hostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

// Shared by every command: the validated policy and gateway.
struct Context {
  LoadedPolicy loaded;
  std::string gateway;
};

class Command {
 public:
  Command(const AgentCliOptions& options, const AgentEnvironment& env)
      : options_(options), env_(env) {}

  int run() {
    if (options_.ttl_without_daemon && (options_.command != "isolate" || !options_.ttl)) {
      return usageError("--ttl-without-daemon is only for isolate with --ttl");
    }
    if (options_.reason && options_.command != "isolate" && options_.command != "restore") {
      return usageError("--reason is only for isolate and restore");
    }
    if (options_.yes && options_.command != "isolate") {
      return usageError("--yes is only for isolate");
    }
    if (options_.reason) {
      if (Status valid = validateReason(*options_.reason); !valid.ok()) {
        return usageError(valid.error().message);
      }
    }
    if (options_.command == "isolate") return isolate();
    if (options_.command == "restore") return restore();
    if (options_.command == "status") return status();
    if (options_.command == "plan") return plan();
    if (options_.command == "run") return daemon();
    if (options_.command == "init") return init();
    if (options_.command == "check-config") return checkConfig();
    if (options_.command == "verify") return envelopeCommand("verify");
    if (options_.command == "apply-file") return envelopeCommand("apply_file");
    if (options_.command == "policy") return runPolicyCommand(options_, out(), err());
    return usageError("unknown command \"" + options_.command +
                      "\" (commands: " + agentCommandNames() + ")");
  }

 private:
  std::ostream& out() const { return *env_.out; }
  std::ostream& err() const { return *env_.err; }

  // One line naming the mistake, and where this command's options are described.
  int usageError(const std::string& message) const {
    err() << usageErrorText(options_.command, message);
    return kExitUsage;
  }

  // A required option that is missing is a bad command line (exit 2), not a request the policy
  // refuses; loadContext reports it as an error like the others, and fail() tells them apart.
  Error missingOption(const std::string& option) const {
    missing_option_ = true;
    return makeError(ErrorCode::kInvalidArgument,
                     option + " is required" + defaultHint(option, env_.defaults));
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
    if (missing_option_) return usageError(options_.command + ": " + error.message);
    err() << "shadan-agent: " << options_.command << ": " << error.message << "\n";
    if (options_.json) out() << errorAnswer(options_.command, error).dump(2) << "\n";
    return exitCodeFor(error);
  }

  // Checks the options every command shares and loads the policy.
  Result<Context> loadContext(bool need_state_dir) const {
    if (!options_.policy) return missingOption("--policy");
    if (!options_.gateway) return missingOption("--gateway");
    if (need_state_dir && !options_.state_dir) return missingOption("--state-dir");
    auto read = loadPolicyFile(*options_.policy);
    // A missing or unreadable policy file is as unusable as an invalid one (exit 3, not 1).
    if (!read.ok()) return Error{ErrorCode::kPolicy, read.error().message};
    LoadedPolicy loaded = std::move(read).value();
    for (const auto& warning : loaded.warnings) {
      err() << "shadan-agent: warning: " << *options_.policy << ": " << warning.pointer << ": "
            << warning.message << "\n";
    }
    if (!loaded.policy.findGateway(*options_.gateway)) {
      return makeError(ErrorCode::kNotFound, "gateway \"" + *options_.gateway +
                                                 "\" is not in policy " + *options_.policy);
    }
    return Context{std::move(loaded), *options_.gateway};
  }

  // Hands `request` to the daemon serving the state directory, or carries it out in-process
  // when none runs. A daemon that is still starting holds the lock without listening yet: wait
  // for it (bounded) rather than report "busy".
  Result<nlohmann::json> dispatch(const Context& context, ControlRequest request) const {
    // The daemon refuses a request made with another policy or for another gateway than its own.
    request.gateway = context.gateway;
    request.policy_sha256 = context.loaded.policy.source_sha256;
    const auto deadline = std::chrono::steady_clock::now() + kStateDirLockWait;
    bool said_waiting = false;
    for (;;) {
      auto asked = env_.ask_daemon(*options_.state_dir, request);
      if (asked.ok() && asked->has_value()) {
        nlohmann::json from_daemon = std::move(asked->value());
        if (from_daemon.is_object()) from_daemon["daemon"] = true;  // who answered
        return from_daemon;
      }
      // Without a daemon to ask, the command acts on the kernel itself: say what it lacks
      // rather than the EPERM/EACCES of whatever it would touch first.
      if (env_.has_net_admin && !env_.has_net_admin()) {
        return makeError(ErrorCode::kKernel,
                         "needs root (CAP_NET_ADMIN): no shadan-agent daemon answered on " +
                             *options_.state_dir + ", so " + options_.command +
                             " would act on the kernel itself");
      }
      if (!asked.ok()) return asked.error();

      auto store = env_.open_state(*options_.state_dir);
      if (store.ok()) {
        SHADAN_ASSIGN_OR_RETURN(auto local, handleLocally(context, request, **store));
        if (local.is_object()) local["daemon"] = false;
        return local;
      }
      if (store.error().code != ErrorCode::kUnavailable ||
          std::chrono::steady_clock::now() >= deadline) {
        return store.error();
      }
      if (!said_waiting) {
        err() << "shadan-agent: waiting for "
              << (std::filesystem::path(*options_.state_dir) / "lock").string()
              << " (held by another shadan-agent process), up to " << kStateDirLockWait.count()
              << " s\n";
        said_waiting = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  Result<nlohmann::json> handleLocally(const Context& context, const ControlRequest& request,
                                       StateStore& store) const {
    // A deadline needs someone awake at the deadline. Without a daemon nothing lifts the
    // isolation when the time is up, so --ttl alone would promise what nobody keeps.
    if (request.ttl && !options_.ttl_without_daemon) {
      return makeError(ErrorCode::kInvalidArgument,
                       "--ttl needs the daemon, and none runs on " + *options_.state_dir +
                           ": nothing would lift the isolation when the time is up. Start it "
                           "(systemctl start shadan-agent) and try again, or add "
                           "--ttl-without-daemon to store the deadline anyway (it is then "
                           "honoured only by the next daemon start or shadan-agent command after "
                           "it, and status shows it as overdue until then)");
    }
    auto firewall = env_.open_firewall();
    if (!firewall.ok()) {
      if (request.op != "status") return firewall.error();
      // status still shows the desired state without kernel access.
      SHADAN_ASSIGN_OR_RETURN(auto state, store.load());
      nlohmann::json doc = errorAnswer("status", firewall.error());
      doc["gateway"] = context.gateway;
      doc["policy"] = context.loaded.policy.name;
      doc["isolations"] = isolationsJson(state, toUnixMillis(env_.clock->now()));
      doc["kernel"] = {{"state", "unknown"}, {"error", firewall.error().message}};
      return doc;
    }
    // One gateway, one writer: a change waits for another command's and is refused while
    // another agent (a daemon on another state directory) owns this gateway.
    std::shared_ptr<void> claim;
    if (request.op != "status" && request.op != "verify") {
      auto claimed = env_.claim_gateway();
      if (!claimed.ok()) {
        return Error{claimed.error().code,
                     claimed.error().message + "; this command's state directory is " +
                         *options_.state_dir +
                         ": give the owner's --state-dir to hand the command to it"};
      }
      claim = std::move(claimed).value();
    }
    SHADAN_ASSIGN_OR_RETURN(auto routes, env_.open_routes());
    SHADAN_ASSIGN_OR_RETURN(auto conntrack, env_.open_conntrack());
    SHADAN_ASSIGN_OR_RETURN(auto audit, env_.open_audit(*options_.state_dir, context.gateway));
    AgentCore core(
        context.loaded.policy, context.gateway,
        AgentCoreDeps{store, **firewall, *routes, *conntrack, *audit.sink, *env_.clock, hostName(),
                      SHADAN_VERSION, agentOwnerMark(context.gateway, *options_.state_dir)});
    SHADAN_RETURN_IF_ERROR(core.load());
    if (options_.trust) {
      SHADAN_ASSIGN_OR_RETURN(auto trust, loadTrustFile(*options_.trust));
      if (auto used = core.useTrust(std::move(trust), *audit.key); !used.ok()) {
        return used.error().withContext("trust file " + *options_.trust);
      }
    }
    auto answer = handleControlRequest(core, request, "local-cli",
                                       "local-cli uid=" + std::to_string(env_.uid));
    if (request.ttl && answer.value("ok", false)) {
      err() << "shadan-agent: note: no daemon runs on " << *options_.state_dir
            << ": the deadline is stored and honoured by the next shadan-agent command or "
               "daemon start after it, not at the deadline\n";
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

  // The rung options of an isolate or restore into `request`; false (after the usage error)
  // when they do not fit.
  std::optional<int> takeRung(ControlRequest& request) {
    auto rung = rungOf(options_);
    if (!rung.ok()) return usageError(rung.error().message);
    request.segment = rung->segment;
    if (rung->scope && *rung->scope != IsolationScope::kSegment) request.scope = rung->scope;
    request.hosts = rung->hosts;
    request.link_down = rung->link_down;
    return std::nullopt;
  }

  int isolate() {
    ControlRequest request;
    request.op = "isolate";
    if (auto refused = takeRung(request)) return *refused;
    request.profile = options_.profile;
    request.drill = options_.drill;
    request.reason = options_.reason;
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
    ControlRequest request;
    request.op = "restore";
    if (auto refused = takeRung(request)) return *refused;
    if (options_.all && options_.profile) return usageError("--profile does not go with --all");
    if (options_.ttl) return usageError("--ttl is only for isolate");
    if (options_.drill) return usageError("--drill is only for isolate");
    // Lifting a cut is the dangerous direction: always on record with its why.
    if (!options_.reason) return usageError("restore needs --reason TEXT (it is audited)");
    request.reason = options_.reason;
    request.all = options_.all;
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

  int change(ControlRequest request) {
    auto context = loadContext(true);
    if (!context.ok()) {
      recordRefusal(request.op, context.error());
      return fail(context.error());
    }
    if (!env_.sudo_user.empty()) request.sudo_user = env_.sudo_user;
    if (request.op == "isolate") {
      const std::string what = confirmationNeeded(context->loaded.policy,
                                                  request.scope.value_or(IsolationScope::kSegment),
                                                  request.segment.value_or(""), request.hosts);
      if (!what.empty()) {
        if (!options_.reason) {
          return usageError(
              what + " is a protected rung: isolating it needs --reason TEXT (it is " + "audited)");
        }
        const std::string question = "Isolate " + what + " on gateway " + context->gateway + "?";
        if (!options_.yes && !env_.confirm(question)) {
          const Error declined =
              makeError(ErrorCode::kInvalidArgument,
                        "not confirmed: isolating " + what +
                            " needs a yes on the terminal, or --yes in scripts; nothing changed");
          recordRefusal(request.op, declined);
          return fail(declined);
        }
      }
    }
    auto answer = dispatch(*context, request);
    if (!answer.ok()) return fail(answer.error());
    return finish(*answer, [&] { printChangeAnswer(*answer, options_, out(), err()); });
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
    const std::string running = answer->value("policy_sha256", "");
    if (!running.empty() && running != context->loaded.policy.source_sha256) {
      err() << "shadan-agent: warning: the agent runs policy \"" << answer->value("policy", "")
            << "\" (sha256 " << running.substr(0, 16) << "...), not the file --policy gave ("
            << *options_.policy << "); reload the daemon to use it\n";
    }
    const int code = finish(*answer, [&] { printStatusAnswer(*answer, out()); });
    return code == kExitOk ? statusExitCode(*answer) : code;
  }

  // status tells the truth in its exit code too: 0 only when the kernel holds exactly what was
  // applied and no deadline is overdue (docs/agent-cli.md, "Exit codes").
  static int statusExitCode(const nlohmann::json& answer) {
    const std::string kernel =
        answer.value("kernel", nlohmann::json::object()).value("state", "unknown");
    if (kernel == "drift" || kernel == "missing" || kernel == "unexpected_table") {
      return kExitDrift;
    }
    for (const auto& isolation : answer.value("isolations", nlohmann::json::array())) {
      if (isolation.value("overdue", false)) return kExitOverdue;
    }
    return kernel == "in_sync" ? kExitOk : kExitFailed;
  }

  int plan() {
    const bool rung_given =
        !options_.positional.empty() || options_.host || options_.uplink || options_.island;
    if (options_.profile && !rung_given) return usageError("--profile needs a SEGMENT or rung");
    auto context = loadContext(false);
    if (!context.ok()) return fail(context.error());
    std::vector<Isolation> isolations;
    if (options_.state_dir) {
      auto current = currentIsolations(*context);
      if (!current.ok()) return fail(current.error());
      isolations = std::move(current).value();
    }
    if (rung_given) {
      auto rung = rungOf(options_);
      if (!rung.ok()) return usageError(rung.error().message);
      IsolateRequest request;
      request.scope = rung->scope.value_or(IsolationScope::kSegment);
      request.segment = rung->segment.value_or("");
      request.hosts = rung->hosts;
      request.profile = options_.profile.value_or("full");
      auto wanted = isolationsFor(context->loaded.policy, context->gateway, request);
      if (!wanted.ok()) return fail(wanted.error());
      isolations.insert(isolations.end(), wanted->begin(), wanted->end());
    }
    auto plan = planGateway(context->loaded.policy, context->gateway, isolations);
    if (!plan.ok()) return fail(plan.error());
    printPlan(*plan, context->gateway, options_.json, out());
    return kExitOk;
  }

  // The isolations in force: from the daemon when one runs, else from the store. Needs no
  // kernel access, so `plan` works without root.
  Result<std::vector<Isolation>> currentIsolations(const Context&) const {
    ControlRequest request;
    request.op = "status";
    SHADAN_ASSIGN_OR_RETURN(auto answer, env_.ask_daemon(*options_.state_dir, request));
    std::vector<Isolation> isolations;
    if (answer.has_value()) {
      for (const auto& i : answer.value().value("isolations", nlohmann::json::array())) {
        SHADAN_ASSIGN_OR_RETURN(Isolation isolation, isolationFromJson(i));
        isolations.push_back(std::move(isolation));
      }
      return isolations;
    }
    SHADAN_ASSIGN_OR_RETURN(auto store, env_.open_state(*options_.state_dir));
    SHADAN_ASSIGN_OR_RETURN(auto state, store->load());
    return state.isolationPairs();
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
      int code = finish(*answer, [&] { printVerifyAnswer(*answer, out()); });
      if (code == kExitOk && !accepted) code = kExitRejected;
      return code;
    }
    return finish(*answer, [&] {
      out() << "break-glass isolation applied from " << path << "\n";
      printChangeAnswer(*answer, options_, out(), err());
    });
  }

  // The explicit way to make a state directory (besides the daemon's first start): the store
  // and the agent key, whose public half goes into the trust file before orders can be signed.
  int init() {
    if (!options_.positional.empty()) return usageError("init takes no arguments");
    if (!options_.gateway) return fail(missingOption("--gateway"));
    if (!options_.state_dir) return fail(missingOption("--state-dir"));
    auto store = env_.create_state(*options_.state_dir);
    if (!store.ok()) return fail(store.error());
    auto audit = env_.open_audit(*options_.state_dir, *options_.gateway);
    if (!audit.ok()) return fail(audit.error());
    const std::string keyid = audit->key->keyId();
    const std::string pub = (std::filesystem::path(*options_.state_dir) / "agent.pub").string();
    if (options_.json) {
      out() << nlohmann::json{{"ok", true},
                              {"command", "init"},
                              {"state_dir", *options_.state_dir},
                              {"agent_keyid", keyid},
                              {"agent_pub", pub}}
                   .dump(2)
            << "\n";
    } else {
      out() << "state directory " << *options_.state_dir << " ready\nagent key " << keyid
            << " (public key " << pub << "; add it to the trust file as agent:" << *options_.gateway
            << ")\n";
    }
    return kExitOk;
  }

  // What run would load, loaded and checked, without starting: no kernel, no daemon, nothing
  // written (the state directory is looked at, not opened).
  int checkConfig() {
    // Whatever does not load makes the configuration invalid (exit 3), a TLS or I/O error too.
    const auto invalid = [this](const Error& error) {
      const int code = fail(error);
      return code == kExitUsage ? code : kExitRejected;
    };
    if (!options_.positional.empty()) return usageError("check-config takes no arguments");
    if (options_.ttl || options_.profile || options_.all || options_.drill) {
      return usageError("check-config takes the options of run (and --json) only");
    }
    auto context = loadContext(true);
    if (!context.ok()) return invalid(context.error());
    auto translated = daemonOptionsFrom(options_);
    if (!translated.ok()) return usageError(translated.error().message);
    const Policy& policy = context->loaded.policy;
    // Every isolation this gateway could be ordered to apply plans (as policy check does).
    auto planned = checkGatewayPlans(policy, *options_.policy, context->gateway);
    if (!planned.ok()) return invalid(planned.error());
    nlohmann::json checked = {{"ok", true},
                              {"command", "check-config"},
                              {"gateway", context->gateway},
                              {"policy",
                               {{"file", *options_.policy},
                                {"name", policy.name},
                                {"sha256", policy.source_sha256},
                                {"isolations_planned", *planned}}}};
    if (options_.trust) {
      auto trust = loadTrustFile(*options_.trust);
      if (!trust.ok()) return invalid(trust.error());
      if (trust->isExpired(env_.clock->now())) {
        return invalid(makeError(ErrorCode::kInvalidArgument,
                                 "trust file " + *options_.trust + " has expired"));
      }
      checked["trust"] = {
          {"file", *options_.trust}, {"version", trust->version}, {"keys", trust->keys.size()}};
    }
    if (translated->controller) {
      if (!options_.trust) {
        return invalid(
            makeError(ErrorCode::kInvalidArgument,
                      "a controller needs --trust: signed orders are verified against it"));
      }
      const ControllerEndpoint& endpoint = *translated->controller;
      auto tls = loadLinkTls(
          (endpoint.tls_dir / "ca.crt").string(), (endpoint.tls_dir / "agent.crt").string(),
          (endpoint.tls_dir / "agent.key").string(), endpoint.pin, context->gateway);
      if (!tls.ok()) return invalid(tls.error());
      checked["controller"] = {{"address", endpoint.text()},
                               {"tls_dir", endpoint.tls_dir.string()}};
    }
    std::error_code ec;
    const std::filesystem::path state_dir = *options_.state_dir;
    std::string state = "absent";
    if (std::filesystem::exists(state_dir, ec)) {
      if (!std::filesystem::is_directory(state_dir, ec)) {
        return invalid(makeError(ErrorCode::kInvalidArgument,
                                 "--state-dir " + state_dir.string() + " is not a directory"));
      }
      state = "exists";
    }
    checked["state_dir"] = {{"path", state_dir.string()}, {"state", state}};
    checked["metrics_listen"] = translated->metrics_listen
                                    ? nlohmann::json(listenAddressText(*translated->metrics_listen))
                                    : nlohmann::json(nullptr);
    if (options_.json) {
      out() << checked.dump(2) << "\n";
      return kExitOk;
    }
    out() << "ok: shadan-agent run would start on this configuration\n"
          << "  policy     " << *options_.policy << ": \"" << policy.name << "\", gateway "
          << context->gateway << ", " << *planned << " isolations plan\n";
    if (checked.contains("trust")) {
      out() << "  trust      " << *options_.trust << ": version "
            << checked["trust"]["version"].get<int64_t>() << ", "
            << checked["trust"]["keys"].get<size_t>() << " keys\n";
    }
    if (checked.contains("controller")) {
      out() << "  controller " << checked["controller"]["address"].get<std::string>()
            << " (TLS files in " << checked["controller"]["tls_dir"].get<std::string>()
            << ": load, certificate is " << context->gateway << "'s)\n";
    } else {
      out() << "  controller none (standalone)\n";
    }
    out() << "  state dir  " << state_dir.string()
          << (state == "exists" ? "" : " (made at the first start)") << "\n";
    if (!checked["metrics_listen"].is_null()) {
      out() << "  metrics    http://" << checked["metrics_listen"].get<std::string>()
            << "/metrics\n";
    }
    return kExitOk;
  }

  int daemon() {
    if (!options_.positional.empty()) return usageError("run takes no arguments");
    if (options_.ttl || options_.profile || options_.all || options_.json || options_.drill) {
      return usageError(
          "run takes only --policy, --gateway, --state-dir, --trust, --controller, --tls-dir, "
          "--controller-pin, --controller-grace, --audit-export, --metrics-listen and "
          "--log-level");
    }
    // Validate the configuration here too, so a bad one stops startup with one clear message.
    auto context = loadContext(true);
    if (!context.ok()) return fail(context.error());
    // Flags to options: a malformed --controller, --audit-export, --metrics-listen or
    // --controller-grace is a
    // usage error (agents/agent_setup.h).
    auto translated = daemonOptionsFrom(options_);
    if (!translated.ok()) return usageError(translated.error().message);
    DaemonOptions daemon_options = std::move(translated).value();
    if (options_.trust) {
      // A malformed or expired trust file stops startup with one clear message.
      auto trust = loadTrustFile(*options_.trust);
      if (!trust.ok()) return fail(trust.error());
      daemon_options.trust_path = *options_.trust;
    }
    return env_.run_daemon(daemon_options);
  }

  const AgentCliOptions& options_;
  const AgentEnvironment& env_;
  mutable bool missing_option_ = false;  // set by missingOption()
};

}  // namespace

int runAgentCli(const std::vector<std::string>& args, const AgentEnvironment& env) {
  auto options = parseAgentCliArgs(args);
  if (!options.ok()) {
    *env.err << usageErrorText(commandNameIn(args), options.error().message);
    return kExitUsage;
  }
  if (options->version) {
    *env.out << "shadan-agent " << SHADAN_VERSION << "\n";
    return kExitOk;
  }
  if (options->command.empty()) {
    if (options->help) {
      *env.out << kAgentCliUsage;
      return kExitOk;
    }
    *env.err << usageErrorText(
        "", "usage: shadan-agent COMMAND [ARGS] [OPTIONS] (commands: " + agentCommandNames() + ")");
    return kExitUsage;
  }
  if (options->help) {
    // An unknown command falls through to the runner, which names the valid ones.
    if (const auto usage = agentCommandUsage(*options)) {
      *env.out << *usage;
      return kExitOk;
    }
  }
  if (options->log_level) {
    static const std::set<std::string> kLevels = {"debug", "info", "warn", "error", "off"};
    if (!kLevels.count(*options->log_level)) {
      *env.err << usageErrorText(options->command,
                                 "--log-level must be one of debug|info|warn|error|off");
      return kExitUsage;
    }
    setLogLevel(*options->log_level);
  }
  applyAgentDefaults(*options, env.defaults);
  return Command(*options, env).run();
}

}  // namespace shadan::agent

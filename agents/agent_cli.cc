#include "agents/agent_cli.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "agents/enforcer.h"
#include "agents/planner/planner.h"
#include "common/logging.h"
#include "common/policy.h"

namespace shadan {
namespace {

constexpr const char* kOrigin = "local-cli";

constexpr const char* kUsage = R"(usage: shadan-agent COMMAND [ARGS] [OPTIONS]

Local control of a Shadan gateway agent (break-glass and lab use).

commands:
  isolate SEGMENT [--profile NAME]     cut SEGMENT on this gateway (profile default: full)
  restore SEGMENT [--profile NAME]     lift SEGMENT's isolation (all its profiles unless --profile)
  restore --all                        lift every isolation on this gateway
  status                               desired state, and whether the kernel holds it
  plan [SEGMENT [--profile NAME]]      print the nftables document (current state, plus SEGMENT)
                                       without applying anything

options:
  --policy FILE      the Shadan policy (required)
  --gateway ID       this gateway's id in the policy (required)
  --state-dir DIR    where the desired state is kept (required, except for plan)
  --json             machine-readable output on stdout
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
  bool all = false;
  bool json = false;
  bool help = false;
  bool version = false;
};

// Parses the command line. Options may appear anywhere after the command, as `--opt value` or
// `--opt=value`. Errors name the offending argument.
Result<Options> parseArgs(const std::vector<std::string>& args) {
  Options options;
  const std::map<std::string, std::optional<std::string> Options::*> valued = {
      {"--profile", &Options::profile},     {"--policy", &Options::policy},
      {"--gateway", &Options::gateway},     {"--state-dir", &Options::state_dir},
      {"--log-level", &Options::log_level},
  };
  const std::map<std::string, bool Options::*> flags = {
      {"--all", &Options::all}, {"--json", &Options::json},       {"--help", &Options::help},
      {"-h", &Options::help},   {"--version", &Options::version},
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

// Shared by every command: what the request is about, validated against the policy.
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
    return usageError("unknown command \"" + options_.command + "\"");
  }

 private:
  std::ostream& out() const { return *env_.out; }
  std::ostream& err() const { return *env_.err; }

  int usageError(const std::string& message) const {
    err() << "shadan-agent: " << message << "\n(see shadan-agent --help)\n";
    return kExitUsage;
  }

  // Reports an error on stderr (and as JSON on stdout with --json) and maps it to an exit code.
  int fail(const Error& error) const {
    err() << "shadan-agent: " << options_.command << ": " << error.message << "\n";
    if (options_.json) {
      nlohmann::json doc = {
          {"ok", false},
          {"command", options_.command},
          {"error", {{"code", errorCodeName(error.code)}, {"message", error.message}}}};
      out() << doc.dump(2) << "\n";
    }
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

  // Validates SEGMENT [--profile] against the policy and this gateway.
  Result<Isolation> requestedIsolation(const Context& context, const std::string& segment) const {
    const Policy& policy = context.loaded.policy;
    if (!policy.findSegment(segment)) {
      return makeError(ErrorCode::kNotFound,
                       "unknown segment \"" + segment + "\" (policy " + *options_.policy + ")");
    }
    const std::string profile = options_.profile.value_or("full");
    if (!policy.findProfile(profile)) {
      return makeError(ErrorCode::kNotFound,
                       "unknown profile \"" + profile + "\" (policy " + *options_.policy + ")");
    }
    const Gateway* gateway = policy.findGateway(context.gateway);
    if (std::find(gateway->borders.begin(), gateway->borders.end(), segment) ==
        gateway->borders.end()) {
      return makeError(
          ErrorCode::kInvalidArgument,
          "gateway \"" + context.gateway + "\" does not border segment \"" + segment + "\"");
    }
    return Isolation{segment, profile};
  }

  int isolate() {
    if (options_.positional.size() != 1) return usageError("isolate takes exactly one SEGMENT");
    if (options_.all) return usageError("--all is only for restore");
    auto context = loadContext(true);
    if (!context.ok()) return fail(context.error());
    auto isolation = requestedIsolation(*context, options_.positional[0]);
    if (!isolation.ok()) return fail(isolation.error());
    return change(*context, [&](DesiredState& state) -> Result<bool> {
      if (state.contains(*isolation)) return false;
      ActiveIsolation active;
      active.isolation = *isolation;
      active.since_unix_ms = toUnixMillis(env_.clock->now());
      active.origin = kOrigin;
      state.isolations.push_back(active);
      std::sort(state.isolations.begin(), state.isolations.end(),
                [](const auto& a, const auto& b) { return a.isolation < b.isolation; });
      return true;
    });
  }

  int restore() {
    if (options_.all == !options_.positional.empty() || options_.positional.size() > 1) {
      return usageError("restore takes exactly one SEGMENT, or --all");
    }
    if (options_.all && options_.profile) return usageError("--profile does not go with --all");
    auto context = loadContext(true);
    if (!context.ok()) return fail(context.error());
    std::optional<Isolation> target;
    if (!options_.all) {
      const std::string& segment = options_.positional[0];
      if (options_.profile && !context->loaded.policy.findProfile(*options_.profile)) {
        return fail(makeError(ErrorCode::kNotFound, "unknown profile \"" + *options_.profile +
                                                        "\" (policy " + *options_.policy + ")"));
      }
      target = Isolation{segment, options_.profile.value_or("")};
    }
    return change(*context, [&](DesiredState& state) -> Result<bool> {
      const auto before = state.isolations.size();
      std::erase_if(state.isolations, [&](const ActiveIsolation& active) {
        if (!target) return true;
        return active.isolation.segment == target->segment &&
               (target->profile.empty() || active.isolation.profile == target->profile);
      });
      // A segment the policy no longer knows can still be restored if it is isolated; one that
      // is neither in the policy nor isolated is a typo, and a typo must not look like success.
      if (target && state.isolations.size() == before &&
          !context->loaded.policy.findSegment(target->segment)) {
        return makeError(ErrorCode::kNotFound, "unknown segment \"" + target->segment +
                                                   "\" (policy " + *options_.policy + ")");
      }
      return state.isolations.size() != before;
    });
  }

  // The common path of isolate and restore: edit the desired state, plan, commit the state,
  // apply, and put the state back if the kernel refuses.
  template <typename Edit>
  int change(const Context& context, Edit edit) {
    auto store = env_.open_state(*options_.state_dir);
    if (!store.ok()) return fail(store.error());
    auto loaded = (*store)->load();
    if (!loaded.ok()) return fail(loaded.error());
    const DesiredState previous = loaded.value();
    DesiredState next = previous;
    auto edited = edit(next);
    if (!edited.ok()) return fail(edited.error());
    const bool changed = edited.value();

    // Plan before touching anything: a state the policy cannot express is rejected here.
    auto plan = planGateway(context.loaded.policy, context.gateway, next.isolationPairs());
    if (!plan.ok()) return fail(plan.error());

    auto firewall = env_.open_firewall();
    if (!firewall.ok()) return fail(firewall.error());
    auto routes = env_.open_routes();
    if (!routes.ok()) return fail(routes.error());

    if (changed) {
      if (auto saved = (*store)->save(next); !saved.ok()) return fail(saved.error());
    }
    Enforcer enforcer(**firewall, **routes);
    auto report = enforcer.enforce(*plan);
    if (!report.ok()) {
      if (changed) {
        if (auto reverted = (*store)->save(previous); !reverted.ok()) {
          err() << "shadan-agent: CRITICAL: kernel refused the change and the stored state could "
                   "not be put back: "
                << reverted.error().message << "\n";
        }
      }
      return fail(report.error());
    }
    next.applied_ruleset_sha256 = report->after.sha256;
    if (auto saved = (*store)->save(next); !saved.ok()) return fail(saved.error());

    printChange(context, next, changed, *report);
    return kExitOk;
  }

  void printChange(const Context& context, const DesiredState& state, bool changed,
                   const EnforceReport& report) const {
    if (options_.json) {
      nlohmann::json doc = {{"ok", true},
                            {"command", options_.command},
                            {"gateway", context.gateway},
                            {"changed", changed},
                            {"isolations", isolationsJson(state)},
                            {"ruleset_sha256_before", report.before.sha256},
                            {"ruleset_sha256", report.after.sha256},
                            {"blackhole_routes", routesJson(report.routes_after)}};
      out() << doc.dump(2) << "\n";
      return;
    }
    const std::string subject =
        options_.all ? std::string("all segments")
                     : options_.positional[0] +
                           (options_.profile ? " (" + *options_.profile + ")" : std::string());
    if (options_.command == "isolate") {
      out() << (changed ? "isolated " : "already isolated ") << subject << " on " << context.gateway
            << "\n";
    } else {
      out() << (changed ? "restored " : "nothing to restore for ") << subject << " on "
            << context.gateway << "\n";
    }
    out() << "ruleset sha256 " << (report.after.present ? report.after.sha256 : "(no table)")
          << "\n";
    out() << "active isolations: " << state.isolations.size() << "\n";
  }

  int status() {
    if (!options_.positional.empty()) return usageError("status takes no arguments");
    auto context = loadContext(true);
    if (!context.ok()) return fail(context.error());
    auto store = env_.open_state(*options_.state_dir);
    if (!store.ok()) return fail(store.error());
    auto state = (*store)->load();
    if (!state.ok()) return fail(state.error());

    // The kernel side: is our table there, and is it the one we applied last?
    std::optional<TableSnapshot> live;
    std::string kernel_error;
    if (auto firewall = env_.open_firewall(); firewall.ok()) {
      if (auto table = (*firewall)->readTable(); table.ok()) {
        live = std::move(table).value();
      } else {
        kernel_error = table.error().message;
      }
    } else {
      kernel_error = firewall.error().message;
    }
    std::string kernel_state;
    if (!live) {
      kernel_state = "unknown";
    } else if (state->isolations.empty()) {
      kernel_state = live->present ? "unexpected_table" : "in_sync";
    } else if (!live->present) {
      kernel_state = "missing";
    } else {
      kernel_state = live->sha256 == state->applied_ruleset_sha256 ? "in_sync" : "drift";
    }

    if (options_.json) {
      nlohmann::json doc = {{"ok", live.has_value()},
                            {"command", "status"},
                            {"gateway", context->gateway},
                            {"policy", context->loaded.policy.name},
                            {"isolations", isolationsJson(*state)},
                            {"kernel", {{"state", kernel_state}}}};
      if (live) {
        doc["kernel"]["table_present"] = live->present;
        doc["kernel"]["ruleset_sha256"] = live->sha256;
      } else {
        doc["kernel"]["error"] = kernel_error;
      }
      doc["applied_ruleset_sha256"] = state->applied_ruleset_sha256;
      out() << doc.dump(2) << "\n";
    } else {
      out() << "gateway " << context->gateway << " (policy " << context->loaded.policy.name
            << ")\n";
      if (state->isolations.empty()) {
        out() << "no active isolation\n";
      } else {
        out() << "active isolations:\n";
        for (const auto& active : state->isolations) {
          out() << "  " << active.isolation.segment << "  profile=" << active.isolation.profile
                << "  since=" << formatRfc3339(active.since_unix_ms)
                << (active.expires_unix_ms ? "  expires=" + formatRfc3339(*active.expires_unix_ms)
                                           : std::string())
                << "  origin=" << active.origin << "\n";
        }
      }
      out() << "kernel: " << kernel_state;
      if (live && live->present) out() << " (table inet shadan sha256 " << live->sha256 << ")";
      if (!live) out() << " (" << kernel_error << ")";
      out() << "\n";
    }
    if (!live) return kExitFailed;
    return kExitOk;
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
      auto store = env_.open_state(*options_.state_dir);
      if (!store.ok()) return fail(store.error());
      auto state = (*store)->load();
      if (!state.ok()) return fail(state.error());
      isolations = state->isolationPairs();
    }
    if (!options_.positional.empty()) {
      auto isolation = requestedIsolation(*context, options_.positional[0]);
      if (!isolation.ok()) return fail(isolation.error());
      isolations.push_back(*isolation);
    }
    auto plan = planGateway(context->loaded.policy, context->gateway, isolations);
    if (!plan.ok()) return fail(plan.error());
    if (options_.json) {
      nlohmann::json doc = {{"ok", true},
                            {"command", "plan"},
                            {"gateway", context->gateway},
                            {"nft_script", plan->nft_script},
                            {"blackhole_routes", routesJson(plan->blackhole_routes)}};
      out() << doc.dump(2) << "\n";
    } else {
      out() << plan->nft_script;
      for (const auto& route : plan->blackhole_routes) {
        out() << "# blackhole route " << route.toCidr() << "\n";
      }
    }
    return kExitOk;
  }

  static nlohmann::json isolationsJson(const DesiredState& state) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& active : state.isolations) {
      nlohmann::json item = {{"segment", active.isolation.segment},
                             {"profile", active.isolation.profile},
                             {"since", formatRfc3339(active.since_unix_ms)},
                             {"origin", active.origin}};
      if (active.expires_unix_ms) item["expires"] = formatRfc3339(*active.expires_unix_ms);
      list.push_back(std::move(item));
    }
    return list;
  }

  static nlohmann::json routesJson(const std::vector<IpPrefix>& routes) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& route : routes) list.push_back(route.toCidr());
    return list;
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

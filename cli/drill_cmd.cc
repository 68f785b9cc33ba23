#include "cli/drill_cmd.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/drill/builtin_scenarios.h"
#include "cli/drill/report_html.h"
#include "cli/drill_run_cmd.h"
#include "cli/shadanctl.h"
#include "common/policy.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

constexpr const char* kDrillUsage = R"(usage: shadanctl drill <list|show|check|run|report> [options]

  drill list [--json]
      The built-in scenarios: name, description, the policy each is written for, and its
      parameters.
  drill show NAME [--segment S] [--param NAME=VALUE ...] [--json]
      A built-in scenario as JSON with its parameters replaced: a starting point for a
      scenario file of your own. When a parameter without a default has no value, the
      scenario is shown as written ("${name}" kept). --json: on one line.
  drill check --policy POLICY (--scenario FILE | --builtin NAME | --segment SEG)
              [--segment S] [--param NAME=VALUE ...] [--json]
      Read the scenario strictly and check it against the policy, before anything is
      built: every segment, gateway and profile it names exists, no protected segment is
      isolated, both ends of every probe have its address family. --segment SEG alone is
      the segment-cut scenario for SEG; with --scenario or --builtin it is the value of
      the parameter "segment" (as --param segment=SEG). Prints OK, or the first error with
      the file and the JSON path.
      Exit 0: OK, 2: a usage error, or a scenario or policy that does not pass.
  drill run --policy POLICY (--scenario FILE | --builtin NAME | --segment SEG)
            [--segment S] [--param NAME=VALUE ...] --report DIR [--name LAB]
            [--bin-dir DIR] [--keep] [--json]
      Check the scenario as drill check does (nothing is built when it does not pass),
      build the lab of the policy, start the real shadan-controller and one shadan-agent
      per gateway in it with fresh drill keys, run the steps, tear everything down (also
      on failure and Ctrl-C) and write DIR/report.json (DIR is made 0700 when missing;
      the daemons' logs go there too). Needs root.
      --name LAB: the lab's name (1-8 of a-z 0-9 -; default d<pid>). --bin-dir DIR:
      where shadan-controller and shadan-agent are (default: beside shadanctl, or the
      build tree's controller/ and agents/). --keep: keep the drill's credentials
      directory. --json: print the report on stdout, progress on stderr.
      Exit 0: every expectation held, 1: one did not (report.json names the step and
      the probe), 2: a usage error or a scenario or policy that does not pass, 3: the
      drill could not run.
  drill report --from FILE --out DIR
      Render a drill's report again: read FILE (a report.json of a drill), check it, and
      write DIR/report.json and DIR/report.html, replacing older ones. DIR is made (mode
      0700) when it does not exist.
      Exit 0: written, 1: a file could not be written, 2: a usage error, or a report that
      does not pass.
)";

constexpr const char* kSubcommands = "(subcommands: list, show, check, run, report)";

std::string builtinNames() {
  std::string names;
  for (const drill::BuiltinScenario& scenario : drill::builtinScenarios()) {
    names += (names.empty() ? "" : ", ") + std::string(scenario.name);
  }
  return names;
}

Error usage(const std::string& message) { return makeError(ErrorCode::kInvalidArgument, message); }

class DrillCommand {
 public:
  DrillCommand(std::ostream& out, std::ostream& err, CommandRunner& runner)
      : out_(out), err_(err), runner_(runner) {}

  int run(const std::vector<std::string>& args) {
    if (args.size() < 2) {
      return usageError(std::string("'drill' needs a subcommand ") + kSubcommands);
    }
    const std::string& sub = args[1];
    if (sub == "-h" || sub == "--help" || sub == "help") {
      out_ << kDrillUsage;
      return kExitOk;
    }
    OptionSpec spec;
    spec.command = "drill " + sub;
    spec.flags = {"--json"};
    if (sub == "show") {
      spec.with_value = {"--segment", "--param"};
      spec.repeatable = {"--param"};
      spec.max_positionals = 1;
    } else if (sub == "check") {
      spec.with_value = {"--policy", "--scenario", "--builtin", "--segment", "--param"};
      spec.repeatable = {"--param"};
    } else if (sub == "run") {
      spec.with_value = {"--policy", "--scenario", "--builtin", "--segment",
                         "--param",  "--report",   "--name",    "--bin-dir"};
      spec.flags = {"--json", "--keep"};
      spec.repeatable = {"--param"};
    } else if (sub == "report") {
      spec.flags = {};
      spec.with_value = {"--from", "--out"};
    } else if (sub != "list") {
      return usageError("unknown drill subcommand '" + sub + "' " + kSubcommands);
    }
    auto options = parseCommandOptions(args, 2, spec);
    if (!options.ok()) return usageError(options.error().message);
    if (options->help) {
      out_ << kDrillUsage;
      return kExitOk;
    }
    if (sub == "list") return list(options->has("--json"));
    if (sub == "show") return show(*options);
    if (sub == "report") return report(*options);
    if (sub == "run") return run(*options);
    return check(*options);
  }

 private:
  int list(bool json) {
    Json scenarios = Json::array();
    for (const drill::BuiltinScenario& builtin : drill::builtinScenarios()) {
      auto parameters = drill::scenarioParameters(builtin.text, "builtin");
      // The built-ins are part of the program (tests parse every one): a broken one is a bug.
      if (!parameters.ok()) detail::resultAccessFailure(parameters.error().message.c_str());
      const Json doc = Json::parse(builtin.text);
      if (json) {
        Json params = Json::object();
        for (const auto& [name, parameter] : *parameters) {
          params[name] = {{"description", parameter.description}};
          if (parameter.default_value) params[name]["default"] = *parameter.default_value;
        }
        scenarios.push_back(
            {{"name", builtin.name},
             {"description", doc["description"]},
             {"written_for",
              builtin.written_for.empty() ? Json(nullptr) : Json(builtin.written_for)},
             {"parameters", params}});
        continue;
      }
      out_ << builtin.name << "  ("
           << (builtin.written_for.empty() ? std::string("any policy")
                                           : "written for " + std::string(builtin.written_for))
           << ")\n    " << doc["description"].get<std::string>() << "\n";
      for (const auto& [name, parameter] : *parameters) {
        out_ << "    parameter " << name << ": " << parameter.description
             << (parameter.default_value ? " (default " + *parameter.default_value + ")"
                                         : std::string(" (required)"))
             << "\n";
      }
    }
    if (json) out_ << Json{{"scenarios", scenarios}}.dump() << "\n";
    return kExitOk;
  }

  int show(const CommandOptions& options) {
    if (options.positionals.empty()) {
      return usageError("'drill show' needs a NAME (built-in: " + builtinNames() + ")");
    }
    const std::string& name = options.positionals[0];
    const drill::BuiltinScenario* builtin = drill::findBuiltinScenario(name);
    if (builtin == nullptr) {
      return usageError("unknown built-in scenario " + quoteForMessage(name) +
                        " (built-in: " + builtinNames() + ")");
    }
    auto arguments = scenarioArguments(options);
    if (!arguments.ok()) return usageError(arguments.error().message);
    const std::string source = "builtin:" + name;
    auto parameters = drill::scenarioParameters(builtin->text, source);
    if (!parameters.ok()) return failure(parameters.error());
    std::string missing;
    for (const auto& [parameter, declared] : *parameters) {
      if (!declared.default_value && !arguments->contains(parameter)) {
        missing += (missing.empty() ? "" : ", ") + parameter;
      }
    }
    bool undeclared = false;
    for (const auto& [given, unused] : *arguments) undeclared |= !parameters->contains(given);
    if (!missing.empty() && !undeclared) {
      // Still useful as a template; say why nothing was replaced.
      err_ << "shadanctl: no value for " << missing
           << " (give --segment S or --param NAME=VALUE); shown as written\n";
      if (options.has("--json")) {
        out_ << Json::parse(builtin->text).dump() << "\n";
      } else {
        out_ << builtin->text << "\n";
      }
      return kExitOk;
    }
    auto scenario = drill::parseScenario(builtin->text, source, *arguments);
    if (!scenario.ok()) return failure(scenario.error());
    const auto doc = drill::scenarioToJson(*scenario);
    out_ << (options.has("--json") ? doc.dump() : doc.dump(2)) << "\n";
    return kExitOk;
  }

  int check(const CommandOptions& options) {
    const bool json = options.has("--json");
    auto policy_path = options.value("--policy");
    if (!policy_path) return usageError("'drill check' needs --policy POLICY");
    auto chosen = scenarioFromOptions(options);
    if (!chosen.ok()) {
      if (chosen.error().code == ErrorCode::kInvalidArgument) {
        return usageError(chosen.error().message);
      }
      return refused(chosen.error(), json);
    }
    auto policy = loadPolicyFile(*policy_path);
    if (!policy.ok()) return refused(policy.error(), json);
    const drill::Scenario& scenario = chosen->scenario;
    Status checked = drill::checkScenarioAgainstPolicy(scenario, policy->policy, chosen->source);
    if (!checked.ok()) return refused(checked.error(), json);

    size_t probes = 0;
    for (const drill::Step& step : scenario.steps) {
      if (const auto* expect = std::get_if<drill::ExpectStep>(&step.action)) {
        for (const drill::Probe& probe : expect->probes) {
          probes += drill::expandProbe(probe, policy->policy).size();
        }
      }
    }
    if (json) {
      out_ << Json{{"ok", true},
                   {"scenario", scenario.name},
                   {"source", chosen->source},
                   {"policy", policy->policy.name},
                   {"steps", scenario.steps.size()},
                   {"probes", probes}}
                  .dump()
           << "\n";
    } else {
      out_ << "OK: scenario " << scenario.name << " (" << scenario.steps.size() << " steps, "
           << probes << " probes) against policy " << policy->policy.name << "\n";
    }
    return kExitOk;
  }

  int report(const CommandOptions& options) {
    auto from = options.value("--from");
    if (!from) return usageError("'drill report' needs --from FILE");
    auto out_dir = options.value("--out");
    if (!out_dir) return usageError("'drill report' needs --out DIR");
    auto report = drill::loadReportFile(*from);
    if (!report.ok()) return failure(report.error());
    // Made 0700 like the runner's report directory; an existing one is used as it is.
    if (::mkdir(out_dir->c_str(), 0700) != 0 && errno != EEXIST) {
      err_ << "shadanctl: cannot make " << *out_dir << ": " << std::strerror(errno) << "\n";
      return kExitFailure;
    }
    Status written = drill::writeReportFiles(*out_dir, *report);
    if (!written.ok()) {
      err_ << "shadanctl: " << written.error().message << "\n";
      return kExitFailure;
    }
    const std::filesystem::path dir(*out_dir);
    out_ << "wrote " << (dir / drill::kReportJsonName).string() << " and "
         << (dir / drill::kReportHtmlName).string() << " (verdict "
         << (*report)["verdict"].get<std::string>() << ")\n";
    return kExitOk;
  }

  int run(const CommandOptions& options) {
    std::error_code ec;
    DrillRunEnv env;
    env.self_exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    env.interrupted = &installDrillSignalHandlers();
    const int code = runDrillRun(options, out_, err_, runner_, env);
    restoreDrillSignalHandlers();
    return code;
  }

  // A scenario or policy that does not pass: bad input, nothing would be built.
  int refused(const Error& error, bool json) {
    if (json) {
      out_ << Json{{"ok", false}, {"error", error.message}}.dump() << "\n";
    } else {
      err_ << "shadanctl: " << error.message << "\n";
    }
    return kExitUsage;
  }

  int failure(const Error& error) {
    err_ << "shadanctl: " << error.message << "\n";
    return kExitUsage;
  }

  int usageError(const std::string& message) { return printUsageError(err_, "drill", message); }

  std::ostream& out_;
  std::ostream& err_;
  CommandRunner& runner_;
};

}  // namespace

const char* drillUsage() { return kDrillUsage; }

int runDrillCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                    CommandRunner& runner) {
  return DrillCommand(out, err, runner).run(args);
}

Result<std::map<std::string, std::string>> scenarioArguments(const CommandOptions& options) {
  std::map<std::string, std::string> arguments;
  for (const std::string& item : options.all("--param")) {
    const size_t equals = item.find('=');
    if (equals == std::string::npos || equals == 0) {
      return usage("--param: " + quoteForMessage(item) + " is not NAME=VALUE");
    }
    const std::string name = item.substr(0, equals);
    if (!arguments.emplace(name, item.substr(equals + 1)).second) {
      return usage("--param: parameter " + quoteForMessage(name) + " given twice");
    }
  }
  if (auto segment = options.value("--segment")) {
    if (!arguments.emplace("segment", *segment).second) {
      return usage("--segment and --param segment=... both give the parameter segment");
    }
  }
  return arguments;
}

Result<ChosenScenario> scenarioFromOptions(const CommandOptions& options) {
  auto file = options.value("--scenario");
  auto builtin_name = options.value("--builtin");
  if (file && builtin_name) {
    return usage("give one of --scenario FILE and --builtin NAME, not both");
  }
  if (!file && !builtin_name && !options.has("--segment")) {
    return usage("needs --scenario FILE, --builtin NAME or --segment SEG");
  }
  SHADAN_ASSIGN_OR_RETURN(auto arguments, scenarioArguments(options));
  if (file) {
    SHADAN_ASSIGN_OR_RETURN(auto scenario, drill::loadScenarioFile(*file, arguments));
    return ChosenScenario{std::move(scenario), *file};
  }
  const std::string name = builtin_name.value_or("segment-cut");
  const drill::BuiltinScenario* builtin = drill::findBuiltinScenario(name);
  if (builtin == nullptr) {
    return usage("unknown built-in scenario " + quoteForMessage(name) +
                 " (built-in: " + builtinNames() + ")");
  }
  const std::string source = "builtin:" + name;
  SHADAN_ASSIGN_OR_RETURN(auto scenario, drill::parseScenario(builtin->text, source, arguments));
  return ChosenScenario{std::move(scenario), source};
}

}  // namespace shadan

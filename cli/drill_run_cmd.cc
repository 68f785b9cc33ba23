#include "cli/drill_run_cmd.h"

#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cli/drill/drill_runner.h"
#include "cli/drill/report_html.h"
#include "cli/drill_cmd.h"
#include "cli/lab/policy_lab.h"
#include "cli/shadanctl.h"
#include "common/policy.h"

namespace shadan {
namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_interrupted{false};
struct sigaction g_old_int {};
struct sigaction g_old_term {};

void onSignal(int) { g_interrupted = true; }

int usage(std::ostream& err, const std::string& message) {
  return printUsageError(err, "drill", message);
}

int refused(std::ostream& out, std::ostream& err, const Error& error, bool json) {
  if (json) {
    out << nlohmann::json{{"ok", false}, {"error", error.message}}.dump() << "\n";
  } else {
    err << "shadanctl: " << error.message << "\n";
  }
  return kExitUsage;
}

int couldNotRun(std::ostream& err, const std::string& message) {
  err << "shadanctl: drill run: " << message << "\n";
  return kExitProbeError;
}

Status makeReportDir(const std::string& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return okStatus();
  if (::mkdir(dir.c_str(), 0700) != 0) {
    return makeError(ErrorCode::kIo, "--report: cannot make " + dir + ": " + std::strerror(errno));
  }
  return okStatus();
}

}  // namespace

const std::atomic<bool>& installDrillSignalHandlers() {
  g_interrupted = false;
  struct sigaction action {};
  action.sa_handler = onSignal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &g_old_int);
  ::sigaction(SIGTERM, &action, &g_old_term);
  return g_interrupted;
}

void restoreDrillSignalHandlers() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
}

int runDrillRun(const CommandOptions& options, std::ostream& out, std::ostream& err,
                CommandRunner& runner, const DrillRunEnv& env) {
  const bool json = options.has("--json");
  auto policy_path = options.value("--policy");
  if (!policy_path) return usage(err, "'drill run' needs --policy POLICY");
  auto report_dir = options.value("--report");
  if (!report_dir) return usage(err, "'drill run' needs --report DIR");
  const std::string lab_name =
      options.value("--name").value_or("d" + std::to_string(::getpid() % 10000000));
  if (Status valid = validateLabName(lab_name); !valid.ok()) {
    return usage(err, "--name: " + valid.error().message);
  }
  auto chosen = scenarioFromOptions(options);
  if (!chosen.ok()) {
    if (chosen.error().code == ErrorCode::kInvalidArgument) {
      return usage(err, chosen.error().message);
    }
    return refused(out, err, chosen.error(), json);
  }
  auto policy = loadPolicyFile(*policy_path);
  if (!policy.ok()) return refused(out, err, policy.error(), json);
  Status checked =
      drill::checkScenarioAgainstPolicy(chosen->scenario, policy->policy, chosen->source);
  if (!checked.ok()) return refused(out, err, checked.error(), json);
  PolicyLabOptions lab_options;
  lab_options.source = *policy_path;
  auto policy_lab = labFromPolicy(policy->policy, lab_options);
  if (!policy_lab.ok()) return refused(out, err, policy_lab.error(), json);

  auto binaries = drill::findDrillBinaries(env.self_exe, options.value("--bin-dir"));
  if (!binaries.ok()) return couldNotRun(err, binaries.error().message);
  if (Status made = makeReportDir(*report_dir); !made.ok()) {
    return couldNotRun(err, made.error().message);
  }

  drill::DrillRunRequest request;
  request.scenario = std::move(chosen->scenario);
  request.scenario_source = chosen->source;
  request.policy = std::move(policy->policy);
  std::error_code ec;
  request.policy_file = fs::absolute(*policy_path, ec).string();
  request.policy_lab = std::move(*policy_lab);
  request.lab_name = lab_name;
  request.report_dir = fs::absolute(*report_dir, ec).string();
  request.keep = options.has("--keep");
  request.binaries = std::move(*binaries);

  static const std::atomic<bool> kNever{false};
  std::ostream& progress = json ? err : out;
  drill::DrillRunner drill_runner(std::move(request), runner, progress,
                                  env.interrupted ? *env.interrupted : kNever);
  const drill::DrillOutcome outcome = drill_runner.run();
  const drill::DrillReport& report = drill_runner.report();
  const std::string report_file = *report_dir + "/" + drill::kReportJsonName;
  if (Status written = drill::writeReportFiles(*report_dir, drill::drillReportToJson(report));
      !written.ok()) {
    err << "shadanctl: drill run: writing the report in " << *report_dir << ": "
        << written.error().message << "\n";
    return kExitProbeError;
  }
  if (json) {
    out << drill::drillReportToJson(report).dump() << "\n";
  } else {
    out << (report.passed() ? "PASS" : "FAIL") << ": drill " << report.scenario << " on policy "
        << report.policy << " in " << report.duration_ms << " ms; report " << report_file << " and "
        << drill::kReportHtmlName << "\n";
    for (const std::string& failure : report.failures) out << "  " << failure << "\n";
  }
  switch (outcome) {
    case drill::DrillOutcome::kPassed:
      return kExitOk;
    case drill::DrillOutcome::kFailed:
      return kExitFailure;
    case drill::DrillOutcome::kCouldNotRun:
      return kExitProbeError;
  }
  return kExitProbeError;
}

}  // namespace shadan

// `shadanctl drill run` before anything is built: argument handling, bad scenarios and policies
// refused with exit 2 without a single command run, missing daemons exit 3 without a command
// run. And the report's JSON (drill_report.h). No root: a fake CommandRunner proves nothing ran.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/drill/drill_report.h"
#include "cli/shadanctl.h"
#include "tests/cli/fake_command_runner.h"

namespace shadan {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

const std::string kSourceDir = SHADAN_SOURCE_DIR;
const std::string kLab = kSourceDir + "/policies/examples/lab.json";

class DrillRunCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("drill_run_cmd_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    report_ = (dir_ / "report").string();
    empty_bin_ = (dir_ / "bin").string();
    fs::create_directories(empty_bin_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  int run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    args.insert(args.begin(), {"drill", "run"});
    return runShadanctl(args, out_, err_, runner_);
  }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // Nothing was built: no command ran and no report directory was made.
  void expectNothingBuilt() {
    EXPECT_TRUE(runner_.calls.empty()) << formatArgv(runner_.calls.front().argv);
    EXPECT_FALSE(fs::exists(report_));
  }

  fs::path dir_;
  std::string report_;
  std::string empty_bin_;
  FakeCommandRunner runner_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(DrillRunCmdTest, NeedsPolicyReportAndAScenario) {
  EXPECT_EQ(run({"--segment", "office", "--report", report_}), kExitUsage);
  EXPECT_NE(err_.str().find("needs --policy POLICY"), std::string::npos) << err_.str();
  EXPECT_EQ(run({"--policy", kLab, "--segment", "office"}), kExitUsage);
  EXPECT_NE(err_.str().find("needs --report DIR"), std::string::npos) << err_.str();
  EXPECT_EQ(run({"--policy", kLab, "--report", report_}), kExitUsage);
  EXPECT_NE(err_.str().find("--scenario FILE, --builtin NAME or --segment SEG"), std::string::npos)
      << err_.str();
  EXPECT_EQ(run({"--policy", kLab, "--segment", "office", "--report", report_, "--name", "Bad!"}),
            kExitUsage);
  EXPECT_NE(err_.str().find("--name"), std::string::npos) << err_.str();
  expectNothingBuilt();
}

TEST_F(DrillRunCmdTest, BadScenarioFileExitsTwoNamingThePathBeforeAnythingIsBuilt) {
  const std::string scenario = write("bad.json", R"({
    "shadan_scenario": 1, "name": "bad", "description": "a probe with a bad proto",
    "steps": [{"do": "expect", "probes": [
      {"from": {"segment": "office"}, "to": {"segment": "servers"}, "proto": "sctp",
       "expected": "open"}]}]})");
  EXPECT_EQ(
      run({"--policy", kLab, "--scenario", scenario, "--report", report_, "--bin-dir", empty_bin_}),
      kExitUsage);
  EXPECT_NE(err_.str().find("bad.json: /steps/0/probes/0/proto"), std::string::npos) << err_.str();
  expectNothingBuilt();
}

TEST_F(DrillRunCmdTest, ScenarioThePolicyRefusesExitsTwoBeforeAnythingIsBuilt) {
  // mgmt is protected in lab.json: never isolated.
  EXPECT_EQ(run({"--policy", kLab, "--segment", "mgmt", "--report", report_}), kExitUsage);
  EXPECT_NE(err_.str().find("builtin:segment-cut: /steps/1/segment"), std::string::npos)
      << err_.str();
  expectNothingBuilt();
  EXPECT_EQ(run({"--policy", kLab, "--segment", "nowhere", "--report", report_, "--json"}),
            kExitUsage);
  const Json answer = Json::parse(out_.str(), nullptr, false);
  ASSERT_TRUE(answer.is_object()) << out_.str();
  EXPECT_EQ(answer["ok"], false);
  expectNothingBuilt();
}

TEST_F(DrillRunCmdTest, MissingDaemonsExitThreeBeforeAnythingIsBuilt) {
  EXPECT_EQ(
      run({"--policy", kLab, "--segment", "office", "--report", report_, "--bin-dir", empty_bin_}),
      kExitProbeError);
  EXPECT_NE(err_.str().find("shadan-controller and shadan-agent not found"), std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find("--bin-dir"), std::string::npos) << err_.str();
  expectNothingBuilt();
}

TEST_F(DrillRunCmdTest, HelpNamesRun) {
  ASSERT_EQ(runShadanctl({"drill", "run", "--help"}, out_, err_, runner_), kExitOk);
  EXPECT_NE(out_.str().find("drill run --policy POLICY"), std::string::npos) << out_.str();
}

drill::DrillReport sampleReport() {
  drill::DrillReport report;
  report.scenario = "segment-cut";
  report.scenario_description = "cut it";
  report.parameters = {{"segment", "office"}};
  report.policy = "lab";
  report.policy_file = "/p/lab.json";
  report.policy_sha256 = "ab";
  report.lab = "d1";
  report.started_at_ms = 1796551200000;  // 2026-12-06T10:00:00.000Z
  report.duration_ms = 4100;
  drill::StepRecord step;
  step.index = 3;
  step.label = "during";
  step.kind = "expect";
  step.phase = "during";
  step.started_ms = 10;
  step.ended_ms = 250;
  report.steps.push_back(step);
  drill::TransitionRecord t;
  t.step = 1;
  t.action = "isolate";
  t.order_id = "o1";
  t.order_sent_ms = 1000;
  t.applied_ms = 1005;
  t.ack_received_ms = 1006;
  t.state = "applied";
  report.gateways["gw"].transitions.push_back(t);
  drill::ProbeRecord cut;
  cut.step = 3;
  cut.from = "office@gw";
  cut.to = "internet";
  cut.proto = "tcp";
  cut.port = 80;
  cut.family = "ipv4";
  cut.phase = "during";
  cut.expected = "cut";
  cut.observed = "open";
  cut.ok = false;
  report.probes.push_back(cut);
  drill::ProbeRecord management = cut;
  management.to = "controller";
  management.to_controller = true;
  management.expected = "open";
  management.ok = true;
  report.probes.push_back(management);
  drill::ProbeRecord flow = cut;
  flow.established = true;
  flow.port.reset();
  flow.observed = "cut";
  flow.ok = true;
  report.probes.push_back(flow);
  report.failures.push_back(drill::probeFailureText(step, cut));
  return report;
}

TEST(DrillReportTest, FollowsTheContract) {
  const drill::DrillReport report = sampleReport();
  const Json doc = Json::parse(drill::drillReportToJson(report).dump());
  EXPECT_EQ(doc["report_version"], 1);
  EXPECT_EQ(doc["verdict"], "fail");
  EXPECT_EQ(doc["started_at"], "2026-12-06T10:00:00.000Z");
  EXPECT_EQ(doc["parameters"], (Json{{"segment", "office"}}));
  EXPECT_EQ(doc["steps"][0]["do"], "expect");
  EXPECT_TRUE(doc["steps"][0]["order_id"].is_null());
  const Json& gw = doc["gateways"]["gw"];
  EXPECT_TRUE(gw["time_to_cut_ms"].is_null());
  EXPECT_TRUE(gw["time_to_restore_ms"].is_null());
  EXPECT_EQ(gw["transitions"][0]["applied_ms"], 1005);
  EXPECT_TRUE(gw["transitions"][0]["dispatch_received_ms"].is_null());
  EXPECT_TRUE(gw["transitions"][0]["first_dropped_probe_ms"].is_null());
  EXPECT_EQ(doc["probes"][0]["port"], 80);
  EXPECT_TRUE(doc["probes"][2]["port"].is_null());
  EXPECT_EQ(
      doc["management"],
      (Json{{"kept_working", true}, {"probes", 1}, {"failures", 0}, {"continuous", nullptr}}));
  EXPECT_EQ(doc["established_flows"], (Json{{"checked", 1}, {"cut", 1}}));
  ASSERT_EQ(doc["failures"].size(), 1u);
  EXPECT_EQ(doc["failures"][0],
            "step 3 (expect, during): office@gw -> internet tcp/80 ipv4: expected cut, observed "
            "open");
  // Every key of report_version 1, in the contract's order.
  std::vector<std::string> keys;
  const nlohmann::ordered_json ordered = drill::drillReportToJson(report);
  for (const auto& [key, value] : ordered.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "report_version", "verdict", "scenario", "scenario_description", "parameters",
                      "policy", "policy_file", "policy_sha256", "lab", "started_at", "duration_ms",
                      "steps", "gateways", "probes", "faults", "management", "established_flows",
                      "audit", "failures"}));
}

// Management kept working only if the continuous watch lost nothing too, unless the scenario
// took the path down on purpose (a stopped controller, a partition).
TEST(DrillReportTest, TheManagementWatchCountsUnlessAFaultExplainsIt) {
  drill::DrillReport report = sampleReport();
  drill::ManagementWatch watch;
  watch.pairs = 1;
  watch.sent = 500;
  watch.ok = 498;
  watch.failed = 2;
  watch.first_failed_ms = 1234;
  report.management_watch = watch;
  Json doc = Json::parse(drill::drillReportToJson(report).dump());
  EXPECT_FALSE(doc["management"]["kept_working"].get<bool>());
  EXPECT_EQ(doc["management"]["continuous"], (Json{{"pairs", 1},
                                                   {"probes", 500},
                                                   {"ok", 498},
                                                   {"failed", 2},
                                                   {"first_failed_ms", 1234},
                                                   {"excluded_because", nullptr}}));
  report.management_watch->excluded_because = "the scenario's stop-controller fault ...";
  doc = Json::parse(drill::drillReportToJson(report).dump());
  EXPECT_TRUE(doc["management"]["kept_working"].get<bool>());
  watch.ok = 500;
  watch.failed = 0;
  watch.first_failed_ms.reset();
  report.management_watch = watch;
  doc = Json::parse(drill::drillReportToJson(report).dump());
  EXPECT_TRUE(doc["management"]["kept_working"].get<bool>());
}

TEST(DrillReportTest, PassesWithoutFailures) {
  drill::DrillReport report = sampleReport();
  report.failures.clear();
  EXPECT_EQ(drill::drillReportToJson(report)["verdict"], "pass");
}

}  // namespace
}  // namespace shadan

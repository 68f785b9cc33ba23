// `shadanctl drill run` end to end: the lab of policies/examples/lab.json, the real controller
// and agent, the segment-cut scenario (exit 0 and a passing report.json), and a scenario with a
// deliberately wrong expectation (exit 1, the report names the step and the probe). Root.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "cli/lab/command_runner.h"

namespace shadan {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

class DrillRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    report_dir_ = fs::temp_directory_path() /
                  ("shadan-drill-test-" + std::to_string(::getpid()) + "-" +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(report_dir_);
  }
  void TearDown() override { fs::remove_all(report_dir_); }

  // Runs shadanctl drill run with `args` after --policy (policies/examples/); returns its exit
  // code.
  int drillRun(const std::vector<std::string>& args, const std::string& lab_name,
               const std::string& policy = "lab.json") {
    std::vector<std::string> argv = {
        std::string(SHADAN_BINARY_DIR) + "/cli/shadanctl",
        "drill",
        "run",
        "--policy",
        std::string(SHADAN_SOURCE_DIR) + "/policies/examples/" + policy,
        "--report",
        report_dir_.string(),
        "--name",
        lab_name};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessCommandRunner runner(std::chrono::seconds(60));
    auto ran = runner.run(argv);
    EXPECT_TRUE(ran.ok()) << (ran.ok() ? "" : ran.error().message);
    if (!ran.ok()) return -1;
    output_ = ran->out + ran->err;
    return ran->exit_code;
  }

  Json report() {
    std::ifstream in(report_dir_ / "report.json");
    return Json::parse(in, nullptr, false);
  }

  fs::path report_dir_;
  std::string output_;
};

TEST_F(DrillRunTest, SegmentCutOnTheLabPolicyPasses) {
  ASSERT_EQ(drillRun({"--segment", "office"}, "dt" + std::to_string(::getpid() % 100000)), 0)
      << output_;
  const Json r = report();
  ASSERT_TRUE(r.is_object()) << output_;
  EXPECT_EQ(r["report_version"], 1);
  EXPECT_EQ(r["verdict"], "pass");
  EXPECT_EQ(r["scenario"], "segment-cut");
  EXPECT_EQ(r["policy"], "lab");
  EXPECT_EQ(r["parameters"]["segment"], "office");
  EXPECT_TRUE(r["failures"].empty());
  EXPECT_TRUE(r["audit"]["verified"].get<bool>()) << r["audit"].dump();
  // Every expect probe held, in every phase, and some of each phase ran.
  std::set<std::string> phases;
  std::set<std::string> udp;  // phase/observed of the UDP probes
  for (const Json& probe : r["probes"]) {
    EXPECT_TRUE(probe["ok"].get<bool>()) << probe.dump();
    EXPECT_EQ(probe["expected"], probe["observed"]) << probe.dump();
    phases.insert(probe["phase"].get<std::string>());
    if (probe["proto"] == "udp") {
      udp.insert(probe["phase"].get<std::string>() + "/" + probe["observed"].get<std::string>());
    }
  }
  EXPECT_EQ(phases, (std::set<std::string>{"before", "during", "after"}));
  EXPECT_EQ(udp, (std::set<std::string>{"before/open", "during/cut", "after/open"}));
  EXPECT_EQ(r["established_flows"]["checked"], r["established_flows"]["cut"]);
  EXPECT_GT(r["established_flows"]["checked"].get<int>(), 0);
  EXPECT_TRUE(r["management"]["kept_working"].get<bool>());
  // Watched all through the cut too: the probes ran and none was lost.
  const Json& watch = r["management"]["continuous"];
  ASSERT_TRUE(watch.is_object()) << r["management"].dump();
  EXPECT_GT(watch["probes"].get<int>(), 0);
  EXPECT_EQ(watch["failed"], 0) << watch.dump();
  // The gateway applied the isolate and the restore, each acked after it was sent.
  const Json& transitions = r["gateways"]["gw"]["transitions"];
  ASSERT_EQ(transitions.size(), 2u) << r["gateways"].dump();
  EXPECT_EQ(transitions[0]["action"], "isolate");
  EXPECT_EQ(transitions[1]["action"], "restore");
  for (const Json& t : transitions) {
    EXPECT_EQ(t["state"], "applied");
    ASSERT_TRUE(t["ack_received_ms"].is_number()) << t.dump();
    EXPECT_GE(t["ack_received_ms"].get<int64_t>(), t["order_sent_ms"].get<int64_t>());
  }
  // The continuous probes saw the cut and the restore, after each order was sent (the values
  // are measurements: docs/benchmarks.md, not asserted here).
  ASSERT_TRUE(transitions[0]["first_dropped_probe_ms"].is_number()) << transitions[0].dump();
  EXPECT_GE(transitions[0]["first_dropped_probe_ms"].get<int64_t>(),
            transitions[0]["order_sent_ms"].get<int64_t>());
  ASSERT_TRUE(transitions[1]["first_open_probe_ms"].is_number()) << transitions[1].dump();
  EXPECT_GE(transitions[1]["first_open_probe_ms"].get<int64_t>(),
            transitions[1]["order_sent_ms"].get<int64_t>());
  EXPECT_TRUE(r["gateways"]["gw"]["time_to_cut_ms"].is_number());
  EXPECT_TRUE(r["gateways"]["gw"]["time_to_restore_ms"].is_number());
  // report.html beside it, with the same numbers.
  std::ifstream html_in(report_dir_ / "report.html");
  const std::string html((std::istreambuf_iterator<char>(html_in)), {});
  ASSERT_FALSE(html.empty());
  EXPECT_NE(html.find(r["gateways"]["gw"]["time_to_cut_ms"].dump()), std::string::npos);
  // Nothing of the lab is left.
  EXPECT_EQ(output_.find("warning: lab down"), std::string::npos) << output_;
}

// The controller dies mid-isolation: the cut holds without it (real probes), and the restore
// after it came back lifts it. Agents and controller run with a lab trust file.
TEST_F(DrillRunTest, ControllerLossOnTheLabPolicyPasses) {
  ASSERT_EQ(drillRun({"--builtin", "controller-loss", "--segment", "office"},
                     "dc" + std::to_string(::getpid() % 100000)),
            0)
      << output_;
  const Json r = report();
  ASSERT_TRUE(r.is_object()) << output_;
  EXPECT_EQ(r["verdict"], "pass");
  EXPECT_TRUE(r["failures"].empty()) << r["failures"].dump();
  EXPECT_TRUE(r["audit"]["verified"].get<bool>()) << r["audit"].dump();
  std::set<std::string> faults;
  for (const Json& fault : r["faults"]) faults.insert(fault["kind"].get<std::string>());
  EXPECT_EQ(faults, (std::set<std::string>{"stop-controller", "start-controller"}));
  // The watch saw the controller go (its probes failed) and says why that does not count.
  const Json& watch = r["management"]["continuous"];
  ASSERT_TRUE(watch.is_object()) << r["management"].dump();
  EXPECT_GT(watch["failed"].get<int>(), 0) << watch.dump();
  EXPECT_TRUE(watch["excluded_because"].is_string()) << watch.dump();
  EXPECT_TRUE(r["management"]["kept_working"].get<bool>());
  // Probes during the controller's absence expected the cut and saw it.
  size_t during = 0;
  for (const Json& probe : r["probes"]) {
    EXPECT_TRUE(probe["ok"].get<bool>()) << probe.dump();
    if (probe["phase"] == "during" && probe["expected"] == "cut") ++during;
  }
  EXPECT_GT(during, 0u);
}

// An alert quarantines a terminal (no isolate step names it): the drill still measures that
// gateway's time to cut from the quarantined host, and the uplink's on its own gateway.
TEST_F(DrillRunTest, Ueda2015MeasuresTheAlertsQuarantineAndTheUplink) {
  ASSERT_EQ(drillRun({"--builtin", "ueda-2015"}, "du" + std::to_string(::getpid() % 100000),
                     "municipality-three-tier.json"),
            0)
      << output_;
  const Json r = report();
  ASSERT_TRUE(r.is_object()) << output_;
  EXPECT_EQ(r["verdict"], "pass") << r["failures"].dump();
  const Json& core = r["gateways"]["core-gw"];
  ASSERT_TRUE(core.is_object()) << r["gateways"].dump();
  bool alert_measured = false;
  for (const Json& t : core["transitions"]) {
    if (t["step"] == 1 && t["action"] == "isolate") {
      alert_measured = t["first_dropped_probe_ms"].is_number();
    }
  }
  EXPECT_TRUE(alert_measured) << core.dump();
  EXPECT_TRUE(core["time_to_cut_ms"].is_number()) << core.dump();
  EXPECT_TRUE(core["time_to_restore_ms"].is_number()) << core.dump();
  EXPECT_TRUE(r["gateways"]["inet-gw"]["time_to_cut_ms"].is_number()) << r["gateways"].dump();
}

TEST_F(DrillRunTest, WrongExpectationExitsOneAndNamesTheStepAndProbe) {
  const std::string scenario =
      std::string(SHADAN_SOURCE_DIR) + "/tests/integration/fixtures/drill-wrong-expectation.json";
  ASSERT_EQ(drillRun({"--scenario", scenario}, "dw" + std::to_string(::getpid() % 100000)), 1)
      << output_;
  const Json r = report();
  ASSERT_TRUE(r.is_object()) << output_;
  EXPECT_EQ(r["verdict"], "fail");
  ASSERT_EQ(r["failures"].size(), 1u) << r["failures"].dump();
  EXPECT_EQ(r["failures"][0],
            "step 2 (expect, during): office@gw -> servers@gw tcp/443 ipv4: expected open, "
            "observed cut");
  // The probe to the controller in the same step held.
  size_t failed = 0;
  for (const Json& probe : r["probes"]) failed += probe["ok"].get<bool>() ? 0 : 1;
  EXPECT_EQ(failed, 1u);
}

}  // namespace
}  // namespace shadan

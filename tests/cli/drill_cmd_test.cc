// `shadanctl drill list|show|check`: outputs and exit codes, through runShadanctl.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/drill/scenario.h"
#include "cli/shadanctl.h"
#include "tests/cli/fake_command_runner.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

const std::string kSourceDir = SHADAN_SOURCE_DIR;
const std::string kLab = kSourceDir + "/policies/examples/lab.json";
const std::string kMunicipality = kSourceDir + "/policies/examples/municipality-three-tier.json";

class DrillCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("drill_cmd_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  int run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return runShadanctl(args, out_, err_, runner_);
  }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
  FakeCommandRunner runner_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(DrillCmdTest, ListNamesEveryBuiltin) {
  ASSERT_EQ(run({"drill", "list"}), kExitOk) << err_.str();
  const std::string text = out_.str();
  for (const char* name : {"segment-cut", "ueda-2015", "worm-containment", "controller-loss"}) {
    EXPECT_NE(text.find(std::string(name) + "  ("), std::string::npos) << name << "\n" << text;
  }
  EXPECT_NE(text.find("parameter segment: the segment to cut (required)"), std::string::npos);
  EXPECT_NE(text.find("written for municipality-three-tier.json"), std::string::npos);

  ASSERT_EQ(run({"drill", "list", "--json"}), kExitOk);
  const Json doc = Json::parse(out_.str());
  ASSERT_EQ(doc["scenarios"].size(), 4u);
  EXPECT_EQ(doc["scenarios"][0]["name"], "segment-cut");
  EXPECT_TRUE(doc["scenarios"][0]["written_for"].is_null());
  EXPECT_FALSE(doc["scenarios"][0]["parameters"]["segment"].contains("default"));
  EXPECT_EQ(doc["scenarios"][1]["parameters"]["segment"]["default"], "lgwan");
  EXPECT_TRUE(err_.str().empty());
}

TEST_F(DrillCmdTest, ShowReplacesParametersAndPrintsAScenarioThatParses) {
  ASSERT_EQ(run({"drill", "show", "segment-cut", "--segment", "office"}), kExitOk) << err_.str();
  EXPECT_TRUE(err_.str().empty());
  const std::string shown = out_.str();
  EXPECT_EQ(shown.find("${"), std::string::npos);
  auto reparsed = drill::parseScenario(shown, "shown.json");
  ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
  EXPECT_EQ(std::get<drill::IsolateStep>(reparsed->steps[1].action).rung.segment, "office");

  ASSERT_EQ(run({"drill", "show", "ueda-2015", "--param", "segment=mynumber", "--json"}), kExitOk);
  const std::string line = out_.str();
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line
  EXPECT_NE(line.find(R"("segment":"mynumber")"), std::string::npos);
}

TEST_F(DrillCmdTest, ShowWithoutAValueShowsTheScenarioAsWritten) {
  ASSERT_EQ(run({"drill", "show", "controller-loss"}), kExitOk);
  EXPECT_NE(out_.str().find("\"${segment}\""), std::string::npos);
  EXPECT_EQ(err_.str(),
            "shadanctl: no value for segment (give --segment S or --param NAME=VALUE); shown as "
            "written\n");
}

TEST_F(DrillCmdTest, ShowRefusesBadNamesAndValues) {
  EXPECT_EQ(run({"drill", "show", "fire-drill"}), kExitUsage);
  EXPECT_NE(err_.str().find("unknown built-in scenario \"fire-drill\" (built-in: segment-cut, "
                            "ueda-2015, worm-containment, controller-loss)"),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(run({"drill", "show", "segment-cut", "--segment", "Bad"}), kExitUsage);
  EXPECT_EQ(err_.str(),
            "shadanctl: builtin:segment-cut: /steps/0/probes/0/from/segment: invalid segment name "
            "\"Bad\": must match ^[a-z0-9][a-z0-9-]{0,31}$ or be \"*\"\n");
  EXPECT_EQ(run({"drill", "show", "segment-cut", "--param", "segment"}), kExitUsage);
  EXPECT_NE(err_.str().find("--param: \"segment\" is not NAME=VALUE"), std::string::npos);
  EXPECT_EQ(run({"drill", "show", "segment-cut", "--param", "colour=red"}), kExitUsage);
  EXPECT_NE(err_.str().find("/parameters: no parameter \"colour\" in this scenario (parameters: "
                            "segment)"),
            std::string::npos)
      << err_.str();
  EXPECT_TRUE(out_.str().empty());
}

TEST_F(DrillCmdTest, CheckPassesABuiltinOnItsPolicy) {
  ASSERT_EQ(run({"drill", "check", "--policy", kLab, "--segment", "office"}), kExitOk)
      << err_.str();
  EXPECT_EQ(out_.str(), "OK: scenario segment-cut (7 steps, 50 probes) against policy lab\n");
  ASSERT_EQ(run({"drill", "check", "--policy", kMunicipality, "--builtin", "ueda-2015", "--json"}),
            kExitOk)
      << err_.str();
  const Json doc = Json::parse(out_.str());
  EXPECT_EQ(doc["ok"], true);
  EXPECT_EQ(doc["scenario"], "ueda-2015");
  EXPECT_EQ(doc["source"], "builtin:ueda-2015");
  EXPECT_EQ(doc["policy"], "municipality-three-tier");
}

TEST_F(DrillCmdTest, CheckNamesTheJsonPathOfABadScenarioAndExits2) {
  const std::string bad = write("bad.json", R"({"shadan_scenario": 1, "name": "bad",
      "description": "d", "steps": [{"do": "wait", "ms": 1}, {"do": "wait", "ms": 1},
      {"do": "wait", "ms": 1}, {"do": "expect", "probes": [{"from": {"segment": "office"},
      "to": {"node": "internet"}, "proto": "gre", "expected": "cut"}]}]})");
  EXPECT_EQ(run({"drill", "check", "--policy", kLab, "--scenario", bad}), kExitUsage);
  EXPECT_EQ(err_.str(),
            "shadanctl: " + bad + ": /steps/3/probes/0/proto: must be one of tcp, udp, icmp\n");
  EXPECT_TRUE(out_.str().empty());

  const std::string unknown = write("unknown.json", R"({"shadan_scenario": 1, "name": "u",
      "description": "d", "steps": [{"do": "isolate", "segment": "lgwan", "ttl_s": 60}]})");
  EXPECT_EQ(run({"drill", "check", "--policy", kLab, "--scenario", unknown, "--json"}), kExitUsage);
  const Json doc = Json::parse(out_.str());
  EXPECT_EQ(doc["ok"], false);
  EXPECT_EQ(doc["error"],
            unknown + ": /steps/0/segment: unknown segment \"lgwan\" in policy \"lab\"");

  EXPECT_EQ(run({"drill", "check", "--policy", kLab, "--segment", "mgmt"}), kExitUsage);
  EXPECT_EQ(err_.str(),
            "shadanctl: builtin:segment-cut: /steps/1/segment: segment mgmt is protected: it is "
            "never isolated\n");

  EXPECT_EQ(run({"drill", "check", "--policy", kLab, "--scenario", dir_.string() + "/none.json"}),
            kExitUsage);
  EXPECT_NE(err_.str().find("none.json: cannot open for reading"), std::string::npos);

  EXPECT_EQ(run({"drill", "check", "--policy", dir_.string() + "/nopolicy.json", "--segment", "a"}),
            kExitUsage);
  EXPECT_NE(err_.str().find("nopolicy.json: cannot open for reading"), std::string::npos);
}

TEST_F(DrillCmdTest, UsageErrorsAreTwoLines) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"drill"}, "'drill' needs a subcommand (subcommands: list, show, check, run, report)"},
      {{"drill", "run2"},
       "unknown drill subcommand 'run2' (subcommands: list, show, check, run, report)"},
      {{"drill", "report", "--out", "d"}, "'drill report' needs --from FILE"},
      {{"drill", "report", "--from", "r.json"}, "'drill report' needs --out DIR"},
      {{"drill", "report", "--from", "r.json", "--out", "d", "--json"},
       "unknown option '--json' for 'drill report'"},
      {{"drill", "list", "extra"}, "'drill list' takes no argument 'extra'"},
      {{"drill", "show"}, "'drill show' needs a NAME"},
      {{"drill", "check", "--segment", "office"}, "'drill check' needs --policy POLICY"},
      {{"drill", "check", "--policy", kLab},
       "needs --scenario FILE, --builtin NAME or --segment SEG"},
      {{"drill", "check", "--policy", kLab, "--scenario", "a.json", "--builtin", "segment-cut"},
       "give one of --scenario FILE and --builtin NAME, not both"},
      {{"drill", "check", "--policy", kLab, "--builtin", "nope"}, "unknown built-in scenario"},
      {{"drill", "check", "--policy", kLab, "--segment", "office", "--param", "segment=servers"},
       "--segment and --param segment=... both give the parameter segment"},
      {{"drill", "check", "--policy", kLab, "--segment", "office", "--param", "a=1", "--param",
        "a=2"},
       "--param: parameter \"a\" given twice"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(run(c.args), kExitUsage) << c.message;
    EXPECT_TRUE(out_.str().empty()) << c.message;
    const std::string err = err_.str();
    EXPECT_EQ(err.rfind("shadanctl: ", 0), 0u) << err;
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
    EXPECT_NE(err.find("\nsee 'shadanctl drill --help'\n"), std::string::npos) << err;
  }
  EXPECT_TRUE(runner_.calls.empty());
}

TEST_F(DrillCmdTest, HelpIsTheUsage) {
  ASSERT_EQ(run({"drill", "--help"}), kExitOk);
  EXPECT_NE(out_.str().find("usage: shadanctl drill <list|show|check|run|report>"),
            std::string::npos);
  const std::string help = out_.str();
  ASSERT_EQ(run({"help", "drill", "check"}), kExitOk);
  EXPECT_EQ(out_.str(), help);
}

// A report as the runner writes it (docs/drills.md "Reading the report"): no gateway, no probe.
const char* const kReport = R"({"report_version": 1, "verdict": "fail", "scenario": "segment-cut",
  "scenario_description": "d", "parameters": {"segment": "office"}, "policy": "lab",
  "policy_file": "policies/examples/lab.json", "policy_sha256":
  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "lab": "d1",
  "started_at": "2026-12-06T10:00:00.000Z", "duration_ms": 812, "steps": [], "gateways": {},
  "probes": [], "faults": [], "management": {"kept_working": true, "probes": 0, "failures": 0},
  "established_flows": {"checked": 0, "cut": 0}, "audit": {"verified": true, "entries": 3,
  "detail": "ok"}, "failures": ["the lab could not be built"], "from_a_newer_runner": 1})";

TEST_F(DrillCmdTest, ReportRendersAReportJsonAgain) {
  const std::string from = write("report.json", kReport);
  const std::string out = (dir_ / "html").string();
  ASSERT_EQ(run({"drill", "report", "--from", from, "--out", out}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "wrote " + out + "/report.json and " + out + "/report.html (verdict fail)\n");
  EXPECT_TRUE(err_.str().empty());
  EXPECT_EQ(std::filesystem::status(out).permissions(), std::filesystem::perms::owner_all);
  std::ifstream json(out + "/report.json");
  EXPECT_EQ(Json::parse(json), Json::parse(kReport));
  std::ifstream html_file(out + "/report.html");
  std::stringstream html;
  html << html_file.rdbuf();
  EXPECT_NE(html.str().find("the lab could not be built"), std::string::npos);
  EXPECT_NE(html.str().find("duration 812 ms"), std::string::npos);

  // Again into the same directory: the files are replaced.
  ASSERT_EQ(run({"drill", "report", "--from", out + "/report.json", "--out", out}), kExitOk)
      << err_.str();
}

TEST_F(DrillCmdTest, ReportRefusesABadReportNamingTheFileAndPointer) {
  Json bad = Json::parse(kReport);
  bad["audit"]["verified"] = "yes";
  const std::string from = write("bad.json", bad.dump());
  const std::string out = (dir_ / "html").string();
  EXPECT_EQ(run({"drill", "report", "--from", from, "--out", out}), kExitUsage);
  EXPECT_EQ(err_.str(), "shadanctl: " + from + ": /audit/verified: must be true or false\n");
  EXPECT_TRUE(out_.str().empty());
  EXPECT_FALSE(std::filesystem::exists(out));  // nothing made for a report that does not pass

  const std::string floats = write("floats.json", R"({"duration_ms": 1.5})");
  EXPECT_EQ(run({"drill", "report", "--from", floats, "--out", out}), kExitUsage);
  EXPECT_NE(err_.str().find(floats + ": /duration_ms: "), std::string::npos) << err_.str();

  EXPECT_EQ(run({"drill", "report", "--from", (dir_ / "none.json").string(), "--out", out}),
            kExitUsage);
  EXPECT_NE(err_.str().find("none.json: cannot open for reading"), std::string::npos);

  // --out names a file: the report cannot be written there.
  const std::string good = write("good.json", kReport);
  EXPECT_EQ(run({"drill", "report", "--from", good, "--out", good}), kExitFailure);
  EXPECT_NE(err_.str().find(good + ": not a directory"), std::string::npos) << err_.str();
}

// docs/drills.md quotes the usage word for word.
TEST_F(DrillCmdTest, TheDocsQuoteTheUsage) {
  std::ifstream in(kSourceDir + "/docs/drills.md");
  ASSERT_TRUE(in) << "docs/drills.md";
  std::stringstream doc;
  doc << in.rdbuf();
  ASSERT_EQ(run({"drill", "--help"}), kExitOk);
  EXPECT_NE(doc.str().find("```\n" + out_.str() + "```\n"), std::string::npos)
      << "docs/drills.md does not quote `shadanctl drill --help`:\n"
      << out_.str();
}

}  // namespace
}  // namespace shadan

#include "cli/shadanctl.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/cli/fake_command_runner.h"

namespace shadan {
namespace {

class ShadanctlTest : public ::testing::Test {
 protected:
  int run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return runShadanctl(args, out_, err_, runner_);
  }
  bool errSays(const std::string& part) const { return err_.str().find(part) != std::string::npos; }

  FakeCommandRunner runner_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(ShadanctlTest, HelpAndVersionSucceed) {
  EXPECT_EQ(run({"--help"}), kExitOk);
  EXPECT_NE(out_.str().find("usage: shadanctl"), std::string::npos);
  EXPECT_EQ(run({"lab", "--help"}), kExitOk);
  EXPECT_NE(out_.str().find("lab probe"), std::string::npos);
  EXPECT_EQ(run({"lab", "probe", "--help"}), kExitOk);
  EXPECT_EQ(run({"--version"}), kExitOk);
  EXPECT_EQ(out_.str(), std::string("shadanctl ") + SHADAN_VERSION + "\n");
  EXPECT_TRUE(runner_.calls.empty());
}

struct UsageCase {
  std::vector<std::string> args;
  const char* expected;  // part of the error message
};

TEST_F(ShadanctlTest, BadArgumentsAreUsageErrorsThatNameTheProblem) {
  const std::vector<UsageCase> cases = {
      {{}, "usage: shadanctl"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"lab"}, "'lab' needs a subcommand"},
      {{"lab", "sideways"}, "unknown lab subcommand 'sideways'"},
      {{"lab", "up", "--name"}, "option --name needs a value"},
      {{"lab", "up", "--name", "Bad_Name"}, "--name: invalid lab name 'Bad_Name'"},
      {{"lab", "up", "--name=waytoolongname"}, "invalid lab name 'waytoolongname'"},
      {{"lab", "up", "--colour"}, "unknown option '--colour' for 'lab up'"},
      {{"lab", "up", "extra"}, "'lab up' takes no argument 'extra'"},
      {{"lab", "up", "--json=yes"}, "option --json takes no value"},
      {{"lab", "up", "--name", "a", "--name", "b"}, "option --name given twice"},
      {{"lab", "up", "--spec", "/nonexistent/spec.json"}, "--spec: cannot open lab spec"},
      {{"lab", "down"}, "'lab down' needs --name NAME"},
      {{"lab", "down", "--name", "x", "--json"}, "unknown option '--json'"},
      {{"lab", "probe", "--name", "x", "--to", "servers"}, "needs --from NODE"},
      {{"lab", "probe", "--name", "x", "--from", "office"}, "needs --to NODE"},
      {{"lab", "probe", "--from", "office", "--to", "servers"}, "needs --name NAME"},
      {{"lab", "probe", "--name", "x", "--from", "desk", "--to", "servers"},
       "--from: no node 'desk' in lab spec segments"},
      {{"lab", "probe", "--name", "x", "--from", "office", "--to", "web"}, "--to: no node 'web'"},
      {{"lab", "probe", "--name", "x", "--from", "office", "--to", "servers", "--tcp", "70000"},
       "--tcp must be a number from 0 to 65535, not '70000'"},
      {{"lab", "probe", "--name", "x", "--from", "office", "--to", "servers", "--tcp", "-1"},
       "--tcp must be a number"},
      {{"lab", "probe", "--name", "x", "--from", "office", "--to", "servers", "--tcp", "80",
        "--icmp"},
       "--tcp and --icmp exclude each other"},
      {{"lab", "probe", "--name", "x", "--from", "office", "--to", "servers", "--timeout", "0"},
       "--timeout must be a number of milliseconds"},
      {{"lab", "probe", "--name", "x", "--from", "office", "--to", "servers", "-7"},
       "unknown option '-7'"},
  };
  for (const UsageCase& usage : cases) {
    std::string joined;
    for (const std::string& arg : usage.args) joined += arg + " ";
    EXPECT_EQ(run(usage.args), kExitUsage) << joined;
    EXPECT_TRUE(errSays(usage.expected)) << joined << "\n" << err_.str();
    EXPECT_TRUE(out_.str().empty()) << joined;
  }
  // No usage error ever reached the system.
  EXPECT_TRUE(runner_.calls.empty());
}

TEST_F(ShadanctlTest, ProbeOfALabThatIsNotRunningIsAProbeError) {
  EXPECT_EQ(run({"lab", "probe", "--name", "nolab", "--from", "office", "--to", "servers"}),
            kExitProbeError);
  EXPECT_TRUE(errSays("lab nolab is not running (no netns sd-nolab-office)")) << err_.str();
}

TEST_F(ShadanctlTest, LabUpPrintsNamespacesAndLeavesTheLabRunning) {
  ASSERT_EQ(run({"lab", "up", "--name", "demo"}), kExitOk) << err_.str();
  EXPECT_EQ(runner_.namespaces.size(), 5u);
  EXPECT_NE(out_.str().find("netns sd-demo-mgmt"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("10.99.0.10/24"), std::string::npos);

  ASSERT_EQ(run({"lab", "down", "--name", "demo"}), kExitOk) << err_.str();
  EXPECT_TRUE(runner_.namespaces.empty());
  EXPECT_EQ(run({"lab", "down", "--name", "demo"}), kExitOk) << "down is idempotent";
}

TEST_F(ShadanctlTest, LabUpJsonDescribesEveryNode) {
  ASSERT_EQ(run({"lab", "up", "--name", "demo", "--json"}), kExitOk) << err_.str();
  const auto json = nlohmann::json::parse(out_.str());
  EXPECT_EQ(json.at("lab"), "demo");
  EXPECT_EQ(json.at("spec"), "segments");
  ASSERT_EQ(json.at("nodes").size(), 5u);
  const auto& gw = json.at("nodes").at(0);
  EXPECT_EQ(gw.at("netns"), "sd-demo-gw");
  EXPECT_EQ(gw.at("role"), "gateway");
  EXPECT_EQ(gw.at("interfaces").size(), 4u);
  EXPECT_EQ(gw.at("interfaces").at(0).at("peer").at("node"), "office");
  EXPECT_EQ(gw.at("interfaces").at(0).at("addresses").at(1), "fd00:20::1/64");
}

TEST_F(ShadanctlTest, LabUpFailureIsReportedAndCleanedUp) {
  runner_.fail_when = [](const std::vector<std::string>& argv) {
    return argv.size() > 4 && argv[4] == "nft";
  };
  EXPECT_EQ(run({"lab", "up", "--name", "demo"}), kExitFailure);
  EXPECT_TRUE(errSays("nft -f -")) << err_.str();
  EXPECT_TRUE(runner_.namespaces.empty());
}

TEST_F(ShadanctlTest, LabUpWithASpecFileUsesIt) {
  ASSERT_EQ(run({"lab", "up", "--name", "two", "--spec",
                 SHADAN_SOURCE_DIR "/cli/lab/specs/two-gateways.json"}),
            kExitOk)
      << err_.str();
  EXPECT_TRUE(runner_.namespaces.contains("sd-two-gw2"));
  EXPECT_TRUE(runner_.namespaces.contains("sd-two-branch"));
}

}  // namespace
}  // namespace shadan

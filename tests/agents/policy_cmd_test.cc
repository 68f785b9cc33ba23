// shadan-agent policy check / policy show: offline, no root, through the whole CLI.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/agents/agent_cli_harness.h"

namespace shadan::agent {
namespace {

using nlohmann::json;
using testing::AgentCliHarness;
using testing::kLabPolicy;

class PolicyCmdTest : public ::testing::Test {
 protected:
  // The lab policy, edited by `edit`, in a temporary file.
  std::string labPolicyWith(const std::function<void(json&)>& edit) {
    std::ifstream in(kLabPolicy);
    json doc = json::parse(in);
    edit(doc);
    const auto path = std::filesystem::temp_directory_path() /
                      ("shadan-policy-cmd-" + std::to_string(::getpid()) + "-" +
                       std::to_string(temp_files_.size()) + ".json");
    std::ofstream(path) << doc.dump(2);
    temp_files_.push_back(path);
    return path.string();
  }

  void TearDown() override {
    for (const auto& path : temp_files_) std::filesystem::remove(path);
  }

  AgentCliHarness cli_;
  std::vector<std::filesystem::path> temp_files_;
};

TEST_F(PolicyCmdTest, CheckAcceptsEveryExamplePolicy) {
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(SHADAN_SOURCE_DIR) + "/policies/examples")) {
    const auto result = cli_.run({"policy", "check", entry.path().string()});
    EXPECT_EQ(result.code, kExitOk) << entry.path() << ": " << result.err;
    EXPECT_NE(result.out.find(entry.path().string() + ": valid policy"), std::string::npos)
        << result.out;
  }
  EXPECT_EQ(cli_.firewall_opens, 0);
  EXPECT_EQ(cli_.state_opens, 0);
}

TEST_F(PolicyCmdTest, CheckNamesTheFilePointerAndReasonOfAnInvalidPolicy) {
  const std::string file =
      labPolicyWith([](json& d) { d["gateways"]["gw"]["borders"].push_back("offfice"); });
  const auto result = cli_.run({"policy", "check", file});
  EXPECT_EQ(result.code, kExitRejected);
  EXPECT_NE(result.err.find("shadan-agent: policy check: " + file +
                            ": /gateways/gw/borders/4: unknown segment \"offfice\""),
            std::string::npos)
      << result.err;
  EXPECT_EQ(result.out, "");

  const auto as_json = cli_.run({"policy", "check", file, "--json"});
  EXPECT_EQ(as_json.code, kExitRejected);
  const json answer = json::parse(as_json.out);
  EXPECT_EQ(answer["ok"], false);
  EXPECT_EQ(answer["file"], file);
  EXPECT_EQ(answer["error"]["code"], "policy");
  EXPECT_NE(answer["error"]["message"].get<std::string>().find("/gateways/gw/borders/4"),
            std::string::npos);
}

TEST_F(PolicyCmdTest, CheckRefusesAFileThatCannotBeRead) {
  const auto result = cli_.run({"policy", "check", "/nonexistent/policy.json"});
  EXPECT_EQ(result.code, kExitRejected);
  EXPECT_NE(result.err.find("/nonexistent/policy.json: cannot open"), std::string::npos)
      << result.err;
}

TEST_F(PolicyCmdTest, CheckPrintsWarningsAndStillSucceeds) {
  const std::string file = labPolicyWith([](json& d) { d.erase("management"); });
  const auto result = cli_.run({"policy", "check", file});
  EXPECT_EQ(result.code, kExitOk) << result.err;
  EXPECT_NE(result.err.find("shadan-agent: warning: " + file + ": /management/always_allow: "),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.out.find("1 warning)"), std::string::npos) << result.out;
}

TEST_F(PolicyCmdTest, CheckWithAGatewayPlansEveryIsolationItBorders) {
  const auto result = cli_.run({"policy", "check", kLabPolicy, "--gateway", "gw"});
  EXPECT_EQ(result.code, kExitOk) << result.err;
  EXPECT_NE(result.out.find("gateway gw: all 20 isolations plan (4 bordered segments x 5 "
                            "profiles)"),
            std::string::npos)
      << result.out;

  const auto as_json = cli_.run({"policy", "check", kLabPolicy, "--gateway", "gw", "--json"});
  ASSERT_EQ(as_json.code, kExitOk) << as_json.err;
  const json answer = json::parse(as_json.out);
  EXPECT_EQ(answer["ok"], true);
  EXPECT_EQ(answer["policy"], "lab");
  EXPECT_EQ(answer["plans_checked"], 20);
  EXPECT_EQ(answer["warnings"], json::array());

  const auto unknown = cli_.run({"policy", "check", kLabPolicy, "--gateway", "gw9"});
  EXPECT_EQ(unknown.code, kExitRejected);
  EXPECT_NE(unknown.err.find(kLabPolicy + ": /gateways: no gateway \"gw9\" (gateways: gw)"),
            std::string::npos)
      << unknown.err;
}

TEST_F(PolicyCmdTest, ShowListsSegmentsProfilesAndGateways) {
  const auto result = cli_.run({"policy", "show", "--policy", kLabPolicy});
  ASSERT_EQ(result.code, kExitOk) << result.err;
  for (const std::string& expected : std::vector<std::string>{
           "policy \"lab\" from " + kLabPolicy,
           "segments:\n",
           "  mgmt: 10.99.0.0/24 fd00:99::/64 [protected] - controller and operators\n",
           "  office: 10.20.0.0/24 fd00:20::/64 - office PCs\n",
           "  internet: (default: every address not in another segment)",
           "profiles:\n",
           "  full: cuts everything but management",
           "  internet-only: cuts peers internet",
           "  forensic: cuts everything but management; keeps 10.99.0.50/32 reachable",
           "  full-blackhole: cuts everything but management; blackhole routes",
           "gateways:\n",
           "  gw: borders office, servers, mgmt, internet\n",
           "  10.99.0.10/32 tcp port 8443 - agent channel to the controller (IPv4)\n",
       }) {
    EXPECT_NE(result.out.find(expected), std::string::npos)
        << "expected \"" << expected << "\" in:\n"
        << result.out;
  }
}

TEST_F(PolicyCmdTest, ShowJsonCarriesTheSameFacts) {
  const auto result = cli_.run({"policy", "show", "--policy", kLabPolicy, "--json"});
  ASSERT_EQ(result.code, kExitOk) << result.err;
  const json doc = json::parse(result.out);
  EXPECT_EQ(doc["command"], "policy show");
  EXPECT_EQ(doc["policy"], "lab");
  EXPECT_EQ(doc["sha256"].get<std::string>().size(), 64u);
  ASSERT_EQ(doc["segments"].size(), 4u);
  const json& mgmt = doc["segments"][1];
  EXPECT_EQ(mgmt["name"], "mgmt");
  EXPECT_EQ(mgmt["protected"], true);
  EXPECT_EQ(mgmt["prefixes"], (json{"10.99.0.0/24", "fd00:99::/64"}));
  EXPECT_EQ(doc["segments"][0]["default"], true);
  ASSERT_EQ(doc["profiles"].size(), 5u);
  EXPECT_EQ(doc["gateways"][0]["id"], "gw");
  EXPECT_EQ(doc["gateways"][0]["borders"], (json{"office", "servers", "mgmt", "internet"}));
}

TEST_F(PolicyCmdTest, ShowNeedsAPolicyAndTakesNoStateOptions) {
  EXPECT_EQ(cli_.run({"policy", "show"}).code, kExitUsage);
  const auto stray = cli_.run({"policy", "show", "--policy", kLabPolicy, "--state-dir", "/s"});
  EXPECT_EQ(stray.code, kExitUsage);
  EXPECT_NE(stray.err.find("policy show takes no --state-dir"), std::string::npos) << stray.err;
  const auto invalid =
      cli_.run({"policy", "show", "--policy", labPolicyWith([](json& d) { d.erase("name"); })});
  EXPECT_EQ(invalid.code, kExitRejected);
  EXPECT_NE(invalid.err.find("missing required key"), std::string::npos) << invalid.err;
}

}  // namespace
}  // namespace shadan::agent

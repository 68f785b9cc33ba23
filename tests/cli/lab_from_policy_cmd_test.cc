// `shadanctl lab up|down|probe --from-policy`: the lab built from a policy, through a fake runner.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/shadanctl.h"
#include "tests/cli/fake_command_runner.h"

namespace shadan {
namespace {

const std::string kPolicy =
    std::string(SHADAN_SOURCE_DIR) + "/policies/examples/municipality-three-tier.json";

class LabFromPolicyCmdTest : public ::testing::Test {
 protected:
  int run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return runShadanctl(args, out_, err_, runner_);
  }
  bool outSays(const std::string& part) const { return out_.str().find(part) != std::string::npos; }
  bool errSays(const std::string& part) const { return err_.str().find(part) != std::string::npos; }

  FakeCommandRunner runner_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(LabFromPolicyCmdTest, UpListsGatewaysHostsControllerAndInternet) {
  ASSERT_EQ(run({"lab", "up", "--from-policy", kPolicy, "--name", "t1"}), kExitOk) << err_.str();
  EXPECT_TRUE(runner_.namespaces.contains("sd-t1-gw-core-gw"));
  EXPECT_TRUE(runner_.namespaces.contains("sd-t1-h-lgwan-core-0"));
  EXPECT_TRUE(outSays("lab t1 is up (policy municipality-three-tier from " + kPolicy + ")"))
      << out_.str();
  EXPECT_TRUE(outSays("shadanctl lab down --from-policy " + kPolicy + " --name t1"));
  EXPECT_TRUE(outSays("  inet-gw  node gw-inet-gw  netns sd-t1-gw-inet-gw\n")) << out_.str();
  EXPECT_TRUE(outSays("    eth0  198.51.100.1/30  2001:db8:ffff::1/64\n")) << out_.str();
  EXPECT_TRUE(outSays("  lgwan  core-gw  fd00:20::2  h-lgwan-core-0\n")) << out_.str();
  EXPECT_TRUE(
      outSays("controller: node controller  netns sd-t1-controller  address 10.99.0.10  "
              "(segment mgmt, gateway core-gw)\n"))
      << out_.str();
  EXPECT_TRUE(outSays("internet: node internet  netns sd-t1-internet\n")) << out_.str();

  ASSERT_EQ(run({"lab", "down", "--from-policy", kPolicy, "--name", "t1"}), kExitOk) << err_.str();
  EXPECT_TRUE(runner_.namespaces.empty());
}

TEST_F(LabFromPolicyCmdTest, JsonHasTheSameAsObjects) {
  ASSERT_EQ(run({"lab", "up", "--from-policy", kPolicy, "--name", "t2", "--json"}), kExitOk)
      << err_.str();
  const auto json = nlohmann::json::parse(out_.str());
  EXPECT_EQ(json["lab"], "t2");
  EXPECT_EQ(json["policy"]["name"], "municipality-three-tier");
  EXPECT_EQ(json["gateways"]["core-gw"]["node"], "gw-core-gw");
  EXPECT_EQ(json["gateways"]["core-gw"]["netns"], "sd-t2-gw-core-gw");
  EXPECT_EQ(json["controller"]["address"], "10.99.0.10");
  EXPECT_EQ(json["controller"]["node"], "controller");
  EXPECT_EQ(json["internet"]["node"], "internet");
  bool lgwan_v6 = false;
  for (const auto& host : json["hosts"]) {
    lgwan_v6 |= host["segment"] == "lgwan" && host["family"] == "ipv6" &&
                host["address"] == "fd00:20::2" && host["gateway"] == "core-gw";
  }
  EXPECT_TRUE(lgwan_v6) << json["hosts"].dump();
  EXPECT_TRUE(json["notes"].is_array());
  EXPECT_FALSE(json["nodes"].empty());
}

TEST_F(LabFromPolicyCmdTest, BadPoliciesAreUsageErrorsThatNameTheFileAndBuildNothing) {
  EXPECT_EQ(run({"lab", "up", "--from-policy", kPolicy, "--spec", "x.json"}), kExitUsage);
  EXPECT_TRUE(errSays("--spec and --from-policy exclude each other")) << err_.str();
  EXPECT_EQ(run({"lab", "up", "--from-policy", "/nonexistent/p.json"}), kExitUsage);
  EXPECT_TRUE(errSays("--from-policy: ")) << err_.str();
  EXPECT_TRUE(errSays("/nonexistent/p.json")) << err_.str();

  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("lab-policy-" + std::to_string(::getpid()) + ".json");
  std::ofstream(file) << R"({"shadan_policy": 1, "name": "nomgmt",
      "segments": {"office": {"prefixes": ["10.20.0.0/24"]}},
      "gateways": {"gw": {"borders": ["office"]}},
      "management": {"always_allow": [{"prefix": "10.99.0.10/32"}]},
      "profiles": {"full": {}}})";
  EXPECT_EQ(run({"lab", "up", "--from-policy", file.string(), "--name", "t3"}), kExitUsage);
  EXPECT_TRUE(errSays("--from-policy: " + file.string() +
                      ": cannot build a lab from this policy: no management segment"))
      << err_.str();
  std::filesystem::remove(file);
  EXPECT_TRUE(runner_.calls.empty());
}

TEST_F(LabFromPolicyCmdTest, ProbeKnowsTheNodesOfThePolicyLab) {
  EXPECT_EQ(run({"lab", "probe", "--from-policy", kPolicy, "--name", "x", "--from", "office",
                 "--to", "controller"}),
            kExitUsage);
  EXPECT_TRUE(errSays("--from: no node 'office' in lab spec municipality-three-tier"))
      << err_.str();
  // Known nodes: the probe goes on to look for the running lab (none here).
  EXPECT_EQ(run({"lab", "probe", "--from-policy", kPolicy, "--name", "nolab", "--from",
                 "h-lgwan-core-0", "--to", "controller"}),
            kExitProbeError);
  EXPECT_TRUE(errSays("lab nolab is not running")) << err_.str();
}

}  // namespace
}  // namespace shadan

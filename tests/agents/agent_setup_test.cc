// Defaults that match the unit: an installed gateway needs no flags. And `init`, the one local
// command that creates a state directory. No root; a temporary "config" directory stands in for
// /etc/shadan.

#include "agents/agent_setup.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "tests/agents/agent_cli_harness.h"

namespace shadan::agent {
namespace {

class AgentSetupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("shadan-setup-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "etc");
    defaults_.config_dir = root_ / "etc";
    defaults_.state_dir = root_ / "state";
    defaults_.getenv = [this](const std::string& name) -> std::optional<std::string> {
      const auto it = environment_.find(name);
      if (it == environment_.end()) return std::nullopt;
      return it->second;
    };
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void write(const std::string& name, const std::string& text) {
    std::ofstream(root_ / "etc" / name) << text;
  }

  AgentCliOptions defaulted(std::vector<std::string> args) {
    auto parsed = parseAgentCliArgs(args);
    EXPECT_TRUE(parsed.ok());
    AgentCliOptions options = std::move(parsed).value();
    applyAgentDefaults(options, defaults_);
    return options;
  }

  std::filesystem::path root_;
  AgentDefaults defaults_;
  std::map<std::string, std::string> environment_;
};

TEST_F(AgentSetupTest, AnInstalledGatewayNeedsNoFlags) {
  write("policy.json", "{}");
  write("trust.json", "{}");
  write("agent.env", "# written by the installer\nSHADAN_GATEWAY=\"core-gw\"\n");
  std::filesystem::create_directories(root_ / "state");
  const AgentCliOptions run = defaulted({"run"});
  EXPECT_EQ(run.policy, (root_ / "etc" / "policy.json").string());
  EXPECT_EQ(run.gateway, "core-gw");
  EXPECT_EQ(run.state_dir, (root_ / "state").string());
  EXPECT_EQ(run.trust, (root_ / "etc" / "trust.json").string());
  // The environment wins over the file, a flag over both.
  environment_["SHADAN_GATEWAY"] = "edge-gw";
  EXPECT_EQ(defaulted({"status"}).gateway, "edge-gw");
  EXPECT_EQ(defaulted({"status", "--gateway", "lab-gw"}).gateway, "lab-gw");
  EXPECT_EQ(defaulted({"status", "--policy", "/x.json"}).policy, "/x.json");
  EXPECT_FALSE(defaulted({"status"}).trust);  // only run, verify and apply-file use trust
}

// policy check FILE on an installed gateway checks FILE alone: the installed policy, this
// gateway's id and its state directory are not slipped in (check refuses options it was not
// given, so they made it fail); policy show reads the installed policy when none is named.
TEST_F(AgentSetupTest, PolicyCommandsTakeNoDefaultsButShowsPolicy) {
  write("policy.json", "{}");
  write("trust.json", "{}");
  write("agent.env", "SHADAN_GATEWAY=core-gw\n");
  std::filesystem::create_directories(root_ / "state");
  const AgentCliOptions check = defaulted({"policy", "check", "new.json"});
  EXPECT_FALSE(check.policy);
  EXPECT_FALSE(check.gateway);
  EXPECT_FALSE(check.state_dir);
  EXPECT_FALSE(check.trust);
  const AgentCliOptions show = defaulted({"policy", "show"});
  EXPECT_EQ(show.policy, (root_ / "etc" / "policy.json").string());
  EXPECT_FALSE(show.state_dir);
}

TEST_F(AgentSetupTest, NothingIsMadeUpWhenTheDefaultsAreNotThere) {
  const AgentCliOptions status = defaulted({"status"});
  EXPECT_FALSE(status.policy);
  EXPECT_FALSE(status.gateway);
  EXPECT_FALSE(status.trust);
  // plan starts from no isolation rather than from a state directory that is not there.
  EXPECT_FALSE(defaulted({"plan"}).state_dir);
  EXPECT_NE(defaultHint("--gateway", defaults_).find("SHADAN_GATEWAY"), std::string::npos);
}

TEST_F(AgentSetupTest, TheGatewayComesFromTheUnitsEnvironmentFile) {
  write("agent.env", "OTHER=1\n  SHADAN_GATEWAY=inet-gw  \n");
  EXPECT_EQ(gatewayFromEnvFile(root_ / "etc" / "agent.env"), "inet-gw");
  write("agent.env", "SHADAN_GATEWAY=\n");
  EXPECT_EQ(gatewayFromEnvFile(root_ / "etc" / "agent.env"), std::nullopt);
  EXPECT_EQ(gatewayFromEnvFile(root_ / "missing.env"), std::nullopt);
}

TEST(AgentSetupCliTest, InitCreatesTheStateDirectoryAndNamesTheAgentKey) {
  testing::AgentCliHarness cli;
  const auto result = cli.run({"init", "--gateway", "gw", "--state-dir", "/srv/shadan"});
  ASSERT_EQ(result.code, kExitOk) << result.err;
  EXPECT_EQ(cli.created_state_dirs, (std::vector<std::filesystem::path>{"/srv/shadan"}));
  EXPECT_NE(result.out.find("agent key "), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("/srv/shadan/agent.pub"), std::string::npos) << result.out;
  EXPECT_EQ(cli.run({"init", "--state-dir", "/srv/shadan"}).code, kExitUsage);  // no gateway
}

TEST(AgentSetupCliTest, RunFlagsBecomeDaemonOptionsOrAUsageError) {
  AgentCliOptions options;
  options.policy = "/p.json";
  options.gateway = "gw";
  options.state_dir = "/s";
  options.controller = "[fd00::10]:8444";
  options.tls_dir = "/tls";
  options.controller_pin = "ab";
  auto translated = daemonOptionsFrom(options);
  ASSERT_TRUE(translated.ok()) << translated.error().message;
  EXPECT_EQ(translated->controller->host, "fd00::10");
  EXPECT_EQ(translated->controller->port, 8444);
  EXPECT_TRUE(translated->controller->more.empty());
  options.controller = "ctl:99999";
  EXPECT_FALSE(daemonOptionsFrom(options).ok());

  // Several controllers of one deployment, dialled in turn.
  options.controller = "ctl-a:8444,[fd00::11]:8444,ctl-c:9444";
  translated = daemonOptionsFrom(options);
  ASSERT_TRUE(translated.ok()) << translated.error().message;
  EXPECT_EQ(translated->controller->host, "ctl-a");
  ASSERT_EQ(translated->controller->more.size(), 2u);
  EXPECT_EQ(translated->controller->more[0].host, "fd00::11");
  EXPECT_EQ(translated->controller->more[1].port, 9444);
  EXPECT_EQ(translated->controller->text(), "ctl-a:8444,[fd00::11]:8444,ctl-c:9444");
  for (const char* bad :
       {"ctl-a:8444,", "ctl-a:8444,ctl-b", ",ctl-a:8444", "a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1"}) {
    options.controller = bad;
    auto refused = daemonOptionsFrom(options);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.error().message.find("--controller"), std::string::npos)
        << refused.error().message;
  }
}

}  // namespace
}  // namespace shadan::agent

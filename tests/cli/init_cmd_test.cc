// shadanctl init controller / init agent: the configuration written is one the daemons accept
// (checked with their own check-config), nothing is overwritten, and a failed init leaves
// nothing behind.

#include "cli/init_cmd.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "agents/agent_cli.h"
#include "cli/ca_cmd.h"
#include "cli/shadanctl.h"
#include "common/clock.h"
#include "controller/config_check.h"
#include "tests/agents/agent_cli_harness.h"

namespace shadan {
namespace {

namespace fs = std::filesystem;

const std::string kPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";

struct InitRun {
  int code;
  std::string out;
  std::string err;
};

InitRun init(const std::vector<std::string>& args) {
  std::ostringstream out;
  std::ostringstream err;
  std::vector<std::string> all = {"init"};
  all.insert(all.end(), args.begin(), args.end());
  const int code = runInitCommand(all, out, err);
  return {code, out.str(), err.str()};
}

mode_t modeOf(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

class InitCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shadan-init-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
  }
  void TearDown() override { fs::remove_all(root_); }

  InitRun initController() {
    return init({"controller", "--policy", kPolicy, "--name", "ctl.example", "--ip", "192.0.2.10",
                 "--dir", (root_ / "ctl").string(), "--state-dir", (root_ / "state").string(),
                 "--json"});
  }

  fs::path root_;
};

TEST_F(InitCmdTest, TheControllersConfigurationPassesItsCheckConfig) {
  const InitRun run = initController();
  ASSERT_EQ(run.code, kExitOk) << run.err;
  const auto answer = nlohmann::json::parse(run.out);
  const fs::path dir = root_ / "ctl";
  auto checked =
      controller::checkControllerConfig((dir / "controller.json").string(), SystemClock());
  ASSERT_TRUE(checked.ok()) << checked.error().message;
  EXPECT_EQ((*checked)["api_listen"], "192.0.2.10:8443");
  EXPECT_EQ((*checked)["tokens"]["operator"], 1);
  EXPECT_EQ(answer["controller_pin"].get<std::string>().size(), 64u);
  // Secrets: the CA's key never leaves its 0700 directory; the token is 0600.
  EXPECT_EQ(modeOf(dir / "ca"), 0700u);
  EXPECT_EQ(modeOf(dir / "ca" / "ca.key"), 0600u);
  EXPECT_EQ(modeOf(dir / "tokens"), 0700u);
  EXPECT_EQ(modeOf(dir / "tokens" / "admin.token"), 0600u);
  // The controller's key loaders refuse a private key anyone else could read.
  EXPECT_EQ(modeOf(dir / "controller.key"), 0600u);
  EXPECT_EQ(modeOf(dir / "signing.key"), 0600u);
  EXPECT_EQ(modeOf(dir / "controller.json"), 0600u);
}

TEST_F(InitCmdTest, ASecondInitOverwritesNothingAndAFailedOneLeavesNothing) {
  ASSERT_EQ(initController().code, kExitOk);
  const auto before = fs::last_write_time(root_ / "ctl" / "controller.json");
  const InitRun again = initController();
  EXPECT_EQ(again.code, kExitFailure);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
  EXPECT_EQ(fs::last_write_time(root_ / "ctl" / "controller.json"), before);

  // A bad --ip fails at "ca issue", after the CA was made: nothing is left.
  const InitRun bad = init({"controller", "--policy", kPolicy, "--name", "ctl.example", "--ip",
                            "not-an-ip", "--dir", (root_ / "other").string()});
  EXPECT_EQ(bad.code, kExitFailure);
  EXPECT_NE(bad.err.find("nothing was left behind"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(root_ / "other")) << "a failed init left files";
  EXPECT_EQ(init({"controller", "--name", "x"}).code, kExitUsage);
  EXPECT_EQ(init({"frobnicate"}).code, kExitUsage);
}

TEST_F(InitCmdTest, TheAgentsConfigurationPassesItsCheckConfig) {
  ASSERT_EQ(initController().code, kExitOk);
  const fs::path ctl = root_ / "ctl";
  // The gateway's certificate, as the controller host makes it.
  std::ostringstream out;
  std::ostringstream err;
  ASSERT_EQ(runCaCommand({"ca", "issue", "--dir", (ctl / "ca").string(), "--name", "gw", "--client",
                          "--tls-dir", (root_ / "gw-tls").string()},
                         out, err),
            kExitOk)
      << err.str();
  std::ostringstream pin_out;
  ASSERT_EQ(runCaCommand({"ca", "pin", (ctl / "controller.crt").string()}, pin_out, err), kExitOk);
  std::string controller_pin = pin_out.str();
  controller_pin.pop_back();

  const fs::path gw = root_ / "gw";
  fs::create_directories(gw);
  std::ofstream(gw / "agent.env") << "SHADAN_GATEWAY=\n";  // as the package ships it
  const InitRun run =
      init({"agent", "--gateway", "gw", "--controller", "192.0.2.10:8444", "--pin", controller_pin,
            "--policy", kPolicy, "--trust", (ctl / "trust.json").string(), "--tls-from",
            (root_ / "gw-tls").string(), "--dir", gw.string()});
  ASSERT_EQ(run.code, kExitOk) << run.err;
  EXPECT_EQ(modeOf(gw / "tls"), 0700u);
  EXPECT_EQ(modeOf(gw / "tls" / "agent.key"), 0600u);
  std::ifstream env_file(gw / "agent.env");
  std::stringstream env;
  env << env_file.rdbuf();
  EXPECT_NE(env.str().find("SHADAN_GATEWAY=gw\n"), std::string::npos) << env.str();
  const std::string opts_prefix = "SHADAN_AGENT_OPTS=";
  const size_t at = env.str().find(opts_prefix);
  ASSERT_NE(at, std::string::npos);
  std::istringstream opts(env.str().substr(at + opts_prefix.size(),
                                           env.str().find('\n', at) - at - opts_prefix.size()));

  // The agent's own check-config, with agent.env's options, as the unit passes them.
  std::vector<std::string> args = {"check-config",
                                   "--policy",
                                   (gw / "policy.json").string(),
                                   "--gateway",
                                   "gw",
                                   "--state-dir",
                                   (root_ / "agent-state").string(),
                                   "--trust",
                                   (gw / "trust.json").string()};
  for (std::string word; opts >> word;) args.push_back(word);
  agent::testing::AgentCliHarness cli;
  const auto checked = cli.run(args);
  EXPECT_EQ(checked.code, agent::kExitOk) << checked.err;

  // The wrong gateway's certificate is refused, and nothing is written.
  const InitRun wrong =
      init({"agent", "--gateway", "edge", "--controller", "192.0.2.10:8444", "--pin",
            controller_pin, "--policy", kPolicy, "--trust", (ctl / "trust.json").string(),
            "--tls-from", (root_ / "gw-tls").string(), "--dir", (root_ / "edge").string()});
  EXPECT_EQ(wrong.code, kExitFailure);
  EXPECT_FALSE(fs::exists(root_ / "edge"));
}

}  // namespace
}  // namespace shadan

// shadan-agent check-config: what `run` would load, loaded and checked without starting, over
// the CLI's fakes: no firewall, no state store, no daemon is touched, and each broken piece is
// named.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/ca_cmd.h"
#include "common/ed25519.h"
#include "common/trust.h"
#include "tests/agents/agent_cli_harness.h"

namespace shadan::agent {
namespace {

using testing::AgentCliHarness;
using testing::kLabPolicy;

class AgentCheckConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shadan-check-config-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    ASSERT_TRUE(initCertificateAuthority(path("tls"), "lab-ca").ok());
    auto agent =
        issueCertificate(path("tls"), CertificateRequest{"gw", false, {}, {}}, path("tls/agent"));
    ASSERT_TRUE(agent.ok()) << agent.error().message;
    auto other =
        issueCertificate(path("tls"), CertificateRequest{"gw-2", false, {}, {}}, path("other"));
    ASSERT_TRUE(other.ok()) << other.error().message;
    Ed25519Signer controller(Ed25519KeyPair::generate());
    writeTrust("trust.json", controller, "2099-01-01T00:00:00Z");
    writeTrust("expired.json", controller, "2020-01-01T00:00:00Z");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void writeTrust(const std::string& name, const Ed25519Signer& key, const std::string& expires) {
    const nlohmann::json trust = {{"shadan_trust", 1},
                                  {"version", 2},
                                  {"expires_at", expires},
                                  {"keys",
                                   {{{"keyid", key.keyId()},
                                     {"public_key", base64Encode(key.publicKey())},
                                     {"identity", "controller"},
                                     {"roles", {"controller"}}}}}};
    std::ofstream(path(name)) << trust.dump();
  }
  std::vector<std::string> args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> all = {"check-config", "--policy", kLabPolicy,
                                    "--gateway",    "gw",       "--state-dir",
                                    path("state"),  "--trust",  path("trust.json")};
    all.insert(all.end(), extra.begin(), extra.end());
    return all;
  }
  std::vector<std::string> withController(std::vector<std::string> extra = {}) const {
    std::vector<std::string> all = {"--controller", "10.99.0.10:8444",  "--tls-dir",
                                    path("tls"),    "--controller-pin", std::string(64, 'a')};
    all.insert(all.end(), extra.begin(), extra.end());
    return args(all);
  }

  std::filesystem::path dir_;
};

TEST_F(AgentCheckConfigTest, AGoodConfigurationIsDescribedAndNothingIsTouched) {
  AgentCliHarness cli;
  auto run = cli.run(withController({"--json"}));
  ASSERT_EQ(run.code, kExitOk) << run.err;
  const auto answer = nlohmann::json::parse(run.out);
  EXPECT_EQ(answer["gateway"], "gw");
  EXPECT_GT(answer["policy"]["isolations_planned"].get<int>(), 0);
  EXPECT_EQ(answer["trust"]["version"], 2);
  EXPECT_EQ(answer["controller"]["address"], "10.99.0.10:8444");
  EXPECT_EQ(answer["state_dir"]["state"], "absent");
  // Nothing opened, nothing made.
  EXPECT_EQ(cli.firewall_opens, 0);
  EXPECT_EQ(cli.state_opens, 0);
  EXPECT_FALSE(std::filesystem::exists(path("state")));

  run = cli.run(args());
  ASSERT_EQ(run.code, kExitOk) << run.err;
  EXPECT_NE(run.out.find("ok: shadan-agent run would start"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("controller none (standalone)"), std::string::npos) << run.out;
}

TEST_F(AgentCheckConfigTest, EachBrokenPieceIsNamed) {
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string expected;
  };
  std::filesystem::create_directory(path("wrong-agent"));
  std::filesystem::copy_file(path("tls/ca.crt"), path("wrong-agent/ca.crt"));
  std::filesystem::copy_file(path("other.key"), path("wrong-agent/agent.key"));
  std::filesystem::copy_file(path("other.crt"), path("wrong-agent/agent.crt"));
  const std::vector<Case> cases = {
      {{"check-config", "--policy", path("none.json"), "--gateway", "gw", "--state-dir",
        path("state")},
       kExitRejected,
       "none.json"},
      {{"check-config", "--policy", kLabPolicy, "--gateway", "nope", "--state-dir", path("state")},
       kExitRejected,
       "gateway \"nope\" is not in policy"},
      {{"check-config", "--policy", kLabPolicy, "--gateway", "gw", "--state-dir", path("state"),
        "--trust", path("expired.json")},
       kExitRejected,
       "has expired"},
      {{"check-config", "--policy", kLabPolicy, "--gateway", "gw", "--state-dir", path("state"),
        "--controller", "10.99.0.10:8444", "--tls-dir", path("tls"), "--controller-pin",
        std::string(64, 'a')},
       kExitRejected,
       "a controller needs --trust"},
      {args({"--controller", "10.99.0.10:8444", "--tls-dir", path("missing"), "--controller-pin",
             std::string(64, 'a')}),
       kExitRejected, "missing"},
      {args({"--controller", "10.99.0.10:8444", "--tls-dir", path("wrong-agent"),
             "--controller-pin", std::string(64, 'a')}),
       kExitRejected, "is for \"gw-2\", not agent \"gw\""},
      {args({"--controller", "10.99.0.10"}), kExitUsage, "--controller must be HOST:PORT"},
      {args({"--ttl", "5m"}), kExitUsage, "check-config takes the options of run"},
      {{"check-config", "--policy", kLabPolicy, "--gateway", "gw", "--state-dir", kLabPolicy},
       kExitRejected,
       "is not a directory"},
  };
  for (const Case& c : cases) {
    AgentCliHarness cli;
    const auto run = cli.run(c.args);
    std::string line;
    for (const auto& arg : c.args) line += arg + " ";
    EXPECT_EQ(run.code, c.code) << line << "\n" << run.err;
    EXPECT_NE(run.err.find(c.expected), std::string::npos) << line << "\n" << run.err;
    EXPECT_EQ(cli.firewall_opens, 0) << line;
    EXPECT_EQ(cli.state_opens, 0) << line;
  }
}

}  // namespace
}  // namespace shadan::agent

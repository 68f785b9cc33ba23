// shadan-controller check-config (controller/config_check.h): a configuration is loaded and
// cross-checked as run would, each broken file named, and nothing is created or bound.

#include "controller/config_check.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cli/ca_cmd.h"
#include "controller/controller_cli.h"
#include "tests/controller/controller_test_support.h"

namespace shadan::testing {
namespace {

class ConfigCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_.path();
    ASSERT_TRUE(initCertificateAuthority(path("ca"), "test-ca").ok());
    auto server = issueCertificate(
        path("ca"), CertificateRequest{"controller", true, {}, {"127.0.0.1"}}, path("controller"));
    ASSERT_TRUE(server.ok()) << server.error().message;
    auto agent =
        issueCertificate(path("ca"), CertificateRequest{"gw-1", false, {}, {}}, path("agent"));
    ASSERT_TRUE(agent.ok()) << agent.error().message;
    write("policy.json", kTestPolicy);
    const Ed25519KeyPair controller_key = keyFromByte(7);
    ASSERT_TRUE(writePrivateKeyFile(path("signing.key"), controller_key, "controller").ok());
    Ed25519Signer signer(keyFromByte(7));
    Ed25519Signer stranger(keyFromByte(8));
    writeTrust("trust.json", signer, "2099-01-01T00:00:00Z");
    writeTrust("stranger-trust.json", stranger, "2099-01-01T00:00:00Z");
    writeTrust("expired-trust.json", signer, "2020-01-01T00:00:00Z");
    config_ = {{"api", {{"listen", "127.0.0.1:8443"}}},
               {"agent_hub", {{"listen", "127.0.0.1:8444"}}},
               {"tls",
                {{"ca", path("ca/ca.crt")},
                 {"cert", path("controller.crt")},
                 {"key", path("controller.key")}}},
               {"policy", path("policy.json")},
               {"trust", path("trust.json")},
               {"signing_key", path("signing.key")},
               {"state_dir", path("state")},
               {"tokens",
                {{{"name", "sato"}, {"role", "operator"}, {"sha256", std::string(64, 'a')}},
                 {{"name", "ids"},
                  {"role", "detector"},
                  {"sha256", std::string(64, 'b')},
                  {"segments", {"lgwan"}}}}}};
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name)) << text;
  }
  void writeTrust(const std::string& name, const Ed25519Signer& key, const std::string& expires) {
    const nlohmann::json trust = {{"shadan_trust", 1},
                                  {"version", 3},
                                  {"expires_at", expires},
                                  {"keys", {keyEntry(key, "controller", {"controller"})}}};
    write(name, trust.dump());
  }
  // The config with `pointer` set to `value`, written; its path.
  std::string configWith(const std::string& pointer, const nlohmann::json& value) {
    nlohmann::json config = config_;
    if (!pointer.empty()) config[nlohmann::json::json_pointer(pointer)] = value;
    write("controller.json", config.dump(2));
    return path("controller.json");
  }
  std::string check(const std::string& config_path) {
    auto checked = checkControllerConfig(config_path, clock_);
    return checked.ok() ? "" : checked.error().message;
  }

  TempDir temp_;
  std::filesystem::path dir_;
  nlohmann::json config_;
  SystemClock clock_;
};

TEST_F(ConfigCheckTest, AGoodConfigurationIsDescribedAndNothingIsCreated) {
  auto checked = checkControllerConfig(configWith("", nullptr), clock_);
  ASSERT_TRUE(checked.ok()) << checked.error().message;
  EXPECT_EQ((*checked)["policy"]["gateways"], 2);
  EXPECT_EQ((*checked)["trust"]["version"], 3);
  EXPECT_EQ((*checked)["signing_key"]["keyid"], Ed25519Signer(keyFromByte(7)).keyId());
  EXPECT_EQ((*checked)["tokens"]["operator"], 1);
  EXPECT_EQ((*checked)["tokens"]["detector"], 1);
  EXPECT_EQ((*checked)["state_dir"]["state"], "absent");
  EXPECT_FALSE(std::filesystem::exists(path("state"))) << "check-config made the state directory";
  std::filesystem::create_directory(path("state"));
  EXPECT_EQ((*checkControllerConfig(path("controller.json"), clock_))["state_dir"]["state"],
            "exists");
  EXPECT_TRUE(std::filesystem::is_empty(path("state"))) << "check-config wrote into the store";
}

TEST_F(ConfigCheckTest, EachBrokenFileIsNamed) {
  struct Case {
    std::string pointer;
    nlohmann::json value;
    std::string expected;  // in the message
  };
  const std::vector<Case> cases = {
      {"/policy", path("missing.json"), "policy"},
      {"/trust", path("expired-trust.json"), "has expired"},
      {"/trust", path("stranger-trust.json"), "is not a controller key in the trust file"},
      {"/signing_key", path("missing.key"), "signing_key"},
      {"/tls/key", path("agent.key"), "tls"},
      {"/tls/ca", path("missing-ca.crt"), "tls"},
      {"/state_dir", path("no/such/dir"), "nor does its parent"},
      {"/state_dir", path("policy.json"), "not a directory"},
      {"/tokens/1/segments", nlohmann::json::array({"atlantis"}), "unknown segment atlantis"},
      {"/api/listen", "localhost:8443", "api"},
  };
  for (const Case& c : cases) {
    const std::string message = check(configWith(c.pointer, c.value));
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << c.pointer << " = " << c.value << ": \"" << message << "\"";
  }
}

TEST_F(ConfigCheckTest, TheCommandSaysOkOrWhatIsWrongAndNeverRuns) {
  std::ostringstream out;
  std::ostringstream err;
  std::istringstream in;
  ControllerCliEnv env;
  env.in = &in;
  bool ran = false;
  env.run = [&ran](const std::string&) {
    ran = true;
    return 0;
  };
  const std::string good = configWith("", nullptr);
  EXPECT_EQ(runControllerCli({"check-config", "--config", good}, out, err, env), kCliExitOk)
      << err.str();
  EXPECT_NE(out.str().find(good + ": ok"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("operator 1"), std::string::npos) << out.str();
  out.str("");
  EXPECT_EQ(runControllerCli({"check-config", "--json", "--config=" + good}, out, err, env),
            kCliExitOk);
  EXPECT_EQ(nlohmann::json::parse(out.str())["ok"], true);

  out.str("");
  err.str("");
  const std::string bad = configWith("/trust", path("expired-trust.json"));
  EXPECT_EQ(runControllerCli({"check-config", "--config", bad, "--json"}, out, err, env),
            kCliExitFailure);
  EXPECT_NE(err.str().find("has expired"), std::string::npos) << err.str();
  EXPECT_EQ(nlohmann::json::parse(out.str())["ok"], false);
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace shadan::testing

#include "cli/trust_cmd.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/shadanctl.h"
#include "common/ed25519.h"
#include "common/trust.h"
#include "tests/fakes/fake_backends.h"

namespace shadan {
namespace {

// The fake clock starts at a fixed instant (tests/fakes/fake_backends.h).
constexpr int64_t kNowMs = 1795000000000;

class TrustCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("shadan-trust-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ASSERT_TRUE(writePublicKeyFile(path("controller.pub"), controller_.publicKey()).ok());
    ASSERT_TRUE(writePublicKeyFile(path("sato.pub"), sato_.publicKey()).ok());
    ASSERT_TRUE(writePublicKeyFile(path("gw.pub"), gw_.publicKey()).ok());
    ASSERT_TRUE(writePublicKeyFile(path("ito.pub"), ito_.publicKey()).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  int run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    args.insert(args.begin(), "trust");
    return runTrustCommand(args, out_, err_, clock_);
  }

  int init() {
    return run({"init", "--out", path("trust.json"), "--pub", path("controller.pub"), "--identity",
                "controller", "--role", "controller"});
  }

  int add(const std::string& pub, const std::string& identity, const std::string& roles) {
    return run(
        {"add", path("trust.json"), "--pub", path(pub), "--identity", identity, "--role", roles});
  }

  std::string read(const std::string& name) const {
    std::ifstream in(path(name));
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  Ed25519KeyPair controller_ = Ed25519KeyPair::generate();
  Ed25519KeyPair sato_ = Ed25519KeyPair::generate();
  Ed25519KeyPair gw_ = Ed25519KeyPair::generate();
  Ed25519KeyPair ito_ = Ed25519KeyPair::generate();
  testing::FakeClock clock_;
  std::filesystem::path dir_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(TrustCmdTest, InitWritesAFileTheAgentsParserAccepts) {
  ASSERT_EQ(init(), kExitOk) << err_.str();
  auto trust = loadTrustFile(path("trust.json"));
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_EQ(trust->version, 1);
  ASSERT_EQ(trust->keys.size(), 1u);
  EXPECT_EQ(trust->keys[0].identity, "controller");
  EXPECT_EQ(trust->keys[0].keyid, controller_.keyId());
  EXPECT_TRUE(trust->keys[0].hasRole(TrustRole::kController));
  // Default validity: one year from now.
  EXPECT_EQ(trust->expires_at_ms, kNowMs + int64_t{365} * 24 * 3600 * 1000);
  EXPECT_EQ(trust->thresholds.restore_operators, 2);
  struct stat info {};
  ASSERT_EQ(::stat(path("trust.json").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u);
}

TEST_F(TrustCmdTest, InitNeverOverwrites) {
  ASSERT_EQ(init(), kExitOk);
  const std::string before = read("trust.json");
  EXPECT_EQ(init(), kExitFailure);
  EXPECT_NE(err_.str().find("already exists"), std::string::npos) << err_.str();
  EXPECT_EQ(read("trust.json"), before);
}

TEST_F(TrustCmdTest, AddRaisesTheVersionEveryTime) {
  ASSERT_EQ(init(), kExitOk);
  ASSERT_EQ(run({"add", path("trust.json"), "--pub", path("sato.pub"), "--identity", "op:sato",
                 "--role", "operator,breakglass"}),
            kExitOk)
      << err_.str();
  ASSERT_EQ(run({"add", path("trust.json"), "--pub", path("gw.pub"), "--identity", "agent:gw",
                 "--role", "agent"}),
            kExitOk)
      << err_.str();
  auto trust = loadTrustFile(path("trust.json"));
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_EQ(trust->version, 3);
  const TrustKey* sato = trust->findKey(sato_.keyId());
  ASSERT_NE(sato, nullptr);
  EXPECT_EQ(sato->identity, "op:sato");
  EXPECT_TRUE(sato->hasRole(TrustRole::kOperator));
  EXPECT_TRUE(sato->hasRole(TrustRole::kBreakglass));
  EXPECT_NE(trust->findKey(gw_.keyId()), nullptr);
}

TEST_F(TrustCmdTest, AnEditTheParserWouldRefuseLeavesTheFileAlone) {
  ASSERT_EQ(init(), kExitOk);
  const std::string before = read("trust.json");
  // An agent identity holding an operator role breaks the separation of authority.
  EXPECT_EQ(run({"add", path("trust.json"), "--pub", path("gw.pub"), "--identity", "agent:gw",
                 "--role", "agent,operator"}),
            kExitFailure);
  EXPECT_NE(err_.str().find("nothing written"), std::string::npos) << err_.str();
  EXPECT_EQ(read("trust.json"), before);
  // The same key twice.
  EXPECT_EQ(run({"add", path("trust.json"), "--pub", path("controller.pub"), "--identity", "op:x",
                 "--role", "operator"}),
            kExitFailure);
  EXPECT_NE(err_.str().find("already listed"), std::string::npos) << err_.str();
  EXPECT_EQ(read("trust.json"), before);
}

TEST_F(TrustCmdTest, UsageErrorsNameTheProblem) {
  EXPECT_EQ(run({"init", "--out", path("t.json")}), kExitUsage);
  EXPECT_NE(err_.str().find("--pub"), std::string::npos) << err_.str();
  EXPECT_EQ(run({"add", "--pub", path("sato.pub"), "--identity", "op:sato", "--role", "operator"}),
            kExitUsage);
  EXPECT_NE(err_.str().find("exactly one FILE"), std::string::npos) << err_.str();
  EXPECT_EQ(run({"frobnicate"}), kExitUsage);
  EXPECT_EQ(run({"init", "--out", path("t.json"), "--bogus", "1"}), kExitUsage);
  EXPECT_NE(err_.str().find("--bogus"), std::string::npos) << err_.str();
  EXPECT_FALSE(std::filesystem::exists(path("t.json")));
}

TEST_F(TrustCmdTest, ShowReportsExpiry) {
  ASSERT_EQ(run({"init", "--out", path("trust.json"), "--pub", path("controller.pub"), "--identity",
                 "controller", "--role", "controller", "--expires-in", "1h"}),
            kExitOk);
  EXPECT_EQ(run({"show", path("trust.json")}), kExitOk);
  EXPECT_NE(out_.str().find("controller"), std::string::npos);
  clock_.advance(std::chrono::hours(2));
  EXPECT_EQ(run({"show", path("trust.json"), "--json"}), kExitFailure);
  EXPECT_NE(out_.str().find("\"expired\":true"), std::string::npos) << out_.str();
}

// The identity rule of docs/operations.md "Keys": every identity kind x role, through both
// `trust add` and `trust init`. A refusal names the identity and the role and writes nothing.
TEST_F(TrustCmdTest, IdentityRoleRuleDecidesEveryAddAndInit) {
  struct Case {
    std::string identity;
    std::string roles;
    bool accepted;
    std::string refused_role;  // the role the refusal names
  };
  const std::vector<Case> cases = {
      {"op:sato", "operator", true, ""},
      {"op:sato", "operator,breakglass", true, ""},
      {"op:sato", "breakglass,operator", true, ""},
      {"op:sato", "breakglass", false, "breakglass"},
      {"op:sato", "controller", false, "controller"},
      {"op:sato", "agent", false, "agent"},
      {"op:sato", "operator,agent", false, "agent"},
      {"agent:gw", "agent", true, ""},
      {"agent:gw", "operator", false, "operator"},
      {"agent:gw", "breakglass", false, "breakglass"},
      {"agent:gw", "controller", false, "controller"},
      {"agent:gw", "agent,operator", false, "operator"},
      {"controller", "controller", true, ""},
      {"controller", "operator", false, "operator"},
      {"controller", "operator,breakglass", false, "operator"},
      {"controller", "agent", false, "agent"},
      {"sato", "operator", false, "operator"},
      {"sato", "controller", false, "controller"},
      {"sato", "agent", false, "agent"},
      {"ctl", "controller", false, "controller"},
      {"agent:", "agent", false, "agent"},
      {"op:", "operator", false, "operator"},
      {"agent", "agent", false, "agent"},
  };
  for (const Case& c : cases) {
    const std::string what = c.identity + " as " + c.roles;
    std::filesystem::remove(path("trust.json"));
    ASSERT_EQ(init(), kExitOk) << err_.str();
    const std::string before = read("trust.json");
    const int code = add("sato.pub", c.identity, c.roles);
    if (c.accepted) {
      EXPECT_EQ(code, kExitOk) << what << ": " << err_.str();
      auto trust = loadTrustFile(path("trust.json"));
      ASSERT_TRUE(trust.ok()) << what << ": " << trust.error().message;
      ASSERT_NE(trust->findKey(sato_.keyId()), nullptr) << what;
      EXPECT_EQ(trust->findKey(sato_.keyId())->identity, c.identity) << what;
    } else {
      EXPECT_EQ(code, kExitFailure) << what;
      const std::string message = err_.str();
      EXPECT_NE(message.find("identity \"" + c.identity + "\""), std::string::npos)
          << what << ": " << message;
      EXPECT_NE(message.find("the role \"" + c.refused_role + "\""), std::string::npos)
          << what << ": " << message;
      EXPECT_NE(message.find("nothing written"), std::string::npos) << what << ": " << message;
      EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 1) << what << ": " << message;
      EXPECT_EQ(read("trust.json"), before) << what;
    }

    // init applies the same rule to the first key.
    std::filesystem::remove(path("first.json"));
    const int init_code = run({"init", "--out", path("first.json"), "--pub", path("sato.pub"),
                               "--identity", c.identity, "--role", c.roles});
    EXPECT_EQ(init_code, c.accepted ? kExitOk : kExitFailure) << "init " << what << err_.str();
    EXPECT_EQ(std::filesystem::exists(path("first.json")), c.accepted) << "init " << what;
  }
}

TEST_F(TrustCmdTest, RemoveByIdentityTakesEveryKeyOfItAndRaisesTheVersion) {
  ASSERT_EQ(init(), kExitOk);
  ASSERT_EQ(add("sato.pub", "op:sato", "operator,breakglass"), kExitOk) << err_.str();
  ASSERT_EQ(add("ito.pub", "op:sato", "operator"), kExitOk) << err_.str();
  ASSERT_EQ(add("gw.pub", "agent:gw", "agent"), kExitOk) << err_.str();
  ASSERT_EQ(run({"remove", path("trust.json"), "--identity", "op:sato"}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("removed op:sato (" + sato_.keyId() + ")"), std::string::npos)
      << out_.str();
  EXPECT_NE(out_.str().find("removed op:sato (" + ito_.keyId() + ")"), std::string::npos)
      << out_.str();
  auto trust = loadTrustFile(path("trust.json"));
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_EQ(trust->version, 5);
  EXPECT_EQ(trust->findKey(sato_.keyId()), nullptr);
  EXPECT_EQ(trust->findKey(ito_.keyId()), nullptr);
  EXPECT_NE(trust->findKey(gw_.keyId()), nullptr);
  EXPECT_NE(trust->findKey(controller_.keyId()), nullptr);
}

TEST_F(TrustCmdTest, RemoveByKeyidTakesOnlyThatKeyAndReportsItAsJson) {
  ASSERT_EQ(init(), kExitOk);
  ASSERT_EQ(add("sato.pub", "op:sato", "operator,breakglass"), kExitOk) << err_.str();
  ASSERT_EQ(add("ito.pub", "op:sato", "operator"), kExitOk) << err_.str();
  // Upper case is what people copy from some tools; the keyid is the same.
  std::string upper = ito_.keyId();
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  ASSERT_EQ(
      run({"remove", path("trust.json"), "--identity", "op:sato", "--keyid", upper, "--json"}),
      kExitOk)
      << err_.str();
  const auto report = nlohmann::json::parse(out_.str());
  EXPECT_EQ(report["version"], 4);
  ASSERT_EQ(report["removed"].size(), 1u);
  EXPECT_EQ(report["removed"][0]["keyid"], ito_.keyId());
  EXPECT_EQ(report["removed"][0]["identity"], "op:sato");
  EXPECT_EQ(report["removed"][0]["roles"], nlohmann::json::array({"operator"}));
  auto trust = loadTrustFile(path("trust.json"));
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_EQ(trust->findKey(ito_.keyId()), nullptr);
  EXPECT_NE(trust->findKey(sato_.keyId()), nullptr);
}

TEST_F(TrustCmdTest, RemoveRefusesTheLastControllerKeyAndLeavesTheFile) {
  ASSERT_EQ(init(), kExitOk);
  ASSERT_EQ(add("sato.pub", "op:sato", "operator"), kExitOk) << err_.str();
  const std::string before = read("trust.json");
  EXPECT_EQ(run({"remove", path("trust.json"), "--identity", "controller"}), kExitFailure);
  EXPECT_NE(err_.str().find("last controller key (" + controller_.keyId() + ")"), std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find("nothing written"), std::string::npos) << err_.str();
  EXPECT_EQ(read("trust.json"), before);
  // With a second controller key the old one can go (a controller key rotation).
  ASSERT_EQ(add("ito.pub", "controller", "controller"), kExitOk) << err_.str();
  EXPECT_EQ(run({"remove", path("trust.json"), "--keyid", controller_.keyId()}), kExitOk)
      << err_.str();
  auto trust = loadTrustFile(path("trust.json"));
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_EQ(trust->findKey(controller_.keyId()), nullptr);
  EXPECT_NE(trust->findKey(ito_.keyId()), nullptr);
}

TEST_F(TrustCmdTest, RemoveRefusesAKeyThatIsNotThere) {
  ASSERT_EQ(init(), kExitOk);
  ASSERT_EQ(add("gw.pub", "agent:gw", "agent"), kExitOk) << err_.str();
  const std::string before = read("trust.json");
  EXPECT_EQ(run({"remove", path("trust.json"), "--identity", "op:nobody"}), kExitFailure);
  EXPECT_NE(err_.str().find("no key of identity \"op:nobody\""), std::string::npos) << err_.str();
  EXPECT_EQ(run({"remove", path("trust.json"), "--keyid", sato_.keyId()}), kExitFailure);
  EXPECT_NE(err_.str().find("no key " + sato_.keyId()), std::string::npos) << err_.str();
  EXPECT_EQ(run({"remove", path("trust.json"), "--identity", "op:sato", "--keyid", gw_.keyId()}),
            kExitFailure);
  EXPECT_NE(err_.str().find("belongs to \"agent:gw\""), std::string::npos) << err_.str();
  EXPECT_EQ(read("trust.json"), before);
  EXPECT_EQ(run({"remove", path("trust.json")}), kExitUsage);
  EXPECT_NE(err_.str().find("needs --identity ID or --keyid HEX"), std::string::npos) << err_.str();
  EXPECT_EQ(run({"remove", path("trust.json"), "--keyid", "abc"}), kExitUsage);
  EXPECT_NE(err_.str().find("--keyid must be the 64 hex digits"), std::string::npos) << err_.str();
  EXPECT_EQ(read("trust.json"), before);
}

TEST_F(TrustCmdTest, ShowWarnsAboutAHandWrittenKeyThatBreaksTheIdentityRule) {
  ASSERT_EQ(init(), kExitOk);
  // A file edited by hand: agents still load it, `show` says what is wrong with it.
  std::string text = read("trust.json");
  const std::string controller_identity = "\"identity\":\"controller\"";
  ASSERT_NE(text.find(controller_identity), std::string::npos) << text;
  text.replace(text.find(controller_identity), controller_identity.size(), "\"identity\":\"ctl\"");
  std::ofstream(path("trust.json"), std::ios::trunc) << text;
  ASSERT_TRUE(loadTrustFile(path("trust.json")).ok());
  EXPECT_EQ(run({"show", path("trust.json")}), kExitOk) << err_.str();
  EXPECT_NE(err_.str().find("warning: keys[0]: identity \"ctl\""), std::string::npos) << err_.str();
  EXPECT_EQ(run({"show", path("trust.json"), "--json"}), kExitOk);
  const auto doc = nlohmann::json::parse(out_.str());
  ASSERT_EQ(doc["warnings"].size(), 1u) << out_.str();
}

TEST_F(TrustCmdTest, HelpListsEverySubcommandAndTheIdentityRule) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--help"}, {"add", "--help"}, {"remove", "-h"}}) {
    EXPECT_EQ(run(args), kExitOk);
    const std::string help = out_.str();
    EXPECT_NE(help.find("usage: shadanctl trust <init|add|remove|show>"), std::string::npos)
        << help;
    EXPECT_NE(help.find("trust remove FILE [--identity ID] [--keyid HEX] [--json]"),
              std::string::npos)
        << help;
    EXPECT_NE(help.find("op:NAME (operator, or operator,breakglass), controller (controller),"),
              std::string::npos)
        << help;
  }
}

}  // namespace
}  // namespace shadan

namespace shadan {
namespace {

// Issue #17: `trust init --purpose lab`, drill keys added with `--role drill`, and `show`
// printing the purpose; a production file refuses a drill key and writes nothing.
class TrustCmdLabTest : public TrustCmdTest {};

TEST_F(TrustCmdLabTest, InitLabAddDrillKeyAndShowThePurpose) {
  ASSERT_EQ(run({"init", "--out", path("lab.json"), "--pub", path("controller.pub"), "--identity",
                 "controller", "--role", "controller", "--purpose", "lab"}),
            kExitOk)
      << err_.str();
  ASSERT_EQ(run({"add", path("lab.json"), "--pub", path("sato.pub"), "--identity", "drill:sato",
                 "--role", "drill"}),
            kExitOk)
      << err_.str();
  auto trust = loadTrustFile(path("lab.json"));
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_TRUE(trust->isLab());
  const TrustKey* drill = trust->findKey(sato_.keyId());
  ASSERT_NE(drill, nullptr);
  EXPECT_EQ(drill->identity, "drill:sato");
  EXPECT_TRUE(drill->hasRole(TrustRole::kDrill));

  out_.str("");
  ASSERT_EQ(run({"show", path("lab.json")}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str().rfind("lab trust version 2", 0), 0u) << out_.str();
  out_.str("");
  ASSERT_EQ(run({"show", path("lab.json"), "--json"}), kExitOk) << err_.str();
  EXPECT_EQ(nlohmann::json::parse(out_.str())["purpose"], "lab");

  // An operator in a lab file is refused, and the file stays as it was.
  const std::string before = read("lab.json");
  EXPECT_EQ(run({"add", path("lab.json"), "--pub", path("ito.pub"), "--identity", "op:ito",
                 "--role", "operator"}),
            kExitFailure);
  EXPECT_NE(err_.str().find("a lab trust file holds no operator or breakglass key"),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(read("lab.json"), before);
}

TEST_F(TrustCmdLabTest, ProductionFileRefusesADrillKeyAndWritesNothing) {
  ASSERT_EQ(init(), kExitOk) << err_.str();
  const std::string before = read("trust.json");
  EXPECT_EQ(run({"add", path("trust.json"), "--pub", path("sato.pub"), "--identity", "drill:sato",
                 "--role", "drill"}),
            kExitFailure);
  EXPECT_NE(err_.str().find("key " + sato_.keyId() +
                            " of \"drill:sato\" is a drill key: drill "
                            "keys are never accepted by a production trust file"),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(read("trust.json"), before);
  out_.str("");
  ASSERT_EQ(run({"show", path("trust.json")}), kExitOk);
  EXPECT_EQ(out_.str().rfind("production trust version 1", 0), 0u) << out_.str();
}

TEST_F(TrustCmdLabTest, PurposeMustBeProductionOrLab) {
  EXPECT_EQ(run({"init", "--out", path("x.json"), "--pub", path("controller.pub"), "--identity",
                 "controller", "--role", "controller", "--purpose", "staging"}),
            kExitUsage);
  EXPECT_NE(err_.str().find("--purpose must be production or lab"), std::string::npos);
}

}  // namespace
}  // namespace shadan

#include "cli/trust_cmd.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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

  std::string read(const std::string& name) const {
    std::ifstream in(path(name));
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  Ed25519KeyPair controller_ = Ed25519KeyPair::generate();
  Ed25519KeyPair sato_ = Ed25519KeyPair::generate();
  Ed25519KeyPair gw_ = Ed25519KeyPair::generate();
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

}  // namespace
}  // namespace shadan

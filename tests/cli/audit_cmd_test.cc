#include "cli/audit_cmd.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/keys_cmd.h"
#include "cli/shadanctl.h"
#include "common/audit_log.h"
#include "tests/cli/fake_command_runner.h"
#include "tests/common/audit_test_support.h"

namespace shadan {
namespace {

using testing::readLines;
using testing::writeLines;

class AuditCmdTest : public ::testing::Test {
 protected:
  // Through runShadanctl, so the dispatch lines are covered too.
  int run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return runShadanctl(args, out_, err_, runner_);
  }
  bool outSays(const std::string& part) const { return out_.str().find(part) != std::string::npos; }
  size_t outLines() const {
    const std::string text = out_.str();
    return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  }
  bool errSays(const std::string& part) const { return err_.str().find(part) != std::string::npos; }
  std::string file(const std::string& name) const { return dir_.file(name); }

  // A log signed with the key written by `shadanctl keygen --out <dir>/agent`.
  void makeLog() {
    ASSERT_EQ(run({"keygen", "--out", file("agent"), "--role", "agent"}), kExitOk) << err_.str();
    auto key = loadPrivateKeyFile(file("agent.key"));
    ASSERT_TRUE(key.ok());
    Ed25519Signer signer(std::move(*key));
    AuditLogOptions o;
    o.path = file("audit.log");
    o.log_id = "agent:core-gw";
    o.checkpoint_every_entries = 3;
    o.checkpoint_interval = std::chrono::milliseconds(0);
    auto log = AuditLog::open(o, fs_, clock_, &signer);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 6; ++i) {
      AuditEvent event = testing::sampleEvent(i);
      if (i == 4) {
        event.what->segment = "servers";
        event.where->agent_id = "inet-gw";
      }
      ASSERT_TRUE((*log)->append(event).ok());
      clock_.advance(std::chrono::minutes(10));
    }
    ASSERT_TRUE((*log)->close().ok());
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  PosixLogFileSystem fs_;
  FakeCommandRunner runner_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(AuditCmdTest, KeygenWritesAKeyPairOnce) {
  ASSERT_EQ(run({"keygen", "--out", file("op")}), kExitOk) << err_.str();
  const std::string key_id = out_.str().substr(0, 64);
  EXPECT_EQ(out_.str(), key_id + "\n");
  struct stat info {};
  ASSERT_EQ(::stat(file("op.key").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_EQ(loadPublicKeyFile(file("op.pub"))->key_id, key_id);
  EXPECT_EQ(loadPrivateKeyFile(file("op.key"))->keyId(), key_id);

  EXPECT_EQ(run({"keygen", "--out", file("op")}), kExitFailure);
  EXPECT_TRUE(errSays("already exists"));
  EXPECT_EQ(loadPublicKeyFile(file("op.pub"))->key_id, key_id);
  EXPECT_EQ(run({"keygen"}), kExitUsage);
  EXPECT_TRUE(errSays("needs --out PREFIX"));
  EXPECT_EQ(run({"keygen", "--out", file("x"), "--role", "Bad Role"}), kExitUsage);
  EXPECT_TRUE(errSays("invalid role"));
}

TEST_F(AuditCmdTest, VerifyExitCodes) {
  makeLog();
  EXPECT_EQ(run({"audit", "verify", dir_.path(), "--key", file("agent.pub")}), kExitOk)
      << out_.str() << err_.str();
  EXPECT_TRUE(outSays("VALID: log agent:core-gw, 6 entries"));
  EXPECT_TRUE(outSays("2 verified"));

  // Without a key: the chain still verifies, signatures are reported as unchecked.
  EXPECT_EQ(run({"audit", "verify", file("audit.log")}), kExitOk);
  EXPECT_TRUE(outSays("NOT checked"));

  EXPECT_EQ(run({"audit", "verify", dir_.path(), "--key", file("agent.pub"), "--json"}), kExitOk);
  auto report = nlohmann::json::parse(out_.str());
  EXPECT_EQ(report["valid"], true);
  EXPECT_EQ(report["entries"], 6);

  auto lines = readLines(file("audit.log"));
  std::swap(lines[1], lines[2]);
  writeLines(file("audit.log"), lines);
  EXPECT_EQ(run({"audit", "verify", dir_.path(), "--key", file("agent.pub")}), kExitFailure);
  EXPECT_TRUE(outSays("INVALID: " + file("audit.log") +
                      ":2 log_seq 1: lines 2 and 3 are out of "
                      "order"))
      << out_.str();

  // A key that did not sign the checkpoints.
  ASSERT_EQ(run({"keygen", "--out", file("other")}), kExitOk);
  EXPECT_EQ(run({"audit", "verify", dir_.path(), "--key", file("other.pub")}), kExitFailure);

  EXPECT_EQ(run({"audit", "verify"}), kExitUsage);
  EXPECT_TRUE(errSays("needs PATH"));
  EXPECT_EQ(run({"audit", "verify", dir_.path(), "--key", file("missing.pub")}), kExitUsage);
  EXPECT_EQ(run({"audit", "verify", file("nothing-here")}), kExitFailure);
  EXPECT_TRUE(errSays("no audit log"));
  EXPECT_EQ(run({"audit", "frob"}), kExitUsage);
  EXPECT_EQ(run({"audit", "verify", "a", "b"}), kExitUsage);
}

TEST_F(AuditCmdTest, ShowFilters) {
  makeLog();
  ASSERT_EQ(run({"audit", "show", dir_.path()}), kExitOk) << err_.str();
  EXPECT_EQ(outLines(), 6u);
  EXPECT_TRUE(outSays("2026-11-18T11:06:40.000Z #0 accepted outcome=ok action=isolate"));

  ASSERT_EQ(run({"audit", "show", dir_.path(), "--segment", "servers"}), kExitOk);
  EXPECT_TRUE(outSays(" #4 accepted"));
  EXPECT_EQ(outLines(), 1u);

  ASSERT_EQ(run({"audit", "show", dir_.path(), "--gateway", "core-gw", "--json"}), kExitOk);
  EXPECT_EQ(nlohmann::json::parse(out_.str()).size(), 5u);

  ASSERT_EQ(run({"audit", "show", dir_.path(), "--command-id", "cmd-3", "--json"}), kExitOk);
  auto one = nlohmann::json::parse(out_.str());
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["log_seq"], 3);

  // Entries at 11:06:40 + 10 min steps: 11:16:40 .. 11:36:40 inclusive -> log_seq 1-3.
  ASSERT_EQ(run({"audit", "show", dir_.path(), "--since", "2026-11-18T11:16:40Z", "--until",
                 "2026-11-18T20:36:40+09:00", "--json"}),
            kExitOk);
  auto range = nlohmann::json::parse(out_.str());
  ASSERT_EQ(range.size(), 3u);
  EXPECT_EQ(range[0]["log_seq"], 1);
  EXPECT_EQ(range[2]["log_seq"], 3);

  EXPECT_EQ(run({"audit", "show", dir_.path(), "--since", "yesterday"}), kExitUsage);
  EXPECT_TRUE(errSays("--since: not an RFC 3339 time"));
}

}  // namespace
}  // namespace shadan

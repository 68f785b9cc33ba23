// `shadanctl ca issue --tls-dir DIR` writes the files a TLS directory's reader expects:
// ca.crt, agent.crt, agent.key for `shadan-agent run --tls-dir DIR` (agents/daemon.cc), and
// ca.crt, controller.crt, controller.key for the controller config's "tls".

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/ca_cmd.h"
#include "cli/shadanctl.h"
#include "common/tls.h"
#include "tests/cli/fake_command_runner.h"
#include "tests/transport/test_pki.h"

namespace shadan {
namespace {

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

X509Ptr readCert(const std::string& path) {
  std::unique_ptr<FILE, decltype(&std::fclose)> file(std::fopen(path.c_str(), "r"), &std::fclose);
  if (!file) return X509Ptr(nullptr, &X509_free);
  return X509Ptr(PEM_read_X509(file.get(), nullptr, nullptr, nullptr), &X509_free);
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

unsigned modeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0xffff;
  return st.st_mode & 0777;
}

// True when `leaf` chains to the single certificate in `ca_file`.
bool chainsTo(const std::string& leaf, const std::string& ca_file) {
  X509Ptr ca = readCert(ca_file);
  X509Ptr cert = readCert(leaf);
  if (!ca || !cert) return false;
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), &X509_STORE_free);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      &X509_STORE_CTX_free);
  return store && ctx && X509_STORE_add_cert(store.get(), ca.get()) == 1 &&
         X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) == 1 &&
         X509_verify_cert(ctx.get()) == 1;
}

class CaTlsDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(run({"ca", "init", "--dir", file("ca")}), kExitOk) << err_.str();
  }
  int run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return runShadanctl(args, out_, err_, runner_);
  }
  std::string file(const std::string& name) const { return dir_.file(name); }

  testing::TempDir dir_;
  FakeCommandRunner runner_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CaTlsDirTest, ClientDirectoryHoldsTheFilesTheAgentReads) {
  const std::string tls = file("gw/tls");
  ASSERT_EQ(
      run({"ca", "issue", "--dir", file("ca"), "--name", "core-gw", "--client", "--tls-dir", tls}),
      kExitOk)
      << err_.str();
  // The names shadan-agent run --tls-dir reads (agents/daemon.cc).
  for (const char* name : {"ca.crt", "agent.crt", "agent.key"}) {
    EXPECT_TRUE(std::filesystem::exists(tls + "/" + name)) << name;
  }
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(tls)) ++files;
  EXPECT_EQ(files, 3u);
  EXPECT_EQ(modeOf(tls), 0700u);
  EXPECT_EQ(modeOf(tls + "/agent.key"), 0600u);
  EXPECT_EQ(readAll(tls + "/ca.crt"), readAll(file("ca/ca.crt")));
  EXPECT_TRUE(chainsTo(tls + "/agent.crt", tls + "/ca.crt"));
  auto cn = certificateCommonName(tls + "/agent.crt");
  ASSERT_TRUE(cn.ok()) << cn.error().message;
  EXPECT_EQ(*cn, "core-gw");

  // The agent's side of the channel loads them as they are.
  ASSERT_EQ(
      run({"ca", "issue", "--dir", file("ca"), "--name", "ctl", "--server", "--out", file("ctl")}),
      kExitOk);
  const std::string pin = out_.str().substr(0, 64);
  auto context = makeClientTlsContext(tls + "/ca.crt", tls + "/agent.crt", tls + "/agent.key", pin);
  EXPECT_TRUE(context.ok()) << context.error().message;
}

TEST_F(CaTlsDirTest, ServerDirectoryHoldsTheControllerConfigsFiles) {
  const std::string tls = file("ctl-tls");
  ASSERT_EQ(run({"ca", "issue", "--dir", file("ca"), "--name", "ctl.example", "--server", "--dns",
                 "ctl.example", "--tls-dir", tls}),
            kExitOk)
      << err_.str();
  const TlsDirPaths paths = tlsDirPaths(tls, /*server=*/true);
  EXPECT_EQ(paths.cert, tls + "/controller.crt");
  EXPECT_EQ(paths.key, tls + "/controller.key");
  EXPECT_EQ(paths.ca, tls + "/ca.crt");
  auto pin = spkiPinOfCertificate(paths.cert);
  ASSERT_TRUE(pin.ok()) << pin.error().message;
  EXPECT_EQ(out_.str(), *pin + "\n");  // the pin agents configure, as with --out
  EXPECT_TRUE(chainsTo(paths.cert, paths.ca));
  auto context = makeServerTlsContext(paths.ca, paths.cert, paths.key);
  EXPECT_TRUE(context.ok()) << context.error().message;
}

TEST_F(CaTlsDirTest, OneDirectorySharesTheSameCaButNeverTakesAnother) {
  const std::string tls = file("tls");
  ASSERT_EQ(run({"ca", "issue", "--dir", file("ca"), "--name", "gw", "--client", "--tls-dir", tls}),
            kExitOk);
  const std::string ca_before = readAll(tls + "/ca.crt");
  // A controller on the same host: its files join the agent's, ca.crt is kept.
  ASSERT_EQ(
      run({"ca", "issue", "--dir", file("ca"), "--name", "ctl", "--server", "--tls-dir", tls}),
      kExitOk)
      << err_.str();
  EXPECT_EQ(readAll(tls + "/ca.crt"), ca_before);
  EXPECT_TRUE(std::filesystem::exists(tls + "/controller.key"));

  // The same client again: refused, nothing replaced.
  const std::string cert_before = readAll(tls + "/agent.crt");
  EXPECT_EQ(run({"ca", "issue", "--dir", file("ca"), "--name", "gw", "--client", "--tls-dir", tls}),
            kExitFailure);
  EXPECT_NE(err_.str().find("already exists"), std::string::npos) << err_.str();
  EXPECT_EQ(readAll(tls + "/agent.crt"), cert_before);

  // Another CA's certificate into a directory that trusts the first CA: refused, nothing written.
  ASSERT_EQ(run({"ca", "init", "--dir", file("other-ca")}), kExitOk);
  const std::string fresh = file("fresh");
  ASSERT_TRUE(std::filesystem::create_directory(fresh));
  std::filesystem::copy_file(file("ca/ca.crt"), fresh + "/ca.crt");
  EXPECT_EQ(run({"ca", "issue", "--dir", file("other-ca"), "--name", "gw", "--client", "--tls-dir",
                 fresh}),
            kExitFailure);
  EXPECT_NE(err_.str().find(fresh + "/ca.crt already exists and is not"), std::string::npos)
      << err_.str();
  EXPECT_FALSE(std::filesystem::exists(fresh + "/agent.crt"));
  EXPECT_FALSE(std::filesystem::exists(fresh + "/agent.key"));
  EXPECT_EQ(readAll(fresh + "/ca.crt"), readAll(file("ca/ca.crt")));
}

TEST_F(CaTlsDirTest, BadInputMakesNoDirectory) {
  const std::string tls = file("never");
  EXPECT_EQ(run({"ca", "issue", "--dir", file("ca"), "--name", "bad name!", "--client", "--tls-dir",
                 tls}),
            kExitUsage);
  EXPECT_EQ(run({"ca", "issue", "--dir", file("ca"), "--name", "gw", "--client", "--tls-dir", tls,
                 "--out", file("gw")}),
            kExitUsage);
  EXPECT_NE(err_.str().find("exactly one of --out PREFIX and --tls-dir TLSDIR"), std::string::npos)
      << err_.str();
  // A CA that cannot be read is a failure; the directory is not left behind either.
  EXPECT_EQ(
      run({"ca", "issue", "--dir", file("no-ca"), "--name", "gw", "--client", "--tls-dir", tls}),
      kExitFailure);
  EXPECT_FALSE(std::filesystem::exists(tls));
  // A CA key others can read is refused after the directory was made: it goes again.
  ASSERT_EQ(::chmod(file("ca/ca.key").c_str(), 0644), 0);
  EXPECT_EQ(run({"ca", "issue", "--dir", file("ca"), "--name", "gw", "--client", "--tls-dir", tls}),
            kExitFailure);
  EXPECT_NE(err_.str().find("group or others"), std::string::npos) << err_.str();
  EXPECT_FALSE(std::filesystem::exists(tls));
  EXPECT_FALSE(std::filesystem::exists(file("gw.crt")));
}

}  // namespace
}  // namespace shadan

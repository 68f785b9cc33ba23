#include "cli/ca_cmd.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <sstream>

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

unsigned modeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0xffff;
  return st.st_mode & 0777;
}

// What the openssl tool says, for cross-checks against an implementation that is not ours.
std::string shell(const std::string& command) {
  std::unique_ptr<FILE, decltype(&::pclose)> pipe(::popen(command.c_str(), "r"), &::pclose);
  if (!pipe) return {};
  std::string out;
  char buffer[512];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe.get())) out.append(buffer, n);
  return out;
}

class CaCmdTest : public ::testing::Test {
 protected:
  int run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return runShadanctl(args, out_, err_, runner_);
  }
  std::string file(const std::string& name) const { return dir_.file(name); }

  testing::TempDir dir_;
  FakeCommandRunner runner_;  // ca runs no command
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CaCmdTest, InitWritesCaWithPrivateKeyModeAndCaConstraints) {
  ASSERT_EQ(run({"ca", "init", "--dir", file("ca"), "--name", "Lab CA"}), kExitOk) << err_.str();
  EXPECT_EQ(modeOf(file("ca/ca.key")), 0600u);
  EXPECT_EQ(modeOf(file("ca")), 0700u);
  X509Ptr ca = readCert(file("ca/ca.crt"));
  ASSERT_TRUE(ca);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_TRUE(X509_get_extension_flags(ca.get()) & EXFLAG_CA);
  EXPECT_TRUE(X509_get_key_usage(ca.get()) & KU_KEY_CERT_SIGN);
  EXPECT_EQ(X509_check_issued(ca.get(), ca.get()), X509_V_OK);  // self-signed
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(ca.get())), EVP_PKEY_EC);
  auto cn = certificateCommonName(file("ca/ca.crt"));
  ASSERT_TRUE(cn.ok());
  EXPECT_EQ(*cn, "Lab CA");
}

TEST_F(CaCmdTest, InitRefusesToOverwrite) {
  ASSERT_EQ(run({"ca", "init", "--dir", file("ca")}), kExitOk) << err_.str();
  const std::string before = shell("sha256sum " + file("ca/ca.key"));
  EXPECT_EQ(run({"ca", "init", "--dir", file("ca")}), kExitFailure);
  EXPECT_NE(err_.str().find("already exists"), std::string::npos) << err_.str();
  EXPECT_EQ(shell("sha256sum " + file("ca/ca.key")), before);
}

TEST_F(CaCmdTest, IssueServerPrintsPinThatOpensslAgreesWith) {
  ASSERT_EQ(run({"ca", "init", "--dir", file("ca")}), kExitOk);
  ASSERT_EQ(run({"ca", "issue", "--dir", file("ca"), "--name", "controller", "--server", "--dns",
                 "ctl.example", "--ip", "10.0.0.1", "--ip", "::1", "--out", file("ctl")}),
            kExitOk)
      << err_.str();
  const std::string pin = out_.str().substr(0, out_.str().find('\n'));
  ASSERT_EQ(pin.size(), 64u);
  EXPECT_EQ(modeOf(file("ctl.key")), 0600u);
  const std::string openssl_pin =
      shell("openssl x509 -in " + file("ctl.crt") +
            " -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -c1-64");
  EXPECT_EQ(openssl_pin.substr(0, 64), pin);

  ASSERT_EQ(run({"ca", "pin", file("ctl.crt")}), kExitOk);
  EXPECT_EQ(out_.str(), pin + "\n");

  // The chain verifies and the leaf is a server certificate with the names asked for.
  const std::string verify = shell("openssl verify -purpose sslserver -CAfile " +
                                   file("ca/ca.crt") + " " + file("ctl.crt") + " 2>&1");
  EXPECT_NE(verify.find(": OK"), std::string::npos) << verify;
  const std::string text = shell("openssl x509 -in " + file("ctl.crt") + " -noout -text");
  EXPECT_NE(text.find("DNS:ctl.example"), std::string::npos) << text;
  EXPECT_NE(text.find("IP Address:10.0.0.1"), std::string::npos) << text;
  EXPECT_NE(text.find("IP Address:0:0:0:0:0:0:0:1"), std::string::npos) << text;
  EXPECT_NE(text.find("TLS Web Server Authentication"), std::string::npos) << text;
  EXPECT_NE(text.find("CA:FALSE"), std::string::npos) << text;
  const std::string as_client = shell("openssl verify -purpose sslclient -CAfile " +
                                      file("ca/ca.crt") + " " + file("ctl.crt") + " 2>&1");
  EXPECT_EQ(as_client.find(": OK"), std::string::npos) << as_client;
}

TEST_F(CaCmdTest, IssueServerAndClientMakesAnEtcdMembersCertificate) {
  ASSERT_EQ(run({"ca", "init", "--dir", file("ca")}), kExitOk);
  ASSERT_EQ(run({"ca", "issue", "--dir", file("ca"), "--name", "etcd-1", "--server", "--client",
                 "--ip", "10.0.0.5", "--out", file("etcd-1")}),
            kExitOk)
      << err_.str();
  for (const char* purpose : {"sslserver", "sslclient"}) {
    const std::string verify =
        shell(std::string("openssl verify -purpose ") + purpose + " -CAfile " + file("ca/ca.crt") +
              " " + file("etcd-1.crt") + " 2>&1");
    EXPECT_NE(verify.find(": OK"), std::string::npos) << purpose << ": " << verify;
  }
  const std::string text = shell("openssl x509 -in " + file("etcd-1.crt") + " -noout -text");
  EXPECT_NE(text.find("IP Address:10.0.0.5"), std::string::npos) << text;
}

TEST_F(CaCmdTest, IssueClientCarriesAgentIdAsCnAndUri) {
  ASSERT_EQ(run({"ca", "init", "--dir", file("ca")}), kExitOk);
  ASSERT_EQ(run({"ca", "issue", "--dir", file("ca"), "--name", "gw-7", "--client", "--out",
                 file("gw"), "--days", "30"}),
            kExitOk)
      << err_.str();
  const std::string verify = shell("openssl verify -purpose sslclient -CAfile " +
                                   file("ca/ca.crt") + " " + file("gw.crt") + " 2>&1");
  EXPECT_NE(verify.find(": OK"), std::string::npos) << verify;
  const std::string text = shell("openssl x509 -in " + file("gw.crt") + " -noout -text");
  EXPECT_NE(text.find("URI:shadan:agent:gw-7"), std::string::npos) << text;
  EXPECT_NE(text.find("TLS Web Client Authentication"), std::string::npos) << text;
  auto cn = certificateCommonName(file("gw.crt"));
  ASSERT_TRUE(cn.ok());
  EXPECT_EQ(*cn, "gw-7");
  X509Ptr cert = readCert(file("gw.crt"));
  ASSERT_TRUE(cert);
  const ASN1_TIME* not_after = X509_get0_notAfter(cert.get());
  int days = 0;
  int seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, nullptr, not_after), 1);
  EXPECT_TRUE(days == 29 || days == 30) << days;
}

TEST_F(CaCmdTest, IssueRefusesOverwriteAndBadInput) {
  ASSERT_EQ(run({"ca", "init", "--dir", file("ca")}), kExitOk);
  ASSERT_EQ(
      run({"ca", "issue", "--dir", file("ca"), "--name", "gw", "--client", "--out", file("gw")}),
      kExitOk);
  EXPECT_EQ(
      run({"ca", "issue", "--dir", file("ca"), "--name", "gw", "--client", "--out", file("gw")}),
      kExitFailure);
  EXPECT_NE(err_.str().find("already exists"), std::string::npos) << err_.str();

  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"ca", "issue", "--dir", file("ca"), "--name", "x", "--out", file("x")},
       "needs --server, --client or both"},
      {{"ca", "issue", "--dir", file("ca"), "--name", "x", "--client", "--server", "--tls-dir",
        file("x")},
       "takes --out, not --tls-dir"},
      {{"ca", "issue", "--dir", file("ca"), "--name", "bad name!", "--client", "--out", file("x")},
       "name must be"},
      {{"ca", "issue", "--dir", file("ca"), "--name", "x", "--client", "--dns", "a.b", "--out",
        file("x")},
       "for --server"},
      {{"ca", "issue", "--dir", file("ca"), "--name", "x", "--server", "--ip", "10.0.0.300",
        "--out", file("x")},
       "not an IP address"},
      {{"ca", "issue", "--dir", file("ca"), "--name", "x", "--client", "--days", "0", "--out",
        file("x")},
       "--days"},
      {{"ca", "issue", "--dir", file("ca"), "--name", "x", "--client"}, "--out"},
      {{"ca", "frobnicate"}, "unknown ca subcommand"},
      {{"ca", "pin"}, "exactly one CERT"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(run(c.args), kExitUsage) << c.args.back();
    EXPECT_NE(err_.str().find(c.message), std::string::npos) << err_.str();
  }
  EXPECT_FALSE(std::filesystem::exists(file("x.key")));
  EXPECT_FALSE(std::filesystem::exists(file("x.crt")));

  // A CA that does not exist is a failure, not a usage error, and names the file.
  EXPECT_EQ(
      run({"ca", "issue", "--dir", file("nope"), "--name", "x", "--client", "--out", file("x")}),
      kExitFailure);
  EXPECT_NE(err_.str().find(file("nope")), std::string::npos) << err_.str();
}

TEST_F(CaCmdTest, IssueRefusesCaKeyReadableByOthers) {
  ASSERT_EQ(run({"ca", "init", "--dir", file("ca")}), kExitOk);
  ASSERT_EQ(::chmod(file("ca/ca.key").c_str(), 0644), 0);
  EXPECT_EQ(
      run({"ca", "issue", "--dir", file("ca"), "--name", "gw", "--client", "--out", file("gw")}),
      kExitFailure);
  EXPECT_NE(err_.str().find("group or others"), std::string::npos) << err_.str();
}

TEST_F(CaCmdTest, RevokeListsSerialsSignedByTheCaAndKeepsEarlierOnes) {
  ASSERT_EQ(run({"ca", "init", "--dir", file("ca")}), 0) << err_.str();
  ASSERT_EQ(
      run({"ca", "issue", "--dir", file("ca"), "--name", "gw-1", "--client", "--out", file("gw1")}),
      0);
  ASSERT_EQ(
      run({"ca", "issue", "--dir", file("ca"), "--name", "gw-2", "--client", "--out", file("gw2")}),
      0);
  const std::string crl = file("ca") + "/ca.crl";
  ASSERT_EQ(run({"ca", "revoke", "--dir", file("ca"), file("gw1.crt")}), 0) << err_.str();
  EXPECT_EQ(out_.str(), crl + "\n");
  EXPECT_NE(err_.str().find("1 added, 1 in the list"), std::string::npos) << err_.str();
  EXPECT_EQ(modeOf(crl), 0644u);
  const std::string serial1 = shell("openssl x509 -noout -serial -in " + file("gw1.crt"));
  const std::string serial2 = shell("openssl x509 -noout -serial -in " + file("gw2.crt"));
  ASSERT_EQ(serial1.rfind("serial=", 0), 0u);
  // The openssl tool agrees: signed by the CA, the serial listed, number 1.
  EXPECT_NE(shell("openssl crl -in " + crl + " -CAfile " + file("ca") + "/ca.crt -noout 2>&1")
                .find("verify OK"),
            std::string::npos);
  std::string text = shell("openssl crl -in " + crl + " -noout -text");
  EXPECT_NE(text.find(serial1.substr(7, serial1.size() - 8)), std::string::npos) << text;
  EXPECT_EQ(text.find(serial2.substr(7, serial2.size() - 8)), std::string::npos) << text;
  EXPECT_NE(text.find("X509v3 CRL Number: \n                1"), std::string::npos) << text;

  // The second joins the first; revoking the first again changes nothing but the number.
  ASSERT_EQ(run({"ca", "revoke", "--dir", file("ca"), file("gw2.crt"), file("gw1.crt")}), 0)
      << err_.str();
  EXPECT_NE(err_.str().find("1 added, 2 in the list"), std::string::npos) << err_.str();
  text = shell("openssl crl -in " + crl + " -noout -text");
  EXPECT_NE(text.find(serial1.substr(7, serial1.size() - 8)), std::string::npos) << text;
  EXPECT_NE(text.find(serial2.substr(7, serial2.size() - 8)), std::string::npos) << text;
  EXPECT_NE(text.find("X509v3 CRL Number: \n                2"), std::string::npos) << text;
}

TEST_F(CaCmdTest, RevokeRefusesWhatIsNotThisCasAndWritesNothing) {
  ASSERT_EQ(run({"ca", "init", "--dir", file("ca")}), 0);
  ASSERT_EQ(run({"ca", "init", "--dir", file("other")}), 0);
  ASSERT_EQ(
      run({"ca", "issue", "--dir", file("ca"), "--name", "gw-1", "--client", "--out", file("gw1")}),
      0);
  ASSERT_EQ(run({"ca", "issue", "--dir", file("other"), "--name", "gw-9", "--client", "--out",
                 file("gw9")}),
            0);
  EXPECT_EQ(run({"ca", "revoke", "--dir", file("ca"), file("gw1.crt"), file("gw9.crt")}), 1);
  EXPECT_NE(err_.str().find("gw9.crt was not issued by this CA"), std::string::npos) << err_.str();
  struct stat st {};
  EXPECT_NE(::stat((file("ca") + "/ca.crl").c_str(), &st), 0) << "a list was written";
  EXPECT_EQ(run({"ca", "revoke", "--dir", file("ca")}), 2);
  EXPECT_NE(err_.str().find("needs at least one CERT"), std::string::npos) << err_.str();
  EXPECT_EQ(run({"ca", "revoke", file("gw1.crt")}), 2);
  EXPECT_NE(err_.str().find("needs --dir"), std::string::npos) << err_.str();
  EXPECT_EQ(run({"ca", "revoke", "--dir", file("ca"), file("missing.crt")}), 1);
  EXPECT_NE(err_.str().find("missing.crt"), std::string::npos) << err_.str();
}

TEST_F(CaCmdTest, HelpIsPrinted) {
  EXPECT_EQ(run({"ca", "--help"}), kExitOk);
  EXPECT_NE(out_.str().find("ca issue"), std::string::npos);
  EXPECT_EQ(run({"--help"}), kExitOk);
  EXPECT_NE(out_.str().find("ca "), std::string::npos);
}

}  // namespace
}  // namespace shadan

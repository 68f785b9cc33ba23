#pragma once

// Shared fixtures of the channel tests: a temporary PKI made with the `shadanctl ca` library
// functions (two CAs, so "a certificate from another CA" is real), and a bounded io_context
// runner so no test can hang.

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "cli/ca_cmd.h"

namespace shadan::testing {

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/shadan-tls-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline constexpr const char* kTestAgentId = "gw-1";
inline constexpr const char* kTestAgentKeyId =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// ca/ (the channel's CA), other-ca/ (a stranger), and leaves:
//   controller.{crt,key}        server cert from ca, SAN IP:127.0.0.1
//   agent.{crt,key}             client cert from ca, CN gw-1
//   agent2.{crt,key}            client cert from ca, CN gw-2
//   stranger.{crt,key}          client cert from other-ca, CN gw-1
//   stranger-server.{crt,key}   server cert from other-ca
struct TestPki {
  TempDir dir;
  std::string ca_cert;
  std::string other_ca_cert;
  std::string server_cert, server_key, server_pin;
  std::string agent_cert, agent_key, agent_pin;
  std::string agent2_cert, agent2_key;
  std::string stranger_cert, stranger_key;
  std::string stranger_server_cert, stranger_server_key, stranger_server_pin;
};

inline void issueInto(const std::string& ca_dir, const std::string& prefix, const std::string& name,
                      bool server, std::string& cert, std::string& key,
                      std::string* pin = nullptr) {
  CertificateRequest request;
  request.common_name = name;
  request.server = server;
  if (server) request.ip_addresses = {"127.0.0.1"};
  auto issued = issueCertificate(ca_dir, request, prefix);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  cert = issued->cert_path;
  key = issued->key_path;
  if (pin != nullptr) *pin = issued->spki_pin;
}

inline void makeTestPki(TestPki& pki) {
  const std::string ca = pki.dir.file("ca");
  const std::string other = pki.dir.file("other-ca");
  ASSERT_TRUE(initCertificateAuthority(ca, "Test CA").ok());
  ASSERT_TRUE(initCertificateAuthority(other, "Other CA").ok());
  pki.ca_cert = caPaths(ca).cert;
  pki.other_ca_cert = caPaths(other).cert;
  issueInto(ca, pki.dir.file("controller"), "controller", true, pki.server_cert, pki.server_key,
            &pki.server_pin);
  issueInto(ca, pki.dir.file("agent"), kTestAgentId, false, pki.agent_cert, pki.agent_key,
            &pki.agent_pin);
  issueInto(ca, pki.dir.file("agent2"), "gw-2", false, pki.agent2_cert, pki.agent2_key);
  issueInto(other, pki.dir.file("stranger"), kTestAgentId, false, pki.stranger_cert,
            pki.stranger_key);
  issueInto(other, pki.dir.file("stranger-server"), "controller", true, pki.stranger_server_cert,
            pki.stranger_server_key, &pki.stranger_server_pin);
}

// A client certificate for `name` signed by the CA in `ca_dir` that expired yesterday (what
// `shadanctl ca issue` cannot make): PREFIX.crt and PREFIX.key.
inline void issueExpiredClient(const std::string& ca_dir, const std::string& prefix,
                               const std::string& name, std::string& cert, std::string& key) {
  using FilePtr = std::unique_ptr<FILE, decltype(&std::fclose)>;
  const CaPaths ca = caPaths(ca_dir);
  FilePtr ca_key_file(std::fopen(ca.key.c_str(), "r"), &std::fclose);
  FilePtr ca_cert_file(std::fopen(ca.cert.c_str(), "r"), &std::fclose);
  ASSERT_TRUE(ca_key_file && ca_cert_file);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> ca_key(
      PEM_read_PrivateKey(ca_key_file.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> ca_cert(
      PEM_read_X509(ca_cert_file.get(), nullptr, nullptr, nullptr), &X509_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> leaf_key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> leaf(X509_new(), &X509_free);
  ASSERT_TRUE(ca_key && ca_cert && leaf_key && leaf);
  X509* x = leaf.get();
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
  X509_gmtime_adj(X509_getm_notBefore(x), -2 * 86400);
  X509_gmtime_adj(X509_getm_notAfter(x), -86400);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(ca_cert.get()));
  X509_set_pubkey(x, leaf_key.get());
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert.get(), x, nullptr, nullptr, 0);
  for (const auto& [nid, value] : {std::pair<int, const char*>{NID_basic_constraints, "CA:FALSE"},
                                   {NID_key_usage, "critical,digitalSignature"},
                                   {NID_ext_key_usage, "clientAuth"}}) {
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    ASSERT_NE(extension, nullptr);
    X509_add_ext(x, extension, -1);
    X509_EXTENSION_free(extension);
  }
  ASSERT_GT(X509_sign(x, ca_key.get(), EVP_sha256()), 0);
  cert = prefix + ".crt";
  key = prefix + ".key";
  FilePtr cert_out(std::fopen(cert.c_str(), "w"), &std::fclose);
  FilePtr key_out(std::fopen(key.c_str(), "w"), &std::fclose);
  ASSERT_TRUE(cert_out && key_out);
  ASSERT_EQ(PEM_write_X509(cert_out.get(), x), 1);
  ASSERT_EQ(
      PEM_write_PrivateKey(key_out.get(), leaf_key.get(), nullptr, nullptr, 0, nullptr, nullptr),
      1);
  key_out.reset();
  ::chmod(key.c_str(), 0600);
}

// Runs `io` until `done()` or `limit` passes; returns done(). Never blocks longer than `limit`.
inline bool runUntil(boost::asio::io_context& io, const std::function<bool()>& done,
                     std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    io.run_for(std::chrono::milliseconds(5));
    // Out of work (what is awaited happens on another thread, the hub's network thread say):
    // wait a little rather than spin.
    if (io.stopped()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Runs `io` for `duration` (to show that something does NOT happen).
inline void runFor(boost::asio::io_context& io, std::chrono::milliseconds duration) {
  (void)runUntil(
      io, [] { return false; }, duration);
}

}  // namespace shadan::testing

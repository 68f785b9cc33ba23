#pragma once

// Shared fixtures of the channel tests: a temporary PKI made with the `shadanctl ca` library
// functions (two CAs, so "a certificate from another CA" is real), and a bounded io_context
// runner so no test can hang.

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
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

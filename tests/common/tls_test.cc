#include "common/tls.h"

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <optional>
#include <utility>

#include "tests/transport/test_pki.h"

namespace shadan {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using testing::runUntil;

// What a real handshake over loopback gives on both ends. In TLS 1.3 the client finishes
// before the server has judged its certificate, so the client also reads one byte the server
// writes after its own handshake: a refused client sees the server's alert there.
struct Outcome {
  std::optional<boost::system::error_code> server;
  std::optional<boost::system::error_code> client;
  std::optional<boost::system::error_code> client_read;
  std::string client_reason;
  std::string server_peer_cn;
  int version = 0;
};

Outcome handshake(ssl::context& server_ctx, ssl::context& client_ctx) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  ssl::stream<tcp::socket> server(io, server_ctx);
  ssl::stream<tcp::socket> client(io, client_ctx);
  Outcome outcome;
  char byte = 'x';
  char received = 0;
  acceptor.async_accept(server.next_layer(), [&](boost::system::error_code ec) {
    if (ec) return outcome.server.emplace(ec), void();
    server.async_handshake(ssl::stream_base::server, [&](boost::system::error_code hs) {
      outcome.server = hs;
      if (hs) return;
      if (auto cn = peerCommonName(server.native_handle()); cn.ok()) outcome.server_peer_cn = *cn;
      asio::async_write(server, asio::buffer(&byte, 1), [](boost::system::error_code, size_t) {});
    });
  });
  client.next_layer().async_connect(acceptor.local_endpoint(), [&](boost::system::error_code ec) {
    if (ec) return outcome.client.emplace(ec), void();
    client.async_handshake(ssl::stream_base::client, [&](boost::system::error_code hs) {
      outcome.client = hs;
      outcome.client_reason = tlsHandshakeFailureReason(hs, client.native_handle());
      if (hs) return outcome.client_read.emplace(hs), void();
      outcome.version = SSL_version(client.native_handle());
      asio::async_read(
          client, asio::buffer(&received, 1),
          [&](boost::system::error_code read_ec, size_t) { outcome.client_read = read_ec; });
    });
  });
  const bool finished = runUntil(io, [&] {
    return outcome.server.has_value() && outcome.client.has_value() &&
           outcome.client_read.has_value();
  });
  EXPECT_TRUE(finished) << "handshake did not finish";
  return outcome;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(testing::makeTestPki(pki_)); }

  TlsContextPtr server() {
    auto context = makeServerTlsContext(pki_.ca_cert, pki_.server_cert, pki_.server_key);
    EXPECT_TRUE(context.ok()) << context.error().message;
    return context.ok() ? *context : nullptr;
  }
  TlsContextPtr client(const std::string& pin) {
    auto context = makeClientTlsContext(pki_.ca_cert, pki_.agent_cert, pki_.agent_key, pin);
    EXPECT_TRUE(context.ok()) << context.error().message;
    return context.ok() ? *context : nullptr;
  }
  // A client context built by hand, to play clients our factory would never make.
  std::shared_ptr<ssl::context> rawClient(bool with_cert, int max_version) {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX* ctx = context->native_handle();
    SSL_CTX_set_max_proto_version(ctx, max_version);
    EXPECT_EQ(SSL_CTX_load_verify_locations(ctx, pki_.ca_cert.c_str(), nullptr), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (with_cert) {
      EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx, pki_.agent_cert.c_str()), 1);
      EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx, pki_.agent_key.c_str(), SSL_FILETYPE_PEM), 1);
    }
    return context;
  }

  testing::TestPki pki_;
};

TEST_F(TlsTest, MutualTls13HandshakeNamesTheAgent) {
  auto server_ctx = server();
  auto client_ctx = client(pki_.server_pin);
  ASSERT_TRUE(server_ctx && client_ctx);
  const Outcome outcome = handshake(*server_ctx, *client_ctx);
  EXPECT_FALSE(*outcome.server) << outcome.server->message();
  EXPECT_FALSE(*outcome.client) << outcome.client->message();
  EXPECT_FALSE(*outcome.client_read) << outcome.client_read->message();
  EXPECT_EQ(outcome.version, TLS1_3_VERSION);
  EXPECT_EQ(outcome.server_peer_cn, testing::kTestAgentId);
}

TEST_F(TlsTest, Tls12ClientIsRefused) {
  auto server_ctx = server();
  ASSERT_TRUE(server_ctx);
  auto client_ctx = rawClient(true, TLS1_2_VERSION);
  const Outcome outcome = handshake(*server_ctx, *client_ctx);
  EXPECT_TRUE(*outcome.server);
  EXPECT_TRUE(*outcome.client);
}

TEST_F(TlsTest, RevokedClientCertificateIsRefusedAndOthersStillAccepted) {
  const std::string ca_dir = pki_.dir.file("ca");
  auto revoked = revokeCertificates(ca_dir, {pki_.agent_cert});
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  auto server_ctx =
      makeServerTlsContext(pki_.ca_cert, pki_.server_cert, pki_.server_key, revoked->crl_path);
  ASSERT_TRUE(server_ctx.ok()) << server_ctx.error().message;
  auto agent = client(pki_.server_pin);
  ASSERT_TRUE(agent);
  const Outcome refused = handshake(**server_ctx, *agent);
  EXPECT_TRUE(*refused.server);
  EXPECT_TRUE(*refused.client_read) << "the revoked client could read application data";
  auto other =
      makeClientTlsContext(pki_.ca_cert, pki_.agent2_cert, pki_.agent2_key, pki_.server_pin);
  ASSERT_TRUE(other.ok()) << other.error().message;
  const Outcome accepted = handshake(**server_ctx, **other);
  EXPECT_FALSE(*accepted.server) << accepted.server->message();
  EXPECT_EQ(accepted.server_peer_cn, "gw-2");
  // Without the list, the same certificate is accepted: the list is what refused it.
  const Outcome without = handshake(*server(), *agent);
  EXPECT_FALSE(*without.server) << without.server->message();
}

TEST_F(TlsTest, RevocationListsThatCannotBeTrustedAreRefusedAtStart) {
  // Another CA's list.
  auto foreign = revokeCertificates(pki_.dir.file("other-ca"), {pki_.stranger_cert});
  ASSERT_TRUE(foreign.ok()) << foreign.error().message;
  auto wrong_ca =
      makeServerTlsContext(pki_.ca_cert, pki_.server_cert, pki_.server_key, foreign->crl_path);
  ASSERT_FALSE(wrong_ca.ok());
  EXPECT_NE(wrong_ca.error().message.find("is not signed by the CA"), std::string::npos)
      << wrong_ca.error().message;
  // Not a CRL, and no file.
  const std::string garbage = pki_.dir.file("garbage.crl");
  FILE* file = std::fopen(garbage.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fputs("not a crl\n", file);
  std::fclose(file);
  auto bad = makeServerTlsContext(pki_.ca_cert, pki_.server_cert, pki_.server_key, garbage);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(garbage), std::string::npos) << bad.error().message;
  auto missing = makeServerTlsContext(pki_.ca_cert, pki_.server_cert, pki_.server_key,
                                      pki_.dir.file("none.crl"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("none.crl"), std::string::npos);
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefused) {
  auto server_ctx = server();
  ASSERT_TRUE(server_ctx);
  auto client_ctx = rawClient(false, TLS1_3_VERSION);
  const Outcome outcome = handshake(*server_ctx, *client_ctx);
  EXPECT_TRUE(*outcome.server);
  EXPECT_TRUE(*outcome.client_read) << "the refused client could read application data";
  EXPECT_TRUE(outcome.server_peer_cn.empty());
}

TEST_F(TlsTest, ClientCertificateFromAnotherCaIsRefused) {
  auto server_ctx = server();
  auto client_ctx =
      makeClientTlsContext(pki_.ca_cert, pki_.stranger_cert, pki_.stranger_key, pki_.server_pin);
  ASSERT_TRUE(server_ctx);
  ASSERT_TRUE(client_ctx.ok()) << client_ctx.error().message;
  const Outcome outcome = handshake(*server_ctx, **client_ctx);
  EXPECT_TRUE(*outcome.server);
  EXPECT_TRUE(*outcome.client_read);
  EXPECT_TRUE(outcome.server_peer_cn.empty());
}

TEST_F(TlsTest, PinMismatchIsRefusedByTheClient) {
  auto server_ctx = server();
  // A valid pin, but of another key (the agent's own).
  auto client_ctx = client(pki_.agent_pin);
  ASSERT_TRUE(server_ctx && client_ctx);
  const Outcome outcome = handshake(*server_ctx, *client_ctx);
  EXPECT_TRUE(*outcome.client);
  EXPECT_EQ(outcome.client_reason, "controller certificate does not match the pinned key");
  EXPECT_TRUE(*outcome.server);
}

TEST_F(TlsTest, ServerFromAnotherCaIsRefusedEvenWithItsPin) {
  auto server_ctx =
      makeServerTlsContext(pki_.other_ca_cert, pki_.stranger_server_cert, pki_.stranger_server_key);
  ASSERT_TRUE(server_ctx.ok()) << server_ctx.error().message;
  auto client_ctx = client(pki_.stranger_server_pin);
  ASSERT_TRUE(client_ctx);
  const Outcome outcome = handshake(**server_ctx, *client_ctx);
  EXPECT_TRUE(*outcome.client);
  EXPECT_NE(outcome.client_reason.find("peer certificate rejected"), std::string::npos)
      << outcome.client_reason;
}

TEST_F(TlsTest, MissingFilesAreRefusedWithTheirName) {
  const std::string missing = pki_.dir.file("missing.crt");
  auto server_ctx = makeServerTlsContext(missing, pki_.server_cert, pki_.server_key);
  ASSERT_FALSE(server_ctx.ok());
  EXPECT_NE(server_ctx.error().message.find(missing), std::string::npos);
  EXPECT_NE(server_ctx.error().message.find("No such file"), std::string::npos)
      << server_ctx.error().message;
  auto client_ctx = makeClientTlsContext(pki_.ca_cert, pki_.agent_cert, missing, pki_.server_pin);
  ASSERT_FALSE(client_ctx.ok());
  EXPECT_NE(client_ctx.error().message.find(missing), std::string::npos);
}

TEST_F(TlsTest, KeyReadableByOthersIsRefused) {
  ASSERT_EQ(::chmod(pki_.server_key.c_str(), 0644), 0);
  auto server_ctx = makeServerTlsContext(pki_.ca_cert, pki_.server_cert, pki_.server_key);
  ASSERT_FALSE(server_ctx.ok());
  EXPECT_NE(server_ctx.error().message.find("group or others (mode 0644)"), std::string::npos)
      << server_ctx.error().message;
  ASSERT_EQ(::chmod(pki_.agent_key.c_str(), 0640), 0);
  auto client_ctx =
      makeClientTlsContext(pki_.ca_cert, pki_.agent_cert, pki_.agent_key, pki_.server_pin);
  ASSERT_FALSE(client_ctx.ok());
  EXPECT_NE(client_ctx.error().message.find(pki_.agent_key), std::string::npos);
}

TEST_F(TlsTest, GarbageAndMismatchedFilesAreRefusedWithOpensslReason) {
  // Another certificate's key: the file and OpenSSL's reason are in the message.
  auto mismatched = makeServerTlsContext(pki_.ca_cert, pki_.server_cert, pki_.agent_key);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.error().message.find(pki_.agent_key), std::string::npos);
  EXPECT_NE(mismatched.error().message.find("key values mismatch"), std::string::npos)
      << mismatched.error().message;
  auto garbage_ca = makeServerTlsContext(pki_.server_key, pki_.server_cert, pki_.server_key);
  ASSERT_FALSE(garbage_ca.ok());
  EXPECT_NE(garbage_ca.error().message.find("CA file"), std::string::npos)
      << garbage_ca.error().message;
}

TEST_F(TlsTest, MalformedPinIsRefused) {
  for (const std::string& pin :
       {std::string(""), std::string(63, 'a'), std::string(64, 'A'), std::string(64, 'g')}) {
    auto context = makeClientTlsContext(pki_.ca_cert, pki_.agent_cert, pki_.agent_key, pin);
    EXPECT_FALSE(context.ok()) << pin;
  }
}

TEST_F(TlsTest, SpkiPinIsOfThePublicKey) {
  auto pin = spkiPinOfCertificate(pki_.server_cert);
  ASSERT_TRUE(pin.ok()) << pin.error().message;
  EXPECT_EQ(*pin, pki_.server_pin);
  EXPECT_TRUE(validateSpkiPin(*pin).ok());
  auto other = spkiPinOfCertificate(pki_.agent_cert);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, *pin);
  EXPECT_FALSE(spkiPinOfCertificate(pki_.server_key).ok());
}

}  // namespace
}  // namespace shadan

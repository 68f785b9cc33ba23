#include "common/tls_socket.h"

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/tls.h"
#include "tests/transport/test_pki.h"

namespace shadan {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using testing::runUntil;

std::string pattern(size_t size, char seed) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(seed + static_cast<char>(i % 251));
  return bytes;
}

class TlsSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::makeTestPki(pki_));
    auto server = makeServerTlsContext(pki_.ca_cert, pki_.server_cert, pki_.server_key);
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ctx_ = *server;
    client_ctx_ = clientContext(pki_.server_pin);
  }

  TlsContextPtr clientContext(const std::string& pin) {
    auto client = makeClientTlsContext(pki_.ca_cert, pki_.agent_cert, pki_.agent_key, pin);
    EXPECT_TRUE(client.ok()) << client.error().message;
    return client.ok() ? *client : nullptr;
  }

  // A connected TCP pair on loopback: (accepted, dialled).
  std::pair<tcp::socket, tcp::socket> connectedPair() {
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket dialled(io_);
    dialled.connect(acceptor.local_endpoint());
    return {acceptor.accept(), std::move(dialled)};
  }

  // Runs both handshakes; the outcomes in server_hs / client_hs.
  template <class Server, class Client>
  void handshake(Server& server, Client& client) {
    server.async_handshake(ssl::stream_base::server, [this](ErrorCode ec) { server_hs_ = ec; });
    client.async_handshake(ssl::stream_base::client, [this](ErrorCode ec) { client_hs_ = ec; });
    ASSERT_TRUE(runUntil(io_, [&] { return server_hs_ && client_hs_; }));
  }

  // Two of ours, handshaken on loopback.
  struct Ends {
    std::unique_ptr<TlsSocket> server, client;
  };
  Ends handshaken() {
    auto [accepted, dialled] = connectedPair();
    Ends ends{std::make_unique<TlsSocket>(std::move(accepted), *server_ctx_),
              std::make_unique<TlsSocket>(std::move(dialled), *client_ctx_)};
    server_hs_.reset();
    client_hs_.reset();
    handshake(*ends.server, *ends.client);
    EXPECT_TRUE(server_hs_ && !*server_hs_ && client_hs_ && !*client_hs_) << "handshake failed";
    return ends;
  }

  // How a one-byte read on `reader` ends once `then` has run.
  ErrorCode readAfter(TlsSocket& reader, const std::function<void()>& then) {
    char byte = 0;
    std::optional<ErrorCode> read;
    reader.async_read_some(asio::buffer(&byte, 1), [&](ErrorCode ec, size_t) { read = ec; });
    EXPECT_FALSE(read.has_value()) << "completed inside the initiating call";
    io_.poll();
    EXPECT_FALSE(read.has_value()) << "a read with nothing to read completed";
    then();
    EXPECT_TRUE(runUntil(io_, [&] { return read.has_value(); }));
    return read.value_or(ErrorCode{});
  }

  // Sends `out` from `from` while `to` reads it, in both directions at once when given two.
  template <class From, class To>
  void transfer(From& from, To& to, const std::string& out, std::string& in) {
    in.assign(out.size(), '\0');
    asio::async_write(from, asio::buffer(out),
                      [this](ErrorCode ec, size_t) { wrote_.push_back(ec); });
    asio::async_read(to, asio::buffer(in), [this](ErrorCode ec, size_t) { read_.push_back(ec); });
  }

  testing::TestPki pki_;
  asio::io_context io_;
  TlsContextPtr server_ctx_, client_ctx_;
  std::optional<ErrorCode> server_hs_, client_hs_;
  std::vector<ErrorCode> wrote_, read_;
};

TEST_F(TlsSocketTest, TalksToAsioSslStreamBothWaysAtOnce) {
  auto [accepted, dialled] = connectedPair();
  ssl::stream<tcp::socket> server(std::move(accepted), *server_ctx_);
  TlsSocket client(std::move(dialled), *client_ctx_);
  ASSERT_NO_FATAL_FAILURE(handshake(server, client));
  ASSERT_FALSE(*server_hs_) << server_hs_->message();
  ASSERT_FALSE(*client_hs_) << client_hs_->message();
  EXPECT_EQ(SSL_version(client.native_handle()), TLS1_3_VERSION);
  // More than the socket buffers hold, so both sides wait for the other to read.
  const std::string up = pattern(3 << 20, 'a'), down = pattern(3 << 20, 'k');
  std::string got_up, got_down;
  transfer(client, server, up, got_up);
  transfer(server, client, down, got_down);
  ASSERT_TRUE(runUntil(io_, [&] { return wrote_.size() == 2 && read_.size() == 2; }));
  for (const ErrorCode& ec : wrote_) EXPECT_FALSE(ec) << ec.message();
  for (const ErrorCode& ec : read_) EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(got_up == up);
  EXPECT_TRUE(got_down == down);
}

TEST_F(TlsSocketTest, ServerSideNamesTheAgentAndGathersBuffersIntoOneWrite) {
  auto [accepted, dialled] = connectedPair();
  TlsSocket server(std::move(accepted), *server_ctx_);
  ssl::stream<tcp::socket> client(std::move(dialled), *client_ctx_);
  ASSERT_NO_FATAL_FAILURE(handshake(server, client));
  ASSERT_FALSE(*server_hs_) << server_hs_->message();
  auto name = peerCommonName(server.native_handle());
  ASSERT_TRUE(name.ok()) << name.error().message;
  EXPECT_EQ(*name, testing::kTestAgentId);
  // A header and a payload, as Beast writes a WebSocket frame.
  const std::string header = "HDR", payload = pattern(1000, 'p');
  std::vector<asio::const_buffer> frame{asio::buffer(header), asio::buffer(payload)};
  std::optional<size_t> written;
  server.async_write_some(frame, [&](ErrorCode ec, size_t n) {
    EXPECT_FALSE(ec) << ec.message();
    written = n;
  });
  ASSERT_TRUE(runUntil(io_, [&] { return written.has_value(); }));
  EXPECT_EQ(*written, header.size() + payload.size());
  std::string got(*written, '\0');
  asio::async_read(client, asio::buffer(got),
                   [this](ErrorCode ec, size_t) { read_.push_back(ec); });
  ASSERT_TRUE(runUntil(io_, [&] { return read_.size() == 1; }));
  EXPECT_FALSE(read_[0]) << read_[0].message();
  EXPECT_EQ(got, header + payload);
}

TEST_F(TlsSocketTest, WrongPinFailsTheHandshakeWithTheReason) {
  client_ctx_ = clientContext(std::string(64, '0'));
  auto [accepted, dialled] = connectedPair();
  TlsSocket server(std::move(accepted), *server_ctx_);
  TlsSocket client(std::move(dialled), *client_ctx_);
  ASSERT_NO_FATAL_FAILURE(handshake(server, client));
  ASSERT_TRUE(*client_hs_);
  EXPECT_EQ(client_hs_->category(), asio::error::get_ssl_category());
  EXPECT_EQ(tlsHandshakeFailureReason(*client_hs_, client.native_handle()),
            "controller certificate does not match the pinned key");
  EXPECT_TRUE(*server_hs_) << "the server finished a handshake the client refused";
}

TEST_F(TlsSocketTest, ClosingTheSocketEndsAPendingReadNeverInline) {
  Ends ends = handshaken();
  ErrorCode ignored;
  EXPECT_EQ(readAfter(*ends.server, [&] { ends.server->next_layer().close(ignored); }),
            asio::error::operation_aborted);
  // And nothing after the close touches a descriptor.
  std::optional<ErrorCode> later;
  ends.server->async_write_some(asio::buffer("x", 1), [&](ErrorCode ec, size_t) { later = ec; });
  EXPECT_FALSE(later.has_value());
  ASSERT_TRUE(runUntil(io_, [&] { return later.has_value(); }));
  EXPECT_EQ(*later, asio::error::operation_aborted);
}

TEST_F(TlsSocketTest, CloseNotifyIsEofAndABareTcpCloseIsTruncation) {
  Ends orderly = handshaken();
  const ErrorCode notified =
      readAfter(*orderly.client, [&] { orderly.server->shutdownAndClose(); });
  EXPECT_EQ(notified, asio::error::eof) << notified.message();
  Ends bare = handshaken();
  ErrorCode ignored;
  const ErrorCode cut = readAfter(*bare.client, [&] { bare.server->next_layer().close(ignored); });
  EXPECT_EQ(cut, ssl::error::stream_truncated) << cut.message();
}

// send(2) with MSG_NOSIGNAL: writing to a peer that reset the connection is an error, not a
// SIGPIPE that ends the process (this test would die with it).
TEST_F(TlsSocketTest, WritingToAVanishedPeerIsAnErrorNotASignal) {
  Ends ends = handshaken();
  TlsSocket& server = *ends.server;
  TlsSocket& client = *ends.client;
  // An abortive close: the peer answers further data with RST.
  client.next_layer().set_option(asio::socket_base::linger(true, 0));
  ErrorCode ignored;
  client.next_layer().close(ignored);
  const std::string block = pattern(64 * 1024, 'z');
  std::optional<ErrorCode> failed;
  std::function<void()> again = [&] {
    server.async_write_some(asio::buffer(block), [&](ErrorCode ec, size_t) {
      if (ec) return failed.emplace(ec), void();
      again();
    });
  };
  again();
  ASSERT_TRUE(runUntil(io_, [&] { return failed.has_value(); }));
  EXPECT_TRUE(*failed == asio::error::broken_pipe || *failed == asio::error::connection_reset)
      << failed->message();
}

}  // namespace
}  // namespace shadan

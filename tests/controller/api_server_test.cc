#include "controller/api_server.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "tests/controller/api_stack.h"

namespace shadan::controller {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using nlohmann::json;
using tcp = asio::ip::tcp;

using testing::kAuditorToken;
using testing::kDetectorToken;
using testing::kOperatorToken;

// A TLS 1.3-only server context with a fresh self-signed P-256 certificate.
TlsContextPtr selfSignedServerContext() {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* raw = ctx->native_handle();
  SSL_CTX_set_min_proto_version(raw, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(raw, TLS1_3_VERSION);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
  EXPECT_TRUE(key && cert);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("controller"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  EXPECT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  EXPECT_EQ(SSL_CTX_use_certificate(raw, cert.get()), 1);
  EXPECT_EQ(SSL_CTX_use_PrivateKey(raw, key.get()), 1);
  return ctx;
}

struct Reply {
  int status = 0;
  json body;
  std::string www_authenticate;
};

class ApiServerTest : public ::testing::Test, protected testing::ApiStack {
 protected:
  ApiServerTest() : ApiStack(testing::kTestPolicy) {
    server_ =
        ApiServer::create(io_, selfSignedServerContext(), ListenAddress{"127.0.0.1", 0}, *router_)
            .value();
    server_->start();
    port_ = server_->port();
    thread_ = std::thread([this]() { io_.run(); });
  }

  ~ApiServerTest() override {
    asio::post(io_, [this]() {
      server_->stop();
      if (limited_) limited_->stop();
      io_.stop();
    });
    thread_.join();
  }

  // A second server with `limits`, which every later call() and connect() goes to.
  void startLimited(const ApiLimits& limits) {
    limited_ = ApiServer::create(io_, selfSignedServerContext(), ListenAddress{"127.0.0.1", 0},
                                 *router_, limits)
                   .value();
    limited_->start();
    port_ = limited_->port();
  }

  using Stream = asio::ssl::stream<tcp::socket>;

  // A TCP connection to the server from `source` (any address of 127/8 is this host's).
  tcp::socket tcpFrom(asio::io_context& io, const std::string& source) {
    tcp::socket socket(io);
    socket.open(tcp::v4());
    socket.bind(tcp::endpoint(asio::ip::make_address(source), 0));
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    return socket;
  }

  std::unique_ptr<Stream> connect(asio::io_context& io, asio::ssl::context& tls,
                                  const std::string& source = "127.0.0.1") {
    auto stream = std::make_unique<Stream>(tcpFrom(io, source), tls);
    stream->handshake(asio::ssl::stream_base::client);
    return stream;
  }

  // Whether the server closes `socket` (end of stream or reset) within `within`, reading and
  // discarding whatever comes; false when the socket is still open at the end.
  static bool closedByServer(tcp::socket& socket, std::chrono::milliseconds within) {
    const timeval tv{static_cast<time_t>(within.count() / 1000),
                     static_cast<suseconds_t>((within.count() % 1000) * 1000)};
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::array<char, 4096> buffer{};
    for (;;) {
      const ssize_t n = ::recv(socket.native_handle(), buffer.data(), buffer.size(), 0);
      if (n > 0) continue;
      if (n == 0) return true;
      return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
  }

  static asio::ssl::context clientContext() {
    asio::ssl::context tls(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_3_VERSION);
    tls.set_verify_mode(asio::ssl::verify_none);  // a self-signed test certificate
    return tls;
  }

  static Reply readReply(Stream& stream) {
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    Reply reply;
    reply.status = static_cast<int>(response.result_int());
    reply.body = json::parse(response.body(), nullptr, false);
    if (auto it = response.find(http::field::www_authenticate); it != response.end()) {
      reply.www_authenticate = std::string(it->value());
    }
    return reply;
  }

  Reply call(http::verb method, const std::string& target, std::optional<std::string> token,
             const std::string& body = "", const std::string& source = "127.0.0.1") {
    asio::io_context io;
    auto tls = clientContext();
    auto stream = connect(io, tls, source);
    http::request<http::string_body> request(method, target, 11);
    request.set(http::field::host, "127.0.0.1");
    if (token) request.set(http::field::authorization, "Bearer " + *token);
    if (!body.empty()) request.set(http::field::content_type, "application/json");
    request.body() = body;
    request.keep_alive(false);
    request.prepare_payload();
    http::write(*stream, request);
    return readReply(*stream);
  }

  asio::io_context io_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<ApiServer> limited_;
  uint16_t port_ = 0;
  std::thread thread_;
};

// The systemd watchdog's probe (common/watchdog.h) runs on the server's own network thread, so
// a stuck thread holds the pings back.
// Reads from `stream` until `needle` has arrived (or the stream ends or fails); what was read.
std::string readUntil(asio::ssl::stream<tcp::socket>& stream, const std::string& needle) {
  std::string got;
  std::array<char, 4096> buffer{};
  while (got.find(needle) == std::string::npos) {
    boost::system::error_code ec;
    const size_t n = stream.read_some(asio::buffer(buffer), ec);
    if (ec) break;
    got.append(buffer.data(), n);
  }
  return got;
}

// GET /v1/events: the headers of a stream, then each published event as it is published; the
// stream is counted until the client goes.
TEST_F(ApiServerTest, EventStreamCarriesWhatIsPublished) {
  asio::io_context io;
  auto tls = clientContext();
  auto stream = connect(io, tls);
  const std::string request = "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                              std::string(kAuditorToken) + "\r\n\r\n";
  asio::write(*stream, asio::buffer(request));
  const std::string head = readUntil(*stream, ": shadan events\n\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Type: text/event-stream\r\n"), std::string::npos) << head;
  // The stream is registered on the network thread before its head is written: publish now.
  server_->publish("event: changed\ndata: {}\n\n");
  EXPECT_NE(readUntil(*stream, "data: {}\n\n").find("event: changed\n"), std::string::npos);
  server_->publish("event: changed\ndata: {\"n\":2}\n\n");
  EXPECT_NE(readUntil(*stream, "\"n\":2}\n\n").find("event: changed"), std::string::npos);
}

TEST_F(ApiServerTest, EventStreamNeedsAToken) {
  EXPECT_EQ(call(http::verb::get, "/v1/events", std::nullopt).status, 401);
  EXPECT_EQ(call(http::verb::get, "/v1/events", std::string("wrong")).status, 401);
}

// Console files are off unless the router serves them; then they come without a token and with
// a Content-Security-Policy that forbids inline code and other origins.
TEST_F(ApiServerTest, TheConsoleIsServedWithItsSecurityHeaders) {
  EXPECT_EQ(call(http::verb::get, "/", std::nullopt).status, 404);
  std::promise<void> served;
  asio::post(io_, [&] {  // the router is the core thread's
    router_->serveConsole(true);
    served.set_value();
  });
  served.get_future().wait();
  asio::io_context io;
  auto tls = clientContext();
  auto stream = connect(io, tls);
  asio::write(*stream, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n"
                                                "Connection: close\r\n\r\n")));
  const std::string page = readUntil(*stream, "</html>");
  EXPECT_EQ(page.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << page.substr(0, 200);
  EXPECT_NE(page.find("Content-Type: text/html; charset=utf-8\r\n"), std::string::npos);
  EXPECT_NE(page.find("Content-Security-Policy: default-src 'none'; script-src 'self';"),
            std::string::npos)
      << page.substr(0, 600);
  EXPECT_NE(page.find("X-Frame-Options: DENY\r\n"), std::string::npos);
  EXPECT_NE(page.find("X-Content-Type-Options: nosniff\r\n"), std::string::npos);
  EXPECT_NE(page.find("<script src=\"/console/console.js\" defer></script>"), std::string::npos);
  const Reply script = call(http::verb::get, "/console/console.js", std::nullopt);
  EXPECT_EQ(script.status, 200);
  EXPECT_EQ(call(http::verb::get, "/console/nothing.js", std::nullopt).status, 404);
  EXPECT_EQ(call(http::verb::get, "/console/../controller.json", std::nullopt).status, 404);
}

TEST_F(ApiServerTest, TheWatchdogProbeIsAnsweredOnTheNetworkThread) {
  std::promise<std::string> thread_name;
  server_->probe([&thread_name] {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    thread_name.set_value(name);
  });
  auto answered = thread_name.get_future();
  ASSERT_EQ(answered.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(answered.get(), "shadan-api");
}

TEST_F(ApiServerTest, MissingOrWrongTokenIs401) {
  auto missing = call(http::verb::get, "/v1/status", std::nullopt);
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.body["error"]["code"], "unauthorized");
  EXPECT_EQ(missing.www_authenticate, "Bearer");
  auto wrong = call(http::verb::get, "/v1/status", std::string("operator-secret-tokeN"));
  EXPECT_EQ(wrong.status, 401);
  auto ok = call(http::verb::get, "/v1/status", std::string(kAuditorToken));
  EXPECT_EQ(ok.status, 200);
}

TEST_F(ApiServerTest, WrongRoleIs403) {
  const std::string body = R"({"segment":"lgwan","reason":"test"})";
  auto auditor = call(http::verb::post, "/v1/isolate", std::string(kAuditorToken), body);
  EXPECT_EQ(auditor.status, 403);
  EXPECT_EQ(auditor.body["error"]["code"], "forbidden");
  auto detector = call(http::verb::post, "/v1/restore", std::string(kDetectorToken), body);
  EXPECT_EQ(detector.status, 403);
  auto protected_segment = call(http::verb::post, "/v1/isolate", std::string(kDetectorToken),
                                R"({"segment":"mgmt","reason":"alert"})");
  EXPECT_EQ(protected_segment.status, 403);
}

TEST_F(ApiServerTest, BadBodyIs400NamingTheField) {
  auto unknown = call(http::verb::post, "/v1/isolate", std::string(kOperatorToken),
                      R"({"segment":"lgwan","reason":"x","force":true})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body["error"]["message"].get<std::string>().find("force"), std::string::npos);
  auto wrong_type = call(http::verb::post, "/v1/isolate", std::string(kOperatorToken),
                         R"({"segment":"lgwan","reason":"x","ttl_s":"10"})");
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_NE(wrong_type.body["error"]["message"].get<std::string>().find("ttl_s"),
            std::string::npos);
  auto no_reason =
      call(http::verb::post, "/v1/isolate", std::string(kOperatorToken), R"({"segment":"lgwan"})");
  EXPECT_EQ(no_reason.status, 400);
  EXPECT_NE(no_reason.body["error"]["message"].get<std::string>().find("reason"),
            std::string::npos);
  auto duplicate = call(http::verb::post, "/v1/isolate", std::string(kOperatorToken),
                        R"({"segment":"lgwan","segment":"mgmt","reason":"x"})");
  EXPECT_EQ(duplicate.status, 400);
  auto not_json = call(http::verb::post, "/v1/isolate", std::string(kOperatorToken), "segment=x");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_TRUE(hub_.sent.empty());
}

TEST_F(ApiServerTest, OversizedBodyIs413) {
  asio::io_context io;
  auto tls = clientContext();
  auto stream = connect(io, tls);
  // Only the header: the server must refuse on Content-Length alone, without reading the body.
  const std::string head =
      std::string("POST /v1/isolate HTTP/1.1\r\nHost: 127.0.0.1\r\n") + "Authorization: Bearer " +
      kOperatorToken + "\r\n" +
      "Content-Type: application/json\r\nContent-Length: " + std::to_string(kApiMaxBodyBytes + 1) +
      "\r\n\r\n";
  asio::write(*stream, asio::buffer(head));
  auto reply = readReply(*stream);
  EXPECT_EQ(reply.status, 413);
  EXPECT_EQ(reply.body["error"]["code"], "payload_too_large");
}

TEST_F(ApiServerTest, OversizedChunkedBodyIs413) {
  asio::io_context io;
  auto tls = clientContext();
  auto stream = connect(io, tls);
  // No Content-Length: the size is only known chunk by chunk. 16 chunks of 8 KiB = 128 KiB,
  // twice the limit; the server must stop at the limit, not buffer the whole body.
  std::string request = std::string("POST /v1/isolate HTTP/1.1\r\nHost: 127.0.0.1\r\n") +
                        "Authorization: Bearer " + kOperatorToken + "\r\n" +
                        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk(8192, ' ');
  for (int i = 0; i < 16; ++i) request += "2000\r\n" + chunk + "\r\n";
  request += "0\r\n\r\n";
  boost::system::error_code ec;
  asio::write(*stream, asio::buffer(request), ec);  // the server may stop reading early
  auto reply = readReply(*stream);
  EXPECT_EQ(reply.status, 413);
  EXPECT_EQ(reply.body["error"]["code"], "payload_too_large");
  EXPECT_TRUE(hub_.sent.empty());
}

TEST_F(ApiServerTest, IsolateIs202AndShowsInStatus) {
  auto isolate = call(http::verb::post, "/v1/isolate", std::string(kDetectorToken),
                      R"({"segment":"lgwan","reason":"IDS alert","ticket":"INC-9"})");
  ASSERT_EQ(isolate.status, 202) << isolate.body.dump();
  EXPECT_EQ(isolate.body["state"], "dispatched");
  EXPECT_EQ(isolate.body["gateways"], json::array({"core-gw", "edge-gw"}));
  const std::string order_id = isolate.body["order_id"].get<std::string>();
  EXPECT_EQ(order_id.size(), 36u);

  auto status = call(http::verb::get, "/v1/status", std::string(kAuditorToken));
  ASSERT_EQ(status.status, 200);
  EXPECT_EQ(status.body["segments"]["lgwan"]["isolated"], true);
  EXPECT_EQ(status.body["segments"]["lgwan"]["profile"], "full");
  EXPECT_EQ(status.body["gateways"]["core-gw"]["connected"], false);
  ASSERT_EQ(status.body["orders"].size(), 1u);
  EXPECT_EQ(status.body["orders"][0]["order_id"], order_id);

  auto order = call(http::verb::get, "/v1/orders/" + order_id, std::string(kOperatorToken));
  ASSERT_EQ(order.status, 200);
  EXPECT_EQ(order.body["gateways"]["edge-gw"]["state"], "pending");
  auto missing = call(http::verb::get, "/v1/orders/nope", std::string(kOperatorToken));
  EXPECT_EQ(missing.status, 404);
}

TEST_F(ApiServerTest, RestoreAwaitsApprovalAndListsIt) {
  auto restore = call(http::verb::post, "/v1/restore", std::string(kOperatorToken),
                      R"({"segment":"lgwan","reason":"all clear"})");
  ASSERT_EQ(restore.status, 202) << restore.body.dump();
  EXPECT_EQ(restore.body["state"], "awaiting_approval");
  EXPECT_EQ(restore.body["needed"], 2);
  EXPECT_EQ(restore.body["have"], 0);
  const std::string approval_id = restore.body["approval_id"].get<std::string>();

  auto approvals = call(http::verb::get, "/v1/approvals", std::string(kAuditorToken));
  ASSERT_EQ(approvals.status, 200);
  ASSERT_EQ(approvals.body["approvals"].size(), 1u);
  const auto& pending = approvals.body["approvals"][0];
  auto payload = base64Decode(pending["payload"].get<std::string>()).value();
  auto sig = keys_.sato
                 .sign(dssePae(pending["payloadType"].get<std::string>(),
                               std::string(payload.begin(), payload.end())))
                 .value();
  const json body = {{"keyid", keys_.sato.keyId()}, {"sig", base64Encode(sig)}};
  auto signed_once = call(http::verb::post, "/v1/approvals/" + approval_id + "/signatures",
                          std::string(kOperatorToken), body.dump());
  ASSERT_EQ(signed_once.status, 200) << signed_once.body.dump();
  EXPECT_EQ(signed_once.body["have"], 1);
  EXPECT_EQ(signed_once.body["state"], "pending");
  auto by_detector = call(http::verb::post, "/v1/approvals/" + approval_id + "/signatures",
                          std::string(kDetectorToken), body.dump());
  EXPECT_EQ(by_detector.status, 403);
}

TEST_F(ApiServerTest, UnknownEndpointIs404) {
  auto reply = call(http::verb::get, "/v1/nothing", std::string(kOperatorToken));
  EXPECT_EQ(reply.status, 404);
  auto wrong_method = call(http::verb::get, "/v1/isolate", std::string(kOperatorToken));
  EXPECT_EQ(wrong_method.status, 404);
}

// ---------------------------------------------------------------------------------------------
// Limits: what one client, or many, can hold (docs/security.md "Limits").

TEST_F(ApiServerTest, ConnectionsPastThePerPeerLimitAreClosedBeforeTls) {
  ApiLimits limits;
  limits.max_connections = 16;
  limits.max_connections_per_peer = 3;
  limits.handshake_timeout = std::chrono::seconds(60);  // not what closes anything here
  ASSERT_NO_FATAL_FAILURE(startLimited(limits));
  asio::io_context io;
  // Three connections that never start TLS hold every place 127.0.0.1 has.
  std::vector<tcp::socket> held;
  for (int i = 0; i < 3; ++i) held.push_back(tcpFrom(io, "127.0.0.1"));
  tcp::socket fourth = tcpFrom(io, "127.0.0.1");
  EXPECT_TRUE(closedByServer(fourth, std::chrono::seconds(10)));
  // Another address is served meanwhile.
  EXPECT_EQ(call(http::verb::get, "/v1/status", std::string(kAuditorToken), "", "127.0.0.2").status,
            200);
  // The held ones were not closed with it.
  EXPECT_FALSE(closedByServer(held[0], std::chrono::milliseconds(200)));
  // A place given back is a place to take: once the server has seen one close, 127.0.0.1 is
  // served again.
  held[0].close();
  int status = 0;
  for (int attempt = 0; attempt < 100 && status != 200; ++attempt) {
    try {
      status = call(http::verb::get, "/v1/status", std::string(kAuditorToken)).status;
    } catch (const boost::system::system_error&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // refused: not seen yet
    }
  }
  EXPECT_EQ(status, 200);
}

TEST_F(ApiServerTest, ConnectionsPastTheTotalLimitAreClosedWhoeverOpensThem) {
  ApiLimits limits;
  limits.max_connections = 4;
  limits.max_connections_per_peer = 4;
  limits.handshake_timeout = std::chrono::seconds(60);
  ASSERT_NO_FATAL_FAILURE(startLimited(limits));
  asio::io_context io;
  std::vector<tcp::socket> held;
  for (const char* source : {"127.0.0.1", "127.0.0.1", "127.0.0.3", "127.0.0.4"}) {
    held.push_back(tcpFrom(io, source));
  }
  tcp::socket fifth = tcpFrom(io, "127.0.0.5");
  EXPECT_TRUE(closedByServer(fifth, std::chrono::seconds(10)));
  EXPECT_FALSE(closedByServer(held[3], std::chrono::milliseconds(200)));
}

TEST_F(ApiServerTest, HandshakesThatNeverStartAreClosedAtTheHandshakeTimeout) {
  ApiLimits limits;
  limits.handshake_timeout = std::chrono::milliseconds(300);
  ASSERT_NO_FATAL_FAILURE(startLimited(limits));
  asio::io_context io;
  std::vector<tcp::socket> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(tcpFrom(io, "127.0.0.1"));
  for (tcp::socket& socket : idle) EXPECT_TRUE(closedByServer(socket, std::chrono::seconds(10)));
}

TEST_F(ApiServerTest, SlowLorisClientsAreClosedAtTheRequestTimeoutWhileOthersAreServed) {
  ApiLimits limits;
  limits.request_timeout = std::chrono::milliseconds(1000);
  ASSERT_NO_FATAL_FAILURE(startLimited(limits));
  asio::io_context io;
  auto tls = clientContext();
  std::vector<std::unique_ptr<Stream>> slow;
  for (int i = 0; i < 8; ++i) slow.push_back(connect(io, tls));
  const std::string request = std::string("GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n") +
                              "X-Pad: " + std::string(400, 'a') + "\r\n\r\n";
  // A byte every 20 ms each: the whole request would take 9 s, far past the 1 s allowed (the
  // default 30 s would let every one of them through).
  std::vector<bool> closed(slow.size(), false);
  bool served = false;
  for (size_t at = 0; at < request.size(); ++at) {
    for (size_t i = 0; i < slow.size(); ++i) {
      if (closed[i]) continue;
      boost::system::error_code ec;
      asio::write(*slow[i], asio::buffer(&request[at], 1), ec);
      if (ec) closed[i] = true;
    }
    if (at == 10) {
      // An operator meanwhile: served as usual.
      served = call(http::verb::post, "/v1/isolate", std::string(kOperatorToken),
                    R"({"segment":"lgwan","reason":"while under attack"})")
                   .status == 202;
    }
    if (std::all_of(closed.begin(), closed.end(), [](bool c) { return c; })) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
  // Every slow client was cut off before it could finish its request.
  for (size_t i = 0; i < slow.size(); ++i) {
    EXPECT_TRUE(closed[i]) << "slow client " << i;
  }
}

TEST_F(ApiServerTest, HeadersPastTheLimitAre400) {
  ApiLimits limits;
  limits.max_header_bytes = 1024;
  ASSERT_NO_FATAL_FAILURE(startLimited(limits));
  asio::io_context io;
  auto tls = clientContext();
  auto stream = connect(io, tls);
  const std::string head = std::string("GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n") +
                           "Authorization: Bearer " + kAuditorToken + "\r\n" +
                           "X-Pad: " + std::string(2000, 'a') + "\r\n\r\n";
  asio::write(*stream, asio::buffer(head));
  auto reply = readReply(*stream);
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.body["error"]["code"], "bad_request");
  // Within the limit, the same request is answered.
  EXPECT_EQ(call(http::verb::get, "/v1/status", std::string(kAuditorToken)).status, 200);
}

TEST_F(ApiServerTest, PeersWhoseConnectionsFailAreRefusedAtAcceptWhileOthersAreServed) {
  ApiLimits limits;
  limits.max_header_bytes = 1024;
  limits.peer_failures_burst = 4;
  limits.peer_failures_per_min = 1;  // no refill within the test
  ASSERT_NO_FATAL_FAILURE(startLimited(limits));
  asio::io_context io;
  auto tls = clientContext();
  // A client that behaves is never slowed: only failures take from a peer's bucket.
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(call(http::verb::get, "/v1/status", std::string(kAuditorToken)).status, 200) << i;
  }
  // 127.0.0.2 fails four ways: a wrong token, headers over the limit, a connection closed
  // before its handshake, another wrong token.
  EXPECT_EQ(call(http::verb::get, "/v1/status", std::string("wrong"), "", "127.0.0.2").status, 401);
  {
    auto stream = connect(io, tls, "127.0.0.2");
    const std::string head = std::string("GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n") +
                             "X-Pad: " + std::string(2000, 'a') + "\r\n\r\n";
    asio::write(*stream, asio::buffer(head));
    EXPECT_EQ(readReply(*stream).status, 400);
  }
  tcpFrom(io, "127.0.0.2").close();
  EXPECT_EQ(call(http::verb::get, "/v1/status", std::string("wrong"), "", "127.0.0.2").status, 401);
  // Its bucket is empty: its next connection is closed at accept, before any TLS (the
  // handshake-failure above is seen by the server a moment after the close, hence the retries).
  bool refused = false;
  for (int attempt = 0; attempt < 50 && !refused; ++attempt) {
    tcp::socket next = tcpFrom(io, "127.0.0.2");
    refused = closedByServer(next, std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(refused);
  EXPECT_THROW(call(http::verb::get, "/v1/status", std::string(kAuditorToken), "", "127.0.0.2"),
               boost::system::system_error);
  // Every other peer is served as before, the well-behaved one included.
  EXPECT_EQ(call(http::verb::post, "/v1/isolate", std::string(kOperatorToken),
                 R"({"segment":"lgwan","reason":"while 127.0.0.2 is refused"})", "127.0.0.3")
                .status,
            202);
  EXPECT_EQ(call(http::verb::get, "/v1/status", std::string(kAuditorToken)).status, 200);
}

TEST_F(ApiServerTest, LimitsThatCannotWorkAreRefused) {
  ApiLimits limits;
  limits.max_connections = 0;
  EXPECT_FALSE(ApiServer::create(io_, selfSignedServerContext(), ListenAddress{"127.0.0.1", 0},
                                 *router_, limits)
                   .ok());
  limits = ApiLimits{};
  limits.request_timeout = std::chrono::milliseconds(0);
  EXPECT_FALSE(ApiServer::create(io_, selfSignedServerContext(), ListenAddress{"127.0.0.1", 0},
                                 *router_, limits)
                   .ok());
  limits = ApiLimits{};
  limits.peer_failures_burst = 0;
  EXPECT_FALSE(ApiServer::create(io_, selfSignedServerContext(), ListenAddress{"127.0.0.1", 0},
                                 *router_, limits)
                   .ok());
}

}  // namespace
}  // namespace shadan::controller

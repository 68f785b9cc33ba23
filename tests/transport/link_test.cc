// The agent channel end to end on loopback: a real WebSocketAgentHub and a real ControllerLink
// (or a hand-made client/server where the test must misbehave) on one io_context.

#include "agents/controller_link.h"

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <gtest/gtest.h>
#include <pthread.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <future>
#include <memory>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/dsse.h"
#include "common/ed25519.h"
#include "common/orders.h"
#include "common/tls.h"
#include "controller/agent_hub.h"
#include "tests/transport/test_pki.h"

namespace shadan {

using namespace shadan::agent;  // NOLINT: the agent under test
namespace {

using namespace shadan::controller;  // NOLINT: the controller under test

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;
using std::chrono::milliseconds;
using testing::runFor;
using testing::runUntil;
using WsStream = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

const Json kEnvelope = {{"payloadType", "application/vnd.shadan.dispatch.v1+json"},
                        {"payload", "eyJ2IjoxfQ"},
                        {"signatures", Json::array({{{"keyid", "k"}, {"sig", "c2ln"}}})}};

// A WebSocket client the test drives by hand: it can skip the certificate, send anything and
// stay silent.
class RawClient {
 public:
  RawClient(asio::io_context& io, asio::ssl::context& tls) : ws_(beast::tcp_stream(io), tls) {}

  // From `source` (any address of 127/8 is this host's). With `reading` false, nothing is read
  // once connected: a peer that never reads.
  void connect(uint16_t port, const std::string& target = kAgentChannelPath,
               const std::string& source = "127.0.0.1", bool reading = true) {
    reading_ = reading;
    auto& socket = beast::get_lowest_layer(ws_).socket();
    socket.open(tcp::v4());
    socket.bind(tcp::endpoint(asio::ip::make_address(source), 0));
    beast::get_lowest_layer(ws_).async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
        [this, target](beast::error_code ec) {
          if (ec) return finishConnect(ec);
          ws_.next_layer().async_handshake(
              asio::ssl::stream_base::client, [this, target](beast::error_code hs) {
                if (hs) return finishConnect(hs);
                ws_.async_handshake(response_, "127.0.0.1", target,
                                    [this](beast::error_code ws) { finishConnect(ws); });
              });
        });
  }
  void send(std::string text) {
    outgoing_.push_back(std::move(text));
    if (outgoing_.size() == 1) writeNext();
  }
  // Closes the connection. A client that was reading must see `closed` set (run the io_context)
  // before it is destroyed if the io_context runs on: its pending read completes then.
  void close() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }
  void sendHello(const std::string& agent_id = testing::kTestAgentId) {
    send(Json{{"type", "hello"},
              {"agent_id", agent_id},
              {"agent_key", testing::kTestAgentKeyId},
              {"last_seq", 0},
              {"version", "test"}}
             .dump());
  }

  std::optional<beast::error_code> connected;
  std::optional<beast::error_code> closed;  // the read loop ended
  http::response<http::string_body> response_;
  std::vector<std::string> received;

 private:
  void finishConnect(beast::error_code ec) {
    connected = ec;
    if (!ec && reading_) read();
  }
  void read() {
    ws_.async_read(buffer_, [this](beast::error_code ec, size_t) {
      if (ec) return closed.emplace(ec), void();
      received.push_back(beast::buffers_to_string(buffer_.data()));
      buffer_.consume(buffer_.size());
      read();
    });
  }
  void writeNext() {
    ws_.text(true);
    ws_.async_write(asio::buffer(outgoing_.front()), [this](beast::error_code ec, size_t) {
      if (ec) return closed.emplace(ec), void();
      outgoing_.erase(outgoing_.begin());
      if (!outgoing_.empty()) writeNext();
    });
  }

  WsStream ws_;
  beast::flat_buffer buffer_;
  std::vector<std::string> outgoing_;
  bool reading_ = true;
};

// A controller that accepts the WebSocket and then never says anything (nor answers pings).
class SilentServer {
 public:
  SilentServer(asio::io_context& io, asio::ssl::context& tls)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), tls_(tls) {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      ws_ = std::make_unique<WsStream>(beast::tcp_stream(std::move(socket)), tls_);
      ws_->next_layer().async_handshake(asio::ssl::stream_base::server,
                                        [this](beast::error_code hs) {
                                          if (hs) return;
                                          ws_->async_accept([this](beast::error_code accept) {
                                            if (!accept) read();
                                          });
                                        });
    });
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  size_t received = 0;

 private:
  void read() {
    ws_->async_read(buffer_, [this](beast::error_code ec, size_t) {
      if (ec) return;
      ++received;
      buffer_.consume(buffer_.size());
      read();
    });
  }
  tcp::acceptor acceptor_;
  asio::ssl::context& tls_;
  std::unique_ptr<WsStream> ws_;
  beast::flat_buffer buffer_;
};

struct HelloEvent {
  uint64_t session_id;
  std::string agent_id;
  HelloMessage hello;
};

class LinkTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(testing::makeTestPki(pki_)); }
  void TearDown() override {
    links_.clear();
    hub_.reset();
  }

  AgentHubOptions hubOptions(uint16_t port = 0) {
    AgentHubOptions options;
    options.bind_address = "127.0.0.1";
    options.port = port;
    options.ca_file = pki_.ca_cert;
    options.cert_file = pki_.server_cert;
    options.key_file = pki_.server_key;
    options.hello_timeout = milliseconds(2000);
    return options;
  }

  void startHub(AgentHubOptions options) {
    AgentHubCallbacks callbacks;
    callbacks.on_hello = [this](uint64_t session, const std::string& agent,
                                const HelloMessage& hello) {
      hellos_.push_back({session, agent, hello});
      return accept_hello_;
    };
    callbacks.on_ack = [this](const std::string& agent, const Json& envelope,
                              const std::optional<Ed25519PublicKey>& verified_with) {
      acks_.emplace_back(agent, envelope);
      ack_verified_with_.push_back(verified_with);
    };
    callbacks.on_disconnect = [this](const std::string& agent) {
      hub_disconnects_.push_back(agent);
    };
    auto hub = WebSocketAgentHub::create(io_, std::move(options), std::move(callbacks));
    ASSERT_TRUE(hub.ok()) << hub.error().message;
    hub_ = std::move(*hub);
  }

  LinkOptions linkOptions() {
    LinkOptions options;
    options.host = "127.0.0.1";
    options.port = hub_ ? hub_->port() : 0;
    options.ca_file = pki_.ca_cert;
    options.cert_file = pki_.agent_cert;
    options.key_file = pki_.agent_key;
    options.controller_pin = pki_.server_pin;
    options.agent_id = testing::kTestAgentId;
    options.agent_keyid = testing::kTestAgentKeyId;
    options.backoff_initial = milliseconds(20);
    options.backoff_max = milliseconds(100);
    options.connect_timeout = milliseconds(2000);
    return options;
  }

  struct LinkEvents {
    std::vector<Json> dispatches;
    int connects = 0;
    std::vector<std::string> disconnects;
    std::vector<std::string> rejected;
  };

  ControllerLink& startLink(LinkOptions options, LinkEvents& events) {
    LinkCallbacks callbacks;
    callbacks.on_dispatch = [&events](const Json& envelope) {
      events.dispatches.push_back(envelope);
    };
    callbacks.on_connected = [&events] { ++events.connects; };
    callbacks.on_disconnected = [&events](const std::string& reason) {
      events.disconnects.push_back(reason);
    };
    callbacks.on_message_rejected = [&events](const std::string& reason) {
      events.rejected.push_back(reason);
    };
    callbacks.last_seq = [] { return uint64_t{41}; };
    links_.push_back(
        std::make_unique<ControllerLink>(io_, std::move(options), std::move(callbacks), clock_));
    Status started = links_.back()->start();
    EXPECT_TRUE(started.ok()) << started.error().message;
    return *links_.back();
  }

  std::shared_ptr<asio::ssl::context> clientContext(bool with_cert) {
    auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX* ctx = context->native_handle();
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    EXPECT_EQ(SSL_CTX_load_verify_locations(ctx, pki_.ca_cert.c_str(), nullptr), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (with_cert) {
      EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx, pki_.agent_cert.c_str()), 1);
      EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx, pki_.agent_key.c_str(), SSL_FILETYPE_PEM), 1);
    }
    return context;
  }

  // Two links of one agent: the second's session replaces the first's.
  void secondSessionClosesTheFirst(AgentHubOptions options);

  // A raw client that has said hello and been accepted.
  std::unique_ptr<RawClient> helloClient(asio::ssl::context& tls) {
    auto client = std::make_unique<RawClient>(io_, tls);
    client->connect(hub_->port());
    EXPECT_TRUE(runUntil(io_, [&] { return client->connected.has_value(); }));
    EXPECT_FALSE(client->connected.value_or(beast::error_code{})) << client->connected->message();
    const size_t before = hellos_.size();
    client->sendHello();
    EXPECT_TRUE(runUntil(io_, [&] { return hellos_.size() > before; }));
    return client;
  }

  asio::io_context io_;
  SystemClock clock_;
  testing::TestPki pki_;
  std::unique_ptr<WebSocketAgentHub> hub_;
  std::vector<std::unique_ptr<ControllerLink>> links_;
  std::vector<HelloEvent> hellos_;
  std::vector<std::pair<std::string, Json>> acks_;
  std::vector<std::optional<Ed25519PublicKey>> ack_verified_with_;
  std::vector<std::string> hub_disconnects_;
  bool accept_hello_ = true;
};

TEST_F(LinkTest, HelloDispatchAndAckFlowBothWays) {
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  LinkEvents events;
  ControllerLink& link = startLink(linkOptions(), events);
  EXPECT_FALSE(link.connected());
  EXPECT_TRUE(link.disconnectedSince().has_value());
  EXPECT_EQ(link.send({{"type", "ping"}}).error().code, ErrorCode::kUnavailable);

  ASSERT_TRUE(runUntil(io_, [&] { return !hellos_.empty() && events.connects == 1; }));
  EXPECT_EQ(hellos_[0].agent_id, testing::kTestAgentId);
  EXPECT_EQ(hellos_[0].hello.agent_id, testing::kTestAgentId);
  EXPECT_EQ(hellos_[0].hello.agent_key, testing::kTestAgentKeyId);
  EXPECT_EQ(hellos_[0].hello.last_seq, 41u);
  EXPECT_EQ(hellos_[0].hello.version, SHADAN_VERSION);
  EXPECT_TRUE(link.connected());
  EXPECT_FALSE(link.disconnectedSince().has_value());
  EXPECT_TRUE(hub_->connected(testing::kTestAgentId));
  EXPECT_FALSE(hub_->connected("gw-2"));
  EXPECT_EQ(hub_->send("gw-2", {{"type", "ping"}}).error().code, ErrorCode::kUnavailable);

  // Two dispatches arrive in order.
  Json second = kEnvelope;
  second["payload"] = "c2Vjb25k";
  ASSERT_TRUE(
      hub_->send(testing::kTestAgentId, {{"type", "dispatch"}, {"envelope", kEnvelope}}).ok());
  ASSERT_TRUE(hub_->send(testing::kTestAgentId, {{"type", "dispatch"}, {"envelope", second}}).ok());
  ASSERT_TRUE(runUntil(io_, [&] { return events.dispatches.size() == 2; }));
  EXPECT_EQ(events.dispatches[0], kEnvelope);
  EXPECT_EQ(events.dispatches[1], second);

  const Json ack = {{"payloadType", "application/vnd.shadan.ack.v1+json"},
                    {"payload", "e30"},
                    {"signatures", Json::array()}};
  ASSERT_TRUE(link.send({{"type", "ack"}, {"envelope", ack}}).ok());
  ASSERT_TRUE(runUntil(io_, [&] { return acks_.size() == 1; }));
  EXPECT_EQ(acks_[0].first, testing::kTestAgentId);
  EXPECT_EQ(acks_[0].second, ack);
  EXPECT_FALSE(ack_verified_with_[0].has_value());  // no key in the hello, no signature
  EXPECT_TRUE(events.disconnects.empty());
  EXPECT_TRUE(hub_disconnects_.empty());
}

// Several controllers (on one etcd): when the one the agent is connected to goes away, the
// next attempt dials the next address, and a dead first address does not keep it from the
// others.
TEST_F(LinkTest, ALinkMovesToTheNextControllerWhenItsOwnGoesAway) {
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  std::vector<std::string> second_hellos;
  AgentHubCallbacks callbacks;
  callbacks.on_hello = [&](uint64_t, const std::string& agent, const HelloMessage&) {
    second_hellos.push_back(agent);
    return true;
  };
  auto second = WebSocketAgentHub::create(io_, hubOptions(), std::move(callbacks));
  ASSERT_TRUE(second.ok()) << second.error().message;

  LinkOptions options = linkOptions();
  options.more_controllers = {{"127.0.0.1", (*second)->port()}};
  LinkEvents events;
  ControllerLink& link = startLink(options, events);
  ASSERT_TRUE(runUntil(io_, [&] { return hellos_.size() == 1; }));
  EXPECT_EQ(link.controller().port, hub_->port());
  EXPECT_TRUE(second_hellos.empty());

  hub_->stop();  // the first controller goes away
  ASSERT_TRUE(runUntil(io_, [&] { return second_hellos.size() == 1 && link.connected(); }));
  EXPECT_EQ(link.controller().port, (*second)->port());
  EXPECT_EQ(events.connects, 2);
  EXPECT_EQ(events.disconnects.size(), 1u);

  // A link whose first address answers nobody reaches the second.
  LinkOptions dead_first = linkOptions();
  {
    tcp::acceptor probe(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    dead_first.port = probe.local_endpoint().port();  // closed again: nobody listens there
  }
  dead_first.more_controllers = {{"127.0.0.1", (*second)->port()}};
  LinkEvents other_events;
  links_.clear();  // one session per agent: the first link goes
  second_hellos.clear();
  ControllerLink& other = startLink(dead_first, other_events);
  ASSERT_TRUE(runUntil(io_, [&] { return second_hellos.size() == 1 && other.connected(); }));
  EXPECT_GE(other.attempts(), 2u);
  (*second)->stop();
}

TEST_F(LinkTest, AckSignaturesAreCheckedOnTheNetworkThreadWithTheHelloKey) {
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  const Ed25519Signer agent_key(Ed25519KeyPair::generate());
  const Ed25519Signer stranger(Ed25519KeyPair::generate());
  LinkOptions options = linkOptions();
  options.agent_keyid = agent_key.keyId();
  options.agent_public_key = agent_key.publicKey();
  LinkEvents events;
  ControllerLink& link = startLink(options, events);
  ASSERT_TRUE(runUntil(io_, [&] { return !hellos_.empty() && events.connects == 1; }));
  const auto ack = [](const Signer& by, std::string_view payload_type) {
    const Signer* signers[] = {&by};
    auto envelope = signDsse(payload_type, R"({"seq":1})", signers);
    EXPECT_TRUE(envelope.ok());
    return Json{{"type", "ack"}, {"envelope", dsseEnvelopeToJson(*envelope)}};
  };
  ASSERT_TRUE(link.send(ack(agent_key, kAckPayloadType)).ok());
  ASSERT_TRUE(link.send(ack(stranger, kAckPayloadType)).ok());
  ASSERT_TRUE(link.send(ack(agent_key, kDispatchPayloadType)).ok());  // not an ack's type
  ASSERT_TRUE(runUntil(io_, [&] { return acks_.size() == 3; }));
  // All reach the core (which gives the reasons); only the first is vouched for.
  ASSERT_EQ(ack_verified_with_.size(), 3u);
  EXPECT_EQ(ack_verified_with_[0], agent_key.publicKey());
  EXPECT_FALSE(ack_verified_with_[1].has_value());
  EXPECT_FALSE(ack_verified_with_[2].has_value());
}

// The systemd watchdog's probe (common/watchdog.h) is answered once every network thread has
// run it, so any one of them stuck holds the pings back.
TEST_F(LinkTest, TheWatchdogProbeWaitsForEveryNetworkThread) {
  AgentHubOptions options = hubOptions();
  options.network_threads = 3;
  startHub(options);
  // A first probe whose answer blocks the thread it runs on (a hub thread: a stuck loop).
  std::promise<std::string> stuck_on;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  hub_->probe([&stuck_on, released] {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    stuck_on.set_value(name);
    released.wait();
  });
  auto stuck = stuck_on.get_future();
  ASSERT_EQ(stuck.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(stuck.get().rfind("shadan-hub-", 0), 0u);
  // The next probe cannot be answered while that thread is stuck...
  std::promise<void> second;
  auto answered = second.get_future();
  hub_->probe([&second] { second.set_value(); });
  EXPECT_EQ(answered.wait_for(milliseconds(300)), std::future_status::timeout);
  // ...and is once it is free.
  release.set_value();
  EXPECT_EQ(answered.wait_for(std::chrono::seconds(5)), std::future_status::ready);
}

TEST_F(LinkTest, ClientWithoutCertificateIsRefused) {
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  auto tls = clientContext(false);
  RawClient client(io_, *tls);
  client.connect(hub_->port());
  ASSERT_TRUE(runUntil(io_, [&] { return client.connected.has_value(); }));
  EXPECT_TRUE(*client.connected) << "the upgrade succeeded without a client certificate";
  ASSERT_TRUE(runUntil(io_, [&] { return hub_->sessionCount() == 0; }));
  EXPECT_TRUE(hellos_.empty());
}

TEST_F(LinkTest, ClientCertificateFromAnotherCaIsRefused) {
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  LinkEvents events;
  LinkOptions options = linkOptions();
  options.cert_file = pki_.stranger_cert;  // CN gw-1, but not from our CA
  options.key_file = pki_.stranger_key;
  ControllerLink& link = startLink(options, events);
  ASSERT_TRUE(runUntil(io_, [&] { return link.attempts() >= 3; }));
  EXPECT_FALSE(link.connected());
  EXPECT_EQ(events.connects, 0);
  EXPECT_TRUE(hellos_.empty());
  EXPECT_NE(link.lastError().find("WebSocket handshake"), std::string::npos) << link.lastError();
}

TEST_F(LinkTest, WrongPinIsRefusedBeforeAnythingIsSent) {
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  LinkEvents events;
  LinkOptions options = linkOptions();
  options.controller_pin = pki_.agent_pin;  // well-formed, but another key
  ControllerLink& link = startLink(options, events);
  ASSERT_TRUE(runUntil(io_, [&] { return link.attempts() >= 2; }));
  EXPECT_FALSE(link.connected());
  EXPECT_EQ(events.connects, 0);
  EXPECT_TRUE(hellos_.empty());
  EXPECT_EQ(link.lastError(),
            "TLS handshake: controller certificate does not match the pinned key");
}

TEST_F(LinkTest, StartRefusesBadConfiguration) {
  LinkEvents events;
  LinkOptions options = linkOptions();
  options.port = 1;
  options.agent_id = "gw-2";  // the certificate says gw-1
  ControllerLink wrong_id(io_, options, {}, clock_);
  Status started = wrong_id.start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message.find("not agent \"gw-2\""), std::string::npos)
      << started.error().message;

  options = linkOptions();
  options.port = 1;
  options.controller_pin = "abc";
  ControllerLink bad_pin(io_, options, {}, clock_);
  EXPECT_FALSE(bad_pin.start().ok());
  EXPECT_EQ(bad_pin.attempts(), 0u);
}

TEST_F(LinkTest, LinkDetectsASilentController) {
  auto tls = makeServerTlsContext(pki_.ca_cert, pki_.server_cert, pki_.server_key);
  ASSERT_TRUE(tls.ok()) << tls.error().message;
  SilentServer server(io_, **tls);
  LinkEvents events;
  LinkOptions options = linkOptions();
  options.port = server.port();
  options.heartbeat_interval = milliseconds(40);
  options.heartbeat_misses = 3;
  options.backoff_initial = milliseconds(5000);  // no second attempt during the test
  options.backoff_max = milliseconds(5000);
  ControllerLink& link = startLink(options, events);
  ASSERT_TRUE(runUntil(io_, [&] { return events.connects == 1; }));
  const auto connected_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(runUntil(io_, [&] { return !events.disconnects.empty(); }));
  const auto silent_for = std::chrono::steady_clock::now() - connected_at;
  EXPECT_NE(events.disconnects[0].find("heartbeat"), std::string::npos) << events.disconnects[0];
  EXPECT_GE(silent_for, milliseconds(100));
  EXPECT_GE(server.received, 2u);  // the hello and at least one ping
  EXPECT_FALSE(link.connected());
  EXPECT_TRUE(link.disconnectedSince().has_value());
}

TEST_F(LinkTest, HubDetectsASilentAgent) {
  AgentHubOptions options = hubOptions();
  options.heartbeat_interval = milliseconds(40);
  options.heartbeat_misses = 3;
  ASSERT_NO_FATAL_FAILURE(startHub(options));
  auto tls = clientContext(true);
  auto client = helloClient(*tls);
  const auto hello_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(runUntil(io_, [&] { return !hub_disconnects_.empty(); }));
  EXPECT_GE(std::chrono::steady_clock::now() - hello_at, milliseconds(100));
  EXPECT_EQ(hub_disconnects_[0], testing::kTestAgentId);
  EXPECT_FALSE(hub_->connected(testing::kTestAgentId));
  ASSERT_TRUE(runUntil(io_, [&] { return client->closed.has_value(); }));
  bool pinged = false;
  for (const std::string& text : client->received) pinged = pinged || text == R"({"type":"ping"})";
  EXPECT_TRUE(pinged);
}

TEST_F(LinkTest, HeartbeatsKeepAQuietButLiveConnection) {
  AgentHubOptions hub_options = hubOptions();
  hub_options.heartbeat_interval = milliseconds(30);
  ASSERT_NO_FATAL_FAILURE(startHub(hub_options));
  LinkEvents events;
  LinkOptions options = linkOptions();
  options.heartbeat_interval = milliseconds(30);
  startLink(options, events);
  ASSERT_TRUE(runUntil(io_, [&] { return events.connects == 1; }));
  runFor(io_, milliseconds(400));  // > 10 intervals without application traffic
  EXPECT_TRUE(events.disconnects.empty());
  EXPECT_TRUE(hub_disconnects_.empty());
  EXPECT_EQ(hellos_.size(), 1u);
}

TEST_F(LinkTest, HelloTimeoutClosesTheSession) {
  AgentHubOptions options = hubOptions();
  options.hello_timeout = milliseconds(400);
  ASSERT_NO_FATAL_FAILURE(startHub(options));
  auto tls = clientContext(true);
  RawClient client(io_, *tls);
  client.connect(hub_->port());
  ASSERT_TRUE(runUntil(io_, [&] { return client.connected.has_value(); }));
  ASSERT_FALSE(*client.connected);
  EXPECT_EQ(hub_->sessionCount(), 1u);
  ASSERT_TRUE(runUntil(io_, [&] { return client.closed.has_value(); }));
  EXPECT_TRUE(runUntil(io_, [&] { return hub_->sessionCount() == 0; }));
  EXPECT_TRUE(hellos_.empty());
}

TEST_F(LinkTest, ConnectionsBeyondTheHandshakeLimitWaitUntilOneSaysHello) {
  AgentHubOptions options = hubOptions();
  options.max_handshakes = 1;
  ASSERT_NO_FATAL_FAILURE(startHub(options));
  auto tls = clientContext(true);
  RawClient first(io_, *tls);
  first.connect(hub_->port());
  ASSERT_TRUE(runUntil(io_, [&] { return first.connected.has_value(); }));
  ASSERT_FALSE(*first.connected) << first.connected->message();
  // The second waits in the listen backlog: its TLS handshake gets no answer yet.
  RawClient second(io_, *tls);
  second.connect(hub_->port());
  runFor(io_, milliseconds(300));
  EXPECT_FALSE(second.connected.has_value());
  EXPECT_EQ(hub_->sessionCount(), 1u);
  first.sendHello();
  ASSERT_TRUE(runUntil(io_, [&] { return second.connected.has_value(); }));
  EXPECT_FALSE(*second.connected) << second.connected->message();
  EXPECT_EQ(hellos_.size(), 1u);
}

TEST_F(LinkTest, HandshakesPastThePerPeerLimitAreClosedBeforeTls) {
  AgentHubOptions options = hubOptions();
  options.max_handshakes = 8;
  options.max_handshakes_per_peer = 2;
  options.hello_timeout = milliseconds(30000);
  ASSERT_NO_FATAL_FAILURE(startHub(options));
  auto tls = clientContext(true);
  RawClient first(io_, *tls);
  RawClient second(io_, *tls);
  first.connect(hub_->port());
  second.connect(hub_->port());
  ASSERT_TRUE(runUntil(io_, [&] { return first.connected && second.connected; }));
  ASSERT_FALSE(*first.connected) << first.connected->message();
  ASSERT_FALSE(*second.connected) << second.connected->message();
  // A third from the same address is closed as it is accepted: its TLS handshake fails.
  RawClient third(io_, *tls);
  third.connect(hub_->port());
  ASSERT_TRUE(runUntil(io_, [&] { return third.connected.has_value(); }));
  EXPECT_TRUE(*third.connected);
  // Another address is not affected.
  RawClient elsewhere(io_, *tls);
  elsewhere.connect(hub_->port(), kAgentChannelPath, "127.0.0.2");
  ASSERT_TRUE(runUntil(io_, [&] { return elsewhere.connected.has_value(); }));
  EXPECT_FALSE(*elsewhere.connected) << elsewhere.connected->message();
  EXPECT_EQ(hub_->sessionCount(), 3u);
  // A hello frees its place: the address may handshake again.
  first.sendHello();
  ASSERT_TRUE(runUntil(io_, [&] { return hellos_.size() == 1; }));
  RawClient again(io_, *tls);
  again.connect(hub_->port());
  ASSERT_TRUE(runUntil(io_, [&] { return again.connected.has_value(); }));
  EXPECT_FALSE(*again.connected) << again.connected->message();
}

TEST_F(LinkTest, PeersWhoseConnectionsCloseBeforeHelloAreRefusedAtAccept) {
  AgentHubOptions options = hubOptions();
  options.peer_failures_burst = 2;
  options.peer_failures_per_min = 1;  // no refill within the test
  ASSERT_NO_FATAL_FAILURE(startHub(options));
  // Two connections without a client certificate from 127.0.0.1: refused, and counted.
  auto no_cert = clientContext(false);
  std::vector<std::unique_ptr<RawClient>> failed;
  for (int i = 0; i < 2; ++i) {
    failed.push_back(std::make_unique<RawClient>(io_, *no_cert));
    failed.back()->connect(hub_->port());
    ASSERT_TRUE(runUntil(io_, [&] { return failed.back()->connected.has_value(); }));
    EXPECT_TRUE(*failed.back()->connected);
  }
  ASSERT_TRUE(runUntil(io_, [&] { return hub_->sessionCount() == 0; }));
  // 127.0.0.1 has spent its failures: even a proper agent from there is closed before TLS.
  auto tls = clientContext(true);
  RawClient refused(io_, *tls);
  refused.connect(hub_->port());
  ASSERT_TRUE(runUntil(io_, [&] { return refused.connected.has_value(); }));
  EXPECT_TRUE(*refused.connected) << "accepted after its failures were spent";
  EXPECT_EQ(hub_->sessionCount(), 0u);
  // Another address is served as usual.
  RawClient elsewhere(io_, *tls);
  elsewhere.connect(hub_->port(), kAgentChannelPath, "127.0.0.2");
  ASSERT_TRUE(runUntil(io_, [&] { return elsewhere.connected.has_value(); }));
  ASSERT_FALSE(*elsewhere.connected) << elsewhere.connected->message();
  elsewhere.sendHello();
  ASSERT_TRUE(runUntil(io_, [&] { return hellos_.size() == 1; }));
}

TEST_F(LinkTest, AnAgentThatStopsReadingIsClosedInsteadOfBuffered) {
  AgentHubOptions options = hubOptions();
  options.max_queued_bytes = 512 * 1024;
  ASSERT_NO_FATAL_FAILURE(startHub(options));
  auto tls = clientContext(true);
  const Json note = {{"type", "note"}, {"pad", std::string(100 * 1024, 'x')}};
  // One message of 100 KiB every 5 ms. A client that reads takes them all and stays.
  {
    auto reader = helloClient(*tls);
    for (int i = 0; i < 60; ++i) {
      ASSERT_TRUE(hub_->send(testing::kTestAgentId, note).ok());
      runFor(io_, milliseconds(5));
    }
    EXPECT_TRUE(runUntil(io_, [&] { return reader->received.size() >= 60; }));
    EXPECT_TRUE(hub_->connected(testing::kTestAgentId));
    EXPECT_TRUE(hub_disconnects_.empty());
    reader->close();
    ASSERT_TRUE(runUntil(io_, [&] { return reader->closed.has_value(); }));
  }
  ASSERT_TRUE(runUntil(io_, [&] { return !hub_disconnects_.empty(); }));
  hub_disconnects_.clear();
  // One that never reads: the socket buffers fill, then the queue, then the hub lets go.
  RawClient stalled(io_, *tls);
  stalled.connect(hub_->port(), kAgentChannelPath, "127.0.0.1", /*reading=*/false);
  ASSERT_TRUE(runUntil(io_, [&] { return stalled.connected.has_value(); }));
  ASSERT_FALSE(*stalled.connected) << stalled.connected->message();
  const size_t before = hellos_.size();
  stalled.sendHello();
  ASSERT_TRUE(runUntil(io_, [&] { return hellos_.size() > before; }));
  for (int i = 0; i < 2000 && hub_disconnects_.empty(); ++i) {
    if (hub_->connected(testing::kTestAgentId)) {
      ASSERT_TRUE(hub_->send(testing::kTestAgentId, note).ok());
    }
    runFor(io_, milliseconds(5));
  }
  ASSERT_EQ(hub_disconnects_.size(), 1u);
  EXPECT_FALSE(hub_->connected(testing::kTestAgentId));
}

// Each of these connects a raw client that the hub must refuse in the TLS handshake, so that
// nothing of the channel (upgrade, hello) is reached.
TEST_F(LinkTest, Tls12IsRefusedByTheHub) {
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  auto tls = clientContext(true);
  SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(tls->native_handle(), TLS1_2_VERSION);
  RawClient client(io_, *tls);
  client.connect(hub_->port());
  ASSERT_TRUE(runUntil(io_, [&] { return client.connected.has_value(); }));
  EXPECT_TRUE(*client.connected);
  EXPECT_TRUE(hellos_.empty());
}

TEST_F(LinkTest, ExpiredAgentCertificateIsRefused) {
  std::string cert, key;
  ASSERT_NO_FATAL_FAILURE(testing::issueExpiredClient(pki_.dir.file("ca"), pki_.dir.file("expired"),
                                                      testing::kTestAgentId, cert, key));
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  LinkOptions options = linkOptions();
  options.cert_file = cert;
  options.key_file = key;
  LinkEvents events;
  startLink(options, events);
  runFor(io_, milliseconds(500));
  EXPECT_EQ(events.connects, 0);
  EXPECT_TRUE(hellos_.empty());
  // The same agent with a current certificate is let in: the date was the reason.
  LinkEvents current;
  startLink(linkOptions(), current);
  EXPECT_TRUE(runUntil(io_, [&] { return current.connects == 1; }));
}

TEST_F(LinkTest, RevokedAgentCertificateIsRefusedOthersAreNot) {
  auto revoked = revokeCertificates(pki_.dir.file("ca"), {pki_.agent_cert});
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  AgentHubOptions options = hubOptions();
  options.crl_file = revoked->crl_path;
  // Both agents dial from 127.0.0.1: the revoked one's retries (every 20-100 ms here) would
  // spend the address's bucket of failures and lock the other out too, as behind one NAT
  // address (docs/security.md). That is PeersWhoseConnectionsCloseBeforeHelloAreRefusedAtAccept's
  // subject, not this test's.
  options.peer_failures_burst = 100'000;
  ASSERT_NO_FATAL_FAILURE(startHub(options));
  LinkEvents events;
  startLink(linkOptions(), events);
  runFor(io_, milliseconds(500));
  EXPECT_EQ(events.connects, 0);
  EXPECT_TRUE(hellos_.empty());
  LinkOptions other = linkOptions();
  other.cert_file = pki_.agent2_cert;
  other.key_file = pki_.agent2_key;
  other.agent_id = "gw-2";
  LinkEvents others;
  startLink(other, others);
  // The link counts a connect when its handshake completes; the hub takes the hello after.
  EXPECT_TRUE(runUntil(io_, [&] { return others.connects == 1 && !hellos_.empty(); }));
  ASSERT_EQ(hellos_.size(), 1u);
  EXPECT_EQ(hellos_[0].agent_id, "gw-2");
}

TEST_F(LinkTest, AHubWithABadRevocationListDoesNotStart) {
  AgentHubOptions options = hubOptions();
  options.crl_file = pki_.dir.file("no-such.crl");
  auto hub = WebSocketAgentHub::create(io_, options, AgentHubCallbacks{});
  ASSERT_FALSE(hub.ok());
  EXPECT_NE(hub.error().message.find("no-such.crl"), std::string::npos) << hub.error().message;
}

TEST_F(LinkTest, ReconnectsAfterTheHubIsRecreatedOnTheSamePort) {
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  const uint16_t port = hub_->port();
  LinkEvents events;
  ControllerLink& link = startLink(linkOptions(), events);
  // Connected for the link (its hello written) and for the hub (the hello read, on its own
  // thread, and handed over): only then is the first hello sure to be counted.
  ASSERT_TRUE(runUntil(io_, [&] { return events.connects == 1 && hellos_.size() == 1; }));

  hub_.reset();
  ASSERT_TRUE(runUntil(io_, [&] { return events.disconnects.size() == 1; }));
  EXPECT_FALSE(link.connected());
  ASSERT_TRUE(link.disconnectedSince().has_value());
  runFor(io_, milliseconds(150));  // a few refused attempts while nothing listens
  const uint64_t attempts = link.attempts();
  EXPECT_GE(attempts, 2u);

  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions(port)));
  // The link counts a connection once its hello is written; the hub registers the agent when
  // it has read and checked that hello, a moment later.
  ASSERT_TRUE(runUntil(io_, [&] { return events.connects == 2 && hellos_.size() == 2; }))
      << "link connects " << events.connects << ", hub hellos " << hellos_.size()
      << ", hub sessions " << hub_->sessionCount() << ", attempts " << link.attempts();
  EXPECT_TRUE(link.connected());
  EXPECT_FALSE(link.disconnectedSince().has_value());
  EXPECT_EQ(hellos_.size(), 2u);
  EXPECT_TRUE(hub_->connected(testing::kTestAgentId));
  ASSERT_TRUE(
      hub_->send(testing::kTestAgentId, {{"type", "dispatch"}, {"envelope", kEnvelope}}).ok());
  ASSERT_TRUE(runUntil(io_, [&] { return events.dispatches.size() == 1; }));
}

TEST_F(LinkTest, SecondSessionForTheSameAgentClosesTheFirst) {
  ASSERT_NO_FATAL_FAILURE(secondSessionClosesTheFirst(hubOptions()));
}

TEST_F(LinkTest, SessionsOnTwoNetworkThreadsReplaceEachOtherAcrossThem) {
  // Sessions alternate between the threads: the second lives on the other one than the first,
  // so the replacement, the close and the dispatch cross threads.
  AgentHubOptions options = hubOptions();
  options.network_threads = 2;
  ASSERT_NO_FATAL_FAILURE(secondSessionClosesTheFirst(options));
}

void LinkTest::secondSessionClosesTheFirst(AgentHubOptions options) {
  ASSERT_NO_FATAL_FAILURE(startHub(std::move(options)));
  LinkEvents first_events;
  LinkOptions first_options = linkOptions();
  first_options.backoff_initial = milliseconds(5000);  // stays away once replaced
  first_options.backoff_max = milliseconds(5000);
  ControllerLink& first = startLink(first_options, first_events);
  ASSERT_TRUE(runUntil(io_, [&] { return first_events.connects == 1 && hellos_.size() == 1; }));

  LinkEvents second_events;
  ControllerLink& second = startLink(linkOptions(), second_events);
  ASSERT_TRUE(runUntil(io_, [&] { return second_events.connects == 1 && hellos_.size() == 2; }));
  ASSERT_TRUE(runUntil(io_, [&] { return first_events.disconnects.size() == 1; }));
  EXPECT_FALSE(first.connected());
  EXPECT_TRUE(second.connected());
  ASSERT_EQ(hellos_.size(), 2u);
  EXPECT_NE(hellos_[0].session_id, hellos_[1].session_id);
  // The agent never stopped being connected: no on_disconnect for the replaced session.
  EXPECT_TRUE(hub_disconnects_.empty());
  EXPECT_TRUE(hub_->connected(testing::kTestAgentId));
  ASSERT_TRUE(
      hub_->send(testing::kTestAgentId, {{"type", "dispatch"}, {"envelope", kEnvelope}}).ok());
  ASSERT_TRUE(runUntil(io_, [&] { return second_events.dispatches.size() == 1; }));
  EXPECT_TRUE(first_events.dispatches.empty());
}

TEST_F(LinkTest, RejectedHelloClosesAndLinkRetries) {
  accept_hello_ = false;
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  LinkEvents events;
  ControllerLink& link = startLink(linkOptions(), events);
  ASSERT_TRUE(runUntil(io_, [&] { return hellos_.size() >= 2; }));
  EXPECT_FALSE(hub_->connected(testing::kTestAgentId));
  EXPECT_TRUE(hub_disconnects_.empty());
  accept_hello_ = true;
  ASSERT_TRUE(runUntil(io_, [&] { return hub_->connected(testing::kTestAgentId); }));
  ASSERT_TRUE(runUntil(io_, [&] { return link.connected(); }));
}

TEST_F(LinkTest, MisbehavingAgentMessagesCloseTheSession) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "{not json"},
      {"duplicate key", R"({"type":"ping","type":"pong"})"},
      {"float", R"({"type":"ack","envelope":{"x":1.5}})"},
      {"unknown type", R"({"type":"reboot"})"},
      {"second hello", Json{{"type", "hello"},
                            {"agent_id", testing::kTestAgentId},
                            {"agent_key", testing::kTestAgentKeyId},
                            {"last_seq", 0},
                            {"version", "x"}}
                           .dump()},
      {"ack without envelope", R"({"type":"ack"})"},
      {"extra member", R"({"type":"ping","x":1})"},
      {"oversized", R"({"type":"ping","pad":")" + std::string(300 * 1024, 'a') + "\"}"},
  };
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  auto tls = clientContext(true);
  for (const auto& [name, text] : cases) {
    SCOPED_TRACE(name);
    hub_disconnects_.clear();
    auto client = helloClient(*tls);
    ASSERT_TRUE(hub_->connected(testing::kTestAgentId));
    client->send(text);
    ASSERT_TRUE(runUntil(io_, [&] { return client->closed.has_value(); }));
    ASSERT_TRUE(runUntil(io_, [&] { return hub_disconnects_.size() == 1; }));
    EXPECT_FALSE(hub_->connected(testing::kTestAgentId));
    EXPECT_TRUE(acks_.empty());
  }
}

TEST_F(LinkTest, HelloMustComeFirstAndMatchTheCertificate) {
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  auto tls = clientContext(true);
  {
    RawClient client(io_, *tls);
    client.connect(hub_->port());
    ASSERT_TRUE(runUntil(io_, [&] { return client.connected.has_value(); }));
    client.send(R"({"type":"ping"})");
    ASSERT_TRUE(runUntil(io_, [&] { return client.closed.has_value(); }));
  }
  {
    RawClient client(io_, *tls);
    client.connect(hub_->port());
    ASSERT_TRUE(runUntil(io_, [&] { return client.connected.has_value(); }));
    client.sendHello("gw-2");  // the certificate says gw-1
    ASSERT_TRUE(runUntil(io_, [&] { return client.closed.has_value(); }));
  }
  EXPECT_TRUE(hellos_.empty());
  ASSERT_TRUE(runUntil(io_, [&] { return hub_->sessionCount() == 0; }));
}

TEST_F(LinkTest, OtherPathsGet404) {
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  auto tls = clientContext(true);
  RawClient client(io_, *tls);
  client.connect(hub_->port(), "/v1/other");
  ASSERT_TRUE(runUntil(io_, [&] { return client.connected.has_value(); }));
  EXPECT_TRUE(*client.connected);
  EXPECT_EQ(client.response_.result(), http::status::not_found);
  EXPECT_TRUE(hellos_.empty());
}

TEST_F(LinkTest, MisbehavingControllerMessageClosesTheLinkWhichReconnects) {
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  LinkEvents events;
  startLink(linkOptions(), events);
  ASSERT_TRUE(runUntil(
      io_, [&] { return events.connects == 1 && hub_->connected(testing::kTestAgentId); }));
  ASSERT_TRUE(hub_->send(testing::kTestAgentId, {{"type", "bogus"}}).ok());
  ASSERT_TRUE(runUntil(io_, [&] { return events.disconnects.size() == 1; }));
  EXPECT_NE(events.disconnects[0].find("unknown message type"), std::string::npos)
      << events.disconnects[0];
  // The daemon is told (it audits the refusal: bad input from the network leaves a record).
  ASSERT_EQ(events.rejected.size(), 1u);
  EXPECT_NE(events.rejected[0].find("unknown message type"), std::string::npos);
  ASSERT_TRUE(runUntil(
      io_, [&] { return events.connects == 2 && hub_->connected(testing::kTestAgentId); }));

  // Oversized messages are refused before they are queued.
  const Json big = {{"type", "dispatch"},
                    {"envelope", {{"payload", std::string(300 * 1024, 'a')}}}};
  EXPECT_EQ(hub_->send(testing::kTestAgentId, big).error().code, ErrorCode::kInvalidArgument);
}

// After repeated failures the backoff is long; a connection that lasted backoff_reset_after
// resets it, one that did not keeps it.
class LinkBackoffTest : public LinkTest, public ::testing::WithParamInterface<bool> {};

TEST_P(LinkBackoffTest, LongConnectionResetsTheBackoff) {
  const bool reset = GetParam();
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions()));
  const uint16_t port = hub_->port();
  hub_.reset();  // nothing listens: the link fails and backs off 20, 40, 80, 160, 320 ms...
  LinkEvents events;
  LinkOptions options = linkOptions();
  options.port = port;
  options.backoff_initial = milliseconds(20);
  options.backoff_max = milliseconds(5000);
  options.backoff_reset_after = reset ? milliseconds(150) : milliseconds(60'000);
  ControllerLink& link = startLink(options, events);
  ASSERT_TRUE(runUntil(io_, [&] { return link.attempts() >= 6; }));
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions(port)));
  ASSERT_TRUE(runUntil(io_, [&] { return events.connects == 1; }));
  // Which attempt got through depends on timing (the one scheduled when the hub came back, or
  // the next): every attempt before it failed, and without a reset the next delay continues
  // from there.
  const uint64_t failures = link.attempts() - 1;
  ASSERT_GE(failures, 5u);
  runFor(io_, milliseconds(250));  // longer than the reset threshold of the reset case

  // The clock starts before the hub goes away: the link schedules its retry when it notices the
  // loss, which is after this instant, so the measured time is never shorter than the backoff
  // (starting the new hub, slow on a loaded machine, must not eat into it).
  const auto lost_at = std::chrono::steady_clock::now();
  hub_.reset();
  ASSERT_NO_FATAL_FAILURE(startHub(hubOptions(port)));
  ASSERT_TRUE(runUntil(io_, [&] { return events.connects == 2; }));
  const auto reconnect = std::chrono::steady_clock::now() - lost_at;
  if (reset) {
    EXPECT_LT(reconnect, milliseconds(400));  // initial delay: 20 ms +-20 %
  } else {
    // 20 ms * 2^failures, -20 % jitter: at least 512 ms.
    EXPECT_GE(reconnect, milliseconds(20 * (1 << failures) * 8 / 10)) << failures << " failures";
  }
}

INSTANTIATE_TEST_SUITE_P(ResetOrNot, LinkBackoffTest, ::testing::Bool());

TEST(BackoffTest, DoublesFromInitialToMaxWithBoundedJitter) {
  LinkOptions options;
  EXPECT_EQ(backoffDelay(options, 0, 0.5), milliseconds(500));
  EXPECT_EQ(backoffDelay(options, 1, 0.5), milliseconds(1000));
  EXPECT_EQ(backoffDelay(options, 5, 0.5), milliseconds(16000));
  EXPECT_EQ(backoffDelay(options, 6, 0.5), milliseconds(30000));
  EXPECT_EQ(backoffDelay(options, 1000, 0.5), milliseconds(30000));
  EXPECT_EQ(backoffDelay(options, 0, 0.0), milliseconds(400));
  EXPECT_EQ(backoffDelay(options, 6, 0.0), milliseconds(24000));
  EXPECT_LE(backoffDelay(options, 6, 0.999999), milliseconds(36000));
  EXPECT_GE(backoffDelay(options, 6, 0.999999), milliseconds(35999));
}

}  // namespace
}  // namespace shadan

// Hostile orders end to end (issue #3 item 9): the test is a hostile / buggy controller. It runs
// a real WebSocketAgentHub (mutual TLS 1.3 from a private CA) in its own private network
// namespace and drives a real `shadan-agent run` daemon (real nftables, real SQLite state) in the
// same namespace with signed, tampered, replayed and malformed dispatches. For every hostile
// order the agent must answer with an ack signed by its key, outcome "rejected" with the
// expected reason code, and leave the ruleset and its state as they were (an isolation applied
// first, so "unchanged" means the isolation still holds). Framing-level garbage (a frame over the
// channel cap, a truncated frame, duplicate keys in the frame) is not an order: the agent's link
// closes the session and reconnects, with no ack (docs/protocol.md, agents/controller_link.h).
//
// Needs root (the private namespace, nftables). Wall time: one daemon start, one restart, and
// three reconnects after the link closed a session (backoff 0.5 s, 1 s, 2 s).

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/ca_cmd.h"
#include "common/clock.h"
#include "common/dsse.h"
#include "common/ed25519.h"
#include "common/orders.h"
#include "common/tls.h"
#include "controller/agent_hub.h"
#include "tests/integration/agent_process.h"
#include "tests/support/private_netns.h"
#include "tests/transport/test_pki.h"

namespace shadan {
namespace {

using namespace shadan::controller;  // NOLINT: the controller under test

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using nlohmann::json;
using std::chrono::milliseconds;
using test_support::runCommand;
using testing::runFor;
using testing::runUntil;
using WsStream = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
using Signers = std::vector<const Signer*>;

const std::string kPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";
const std::string kAgentBinary = std::string(SHADAN_BINARY_DIR) + "/agents/shadan-agent";
constexpr const char* kGateway = "gw";
constexpr auto kAckWithin = milliseconds(5000);
// Long enough for a reconnect after the link closed a session (backoff up to 2 s + jitter).
constexpr auto kReconnectWithin = milliseconds(10000);

int64_t nowMs() { return toUnixMillis(std::chrono::system_clock::now()); }

std::string commandId(int n) {
  char text[40];
  std::snprintf(text, sizeof text, "00000000-0000-4000-8000-%012d", n);
  return text;
}

std::string base64Of(const std::string& text) {
  return base64Encode(std::vector<uint8_t>(text.begin(), text.end()));
}

json envelopeJson(std::string_view type, const std::string& payload, const Signers& signers) {
  auto envelope = signDsse(type, payload, signers);
  EXPECT_TRUE(envelope.ok()) << envelope.error().message;
  return envelope.ok() ? dsseEnvelopeToJson(*envelope) : json::object();
}

json dispatchMessage(const json& envelope) {
  return {{"type", "dispatch"}, {"envelope", envelope}};
}

// A controller that is not a WebSocketAgentHub: it accepts the agent's TLS WebSocket (same CA,
// same server certificate, so the agent's pin matches) and can write frames the hub never would
// (truncated JSON, duplicate keys). One session at a time; a new one replaces the old.
class RawController {
 public:
  RawController(asio::io_context& io, asio::ssl::context& tls, uint16_t port)
      : acceptor_(io), tls_(tls) {
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    accept();
  }

  struct Session {
    explicit Session(tcp::socket socket, asio::ssl::context& tls)
        : ws(beast::tcp_stream(std::move(socket)), tls) {}
    WsStream ws;
    beast::flat_buffer buffer;
    std::string outgoing;
    std::vector<std::string> received;  // text frames from the agent, in order
    bool open = false;
    bool closed = false;
  };

  // Sessions that completed the WebSocket upgrade, in order.
  const std::vector<std::shared_ptr<Session>>& sessions() const { return sessions_; }

  void sendRaw(const std::shared_ptr<Session>& session, std::string text) {
    session->outgoing = std::move(text);
    session->ws.text(true);
    session->ws.async_write(asio::buffer(session->outgoing),
                            [session](beast::error_code ec, size_t) {
                              if (ec) session->closed = true;
                            });
  }

 private:
  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      auto session = std::make_shared<Session>(std::move(socket), tls_);
      session->ws.next_layer().async_handshake(
          asio::ssl::stream_base::server, [this, session](beast::error_code hs) {
            if (hs) return;
            session->ws.async_accept([this, session](beast::error_code upgrade) {
              if (upgrade) return;
              session->open = true;
              sessions_.push_back(session);
              read(session);
            });
          });
      accept();
    });
  }

  static void read(const std::shared_ptr<Session>& session) {
    session->ws.async_read(session->buffer, [session](beast::error_code ec, size_t) {
      if (ec) {
        session->closed = true;
        return;
      }
      session->received.push_back(beast::buffers_to_string(session->buffer.data()));
      session->buffer.consume(session->buffer.size());
      read(session);
    });
  }

  tcp::acceptor acceptor_;
  asio::ssl::context& tls_;
  std::vector<std::shared_ptr<Session>> sessions_;
};

struct HostileCase {
  std::string name;
  json message;          // the whole channel message {"type":"dispatch","envelope":...}
  std::string expected;  // reason code of the rejection ack
  int64_t ack_seq;       // the seq the ack must name (0: the dispatch could not be read)
};

class OrdersChannelTest : public ::testing::Test {
 protected:
  OrdersChannelTest()
      : agent_key_(Ed25519KeyPair::generate()),
        controller_(Ed25519KeyPair::generate()),
        sato_(Ed25519KeyPair::generate()),
        ito_(Ed25519KeyPair::generate()),
        other_agent_(Ed25519KeyPair::generate()),
        eve_(Ed25519KeyPair::generate()),
        agent_signer_(Ed25519KeyPair::fromSeed(agent_key_.seed()).value()) {}

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (a private network namespace, nftables)";
    ASSERT_TRUE(test_support::inPrivateNetns()) << "main() could not unshare a network namespace";
    auto lo = runCommand("ip link set lo up");
    ASSERT_EQ(lo.exit_code, 0) << lo.output;
    ASSERT_NO_FATAL_FAILURE(makeCredentials());
    ASSERT_NO_FATAL_FAILURE(startHub(0));
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- daemon log ----\n" << readWholeFile(dir_.file("agent.log"));
      std::cerr << "---- nft list ruleset ----\n" << runCommand("nft list ruleset").output;
    }
    if (daemon_) (void)daemon_->terminate();
    daemon_.reset();
    hub_.reset();
  }

  // PKI (our CA and a stranger's), the agent's signing key in its state directory, the trust.
  void makeCredentials() {
    const std::string ca = dir_.file("ca");
    const std::string other = dir_.file("other-ca");
    ASSERT_TRUE(initCertificateAuthority(ca, "h4 CA").ok());
    ASSERT_TRUE(initCertificateAuthority(other, "stranger CA").ok());
    std::filesystem::create_directories(dir_.file("tls"));
    std::filesystem::copy_file(caPaths(ca).cert, dir_.file("tls/ca.crt"));
    std::string agent_cert, agent_key;
    ASSERT_NO_FATAL_FAILURE(testing::issueInto(ca, dir_.file("controller"), "controller", true,
                                               server_cert_, server_key_, &server_pin_));
    ASSERT_NO_FATAL_FAILURE(
        testing::issueInto(ca, dir_.file("tls/agent"), kGateway, false, agent_cert, agent_key));
    ASSERT_NO_FATAL_FAILURE(testing::issueInto(other, dir_.file("stranger"), kGateway, false,
                                               stranger_cert_, stranger_key_));

    state_dir_ = dir_.file("state");
    std::filesystem::create_directories(state_dir_);
    ::chmod(state_dir_.c_str(), 0700);
    ASSERT_TRUE(
        writePrivateKeyFile(state_dir_ + "/agent.key", agent_key_, std::string("agent")).ok());
    ASSERT_TRUE(
        writePublicKeyFile(state_dir_ + "/agent.pub", agent_key_.publicKey(), std::string("agent"))
            .ok());

    const auto entry = [](const Ed25519Signer& key, const std::string& identity,
                          const std::string& role) {
      return json{{"keyid", key.keyId()},
                  {"public_key", base64Encode(key.publicKey())},
                  {"identity", identity},
                  {"roles", {role}}};
    };
    const json trust = {
        {"shadan_trust", 1},
        {"version", 1},
        {"expires_at", formatRfc3339(nowMs() + 86'400'000)},
        {"keys",
         {entry(controller_, "controller", "controller"), entry(sato_, "op:sato", "operator"),
          entry(ito_, "op:ito", "operator"), entry(agent_signer_, "agent:gw", "agent"),
          entry(other_agent_, "agent:gw2", "agent")}}};
    std::ofstream(dir_.file("trust.json")) << trust.dump();
  }

  void startHub(uint16_t port) {
    AgentHubOptions options;
    options.bind_address = "127.0.0.1";
    options.port = port;
    options.ca_file = dir_.file("ca/ca.crt");
    options.cert_file = server_cert_;
    options.key_file = server_key_;
    options.hello_timeout = milliseconds(5000);
    // Larger than the agent's cap, so the hub can send a frame the agent must refuse.
    options.max_message_bytes = 1024 * 1024;
    AgentHubCallbacks callbacks;
    callbacks.on_hello = [this](uint64_t, const std::string& agent, const HelloMessage& hello) {
      EXPECT_EQ(agent, kGateway);
      hellos_.push_back(hello);
      return true;
    };
    callbacks.on_ack = [this](const std::string& agent, const json& envelope,
                              const std::optional<Ed25519PublicKey>& verified_with) {
      EXPECT_EQ(agent, kGateway);
      // Every ack the real agent signs verifies on the hub's network thread with its hello's
      // key (when the hello carries one).
      if (!hellos_.empty() && hellos_.back().public_key) {
        EXPECT_EQ(verified_with, hellos_.back().public_key) << envelope.dump();
      }
      acks_.push_back(envelope);
    };
    callbacks.on_disconnect = [this](const std::string&) { ++disconnects_; };
    auto hub = WebSocketAgentHub::create(io_, std::move(options), std::move(callbacks));
    ASSERT_TRUE(hub.ok()) << hub.error().message;
    hub_ = std::move(*hub);
    port_ = hub_->port();
  }

  void startDaemon() {
    AgentProcessOptions options;
    options.netns = "";  // the test's own private namespace
    options.binary = kAgentBinary;
    options.arguments = {"--policy",         kPolicy,
                         "--gateway",        kGateway,
                         "--state-dir",      state_dir_,
                         "--trust",          dir_.file("trust.json"),
                         "--controller",     "127.0.0.1:" + std::to_string(port_),
                         "--tls-dir",        dir_.file("tls"),
                         "--controller-pin", server_pin_,
                         "--log-level",      "info"};
    options.log_path = dir_.file("agent.log");
    auto started = AgentProcess::start(options);
    ASSERT_TRUE(started.ok()) << started.error().message;
    daemon_ = std::move(started).value();
  }

  // ---- orders ---------------------------------------------------------------------------------

  json authzDoc(const std::string& action, int64_t gen, int command) const {
    const int64_t now = nowMs();
    return {{"v", 1},
            {"command_id", commandId(command)},
            {"action", action},
            {"segment", "office"},
            {"profile", "full"},
            {"segment_gen", gen},
            {"targets", {kGateway}},
            {"requested_by", "op:sato"},
            {"reason", "h4 hostile table"},
            {"drill", false},
            {"issued_at", formatRfc3339(now - 60'000)},
            {"expires_at", formatRfc3339(now + 1'800'000)}};
  }

  json dispatchDoc(const json& authz_envelope, int64_t seq) const {
    const int64_t now = nowMs();
    return {{"v", 1},
            {"agent_id", kGateway},
            {"agent_key", agent_signer_.keyId()},
            {"seq", seq},
            {"issued_at", formatRfc3339(now)},
            {"expires_at", formatRfc3339(now + 300'000)},
            {"authz", authz_envelope}};
  }

  // authz signed by `authz_signers`, in a dispatch (optionally edited) signed by the controller.
  json order(const json& authz, const Signers& authz_signers, int64_t seq,
             const std::function<void(json&)>& edit = {}) const {
    json dispatch = dispatchDoc(envelopeJson(kAuthzPayloadType, authz.dump(), authz_signers), seq);
    if (edit) edit(dispatch);
    return envelopeJson(kDispatchPayloadType, dispatch.dump(), {&controller_});
  }

  // Verifies an ack envelope: signed by the agent's key (and only by it), then parsed.
  std::optional<Ack> verifiedAck(const json& envelope_json) {
    auto envelope = dsseEnvelopeFromJson(envelope_json, "ack", "");
    if (!envelope.ok()) {
      ADD_FAILURE() << envelope.error().message;
      return std::nullopt;
    }
    const std::string agent_keyid = agent_signer_.keyId();
    const Ed25519PublicKey agent_public = agent_signer_.publicKey();
    auto checked = verifyDsse(*envelope, kAckPayloadType,
                              [&](std::string_view keyid) -> std::optional<Ed25519PublicKey> {
                                if (keyid == agent_keyid) return agent_public;
                                return std::nullopt;
                              });
    if (!checked.ok()) {
      ADD_FAILURE() << checked.error().message;
      return std::nullopt;
    }
    EXPECT_TRUE(checked->allValid()) << "ack not signed by the agent key";
    EXPECT_EQ(checked->validKeyIds(), std::vector<std::string>{agent_keyid});
    if (!checked->allValid()) return std::nullopt;
    auto ack = parseAck(envelope->payload);
    if (!ack.ok()) {
      ADD_FAILURE() << ack.error().message;
      return std::nullopt;
    }
    return *ack;
  }

  // Sends `message` through the hub and returns the agent's (verified) ack to it.
  std::optional<Ack> sendAndAwaitAck(const json& message) {
    const size_t before = acks_.size();
    auto sent = hub_->send(kGateway, message);
    if (!sent.ok()) {
      ADD_FAILURE() << sent.error().message;
      return std::nullopt;
    }
    if (!runUntil(
            io_, [&] { return acks_.size() > before; }, kAckWithin)) {
      ADD_FAILURE() << "no ack within " << kAckWithin.count() << " ms";
      return std::nullopt;
    }
    EXPECT_EQ(acks_.size(), before + 1) << "more than one ack for one dispatch";
    return verifiedAck(acks_[before]);
  }

  // What must not change: the whole ruleset of the namespace and the agent's state as its daemon
  // reports it.
  std::string snapshot() {
    auto ruleset = runCommand("nft list ruleset");
    EXPECT_EQ(ruleset.exit_code, 0) << ruleset.output;
    auto status = runCommand(kAgentBinary + " status --json --policy " + kPolicy +
                             " --gateway gw --state-dir " + state_dir_);
    EXPECT_EQ(status.exit_code, 0) << status.output;
    // The replay state (last seq, seen command ids, segment generations) is not in the status:
    // read the store itself (read-only; the daemon keeps it open).
    auto store = runCommand("sqlite3 -readonly " + state_dir_ +
                            "/agent.db 'SELECT * FROM meta ORDER BY 1; SELECT * FROM seen_commands "
                            "ORDER BY 1; SELECT * FROM segment_gens ORDER BY 1; SELECT * FROM "
                            "isolations ORDER BY 1, 2;'");
    EXPECT_EQ(store.exit_code, 0) << store.output;
    return "ruleset:\n" + ruleset.output + "\nstatus:\n" + status.output + "\nstore:\n" +
           store.output;
  }

  bool waitForHello(size_t count) {
    return runUntil(
        io_, [&] { return hellos_.size() >= count; }, kReconnectWithin);
  }

  asio::io_context io_;
  testing::TempDir dir_;
  Ed25519KeyPair agent_key_;
  Ed25519Signer controller_, sato_, ito_, other_agent_, eve_;
  Ed25519Signer agent_signer_;
  std::string server_cert_, server_key_, server_pin_;
  std::string stranger_cert_, stranger_key_;
  std::string state_dir_;
  uint16_t port_ = 0;
  std::unique_ptr<WebSocketAgentHub> hub_;
  std::unique_ptr<AgentProcess> daemon_;
  std::vector<HelloMessage> hellos_;
  std::vector<json> acks_;
  int disconnects_ = 0;
};

TEST_F(OrdersChannelTest, HostileOrdersAreRejectedAckedAndChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(startDaemon());
  ASSERT_TRUE(waitForHello(1)) << "the agent did not say hello";
  EXPECT_EQ(hellos_[0].agent_key, agent_signer_.keyId());
  EXPECT_EQ(hellos_[0].last_seq, 0u);

  // ---- positive control: an isolate by one operator is applied ---------------------------
  const json isolate_authz = authzDoc("isolate", 2, 1);
  const json isolate = dispatchMessage(order(isolate_authz, {&sato_}, 1));
  auto applied = sendAndAwaitAck(isolate);
  ASSERT_TRUE(applied.has_value());
  ASSERT_EQ(ackResultName(applied->result), std::string("applied")) << applied->reason.value_or("");
  EXPECT_EQ(applied->seq, 1);
  EXPECT_EQ(applied->command_id, commandId(1));
  EXPECT_EQ(applied->isolated, std::vector<std::string>{"office:full"});
  // The agent keeps this ack and sends it again after every reconnect (an ack lost with a
  // connection or a restart is not lost for good); nothing else may come unasked.
  const json kept_ack = acks_.back();
  const auto only_kept_acks_since = [&](size_t from) {
    for (size_t i = from; i < acks_.size(); ++i) {
      if (acks_[i] != kept_ack) return false;
    }
    return true;
  };
  const std::string baseline = snapshot();
  ASSERT_NE(baseline.find("table inet shadan"), std::string::npos) << baseline;
  ASSERT_NE(baseline.find("\"office\""), std::string::npos) << baseline;

  // ---- the hostile table ----------------------------------------------------------------------
  int64_t seq = 1;
  int command = 100;
  const auto restoreBy = [&](const Signers& signers, int64_t gen) {
    return order(authzDoc("restore", gen, ++command), signers, ++seq);
  };
  const json good_envelope = order(authzDoc("isolate", 3, ++command), {&sato_}, ++seq);
  const int64_t good_seq = seq;

  std::vector<HostileCase> cases;
  {
    // The controller's signature over one dispatch, another dispatch's bytes under it.
    json tampered = good_envelope;
    json other = dispatchDoc(
        envelopeJson(kAuthzPayloadType, authzDoc("restore", 9, 900).dump(), {&sato_}), good_seq);
    tampered["payload"] = base64Of(other.dump());
    cases.push_back(
        {"tampered payload", dispatchMessage(tampered), "bad_controller_signature", good_seq});
  }
  {
    json tampered = good_envelope;
    tampered["payloadType"] = std::string(kAuthzPayloadType);
    cases.push_back(
        {"tampered payloadType", dispatchMessage(tampered), "wrong_payload_type", good_seq});
  }
  cases.push_back({"authz signed by an unknown keyid",
                   dispatchMessage(order(authzDoc("isolate", 3, ++command), {&eve_}, ++seq)),
                   "unknown_keyid", seq});
  {
    json dispatch = dispatchDoc(
        envelopeJson(kAuthzPayloadType, authzDoc("isolate", 3, ++command).dump(), {&sato_}), ++seq);
    cases.push_back({"dispatch signed by an unknown keyid",
                     dispatchMessage(envelopeJson(kDispatchPayloadType, dispatch.dump(), {&eve_})),
                     "bad_controller_signature", seq});
  }
  {
    json authz = authzDoc("isolate", 3, ++command);
    authz["requested_by"] = "agent:gw2";
    cases.push_back({"valid signature by a key without the operator role (agent:gw2)",
                     dispatchMessage(order(authz, {&other_agent_}, ++seq)), "threshold_not_met",
                     seq});
  }
  cases.push_back({"restore threshold padded with the same key twice",
                   dispatchMessage(restoreBy({&sato_, &sato_}, 3)), "threshold_not_met", seq});
  cases.push_back({"restore signed by the controller key alone",
                   dispatchMessage(restoreBy({&controller_}, 3)), "threshold_not_met", seq});
  {
    const int64_t now = nowMs();
    cases.push_back({"expired dispatch",
                     dispatchMessage(order(authzDoc("isolate", 3, ++command), {&sato_}, ++seq,
                                           [&](json& d) {
                                             d["issued_at"] = formatRfc3339(now - 600'000);
                                             d["expires_at"] = formatRfc3339(now - 120'000);
                                           })),
                     "stale", seq});
    cases.push_back({"dispatch issued in the future beyond the skew",
                     dispatchMessage(order(authzDoc("isolate", 3, ++command), {&sato_}, ++seq,
                                           [&](json& d) {
                                             d["issued_at"] = formatRfc3339(now + 180'000);
                                             d["expires_at"] = formatRfc3339(now + 480'000);
                                           })),
                     "from_the_future", seq});
  }
  cases.push_back(
      {"replayed dispatch (the applied isolate, byte for byte)", isolate, "replayed_seq", 1});
  cases.push_back({"the applied authz again under a fresh seq",
                   dispatchMessage(order(isolate_authz, {&sato_}, ++seq)), "command_replayed",
                   seq});
  cases.push_back({"dispatch addressed to another agent",
                   dispatchMessage(order(authzDoc("isolate", 3, ++command), {&sato_}, ++seq,
                                         [](json& d) { d["agent_id"] = "gw2"; })),
                   "not_for_this_agent", seq});
  cases.push_back(
      {"dispatch for another agent key (a reinstall)",
       dispatchMessage(order(authzDoc("isolate", 3, ++command), {&sato_}, ++seq,
                             [this](json& d) { d["agent_key"] = other_agent_.keyId(); })),
       "wrong_agent_key", seq});
  {
    json authz = authzDoc("isolate", 3, ++command);
    authz["targets"] = {"gw2"};
    cases.push_back({"authz not targeting this agent",
                     dispatchMessage(order(authz, {&sato_}, ++seq)), "not_a_target", seq});
  }
  cases.push_back({"an older restore (gen 1) after the newer isolate (gen 2)",
                   dispatchMessage(restoreBy({&sato_, &ito_}, 1)), "old_segment_gen", seq});
  {
    // Under the channel's 256 KiB frame cap, over the verifier's 128 KiB envelope cap.
    json padded = good_envelope;
    padded["padding"] = std::string(kDsseEnvelopeMaxBytes, 'x');
    cases.push_back({"oversized envelope", dispatchMessage(padded), "oversized", 0});
  }
  {
    std::string text = dispatchDoc(envelopeJson(kAuthzPayloadType,
                                                authzDoc("isolate", 3, ++command).dump(), {&sato_}),
                                   ++seq)
                           .dump();
    text.resize(text.size() / 2);
    cases.push_back({"truncated dispatch payload (signed by the controller)",
                     dispatchMessage(envelopeJson(kDispatchPayloadType, text, {&controller_})),
                     "bad_payload", 0});
  }
  {
    std::string text = dispatchDoc(envelopeJson(kAuthzPayloadType,
                                                authzDoc("isolate", 3, ++command).dump(), {&sato_}),
                                   ++seq)
                           .dump();
    text.insert(1, "\"seq\":" + std::to_string(seq + 1000) + ",");
    cases.push_back({"duplicate key in the dispatch payload",
                     dispatchMessage(envelopeJson(kDispatchPayloadType, text, {&controller_})),
                     "duplicate_key", 0});
  }
  {
    // A restore smuggled in front of an isolate: a last-key-wins parser would read "isolate".
    std::string authz = authzDoc("isolate", 3, ++command).dump();
    authz.insert(1, R"("action":"restore",)");
    json dispatch = dispatchDoc(envelopeJson(kAuthzPayloadType, authz, {&sato_}), ++seq);
    cases.push_back(
        {"duplicate key in the authz payload",
         dispatchMessage(envelopeJson(kDispatchPayloadType, dispatch.dump(), {&controller_})),
         "duplicate_key", seq});
  }

  for (const HostileCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto ack = sendAndAwaitAck(c.message);
    ASSERT_TRUE(ack.has_value());
    EXPECT_EQ(ackResultName(ack->result), std::string("rejected"));
    EXPECT_EQ(ack->reason, c.expected);
    EXPECT_EQ(ack->agent_id, kGateway);
    EXPECT_EQ(ack->seq, c.ack_seq);
    EXPECT_EQ(ack->command_id, std::nullopt);
    EXPECT_EQ(ack->applied_at_ms, std::nullopt);
    EXPECT_EQ(ack->isolated, std::vector<std::string>{"office:full"});
    EXPECT_EQ(ack->ruleset_sha256, applied->ruleset_sha256);
    EXPECT_GT(ack->audit.log_seq, 0) << "the rejection was not audited";
    EXPECT_EQ(snapshot(), baseline);
  }
  EXPECT_EQ(disconnects_, 0) << "a signed hostile order closed the session";
  EXPECT_EQ(hellos_.size(), 1u);

  // ---- TLS: clients without our certificate never get a session --------------------------
  {
    struct Attempt {
      const char* name;
      bool with_cert;
      std::string cert, key;
    };
    const std::vector<Attempt> attempts = {
        {"client without a certificate", false, "", ""},
        {"client certificate from another CA (CN gw)", true, stranger_cert_, stranger_key_}};
    for (const Attempt& a : attempts) {
      SCOPED_TRACE(a.name);
      asio::ssl::context tls(asio::ssl::context::tls_client);
      SSL_CTX* ctx = tls.native_handle();
      SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
      ASSERT_EQ(SSL_CTX_load_verify_locations(ctx, dir_.file("ca/ca.crt").c_str(), nullptr), 1);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      if (a.with_cert) {
        ASSERT_EQ(SSL_CTX_use_certificate_chain_file(ctx, a.cert.c_str()), 1);
        ASSERT_EQ(SSL_CTX_use_PrivateKey_file(ctx, a.key.c_str(), SSL_FILETYPE_PEM), 1);
      }
      WsStream ws(beast::tcp_stream(io_), tls);
      std::optional<beast::error_code> outcome;
      std::string read_buffer_text;
      beast::flat_buffer buffer;
      beast::get_lowest_layer(ws).async_connect(
          tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), [&](beast::error_code ec) {
            if (ec) return outcome.emplace(ec), void();
            ws.next_layer().async_handshake(
                asio::ssl::stream_base::client, [&](beast::error_code hs) {
                  if (hs) return outcome.emplace(hs), void();
                  ws.async_handshake("127.0.0.1", kAgentChannelPath, [&](beast::error_code up) {
                    if (up) return outcome.emplace(up), void();
                    // Upgraded (it must not be): say hello as gw and see whether it sticks.
                    ws.text(true);
                    read_buffer_text = json{
                        {"type", "hello"},
                        {"agent_id", kGateway},
                        {"agent_key", agent_signer_.keyId()},
                        {"last_seq", 0},
                        {"version",
                         "hostile"}}.dump();
                    ws.async_write(asio::buffer(read_buffer_text), [&](beast::error_code, size_t) {
                      ws.async_read(buffer,
                                    [&](beast::error_code rd, size_t) { outcome.emplace(rd); });
                    });
                  });
                });
          });
      EXPECT_TRUE(runUntil(
          io_, [&] { return outcome.has_value(); }, kAckWithin));
      EXPECT_TRUE(outcome.value_or(beast::error_code{})) << "the session was established";
      // Nothing may still refer to `ws` once it goes out of scope: close it and let the
      // handlers finish.
      beast::error_code ignored;
      beast::get_lowest_layer(ws).socket().close(ignored);
      runFor(io_, milliseconds(50));
      ASSERT_TRUE(runUntil(
          io_, [&] { return hub_->sessionCount() == 1; }, kAckWithin))
          << "the refused connection still holds a session";
      EXPECT_EQ(hellos_.size(), 1u) << "on_hello ran for a client the CA did not certify";
      EXPECT_TRUE(hub_->connected(kGateway)) << "the real agent lost its session";
    }
  }

  // Frames the agent refuses to interpret have no seq to ack, but each is on record.
  const auto refused_frames_in_audit = [&] {
    std::ifstream log(state_dir_ + "/audit.log");
    size_t refused = 0;
    for (std::string line; std::getline(log, line);) {
      if (line.find("\"event\":\"controller_message_rejected\"") != std::string::npos) ++refused;
    }
    return refused;
  };

  // ---- framing: a frame over the agent's 256 KiB cap closes the session, no ack ----------
  {
    SCOPED_TRACE("oversized frame");
    json padded = restoreBy({&sato_, &ito_}, 20);
    padded["padding"] = std::string(kAgentChannelMaxMessageBytes, 'x');
    const size_t acks_before = acks_.size();
    ASSERT_TRUE(hub_->send(kGateway, dispatchMessage(padded)).ok());
    ASSERT_TRUE(runUntil(
        io_, [&] { return disconnects_ == 1; }, kAckWithin))
        << "the agent kept a session that sent an oversized frame";
    ASSERT_TRUE(waitForHello(2)) << "the agent did not reconnect";
    EXPECT_EQ(hellos_[1].last_seq, 1u);
    EXPECT_TRUE(only_kept_acks_since(acks_before)) << "an oversized frame was answered";
    EXPECT_EQ(snapshot(), baseline);
    EXPECT_EQ(refused_frames_in_audit(), 1u) << "the oversized frame must be audited";
  }

  // ---- framing the hub would never write: a raw controller on the same port --------------
  hub_->stop();
  hub_.reset();
  // Let the hub's aborted handlers run: they hold its listening socket until then.
  runFor(io_, milliseconds(100));
  {
    auto tls = makeServerTlsContext(dir_.file("ca/ca.crt"), server_cert_, server_key_);
    ASSERT_TRUE(tls.ok()) << tls.error().message;
    RawController raw(io_, **tls, port_);
    struct Frame {
      const char* name;
      std::string text;
    };
    // A valid, signed restore (two operators) that would lift the isolation if it were read.
    const std::string valid_restore = dispatchMessage(restoreBy({&sato_, &ito_}, 30)).dump();
    const std::string hostile_envelope = json(good_envelope).dump();
    const std::vector<Frame> frames = {
        // A last-key-wins reader would take the second (valid) envelope.
        {"duplicate keys in the frame", R"({"type":"dispatch","envelope":)" + hostile_envelope +
                                            "," +
                                            valid_restore.substr(1, valid_restore.size() - 1)},
        {"truncated frame", valid_restore.substr(0, valid_restore.size() - 2)},
    };
    for (size_t i = 0; i < frames.size(); ++i) {
      SCOPED_TRACE(frames[i].name);
      ASSERT_TRUE(runUntil(
          io_, [&] { return raw.sessions().size() > i && !raw.sessions()[i]->received.empty(); },
          kReconnectWithin))
          << "the agent did not connect to the raw controller";
      const auto session = raw.sessions()[i];
      auto hello = json::parse(session->received.front());
      ASSERT_EQ(hello.value("type", ""), "hello");
      EXPECT_EQ(hello.value("last_seq", -1), 1);
      raw.sendRaw(session, frames[i].text);
      ASSERT_TRUE(runUntil(
          io_, [&] { return session->closed; }, kAckWithin))
          << "the agent did not close the session";
      for (const std::string& message : session->received) {
        const json parsed = json::parse(message);
        if (parsed.value("type", "") != "ack") continue;
        EXPECT_EQ(parsed.at("envelope"), kept_ack) << "answered: " << message;
      }
      EXPECT_EQ(snapshot(), baseline);
    }
    EXPECT_EQ(refused_frames_in_audit(), frames.size() + 1) << "broken frames must be audited";
  }

  // ---- restart: the agent reconnects with its last seq; replay is still a replay ---------
  auto stopped = daemon_->terminate();
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  daemon_.reset();
  ASSERT_NO_FATAL_FAILURE(startHub(port_));
  const size_t acks_before_restart = acks_.size();
  ASSERT_NO_FATAL_FAILURE(startDaemon());
  const size_t hellos_before = hellos_.size();
  ASSERT_TRUE(waitForHello(hellos_before + 1)) << "the restarted agent did not say hello";
  EXPECT_EQ(hellos_.back().last_seq, 1u);
  EXPECT_EQ(snapshot(), baseline) << "the restart changed the ruleset or the state";
  {
    SCOPED_TRACE("the kept ack survives the restart and is sent again, byte for byte");
    ASSERT_TRUE(runUntil(
        io_, [&] { return acks_.size() > acks_before_restart; }, kAckWithin))
        << "the restarted agent did not send its kept ack";
    runFor(io_, milliseconds(100));
    EXPECT_EQ(acks_.size(), acks_before_restart + 1);
    EXPECT_EQ(acks_.back(), kept_ack);
  }
  {
    SCOPED_TRACE("replay after an agent restart");
    auto ack = sendAndAwaitAck(isolate);
    ASSERT_TRUE(ack.has_value());
    EXPECT_EQ(ackResultName(ack->result), std::string("rejected"));
    EXPECT_EQ(ack->reason, "replayed_seq");
    EXPECT_EQ(ack->seq, 1);
    EXPECT_EQ(snapshot(), baseline);
  }

  // ---- positive control: a restore by two operators is applied -------------------------
  auto restored = sendAndAwaitAck(dispatchMessage(restoreBy({&sato_, &ito_}, 40)));
  ASSERT_TRUE(restored.has_value());
  EXPECT_EQ(ackResultName(restored->result), std::string("applied"))
      << restored->reason.value_or("");
  EXPECT_EQ(restored->seq, seq);
  EXPECT_TRUE(restored->isolated.empty());
  const std::string after = snapshot();
  EXPECT_EQ(after.find("table inet shadan"), std::string::npos) << after;
}

}  // namespace
}  // namespace shadan

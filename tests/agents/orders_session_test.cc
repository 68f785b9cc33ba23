// OrdersSession without a socket or a kernel: a fake channel, a wall clock and a monotonic clock
// the test moves, the real AgentCore over fake backends, and the agent's real audit log in a
// temporary directory. Every dispatch gets a signed ack; acks wait for a connection and are sent
// again after a reconnect or a restart; audit shipping waits for the controller's resume and
// resumes where it left off; the controller-loss revert waits for its grace period.
#include "agents/orders_session.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/audit_ship.h"
#include "common/channel.h"
#include "common/dsse.h"
#include "common/orders.h"
#include "tests/common/audit_test_support.h"
#include "tests/fakes/fake_backends.h"

namespace shadan::agent {
namespace {

using nlohmann::json;
using testing::FakeClock;
using testing::FakeConntrackBackend;
using testing::FakeFirewallBackend;
using testing::FakeRouteBackend;
using testing::FakeStateStore;
using testing::TempDir;

const std::string kLabPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";
constexpr auto kGrace = std::chrono::minutes(5);

// Records what the session sends; refuses while "disconnected", like the real link.
class FakeOrdersChannel : public OrdersChannel {
 public:
  bool connected() const override { return up; }
  Status send(const json& message) override {
    if (!up) return makeError(ErrorCode::kUnavailable, "not connected");
    sent.push_back(message);
    return okStatus();
  }
  // The messages of one type sent since the last take(), in order; forgets them.
  std::vector<json> take(const std::string& type) {
    std::vector<json> matching;
    std::vector<json> rest;
    for (auto& message : sent) {
      (message["type"] == type ? matching : rest).push_back(std::move(message));
    }
    sent = std::move(rest);
    return matching;
  }

  bool up = false;
  std::vector<json> sent;
};

class FakeMonotonicClock : public MonotonicClock {
 public:
  std::chrono::steady_clock::time_point now() const override { return now_; }
  void advance(std::chrono::milliseconds by) { now_ += by; }

 private:
  std::chrono::steady_clock::time_point now_{std::chrono::hours(1000)};
};

json trustKey(const Ed25519Signer& key, const std::string& identity,
              const std::vector<std::string>& roles) {
  return {{"keyid", key.keyId()},
          {"public_key", base64Encode(key.publicKey())},
          {"identity", identity},
          {"roles", roles}};
}

class OrdersSessionTest : public ::testing::Test {
 protected:
  void SetUp() override { policy_ = loadPolicyFile(kLabPolicy).value().policy; }

  // The agent as the daemon wires it. Call again to "restart" (same state, same log).
  void startAgent() {
    session_.reset();
    core_.reset();
    log_.reset();
    AuditLogOptions options;
    options.path = auditPath();
    options.log_id = "agent:gw";
    options.checkpoint_every_entries = 0;
    options.checkpoint_interval = std::chrono::milliseconds(0);
    auto log = AuditLog::open(options, fs_, clock_, &agent_);
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
    core_ = std::make_unique<AgentCore>(
        policy_, "gw",
        AgentCoreDeps{store_, firewall_, routes_, conntrack_, *log_, clock_, "host", "0.1.0"});
    ASSERT_TRUE(core_->start().ok());
    json trust = {{"shadan_trust", 1},
                  {"version", 2},
                  {"expires_at", "2030-01-01T00:00:00Z"},
                  {"keys",
                   {trustKey(sato_, "op:sato", {"operator"}),
                    trustKey(controller_, "controller", {"controller"}),
                    trustKey(agent_, "agent:gw", {"agent"})}}};
    ASSERT_TRUE(core_->useTrust(parseTrust(trust.dump(), "trust.json").value(), agent_).ok());
    OrdersSessionOptions session_options;
    session_options.controller_loss_grace = kGrace;
    session_ = std::make_unique<OrdersSession>(
        OrdersSessionDeps{*core_, *log_, fs_, reader_, auditPath(), channel_, monotonic_},
        session_options);
  }

  std::string auditPath() const { return dir_.file("audit.log"); }

  void connect() {
    channel_.up = true;
    session_->onConnected();
  }
  void disconnect() {
    channel_.up = false;
    session_->onDisconnected("test");
  }

  std::string at(std::chrono::seconds offset) const {
    return formatRfc3339(toUnixMillis(clock_.now() + offset));
  }

  json authz(const std::string& command_id, int64_t gen) const {
    return {{"v", 1},
            {"command_id", command_id},
            {"action", "isolate"},
            {"segment", "office"},
            {"profile", "full"},
            {"segment_gen", gen},
            {"targets", {"gw"}},
            {"requested_by", "op:sato"},
            {"reason", "orders session test"},
            {"drill", false},
            {"issued_at", at(std::chrono::seconds(-10))},
            {"expires_at", at(std::chrono::minutes(30))}};
  }

  // The envelope object of a dispatch, as the channel hands it over.
  json dispatch(const json& authz_doc, int64_t seq, const Signer& dispatch_signer,
                const std::string& agent_id = "gw") const {
    const Signer* operators[] = {&sato_};
    json envelope =
        dsseEnvelopeToJson(signDsse(kAuthzPayloadType, authz_doc.dump(), operators).value());
    json doc = {{"v", 1},
                {"agent_id", agent_id},
                {"agent_key", agent_.keyId()},
                {"seq", seq},
                {"issued_at", at(std::chrono::seconds(-5))},
                {"expires_at", at(std::chrono::minutes(5))},
                {"authz", envelope}};
    const Signer* signers[] = {&dispatch_signer};
    return dsseEnvelopeToJson(signDsse(kDispatchPayloadType, doc.dump(), signers).value());
  }
  json goodDispatch(int64_t seq) const {
    return dispatch(authz("1111111" + std::to_string(seq) + "-1111-4111-8111-111111111111", seq),
                    seq, controller_);
  }

  // An "ack" message whose envelope carries at least one signature, every one valid and by
  // this agent's key; its payload.
  Ack ackOf(const json& message) const {
    EXPECT_EQ(message["type"], kAckType);
    auto envelope = dsseEnvelopeFromJson(message["envelope"], "ack", "");
    EXPECT_TRUE(envelope.ok());
    if (!envelope.ok()) return Ack{};
    EXPECT_EQ(envelope->payload_type, kAckPayloadType);
    EXPECT_FALSE(envelope->signatures.empty());
    for (const auto& signature : envelope->signatures) {
      EXPECT_EQ(signature.keyid, agent_.keyId());
    }
    const auto lookup = [this](std::string_view keyid) -> std::optional<Ed25519PublicKey> {
      if (keyid == agent_.keyId()) return agent_.publicKey();
      return std::nullopt;
    };
    auto verified = verifyDsse(*envelope, kAckPayloadType, lookup);
    EXPECT_TRUE(verified.ok());
    auto ack = parseAck(envelope->payload);
    EXPECT_TRUE(ack.ok());
    return ack.ok() ? *ack : Ack{};
  }

  // Plays the controller's side of audit shipping until the agent has nothing more to send:
  // acknowledges every batch and checkpoint. Returns the entry lines received.
  std::vector<std::string> controllerReceives() {
    std::vector<std::string> lines;
    for (int round = 0; round < 1000; ++round) {
      auto batches = channel_.take(kAuditEntriesType);
      auto checkpoints = channel_.take(kAuditCheckpointType);
      if (batches.empty() && checkpoints.empty()) return lines;
      for (const auto& batch : batches) {
        for (const auto& line : batch["entries"]) lines.push_back(line.get<std::string>());
        held_ += batch["entries"].size();
        session_->onAuditMessage(auditAckMessage(AuditAck{held_, held_checkpoint_}));
      }
      for (const auto& checkpoint : checkpoints) {
        held_checkpoint_ =
            json::parse(checkpoint["line"].get<std::string>())["size"].get<uint64_t>();
        session_->onAuditMessage(auditAckMessage(AuditAck{held_, held_checkpoint_}));
      }
    }
    ADD_FAILURE() << "shipping did not settle";
    return lines;
  }

  Ed25519Signer sato_{Ed25519KeyPair::generate()};
  Ed25519Signer controller_{Ed25519KeyPair::generate()};
  Ed25519Signer agent_{Ed25519KeyPair::generate()};
  Policy policy_;
  TempDir dir_;
  PosixLogFileSystem fs_;
  PosixAuditFileReader reader_;
  FakeFirewallBackend firewall_;
  FakeRouteBackend routes_;
  FakeStateStore store_;
  FakeConntrackBackend conntrack_;
  FakeClock clock_;
  FakeMonotonicClock monotonic_;
  FakeOrdersChannel channel_;
  std::unique_ptr<AuditLog> log_;
  std::unique_ptr<AgentCore> core_;
  std::unique_ptr<OrdersSession> session_;
  uint64_t held_ = 0;
  uint64_t held_checkpoint_ = 0;
};

TEST_F(OrdersSessionTest, DispatchIsAnsweredAtOnceWithAnAckSignedByTheAgent) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  connect();
  EXPECT_EQ(session_->lastSeq(), 0u);
  OrderOutcome outcome = session_->onDispatch(goodDispatch(1));
  ASSERT_FALSE(outcome.rejection) << outcome.rejection->message;
  auto acks = channel_.take(kAckType);
  ASSERT_EQ(acks.size(), 1u);
  const Ack ack = ackOf(acks[0]);
  EXPECT_EQ(ack.seq, 1);
  EXPECT_EQ(ack.result, AckResult::kApplied);
  EXPECT_EQ(ack.isolated, std::vector<std::string>{"office:full"});
  EXPECT_EQ(session_->lastSeq(), 1u);
  EXPECT_NE(firewall_.table.find("seg_office_v4"), std::string::npos);
  EXPECT_EQ(session_->outboxSize(), 0u);
}

TEST_F(OrdersSessionTest, EveryRejectionIsAnsweredWithASignedRejectedAck) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  connect();
  ASSERT_FALSE(session_->onDispatch(goodDispatch(1)).rejection);
  (void)channel_.take(kAckType);
  struct Case {
    std::string name;
    json envelope;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"signed by an operator, not the controller", dispatch(authz("a", 2), 2, sato_),
       "bad_controller_signature"},
      {"for another agent", dispatch(authz("b", 3), 3, controller_, "other-gw"),
       "not_for_this_agent"},
      {"replayed seq", goodDispatch(1), "replayed_seq"},
      {"not a DSSE envelope", json{{"payloadType", 1}}, "bad_envelope"},
  };
  const std::string table_before = firewall_.table;
  for (const Case& c : cases) {
    OrderOutcome outcome = session_->onDispatch(c.envelope);
    ASSERT_TRUE(outcome.rejection) << c.name;
    EXPECT_EQ(outcome.rejection->code(), c.code) << c.name;
    auto acks = channel_.take(kAckType);
    ASSERT_EQ(acks.size(), 1u) << c.name;
    const Ack ack = ackOf(acks[0]);
    EXPECT_EQ(ack.result, AckResult::kRejected) << c.name;
    EXPECT_EQ(ack.reason, c.code) << c.name;
  }
  EXPECT_EQ(firewall_.table, table_before);
  EXPECT_EQ(session_->lastSeq(), 1u);
}

TEST_F(OrdersSessionTest, AcksWaitForAConnectionAndAreSentOnce) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  ASSERT_FALSE(session_->onDispatch(goodDispatch(1)).rejection);
  EXPECT_TRUE(channel_.sent.empty());
  EXPECT_EQ(session_->outboxSize(), 1u);
  connect();
  auto acks = channel_.take(kAckType);
  ASSERT_EQ(acks.size(), 1u) << "the waiting ack, not a second kept copy of it";
  EXPECT_EQ(ackOf(acks[0]).seq, 1);
  EXPECT_EQ(session_->outboxSize(), 0u);
}

TEST_F(OrdersSessionTest, KeptAcksAreSentAgainAfterAReconnectOldestFirst) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  connect();
  ASSERT_FALSE(session_->onDispatch(goodDispatch(1)).rejection);
  ASSERT_FALSE(session_->onDispatch(goodDispatch(2)).rejection);
  auto first = channel_.take(kAckType);
  ASSERT_EQ(first.size(), 2u);
  disconnect();
  connect();
  auto again = channel_.take(kAckType);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0], first[0]) << "byte for byte the same signed ack";
  EXPECT_EQ(again[1], first[1]);
}

TEST_F(OrdersSessionTest, KeptAcksSurviveARestartOfTheAgent) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  connect();
  ASSERT_FALSE(session_->onDispatch(goodDispatch(1)).rejection);
  auto sent = channel_.take(kAckType);
  ASSERT_EQ(sent.size(), 1u);
  channel_.up = false;
  ASSERT_TRUE(log_->close().ok());
  ASSERT_NO_FATAL_FAILURE(startAgent());
  EXPECT_EQ(session_->lastSeq(), 1u);
  connect();
  auto again = channel_.take(kAckType);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0], sent[0]);
}

TEST_F(OrdersSessionTest, RejectedDispatchesAreNotKeptForResending) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  connect();
  ASSERT_TRUE(session_->onDispatch(dispatch(authz("a", 1), 7, sato_)).rejection);
  ASSERT_EQ(channel_.take(kAckType).size(), 1u);
  disconnect();
  connect();
  EXPECT_TRUE(channel_.take(kAckType).empty()) << "its seq is whatever the forger claimed";
}

TEST_F(OrdersSessionTest, AuditShippingWaitsForTheResumeThenShipsEverythingAfterTheAcks) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  connect();
  ASSERT_FALSE(session_->onDispatch(goodDispatch(1)).rejection);
  EXPECT_TRUE(channel_.take(kAuditEntriesType).empty()) << "nothing before audit_resume";
  session_->tick();
  EXPECT_TRUE(channel_.take(kAuditEntriesType).empty());
  EXPECT_FALSE(session_->auditShipped());

  session_->onAuditMessage(auditResumeMessage(AuditResume{}));
  ASSERT_EQ(channel_.sent.size(), 2u);
  EXPECT_EQ(channel_.sent[0]["type"], kAckType) << "acks go before audit entries";
  EXPECT_EQ(channel_.sent[1]["type"], kAuditEntriesType);
  (void)channel_.take(kAckType);
  auto lines = controllerReceives();
  EXPECT_EQ(lines.size(), log_->size());
  EXPECT_FALSE(session_->auditShipped()) << "no checkpoint covers the entries yet";

  ASSERT_TRUE(log_->checkpoint().ok());
  session_->shipAudit();
  (void)controllerReceives();
  EXPECT_TRUE(session_->auditShipped());
  EXPECT_EQ(held_checkpoint_, log_->size());
}

TEST_F(OrdersSessionTest, ShippingResumesWhereTheControllerLeftOff) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  connect();
  session_->onAuditMessage(auditResumeMessage(AuditResume{}));
  const auto all = controllerReceives();
  ASSERT_GE(all.size(), 2u);
  // The controller lost the last entry it had: it resumes from there.
  disconnect();
  connect();
  const uint64_t next = all.size() - 1;
  const std::string prev_hash = sha256Hex(std::string(1, '\0') + all[next - 1]);
  held_ = next;
  session_->onAuditMessage(auditResumeMessage(AuditResume{next, prev_hash, 0}));
  auto again = controllerReceives();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0], all.back());
}

TEST_F(OrdersSessionTest, AResumePointThatIsNotThisLogHaltsShippingAndIsAudited) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  connect();
  const uint64_t entries_before = log_->size();
  ASSERT_GE(entries_before, 1u);
  session_->onAuditMessage(auditResumeMessage(AuditResume{1, std::string(64, 'a'), 0}));
  EXPECT_TRUE(session_->shipper().halted());
  EXPECT_TRUE(channel_.take(kAuditEntriesType).empty());
  EXPECT_EQ(log_->size(), entries_before + 1) << "audit_ship_mismatch recorded";
}

TEST_F(OrdersSessionTest, RefusedFramesAreAudited) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  const uint64_t before = log_->size();
  session_->onMessageRejected("unknown message type \"bogus\"");
  ASSERT_EQ(log_->size(), before + 1);
  connect();
  session_->onAuditMessage(auditResumeMessage(AuditResume{}));
  auto lines = controllerReceives();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("\"controller_message_rejected\""), std::string::npos)
      << lines.back();
}

TEST_F(OrdersSessionTest, ControllerLossRevertsDrillsOnlyAfterTheGraceAndOncePerLoss) {
  policy_.agent.on_controller_loss = ControllerLossMode::kRevert;
  ASSERT_NO_FATAL_FAILURE(startAgent());
  IsolateRequest drill;
  drill.segment = "office";
  drill.ttl = std::chrono::hours(1);
  drill.drill = true;
  ASSERT_TRUE(core_->isolate(drill).ok());
  IsolateRequest real;
  real.segment = "servers";
  ASSERT_TRUE(core_->isolate(real).ok());
  connect();
  disconnect();

  monotonic_.advance(kGrace - std::chrono::milliseconds(1));
  EXPECT_FALSE(session_->tick());
  EXPECT_EQ(core_->desired().isolations.size(), 2u);
  // A wall-clock jump does not count: the grace is monotonic time.
  clock_.advance(std::chrono::minutes(10));
  EXPECT_FALSE(session_->tick());

  monotonic_.advance(std::chrono::milliseconds(1));
  EXPECT_TRUE(session_->tick());
  ASSERT_EQ(core_->desired().isolations.size(), 1u);
  EXPECT_EQ(core_->desired().isolations[0].isolation.segment, "servers") << "real isolations hold";
  EXPECT_FALSE(session_->tick()) << "once per loss";

  // A reconnect ends the loss; the next loss starts its own grace.
  ASSERT_TRUE(core_->isolate(drill).ok());
  connect();
  monotonic_.advance(kGrace * 2);
  EXPECT_FALSE(session_->tick()) << "connected";
  disconnect();
  EXPECT_FALSE(session_->tick());
  monotonic_.advance(kGrace);
  EXPECT_TRUE(session_->tick());
}

TEST_F(OrdersSessionTest, KeepModeNeverRevertsDrills) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  IsolateRequest drill;
  drill.segment = "office";
  drill.ttl = std::chrono::hours(1);
  drill.drill = true;
  ASSERT_TRUE(core_->isolate(drill).ok());
  monotonic_.advance(kGrace * 10);
  EXPECT_FALSE(session_->tick());
  EXPECT_EQ(core_->desired().isolations.size(), 1u);
}

}  // namespace
}  // namespace shadan::agent

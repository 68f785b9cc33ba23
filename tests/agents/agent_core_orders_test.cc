// AgentCore and signed orders: every dispatch is answered with an ack signed by the agent key;
// accepted ones are persisted (replay state with the desired state) and applied; rejected ones
// change nothing but the audit trail.
#include <gtest/gtest.h>

#include <fstream>

#include "agents/agent_core.h"
#include "common/dsse.h"
#include "common/orders.h"
#include "tests/agents/agent_core_orders_fixture.h"

namespace shadan::agent {
namespace {

using nlohmann::json;

class AgentCoreOrdersTest : public AgentCoreOrdersFixture {
 protected:
  AgentCoreOrdersTest() : AgentCoreOrdersFixture({"operator", "breakglass"}) {}

  json authz(const std::string& action, const std::string& command_id, int64_t gen) const {
    return {{"v", 1},
            {"command_id", command_id},
            {"action", action},
            {"segment", "office"},
            {"profile", "full"},
            {"segment_gen", gen},
            {"targets", {"gw"}},
            {"requested_by", "op:sato"},
            {"reason", "drill of the runbook"},
            {"drill", false},
            {"issued_at", at(std::chrono::seconds(-10))},
            {"expires_at", at(std::chrono::minutes(30))}};
  }

  // Success only for a DSSE envelope of the ack type with at least one signature, every one of
  // them valid and by this agent's key. verifyDsse() alone is not that: it succeeds whenever the
  // payload type matches and reports each signature's status (unknown key, invalid) for the
  // caller to judge.
  ::testing::AssertionResult signedByAgent(const json& ack_envelope) const {
    auto envelope = dsseEnvelopeFromJson(ack_envelope, "ack", "");
    if (!envelope.ok()) return ::testing::AssertionFailure() << envelope.error().message;
    const auto lookup = [this](std::string_view keyid) -> std::optional<Ed25519PublicKey> {
      if (keyid == agent_.keyId()) return agent_.publicKey();
      return std::nullopt;
    };
    auto verified = verifyDsse(*envelope, kAckPayloadType, lookup);
    if (!verified.ok()) return ::testing::AssertionFailure() << verified.error().message;
    if (verified->checks.empty()) return ::testing::AssertionFailure() << "no signature";
    for (const DsseSignatureCheck& check : verified->checks) {
      if (check.keyid != agent_.keyId()) {
        return ::testing::AssertionFailure() << "signed by " << check.keyid << ", not the agent";
      }
      if (check.status != DsseSignatureStatus::kValid) {
        return ::testing::AssertionFailure() << "the agent's signature does not verify";
      }
    }
    return ::testing::AssertionSuccess();
  }

  // The ack must be a DSSE envelope of the ack type, signed by this agent's key only.
  Ack verifiedAck(const OrderOutcome& outcome) const {
    EXPECT_TRUE(signedByAgent(outcome.ack_envelope));
    auto envelope = dsseEnvelopeFromJson(outcome.ack_envelope, "ack", "");
    EXPECT_TRUE(envelope.ok());
    return parseAck(envelope->payload).value();
  }
};

constexpr const char* kCmd1 = "11111111-1111-4111-8111-111111111111";
constexpr const char* kCmd2 = "22222222-2222-4222-8222-222222222222";

TEST_F(AgentCoreOrdersTest, AcceptedIsolateIsPersistedAppliedAuditedAndAcked) {
  auto outcome = core_->handleDispatch(dispatch(authz("isolate", kCmd1, 1), {&sato_}, 1));
  ASSERT_FALSE(outcome.rejection.has_value()) << outcome.rejection->message;
  const Ack ack = verifiedAck(outcome);
  EXPECT_EQ(ack.result, AckResult::kApplied);
  EXPECT_EQ(ack.seq, 1);
  EXPECT_EQ(ack.command_id, kCmd1);
  EXPECT_EQ(ack.isolated, std::vector<std::string>{"office:full"});
  EXPECT_EQ(ack.ruleset_sha256, sha256Hex(firewall_.table));
  EXPECT_EQ(ack.audit.entry_hash, sha256Hex(std::to_string(ack.audit.log_seq)));

  EXPECT_NE(firewall_.table.find("seg_office_v4"), std::string::npos);
  EXPECT_EQ(store_.state.replay.last_seq, 1);
  EXPECT_EQ(store_.state.replay.seen_command_ids.count(kCmd1), 1u);
  EXPECT_EQ(store_.state.replay.segment_gens.at("office"), 1);
  EXPECT_EQ(store_.state.isolations[0].origin, std::string("order:") + kCmd1);
  const AuditEvent& applied = audit_.events.back();
  EXPECT_EQ(applied.event, "applied");
  EXPECT_EQ(applied.command_id, kCmd1);
  EXPECT_EQ(applied.who->requested_by, "op:sato");
  EXPECT_EQ(applied.why->reason, "drill of the runbook");
}

TEST_F(AgentCoreOrdersTest, ReplayedDispatchIsRejectedAndChangesNothing) {
  const std::string bytes = dispatch(authz("isolate", kCmd1, 1), {&sato_}, 1);
  ASSERT_FALSE(core_->handleDispatch(bytes).rejection.has_value());
  const DesiredState before = store_.state;
  const size_t applies = firewall_.scripts.size();
  auto again = core_->handleDispatch(bytes);
  ASSERT_TRUE(again.rejection.has_value());
  EXPECT_EQ(again.rejection->code(), "replayed_seq");
  const Ack ack = verifiedAck(again);
  EXPECT_EQ(ack.result, AckResult::kRejected);
  EXPECT_EQ(ack.reason, "replayed_seq");
  EXPECT_EQ(ack.seq, 1);
  EXPECT_EQ(store_.state, before);
  EXPECT_EQ(firewall_.scripts.size(), applies);
  EXPECT_EQ(audit_.events.back().event, "rejected");
}

TEST_F(AgentCoreOrdersTest, RestoreNeedsTwoOperatorsNeverTheControllerKey) {
  ASSERT_FALSE(core_->handleDispatch(dispatch(authz("isolate", kCmd1, 1), {&sato_}, 1))
                   .rejection.has_value());
  json by_controller = authz("restore", kCmd2, 2);
  by_controller["requested_by"] = "controller";
  auto refused = core_->handleDispatch(dispatch(by_controller, {&controller_}, 2));
  ASSERT_TRUE(refused.rejection.has_value());
  EXPECT_TRUE(core_->desired().contains(Isolation{"office", "full"}));

  auto one = core_->handleDispatch(dispatch(authz("restore", kCmd2, 2), {&sato_}, 3));
  ASSERT_TRUE(one.rejection.has_value());
  EXPECT_EQ(one.rejection->code(), "threshold_not_met");
  EXPECT_TRUE(core_->desired().contains(Isolation{"office", "full"}));

  auto two = core_->handleDispatch(dispatch(authz("restore", kCmd2, 2), {&sato_, &tanaka_}, 4));
  ASSERT_FALSE(two.rejection.has_value()) << two.rejection->message;
  EXPECT_EQ(verifiedAck(two).result, AckResult::kApplied);
  EXPECT_TRUE(core_->desired().isolations.empty());
  EXPECT_EQ(firewall_.table, "");
}

TEST_F(AgentCoreOrdersTest, OlderRestoreCannotUndoANewerIsolate) {
  ASSERT_FALSE(core_->handleDispatch(dispatch(authz("isolate", kCmd1, 5), {&sato_}, 1))
                   .rejection.has_value());
  auto old = core_->handleDispatch(dispatch(authz("restore", kCmd2, 4), {&sato_, &tanaka_}, 2));
  ASSERT_TRUE(old.rejection.has_value());
  EXPECT_EQ(old.rejection->code(), "old_segment_gen");
  EXPECT_TRUE(core_->desired().contains(Isolation{"office", "full"}));
}

TEST_F(AgentCoreOrdersTest, KernelFailureIsAckedFailedAndTheOrderStaysConsumed) {
  firewall_.fail_applies = 1;
  auto outcome = core_->handleDispatch(dispatch(authz("isolate", kCmd1, 1), {&sato_}, 1));
  const Ack ack = verifiedAck(outcome);
  EXPECT_EQ(ack.result, AckResult::kFailed);
  EXPECT_EQ(ack.reason, "apply_failed");
  EXPECT_TRUE(store_.state.isolations.empty());
  EXPECT_EQ(store_.state.replay.last_seq, 1);
  EXPECT_EQ(store_.state.replay.seen_command_ids.count(kCmd1), 1u);
}

// A full disk refuses the order whole, before the kernel is touched, and the ack says why; the
// order is not consumed, so the controller's next order (or this one again) can be applied once
// there is room.
TEST_F(AgentCoreOrdersTest, FullDiskIsAckedStorageFullAndTouchesNothing) {
  store_.fail_saves = 1;
  store_.save_error = ErrorCode::kNoSpace;
  auto outcome = core_->handleDispatch(dispatch(authz("isolate", kCmd1, 1), {&sato_}, 1));
  const Ack ack = verifiedAck(outcome);
  EXPECT_EQ(ack.result, AckResult::kFailed);
  EXPECT_EQ(ack.reason, "storage_full");
  EXPECT_EQ(firewall_.table, "");
  EXPECT_TRUE(store_.state.isolations.empty());
  EXPECT_EQ(store_.state.replay.last_seq, 0);

  auto again = core_->handleDispatch(dispatch(authz("isolate", kCmd2, 2), {&sato_}, 2));
  EXPECT_EQ(verifiedAck(again).result, AckResult::kApplied);
  EXPECT_TRUE(core_->desired().contains(Isolation{"office", "full"}));
  EXPECT_NE(firewall_.table, "");
}

TEST_F(AgentCoreOrdersTest, IsolatingWhatIsIsolatedIsAlreadyApplied) {
  ASSERT_FALSE(core_->handleDispatch(dispatch(authz("isolate", kCmd1, 1), {&sato_}, 1))
                   .rejection.has_value());
  json by_tanaka = authz("isolate", kCmd2, 2);
  by_tanaka["requested_by"] = "op:tanaka";
  auto again = core_->handleDispatch(dispatch(by_tanaka, {&tanaka_}, 2));
  ASSERT_FALSE(again.rejection.has_value());
  EXPECT_EQ(verifiedAck(again).result, AckResult::kAlreadyApplied);
}

TEST_F(AgentCoreOrdersTest, OlderTrustFileIsRefused) {
  json older = {{"shadan_trust", 1},
                {"version", 1},
                {"expires_at", "2030-01-01T00:00:00Z"},
                {"keys", {trustKey(controller_, "controller", {"controller"})}}};
  auto used = core_->useTrust(parseTrust(older.dump(), "old.json").value(), agent_);
  ASSERT_FALSE(used.ok());
  EXPECT_EQ(store_.state.trust_version, 2);
}

TEST_F(AgentCoreOrdersTest, CommandIdsAreForgottenOnlyWhenTheirAuthzCanNeverPassAgain) {
  const json first = authz("isolate", kCmd1, 1);
  ASSERT_FALSE(core_->handleDispatch(dispatch(first, {&sato_}, 1)).rejection.has_value());
  const auto& ids = store_.state.replay.seen_command_ids;
  ASSERT_TRUE(ids.contains(kCmd1));
  const int64_t expires_ms = toUnixMillis(clock_.now() + std::chrono::minutes(30));
  EXPECT_EQ(ids.begin().forgetAfterMs(), expires_ms + 60'000 + 24 * 3'600'000);

  // Just before its time the id is still remembered when the next order comes.
  clock_.advance(std::chrono::minutes(30) + std::chrono::hours(24));
  ASSERT_FALSE(core_->handleDispatch(dispatch(authz("restore", kCmd2, 2), {&sato_, &tanaka_}, 2))
                   .rejection.has_value());
  EXPECT_TRUE(store_.state.replay.seen_command_ids.contains(kCmd1));

  // After it, the next accepted order drops it from memory and from the store...
  clock_.advance(std::chrono::minutes(2));
  constexpr const char* kCmd3 = "33333333-3333-4333-8333-333333333333";
  ASSERT_FALSE(core_->handleDispatch(dispatch(authz("isolate", kCmd3, 3), {&sato_}, 3))
                   .rejection.has_value());
  EXPECT_FALSE(store_.state.replay.seen_command_ids.contains(kCmd1));
  EXPECT_TRUE(store_.state.replay.seen_command_ids.contains(kCmd2));
  EXPECT_TRUE(store_.state.replay.seen_command_ids.contains(kCmd3));
  EXPECT_FALSE(core_->desired().replay.seen_command_ids.contains(kCmd1));

  // ...and the forgotten authz still cannot be used again: it is stale before its id matters.
  auto replay = core_->handleDispatch(dispatch(first, {&sato_}, 4));
  ASSERT_TRUE(replay.rejection.has_value());
  EXPECT_EQ(replay.rejection->code(), "authz_expired");
}

TEST_F(AgentCoreOrdersTest, AcksOfVerifiedOrdersAreKeptRejectedOnesAreNot) {
  auto applied = core_->handleDispatch(dispatch(authz("isolate", kCmd1, 1), {&sato_}, 1));
  ASSERT_FALSE(applied.rejection.has_value());
  core_->rememberAck(applied);
  // A dispatch that does not verify claims seq 7: nothing of it may be kept or sent again.
  auto rejected = core_->handleDispatch(dispatch(authz("isolate", kCmd2, 2), {&controller_}, 7));
  ASSERT_TRUE(rejected.rejection.has_value());
  core_->rememberAck(rejected);
  const auto kept = core_->recentAcks();
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].first, 1);
  EXPECT_EQ(kept[0].second, applied.ack_envelope);
  // Kept for a day, then no longer offered.
  clock_.advance(std::chrono::hours(24) + std::chrono::seconds(1));
  EXPECT_TRUE(core_->recentAcks().empty());
}

TEST_F(AgentCoreOrdersTest, BreakglassFileIsolatesWithTwoBreakglassSignatures) {
  json file = authz("isolate", kCmd1, 0);
  const std::string one = serializeDsseEnvelope(
      signDsse(kAuthzPayloadType, file.dump(), std::vector<const Signer*>{&sato_}).value());
  auto refused = core_->applyBreakglass(one);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("break-glass file refused"), std::string::npos);
  EXPECT_TRUE(core_->desired().isolations.empty());

  const std::string two = serializeDsseEnvelope(
      signDsse(kAuthzPayloadType, file.dump(), std::vector<const Signer*>{&sato_, &tanaka_})
          .value());
  auto applied = core_->applyBreakglass(two);
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_TRUE(core_->desired().contains(Isolation{"office", "full"}));
  // The same file cannot be used twice.
  EXPECT_FALSE(core_->applyBreakglass(two).ok());
}

// The helper every test above relies on must refuse what is not the agent's signature.
TEST_F(AgentCoreOrdersTest, AckCheckRefusesUnsignedTamperedAndForeignAcks) {
  auto outcome = core_->handleDispatch(dispatch(authz("isolate", kCmd1, 1), {&sato_}, 1));
  ASSERT_TRUE(signedByAgent(outcome.ack_envelope));
  const DsseEnvelope good = dsseEnvelopeFromJson(outcome.ack_envelope, "ack", "").value();

  // No signature at all: the parser refuses an empty list, and so must the check.
  json unsigned_ack = outcome.ack_envelope;
  unsigned_ack["signatures"] = json::array();
  EXPECT_FALSE(signedByAgent(unsigned_ack));

  // The agent's keyid over a payload it did not sign.
  DsseEnvelope tampered = good;
  tampered.payload.back() = tampered.payload.back() == '}' ? ' ' : '}';
  EXPECT_FALSE(signedByAgent(dsseEnvelopeToJson(tampered)));

  // The agent's keyid on a signature made by another key.
  DsseEnvelope forged = good;
  const Signer* controller[] = {&controller_};
  forged.signatures[0].sig =
      signDsse(kAckPayloadType, good.payload, controller).value().signatures[0].sig;
  EXPECT_FALSE(signedByAgent(dsseEnvelopeToJson(forged)));

  // Signed by another key only, or by the agent and another key.
  const json by_controller =
      dsseEnvelopeToJson(signDsse(kAckPayloadType, good.payload, controller).value());
  EXPECT_FALSE(signedByAgent(by_controller));
  DsseEnvelope extra = good;
  extra.signatures.push_back(
      signDsse(kAckPayloadType, good.payload, controller).value().signatures[0]);
  EXPECT_FALSE(signedByAgent(dsseEnvelopeToJson(extra)));

  // Another message type, even when the agent signed it.
  const Signer* agent[] = {&agent_};
  EXPECT_FALSE(signedByAgent(
      dsseEnvelopeToJson(signDsse(kDispatchPayloadType, good.payload, agent).value())));
}

}  // namespace
}  // namespace shadan::agent

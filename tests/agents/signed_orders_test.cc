// AgentCore's two ways in for a dispatch: the envelope the controller frame already parsed
// (what the daemon passes) and the envelope as text (tests, benchmarks). Fed the same
// sequence of dispatches, two agents must answer with the same signed acks, leave the same
// audit trail and persist the same state, accepted and refused orders alike.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "agents/agent_core.h"
#include "common/dsse.h"
#include "common/orders.h"
#include "common/strict_json.h"
#include "tests/fakes/fake_backends.h"

namespace shadan::agent {
namespace {

using nlohmann::json;
using testing::FakeAuditSink;
using testing::FakeClock;
using testing::FakeConntrackBackend;
using testing::FakeFirewallBackend;
using testing::FakeRouteBackend;
using testing::FakeStateStore;
using Signers = std::vector<const Signer*>;

const std::string kLabPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";

json trustKey(const Ed25519Signer& key, const std::string& identity,
              const std::vector<std::string>& roles) {
  return {{"keyid", key.keyId()},
          {"public_key", base64Encode(key.publicKey())},
          {"identity", identity},
          {"roles", roles}};
}

// One gateway agent with its own fakes.
struct Agent {
  explicit Agent(const Policy& policy)
      : core(policy, "gw",
             AgentCoreDeps{store, firewall, routes, conntrack, audit, clock, "host", "0.1.0"}) {}

  FakeFirewallBackend firewall;
  FakeRouteBackend routes;
  FakeStateStore store;
  FakeClock clock;
  FakeConntrackBackend conntrack;
  FakeAuditSink audit;
  AgentCore core;
};

class SignedOrdersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    json trust = {{"shadan_trust", 1},
                  {"version", 2},
                  {"expires_at", "2030-01-01T00:00:00Z"},
                  {"keys",
                   {trustKey(sato_, "op:sato", {"operator", "breakglass"}),
                    trustKey(tanaka_, "op:tanaka", {"operator", "breakglass"}),
                    trustKey(controller_, "controller", {"controller"}),
                    trustKey(agent_, "agent:gw", {"agent"})}}};
    for (Agent* agent : {&by_text_, &by_json_}) {
      ASSERT_TRUE(agent->core.start().ok());
      ASSERT_TRUE(
          agent->core.useTrust(parseTrust(trust.dump(), "trust.json").value(), agent_).ok());
    }
  }

  std::string at(std::chrono::seconds offset) const {
    return formatRfc3339(toUnixMillis(by_text_.clock.now() + offset));
  }

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

  json dispatchDoc(const json& authz_doc, const Signers& authz_signers, int64_t seq) const {
    return {{"v", 1},
            {"agent_id", "gw"},
            {"agent_key", agent_.keyId()},
            {"seq", seq},
            {"issued_at", at(std::chrono::seconds(-5))},
            {"expires_at", at(std::chrono::minutes(5))},
            {"authz", dsseEnvelopeToJson(
                          signDsse(kAuthzPayloadType, authz_doc.dump(), authz_signers).value())}};
  }

  static json envelope(const std::string& payload, Signers signers, std::string_view type) {
    return dsseEnvelopeToJson(signDsse(type, payload, signers).value());
  }

  json dispatch(const json& authz_doc, const Signers& authz_signers, int64_t seq,
                const std::function<void(json&)>& edit = {}) const {
    json doc = dispatchDoc(authz_doc, authz_signers, seq);
    if (edit) edit(doc);
    return envelope(doc.dump(), {&controller_}, kDispatchPayloadType);
  }

  // Hands `envelope_text` to both agents, each its own way, and checks they answer alike.
  // Returns the answer of the parsed-envelope path.
  OrderOutcome both(const std::string& name, const std::string& envelope_text) {
    auto parsed = parseStrictJson(envelope_text, "frame", 1 << 20);
    EXPECT_TRUE(parsed.ok()) << name;
    // Past the frame cap the parsed envelope is not measured to the end, so its rejection says
    // "more than N bytes" instead of the exact size.
    const bool same_message = envelope_text.size() <= kDispatchClaimMaxBytes;
    OrderOutcome from_text = by_text_.core.handleDispatch(envelope_text);
    OrderOutcome from_json = by_json_.core.handleDispatch(parsed.value());
    EXPECT_EQ(from_json.ack_envelope, from_text.ack_envelope) << name;
    EXPECT_EQ(serializeAck(from_json.ack), serializeAck(from_text.ack)) << name;
    EXPECT_EQ(from_json.rejection.has_value(), from_text.rejection.has_value()) << name;
    if (from_json.rejection && from_text.rejection) {
      EXPECT_EQ(from_json.rejection->code(), from_text.rejection->code()) << name;
      if (same_message) {
        EXPECT_EQ(from_json.rejection->message, from_text.rejection->message) << name;
      }
    }
    EXPECT_EQ(from_json.change.has_value(), from_text.change.has_value()) << name;
    EXPECT_EQ(by_json_.audit.names(), by_text_.audit.names()) << name;
    if (!by_json_.audit.events.empty() && !by_text_.audit.events.empty()) {
      if (same_message) {
        EXPECT_EQ(by_json_.audit.events.back().reason, by_text_.audit.events.back().reason) << name;
      }
      EXPECT_EQ(by_json_.audit.events.back().seq, by_text_.audit.events.back().seq) << name;
    }
    EXPECT_EQ(by_json_.store.state.replay, by_text_.store.state.replay) << name;
    EXPECT_EQ(by_json_.firewall.table, by_text_.firewall.table) << name;
    return from_json;
  }

  Ed25519Signer sato_{Ed25519KeyPair::generate()};
  Ed25519Signer tanaka_{Ed25519KeyPair::generate()};
  Ed25519Signer controller_{Ed25519KeyPair::generate()};
  Ed25519Signer agent_{Ed25519KeyPair::generate()};
  Policy policy_ = loadPolicyFile(kLabPolicy).value().policy;
  Agent by_text_{policy_};
  Agent by_json_{policy_};
};

constexpr const char* kCmd1 = "11111111-1111-4111-8111-111111111111";
constexpr const char* kCmd2 = "22222222-2222-4222-8222-222222222222";
constexpr const char* kCmd3 = "33333333-3333-4333-8333-333333333333";

TEST_F(SignedOrdersTest, ParsedAndTextEnvelopesGetTheSameAnswers) {
  const json isolate = authz("isolate", kCmd1, 1);
  const json good = dispatch(isolate, {&sato_}, 1);
  json tampered = good;
  {
    json doc = dispatchDoc(isolate, {&sato_}, 5);
    const std::string text = doc.dump();
    tampered["payload"] = base64Encode(std::vector<uint8_t>(text.begin(), text.end()));
  }
  const auto heavy = [&](int64_t seq, size_t sig_bytes) {
    json envelope = dispatch(authz("isolate", kCmd2, 2), {&sato_}, seq);
    envelope["signatures"].push_back(
        {{"keyid", tanaka_.keyId()}, {"sig", base64Encode(std::vector<uint8_t>(sig_bytes, 7))}});
    return envelope.dump();
  };
  json unknown_segment = authz("isolate", kCmd2, 2);
  unknown_segment["segment"] = "nope";
  std::string duplicate_payload = dispatchDoc(authz("isolate", kCmd2, 2), {&sato_}, 11).dump();
  duplicate_payload.insert(1, R"("seq":12,)");

  struct Step {
    std::string name;
    std::string envelope;
    std::optional<std::string> rejected;  // the reason code, or nullopt: carried out
    int64_t ack_seq;
  };
  const std::vector<Step> steps = {
      {"isolate", good.dump(), std::nullopt, 1},
      {"the same again", good.dump(), "replayed_seq", 1},
      {"tampered payload", tampered.dump(), "bad_controller_signature", 5},
      {"signed by an operator",
       envelope(dispatchDoc(isolate, {&sato_}, 6).dump(), {&sato_}, kDispatchPayloadType).dump(),
       "bad_controller_signature", 6},
      {"restore by one operator", dispatch(authz("restore", kCmd2, 2), {&sato_}, 7).dump(),
       "threshold_not_met", 7},
      {"oversized, well formed", heavy(8, 100 * 1024), "oversized", 8},
      {"over the frame cap", heavy(9, 200 * 1024), "oversized", 0},
      {"addressed to another agent",
       dispatch(isolate, {&sato_}, 10, [](json& d) { d["agent_id"] = "other"; }).dump(),
       "not_for_this_agent", 10},
      {"unknown segment", dispatch(unknown_segment, {&sato_, &tanaka_}, 10).dump(),
       "unknown_segment", 10},
      {"duplicate key in the dispatch",
       envelope(duplicate_payload, {&controller_}, kDispatchPayloadType).dump(), "duplicate_key",
       0},
      {"not an envelope", R"({"payloadType":"x","payload":"AAAA"})", "bad_envelope", 0},
      {"ack type", envelope("{}", {&controller_}, kAckPayloadType).dump(), "wrong_payload_type", 0},
      {"restore by two operators",
       dispatch(authz("restore", kCmd3, 3), {&sato_, &tanaka_}, 11).dump(), std::nullopt, 11},
  };
  for (const Step& step : steps) {
    const OrderOutcome outcome = both(step.name, step.envelope);
    EXPECT_EQ(outcome.ack.seq, step.ack_seq) << step.name;
    if (step.rejected) {
      ASSERT_TRUE(outcome.rejection.has_value()) << step.name;
      EXPECT_EQ(outcome.rejection->code(), *step.rejected) << step.name;
      EXPECT_EQ(outcome.ack.result, AckResult::kRejected) << step.name;
    } else {
      EXPECT_FALSE(outcome.rejection.has_value())
          << step.name << ": " << outcome.rejection->message;
      EXPECT_EQ(outcome.ack.result, AckResult::kApplied) << step.name;
    }
  }
  EXPECT_TRUE(by_json_.core.desired().isolations.empty());
  EXPECT_EQ(by_json_.store.state.replay.last_seq, 11);
}

// Before useTrust() nothing can be verified, and there is no key to sign an ack with: the
// dispatch is rejected, unsigned, by either way in, and nothing crashes.
TEST_F(SignedOrdersTest, DispatchBeforeTrustIsRejectedUnsigned) {
  Agent fresh(policy_);
  ASSERT_TRUE(fresh.core.start().ok());
  const json envelope = dispatch(authz("isolate", kCmd1, 1), {&sato_}, 1);
  for (const OrderOutcome& outcome :
       {fresh.core.handleDispatch(envelope), fresh.core.handleDispatch(envelope.dump())}) {
    ASSERT_TRUE(outcome.rejection.has_value());
    EXPECT_EQ(outcome.rejection->code(), "trust_expired");
    EXPECT_EQ(outcome.ack.result, AckResult::kRejected);
    EXPECT_TRUE(outcome.ack_envelope.is_null());
  }
  EXPECT_TRUE(fresh.core.desired().isolations.empty());
}

}  // namespace
}  // namespace shadan::agent

// The alert responder over the real order logic (temp store, fake hub, fake clock): every
// decision of POST /v1/alerts, the guard rails, act now / approve later, and what the agents'
// own verifier says of the orders it signs.

#include "controller/alert_responder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>

#include "common/strict_json.h"
#include "tests/controller/orders_service_fixture.h"

namespace shadan::controller {
namespace {

constexpr const char* kTime = "2026-11-26T10:00:00Z";

std::string shadanAlert(const std::string& src, const std::string& rule = "ssh-brute",
                        const std::string& dst = "203.0.113.9") {
  return json{{"source", "ids"}, {"rule", rule},  {"severity", "high"},
              {"src_ip", src},   {"dst_ip", dst}, {"time", kTime}}
      .dump();
}

class AlertResponderTest : public OrdersServiceTest {
 protected:
  AlertResponderTest() {
    enroll("core-gw", keys_.core_gw);
    enroll("edge-gw", keys_.edge_gw);
    hub_.sent.clear();
  }

  // Parses `response` (the config's section) and starts a responder over the service.
  void start(const json& response) {
    const json doc = response;
    const StrictObjectReader reader(doc, "controller.json", "/response",
                                    StrictJsonWording::kFields);
    config_ = parseResponseConfig(reader).value();
    ASSERT_TRUE(
        checkResponseConfig(config_, policy_, {"ids-1", "ids-2", "f2b"}, "controller.json").ok());
    responder_ = std::make_unique<AlertResponder>(config_, tokens_, policy_, *service_, *store_,
                                                  audit_, clock_);
    ASSERT_TRUE(responder_->load().ok());
  }

  static json quarantineRule(json extra = json::object()) {
    json rule = {{"name", "ssh"},
                 {"match", {{"rules", {"ssh-brute"}}}},
                 {"action", "quarantine-host"},
                 {"host", "src"},
                 {"ttl_s", 600}};
    for (auto& [key, value] : extra.items()) rule[key] = value;
    return rule;
  }

  IntakeAnswer send(const std::string& body, const Caller& caller,
                    AlertFormat format = AlertFormat::kShadan,
                    std::optional<IpPrefix> peer = std::nullopt) {
    auto answer = responder_->intake(caller, peer, format, body);
    EXPECT_TRUE(answer.ok()) << (answer.ok() ? "" : answer.error().message);
    return answer.ok() ? *answer : IntakeAnswer{};
  }

  AlertResult one(const std::string& body, const Caller& caller) {
    IntakeAnswer answer = send(body, caller);
    EXPECT_EQ(answer.results.size(), 1u);
    return answer.results.empty() ? AlertResult{} : answer.results[0];
  }

  size_t dispatched() const {
    size_t n = 0;
    for (const auto& [agent, messages] : hub_.sent) n += messages.size();
    return n;
  }

  std::vector<ApiToken> tokens_ = {
      {"ids-1", ApiRole::kDetector, std::string(64, 'a'), std::vector<std::string>{"lgwan"}},
      {"ids-2", ApiRole::kDetector, std::string(64, 'b'), std::nullopt},
      {"f2b", ApiRole::kDetector, std::string(64, 'c'), std::vector<std::string>{"*"}},
      {"sato", ApiRole::kOperator, std::string(64, 'd'), std::nullopt}};
  ResponseConfig config_;
  std::unique_ptr<AlertResponder> responder_;
  const Caller f2b_{"f2b", ApiRole::kDetector};
  const Caller ids2_{"ids-2", ApiRole::kDetector};
};

TEST_F(AlertResponderTest, AnAlertQuarantinesItsHostWithAnAutomaticOrderTheAgentsAccept) {
  start({{"rules", {quarantineRule()}}});
  const AlertResult result = one(shadanAlert("10.20.0.5"), ids_);
  ASSERT_EQ(result.decision, AlertDecision::kActed) << result.reason;
  ASSERT_TRUE(result.order_id);
  EXPECT_EQ(result.rule, "ssh");
  ASSERT_EQ(hub_.sent["core-gw"].size(), 1u);
  ASSERT_EQ(hub_.sent["edge-gw"].size(), 1u);
  auto verified = agentVerifies(hub_.sent["core-gw"][0], "core-gw", keys_.core_gw);
  ASSERT_TRUE(verified.ok()) << verified.rejection().message;
  const Authz& authz = verified.order().authz;
  EXPECT_TRUE(authz.automatic);
  EXPECT_EQ(authz.ttl_s, 600);
  EXPECT_EQ(authz.scope, IsolationScope::kHost);
  ASSERT_EQ(authz.hosts.size(), 1u);
  EXPECT_EQ(authz.hosts[0].toString(), "10.20.0.5");
  EXPECT_EQ(authz.on_behalf_of, "detector:ids-1");
  EXPECT_EQ(authz.command_id, *result.order_id);

  // Every alert is audited with its record's digest, decision and order.
  const AuditEvent* alert = nullptr;
  for (const AuditEvent& e : audit_.events) {
    if (e.event == "alert") alert = &e;
  }
  ASSERT_NE(alert, nullptr);
  EXPECT_EQ(alert->outcome, "acted");
  EXPECT_EQ(alert->command_id, result.order_id);
  EXPECT_EQ((*alert->detail)["record_sha256"], sha256Hex(shadanAlert("10.20.0.5")));
  EXPECT_EQ((*alert->detail)["rule"], "ssh");
  EXPECT_EQ(alert->who->requested_by, "detector:ids-1");
}

TEST_F(AlertResponderTest, AnAlertForWhatIsAlreadyCutIsAttachedNotOrderedAgain) {
  start({{"rules", {quarantineRule()}}});
  const AlertResult first = one(shadanAlert("10.20.0.5"), ids_);
  ASSERT_EQ(first.decision, AlertDecision::kActed);
  const size_t before = dispatched();
  const AlertResult again = one(shadanAlert("10.20.0.5"), ids_);
  EXPECT_EQ(again.decision, AlertDecision::kDeduplicated) << again.reason;
  EXPECT_EQ(again.order_id, first.order_id);
  EXPECT_EQ(dispatched(), before);
  EXPECT_EQ(responder_->openActions()[0]["alerts"], 2);
}

TEST_F(AlertResponderTest, BadRecordsAreRefusedOneByOneAndTheRestIsTaken) {
  start({{"rules", {quarantineRule()}}});
  const std::string body = shadanAlert("10.20.0.5") + "\n{\"source\":\"ids\"}\n" +
                           shadanAlert("10.20.0.6", "other-rule") + "\n";
  IntakeAnswer answer = send(body, ids_);
  ASSERT_EQ(answer.results.size(), 3u);
  EXPECT_EQ(answer.results[0].decision, AlertDecision::kActed);
  EXPECT_EQ(answer.results[1].decision, AlertDecision::kRefused);
  EXPECT_NE(answer.results[1].reason.find("record 1"), std::string::npos)
      << answer.results[1].reason;
  EXPECT_EQ(answer.results[2].decision, AlertDecision::kNoRule);
  const auto names = audit_.names();
  EXPECT_EQ(std::count(names.begin(), names.end(), "alert"), 3);
}

TEST_F(AlertResponderTest, TheDetectorsScopeBoundsWhatItsAlertsCut) {
  start({{"rules", {quarantineRule()}}});
  // ids-2 has no segments scope: recorded, nothing cut.
  const AlertResult unscoped = one(shadanAlert("10.20.0.5"), ids2_);
  EXPECT_EQ(unscoped.decision, AlertDecision::kOutOfScope) << unscoped.reason;
  EXPECT_EQ(dispatched(), 0u);
}

TEST_F(AlertResponderTest, ProtectedAddressesAreNeverCutAutomatically) {
  start({{"rules", {quarantineRule()}}, {"protected_hosts", {"10.20.0.7"}}});
  // Management, the config's protected hosts, the detector's own address, the controller's
  // and gateways' addresses.
  EXPECT_EQ(one(shadanAlert("10.99.0.10"), f2b_).decision, AlertDecision::kProtected);
  EXPECT_EQ(one(shadanAlert("10.99.0.11"), f2b_).decision, AlertDecision::kProtected)
      << "mgmt is a protected segment";
  EXPECT_EQ(one(shadanAlert("10.20.0.7"), f2b_).decision, AlertDecision::kProtected);
  IntakeAnswer own = send(shadanAlert("10.20.0.8"), f2b_, AlertFormat::kShadan,
                          IpPrefix::parse("10.20.0.8").value());
  EXPECT_EQ(own.results[0].decision, AlertDecision::kProtected) << own.results[0].reason;
  responder_->setProtectedAddresses(
      [] { return std::vector<IpPrefix>{IpPrefix::parse("10.20.0.9").value()}; });
  EXPECT_EQ(one(shadanAlert("10.20.0.9"), f2b_).decision, AlertDecision::kProtected);
  EXPECT_EQ(dispatched(), 0u);
  // An address in no segment is refused, naming why.
  const AlertResult outside = one(shadanAlert("192.0.2.1"), f2b_);
  EXPECT_EQ(outside.decision, AlertDecision::kRefused);
  EXPECT_EQ(dispatched(), 0u);
}

TEST_F(AlertResponderTest, DryRunDecidesAndChangesNothing) {
  start({{"rules", {quarantineRule({{"mode", "dry-run"}})}}});
  const AlertResult result = one(shadanAlert("10.20.0.5"), ids_);
  EXPECT_EQ(result.decision, AlertDecision::kDryRun);
  EXPECT_NE(result.reason.find("10.20.0.5"), std::string::npos);
  EXPECT_EQ(dispatched(), 0u);
  EXPECT_TRUE(responder_->openActions().empty());
}

TEST_F(AlertResponderTest, ADetectorOverItsRateIsLimited) {
  start({{"rules", {quarantineRule()}}, {"rate", {{"per_detector_per_min", 2}}}});
  EXPECT_EQ(one(shadanAlert("10.20.0.5"), ids_).decision, AlertDecision::kActed);
  EXPECT_EQ(one(shadanAlert("10.20.0.6"), ids_).decision, AlertDecision::kActed);
  EXPECT_EQ(one(shadanAlert("10.20.0.7"), ids_).decision, AlertDecision::kRateLimited);
  // Another detector has its own bucket.
  EXPECT_EQ(one(shadanAlert("10.20.0.7"), f2b_).decision, AlertDecision::kActed);
  clock_.advance(std::chrono::seconds(30));  // one token back
  EXPECT_EQ(one(shadanAlert("10.20.0.8"), ids_).decision, AlertDecision::kActed);
}

TEST_F(AlertResponderTest, TheBreakerOpensOnTheKPlusFirstActionAndAnOperatorClosesIt) {
  start({{"rules", {quarantineRule()}}, {"breaker", {{"max_actions", 2}, {"window_s", 60}}}});
  EXPECT_EQ(one(shadanAlert("10.20.0.5"), ids_).decision, AlertDecision::kActed);
  EXPECT_EQ(one(shadanAlert("10.20.0.6"), ids_).decision, AlertDecision::kActed);
  const size_t before = dispatched();
  const AlertResult third = one(shadanAlert("10.20.0.7"), ids_);
  EXPECT_EQ(third.decision, AlertDecision::kBreakerOpen) << third.reason;
  ASSERT_TRUE(third.order_id) << "the action became a proposal";
  EXPECT_EQ(dispatched(), before);
  EXPECT_TRUE(audit_.has("breaker_opened"));
  EXPECT_TRUE(responder_->status()["breaker"]["open"].get<bool>());
  // Still open later, even with the window empty: only an operator closes it.
  clock_.advance(std::chrono::minutes(5));
  EXPECT_EQ(one(shadanAlert("10.20.0.8"), ids_).decision, AlertDecision::kBreakerOpen);
  EXPECT_EQ(responder_->setBreaker(ids_, false, "x").error().code, ErrorCode::kPolicy);
  EXPECT_EQ(responder_->setBreaker(sato_, false, "").error().code, ErrorCode::kInvalidArgument);
  ASSERT_TRUE(responder_->setBreaker(sato_, false, "false positive storm understood").ok());
  EXPECT_TRUE(audit_.has("breaker_closed"));
  EXPECT_EQ(one(shadanAlert("10.20.0.11"), ids_).decision, AlertDecision::kActed);
}

TEST_F(AlertResponderTest, ARestartDoesNotResetWhatTheBreakerCounts) {
  start({{"rules", {quarantineRule()}}, {"breaker", {{"max_actions", 2}, {"window_s", 60}}}});
  ASSERT_EQ(one(shadanAlert("10.20.0.5"), ids_).decision, AlertDecision::kActed);
  // A crash (or a kill by the intruder being cut) must not hand automation a fresh window.
  responder_ = std::make_unique<AlertResponder>(config_, tokens_, policy_, *service_, *store_,
                                                audit_, clock_);
  ASSERT_TRUE(responder_->load().ok());
  EXPECT_EQ(one(shadanAlert("10.20.0.6"), ids_).decision, AlertDecision::kActed);
  EXPECT_EQ(one(shadanAlert("10.20.0.7"), ids_).decision, AlertDecision::kBreakerOpen);
  EXPECT_EQ(responder_->status()["breaker"]["actions_in_window"], 2);
  // The window still slides: a minute later both have left it.
  ASSERT_TRUE(responder_->setBreaker(sato_, false, "understood").ok());
  clock_.advance(std::chrono::seconds(61));
  EXPECT_EQ(one(shadanAlert("10.20.0.8"), ids_).decision, AlertDecision::kActed);
}

TEST_F(AlertResponderTest, TheBreakerOpensBeforeTooManySegmentsAreCut) {
  start({{"rules",
          {{{"name", "seg"},
            {"match", {{"rules", {"worm"}}}},
            {"action", "isolate-segment"},
            {"host", "src"}}}},
         {"breaker", {{"max_segments_percent", 40}}}});
  // lgwan is one of two non-default segments: 50% > 40%.
  const AlertResult result = one(shadanAlert("10.20.0.5", "worm"), f2b_);
  EXPECT_EQ(result.decision, AlertDecision::kBreakerOpen) << result.reason;
  EXPECT_EQ(dispatched(), 0u);
}

TEST_F(AlertResponderTest, ConfirmMakesItAnOperatorsPermanentIsolate) {
  start({{"rules", {quarantineRule()}}});
  const AlertResult acted = one(shadanAlert("10.20.0.5"), ids_);
  ASSERT_EQ(acted.decision, AlertDecision::kActed);
  hub_.sent.clear();
  EXPECT_EQ(responder_->confirm(ids_, *acted.order_id, "x").error().code, ErrorCode::kPolicy);
  auto confirmed = responder_->confirm(sato_, *acted.order_id, "seen the logs, it is infected");
  ASSERT_TRUE(confirmed.ok()) << confirmed.error().message;
  EXPECT_EQ((*confirmed)["state"], "confirmed");
  ASSERT_EQ(hub_.sent["core-gw"].size(), 1u);
  auto verified = agentVerifies(hub_.sent["core-gw"][0], "core-gw", keys_.core_gw);
  ASSERT_TRUE(verified.ok()) << verified.rejection().message;
  EXPECT_FALSE(verified.order().authz.automatic);
  EXPECT_FALSE(verified.order().authz.ttl_s.has_value());
  EXPECT_EQ(verified.order().authz.requested_by, "op:sato");
  EXPECT_TRUE(responder_->openActions().empty());
  EXPECT_TRUE(audit_.has("auto_action_confirmed"));
  // Closed: neither confirmed nor released again.
  EXPECT_EQ(responder_->release(sato_, *acted.order_id, "again").error().code,
            ErrorCode::kUnavailable);
}

TEST_F(AlertResponderTest, ReleaseIsAnAutomaticRestoreSignedOnBehalf) {
  start({{"rules", {quarantineRule()}}});
  const AlertResult acted = one(shadanAlert("10.20.0.5"), ids_);
  ASSERT_EQ(acted.decision, AlertDecision::kActed);
  hub_.sent.clear();
  auto released = responder_->release(sato_, *acted.order_id, "false positive");
  ASSERT_TRUE(released.ok()) << released.error().message;
  EXPECT_EQ((*released)["state"], "released");
  ASSERT_EQ(hub_.sent["edge-gw"].size(), 1u);
  auto verified = agentVerifies(hub_.sent["edge-gw"][0], "edge-gw", keys_.edge_gw);
  ASSERT_TRUE(verified.ok()) << verified.rejection().message;
  EXPECT_EQ(verified.order().authz.action, OrderAction::kRestore);
  EXPECT_TRUE(verified.order().authz.automatic);
  EXPECT_EQ(verified.order().authz.on_behalf_of, "op:sato");
  EXPECT_EQ(responder_->release(sato_, "no-such-id", "x").error().code, ErrorCode::kNotFound);
}

TEST_F(AlertResponderTest, ApproveModeProposesAndAReleaseDeclinesIt) {
  start({{"rules", {quarantineRule({{"mode", "approve"}})}}});
  const AlertResult proposed = one(shadanAlert("10.20.0.5"), ids_);
  EXPECT_EQ(proposed.decision, AlertDecision::kActed);
  ASSERT_TRUE(proposed.order_id);
  EXPECT_EQ(dispatched(), 0u);
  EXPECT_EQ(responder_->openActions()[0]["state"], "proposed");
  auto declined = responder_->release(sato_, *proposed.order_id, "not this one");
  ASSERT_TRUE(declined.ok());
  EXPECT_EQ((*declined)["state"], "declined");
  EXPECT_EQ(dispatched(), 0u);
}

TEST_F(AlertResponderTest, EscalationIsolatesTheSegmentAfterNDistinctHosts) {
  start({{"rules", {quarantineRule({{"escalate", {{"hosts", 2}, {"window_s", 600}}}})}}});
  EXPECT_FALSE(one(shadanAlert("10.20.0.5"), ids_).escalated_order_id);
  const AlertResult second = one(shadanAlert("10.20.0.6"), ids_);
  EXPECT_EQ(second.decision, AlertDecision::kActed);
  ASSERT_TRUE(second.escalated_order_id) << second.reason;
  auto verified = agentVerifies(hub_.sent["core-gw"].back(), "core-gw", keys_.core_gw);
  ASSERT_TRUE(verified.ok()) << verified.rejection().message;
  EXPECT_EQ(verified.order().authz.scope, IsolationScope::kSegment);
  EXPECT_EQ(verified.order().authz.segment, "lgwan");
  EXPECT_TRUE(verified.order().authz.automatic);
  EXPECT_TRUE(audit_.has("escalation"));
  // A third host is already covered by the segment's action.
  EXPECT_EQ(one(shadanAlert("10.20.0.7"), ids_).decision, AlertDecision::kDeduplicated);
}

TEST_F(AlertResponderTest, ADetectorClearsOnlyItsOwnQuarantines) {
  start({{"rules", {quarantineRule()}}});
  ASSERT_EQ(one(shadanAlert("10.20.0.5"), ids_).decision, AlertDecision::kActed);
  auto other = responder_->clear(f2b_, IpPrefix::parse("10.20.0.5").value(), "unban");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE((*other)["released"].empty());
  auto mine = responder_->clear(ids_, IpPrefix::parse("10.20.0.5").value(), "unban");
  ASSERT_TRUE(mine.ok()) << mine.error().message;
  ASSERT_EQ((*mine)["released"].size(), 1u);
  EXPECT_EQ((*mine)["released"][0]["state"], "released");
  EXPECT_TRUE(responder_->openActions().empty());
}

TEST_F(AlertResponderTest, ARequestOverTheIntakeLimitIsTakenNotAtAll) {
  start({{"rules", {quarantineRule()}}, {"rate", {{"intake_per_s", 1}}}});
  std::string batch;
  for (int i = 0; i < 1000; ++i) batch += shadanAlert("10.20.0.5", "noise") + "\n";
  EXPECT_EQ(send(batch, ids_).results.size(), 1000u);
  const size_t audited = audit_.events.size();
  IntakeAnswer over = send(shadanAlert("10.20.0.5"), ids_);
  EXPECT_GT(over.retry_after_s, 0);
  EXPECT_TRUE(over.results.empty());
  EXPECT_EQ(audit_.events.size(), audited);
  EXPECT_EQ(dispatched(), 0u);
}

TEST_F(AlertResponderTest, ActionsExpireWithTheirTtlAndSurviveARestart) {
  start({{"rules", {quarantineRule()}}, {"breaker", {{"max_actions", 1}}}});
  ASSERT_EQ(one(shadanAlert("10.20.0.5"), ids_).decision, AlertDecision::kActed);
  ASSERT_EQ(one(shadanAlert("10.20.0.6"), ids_).decision, AlertDecision::kBreakerOpen);
  // A new responder over the same store: the open actions and the open breaker are back.
  AlertResponder restarted(config_, tokens_, policy_, *service_, *store_, audit_, clock_);
  ASSERT_TRUE(restarted.load().ok());
  EXPECT_EQ(restarted.openActions().size(), 2u);
  EXPECT_TRUE(restarted.status()["breaker"]["open"].get<bool>());
  clock_.advance(std::chrono::seconds(601));
  ASSERT_TRUE(restarted.sweep().ok());
  EXPECT_TRUE(restarted.openActions().empty());
  EXPECT_TRUE(audit_.has("auto_action_expired"));
}

// A batch stages its deduplicated counts and proposals and writes them once, before it answers:
// what the answer said is in the store, as a restarted controller sees.
TEST_F(AlertResponderTest, ABatchsCountsAndProposalsAreStoredBeforeItsAnswer) {
  start({{"rules", {quarantineRule()}}, {"breaker", {{"max_actions", 1}}}});
  std::string batch = "[";
  for (const char* host : {"10.20.0.5", "10.20.0.5", "10.20.0.5", "10.20.0.6", "10.20.0.6"}) {
    if (batch.size() > 1) batch += ",";
    batch += shadanAlert(host);
  }
  batch += "]";
  const IntakeAnswer answer = send(batch, ids_);
  ASSERT_EQ(answer.results.size(), 5u);
  EXPECT_EQ(answer.results[0].decision, AlertDecision::kActed);
  EXPECT_EQ(answer.results[2].decision, AlertDecision::kDeduplicated);
  EXPECT_EQ(answer.results[3].decision, AlertDecision::kBreakerOpen);
  EXPECT_EQ(answer.results[4].decision, AlertDecision::kDeduplicated);
  AlertResponder restarted(config_, tokens_, policy_, *service_, *store_, audit_, clock_);
  ASSERT_TRUE(restarted.load().ok());
  std::map<std::string, int> alerts_by_host;
  for (const json& action : restarted.openActions()) {
    alerts_by_host[action["host"].get<std::string>()] = action["alerts"].get<int>();
  }
  EXPECT_EQ(alerts_by_host["10.20.0.5"], 3);
  EXPECT_EQ(alerts_by_host["10.20.0.6"], 2);  // the proposal, and the alert attached to it
}

TEST_F(AlertResponderTest, OnlyDetectorsSendAlerts) {
  start({{"rules", {quarantineRule()}}});
  auto refused =
      responder_->intake(sato_, std::nullopt, AlertFormat::kShadan, shadanAlert("10.20.0.5"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kPolicy);
  EXPECT_EQ(dispatched(), 0u);
}

}  // namespace
}  // namespace shadan::controller

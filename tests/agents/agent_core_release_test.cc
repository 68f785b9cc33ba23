// Automatic response on the agent (issue #16): an automatic isolate records its isolations as
// automatic; an operator's order of the same isolation confirms it (the flag goes, for good); a
// release, signed by the controller on behalf of a caller, lifts automatic isolations only, all
// or nothing, and never an operator's cut.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "agents/agent_core.h"
#include "agents/control_protocol.h"
#include "agents/state/sqlite_state_store.h"
#include "common/dsse.h"
#include "common/orders.h"
#include "tests/agents/agent_core_orders_fixture.h"

namespace shadan::agent {
namespace {

using nlohmann::json;

// Who signs an order and how.
enum class By {
  kDetector,  // automatic isolate: the controller on behalf of detector:ids-1
  kOperator,  // op:sato (isolate) or op:sato and op:tanaka (restore)
  kRelease,   // automatic restore: the controller on behalf of web:sato
};

class AgentCoreReleaseTest : public AgentCoreOrdersFixture {
 protected:
  AgentCoreReleaseTest() : AgentCoreOrdersFixture({"operator"}) {}

  // An order about hosts of office (or, with no hosts, about segment office), the next seq,
  // command id and generation of its rung.
  std::string order(const std::string& action, By by, const std::vector<std::string>& hosts,
                    std::optional<int64_t> ttl_s = std::nullopt) {
    ++seq_;
    char command_id[40];
    std::snprintf(command_id, sizeof command_id, "00000000-0000-4000-8000-%012d", seq_);
    json authz = {{"v", 1},
                  {"command_id", command_id},
                  {"action", action},
                  {"segment", "office"},
                  {"profile", "full"},
                  {"segment_gen", seq_},
                  {"targets", {"gw"}},
                  {"requested_by", "op:sato"},
                  {"reason", "IDS alert 4711"},
                  {"drill", false},
                  {"issued_at", at(std::chrono::seconds(-10))},
                  {"expires_at", at(std::chrono::minutes(30))}};
    if (!hosts.empty()) {
      authz["scope"] = "host";
      authz["hosts"] = hosts;
    }
    if (ttl_s) authz["ttl_s"] = *ttl_s;
    std::vector<const Signer*> signers;
    if (by == By::kOperator) {
      signers = {&sato_};
      if (action == "restore") signers.push_back(&tanaka_);
    } else {
      const std::string caller = by == By::kDetector ? "detector:ids-1" : "web:sato";
      authz["automatic"] = true;
      authz["on_behalf_of"] = caller;
      authz["requested_by"] = caller;
      signers = {&controller_};
    }
    return dispatch(authz, signers, seq_);
  }

  OrderOutcome send(const std::string& dispatch) { return core_->handleDispatch(dispatch); }

  const ActiveIsolation* host(const char* address) const {
    return core_->desired().find(
        Isolation{"office", "full", IsolationScope::kHost, IpPrefix::parse(address).value()});
  }

  int seq_ = 0;
};

TEST_F(AgentCoreReleaseTest, ReleaseLiftsAnAutomaticHostQuarantine) {
  auto cut = send(order("isolate", By::kDetector, {"10.20.0.5"}, 3600));
  ASSERT_FALSE(cut.rejection.has_value()) << cut.rejection->message;
  EXPECT_EQ(cut.ack.result, AckResult::kApplied);
  const ActiveIsolation* quarantined = host("10.20.0.5");
  ASSERT_NE(quarantined, nullptr);
  EXPECT_TRUE(quarantined->automatic);
  EXPECT_EQ(quarantined->expires_unix_ms, clock_.unixMillis() + 3'600'000);
  EXPECT_EQ(store_.state, core_->desired());  // the flag is in the stored state too
  // The audit entry of the applied order says it was automatic; status lists it so.
  const AuditEvent& applied = audit_.events.back();
  EXPECT_EQ(applied.event, "applied");
  ASSERT_TRUE(applied.detail.has_value());
  EXPECT_EQ((*applied.detail)["automatic"], true);
  const json status = isolationsJson(core_->desired(), clock_.unixMillis());
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0]["automatic"], true);

  auto release = send(order("restore", By::kRelease, {"10.20.0.5"}));
  ASSERT_FALSE(release.rejection.has_value()) << release.rejection->message;
  EXPECT_EQ(release.ack.result, AckResult::kApplied);
  EXPECT_TRUE(release.ack.isolated.empty());
  EXPECT_TRUE(core_->desired().isolations.empty());
  EXPECT_TRUE(store_.state.isolations.empty());
  EXPECT_EQ((*audit_.events.back().detail)["automatic"], true);
}

TEST_F(AgentCoreReleaseTest, ReleaseLiftsAnAutomaticSegmentIsolation) {
  ASSERT_EQ(send(order("isolate", By::kDetector, {}, 600)).ack.result, AckResult::kApplied);
  ASSERT_TRUE(core_->desired().isolations.at(0).automatic);
  auto release = send(order("restore", By::kRelease, {}));
  ASSERT_FALSE(release.rejection.has_value()) << release.rejection->message;
  EXPECT_EQ(release.ack.result, AckResult::kApplied);
  EXPECT_TRUE(core_->desired().isolations.empty());
}

TEST_F(AgentCoreReleaseTest, OperatorsIsolateConfirmsItAndReleaseIsThenRejectedChangingNothing) {
  ASSERT_EQ(send(order("isolate", By::kDetector, {"10.20.0.5"}, 3600)).ack.result,
            AckResult::kApplied);
  // Confirmed: an operator's isolate without a ttl makes it permanent and not automatic.
  auto confirm = send(order("isolate", By::kOperator, {"10.20.0.5"}));
  ASSERT_FALSE(confirm.rejection.has_value()) << confirm.rejection->message;
  EXPECT_EQ(confirm.ack.result, AckResult::kApplied);
  ASSERT_NE(host("10.20.0.5"), nullptr);
  EXPECT_FALSE(host("10.20.0.5")->automatic);
  EXPECT_FALSE(host("10.20.0.5")->expires_unix_ms.has_value());
  EXPECT_FALSE(isolationsJson(core_->desired(), clock_.unixMillis())[0].contains("automatic"));

  const DesiredState before = store_.state;
  const int saves = store_.saves;
  auto release = send(order("restore", By::kRelease, {"10.20.0.5"}));
  ASSERT_TRUE(release.rejection.has_value());
  EXPECT_EQ(release.rejection->reason, RejectReason::kReleaseNotAutomatic);
  EXPECT_EQ(release.ack.result, AckResult::kRejected);
  EXPECT_EQ(release.ack.reason, "release_not_automatic");
  EXPECT_EQ(release.ack.seq, seq_);
  EXPECT_EQ(release.ack.isolated, std::vector<std::string>{"office/10.20.0.5/32:full"});
  // Nothing changed: not the isolations, not the replay state, nothing written.
  EXPECT_EQ(store_.state, before);
  EXPECT_EQ(store_.saves, saves);
  const AuditEvent& rejected = audit_.events.back();
  EXPECT_EQ(rejected.event, "rejected");
  ASSERT_TRUE(rejected.reason.has_value());
  EXPECT_NE(rejected.reason->find("release_not_automatic: "), std::string::npos);
  EXPECT_NE(rejected.reason->find("office/10.20.0.5/32:full"), std::string::npos)
      << *rejected.reason;
  EXPECT_NE(rejected.reason->find("confirmed or ordered by an operator"), std::string::npos);
  EXPECT_EQ(audit_.events.back().command_id, release.ack.command_id);

  // Operators can still restore it as always.
  auto restore = send(order("restore", By::kOperator, {"10.20.0.5"}));
  ASSERT_FALSE(restore.rejection.has_value()) << restore.rejection->message;
  EXPECT_TRUE(core_->desired().isolations.empty());
}

TEST_F(AgentCoreReleaseTest, ReleaseIsAllOrNothing) {
  ASSERT_EQ(send(order("isolate", By::kDetector, {"10.20.0.5"}, 3600)).ack.result,
            AckResult::kApplied);
  ASSERT_EQ(send(order("isolate", By::kOperator, {"10.20.0.6"})).ack.result, AckResult::kApplied);
  const DesiredState before = store_.state;
  auto release = send(order("restore", By::kRelease, {"10.20.0.5", "10.20.0.6"}));
  ASSERT_TRUE(release.rejection.has_value());
  EXPECT_EQ(release.ack.result, AckResult::kRejected);
  EXPECT_NE(release.rejection->message.find("office/10.20.0.6/32:full"), std::string::npos)
      << release.rejection->message;
  // The automatic one was not lifted either.
  EXPECT_EQ(store_.state, before);
  ASSERT_NE(host("10.20.0.5"), nullptr);
  // Released alone, it goes.
  auto alone = send(order("restore", By::kRelease, {"10.20.0.5"}));
  ASSERT_FALSE(alone.rejection.has_value()) << alone.rejection->message;
  EXPECT_EQ(host("10.20.0.5"), nullptr);
  EXPECT_NE(host("10.20.0.6"), nullptr);
}

TEST_F(AgentCoreReleaseTest, AutomaticIsolateIntoAnOperatorsCutLeavesItTheOperators) {
  ASSERT_EQ(send(order("isolate", By::kOperator, {"10.20.0.5"})).ack.result, AckResult::kApplied);
  // A detector's alert for the same host: nothing to change (not releasable, not timed).
  auto alert = send(order("isolate", By::kDetector, {"10.20.0.5"}, 60));
  ASSERT_FALSE(alert.rejection.has_value()) << alert.rejection->message;
  EXPECT_EQ(alert.ack.result, AckResult::kAlreadyApplied);
  ASSERT_NE(host("10.20.0.5"), nullptr);
  EXPECT_FALSE(host("10.20.0.5")->automatic);
  EXPECT_FALSE(host("10.20.0.5")->expires_unix_ms.has_value());

  auto release = send(order("restore", By::kRelease, {"10.20.0.5"}));
  ASSERT_TRUE(release.rejection.has_value());
  EXPECT_EQ(release.rejection->reason, RejectReason::kReleaseNotAutomatic);
  EXPECT_NE(host("10.20.0.5"), nullptr);
}

TEST_F(AgentCoreReleaseTest, AutomaticIsolateIntoATimedOperatorsCutNeverShortensIt) {
  ASSERT_EQ(send(order("isolate", By::kOperator, {"10.20.0.5"}, 7200)).ack.result,
            AckResult::kApplied);
  const int64_t deadline = *host("10.20.0.5")->expires_unix_ms;
  ASSERT_EQ(send(order("isolate", By::kDetector, {"10.20.0.5"}, 60)).ack.result,
            AckResult::kAlreadyApplied);
  EXPECT_EQ(host("10.20.0.5")->expires_unix_ms, deadline);
  EXPECT_FALSE(host("10.20.0.5")->automatic);
}

TEST_F(AgentCoreReleaseTest, SecondAlertExtendsAnAutomaticQuarantineAndKeepsItAutomatic) {
  ASSERT_EQ(send(order("isolate", By::kDetector, {"10.20.0.5"}, 60)).ack.result,
            AckResult::kApplied);
  auto again = send(order("isolate", By::kDetector, {"10.20.0.5"}, 600));
  EXPECT_EQ(again.ack.result, AckResult::kApplied);
  EXPECT_TRUE(host("10.20.0.5")->automatic);
  EXPECT_EQ(host("10.20.0.5")->expires_unix_ms, clock_.unixMillis() + 600'000);
}

TEST_F(AgentCoreReleaseTest, LocalIsolateOnTheGatewayConfirmsToo) {
  ASSERT_EQ(send(order("isolate", By::kDetector, {"10.20.0.5"}, 3600)).ack.result,
            AckResult::kApplied);
  IsolateRequest request;
  request.scope = IsolationScope::kHost;
  request.hosts = {IpPrefix::parse("10.20.0.5").value()};
  auto local = core_->isolate(request);
  ASSERT_TRUE(local.ok()) << local.error().message;
  EXPECT_TRUE(local->changed);
  EXPECT_FALSE(host("10.20.0.5")->automatic);
}

TEST_F(AgentCoreReleaseTest, ReleaseAfterTheTtlIsAlreadyApplied) {
  ASSERT_EQ(send(order("isolate", By::kDetector, {"10.20.0.5"}, 60)).ack.result,
            AckResult::kApplied);
  clock_.advance(std::chrono::seconds(61));
  auto release = send(order("restore", By::kRelease, {"10.20.0.5"}));
  ASSERT_FALSE(release.rejection.has_value()) << release.rejection->message;
  EXPECT_EQ(release.ack.result, AckResult::kAlreadyApplied);
  EXPECT_TRUE(core_->desired().isolations.empty());

  // The same after an operator's timed cut ran out: it is gone, nothing is refused.
  ASSERT_EQ(send(order("isolate", By::kOperator, {"10.20.0.6"}, 60)).ack.result,
            AckResult::kApplied);
  clock_.advance(std::chrono::seconds(61));
  EXPECT_EQ(send(order("restore", By::kRelease, {"10.20.0.6"})).ack.result,
            AckResult::kAlreadyApplied);
}

TEST_F(AgentCoreReleaseTest, TheFlagSurvivesARestart) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("shadan-release-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    auto store = SqliteStateStore::open(dir);
    ASSERT_TRUE(store.ok()) << store.error().message;
    startCore(**store);
    ASSERT_EQ(send(order("isolate", By::kDetector, {"10.20.0.5"}, 3600)).ack.result,
              AckResult::kApplied);
    ASSERT_EQ(send(order("isolate", By::kOperator, {"10.20.0.6"})).ack.result, AckResult::kApplied);
    core_.reset();
  }
  auto store = SqliteStateStore::open(dir);
  ASSERT_TRUE(store.ok()) << store.error().message;
  startCore(**store);
  ASSERT_NE(host("10.20.0.5"), nullptr);
  EXPECT_TRUE(host("10.20.0.5")->automatic);
  EXPECT_FALSE(host("10.20.0.6")->automatic);
  EXPECT_EQ(send(order("restore", By::kRelease, {"10.20.0.6"})).ack.result, AckResult::kRejected);
  EXPECT_EQ(send(order("restore", By::kRelease, {"10.20.0.5"})).ack.result, AckResult::kApplied);
  core_.reset();
  store->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace shadan::agent

// What each isolation's drops dropped: the attribution rule (agents/drop_counters.h) over canned
// counters, the status answer that carries the numbers (or why there are none), and how status
// prints them. Fakes only: no kernel, no root.

#include "agents/drop_counters.h"

#include <gtest/gtest.h>

#include <sstream>

#include "agents/agent_cli_output.h"
#include "agents/agent_core.h"
#include "agents/control_protocol.h"
#include "tests/fakes/fake_backends.h"

namespace shadan::agent {
namespace {

using testing::FakeAuditSink;
using testing::FakeClock;
using testing::FakeConntrackBackend;
using testing::FakeFirewallBackend;
using testing::FakeRouteBackend;
using testing::FakeStateStore;

const std::string kLabPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";

const Isolation kOfficeFull{"office", "full"};
const Isolation kServersInternetOnly{"servers", "internet-only"};
const Isolation kServersForensic{"servers", "forensic"};

class DropCountersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = loadPolicyFile(kLabPolicy);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    policy_ = std::move(loaded).value().policy;
  }

  // The count of `isolation` in `counts`, which must be there and read.
  static DropCount countOf(const DropCounts& counts, const Isolation& isolation) {
    const auto found = counts.find(isolation);
    EXPECT_NE(found, counts.end()) << isolation.segment << " " << isolation.profile;
    if (found == counts.end()) return {};
    EXPECT_TRUE(found->second.ok()) << found->second.error().message;
    return found->second.ok() ? *found->second : DropCount{};
  }

  Policy policy_;
};

TEST_F(DropCountersTest, QuarantinedHostsOfOneProfileShareTheirSetsDrops) {
  const auto host = [](std::string_view text) {
    return Isolation{"office", "full", IsolationScope::kHost, IpPrefix::parse(text).value()};
  };
  const std::vector<RuleCounter> counters = {
      {"forward", "ip saddr @host_full_v4 counter drop", 3, 180},
      {"forward", "ip daddr @host_full_v4 counter drop", 1, 60},
      {"forward", "ip6 saddr @host_full_v6 counter drop", 7, 700},
      {"forward", "ip saddr @seg_office_v4 counter drop", 100, 6000},
  };
  const std::vector<Isolation> isolations = {host("10.20.0.5"), host("10.20.0.6"),
                                             host("fd00:20::5"), kOfficeFull};
  const DropCounts counts = attributeDrops(policy_, "gw", isolations, counters);
  EXPECT_EQ(countOf(counts, host("10.20.0.5")), (DropCount{4, 240}));
  EXPECT_EQ(countOf(counts, host("10.20.0.6")), (DropCount{4, 240}));
  EXPECT_EQ(countOf(counts, host("fd00:20::5")), (DropCount{7, 700}));
  EXPECT_EQ(countOf(counts, kOfficeFull), (DropCount{100, 6000}));
}

// The rule texts are those the kernel's JSON listing reads back as (nft_rule_counters_test.cc
// shows the same texts coming out of nft 1.0.6's own listing).
TEST_F(DropCountersTest, EachIsolationGetsTheSumOfItsOwnDropsInEveryChain) {
  const std::vector<RuleCounter> counters = {
      {"input", "ip saddr @seg_office_v4 counter drop", 2, 120},
      {"forward", "ip saddr @seg_office_v4 counter drop", 5, 300},
      {"forward", "ip6 daddr @seg_office_v6 counter drop", 1, 80},
      {"forward", "ip saddr @seg_servers_v4 ip daddr != @known_v4 counter drop", 7, 700},
      {"forward", "ip saddr @seg_servers_v4 ip daddr != @allow_forensic_v4 counter drop", 11, 1100},
      {"forward", "ip6 saddr @seg_servers_v6 counter drop", 13, 1300},
      // (office, servers-only) is not active: its drop counts for nobody…
      {"forward", "ip saddr @seg_office_v4 ip daddr @seg_servers_v4 counter drop", 100, 10000},
      // …and neither does a rule that is not the planner's (someone rewrote it).
      {"forward", "", 9, 900},
  };
  const DropCounts counts = attributeDrops(
      policy_, "gw", {kOfficeFull, kServersInternetOnly, kServersForensic}, counters);
  EXPECT_EQ(counts.size(), 3u);
  EXPECT_EQ(countOf(counts, kOfficeFull), (DropCount{8, 500}));
  EXPECT_EQ(countOf(counts, kServersInternetOnly), (DropCount{7, 700}));
  EXPECT_EQ(countOf(counts, kServersForensic), (DropCount{24, 2400}));
}

TEST_F(DropCountersTest, ADropTwoIsolationsShareCountsForBoth) {
  // full and full-blackhole write the same drops for office: the planner writes them once.
  const Isolation blackhole{"office", "full-blackhole"};
  const DropCounts counts =
      attributeDrops(policy_, "gw", {kOfficeFull, blackhole},
                     {{"forward", "ip saddr @seg_office_v4 counter drop", 4, 240}});
  EXPECT_EQ(countOf(counts, kOfficeFull), (DropCount{4, 240}));
  EXPECT_EQ(countOf(counts, blackhole), (DropCount{4, 240}));
}

TEST_F(DropCountersTest, TheDefaultSegmentIsFoundByItsKnownSets) {
  const Isolation internet{"internet", "full"};
  const DropCounts counts =
      attributeDrops(policy_, "gw", {internet},
                     {{"forward", "ip saddr != @known_v4 counter drop", 3, 180},
                      {"forward", "ip6 daddr != @known_v6 counter drop", 2, 160}});
  EXPECT_EQ(countOf(counts, internet), (DropCount{5, 340}));
}

TEST_F(DropCountersTest, AnIsolationWithoutTrafficCountsZero) {
  const DropCounts counts = attributeDrops(policy_, "gw", {kOfficeFull}, {});
  EXPECT_EQ(countOf(counts, kOfficeFull), (DropCount{0, 0}));
}

TEST_F(DropCountersTest, AnIsolationThePolicyNoLongerKnowsCarriesThePlannersReason) {
  const Isolation gone{"gone", "full"};
  const DropCounts counts =
      attributeDrops(policy_, "gw", {gone, kOfficeFull},
                     {{"forward", "ip saddr @seg_office_v4 counter drop", 1, 60}});
  ASSERT_EQ(counts.count(gone), 1u);
  ASSERT_FALSE(counts.at(gone).ok());
  EXPECT_EQ(counts.at(gone).error().code, ErrorCode::kNotFound);
  EXPECT_NE(counts.at(gone).error().message.find("\"gone\""), std::string::npos);
  EXPECT_EQ(countOf(counts, kOfficeFull), (DropCount{1, 60}));
}

TEST_F(DropCountersTest, CountersThatCannotBeReadLeaveEveryIsolationWithTheReason) {
  FakeFirewallBackend firewall;
  firewall.table = "table inet shadan {}\n";
  firewall.fail_counters = true;
  DropCounts counts = readDropCounts(firewall, policy_, "gw", {kOfficeFull, kServersInternetOnly});
  ASSERT_EQ(counts.size(), 2u);
  for (const auto& [isolation, count] : counts) {
    ASSERT_FALSE(count.ok()) << isolation.segment;
    EXPECT_EQ(count.error().message, "fake counter read failure");
  }

  firewall.fail_counters = false;
  firewall.table.clear();  // our table is gone
  counts = readDropCounts(firewall, policy_, "gw", {kOfficeFull});
  ASSERT_FALSE(counts.at(kOfficeFull).ok());
  EXPECT_EQ(counts.at(kOfficeFull).error().code, ErrorCode::kNotFound);
}

class DropCountersStatusTest : public DropCountersTest {
 protected:
  void SetUp() override {
    DropCountersTest::SetUp();
    core_ = std::make_unique<AgentCore>(
        policy_, "gw",
        AgentCoreDeps{store_, firewall_, routes_, conntrack_, audit_, clock_, "host1", "0.1.0"});
    ASSERT_TRUE(core_->load().ok());
    for (const Isolation& isolation : {kOfficeFull, kServersInternetOnly}) {
      IsolateRequest request;
      request.segment = isolation.segment;
      request.profile = isolation.profile;
      auto isolated = core_->isolate(request);
      ASSERT_TRUE(isolated.ok()) << isolated.error().message;
    }
  }

  nlohmann::json status() {
    ControlRequest request;
    request.op = "status";
    return handleControlRequest(*core_, request, "test");
  }

  FakeFirewallBackend firewall_;
  FakeRouteBackend routes_;
  FakeStateStore store_;
  FakeClock clock_;
  FakeConntrackBackend conntrack_;
  FakeAuditSink audit_;
  std::unique_ptr<AgentCore> core_;
};

TEST_F(DropCountersStatusTest, StatusCarriesEachIsolationsCounts) {
  firewall_.rule_counters = {{"forward", "ip saddr @seg_office_v4 counter drop", 1234, 100352}};
  const nlohmann::json answer = status();
  ASSERT_TRUE(answer.value("ok", false)) << answer.dump();
  const nlohmann::json& isolations = answer["isolations"];
  ASSERT_EQ(isolations.size(), 2u) << answer.dump();
  EXPECT_EQ(isolations[0]["segment"], "office");
  EXPECT_EQ(isolations[0]["dropped"], nlohmann::json({{"packets", 1234}, {"bytes", 100352}}));
  EXPECT_EQ(isolations[1]["segment"], "servers");
  EXPECT_EQ(isolations[1]["dropped"], nlohmann::json({{"packets", 0}, {"bytes", 0}}));
  EXPECT_FALSE(isolations[0].contains("dropped_error"));
  // The counters are no part of the table's hash: the kernel is as applied.
  EXPECT_EQ(answer["kernel"]["state"], "in_sync");
}

TEST_F(DropCountersStatusTest, StatusDoesNotFailWhenTheCountersCannotBeRead) {
  firewall_.fail_counters = true;
  const nlohmann::json answer = status();
  EXPECT_TRUE(answer.value("ok", false)) << answer.dump();
  EXPECT_EQ(answer["kernel"]["state"], "in_sync");
  for (const nlohmann::json& isolation : answer["isolations"]) {
    EXPECT_TRUE(isolation["dropped"].is_null()) << isolation.dump();
    EXPECT_EQ(isolation.value("dropped_error", ""), "fake counter read failure");
  }
}

TEST(DropCountersOutputTest, StatusPrintsPacketsAndBytesOrADashWithTheReason) {
  const nlohmann::json answer = {{"gateway", "gw"},
                                 {"policy", "lab"},
                                 {"isolations",
                                  {{{"segment", "office"},
                                    {"profile", "full"},
                                    {"origin", "local-cli"},
                                    {"since", "2026-11-26T10:01:00.000Z"},
                                    {"dropped", {{"packets", 1234}, {"bytes", 100352}}}},
                                   {{"segment", "servers"},
                                    {"profile", "full"},
                                    {"origin", "local-cli"},
                                    {"since", "2026-11-26T10:01:00.000Z"},
                                    {"dropped", {{"packets", 1}, {"bytes", 60}}}},
                                   {{"segment", "mgmt"},
                                    {"profile", "full"},
                                    {"origin", "local-cli"},
                                    {"since", "2026-11-26T10:01:00.000Z"},
                                    {"dropped", {{"packets", 20000}, {"bytes", 1536}}}},
                                   {{"segment", "internet"},
                                    {"profile", "full"},
                                    {"origin", "local-cli"},
                                    {"since", "2026-11-26T10:01:00.000Z"},
                                    {"dropped", nullptr},
                                    {"dropped_error", "table inet shadan is absent"}}}},
                                 {"kernel", {{"state", "missing"}}}};
  std::ostringstream out;
  printStatusAnswer(answer, out);
  const std::string text = out.str();
  EXPECT_NE(text.find("\n    dropped 1234 packets (98 KiB)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n    dropped 1 packet (60 B)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n    dropped 20000 packets (1.5 KiB)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n    dropped - (table inet shadan is absent)\n"), std::string::npos)
      << text;

  // An answer without counters at all (the kernel was not read) prints no line for them.
  nlohmann::json offline = answer;
  for (nlohmann::json& isolation : offline["isolations"]) {
    isolation.erase("dropped");
    isolation.erase("dropped_error");
  }
  std::ostringstream quiet;
  printStatusAnswer(offline, quiet);
  EXPECT_EQ(quiet.str().find("dropped"), std::string::npos) << quiet.str();
}

}  // namespace
}  // namespace shadan::agent

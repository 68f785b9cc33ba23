#include "agents/enforcer.h"

#include <gtest/gtest.h>

#include "tests/fakes/fake_backends.h"

namespace shadan::agent {
namespace {

using testing::FakeFirewallBackend;
using testing::FakeRouteBackend;

IpPrefix prefix(const char* text) { return IpPrefix::parse(text).value(); }

class EnforcerTest : public ::testing::Test {
 protected:
  DataplanePlan planWithTable(const std::string& body, std::vector<IpPrefix> routes = {}) {
    return DataplanePlan{"add table inet shadan\ndelete table inet shadan\n" + body,
                         std::move(routes)};
  }

  FakeFirewallBackend firewall_;
  FakeRouteBackend routes_;
  Enforcer enforcer_{firewall_, routes_};
};

TEST_F(EnforcerTest, AppliesTableAndRoutesAndReportsBeforeAndAfter) {
  firewall_.table = "table inet shadan { old }\n";
  auto report =
      enforcer_.enforce(planWithTable("table inet shadan { new }\n", {prefix("10.20.0.0/16")}));
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->before.listing, "table inet shadan { old }\n");
  EXPECT_EQ(report->after.listing, "table inet shadan { new }\n");
  EXPECT_EQ(report->after.sha256, sha256Hex("table inet shadan { new }\n"));
  EXPECT_NE(report->before.sha256, report->after.sha256);
  ASSERT_EQ(report->routes_after.size(), 1u);
  EXPECT_EQ(report->routes_after[0], prefix("10.20.0.0/16"));
}

TEST_F(EnforcerTest, KernelRefusalLeavesTableAndRoutesUntouched) {
  firewall_.table = "table inet shadan { old }\n";
  routes_.routes = {prefix("10.30.0.0/16")};
  firewall_.fail_applies = 1;
  auto report = enforcer_.enforce(planWithTable("table inet shadan { new }\n"));
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kKernel);
  EXPECT_NE(report.error().message.find("ruleset unchanged"), std::string::npos);
  EXPECT_EQ(firewall_.table, "table inet shadan { old }\n");
  EXPECT_EQ(routes_.syncs, 0);
  EXPECT_EQ(routes_.routes, std::vector<IpPrefix>{prefix("10.30.0.0/16")});
}

TEST_F(EnforcerTest, RouteFailureRollsTheTableBack) {
  firewall_.table = "table inet shadan { old }\n";
  routes_.routes = {prefix("10.30.0.0/16")};
  routes_.fail_syncs = 1;
  auto report =
      enforcer_.enforce(planWithTable("table inet shadan { new }\n", {prefix("10.20.0.0/16")}));
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.error().message.find("previous ruleset restored"), std::string::npos);
  EXPECT_EQ(firewall_.table, "table inet shadan { old }\n");
  EXPECT_EQ(routes_.routes, std::vector<IpPrefix>{prefix("10.30.0.0/16")});
}

TEST_F(EnforcerTest, RouteFailureWithNoPreviousTableRemovesOurs) {
  routes_.fail_syncs = 1;
  auto report = enforcer_.enforce(planWithTable("table inet shadan { new }\n"));
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(firewall_.table, "");
  EXPECT_EQ(firewall_.scripts.back(), "add table inet shadan\ndelete table inet shadan\n");
}

TEST_F(EnforcerTest, FailedRollbackIsReportedAsSuch) {
  firewall_.table = "table inet shadan { old }\n";
  routes_.fail_syncs = 2;  // the sync and the rollback's sync
  auto report = enforcer_.enforce(planWithTable("table inet shadan { new }\n"));
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.error().message.find("rolling back failed too"), std::string::npos);
}

TEST_F(EnforcerTest, RestoreScriptReplacesOrRemovesTheTable) {
  EXPECT_EQ(restoreScriptFor(TableSnapshot{}), "add table inet shadan\ndelete table inet shadan\n");
  EXPECT_EQ(restoreScriptFor(TableSnapshot{true, "table inet shadan {}\n", "x"}),
            "add table inet shadan\ndelete table inet shadan\ntable inet shadan {}\n");
}

}  // namespace
}  // namespace shadan::agent

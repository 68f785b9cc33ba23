// 200 simulated gateways (the agent's own session and channel code) against the real
// controller: every agent gets every order exactly once, every ack is verified, a controller
// killed under a connected fleet loses nothing, churn loses nothing; the fan-out also on an etcd
// store, and on three controllers with the leader or an etcd member killed mid-fan-out. Counts
// and states only.
#include <gtest/gtest.h>

#include <csignal>
#include <set>
#include <sstream>

#include "bench/loadgen/fleet_run.h"
#include "bench/loadgen/loadgen_cli.h"
#include "bench/loadgen/scenarios.h"

namespace shadan::loadgen {
namespace {

using nlohmann::json;

constexpr size_t kAgents = 200;

ScenarioOptions options() {
  ScenarioOptions out;
  out.run.agents = kAgents;
  out.run.io_threads = 2;
  out.run.controller_bin = std::string(SHADAN_BINARY_DIR) + "/controller/shadan-controller";
  out.run.controller_log_level = "warn";
  out.run.phase_timeout = std::chrono::seconds(60);
  return out;
}

// Three controllers on a three-member etcd cluster.
ScenarioOptions clusterOptions() {
  ScenarioOptions out = options();
  out.run.store = "etcd";
  out.run.controllers = 3;
  return out;
}

// Every gateway acked `phase`'s order with a verified ack, and handled it exactly once.
void expectEveryAgentOnce(const json& report, const std::string& phase) {
  SCOPED_TRACE(phase + ": " + report["phases"][phase].dump());
  const json& order = report["phases"][phase];
  EXPECT_EQ(order["targets"], kAgents);
  EXPECT_EQ(order["acked"], kAgents);
  EXPECT_EQ(order["states"].value("applied", 0), kAgents);
  EXPECT_EQ(order["agents_applied"], kAgents);
}

TEST(FleetScaleTest, FanoutReachesEveryAgentExactlyOnce) {
  auto report = runScenario("fanout", options());
  ASSERT_TRUE(report.ok()) << report.error().message;
  expectEveryAgentOnce(*report, "isolate");
  expectEveryAgentOnce(*report, "restore");
  EXPECT_EQ((*report)["phases"]["isolate"]["redelivered"], 0);
  EXPECT_EQ((*report)["phases"]["restore"]["redelivered"], 0);
  EXPECT_EQ((*report)["agents"], kAgents);
  EXPECT_GT((*report)["controller_rss_anon_kb"].get<int64_t>(), 0);
  EXPECT_TRUE(reportComplete(*report));
}

// The same fan-out with the controller's store on etcd (a member the run starts on loopback):
// one transaction per order and per delivery chunk, sized by the run.
TEST(FleetScaleTest, FanoutOnAnEtcdStoreReachesEveryAgentExactlyOnce) {
  ScenarioOptions on_etcd = options();
  on_etcd.run.store = "etcd";
  auto report = runScenario("fanout", on_etcd);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ((*report)["store"], "etcd");
  expectEveryAgentOnce(*report, "isolate");
  expectEveryAgentOnce(*report, "restore");
  EXPECT_EQ((*report)["phases"]["isolate"]["redelivered"], 0);
  EXPECT_TRUE(reportComplete(*report));
}

TEST(FleetScaleTest, ControllerKilledUnderAConnectedFleetLosesNothing) {
  auto report = runScenario("storm", options());
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_FALSE((*report)["all_back_ms"].is_null());
  expectEveryAgentOnce(*report, "isolate");
  EXPECT_EQ((*report)["phases"]["isolate"]["redelivered"], 0);
  EXPECT_EQ((*report)["phases"]["reconnect"]["count"], kAgents);
  EXPECT_TRUE(reportComplete(*report));
}

TEST(FleetScaleTest, ChurnLosesNoOrder) {
  ScenarioOptions churn = options();
  churn.duration = std::chrono::seconds(4);
  churn.churn_per_s = 25;
  auto report = runScenario("churn", churn);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_GT((*report)["dropped"].get<int>(), 20);  // churn happened (25/s for 4 s)
  expectEveryAgentOnce(*report, "isolate");
  expectEveryAgentOnce(*report, "restore");
  EXPECT_TRUE(reportComplete(*report));
}

// Three controllers on a three-member etcd cluster, the agents spread over them; the leader is
// killed (SIGKILL) while the isolate fans out: its agents move to the others, and every agent
// applies every order exactly once, the restore included (requested on a survivor).
TEST(FleetScaleTest, LeaderKilledMidFanoutLosesAndRepeatsNothing) {
  ScenarioOptions cluster = clusterOptions();
  cluster.kill_leader = true;
  auto report = runScenario("fanout", cluster);
  ASSERT_TRUE(report.ok()) << report.error().message;
  SCOPED_TRACE(report->dump());
  const json& r = *report;
  EXPECT_EQ(r["controllers"], 3);
  EXPECT_NE(r["leader"], r["requested_on"]);
  EXPECT_NE(r["leader_after"], r["leader"]);  // another took over the sweeps
  EXPECT_GT(r["orphans"].get<size_t>(), 0u);  // the leader had agents when it died
  EXPECT_FALSE(r["failover_ms"].is_null());
  EXPECT_EQ(r["acked"], kAgents);
  EXPECT_EQ(r["duplicates"], 0);
  expectEveryAgentOnce(r, "isolate");
  expectEveryAgentOnce(r, "restore");
  EXPECT_TRUE(reportComplete(r));
}

// The same cluster with nothing killed: the fan-out reaches every agent through whichever
// controller it is connected to.
TEST(FleetScaleTest, ThreeControllersReachEveryAgentExactlyOnce) {
  ScenarioOptions cluster = clusterOptions();
  auto report = runScenario("fanout", cluster);
  ASSERT_TRUE(report.ok()) << report.error().message;
  SCOPED_TRACE(report->dump());
  EXPECT_EQ((*report)["acked"], kAgents);
  EXPECT_EQ((*report)["duplicates"], 0);
  EXPECT_TRUE((*report)["failover_ms"].is_null());
  EXPECT_EQ((*report)["controller_procs"].size(), 3u);  // all three still running
  expectEveryAgentOnce(*report, "isolate");
  expectEveryAgentOnce(*report, "restore");
  EXPECT_EQ((*report)["phases"]["isolate"]["redelivered"], 0);
  EXPECT_TRUE(reportComplete(*report));
}

// The etcd member every controller talks to first is killed (SIGKILL) while the isolate fans
// out: the two others are a quorum, every controller moves on to the next endpoint, a delivery
// whose commit died with the member is tried again, and every agent applies both orders once.
TEST(FleetScaleTest, EtcdMemberLostMidFanoutTwoOfThreeCarryOn) {
  ScenarioOptions cluster = clusterOptions();
  cluster.run.agents = 60;  // few enough that the kill lands inside a delivery's commit
  cluster.kill_etcd_member = true;
  auto report = runScenario("fanout", cluster);
  ASSERT_TRUE(report.ok()) << report.error().message;
  SCOPED_TRACE(report->dump());
  EXPECT_EQ((*report)["etcd_member_killed"], "lg-1");
  EXPECT_EQ((*report)["acked"], 60);
  EXPECT_EQ((*report)["duplicates"], 0);
  EXPECT_EQ((*report)["phases"]["restore"]["acked"], 60);
  EXPECT_TRUE(reportComplete(*report));
}

// Every etcd member lost under three controllers: each refuses a new order with a clear error
// and records nothing of it; every gateway keeps the isolation it holds (its own state); with
// the members back, the order is served, and the store holds only the orders it accepted.
TEST(FleetScaleTest, EtcdLostWholeOrdersAreRefusedAndEveryGatewayKeepsItsCut) {
  constexpr size_t kFew = 30;
  RunOptions setup = clusterOptions().run;
  setup.agents = kFew;
  FleetRun run(setup);
  ASSERT_TRUE(run.setUp().ok());
  auto isolated = run.isolate("before etcd is lost");
  ASSERT_TRUE(isolated.ok()) << isolated.error().message;
  ASSERT_EQ(isolated->acked, kFew);
  ASSERT_EQ(run.agentsHolding(kFleetSegment), kFew);

  for (size_t k = 0; k < 3; ++k) ASSERT_TRUE(run.stopEtcdMember(k, SIGKILL).ok());
  for (size_t k = 0; k < 3; ++k) {
    run.useController(k);
    auto refused = run.requestRestore("while etcd is gone");
    ASSERT_FALSE(refused.ok()) << "controller " << k << " took an order without its store";
    EXPECT_NE(refused.error().message.find("HTTP 503 \"store_unavailable\""), std::string::npos)
        << refused.error().message;
  }
  EXPECT_EQ(run.agentsHolding(kFleetSegment), kFew);

  // Two members make a quorum again; the third joins them.
  ASSERT_TRUE(run.startEtcdMember(0, /*wait=*/false).ok());
  ASSERT_TRUE(run.startEtcdMember(1).ok());
  ASSERT_TRUE(run.startEtcdMember(2).ok());
  run.useController(1);
  auto restored = run.restore("etcd is back");
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(restored->acked, kFew);
  EXPECT_EQ(restored->duplicates, 0u);
  EXPECT_EQ(run.agentsHolding(kFleetSegment), 0u);

  auto status = run.status();
  ASSERT_TRUE(status.ok()) << status.error().message;
  std::multiset<std::string> reasons;
  for (const auto& order : (*status)["orders"]) reasons.insert(order.value("reason", ""));
  EXPECT_EQ(reasons, (std::multiset<std::string>{"before etcd is lost", "etcd is back"}));
}

// The command line refuses what cannot run, naming it, before anything starts.
TEST(LoadgenCliTest, SeveralControllersAndTheLeaderKillAreCheckedBeforeAnythingStarts) {
  const auto run = [](std::vector<std::string> args) {
    std::ostringstream out, err;
    const int code = runLoadgen(args, out, err);
    return std::make_pair(code, err.str());
  };
  auto [code, err] = run({"fanout", "--kill-leader"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("--kill-leader needs --controllers"), std::string::npos) << err;
  std::tie(code, err) = run({"fanout", "--controllers", "3", "--store", "sqlite"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("etcd"), std::string::npos) << err;
  std::tie(code, err) = run({"fanout", "--controllers", "8"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("--controllers needs a whole number 1..7"), std::string::npos) << err;
  std::tie(code, err) = run({"fanout", "--kill-etcd-member"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("--kill-etcd-member needs --controllers"), std::string::npos) << err;
  std::tie(code, err) =
      run({"fanout", "--controllers", "3", "--kill-leader", "--kill-etcd-member"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("separate runs"), std::string::npos) << err;
  std::tie(code, err) = run({"storm", "--controllers", "3"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("fanout"), std::string::npos) << err;
}

}  // namespace
}  // namespace shadan::loadgen

// Integration: the continuous prober (cli/lab/prober.h) in the standard lab, with real packets.
// A drop-everything chain appears on the gateway at a marked time: every pair and the
// established flow must turn cut after the mark, and open again once the chain is gone. The
// time to cut is printed, never asserted. Needs root; the lab is named for this process and torn
// down by Lab's destructor, also on failure.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include "cli/lab/command_runner.h"
#include "cli/lab/lab.h"
#include "cli/lab/netns.h"
#include "cli/lab/prober.h"
#include "tests/integration/lab_traffic.h"

namespace shadan {
namespace {

using std::chrono::milliseconds;

// Generous: these bound how long the test waits for something that must happen, not how fast.
constexpr milliseconds kWait(5000);
constexpr milliseconds kFlowResumeWait(10000);

double msBetween(ProbeTime from, ProbeTime to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

class ProberLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    lab_ = std::make_unique<Lab>(standardLabSpec(), "pr" + std::to_string(::getpid() % 1000000),
                                 runner_);
    Status up = lab_->up();
    ASSERT_TRUE(up.ok()) << up.error().message;
  }

  std::string ns(const std::string& node) const { return lab_->nsName(node); }
  void nft(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip", "netns", "exec", ns("gw"), "nft"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = runChecked(runner_, argv);
    ASSERT_TRUE(result.ok()) << result.error().message;
  }
  // True once every id has changed to `state` at or after `after`.
  bool allChanged(const ContinuousProber& prober, const std::vector<std::string>& ids,
                  ProbeTime after, PathState state, milliseconds wait) {
    return waitUntil(
        [&] {
          for (const std::string& id : ids) {
            if (!prober.firstChangeAfter(id, after, state)) return false;
          }
          return true;
        },
        wait);
  }

  ProcessCommandRunner runner_;
  std::unique_ptr<Lab> lab_;
};

TEST_F(ProberLabTest, ADropChainOnTheGatewayCutsEveryPairAndTheFlowAfterTheMarkAndNotForGood) {
  const std::vector<ProbePair> pairs = {
      {"office-servers-tcp4", ns("office"), ns("servers"), "10.30.0.2", ProbeProto::kTcp, 0, true},
      {"office-servers-icmp6", ns("office"), "", "fd00:30::2", ProbeProto::kIcmp, 0, true},
      {"servers-inet-udp4", ns("servers"), ns("inet"), "203.0.113.2", ProbeProto::kUdp, 0, true},
  };
  const std::vector<ProbeFlow> flows = {
      {"office-inet-flow6", ns("office"), ns("inet"), "2001:db8:113::2", 0}};
  const std::vector<std::string> pair_ids = {pairs[0].id, pairs[1].id, pairs[2].id};
  const std::vector<std::string> all_ids = {pairs[0].id, pairs[1].id, pairs[2].id, flows[0].id};

  ContinuousProber prober;
  Status started = prober.start(pairs, flows);
  ASSERT_TRUE(started.ok()) << started.error().message;
  ASSERT_TRUE(prober.running());
  const ProbeTime origin = ProbeTime::min();
  ASSERT_TRUE(allChanged(prober, all_ids, origin, PathState::kOpen, kWait))
      << "not every pair and flow was seen open before anything was cut";

  const ProbeTime cut_mark = prober.mark("drop chain added");
  nft({"add", "table", "inet", "prober_test"});
  nft({"add", "chain", "inet", "prober_test", "forward",
       "{ type filter hook forward priority -10; policy drop; }"});
  ASSERT_TRUE(allChanged(prober, all_ids, cut_mark, PathState::kCut, kWait))
      << "not every pair and flow was seen cut after the drop chain";
  {
    // Nothing gets through a drop policy: whatever blips came before, each ends up cut.
    const ProberResults during = prober.results();
    for (const std::string& id : all_ids) {
      const ProbeSeries* series = during.find(id);
      ASSERT_NE(series, nullptr) << id;
      ASSERT_FALSE(series->transitions.empty()) << id;
      EXPECT_EQ(series->transitions.back().state, PathState::kCut) << id;
      const auto cut = prober.firstChangeAfter(id, cut_mark, PathState::kCut);
      EXPECT_GE(*cut, cut_mark) << id;
      std::printf("[ prober   ] %s: first dropped probe %.2f ms after the mark\n", id.c_str(),
                  msBetween(cut_mark, *cut));
    }
    EXPECT_FALSE(during.find(flows[0].id)->closed) << "a drop must stall the flow, not reset it";
  }

  const ProbeTime restore_mark = prober.mark("drop chain deleted");
  nft({"delete", "table", "inet", "prober_test"});
  ASSERT_TRUE(allChanged(prober, pair_ids, restore_mark, PathState::kOpen, kWait))
      << "not every pair was seen open again after the drop chain went";
  // The flow comes back when TCP retransmits, after its own backoff. Its return is dated by the
  // send time of the first token echoed again, and TCP may deliver a token sent up to one
  // timeout before the chain went (prober.h): look from one timeout before the restore mark.
  const ProbeTime flow_mark = restore_mark - ProberOptions{}.timeout - ProberOptions{}.interval;
  EXPECT_TRUE(allChanged(prober, {flows[0].id}, flow_mark, PathState::kOpen, kFlowResumeWait))
      << "the established flow never carried data again";
  for (const std::string& id : all_ids) {
    if (auto open = prober.firstChangeAfter(id, restore_mark, PathState::kOpen)) {
      std::printf("[ prober   ] %s: first answered probe %.2f ms after the restore mark\n",
                  id.c_str(), msBetween(restore_mark, *open));
    }
  }

  prober.stop();
  EXPECT_FALSE(prober.running());
  const ProberResults results = prober.results();
  for (const auto* list : {&results.pairs, &results.flows}) {
    for (const ProbeSeries& series : *list) {
      std::printf("[ prober   ] %s:", series.id.c_str());
      for (const StateChange& change : series.transitions) {
        std::printf(" %s@%+.2fms", pathStateName(change.state), msBetween(cut_mark, change.at));
      }
      std::printf("\n");
    }
  }
  ASSERT_EQ(results.pairs.size(), 3u);
  ASSERT_EQ(results.flows.size(), 1u);
  ASSERT_EQ(results.marks.size(), 2u);
  EXPECT_EQ(results.marks[0].label, "drop chain added");
  for (const auto* list : {&results.pairs, &results.flows}) {
    for (const ProbeSeries& series : *list) {
      EXPECT_GT(series.ok, 0u) << series.id;
      EXPECT_GT(series.failed, 0u) << series.id;
      EXPECT_EQ(series.errors, 0u) << series.id;
      EXPECT_GE(series.sent, series.ok + series.failed + series.errors) << series.id;
      EXPECT_NE(series.port == 0, series.proto != ProbeProto::kIcmp) << series.id;
      // Our own loop's rate, not the system under test's: 2 ms per probe is 500 a second; at
      // least 100 a second holds even on a loaded machine.
      ASSERT_TRUE(series.first_sent && series.last_sent) << series.id;
      const double seconds =
          std::chrono::duration<double>(*series.last_sent - *series.first_sent).count();
      const double rate = seconds > 0 ? static_cast<double>(series.sent - 1) / seconds : 0;
      std::printf("[ prober   ] %s: %llu probes, %.0f per second, longest gap %.2f ms\n",
                  series.id.c_str(), static_cast<unsigned long long>(series.sent), rate,
                  std::chrono::duration<double, std::milli>(series.max_send_gap).count());
      EXPECT_GE(rate, 100.0) << series.id;
    }
  }
}

TEST_F(ProberLabTest, StartFailsNamingThePairWhenItCannotListenAndLeavesNothingRunning) {
  ContinuousProber prober;
  // 10.30.0.99 is on no interface of the servers namespace.
  Status started = prober.start(
      {{"icmp", ns("office"), "", "10.30.0.2", ProbeProto::kIcmp, 0, true},
       {"nowhere", ns("office"), ns("servers"), "10.30.0.99", ProbeProto::kTcp, 0, true}});
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message.find("pair 1 ('nowhere'): cannot listen on 10.30.0.99 port 0"),
            std::string::npos)
      << started.error().message;
  EXPECT_FALSE(prober.running());
  EXPECT_TRUE(prober.results().pairs.empty());
}

TEST_F(ProberLabTest, ProbesAServiceThatAlreadyListensAndCountsARefusalAsCut) {
  // A listener of the test's own stands for a real service (the controller's port, say).
  auto service = socketInNetns(ns("servers"), AF_INET, SOCK_STREAM, 0);
  ASSERT_TRUE(service.ok()) << service.error().message;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(18443);
  ::inet_pton(AF_INET, "10.30.0.2", &address.sin_addr);
  ASSERT_EQ(::bind(service->get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)),
            0);
  ASSERT_EQ(::listen(service->get(), 4096), 0);

  ContinuousProber prober;
  Status started = prober.start(
      {{"service", ns("office"), "", "10.30.0.2", ProbeProto::kTcp, 18443, false},
       {"closed-port", ns("office"), "", "10.30.0.2", ProbeProto::kTcp, 18444, false}});
  ASSERT_TRUE(started.ok()) << started.error().message;
  EXPECT_TRUE(allChanged(prober, {"service"}, ProbeTime::min(), PathState::kOpen, kWait));
  EXPECT_TRUE(allChanged(prober, {"closed-port"}, ProbeTime::min(), PathState::kCut, kWait));
  prober.stop();
  const ProberResults results = prober.results();
  EXPECT_EQ(results.find("service")->port, 18443);
  EXPECT_EQ(results.find("closed-port")->ok, 0u);
  EXPECT_EQ(results.find("closed-port")->errors, 0u);
}

}  // namespace
}  // namespace shadan

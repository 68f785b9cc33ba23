// End to end on the real kernel: the standard lab of namespaces (gateway `gw` with a foreign
// accept-all table, hosts office, servers, mgmt, inet), the real `shadan-agent` binary run inside
// the gateway's namespace, and real packets proving each cut and each restore.
//
// Needs root. Every namespace is named sd-<lab>-<node> with a per-process lab name and is deleted
// by the Lab's destructor even when an assertion fails.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "agents/dataplane/nftables_backend.h"
#include "cli/lab/command_runner.h"
#include "cli/lab/lab.h"
#include "cli/lab/netns.h"
#include "cli/lab/probe.h"
#include "tests/integration/lab_traffic.h"

namespace shadan {

using namespace shadan::agent;  // NOLINT: the agent under test
namespace {

using namespace std::chrono_literals;

constexpr auto kShouldFail = 300ms;   // long enough for a packet across a veth to come back
constexpr auto kShouldPass = 3000ms;  // generous: a pass must never be flaky

const std::string kPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";
const std::string kAgent = std::string(SHADAN_BINARY_DIR) + "/agents/shadan-agent";

using Host = LabHost;
constexpr Host kOffice{"office", "10.20.0.2", "fd00:20::2"};
constexpr Host kServers{"servers", "10.30.0.2", "fd00:30::2"};
constexpr Host kMgmt{"mgmt", "10.99.0.10", "fd00:99::10"};
constexpr Host kInet{"inet", "203.0.113.2", "2001:db8:113::2"};
constexpr Host kGwOffice{"gw", "10.20.0.1", "fd00:20::1"};  // the gateway's own address

class IsolationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    runner_ = new ProcessCommandRunner();
    lab_ = new Lab(standardLabSpec(), "i" + std::to_string(::getpid() % 10000000), *runner_);
    auto up = lab_->up();
    if (!up.ok()) {
      setup_error_ = new std::string(up.error().message);
    }
  }

  static void TearDownTestSuite() {
    delete lab_;  // tears the namespaces down
    lab_ = nullptr;
    delete runner_;
    runner_ = nullptr;
    delete setup_error_;
    setup_error_ = nullptr;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "integration tests need root (network namespaces)";
    ASSERT_EQ(setup_error_, nullptr) << "lab did not come up: " << *setup_error_;
    state_dir_ = std::filesystem::temp_directory_path() /
                 ("shadan-it-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(state_dir_);
    // What `shadan-agent init` does: local commands never create a state directory.
    std::filesystem::create_directories(state_dir_);
  }

  void TearDown() override {
    if (::geteuid() != 0 || setup_error_) return;
    // Leave the lab open for the next test whatever this one did.
    auto restored = agent({"restore", "--all", "--reason", "test cleanup"});
    EXPECT_EQ(restored.exit_code, 0) << restored.err;
    std::filesystem::remove_all(state_dir_);
  }

  std::string ns(const char* node) const { return lab_->nsName(node); }

  // Runs shadan-agent inside the gateway's namespace with the lab policy and this test's state.
  CommandResult agent(std::vector<std::string> args) {
    std::vector<std::string> argv = {"ip", "netns", "exec", ns("gw"), kAgent};
    argv.insert(argv.end(), args.begin(), args.end());
    for (const std::string& a :
         {std::string("--policy"), kPolicy, std::string("--gateway"), std::string("gw"),
          std::string("--state-dir"), state_dir_.string()}) {
      argv.push_back(a);
    }
    auto result = runner_->run(argv);
    if (!result.ok()) return CommandResult{-1, "", result.error().message};
    return result.value();
  }

  // The gateway's whole ruleset without counters: what the kernel enforces, byte for byte.
  std::string gatewayRuleset() {
    auto result =
        runChecked(*runner_, {"ip", "netns", "exec", ns("gw"), "nft", "-s", "list", "ruleset"});
    EXPECT_TRUE(result.ok()) << result.error().message;
    return result.ok() ? result->out : std::string();
  }

  bool tcp(const Host& from, const Host& to, bool v6, uint16_t port = 0,
           std::chrono::milliseconds timeout = kShouldPass) {
    return tcpReaches(*lab_, from, to, v6, port, timeout);
  }

  bool ping(const Host& from, const Host& to, bool v6,
            std::chrono::milliseconds timeout = kShouldPass) {
    return pingReaches(*lab_, from, to, v6, timeout);
  }

  // Every kind of traffic between a and b, both directions, both families, is cut.
  void expectCut(const Host& a, const Host& b) {
    for (bool v6 : {false, true}) {
      EXPECT_FALSE(tcp(a, b, v6, 0, kShouldFail)) << a.node << "->" << b.node << " tcp v6=" << v6;
      EXPECT_FALSE(tcp(b, a, v6, 0, kShouldFail)) << b.node << "->" << a.node << " tcp v6=" << v6;
      EXPECT_FALSE(ping(a, b, v6, kShouldFail)) << a.node << "->" << b.node << " icmp v6=" << v6;
      EXPECT_FALSE(ping(b, a, v6, kShouldFail)) << b.node << "->" << a.node << " icmp v6=" << v6;
    }
  }

  void expectOpen(const Host& a, const Host& b) {
    for (bool v6 : {false, true}) {
      EXPECT_TRUE(tcp(a, b, v6)) << a.node << "->" << b.node << " tcp v6=" << v6;
      EXPECT_TRUE(tcp(b, a, v6)) << b.node << "->" << a.node << " tcp v6=" << v6;
      EXPECT_TRUE(ping(a, b, v6)) << a.node << "->" << b.node << " icmp v6=" << v6;
      EXPECT_TRUE(ping(b, a, v6)) << b.node << "->" << a.node << " icmp v6=" << v6;
    }
  }

  static ProcessCommandRunner* runner_;
  static Lab* lab_;
  static std::string* setup_error_;
  std::filesystem::path state_dir_;
};

ProcessCommandRunner* IsolationTest::runner_ = nullptr;
Lab* IsolationTest::lab_ = nullptr;
std::string* IsolationTest::setup_error_ = nullptr;

TEST_F(IsolationTest, LabIsOpenBeforeAnyIsolation) {
  expectOpen(kOffice, kServers);
  expectOpen(kOffice, kInet);
  expectOpen(kOffice, kMgmt);
  expectOpen(kOffice, kGwOffice);
}

TEST_F(IsolationTest, FullIsolationCutsNewEstablishedAndIcmpBothWaysThenRestoreBringsItBack) {
  EstablishedFlow flow4(ns("servers"), ns("office"), kOffice.v4);
  EstablishedFlow flow6(ns("office"), ns("servers"), kServers.v6);
  ASSERT_TRUE(flow4.open(kShouldPass).ok());
  ASSERT_TRUE(flow6.open(kShouldPass).ok());
  ASSERT_TRUE(flow4.roundTrip(kShouldPass).value());
  ASSERT_TRUE(flow6.roundTrip(kShouldPass).value());

  const std::string foreign_before = gatewayRuleset();
  auto isolated = agent({"isolate", "office"});
  ASSERT_EQ(isolated.exit_code, 0) << isolated.err;
  EXPECT_NE(isolated.out.find("isolated office on gw"), std::string::npos);

  // Across the gateway, to it and from it: the segment is cut, whatever the foreign table says.
  expectCut(kOffice, kServers);
  expectCut(kOffice, kInet);
  expectCut(kOffice, kGwOffice);
  // Flows that were established before the cut stop too (no conntrack dependency).
  EXPECT_FALSE(flow4.roundTrip(kShouldFail).value());
  EXPECT_FALSE(flow6.roundTrip(kShouldFail).value());
  // Segments that were not isolated still talk.
  expectOpen(kServers, kInet);
  // The foreign accept-all table is still there, untouched.
  EXPECT_NE(gatewayRuleset().find("table inet foreign"), std::string::npos);

  auto restored = agent({"restore", "office", "--reason", "test: all clear"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  expectOpen(kOffice, kServers);
  expectOpen(kOffice, kInet);
  expectOpen(kOffice, kGwOffice);
  EstablishedFlow after(ns("office"), ns("inet"), kInet.v4);
  ASSERT_TRUE(after.open(kShouldPass).ok());
  EXPECT_TRUE(after.roundTrip(kShouldPass).value());
  // Nothing isolated: no Shadan table, and the foreign table exactly as it was.
  EXPECT_EQ(gatewayRuleset(), foreign_before);
}

TEST_F(IsolationTest, ManagementTupleSurvivesIsolationOfItsOwnSegment) {
  auto isolated = agent({"isolate", "mgmt", "--reason", "test: protected segment", "--yes"});
  ASSERT_EQ(isolated.exit_code, 0) << isolated.err;

  const Host gw{"gw", "10.99.0.1", "fd00:99::1"};
  for (bool v6 : {false, true}) {
    // The gateway itself reaches the controller port on the management host (the agent's path)…
    EXPECT_TRUE(tcp(gw, kMgmt, v6, 8443)) << "gw->mgmt:8443 v6=" << v6;
    // …and so do hosts through it.
    EXPECT_TRUE(tcp(kOffice, kMgmt, v6, 8443)) << "office->mgmt:8443 v6=" << v6;
    EXPECT_TRUE(tcp(kInet, kMgmt, v6, 8443)) << "inet->mgmt:8443 v6=" << v6;
    // Everything else to and from the management segment is cut.
    EXPECT_FALSE(tcp(gw, kMgmt, v6, 8444, kShouldFail)) << "gw->mgmt:8444 v6=" << v6;
    EXPECT_FALSE(tcp(kOffice, kMgmt, v6, 22, kShouldFail)) << "office->mgmt:22 v6=" << v6;
    EXPECT_FALSE(tcp(kMgmt, kOffice, v6, 0, kShouldFail)) << "mgmt->office v6=" << v6;
    EXPECT_FALSE(ping(kOffice, kMgmt, v6, kShouldFail)) << "office->mgmt icmp v6=" << v6;
  }
}

TEST_F(IsolationTest, PeersProfileCutsOnlyWhatItNames) {
  auto isolated = agent({"isolate", "office", "--profile", "internet-only"});
  ASSERT_EQ(isolated.exit_code, 0) << isolated.err;
  expectCut(kOffice, kInet);
  expectOpen(kOffice, kServers);
  expectOpen(kOffice, kMgmt);

  auto restored = agent({"restore", "office", "--reason", "test: all clear"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  auto servers_only = agent({"isolate", "office", "--profile", "servers-only"});
  ASSERT_EQ(servers_only.exit_code, 0) << servers_only.err;
  expectCut(kOffice, kServers);
  expectOpen(kOffice, kInet);
}

TEST_F(IsolationTest, ForensicProfileKeepsTheWorkstationReachable) {
  // lab.json: forensic allows 10.99.0.50; give the mgmt host that address for this test, as the
  // source of what it sends, too.
  ASSERT_TRUE(
      runChecked(*runner_, {"ip", "-n", ns("mgmt"), "addr", "add", "10.99.0.50/24", "dev", "eth0"})
          .ok());
  ASSERT_TRUE(runChecked(*runner_, {"ip", "-n", ns("mgmt"), "route", "replace", "default", "via",
                                    "10.99.0.1", "src", "10.99.0.50"})
                  .ok());
  const Host forensic{"mgmt", "10.99.0.50", "fd00:99::10"};
  auto isolated = agent({"isolate", "servers", "--profile", "forensic"});
  ASSERT_EQ(isolated.exit_code, 0) << isolated.err;
  EXPECT_TRUE(tcp(forensic, kServers, false)) << "forensic workstation -> servers";
  EXPECT_TRUE(tcp(kServers, forensic, false)) << "servers -> forensic workstation";
  EXPECT_FALSE(tcp(kServers, kOffice, false, 0, kShouldFail));
  EXPECT_FALSE(tcp(kServers, kOffice, true, 0, kShouldFail));
  EXPECT_FALSE(tcp(kInet, kServers, false, 0, kShouldFail));
  ASSERT_TRUE(runChecked(*runner_, {"ip", "-n", ns("mgmt"), "route", "replace", "default", "via",
                                    "10.99.0.1"})
                  .ok());
  ASSERT_TRUE(
      runChecked(*runner_, {"ip", "-n", ns("mgmt"), "addr", "del", "10.99.0.50/24", "dev", "eth0"})
          .ok());
}

TEST_F(IsolationTest, IsolatingTheDefaultSegmentCutsTheInternetOnly) {
  auto isolated = agent({"isolate", "internet"});
  ASSERT_EQ(isolated.exit_code, 0) << isolated.err;
  expectCut(kInet, kOffice);
  expectCut(kInet, kServers);
  expectOpen(kOffice, kServers);
}

TEST_F(IsolationTest, SeveralIsolationsAtOnceAndIsolatingTwiceIsByteIdentical) {
  ASSERT_EQ(agent({"isolate", "office"}).exit_code, 0);
  ASSERT_EQ(agent({"isolate", "servers", "--profile", "internet-only"}).exit_code, 0);
  const std::string ruleset = gatewayRuleset();
  auto again = agent({"isolate", "office"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("already isolated"), std::string::npos);
  EXPECT_EQ(gatewayRuleset(), ruleset);
  expectCut(kOffice, kServers);
  expectCut(kServers, kInet);
  expectOpen(kServers, kMgmt);

  auto status = agent({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("\"in_sync\""), std::string::npos) << status.out;
}

TEST_F(IsolationTest, StatusCountsWhatEachIsolationDropped) {
  ASSERT_EQ(agent({"isolate", "office"}).exit_code, 0);
  ASSERT_EQ(agent({"isolate", "servers", "--profile", "internet-only"}).exit_code, 0);
  // Eight probes (TCP and ICMP, both ways, both families), each cut by office's drops; none of
  // them is traffic between servers and the internet, so servers' drops see none of it.
  expectCut(kOffice, kInet);

  auto status = agent({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const nlohmann::json doc = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << status.out;
  const auto dropped = [&](const std::string& segment) {
    for (const nlohmann::json& isolation : doc.value("isolations", nlohmann::json::array())) {
      if (isolation.value("segment", "") == segment)
        return isolation.value("dropped", nlohmann::json());
    }
    return nlohmann::json();
  };
  const nlohmann::json office = dropped("office");
  ASSERT_TRUE(office.is_object()) << status.out;
  EXPECT_GE(office.value("packets", uint64_t{0}), 8u) << status.out;
  EXPECT_GE(office.value("bytes", uint64_t{0}), 20 * office.value("packets", uint64_t{0}))
      << status.out;
  EXPECT_EQ(dropped("servers"), nlohmann::json({{"packets", 0}, {"bytes", 0}})) << status.out;
  // Counters are not the ruleset: the table is still what was applied.
  EXPECT_EQ(doc["kernel"].value("state", ""), "in_sync") << status.out;

  // Counters only grow: the human text shows at least what the JSON showed, for office.
  auto human = agent({"status"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  const size_t office_line = human.out.find("  office  profile=full");
  ASSERT_NE(office_line, std::string::npos) << human.out;
  const std::string kDropped = "\n    dropped ";
  const size_t office_dropped = human.out.find(kDropped, office_line);
  ASSERT_NE(office_dropped, std::string::npos) << human.out;
  EXPECT_GE(std::stoull(human.out.substr(office_dropped + kDropped.size())),
            office.value("packets", uint64_t{0}))
      << human.out;
  EXPECT_NE(human.out.find("\n    dropped 0 packets (0 B)\n"), std::string::npos) << human.out;
}

TEST_F(IsolationTest, RejectedCommandsLeaveTheRulesetByteIdentical) {
  ASSERT_EQ(agent({"isolate", "servers"}).exit_code, 0);
  const std::string ruleset = gatewayRuleset();
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"isolate", "nowhere"}, 3, "unknown segment \"nowhere\""},
      {{"isolate", "office", "--profile", "gentle"}, 3, "unknown profile \"gentle\""},
      {{"restore", "nowhere", "--reason", "test"}, 3, "unknown segment \"nowhere\""},
      {{"isolate", "office", "--bogus"}, 2, "unknown option --bogus"},
  };
  for (const auto& c : cases) {
    auto result = agent(c.args);
    EXPECT_EQ(result.exit_code, c.exit_code) << c.message;
    EXPECT_NE(result.err.find(c.message), std::string::npos) << result.err;
    EXPECT_EQ(gatewayRuleset(), ruleset) << c.message;
  }
  expectCut(kServers, kOffice);
}

TEST_F(IsolationTest, TransactionFailingHalfWayLeavesTheRulesetByteIdentical) {
  ASSERT_EQ(agent({"isolate", "office"}).exit_code, 0);
  const std::string ruleset = gatewayRuleset();
  // A full table replacement the kernel would take, followed by a command it refuses (ENOENT):
  // the batch is one transaction, so none of it may land.
  auto status = runInNetns(ns("gw"), []() -> Status {
    SHADAN_ASSIGN_OR_RETURN(auto backend, NftablesBackend::create());
    auto applied = backend->apply(
        "add table inet shadan\ndelete table inet shadan\n"
        "table inet shadan { chain forward { type filter hook forward priority -150; "
        "policy accept; } }\n"
        "delete table inet shadan_no_such_table\n");
    if (applied.ok()) return makeError(ErrorCode::kInternal, "the kernel accepted the batch");
    return okStatus();
  });
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(gatewayRuleset(), ruleset);
  expectCut(kOffice, kServers);
}

TEST_F(IsolationTest, BlackholeRoutesComeAndGoWithTheIsolation) {
  const auto show = [&](const char* family) {
    auto listed =
        runChecked(*runner_, {"ip", "-n", ns("gw"), family, "route", "show", "table", "21320"});
    EXPECT_TRUE(listed.ok()) << listed.error().message;
    return listed.ok() ? listed->out : std::string();
  };
  // `ip route get` fails (EINVAL) for a destination whose lookup ends in a blackhole.
  const auto routable = [&](const char* address) {
    auto got = runner_->run({"ip", "-n", ns("gw"), "route", "get", address});
    return got.ok() && got->exit_code == 0;
  };
  ASSERT_TRUE(routable("10.20.0.2"));

  auto isolated = agent({"isolate", "office", "--profile", "full-blackhole"});
  ASSERT_EQ(isolated.exit_code, 0) << isolated.err;
  EXPECT_NE(show("-4").find("blackhole 10.20.0.0/24 proto 83"), std::string::npos) << show("-4");
  EXPECT_NE(show("-6").find("blackhole fd00:20::/64 dev lo proto 83"), std::string::npos)
      << show("-6");
  // The blackhole wins over the gateway's connected route to the segment…
  EXPECT_FALSE(routable("10.20.0.2"));
  EXPECT_FALSE(routable("fd00:20::2"));
  // …and nothing else is affected, the management host least of all.
  EXPECT_TRUE(routable("10.99.0.10"));
  EXPECT_TRUE(routable("10.30.0.2"));
  expectCut(kOffice, kServers);

  auto restored = agent({"restore", "office", "--reason", "test: all clear"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  EXPECT_EQ(show("-4"), "");
  EXPECT_EQ(show("-6"), "");
  EXPECT_TRUE(routable("10.20.0.2"));
  EXPECT_TRUE(routable("fd00:20::2"));
  expectOpen(kOffice, kServers);
}

}  // namespace
}  // namespace shadan

// The escalation ladder on the real kernel with real packets: host quarantine, uplink, island,
// link-down, their combinations and hostile input, through the real `shadan-agent` binary run
// inside the gateway's namespace (and `shadan-agent run` for the link the daemon holds down).
//
// The lab (its own, not the standard one): gateway gw with a foreign accept-all table; the
// office segment on two links with two prefixes (pc1 on 10.20.0.0/24, pc2 on 10.21.0.0/24), so
// pc1 has a neighbour in its segment whose traffic crosses the gateway; servers (srv); the
// management host (mgmt, the controller's 8443 is the policy's management tuple); and the
// internet (inet) behind gw's interface `uplink`, which the policy names as the default
// segment's interface and as a link_down interface.
//
// Needs root. Namespaces are sd-<lab>-<node> with a per-process lab name, deleted by the Lab's
// destructor even when an assertion fails; a daemon still running is killed by AgentProcess's
// destructor; TearDown lifts every isolation and sets the uplink up again.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cli/lab/command_runner.h"
#include "cli/lab/lab.h"
#include "cli/lab/probe.h"
#include "tests/integration/agent_process.h"
#include "tests/integration/lab_traffic.h"

namespace shadan {
namespace {

using namespace std::chrono_literals;

constexpr auto kShouldFail = 300ms;   // long enough for a packet across a veth to come back
constexpr auto kShouldPass = 3000ms;  // generous: a pass must never be flaky
constexpr auto kHeldWithin = 5000ms;  // generous: the daemon reacts to the link event at once

const std::string kAgent = std::string(SHADAN_BINARY_DIR) + "/agents/shadan-agent";
constexpr uint16_t kManagementPort = 8443;  // the policy's always_allow tuple on mgmt

constexpr LabHost kPc1{"pc1", "10.20.0.2", "fd00:20::2"};
constexpr LabHost kPc2{"pc2", "10.21.0.2", "fd00:21::2"};  // pc1's neighbour in office
constexpr LabHost kSrv{"srv", "10.30.0.2", "fd00:30::2"};
constexpr LabHost kMgmt{"mgmt", "10.99.0.10", "fd00:99::10"};
constexpr LabHost kInet{"inet", "203.0.113.2", "2001:db8:113::2"};
// The gateway itself, by its address on the link named.
constexpr LabHost kGwOffice{"gw", "10.20.0.1", "fd00:20::1"};
constexpr LabHost kGwUplink{"gw", "203.0.113.1", "2001:db8:113::1"};
constexpr const char* kUplink = "uplink";

const char* const kLabSpec = R"json({
  "name": "ladder",
  "description": "gw with an uplink to inet; office on two links (pc1, pc2), srv, mgmt",
  "nodes": [
    { "name": "gw", "role": "gateway", "nftables": [
        "table inet foreign {",
        "  chain input { type filter hook input priority 0; policy accept; }",
        "  chain forward { type filter hook forward priority 0; policy accept; }",
        "  chain output { type filter hook output priority 0; policy accept; }",
        "}" ] },
    { "name": "pc1", "role": "host",
      "routes": [ { "to": "default", "via": "10.20.0.1" }, { "to": "default", "via": "fd00:20::1" } ] },
    { "name": "pc2", "role": "host",
      "routes": [ { "to": "default", "via": "10.21.0.1" }, { "to": "default", "via": "fd00:21::1" } ] },
    { "name": "srv", "role": "host",
      "routes": [ { "to": "default", "via": "10.30.0.1" }, { "to": "default", "via": "fd00:30::1" } ] },
    { "name": "mgmt", "role": "host",
      "routes": [ { "to": "default", "via": "10.99.0.1" }, { "to": "default", "via": "fd00:99::1" } ] },
    { "name": "inet", "role": "host",
      "routes": [ { "to": "default", "via": "203.0.113.1" },
                  { "to": "default", "via": "2001:db8:113::1" } ] }
  ],
  "links": [
    { "a": { "node": "gw", "ifname": "office1", "addresses": ["10.20.0.1/24", "fd00:20::1/64"] },
      "b": { "node": "pc1", "ifname": "eth0", "addresses": ["10.20.0.2/24", "fd00:20::2/64"] } },
    { "a": { "node": "gw", "ifname": "office2", "addresses": ["10.21.0.1/24", "fd00:21::1/64"] },
      "b": { "node": "pc2", "ifname": "eth0", "addresses": ["10.21.0.2/24", "fd00:21::2/64"] } },
    { "a": { "node": "gw", "ifname": "servers", "addresses": ["10.30.0.1/24", "fd00:30::1/64"] },
      "b": { "node": "srv", "ifname": "eth0", "addresses": ["10.30.0.2/24", "fd00:30::2/64"] } },
    { "a": { "node": "gw", "ifname": "mgmt", "addresses": ["10.99.0.1/24", "fd00:99::1/64"] },
      "b": { "node": "mgmt", "ifname": "eth0", "addresses": ["10.99.0.10/24", "fd00:99::10/64"] } },
    { "a": { "node": "gw", "ifname": "uplink",
             "addresses": ["203.0.113.1/24", "2001:db8:113::1/64"] },
      "b": { "node": "inet", "ifname": "eth0",
             "addresses": ["203.0.113.2/24", "2001:db8:113::2/64"] } }
  ]
})json";

const char* const kPolicy = R"json({
  "shadan_policy": 1,
  "name": "ladder-lab",
  "segments": {
    "office":   {"description": "office PCs on two links",
                 "prefixes": ["10.20.0.0/24", "10.21.0.0/24", "fd00:20::/64", "fd00:21::/64"]},
    "servers":  {"description": "internal servers", "prefixes": ["10.30.0.0/24", "fd00:30::/64"]},
    "mgmt":     {"description": "controller and operators",
                 "prefixes": ["10.99.0.0/24", "fd00:99::/64"], "protected": true},
    "internet": {"description": "everything not listed above", "default": true}
  },
  "gateways": {
    "gw": {"borders": ["office", "servers", "mgmt", "internet"],
           "interfaces": {"internet": ["uplink"]},
           "link_down": ["uplink"]}
  },
  "management": {
    "always_allow": [
      {"description": "agent channel to the controller (IPv4)",
                  "prefix" : "10.99.0.10/32", "proto" : "tcp", "port" : 8443
},
      {"description": "agent channel to the controller (IPv6)", "prefix": "fd00:99::10/128",
       "proto": "tcp", "port": 8443}
    ]
}
, "profiles" : {
  "full" : { "description" : "cut from everything except management" }
}
})json";

size_t countOf(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

class LadderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    runner_ = new ProcessCommandRunner(std::chrono::seconds(20));
    auto spec = parseLabSpec(kLabSpec, "ladder_test lab");
    if (!spec.ok()) {
      setup_error_ = new std::string(spec.error().message);
      return;
    }
    lab_ = new Lab(*spec, "l" + std::to_string(::getpid() % 10000000), *runner_);
    if (auto up = lab_->up(); !up.ok()) {
      setup_error_ = new std::string(up.error().message);
      return;
    }
    policy_dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                            ("shadan-ladder-" + std::to_string(::getpid())));
    std::filesystem::create_directories(*policy_dir_);
    std::ofstream(*policy_dir_ / "policy.json") << kPolicy;
  }

  static void TearDownTestSuite() {
    delete lab_;  // tears the namespaces down
    lab_ = nullptr;
    delete runner_;
    runner_ = nullptr;
    delete setup_error_;
    setup_error_ = nullptr;
    if (policy_dir_) std::filesystem::remove_all(*policy_dir_);
    delete policy_dir_;
    policy_dir_ = nullptr;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "integration tests need root (network namespaces)";
    ASSERT_EQ(setup_error_, nullptr) << "lab did not come up: " << *setup_error_;
    const std::string name = "shadan-ladder-" + std::to_string(::getpid()) + "-" +
                             ::testing::UnitTest::GetInstance()->current_test_info()->name();
    state_dir_ = std::filesystem::temp_directory_path() / name;
    log_path_ = std::filesystem::temp_directory_path() / (name + ".log");
    std::filesystem::remove_all(state_dir_);
    std::filesystem::remove(log_path_);
    // What `shadan-agent init` does: local commands never create a state directory.
    std::filesystem::create_directories(state_dir_);
  }

  void TearDown() override {
    if (::geteuid() != 0 || setup_error_) return;
    if (HasFailure()) dumpLab();
    for (const auto& argv : undo_) {
      auto undone = runner_->run(argv);
      EXPECT_TRUE(undone.ok() && undone->exit_code == 0) << formatArgv(argv);
    }
    if (daemon_) {
      auto stopped = daemon_->terminate();
      EXPECT_TRUE(stopped.ok()) << stopped.error().message;
      daemon_.reset();
    }
    // Leave the lab open for the next test whatever this one did: no isolation (a held link is
    // set up by the restore), and the uplink up even if the state never knew it was down.
    auto restored = agent({"restore", "--all", "--reason", "test cleanup"});
    EXPECT_EQ(restored.exit_code, 0) << restored.err;
    auto up = runner_->run({"ip", "-n", ns("gw"), "link", "set", kUplink, "up"});
    EXPECT_TRUE(up.ok() && up->exit_code == 0);
    std::filesystem::remove_all(state_dir_);
    std::filesystem::remove(log_path_);
  }

  void dumpLab() {
    if (daemon_) std::cerr << "---- daemon log " << log_path_ << " ----\n" << daemonLog();
    for (const std::vector<std::string>& argv :
         {std::vector<std::string>{"ip", "netns", "exec", ns("gw"), "nft", "list", "ruleset"},
          {"ip", "-n", ns("gw"), "addr"},
          {"ip", "-n", ns("gw"), "route", "show", "table", "all"},
          {"ip", "-n", ns("gw"), "neigh"}}) {
      auto shown = runner_->run(argv);
      std::cerr << "---- " << formatArgv(argv) << " ----\n"
                << (shown.ok() ? shown->out + shown->err : shown.error().message);
    }
  }

  std::string ns(const char* node) const { return lab_->nsName(node); }
  std::string policyPath() const { return (*policy_dir_ / "policy.json").string(); }
  std::string daemonLog() const { return readWholeFile(log_path_); }

  // Runs shadan-agent inside the gateway's namespace with the ladder policy and this test's
  // state directory (through the daemon's socket when one runs).
  CommandResult agent(std::vector<std::string> args) {
    std::vector<std::string> argv = {"ip", "netns", "exec", ns("gw"), kAgent};
    argv.insert(argv.end(), args.begin(), args.end());
    for (const std::string& a :
         {std::string("--policy"), policyPath(), std::string("--gateway"), std::string("gw"),
          std::string("--state-dir"), state_dir_.string()}) {
      argv.push_back(a);
    }
    auto result = runner_->run(argv);
    if (!result.ok()) return CommandResult{-1, "", result.error().message};
    return result.value();
  }

  // An isolate or restore that must succeed; `verb` is what its answer starts with.
  void mustRun(const std::vector<std::string>& args, const std::string& verb) {
    auto result = agent(args);
    ASSERT_EQ(result.exit_code, 0) << formatArgv(args) << "\n" << result.err;
    EXPECT_EQ(result.out.rfind(verb, 0), 0u) << formatArgv(args) << "\n" << result.out;
  }

  nlohmann::json status() {
    auto result = agent({"status", "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    nlohmann::json doc = nlohmann::json::parse(result.out, nullptr, false);
    EXPECT_TRUE(doc.is_object()) << result.out;
    return doc.is_object() ? doc : nlohmann::json::object();
  }

  // The scope of every active isolation, in status order.
  std::vector<std::string> activeScopes() {
    std::vector<std::string> scopes;
    for (const auto& isolation : status().value("isolations", nlohmann::json::array())) {
      scopes.push_back(isolation.value("scope", "?"));
    }
    return scopes;
  }

  // `nft -s list table inet shadan` in the gateway, or nullopt when the table is not there.
  std::optional<std::string> shadanTable() {
    auto result = runner_->run(
        {"ip", "netns", "exec", ns("gw"), "nft", "-s", "list", "table", "inet", "shadan"});
    if (!result.ok() || result->exit_code != 0) return std::nullopt;
    return result->out;
  }

  // The `ip link show` line of the gateway's uplink.
  std::string uplinkShown() {
    auto shown = runChecked(*runner_, {"ip", "-n", ns("gw"), "-o", "link", "show", "dev", kUplink});
    EXPECT_TRUE(shown.ok()) << shown.error().message;
    return shown.ok() ? shown->out : std::string();
  }

  // Whether the uplink is administratively up: UP among its flags ("<BROADCAST,MULTICAST,UP,
  // LOWER_UP>"), not just LOWER_UP.
  bool uplinkUp() {
    const std::string line = uplinkShown();
    const size_t open = line.find('<');
    const size_t close = line.find('>', open);
    if (open == std::string::npos || close == std::string::npos) return false;
    const std::string flags = "," + line.substr(open + 1, close - open - 1) + ",";
    return flags.find(",UP,") != std::string::npos;
  }

  TrafficCheck traffic() { return TrafficCheck(*lab_, kShouldFail, kShouldPass); }

  void startDaemon() {
    AgentProcessOptions options;
    options.netns = ns("gw");
    options.binary = kAgent;
    options.arguments = {"--policy",    policyPath(),        "--gateway",   "gw",
                         "--state-dir", state_dir_.string(), "--log-level", "info"};
    options.log_path = log_path_;
    auto started = AgentProcess::start(options);
    ASSERT_TRUE(started.ok()) << started.error().message;
    daemon_ = std::move(started).value();
  }

  static ProcessCommandRunner* runner_;
  static Lab* lab_;
  static std::string* setup_error_;
  static std::filesystem::path* policy_dir_;
  std::filesystem::path state_dir_;
  std::filesystem::path log_path_;
  std::unique_ptr<AgentProcess> daemon_;
  // Commands that undo what a test changed in the lab, run by TearDown even after a failure.
  std::vector<std::vector<std::string>> undo_;
};

ProcessCommandRunner* LadderTest::runner_ = nullptr;
Lab* LadderTest::lab_ = nullptr;
std::string* LadderTest::setup_error_ = nullptr;
std::filesystem::path* LadderTest::policy_dir_ = nullptr;

// Rung 1. The quarantined host reaches management's tuple and nothing else; its neighbour in
// the same segment keeps every path; the quarantines of one profile share one set (a second
// host adds an element, not rules); restoring a host brings it back and leaves the other.
TEST_F(LadderTest, HostQuarantineLeavesOnlyManagementAndSparesTheNeighbours) {
  EstablishedFlow quarantined(ns("pc1"), ns("srv"), kSrv.v4);
  EstablishedFlow neighbour(ns("pc2"), ns("inet"), kInet.v6);
  ASSERT_TRUE(quarantined.open(kShouldPass).ok());
  ASSERT_TRUE(neighbour.open(kShouldPass).ok());
  ASSERT_TRUE(quarantined.roundTrip(kShouldPass).value());
  ASSERT_TRUE(neighbour.roundTrip(kShouldPass).value());
  traffic().open(kPc1, kSrv).open(kPc1, kInet).open(kPc1, kPc2).check("before");

  mustRun({"isolate", "--host", "10.20.0.2,fd00:20::2"}, "isolated hosts 10.20.0.2");
  EXPECT_EQ(activeScopes(), (std::vector<std::string>{"host", "host"}));
  traffic()
      .cut(kPc1, kSrv)
      .cut(kPc1, kInet)
      .cut(kPc1, kPc2)       // its neighbour, across the gateway
      .cut(kPc1, kGwOffice)  // the gateway itself
      .tcp(kPc1, kMgmt, false, kManagementPort, true)
      .tcp(kPc1, kMgmt, true, kManagementPort, true)
      .tcp(kPc1, kMgmt, false, 22, false)
      .icmp(kPc1, kMgmt, false, false)
      .icmp(kPc1, kMgmt, true, false)
      .open(kPc2, kSrv)
      .open(kPc2, kInet)
      .tcp(kPc2, kMgmt, false, kManagementPort, true)
      .check("pc1 quarantined");
  // Flows established before the quarantine stop too; the neighbour's keeps going.
  EXPECT_FALSE(quarantined.roundTrip(kShouldFail).value());
  EXPECT_TRUE(neighbour.roundTrip(kShouldPass).value());

  const auto one_host = shadanTable();
  ASSERT_TRUE(one_host);
  mustRun({"isolate", "--host", "10.21.0.2"}, "isolated host 10.21.0.2");
  const auto two_hosts = shadanTable();
  ASSERT_TRUE(two_hosts);
  EXPECT_EQ(countOf(*two_hosts, "@host_full_v4"), countOf(*one_host, "@host_full_v4"))
      << *two_hosts;
  EXPECT_EQ(countOf(*two_hosts, "set host_full_v4 {"), 1u) << *two_hosts;
  EXPECT_NE(two_hosts->find("10.20.0.2, 10.21.0.2"), std::string::npos) << *two_hosts;
  // Exactly the address named: pc2's IPv4 is quarantined, its IPv6 is not.
  traffic()
      .tcp(kPc2, kSrv, false, 0, false)
      .tcp(kSrv, kPc2, false, 0, false)
      .icmp(kPc2, kSrv, false, false)
      .tcp(kPc2, kSrv, true, 0, true)
      .icmp(kSrv, kPc2, true, true)
      .check("pc2's IPv4 quarantined too");

  mustRun({"restore", "--host", "10.21.0.2", "--reason", "test: pc2 clean"}, "restored host");
  EXPECT_EQ(shadanTable(), one_host);
  traffic().open(kPc2, kSrv).cut(kPc1, kSrv).check("pc2 restored, pc1 still quarantined");

  mustRun({"restore", "--host", "10.20.0.2,fd00:20::2", "--reason", "test: pc1 clean"},
          "restored hosts");
  EXPECT_FALSE(shadanTable());
  traffic()
      .open(kPc1, kSrv)
      .open(kPc1, kInet)
      .open(kPc1, kPc2)
      .open(kPc1, kGwOffice)
      .check("pc1 restored");
}

// Rung 3. The uplink: the segments and the gateway are cut from the internet both ways, the
// segments still talk to each other, and management's tuple works (from the internet too).
TEST_F(LadderTest, UplinkCutsTheInternetBothWaysAndKeepsSegmentsAndManagement) {
  EstablishedFlow outbound(ns("pc1"), ns("inet"), kInet.v4);
  EstablishedFlow inside(ns("pc1"), ns("srv"), kSrv.v6);
  ASSERT_TRUE(outbound.open(kShouldPass).ok());
  ASSERT_TRUE(inside.open(kShouldPass).ok());

  mustRun({"isolate", "--uplink", "--reason", "test: exfiltration", "--yes"}, "isolated");
  EXPECT_EQ(activeScopes(), std::vector<std::string>{"uplink"});
  traffic()
      .cut(kPc1, kInet)
      .cut(kSrv, kInet)
      .cut(kPc2, kInet)
      .cut(kGwUplink, kInet)  // the gateway's own traffic through the uplink
      .open(kPc1, kSrv)
      .open(kPc1, kPc2)
      .open(kSrv, kPc2)
      .tcp(kPc1, kMgmt, false, kManagementPort, true)
      .tcp(kPc1, kMgmt, true, kManagementPort, true)
      .tcp(kSrv, kMgmt, false, kManagementPort, true)
      .tcp(kGwOffice, kMgmt, true, kManagementPort, true)
      .tcp(kInet, kMgmt, false, kManagementPort, true)
      .tcp(kInet, kMgmt, false, 22, false)
      .check("uplink cut");
  EXPECT_FALSE(outbound.roundTrip(kShouldFail).value());
  EXPECT_TRUE(inside.roundTrip(kShouldPass).value());

  mustRun({"restore", "--uplink", "--reason", "test: all clear"}, "restored");
  EXPECT_FALSE(shadanTable());
  traffic().open(kPc1, kInet).open(kSrv, kInet).open(kGwUplink, kInet).check("uplink restored");
}

// Rung 4. The island: no segment reaches another or the internet; management's tuple works;
// traffic inside a segment keeps working even where it crosses the gateway (office's two
// links).
TEST_F(LadderTest, IslandLeavesOnlyManagementAndTrafficInsideEachSegment) {
  EstablishedFlow inside(ns("pc1"), ns("pc2"), kPc2.v4);
  ASSERT_TRUE(inside.open(kShouldPass).ok());

  mustRun({"isolate", "--island", "--reason", "test: worst case", "--yes"}, "isolated");
  EXPECT_EQ(activeScopes(), std::vector<std::string>{"island"});
  traffic()
      .cut(kPc1, kSrv)
      .cut(kPc2, kSrv)
      .cut(kPc1, kInet)
      .cut(kSrv, kInet)
      .open(kPc1, kPc2)       // inside office, from one of its links to the other
      .open(kPc1, kGwOffice)  // inside office, to the gateway's own office address
      .tcp(kPc1, kMgmt, false, kManagementPort, true)
      .tcp(kPc2, kMgmt, true, kManagementPort, true)
      .tcp(kSrv, kMgmt, false, kManagementPort, true)
      .tcp(kSrv, kMgmt, true, kManagementPort, true)
      .tcp(kPc1, kMgmt, false, 22, false)
      .icmp(kSrv, kMgmt, false, false)
      .check("island");
  EXPECT_TRUE(inside.roundTrip(kShouldPass).value());

  mustRun({"restore", "--island", "--reason", "test: all clear"}, "restored");
  EXPECT_FALSE(shadanTable());
  traffic().open(kPc1, kSrv).open(kSrv, kInet).check("island restored");
}

// Rung 5. Link-down with the daemon: the uplink is administratively down, a foreign `ip link set
// up` is undone (and audited), and restore sets it up again with traffic flowing.
TEST_F(LadderTest, LinkDownIsHeldByTheDaemonAndLiftedByRestore) {
  startDaemon();
  ASSERT_TRUE(uplinkUp()) << uplinkShown();

  mustRun({"isolate", "--uplink", "--link-down", "--reason", "test: last rung", "--yes"},
          "isolated");
  EXPECT_FALSE(uplinkUp()) << uplinkShown();
  EXPECT_NE(uplinkShown().find("state DOWN"), std::string::npos) << uplinkShown();
  // Down, the link keeps its IPv6 address (the agent set keep_addr_on_down, which the kernel
  // leaves off by default), so the restore below brings IPv6 back too.
  auto v6 = runChecked(*runner_, {"ip", "-n", ns("gw"), "-6", "addr", "show", "dev", kUplink});
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_NE(v6->out.find("2001:db8:113::1/64"), std::string::npos) << v6->out;
  traffic().cut(kPc1, kInet).open(kPc1, kSrv).check("link down");

  // Someone sets it up again by hand: the daemon puts it back down.
  ASSERT_TRUE(runChecked(*runner_, {"ip", "-n", ns("gw"), "link", "set", kUplink, "up"}).ok());
  EXPECT_TRUE(waitUntil([&] { return !uplinkUp(); }, kHeldWithin, 20ms))
      << "the daemon did not hold the link down: " << uplinkShown();
  traffic().tcp(kPc1, kInet, false, 0, false).check("after the foreign link up");
  // Audited: the link set down at the isolate, and again after the foreign up.
  EXPECT_TRUE(waitUntil(
      [&] { return countOf(readWholeFile(state_dir_ / "audit.log"), "\"event\":\"links\"") >= 2; },
      kHeldWithin, 20ms))
      << readWholeFile(state_dir_ / "audit.log");

  mustRun({"restore", "--uplink", "--reason", "test: all clear"}, "restored");
  EXPECT_TRUE(uplinkUp()) << uplinkShown();
  EXPECT_FALSE(shadanTable());
  traffic().open(kPc1, kInet).open(kGwUplink, kInet).check("link restored");
  // Up for good: the daemon does not take it down again.
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(uplinkUp()) << uplinkShown();
}

// Safety rule 1 for link-down: refused when the route to a management prefix leaves through a
// link_down interface, and nothing changes (no cut, the link stays up).
TEST_F(LadderTest, LinkDownIsRefusedWhenManagementIsRoutedThroughTheUplink) {
  undo_.push_back({"ip", "-n", ns("gw"), "route", "del", "10.99.0.10/32", "dev", kUplink});
  ASSERT_TRUE(runChecked(*runner_, {"ip", "-n", ns("gw"), "route", "add", "10.99.0.10/32", "via",
                                    "203.0.113.2", "dev", kUplink})
                  .ok());

  auto refused = agent({"isolate", "--uplink", "--link-down", "--reason", "test", "--yes"});
  EXPECT_NE(refused.exit_code, 0) << refused.out;
  EXPECT_NE(refused.err.find("link-down refused: the management path to 10.99.0.10 leaves "
                             "through uplink"),
            std::string::npos)
      << refused.err;
  EXPECT_FALSE(shadanTable());
  EXPECT_TRUE(uplinkUp()) << uplinkShown();
  EXPECT_TRUE(activeScopes().empty());
}

// Restoring one rung never lifts another: a host stays quarantined when its segment is
// restored, the segment stays cut when the host is restored, and the uplink stays cut when the
// island is restored.
TEST_F(LadderTest, RestoringOneRungKeepsTheOthers) {
  mustRun({"isolate", "--host", "10.20.0.2,fd00:20::2"}, "isolated hosts");
  mustRun({"isolate", "office"}, "isolated office");
  traffic().cut(kPc1, kSrv).cut(kPc2, kSrv).check("host and segment");
  mustRun({"restore", "office", "--reason", "test: segment clean"}, "restored office");
  EXPECT_EQ(activeScopes(), (std::vector<std::string>{"host", "host"}));
  traffic()
      .cut(kPc1, kSrv)
      .open(kPc2, kSrv)
      .tcp(kPc1, kMgmt, false, kManagementPort, true)
      .check("segment restored, host still quarantined");

  mustRun({"isolate", "office"}, "isolated office");
  mustRun({"restore", "--host", "10.20.0.2,fd00:20::2", "--reason", "test: host clean"},
          "restored hosts");
  EXPECT_EQ(activeScopes(), std::vector<std::string>{"segment"});
  traffic().cut(kPc1, kSrv).cut(kPc2, kInet).check("host restored, segment still cut");
  mustRun({"restore", "office", "--reason", "test: all clear"}, "restored office");

  mustRun({"isolate", "--uplink", "--reason", "test: exfiltration", "--yes"}, "isolated");
  mustRun({"isolate", "--island", "--reason", "test: worst case", "--yes"}, "isolated");
  traffic().cut(kPc1, kInet).cut(kPc1, kSrv).check("uplink and island");
  mustRun({"restore", "--island", "--reason", "test: island over"}, "restored");
  EXPECT_EQ(activeScopes(), std::vector<std::string>{"uplink"});
  traffic()
      .cut(kPc1, kInet)
      .cut(kSrv, kInet)
      .open(kPc1, kSrv)
      .check("island restored, uplink still cut");
}

// Addresses a host quarantine must refuse: a non-zero exit naming the problem, and the kernel
// untouched, both with nothing isolated (no table) and with a quarantine active.
TEST_F(LadderTest, HostileHostAddressesChangeNothing) {
  // Exit 2: the command line is wrong; exit 3: the policy refuses the addresses.
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"isolate", "--host", "10.20.0.2,10.30.0.2"},
       3,
       "host 10.30.0.2 is in segment \"servers\", not \"office\""},
      {{"isolate", "--host", "10.30.0.2,fd00:20::2"},
       3,
       "host fd00:20::2 is in segment \"office\", not \"servers\""},
      {{"isolate", "--host", "10.99.0.10"}, 3, "overlaps the management prefix 10.99.0.10 "},
      {{"isolate", "--host", "10.99.0.0/24"}, 3, "overlaps the management prefix 10.99.0.10 "},
      {{"isolate", "--host", "fd00:99::/120"}, 3, "overlaps the management prefix fd00:99::10 "},
      {{"isolate", "--host", "203.0.113.2"}, 3, "is in the default segment \"internet\""},
      {{"isolate", "--host", "2001:db8:113::2"}, 3, "is in the default segment \"internet\""},
      {{"isolate", "--host", "10.20.0.0/23"}, 3, "too wide for a host quarantine (at most /24)"},
      {{"isolate", "--host", "fd00:20::/119"}, 3, "too wide for a host quarantine (at most /120)"},
      {{"isolate", "--host", "10.20.0.256"}, 2, "--host: invalid prefix \"10.20.0.256\""},
      {{"isolate", "--host", "10.20.0.2/33"}, 2, "--host: invalid prefix \"10.20.0.2/33\""},
      {{"isolate", "--host", "office"}, 2, "--host: invalid prefix \"office\""},
      {{"isolate", "--host", ""}, 2, "--host"},
      {{"isolate", "--host", "10.20.0.2,,10.21.0.2"}, 2, "--host"},
      {{"isolate", "office", "--host", "10.20.0.2"}, 2, "isolate takes exactly one SEGMENT"},
      {{"isolate", "--host", "10.20.0.2", "--link-down"}, 2, "--link-down goes with"},
      {{"restore", "--host", "10.20.0.0/23"}, 3, "too wide for a host quarantine"},
      {{"restore", "--host", "10.99.0.10"}, 3, "overlaps the management prefix 10.99.0.10 "},
  };
  const auto refuseAll = [&](const std::string& when) {
    const std::optional<std::string> before = shadanTable();
    for (Case c : cases) {
      for (const char* extra : {"--reason", "test: hostile", "--yes"}) c.args.push_back(extra);
      if (c.args[0] == "restore") c.args.pop_back();  // restore takes no --yes
      auto result = agent(c.args);
      EXPECT_EQ(result.exit_code, c.exit_code) << when << ": " << formatArgv(c.args) << "\n"
                                               << result.out << result.err;
      EXPECT_NE(result.err.find(c.message), std::string::npos)
          << when << ": " << formatArgv(c.args) << "\n"
          << result.err;
      EXPECT_EQ(shadanTable(), before) << when << ": " << formatArgv(c.args);
    }
  };

  refuseAll("nothing isolated");
  EXPECT_TRUE(activeScopes().empty());

  mustRun({"isolate", "--host", "10.21.0.2"}, "isolated host 10.21.0.2");
  refuseAll("pc2 quarantined");
  EXPECT_EQ(activeScopes(), std::vector<std::string>{"host"});
  traffic().open(kPc1, kSrv).tcp(kPc2, kSrv, false, 0, false).check("after the refusals");
}

}  // namespace
}  // namespace shadan

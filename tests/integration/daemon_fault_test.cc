// Fault tests of the agent daemon on the real kernel: the standard lab of namespaces, the real
// `shadan-agent run` started inside the gateway's namespace (AgentProcess), faults done to it
// from outside (kill -9, foreign nft / ip commands, a simulated reboot, deadlines passing while
// it is down) and real packets proving, after each fault, that the isolation is (or is no longer)
// in force.
//
// Needs root. Namespaces are sd-<lab>-<node> with a per-process lab name and are deleted by the
// Lab's destructor; a daemon still running when a test ends is killed by AgentProcess's
// destructor, so a failing assertion leaves neither behind.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "cli/ca_cmd.h"
#include "cli/lab/command_runner.h"
#include "cli/lab/lab.h"
#include "cli/lab/probe.h"
#include "common/ed25519.h"
#include "common/sha256.h"
#include "common/unique_fd.h"
#include "tests/integration/agent_process.h"
#include "tests/integration/lab_traffic.h"

namespace shadan {
namespace {

using namespace std::chrono_literals;

constexpr auto kShouldFail = 300ms;   // long enough for a packet across a veth to come back
constexpr auto kShouldPass = 3000ms;  // generous: a pass must never be flaky
constexpr auto kRepairWithin = 2000ms;

const std::string kPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";
const std::string kAgent = std::string(SHADAN_BINARY_DIR) + "/agents/shadan-agent";

using Host = LabHost;
constexpr Host kOffice{"office", "10.20.0.2", "fd00:20::2"};
constexpr Host kServers{"servers", "10.30.0.2", "fd00:30::2"};
constexpr Host kInet{"inet", "203.0.113.2", "2001:db8:113::2"};

size_t countOf(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

class DaemonFaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    runner_ = new ProcessCommandRunner(std::chrono::seconds(20));
    lab_ = new Lab(standardLabSpec(), "f" + std::to_string(::getpid() % 10000000), *runner_);
    auto up = lab_->up();
    if (!up.ok()) setup_error_ = new std::string(up.error().message);
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
    const std::string name = "shadan-df-" + std::to_string(::getpid()) + "-" +
                             ::testing::UnitTest::GetInstance()->current_test_info()->name();
    state_dir_ = std::filesystem::temp_directory_path() / name;
    log_path_ = std::filesystem::temp_directory_path() / (name + ".log");
    std::filesystem::remove_all(state_dir_);
    std::filesystem::remove(log_path_);
  }

  void TearDown() override {
    if (::geteuid() != 0 || setup_error_) return;
    if (HasFailure()) {
      std::cerr << "---- daemon log " << log_path_ << " ----\n" << daemonLog();
      // What the lab looked like when the test failed: rules, blackholes, neighbours.
      for (const std::vector<std::string>& argv :
           {std::vector<std::string>{"ip", "netns", "exec", ns("gw"), "nft", "list", "ruleset"},
            {"ip", "-n", ns("gw"), "route", "show", "table", "all"},
            {"ip", "-n", ns("gw"), "neigh"},
            {"ip", "-n", ns("office"), "neigh"},
            {"ip", "-n", ns("servers"), "neigh"}}) {
        auto shown = runner_->run(argv);
        std::cerr << "---- " << formatArgv(argv) << " ----\n"
                  << (shown.ok() ? shown->out + shown->err : shown.error().message);
      }
    }
    if (daemon_) {
      auto stopped = daemon_->terminate();
      EXPECT_TRUE(stopped.ok()) << stopped.error().message;
      daemon_.reset();
    }
    // Leave the lab open for the next test whatever this one did (no daemon runs now, so the
    // command acts on the kernel itself).
    auto restored = agent({"restore", "--all", "--reason", "test cleanup"});
    EXPECT_EQ(restored.exit_code, 0) << restored.err;
    std::filesystem::remove_all(state_dir_);
    std::filesystem::remove(log_path_);
    for (const auto& path : extra_cleanup_) std::filesystem::remove_all(path);
  }

  std::string ns(const char* node) const { return lab_->nsName(node); }

  // Starts `shadan-agent run` in the gateway and waits for READY=1.
  Result<std::unique_ptr<AgentProcess>> launchDaemon(const std::string& policy = kPolicy,
                                                     std::vector<std::string> environment = {},
                                                     std::vector<std::string> extra = {}) {
    AgentProcessOptions options;
    options.environment = std::move(environment);
    options.netns = ns("gw");
    options.binary = kAgent;
    options.arguments = {"--policy",          policy,        "--gateway", "gw", "--state-dir",
                         state_dir_.string(), "--log-level", "info"};
    options.arguments.insert(options.arguments.end(), extra.begin(), extra.end());
    options.log_path = log_path_;
    return AgentProcess::start(options);
  }

  // A daemon configured with a controller that does not answer: the channel's credentials (a
  // lab CA, the agent's client certificate, a pin of a controller certificate that nobody
  // serves), a trust file, and the lab policy with agent.on_controller_loss = `loss_mode`.
  void startDaemonWithUnreachableController(const std::string& loss_mode) {
    const auto dir = state_dir_.string() + "-pki";
    std::filesystem::remove_all(dir);
    extra_cleanup_.push_back(dir);
    ASSERT_TRUE(initCertificateAuthority(dir, "lab-ca").ok());
    auto agent_cert =
        issueCertificate(dir, CertificateRequest{"gw", false, {}, {}}, dir + "/agent");
    ASSERT_TRUE(agent_cert.ok()) << agent_cert.error().message;
    auto server_cert = issueCertificate(
        dir, CertificateRequest{"controller", true, {}, {"10.99.0.10"}}, dir + "/controller");
    ASSERT_TRUE(server_cert.ok()) << server_cert.error().message;

    Ed25519Signer controller_key(Ed25519KeyPair::generate());
    const nlohmann::json trust = {{"shadan_trust", 1},
                                  {"version", 1},
                                  {"expires_at", "2030-01-01T00:00:00Z"},
                                  {"keys",
                                   {{{"keyid", controller_key.keyId()},
                                     {"public_key", base64Encode(controller_key.publicKey())},
                                     {"identity", "controller"},
                                     {"roles", {"controller"}}}}}};
    std::ofstream(dir + "/trust.json") << trust.dump();

    std::ifstream in(kPolicy);
    nlohmann::json policy = nlohmann::json::parse(in);
    policy["agent"] = {{"on_controller_loss", loss_mode}};
    std::ofstream(dir + "/policy.json") << policy.dump();
    policy_ = dir + "/policy.json";

    AgentProcessOptions options;
    options.netns = ns("gw");
    options.binary = kAgent;
    options.arguments = {"--policy",
                         dir + "/policy.json",
                         "--gateway",
                         "gw",
                         "--state-dir",
                         state_dir_.string(),
                         "--log-level",
                         "info",
                         "--trust",
                         dir + "/trust.json",
                         "--controller",
                         "10.99.0.10:8443",
                         "--tls-dir",
                         dir,
                         "--controller-pin",
                         server_cert->spki_pin,
                         "--controller-grace",
                         "1s"};
    options.log_path = log_path_;
    auto started = AgentProcess::start(options);
    ASSERT_TRUE(started.ok()) << started.error().message;
    daemon_ = std::move(started).value();
  }

  void startDaemon(const std::string& policy = kPolicy) {
    policy_ = policy;
    auto started = launchDaemon(policy);
    ASSERT_TRUE(started.ok()) << started.error().message;
    daemon_ = std::move(started).value();
  }

  void kill9Daemon() {
    ASSERT_TRUE(daemon_);
    auto killed = daemon_->kill9();
    ASSERT_TRUE(killed.ok()) << killed.error().message;
    EXPECT_EQ(*killed, 128 + SIGKILL);
    daemon_.reset();
  }

  std::string daemonLog() const { return readWholeFile(log_path_); }

  // Runs shadan-agent (not `run`) in the gateway's namespace with the lab policy and this test's
  // state directory: through the daemon's socket when one runs.
  CommandResult agent(std::vector<std::string> args) {
    std::vector<std::string> argv = {"ip", "netns", "exec", ns("gw"), kAgent};
    argv.insert(argv.end(), args.begin(), args.end());
    for (const std::string& a :
         {std::string("--policy"), policy_, std::string("--gateway"), std::string("gw"),
          std::string("--state-dir"), state_dir_.string()}) {
      argv.push_back(a);
    }
    auto result = runner_->run(argv);
    if (!result.ok()) return CommandResult{-1, "", result.error().message};
    return result.value();
  }

  nlohmann::json status() {
    auto result = agent({"status", "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    try {
      return nlohmann::json::parse(result.out);
    } catch (const nlohmann::json::exception& e) {
      ADD_FAILURE() << "status --json is not JSON: " << e.what() << "\n" << result.out;
      return nlohmann::json::object();
    }
  }

  // A command in the gateway's namespace that must succeed (the fault we inject).
  void inGateway(const std::vector<std::string>& command) {
    std::vector<std::string> argv = {"ip", "netns", "exec", ns("gw")};
    argv.insert(argv.end(), command.begin(), command.end());
    auto result = runChecked(*runner_, argv);
    ASSERT_TRUE(result.ok()) << result.error().message;
  }

  // `nft -s list table inet shadan` in the gateway, or nullopt when the table is not there.
  std::optional<std::string> shadanTable() {
    auto result = runner_->run(
        {"ip", "netns", "exec", ns("gw"), "nft", "-s", "list", "table", "inet", "shadan"});
    if (!result.ok() || result->exit_code != 0) return std::nullopt;
    return result->out;
  }

  std::string routeTable(const char* family) {
    auto listed =
        runChecked(*runner_, {"ip", "-n", ns("gw"), family, "route", "show", "table", "21320"});
    EXPECT_TRUE(listed.ok()) << listed.error().message;
    return listed.ok() ? listed->out : std::string();
  }

  bool tcp(const Host& from, const Host& to, bool v6, std::chrono::milliseconds timeout) {
    return tcpReaches(*lab_, from, to, v6, 0, timeout);
  }

  // office is cut from servers (new TCP, both families, both directions), while a segment that
  // is not isolated still reaches the internet: the lab works, the isolation is what cuts.
  void expectOfficeCut(const std::string& when) {
    EXPECT_FALSE(tcp(kOffice, kServers, false, kShouldFail)) << when << ": office->servers v4";
    EXPECT_FALSE(tcp(kOffice, kServers, true, kShouldFail)) << when << ": office->servers v6";
    EXPECT_FALSE(tcp(kServers, kOffice, false, kShouldFail)) << when << ": servers->office v4";
    EXPECT_TRUE(tcp(kServers, kInet, false, kShouldPass)) << when << ": sanity servers->inet";
  }

  // Forgets the hosts' neighbour entries. While office was cut, its IPv6 neighbour solicitations
  // for the router went unanswered and the entry for fd00:20::1 went FAILED; with a FAILED
  // default router the kernel re-probes it only every rtr_probe_interval (60 s), so v6 traffic
  // would stay down for up to a minute after the cut is lifted. That is host state the gateway
  // cannot reset (a real network's router advertisements would), not the isolation.
  void forgetNeighbours() {
    for (const char* host : {kOffice.node, kServers.node}) {
      auto flushed =
          runner_->run({"ip", "-n", ns(host), "neigh", "flush", "nud", "all", "dev", "eth0"});
      EXPECT_TRUE(flushed.ok() && flushed->exit_code == 0) << host;
    }
  }

  void expectOfficeOpen(const std::string& when) {
    forgetNeighbours();
    EXPECT_TRUE(tcp(kOffice, kServers, false, kShouldPass)) << when << ": office->servers v4";
    EXPECT_TRUE(tcp(kOffice, kServers, true, kShouldPass)) << when << ": office->servers v6";
    EXPECT_TRUE(tcp(kServers, kOffice, false, kShouldPass)) << when << ": servers->office v4";
  }

  void isolateOffice(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"isolate", "office"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto isolated = agent(args);
    ASSERT_EQ(isolated.exit_code, 0) << isolated.err;
    // "isolated office on gw", or "isolated office (PROFILE) on gw".
    ASSERT_EQ(isolated.out.rfind("isolated office", 0), 0u) << isolated.out;
  }

  // The daemon logs `event=repaired` after its re-apply; the kernel may show the table first.
  bool logSoonContains(const std::string& needle) {
    return waitUntil([&] { return daemonLog().find(needle) != std::string::npos; }, 2000ms, 20ms);
  }

  static ProcessCommandRunner* runner_;
  static Lab* lab_;
  static std::string* setup_error_;
  std::filesystem::path state_dir_;
  // The policy file the daemon runs: local commands must give the same one (the daemon refuses
  // a request made with another).
  std::string policy_ = kPolicy;
  std::filesystem::path log_path_;
  std::unique_ptr<AgentProcess> daemon_;
  std::vector<std::string> extra_cleanup_;
};

ProcessCommandRunner* DaemonFaultTest::runner_ = nullptr;
Lab* DaemonFaultTest::lab_ = nullptr;
std::string* DaemonFaultTest::setup_error_ = nullptr;

// 1. The rules live in the kernel, not in the daemon.
TEST_F(DaemonFaultTest, KillNineLeavesTheIsolationInTheKernel) {
  startDaemon();
  isolateOffice();
  expectOfficeCut("daemon running");
  const auto table = shadanTable();
  ASSERT_TRUE(table);

  kill9Daemon();
  EXPECT_EQ(shadanTable(), table) << "the table changed when the daemon died";
  expectOfficeCut("after kill -9");
}

// WatchdogSec= in the unit: systemd sets WATCHDOG_USEC and WATCHDOG_PID; the daemon pings
// every half interval from its loop. Inherited variables meant for another pid are ignored.
TEST_F(DaemonFaultTest, TheDaemonPingsTheSystemdWatchdogItIsGiven) {
  auto daemon = launchDaemon(kPolicy, {"WATCHDOG_USEC=200000"});
  ASSERT_TRUE(daemon.ok()) << daemon.error().message;
  size_t pings = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pings < 3 && std::chrono::steady_clock::now() < deadline) {
    for (const std::string& message : (*daemon)->pollNotifications()) {
      if (message.find("WATCHDOG=1") != std::string::npos) ++pings;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(pings, 3u) << "no watchdog pings from the daemon: " << readWholeFile(log_path_);
  ASSERT_TRUE((*daemon)->terminate().ok());

  auto other = launchDaemon(kPolicy, {"WATCHDOG_USEC=200000", "WATCHDOG_PID=1"});
  ASSERT_TRUE(other.ok()) << other.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (const std::string& message : (*other)->pollNotifications()) {
    EXPECT_EQ(message.find("WATCHDOG=1"), std::string::npos) << message;
  }
}

// 2. A new daemon on the same state takes over: in sync, and it serves restore.
TEST_F(DaemonFaultTest, RestartOnTheSameStateKeepsTheIsolationAndServesRestore) {
  startDaemon();
  isolateOffice();
  const auto table = shadanTable();
  ASSERT_TRUE(table);
  kill9Daemon();

  startDaemon();
  EXPECT_EQ(shadanTable(), table);
  expectOfficeCut("after restart");
  const nlohmann::json doc = status();
  EXPECT_EQ(doc["kernel"].value("state", ""), "in_sync") << doc.dump();
  ASSERT_EQ(doc["isolations"].size(), 1u) << doc.dump();
  EXPECT_EQ(doc["isolations"][0].value("segment", ""), "office");

  auto restored = agent({"restore", "office", "--reason", "test: all clear"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  EXPECT_NE(restored.out.find("restored office on gw"), std::string::npos) << restored.out;
  // The second daemon (not the CLI on its own) carried it out.
  EXPECT_TRUE(logSoonContains("event=control op=restore segment=office ok=true")) << daemonLog();
  expectOfficeOpen("after restore through the new daemon");
  EXPECT_FALSE(shadanTable());
}

// 3. A foreign `nft flush ruleset` is repaired within moments, and the log names who did it.
TEST_F(DaemonFaultTest, ForeignFlushRulesetIsRepairedAndTheCulpritLogged) {
  startDaemon();
  isolateOffice();
  const auto table = shadanTable();
  ASSERT_TRUE(table);

  inGateway({"nft", "flush", "ruleset"});
  EXPECT_TRUE(waitUntil([&] { return shadanTable().has_value(); }, kRepairWithin))
      << "table inet shadan not back within 2 s";
  EXPECT_EQ(shadanTable(), table);
  expectOfficeCut("after foreign flush");
  EXPECT_TRUE(logSoonContains("event=repaired")) << daemonLog();
  const std::string log = daemonLog();
  EXPECT_NE(log.find("event=foreign_change pid="), std::string::npos) << log;
  EXPECT_NE(log.find("by_comm=nft"), std::string::npos) << log;
  EXPECT_EQ(log.find("by_pid=0 "), std::string::npos) << log;
}

// 4a. Deleting our table is repaired.
TEST_F(DaemonFaultTest, ForeignDeleteTableIsRepaired) {
  startDaemon();
  isolateOffice();
  const auto table = shadanTable();
  ASSERT_TRUE(table);

  inGateway({"nft", "delete", "table", "inet", "shadan"});
  EXPECT_TRUE(waitUntil([&] { return shadanTable().has_value(); }, kRepairWithin));
  EXPECT_EQ(shadanTable(), table);
  expectOfficeCut("after foreign delete table");
  EXPECT_TRUE(logSoonContains("event=repaired")) << daemonLog();
}

// The daemon's metrics, scraped as Prometheus would: the isolation it holds, and a repair after
// a foreign `nft delete table` counted; the exposition passes `promtool check metrics`.
TEST_F(DaemonFaultTest, MetricsShowTheIsolationAndCountTheRepair) {
  inGateway({"ip", "link", "set", "lo", "up"});
  auto started = launchDaemon(kPolicy, {}, {"--metrics-listen", "127.0.0.1:9464"});
  ASSERT_TRUE(started.ok()) << started.error().message;
  daemon_ = std::move(started).value();
  const auto scrape = [&] {
    auto fetched = runner_->run({"ip", "netns", "exec", ns("gw"), "curl", "-sS", "--fail",
                                 "http://127.0.0.1:9464/metrics"});
    EXPECT_TRUE(fetched.ok() && fetched->exit_code == 0)
        << (fetched.ok() ? fetched->err : fetched.error().message);
    return fetched.ok() ? fetched->out : std::string();
  };
  const std::string before = scrape();
  EXPECT_NE(before.find("shadan_agent_isolations_active{scope=\"segment\"} 0\n"), std::string::npos)
      << before;
  EXPECT_NE(before.find("\nshadan_agent_repairs_total 0\n"), std::string::npos) << before;

  isolateOffice();
  inGateway({"nft", "delete", "table", "inet", "shadan"});
  EXPECT_TRUE(waitUntil([&] { return shadanTable().has_value(); }, kRepairWithin));
  expectOfficeCut("after foreign delete table");
  std::string after;
  EXPECT_TRUE(waitUntil(
      [&] {
        after = scrape();
        return after.find("\nshadan_agent_repairs_total 1\n") != std::string::npos;
      },
      kRepairWithin))
      << after;
  EXPECT_NE(after.find("shadan_agent_isolations_active{scope=\"segment\"} 1\n"), std::string::npos)
      << after;
  EXPECT_NE(after.find("shadan_agent_info{version=\""), std::string::npos) << after;

  const std::filesystem::path file = state_dir_.string() + ".metrics";
  extra_cleanup_.push_back(file);
  {
    std::ofstream out(file);
    out << after;
  }
  auto checked = runner_->run({"sh", "-c", "promtool check metrics < " + file.string()});
  ASSERT_TRUE(checked.ok()) << checked.error().message;
  EXPECT_EQ(checked->exit_code, 0) << checked->out << checked->err;
}

// 4b. An edit INSIDE our table (an accept at the head of forward, which would reopen the
// segment) is undone: the table is byte-identical again and its hash is the applied one.
TEST_F(DaemonFaultTest, ForeignRuleInsideOurTableIsRepaired) {
  startDaemon();
  isolateOffice();
  const auto table = shadanTable();
  ASSERT_TRUE(table);

  inGateway({"nft", "insert", "rule", "inet", "shadan", "forward", "accept"});
  EXPECT_TRUE(waitUntil([&] { return shadanTable() == table; }, kRepairWithin))
      << "still edited: " << shadanTable().value_or("(no table)");
  expectOfficeCut("after foreign insert rule");
  EXPECT_TRUE(logSoonContains("event=repaired")) << daemonLog();
  EXPECT_NE(daemonLog().find("found=drift"), std::string::npos) << daemonLog();
  const nlohmann::json doc = status();
  EXPECT_EQ(doc["kernel"].value("state", ""), "in_sync") << doc.dump();
  EXPECT_EQ(doc["kernel"].value("ruleset_sha256", "x"), doc.value("applied_ruleset_sha256", "y"))
      << doc.dump();
}

// 5. A deleted blackhole route comes back.
TEST_F(DaemonFaultTest, ForeignBlackholeRouteDeletionIsResynced) {
  startDaemon();
  isolateOffice({"--profile", "full-blackhole"});
  ASSERT_NE(routeTable("-4").find("blackhole 10.20.0.0/24"), std::string::npos);

  inGateway({"ip", "route", "del", "blackhole", "10.20.0.0/24", "table", "21320"});
  EXPECT_TRUE(waitUntil(
      [&] { return routeTable("-4").find("blackhole 10.20.0.0/24") != std::string::npos; },
      kRepairWithin))
      << "route not back: " << routeTable("-4");
  inGateway({"ip", "-6", "route", "del", "blackhole", "fd00:20::/64", "table", "21320"});
  EXPECT_TRUE(waitUntil(
      [&] { return routeTable("-6").find("blackhole fd00:20::/64") != std::string::npos; },
      kRepairWithin))
      << "route not back: " << routeTable("-6");
  expectOfficeCut("after foreign route deletion");
}

// 6. After a "reboot" (the kernel forgot everything), the daemon is fail-closed: when READY=1
// arrives the isolation is ALREADY in the kernel.
TEST_F(DaemonFaultTest, AfterRebootTheTableIsThereWhenReadyArrives) {
  startDaemon();
  isolateOffice({"--profile", "full-blackhole"});
  const auto table = shadanTable();
  ASSERT_TRUE(table);
  kill9Daemon();

  inGateway({"nft", "flush", "ruleset"});
  inGateway({"ip", "route", "flush", "table", "21320"});
  inGateway({"ip", "-6", "route", "flush", "table", "21320"});
  ASSERT_FALSE(shadanTable());
  ASSERT_EQ(routeTable("-4"), "");
  expectOfficeOpen("after the simulated reboot, before the daemon");

  startDaemon();
  // Nothing else has happened since READY=1: what is there now was there at READY.
  EXPECT_EQ(shadanTable(), table) << "table not (or not fully) applied before READY=1";
  EXPECT_NE(routeTable("-4").find("blackhole 10.20.0.0/24"), std::string::npos)
      << "blackhole route not applied before READY=1";
  expectOfficeCut("right after READY");
  // The start's own apply is not a repair.
  EXPECT_EQ(daemonLog().find("event=repaired"), std::string::npos) << daemonLog();
}

// 7. A deadline that passes while no daemon runs: the rules hold meanwhile, and the next start
// honours the deadline.
TEST_F(DaemonFaultTest, TtlThatExpiredWhileDownIsLiftedAtStart) {
  startDaemon();
  isolateOffice({"--ttl", "3s"});
  kill9Daemon();

  std::this_thread::sleep_for(4s);
  ASSERT_TRUE(shadanTable()) << "the rules must not depend on the daemon";
  expectOfficeCut("deadline passed, no daemon");

  startDaemon();
  expectOfficeOpen("after start");
  const nlohmann::json doc = status();
  EXPECT_TRUE(doc["isolations"].empty()) << doc.dump();
  EXPECT_NE(daemonLog().find("event=expired_while_down segment=office"), std::string::npos)
      << daemonLog();
}

// 8. A deadline that passes while the daemon runs lifts the isolation with no command.
TEST_F(DaemonFaultTest, TtlExpiresWhileTheDaemonRuns) {
  startDaemon();
  const auto isolated_at = std::chrono::steady_clock::now();
  isolateOffice({"--ttl", "2s"});
  // Only one quick cut probe: it must finish well before the deadline.
  EXPECT_FALSE(tcp(kOffice, kServers, false, kShouldFail)) << "office->servers while isolated";
  ASSERT_LT(std::chrono::steady_clock::now() - isolated_at, 1800ms) << "too slow to check the cut";

  std::this_thread::sleep_until(isolated_at + 2500ms);
  expectOfficeOpen("2.5 s after isolate --ttl 2s");
  EXPECT_TRUE(status()["isolations"].empty());
  EXPECT_NE(daemonLog().find("event=expired segment=office"), std::string::npos) << daemonLog();
}

// 9. One writer: commands go through the daemon, and a second daemon cannot take the state.
TEST_F(DaemonFaultTest, CommandsGoThroughTheDaemonAndASecondDaemonIsRefused) {
  startDaemon();
  isolateOffice();
  EXPECT_TRUE(logSoonContains("event=control op=isolate segment=office ok=true")) << daemonLog();
  expectOfficeCut("isolated through the socket");

  std::vector<std::string> argv = {"ip",        "netns", "exec",        ns("gw"),
                                   kAgent,      "run",   "--policy",    kPolicy,
                                   "--gateway", "gw",    "--state-dir", state_dir_.string()};
  auto second = runner_->run(argv);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->exit_code, 4) << second->err;
  EXPECT_NE(second->err.find("state directory is in use by another shadan-agent process"),
            std::string::npos)
      << second->err;
  // The first daemon is unharmed and still the one that serves.
  EXPECT_TRUE(daemon_->running());
  auto restored = agent({"restore", "office", "--reason", "test: all clear"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  EXPECT_TRUE(logSoonContains("event=control op=restore segment=office ok=true")) << daemonLog();
  expectOfficeOpen("restored through the socket");
}

// 9a. One gateway, one writer, whatever the flags: with the daemon running on state/, a local
// command on another state directory (and a second daemon there) is refused naming the
// running daemon, and the kernel is untouched. Before, `isolate --state-dir state2` printed
// "isolated office on gw" and the daemon removed the table 4 ms later as a foreign change.
TEST_F(DaemonFaultTest, AnotherStateDirectoryCannotWriteAGatewayADaemonOwns) {
  startDaemon();
  isolateOffice();
  expectOfficeCut("isolated through the daemon");
  const auto before = shadanTable();
  ASSERT_TRUE(before);
  EXPECT_NE(before->find("comment \"shadan-agent gateway=gw state=" + state_dir_.string() + "\""),
            std::string::npos)
      << *before;

  const std::filesystem::path other = state_dir_.string() + "-other";
  std::filesystem::create_directories(other);
  for (const char* command : {"isolate", "restore"}) {
    std::vector<std::string> argv = {"ip",           "netns",     "exec",    ns("gw"),
                                     kAgent,         command,     "servers", "--policy",
                                     kPolicy,        "--gateway", "gw",      "--state-dir",
                                     other.string(), "--reason",  "test"};
    auto refused = runner_->run(argv);
    ASSERT_TRUE(refused.ok()) << refused.error().message;
    EXPECT_EQ(refused->exit_code, 4) << command << ": " << refused->err;
    EXPECT_NE(refused->err.find("owned by the shadan-agent daemon (pid " +
                                std::to_string(daemon_->pid())),
              std::string::npos)
        << refused->err;
    EXPECT_EQ(refused->out.find("isolated"), std::string::npos) << refused->out;
  }
  std::vector<std::string> second_daemon = {"ip",        "netns", "exec",        ns("gw"),
                                            kAgent,      "run",   "--policy",    kPolicy,
                                            "--gateway", "gw",    "--state-dir", other.string()};
  auto second = runner_->run(second_daemon);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->exit_code, 4) << second->err;
  EXPECT_NE(second->err.find("owned by the shadan-agent daemon"), std::string::npos) << second->err;

  // The same state directory with another policy file: refused saying so, not judged against
  // the daemon's policy ("unknown segment").
  std::ifstream in(kPolicy);
  nlohmann::json changed = nlohmann::json::parse(in);
  changed["name"] = "lab-edited";
  const std::string changed_path = other.string() + "/policy.json";
  std::ofstream(changed_path) << changed.dump();
  auto mismatched =
      runner_->run({"ip", "netns", "exec", ns("gw"), kAgent, "isolate", "servers", "--policy",
                    changed_path, "--gateway", "gw", "--state-dir", state_dir_.string()});
  ASSERT_TRUE(mismatched.ok()) << mismatched.error().message;
  EXPECT_EQ(mismatched->exit_code, 3) << mismatched->err;
  EXPECT_NE(mismatched->err.find("runs another policy (\"lab\""), std::string::npos)
      << mismatched->err;

  EXPECT_EQ(shadanTable(), before);  // the kernel untouched
  EXPECT_TRUE(daemon_->running());
  expectOfficeCut("after the refused commands");
  std::filesystem::remove_all(other);
}

// 9b. A local command holding the state directory's lock when the daemon starts (a `status`
// an admin's script polls) delays the start; it never makes the daemon give up.
TEST_F(DaemonFaultTest, DaemonWaitsForALocalCommandsLockInsteadOfExiting) {
  std::filesystem::create_directories(state_dir_);
  const auto lock_path = state_dir_ / "lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_GE(lock.get(), 0);
  ASSERT_EQ(::flock(lock.get(), LOCK_EX), 0);
  std::thread release([&lock] {
    std::this_thread::sleep_for(700ms);
    lock.reset();  // closing the descriptor lets go of the flock
  });
  auto started = launchDaemon();
  release.join();
  ASSERT_TRUE(started.ok()) << started.error().message << "\n" << daemonLog();
  daemon_ = std::move(started).value();
  EXPECT_TRUE(daemon_->running());
  EXPECT_NE(daemonLog().find("event=waiting_for_state_lock"), std::string::npos) << daemonLog();
  isolateOffice();
  expectOfficeCut("daemon started after the lock was released");
}

// 9c. The way an admin's script does it: start the daemon while `status` polls the gateway,
// 50 times in a row. Every start must end with a running daemon.
TEST_F(DaemonFaultTest, StartingTheDaemonWhileStatusPollsNeverLosesIt) {
  std::atomic<bool> polling{true};
  std::atomic<int> polls{0};
  std::thread poller([&] {
    ProcessCommandRunner runner(std::chrono::seconds(20));
    while (polling) {
      auto polled = runner.run({"ip", "netns", "exec", ns("gw"), kAgent, "status", "--policy",
                                kPolicy, "--gateway", "gw", "--state-dir", state_dir_.string()});
      if (polled.ok()) ++polls;
    }
  });
  int lost = 0;
  std::string first_failure;
  for (int round = 0; round < 50; ++round) {
    auto started = launchDaemon();
    if (!started.ok() || !(*started)->running()) {
      ++lost;
      if (first_failure.empty()) {
        first_failure = "round " + std::to_string(round) + ": " +
                        (started.ok() ? std::string("exited") : started.error().message);
      }
      continue;
    }
    auto stopped = (*started)->terminate();
    EXPECT_TRUE(stopped.ok() && *stopped == 0) << "round " << round;
  }
  polling = false;
  poller.join();
  EXPECT_EQ(lost, 0) << first_failure << "\n" << daemonLog();
  // Not a timing assertion: only that the poller ran at all while the daemons started (a
  // status takes tens of milliseconds; 50 starts take seconds).
  EXPECT_GT(polls.load(), 10) << "status must really have polled during the starts";
}

// 10. The daemon's own applies are not foreign changes.
TEST_F(DaemonFaultTest, OwnAppliesNeverTriggerRepairs) {
  startDaemon();
  for (int round = 0; round < 3; ++round) {
    isolateOffice();
    ASSERT_EQ(agent({"isolate", "servers", "--profile", "internet-only"}).exit_code, 0);
    ASSERT_EQ(agent({"restore", "office", "--reason", "test: all clear"}).exit_code, 0);
    isolateOffice({"--profile", "full-blackhole"});
    ASSERT_EQ(agent({"restore", "--all", "--reason", "test cleanup"}).exit_code, 0);
  }
  isolateOffice();
  // Let at least one generation poll (1 s) and any debounced repair run.
  std::this_thread::sleep_for(1500ms);
  expectOfficeCut("after the command series");
  const std::string log = daemonLog();
  EXPECT_EQ(countOf(log, "event=control op=isolate"), 10u) << log;
  EXPECT_EQ(countOf(log, "event=control op=restore"), 6u) << log;
  EXPECT_EQ(log.find("event=repaired"), std::string::npos) << log;
  EXPECT_EQ(log.find("event=foreign_change"), std::string::npos) << log;
  EXPECT_EQ(log.find("event=repair_failed"), std::string::npos) << log;
}

}  // namespace
}  // namespace shadan

namespace shadan {
namespace {

// 11. The controller is unreachable: by default every isolation holds; with
//     agent.on_controller_loss = revert, drills are lifted after the grace period and real
//     isolations still hold.
TEST_F(DaemonFaultTest, UnreachableControllerKeepsEveryIsolationByDefault) {
  startDaemonWithUnreachableController("keep");
  isolateOffice({"--drill", "--ttl", "1h"});
  std::this_thread::sleep_for(3s);  // the 1 s grace and a poll tick have passed
  EXPECT_NE(daemonLog().find("event=connect_failed"), std::string::npos)
      << "the controller was expected to be unreachable";
  EXPECT_EQ(daemonLog().find("drills_reverted"), std::string::npos);
  expectOfficeCut("controller unreachable, keep");
}

TEST_F(DaemonFaultTest, UnreachableControllerRevertsDrillsWhenThePolicySaysSo) {
  startDaemonWithUnreachableController("revert");
  isolateOffice({"--drill", "--ttl", "1h"});
  auto real = agent({"isolate", "internet"});
  ASSERT_EQ(real.exit_code, 0) << real.err;
  ASSERT_TRUE(waitUntil(
      [&] { return daemonLog().find("event=drills_reverted") != std::string::npos; }, 5000ms, 50ms))
      << daemonLog();
  expectOfficeOpen("drill reverted");
  const auto state = status();
  ASSERT_EQ(state["isolations"].size(), 1u) << state.dump();
  EXPECT_EQ(state["isolations"][0]["segment"], "internet");
}

}  // namespace
}  // namespace shadan

namespace shadan {
namespace {

// 12. SIGHUP (systemctl reload) swaps a rewritten policy file in while the daemon runs: the
//     kernel table changes and traffic follows the new rules. A file that does not load, or one
//     that would lift the cut, is refused: the daemon keeps running on the old ruleset and says
//     why.
TEST_F(DaemonFaultTest, SighupReloadsThePolicyAndRefusesOneThatDoesNotLoadOrLiftsTheCut) {
  const std::string dir = state_dir_.string() + "-policy";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  extra_cleanup_.push_back(dir);
  const std::string policy_path = dir + "/policy.json";
  const auto write = [&](const std::string& text) { std::ofstream(policy_path) << text; };
  const auto reloadAndWaitFor = [&](const std::string& event, size_t times) {
    EXPECT_EQ(::kill(daemon_->pid(), SIGHUP), 0);
    return waitUntil([&] { return countOf(daemonLog(), event) == times; }, 5000ms, 20ms);
  };
  std::ifstream in(kPolicy);
  const nlohmann::json lab = nlohmann::json::parse(in);
  write(lab.dump(2));
  startDaemon(policy_path);
  isolateOffice({"--profile", "forensic"});
  EXPECT_FALSE(tcp(kOffice, kServers, false, kShouldFail)) << "office->servers before the reload";
  const auto before = shadanTable();
  ASSERT_TRUE(before);
  EXPECT_EQ(before->find("10.30.0.2"), std::string::npos) << *before;

  // The forensic profile now also keeps the servers host reachable.
  nlohmann::json next = lab;
  next["name"] = "lab-reloaded";
  next["profiles"]["forensic"]["allow"].push_back(
      {{"description", "servers host"}, {"prefix", "10.30.0.2/32"}});
  write(next.dump(2));
  ASSERT_TRUE(reloadAndWaitFor("event=policy_reloaded", 1)) << daemonLog();
  const auto reloaded = shadanTable();
  ASSERT_TRUE(reloaded);
  EXPECT_NE(reloaded->find("10.30.0.2"), std::string::npos) << *reloaded;
  // Answered by the daemon: the CLI on its own would name its own --policy ("lab").
  nlohmann::json doc = status();
  EXPECT_EQ(doc.value("policy", ""), "lab-reloaded") << doc.dump();
  EXPECT_EQ(doc["kernel"].value("state", ""), "in_sync") << doc.dump();
  EXPECT_EQ(doc["isolations"].size(), 1u) << doc.dump();
  forgetNeighbours();
  EXPECT_TRUE(tcp(kOffice, kServers, false, kShouldPass)) << "the new allow rule";
  EXPECT_FALSE(tcp(kOffice, kInet, false, kShouldFail)) << "the rest of the cut";
  std::string audit = readWholeFile(state_dir_ / "audit.log");
  EXPECT_NE(audit.find("\"policy_reloaded\""), std::string::npos) << audit;
  EXPECT_NE(audit.find(sha256Hex(next.dump(2))), std::string::npos) << "names the new file";

  // Half a file, as an editor might leave it.
  write("{\"shadan_policy\": 1, \"name\": ");
  ASSERT_TRUE(reloadAndWaitFor("event=reload_refused", 1)) << daemonLog();
  EXPECT_NE(daemonLog().find(policy_path + ": byte"), std::string::npos) << daemonLog();
  // A valid policy whose gateway no longer borders the isolated segment.
  nlohmann::json lifting = next;
  lifting["gateways"]["gw"]["borders"] = {"servers", "mgmt", "internet"};
  write(lifting.dump(2));
  ASSERT_TRUE(reloadAndWaitFor("event=reload_refused", 2)) << daemonLog();
  EXPECT_NE(daemonLog().find("no longer borders segment \"office\""), std::string::npos)
      << daemonLog();

  EXPECT_EQ(shadanTable(), reloaded) << "a refused reload must keep the ruleset";
  doc = status();
  EXPECT_EQ(doc.value("policy", ""), "lab-reloaded") << doc.dump();
  EXPECT_EQ(doc["isolations"].size(), 1u) << doc.dump();
  EXPECT_FALSE(tcp(kOffice, kInet, false, kShouldFail)) << "the cut after refused reloads";
  audit = readWholeFile(state_dir_ / "audit.log");
  EXPECT_EQ(countOf(audit, "\"policy_reload_refused\""), 2u) << audit;
  // Still the same process, alive until now: SIGHUP never ended it.
  auto stopped = daemon_->terminate();
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  EXPECT_EQ(*stopped, 0) << daemonLog();
  daemon_.reset();
}

}  // namespace
}  // namespace shadan

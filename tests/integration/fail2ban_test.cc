// A real fail2ban drives Shadan's automated response end to end: fail2ban-server (the Debian
// package) watches a log with a jail whose banaction is the repository's own
// integrations/fail2ban/action.d/shadan.conf, pointed at a real shadan-controller; the
// controller's response rule turns the alert into an automatic host quarantine; the real
// shadan-agent on the gateway cuts the host. Real packets prove the cut and that the
// neighbour is spared; fail2ban's unban (the action's /v1/alerts/clear) lifts it again.
//
// The lab is the detector lab (tests/integration/detector_lab.h): host A pc1 and its neighbour B
// pc2 in office, srv, and mgmt, which runs the controller and fail2ban-server (the action's curl
// reaches the API there).
//
// The same lab also runs the Wazuh active response (integrations/wazuh/shadan-ar) as execd
// would: "add" quarantines, "delete" lifts.
//
// Needs root, and fail2ban-server for the fail2ban case (scripts/install-deps.sh installs it;
// without it that case is skipped, which the kernel-suite contract turns into a failure when
// run as root: tests/support/kernel_suite.h). Namespaces
// are sd-<lab>-<node> with a per-process lab name, deleted by the Lab's destructor even when an
// assertion fails; fail2ban-server, the controller and the agent are children killed by their
// RAII holders; fail2ban's socket, pid file, database and logs live in the test's temporary
// directory, removed at the end (kept, and named, when the test failed).

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cli/lab/daemon_child.h"
#include "common/clock.h"
#include "tests/integration/detector_lab.h"
#include "tests/integration/lab_traffic.h"

namespace shadan {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// From the log line to the cut: fail2ban's polling (1 s), the action's curl, the order, the
// agent's transaction. Generous, polled: the test ends as soon as the cut holds.
constexpr auto kReactWithin = 30s;

const std::string kAction =
    std::string(SHADAN_SOURCE_DIR) + "/integrations/fail2ban/action.d/shadan.conf";
constexpr const char* kFail2banServer = "/usr/bin/fail2ban-server";
constexpr const char* kFail2banClient = "/usr/bin/fail2ban-client";
constexpr const char* kJail = "shadan-test";
const std::string kWazuhAr = std::string(SHADAN_SOURCE_DIR) + "/integrations/wazuh/shadan-ar";
constexpr const char* kWazuhRule = "5712";
const std::string kApi = kDetectorApi;
constexpr const LabHost& kHostA = kDetectorHostA;
constexpr const LabHost& kHostB = kDetectorHostB;  // host A's neighbour in office
constexpr const LabHost& kSrv = kDetectorServer;

class Fail2banTest : public DetectorLabTest {
 protected:
  char labTag() const override { return 'b'; }
  std::vector<std::string> detectorNames() const override { return {"f2b", "wazuh"}; }
  json responseRules() const override {
    return json::array(
        {json{{"name", "f2b-ban"},
              {"match", {{"detector", "f2b"}, {"format", "shadan"}, {"rules", {kJail}}}},
              {"action", "quarantine-host"},
              {"host", "src"},
              {"ttl_s", 600}},
         json{{"name", "wazuh-ban"},
              {"match", {{"detector", "wazuh"}, {"format", "shadan"}, {"rules", {kWazuhRule}}}},
              {"action", "quarantine-host"},
              {"host", "src"},
              {"ttl_s", 600}}});
  }

  void SetUp() override {
    logs_to_dump_ = {"fail2ban.log", "fail2ban.out"};
    DetectorLabTest::SetUp();
  }

  void TearDown() override {
    // fail2ban first: its actions talk to the controller. Its actionflush does nothing, so a
    // stop lifts nothing; the lab goes away anyway.
    if (fail2ban_) {
      (void)runner_->run(client({"stop"}));
      auto stopped = fail2ban_->stop(SIGTERM, 10s);
      EXPECT_TRUE(stopped.ok()) << stopped.error().message;
    }
    fail2ban_.reset();
    DetectorLabTest::TearDown();
  }

  // fail2ban's own configuration directory: the server's settings (socket, pid, database and
  // log in the temporary directory), the test's filter, the repository's action, the jail.
  void writeFail2banConfig() {
    std::filesystem::create_directories(file("f2b/action.d"));
    std::filesystem::create_directories(file("f2b/filter.d"));
    std::filesystem::copy_file(kAction, file("f2b/action.d/shadan.conf"));
    ASSERT_NO_FATAL_FAILURE(writeFile("f2b/fail2ban.conf",
                                      "[Definition]\n"
                                      "loglevel = DEBUG\n"
                                      "logtarget = " +
                                          file("fail2ban.log") +
                                          "\n"
                                          "syslogsocket = auto\n"
                                          "socket = " +
                                          file("fail2ban.sock") +
                                          "\n"
                                          "pidfile = " +
                                          file("fail2ban.pid") +
                                          "\n"
                                          "allowipv6 = auto\n"
                                          "dbfile = " +
                                          file("fail2ban.sqlite3") +
                                          "\n"
                                          "dbpurgeage = 1d\n"));
    ASSERT_NO_FATAL_FAILURE(writeFile("f2b/filter.d/shadan-test.conf",
                                      "[Definition]\n"
                                      "failregex = ^shadan-test: failed login from <HOST>$\n"
                                      "datepattern = {NONE}\n"));
    ASSERT_NO_FATAL_FAILURE(
        writeFile("f2b/jail.conf", std::string("[DEFAULT]\n"
                                               "backend = polling\n"
                                               "\n[") +
                                       kJail +
                                       "]\n"
                                       "enabled = true\n"
                                       "filter = shadan-test\n"
                                       "logpath = " +
                                       file("auth.log") +
                                       "\n"
                                       "maxretry = 1\n"
                                       "findtime = 600\n"
                                       "bantime = 3600\n"
                                       "banaction = shadan\n"
                                       "action = %(banaction)s[shadan_url=\"" +
                                       kApi + "\", shadan_ca=\"" + file("ca/ca.crt") +
                                       "\", shadan_headers=\"" + file("f2b.header") +
                                       "\", shadan_severity=high]\n"));
    ASSERT_NO_FATAL_FAILURE(writeFile("auth.log", ""));
  }

  std::vector<std::string> client(std::vector<std::string> words) const {
    std::vector<std::string> argv = {
        "ip", "netns",     "exec", ns("mgmt"),           kFail2banClient,
        "-c", file("f2b"), "-s",   file("fail2ban.sock")};
    argv.insert(argv.end(), words.begin(), words.end());
    return argv;
  }

  void startFail2ban() {
    ASSERT_NO_FATAL_FAILURE(writeFail2banConfig());
    auto started = DaemonChild::start({ns("mgmt"),
                                       {kFail2banServer, "-f", "-x", "-c", file("f2b"), "-s",
                                        file("fail2ban.sock"), "-p", file("fail2ban.pid")},
                                       file("fail2ban.out")});
    ASSERT_TRUE(started.ok()) << started.error().message;
    fail2ban_ = std::move(started).value();
    const bool up = waitUntil(
        [&] {
          auto status = runner_->run(client({"status", kJail}));
          return (status.ok() && status->exit_code == 0) || !fail2ban_->running();
        },
        kStartWithin, 200ms);
    ASSERT_TRUE(up && fail2ban_->running())
        << "fail2ban-server did not start the jail; output:\n"
        << readWholeFile(file("fail2ban.out")) << readWholeFile(file("fail2ban.log"));
  }

  void appendToWatchedLog(const std::string& line) {
    std::ofstream out(file("auth.log"), std::ios::app);
    out << line << "\n";
    out.flush();
    ASSERT_TRUE(out.good());
  }

  std::unique_ptr<DaemonChild> fail2ban_;
};

// A failed login in the watched log bans host A: fail2ban's shadan action posts the alert, the
// controller's rule quarantines A automatically, the gateway cuts A and spares B. fail2ban's
// unban posts the clear, the controller releases its automatic action, A passes again.
TEST_F(Fail2banTest, BanQuarantinesTheHostAndUnbanLiftsIt) {
  if (::access(kFail2banServer, X_OK) != 0 || ::access(kFail2banClient, X_OK) != 0) {
    GTEST_SKIP() << kFail2banServer << " is not installed (scripts/install-deps.sh installs "
                 << "the fail2ban package)";
  }
  traffic()
      .tcp(kHostA, kSrv, false, 0, true)
      .tcp(kHostB, kSrv, false, 0, true)
      .icmp(kHostA, kSrv, false, true)
      .check("before the ban");
  ASSERT_NO_FATAL_FAILURE(startFail2ban());

  ASSERT_NO_FATAL_FAILURE(
      appendToWatchedLog(std::string("shadan-test: failed login from ") + kHostA.v4));
  ASSERT_NO_FATAL_FAILURE(expectQuarantined(kHostA, kHostB, kReactWithin, "the log line"));
  {
    // The cut is the controller's automatic quarantine, decided by the rule for this detector.
    auto alerts = api("sato", "GET", "/v1/alerts?limit=10");
    ASSERT_TRUE(alerts.has_value());
    ASSERT_EQ(alerts->status, 200) << alerts->text;
    const json& list = alerts->body.at("alerts");
    ASSERT_FALSE(list.empty()) << alerts->text;
    EXPECT_NE(list.front().dump().find("\"acted\""), std::string::npos) << alerts->text;
    EXPECT_NE(list.front().dump().find("f2b-ban"), std::string::npos) << alerts->text;
  }

  auto unban = runner_->run(client({"set", kJail, "unbanip", kHostA.v4}));
  ASSERT_TRUE(unban.ok()) << unban.error().message;
  ASSERT_EQ(unban->exit_code, 0) << unban->out << unban->err;
  ASSERT_TRUE(waitUntil([&] { return tcp(kHostA, kSrv); }, kReactWithin, 200ms))
      << "host A was still cut " << kReactWithin.count() << " s after fail2ban's unban";
  traffic()
      .tcp(kHostA, kSrv, false, 0, true)
      .tcp(kSrv, kHostA, false, 0, true)
      .icmp(kHostA, kSrv, false, true)
      .tcp(kHostB, kSrv, false, 0, true)
      .check("after the unban");
  const std::string log = readWholeFile(file("fail2ban.log"));
  EXPECT_EQ(log.find(" ERROR "), std::string::npos) << "fail2ban logged an error:\n" << log;
}

// The Wazuh active response (integrations/wazuh/shadan-ar) against the same controller: execd's
// "add" message quarantines the alert's data.srcip, its "delete" (the AR timeout) lifts it.
// Run by hand as execd would, minus execd's answer to check_keys (stdin ends: the script goes
// on, as documented).
TEST_F(Fail2banTest, WazuhActiveResponseAddQuarantinesAndDeleteLifts) {
  ASSERT_NO_FATAL_FAILURE(writeFile("shadan-ar.json", json{{"controller", kApi},
                                                           {"ca", file("ca/ca.crt")},
                                                           {"token_file", file("wazuh.token")},
                                                           {"log", file("wazuh-ar.log")}}
                                                          .dump()));
  const auto message = [&](const char* command) {
    return json{{"version", 1},
                {"origin", {{"name", "node01"}, {"module", "wazuh-execd"}}},
                {"command", command},
                {"parameters",
                 {{"extra_args", json::array()},
                  {"program", "shadan-ar"},
                  {"alert",
                   {{"timestamp", "2024-05-01T10:00:00.123+0200"},
                    {"rule",
                     {{"level", 10},
                      {"description", "sshd: brute force trying to get access"},
                      {"id", kWazuhRule}}},
                    {"agent", {{"id", "001"}, {"name", "pc2"}}},
                    {"data", {{"srcip", kHostB.v4}, {"dstuser", "root"}}}}}}}}
               .dump() +
           "\n";
  };
  const auto runAr = [&](const char* command) {
    auto ran = runner_->run(
        {"ip", "netns", "exec", ns("mgmt"), kWazuhAr, "--config", file("shadan-ar.json")},
        message(command));
    ASSERT_TRUE(ran.ok()) << ran.error().message;
    ASSERT_EQ(ran->exit_code, 0) << ran->out << ran->err << readWholeFile(file("wazuh-ar.log"));
  };
  traffic().tcp(kHostB, kSrv, false, 0, true).tcp(kHostA, kSrv, false, 0, true).check("before");

  ASSERT_NO_FATAL_FAILURE(runAr("add"));
  ASSERT_TRUE(waitUntil([&] { return !tcp(kHostB, kSrv); }, kReactWithin, 200ms))
      << "host B was not cut after the add; decisions: " << recentAlerts();
  traffic()
      .tcp(kHostB, kSrv, false, 0, false)
      .icmp(kSrv, kHostB, false, false)
      .tcp(kHostA, kSrv, false, 0, true)
      .check("after add");

  ASSERT_NO_FATAL_FAILURE(runAr("delete"));
  ASSERT_TRUE(waitUntil([&] { return tcp(kHostB, kSrv); }, kReactWithin, 200ms))
      << "host B was still cut after the delete";
  traffic().tcp(kHostB, kSrv, false, 0, true).icmp(kSrv, kHostB, false, true).check("after delete");
}

}  // namespace
}  // namespace shadan

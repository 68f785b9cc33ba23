// A real CrowdSec 1.4 drives Shadan's automated response end to end: crowdsec (the Debian
// package, in the foreground, everything in the test's temporary directory) reads an sshd log on
// the lab's management host with the sshd parser and the ssh-bf scenario of the hub the package
// ships offline; its profile bans the address and notifies `shadan`, the HTTP notification
// plugin with the repository's own integrations/crowdsec/http.yaml (only `url` and the token
// filled in) posts to a real shadan-controller; the controller's response rule (the one
// docs/detectors.md gives) quarantines the host; the real shadan-agent on the gateway cuts it.
// Real packets prove the cut and that the neighbour is spared.
//
// The lab, controller and agent: tests/integration/detector_lab.h. crowdsec runs in mgmt and
// reaches the API there; its local API listens on 127.0.0.1:8080 of mgmt's own loopback, so it
// meets nothing of the machine's. Nothing under /etc/crowdsec or /var/lib/crowdsec is written:
// the test's config.yaml names its own config, data, notification and plugin directories and
// links the hub items and grok patterns the package installed.
//
// Two things of CrowdSec 1.4.6 as Debian 12 ships it shape the setup (docs/detectors.md):
//   - the broker only runs plugins named TYPE-NAME, the package installs them as
//     /usr/lib/crowdsec/plugins/http etc.: the test's plugin_dir holds notification-http, a link
//     to the package's binary;
//   - the package enables crowdsecurity/whitelists, which drops every event from a private
//     address, i.e. every lab host: the test does not enable it.
// The plugin trusts the system CA store; the test gives crowdsec (and so the plugin, which
// inherits its environment) SSL_CERT_FILE with the lab's CA instead of touching the store, and
// runs the plugin as root (plugin_config), since the CA file is in the test's 0700 directory.
//
// Needs root and the crowdsec package (scripts/install-deps.sh installs it; without it the case
// is skipped, which the kernel-suite contract turns into a failure when run as root:
// tests/support/kernel_suite.h). crowdsec and its plugin are killed at the end, even when an
// assertion fails.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <vector>

#include "cli/lab/daemon_child.h"
#include "tests/integration/agent_process.h"
#include "tests/integration/detector_lab.h"
#include "tests/integration/lab_traffic.h"

namespace shadan {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// From the log lines to the cut: crowdsec's file tailer, the scenario's overflow, the plugin
// broker's group_wait (5 s in http.yaml, checked every second), the request, the order, the
// agent's transaction; about 3 s measured. Generous, polled: the test ends as soon as the cut
// holds.
constexpr auto kReactWithin = 30s;

constexpr const char* kCrowdsec = "/usr/bin/crowdsec";
constexpr const char* kCscli = "/usr/bin/cscli";
constexpr const char* kHttpPlugin = "/usr/lib/crowdsec/plugins/http";
constexpr const char* kHub = "/usr/share/crowdsec/hub";
constexpr const char* kPatterns = "/etc/crowdsec/patterns";
const std::string kNotification =
    std::string(SHADAN_SOURCE_DIR) + "/integrations/crowdsec/http.yaml";
constexpr const char* kScenario = "crowdsecurity/ssh-bf";
constexpr const char* kTokenPlaceholder = "REPLACE-WITH-THE-DETECTOR-TOKEN";
// ssh-bf overflows on the 6th failed login from one address within its leak (capacity 5).
constexpr int kFailedLogins = 6;

// The hub items the test enables, as the package enables them: a link in the config directory
// (without the author's directory, which crowdsec 1.4 wants) to the item under kHub.
struct HubItem {
  const char* link;
  const char* item;
};
constexpr HubItem kHubItems[] = {
    {"etc/parsers/s00-raw/syslog-logs.yaml", "parsers/s00-raw/crowdsecurity/syslog-logs.yaml"},
    {"etc/parsers/s01-parse/sshd-logs.yaml", "parsers/s01-parse/crowdsecurity/sshd-logs.yaml"},
    {"etc/parsers/s02-enrich/dateparse-enrich.yaml",
     "parsers/s02-enrich/crowdsecurity/dateparse-enrich.yaml"},
    {"etc/scenarios/ssh-bf.yaml", "scenarios/crowdsecurity/ssh-bf.yaml"},
};

// @CS@ is the test's crowdsec directory. No Central API (no online_client), no prometheus
// listener, logs on stdout (the DaemonChild's log), no daemonizing.
const char* const kConfig = R"yaml(common:
  daemonize: false
  log_media: stdout
  log_level: info
config_paths:
  config_dir: @CS@/etc/
  data_dir: @CS@/data/
  simulation_path: @CS@/etc/simulation.yaml
  hub_dir: /usr/share/crowdsec/hub/
  index_path: /usr/share/crowdsec/hub/.index.json
  notification_dir: @CS@/etc/notifications/
  plugin_dir: @CS@/plugins/
crowdsec_service:
  acquisition_path: @CS@/etc/acquis.yaml
db_config:
  type: sqlite
  db_path: @CS@/data/crowdsec.db
  use_wal: true
plugin_config:
  user: root
  group: root
api:
  client:
    credentials_path: @CS@/etc/local_api_credentials.yaml
  server:
    listen_uri: 127.0.0.1:8080
    profiles_path: @CS@/etc/profiles.yaml
prometheus:
  enabled: false
)yaml";

const char* const kAcquis = R"yaml(filenames:
  - @CS@/auth.log
labels:
  type: syslog
)yaml";

// The profile of docs/detectors.md.
const char* const kProfiles = R"yaml(name: default_ip_remediation
filters:
 - Alert.Remediation == true && Alert.GetScope() == "Ip"
decisions:
 - type: ban
   duration: 4h
notifications:
 - shadan
on_success: break
)yaml";

std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// An sshd failed login as syslog writes it to auth.log, stamped now (local time, like syslog).
std::string sshdFailedLogin(const char* address, int port) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &local);
  return std::string(stamp) + " mgmt sshd[4242]: Failed password for invalid user admin from " +
         address + " port " + std::to_string(port) + " ssh2";
}

// True if process `pid` has `path` open (crowdsec's tailer: it reads from the end of the file
// it opened, so a line written before that would never be seen).
bool hasOpen(pid_t pid, const std::filesystem::path& path) {
  std::error_code error;
  std::filesystem::directory_iterator fds("/proc/" + std::to_string(pid) + "/fd", error);
  if (error) return false;
  for (auto it = fds; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) return false;
    std::error_code link_error;
    if (std::filesystem::read_symlink(it->path(), link_error) == path) return true;
  }
  return false;
}

class CrowdsecTest : public DetectorLabTest {
 protected:
  char labTag() const override { return 'c'; }
  std::vector<std::string> detectorNames() const override { return {"crowdsec"}; }
  json responseRules() const override {
    return json::array({json{{"name", "crowdsec-bf"},
                             {"match",
                              {{"detector", "crowdsec"},
                               {"format", "shadan"},
                               {"rules", {kScenario, "crowdsecurity/ssh-slow-bf"}}}},
                             {"action", "quarantine-host"},
                             {"host", "src"},
                             {"ttl_s", 14400}}});
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "integration tests need root (network namespaces)";
    for (const char* program : {kCrowdsec, kCscli, kHttpPlugin}) {
      if (::access(program, X_OK) != 0) {
        GTEST_SKIP() << program << " is not installed (scripts/install-deps.sh installs the "
                     << "crowdsec package)";
      }
    }
    for (const HubItem& item : kHubItems) {
      const std::string path = std::string(kHub) + "/" + item.item;
      if (!std::filesystem::exists(path)) {
        GTEST_SKIP() << path << " is missing (the crowdsec package ships it)";
      }
    }
    logs_to_dump_ = {"crowdsec.log"};
    DetectorLabTest::SetUp();
  }

  void TearDown() override {
    // crowdsec first: its plugin talks to the controller.
    if (crowdsec_) {
      const pid_t group = crowdsec_->pid();  // DaemonChild: the child leads its process group
      auto stopped = crowdsec_->stop(SIGTERM, 10s);
      EXPECT_TRUE(stopped.ok()) << stopped.error().message;
      // crowdsec 1.4 exits without stopping its plugin, which stays in crowdsec's process group
      // (the group lives on while the plugin does, so its id cannot have been reused).
      ::kill(-group, SIGKILL);
      crowdsec_.reset();
    }
    DetectorLabTest::TearDown();
  }

  std::string cs(const std::string& name) const { return file("cs/" + name); }

  // crowdsec's directory: config, hub links, acquisition of cs/auth.log, the profile, the
  // repository's notification with url and token, the plugin link, the machine's credentials.
  void writeCrowdsecConfig() {
    for (const char* dir : {"cs/etc/notifications", "cs/data", "cs/plugins"}) {
      std::filesystem::create_directories(file(dir));
    }
    for (const HubItem& item : kHubItems) {
      std::filesystem::create_directories(std::filesystem::path(cs(item.link)).parent_path());
      std::filesystem::create_symlink(std::string(kHub) + "/" + item.item, cs(item.link));
    }
    std::filesystem::create_directory_symlink(kPatterns, cs("etc/patterns"));
    std::filesystem::create_symlink(kHttpPlugin, cs("plugins/notification-http"));

    const std::string dir = file("cs");
    ASSERT_NO_FATAL_FAILURE(writeFile("cs/config.yaml", replaceAll(kConfig, "@CS@", dir)));
    ASSERT_NO_FATAL_FAILURE(writeFile("cs/etc/simulation.yaml", "simulation: off\n"));
    ASSERT_NO_FATAL_FAILURE(writeFile("cs/etc/acquis.yaml", replaceAll(kAcquis, "@CS@", dir)));
    ASSERT_NO_FATAL_FAILURE(writeFile("cs/etc/profiles.yaml", kProfiles));
    ASSERT_NO_FATAL_FAILURE(writeFile("cs/auth.log", ""));

    // The shipped notification, as docs/detectors.md has the operator fill it in.
    std::string notification = readWholeFile(kNotification);
    ASSERT_FALSE(notification.empty()) << "cannot read " << kNotification;
    const size_t url = notification.find("\nurl: ");
    ASSERT_NE(url, std::string::npos) << kNotification << " has no url line";
    notification.replace(url + 1, notification.find('\n', url + 1) - (url + 1),
                         std::string("url: ") + kDetectorApi + "/v1/alerts?format=shadan");
    ASSERT_NE(notification.find(kTokenPlaceholder), std::string::npos)
        << kNotification << " has no " << kTokenPlaceholder;
    notification = replaceAll(notification, kTokenPlaceholder, token("crowdsec"));
    ASSERT_NO_FATAL_FAILURE(writeFile("cs/etc/notifications/shadan.yaml", notification, 0600));

    auto added = runner_->run({"ip", "netns", "exec", ns("mgmt"), kCscli, "-c", cs("config.yaml"),
                               "machines", "add", "shadan-test", "--auto", "-f",
                               cs("etc/local_api_credentials.yaml")});
    ASSERT_TRUE(added.ok()) << added.error().message;
    ASSERT_EQ(added->exit_code, 0) << "cscli machines add: " << added->out << added->err;
  }

  // crowdsec in mgmt, in the foreground; ready once its tailer has cs/auth.log open.
  void startCrowdsec() {
    ASSERT_NO_FATAL_FAILURE(writeCrowdsecConfig());
    auto started = DaemonChild::start({ns("mgmt"),
                                       {kCrowdsec, "-c", cs("config.yaml")},
                                       file("crowdsec.log"),
                                       {"SSL_CERT_FILE=" + file("ca/ca.crt")}});
    ASSERT_TRUE(started.ok()) << started.error().message;
    crowdsec_ = std::move(started).value();
    const bool up = waitUntil(
        [&] { return hasOpen(crowdsec_->pid(), cs("auth.log")) || !crowdsec_->running(); },
        kStartWithin, 100ms);
    ASSERT_TRUE(up && crowdsec_->running())
        << "crowdsec did not start reading " << cs("auth.log") << "; log:\n"
        << readWholeFile(file("crowdsec.log"));
  }

  // One user name for every line: ssh-bf's sibling ssh-bf_user-enum (distinct users) stays
  // quiet, so exactly one alert is raised.
  void appendFailedLogins(const char* address) {
    std::ofstream out(cs("auth.log"), std::ios::app);
    for (int i = 0; i < kFailedLogins; ++i) out << sshdFailedLogin(address, 40001 + i) << "\n";
    out.flush();
    ASSERT_TRUE(out.good());
  }

  std::unique_ptr<DaemonChild> crowdsec_;
};

// Six failed ssh logins from host A in the watched log: crowdsec's ssh-bf bans A and notifies
// shadan; the controller's rule quarantines A automatically, the gateway cuts A and spares B.
TEST_F(CrowdsecTest, SshBruteForceQuarantinesTheHostAndSparesItsNeighbour) {
  const LabHost& a = kDetectorHostA;
  const LabHost& b = kDetectorHostB;
  const LabHost& srv = kDetectorServer;
  traffic()
      .tcp(a, srv, false, 0, true)
      .tcp(b, srv, false, 0, true)
      .icmp(a, srv, false, true)
      .check("before the alert");
  ASSERT_NO_FATAL_FAILURE(startCrowdsec());

  ASSERT_NO_FATAL_FAILURE(appendFailedLogins(a.v4));
  ASSERT_NO_FATAL_FAILURE(expectQuarantined(a, b, kReactWithin, "the failed logins"));

  // The cut is the controller's automatic quarantine, decided by the CrowdSec rule on a record
  // the template made from the alert.
  auto alerts = api("sato", "GET", "/v1/alerts?limit=10");
  ASSERT_TRUE(alerts.has_value());
  ASSERT_EQ(alerts->status, 200) << alerts->text;
  const json list = alerts->body.value("alerts", json::array());
  ASSERT_EQ(list.size(), 1u) << "one alert, one record: " << alerts->text;
  const json& decision = list.front();
  EXPECT_EQ(decision.value("detector", ""), "crowdsec") << alerts->text;
  EXPECT_EQ(decision.value("decision", ""), "acted") << alerts->text;
  EXPECT_EQ(decision.value("rule", ""), "crowdsec-bf") << alerts->text;
  const json record = decision.value("alert", json::object());
  EXPECT_EQ(record.value("format", ""), "shadan") << alerts->text;
  EXPECT_EQ(record.value("source", ""), "crowdsec") << alerts->text;
  EXPECT_EQ(record.value("rule", ""), kScenario) << alerts->text;
  EXPECT_EQ(record.value("severity", ""), "high") << alerts->text;
  EXPECT_EQ(record.value("src", ""), a.v4) << alerts->text;
  EXPECT_NE(record.value("title", "").find(kScenario), std::string::npos) << alerts->text;

  const std::string log = readWholeFile(file("crowdsec.log"));
  EXPECT_NE(log.find("registered plugin shadan"), std::string::npos) << log;
  EXPECT_EQ(log.find("non 200 status code"), std::string::npos) << log;
  EXPECT_EQ(log.find("Failed to make HTTP request"), std::string::npos) << log;
}

}  // namespace
}  // namespace shadan

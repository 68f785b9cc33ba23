// A real fail2ban drives Shadan's automated response end to end: fail2ban-server (the Debian
// package) watches a log with a jail whose banaction is the repository's own
// integrations/fail2ban/action.d/shadan.conf, pointed at a real shadan-controller; the
// controller's response rule turns the alert into an automatic host quarantine; the real
// shadan-agent on the gateway cuts the host. Real packets prove the cut and that the
// neighbour is spared; fail2ban's unban (the action's /v1/alerts/clear) lifts it again.
//
// The lab (its own): gateway gw; the office segment on two links (host A pc1 on 10.20.0.0/24,
// host B pc2 on 10.21.0.0/24); servers (srv); the management host mgmt, which runs the
// controller (API 10.99.0.10:8443, agent hub :8444) and fail2ban-server (it reaches the API
// locally; the action's curl runs there).
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

#include "cli/ca_cmd.h"
#include "cli/lab/command_runner.h"
#include "cli/lab/daemon_child.h"
#include "cli/lab/lab.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/sha256.h"
#include "tests/integration/agent_process.h"
#include "tests/integration/lab_traffic.h"

namespace shadan {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kShouldFail = 300ms;   // long enough for a packet across a veth to come back
constexpr auto kShouldPass = 3000ms;  // generous: a pass must never be flaky
// From the log line to the cut: fail2ban's polling (1 s), the action's curl, the order, the
// agent's transaction. Generous, polled: the test ends as soon as the cut holds.
constexpr auto kReactWithin = 30s;
constexpr auto kStartWithin = 20s;

const std::string kAgent = std::string(SHADAN_BINARY_DIR) + "/agents/shadan-agent";
const std::string kController = std::string(SHADAN_BINARY_DIR) + "/controller/shadan-controller";
const std::string kAction =
    std::string(SHADAN_SOURCE_DIR) + "/integrations/fail2ban/action.d/shadan.conf";
constexpr const char* kFail2banServer = "/usr/bin/fail2ban-server";
constexpr const char* kFail2banClient = "/usr/bin/fail2ban-client";
constexpr const char* kJail = "shadan-test";
const std::string kWazuhAr = std::string(SHADAN_SOURCE_DIR) + "/integrations/wazuh/shadan-ar";
constexpr const char* kWazuhRule = "5712";
constexpr const char* kControllerIp = "10.99.0.10";
const std::string kApi = std::string("https://") + kControllerIp + ":8443";

constexpr LabHost kHostA{"pc1", "10.20.0.2", ""};
constexpr LabHost kHostB{"pc2", "10.21.0.2", ""};  // host A's neighbour in office
constexpr LabHost kSrv{"srv", "10.30.0.2", ""};

const char* const kLabSpec = R"json({
  "name": "fail2ban",
  "description": "gw; office on two links (pc1, pc2), srv, mgmt (controller + fail2ban)",
  "nodes": [
    { "name": "gw", "role": "gateway" },
    { "name": "pc1", "role": "host", "routes": [ { "to": "default", "via": "10.20.0.1" } ] },
    { "name": "pc2", "role": "host", "routes": [ { "to": "default", "via": "10.21.0.1" } ] },
    { "name": "srv", "role": "host", "routes": [ { "to": "default", "via": "10.30.0.1" } ] },
    { "name": "mgmt", "role": "host", "routes": [ { "to": "default", "via": "10.99.0.1" } ] }
  ],
  "links": [
    { "a": { "node": "gw", "ifname": "office1", "addresses": ["10.20.0.1/24"] },
      "b": { "node": "pc1", "ifname": "eth0", "addresses": ["10.20.0.2/24"] } },
    { "a": { "node": "gw", "ifname": "office2", "addresses": ["10.21.0.1/24"] },
      "b": { "node": "pc2", "ifname": "eth0", "addresses": ["10.21.0.2/24"] } },
    { "a": { "node": "gw", "ifname": "servers", "addresses": ["10.30.0.1/24"] },
      "b": { "node": "srv", "ifname": "eth0", "addresses": ["10.30.0.2/24"] } },
    { "a": { "node": "gw", "ifname": "mgmt", "addresses": ["10.99.0.1/24"] },
      "b": { "node": "mgmt", "ifname": "eth0", "addresses": ["10.99.0.10/24"] } }
  ]
})json";

const char* const kPolicy = R"json({
  "shadan_policy": 1,
  "name": "fail2ban-lab",
  "segments": {
    "office":   {"description": "office PCs on two links",
                 "prefixes": ["10.20.0.0/24", "10.21.0.0/24"]},
    "servers":  {"description": "internal servers", "prefixes": ["10.30.0.0/24"]},
    "mgmt":     {"description": "controller, fail2ban", "prefixes": ["10.99.0.0/24"],
                 "protected": true},
    "internet": {"description": "everything not listed above", "default": true}
  },
  "gateways": {"gw": {"borders": ["office", "servers", "mgmt", "internet"]}},
  "management": {"always_allow": [
    {"description": "controller API", "prefix": "10.99.0.10/32", "proto": "tcp", "port": 8443},
    {"description": "agent hub", "prefix": "10.99.0.10/32", "proto": "tcp", "port": 8444}]},
  "profiles": {"full": {"description": "cut from everything except management"}}
})json";

class Fail2banTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "integration tests need root (network namespaces)";
    char pattern[] = "/tmp/shadan-f2b-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    runner_ = std::make_unique<ProcessCommandRunner>(std::chrono::seconds(30));
    auto spec = parseLabSpec(kLabSpec, "fail2ban_test lab");
    ASSERT_TRUE(spec.ok()) << spec.error().message;
    lab_ = std::make_unique<Lab>(*spec, "b" + std::to_string(::getpid() % 10000000), *runner_);
    auto up = lab_->up();
    ASSERT_TRUE(up.ok()) << "lab did not come up: " << up.error().message;
    ASSERT_NO_FATAL_FAILURE(makeCredentials());
    ASSERT_NO_FATAL_FAILURE(startController());
    ASSERT_NO_FATAL_FAILURE(startAgentAndEnroll());
  }

  void TearDown() override {
    if (dir_.empty()) return;
    if (HasFailure()) dumpState();
    // fail2ban first: its actions talk to the controller. Its actionflush does nothing, so a
    // stop lifts nothing; the lab goes away anyway.
    if (fail2ban_) {
      (void)runner_->run(client({"stop"}));
      auto stopped = fail2ban_->stop(SIGTERM, 10s);
      EXPECT_TRUE(stopped.ok()) << stopped.error().message;
    }
    fail2ban_.reset();
    if (agent_) (void)agent_->terminate();
    agent_.reset();
    if (controller_) (void)controller_->stop(SIGTERM, 10s);
    controller_.reset();
    lab_.reset();  // deletes the namespaces
    if (HasFailure()) {
      std::cerr << "kept " << dir_ << " (logs, config, state)\n";
    } else {
      std::filesystem::remove_all(dir_);
    }
  }

  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  std::string ns(const char* node) const { return lab_->nsName(node); }

  void writeFile(const std::string& name, const std::string& text, mode_t mode = 0644) {
    {
      std::ofstream out(file(name), std::ios::trunc);
      out << text;
      ASSERT_TRUE(out.good()) << "writing " << file(name);
    }
    ASSERT_EQ(::chmod(file(name).c_str(), mode), 0) << file(name);
  }

  // A bearer token, as a header file (`curl -H @FILE`) and a token file (both 0600); returns
  // the hash for the config.
  std::string makeToken(const std::string& name) {
    const std::string token = sha256Hex("shadan-f2b-test-" + name + std::to_string(::getpid()));
    writeFile(name + ".header", "Authorization: Bearer " + token + "\n", 0600);
    writeFile(name + ".token", token + "\n", 0600);
    return sha256Hex(token);
  }

  // CA and certificates, the controller's signing key, the agent's key, the trust file, the
  // policy, the tokens (operator sato, detector f2b scoped to office) and the config.
  void makeCredentials() {
    ASSERT_TRUE(initCertificateAuthority(file("ca"), "fail2ban lab CA").ok());
    auto server = issueCertificate(
        file("ca"), CertificateRequest{"controller", true, {}, {kControllerIp}}, file("ctl"));
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_pin_ = server->spki_pin;
    std::filesystem::create_directories(file("agent-tls"));
    std::filesystem::copy_file(caPaths(file("ca")).cert, file("agent-tls/ca.crt"));
    auto client_cert = issueCertificate(file("ca"), CertificateRequest{"gw", false, {}, {}},
                                        file("agent-tls/agent"));
    ASSERT_TRUE(client_cert.ok()) << client_cert.error().message;

    const Ed25519KeyPair controller_key = Ed25519KeyPair::generate();
    const Ed25519KeyPair agent_key = Ed25519KeyPair::generate();
    ASSERT_TRUE(writePrivateKeyFile(file("signing.key"), controller_key, "controller").ok());
    std::filesystem::create_directories(file("agent-state"));
    ::chmod(file("agent-state").c_str(), 0700);
    ASSERT_TRUE(writePrivateKeyFile(file("agent-state/agent.key"), agent_key, "agent").ok());
    ASSERT_TRUE(
        writePublicKeyFile(file("agent-state/agent.pub"), agent_key.publicKey(), "agent").ok());
    const auto entry = [](const Ed25519KeyPair& key, const char* identity, const char* role) {
      const Ed25519Signer signer(Ed25519KeyPair::fromSeed(key.seed()).value());
      return json{{"keyid", signer.keyId()},
                  {"public_key", base64Encode(signer.publicKey())},
                  {"identity", identity},
                  {"roles", {role}}};
    };
    const json trust = {
        {"shadan_trust", 1},
        {"version", 1},
        {"expires_at", formatRfc3339(toUnixMillis(std::chrono::system_clock::now()) + 86'400'000)},
        {"keys",
         {entry(controller_key, "controller", "controller"),
          entry(agent_key, "agent:gw", "agent")}}};
    ASSERT_NO_FATAL_FAILURE(writeFile("trust.json", trust.dump()));
    ASSERT_NO_FATAL_FAILURE(writeFile("policy.json", kPolicy));

    std::filesystem::create_directories(file("ctl-state"));
    ::chmod(file("ctl-state").c_str(), 0700);
    const json config = {
        {"api", {{"listen", std::string(kControllerIp) + ":8443"}}},
        {"agent_hub", {{"listen", std::string(kControllerIp) + ":8444"}, {"heartbeat_s", 10}}},
        {"tls", {{"ca", file("ca/ca.crt")}, {"cert", file("ctl.crt")}, {"key", file("ctl.key")}}},
        {"policy", file("policy.json")},
        {"trust", file("trust.json")},
        {"signing_key", file("signing.key")},
        {"state_dir", file("ctl-state")},
        {"tokens",
         {{{"name", "sato"}, {"role", "operator"}, {"sha256", makeToken("sato")}},
          {{"name", "f2b"},
           {"role", "detector"},
           {"sha256", makeToken("f2b")},
           {"segments", {"office"}}},
          {{"name", "wazuh"},
           {"role", "detector"},
           {"sha256", makeToken("wazuh")},
           {"segments", {"office"}}}}},
        {"response",
         {{"rules",
           {{{"name", "f2b-ban"},
             {"match", {{"detector", "f2b"}, {"format", "shadan"}, {"rules", {kJail}}}},
             {"action", "quarantine-host"},
             {"host", "src"},
             {"ttl_s", 600}},
            {{"name", "wazuh-ban"},
             {"match", {{"detector", "wazuh"}, {"format", "shadan"}, {"rules", {kWazuhRule}}}},
             {"action", "quarantine-host"},
             {"host", "src"},
             {"ttl_s", 600}}}}}},
        {"log_level", "debug"}};
    ASSERT_NO_FATAL_FAILURE(writeFile("controller.json", config.dump(2)));
  }

  // curl inside mgmt against the controller's API, as `who` (its header file). nullopt when
  // curl itself failed (no answer); otherwise the HTTP status and the parsed body.
  struct Answer {
    int status = 0;
    json body;
    std::string text;
  };
  std::optional<Answer> api(const std::string& who, const std::string& method,
                            const std::string& path, const std::string& body = "") {
    std::vector<std::string> argv = {"ip",
                                     "netns",
                                     "exec",
                                     ns("mgmt"),
                                     "curl",
                                     "--silent",
                                     "--show-error",
                                     "--max-time",
                                     "10",
                                     "--cacert",
                                     file("ca/ca.crt"),
                                     "--header",
                                     "@" + file(who + ".header"),
                                     "--request",
                                     method,
                                     "--write-out",
                                     "\n%{http_code}"};
    if (!body.empty()) {
      argv.insert(argv.end(),
                  {"--header", "Content-Type: application/json", "--data-binary", body});
    }
    argv.push_back(kApi + path);
    auto ran = runner_->run(argv);
    if (!ran.ok() || ran->exit_code != 0) return std::nullopt;
    const size_t cut = ran->out.rfind('\n');
    Answer answer;
    answer.text = ran->out.substr(0, cut);
    answer.status = std::atoi(ran->out.c_str() + cut + 1);
    answer.body = json::parse(answer.text, nullptr, false);
    return answer;
  }

  void startController() {
    auto started = DaemonChild::start(
        {ns("mgmt"), {kController, "run", "--config", file("controller.json")}, file("ctl.log")});
    ASSERT_TRUE(started.ok()) << started.error().message;
    controller_ = std::move(started).value();
    const bool up = waitUntil(
        [&] {
          auto status = api("sato", "GET", "/v1/status");
          return (status && status->status == 200) || !controller_->running();
        },
        kStartWithin, 100ms);
    ASSERT_TRUE(up && controller_->running()) << "the controller's API did not come up; log:\n"
                                              << readWholeFile(file("ctl.log"));
  }

  // The agent on gw dials the hub; an operator approves its enrollment (no trust on first use).
  void startAgentAndEnroll() {
    AgentProcessOptions options;
    options.netns = ns("gw");
    options.binary = kAgent;
    options.arguments = {"--policy",         file("policy.json"),
                         "--gateway",        "gw",
                         "--state-dir",      file("agent-state"),
                         "--trust",          file("trust.json"),
                         "--controller",     std::string(kControllerIp) + ":8444",
                         "--tls-dir",        file("agent-tls"),
                         "--controller-pin", server_pin_,
                         "--log-level",      "info"};
    options.log_path = file("agent.log");
    auto started = AgentProcess::start(options);
    ASSERT_TRUE(started.ok()) << started.error().message;
    agent_ = std::move(started).value();
    const auto agentIs = [&](const char* status) {
      auto agents = api("sato", "GET", "/v1/agents");
      if (!agents || agents->status != 200) return false;
      for (const auto& agent : agents->body.value("agents", json::array())) {
        if (agent.value("agent_id", "") == "gw" && agent.value("status", "") == status &&
            agent.value("connected", false)) {
          return true;
        }
      }
      return false;
    };
    ASSERT_TRUE(waitUntil([&] { return agentIs("pending"); }, kStartWithin, 100ms))
        << "the agent did not dial in";
    auto approved = api("sato", "POST", "/v1/agents/gw/approve",
                        R"({"reason":"fail2ban_test: the lab's gateway"})");
    ASSERT_TRUE(approved.has_value());
    ASSERT_EQ(approved->status, 200) << approved->text;
    ASSERT_TRUE(waitUntil([&] { return agentIs("approved"); }, kStartWithin, 100ms));
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

  bool tcp(const LabHost& from, const LabHost& to) {
    return tcpReaches(*lab_, from, to, /*v6=*/false, 0, kShouldFail);
  }

  TrafficCheck traffic() { return TrafficCheck(*lab_, kShouldFail, kShouldPass); }

  // The controller's recent decisions (GET /v1/alerts), for messages.
  std::string recentAlerts() {
    auto alerts = api("sato", "GET", "/v1/alerts?limit=10");
    return alerts ? alerts->text : std::string("(no answer)");
  }

  void dumpState() {
    for (const char* log : {"fail2ban.log", "fail2ban.out", "ctl.log", "agent.log"}) {
      std::cerr << "---- " << file(log) << " ----\n" << readWholeFile(file(log));
    }
    if (!lab_) return;  // the lab spec did not parse: nothing runs
    if (controller_) std::cerr << "---- controller decisions ----\n" << recentAlerts() << "\n";
    auto ruleset = runner_->run({"ip", "netns", "exec", ns("gw"), "nft", "list", "ruleset"});
    std::cerr << "---- gw: nft list ruleset ----\n"
              << (ruleset.ok() ? ruleset->out + ruleset->err : ruleset.error().message);
  }

  std::filesystem::path dir_;
  std::unique_ptr<ProcessCommandRunner> runner_;
  std::unique_ptr<Lab> lab_;
  std::string server_pin_;
  std::unique_ptr<DaemonChild> controller_;
  std::unique_ptr<AgentProcess> agent_;
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
  ASSERT_TRUE(waitUntil([&] { return !tcp(kHostA, kSrv); }, kReactWithin, 200ms))
      << "host A was not cut within " << kReactWithin.count() << " s of the log line; "
      << "decisions: " << recentAlerts();
  traffic()
      .tcp(kHostA, kSrv, false, 0, false)
      .tcp(kSrv, kHostA, false, 0, false)
      .icmp(kHostA, kSrv, false, false)
      .icmp(kSrv, kHostA, false, false)
      .tcp(kHostB, kSrv, false, 0, true)
      .tcp(kSrv, kHostB, false, 0, true)
      .icmp(kHostB, kSrv, false, true)
      .check("banned");
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

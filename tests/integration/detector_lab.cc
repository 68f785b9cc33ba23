#include "tests/integration/detector_lab.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>

#include "cli/ca_cmd.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/sha256.h"

namespace shadan {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::string kAgent = std::string(SHADAN_BINARY_DIR) + "/agents/shadan-agent";
const std::string kController = std::string(SHADAN_BINARY_DIR) + "/controller/shadan-controller";

const char* const kLabSpec = R"json({
  "name": "detectors",
  "description": "gw; office on two links (pc1, pc2), srv, mgmt (controller + detector)",
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
  "name": "detector-lab",
  "segments": {
    "office":   {"description": "office PCs on two links",
                 "prefixes": ["10.20.0.0/24", "10.21.0.0/24"]},
    "servers":  {"description": "internal servers", "prefixes": ["10.30.0.0/24"]},
    "mgmt":     {"description": "controller, detector", "prefixes": ["10.99.0.0/24"],
                 "protected": true},
    "internet": {"description": "everything not listed above", "default": true}
  },
  "gateways": {"gw": {"borders": ["office", "servers", "mgmt", "internet"]}},
  "management": {"always_allow": [
    {"description": "controller API", "prefix": "10.99.0.10/32", "proto": "tcp", "port": 8443},
    {"description": "agent hub", "prefix": "10.99.0.10/32", "proto": "tcp", "port": 8444}]},
  "profiles": {"full": {"description": "cut from everything except management"}}
})json";

}  // namespace

void DetectorLabTest::SetUp() {
  if (::geteuid() != 0) GTEST_SKIP() << "integration tests need root (network namespaces)";
  std::string pattern = std::string("/tmp/shadan-detector-") + labTag() + "-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  dir_ = pattern;
  runner_ = std::make_unique<ProcessCommandRunner>(std::chrono::seconds(30));
  auto spec = parseLabSpec(kLabSpec, "detector lab");
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  lab_ = std::make_unique<Lab>(*spec, labTag() + std::to_string(::getpid() % 10000000), *runner_);
  auto up = lab_->up();
  ASSERT_TRUE(up.ok()) << "lab did not come up: " << up.error().message;
  ASSERT_NO_FATAL_FAILURE(makeCredentials());
  ASSERT_NO_FATAL_FAILURE(startController());
  ASSERT_NO_FATAL_FAILURE(startAgentAndEnroll());
}

void DetectorLabTest::TearDown() {
  if (dir_.empty()) return;
  if (HasFailure()) dumpState();
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

void DetectorLabTest::writeFile(const std::string& name, const std::string& text, mode_t mode) {
  {
    std::ofstream out(file(name), std::ios::trunc);
    out << text;
    ASSERT_TRUE(out.good()) << "writing " << file(name);
  }
  ASSERT_EQ(::chmod(file(name).c_str(), mode), 0) << file(name);
}

std::string DetectorLabTest::token(const std::string& name) const {
  return sha256Hex("shadan-detector-test-" + name + std::to_string(::getpid()));
}

// The header file and the token file (both 0600); returns the hash for the config.
std::string DetectorLabTest::makeToken(const std::string& name) {
  const std::string bearer = token(name);
  writeFile(name + ".header", "Authorization: Bearer " + bearer + "\n", 0600);
  writeFile(name + ".token", bearer + "\n", 0600);
  return sha256Hex(bearer);
}

void DetectorLabTest::makeCredentials() {
  ASSERT_TRUE(initCertificateAuthority(file("ca"), "detector lab CA").ok());
  auto server = issueCertificate(
      file("ca"), CertificateRequest{"controller", true, {}, {kDetectorControllerIp}}, file("ctl"));
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
       {entry(controller_key, "controller", "controller"), entry(agent_key, "agent:gw", "agent")}}};
  ASSERT_NO_FATAL_FAILURE(writeFile("trust.json", trust.dump()));
  ASSERT_NO_FATAL_FAILURE(writeFile("policy.json", kPolicy));

  std::filesystem::create_directories(file("ctl-state"));
  ::chmod(file("ctl-state").c_str(), 0700);
  json tokens = json::array();
  tokens.push_back(json{{"name", "sato"}, {"role", "operator"}, {"sha256", makeToken("sato")}});
  for (const std::string& name : detectorNames()) {
    tokens.push_back(json{{"name", name},
                          {"role", "detector"},
                          {"sha256", makeToken(name)},
                          {"segments", {"office"}}});
  }
  const std::string ip = kDetectorControllerIp;
  const json config = {
      {"api", {{"listen", ip + ":8443"}}},
      {"agent_hub", {{"listen", ip + ":8444"}, {"heartbeat_s", 10}}},
      {"tls", {{"ca", file("ca/ca.crt")}, {"cert", file("ctl.crt")}, {"key", file("ctl.key")}}},
      {"policy", file("policy.json")},
      {"trust", file("trust.json")},
      {"signing_key", file("signing.key")},
      {"state_dir", file("ctl-state")},
      {"tokens", tokens},
      {"response", {{"rules", responseRules()}}},
      {"log_level", "debug"}};
  ASSERT_NO_FATAL_FAILURE(writeFile("controller.json", config.dump(2)));
}

std::optional<DetectorLabTest::Answer> DetectorLabTest::api(const std::string& who,
                                                            const std::string& method,
                                                            const std::string& path,
                                                            const std::string& body) {
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
    argv.insert(argv.end(), {"--header", "Content-Type: application/json", "--data-binary", body});
  }
  argv.push_back(std::string(kDetectorApi) + path);
  auto ran = runner_->run(argv);
  if (!ran.ok() || ran->exit_code != 0) return std::nullopt;
  const size_t cut = ran->out.rfind('\n');
  Answer answer;
  answer.text = ran->out.substr(0, cut);
  answer.status = std::atoi(ran->out.c_str() + cut + 1);
  answer.body = json::parse(answer.text, nullptr, false);
  return answer;
}

std::string DetectorLabTest::recentAlerts() {
  auto alerts = api("sato", "GET", "/v1/alerts?limit=10");
  return alerts ? alerts->text : std::string("(no answer)");
}

void DetectorLabTest::startController() {
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
void DetectorLabTest::startAgentAndEnroll() {
  AgentProcessOptions options;
  options.netns = ns("gw");
  options.binary = kAgent;
  options.arguments = {"--policy",         file("policy.json"),
                       "--gateway",        "gw",
                       "--state-dir",      file("agent-state"),
                       "--trust",          file("trust.json"),
                       "--controller",     std::string(kDetectorControllerIp) + ":8444",
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
                      R"({"reason":"detector lab: the lab's gateway"})");
  ASSERT_TRUE(approved.has_value());
  ASSERT_EQ(approved->status, 200) << approved->text;
  ASSERT_TRUE(waitUntil([&] { return agentIs("approved"); }, kStartWithin, 100ms));
}

void DetectorLabTest::dumpState() {
  std::vector<std::string> logs = logs_to_dump_;
  logs.insert(logs.end(), {"ctl.log", "agent.log"});
  for (const std::string& log : logs) {
    std::cerr << "---- " << file(log) << " ----\n" << readWholeFile(file(log));
  }
  if (!lab_) return;  // the lab spec did not parse: nothing runs
  if (controller_) std::cerr << "---- controller decisions ----\n" << recentAlerts() << "\n";
  auto ruleset = runner_->run({"ip", "netns", "exec", ns("gw"), "nft", "list", "ruleset"});
  std::cerr << "---- gw: nft list ruleset ----\n"
            << (ruleset.ok() ? ruleset->out + ruleset->err : ruleset.error().message);
}

void DetectorLabTest::expectQuarantined(const LabHost& host, const LabHost& neighbour,
                                        std::chrono::seconds within, const std::string& trigger) {
  ASSERT_TRUE(waitUntil([&] { return !tcp(host, kDetectorServer); }, within, 200ms))
      << host.node << " (" << host.v4 << ")"
      << " was not cut within " << within.count() << " s of " << trigger
      << "; decisions: " << recentAlerts();
  traffic()
      .tcp(host, kDetectorServer, false, 0, false)
      .tcp(kDetectorServer, host, false, 0, false)
      .icmp(host, kDetectorServer, false, false)
      .icmp(kDetectorServer, host, false, false)
      .tcp(neighbour, kDetectorServer, false, 0, true)
      .tcp(kDetectorServer, neighbour, false, 0, true)
      .icmp(neighbour, kDetectorServer, false, true)
      .check("quarantined after " + trigger);
}

}  // namespace shadan

#include "bench/loadgen/fleet_setup.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "cli/ca_cmd.h"
#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/sha256.h"
#include "controller/config.h"
#include "controller/etcd_store.h"
#include "controller/store.h"

namespace shadan::loadgen {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kOperatorNames[] = {"lg-alice", "lg-bob"};
constexpr int64_t kTrustValidityMs = 24LL * 3600 * 1000;

Status makePrivateDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0) {
    return makeError(ErrorCode::kIo, "mkdir " + path + ": " + std::strerror(errno));
  }
  return okStatus();
}

// A loopback port nobody listens on now (the kernel's choice for port 0).
Result<uint16_t> freeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(ErrorCode::kIo, std::string("socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  if (!bound) return makeError(ErrorCode::kIo, std::string("bind: ") + std::strerror(errno));
  return ntohs(address.sin_port);
}

std::string agentId(size_t index) {
  char id[32];
  std::snprintf(id, sizeof id, "lg-%05zu", index + 1);
  return id;
}

std::string newToken() { return hexEncode(Ed25519KeyPair::generate().seed()); }

// `controllers`: each one's (hub, API) ports, allowed as management.
Json policyDoc(const std::vector<std::string>& gateways,
               const std::vector<std::pair<uint16_t, uint16_t>>& controllers) {
  Json borders = Json::object();
  for (const std::string& id : gateways) {
    borders[id] = {{"borders", Json::array({kFleetSegment, "internet"})}};
  }
  Json allow = Json::array();
  for (const auto& [hub_port, api_port] : controllers) {
    allow.push_back({{"description", "agent channel to a controller"},
                     {"prefix", "127.0.0.1/32"},
                     {"proto", "tcp"},
                     {"port", hub_port}});
    allow.push_back({{"description", "operator API of a controller"},
                     {"prefix", "127.0.0.1/32"},
                     {"proto", "tcp"},
                     {"port", api_port}});
  }
  return {{"shadan_policy", kPolicyFormatVersion},
          {"name", "loadgen"},
          {"segments",
           {{kFleetSegment,
             {{"description", "the segment every simulated gateway borders"},
              {"prefixes", Json::array({"10.64.0.0/12"})}}},
            {"internet", {{"description", "everything else"}, {"default", true}}}}},
          {"gateways", std::move(borders)},
          {"management", {{"always_allow", std::move(allow)}}},
          {"profiles", {{"full", {{"description", "cut from everything except management"}}}}}};
}

Json trustDoc(const Ed25519PublicKey& controller, const std::vector<Operator>& operators) {
  Json keys = Json::array({{{"keyid", ed25519KeyId(controller)},
                            {"public_key", base64Encode(controller)},
                            {"identity", "controller"},
                            {"roles", Json::array({"controller"})}}});
  for (const Operator& op : operators) {
    keys.push_back({{"keyid", op.key->keyId()},
                    {"public_key", base64Encode(op.key->publicKey())},
                    {"identity", "op:" + op.name},
                    {"roles", Json::array({"operator"})}});
  }
  const int64_t expires = toUnixMillis(std::chrono::system_clock::now()) + kTrustValidityMs;
  return {{"shadan_trust", kTrustFormatVersion},
          {"version", 1},
          {"expires_at", formatRfc3339(expires - expires % 1000)},
          {"keys", std::move(keys)}};
}

// The agents' keys and client certificates, made by `threads` workers side by side.
Status makeAgentCredentials(const CertificateIssuer& issuer, const std::string& dir,
                            unsigned threads, std::vector<SimAgentSetup>& agents) {
  std::mutex mutex;
  std::optional<Error> failure;
  auto work = [&](size_t first) {
    for (size_t i = first; i < agents.size(); i += threads) {
      SimAgentSetup& agent = agents[i];
      agent.key = std::make_shared<Ed25519Signer>(Ed25519KeyPair::generate());
      CertificateRequest request;
      request.common_name = agent.id;
      request.days = 2;
      auto issued = issuer.issue(request, dir + "/" + agent.id, FileSync::kNone);
      if (!issued.ok()) {
        std::lock_guard lock(mutex);
        if (!failure) failure = issued.error();
        return;
      }
      agent.cert_file = issued->cert_path;
      agent.key_file = issued->key_path;
    }
  };
  std::vector<std::thread> workers;
  for (unsigned t = 1; t < threads; ++t) workers.emplace_back(work, t);
  work(0);
  for (auto& worker : workers) worker.join();
  if (failure) return *failure;
  return okStatus();
}

}  // namespace

Result<Fleet> makeFleet(const FleetRequest& request) {
  if (request.agents == 0 || request.agents > kMaxAgents) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--agents must be 1.." + std::to_string(kMaxAgents));
  }
  if (request.controllers == 0 || request.controllers > kMaxControllers) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--controllers must be 1.." + std::to_string(kMaxControllers));
  }
  if (request.controllers > 1 && !request.etcd) {
    return makeError(ErrorCode::kInvalidArgument, "several controllers need the etcd store");
  }
  Fleet fleet;
  fleet.dir = request.dir;
  SHADAN_RETURN_IF_ERROR(makePrivateDir(fleet.dir));
  for (const char* sub : {"/ca", "/controller", "/agents"}) {
    SHADAN_RETURN_IF_ERROR(makePrivateDir(fleet.dir + sub));
  }
  for (size_t k = 1; k <= request.controllers; ++k) {
    const bool one = request.controllers == 1;
    FleetController controller;
    controller.name = one ? "lg-controller" : "lg-controller-" + std::to_string(k);
    const std::string dir =
        one ? fleet.dir + "/controller" : fleet.dir + "/controller-" + std::to_string(k);
    if (!one) SHADAN_RETURN_IF_ERROR(makePrivateDir(dir));
    controller.state_dir = dir + "/state";
    SHADAN_RETURN_IF_ERROR(makePrivateDir(controller.state_dir));
    controller.config = dir + "/controller.json";
    controller.log = dir + "/log";
    SHADAN_ASSIGN_OR_RETURN(controller.api_port, freeLoopbackPort());
    SHADAN_ASSIGN_OR_RETURN(controller.hub_port, freeLoopbackPort());
    fleet.controllers.push_back(std::move(controller));
  }
  if (request.etcd) {
    fleet.etcd = true;
    // Three members for several controllers: the cluster that survives losing one (docs/ha.md).
    const size_t members = request.controllers > 1 ? 3 : 1;
    for (size_t k = 1; k <= members; ++k) {
      FleetEtcdMember member;
      member.name = members == 1 ? "lg" : "lg-" + std::to_string(k);
      member.dir = members == 1 ? fleet.dir + "/etcd" : fleet.dir + "/etcd-" + std::to_string(k);
      SHADAN_ASSIGN_OR_RETURN(member.client_port, freeLoopbackPort());
      SHADAN_ASSIGN_OR_RETURN(member.peer_port, freeLoopbackPort());
      fleet.etcd_members.push_back(std::move(member));
    }
    // A fan-out's record is two keys per gateway and its delivery four, in one txn per order or
    // per delivery chunk of up to 256; a signed dispatch is about 11 kB on the gateway's wire
    // (two keys, base64): docs/ha.md sizing.
    fleet.etcd_max_txn_ops = std::max<size_t>(4 * request.agents + 64, 128);
    fleet.etcd_max_request_bytes = std::max<size_t>(16384 * request.agents, 10 << 20);
  }

  const std::string ca_dir = fleet.dir + "/ca";
  SHADAN_RETURN_IF_ERROR(initCertificateAuthority(ca_dir, "shadan-loadgen CA", 2));
  SHADAN_ASSIGN_OR_RETURN(const CertificateIssuer issuer, CertificateIssuer::load(ca_dir));
  CertificateRequest server;
  server.common_name = "controller.loadgen";
  server.server = true;
  server.ip_addresses = {"127.0.0.1"};
  server.days = 2;
  SHADAN_ASSIGN_OR_RETURN(auto tls, issuer.issue(server, fleet.dir + "/controller/tls"));
  fleet.endpoint.host = "127.0.0.1";
  fleet.endpoint.port = fleet.controllers[0].hub_port;
  for (size_t k = 1; k < fleet.controllers.size(); ++k) {
    fleet.endpoint.more.push_back({"127.0.0.1", fleet.controllers[k].hub_port});
  }
  fleet.endpoint.ca_file = caPaths(ca_dir).cert;
  fleet.endpoint.controller_pin = tls.spki_pin;

  const Ed25519KeyPair controller_key = Ed25519KeyPair::generate();
  const std::string signing_key = fleet.dir + "/controller/signing.key";
  SHADAN_RETURN_IF_ERROR(writePrivateKeyFile(signing_key, controller_key, "controller"));
  for (const char* name : kOperatorNames) {
    fleet.operators.push_back(
        Operator{name, newToken(), std::make_shared<Ed25519Signer>(Ed25519KeyPair::generate())});
  }
  const std::string trust_file = fleet.dir + "/trust.json";
  const std::string trust_text = trustDoc(controller_key.publicKey(), fleet.operators).dump(2);
  SHADAN_ASSIGN_OR_RETURN(fleet.trust, parseTrust(trust_text, trust_file));
  SHADAN_RETURN_IF_ERROR(writeFileAtomically(trust_file, trust_text, 0644, ExistingFile::kRefuse));

  std::vector<std::string> ids;
  for (size_t i = 0; i < request.agents; ++i) ids.push_back(agentId(i));
  const std::string policy_file = fleet.dir + "/policy.json";
  std::vector<std::pair<uint16_t, uint16_t>> ports;
  for (const FleetController& controller : fleet.controllers) {
    ports.emplace_back(controller.hub_port, controller.api_port);
  }
  const std::string policy_text = policyDoc(ids, ports).dump(1);
  SHADAN_RETURN_IF_ERROR(parsePolicy(policy_text, policy_file));  // the controller loads it
  SHADAN_RETURN_IF_ERROR(
      writeFileAtomically(policy_file, policy_text, 0644, ExistingFile::kRefuse));
  SHADAN_ASSIGN_OR_RETURN(auto one, parsePolicy(policyDoc({ids[0]}, ports).dump(), "policy"));
  fleet.agent_policy = std::move(one.policy);

  Json tokens = Json::array();
  for (const Operator& op : fleet.operators) {
    tokens.push_back({{"name", op.name}, {"role", "operator"}, {"sha256", sha256Hex(op.token)}});
  }
  Json endpoints = Json::array();
  for (const FleetEtcdMember& member : fleet.etcd_members) {
    endpoints.push_back("http://127.0.0.1:" + std::to_string(member.client_port));
  }
  for (const FleetController& controller : fleet.controllers) {
    Json config = {
        {"api", {{"listen", "127.0.0.1:" + std::to_string(controller.api_port)}}},
        // Every simulated gateway dials from 127.0.0.1, where a real fleet has an address each:
        // the per-address handshake limit is lifted to the overall one (its default), or most of
        // the fleet would be refused and dial again at every connect; and the address's bucket
        // of failures to one per gateway a minute, or a few thousand handshakes timing out in a
        // reconnect storm would lock the whole fleet out together.
        {"agent_hub",
         {{"listen", "127.0.0.1:" + std::to_string(controller.hub_port)},
          {"limits",
           {{"max_handshakes_per_peer", controller::HubLimits{}.max_handshakes},
            {"peer_failures_burst", std::max<size_t>(request.agents, 20)},
            {"peer_failures_per_min", std::max<size_t>(request.agents, 60)}}}}},
        {"tls", {{"ca", caPaths(ca_dir).cert}, {"cert", tls.cert_path}, {"key", tls.key_path}}},
        {"policy", policy_file},
        {"trust", trust_file},
        {"signing_key", signing_key},
        {"state_dir", controller.state_dir},
        {"log_level", request.controller_log_level},
        {"tokens", tokens}};
    if (fleet.etcd) {
      config["store"] = {
          {"kind", "etcd"}, {"endpoints", endpoints}, {"controller_name", controller.name}};
    }
    SHADAN_RETURN_IF_ERROR(
        writeFileAtomically(controller.config, config.dump(2), 0600, ExistingFile::kRefuse));
  }

  fleet.agents.resize(request.agents);
  for (size_t i = 0; i < request.agents; ++i) {
    fleet.agents[i].index = i;
    fleet.agents[i].id = ids[i];
  }
  const auto started = std::chrono::steady_clock::now();
  SHADAN_RETURN_IF_ERROR(makeAgentCredentials(issuer, fleet.dir + "/agents",
                                              std::max(1u, request.threads), fleet.agents));
  fleet.credentials_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return fleet;
}

Policy agentPolicy(const Fleet& fleet, const std::string& id) {
  Policy policy = fleet.agent_policy;
  Gateway gateway = policy.gateways.begin()->second;
  gateway.id = id;
  policy.gateways.clear();
  policy.gateways.emplace(id, std::move(gateway));
  return policy;
}

SimEndpoint agentEndpoint(const Fleet& fleet, size_t index) {
  SimEndpoint endpoint = fleet.endpoint;
  const size_t n = fleet.controllers.size();
  endpoint.more.clear();
  for (size_t k = 0; k < n; ++k) {
    const FleetController& controller = fleet.controllers[(index + k) % n];
    if (k == 0) {
      endpoint.port = controller.hub_port;
    } else {
      endpoint.more.push_back({"127.0.0.1", controller.hub_port});
    }
  }
  return endpoint;
}

std::vector<std::string> etcdArgv(const Fleet& fleet, size_t member, const std::string& etcd_bin) {
  const auto peerUrl = [](const FleetEtcdMember& m) {
    return "http://127.0.0.1:" + std::to_string(m.peer_port);
  };
  const FleetEtcdMember& self = fleet.etcd_members.at(member);
  const std::string client = "http://127.0.0.1:" + std::to_string(self.client_port);
  std::string cluster;
  for (const FleetEtcdMember& m : fleet.etcd_members) {
    cluster += (cluster.empty() ? "" : ",") + m.name + "=" + peerUrl(m);
  }
  return {etcd_bin,
          "--name=" + self.name,
          "--data-dir=" + self.dir + "/data",
          "--listen-client-urls=" + client,
          "--advertise-client-urls=" + client,
          "--listen-peer-urls=" + peerUrl(self),
          "--initial-advertise-peer-urls=" + peerUrl(self),
          "--initial-cluster=" + cluster,
          "--initial-cluster-token=" + fleet.dir,
          "--max-txn-ops=" + std::to_string(fleet.etcd_max_txn_ops),
          "--max-request-bytes=" + std::to_string(fleet.etcd_max_request_bytes),
          "--logger=zap",
          "--log-level=warn"};
}

Status enrollFleet(const Fleet& fleet) {
  SHADAN_ASSIGN_OR_RETURN(auto config,
                          controller::loadControllerConfig(fleet.controllers.at(0).config));
  SHADAN_ASSIGN_OR_RETURN(auto store,
                          controller::openConfiguredStore(config.store, config.state_dir));
  const int64_t now = toUnixMillis(std::chrono::system_clock::now());
  return store->transaction([&]() -> Status {
    for (const SimAgentSetup& agent : fleet.agents) {
      controller::AgentRecord record;
      record.agent_id = agent.id;
      record.keyid = agent.key->keyId();
      record.public_key = agent.key->publicKey();
      record.status = controller::AgentStatus::kApproved;
      record.first_seen_ms = now;
      record.last_seen_ms = now;
      SHADAN_RETURN_IF_ERROR(store->putAgent(record));
    }
    return okStatus();
  });
}

}  // namespace shadan::loadgen

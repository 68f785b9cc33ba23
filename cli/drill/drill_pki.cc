#include "cli/drill/drill_pki.h"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "cli/ca_cmd.h"
#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/sha256.h"
#include "common/trust.h"

namespace shadan::drill {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int64_t kTrustValidityMs = 24LL * 3600 * 1000;
constexpr int kLeafDays = 2;

Status makePrivateDir(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return makeError(ErrorCode::kIo, "mkdir " + path + ": " + ec.message());
  if (::chmod(path.c_str(), 0700) != 0) {
    return makeError(ErrorCode::kIo, "chmod 0700 " + path);
  }
  return okStatus();
}

// 32 random bytes as hex (a libsodium key's seed is as good a source as any).
std::string newToken() { return hexEncode(Ed25519KeyPair::generate().seed()); }

Result<Ed25519KeyPair> newKey(const std::string& prefix, const std::string& role) {
  Ed25519KeyPair key = Ed25519KeyPair::generate();
  SHADAN_RETURN_IF_ERROR(writePrivateKeyFile(prefix + ".key", key, role));
  SHADAN_RETURN_IF_ERROR(writePublicKeyFile(prefix + ".pub", key.publicKey(), role));
  return key;
}

}  // namespace

std::string hostPort(const std::string& address, uint16_t port) {
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

Status writeDrillTrust(const std::string& path, const std::vector<DrillTrustKey>& keys) {
  Json entries = Json::array();
  for (const DrillTrustKey& key : keys) {
    entries.push_back({{"keyid", ed25519KeyId(key.public_key)},
                       {"public_key", base64Encode(key.public_key)},
                       {"identity", key.identity},
                       {"roles", key.roles}});
  }
  const int64_t expires = toUnixMillis(std::chrono::system_clock::now()) + kTrustValidityMs;
  const TrustThresholds defaults;
  // purpose lab: the controller and agents of the drill take drill orders only, so a lab can
  // never cut for real, and these keys can never be in a production trust file.
  const Json doc = {{"shadan_trust", kTrustFormatVersion},
                    {"purpose", "lab"},
                    {"version", 1},
                    {"expires_at", formatRfc3339(expires - expires % 1000)},
                    {"keys", std::move(entries)},
                    {"thresholds",
                     {{"isolate",
                       {{"operators", defaults.isolate_operators},
                        {"controller_on_behalf", defaults.isolate_controller_on_behalf}}},
                      {"isolate_protected", {{"operators", defaults.isolate_protected_operators}}},
                      {"restore", {{"operators", defaults.restore_operators}}},
                      {"breakglass_isolate", {{"breakglass", defaults.breakglass_isolate}}}}}};
  const std::string text = doc.dump(2) + "\n";
  SHADAN_ASSIGN_OR_RETURN(const Trust parsed, parseTrust(text, path));
  if (!parsed.isLab()) return makeError(ErrorCode::kInternal, path + ": not a lab trust file");
  return writeFileAtomically(path, text, 0644, ExistingFile::kRefuse);
}

Result<DrillPki> makeDrillPki(const DrillPkiRequest& request) {
  DrillPki pki;
  pki.dir = request.dir;
  pki.api_host = request.controller_addresses.at(0);
  pki.api_port = request.api_port;
  pki.hub_port = request.hub_port;
  SHADAN_RETURN_IF_ERROR(makePrivateDir(request.dir));
  const std::string ca_dir = request.dir + "/ca";
  SHADAN_RETURN_IF_ERROR(initCertificateAuthority(ca_dir, "shadan drill CA", kLeafDays));
  pki.ca_cert = caPaths(ca_dir).cert;

  const std::string ctl = request.dir + "/controller";
  SHADAN_RETURN_IF_ERROR(makePrivateDir(ctl));
  CertificateRequest server;
  server.common_name = "controller.drill";
  server.server = true;
  server.ip_addresses = request.controller_addresses;
  server.days = kLeafDays;
  SHADAN_ASSIGN_OR_RETURN(auto issued, issueCertificate(ca_dir, server, ctl + "/tls"));
  pki.controller_pin = issued.spki_pin;
  SHADAN_ASSIGN_OR_RETURN(auto controller_key, newKey(ctl + "/signing", "controller"));
  pki.controller_pub = ctl + "/signing.pub";
  pki.controller_state_dir = ctl + "/state";
  SHADAN_RETURN_IF_ERROR(makePrivateDir(pki.controller_state_dir));

  std::vector<DrillTrustKey> trust = {{"controller", {"controller"}, controller_key.publicKey()}};
  SHADAN_RETURN_IF_ERROR(makePrivateDir(request.dir + "/operators"));
  for (const char* name : kDrillOperators) {
    const std::string prefix = request.dir + "/operators/" + name;
    // Lab-only people: drill:NAME with the drill role, which signs drill orders only and which
    // a production trust file refuses to load (docs/operations.md, "Lab trust files").
    SHADAN_ASSIGN_OR_RETURN(auto key, newKey(prefix, "drill"));
    pki.operator_keys[name] = prefix + ".key";
    trust.push_back({std::string("drill:") + name, {"drill"}, key.publicKey()});
  }
  for (const std::string& gateway : request.gateways) {
    DrillPkiGateway paths;
    paths.state_dir = request.dir + "/" + gateway + "/state";
    paths.tls_dir = request.dir + "/" + gateway + "/tls";
    SHADAN_RETURN_IF_ERROR(makePrivateDir(paths.state_dir));
    SHADAN_ASSIGN_OR_RETURN(auto key, newKey(paths.state_dir + "/agent", "agent"));
    paths.agent_pub = paths.state_dir + "/agent.pub";
    CertificateRequest client;
    client.common_name = gateway;
    client.days = kLeafDays;
    SHADAN_ASSIGN_OR_RETURN(const auto client_cert, issueIntoTlsDir(ca_dir, client, paths.tls_dir));
    (void)client_cert;
    trust.push_back({"agent:" + gateway, {"agent"}, key.publicKey()});
    pki.gateways[gateway] = std::move(paths);
  }
  pki.trust_file = request.dir + "/trust.json";
  SHADAN_RETURN_IF_ERROR(writeDrillTrust(pki.trust_file, trust));

  Json tokens = Json::array();
  for (const char* name : kDrillOperators) {
    pki.tokens[name] = newToken();
    tokens.push_back(
        {{"name", name}, {"role", "operator"}, {"sha256", sha256Hex(pki.tokens[name])}});
  }
  std::vector<std::string> detectors = request.detectors;
  if (detectors.empty()) detectors.push_back(kDrillDefaultDetector);
  for (const std::string& name : detectors) {
    if (pki.tokens.contains(name)) continue;
    pki.tokens[name] = newToken();
    tokens.push_back({{"name", name},
                      {"role", "detector"},
                      {"sha256", sha256Hex(pki.tokens[name])},
                      {"segments", {"*"}}});
  }
  Json config = {
      {"api", {{"listen", hostPort(pki.api_host, request.api_port)}}},
      {"agent_hub", {{"listen", hostPort(pki.api_host, request.hub_port)}, {"heartbeat_s", 2}}},
      {"tls", {{"ca", pki.ca_cert}, {"cert", issued.cert_path}, {"key", issued.key_path}}},
      {"policy", request.policy_file},
      {"trust", pki.trust_file},
      {"signing_key", ctl + "/signing.key"},
      {"state_dir", pki.controller_state_dir},
      {"tokens", std::move(tokens)}};
  if (!request.response.is_null()) config["response"] = request.response;
  pki.controller_config = ctl + "/controller.json";
  SHADAN_RETURN_IF_ERROR(writeFileAtomically(pki.controller_config, config.dump(2) + "\n", 0600,
                                             ExistingFile::kRefuse));
  return pki;
}

}  // namespace shadan::drill

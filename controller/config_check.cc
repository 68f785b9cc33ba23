#include "controller/config_check.h"

#include <unistd.h>

#include <filesystem>
#include <map>
#include <utility>
#include <vector>

#include "controller/alerts/response_config.h"

namespace shadan::controller {
namespace {

// "exists" (a writable directory) or "absent" (its parent exists: it will be made), or why not.
Result<std::string> stateDirectoryState(const std::filesystem::path& dir) {
  std::error_code ec;
  const auto status = std::filesystem::status(dir, ec);
  if (std::filesystem::exists(status)) {
    if (!std::filesystem::is_directory(status)) {
      return makeError(ErrorCode::kInvalidArgument,
                       "state_dir: " + dir.string() + " exists and is not a directory");
    }
    if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
      return makeError(ErrorCode::kInvalidArgument, "state_dir: " + dir.string() +
                                                        " is not writable by this user (uid " +
                                                        std::to_string(::getuid()) + ")");
    }
    return std::string("exists");
  }
  const auto parent = dir.parent_path();
  if (parent.empty() || !std::filesystem::is_directory(parent, ec)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "state_dir: " + dir.string() + " does not exist, nor does its parent");
  }
  return std::string("absent");
}

}  // namespace

Result<ConfiguredFiles> loadConfiguredFiles(const ControllerConfig& config,
                                            const std::string& config_path, const Clock& clock) {
  ConfiguredFiles files;
  auto policy = loadPolicyFile(config.policy_file);
  if (!policy.ok()) return policy.error().withContext("policy");
  files.policy = std::move(policy->policy);
  std::vector<std::string> detectors;
  for (const ApiToken& token : config.tokens) {
    if (token.role == ApiRole::kDetector) detectors.push_back(token.name);
  }
  SHADAN_RETURN_IF_ERROR(
      checkResponseConfig(config.response, files.policy, detectors, config_path));
  for (const ApiToken& token : config.tokens) {
    for (const std::string& segment : token.segments.value_or(std::vector<std::string>{})) {
      if (segment != "*" && files.policy.findSegment(segment) == nullptr) {
        return makeError(ErrorCode::kParse, config_path + ": /tokens: token " + token.name +
                                                " names unknown segment " + segment);
      }
    }
  }
  auto trust = loadTrustFile(config.trust_file);
  if (!trust.ok()) return trust.error().withContext("trust");
  files.trust = std::move(*trust);
  if (files.trust.isExpired(clock.now())) {
    return makeError(ErrorCode::kInvalidArgument,
                     "trust: " + config.trust_file.string() + " has expired");
  }
  auto key = loadPrivateKeyFile(config.signing_key_file);
  if (!key.ok()) return key.error().withContext("signing_key");
  files.signer = std::make_unique<Ed25519Signer>(std::move(*key));
  const TrustKey* listed = files.trust.findKey(files.signer->keyId());
  if (listed == nullptr || !listed->hasRole(TrustRole::kController)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "signing_key: key " + files.signer->keyId() +
                         " is not a controller key in the trust file (agents would refuse "
                         "every dispatch)");
  }
  auto tls = makeServerTlsContext(config.tls_ca.string(), config.tls_cert.string(),
                                  config.tls_key.string(), config.tls_crl.string());
  if (!tls.ok()) return tls.error().withContext("tls");
  files.api_tls = std::move(*tls);
  return files;
}

Result<nlohmann::json> checkControllerConfig(const std::string& config_path, const Clock& clock) {
  SHADAN_ASSIGN_OR_RETURN(ControllerConfig config, loadControllerConfig(config_path));
  SHADAN_ASSIGN_OR_RETURN(ConfiguredFiles files, loadConfiguredFiles(config, config_path, clock));
  SHADAN_ASSIGN_OR_RETURN(std::string state, stateDirectoryState(config.state_dir));
  std::map<std::string, int> roles;
  for (const ApiToken& token : config.tokens) ++roles[apiRoleName(token.role)];
  return nlohmann::json{
      {"ok", true},
      {"command", "check-config"},
      {"config", config_path},
      {"policy",
       {{"file", config.policy_file.string()},
        {"name", files.policy.name},
        {"sha256", files.policy.source_sha256},
        {"segments", files.policy.segments.size()},
        {"gateways", files.policy.gateways.size()}}},
      {"trust",
       {{"file", config.trust_file.string()},
        {"version", files.trust.version},
        {"keys", files.trust.keys.size()}}},
      {"signing_key",
       {{"file", config.signing_key_file.string()}, {"keyid", files.signer->keyId()}}},
      {"tls",
       {{"ca", config.tls_ca.string()},
        {"cert", config.tls_cert.string()},
        {"crl", config.tls_crl.string()}}},
      {"api_listen", listenAddressText(config.api_listen)},
      {"hub_listen", listenAddressText(config.hub_listen)},
      {"metrics_listen", config.metrics_listen
                             ? nlohmann::json(listenAddressText(*config.metrics_listen))
                             : nlohmann::json(nullptr)},
      {"tokens", roles},
      {"state_dir", {{"path", config.state_dir.string()}, {"state", state}}}};
}

}  // namespace shadan::controller

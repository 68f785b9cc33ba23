#include "agents/policy_reload.h"

#include <algorithm>
#include <fstream>

#include "agents/planner/planner.h"
#include "agents/signed_orders.h"
#include "common/logging.h"
#include "common/sha256.h"

namespace shadan::agent {
namespace {

// More than the policy loader accepts (1 MiB): a file this large is refused by the loader, so
// its digest never matters.
constexpr size_t kDigestReadLimit = size_t{2} << 20;

// SHA-256 of the file's bytes, or nullopt when it cannot be read (the loader then says why).
std::optional<std::string> fileDigest(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string bytes(kDigestReadLimit, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (in.bad()) return std::nullopt;
  bytes.resize(static_cast<size_t>(in.gcount()));
  return sha256Hex(bytes);
}

nlohmann::json policyJson(const std::string& name, const std::string& sha256) {
  return nlohmann::json{{"name", name}, {"sha256", sha256}};
}

}  // namespace

Result<PolicyFile> readPolicyFile(const std::filesystem::path& path) {
  const auto before = fileDigest(path);
  SHADAN_ASSIGN_OR_RETURN(auto loaded, loadPolicyFile(path));
  const auto after = fileDigest(path);
  if (!before || before != after) {
    return makeError(ErrorCode::kUnavailable,
                     path.string() + ": changed while it was read; read it again");
  }
  return PolicyFile{std::move(loaded.policy), std::move(loaded.warnings), path, *after};
}

PolicyReloader::PolicyReloader(AgentCore& core, ReloadSources sources, const PolicyFile& current,
                               const Signer* agent_key)
    : core_(core),
      sources_(std::move(sources)),
      policy_sha256_(current.sha256),
      agent_key_(agent_key) {}

nlohmann::json PolicyReloader::currentPolicyJson() const {
  return policyJson(core_.policy_.name, policy_sha256_);
}

std::optional<Error> PolicyReloader::checkAgainstState(const Policy& next) const {
  const std::string& gateway_id = core_.gateway_id_;
  const Gateway* gateway = next.findGateway(gateway_id);
  if (!gateway) {
    return makeError(ErrorCode::kNotFound,
                     "gateway \"" + gateway_id + "\" is not in the new policy");
  }
  // Every isolation that would be lost is named, not only the first: the operator fixes the
  // file once.
  std::vector<std::string> lost;
  for (const ActiveIsolation& active : core_.desired_.isolations) {
    const Isolation& isolation = active.isolation;
    const std::string pair = isolation.segment + ":" + isolation.profile;
    if (!next.findSegment(isolation.segment)) {
      lost.push_back(pair + " (segment \"" + isolation.segment + "\" is not in the new policy)");
    } else if (!next.findProfile(isolation.profile)) {
      lost.push_back(pair + " (profile \"" + isolation.profile + "\" is not in the new policy)");
    } else if (std::find(gateway->borders.begin(), gateway->borders.end(), isolation.segment) ==
               gateway->borders.end()) {
      lost.push_back(pair + " (gateway \"" + gateway_id + "\" no longer borders segment \"" +
                     isolation.segment + "\")");
    }
  }
  if (lost.empty()) return std::nullopt;
  std::string message = "the new policy would lift active isolation";
  message += lost.size() == 1 ? " " : "s ";
  for (size_t i = 0; i < lost.size(); ++i) message += (i == 0 ? "" : ", ") + lost[i];
  message += "; restore them first, then reload";
  return makeError(ErrorCode::kInvalidArgument, std::move(message));
}

Error PolicyReloader::refuse(const std::string& trigger, const std::string& outcome,
                             const PolicyFile* next, Error error) {
  logger("agent")->error(
      "event=reload_refused trigger={} reason=\"{}\" policy={} policy_sha256={} "
      "note=\"still enforcing the old policy, ruleset and trust\"",
      trigger, error.message, core_.policy_.name, policy_sha256_);
  AuditEvent entry = core_.bareEvent("policy_reload_refused");
  entry.outcome = outcome;
  entry.reason = error.message;
  AuditWho who;
  who.requested_by = trigger;
  entry.who = who;
  nlohmann::json detail = {{"policy_file", sources_.policy_path.string()},
                           {"policy_in_force", currentPolicyJson()}};
  if (next) detail["policy_refused"] = policyJson(next->policy.name, next->sha256);
  entry.detail = std::move(detail);
  (void)core_.audit(std::move(entry));
  return error;
}

Result<ReloadResult> PolicyReloader::reloadFiles(const std::string& trigger) {
  logger("agent")->info("event=reloading trigger={} policy_file={}", trigger,
                        sources_.policy_path.string());
  auto next = readPolicyFile(sources_.policy_path);
  if (!next.ok()) return refuse(trigger, "rejected", nullptr, next.error());
  std::optional<Trust> trust;
  if (sources_.trust_path) {
    auto loaded = loadTrustFile(*sources_.trust_path);
    if (!loaded.ok()) return refuse(trigger, "rejected", &*next, loaded.error());
    trust = std::move(loaded).value();
  }
  return reload(std::move(next).value(), std::move(trust), trigger);
}

Result<ReloadResult> PolicyReloader::reload(PolicyFile next, std::optional<Trust> trust,
                                            const std::string& trigger) {
  // Everything is checked before anything is written or applied.
  if (auto refusal = checkAgainstState(next.policy)) {
    return refuse(trigger, "rejected", &next, std::move(*refusal));
  }
  auto plan = planGateway(next.policy, core_.gateway_id_, core_.desired_.isolationPairs());
  if (!plan.ok()) {
    return refuse(trigger, "rejected", &next, plan.error().withContext("the new policy"));
  }
  if (trust) {
    if (!agent_key_) {
      return refuse(trigger, "rejected", &next,
                    makeError(ErrorCode::kInternal, "a trust file but no agent key to sign with"));
    }
    if (auto accepted = acceptTrustUpdate(core_.desired_.trust_version, *trust, core_.clock_);
        !accepted.ok()) {
      const std::string source =
          sources_.trust_path ? "trust file " + sources_.trust_path->string() : "trust";
      return refuse(trigger, "rejected", &next, accepted.error().withContext(source));
    }
    // The version is durable before the trust is used (rollback protection). Should the kernel
    // refuse below, the old trust stays in use under the raised version: the file on disk is
    // the new one, so nothing older will be asked for.
    if (trust->version != core_.desired_.trust_version) {
      if (auto stored = core_.storeTrustVersion(trust->version); !stored.ok()) {
        return refuse(trigger, "failed", &next, stored.error().withContext("trust version"));
      }
    }
  }

  // One kernel transaction; Enforcer puts the old table and routes back if the routes fail.
  auto report = core_.enforcer_.enforce(*plan);
  if (!report.ok()) return refuse(trigger, "failed", &next, report.error());

  ReloadResult result;
  result.policy_before = core_.policy_.name;
  result.policy_sha256_before = policy_sha256_;
  result.policy_after = next.policy.name;
  result.policy_sha256_after = next.sha256;
  result.ruleset_before = report->before.sha256;
  result.ruleset_after = report->after.sha256;
  for (const PolicyWarning& warning : next.warnings) {
    result.warnings.push_back(next.path.string() + ": " + warning.pointer + ": " + warning.message);
  }

  core_.policy_ = std::move(next.policy);
  policy_sha256_ = next.sha256;
  if (trust) {
    // Checked above; only a trust that expired in the last moment can fail here, and then the
    // old one stays in use (the policy is in force already and is not undone for that).
    const int64_t version = trust->version;
    if (auto used = core_.orders_->useTrust(std::move(*trust), *agent_key_); used.ok()) {
      result.trust_version = version;
    } else {
      result.warnings.push_back("trust not switched: " + used.error().message);
    }
  }
  // Like commitAndApply: the hash is re-derived at every start, so a failure to record it is a
  // warning, not a reason to undo the reload.
  DesiredState state = core_.desired_;
  state.applied_ruleset_sha256 = report->after.sha256;
  if (auto saved = core_.store_.saveUnsynced(state); !saved.ok()) {
    result.warnings.push_back("ruleset hash not stored: " + saved.error().message);
  }
  core_.desired_ = std::move(state);

  AuditEvent entry = core_.bareEvent("policy_reloaded");
  entry.outcome = "ok";
  AuditWho who;
  who.requested_by = trigger;
  entry.who = who;
  AuditWhat what;
  what.action = "reload";
  what.ruleset_before = result.ruleset_before;
  what.ruleset_after = result.ruleset_after;
  entry.what = what;
  nlohmann::json detail = {
      {"policy_file", sources_.policy_path.string()},
      {"policy_before", policyJson(result.policy_before, result.policy_sha256_before)},
      {"policy_after", policyJson(result.policy_after, result.policy_sha256_after)}};
  if (result.trust_version) detail["trust_version"] = *result.trust_version;
  if (!result.warnings.empty()) detail["warnings"] = result.warnings;
  entry.detail = std::move(detail);
  if (auto receipt = core_.audit(std::move(entry)); !receipt.ok()) {
    result.warnings.push_back("audit failed: " + receipt.error().message);
  }

  auto log = logger("agent");
  for (const std::string& warning : result.warnings) {
    log->warn("event=reload_warning warning=\"{}\"", warning);
  }
  log->info(
      "event=policy_reloaded trigger={} policy={} policy_sha256={} previous_policy={} "
      "previous_sha256={} ruleset_sha256_before={} ruleset_sha256_after={} isolations={}",
      trigger, result.policy_after, result.policy_sha256_after, result.policy_before,
      result.policy_sha256_before, result.ruleset_before, result.ruleset_after,
      core_.desired_.isolations.size());
  return result;
}

}  // namespace shadan::agent

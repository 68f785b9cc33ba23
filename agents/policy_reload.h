#pragma once

// PolicyReloader: a running agent re-reads its policy and trust files (`shadan-agent run` on
// SIGHUP; systemd's `ExecReload=`) and swaps them in whole, or not at all.
//
// A reload reads both files with the loaders of the start (loadPolicyFile, loadTrustFile) and is
// refused — the policy, the ruleset and the trust in force stay as they are — when
//   - a file does not load (the loader's error names the file and the place);
//   - this gateway is not in the new policy;
//   - an active isolation cannot be expressed by the new policy: its segment or its profile is
//     gone, or this gateway no longer borders the segment. A reload never lifts a cut; restore
//     it first, then reload;
//   - the new policy cannot be planned for the active isolations;
//   - the trust file is expired or older than the one held (AgentCore::useTrust's rule);
//   - the kernel refuses the new table (one nftables transaction: the old ruleset stays).
// Otherwise the new policy's plan for the unchanged desired state is applied in ONE kernel
// transaction, the policy and the trust are swapped, and `policy_reloaded` is audited (the old
// and new policy's name and file SHA-256, the ruleset before and after). A refusal is audited
// `policy_reload_refused` (outcome `rejected`; `failed` when the kernel or the state store
// refused) with the reason, and logged at error level as `event=reload_refused`.
//
// The desired state — the isolations, their deadlines, the replay state — is never changed by a
// reload; only the stored trust version (raised before the kernel is touched, like useTrust) and
// the hash of the applied table.
//
// Threading: the core's (one thread). The core and the agent key outlive it.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "agents/agent_core.h"
#include "common/ed25519.h"
#include "common/policy.h"
#include "common/result.h"
#include "common/trust.h"

namespace shadan::agent {

// A policy as loaded from a file, with the SHA-256 of the bytes it was parsed from (what the
// audit trail names, so a reviewer can tell which file was in force).
struct PolicyFile {
  Policy policy;
  std::vector<PolicyWarning> warnings;
  std::filesystem::path path;
  std::string sha256;
};

// loadPolicyFile(path) and the SHA-256 of the file. The file is hashed before and after it is
// parsed; one that changed meanwhile (an editor still writing it) is an error (kUnavailable):
// read it again.
Result<PolicyFile> readPolicyFile(const std::filesystem::path& path);

// What a daemon reloads: the files it was started with.
struct ReloadSources {
  std::filesystem::path policy_path;
  std::optional<std::filesystem::path> trust_path;  // none: the agent holds no trust file
};

// A reload that took effect.
struct ReloadResult {
  std::string policy_before;         // name of the policy that was in force
  std::string policy_sha256_before;  // and the SHA-256 of its file
  std::string policy_after;
  std::string policy_sha256_after;
  std::string ruleset_before;  // SHA-256 of our table before and after the transaction
  std::string ruleset_after;
  std::optional<int64_t> trust_version;  // of the trust file now in use, when one was reloaded
  std::vector<std::string> warnings;     // the policy loader's, and trouble after the apply
};

class PolicyReloader {
 public:
  // `current` is the file the core's policy came from (its name and SHA-256 are the "before"
  // of the first reload). `agent_key` signs the acks (AgentCore::useTrust); it may be null
  // only when `sources` has no trust file.
  PolicyReloader(AgentCore& core, ReloadSources sources, const PolicyFile& current,
                 const Signer* agent_key);

  // Reads the files of `sources` and swaps them in (see the file comment). `trigger` ("SIGHUP")
  // is named in the log and the audit trail. Every outcome is audited and logged here.
  Result<ReloadResult> reloadFiles(const std::string& trigger);

  // The same with the files already read: `trust` is nullopt when the agent holds none.
  Result<ReloadResult> reload(PolicyFile next, std::optional<Trust> trust,
                              const std::string& trigger);

  // The SHA-256 of the file the policy in force came from.
  const std::string& policySha256() const { return policy_sha256_; }

 private:
  // Why `next` cannot replace the policy in force for the current desired state, or nullopt.
  std::optional<Error> checkAgainstState(const Policy& next) const;
  // Audits and logs a refused reload; returns `error`. `next` when the new policy loaded.
  Error refuse(const std::string& trigger, const std::string& outcome, const PolicyFile* next,
               Error error);
  // {"name", "sha256"} of the policy in force.
  nlohmann::json currentPolicyJson() const;

  AgentCore& core_;
  ReloadSources sources_;
  std::string policy_sha256_;
  const Signer* agent_key_;
};

}  // namespace shadan::agent

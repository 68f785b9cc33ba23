#pragma once

// The agent's audit trail in its state directory: <state-dir>/audit.log (hash chain) with
// signed checkpoints in <state-dir>/audit.log.checkpoints, signed by the agent key
// <state-dir>/agent.key (generated at first use, 0600; its public half beside it as agent.pub,
// to be enrolled with the controller).

#include <filesystem>
#include <memory>
#include <string>

#include "common/audit_log.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/result.h"

namespace shadan::agent {

class AgentAudit {
 public:
  // Opens (creating the key and the log if missing). REQUIRES: the caller holds the state
  // directory's lock, so one process writes the log.
  static Result<std::unique_ptr<AgentAudit>> open(const std::filesystem::path& state_dir,
                                                  const std::string& gateway_id,
                                                  const Clock& clock);

  // Closes the log, which writes a final signed checkpoint: every process that appended leaves
  // its entries covered by a checkpoint.
  ~AgentAudit();
  AgentAudit(const AgentAudit&) = delete;
  AgentAudit& operator=(const AgentAudit&) = delete;

  AuditLog& log() { return *log_; }
  std::string keyId() const { return signer_->keyId(); }
  const Ed25519PublicKey& publicKey() const { return signer_->publicKey(); }
  // The agent key (signs checkpoints, and acks of signed orders).
  const Signer& signer() const { return *signer_; }
  // What open() found and repaired (torn tails after a crash), to report.
  std::vector<AuditRecovery> recoveries() const { return log_->recoveries(); }

 private:
  AgentAudit() = default;

  PosixLogFileSystem fs_;
  std::unique_ptr<Ed25519Signer> signer_;
  std::unique_ptr<AuditLog> log_;
};

}  // namespace shadan::agent

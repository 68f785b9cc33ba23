#include "agents/agent_audit.h"

#include "common/logging.h"

namespace shadan::agent {

AgentAudit::~AgentAudit() {
  if (!log_) return;
  if (auto closed = log_->close(); !closed.ok()) {
    logger("agent")->error("event=audit_close_failed error=\"{}\"", closed.error().message);
  }
}

Result<std::unique_ptr<AgentAudit>> AgentAudit::open(const std::filesystem::path& state_dir,
                                                     const std::string& gateway_id,
                                                     const Clock& clock) {
  const std::string key_path = (state_dir / "agent.key").string();
  std::error_code ec;
  if (!std::filesystem::exists(key_path, ec)) {
    auto generated = Ed25519KeyPair::generate();
    SHADAN_RETURN_IF_ERROR(writePrivateKeyFile(key_path, generated, std::string("agent")));
    const std::string pub_path = (state_dir / "agent.pub").string();
    if (!std::filesystem::exists(pub_path, ec)) {
      SHADAN_RETURN_IF_ERROR(
          writePublicKeyFile(pub_path, generated.publicKey(), std::string("agent")));
    }
    logger("agent")->info("event=agent_key_created keyid={}", generated.keyId());
  }
  auto key = loadPrivateKeyFile(key_path);
  if (!key.ok()) return key.error().withContext("agent key");

  std::unique_ptr<AgentAudit> audit(new AgentAudit());
  audit->signer_ = std::make_unique<Ed25519Signer>(std::move(key).value());
  AuditLogOptions options;
  options.path = (state_dir / "audit.log").string();
  options.log_id = "agent:" + gateway_id;
  auto log = AuditLog::open(options, audit->fs_, clock, audit->signer_.get());
  if (!log.ok()) return log.error().withContext("audit log " + options.path);
  audit->log_ = std::move(log).value();
  for (const auto& recovery : audit->log_->recoveries()) {
    logger("agent")->warn("event=audit_recovered kind={} bytes={} moved_to={} reason=\"{}\"",
                          recovery.event, recovery.bytes, recovery.moved_to, recovery.reason);
  }
  return audit;
}

}  // namespace shadan::agent

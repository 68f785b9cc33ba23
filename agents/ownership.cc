#include "agents/ownership.h"

#include "agents/control_client.h"
#include "agents/daemon.h"
#include "agents/planner/planner.h"
#include "common/logging.h"

namespace shadan::agent {

std::string agentOwnerMark(const std::string& gateway, const std::filesystem::path& state_dir) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(state_dir, ec);
  if (ec) absolute = state_dir;
  std::string text = absolute.lexically_normal().string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return ownerMark(gateway, text);
}

Result<DaemonClaim> claimForDaemon(const std::filesystem::path& state_dir,
                                   std::chrono::milliseconds wait) {
  auto log = logger("agent");
  auto store = SqliteStateStore::open(state_dir, std::chrono::milliseconds(0));
  if (!store.ok() && store.error().code == ErrorCode::kUnavailable) {
    ControlRequest probe;
    probe.op = "status";
    auto answer = askDaemon(controlSocketPath(state_dir), probe, std::chrono::seconds(2));
    if (!answer.ok() || answer->has_value()) return store.error();
    log->warn("event=waiting_for_state_lock state_dir={} max_wait_ms={}", state_dir.string(),
              wait.count());
    store = SqliteStateStore::open(state_dir, wait);
    if (store.ok()) log->info("event=state_lock_taken state_dir={}", state_dir.string());
  }
  if (!store.ok()) return store.error();
  SHADAN_ASSIGN_OR_RETURN(auto gateway,
                          GatewayLock::acquire(kOwnedTable, GatewayLock::Role::kDaemon, wait));
  return DaemonClaim{std::move(store).value(), std::move(gateway)};
}

}  // namespace shadan::agent

#include "agents/agent_core.h"

#include <algorithm>

#include "agents/planner/planner.h"
#include "common/logging.h"

namespace shadan {

const char* kernelStateName(KernelState state) {
  switch (state) {
    case KernelState::kInSync:
      return "in_sync";
    case KernelState::kDrift:
      return "drift";
    case KernelState::kMissing:
      return "missing";
    case KernelState::kUnexpectedTable:
      return "unexpected_table";
    case KernelState::kUnknown:
      return "unknown";
  }
  return "unknown";
}

AgentCore::AgentCore(const Policy& policy, std::string gateway_id, StateStore& store,
                     FirewallBackend& firewall, RouteBackend& routes, const Clock& clock)
    : policy_(policy),
      gateway_id_(std::move(gateway_id)),
      store_(store),
      firewall_(firewall),
      routes_(routes),
      clock_(clock),
      enforcer_(firewall, routes) {}

Result<Isolation> AgentCore::validateIsolation(const std::string& segment,
                                               const std::string& profile) const {
  if (!policy_.findSegment(segment)) {
    return makeError(ErrorCode::kNotFound, "unknown segment \"" + segment + "\"");
  }
  if (!policy_.findProfile(profile)) {
    return makeError(ErrorCode::kNotFound, "unknown profile \"" + profile + "\"");
  }
  const Gateway* gateway = policy_.findGateway(gateway_id_);
  if (!gateway) {
    return makeError(ErrorCode::kNotFound, "gateway \"" + gateway_id_ + "\" is not in the policy");
  }
  if (std::find(gateway->borders.begin(), gateway->borders.end(), segment) ==
      gateway->borders.end()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "gateway \"" + gateway_id_ + "\" does not border segment \"" + segment + "\"");
  }
  return Isolation{segment, profile};
}

std::vector<Isolation> AgentCore::dropExpired(DesiredState& state) const {
  const int64_t now = toUnixMillis(clock_.now());
  std::vector<Isolation> expired;
  std::erase_if(state.isolations, [&](const ActiveIsolation& active) {
    if (active.expires_unix_ms && *active.expires_unix_ms <= now) {
      expired.push_back(active.isolation);
      return true;
    }
    return false;
  });
  return expired;
}

Result<EnforceReport> AgentCore::applyDesired(const DesiredState& state) {
  auto plan = planGateway(policy_, gateway_id_, state.isolationPairs());
  if (!plan.ok()) return plan.error();
  return enforcer_.enforce(*plan);
}

Result<ChangeResult> AgentCore::commitAndApply(DesiredState next, bool changed,
                                               std::vector<Isolation> expired) {
  // Plan first: a state the policy cannot express is refused before anything is written.
  auto plan = planGateway(policy_, gateway_id_, next.isolationPairs());
  if (!plan.ok()) return plan.error();

  const DesiredState previous = desired_;
  if (changed) {
    SHADAN_RETURN_IF_ERROR(store_.save(next));
  }
  auto report = enforcer_.enforce(*plan);
  if (!report.ok()) {
    if (changed) {
      if (auto reverted = store_.save(previous); !reverted.ok()) {
        logger("agent")->critical(
            "event=state_revert_failed error=\"{}\" note=\"kernel refused the change and the "
            "stored state could not be put back\"",
            reverted.error().message);
        return report.error().withContext("CRITICAL: stored state could not be put back (" +
                                          reverted.error().message + ")");
      }
    }
    return report.error();
  }
  next.applied_ruleset_sha256 = report->after.sha256;
  // The kernel holds `next` now; if recording its hash fails, say so but do not undo the cut.
  if (auto saved = store_.save(next); !saved.ok()) {
    desired_ = next;
    return saved.error().withContext("applied, but the ruleset hash could not be stored");
  }
  desired_ = std::move(next);
  ChangeResult result;
  result.changed = changed;
  result.state = desired_;
  result.report = std::move(report).value();
  result.expired = std::move(expired);
  return result;
}

Result<ChangeResult> AgentCore::start() {
  auto loaded = store_.load();
  if (!loaded.ok()) return loaded.error();
  desired_ = std::move(loaded).value();
  DesiredState next = desired_;
  std::vector<Isolation> expired = dropExpired(next);
  const bool changed = !expired.empty();
  return commitAndApply(std::move(next), changed, std::move(expired));
}

Status AgentCore::load() {
  auto loaded = store_.load();
  if (!loaded.ok()) return loaded.error();
  desired_ = std::move(loaded).value();
  return okStatus();
}

Result<ChangeResult> AgentCore::isolate(const IsolateRequest& request) {
  auto isolation = validateIsolation(request.segment, request.profile);
  if (!isolation.ok()) return isolation.error();

  DesiredState next = desired_;
  std::vector<Isolation> expired = dropExpired(next);
  const int64_t now = toUnixMillis(clock_.now());
  std::optional<int64_t> deadline;
  if (request.ttl) deadline = now + request.ttl->count();

  bool changed = !expired.empty();
  auto existing = std::find_if(next.isolations.begin(), next.isolations.end(),
                               [&](const ActiveIsolation& a) { return a.isolation == *isolation; });
  if (existing == next.isolations.end()) {
    ActiveIsolation active;
    active.isolation = *isolation;
    active.since_unix_ms = now;
    active.expires_unix_ms = deadline;
    active.origin = request.origin;
    next.isolations.push_back(std::move(active));
    std::sort(next.isolations.begin(), next.isolations.end(),
              [](const auto& a, const auto& b) { return a.isolation < b.isolation; });
    changed = true;
  } else if (existing->expires_unix_ms) {
    // Keep the later deadline; no deadline means "until restored".
    if (!deadline) {
      existing->expires_unix_ms.reset();
      changed = true;
    } else if (*deadline > *existing->expires_unix_ms) {
      existing->expires_unix_ms = deadline;
      changed = true;
    }
  }
  return commitAndApply(std::move(next), changed, std::move(expired));
}

Result<ChangeResult> AgentCore::restore(const RestoreRequest& request) {
  if (request.profile && !policy_.findProfile(*request.profile)) {
    return makeError(ErrorCode::kNotFound, "unknown profile \"" + *request.profile + "\"");
  }
  DesiredState next = desired_;
  std::vector<Isolation> expired = dropExpired(next);
  const auto before = next.isolations.size();
  std::erase_if(next.isolations, [&](const ActiveIsolation& active) {
    if (!request.segment) return true;
    return active.isolation.segment == *request.segment &&
           (!request.profile || active.isolation.profile == *request.profile);
  });
  const bool removed = next.isolations.size() != before;
  // A segment the policy no longer knows can still be restored if it is isolated; one that is
  // neither in the policy nor isolated is a typo, and a typo must not look like success.
  if (request.segment && !removed && !policy_.findSegment(*request.segment)) {
    return makeError(ErrorCode::kNotFound, "unknown segment \"" + *request.segment + "\"");
  }
  const bool changed = removed || !expired.empty();
  return commitAndApply(std::move(next), changed, std::move(expired));
}

Result<ChangeResult> AgentCore::expireDue() {
  DesiredState next = desired_;
  std::vector<Isolation> expired = dropExpired(next);
  if (expired.empty()) {
    ChangeResult nothing;
    nothing.state = desired_;
    return nothing;
  }
  return commitAndApply(std::move(next), true, std::move(expired));
}

std::optional<std::chrono::system_clock::time_point> AgentCore::nextDeadline() const {
  std::optional<int64_t> earliest;
  for (const auto& active : desired_.isolations) {
    if (active.expires_unix_ms && (!earliest || *active.expires_unix_ms < *earliest)) {
      earliest = active.expires_unix_ms;
    }
  }
  if (!earliest) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(*earliest));
}

KernelStatus AgentCore::kernelStatus() {
  KernelStatus status;
  auto table = firewall_.readTable();
  if (!table.ok()) {
    status.error = table.error().message;
    return status;
  }
  status.live = std::move(table).value();
  if (desired_.isolations.empty()) {
    status.state = status.live->present ? KernelState::kUnexpectedTable : KernelState::kInSync;
  } else if (!status.live->present) {
    status.state = KernelState::kMissing;
  } else {
    status.state = status.live->sha256 == desired_.applied_ruleset_sha256 ? KernelState::kInSync
                                                                          : KernelState::kDrift;
  }
  return status;
}

Result<RepairResult> AgentCore::reconcile(bool force) {
  KernelStatus status = kernelStatus();
  if (status.state == KernelState::kUnknown) {
    return makeError(ErrorCode::kKernel, "cannot read our table: " + status.error);
  }
  RepairResult result;
  result.found = status.state;
  result.sha256_before = status.live->sha256;
  if (status.state == KernelState::kInSync && !force) {
    result.sha256_after = status.live->sha256;
    return result;
  }
  auto report = applyDesired(desired_);
  if (!report.ok()) return report.error();
  result.repaired = true;
  result.sha256_after = report->after.sha256;
  if (report->after.sha256 != desired_.applied_ruleset_sha256) {
    // The same desired state produced a different table (first run after an upgrade, say):
    // remember what the kernel holds now so the next check compares against it.
    DesiredState next = desired_;
    next.applied_ruleset_sha256 = report->after.sha256;
    SHADAN_RETURN_IF_ERROR(store_.save(next));
    desired_ = std::move(next);
  }
  return result;
}

Status AgentCore::resyncRoutes() {
  auto plan = planGateway(policy_, gateway_id_, desired_.isolationPairs());
  if (!plan.ok()) return plan.error();
  return routes_.sync(plan->blackhole_routes);
}

}  // namespace shadan

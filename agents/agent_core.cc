#include "agents/agent_core.h"

#include <algorithm>

#include "agents/link_holder.h"
#include "agents/planner/lockout_check.h"
#include "agents/planner/planner.h"
#include "agents/policy_names.h"
#include "agents/signed_orders.h"
#include "common/logging.h"

namespace shadan::agent {

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

AgentCore::AgentCore(const Policy& policy, std::string gateway_id, AgentCoreDeps deps)
    : policy_(policy),
      gateway_id_(std::move(gateway_id)),
      deps_(std::move(deps)),
      store_(deps_.store),
      firewall_(deps_.firewall),
      routes_(deps_.routes),
      clock_(deps_.clock),
      enforcer_(deps_.firewall, deps_.routes),
      orders_(std::make_unique<SignedOrders>(*this)) {}

AgentCore::~AgentCore() = default;

const char* AgentCore::actionName(ActionKind kind) {
  switch (kind) {
    case ActionKind::kIsolate:
      return "isolate";
    case ActionKind::kRestore:
      return "restore";
    case ActionKind::kExpire:
      return "expire";
    case ActionKind::kStart:
      return "start";
    case ActionKind::kRevertDrills:
      return "revert_drills";
    case ActionKind::kRepair:
      return "repair";
    case ActionKind::kOrder:
      return "order";
    case ActionKind::kBreakglass:
      return "breakglass";
  }
  return "unknown";
}

AuditEvent AgentCore::bareEvent(const std::string& event) const {
  AuditEvent entry;
  entry.event = event;
  entry.where = AuditWhere{gateway_id_, deps_.host, deps_.version};
  return entry;
}

AuditEvent AgentCore::baseEvent(const std::string& event, const Action& action) const {
  AuditEvent entry = bareEvent(event);
  if (!action.requested_by.empty()) {
    AuditWho who;
    who.requested_by = action.requested_by;
    entry.who = who;
  }
  AuditWhat what;
  what.action = actionName(action.kind);
  if (action.isolation) {
    if (!action.isolation->segment.empty()) what.segment = action.isolation->segment;
    what.profile = action.isolation->profile;
  }
  if (action.scope != IsolationScope::kSegment) what.scope = isolationScopeName(action.scope);
  if (!action.hosts.empty()) {
    what.hosts.emplace();
    for (const IpPrefix& host : action.hosts) what.hosts->push_back(host.toCidr());
  }
  entry.what = what;
  if (action.drill) entry.drill = true;
  if (action.reason) entry.why = AuditWhy{action.reason, std::nullopt};
  if (const VerifiedOrder* order = action.order) {
    entry.command_id = order->authz.command_id;
    if (order->dispatch) entry.seq = static_cast<uint64_t>(order->dispatch->seq);
    entry.authz_sha256 = order->authz_sha256;
    entry.correlation_id = order->authz.correlation_id;
    entry.why = AuditWhy{order->authz.reason, order->authz.ticket};
    AuditWho who;
    who.requested_by = order->authz.requested_by;
    who.approvers = order->signer_identities;
    who.keyids = order->signer_keyids;
    if (!order->controller_keyid.empty()) who.controller = order->controller_keyid;
    entry.who = who;
    nlohmann::json detail = nlohmann::json::object();
    if (order->breakglass) detail["breakglass"] = true;
    if (order->authz.automatic) detail["automatic"] = true;
    if (auto capped = ttlCapNote(order->authz, policy_.agent)) detail["ttl_capped"] = *capped;
    if (!detail.empty()) entry.detail = std::move(detail);
  }
  return entry;
}

Result<AuditReceipt> AgentCore::audit(AuditEvent event, AuditDurability durability) {
  auto receipt = durability == AuditDurability::kBuffered ? deps_.audit.appendBuffered(event)
                                                          : deps_.audit.append(event);
  if (receipt.ok()) last_receipt_ = *receipt;
  if (!receipt.ok()) {
    logger("agent")->critical("event=audit_failed audited_event={} error=\"{}\"", event.event,
                              receipt.error().message);
  }
  return receipt;
}

Error AgentCore::rejected(const Action& action, Error error) {
  AuditEvent entry = baseEvent("rejected", action);
  entry.outcome = "rejected";
  entry.reason = error.message;
  (void)audit(std::move(entry));
  return error;
}

void AgentCore::auditEvent(const std::string& event, const std::string& outcome,
                           const std::optional<nlohmann::json>& detail) {
  AuditEvent entry = bareEvent(event);
  entry.outcome = outcome;
  entry.detail = detail;
  (void)audit(std::move(entry));
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
  SHADAN_ASSIGN_OR_RETURN(
      auto plan, planGateway(policy_, gateway_id_, state.isolationPairs(), deps_.owner_mark));
  return enforcer_.enforce(plan);
}

int64_t AgentCore::nowMs() const { return toUnixMillis(clock_.now()); }

Status AgentCore::checkTableOwner() {
  if (deps_.owner_mark.empty()) return okStatus();
  SHADAN_ASSIGN_OR_RETURN(auto table, firewall_.readTable());
  const std::string mark = ownerMarkOf(table.listing);
  // No mark: no table, or one written before marks existed; both are ours to write.
  if (mark.empty() || mark == deps_.owner_mark) return okStatus();
  return makeError(
      ErrorCode::kUnavailable,
      "table inet shadan on this gateway belongs to another agent (its owner mark: \"" + mark +
          "\"; this agent: \"" + deps_.owner_mark +
          "\"): use that agent's --state-dir; to hand the gateway over, restore --all "
          "there first (or delete the table: nft delete table inet shadan)");
}

std::optional<Error> AgentCore::checkLockout(std::optional<nlohmann::json>& foreign_ruleset,
                                             std::vector<std::string>& warnings) {
  auto listed = firewall_.listForeignRulesetJson();
  if (!listed.ok()) {
    warnings.push_back("lockout check skipped: " + listed.error().message);
    return std::nullopt;
  }
  foreign_ruleset = std::move(listed).value();
  auto findings = checkManagementPath(*foreign_ruleset, policy_.always_allow);
  if (!findings.ok()) {
    warnings.push_back("lockout check failed: " + findings.error().message);
    return std::nullopt;
  }
  const size_t first = warnings.size();
  bool certain = false;
  for (const auto& finding : *findings) {
    certain = certain || finding.severity == LockoutSeverity::kDrops;
    warnings.push_back("management path: " + describeLockoutFinding(finding));
  }
  if (certain && policy_.agent.lockout_check == LockoutCheckMode::kRefuse) {
    return makeError(ErrorCode::kInvalidArgument,
                     "refused: a foreign rule drops the management path (" + warnings[first] +
                         "); fix it or set agent.lockout_check to warn");
  }
  return std::nullopt;
}

Error AgentCore::undoCommit(const DesiredState& previous, const DesiredState& next, bool changed,
                            const Action& action, Error error) {
  if (changed) {
    // The isolations go back; the replay state does not: a consumed order stays consumed.
    DesiredState reverted_state = previous;
    reverted_state.replay = next.replay;
    reverted_state.trust_version = next.trust_version;
    desired_ = reverted_state;
    if (auto reverted = store_.save(reverted_state); !reverted.ok()) {
      logger("agent")->critical(
          "event=state_revert_failed error=\"{}\" note=\"kernel refused the change and the "
          "stored state could not be put back\"",
          reverted.error().message);
      error = error.withContext("CRITICAL: stored state could not be put back (" +
                                reverted.error().message + ")");
    }
  }
  AuditEvent failed = baseEvent("failed", action);
  failed.outcome = "failed";
  failed.reason = error.message;
  (void)audit(std::move(failed));
  return error;
}

void AgentCore::forgetConntrack(const Action& action, bool changed, const DesiredState& previous,
                                const DesiredState& next,
                                std::optional<nlohmann::json>& foreign_ruleset,
                                ChangeResult& result) {
  // NAT'd flows of a newly isolated segment must not live on in translated form; on restore,
  // optionally forget old sessions so they do not resume.
  std::vector<IpPrefix> flush;
  if (action.kind == ActionKind::kIsolate && changed && !action.isolations.empty()) {
    bool wanted = policy_.agent.conntrack_on_isolate == ConntrackOnIsolate::kAlways;
    if (policy_.agent.conntrack_on_isolate == ConntrackOnIsolate::kIfNat) {
      if (!foreign_ruleset) {
        if (auto listed = firewall_.listForeignRulesetJson(); listed.ok())
          foreign_ruleset = *listed;
      }
      wanted = foreign_ruleset && rulesetHasNat(*foreign_ruleset);
    }
    if (wanted) flush = conntrackPrefixes(policy_, action.isolations);
  } else if (action.kind == ActionKind::kRestore && changed &&
             policy_.agent.conntrack_flush_on_restore) {
    std::vector<Isolation> removed;
    for (const auto& active : previous.isolations) {
      if (!next.contains(active.isolation)) removed.push_back(active.isolation);
    }
    flush = conntrackPrefixes(policy_, removed);
  }
  if (flush.empty()) return;
  auto deleted = deps_.conntrack.deleteMatching(flush);
  if (deleted.ok()) {
    result.conntrack_deleted = *deleted;
  } else {
    result.warnings.push_back("conntrack entries not deleted: " + deleted.error().message);
  }
}

Result<ChangeResult> AgentCore::commitAndApply(DesiredState next, bool changed,
                                               std::vector<Isolation> expired,
                                               const Action& action) {
  // Plan first: a state the policy cannot express is refused before anything is written.
  auto plan = planGateway(policy_, gateway_id_, next.isolationPairs(), deps_.owner_mark);
  if (!plan.ok()) return rejected(action, plan.error());

  ChangeResult result;
  result.action = actionName(action.kind);
  result.isolation = action.isolation;
  result.isolations = action.isolations;
  if (Status owned = checkTableOwner(); !owned.ok()) return rejected(action, owned.error());
  // Read by the lockout check, and again by the conntrack step if it had to.
  std::optional<nlohmann::json> foreign_ruleset;
  if (action.kind == ActionKind::kIsolate && changed) {
    if (auto refusal = checkLockout(foreign_ruleset, result.warnings)) {
      return rejected(action, std::move(*refusal));
    }
  }

  // The decision is written before it is carried out. A restore is refused without its
  // record; an isolation (the fail-safe direction) goes ahead and says the audit failed.
  // Every path below ends in a synced "applied" or "failed" entry before anything is
  // answered, and that one fdatasync makes this entry durable too (PROTOCOL.md: fsync before
  // the ack): one disk sync per order instead of two.
  AuditEvent accepted = baseEvent("accepted", action);
  accepted.outcome = "accepted";
  if (auto receipt = audit(accepted, AuditDurability::kBuffered); !receipt.ok()) {
    if (action.kind == ActionKind::kRestore) {
      return makeError(ErrorCode::kIo,
                       "refusing to restore without an audit record: " + receipt.error().message);
    }
    result.warnings.push_back("audit failed: " + receipt.error().message);
  }

  // Commit.
  const DesiredState previous = desired_;
  if (changed) {
    if (auto saved = store_.save(next); !saved.ok()) {
      AuditEvent failed = baseEvent("failed", action);
      failed.outcome = "failed";
      failed.reason = saved.error().message;
      (void)audit(std::move(failed));
      return saved.error();
    }
  }

  // Apply.
  auto report = enforcer_.enforce(*plan);
  if (!report.ok()) return undoCommit(previous, next, changed, action, report.error());

  forgetConntrack(action, changed, previous, next, foreign_ruleset, result);
  holdLinksOf(previous, next, actionName(action.kind), result.warnings);

  next.applied_ruleset_sha256 = report->after.sha256;
  // The kernel holds `next` now; if recording its hash fails, say so but do not undo the cut.
  // The hash is re-derived at every start (the stored state is applied and read back before
  // READY), so it need not cost a second disk sync on the order path.
  if (auto saved = store_.saveUnsynced(next); !saved.ok()) {
    result.warnings.push_back("ruleset hash not stored: " + saved.error().message);
  }
  desired_ = std::move(next);

  // Audit: the entry an ack points at. Nothing to change in the state but a kernel that did not
  // hold it (our table gone or altered) is a repair, and says so.
  const bool repaired = !changed && report->before.sha256 != report->after.sha256;
  AuditEvent applied = baseEvent("applied", action);
  applied.outcome = changed ? "ok" : repaired ? "repaired" : "unchanged";
  applied.what->ruleset_before = report->before.sha256;
  applied.what->ruleset_after = report->after.sha256;
  // Added to what baseEvent says of the order (breakglass, automatic).
  nlohmann::json detail = applied.detail.value_or(nlohmann::json::object());
  if (!expired.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& e : expired) list.push_back(e.segment + ":" + e.profile);
    detail["expired"] = list;
  }
  if (result.conntrack_deleted > 0) detail["conntrack_deleted"] = result.conntrack_deleted;
  if (!result.warnings.empty()) detail["warnings"] = result.warnings;
  if (!detail.empty()) applied.detail = detail;
  auto receipt = audit(std::move(applied));
  if (receipt.ok()) {
    result.audit = *receipt;
  } else {
    result.warnings.push_back("audit failed: " + receipt.error().message);
  }

  result.changed = changed;
  result.repaired = repaired;
  result.state = desired_;
  result.report = std::move(report).value();
  result.expired = std::move(expired);
  return result;
}

Result<ChangeResult> AgentCore::start() {
  SHADAN_ASSIGN_OR_RETURN(auto loaded, store_.load());
  desired_ = std::move(loaded);
  DesiredState next = desired_;
  std::vector<Isolation> expired = dropExpired(next);
  const bool changed = !expired.empty();
  return commitAndApply(std::move(next), changed, std::move(expired),
                        Action{ActionKind::kStart, std::nullopt, "agent", false});
}

Status AgentCore::load() {
  SHADAN_ASSIGN_OR_RETURN(auto loaded, store_.load());
  desired_ = std::move(loaded);
  return okStatus();
}

Result<ChangeResult> AgentCore::isolate(const IsolateRequest& request) {
  Action action{ActionKind::kIsolate, Isolation{request.segment, request.profile, request.scope},
                request.requested_by.empty() ? request.origin : request.requested_by,
                request.drill};
  action.reason = request.reason;
  action.scope = request.scope;
  action.hosts = request.hosts;
  auto wanted = isolationsFor(policy_, gateway_id_, request);
  if (!wanted.ok()) return rejected(action, wanted.error());
  action.isolations = *wanted;
  action.isolation = wanted->front();
  action.isolation->host.reset();  // the hosts are listed apart (what.hosts)
  if (request.drill && !request.ttl) {
    return rejected(action, makeError(ErrorCode::kInvalidArgument,
                                      "a drill needs a ttl: drills end on their own"));
  }
  if (request.link_down) {
    Status safe = checkLinkDownSafe(routes_, policy_, gateway_id_);
    if (!safe.ok()) return rejected(action, safe.error());
  }

  DesiredState next = desired_;
  std::vector<Isolation> expired = dropExpired(next);
  const int64_t now = toUnixMillis(clock_.now());
  std::optional<int64_t> deadline;
  if (request.ttl) deadline = now + request.ttl->count();

  ActiveIsolation fields;
  fields.since_unix_ms = now;
  fields.expires_unix_ms = deadline;
  fields.origin = request.origin;
  fields.drill = request.drill;
  fields.link_down = request.link_down;
  const bool changed = mergeIsolations(next, *wanted, fields) || !expired.empty();
  return commitAndApply(std::move(next), changed, std::move(expired), action);
}

Result<ChangeResult> AgentCore::restore(const RestoreRequest& request) {
  Action action{ActionKind::kRestore, std::nullopt,
                request.requested_by.empty() ? request.origin : request.requested_by, false};
  action.reason = request.reason;
  action.scope = request.scope.value_or(IsolationScope::kSegment);
  action.hosts = request.hosts;
  if (request.segment || request.scope) {
    action.isolation = Isolation{request.segment.value_or(""), request.profile.value_or("*"),
                                 request.scope.value_or(IsolationScope::kSegment)};
  }
  if (request.profile && !policy_.findProfile(*request.profile)) {
    return rejected(action, unknownProfileError(policy_, *request.profile));
  }
  if (Status shape = checkRestoreRequest(policy_, request); !shape.ok()) {
    return rejected(action, shape.error());
  }
  DesiredState next = desired_;
  std::vector<Isolation> expired = dropExpired(next);
  const auto before = next.isolations.size();
  std::erase_if(next.isolations, [&](const ActiveIsolation& active) {
    return restoreLifts(request, active.isolation);
  });
  const bool removed = next.isolations.size() != before;
  // A segment the policy no longer knows can still be restored if it is isolated; one that is
  // neither in the policy nor isolated is a typo, and a typo must not look like success.
  if (request.segment && !removed && !policy_.findSegment(*request.segment)) {
    return rejected(action, unknownSegmentError(policy_, *request.segment));
  }
  const bool changed = removed || !expired.empty();
  return commitAndApply(std::move(next), changed, std::move(expired), action);
}

Result<ChangeResult> AgentCore::expireDue() {
  DesiredState next = desired_;
  std::vector<Isolation> expired = dropExpired(next);
  if (expired.empty()) {
    ChangeResult nothing;
    nothing.state = desired_;
    return nothing;
  }
  // Drills are marked in every entry: an expiry that lifts drill isolations only is one.
  const int64_t now = toUnixMillis(clock_.now());
  const bool drills = std::all_of(
      desired_.isolations.begin(), desired_.isolations.end(), [&](const ActiveIsolation& active) {
        return active.drill || !active.expires_unix_ms || *active.expires_unix_ms > now;
      });
  return commitAndApply(std::move(next), true, std::move(expired),
                        Action{ActionKind::kExpire, std::nullopt, "timer", drills});
}

Result<ChangeResult> AgentCore::revertDrills(const std::string& why) {
  DesiredState next = desired_;
  std::vector<Isolation> expired = dropExpired(next);
  const auto before = next.isolations.size();
  std::erase_if(next.isolations, [](const ActiveIsolation& active) { return active.drill; });
  if (next.isolations.size() == before && expired.empty()) {
    ChangeResult nothing;
    nothing.state = desired_;
    return nothing;
  }
  return commitAndApply(std::move(next), true, std::move(expired),
                        Action{ActionKind::kRevertDrills, std::nullopt, "agent: " + why, true});
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

Result<RepairResult> AgentCore::reconcile(bool force, const RepairTrigger& trigger) {
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
  std::vector<std::string> link_warnings;
  holdLinksOf(desired_, desired_, "repair", link_warnings);
  AuditEvent entry = baseEvent("repaired", Action{ActionKind::kRepair, std::nullopt, "", false});
  entry.reason = trigger.reason;
  nlohmann::json detail = {{"found", kernelStateName(status.state)}, {"forced", force}};
  if (trigger.pid) detail["changed_by_pid"] = *trigger.pid;
  if (trigger.comm) detail["changed_by_comm"] = *trigger.comm;
  entry.what->ruleset_before = status.live->sha256;
  if (!report.ok()) {
    entry.event = "repair_failed";
    entry.outcome = "failed";
    detail["error"] = report.error().message;
    entry.detail = detail;
    (void)audit(std::move(entry));
    return report.error();
  }
  result.repaired = true;
  result.sha256_after = report->after.sha256;
  // A periodic re-apply that found everything intact is routine, not a repair worth a record.
  if (status.state != KernelState::kInSync) {
    ++repairs_;
    entry.outcome = "ok";
    entry.what->ruleset_after = report->after.sha256;
    entry.detail = detail;
    (void)audit(std::move(entry));
  }
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

Status AgentCore::resyncRoutes(const std::string& reason) {
  std::vector<std::string> link_warnings;
  holdLinksOf(desired_, desired_, reason, link_warnings);
  SHADAN_ASSIGN_OR_RETURN(
      auto plan, planGateway(policy_, gateway_id_, desired_.isolationPairs(), deps_.owner_mark));
  SHADAN_ASSIGN_OR_RETURN(auto before, routes_.list());
  std::vector<IpPrefix> desired = plan.blackhole_routes;
  std::sort(desired.begin(), desired.end());
  if (before == desired) return okStatus();
  Status synced = routes_.sync(plan.blackhole_routes);
  AuditEvent entry =
      baseEvent("routes_repaired", Action{ActionKind::kRepair, std::nullopt, "", false});
  entry.outcome = synced.ok() ? "ok" : "failed";
  entry.reason = reason;
  nlohmann::json missing = nlohmann::json::array();
  for (const auto& route : desired) {
    if (!std::binary_search(before.begin(), before.end(), route)) missing.push_back(route.toCidr());
  }
  entry.detail = nlohmann::json{{"missing_routes", missing}};
  if (!synced.ok()) (*entry.detail)["error"] = synced.error().message;
  (void)audit(std::move(entry));
  return synced;
}

Status AgentCore::storeTrustVersion(int64_t version) {
  DesiredState next = desired_;
  next.trust_version = version;
  SHADAN_RETURN_IF_ERROR(store_.save(next));
  desired_ = std::move(next);
  return okStatus();
}

}  // namespace shadan::agent

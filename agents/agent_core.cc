#include "agents/agent_core.h"

#include <algorithm>

#include "agents/planner/lockout_check.h"
#include "agents/planner/planner.h"
#include "common/dsse.h"
#include "common/logging.h"
#include "common/orders.h"
#include "common/sha256.h"

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

AgentCore::AgentCore(const Policy& policy, std::string gateway_id, AgentCoreDeps deps)
    : policy_(policy),
      gateway_id_(std::move(gateway_id)),
      deps_(std::move(deps)),
      store_(deps_.store),
      firewall_(deps_.firewall),
      routes_(deps_.routes),
      clock_(deps_.clock),
      enforcer_(deps_.firewall, deps_.routes) {}

AuditEvent AgentCore::baseEvent(const std::string& event, const Action& action) const {
  AuditEvent entry;
  entry.event = event;
  entry.where = AuditWhere{gateway_id_, deps_.host, deps_.version};
  if (!action.requested_by.empty()) {
    AuditWho who;
    who.requested_by = action.requested_by;
    entry.who = who;
  }
  AuditWhat what;
  what.action = action.name;
  if (action.isolation) {
    what.segment = action.isolation->segment;
    what.profile = action.isolation->profile;
  }
  entry.what = what;
  if (action.drill) entry.drill = true;
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
    if (order->breakglass) entry.detail = nlohmann::json{{"breakglass", true}};
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
  Action action{event, std::nullopt, "", false};
  AuditEvent entry = baseEvent(event, action);
  entry.what.reset();
  entry.outcome = outcome;
  entry.detail = detail;
  (void)audit(std::move(entry));
}

std::vector<IpPrefix> AgentCore::prefixesOf(const std::vector<Isolation>& isolations) const {
  std::vector<IpPrefix> prefixes;
  for (const auto& isolation : isolations) {
    const Segment* segment = policy_.findSegment(isolation.segment);
    if (!segment) continue;
    prefixes.insert(prefixes.end(), segment->prefixes.begin(), segment->prefixes.end());
  }
  std::sort(prefixes.begin(), prefixes.end());
  prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
  return prefixes;
}

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
                                               std::vector<Isolation> expired,
                                               const Action& action) {
  // Plan first: a state the policy cannot express is refused before anything is written.
  auto plan = planGateway(policy_, gateway_id_, next.isolationPairs());
  if (!plan.ok()) return rejected(action, plan.error());

  ChangeResult result;
  const bool adds_isolation = action.name == "isolate" && changed;
  std::optional<nlohmann::json> ruleset;
  if (adds_isolation) {
    // Safety rule 1: look for foreign rules that would drop the management path.
    auto listed = firewall_.listForeignRulesetJson();
    if (!listed.ok()) {
      result.warnings.push_back("lockout check skipped: " + listed.error().message);
    } else {
      ruleset = std::move(listed).value();
      auto findings = checkManagementPath(*ruleset, policy_.always_allow);
      if (!findings.ok()) {
        result.warnings.push_back("lockout check failed: " + findings.error().message);
      } else {
        bool certain = false;
        for (const auto& finding : *findings) {
          certain = certain || finding.severity == LockoutSeverity::kDrops;
          result.warnings.push_back("management path: " + describeLockoutFinding(finding));
        }
        if (certain && policy_.agent.lockout_check == LockoutCheckMode::kRefuse) {
          return rejected(action, makeError(ErrorCode::kInvalidArgument,
                                            "refused: a foreign rule drops the management path (" +
                                                result.warnings.front() +
                                                "); fix it or set agent.lockout_check to warn"));
        }
      }
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
    if (action.name == "restore") {
      return makeError(ErrorCode::kIo,
                       "refusing to restore without an audit record: " + receipt.error().message);
    }
    result.warnings.push_back("audit failed: " + receipt.error().message);
  }

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
  auto report = enforcer_.enforce(*plan);
  if (!report.ok()) {
    Error error = report.error();
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

  // Conntrack: NAT'd flows of a newly isolated segment must not live on in translated form;
  // on restore, optionally forget old sessions so they do not resume.
  std::vector<IpPrefix> flush;
  if (adds_isolation && action.isolation) {
    bool wanted = policy_.agent.conntrack_on_isolate == ConntrackOnIsolate::kAlways;
    if (policy_.agent.conntrack_on_isolate == ConntrackOnIsolate::kIfNat) {
      if (!ruleset) {
        if (auto listed = firewall_.listForeignRulesetJson(); listed.ok()) ruleset = *listed;
      }
      wanted = ruleset && rulesetHasNat(*ruleset);
    }
    if (wanted) flush = prefixesOf({*action.isolation});
  } else if (action.name == "restore" && changed && policy_.agent.conntrack_flush_on_restore) {
    std::vector<Isolation> removed;
    for (const auto& active : previous.isolations) {
      if (!next.contains(active.isolation)) removed.push_back(active.isolation);
    }
    flush = prefixesOf(removed);
  }
  if (!flush.empty()) {
    auto deleted = deps_.conntrack.deleteMatching(flush);
    if (deleted.ok()) {
      result.conntrack_deleted = *deleted;
    } else {
      result.warnings.push_back("conntrack entries not deleted: " + deleted.error().message);
    }
  }

  next.applied_ruleset_sha256 = report->after.sha256;
  // The kernel holds `next` now; if recording its hash fails, say so but do not undo the cut.
  // The hash is re-derived at every start (the stored state is applied and read back before
  // READY), so it need not cost a second disk sync on the order path.
  if (auto saved = store_.saveUnsynced(next); !saved.ok()) {
    result.warnings.push_back("ruleset hash not stored: " + saved.error().message);
  }
  desired_ = std::move(next);

  AuditEvent applied = baseEvent("applied", action);
  applied.outcome = changed ? "ok" : "unchanged";
  applied.what->ruleset_before = report->before.sha256;
  applied.what->ruleset_after = report->after.sha256;
  nlohmann::json detail = nlohmann::json::object();
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
  return commitAndApply(std::move(next), changed, std::move(expired),
                        Action{"start", std::nullopt, "agent", false});
}

Status AgentCore::load() {
  auto loaded = store_.load();
  if (!loaded.ok()) return loaded.error();
  desired_ = std::move(loaded).value();
  return okStatus();
}

Result<ChangeResult> AgentCore::isolate(const IsolateRequest& request) {
  const Action action{"isolate", Isolation{request.segment, request.profile}, request.origin,
                      request.drill};
  auto isolation = validateIsolation(request.segment, request.profile);
  if (!isolation.ok()) return rejected(action, isolation.error());
  if (request.drill && !request.ttl) {
    return rejected(action, makeError(ErrorCode::kInvalidArgument,
                                      "a drill needs a ttl: drills end on their own"));
  }

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
    active.drill = request.drill;
    next.isolations.push_back(std::move(active));
    std::sort(next.isolations.begin(), next.isolations.end(),
              [](const auto& a, const auto& b) { return a.isolation < b.isolation; });
    changed = true;
  } else if (existing->drill && !request.drill) {
    // A real order for what a drill isolated: it is real from now on, and holds until restored.
    existing->drill = false;
    existing->expires_unix_ms = deadline;
    existing->origin = request.origin;
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
  return commitAndApply(std::move(next), changed, std::move(expired), action);
}

Result<ChangeResult> AgentCore::restore(const RestoreRequest& request) {
  Action action{"restore", std::nullopt, request.origin, false};
  if (request.segment)
    action.isolation = Isolation{*request.segment, request.profile.value_or("*")};
  if (request.profile && !policy_.findProfile(*request.profile)) {
    return rejected(
        action, makeError(ErrorCode::kNotFound, "unknown profile \"" + *request.profile + "\""));
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
    return rejected(
        action, makeError(ErrorCode::kNotFound, "unknown segment \"" + *request.segment + "\""));
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
  return commitAndApply(std::move(next), true, std::move(expired),
                        Action{"expire", std::nullopt, "timer", false});
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
                        Action{"revert_drills", std::nullopt, "agent: " + why, true});
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
  AuditEvent entry = baseEvent("repaired", Action{"repair", std::nullopt, "", false});
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
  auto plan = planGateway(policy_, gateway_id_, desired_.isolationPairs());
  if (!plan.ok()) return plan.error();
  auto before = routes_.list();
  if (!before.ok()) return before.error();
  std::vector<IpPrefix> desired = plan->blackhole_routes;
  std::sort(desired.begin(), desired.end());
  if (*before == desired) return okStatus();
  Status synced = routes_.sync(plan->blackhole_routes);
  AuditEvent entry = baseEvent("routes_repaired", Action{"repair", std::nullopt, "", false});
  entry.outcome = synced.ok() ? "ok" : "failed";
  entry.reason = reason;
  nlohmann::json missing = nlohmann::json::array();
  for (const auto& route : desired) {
    if (!std::binary_search(before->begin(), before->end(), route))
      missing.push_back(route.toCidr());
  }
  entry.detail = nlohmann::json{{"missing_routes", missing}};
  if (!synced.ok()) (*entry.detail)["error"] = synced.error().message;
  (void)audit(std::move(entry));
  return synced;
}

}  // namespace shadan

namespace shadan {

Status AgentCore::useTrust(Trust trust, const Signer& agent_key) {
  SHADAN_RETURN_IF_ERROR(acceptTrustUpdate(desired_.trust_version, trust, clock_));
  if (trust.version != desired_.trust_version) {
    DesiredState next = desired_;
    next.trust_version = trust.version;
    SHADAN_RETURN_IF_ERROR(store_.save(next));
    desired_ = std::move(next);
  }
  trust_ = std::move(trust);
  agent_key_ = &agent_key;
  return okStatus();
}

OrderVerification AgentCore::checkEnvelope(std::string_view envelope_bytes) const {
  if (!trust_ || !agent_key_) {
    return OrderRejection{RejectReason::kTrustExpired,
                          "this agent has no trust file: signed orders cannot be verified"};
  }
  // The payload type says which verification applies; it is checked again, signed, inside.
  auto envelope = parseDsseEnvelope(envelope_bytes, "envelope", 256 * 1024);
  if (envelope.ok() && envelope->payload_type == kAuthzPayloadType) {
    return verifyBreakglass(envelope_bytes, *trust_, policy_, clock_,
                            desired_.replay.seen_command_ids, gateway_id_);
  }
  return verifyDispatch(envelope_bytes, *trust_, AgentSelf{gateway_id_, agent_key_->keyId()},
                        desired_.replay, policy_, clock_);
}

Result<ChangeResult> AgentCore::applyVerified(const VerifiedOrder& order) {
  const Authz& authz = order.authz;
  const Isolation isolation{authz.segment, authz.profile};
  const bool isolate = authz.action == OrderAction::kIsolate;
  Action action{isolate ? "isolate" : "restore", isolation, authz.requested_by, authz.drill,
                &order};
  if (auto valid = validateIsolation(authz.segment, authz.profile); !valid.ok()) {
    return rejected(action, valid.error());
  }

  DesiredState next = desired_;
  std::vector<Isolation> expired = dropExpired(next);
  if (order.dispatch) next.replay.last_seq = order.dispatch->seq;
  // An id is remembered while its authz could still pass the freshness check (step 7 refuses
  // an expired authz before it looks at the id), plus a margin for a clock stepped back.
  const int64_t now_ms = toUnixMillis(clock_.now());
  next.replay.seen_command_ids.forgetExpired(now_ms);
  next.replay.seen_command_ids.insert(authz.command_id, commandIdForgetAfterMs(authz));
  if (!order.breakglass) next.replay.segment_gens[authz.segment] = authz.segment_gen;

  bool changed_isolation = false;
  auto existing = std::find_if(next.isolations.begin(), next.isolations.end(),
                               [&](const ActiveIsolation& a) { return a.isolation == isolation; });
  if (isolate) {
    const int64_t now = toUnixMillis(clock_.now());
    std::optional<int64_t> deadline;
    if (authz.ttl_s) deadline = now + *authz.ttl_s * 1000;
    if (existing == next.isolations.end()) {
      ActiveIsolation active;
      active.isolation = isolation;
      active.since_unix_ms = now;
      active.expires_unix_ms = deadline;
      active.origin = "order:" + authz.command_id;
      active.drill = authz.drill;
      next.isolations.push_back(std::move(active));
      std::sort(next.isolations.begin(), next.isolations.end(),
                [](const auto& a, const auto& b) { return a.isolation < b.isolation; });
      changed_isolation = true;
    } else if (existing->expires_unix_ms && (!deadline || *deadline > *existing->expires_unix_ms)) {
      existing->expires_unix_ms = deadline;
      if (!authz.drill) existing->drill = false;
    }
  } else if (existing != next.isolations.end()) {
    next.isolations.erase(existing);
    changed_isolation = true;
  }
  auto result = commitAndApply(std::move(next), true, std::move(expired), action);
  if (result.ok()) result->changed = changed_isolation;
  return result;
}

OrderOutcome AgentCore::finishOrder(Ack ack, std::optional<OrderRejection> rejection,
                                    std::optional<ChangeResult> change) {
  for (const auto& active : desired_.isolations) {
    ack.isolated.push_back(active.isolation.segment + ":" + active.isolation.profile);
  }
  if (change) {
    ack.ruleset_sha256 = change->report.after.sha256;
  } else if (auto status = kernelStatus(); status.live) {
    ack.ruleset_sha256 = status.live->sha256;
  } else {
    ack.ruleset_sha256 = sha256Hex("");
  }
  if (ack.audit.entry_hash.empty()) {
    // No audit entry could be written for this order (the log refused): the all-zero hash says
    // so on the wire instead of pointing at an unrelated entry.
    ack.audit = AckAudit{0, std::string(64, '0')};
  }
  OrderOutcome outcome;
  const std::string payload = serializeAck(ack);
  const Signer* signers[] = {agent_key_};
  auto envelope = signDsse(kAckPayloadType, payload, signers);
  if (envelope.ok()) {
    outcome.ack_envelope = dsseEnvelopeToJson(*envelope);
  } else {
    logger("agent")->critical("event=ack_signing_failed error=\"{}\"", envelope.error().message);
  }
  outcome.ack = std::move(ack);
  outcome.rejection = std::move(rejection);
  outcome.change = std::move(change);
  return outcome;
}

OrderOutcome AgentCore::handleDispatch(std::string_view envelope_bytes) {
  Ack ack;
  ack.agent_id = gateway_id_;
  ack.received_at_ms = toUnixMillis(clock_.now());

  if (!trust_ || !agent_key_) {
    OrderRejection rejection{RejectReason::kTrustExpired, "this agent has no trust file"};
    ack.result = AckResult::kRejected;
    ack.reason = rejection.code();
    return finishOrder(std::move(ack), rejection, std::nullopt);
  }
  OrderVerification verification =
      verifyDispatch(envelope_bytes, *trust_, AgentSelf{gateway_id_, agent_key_->keyId()},
                     desired_.replay, policy_, clock_);
  if (!verification.ok()) {
    const OrderRejection& rejection = verification.rejection();
    // What the (unverified) dispatch claimed, so the controller can match the ack; the ack's
    // own signature says "this agent rejected what claimed to be seq N".
    if (auto envelope = parseDsseEnvelope(envelope_bytes, "dispatch", 256 * 1024); envelope.ok()) {
      if (auto dispatch = parseDispatch(envelope->payload); dispatch.ok()) ack.seq = dispatch->seq;
    }
    AuditEvent entry = baseEvent("rejected", Action{"order", std::nullopt, "controller", false});
    entry.outcome = "rejected";
    entry.reason = rejection.code() + ": " + rejection.message;
    if (ack.seq > 0) entry.seq = static_cast<uint64_t>(ack.seq);
    if (auto receipt = audit(std::move(entry)); receipt.ok()) {
      ack.audit = AckAudit{static_cast<int64_t>(receipt->log_seq), receipt->entry_hash};
    }
    ack.result = AckResult::kRejected;
    ack.reason = rejection.code();
    return finishOrder(std::move(ack), rejection, std::nullopt);
  }

  const VerifiedOrder& order = verification.order();
  ack.seq = order.dispatch->seq;
  ack.command_id = order.authz.command_id;
  last_receipt_.reset();
  auto change = applyVerified(order);
  if (!change.ok()) {
    ack.result = AckResult::kFailed;
    ack.reason = change.error().code == ErrorCode::kKernel ? "apply_failed" : "refused";
    // The entry that recorded the failure (or the refusal).
    if (last_receipt_) {
      ack.audit = AckAudit{static_cast<int64_t>(last_receipt_->log_seq), last_receipt_->entry_hash};
    }
    return finishOrder(std::move(ack), std::nullopt, std::nullopt);
  }
  ack.result = change->changed ? AckResult::kApplied : AckResult::kAlreadyApplied;
  ack.applied_at_ms = toUnixMillis(clock_.now());
  if (change->audit) {
    ack.audit = AckAudit{static_cast<int64_t>(change->audit->log_seq), change->audit->entry_hash};
  }
  return finishOrder(std::move(ack), std::nullopt, std::move(change).value());
}

void AgentCore::rememberAck(const OrderOutcome& outcome) {
  if (outcome.rejection || outcome.ack.seq <= 0 || outcome.ack_envelope.is_null()) return;
  const int64_t keep_ms = std::chrono::duration_cast<std::chrono::milliseconds>(kKeepAcks).count();
  Status kept = store_.rememberAck(outcome.ack.seq, outcome.ack_envelope.dump(),
                                   toUnixMillis(clock_.now()), keep_ms);
  if (!kept.ok()) {
    logger("agent")->error("event=ack_not_kept seq={} error=\"{}\"", outcome.ack.seq,
                           kept.error().message);
  }
}

std::vector<std::pair<int64_t, nlohmann::json>> AgentCore::recentAcks() {
  const auto since = clock_.now() - kKeepAcks;
  auto stored = store_.recentAcks(toUnixMillis(since), kResendAcks);
  if (!stored.ok()) {
    logger("agent")->error("event=acks_unreadable error=\"{}\"", stored.error().message);
    return {};
  }
  std::vector<std::pair<int64_t, nlohmann::json>> envelopes;
  for (const StoredAck& ack : *stored) {
    // Our own writing, but parsed without exceptions all the same.
    nlohmann::json envelope = nlohmann::json::parse(ack.envelope, nullptr, false);
    if (!envelope.is_discarded()) envelopes.emplace_back(ack.seq, std::move(envelope));
  }
  return envelopes;
}

Result<ChangeResult> AgentCore::applyBreakglass(std::string_view authz_envelope_bytes) {
  if (!trust_) return makeError(ErrorCode::kInvalidArgument, "no trust file: cannot verify");
  OrderVerification verification = verifyBreakglass(authz_envelope_bytes, *trust_, policy_, clock_,
                                                    desired_.replay.seen_command_ids, gateway_id_);
  if (!verification.ok()) {
    const OrderRejection& rejection = verification.rejection();
    AuditEvent entry = baseEvent("rejected", Action{"breakglass", std::nullopt, "local", false});
    entry.outcome = "rejected";
    entry.reason = rejection.code() + ": " + rejection.message;
    (void)audit(std::move(entry));
    return makeError(ErrorCode::kInvalidArgument,
                     "break-glass file refused (" + rejection.code() + "): " + rejection.message);
  }
  return applyVerified(verification.order());
}

}  // namespace shadan

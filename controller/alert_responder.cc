#include "controller/alert_responder.h"

#include <algorithm>
#include <chrono>

#include "common/isolation_scope.h"
#include "common/logging.h"
#include "common/strict_json.h"
#include "controller/orders_context.h"

namespace shadan::controller {

using nlohmann::json;

namespace {

constexpr size_t kRecentAlerts = 1000;
constexpr const char* kBreakerKind = "breaker";
constexpr const char* kBreakerId = "automatic";

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// The match members that do not need the alert's target.
bool matchesAlert(const RuleMatch& match, const std::string& detector, const Alert& alert) {
  if (match.detector && *match.detector != detector) return false;
  if (match.format && *match.format != alert.format) return false;
  if (!match.signature_ids.empty()) {
    if (alert.format != AlertFormat::kEve || !alert.signature_id) return false;
    if (std::find(match.signature_ids.begin(), match.signature_ids.end(), *alert.signature_id) ==
        match.signature_ids.end()) {
      return false;
    }
  }
  if (!match.rules.empty() &&
      (alert.format != AlertFormat::kShadan || !contains(match.rules, alert.rule))) {
    return false;
  }
  if (!match.notes.empty() &&
      (alert.format != AlertFormat::kZeek || !contains(match.notes, alert.rule))) {
    return false;
  }
  if (match.min_severity &&
      static_cast<int>(alert.severity) < static_cast<int>(*match.min_severity)) {
    return false;
  }
  return true;
}

bool inManagement(const Policy& policy, const IpPrefix& address) {
  return std::any_of(policy.always_allow.begin(), policy.always_allow.end(),
                     [&](const ManagementRule& rule) { return rule.prefix.overlaps(address); });
}

std::string cut(std::string text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text;
}

json alertSummary(const Alert& alert) {
  json out = {{"format", alertFormatName(alert.format)},
              {"source", alert.source},
              {"rule", alert.rule},
              {"severity", alertSeverityName(alert.severity)},
              {"src", alert.src ? json(alert.src->toString()) : json(nullptr)},
              {"dst", alert.dst ? json(alert.dst->toString()) : json(nullptr)},
              {"time", formatRfc3339(alert.time_ms)}};
  if (alert.signature_id) out["signature_id"] = *alert.signature_id;
  if (!alert.title.empty()) out["title"] = cut(alert.title, 200);
  return out;
}

}  // namespace

// What one alert is about under one rule.
struct AlertResponder::Target {
  ResponseAction action = ResponseAction::kRecord;
  std::string segment;
  std::optional<IpPrefix> host;  // quarantine-host: the address
  // Set when the address cannot be acted on: kProtected (management) or kRefused.
  std::optional<AlertDecision> unusable;
  std::string unusable_reason;

  std::string describe() const {
    return host ? "host " + host->toString() + " of segment " + segment : "segment " + segment;
  }
};

const char* alertDecisionName(AlertDecision decision) {
  switch (decision) {
    case AlertDecision::kActed:
      return "acted";
    case AlertDecision::kDryRun:
      return "dry_run";
    case AlertDecision::kDeduplicated:
      return "deduplicated";
    case AlertDecision::kRateLimited:
      return "rate_limited";
    case AlertDecision::kBreakerOpen:
      return "breaker_open";
    case AlertDecision::kOutOfScope:
      return "out_of_scope";
    case AlertDecision::kProtected:
      return "protected";
    case AlertDecision::kNoRule:
      return "no_rule";
    case AlertDecision::kRefused:
      return "refused";
  }
  return "?";
}

json AlertResult::toJson() const {
  json out = {{"decision", alertDecisionName(decision)},
              {"order_id", order_id ? json(*order_id) : json(nullptr)},
              {"reason", reason}};
  if (rule) out["rule"] = *rule;
  if (escalated_order_id) out["escalation"] = {{"order_id", *escalated_order_id}};
  return out;
}

AlertResponder::AlertResponder(const ResponseConfig& config, const std::vector<ApiToken>& tokens,
                               const Policy& policy, OrdersService& orders, ControllerStore& store,
                               AuditSink& audit, const Clock& clock)
    : config_(config),
      policy_(policy),
      orders_(orders),
      store_(store),
      audit_(audit),
      clock_(clock),
      actions_(store),
      window_(config.breaker.window_s * 1000) {
  for (const ApiToken& token : tokens) {
    if (token.role != ApiRole::kDetector) continue;
    detector(token.name).segments = token.segments;
  }
}

int64_t AlertResponder::nowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch())
      .count();
}

AlertResponder::DetectorState& AlertResponder::detector(const std::string& name) {
  auto it = detectors_.find(name);
  if (it != detectors_.end()) return it->second;
  const double per_min = config_.rate.per_detector_per_min;
  const double intake = config_.rate.intake_per_s;
  // A whole batch must fit in the intake bucket, or it could never be taken.
  const double intake_burst = std::max(2 * intake, static_cast<double>(kAlertBatchMaxRecords));
  return detectors_
      .emplace(name, DetectorState{std::nullopt, TokenBucket(per_min, per_min / 60.0),
                                   TokenBucket(intake_burst, intake)})
      .first->second;
}

Status AlertResponder::load() {
  SHADAN_RETURN_IF_ERROR(actions_.load());
  SHADAN_ASSIGN_OR_RETURN(auto document, store_.getDocument(kBreakerKind, kBreakerId));
  if (document) {
    auto parsed = parseStrictJson(document->body, "breaker", 16 * 1024);
    if (!parsed.ok() || !parsed->is_object()) {
      return makeError(ErrorCode::kState, "controller store: corrupt breaker state");
    }
    breaker_.open = parsed->value("open", false);
    breaker_.since_ms = parsed->value("since_ms", int64_t{0});
    breaker_.reason = parsed->value("reason", std::string());
    breaker_.by = parsed->value("by", std::string());
    std::vector<int64_t> window;
    for (const json& at : parsed->value("window_ms", json::array())) {
      if (!at.is_number_integer()) {
        return makeError(ErrorCode::kState, "controller store: corrupt breaker window");
      }
      window.push_back(at.get<int64_t>());
    }
    window_.restore(window);
  }
  return okStatus();
}

Status AlertResponder::saveBreaker() {
  StoredDocument document;
  document.kind = kBreakerKind;
  document.id = kBreakerId;
  document.body =
      json{{"open", breaker_.open},
           {"since_ms", breaker_.since_ms},
           {"reason", breaker_.reason},
           {"by", breaker_.by},
           // The automatic actions the breaker counts, so a restart does not reset them.
           {"window_ms", window_.times(nowMs())}}
          .dump();
  document.open = breaker_.open;
  document.created_ms = breaker_.since_ms;
  document.updated_ms = nowMs();
  return store_.putDocument(document);
}

Result<IntakeAnswer> AlertResponder::intake(const Caller& caller,
                                            const std::optional<IpPrefix>& peer, AlertFormat format,
                                            std::string_view body) {
  if (caller.role != ApiRole::kDetector) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not send alerts");
  }
  SHADAN_ASSIGN_OR_RETURN(auto records, parseAlertBatch(body, format));
  const int64_t now = nowMs();
  isolated_segments_.reset();  // read once per batch, when first needed
  IntakeAnswer answer;
  DetectorState& state = detector(caller.name);
  const double n = static_cast<double>(records.size());
  if (!state.intake.take(now, n)) {
    answer.retry_after_s = std::max<int64_t>(1, (state.intake.millisUntil(now, n) + 999) / 1000);
    ++counters_["requests_over_limit"];
    return answer;
  }
  for (size_t i = 0; i < records.size(); ++i) {
    const AlertRecord& record = records[i];
    AlertResult result;
    if (!record.alert.ok()) {
      result.decision = AlertDecision::kRefused;
      result.reason = record.alert.error().message;
    } else {
      result = decide(caller, peer, *record.alert, record.raw_sha256, now);
    }
    ++counters_[alertDecisionName(result.decision)];
    AuditEvent event = AuditEventBuilder("alert")
                           .outcome(alertDecisionName(result.decision))
                           .reason(result.reason)
                           .requestedBy(caller.identity())
                           .build();
    if (result.order_id) event.command_id = *result.order_id;
    json detail = {{"format", alertFormatName(format)},
                   {"record_sha256", record.raw_sha256},
                   {"index", record.index}};
    if (record.alert.ok()) detail["alert"] = alertSummary(*record.alert);
    if (result.rule) detail["rule"] = *result.rule;
    if (result.escalated_order_id) detail["escalation_order_id"] = *result.escalated_order_id;
    if (peer) detail["peer"] = peer->toString();
    event.detail = std::move(detail);
    // One store transaction and one audit sync per batch, both before the answer: the
    // staged actions (deduplicated counts, proposals) are written first, then the last entry's
    // sync covers every earlier one.
    const bool last = i + 1 == records.size();
    if (last) SHADAN_RETURN_IF_ERROR(actions_.flush());
    auto appended = last ? audit_.append(event) : audit_.appendBuffered(event);
    if (!appended.ok()) return appended.error();
    remember(caller, record.alert.ok() ? &*record.alert : nullptr, result, now);
    answer.results.push_back(std::move(result));
  }
  return answer;
}

AlertResult AlertResponder::decide(const Caller& caller, const std::optional<IpPrefix>& peer,
                                   const Alert& alert, const std::string& /*raw_sha256*/,
                                   int64_t now) {
  // The address a rule is about, and its segment.
  auto resolve = [&](const ResponseRule& rule) {
    Target target;
    target.action = rule.action;
    std::vector<IpPrefix> candidates;
    if (rule.host == HostSide::kSrc && alert.src) candidates.push_back(*alert.src);
    if (rule.host == HostSide::kDst && alert.dst) candidates.push_back(*alert.dst);
    if (rule.host == HostSide::kInternal) {
      if (alert.src) candidates.push_back(*alert.src);
      if (alert.dst) candidates.push_back(*alert.dst);
    }
    std::string first_error =
        "the alert has no " + std::string(hostSideName(rule.host)) + " address";
    for (const IpPrefix& address : candidates) {
      if (inManagement(policy_, address)) {
        target.unusable = AlertDecision::kProtected;
        target.unusable_reason = address.toString() + " is a management address";
        if (rule.host != HostSide::kInternal) return target;
        continue;
      }
      auto segment = segmentOfHost(policy_, address);
      if (segment.ok()) {
        target.segment = *segment;
        target.host = address;
        target.unusable.reset();
        return target;
      }
      if (first_error.rfind("the alert has no", 0) == 0) first_error = segment.error().message;
    }
    if (!target.unusable) {
      target.unusable = AlertDecision::kRefused;
      target.unusable_reason = rule.host == HostSide::kInternal
                                   ? "neither address lies in an internal segment"
                                   : first_error;
    }
    return target;
  };

  const ResponseRule* matched = nullptr;
  Target target;
  for (const ResponseRule& rule : config_.rules) {
    if (!matchesAlert(rule.match, caller.name, alert)) continue;
    Target candidate = resolve(rule);
    if (!rule.match.segments.empty() &&
        (candidate.unusable || !contains(rule.match.segments, candidate.segment))) {
      continue;
    }
    matched = &rule;
    target = std::move(candidate);
    break;
  }
  AlertResult result;
  if (matched == nullptr) {
    result.decision = AlertDecision::kNoRule;
    result.reason = "no response rule matches";
    return result;
  }
  result.rule = matched->name;
  if (matched->action == ResponseAction::kRecord) {
    result.decision = AlertDecision::kActed;
    result.reason = "recorded (rule " + matched->name + " only records)";
    return result;
  }
  if (target.unusable) {
    result.decision = *target.unusable;
    result.reason = target.unusable_reason;
    return result;
  }
  if (matched->action == ResponseAction::kIsolateSegment) target.host.reset();

  AlertResult guarded = [&]() {
    if (auto why = protectedReason(target, peer)) {
      return AlertResult{AlertDecision::kProtected, std::nullopt, *why, matched->name};
    }
    const DetectorState& state = detector(caller.name);
    if (!state.segments) {
      return AlertResult{AlertDecision::kOutOfScope, std::nullopt,
                         "token " + caller.name + " is scoped to no segment", matched->name};
    }
    if (!contains(*state.segments, "*") && !contains(*state.segments, target.segment)) {
      return AlertResult{AlertDecision::kOutOfScope, std::nullopt,
                         "token " + caller.name + " may not act on segment " + target.segment,
                         matched->name};
    }
    if (const AutoAction* open = actions_.covering(target.segment, target.host)) {
      AutoAction attached = *open;
      ++attached.alerts;
      attached.last_alert_ms = now;
      actions_.stage(attached);  // written with the batch (intake flushes before answering)
      return AlertResult{AlertDecision::kDeduplicated, attached.id,
                         target.describe() + " is already " +
                             (attached.state == AutoActionState::kActive ? "cut" : "proposed"),
                         matched->name};
    }
    if (segmentIsolated(target.segment)) {
      return AlertResult{AlertDecision::kDeduplicated, std::nullopt,
                         "segment " + target.segment + " is already isolated", matched->name};
    }
    if (matched->mode == ResponseMode::kDryRun) {
      return AlertResult{AlertDecision::kDryRun, std::nullopt,
                         "would " + std::string(responseActionName(target.action)) + " " +
                             target.describe() + " for " + std::to_string(matched->ttl_s) + " s",
                         matched->name};
    }
    if (!detector(caller.name).actions.take(now)) {
      return AlertResult{AlertDecision::kRateLimited, std::nullopt,
                         "detector " + caller.name + " is over " +
                             std::to_string(config_.rate.per_detector_per_min) +
                             " automatic actions per minute",
                         matched->name};
    }
    if (auto why = breakerTrips(target, now)) {
      return propose(caller, *matched, target, AlertDecision::kBreakerOpen, *why, now);
    }
    if (matched->mode == ResponseMode::kApprove) {
      return propose(caller, *matched, target, AlertDecision::kActed,
                     "proposed for operator approval (rule mode approve)", now);
    }
    return act(caller, *matched, target, now);
  }();
  if (guarded.decision == AlertDecision::kActed && target.host && matched->escalate &&
      guarded.order_id && matched->mode == ResponseMode::kAuto) {
    escalate(caller, *matched, target, peer, now, guarded);
  }
  return guarded;
}

bool AlertResponder::segmentIsolated(const std::string& segment) {
  if (!isolated_segments_) {
    isolated_segments_.emplace();
    if (auto segments = store_.listSegments(); segments.ok()) {
      for (const SegmentRecord& record : *segments) {
        if (record.isolated) isolated_segments_->insert(record.segment);
      }
    }
  }
  return isolated_segments_->count(segment) > 0;
}

std::optional<std::string> AlertResponder::protectedReason(
    const Target& target, const std::optional<IpPrefix>& peer) const {
  const Segment* segment = policy_.findSegment(target.segment);
  if (segment != nullptr && segment->is_protected) {
    return "segment " + target.segment + " is protected: never cut automatically";
  }
  // For a segment, any of these addresses inside it; for a host, the host itself.
  auto hits = [&](const IpPrefix& address) {
    if (target.host) return target.host->overlaps(address);
    return segment != nullptr &&
           std::any_of(segment->prefixes.begin(), segment->prefixes.end(),
                       [&](const IpPrefix& prefix) { return prefix.overlaps(address); });
  };
  if (target.host) {
    for (const IpPrefix& prefix : config_.protected_hosts) {
      if (hits(prefix))
        return target.host->toString() + " is a protected host (" + prefix.toString() + ")";
    }
  }
  if (peer && hits(*peer)) {
    return "the detector's own address " + peer->toString() + " would be cut (feedback loop)";
  }
  if (protected_addresses_) {
    for (const IpPrefix& address : protected_addresses_()) {
      if (hits(address)) {
        return address.toString() + " is the controller's or a gateway's own address";
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> AlertResponder::breakerTrips(const Target& target, int64_t now) {
  if (breaker_.open) return "the circuit breaker is open (" + breaker_.reason + ")";
  std::string why;
  const size_t count = window_.count(now);
  if (count >= static_cast<size_t>(config_.breaker.max_actions)) {
    why = "more than " + std::to_string(config_.breaker.max_actions) +
          " automatic actions within " + std::to_string(config_.breaker.window_s) + " s";
  } else if (target.action == ResponseAction::kIsolateSegment) {
    size_t total = 0;
    for (const auto& [name, segment] : policy_.segments) total += segment.is_default ? 0 : 1;
    size_t isolated = 0;
    if (auto segments = store_.listSegments(); segments.ok()) {
      for (const SegmentRecord& record : *segments) {
        const Segment* segment = policy_.findSegment(record.segment);
        if (record.isolated && segment != nullptr && !segment->is_default) ++isolated;
      }
    }
    if (total > 0 &&
        (isolated + 1) * 100 > static_cast<size_t>(config_.breaker.max_segments_percent) * total) {
      why = "isolating " + target.segment + " would cut " + std::to_string(isolated + 1) + " of " +
            std::to_string(total) + " segments (more than " +
            std::to_string(config_.breaker.max_segments_percent) + "%)";
    }
  }
  if (why.empty()) return std::nullopt;
  breaker_ = CircuitBreakerState{true, now, why, "automatic"};
  if (Status saved = saveBreaker(); !saved.ok()) {
    logger("response")->error("cannot persist the open breaker: {}", saved.error().message);
  }
  (void)audit_.append(AuditEventBuilder("breaker_opened")
                          .outcome("open")
                          .reason(why)
                          .requestedBy("controller")
                          .build());
  logger("response")->warn("circuit breaker opened: {}", why);
  return "the circuit breaker opened: " + why;
}

AutoAction AlertResponder::newAction(const Caller& caller, const ResponseRule& rule,
                                     const Target& target, AutoActionState state, int64_t now) {
  AutoAction action;
  action.state = state;
  action.detector = caller.name;
  action.rule = rule.name;
  action.scope = target.host ? IsolationScope::kHost : IsolationScope::kSegment;
  action.segment = target.segment;
  action.host = target.host;
  action.profile = rule.profile;
  action.ttl_s = rule.ttl_s;
  action.created_ms = now;
  action.expires_ms = now + rule.ttl_s * 1000;
  action.last_alert_ms = now;
  return action;
}

AlertResult AlertResponder::propose(const Caller& caller, const ResponseRule& rule,
                                    const Target& target, AlertDecision decision,
                                    const std::string& why, int64_t now) {
  AutoAction action = newAction(caller, rule, target, AutoActionState::kProposed, now);
  action.id = randomUuid();
  action.why = why;
  actions_.stage(action);  // written with the batch (intake flushes before answering)
  return AlertResult{decision, action.id, why + "; awaiting an operator's confirm or release",
                     rule.name};
}

Result<OrderAccepted> AlertResponder::isolateFor(const Caller& caller, const AutoAction& action,
                                                 const std::string& reason, bool automatic) {
  IsolateRequest request;
  request.scope = action.scope;
  request.segment = action.segment;
  if (action.host) request.hosts = {action.host->toString()};
  request.profile = action.profile;
  request.reason = cut(reason, 500);
  if (automatic) request.ttl_s = action.ttl_s;
  request.automatic = automatic;
  return orders_.isolate(caller, request);
}

AlertResult AlertResponder::act(const Caller& caller, const ResponseRule& rule,
                                const Target& target, int64_t now) {
  AutoAction action = newAction(caller, rule, target, AutoActionState::kActive, now);
  action.why = "rule " + rule.name;
  auto accepted = isolateFor(caller, action, "automatic response: rule " + rule.name, true);
  if (!accepted.ok()) {
    return AlertResult{AlertDecision::kRefused, std::nullopt,
                       "the order was refused: " + accepted.error().message, rule.name};
  }
  action.id = accepted->order_id;
  window_.add(now);
  if (Status saved = saveBreaker(); !saved.ok()) {
    logger("response")->error("the breaker's window was not stored: {}", saved.error().message);
  }
  isolated_segments_.reset();  // the order may have isolated a segment
  if (Status put = actions_.put(action); !put.ok()) {
    logger("response")
        ->error("order {} was sent but its automatic action was not stored: {}", action.id,
                put.error().message);
  }
  return AlertResult{AlertDecision::kActed, action.id,
                     std::string(responseActionName(target.action)) + " " + target.describe() +
                         " for " + std::to_string(rule.ttl_s) + " s",
                     rule.name};
}

void AlertResponder::escalate(const Caller& caller, const ResponseRule& rule,
                              const Target& host_target, const std::optional<IpPrefix>& peer,
                              int64_t now, AlertResult& result) {
  const Escalation& escalation = *rule.escalate;
  const size_t hosts =
      actions_.distinctHostsSince(host_target.segment, now - escalation.window_s * 1000);
  if (hosts < static_cast<size_t>(escalation.hosts)) return;
  if (actions_.covering(host_target.segment, std::nullopt) != nullptr) return;
  Target target;
  target.action = ResponseAction::kIsolateSegment;
  target.segment = host_target.segment;
  ResponseRule segment_rule = rule;
  segment_rule.action = ResponseAction::kIsolateSegment;
  segment_rule.name = rule.name + "/escalate";
  segment_rule.escalate.reset();
  const std::string what = std::to_string(hosts) + " hosts of " + target.segment +
                           " quarantined within " + std::to_string(escalation.window_s) + " s";
  AlertResult escalated;
  if (auto why = protectedReason(target, peer)) {
    escalated = AlertResult{AlertDecision::kProtected, std::nullopt, *why, segment_rule.name};
  } else if (auto tripped = breakerTrips(target, now)) {
    escalated = propose(caller, segment_rule, target, AlertDecision::kBreakerOpen, *tripped, now);
  } else {
    escalated = act(caller, segment_rule, target, now);
  }
  if (escalated.order_id) result.escalated_order_id = escalated.order_id;
  result.reason += "; escalation (" + what + "): " + alertDecisionName(escalated.decision) + ": " +
                   escalated.reason;
  AuditEvent event = AuditEventBuilder("escalation")
                         .outcome(alertDecisionName(escalated.decision))
                         .reason(what + ": " + escalated.reason)
                         .requestedBy(caller.identity())
                         .what("isolate", target.segment, rule.profile)
                         .build();
  event.command_id = escalated.order_id;
  (void)audit_.append(event);
}

void AlertResponder::remember(const Caller& caller, const Alert* alert, const AlertResult& result,
                              int64_t now) {
  recent_.push_front(RecentAlert{caller.name, now, result,
                                 alert != nullptr ? std::optional<Alert>(*alert) : std::nullopt});
  if (recent_.size() > kRecentAlerts) recent_.pop_back();
}

json AlertResponder::recentAlerts(size_t limit) const {
  json out = json::array();
  for (const RecentAlert& recent : recent_) {
    if (out.size() >= limit) break;
    json entry = recent.result.toJson();
    entry["detector"] = recent.detector;
    entry["time"] = formatRfc3339(recent.time_ms);
    if (recent.alert) entry["alert"] = alertSummary(*recent.alert);
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace shadan::controller

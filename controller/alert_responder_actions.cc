// AlertResponder, second half: what happens to automatic actions after the alert (confirm,
// release, a detector's clear, expiry), the circuit breaker by hand, and the views.

#include "common/logging.h"
#include "controller/alert_responder.h"
#include "controller/orders_context.h"

namespace shadan::controller {

using nlohmann::json;

Status AlertResponder::closeAction(AutoAction action, AutoActionState state, const Caller& caller,
                                   const std::string& reason, std::optional<std::string> followup) {
  const char* event = state == AutoActionState::kConfirmed  ? "auto_action_confirmed"
                      : state == AutoActionState::kReleased ? "auto_action_released"
                      : state == AutoActionState::kDeclined ? "auto_action_declined"
                                                            : "auto_action_expired";
  action.state = state;
  action.closed_by = caller.identity();
  action.closed_reason = reason;
  action.followup_order_id = followup;
  SHADAN_RETURN_IF_ERROR(actions_.put(action));
  AuditEvent entry =
      AuditEventBuilder(event)
          .outcome(autoActionStateName(state))
          .reason(reason)
          .requestedBy(caller.identity())
          .what(isolationScopeName(action.scope), action.segment, action.profile)
          .command(action.id)
          .detail(json{{"detector", action.detector},
                       {"rule", action.rule},
                       {"followup_order_id", followup ? json(*followup) : json(nullptr)}})
          .build();
  if (action.host) entry.what->hosts = std::vector<std::string>{action.host->toCidr()};
  SHADAN_RETURN_IF_ERROR(audit_.append(entry));
  return okStatus();
}

Result<OrderAccepted> AlertResponder::releaseOrder(const Caller& caller, const AutoAction& action,
                                                   const std::string& reason) {
  RestoreRequest request;
  request.scope = action.scope;
  request.segment = action.segment;
  if (action.host) request.hosts = {action.host->toString()};
  request.profile = action.profile;
  // A UTF-8 character cut in half here would only be an ugly reason: the limit is 512 bytes.
  request.reason = reason.substr(0, 500);
  request.automatic = true;
  return orders_.restore(caller, request);
}

Result<AutoAction> AlertResponder::openAction(const Caller& caller, const std::string& id,
                                              const std::string& reason, std::string_view verb) {
  if (caller.role != ApiRole::kOperator) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not " +
                     std::string(verb));
  }
  SHADAN_RETURN_IF_ERROR(checkReason(reason));
  SHADAN_RETURN_IF_ERROR(sweep());
  SHADAN_ASSIGN_OR_RETURN(std::optional<AutoAction> found, actions_.find(id));
  if (!found) return makeError(ErrorCode::kNotFound, "no automatic action " + id);
  if (!found->open()) {
    return conflict("automatic action " + id + " is " + autoActionStateName(found->state));
  }
  return std::move(*found);
}

Result<json> AlertResponder::confirm(const Caller& caller, const std::string& id,
                                     const std::string& reason) {
  SHADAN_ASSIGN_OR_RETURN(const AutoAction action, openAction(caller, id, reason, "confirm"));
  // The operator's own isolate of the same target, without a TTL: from now on it is a human
  // decision, and the agents no longer let a release lift it.
  SHADAN_ASSIGN_OR_RETURN(
      auto accepted,
      isolateFor(caller, action, "confirmed automatic action " + id + ": " + reason, false));
  SHADAN_RETURN_IF_ERROR(
      closeAction(action, AutoActionState::kConfirmed, caller, reason, accepted.order_id));
  return json{{"id", id}, {"state", "confirmed"}, {"order", accepted.toJson()}};
}

Result<json> AlertResponder::release(const Caller& caller, const std::string& id,
                                     const std::string& reason) {
  SHADAN_ASSIGN_OR_RETURN(const AutoAction action, openAction(caller, id, reason, "release"));
  if (action.state == AutoActionState::kProposed) {
    SHADAN_RETURN_IF_ERROR(
        closeAction(action, AutoActionState::kDeclined, caller, reason, std::nullopt));
    return json{{"id", id}, {"state", "declined"}, {"order", nullptr}};
  }
  SHADAN_ASSIGN_OR_RETURN(
      auto accepted,
      releaseOrder(caller, action, "released automatic action " + id + ": " + reason));
  SHADAN_RETURN_IF_ERROR(
      closeAction(action, AutoActionState::kReleased, caller, reason, accepted.order_id));
  return json{{"id", id}, {"state", "released"}, {"order", accepted.toJson()}};
}

Result<json> AlertResponder::clear(const Caller& caller, const IpPrefix& host,
                                   const std::string& reason) {
  if (caller.role != ApiRole::kDetector) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not clear alerts");
  }
  SHADAN_RETURN_IF_ERROR(checkReason(reason));
  SHADAN_RETURN_IF_ERROR(sweep());
  std::vector<AutoAction> mine;
  for (const auto& [id, action] : actions_.open()) {
    if (action.detector == caller.name && action.host && action.host->overlaps(host)) {
      mine.push_back(action);
    }
  }
  json released = json::array();
  for (const AutoAction& action : mine) {
    if (action.state == AutoActionState::kProposed) {
      SHADAN_RETURN_IF_ERROR(
          closeAction(action, AutoActionState::kDeclined, caller, reason, std::nullopt));
      released.push_back({{"id", action.id}, {"state", "declined"}, {"order", nullptr}});
      continue;
    }
    SHADAN_ASSIGN_OR_RETURN(
        auto accepted,
        releaseOrder(caller, action, "cleared by " + caller.identity() + ": " + reason));
    SHADAN_RETURN_IF_ERROR(
        closeAction(action, AutoActionState::kReleased, caller, reason, accepted.order_id));
    released.push_back({{"id", action.id}, {"state", "released"}, {"order", accepted.toJson()}});
  }
  return json{{"host", host.toString()}, {"released", std::move(released)}};
}

Status AlertResponder::setBreaker(const Caller& caller, bool open, const std::string& reason) {
  if (caller.role != ApiRole::kOperator) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) +
                     " may not open or close the breaker");
  }
  SHADAN_RETURN_IF_ERROR(checkReason(reason));
  if (breaker_.open == open) {
    return conflict(std::string("the circuit breaker is already ") + (open ? "open" : "closed"));
  }
  const CircuitBreakerState before = breaker_;
  breaker_ = CircuitBreakerState{open, nowMs(), reason, caller.identity()};
  if (Status saved = saveBreaker(); !saved.ok()) {
    breaker_ = before;
    return saved;
  }
  // A closed breaker counts afresh: the actions that opened it must not trip it again at once.
  if (!open) window_ = ActionWindow(config_.breaker.window_s * 1000);
  logger("response")
      ->warn("circuit breaker {} by {}", open ? "opened" : "closed", caller.identity());
  SHADAN_RETURN_IF_ERROR(
      audit_.append(AuditEventBuilder(open ? "breaker_opened" : "breaker_closed")
                        .outcome(open ? "open" : "closed")
                        .reason(reason)
                        .requestedBy(caller.identity())
                        .detail(json{{"was_open_since", timeOrNull(before.since_ms)},
                                     {"was_reason", before.reason}})
                        .build()));
  return okStatus();
}

Status AlertResponder::sweep() {
  const int64_t now = nowMs();
  for (AutoAction& action : actions_.lapsed(now)) {
    action.state = AutoActionState::kExpired;
    action.closed_reason = "its time ran out";
    SHADAN_RETURN_IF_ERROR(actions_.put(action));
    SHADAN_RETURN_IF_ERROR(audit_.append(AuditEventBuilder("auto_action_expired")
                                             .outcome("expired")
                                             .reason(action.closed_reason)
                                             .requestedBy("controller")
                                             .command(action.id)
                                             .build()));
  }
  return okStatus();
}

json AlertResponder::openActions() const {
  json out = json::array();
  for (const auto& [id, action] : actions_.open()) {
    json entry = action.toJson();
    entry["created_at"] = timeOrNull(action.created_ms);
    entry["expires_at"] = timeOrNull(action.expires_ms);
    entry["awaiting"] = "confirm or release";
    out.push_back(std::move(entry));
  }
  return out;
}

json AlertResponder::status() {
  const int64_t now = nowMs();
  json detectors = json::array();
  for (auto& [name, state] : detectors_) {
    detectors.push_back({{"name", name},
                         {"segments", state.segments ? json(*state.segments) : json(nullptr)},
                         {"actions_available", static_cast<int64_t>(state.actions.available(now))},
                         {"intake_available", static_cast<int64_t>(state.intake.available(now))}});
  }
  json counters = json::object();
  for (const auto& [name, count] : counters_) counters[name] = count;
  return json{{"breaker",
               {{"open", breaker_.open},
                {"since", timeOrNull(breaker_.since_ms)},
                {"reason", breaker_.reason},
                {"by", breaker_.by},
                {"actions_in_window", window_.count(now)},
                {"max_actions", config_.breaker.max_actions},
                {"window_s", config_.breaker.window_s},
                {"max_segments_percent", config_.breaker.max_segments_percent}}},
              {"rate",
               {{"per_detector_per_min", config_.rate.per_detector_per_min},
                {"intake_per_s", config_.rate.intake_per_s}}},
              {"rules", config_.rules.size()},
              {"detectors", std::move(detectors)},
              {"actions", openActions()},
              {"alerts", std::move(counters)}};
}

}  // namespace shadan::controller

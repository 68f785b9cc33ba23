#include "controller/orders_context.h"

#include <algorithm>

#include "common/logging.h"

namespace shadan::controller {

using nlohmann::json;

namespace {
constexpr size_t kMaxReasonBytes = 512;
constexpr size_t kMaxTicketBytes = 256;  // an authz name (common/orders.cc)
}  // namespace

OrdersContext::OrdersContext(const Policy& policy_in, const Trust& trust_in,
                             const Signer& controller_key_in, ControllerStore& store_in,
                             AgentHub& channel_in, AuditSink& audit_in, const Clock& clock_in,
                             OrdersServiceOptions options_in)
    : policy(policy_in),
      trust(trust_in),
      controller_key(controller_key_in),
      store(store_in),
      channel(channel_in),
      audit_sink(audit_in),
      clock(clock_in),
      options(std::move(options_in)) {
  if (!options.new_id) options.new_id = randomUuid;
}

int64_t OrdersContext::nowMs() const { return toUnixMillis(clock.now()); }

void OrdersContext::defer(std::function<void()> work) {
  if (options.defer) {
    options.defer(std::move(work));
  } else {
    work();
  }
}

Status OrdersContext::audit(AuditEvent event, bool synced) {
  auto receipt = synced ? audit_sink.append(event) : audit_sink.appendBuffered(event);
  if (!receipt.ok()) {
    logger("controller")
        ->error("audit append failed event={} error={}", event.event, receipt.error().message);
    return receipt.error().withContext("audit log");
  }
  return okStatus();
}

Status OrdersContext::auditedTransaction(const std::function<Result<AuditEvent>()>& fn) {
  std::optional<AuditEvent> appended;
  const Status stored = store.transaction([&]() -> Status {
    SHADAN_ASSIGN_OR_RETURN(AuditEvent event, fn());
    SHADAN_RETURN_IF_ERROR(audit(event));
    appended = std::move(event);
    return okStatus();
  });
  if (stored.ok() || !appended) return stored;
  // The entry is in the log but its change is not in the store (commit_failed), or may not
  // be: a store on the network that lost its answer mid-commit (commit_unknown).
  const bool unknown = stored.error().code == ErrorCode::kUnavailable &&
                       stored.error().message.find(kStoreOutcomeUnknown) != std::string::npos;
  AuditEventBuilder failed(unknown ? "commit_unknown" : "commit_failed");
  failed.outcome(unknown ? "unknown" : "not_recorded")
      .reason(unknown ? std::string("store_outcome_unknown")
                      : std::string(errorCodeName(stored.error().code)))
      .markDrill(appended->drill.value_or(false))
      .detail(json{{"event", appended->event}});
  if (appended->command_id) failed.command(*appended->command_id);
  (void)audit(failed.build());
  return stored;
}

std::vector<std::string> OrdersContext::operatorIdentities(
    const std::vector<DsseSignature>& signatures, bool drill_order) const {
  std::vector<std::string> out;
  for (const auto& signature : signatures) {
    const TrustKey* key = trust.findKey(signature.keyid);
    if (key == nullptr || !key->signsAsOperator(drill_order)) continue;
    if (std::find(out.begin(), out.end(), key->identity) == out.end()) {
      out.push_back(key->identity);
    }
  }
  return out;
}

std::string OrdersContext::requesterOf(const Caller& caller) const {
  if (trust.isLab() && caller.role == ApiRole::kOperator) return "drill:" + caller.name;
  return caller.identity();
}

Status OrdersContext::checkLabDrill(bool drill) const {
  if (!trust.isLab() || drill) return okStatus();
  return forbidden(
      "lab_trust_requires_drill: this controller runs with a lab trust file (purpose \"lab\"): "
      "every order must be a drill (\"drill\": true)");
}

namespace {
bool hasControlCharacter(std::string_view text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return true;
  }
  return false;
}
}  // namespace

Status checkReason(const std::string& reason) {
  if (reason.empty()) return badRequest("reason: must not be empty");
  if (reason.size() > kMaxReasonBytes) return badRequest("reason: longer than 512 bytes");
  if (hasControlCharacter(reason)) return badRequest("reason: contains a control character");
  return okStatus();
}

Status checkTicket(const std::optional<std::string>& ticket) {
  if (!ticket) return okStatus();
  if (ticket->empty()) return badRequest("ticket: must not be empty");
  if (ticket->size() > kMaxTicketBytes) return badRequest("ticket: longer than 256 bytes");
  if (hasControlCharacter(*ticket)) return badRequest("ticket: contains a control character");
  return okStatus();
}

json timeOrNull(int64_t ms) { return ms > 0 ? json(formatRfc3339(ms)) : json(nullptr); }

AuditEventBuilder& AuditEventBuilder::outcome(std::string v) {
  e_.outcome = std::move(v);
  return *this;
}

AuditEventBuilder& AuditEventBuilder::reason(std::optional<std::string> v) {
  e_.reason = std::move(v);
  return *this;
}

AuditEventBuilder& AuditEventBuilder::requestedBy(std::string v) {
  who().requested_by = std::move(v);
  return *this;
}

AuditEventBuilder& AuditEventBuilder::approvers(std::vector<std::string> v) {
  who().approvers = std::move(v);
  return *this;
}

AuditEventBuilder& AuditEventBuilder::keyids(std::vector<std::string> v) {
  who().keyids = std::move(v);
  return *this;
}

AuditEventBuilder& AuditEventBuilder::controller(std::string v) {
  who().controller = std::move(v);
  return *this;
}

AuditEventBuilder& AuditEventBuilder::what(std::string action, std::string segment,
                                           std::string profile) {
  AuditWhat w;
  w.action = std::move(action);
  if (!segment.empty()) w.segment = std::move(segment);  // uplink and island name none
  w.profile = std::move(profile);
  e_.what = std::move(w);
  return *this;
}

AuditEventBuilder& AuditEventBuilder::why(std::string reason, std::optional<std::string> ticket) {
  AuditWhy w;
  w.reason = std::move(reason);
  w.ticket = std::move(ticket);
  e_.why = std::move(w);
  return *this;
}

AuditEventBuilder& AuditEventBuilder::agent(std::string agent_id,
                                            std::optional<std::string> version) {
  AuditWhere w;
  w.agent_id = std::move(agent_id);
  w.version = std::move(version);
  e_.where = std::move(w);
  return *this;
}

AuditEventBuilder& AuditEventBuilder::command(std::string v) {
  e_.command_id = std::move(v);
  return *this;
}

AuditEventBuilder& AuditEventBuilder::seq(int64_t v) {
  if (v > 0) e_.seq = static_cast<uint64_t>(v);
  return *this;
}

AuditEventBuilder& AuditEventBuilder::authzSha256(std::string v) {
  e_.authz_sha256 = std::move(v);
  return *this;
}

AuditEventBuilder& AuditEventBuilder::drill(bool v) {
  e_.drill = v;
  return *this;
}

AuditEventBuilder& AuditEventBuilder::markDrill(bool v) {
  if (v) e_.drill = true;
  return *this;
}

AuditEventBuilder& AuditEventBuilder::detail(json v) {
  e_.detail = std::move(v);
  return *this;
}

AuditWho& AuditEventBuilder::who() {
  if (!e_.who) e_.who = AuditWho{};
  return *e_.who;
}

}  // namespace shadan::controller

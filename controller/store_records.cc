#include "controller/store_records.h"

#include <algorithm>
#include <array>
#include <span>
#include <string>

#include "common/ed25519.h"

namespace shadan::controller {
namespace {

using json = nlohmann::json;

template <typename Enum, size_t N>
std::optional<Enum> enumFromName(std::string_view name, const std::array<Enum, N>& values,
                                 const char* (*nameOf)(Enum)) {
  for (Enum value : values) {
    if (name == nameOf(value)) return value;
  }
  return std::nullopt;
}

std::string bytesToBase64(std::string_view bytes) {
  return base64Encode(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

// Reads the fields of one document, remembering the first that is missing or of the wrong type.
class Fields {
 public:
  Fields(const json& doc, std::string what) : doc_(doc), what_(std::move(what)) {
    if (!doc_.is_object()) bad_ = true;
  }

  std::string text(const char* name) {
    const json* field = find(name);
    if (field == nullptr || !field->is_string()) return fail();
    return field->get<std::string>();
  }
  std::optional<std::string> optionalText(const char* name) {
    const json* field = find(name);
    if (field == nullptr) {
      fail();
      return std::nullopt;
    }
    if (field->is_null()) return std::nullopt;
    if (!field->is_string()) {
      fail();
      return std::nullopt;
    }
    return field->get<std::string>();
  }
  std::string bytes(const char* name) {
    auto decoded = base64Decode(text(name));
    if (!decoded.ok()) return fail();
    return std::string(decoded->begin(), decoded->end());
  }
  int64_t number(const char* name) {
    const json* field = find(name);
    if (field == nullptr || !field->is_number_integer()) {
      fail();
      return 0;
    }
    return field->get<int64_t>();
  }
  bool flag(const char* name) {
    const json* field = find(name);
    if (field == nullptr || !field->is_boolean()) {
      fail();
      return false;
    }
    return field->get<bool>();
  }
  const json& raw(const char* name) {
    static const json kNull;
    const json* field = find(name);
    if (field == nullptr) {
      fail();
      return kNull;
    }
    return *field;
  }
  template <typename T>
  T parsed(std::optional<T> value) {
    if (!value) {
      fail();
      return T{};
    }
    return *value;
  }

  Status status(const std::string& id) const {
    if (!bad_) return okStatus();
    return makeError(ErrorCode::kState, "controller store: corrupt " + what_ + " " + id);
  }

 private:
  const json* find(const char* name) const {
    if (!doc_.is_object()) return nullptr;
    auto found = doc_.find(name);
    return found == doc_.end() ? nullptr : &*found;
  }
  std::string fail() {
    bad_ = true;
    return {};
  }

  const json& doc_;
  std::string what_;
  bool bad_ = false;
};

}  // namespace

std::optional<AgentStatus> parseAgentStatus(std::string_view name) {
  return enumFromName(name, std::array{AgentStatus::kPending, AgentStatus::kApproved},
                      &agentStatusName);
}

std::optional<OrderState> parseOrderState(std::string_view name) {
  return enumFromName(
      name,
      std::array{OrderState::kAwaitingApproval, OrderState::kDispatched, OrderState::kExpired},
      &orderStateName);
}

std::optional<DispatchState> parseDispatchState(std::string_view name) {
  return enumFromName(
      name,
      std::array{DispatchState::kPending, DispatchState::kApplied, DispatchState::kAlreadyApplied,
                 DispatchState::kFailed, DispatchState::kRejected, DispatchState::kExpired},
      &dispatchStateName);
}

std::optional<ApprovalState> parseApprovalState(std::string_view name) {
  return enumFromName(
      name, std::array{ApprovalState::kPending, ApprovalState::kComplete, ApprovalState::kExpired},
      &approvalStateName);
}

json signaturesToJson(const std::vector<DsseSignature>& signatures) {
  json out = json::array();
  for (const auto& sig : signatures) {
    out.push_back({{"keyid", sig.keyid}, {"sig", base64Encode(sig.sig)}});
  }
  return out;
}

std::optional<std::vector<DsseSignature>> signaturesFromJson(const json& doc) {
  if (!doc.is_array()) return std::nullopt;
  std::vector<DsseSignature> out;
  for (const auto& entry : doc) {
    if (!entry.is_object() || !entry.contains("keyid") || !entry.contains("sig") ||
        !entry["keyid"].is_string() || !entry["sig"].is_string()) {
      return std::nullopt;
    }
    auto sig = base64Decode(entry["sig"].get<std::string>());
    if (!sig.ok()) return std::nullopt;
    out.push_back(DsseSignature{entry["keyid"].get<std::string>(), *sig});
  }
  return out;
}

json agentToJson(const AgentRecord& agent) {
  return {{"agent_id", agent.agent_id},
          {"keyid", agent.keyid},
          {"public_key", agent.public_key ? json(base64Encode(*agent.public_key)) : json()},
          {"status", agentStatusName(agent.status)},
          {"first_seen_ms", agent.first_seen_ms},
          {"last_seen_ms", agent.last_seen_ms},
          {"last_state", agent.last_state_json}};
}

Result<AgentRecord> agentFromJson(const json& doc) {
  Fields f(doc, "agent");
  AgentRecord agent;
  agent.agent_id = f.text("agent_id");
  agent.keyid = f.text("keyid");
  if (auto key = f.optionalText("public_key")) {
    auto bytes = base64Decode(*key);
    if (bytes.ok() && bytes->size() == kEd25519PublicKeyBytes) {
      Ed25519PublicKey public_key{};
      std::copy(bytes->begin(), bytes->end(), public_key.begin());
      agent.public_key = public_key;
    } else {
      f.parsed<int>(std::nullopt);
    }
  }
  agent.status = f.parsed(parseAgentStatus(f.text("status")));
  agent.first_seen_ms = f.number("first_seen_ms");
  agent.last_seen_ms = f.number("last_seen_ms");
  agent.last_state_json = f.text("last_state");
  SHADAN_RETURN_IF_ERROR(f.status(agent.agent_id));
  return agent;
}

json orderToJson(const OrderRecord& order) {
  return {{"command_id", order.command_id},
          {"action", order.action},
          {"scope", isolationScopeName(order.scope)},
          {"segment", order.segment},
          {"profile", order.profile},
          {"requested_by", order.requested_by},
          {"reason", order.reason},
          {"ticket", order.ticket ? json(*order.ticket) : json()},
          {"drill", order.drill},
          {"state", orderStateName(order.state)},
          {"authz_payload", bytesToBase64(order.authz_payload)},
          {"authz_envelope", order.authz_envelope},
          {"targets", order.targets},
          {"expires_at_ms", order.expires_at_ms},
          {"created_ms", order.created_ms},
          {"updated_ms", order.updated_ms}};
}

Result<OrderRecord> orderFromJson(const json& doc) {
  Fields f(doc, "order");
  OrderRecord order;
  order.command_id = f.text("command_id");
  order.action = f.text("action");
  order.scope = f.parsed(parseIsolationScope(f.text("scope")));
  order.segment = f.text("segment");
  order.profile = f.text("profile");
  order.requested_by = f.text("requested_by");
  order.reason = f.text("reason");
  order.ticket = f.optionalText("ticket");
  order.drill = f.flag("drill");
  order.state = f.parsed(parseOrderState(f.text("state")));
  order.authz_payload = f.bytes("authz_payload");
  order.authz_envelope = f.text("authz_envelope");
  const json& targets = f.raw("targets");
  if (targets.is_array() &&
      std::all_of(targets.begin(), targets.end(), [](const json& t) { return t.is_string(); })) {
    for (const auto& target : targets) order.targets.push_back(target.get<std::string>());
  } else {
    f.parsed<int>(std::nullopt);
  }
  order.expires_at_ms = f.number("expires_at_ms");
  order.created_ms = f.number("created_ms");
  order.updated_ms = f.number("updated_ms");
  SHADAN_RETURN_IF_ERROR(f.status(order.command_id));
  return order;
}

json dispatchToJson(const DispatchRecord& d) {
  return {{"agent_id", d.agent_id},
          {"command_id", d.command_id},
          {"seq", d.seq},
          {"envelope", d.envelope},
          {"envelope_expires_ms", d.envelope_expires_ms},
          {"state", dispatchStateName(d.state)},
          {"ack", d.ack_json},
          {"created_ms", d.created_ms},
          {"sent_ms", d.sent_ms},
          {"updated_ms", d.updated_ms}};
}

Result<DispatchRecord> dispatchFromJson(const json& doc) {
  Fields f(doc, "dispatch");
  DispatchRecord d;
  d.agent_id = f.text("agent_id");
  d.command_id = f.text("command_id");
  d.seq = f.number("seq");
  d.envelope = f.text("envelope");
  d.envelope_expires_ms = f.number("envelope_expires_ms");
  d.state = f.parsed(parseDispatchState(f.text("state")));
  d.ack_json = f.text("ack");
  d.created_ms = f.number("created_ms");
  d.sent_ms = f.number("sent_ms");
  d.updated_ms = f.number("updated_ms");
  SHADAN_RETURN_IF_ERROR(f.status(d.agent_id + "/" + d.command_id));
  return d;
}

json approvalToJson(const ApprovalRecord& a) {
  return {{"approval_id", a.approval_id},
          {"command_id", a.command_id},
          {"payload_type", a.payload_type},
          {"payload", bytesToBase64(a.payload)},
          {"rule", a.rule},
          {"needed", a.needed},
          {"signatures", signaturesToJson(a.signatures)},
          {"state", approvalStateName(a.state)},
          {"created_ms", a.created_ms},
          {"expires_ms", a.expires_ms}};
}

Result<ApprovalRecord> approvalFromJson(const json& doc) {
  Fields f(doc, "approval");
  ApprovalRecord a;
  a.approval_id = f.text("approval_id");
  a.command_id = f.text("command_id");
  a.payload_type = f.text("payload_type");
  a.payload = f.bytes("payload");
  a.rule = f.text("rule");
  a.needed = static_cast<int>(f.number("needed"));
  a.signatures = f.parsed(signaturesFromJson(f.raw("signatures")));
  a.state = f.parsed(parseApprovalState(f.text("state")));
  a.created_ms = f.number("created_ms");
  a.expires_ms = f.number("expires_ms");
  SHADAN_RETURN_IF_ERROR(f.status(a.approval_id));
  return a;
}

json segmentToJson(const SegmentRecord& segment) {
  return {{"segment", segment.segment},
          {"gen", segment.gen},
          {"isolated", segment.isolated},
          {"profile", segment.profile}};
}

Result<SegmentRecord> segmentFromJson(const json& doc) {
  Fields f(doc, "segment");
  SegmentRecord segment;
  segment.segment = f.text("segment");
  segment.gen = f.number("gen");
  segment.isolated = f.flag("isolated");
  segment.profile = f.text("profile");
  SHADAN_RETURN_IF_ERROR(f.status(segment.segment));
  return segment;
}

json documentToJson(const StoredDocument& document) {
  return {{"kind", document.kind},
          {"id", document.id},
          {"body", document.body},
          {"open", document.open},
          {"created_ms", document.created_ms},
          {"updated_ms", document.updated_ms}};
}

Result<StoredDocument> documentFromJson(const json& doc) {
  Fields f(doc, "document");
  StoredDocument document;
  document.kind = f.text("kind");
  document.id = f.text("id");
  document.body = f.text("body");
  document.open = f.flag("open");
  document.created_ms = f.number("created_ms");
  document.updated_ms = f.number("updated_ms");
  SHADAN_RETURN_IF_ERROR(f.status(document.kind + "/" + document.id));
  return document;
}

}  // namespace shadan::controller

#include "common/audit_record.h"

#include <optional>
#include <string>
#include <utility>

#include "common/ed25519.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

bool isLowerHex64(std::string_view text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Floats cannot be stored: the strict parser of the verifier rejects them.
bool containsFloat(const Json& value) {
  if (value.is_number_float()) return true;
  if (value.is_structured()) {
    for (const Json& child : value) {
      if (containsFloat(child)) return true;
    }
  }
  return false;
}

// Audit messages name a field the way they always have: `field "who.keyids" must be ...`.
StrictObjectReader auditReader(const Json& object) {
  return StrictObjectReader(object, "entry", "", StrictJsonWording::kAuditFields);
}

// Moves a successful read into `out`.
template <typename T>
Status assign(Result<T> read, T& out) {
  if (!read.ok()) return read.error();
  out = std::move(*read);
  return okStatus();
}

template <typename T>
void put(Json& out, const char* key, const std::optional<T>& value) {
  if (value) out[key] = *value;
}

bool isRfc3339UtcShape(std::string_view ts) {
  // YYYY-MM-DDTHH:MM:SS[.fff]Z; the log writes milliseconds, readers accept any fraction.
  if (ts.size() < 20 || ts.back() != 'Z') return false;
  static constexpr std::string_view kPattern = "dddd-dd-ddTdd:dd:dd";
  for (size_t i = 0; i < kPattern.size(); ++i) {
    const bool digit = ts[i] >= '0' && ts[i] <= '9';
    if (kPattern[i] == 'd' ? !digit : ts[i] != kPattern[i]) return false;
  }
  const std::string_view rest = ts.substr(19, ts.size() - 20);
  if (rest.empty()) return true;
  return rest.size() >= 2 && rest[0] == '.' &&
         rest.substr(1).find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Entries

Result<Json> auditRecordToJson(const AuditRecord& record) {
  const AuditEvent& e = record.event;
  if (e.event.empty()) return makeError(ErrorCode::kInvalidArgument, "audit event has no name");
  Json out = Json::object();
  out["log_id"] = record.log_id;
  out["log_seq"] = record.log_seq;
  out["ts"] = record.ts;
  out["prev_hash"] = record.prev_hash;
  out["event"] = e.event;
  put(out, "outcome", e.outcome);
  put(out, "reason", e.reason);
  if (e.who) {
    Json who = Json::object();
    put(who, "requested_by", e.who->requested_by);
    put(who, "approvers", e.who->approvers);
    put(who, "keyids", e.who->keyids);
    put(who, "controller", e.who->controller);
    out["who"] = std::move(who);
  }
  if (e.what) {
    Json what = Json::object();
    put(what, "action", e.what->action);
    put(what, "segment", e.what->segment);
    put(what, "profile", e.what->profile);
    put(what, "scope", e.what->scope);
    if (e.what->hosts) what["hosts"] = *e.what->hosts;
    put(what, "ruleset_before", e.what->ruleset_before);
    put(what, "ruleset_after", e.what->ruleset_after);
    out["what"] = std::move(what);
  }
  if (e.why) {
    Json why = Json::object();
    put(why, "reason", e.why->reason);
    put(why, "ticket", e.why->ticket);
    out["why"] = std::move(why);
  }
  if (e.where) {
    Json where = Json::object();
    put(where, "agent_id", e.where->agent_id);
    put(where, "host", e.where->host);
    put(where, "version", e.where->version);
    out["where"] = std::move(where);
  }
  put(out, "command_id", e.command_id);
  put(out, "correlation_id", e.correlation_id);
  put(out, "seq", e.seq);
  put(out, "authz_sha256", e.authz_sha256);
  put(out, "drill", e.drill);
  if (e.detail) {
    if (!e.detail->is_object()) {
      return makeError(ErrorCode::kInvalidArgument, "audit detail must be a JSON object");
    }
    if (containsFloat(*e.detail)) {
      return makeError(ErrorCode::kInvalidArgument,
                       "audit detail must not contain floating-point numbers");
    }
    out["detail"] = *e.detail;
  }
  return out;
}

Result<std::string> formatAuditLine(const AuditRecord& record) {
  SHADAN_ASSIGN_OR_RETURN(auto json, auditRecordToJson(record));
  // Invalid UTF-8 (e.g. from a rejected order's text) is replaced, not refused: an audit entry
  // must never be lost to the bytes of what it records. The replacement is what gets hashed.
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<AuditRecord> parseAuditLine(std::string_view line) {
  SHADAN_ASSIGN_OR_RETURN(auto parsed, parseStrictJson(line, "entry", kAuditMaxLineBytes));
  const Json& doc = parsed;
  if (!doc.is_object()) return makeError(ErrorCode::kParse, "entry is not a JSON object");
  const StrictObjectReader top = auditReader(doc);
  SHADAN_RETURN_IF_ERROR(
      top.checkMembers({"log_id", "log_seq", "ts", "prev_hash", "event"},
                       {"outcome", "reason", "who", "what", "why", "where", "command_id",
                        "correlation_id", "seq", "authz_sha256", "drill", "detail"}));
  AuditRecord record;
  SHADAN_RETURN_IF_ERROR(assign(top.string("log_id"), record.log_id));
  SHADAN_RETURN_IF_ERROR(assign(top.unsignedInteger("log_seq"), record.log_seq));
  SHADAN_RETURN_IF_ERROR(assign(top.string("ts"), record.ts));
  if (!isRfc3339UtcShape(record.ts)) {
    return makeError(ErrorCode::kParse, "field \"ts\" is not an RFC 3339 UTC time");
  }
  SHADAN_RETURN_IF_ERROR(assign(top.string("prev_hash"), record.prev_hash));
  if (!isLowerHex64(record.prev_hash)) {
    return makeError(ErrorCode::kParse, "field \"prev_hash\" is not 64 lower-case hex digits");
  }
  AuditEvent& e = record.event;
  SHADAN_RETURN_IF_ERROR(assign(top.string("event"), e.event));
  if (e.event.empty()) return makeError(ErrorCode::kParse, "field \"event\" is empty");
  SHADAN_RETURN_IF_ERROR(assign(top.optionalString("outcome"), e.outcome));
  SHADAN_RETURN_IF_ERROR(assign(top.optionalString("reason"), e.reason));
  SHADAN_RETURN_IF_ERROR(assign(top.optionalString("command_id"), e.command_id));
  SHADAN_RETURN_IF_ERROR(assign(top.optionalString("correlation_id"), e.correlation_id));
  SHADAN_RETURN_IF_ERROR(assign(top.optionalUnsignedInteger("seq"), e.seq));
  SHADAN_RETURN_IF_ERROR(assign(top.optionalString("authz_sha256"), e.authz_sha256));
  SHADAN_RETURN_IF_ERROR(assign(top.optionalBoolean("drill"), e.drill));

  SHADAN_ASSIGN_OR_RETURN(auto who, top.optionalObject("who"));
  if (const auto& r = who) {
    SHADAN_RETURN_IF_ERROR(
        r->checkMembers({}, {"requested_by", "approvers", "keyids", "controller"}));
    AuditWho value;
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("requested_by"), value.requested_by));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalStrings("approvers"), value.approvers));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalStrings("keyids"), value.keyids));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("controller"), value.controller));
    e.who = std::move(value);
  }
  SHADAN_ASSIGN_OR_RETURN(auto what, top.optionalObject("what"));
  if (const auto& r = what) {
    SHADAN_RETURN_IF_ERROR(r->checkMembers(
        {}, {"action", "segment", "profile", "scope", "hosts", "ruleset_before", "ruleset_after"}));
    AuditWhat value;
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("action"), value.action));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("segment"), value.segment));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("profile"), value.profile));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("scope"), value.scope));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalStrings("hosts"), value.hosts));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("ruleset_before"), value.ruleset_before));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("ruleset_after"), value.ruleset_after));
    e.what = std::move(value);
  }
  SHADAN_ASSIGN_OR_RETURN(auto why, top.optionalObject("why"));
  if (const auto& r = why) {
    SHADAN_RETURN_IF_ERROR(r->checkMembers({}, {"reason", "ticket"}));
    AuditWhy value;
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("reason"), value.reason));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("ticket"), value.ticket));
    e.why = std::move(value);
  }
  SHADAN_ASSIGN_OR_RETURN(auto where, top.optionalObject("where"));
  if (const auto& r = where) {
    SHADAN_RETURN_IF_ERROR(r->checkMembers({}, {"agent_id", "host", "version"}));
    AuditWhere value;
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("agent_id"), value.agent_id));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("host"), value.host));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("version"), value.version));
    e.where = std::move(value);
  }
  SHADAN_ASSIGN_OR_RETURN(auto detail, top.optionalObject("detail"));
  if (detail) e.detail = detail->value();
  return record;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

Result<std::string> makeCheckpointLine(const std::string& log_id, uint64_t size,
                                       const std::string& head_hash, const std::string& root_hex,
                                       const std::string& ts, const Signer& signer) {
  const Json body_json = {{"log_id", log_id}, {"size", size}, {"head_hash", head_hash},
                          {"root", root_hex}, {"ts", ts},     {"keyid", signer.keyId()}};
  const std::string body = body_json.dump(-1, ' ', false, Json::error_handler_t::replace);
  auto sig = signer.sign(dssePae(kAuditCheckpointPayloadType, body));
  if (!sig.ok()) return sig.error().withContext("signing the audit checkpoint");
  // The line is the body with the signature spliced in as its last member, so the verifier can
  // cut the exact signed bytes back out before parsing anything.
  return body.substr(0, body.size() - 1) + ",\"sig\":\"" + base64Encode(*sig) + "\"}";
}

Result<AuditCheckpoint> parseCheckpointLine(std::string_view line) {
  static constexpr std::string_view kSigKey = ",\"sig\":\"";
  const size_t pos = line.rfind(kSigKey);
  if (pos == std::string_view::npos || line.size() < 2 || line.substr(line.size() - 2) != "\"}") {
    return makeError(ErrorCode::kParse, "checkpoint has no trailing \"sig\" member");
  }
  const size_t sig_start = pos + kSigKey.size();
  if (sig_start > line.size() - 2) {
    return makeError(ErrorCode::kParse, "checkpoint has no trailing \"sig\" member");
  }
  AuditCheckpoint out;
  out.sig = std::string(line.substr(sig_start, line.size() - 2 - sig_start));
  if (out.sig.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
      std::string::npos) {
    return makeError(ErrorCode::kParse, "checkpoint sig is not base64");
  }
  out.body = std::string(line.substr(0, pos)) + "}";
  // The whole line must also be strict JSON (this catches a second "sig" hidden in the body).
  SHADAN_RETURN_IF_ERROR(parseStrictJson(line, "checkpoint", kAuditMaxLineBytes));
  SHADAN_ASSIGN_OR_RETURN(auto body,
                          parseStrictJson(out.body, "checkpoint body", kAuditMaxLineBytes));
  if (!body.is_object()) return makeError(ErrorCode::kParse, "checkpoint body is not an object");
  const StrictObjectReader r = auditReader(body);
  // Every member is required; each getter says "missing field" in turn.
  SHADAN_RETURN_IF_ERROR(
      r.checkMembers({}, {"log_id", "size", "head_hash", "root", "ts", "keyid"}));
  SHADAN_RETURN_IF_ERROR(assign(r.string("log_id"), out.log_id));
  SHADAN_RETURN_IF_ERROR(assign(r.string("head_hash"), out.head_hash));
  SHADAN_RETURN_IF_ERROR(assign(r.string("root"), out.root));
  SHADAN_RETURN_IF_ERROR(assign(r.string("ts"), out.ts));
  SHADAN_RETURN_IF_ERROR(assign(r.string("keyid"), out.key_id));
  SHADAN_RETURN_IF_ERROR(assign(r.unsignedInteger("size"), out.size));
  if (!isLowerHex64(out.head_hash) || !isLowerHex64(out.root)) {
    return makeError(ErrorCode::kParse, "checkpoint head_hash/root are not 64 lower-case hex");
  }
  return out;
}

bool verifyCheckpointSignature(const AuditCheckpoint& checkpoint, const Ed25519PublicKey& key) {
  auto sig = base64Decode(checkpoint.sig);
  if (!sig.ok()) return false;
  return ed25519Verify(key, dssePae(kAuditCheckpointPayloadType, checkpoint.body), *sig);
}

}  // namespace shadan

#include "common/orders.h"

#include <algorithm>
#include <limits>
#include <set>

#include "common/clock.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxNameBytes = 256;
constexpr size_t kMaxReasonBytes = 4096;
constexpr size_t kMaxTargets = 1024;
constexpr const char* kBorderingTargets = "bordering";
constexpr int64_t kMaxTtlSeconds = 366LL * 24 * 3600;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t daysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int daysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

bool isLowerHex(std::string_view text, size_t length) {
  return text.size() == length && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool isUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !isLowerHex(text.substr(i, 1), 1)) return false;
  }
  return true;
}

// Names, ids and the like: 1..kMaxNameBytes bytes without control characters.
constexpr StringRules kNameRules{.non_empty = true, .max_bytes = kMaxNameBytes, .no_control = true};
constexpr StringRules kReasonRules{
    .non_empty = true, .max_bytes = kMaxReasonBytes, .no_control = true};

Result<int64_t> timestamp(const StrictObjectReader& r, std::string_view name) {
  const Json& value = r.at(name);
  if (!value.is_string()) return r.error(name, "must be an RFC 3339 UTC time string");
  auto millis = parseRfc3339UtcMillis(value.get<std::string>());
  if (!millis.ok()) return r.error(name, millis.error().message);
  return millis;
}

Result<std::string> hex64(const StrictObjectReader& r, std::string_view name) {
  const Json& value = r.at(name);
  if (!value.is_string() || !isLowerHex(value.get<std::string>(), 64)) {
    return r.error(name, "must be 64 lower-case hex digits");
  }
  return value.get<std::string>();
}

Result<Json> parsePayload(std::string_view payload, std::string_view kind) {
  // parseStrictJson checks the cap before parsing; its messages start with `kind: `.
  return parseStrictJson(payload, kind, kOrderMaxPayloadBytes);
}

Status checkVersion(const StrictObjectReader& reader) {
  auto v = reader.integer("v", kOrderFormatVersion, kOrderFormatVersion);
  if (!v.ok()) return reader.error("v", "unsupported version (this build reads v1)");
  return okStatus();
}

Status checkWindow(const StrictObjectReader& reader, int64_t issued_at_ms, int64_t expires_at_ms) {
  if (expires_at_ms <= issued_at_ms) return reader.error("expires_at", "must be after issued_at");
  return okStatus();
}

std::string formatTime(int64_t millis) { return formatRfc3339(millis); }

}  // namespace

Status validateReason(const std::string& reason) {
  if (reason.empty()) return makeError(ErrorCode::kInvalidArgument, "--reason must not be empty");
  if (reason.size() > kMaxReasonChars) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--reason is longer than " + std::to_string(kMaxReasonChars) + " characters");
  }
  for (const char c : reason) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return makeError(ErrorCode::kInvalidArgument, "--reason holds a control character");
    }
  }
  return okStatus();
}

Result<int64_t> parseRfc3339UtcMillis(std::string_view text) {
  auto bad = [&](const char* why) {
    return makeError(ErrorCode::kParse, "not an RFC 3339 UTC time (" + std::string(why) + "): " +
                                            quoteForMessage(text) + " (e.g. 2026-11-26T10:01:00Z)");
  };
  // "YYYY-MM-DDTHH:MM:SS" then an optional fraction then "Z".
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd";
  if (text.size() < kShape.size() + 1) return bad("too short");
  for (size_t i = 0; i < kShape.size(); ++i) {
    const bool digit = text[i] >= '0' && text[i] <= '9';
    if (kShape[i] == 'd' ? !digit : text[i] != kShape[i]) return bad("malformed");
  }
  auto number = [&](size_t pos, size_t count) {
    int out = 0;
    for (size_t i = pos; i < pos + count; ++i) out = out * 10 + (text[i] - '0');
    return out;
  };
  const int year = number(0, 4), month = number(5, 2), day = number(8, 2);
  const int hour = number(11, 2), minute = number(14, 2), second = number(17, 2);
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    return bad("no such date");
  }
  if (hour > 23 || minute > 59 || second > 59) return bad("no such time of day");
  size_t pos = kShape.size();
  int64_t millis = 0;
  if (text[pos] == '.') {
    ++pos;
    const size_t start = pos;
    int64_t scale = 100;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      millis += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start || pos - start > 9) return bad("fraction of 1 to 9 digits");
  }
  if (pos + 1 != text.size() || text[pos] != 'Z') return bad("must end in Z (UTC)");
  const int64_t days = daysFromCivil(year, month, day);
  return ((days * 24 + hour) * 60 + minute) * 60 * 1000 + second * 1000LL + millis;
}

const char* orderActionName(OrderAction action) {
  return action == OrderAction::kIsolate ? "isolate" : "restore";
}

const char* ackResultName(AckResult result) {
  switch (result) {
    case AckResult::kApplied:
      return "applied";
    case AckResult::kAlreadyApplied:
      return "already_applied";
    case AckResult::kRejected:
      return "rejected";
    case AckResult::kFailed:
      return "failed";
  }
  return "failed";
}

// ---------------------------------------------------------------------------------------------
// authz

namespace {

// scope, segment, hosts and link_down: which rung the order is about and what on it.
Status parseAuthzTarget(const StrictObjectReader& r, Authz& out) {
  if (r.has("scope")) {
    SHADAN_ASSIGN_OR_RETURN(auto name, r.string("scope", kNameRules));
    const std::optional<IsolationScope> scope = parseIsolationScope(name);
    if (!scope) return r.error("scope", "must be \"host\", \"segment\", \"uplink\" or \"island\"");
    out.scope = *scope;
  }
  const bool has_segment =
      out.scope == IsolationScope::kSegment || out.scope == IsolationScope::kHost;
  if (has_segment) {
    if (!r.has("segment")) return r.error("segment", "is required for this scope");
    SHADAN_ASSIGN_OR_RETURN(auto segment, r.string("segment", kNameRules));
    out.segment = std::move(segment);
  } else if (r.has("segment")) {
    return r.error("segment", "an uplink or island order names no segment");
  }
  if (out.scope == IsolationScope::kHost) {
    SHADAN_ASSIGN_OR_RETURN(
        auto hosts, r.array("hosts", 1, kMaxHostsPerOrder,
                            "must be an array of 1 to " + std::to_string(kMaxHostsPerOrder) +
                                " addresses or prefixes"));
    for (size_t i = 0; i < hosts.size(); ++i) {
      SHADAN_ASSIGN_OR_RETURN(auto text, hosts.string(i, kNameRules));
      Result<IpPrefix> host = IpPrefix::parse(text);
      if (!host.ok()) return hosts.error(i, host.error().message);
      const int min_length = minHostPrefixLength(host->family());
      if (host->length() < min_length) {
        return hosts.error(i, "wider than /" + std::to_string(min_length));
      }
      if (std::find(out.hosts.begin(), out.hosts.end(), *host) != out.hosts.end()) {
        return hosts.error(i, "duplicate host " + host->toString());
      }
      out.hosts.push_back(*host);
    }
  } else if (r.has("hosts")) {
    return r.error("hosts", "only a host order names hosts");
  }
  if (r.has("link_down")) {
    if (out.scope != IsolationScope::kUplink || out.action != OrderAction::kIsolate) {
      return r.error("link_down", "only an uplink isolate sets links down");
    }
    SHADAN_ASSIGN_OR_RETURN(auto link_down, r.boolean("link_down"));
    out.link_down = link_down;
  }
  return okStatus();
}

}  // namespace

Result<Authz> parseAuthz(std::string_view payload) {
  SHADAN_ASSIGN_OR_RETURN(auto doc, parsePayload(payload, "authz"));
  const StrictObjectReader r(doc, "authz");
  SHADAN_RETURN_IF_ERROR(
      r.checkMembers({"v", "command_id", "action", "profile", "segment_gen", "targets",
                      "requested_by", "reason", "drill", "issued_at", "expires_at"},
                     {"scope", "segment", "hosts", "link_down", "ttl_s", "ticket", "correlation_id",
                      "on_behalf_of", "automatic"}));
  SHADAN_RETURN_IF_ERROR(checkVersion(r));
  Authz out;

  SHADAN_ASSIGN_OR_RETURN(auto command_id, r.string("command_id", kNameRules));
  if (!isUuid(command_id)) return r.error("command_id", "must be a lower-case UUID");
  out.command_id = std::move(command_id);

  SHADAN_ASSIGN_OR_RETURN(auto action, r.string("action", kNameRules));
  if (action == "isolate") {
    out.action = OrderAction::kIsolate;
  } else if (action == "restore") {
    out.action = OrderAction::kRestore;
  } else {
    return r.error("action", "must be \"isolate\" or \"restore\"");
  }

  SHADAN_RETURN_IF_ERROR(parseAuthzTarget(r, out));
  SHADAN_ASSIGN_OR_RETURN(auto profile, r.string("profile", kNameRules));
  out.profile = std::move(profile);
  SHADAN_ASSIGN_OR_RETURN(auto gen,
                          r.integer("segment_gen", 0, std::numeric_limits<int64_t>::max()));
  out.segment_gen = gen;

  if (r.has("targets") && doc.at("targets").is_string()) {
    SHADAN_ASSIGN_OR_RETURN(auto rule, r.string("targets", kNameRules));
    if (rule != kBorderingTargets) {
      return r.error("targets", "must be an array of agent ids or \"bordering\"");
    }
    if (out.scope != IsolationScope::kSegment && out.scope != IsolationScope::kHost) {
      return r.error("targets", "\"bordering\" is for segment and host orders only");
    }
    out.targets_bordering = true;
  } else {
    SHADAN_ASSIGN_OR_RETURN(auto targets, r.array("targets", 1, kMaxTargets,
                                                  "must be an array of 1 to " +
                                                      std::to_string(kMaxTargets) + " agent ids"));
    std::set<std::string> seen;  // not std::find: 1,024 targets would be half a million compares
    for (size_t i = 0; i < targets.size(); ++i) {
      SHADAN_ASSIGN_OR_RETURN(auto target, targets.string(i, kNameRules));
      if (!seen.insert(target).second) {
        return targets.error(i, "duplicate target " + quoteForMessage(target));
      }
      out.targets.push_back(std::move(target));
    }
  }

  if (r.has("ttl_s")) {
    if (out.action != OrderAction::kIsolate) return r.error("ttl_s", "only an isolate has a ttl");
    SHADAN_ASSIGN_OR_RETURN(auto ttl, r.integer("ttl_s", 1, kMaxTtlSeconds));
    out.ttl_s = ttl;
  }
  SHADAN_ASSIGN_OR_RETURN(auto requested_by, r.string("requested_by", kNameRules));
  out.requested_by = std::move(requested_by);
  SHADAN_ASSIGN_OR_RETURN(auto reason, r.string("reason", kReasonRules));
  out.reason = std::move(reason);
  if (r.has("ticket")) {
    SHADAN_ASSIGN_OR_RETURN(auto ticket, r.string("ticket", kNameRules));
    out.ticket = std::move(ticket);
  }
  if (r.has("correlation_id")) {
    SHADAN_ASSIGN_OR_RETURN(auto correlation, r.string("correlation_id", kNameRules));
    out.correlation_id = std::move(correlation);
  }
  SHADAN_ASSIGN_OR_RETURN(auto drill, r.boolean("drill"));
  out.drill = drill;
  SHADAN_ASSIGN_OR_RETURN(auto issued, timestamp(r, "issued_at"));
  SHADAN_ASSIGN_OR_RETURN(auto expires, timestamp(r, "expires_at"));
  SHADAN_RETURN_IF_ERROR(checkWindow(r, issued, expires));
  out.issued_at_ms = issued;
  out.expires_at_ms = expires;
  if (r.has("on_behalf_of")) {
    SHADAN_ASSIGN_OR_RETURN(auto caller, r.string("on_behalf_of", kNameRules));
    out.on_behalf_of = std::move(caller);
  }
  if (r.has("automatic")) {
    SHADAN_ASSIGN_OR_RETURN(auto automatic, r.boolean("automatic"));
    // One encoding per order: the member is present only when true.
    if (!automatic) return r.error("automatic", "must be true when present (omit it otherwise)");
    out.automatic = true;
  }
  return out;
}

std::string serializeAuthz(const Authz& authz) {
  Json doc{{"v", authz.v},
           {"command_id", authz.command_id},
           {"action", orderActionName(authz.action)},
           {"profile", authz.profile},
           {"segment_gen", authz.segment_gen},
           {"targets", authz.targets_bordering ? Json(kBorderingTargets) : Json(authz.targets)},
           {"requested_by", authz.requested_by},
           {"reason", authz.reason},
           {"drill", authz.drill},
           {"issued_at", formatTime(authz.issued_at_ms)},
           {"expires_at", formatTime(authz.expires_at_ms)}};
  if (authz.scope != IsolationScope::kSegment) doc["scope"] = isolationScopeName(authz.scope);
  if (authz.scope == IsolationScope::kSegment || authz.scope == IsolationScope::kHost) {
    doc["segment"] = authz.segment;
  }
  if (!authz.hosts.empty()) {
    Json hosts = Json::array();
    for (const IpPrefix& host : authz.hosts) hosts.push_back(host.toString());
    doc["hosts"] = std::move(hosts);
  }
  if (authz.link_down) doc["link_down"] = true;
  if (authz.ttl_s) doc["ttl_s"] = *authz.ttl_s;
  if (authz.ticket) doc["ticket"] = *authz.ticket;
  if (authz.correlation_id) doc["correlation_id"] = *authz.correlation_id;
  if (authz.on_behalf_of) doc["on_behalf_of"] = *authz.on_behalf_of;
  if (authz.automatic) doc["automatic"] = true;
  return doc.dump();
}

// ---------------------------------------------------------------------------------------------
// dispatch

Result<Dispatch> parseDispatch(std::string_view payload) {
  SHADAN_ASSIGN_OR_RETURN(auto doc, parsePayload(payload, "dispatch"));
  const StrictObjectReader r(doc, "dispatch");
  SHADAN_RETURN_IF_ERROR(r.checkMembers(
      {"v", "agent_id", "agent_key", "seq", "issued_at", "expires_at", "authz"}, {}));
  SHADAN_RETURN_IF_ERROR(checkVersion(r));
  Dispatch out;
  SHADAN_ASSIGN_OR_RETURN(auto agent_id, r.string("agent_id", kNameRules));
  out.agent_id = std::move(agent_id);
  SHADAN_ASSIGN_OR_RETURN(auto agent_key, hex64(r, "agent_key"));
  out.agent_key = std::move(agent_key);
  SHADAN_ASSIGN_OR_RETURN(auto seq, r.integer("seq", 1, std::numeric_limits<int64_t>::max()));
  out.seq = seq;
  SHADAN_ASSIGN_OR_RETURN(auto issued, timestamp(r, "issued_at"));
  SHADAN_ASSIGN_OR_RETURN(auto expires, timestamp(r, "expires_at"));
  SHADAN_RETURN_IF_ERROR(checkWindow(r, issued, expires));
  out.issued_at_ms = issued;
  out.expires_at_ms = expires;
  SHADAN_ASSIGN_OR_RETURN(auto authz,
                          dsseEnvelopeFromJson(r.at("authz"), "dispatch", r.pointerOf("authz")));
  out.authz = std::move(authz);
  return out;
}

std::string serializeDispatch(const Dispatch& dispatch) {
  return Json{{"v", dispatch.v},
              {"agent_id", dispatch.agent_id},
              {"agent_key", dispatch.agent_key},
              {"seq", dispatch.seq},
              {"issued_at", formatTime(dispatch.issued_at_ms)},
              {"expires_at", formatTime(dispatch.expires_at_ms)},
              {"authz", dsseEnvelopeToJson(dispatch.authz)}}
      .dump();
}

// ---------------------------------------------------------------------------------------------
// ack

Result<Ack> parseAck(std::string_view payload) {
  SHADAN_ASSIGN_OR_RETURN(auto doc, parsePayload(payload, "ack"));
  const StrictObjectReader r(doc, "ack");
  SHADAN_RETURN_IF_ERROR(
      r.checkMembers({"v", "agent_id", "seq", "command_id", "result", "reason", "state_after",
                      "ruleset_sha256", "received_at", "applied_at", "audit"},
                     {}));
  SHADAN_RETURN_IF_ERROR(checkVersion(r));
  Ack out;
  SHADAN_ASSIGN_OR_RETURN(auto agent_id, r.string("agent_id", kNameRules));
  out.agent_id = std::move(agent_id);
  SHADAN_ASSIGN_OR_RETURN(auto seq, r.integer("seq", 0, std::numeric_limits<int64_t>::max()));
  out.seq = seq;
  if (!r.at("command_id").is_null()) {
    SHADAN_ASSIGN_OR_RETURN(auto command_id, r.string("command_id", kNameRules));
    if (!isUuid(command_id)) return r.error("command_id", "must be a lower-case UUID or null");
    out.command_id = std::move(command_id);
  }

  SHADAN_ASSIGN_OR_RETURN(auto result, r.string("result", kNameRules));
  bool known = false;
  for (AckResult candidate : {AckResult::kApplied, AckResult::kAlreadyApplied, AckResult::kRejected,
                              AckResult::kFailed}) {
    if (result == ackResultName(candidate)) {
      out.result = candidate;
      known = true;
    }
  }
  if (!known) {
    return r.error("result", "must be applied, already_applied, rejected or failed");
  }
  const bool failure = out.result == AckResult::kRejected || out.result == AckResult::kFailed;
  if (r.at("reason").is_null()) {
    if (failure) return r.error("reason", "a rejected or failed ack names its reason");
  } else {
    SHADAN_ASSIGN_OR_RETURN(auto reason, r.string("reason", kReasonRules));
    out.reason = std::move(reason);
  }

  SHADAN_ASSIGN_OR_RETURN(auto state, r.object("state_after"));
  SHADAN_RETURN_IF_ERROR(state.checkMembers({"isolated"}));
  SHADAN_ASSIGN_OR_RETURN(auto isolated, state.array("isolated"));
  for (size_t i = 0; i < isolated.size(); ++i) {
    SHADAN_ASSIGN_OR_RETURN(auto entry, isolated.string(i, {.non_empty = true,
                                                            .max_bytes = 2 * kMaxNameBytes + 64,
                                                            .no_control = true}));
    if (!isIsolationLabel(entry)) {
      return isolated.error(i,
                            "must be \"segment:profile\", \"segment/prefix:profile\", "
                            "\"@uplink:profile\" or \"@island:profile\"");
    }
    out.isolated.push_back(std::move(entry));
  }

  SHADAN_ASSIGN_OR_RETURN(auto ruleset, hex64(r, "ruleset_sha256"));
  out.ruleset_sha256 = std::move(ruleset);
  SHADAN_ASSIGN_OR_RETURN(auto received, timestamp(r, "received_at"));
  out.received_at_ms = received;
  if (!r.at("applied_at").is_null()) {
    SHADAN_ASSIGN_OR_RETURN(auto applied, timestamp(r, "applied_at"));
    out.applied_at_ms = applied;
  }

  SHADAN_ASSIGN_OR_RETURN(auto audit, r.object("audit"));
  SHADAN_RETURN_IF_ERROR(audit.checkMembers({"log_seq", "entry_hash"}));
  SHADAN_ASSIGN_OR_RETURN(auto log_seq,
                          audit.integer("log_seq", 0, std::numeric_limits<int64_t>::max()));
  out.audit.log_seq = log_seq;
  SHADAN_ASSIGN_OR_RETURN(auto entry_hash, hex64(audit, "entry_hash"));
  out.audit.entry_hash = std::move(entry_hash);
  return out;
}

std::string serializeAck(const Ack& ack) {
  return Json{
      {"v", ack.v},
      {"agent_id", ack.agent_id},
      {"seq", ack.seq},
      {"command_id", ack.command_id ? Json(*ack.command_id) : Json(nullptr)},
      {"result", ackResultName(ack.result)},
      {"reason", ack.reason ? Json(*ack.reason) : Json(nullptr)},
      {"state_after", Json{{"isolated", ack.isolated}}},
      {"ruleset_sha256", ack.ruleset_sha256},
      {"received_at", formatTime(ack.received_at_ms)},
      {"applied_at", ack.applied_at_ms ? Json(formatTime(*ack.applied_at_ms)) : Json(nullptr)},
      {"audit", Json{{"log_seq", ack.audit.log_seq}, {"entry_hash", ack.audit.entry_hash}}}}
      .dump();
}

}  // namespace shadan

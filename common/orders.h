#pragma once

// The signed order payloads of PROTOCOL.md: authz (what operators decided), dispatch (one authz
// delivered to one agent, signed by the controller) and ack (the agent's answer).
//
// Contracts:
//   - Each payload travels as the payload of a DSSE envelope (common/dsse.h) whose payloadType is
//     the matching constant below; the type is part of what is signed.
//   - Parsers are strict: a size cap (kOrderMaxPayloadBytes) before parsing, duplicate keys and
//     floats refused (parseStrictJson), unknown members refused, every member type-checked,
//     timestamps RFC 3339 UTC with "Z" only. Errors are kParse and read
//     `<kind>: <JSON pointer>: <reason>` ("authz: /targets/1: duplicate target \"core-gw\"").
//   - Parsing checks form only (shapes, ranges, issued_at < expires_at). Whether an order may be
//     applied (signers, thresholds, freshness, replay, policy) is agents/orders/order_verifier.h.
//   - Serialisers emit what the parsers accept: parse(serialize(x)) == x. Timestamps are written
//     with millisecond precision ("2026-11-26T10:01:00.000Z").

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/dsse.h"
#include "common/ip_prefix.h"
#include "common/isolation_scope.h"
#include "common/result.h"

namespace shadan {

inline constexpr std::string_view kAuthzPayloadType = "application/vnd.shadan.authz.v1+json";
inline constexpr std::string_view kDispatchPayloadType = "application/vnd.shadan.dispatch.v1+json";
inline constexpr std::string_view kAckPayloadType = "application/vnd.shadan.ack.v1+json";

inline constexpr int kOrderFormatVersion = 1;
inline constexpr size_t kOrderMaxPayloadBytes = 64 * 1024;

// RFC 3339 in UTC only: "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (upper-case T and Z, no offsets, no
// leap second, a real calendar date, years 1970-9999). The fraction (1-9 digits) is truncated
// to milliseconds. kParse otherwise.
Result<int64_t> parseRfc3339UtcMillis(std::string_view text);

// The contract caps an operator's --reason at 512 characters.
inline constexpr size_t kMaxReasonChars = 512;

// Checks a reason an operator typed (shadanctl, shadan-agent): non-empty, at most
// kMaxReasonChars, no control characters (it goes into the audit trail as one line).
Status validateReason(const std::string& reason);

enum class OrderAction { kIsolate, kRestore };
const char* orderActionName(OrderAction action);

struct Authz {
  int v = kOrderFormatVersion;
  std::string command_id;  // a UUID, lower-case canonical form
  OrderAction action = OrderAction::kIsolate;
  // The rung of the ladder (common/isolation_scope.h). On the wire "scope" is omitted for
  // `segment`, so segment orders keep the bytes they always had.
  IsolationScope scope = IsolationScope::kSegment;
  // segment and host scope: the segment (for host, the one every address lies in); empty, and
  // absent on the wire, for uplink and island.
  std::string segment;
  // host scope only: 1 .. kMaxHostsPerOrder prefixes, each at most /24 (IPv4) or /120 (IPv6),
  // no duplicates; in canonical form. Whether they lie in `segment` is the verifier's check.
  std::vector<IpPrefix> hosts;
  // uplink isolate only: also set the policy's link_down interfaces administratively down.
  bool link_down = false;
  std::string profile;
  // The generation of generationKey(scope, segment) this order was decided at.
  int64_t segment_gen = 0;
  std::vector<std::string> targets;  // agent ids; non-empty, no duplicates (unless bordering)
  // Segment and host scope only: the order targets every gateway whose policy borders `segment`
  // (which is what the controller sends such an order to), written `"targets":"bordering"`
  // instead of the list. For an order to thousands of gateways: a list would make every
  // dispatch carry every gateway's id (O(N) per agent, O(N^2) per fan-out) and caps one order at
  // 1,024 targets. `targets` is empty in a parsed bordering authz (the controller keeps its own
  // list in memory and in its store).
  bool targets_bordering = false;
  std::optional<int64_t> ttl_s;  // isolate only (drills, timed cuts); 1 s .. 366 days
  std::string requested_by;      // an identity ("op:sato")
  std::string reason;            // required, non-empty
  std::optional<std::string> ticket;
  std::optional<std::string> correlation_id;
  bool drill = false;
  int64_t issued_at_ms = 0;
  int64_t expires_at_ms = 0;  // > issued_at_ms
  // Set when the controller signs for an authenticated API caller (detector, web session).
  std::optional<std::string> on_behalf_of;
  // An automatic response (issue #16). On an isolate: "made by an automatic response to a
  // detector's alert" (the verifier wants a ttl_s and the controller's signature on behalf of
  // the caller, and the agent records its isolations as automatic). On a restore: "a release of
  // automatic isolations" (the agent lifts only isolations still automatic, or refuses it all).
  // On the wire `"automatic": true`, written only when true: a payload without it keeps its
  // bytes, and `false` written out is refused so that one order has one encoding.
  bool automatic = false;

  bool operator==(const Authz&) const = default;
};

Result<Authz> parseAuthz(std::string_view payload);
std::string serializeAuthz(const Authz& authz);

struct Dispatch {
  int v = kOrderFormatVersion;
  std::string agent_id;
  std::string agent_key;  // keyid of the agent's key (64 lower-case hex)
  int64_t seq = 0;        // >= 1
  int64_t issued_at_ms = 0;
  int64_t expires_at_ms = 0;  // > issued_at_ms
  DsseEnvelope authz;         // checked as an envelope here; its contents by the verifier

  bool operator==(const Dispatch&) const = default;
};

Result<Dispatch> parseDispatch(std::string_view payload);
std::string serializeDispatch(const Dispatch& dispatch);

enum class AckResult { kApplied, kAlreadyApplied, kRejected, kFailed };
const char* ackResultName(AckResult result);

struct AckAudit {
  int64_t log_seq = 0;
  std::string entry_hash;  // 64 lower-case hex

  bool operator==(const AckAudit&) const = default;
};

struct Ack {
  int v = kOrderFormatVersion;
  std::string agent_id;
  int64_t seq = 0;  // the dispatch's seq; 0 when the dispatch could not be read
  // nullopt (JSON null) when the rejection came before the authz could be read.
  std::optional<std::string> command_id;
  AckResult result = AckResult::kApplied;
  // null for applied/already_applied; required (a reason code) for rejected/failed.
  std::optional<std::string> reason;
  // state_after.isolated: isolationLabel() entries ("office:full", "office/10.20.0.5/32:full",
  // "@uplink:full", "@island:full", "office/*:full").
  std::vector<std::string> isolated;
  std::string ruleset_sha256;  // 64 lower-case hex
  int64_t received_at_ms = 0;
  std::optional<int64_t> applied_at_ms;  // null unless something was applied
  AckAudit audit;

  bool operator==(const Ack&) const = default;
};

Result<Ack> parseAck(std::string_view payload);
std::string serializeAck(const Ack& ack);

}  // namespace shadan

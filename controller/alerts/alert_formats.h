#pragma once

// Alerts as detectors already write them, turned into one normalised Alert. Pure: no clock, no
// sockets, no policy; the responder (controller/alert_responder.h) decides what to do with them.
//
// Formats (AlertFormat):
//   shadan  {"source","rule","severity","src_ip","dst_ip","time","detail"}: Shadan's own.
//           source, rule, time required; severity "low"|"medium"|"high"|"critical" or 1..4
//           (default "medium"); src_ip/dst_ip IP literals, at least one; detail optional string.
//           time RFC 3339. Unknown members are refused (it is our format: a typo must not pass).
//   eve     a Suricata EVE record with "event_type":"alert" (other event types are refused one
//           by one, "not an alert record"): src_ip, dest_ip, timestamp
//           ("2024-01-02T03:04:05.123456+0000", Suricata's own offset form with any +/-HHMM,
//           or RFC 3339; a time without an offset is refused: its zone is unknown),
//           alert.signature_id (0..2^32-1, Suricata's sid), alert.signature, alert.severity
//           (1 high, 2 medium, 3..255 low: Suricata's priority), alert.category (optional:
//           Suricata writes it only for rules with a classtype). Every other member Suricata
//           writes (flow_id, in_iface, proto, ports, app_proto, flow, metadata, payload, ...) is
//           accepted and ignored: the format is Suricata's to extend.
//   zeek    a Zeek notice.log JSON record: note, msg, ts (epoch seconds, fraction allowed, cut
//           to ms; or the RFC 3339 string Zeek writes with JSON::TS_ISO8601) and src and/or dst
//           (each side falls back on the connection's `id.orig_h` / `id.resp_h`, flat keys with
//           a dot as Zeek writes them, when src / dst is absent; a src that is present but bad
//           is refused, not replaced). Severity: Zeek notices have none; they count as
//           "medium". Other members accepted and ignored.
//
// Batches: a request body is one JSON array of records, or NDJSON (one record per line; blank
// lines skipped; a body with a single object is a batch of one). Every record is parsed on its
// own: one that does not parse is refused with its reason and index, the others are still taken.
//   - A body whose first non-blank byte is `[` is an array. Its syntax is checked as a whole
//     (malformed JSON or invalid UTF-8 anywhere refuses the batch), then it is split into its
//     elements' byte ranges and each element is parsed strictly on its own: a duplicate key or a
//     float in one element refuses only that element.
//   - Otherwise the body is NDJSON: lines end in "\n" or "\r\n"; blank lines are skipped and
//     do not count as records (the index is the record's position among records, not its line).
//     A body that is one JSON value as a whole, pretty-printed over several lines, is a batch of
//     one rather than lines of garbage.
//   - A record's bytes (what raw_sha256 covers) are its JSON text without surrounding JSON
//     whitespace: the NDJSON line without its line ending, or the array element's byte range.
//
// Hostile input (contracts):
//   - Every record is parsed with duplicate keys refused in every object (two readers must not
//     disagree on which src_ip a record names), nesting bounded, at most kAlertRecordMaxBytes.
//     Floats are accepted only where the format has them (Zeek ts, and anywhere in the ignored
//     members of eve/zeek records).
//   - Addresses are IP literals (IpPrefix host prefixes), never names; prefixes ("10.0.0.0/8")
//     are refused as an alert address.
//   - Strings kept in an Alert (source, rule, signature, category, detail, msg, note) are cut
//     to kAlertTextMaxBytes at a UTF-8 character boundary and must hold no control character
//     (a byte below 0x20, or 0x7f); they end up in audit entries. Ignored members may hold any.
//     shadan source/rule and zeek note must not be empty: a response rule matches on them.
//   - Times before 1970 or after 9999 are refused.
//   - A body over kAlertBodyMaxBytes or with more than kAlertBatchMaxRecords records is refused
//     as a whole (the caller answers 413/400 before parsing any record).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_prefix.h"
#include "common/result.h"

namespace shadan::controller {

inline constexpr size_t kAlertBodyMaxBytes = 4 * 1024 * 1024;
inline constexpr size_t kAlertBatchMaxRecords = 1000;
inline constexpr size_t kAlertRecordMaxBytes = 64 * 1024;
inline constexpr size_t kAlertTextMaxBytes = 512;

enum class AlertFormat { kShadan, kEve, kZeek };
const char* alertFormatName(AlertFormat format);  // "shadan" | "eve" | "zeek"
std::optional<AlertFormat> parseAlertFormat(std::string_view name);

// The format a request names: `query_format` (the value of ?format=, if present) wins; else the
// media type of `content_type` (parameters after ';' ignored, case-insensitive):
//   application/vnd.shadan.alert+json, application/json, application/x-ndjson  -> shadan
//   application/vnd.suricata.eve+json                                           -> eve
//   application/vnd.zeek.notice+json                                            -> zeek
// An unknown ?format= (names are exact: "shadan", "eve", "zeek") or media type, or no
// Content-Type at all without ?format=, is an error naming it (ErrorCode::kInvalidArgument).
Result<AlertFormat> alertFormatOf(std::optional<std::string_view> query_format,
                                  std::string_view content_type);

enum class AlertSeverity { kLow = 1, kMedium = 2, kHigh = 3, kCritical = 4 };
const char* alertSeverityName(AlertSeverity severity);  // "low" | "medium" | "high" | "critical"
std::optional<AlertSeverity> parseAlertSeverity(std::string_view name);

struct Alert {
  AlertFormat format = AlertFormat::kShadan;
  // shadan: `source`; eve: "suricata"; zeek: "zeek".
  std::string source;
  // What a response rule matches: shadan `rule`; eve the signature id in decimal; zeek `note`.
  std::string rule;
  std::optional<int64_t> signature_id;  // eve only
  // Human text: eve alert.signature; zeek msg; shadan detail.
  std::string title;
  std::string category;  // eve alert.category; "" otherwise
  AlertSeverity severity = AlertSeverity::kMedium;
  std::optional<IpPrefix> src;  // a host prefix
  std::optional<IpPrefix> dst;  // a host prefix
  int64_t time_ms = 0;          // when the detector saw it (Unix ms)

  bool operator==(const Alert&) const = default;
};

// One record of a batch.
struct AlertRecord {
  size_t index = 0;        // position in the batch (0-based)
  std::string raw_sha256;  // lower-case hex SHA-256 of the record's bytes as received
  Result<Alert> alert = makeError(ErrorCode::kParse, "not parsed");
};

// Splits `body` into records and parses each in `format`. A batch-level problem (empty body or
// empty array: kParse; over kAlertBodyMaxBytes or more than kAlertBatchMaxRecords records:
// kInvalidArgument; an array that is not valid JSON as a whole: kParse) is the error, reading
// `body: <reason>`; record problems are in each AlertRecord (kParse), reading
// `record N: <pointer>: <reason>` (e.g. `record 3: /alert/signature_id: must be an integer`),
// or `record N: byte B: <reason>` for malformed JSON.
Result<std::vector<AlertRecord>> parseAlertBatch(std::string_view body, AlertFormat format);

// One record (the bytes of one NDJSON line or one array element; surrounding whitespace is
// ignored). Errors read `record: <pointer>: <reason>`, as parseAlertBatch's without the index.
Result<Alert> parseAlert(std::string_view record, AlertFormat format);

}  // namespace shadan::controller

#include "controller/alerts/alert_formats.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/audit_verify.h"
#include "common/sha256.h"
#include "common/strict_json.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

// 9999-12-31T23:59:59.999Z: no detector clock is further out than that, and every time Shadan
// prints must stay four-digit-year RFC 3339.
constexpr int64_t kMaxAlertTimeMs = 253402300799999;

// ---------------------------------------------------------------------------------------------
// Values

// Cuts `text` to at most `max_bytes` without splitting a UTF-8 sequence. The strict parser has
// already refused invalid UTF-8, so stepping back over continuation bytes (10xxxxxx) is enough.
std::string cutUtf8(std::string text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text;
}

// A text member kept in an Alert: a string without control characters, cut to
// kAlertTextMaxBytes. nullopt when absent.
Result<std::optional<std::string>> optionalText(const StrictObjectReader& r, std::string_view name,
                                                bool non_empty = false) {
  SHADAN_ASSIGN_OR_RETURN(auto value,
                          r.optionalString(name, {.non_empty = non_empty, .no_control = true}));
  if (!value) return value;
  return std::optional<std::string>(cutUtf8(std::move(*value), kAlertTextMaxBytes));
}

Result<std::string> requiredText(const StrictObjectReader& r, std::string_view name,
                                 bool non_empty = false) {
  SHADAN_ASSIGN_OR_RETURN(auto value, optionalText(r, name, non_empty));
  if (!value) return r.string(name);  // the reader's own "is required"
  return std::move(*value);
}

// An alert address: one IP literal, never a prefix or a name.
Result<std::optional<IpPrefix>> optionalAddress(const StrictObjectReader& r,
                                                std::string_view name) {
  if (!r.has(name)) return std::optional<IpPrefix>();
  const json& value = r.at(name);
  if (!value.is_string()) return r.error(name, "must be an IP address string");
  const auto& text = value.get_ref<const std::string&>();
  if (text.find('/') != std::string::npos) {
    return r.error(name, "must be one IP address, not a prefix: " + quoteForMessage(text));
  }
  auto address = IpPrefix::parse(text);
  if (!address.ok()) return r.error(name, "not an IP address: " + quoteForMessage(text));
  return std::optional<IpPrefix>(*address);
}

Result<IpPrefix> requiredAddress(const StrictObjectReader& r, std::string_view name) {
  SHADAN_ASSIGN_OR_RETURN(auto address, optionalAddress(r, name));
  if (!address) return r.error(name, "is required");
  return *address;
}

Status checkTimeRange(const StrictObjectReader& r, std::string_view name, int64_t time_ms) {
  if (time_ms < 0) return r.error(name, "before 1970");
  if (time_ms > kMaxAlertTimeMs) return r.error(name, "after the year 9999");
  return okStatus();
}

// parseRfc3339Millis leaves the calendar to timegm(), which rolls "02-31" over into March; an
// alert naming a day that does not exist is refused instead. REQUIRES: `text` passed
// parseRfc3339Millis (so "YYYY-MM-DD" leads it).
bool isRealDate(std::string_view text) {
  const auto number = [&text](size_t pos, size_t count) {
    int out = 0;
    for (size_t i = pos; i < pos + count; ++i) out = out * 10 + (text[i] - '0');
    return out;
  };
  const int year = number(0, 4), month = number(5, 2), day = number(8, 2);
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return day <= kDays[month - 1] + (month == 2 && leap ? 1 : 0);
}

// RFC 3339 ("2024-01-02T03:04:05Z", "...05.123+01:00"), or Suricata's own offset without a colon
// ("2024-01-02T03:04:05.123456+0000") when `suricata_offset`. Fractions are cut to milliseconds.
Result<int64_t> timeMember(const StrictObjectReader& r, std::string_view name,
                           bool suricata_offset) {
  SHADAN_ASSIGN_OR_RETURN(const std::string text, r.string(name, {.no_control = true}));
  std::string rfc3339 = text;
  const size_t n = text.size();
  if (suricata_offset && n > 5 && (text[n - 5] == '+' || text[n - 5] == '-') &&
      std::all_of(text.end() - 4, text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    rfc3339.insert(n - 2, ":");
  }
  auto millis = parseRfc3339Millis(rfc3339);
  if (!millis.ok() || !isRealDate(rfc3339)) {
    return r.error(name, "not an RFC 3339 time: " + quoteForMessage(text) +
                             (suricata_offset ? " (e.g. 2024-01-02T03:04:05.123456+0000)"
                                              : " (e.g. 2024-01-02T03:04:05Z)"));
  }
  SHADAN_RETURN_IF_ERROR(checkTimeRange(r, name, *millis));
  return *millis;
}

// Zeek's `ts`: epoch seconds as Zeek writes them by default (a number, microseconds in the
// fraction), or the ISO 8601 string of `JSON::TS_ISO8601`.
Result<int64_t> epochSecondsMember(const StrictObjectReader& r, std::string_view name) {
  if (!r.has(name)) return r.error(name, "is required");
  const json& value = r.at(name);
  if (value.is_string()) return timeMember(r, name, /*suricata_offset=*/false);
  if (!value.is_number()) return r.error(name, "must be epoch seconds (a number)");
  const double seconds = value.get<double>();
  if (!std::isfinite(seconds) || seconds < 0) return r.error(name, "before 1970");
  if (seconds * 1000 > static_cast<double>(kMaxAlertTimeMs)) {
    return r.error(name, "after the year 9999");
  }
  if (value.is_number_integer()) return value.get<int64_t>() * 1000;
  // Round to the microsecond Zeek wrote, then truncate to ms like the RFC 3339 parser: the
  // double nearest to x.452 may be x.45199999..., which floor(seconds * 1000) would cut to .451.
  const auto micros = static_cast<int64_t>(std::llround(seconds * 1e6));
  return micros / 1000;
}

// ---------------------------------------------------------------------------------------------
// Formats

Result<AlertSeverity> shadanSeverity(const StrictObjectReader& r) {
  if (!r.has("severity")) return AlertSeverity::kMedium;
  const json& value = r.at("severity");
  if (value.is_string()) {
    if (auto severity = parseAlertSeverity(value.get_ref<const std::string&>())) return *severity;
  } else if (value.is_number_unsigned()) {  // the parser stores every integer >= 0 as unsigned
    const auto number = value.get<uint64_t>();
    if (number >= 1 && number <= 4) return static_cast<AlertSeverity>(number);
  }
  return r.error("severity", "must be \"low\", \"medium\", \"high\", \"critical\" or 1 to 4");
}

Result<Alert> parseShadan(const json& doc, std::string_view source) {
  const StrictObjectReader r(doc, source, "", StrictJsonWording::kFields);
  SHADAN_RETURN_IF_ERROR(
      r.checkMembers({"source", "rule", "time"}, {"severity", "src_ip", "dst_ip", "detail"}));
  Alert alert;
  alert.format = AlertFormat::kShadan;
  SHADAN_ASSIGN_OR_RETURN(alert.source, requiredText(r, "source", /*non_empty=*/true));
  SHADAN_ASSIGN_OR_RETURN(alert.rule, requiredText(r, "rule", /*non_empty=*/true));
  SHADAN_ASSIGN_OR_RETURN(alert.severity, shadanSeverity(r));
  SHADAN_ASSIGN_OR_RETURN(alert.src, optionalAddress(r, "src_ip"));
  SHADAN_ASSIGN_OR_RETURN(alert.dst, optionalAddress(r, "dst_ip"));
  if (!alert.src && !alert.dst) return r.error("needs \"src_ip\" or \"dst_ip\" (or both)");
  SHADAN_ASSIGN_OR_RETURN(alert.time_ms, timeMember(r, "time", /*suricata_offset=*/false));
  SHADAN_ASSIGN_OR_RETURN(auto detail, optionalText(r, "detail"));
  alert.title = detail.value_or("");
  return alert;
}

// Suricata's priority: 1 is the most urgent; 3 and above (up to 255) are the long tail.
AlertSeverity eveSeverity(int64_t priority) {
  if (priority == 1) return AlertSeverity::kHigh;
  if (priority == 2) return AlertSeverity::kMedium;
  return AlertSeverity::kLow;
}

Result<Alert> parseEve(const json& doc, std::string_view source) {
  const StrictObjectReader r(doc, source, "", StrictJsonWording::kFields);
  if (!doc.is_object()) return r.error("must be an object");
  SHADAN_ASSIGN_OR_RETURN(const std::string event_type, r.string("event_type"));
  if (event_type != "alert") {
    return r.error("event_type", "not an alert record (" + quoteForMessage(event_type) + ")");
  }
  Alert alert;
  alert.format = AlertFormat::kEve;
  alert.source = "suricata";
  SHADAN_ASSIGN_OR_RETURN(alert.src, requiredAddress(r, "src_ip"));
  SHADAN_ASSIGN_OR_RETURN(alert.dst, requiredAddress(r, "dest_ip"));
  SHADAN_ASSIGN_OR_RETURN(alert.time_ms, timeMember(r, "timestamp", /*suricata_offset=*/true));
  SHADAN_ASSIGN_OR_RETURN(const StrictObjectReader a, r.object("alert"));
  // Suricata's sid is a 32-bit unsigned number.
  SHADAN_ASSIGN_OR_RETURN(const int64_t sid,
                          a.integer("signature_id", 0, std::numeric_limits<uint32_t>::max()));
  alert.signature_id = sid;
  alert.rule = std::to_string(sid);
  SHADAN_ASSIGN_OR_RETURN(alert.title, requiredText(a, "signature"));
  // Suricata writes a category only for rules with a classtype.
  SHADAN_ASSIGN_OR_RETURN(auto category, optionalText(a, "category"));
  alert.category = category.value_or("");
  SHADAN_ASSIGN_OR_RETURN(const int64_t priority, a.integer("severity", 1, 255));
  alert.severity = eveSeverity(priority);
  return alert;
}

Result<Alert> parseZeek(const json& doc, std::string_view source) {
  const StrictObjectReader r(doc, source, "", StrictJsonWording::kFields);
  if (!doc.is_object()) return r.error("must be an object");
  Alert alert;
  alert.format = AlertFormat::kZeek;
  alert.source = "zeek";
  alert.severity = AlertSeverity::kMedium;
  SHADAN_ASSIGN_OR_RETURN(alert.rule, requiredText(r, "note", /*non_empty=*/true));
  SHADAN_ASSIGN_OR_RETURN(alert.title, requiredText(r, "msg"));
  SHADAN_ASSIGN_OR_RETURN(alert.time_ms, epochSecondsMember(r, "ts"));
  // A notice names its hosts in src/dst when the script set them, else through the connection
  // it was raised on. Each side falls back on its own.
  const auto side = [&r](std::string_view own,
                         std::string_view conn) -> Result<std::optional<IpPrefix>> {
    if (r.has(own)) return optionalAddress(r, own);
    return optionalAddress(r, conn);
  };
  SHADAN_ASSIGN_OR_RETURN(alert.src, side("src", "id.orig_h"));
  SHADAN_ASSIGN_OR_RETURN(alert.dst, side("dst", "id.resp_h"));
  if (!alert.src && !alert.dst) {
    return r.error("needs an address: \"src\", \"dst\", \"id.orig_h\" or \"id.resp_h\"");
  }
  return alert;
}

// One record; errors start with `source: ` ("record N").
Result<Alert> parseRecord(std::string_view record, AlertFormat format, std::string_view source) {
  // Shadan's own format holds no float anywhere; the detectors' formats may in what is ignored.
  const auto numbers = format == AlertFormat::kShadan ? StrictJsonNumbers::kIntegersOnly
                                                      : StrictJsonNumbers::kAllowFloats;
  SHADAN_ASSIGN_OR_RETURN(const json doc,
                          parseStrictJson(record, source, kAlertRecordMaxBytes, numbers));
  switch (format) {
    case AlertFormat::kShadan:
      return parseShadan(doc, source);
    case AlertFormat::kEve:
      return parseEve(doc, source);
    case AlertFormat::kZeek:
      return parseZeek(doc, source);
  }
  std::abort();  // every format is handled above
}

// ---------------------------------------------------------------------------------------------
// Batches

bool isJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trimJsonSpace(std::string_view text) {
  while (!text.empty() && isJsonSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && isJsonSpace(text.back())) text.remove_suffix(1);
  return text;
}

// nlohmann prefixes "[json.exception.parse_error.101] ", which means nothing to an operator.
std::string withoutExceptionTag(const char* what) {
  std::string_view message(what);
  const size_t end = message.find("] ");
  if (!message.empty() && message.front() == '[' && end != std::string_view::npos) {
    message.remove_prefix(end + 2);
  }
  return std::string(message);
}

Error batchError(ErrorCode code, const std::string& reason) {
  return makeError(code, "body: " + reason);
}

Error tooManyRecords() {
  return batchError(ErrorCode::kInvalidArgument,
                    "more than " + std::to_string(kAlertBatchMaxRecords) + " records");
}

// The byte ranges of the elements of `array`, a JSON array that nlohmann has accepted as a whole
// (so brackets balance and strings close): a scan that only follows strings and nesting.
Result<std::vector<std::string_view>> splitArray(std::string_view array) {
  std::vector<std::string_view> elements;
  size_t i = array.find('[') + 1;
  while (true) {
    while (isJsonSpace(array[i])) ++i;
    if (array[i] == ']') break;  // only an empty array gets here
    const size_t start = i;
    int depth = 0;
    bool in_string = false;
    for (;; ++i) {
      const char c = array[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '"') {
        in_string = true;
      } else if (c == '[' || c == '{') {
        ++depth;
      } else if ((c == ']' || c == '}') && depth > 0) {
        --depth;
      } else if (depth == 0 && (c == ',' || c == ']')) {
        break;
      }
    }
    if (elements.size() == kAlertBatchMaxRecords) return tooManyRecords();
    elements.push_back(trimJsonSpace(array.substr(start, i - start)));
    if (array[i] == ']') break;
    ++i;  // the comma
  }
  return elements;
}

Result<std::vector<std::string_view>> splitLines(std::string_view body) {
  std::vector<std::string_view> lines;
  while (!body.empty()) {
    const size_t end = body.find('\n');
    const std::string_view line = trimJsonSpace(body.substr(0, end));
    body.remove_prefix(end == std::string_view::npos ? body.size() : end + 1);
    if (line.empty()) continue;
    if (lines.size() == kAlertBatchMaxRecords) return tooManyRecords();
    lines.push_back(line);
  }
  return lines;
}

Result<std::vector<std::string_view>> splitBatch(std::string_view body) {
  const std::string_view trimmed = trimJsonSpace(body);
  if (trimmed.empty()) return batchError(ErrorCode::kParse, "empty (no alert records)");
  if (trimmed.front() == '[') {
    // Syntax of the whole first, keeping nothing: duplicate keys and floats are each element's
    // business, so that one bad element does not refuse its neighbours.
    const json::parser_callback_t keep_nothing = [](int, json::parse_event_t, json&) {
      return false;
    };
    try {
      [[maybe_unused]] const json discarded =
          json::parse(trimmed.begin(), trimmed.end(), keep_nothing, /*allow_exceptions=*/true);
    } catch (const json::parse_error& e) {
      return batchError(ErrorCode::kParse, "not a valid JSON array: byte " +
                                               std::to_string(e.byte) + ": " +
                                               withoutExceptionTag(e.what()));
    } catch (const json::exception& e) {
      return batchError(ErrorCode::kParse,
                        "not a valid JSON array: " + withoutExceptionTag(e.what()));
    }
    SHADAN_ASSIGN_OR_RETURN(auto elements, splitArray(trimmed));
    if (elements.empty()) return batchError(ErrorCode::kParse, "empty array (no alert records)");
    return elements;
  }
  // One object pretty-printed over several lines is a batch of one, not lines of garbage.
  if (trimmed.find('\n') != std::string_view::npos && json::accept(trimmed)) {
    return std::vector<std::string_view>{trimmed};
  }
  return splitLines(body);
}

}  // namespace

const char* alertFormatName(AlertFormat format) {
  switch (format) {
    case AlertFormat::kShadan:
      return "shadan";
    case AlertFormat::kEve:
      return "eve";
    case AlertFormat::kZeek:
      return "zeek";
  }
  std::abort();
}

std::optional<AlertFormat> parseAlertFormat(std::string_view name) {
  for (const AlertFormat format : {AlertFormat::kShadan, AlertFormat::kEve, AlertFormat::kZeek}) {
    if (name == alertFormatName(format)) return format;
  }
  return std::nullopt;
}

Result<AlertFormat> alertFormatOf(std::optional<std::string_view> query_format,
                                  std::string_view content_type) {
  if (query_format) {
    if (auto format = parseAlertFormat(*query_format)) return *format;
    return makeError(
        ErrorCode::kInvalidArgument,
        "unknown alert format " + quoteForMessage(*query_format) + " (shadan, eve or zeek)");
  }
  std::string media(trimJsonSpace(content_type.substr(0, content_type.find(';'))));
  std::transform(media.begin(), media.end(), media.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (media == "application/vnd.shadan.alert+json" || media == "application/json" ||
      media == "application/x-ndjson") {
    return AlertFormat::kShadan;
  }
  if (media == "application/vnd.suricata.eve+json") return AlertFormat::kEve;
  if (media == "application/vnd.zeek.notice+json") return AlertFormat::kZeek;
  if (media.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "no Content-Type: name the alert format with ?format=shadan|eve|zeek");
  }
  return makeError(ErrorCode::kInvalidArgument,
                   "unsupported Content-Type " + quoteForMessage(content_type) +
                       " for alerts (or name the format with ?format=shadan|eve|zeek)");
}

const char* alertSeverityName(AlertSeverity severity) {
  switch (severity) {
    case AlertSeverity::kLow:
      return "low";
    case AlertSeverity::kMedium:
      return "medium";
    case AlertSeverity::kHigh:
      return "high";
    case AlertSeverity::kCritical:
      return "critical";
  }
  std::abort();
}

std::optional<AlertSeverity> parseAlertSeverity(std::string_view name) {
  for (const AlertSeverity severity : {AlertSeverity::kLow, AlertSeverity::kMedium,
                                       AlertSeverity::kHigh, AlertSeverity::kCritical}) {
    if (name == alertSeverityName(severity)) return severity;
  }
  return std::nullopt;
}

Result<std::vector<AlertRecord>> parseAlertBatch(std::string_view body, AlertFormat format) {
  if (body.size() > kAlertBodyMaxBytes) {
    return batchError(ErrorCode::kInvalidArgument,
                      std::to_string(body.size()) + " bytes exceeds the limit of " +
                          std::to_string(kAlertBodyMaxBytes) + " bytes");
  }
  SHADAN_ASSIGN_OR_RETURN(const auto records, splitBatch(body));
  std::vector<AlertRecord> out;
  out.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    AlertRecord record;
    record.index = i;
    record.raw_sha256 = sha256Hex(records[i]);
    record.alert = parseRecord(records[i], format, "record " + std::to_string(i));
    out.push_back(std::move(record));
  }
  return out;
}

Result<Alert> parseAlert(std::string_view record, AlertFormat format) {
  return parseRecord(trimJsonSpace(record), format, "record");
}

}  // namespace shadan::controller

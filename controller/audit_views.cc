#include "controller/audit_views.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <filesystem>
#include <set>
#include <string_view>

#include "common/audit_verify.h"
#include "common/strict_json.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

constexpr std::string_view kAgentPrefix = "agent:";
// Longest audit line the reader takes (AuditLog refuses longer entries when writing).
constexpr size_t kMaxLineBytes = 1 << 20;

Error badQuery(std::string_view name, std::string_view reason) {
  return makeError(ErrorCode::kInvalidArgument,
                   "query: " + std::string(name) + ": " + std::string(reason));
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding of one query value; a malformed escape or a control character is refused.
Result<std::string> decodeValue(std::string_view name, std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      const int high = i + 2 < text.size() ? hexValue(text[i + 1]) : -1;
      const int low = i + 2 < text.size() ? hexValue(text[i + 2]) : -1;
      if (high < 0 || low < 0) return badQuery(name, "malformed percent escape");
      c = static_cast<char>(high * 16 + low);
      i += 2;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return badQuery(name, "must not contain control characters");
    }
    out.push_back(c);
  }
  if (out.size() > 128) return badQuery(name, "longer than 128 bytes");
  return out;
}

Result<uint64_t> decimal(std::string_view name, const std::string& text) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return badQuery(name, "must be a non-negative integer");
  }
  return value;
}

json findingJson(const AuditFinding& finding) {
  json out = {{"file", std::filesystem::path(finding.file).filename().string()},
              {"message", finding.message}};
  out["line"] = finding.line == 0 ? json(nullptr) : json(finding.line);
  out["log_seq"] = finding.log_seq ? json(*finding.log_seq) : json(nullptr);
  return out;
}

json verificationJson(const AuditVerifyReport& report) {
  json out = {{"valid", report.valid},
              {"entries", report.entries},
              {"head_hash", report.head_hash},
              {"checkpoints", report.checkpoints},
              {"checkpoints_matched", report.checkpoints_matched},
              {"signatures_checked", report.signatures_checked},
              {"signatures_verified", report.signatures_verified},
              {"last_checkpoint_size", report.last_checkpoint_size},
              {"unprotected_entries",
               report.entries - std::min(report.entries, report.last_checkpoint_size)}};
  out["error"] = report.error ? findingJson(*report.error) : json(nullptr);
  json warnings = json::array();
  for (const AuditFinding& warning : report.warnings) warnings.push_back(findingJson(warning));
  out["warnings"] = std::move(warnings);
  return out;
}

}  // namespace

Result<AuditQuery> parseAuditQuery(std::string_view query) {
  AuditQuery out;
  std::set<std::string, std::less<>> seen;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    const std::string_view raw = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (name != "log" && name != "limit" && name != "before" && name != "event") {
      return makeError(
          ErrorCode::kInvalidArgument,
          "query: unknown parameter " + quoteForMessage(name) + " (log, limit, before, event)");
    }
    if (!seen.insert(std::string(name)).second) return badQuery(name, "given twice");
    SHADAN_ASSIGN_OR_RETURN(auto value, decodeValue(name, raw));
    if (name == "log") {
      if (value != "controller" &&
          !(value.starts_with(kAgentPrefix) && value.size() > kAgentPrefix.size())) {
        return badQuery(name, "must be \"controller\" or \"agent:<agent_id>\"");
      }
      out.log = std::move(value);
    } else if (name == "limit") {
      SHADAN_ASSIGN_OR_RETURN(auto limit, decimal(name, value));
      if (limit < 1 || limit > kAuditPageMax) {
        return badQuery(name, "must be 1.." + std::to_string(kAuditPageMax));
      }
      out.limit = static_cast<size_t>(limit);
    } else if (name == "before") {
      SHADAN_ASSIGN_OR_RETURN(out.before, decimal(name, value));
    } else {
      out.event = std::move(value);
    }
  }
  return out;
}

Result<json> AuditReader::read(const AuditQuery& query) {
  std::string path;
  std::vector<PublicKeyInfo> keys;
  if (query.log == "controller") {
    path = sources_.controller_log;
    keys = sources_.controller_keys;
  } else {
    const std::string agent_id = query.log.substr(kAgentPrefix.size());
    SHADAN_ASSIGN_OR_RETURN(path, sources_.agent_log(agent_id));
    const std::vector<std::string> held = sources_.agent_ids();
    if (std::find(held.begin(), held.end(), agent_id) == held.end()) {
      return makeError(ErrorCode::kNotFound, "log " + quoteForMessage(query.log) +
                                                 ": no such audit log at this controller");
    }
    if (auto key = sources_.agent_key(agent_id)) keys.push_back(PublicKeyInfo{"", *key, {}});
  }
  auto report = verifyAuditLog(fs_, path, keys);
  if (!report.ok()) {
    if (report.error().code == ErrorCode::kNotFound) {
      return makeError(ErrorCode::kNotFound, "log " + quoteForMessage(query.log) +
                                                 ": no such audit log at this controller");
    }
    return report.error();
  }

  // The newest `limit` matching entries, read in file order and kept in a window.
  std::deque<json> window;
  std::optional<uint64_t> older;  // a matching entry left out of the window: there is more
  for (const std::string& file : report->files) {
    SHADAN_ASSIGN_OR_RETURN(auto text, fs_.readFile(file));
    std::string_view rest = text;
    while (!rest.empty()) {
      const size_t newline = rest.find('\n');
      if (newline == std::string_view::npos) break;  // a torn tail: the verification says so
      const std::string_view line = rest.substr(0, newline);
      rest.remove_prefix(newline + 1);
      if (line.empty() || line.size() > kMaxLineBytes) continue;
      auto entry = parseStrictJson(line, "entry", kMaxLineBytes);
      if (!entry.ok() || !entry->is_object()) continue;  // reported by the verification
      const auto seq = entry->find("log_seq");
      if (seq == entry->end() || !seq->is_number_unsigned()) continue;
      if (query.before && seq->get<uint64_t>() >= *query.before) continue;
      if (!query.event.empty() && entry->value("event", std::string()) != query.event) continue;
      window.push_back(std::move(*entry));
      if (window.size() > query.limit) {
        older = window.front()["log_seq"].get<uint64_t>();
        window.pop_front();
      }
    }
  }
  // Paging on: the log_seq to pass as `before` for the next (older) page.
  const json next_before =
      older && !window.empty() ? json(window.front()["log_seq"]) : json(nullptr);
  json entries = json::array();
  for (auto it = window.rbegin(); it != window.rend(); ++it) entries.push_back(std::move(*it));
  json logs = json::array({"controller"});
  for (const std::string& id : sources_.agent_ids()) logs.push_back(std::string(kAgentPrefix) + id);
  json out = {{"log", query.log},
              {"logs", std::move(logs)},
              {"verification", verificationJson(*report)},
              {"entries", std::move(entries)},
              {"next_before", next_before}};
  return out;
}

}  // namespace shadan::controller

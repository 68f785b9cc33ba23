#include "cli/audit_cmd.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "cli/shadanctl.h"
#include "common/audit_log.h"
#include "common/audit_verify.h"
#include "common/ed25519.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

constexpr const char* kAuditUsage = R"(usage: shadanctl audit <verify|show> PATH [options]

PATH: an audit log file (audit.log) or a directory holding audit.log* (an agent's state dir).
Rotated segments (audit.log.<first>-<last>) and audit.log.checkpoints beside it are read too.

  audit verify PATH [--key PUBFILE ...] [--json]
      Check the hash chain (prev_hash, contiguous log_seq, strict entries), the checkpoints'
      heads and Merkle roots, and truncation behind the last checkpoint. With --key (repeatable,
      public key files), every checkpoint must be signed by one of the keys. Without --key the
      signatures are reported as NOT checked (a warning) and the rest is still verified.
      Names the first bad entry (file, line, log_seq).
      Exit 0: valid, 1: invalid or unreadable, 2: usage error.
  audit show PATH [--segment S] [--command-id ID] [--gateway G]
             [--since RFC3339] [--until RFC3339] [--json]
      Print the entries that match every filter, one line each (--json: a JSON array).
      Does not verify; run `audit verify` for that.
)";

struct Parsed {
  std::optional<std::string> path;
  std::map<std::string, std::string> values;
  std::vector<std::string> keys;
  std::set<std::string> flags;
};

Result<Parsed> parseArgs(const std::vector<std::string>& args, const std::string& command,
                         const std::set<std::string>& with_value) {
  Parsed parsed;
  for (size_t i = 2; i < args.size(); ++i) {
    std::string key = args[i];
    std::optional<std::string> value;
    if (key.empty() || key[0] != '-') {
      if (parsed.path) {
        return makeError(ErrorCode::kInvalidArgument,
                         "'" + command + "' takes one PATH, not also '" + key + "'");
      }
      parsed.path = key;
      continue;
    }
    if (const size_t eq = key.find('='); key.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    }
    if (key == "--json" || key == "--help" || key == "-h") {
      if (value) return makeError(ErrorCode::kInvalidArgument, "option " + key + " takes no value");
      parsed.flags.insert(key);
      continue;
    }
    if (!with_value.contains(key)) {
      return makeError(ErrorCode::kInvalidArgument,
                       "unknown option '" + key + "' for '" + command + "'");
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return makeError(ErrorCode::kInvalidArgument, "option " + key + " needs a value");
      }
      value = args[++i];
    }
    if (key == "--key") {
      parsed.keys.push_back(*value);
    } else if (!parsed.values.emplace(key, *value).second) {
      return makeError(ErrorCode::kInvalidArgument, "option " + key + " given twice");
    }
  }
  return parsed;
}

// A directory means its audit.log; anything else is the log's own path.
std::string resolveBase(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return (std::filesystem::path(path) / "audit.log").string();
  }
  return path;
}

std::string describe(const AuditFinding& finding) {
  std::string out;
  if (!finding.file.empty()) out += finding.file;
  if (finding.line > 0) out += ":" + std::to_string(finding.line);
  if (finding.log_seq)
    out += (out.empty() ? "" : " ") + std::string("log_seq ") + std::to_string(*finding.log_seq);
  return out.empty() ? finding.message : out + ": " + finding.message;
}

class AuditCommand {
 public:
  AuditCommand(std::ostream& out, std::ostream& err) : out_(out), err_(err) {}

  int run(const std::vector<std::string>& args) {
    if (args.size() < 2) return usage("'audit' needs a subcommand");
    const std::string& sub = args[1];
    if (sub == "-h" || sub == "--help" || sub == "help") {
      out_ << kAuditUsage;
      return kExitOk;
    }
    std::set<std::string> with_value;
    if (sub == "verify") {
      with_value = {"--key"};
    } else if (sub == "show") {
      with_value = {"--segment", "--command-id", "--gateway", "--since", "--until"};
    } else {
      return usage("unknown audit subcommand '" + sub + "'");
    }
    auto parsed = parseArgs(args, "audit " + sub, with_value);
    if (!parsed.ok()) return usage(parsed.error().message);
    if (parsed->flags.contains("--help") || parsed->flags.contains("-h")) {
      out_ << kAuditUsage;
      return kExitOk;
    }
    if (!parsed->path) return usage("'audit " + sub + "' needs PATH");
    return sub == "verify" ? verify(*parsed) : show(*parsed);
  }

 private:
  int usage(const std::string& message) {
    err_ << "shadanctl: " << message << "\n\n" << kAuditUsage;
    return kExitUsage;
  }

  int verify(const Parsed& parsed) {
    std::vector<PublicKeyInfo> keys;
    for (const std::string& file : parsed.keys) {
      auto key = loadPublicKeyFile(file);
      if (!key.ok()) return usage("--key: " + key.error().message);
      keys.push_back(std::move(*key));
    }
    PosixLogFileSystem fs;
    const std::string base = resolveBase(*parsed.path);
    auto report = verifyAuditLog(fs, base, keys);
    if (!report.ok()) {
      err_ << "shadanctl: " << report.error().message << "\n";
      return kExitFailure;
    }
    if (parsed.flags.contains("--json")) {
      out_ << auditVerifyReportToJson(*report).dump(2) << "\n";
      return report->valid ? kExitOk : kExitFailure;
    }
    for (const AuditFinding& warning : report->warnings) {
      out_ << "warning: " << describe(warning) << "\n";
    }
    const std::string log_id = report->log_id.value_or("?");
    if (report->valid) {
      out_ << "VALID: log " << log_id << ", " << report->entries << " entries in "
           << report->files.size() << " file(s), head " << report->head_hash << ", root "
           << report->root << "\n";
    } else {
      out_ << "INVALID: " << describe(*report->error) << "\n";
      out_ << "  entries before the fault verified: " << report->entries << " (log " << log_id
           << ")\n";
    }
    out_ << "  checkpoints: " << report->checkpoints << " (" << report->checkpoints_matched
         << " matched the entries; signatures "
         << (report->signatures_checked ? std::to_string(report->signatures_verified) + " verified"
                                        : std::string("NOT checked: no --key"))
         << ")\n";
    if (!report->recoveries.empty()) {
      out_ << "  recovered tails: " << report->recoveries.size()
           << " (an interrupted write was moved aside; see the warnings)\n";
    }
    return report->valid ? kExitOk : kExitFailure;
  }

  int show(const Parsed& parsed) {
    std::optional<int64_t> since;
    std::optional<int64_t> until;
    for (auto [option, slot] : {std::pair{"--since", &since}, std::pair{"--until", &until}}) {
      auto it = parsed.values.find(option);
      if (it == parsed.values.end()) continue;
      auto millis = parseRfc3339Millis(it->second);
      if (!millis.ok()) return usage(std::string(option) + ": " + millis.error().message);
      *slot = *millis;
    }
    auto value = [&](const char* option) -> std::optional<std::string> {
      auto it = parsed.values.find(option);
      if (it == parsed.values.end()) return std::nullopt;
      return it->second;
    };
    const auto segment = value("--segment");
    const auto command_id = value("--command-id");
    const auto gateway = value("--gateway");

    PosixLogFileSystem fs;
    const std::string base = resolveBase(*parsed.path);
    auto segments = listAuditSegments(fs, base);
    if (!segments.ok()) {
      err_ << "shadanctl: " << segments.error().message << "\n";
      return kExitFailure;
    }
    std::vector<std::string> files;
    for (const AuditSegmentFile& file : *segments) files.push_back(file.path);
    auto exists = fs.exists(base);
    if (exists.ok() && *exists) files.push_back(base);
    if (files.empty()) {
      err_ << "shadanctl: no audit log at " << base << "\n";
      return kExitFailure;
    }

    const bool json = parsed.flags.contains("--json");
    Json matches = Json::array();
    int status = kExitOk;
    for (const std::string& file : files) {
      auto text = fs.readFile(file);
      if (!text.ok()) {
        err_ << "shadanctl: " << text.error().message << "\n";
        return kExitFailure;
      }
      uint64_t line_no = 0;
      size_t offset = 0;
      while (offset < text->size()) {
        ++line_no;
        size_t nl = text->find('\n', offset);
        if (nl == std::string::npos) nl = text->size();
        const std::string_view line = std::string_view(*text).substr(offset, nl - offset);
        offset = nl + 1;
        auto record = parseAuditLine(line);
        if (!record.ok()) {
          err_ << "warning: " << file << ":" << line_no << ": not an entry ("
               << record.error().message << "); run shadanctl audit verify\n";
          status = kExitFailure;
          continue;
        }
        const AuditEvent& e = record->event;
        if (segment && (!e.what || e.what->segment != *segment)) continue;
        if (command_id && e.command_id != *command_id) continue;
        if (gateway && (!e.where || e.where->agent_id != *gateway)) continue;
        if (since || until) {
          auto ts = parseRfc3339Millis(record->ts);
          if (!ts.ok() || (since && *ts < *since) || (until && *ts > *until)) continue;
        }
        if (json) {
          auto as_json = auditRecordToJson(*record);
          if (as_json.ok()) matches.push_back(std::move(*as_json));
        } else {
          out_ << humanLine(*record) << "\n";
        }
      }
    }
    if (json) out_ << matches.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    return status;
  }

  static std::string humanLine(const AuditRecord& record) {
    const AuditEvent& e = record.event;
    std::string out = record.ts + " #" + std::to_string(record.log_seq) + " " + e.event;
    auto add = [&](const char* key, const std::optional<std::string>& value) {
      if (value) out += std::string(" ") + key + "=" + *value;
    };
    add("outcome", e.outcome);
    if (e.what) {
      add("action", e.what->action);
      add("segment", e.what->segment);
      add("profile", e.what->profile);
    }
    if (e.where) add("gateway", e.where->agent_id);
    add("command", e.command_id);
    if (e.who) add("by", e.who->requested_by);
    if (e.drill == true) out += " drill";
    add("reason", e.reason);
    return out;
  }

  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace

const char* auditUsage() { return kAuditUsage; }

int runAuditCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return AuditCommand(out, err).run(args);
}

}  // namespace shadan

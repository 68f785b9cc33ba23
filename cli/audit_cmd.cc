#include "cli/audit_cmd.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/options.h"
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
    if (args.size() < 2) return usage("'audit' needs a subcommand (subcommands: verify, show)");
    const std::string& sub = args[1];
    if (sub == "-h" || sub == "--help" || sub == "help") {
      out_ << kAuditUsage;
      return kExitOk;
    }
    OptionSpec spec;
    spec.command = "audit " + sub;
    spec.flags = {"--json"};
    spec.repeatable = {"--key", "--json"};
    // Every word is taken, so that a second PATH gets its own message below.
    spec.max_positionals = kUnlimitedPositionals;
    if (sub == "verify") {
      spec.with_value = {"--key"};
    } else if (sub == "show") {
      spec.with_value = {"--segment", "--command-id", "--gateway", "--since", "--until"};
    } else {
      return usage("unknown audit subcommand '" + sub + "' (subcommands: verify, show)");
    }
    auto parsed = parseCommandOptions(args, 2, spec);
    if (!parsed.ok()) return usage(parsed.error().message);
    if (parsed->help) {
      out_ << kAuditUsage;
      return kExitOk;
    }
    if (parsed->positionals.size() > 1) {
      return usage("'audit " + sub + "' takes one PATH, not also '" + parsed->positionals[1] + "'");
    }
    if (parsed->positionals.empty()) return usage("'audit " + sub + "' needs PATH");
    return sub == "verify" ? verify(*parsed) : show(*parsed);
  }

 private:
  int usage(const std::string& message) { return printUsageError(err_, "audit", message); }

  int verify(const CommandOptions& parsed) {
    std::vector<PublicKeyInfo> keys;
    for (const std::string& file : parsed.all("--key")) {
      auto key = loadPublicKeyFile(file);
      if (!key.ok()) return usage("--key: " + key.error().message);
      keys.push_back(std::move(*key));
    }
    PosixLogFileSystem fs;
    const std::string base = resolveBase(parsed.positionals[0]);
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

  int show(const CommandOptions& parsed) {
    std::optional<int64_t> since;
    std::optional<int64_t> until;
    for (auto [option, slot] : {std::pair{"--since", &since}, std::pair{"--until", &until}}) {
      auto text = parsed.value(option);
      if (!text) continue;
      auto millis = parseRfc3339Millis(*text);
      if (!millis.ok()) return usage(std::string(option) + ": " + millis.error().message);
      *slot = *millis;
    }
    const auto segment = parsed.value("--segment");
    const auto command_id = parsed.value("--command-id");
    const auto gateway = parsed.value("--gateway");

    PosixLogFileSystem fs;
    const std::string base = resolveBase(parsed.positionals[0]);
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

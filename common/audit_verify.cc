#include "common/audit_verify.h"

#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include "common/sha256.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

struct Line {
  std::string_view text;
  uint64_t number;  // 1-based
  bool terminated;  // ends with '\n'
};

std::vector<Line> splitLines(std::string_view text) {
  std::vector<Line> lines;
  size_t offset = 0;
  uint64_t number = 0;
  while (offset < text.size()) {
    const size_t nl = text.find('\n', offset);
    ++number;
    if (nl == std::string_view::npos) {
      lines.push_back({text.substr(offset), number, false});
      break;
    }
    lines.push_back({text.substr(offset, nl - offset), number, true});
    offset = nl + 1;
  }
  return lines;
}

std::string seqText(uint64_t seq) { return "log_seq " + std::to_string(seq); }

struct CheckpointEntry {
  AuditCheckpoint checkpoint;
  uint64_t line;
};

class Verifier {
 public:
  Verifier(LogFileSystem& fs, std::string base, const std::vector<PublicKeyInfo>& keys)
      : fs_(fs), base_(std::move(base)), keys_(keys) {}

  Result<AuditVerifyReport> run() {
    SHADAN_ASSIGN_OR_RETURN(auto segments, listAuditSegments(fs_, base_));
    SHADAN_ASSIGN_OR_RETURN(auto base_exists, fs_.exists(base_));
    if (segments.empty() && !base_exists) {
      return makeError(ErrorCode::kNotFound, "no audit log at " + base_);
    }
    report_.signatures_checked = !keys_.empty();

    if (!readCheckpoints()) return finish();
    for (const AuditSegmentFile& segment : segments) {
      if (!walkFile(segment.path, &segment)) return finish();
    }
    if (base_exists && !walkFile(base_, nullptr)) return finish();
    checkTruncation();
    return finish();
  }

 private:
  void fail(std::string file, uint64_t line, std::optional<uint64_t> seq, std::string message) {
    if (!report_.error)
      report_.error = AuditFinding{std::move(file), line, seq, std::move(message)};
  }
  void warn(std::string file, uint64_t line, std::optional<uint64_t> seq, std::string message) {
    report_.warnings.push_back({std::move(file), line, seq, std::move(message)});
  }

  const PublicKeyInfo* findKey(const std::string& key_id) const {
    for (const PublicKeyInfo& key : keys_) {
      if (key.key_id == key_id) return &key;
    }
    return nullptr;
  }

  // Returns false after a fault.
  bool readCheckpoints() {
    const std::string path = auditCheckpointsPath(base_);
    auto text = fs_.readFile(path);
    if (!text.ok()) {
      if (text.error().code == ErrorCode::kNotFound) return true;
      fail(path, 0, std::nullopt, text.error().message);
      return false;
    }
    checkpoint_text_ = std::move(*text);
    uint64_t previous_size = 0;
    for (const Line& line : splitLines(checkpoint_text_)) {
      if (!line.terminated) {
        warn(path, line.number, std::nullopt,
             "torn final checkpoint line (" + std::to_string(line.text.size()) +
                 " bytes, no newline): an interrupted write; ignored");
        break;
      }
      auto parsed = parseCheckpointLine(line.text);
      if (!parsed.ok()) {
        fail(path, line.number, std::nullopt, "invalid checkpoint: " + parsed.error().message);
        return false;
      }
      if (report_.log_id && parsed->log_id != *report_.log_id) {
        fail(path, line.number, std::nullopt,
             "checkpoint names log " + quoteForMessage(parsed->log_id) + ", not " +
                 quoteForMessage(*report_.log_id));
        return false;
      }
      report_.log_id = parsed->log_id;
      if (parsed->size < previous_size) {
        fail(path, line.number, std::nullopt,
             "checkpoint covers " + std::to_string(parsed->size) +
                 " entries, fewer than the checkpoint before it (" + std::to_string(previous_size) +
                 "): the log was truncated and rewritten");
        return false;
      }
      previous_size = parsed->size;
      if (!keys_.empty()) {
        const PublicKeyInfo* key = findKey(parsed->key_id);
        if (key == nullptr) {
          fail(path, line.number, std::nullopt,
               "checkpoint signed by keyid " + parsed->key_id.substr(0, 16) +
                   "..., which is not among the given keys");
          return false;
        }
        if (!verifyCheckpointSignature(*parsed, key->public_key)) {
          fail(
              path, line.number, std::nullopt,
              "checkpoint signature does not verify with key " + key->key_id.substr(0, 16) + "...");
          return false;
        }
        ++report_.signatures_verified;
      }
      checkpoints_[parsed->size].push_back({std::move(*parsed), line.number});
      ++report_.checkpoints;
      report_.last_checkpoint_size = previous_size;
    }
    if (report_.checkpoints > 0 && keys_.empty()) {
      warn(path, 0, std::nullopt,
           std::to_string(report_.checkpoints) +
               " checkpoint signature(s) NOT checked: no --key given; the chain and the "
               "checkpoints' hashes were still checked");
    }
    return true;
  }

  // Returns false after a fault.
  bool walkFile(const std::string& path, const AuditSegmentFile* segment) {
    report_.files.push_back(path);
    auto text = fs_.readFile(path);
    if (!text.ok()) {
      fail(path, 0, std::nullopt, text.error().message);
      return false;
    }
    const std::vector<Line> lines = splitLines(*text);
    const uint64_t first_seq = chain_.size();
    for (size_t i = 0; i < lines.size(); ++i) {
      const Line& line = lines[i];
      const uint64_t expected = chain_.size();
      const bool final_line = i + 1 == lines.size();
      if (!line.terminated) {
        if (segment != nullptr) {
          fail(path, line.number, expected,
               "incomplete line (no newline) inside a rotated segment");
          return false;
        }
        AuditFinding torn{path, line.number, expected,
                          "torn final line (" + std::to_string(line.text.size()) +
                              " bytes, no newline; sha256 " + sha256Hex(line.text) +
                              "): an interrupted write, not an entry. The log is valid up to " +
                              (expected == 0 ? std::string("its start") : seqText(expected - 1)) +
                              "; the agent moves it aside when it next opens the log"};
        report_.torn_tail = torn;
        report_.warnings.push_back(std::move(torn));
        break;
      }
      AuditChain::Check check = chain_.accept(line.text);
      if (check.failure != AuditChain::Failure::kNone) {
        diagnose(path, lines, i, check, final_line && segment == nullptr);
        return false;
      }
      const AuditRecord& record = *check.record;
      report_.log_id = record.log_id;
      noteRecovery(path, record);
      if (!checkCheckpointsAt(path, line.number)) return false;
      prev_file_ = path;
      prev_line_ = line.number;
    }
    if (segment != nullptr) {
      const bool empty = chain_.size() == first_seq;
      if (empty || segment->first_seq != first_seq || segment->last_seq != chain_.size() - 1) {
        fail(path, 0, first_seq,
             "segment name says log_seq " + std::to_string(segment->first_seq) + "-" +
                 std::to_string(segment->last_seq) + " but it holds " +
                 (empty ? std::string("no entries")
                        : std::to_string(first_seq) + "-" + std::to_string(chain_.size() - 1)) +
                 " (a segment is missing, renamed or altered)");
        return false;
      }
    }
    return true;
  }

  void diagnose(const std::string& path, const std::vector<Line>& lines, size_t i,
                const AuditChain::Check& check, bool final_line_of_log) {
    const Line& line = lines[i];
    const uint64_t expected = chain_.size();
    const std::string where = "line " + std::to_string(line.number);
    switch (check.failure) {
      case AuditChain::Failure::kMalformed:
        if (final_line_of_log) {
          fail(path, line.number, expected,
               "entry " + seqText(expected) + " (" + where +
                   ", the final line) is not a valid "
                   "entry: " +
                   check.message + " (a torn write or an altered entry)");
        } else {
          fail(path, line.number, expected,
               "entry " + seqText(expected) + " (" + where +
                   ") is not a valid entry: " + check.message + " (altered)");
        }
        return;
      case AuditChain::Failure::kWrongLogId:
        fail(path, line.number, check.record->log_seq,
             where + ": " + check.message + " (a line from another log was inserted)");
        return;
      case AuditChain::Failure::kSeqMismatch: {
        const uint64_t found = check.record->log_seq;
        std::optional<uint64_t> next_seq;
        if (i + 1 < lines.size()) {
          if (auto next = parseAuditLine(lines[i + 1].text); next.ok()) next_seq = next->log_seq;
        }
        if (found > expected && next_seq == expected) {
          fail(path, line.number, expected,
               "lines " + std::to_string(line.number) + " and " +
                   std::to_string(lines[i + 1].number) + " are out of order (" + seqText(found) +
                   " comes before " + seqText(expected) + "): reordered lines");
        } else if (found > expected) {
          fail(path, line.number, expected,
               "entry " + seqText(expected) +
                   (found - expected > 1 ? " to " + std::to_string(found - 1) : std::string()) +
                   " missing: " + where + " holds " + seqText(found) + " (removed lines)");
        } else {
          fail(path, line.number, found,
               where + " holds " + seqText(found) + " again where " + seqText(expected) +
                   " belongs (an inserted or duplicated line)");
        }
        return;
      }
      case AuditChain::Failure::kPrevHashMismatch: {
        // Entry k's prev_hash does not match entry k-1. If entry k's own hash is still what
        // entry k+1 recorded, entry k is intact and k-1 was changed; if not, k itself was.
        std::optional<bool> next_links;
        if (i + 1 < lines.size() && lines[i + 1].terminated) {
          if (auto next = parseAuditLine(lines[i + 1].text); next.ok()) {
            next_links = next->prev_hash == auditEntryHashHex(line.text);
          }
        }
        if (next_links == false) {
          fail(path, line.number, expected,
               "entry " + seqText(expected) + " (" + where + ") was changed: its prev_hash " +
                   "does not link to " + seqText(expected - 1) +
                   " and its own hash does not match the prev_hash of the next entry");
        } else if (expected == 0 || prev_file_.empty()) {
          fail(path, line.number, expected,
               "entry " + seqText(expected) + " (" + where + "): " + check.message);
        } else {
          fail(prev_file_, prev_line_, expected - 1,
               "entry " + seqText(expected - 1) + " (line " + std::to_string(prev_line_) +
                   ") was changed: its hash does not match the prev_hash of " + seqText(expected) +
                   " (" + where + (next_links ? ")" : "; or that entry's prev_hash was changed)"));
        }
        return;
      }
      case AuditChain::Failure::kNone:
        return;
    }
  }

  // Returns false after a fault.
  bool checkCheckpointsAt(const std::string& path, uint64_t line) {
    auto it = checkpoints_.find(chain_.size());
    if (it == checkpoints_.end()) return true;
    const std::string root = hexEncode(chain_.root());
    const std::string checkpoints_path = auditCheckpointsPath(base_);
    for (const CheckpointEntry& entry : it->second) {
      const uint64_t last = chain_.size() - 1;
      if (entry.checkpoint.head_hash != chain_.headHash()) {
        fail(path, line, last,
             "entry " + seqText(last) + " (line " + std::to_string(line) +
                 ") does not match the head_hash of the checkpoint at " + checkpoints_path +
                 " line " + std::to_string(entry.line) +
                 ": it was changed or replaced after the checkpoint was signed");
        return false;
      }
      if (entry.checkpoint.root != root) {
        fail(path, line, last,
             "entries up to " + seqText(last) + " do not match the Merkle root of the " +
                 "checkpoint at " + checkpoints_path + " line " + std::to_string(entry.line) +
                 ": the log before it was rewritten");
        return false;
      }
      ++report_.checkpoints_matched;
    }
    return true;
  }

  void checkTruncation() {
    if (report_.error) return;
    const uint64_t size = chain_.size();
    for (const auto& [covered, entries] : checkpoints_) {
      if (covered <= size) continue;
      fail(prev_file_.empty() ? base_ : prev_file_, prev_line_, size,
           "log truncated: it ends after " +
               (size == 0 ? std::string("no entry") : seqText(size - 1)) +
               " but the checkpoint at " + auditCheckpointsPath(base_) + " line " +
               std::to_string(entries.front().line) + " covers " + std::to_string(covered) +
               " entries: " + seqText(size) +
               (covered - size > 1 ? " to " + std::to_string(covered - 1) : std::string()) +
               " are missing");
      return;
    }
    if (size > report_.last_checkpoint_size && report_.checkpoints > 0) {
      warn(base_, 0, report_.last_checkpoint_size,
           std::to_string(size - report_.last_checkpoint_size) +
               " entries after the last checkpoint (from " + seqText(report_.last_checkpoint_size) +
               ") are not covered by a signed checkpoint: their removal could not be detected");
    } else if (report_.checkpoints == 0 && size > 0) {
      warn(base_, 0, std::nullopt,
           "no checkpoints: truncation or a rewrite of the whole log cannot be detected");
    }
  }

  void noteRecovery(const std::string& path, const AuditRecord& record) {
    const std::string& event = record.event.event;
    if (event != kAuditTornTailEvent && event != kAuditCorruptTailEvent &&
        event != kAuditCheckpointTornTailEvent) {
      return;
    }
    AuditRecoveryNote note;
    note.event = event;
    note.log_seq = record.log_seq;
    note.reason = record.event.reason.value_or("");
    if (const auto& detail = record.event.detail) {
      if (auto it = detail->find("torn_bytes"); it != detail->end() && it->is_number_unsigned()) {
        note.bytes = it->get<uint64_t>();
      }
      if (auto it = detail->find("torn_sha256"); it != detail->end() && it->is_string()) {
        note.sha256 = it->get<std::string>();
      }
      if (auto it = detail->find("moved_to"); it != detail->end() && it->is_string()) {
        note.moved_to = it->get<std::string>();
      }
    }
    std::string message = event + " at " + seqText(record.log_seq) + ": " +
                          std::to_string(note.bytes) + " bytes (sha256 " + note.sha256 +
                          ") moved to " + note.moved_to + "; reason: " + note.reason;
    // moved_to is a bare file name next to the log; never follow a path out of the directory.
    if (!note.moved_to.empty() && note.moved_to.find('/') == std::string::npos) {
      const std::string aside =
          (std::filesystem::path(base_).parent_path() / note.moved_to).string();
      auto bytes = fs_.readFile(aside);
      note.aside_file_matches = bytes.ok() && sha256Hex(*bytes) == note.sha256;
      message += note.aside_file_matches ? " (file present, hash matches)"
                                         : " (WARNING: that file is missing or differs)";
    }
    warn(path, 0, record.log_seq, message);
    report_.recoveries.push_back(std::move(note));
  }

  AuditVerifyReport finish() {
    report_.entries = chain_.size();
    report_.head_hash = chain_.headHash();
    report_.root = hexEncode(chain_.root());
    report_.valid = !report_.error.has_value();
    return std::move(report_);
  }

  LogFileSystem& fs_;
  std::string base_;
  const std::vector<PublicKeyInfo>& keys_;
  AuditVerifyReport report_;
  AuditChain chain_;
  std::string checkpoint_text_;
  std::map<uint64_t, std::vector<CheckpointEntry>> checkpoints_;  // by size
  std::string prev_file_;  // where the last accepted entry is
  uint64_t prev_line_ = 0;
};

Json findingToJson(const AuditFinding& finding) {
  Json out = {{"file", finding.file}, {"line", finding.line}, {"message", finding.message}};
  out["log_seq"] = finding.log_seq ? Json(*finding.log_seq) : Json(nullptr);
  return out;
}

}  // namespace

Result<AuditVerifyReport> verifyAuditLog(LogFileSystem& fs, const std::string& base,
                                         const std::vector<PublicKeyInfo>& keys) {
  return Verifier(fs, base, keys).run();
}

Json auditVerifyReportToJson(const AuditVerifyReport& report) {
  Json warnings = Json::array();
  for (const AuditFinding& warning : report.warnings) warnings.push_back(findingToJson(warning));
  Json recoveries = Json::array();
  for (const AuditRecoveryNote& note : report.recoveries) {
    recoveries.push_back({{"event", note.event},
                          {"log_seq", note.log_seq},
                          {"bytes", note.bytes},
                          {"sha256", note.sha256},
                          {"moved_to", note.moved_to},
                          {"reason", note.reason},
                          {"aside_file_matches", note.aside_file_matches}});
  }
  return {{"valid", report.valid},
          {"error", report.error ? findingToJson(*report.error) : Json(nullptr)},
          {"warnings", warnings},
          {"files", report.files},
          {"log_id", report.log_id ? Json(*report.log_id) : Json(nullptr)},
          {"entries", report.entries},
          {"head_hash", report.head_hash},
          {"root", report.root},
          {"checkpoints", report.checkpoints},
          {"checkpoints_matched", report.checkpoints_matched},
          {"signatures_checked", report.signatures_checked},
          {"signatures_verified", report.signatures_verified},
          {"last_checkpoint_size", report.last_checkpoint_size},
          {"torn_tail", report.torn_tail ? findingToJson(*report.torn_tail) : Json(nullptr)},
          {"recoveries", recoveries}};
}

Result<int64_t> parseRfc3339Millis(std::string_view text) {
  auto bad = [&] {
    return makeError(ErrorCode::kInvalidArgument, "not an RFC 3339 time: " + quoteForMessage(text) +
                                                      " (e.g. 2026-11-26T10:01:00Z)");
  };
  auto digits = [&](size_t pos, size_t count, int& out) {
    if (pos + count > text.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + count; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int year, month, day, hour, minute, second;
  if (!digits(0, 4, year) || text.size() < 20 || text[4] != '-' || !digits(5, 2, month) ||
      text[7] != '-' || !digits(8, 2, day) || (text[10] != 'T' && text[10] != 't') ||
      !digits(11, 2, hour) || text[13] != ':' || !digits(14, 2, minute) || text[16] != ':' ||
      !digits(17, 2, second)) {
    return bad();
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return bad();
  }
  size_t pos = 19;
  int64_t millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int64_t scale = 100;
    const size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      millis += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return bad();
  }
  int64_t offset_minutes = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int oh, om;
    if (!digits(pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !digits(pos + 4, 2, om) || oh > 23 || om > 59) {
      return bad();
    }
    offset_minutes = (text[pos] == '+' ? 1 : -1) * (oh * 60 + om);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const int64_t seconds = static_cast<int64_t>(timegm(&tm)) - offset_minutes * 60;
  return seconds * 1000 + millis;
}

}  // namespace shadan

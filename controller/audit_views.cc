#include "controller/audit_views.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <set>
#include <string_view>
#include <utility>

#include "common/audit_verify.h"
#include "common/clock.h"
#include "common/decimal.h"
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
  const auto value = parseWholeDecimal<uint64_t>(text);
  if (!value) return badQuery(name, "must be a non-negative integer");
  return *value;
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

AuditVerifier::AuditVerifier(LogFileSystem& fs, const Clock& clock,
                             std::function<void()> on_verdict, std::chrono::milliseconds recheck)
    : fs_(fs),
      clock_(clock),
      on_verdict_(std::move(on_verdict)),
      recheck_(recheck),
      worker_([this] { run(); }) {}

AuditVerifier::~AuditVerifier() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  worker_.join();
}

namespace {
// The size of the log's current file now; -1 when it cannot be read (missing: only rotated
// segments, or none).
int64_t currentSize(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? -1 : static_cast<int64_t>(size);
}
}  // namespace

AuditVerifier::Known AuditVerifier::lookup(const std::string& log, const std::string& path,
                                           const std::vector<PublicKeyInfo>& keys) {
  const int64_t size = currentSize(path);
  Known known;
  bool queue = false;
  {
    std::lock_guard lock(mu_);
    const auto found = verdicts_.find(log);
    if (found != verdicts_.end()) {
      known.verdict = found->second.json;
      known.current = found->second.size == size;
    }
    known.verifying = busy_.count(log) != 0;
    const bool due =
        found == verdicts_.end() ||
        (!known.current && std::chrono::steady_clock::now() - found->second.reached >= recheck_);
    if (due && !known.verifying && !stopping_) {
      queue_.push_back(Job{log, path, keys});
      busy_.insert(log);
      known.verifying = queue = true;
    }
  }
  if (queue) cv_.notify_all();
  return known;
}

void AuditVerifier::drain() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return busy_.empty() || stopping_; });
}

void AuditVerifier::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Verdict verdict;
    verdict.size = currentSize(job.path);
    auto report = verifyAuditLog(fs_, job.path, job.keys);
    if (report.ok()) {
      verdict.json = verificationJson(*report);
    } else {
      // The log could not be read at all (gone, unreadable): said as such, not as verified.
      verdict.json = json{{"valid", false},
                          {"error",
                           {{"file", ""},
                            {"line", nullptr},
                            {"log_seq", nullptr},
                            {"message", report.error().message}}}};
    }
    verdict.json["verified_at"] = formatRfc3339(
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch())
            .count());
    verdict.reached = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mu_);
      verdicts_[job.log] = std::move(verdict);
    }
    // Announced before the log leaves busy_: drain() returns after the announcement.
    if (on_verdict_) on_verdict_();
    {
      std::lock_guard lock(mu_);
      busy_.erase(job.log);
    }
    cv_.notify_all();
  }
}

namespace {

// The log_seq of a stored line without a full parse: the lines are written by AuditLog as
// compact JSON with "log_seq":<digits>. nullopt when the line does not look like that (the
// caller parses it then).
std::optional<uint64_t> quickSeq(std::string_view line) {
  constexpr std::string_view kKey = "\"log_seq\":";
  const size_t at = line.find(kKey);
  if (at == std::string_view::npos || line.find(kKey, at + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  uint64_t seq = 0;
  const char* begin = line.data() + at + kKey.size();
  const auto [end, ec] = std::from_chars(begin, line.data() + line.size(), seq);
  if (ec != std::errc() || end == begin || (*end != ',' && *end != '}')) return std::nullopt;
  return seq;
}

// The lines of a file from its end, newest first, read with pread in blocks: the first page of
// a 50 MB log costs a block, not the file. A final line without '\n' (a write in progress, or
// torn) is not a line yet and is skipped.
class BackwardLines {
 public:
  static Result<BackwardLines> open(const std::string& path) {
    BackwardLines lines;
    lines.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (lines.fd_ < 0) {
      return makeError(ErrorCode::kIo, "cannot open " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(lines.fd_, &st) != 0) {
      return makeError(ErrorCode::kIo, "cannot stat " + path + ": " + std::strerror(errno));
    }
    lines.pos_ = st.st_size;
    lines.path_ = path;
    return lines;
  }
  BackwardLines(BackwardLines&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)),
        pos_(other.pos_),
        buf_(std::move(other.buf_)),
        tail_dropped_(other.tail_dropped_),
        path_(std::move(other.path_)) {}
  BackwardLines& operator=(BackwardLines&&) = delete;
  ~BackwardLines() {
    if (fd_ >= 0) ::close(fd_);
  }

  // The next line toward the start of the file; nullopt once there is none.
  Result<std::optional<std::string>> next() {
    for (;;) {
      const size_t newline = buf_.rfind('\n');
      if (!tail_dropped_) {
        if (newline != std::string::npos || pos_ == 0) {
          buf_.resize(newline == std::string::npos ? 0 : newline);
          tail_dropped_ = true;
          continue;
        }
      } else if (newline != std::string::npos) {
        std::string line = buf_.substr(newline + 1);
        buf_.resize(newline);
        return std::optional<std::string>(std::move(line));
      } else if (pos_ == 0) {
        if (buf_.empty()) return std::optional<std::string>();
        return std::optional<std::string>(std::exchange(buf_, std::string()));
      }
      const off_t size = std::min<off_t>(kBlockBytes, pos_);
      std::string block(static_cast<size_t>(size), '\0');
      const ssize_t got = ::pread(fd_, block.data(), block.size(), pos_ - size);
      if (got != size) {
        return makeError(ErrorCode::kIo, "cannot read " + path_ + ": " +
                                             (got < 0 ? std::strerror(errno) : "short read"));
      }
      pos_ -= size;
      buf_.insert(0, block);
    }
  }

 private:
  static constexpr off_t kBlockBytes = 64 * 1024;
  BackwardLines() = default;
  int fd_ = -1;
  off_t pos_ = 0;
  std::string buf_;  // the bytes from pos_ not yet returned
  bool tail_dropped_ = false;
  std::string path_;
};

}  // namespace

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

  // The files, newest first: the current one, then the rotated segments from the last.
  SHADAN_ASSIGN_OR_RETURN(auto segments, listAuditSegments(fs_, path));
  SHADAN_ASSIGN_OR_RETURN(const bool has_current, fs_.exists(path));
  if (!has_current && segments.empty()) {
    return makeError(ErrorCode::kNotFound, "log " + quoteForMessage(query.log) +
                                               ": no such audit log at this controller");
  }
  std::vector<std::string> files;
  if (has_current) files.push_back(path);
  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    // A segment holds first_seq..last_seq: all of it at or after `before` is skipped unread.
    if (query.before && it->first_seq >= *query.before) continue;
    files.push_back(it->path);
  }

  const std::string event_needle =
      query.event.empty() ? std::string() : "\"event\":" + json(query.event).dump();
  json entries = json::array();
  json next_before = nullptr;
  bool full = false;
  for (const std::string& file : files) {
    SHADAN_ASSIGN_OR_RETURN(auto lines, BackwardLines::open(file));
    while (!full) {
      SHADAN_ASSIGN_OR_RETURN(auto next, lines.next());
      if (!next) break;
      const std::string_view line = *next;
      if (line.empty() || line.size() > kMaxLineBytes) continue;
      if (!event_needle.empty() && line.find(event_needle) == std::string_view::npos) continue;
      std::optional<uint64_t> seq = quickSeq(line);
      if (seq && query.before && *seq >= *query.before) continue;
      auto entry = parseStrictJson(line, "entry", kMaxLineBytes);
      if (!entry.ok() || !entry->is_object()) continue;  // the verdict reports it
      const auto parsed_seq = entry->find("log_seq");
      if (parsed_seq == entry->end() || !parsed_seq->is_number_unsigned()) continue;
      if (query.before && parsed_seq->get<uint64_t>() >= *query.before) continue;
      if (!query.event.empty() && entry->value("event", std::string()) != query.event) continue;
      if (entries.size() == query.limit) {
        // One more than the page: there are older entries; the page ends at the last taken.
        next_before = entries.back()["log_seq"];
        full = true;
        break;
      }
      entries.push_back(std::move(*entry));
    }
    if (full) break;
  }

  const AuditVerifier::Known known = verifier_.lookup(query.log, path, keys);
  json logs = json::array({"controller"});
  for (const std::string& id : sources_.agent_ids()) logs.push_back(std::string(kAgentPrefix) + id);
  return json{{"log", query.log},
              {"logs", std::move(logs)},
              {"verification", known.verdict ? *known.verdict : json(nullptr)},
              {"verification_current", known.current},
              {"verifying", known.verifying},
              {"entries", std::move(entries)},
              {"next_before", next_before}};
}

}  // namespace shadan::controller

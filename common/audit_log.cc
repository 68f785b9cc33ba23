#include "common/audit_log.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "common/ed25519.h"
#include "common/logging.h"
#include "common/sha256.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

std::string parentDirectory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

std::string baseName(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Files

std::string auditSegmentPath(const std::string& base, uint64_t first_seq, uint64_t last_seq) {
  return base + "." + std::to_string(first_seq) + "-" + std::to_string(last_seq);
}

std::string auditCheckpointsPath(const std::string& base) { return base + ".checkpoints"; }

Result<std::vector<AuditSegmentFile>> listAuditSegments(LogFileSystem& fs,
                                                        const std::string& base) {
  const std::string dir = parentDirectory(base);
  const std::string prefix = baseName(base) + ".";
  SHADAN_ASSIGN_OR_RETURN(auto names, fs.listDirectory(dir));
  std::vector<AuditSegmentFile> segments;
  for (const std::string& name : names) {
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string range = name.substr(prefix.size());
    const size_t dash = range.find('-');
    if (dash == std::string::npos || dash == 0 || dash + 1 == range.size() ||
        range.find_first_not_of("0123456789-") != std::string::npos ||
        range.find('-', dash + 1) != std::string::npos || dash > 19 ||
        range.size() - dash - 1 > 19) {
      continue;
    }
    AuditSegmentFile segment;
    segment.path = (std::filesystem::path(dir) / name).string();
    segment.first_seq = std::stoull(range.substr(0, dash));
    segment.last_seq = std::stoull(range.substr(dash + 1));
    segments.push_back(std::move(segment));
  }
  std::sort(segments.begin(), segments.end(),
            [](const auto& a, const auto& b) { return a.first_seq < b.first_seq; });
  return segments;
}

// ---------------------------------------------------------------------------------------------
// The log

AuditLog::AuditLog(AuditLogOptions options, LogFileSystem& fs, const Clock& clock,
                   const Signer* signer)
    : options_(std::move(options)), fs_(fs), clock_(clock), signer_(signer) {}

Result<std::unique_ptr<AuditLog>> AuditLog::open(AuditLogOptions options, LogFileSystem& fs,
                                                 const Clock& clock, const Signer* signer) {
  if (options.log_id.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "audit log needs a log_id");
  }
  if (options.path.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "audit log needs a path");
  }
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options), fs, clock, signer));
  std::lock_guard lock(log->mutex_);
  if (Status loaded = log->load(); !loaded.ok()) {
    return loaded.error().withContext("audit log " + log->options_.path);
  }
  return log;
}

namespace {

// A stretch of a log file moved aside at open, waiting for its audit entry.
struct PendingRecovery {
  std::string event;
  uint64_t bytes;
  std::string sha256;
  std::string moved_to;
  std::string reason;
};

// Moves `bytes` to `aside` (a crash between the two steps leaves the same bytes in both places;
// a retry finds the identical aside file and carries on).
Status moveAside(LogFileSystem& fs, const std::string& path, uint64_t keep, std::string_view bytes,
                 const std::string& aside) {
  Status created = fs.createFile(aside, bytes);
  if (!created.ok()) {
    if (created.error().code != ErrorCode::kState) return created;
    SHADAN_ASSIGN_OR_RETURN(auto existing, fs.readFile(aside));
    if (existing != bytes) {
      return makeError(ErrorCode::kState, aside +
                                              " exists with other contents; move it away "
                                              "(keep it as evidence) and reopen");
    }
  }
  return fs.truncate(path, keep);
}

}  // namespace

Status AuditLog::load() {
  const std::string& path = options_.path;
  std::vector<PendingRecovery> pending;

  // Rotated segments were complete when they were renamed; any fault in them is not a crash.
  SHADAN_ASSIGN_OR_RETURN(auto segments, listAuditSegments(fs_, path));
  for (const AuditSegmentFile& segment : segments) {
    SHADAN_ASSIGN_OR_RETURN(auto text, fs_.readFile(segment.path));
    uint64_t line_no = 0;
    size_t offset = 0;
    while (offset < text.size()) {
      ++line_no;
      const size_t nl = text.find('\n', offset);
      if (nl == std::string::npos) {
        return makeError(ErrorCode::kState, segment.path + " line " + std::to_string(line_no) +
                                                ": incomplete line in a rotated segment; run "
                                                "shadanctl audit verify");
      }
      AuditChain::Check check = chain_.accept(std::string_view(text).substr(offset, nl - offset));
      if (check.failure != AuditChain::Failure::kNone) {
        return makeError(ErrorCode::kState, segment.path + " line " + std::to_string(line_no) +
                                                ": " + check.message +
                                                "; run shadanctl audit verify");
      }
      offset = nl + 1;
    }
  }

  // The current file: its final line may be torn by a crash.
  std::string current;
  if (auto text = fs_.readFile(path); text.ok()) {
    current = std::move(*text);
  } else if (text.error().code != ErrorCode::kNotFound) {
    return text.error();
  }
  file_first_seq_ = chain_.size();
  size_t good = 0;
  uint64_t line_no = 0;
  while (good < current.size()) {
    ++line_no;
    const size_t nl = current.find('\n', good);
    const std::string aside = path + ".torn-" + std::to_string(chain_.size());
    if (nl == std::string::npos) {
      const std::string_view torn = std::string_view(current).substr(good);
      SHADAN_RETURN_IF_ERROR(moveAside(fs_, path, good, torn, aside));
      pending.push_back({kAuditTornTailEvent, torn.size(), sha256Hex(torn), baseName(aside),
                         "line " + std::to_string(line_no) + " has no newline (" +
                             std::to_string(torn.size()) + " bytes; interrupted write)"});
      break;
    }
    AuditChain::Check check = chain_.accept(std::string_view(current).substr(good, nl - good));
    if (check.failure != AuditChain::Failure::kNone) {
      const bool final_line = nl + 1 == current.size();
      if (!final_line && options_.on_corruption == CorruptionPolicy::kFail) {
        return makeError(ErrorCode::kState, path + " line " + std::to_string(line_no) + ": " +
                                                check.message +
                                                " (not a torn final line: refusing to continue; "
                                                "run shadanctl audit verify)");
      }
      const std::string_view torn = std::string_view(current).substr(good);
      SHADAN_RETURN_IF_ERROR(moveAside(fs_, path, good, torn, aside));
      pending.push_back({final_line ? kAuditTornTailEvent : kAuditCorruptTailEvent, torn.size(),
                         sha256Hex(torn), baseName(aside),
                         "line " + std::to_string(line_no) + ": " + check.message});
      break;
    }
    good = nl + 1;
  }
  file_bytes_ = good;

  SHADAN_ASSIGN_OR_RETURN(auto file, fs_.openForAppend(path));
  file_ = std::move(file);

  // Checkpoints: a torn final line is moved aside the same way; the last complete one tells
  // how much of the log is already covered.
  const std::string checkpoints_path = auditCheckpointsPath(path);
  std::string checkpoints;
  if (auto text = fs_.readFile(checkpoints_path); text.ok()) {
    checkpoints = std::move(*text);
  } else if (text.error().code != ErrorCode::kNotFound) {
    return text.error();
  }
  if (!checkpoints.empty() && checkpoints.back() != '\n') {
    const size_t keep =
        checkpoints.rfind('\n') == std::string::npos ? 0 : checkpoints.rfind('\n') + 1;
    const std::string_view torn = std::string_view(checkpoints).substr(keep);
    const std::string aside = checkpoints_path + ".torn-" + std::to_string(keep);
    SHADAN_RETURN_IF_ERROR(moveAside(fs_, checkpoints_path, keep, torn, aside));
    pending.push_back({kAuditCheckpointTornTailEvent, torn.size(), sha256Hex(torn), baseName(aside),
                       "final checkpoint line has no newline (interrupted write)"});
    checkpoints.resize(keep);
  }
  if (!checkpoints.empty()) {
    const size_t start = checkpoints.rfind('\n', checkpoints.size() - 2);
    const std::string_view last =
        std::string_view(checkpoints).substr(start == std::string::npos ? 0 : start + 1).substr(0);
    if (auto parsed = parseCheckpointLine(last.substr(0, last.size() - 1)); parsed.ok()) {
      checkpointed_size_ = std::min(parsed->size, chain_.size());
    }
  }
  SHADAN_ASSIGN_OR_RETURN(auto checkpoint_file, fs_.openForAppend(checkpoints_path));
  checkpoints_ = std::move(checkpoint_file);
  last_checkpoint_ = clock_.now();

  for (PendingRecovery& recovery : pending) {
    AuditEvent event;
    event.event = recovery.event;
    event.outcome = "recovered";
    event.reason = recovery.reason;
    event.detail = Json{{"torn_bytes", recovery.bytes},
                        {"torn_sha256", recovery.sha256},
                        {"moved_to", recovery.moved_to}};
    SHADAN_ASSIGN_OR_RETURN(auto receipt, appendLocked(event, /*durable=*/true));
    logger("audit")->warn("event={} moved_to={} bytes={} reason=\"{}\"", recovery.event,
                          recovery.moved_to, recovery.bytes, recovery.reason);
    recoveries_.push_back({recovery.event, receipt.log_seq, recovery.bytes, recovery.sha256,
                           recovery.moved_to, recovery.reason});
  }
  return okStatus();
}

Result<AuditReceipt> AuditLog::append(const AuditEvent& event) {
  std::lock_guard lock(mutex_);
  return appendLocked(event, /*durable=*/true);
}

Result<AuditReceipt> AuditLog::appendBuffered(const AuditEvent& event) {
  std::lock_guard lock(mutex_);
  return appendLocked(event, /*durable=*/false);
}

Status AuditLog::syncLocked() {
  if (!unsynced_) return okStatus();
  Status synced = file_->sync();
  if (!synced.ok()) {
    failed_ = synced.error();
    return synced;
  }
  unsynced_ = false;
  return okStatus();
}

Result<AuditReceipt> AuditLog::appendLocked(const AuditEvent& event, bool durable) {
  if (failed_) return failed_->withContext("audit log " + options_.path + " is not writable");
  const auto now = clock_.now();
  AuditRecord record{options_.log_id, chain_.size(), formatRfc3339(toUnixMillis(now)),
                     chain_.headHash(), event};
  SHADAN_ASSIGN_OR_RETURN(auto line, formatAuditLine(record));
  if (line.size() > kAuditMaxLineBytes) {
    return makeError(ErrorCode::kInvalidArgument, "audit entry of " + std::to_string(line.size()) +
                                                      " bytes exceeds " +
                                                      std::to_string(kAuditMaxLineBytes));
  }
  // Check the line exactly as a verifier will, before anything reaches the disk.
  AuditChain next = chain_;
  AuditChain::Check check = next.accept(line);
  if (check.failure != AuditChain::Failure::kNone) {
    return makeError(ErrorCode::kInternal, "audit entry would not verify: " + check.message);
  }
  line.push_back('\n');
  Status written = file_->append(line);
  if (!written.ok() && written.error().code == ErrorCode::kNoSpace &&
      fs_.truncate(options_.path, file_bytes_).ok()) {
    // The disk had no room: part of the line may be in the file. Cut back to the last whole
    // entry and stay writable, so the log goes on once there is room. (A failed fdatasync
    // below stays sticky: the page cache's state is unknown after it.)
    return written.error();
  }
  // One fdatasync makes this entry and every buffered one before it durable.
  if (written.ok() && durable) written = file_->sync();
  if (!written.ok()) {
    failed_ = written.error();
    return written.error();
  }
  chain_ = std::move(next);
  file_bytes_ += line.size();
  AuditReceipt receipt{record.log_seq, chain_.headHash()};
  unsynced_ = !durable;
  // Rotation and checkpoints only behind a synced entry: a checkpoint must never cover an
  // entry that is not yet on stable storage.
  if (!durable) return receipt;

  // The entry is durable: rotation or checkpoint trouble from here on is reported, not
  // returned, so the caller still gets its receipt.
  if (options_.rotate_bytes > 0 && file_bytes_ >= options_.rotate_bytes) {
    if (Status rotated = rotateLocked(); !rotated.ok()) {
      logger("audit")->error("event=rotate_failed path={} error=\"{}\"", options_.path,
                             rotated.error().message);
    }
  }
  const bool due_by_count = options_.checkpoint_every_entries > 0 &&
                            chain_.size() - checkpointed_size_ >= options_.checkpoint_every_entries;
  const bool due_by_time = options_.checkpoint_interval.count() > 0 &&
                           now - last_checkpoint_ >= options_.checkpoint_interval;
  if (due_by_count || due_by_time) {
    if (Status done = checkpointLocked(); !done.ok()) {
      logger("audit")->error("event=checkpoint_failed path={} error=\"{}\"", options_.path,
                             done.error().message);
    }
  }
  return receipt;
}

Status AuditLog::rotateLocked() {
  const std::string target = auditSegmentPath(options_.path, file_first_seq_, chain_.size() - 1);
  file_.reset();
  Status renamed = fs_.rename(options_.path, target);
  // Whether or not the rename happened, appends continue at options_.path.
  auto file = fs_.openForAppend(options_.path);
  if (!file.ok()) {
    failed_ = file.error();
    return file.error();
  }
  file_ = std::move(*file);
  if (!renamed.ok()) return renamed;
  file_bytes_ = 0;
  file_first_seq_ = chain_.size();
  return okStatus();
}

Status AuditLog::checkpoint() {
  std::lock_guard lock(mutex_);
  return checkpointLocked();
}

Status AuditLog::maybeCheckpoint() {
  std::lock_guard lock(mutex_);
  if (options_.checkpoint_interval.count() <= 0 ||
      clock_.now() - last_checkpoint_ < options_.checkpoint_interval) {
    return okStatus();
  }
  return checkpointLocked();
}

Status AuditLog::checkpointLocked() {
  if (signer_ == nullptr || chain_.size() == checkpointed_size_) return okStatus();
  SHADAN_RETURN_IF_ERROR(syncLocked());
  if (!checkpoints_) {
    return makeError(ErrorCode::kIo, "checkpoints are disabled after an earlier write error");
  }
  const auto now = clock_.now();
  SHADAN_ASSIGN_OR_RETURN(
      auto line,
      makeCheckpointLine(options_.log_id, chain_.size(), chain_.headHash(),
                         hexEncode(chain_.root()), formatRfc3339(toUnixMillis(now)), *signer_));
  Status written = checkpoints_->append(line + "\n");
  if (written.ok()) written = checkpoints_->sync();
  if (!written.ok()) {
    // A partial line may be on disk; the next open moves it aside.
    checkpoints_.reset();
    return written;
  }
  checkpointed_size_ = chain_.size();
  last_checkpoint_ = now;
  if (options_.on_checkpoint) options_.on_checkpoint(line);
  return okStatus();
}

Status AuditLog::close() {
  std::lock_guard lock(mutex_);
  if (failed_) return okStatus();
  Status done = syncLocked();
  if (done.ok()) done = checkpointLocked();
  failed_ = makeError(ErrorCode::kState, "closed");
  file_.reset();
  checkpoints_.reset();
  return done;
}

uint64_t AuditLog::size() const {
  std::lock_guard lock(mutex_);
  return chain_.size();
}

uint64_t AuditLog::checkpointedSize() const {
  std::lock_guard lock(mutex_);
  return checkpointed_size_;
}

std::chrono::system_clock::time_point AuditLog::lastCheckpointTime() const {
  std::lock_guard lock(mutex_);
  return last_checkpoint_;
}

std::string AuditLog::headHash() const {
  std::lock_guard lock(mutex_);
  return chain_.headHash();
}

std::string AuditLog::rootHex() const {
  std::lock_guard lock(mutex_);
  return hexEncode(chain_.root());
}

std::vector<AuditRecovery> AuditLog::recoveries() const {
  std::lock_guard lock(mutex_);
  return recoveries_;
}

}  // namespace shadan

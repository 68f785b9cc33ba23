#include "common/audit_ship.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "common/logging.h"
#include "common/strict_json.h"
#include "common/unique_fd.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

// Re-reading from scratch when a line does not hold the expected log_seq happens at most this
// often per read(): once for a rotation under the cursor; more means the file is not what the
// names say.
constexpr int kMaxReseeks = 1;

Status checkShape(const Json& message, const char* type,
                  std::initializer_list<const char*> members) {
  const std::string what = std::string(type) + " message";
  if (!message.is_object()) return makeError(ErrorCode::kParse, what + ": not an object");
  if (!message.contains("type") || message["type"] != type) {
    return makeError(ErrorCode::kParse, what + ": wrong type");
  }
  for (const auto& [key, value] : message.items()) {
    bool known = key == "type";
    for (const char* name : members) known = known || key == name;
    if (!known)
      return makeError(ErrorCode::kParse, what + ": unknown member " + quoteForMessage(key));
  }
  for (const char* name : members) {
    if (!message.contains(name)) {
      return makeError(ErrorCode::kParse, what + ": missing member \"" + name + "\"");
    }
  }
  return okStatus();
}

Result<uint64_t> unsignedMember(const Json& message, const char* type, const char* name) {
  const Json& value = message.at(name);
  if (!value.is_number_unsigned()) {
    return makeError(ErrorCode::kParse, std::string(type) + " message: \"" + name +
                                            "\" must be a non-negative integer");
  }
  return value.get<uint64_t>();
}

bool isLowerHex64(const std::string& text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Complete lines of `chunk` (without '\n') and the bytes they span.
std::vector<std::string> completeLines(std::string_view chunk, size_t max_lines, size_t& consumed) {
  std::vector<std::string> lines;
  consumed = 0;
  while (lines.size() < max_lines) {
    const size_t nl = chunk.find('\n', consumed);
    if (nl == std::string_view::npos) break;
    lines.emplace_back(chunk.substr(consumed, nl - consumed));
    consumed = nl + 1;
  }
  return lines;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Wire messages

Json auditResumeMessage(const AuditResume& resume) {
  return Json{{"type", kAuditResumeType},
              {"next_seq", resume.next_seq},
              {"prev_hash", resume.prev_hash},
              {"checkpoint_size", resume.checkpoint_size}};
}

Result<AuditResume> parseAuditResume(const Json& message) {
  SHADAN_RETURN_IF_ERROR(
      checkShape(message, kAuditResumeType, {"next_seq", "prev_hash", "checkpoint_size"}));
  AuditResume resume;
  SHADAN_ASSIGN_OR_RETURN(auto next, unsignedMember(message, kAuditResumeType, "next_seq"));
  resume.next_seq = next;
  SHADAN_ASSIGN_OR_RETURN(auto checkpoint,
                          unsignedMember(message, kAuditResumeType, "checkpoint_size"));
  resume.checkpoint_size = checkpoint;
  const Json& hash = message.at("prev_hash");
  if (!hash.is_string() || !isLowerHex64(hash.get<std::string>())) {
    return makeError(ErrorCode::kParse,
                     "audit_resume message: \"prev_hash\" must be 64 lower-case hex digits");
  }
  resume.prev_hash = hash.get<std::string>();
  return resume;
}

Json auditAckMessage(const AuditAck& ack) {
  return Json{{"type", kAuditAckType},
              {"next_seq", ack.next_seq},
              {"checkpoint_size", ack.checkpoint_size}};
}

Result<AuditAck> parseAuditAck(const Json& message) {
  SHADAN_RETURN_IF_ERROR(checkShape(message, kAuditAckType, {"next_seq", "checkpoint_size"}));
  SHADAN_ASSIGN_OR_RETURN(auto next, unsignedMember(message, kAuditAckType, "next_seq"));
  SHADAN_ASSIGN_OR_RETURN(auto checkpoint,
                          unsignedMember(message, kAuditAckType, "checkpoint_size"));
  return AuditAck{next, checkpoint};
}

Json auditEntriesMessage(const std::vector<std::string>& lines) {
  return Json{{"type", kAuditEntriesType}, {"entries", lines}};
}

Result<std::vector<std::string>> parseAuditEntries(const Json& message) {
  SHADAN_RETURN_IF_ERROR(checkShape(message, kAuditEntriesType, {"entries"}));
  const Json& entries = message.at("entries");
  if (!entries.is_array() || entries.empty()) {
    return makeError(ErrorCode::kParse, "audit message: \"entries\" must be a non-empty array");
  }
  std::vector<std::string> lines;
  lines.reserve(entries.size());
  for (const Json& entry : entries) {
    if (!entry.is_string() || entry.get_ref<const std::string&>().empty() ||
        entry.get_ref<const std::string&>().find('\n') != std::string::npos) {
      return makeError(ErrorCode::kParse,
                       "audit message: every entry must be a non-empty string without newline");
    }
    lines.push_back(entry.get<std::string>());
  }
  return lines;
}

Json auditCheckpointMessage(const std::string& line) {
  return Json{{"type", kAuditCheckpointType}, {"line", line}};
}

Result<std::string> parseAuditCheckpointMessage(const Json& message) {
  SHADAN_RETURN_IF_ERROR(checkShape(message, kAuditCheckpointType, {"line"}));
  const Json& line = message.at("line");
  if (!line.is_string() || line.get_ref<const std::string&>().empty() ||
      line.get_ref<const std::string&>().find('\n') != std::string::npos) {
    return makeError(ErrorCode::kParse,
                     "audit_checkpoint message: \"line\" must be a non-empty string without "
                     "newline");
  }
  return line.get<std::string>();
}

// ---------------------------------------------------------------------------------------------
// Files

Result<std::string> PosixAuditFileReader::readAt(const std::string& path, uint64_t offset,
                                                 size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int error = errno;
    return makeError(error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                     "cannot open " + path + ": " + std::strerror(error));
  }
  std::string out(max_bytes, '\0');
  size_t done = 0;
  while (done < max_bytes) {
    const ssize_t n =
        ::pread(fd.get(), out.data() + done, max_bytes - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return makeError(ErrorCode::kIo, "cannot read " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

AuditLogCursor::AuditLogCursor(LogFileSystem& fs, AuditFileReader& reader, std::string base)
    : fs_(fs), reader_(reader), base_(std::move(base)) {}

Status AuditLogCursor::seek(uint64_t from) {
  positioned_ = false;
  SHADAN_ASSIGN_OR_RETURN(auto segments, listAuditSegments(fs_, base_));
  uint64_t first = 0;
  in_segment_ = false;
  path_ = base_;
  for (const AuditSegmentFile& segment : segments) {
    if (segment.first_seq <= from && from <= segment.last_seq) {
      in_segment_ = true;
      path_ = segment.path;
      first = segment.first_seq;
      file_last_ = segment.last_seq;
      break;
    }
  }
  if (!in_segment_) {
    first = segments.empty() ? 0 : segments.back().last_seq + 1;
    if (from < first) {
      return makeError(ErrorCode::kNotFound,
                       "log_seq " + std::to_string(from) + " is in no rotated segment of " + base_);
    }
  }
  std::string text;
  if (auto read = fs_.readFile(path_); read.ok()) {
    text = std::move(*read);
  } else if (read.error().code != ErrorCode::kNotFound || in_segment_) {
    return read.error();
  }
  uint64_t offset = 0;
  for (uint64_t seq = first; seq < from; ++seq) {
    const size_t nl = text.find('\n', offset);
    if (nl == std::string::npos) {
      return makeError(ErrorCode::kNotFound, "log_seq " + std::to_string(from) +
                                                 " is beyond the head of " + base_ + " (" +
                                                 std::to_string(seq) + " entries)");
    }
    offset = nl + 1;
  }
  file_first_ = first;
  offset_ = offset;
  seq_ = from;
  positioned_ = true;
  return okStatus();
}

Result<std::vector<std::string>> AuditLogCursor::read(uint64_t from, size_t max_entries,
                                                      size_t max_bytes) {
  if (max_entries == 0 || max_bytes == 0) return std::vector<std::string>{};
  int reseeks = 0;
  // Each turn either returns or moves to another file (at most: current -> its rotated name ->
  // the next file) or reseeks; the bound only guards against a directory that keeps changing.
  for (int turn = 0; turn < 8; ++turn) {
    if (!positioned_ || seq_ != from) SHADAN_RETURN_IF_ERROR(seek(from));
    auto chunk = reader_.readAt(path_, offset_, max_bytes);
    if (!chunk.ok() && chunk.error().code != ErrorCode::kNotFound) return chunk.error();
    if (!chunk.ok()) {
      // Renamed between the listing and the read: look again.
      if (reseeks++ == kMaxReseeks) return chunk.error();
      positioned_ = false;
      continue;
    }
    size_t consumed = 0;
    std::vector<std::string> lines = completeLines(*chunk, max_entries, consumed);
    bool consistent = true;
    for (size_t i = 0; i < lines.size() && consistent; ++i) {
      auto record = parseAuditLine(lines[i]);
      consistent = record.ok() && record->log_seq == seq_ + i;
    }
    if (!consistent) {
      if (reseeks++ == kMaxReseeks) {
        return makeError(ErrorCode::kState, path_ + " at byte " + std::to_string(offset_) +
                                                " does not hold log_seq " + std::to_string(seq_) +
                                                "; run shadanctl audit verify");
      }
      positioned_ = false;
      continue;
    }
    if (!lines.empty()) {
      offset_ += consumed;
      seq_ += lines.size();
      return lines;
    }
    if (chunk->size() == max_bytes) {
      return makeError(ErrorCode::kInvalidArgument, "entry log_seq " + std::to_string(seq_) +
                                                        " is larger than " +
                                                        std::to_string(max_bytes) + " bytes");
    }
    // The end of this file: nothing new, or the file was rotated and the entries go on in the
    // next one.
    SHADAN_ASSIGN_OR_RETURN(auto segments, listAuditSegments(fs_, base_));
    if (!in_segment_) {
      const AuditSegmentFile* renamed = nullptr;
      for (const AuditSegmentFile& segment : segments) {
        if (segment.first_seq == file_first_) renamed = &segment;
      }
      if (renamed == nullptr) return std::vector<std::string>{};
      path_ = renamed->path;
      in_segment_ = true;
      file_last_ = renamed->last_seq;
      continue;  // read the rest of it under its new name
    }
    if (seq_ != file_last_ + 1) {
      return makeError(ErrorCode::kState, path_ + " ends at log_seq " + std::to_string(seq_) +
                                              " but its name says " + std::to_string(file_last_));
    }
    path_ = base_;
    in_segment_ = false;
    for (const AuditSegmentFile& segment : segments) {
      if (segment.first_seq == seq_) {
        path_ = segment.path;
        in_segment_ = true;
        file_last_ = segment.last_seq;
      }
    }
    file_first_ = seq_;
    offset_ = 0;
  }
  return makeError(ErrorCode::kState, "the files of " + base_ + " keep changing under the reader");
}

void AuditLogCursor::unread(const std::vector<std::string>& lines, size_t count) {
  for (size_t i = lines.size() - count; i < lines.size(); ++i) {
    offset_ -= lines[i].size() + 1;
    --seq_;
  }
}

Result<std::string> AuditLogCursor::entryHash(uint64_t seq) {
  SHADAN_ASSIGN_OR_RETURN(auto lines, read(seq, 1, kAuditMaxLineBytes + 1));
  if (lines.empty()) {
    return makeError(ErrorCode::kNotFound,
                     "log_seq " + std::to_string(seq) + " is not yet in " + base_);
  }
  return auditEntryHashHex(lines.front());
}

AuditCheckpointReader::AuditCheckpointReader(AuditFileReader& reader, std::string base)
    : reader_(reader), path_(auditCheckpointsPath(base)) {}

Result<std::vector<AuditCheckpointReader::Item>> AuditCheckpointReader::readNew() {
  std::vector<Item> items;
  // Checkpoint lines are a few hundred bytes: read in chunks until no complete line is left.
  for (;;) {
    auto chunk = reader_.readAt(path_, offset_, 64 * 1024);
    if (!chunk.ok()) {
      if (chunk.error().code == ErrorCode::kNotFound) return items;
      return chunk.error();
    }
    size_t consumed = 0;
    std::vector<std::string> lines = completeLines(*chunk, SIZE_MAX, consumed);
    for (std::string& line : lines) {
      auto parsed = parseCheckpointLine(line);
      if (!parsed.ok()) {
        logger("audit")->warn("event=checkpoint_unreadable path={} offset={} error=\"{}\"", path_,
                              offset_, parsed.error().message);
      } else {
        items.push_back({parsed->size, std::move(line)});
      }
    }
    offset_ += consumed;
    if (consumed == 0 || chunk->size() < 64 * 1024) return items;
  }
}

// ---------------------------------------------------------------------------------------------
// Shipper

AuditShipper::AuditShipper(LogFileSystem& fs, AuditFileReader& reader, std::string base,
                           AuditShipperOptions options)
    : cursor_(fs, reader, base), checkpoints_(reader, base), options_(options) {}

void AuditShipper::reset() {
  resumed_ = false;
  halted_ = false;
  halt_reason_.clear();
  in_flight_ = InFlight::kNone;
  pending_checkpoints_.clear();
  checkpoints_.restart();
}

Status AuditShipper::onResume(const AuditResume& resume) {
  reset();
  std::string here{kAuditZeroHash};
  if (resume.next_seq > 0) {
    auto hash = cursor_.entryHash(resume.next_seq - 1);
    if (!hash.ok() && hash.error().code != ErrorCode::kNotFound) return hash.error();
    if (!hash.ok()) {
      halted_ = true;
      halt_reason_ = "controller holds " + std::to_string(resume.next_seq) +
                     " entries, more than this log has (" + hash.error().message + ")";
      return makeError(ErrorCode::kState, halt_reason_);
    }
    here = *hash;
  }
  if (here != resume.prev_hash) {
    halted_ = true;
    halt_reason_ = "controller's entry log_seq " + std::to_string(resume.next_seq - 1) +
                   " has hash " + resume.prev_hash + ", this log's has " + here;
    if (resume.next_seq == 0) halt_reason_ = "controller sent a non-zero prev_hash for next_seq 0";
    return makeError(ErrorCode::kState, halt_reason_);
  }
  acked_seq_ = resume.next_seq;
  acked_checkpoint_ = resume.checkpoint_size;
  resumed_ = true;
  return okStatus();
}

Status AuditShipper::onAck(const AuditAck& ack) {
  const InFlight was = in_flight_;
  in_flight_ = InFlight::kNone;
  const bool matches = resumed_ && ((was == InFlight::kEntries && ack.next_seq == expect_seq_ &&
                                     ack.checkpoint_size == acked_checkpoint_) ||
                                    (was == InFlight::kCheckpoint && ack.next_seq == acked_seq_ &&
                                     ack.checkpoint_size == expect_checkpoint_));
  if (!matches) {
    resumed_ = false;
    return makeError(ErrorCode::kState,
                     "unexpected audit_ack next_seq=" + std::to_string(ack.next_seq) +
                         " checkpoint_size=" + std::to_string(ack.checkpoint_size));
  }
  acked_seq_ = ack.next_seq;
  acked_checkpoint_ = ack.checkpoint_size;
  while (!pending_checkpoints_.empty() && pending_checkpoints_.front().size <= acked_checkpoint_) {
    pending_checkpoints_.pop_front();
  }
  return okStatus();
}

Result<std::optional<Json>> AuditShipper::next(uint64_t head) {
  if (!resumed_ || halted_ || in_flight_ != InFlight::kNone) return std::optional<Json>{};
  // Entries first, checkpoints second: a checkpoint of size S is written (under the log's lock)
  // before entry S, so every checkpoint inside the entries just read is already visible.
  std::vector<std::string> lines;
  if (head > acked_seq_) {
    SHADAN_ASSIGN_OR_RETURN(
        auto read, cursor_.read(acked_seq_, options_.max_batch_entries, options_.max_batch_bytes));
    lines = std::move(read);
  }
  SHADAN_ASSIGN_OR_RETURN(auto items, checkpoints_.readNew());
  for (AuditCheckpointReader::Item& item : items) {
    const uint64_t last =
        pending_checkpoints_.empty() ? acked_checkpoint_ : pending_checkpoints_.back().size;
    if (item.size > last) pending_checkpoints_.push_back(std::move(item));
  }
  if (!pending_checkpoints_.empty() && pending_checkpoints_.front().size <= acked_seq_) {
    if (!lines.empty()) cursor_.unread(lines, lines.size());
    in_flight_ = InFlight::kCheckpoint;
    expect_checkpoint_ = pending_checkpoints_.front().size;
    return std::optional<Json>(auditCheckpointMessage(pending_checkpoints_.front().line));
  }
  if (lines.empty()) return std::optional<Json>{};
  if (!pending_checkpoints_.empty()) {
    const uint64_t room = pending_checkpoints_.front().size - acked_seq_;
    if (lines.size() > room) {
      cursor_.unread(lines, lines.size() - room);
      lines.resize(room);
    }
  }
  in_flight_ = InFlight::kEntries;
  expect_seq_ = acked_seq_ + lines.size();
  return std::optional<Json>(auditEntriesMessage(lines));
}

}  // namespace shadan

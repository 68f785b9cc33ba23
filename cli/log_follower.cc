#include "cli/log_follower.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ostream>
#include <utility>

namespace shadan {
namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;

FileIdentity identityOf(const struct stat& info) {
  return FileIdentity{static_cast<uint64_t>(info.st_dev), static_cast<uint64_t>(info.st_ino)};
}

std::string describe(const FileIdentity& file) { return "inode " + std::to_string(file.inode); }

Error ioError(const std::string& what, const std::string& path) {
  return makeError(ErrorCode::kIo, what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

LogFollower::LogFollower(std::string path, FollowStart start, size_t max_line_bytes,
                         std::ostream& notices)
    : path_(std::move(path)),
      follow_(std::move(start)),
      max_line_bytes_(max_line_bytes),
      notices_(notices) {}

std::optional<LogPosition> LogFollower::position() const {
  if (!opened_once_) return std::nullopt;
  return LogPosition{file_, consumed_};
}

Status LogFollower::open() {
  if (fd_.valid()) return okStatus();
  UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno != ENOENT) return ioError("cannot open", path_);
    if (!said_missing_) {
      notices_ << "shadanctl: forward: " << path_
               << " does not exist yet; waiting for it (it will be read from its start)\n";
      said_missing_ = true;
    }
    return okStatus();
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return ioError("cannot stat", path_);
  if (!S_ISREG(info.st_mode)) {
    return makeError(ErrorCode::kIo, path_ + " is not a regular file");
  }
  const FileIdentity file = identityOf(info);
  const auto size = static_cast<uint64_t>(info.st_size);
  uint64_t offset = 0;
  if (follow_.resume) {
    const LogPosition& resume = *follow_.resume;
    if (resume.file != file) {
      notices_ << "shadanctl: forward: " << path_ << " is not the file the state names ("
               << describe(resume.file) << ", now " << describe(file)
               << "): it was rotated while not followed; reading it from its start (what the old "
                  "file got after offset "
               << resume.offset << " was not read)\n";
    } else if (size < resume.offset) {
      notices_ << "shadanctl: forward: " << path_ << " is shorter (" << size
               << " bytes) than the state's offset " << resume.offset
               << ": it was truncated while not followed; reading it again from 0\n";
    } else {
      offset = resume.offset;
    }
  } else if (!said_missing_ && !follow_.from_start) {
    offset = size;  // first run: only what the detector writes from now on
  }
  if (::lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) {
    return ioError("cannot seek in", path_);
  }
  fd_ = std::move(fd);
  file_ = file;
  opened_once_ = true;
  resetTo(offset);
  return okStatus();
}

void LogFollower::resetTo(uint64_t offset) {
  consumed_ = offset;
  buffer_base_ = offset;
  buffer_.clear();
  start_ = 0;
  scanned_ = 0;
  discarding_ = false;
}

Result<LogRead> LogFollower::read(size_t max_lines) {
  LogRead out;
  if (!fd_.valid()) {
    SHADAN_RETURN_IF_ERROR(open());
    if (!fd_.valid()) {
      out.at_end = true;
      return out;
    }
  }
  while (out.lines.size() < max_lines) {
    if (takeLine(out)) continue;
    // Drop what was consumed before reading more, so the buffer stays about one line long.
    buffer_.erase(0, start_);
    buffer_base_ += start_;
    scanned_ -= start_;
    start_ = 0;
    char chunk[kReadChunkBytes];
    const ssize_t n = ::read(fd_.get(), chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ioError("cannot read", path_);
    }
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      bytes_since_look_ += static_cast<uint64_t>(n);
      continue;
    }
    SHADAN_ASSIGN_OR_RETURN(const bool changed, lookAtPath(out));
    if (changed) continue;
    out.at_end = !rotation_pending_;
    return out;
  }
  return out;
}

bool LogFollower::takeLine(LogRead& out) {
  const size_t newline = buffer_.find('\n', scanned_);
  if (newline == std::string::npos) {
    scanned_ = buffer_.size();
    if (!discarding_ && buffer_.size() - start_ > max_line_bytes_) discarding_ = true;
    if (discarding_) {
      // The line's start stays in consumed_; its bytes are not kept.
      buffer_base_ += buffer_.size();
      buffer_.clear();
      start_ = 0;
      scanned_ = 0;
    }
    return false;
  }
  LogLine line;
  line.file = file_;
  line.offset = consumed_;
  line.end = buffer_base_ + newline + 1;
  const size_t length = newline - start_;
  if (discarding_ || length > max_line_bytes_) {
    line.kind = LogLineKind::kOversize;
  } else {
    line.text.assign(buffer_, start_, length);
  }
  start_ = newline + 1;
  scanned_ = start_;
  consumed_ = line.end;
  discarding_ = false;
  out.lines.push_back(std::move(line));
  return true;
}

void LogFollower::abandonPartial(LogRead& out) {
  const uint64_t read_offset = buffer_base_ + buffer_.size();
  if (read_offset > consumed_) {
    LogLine line;
    line.kind = LogLineKind::kIncomplete;
    line.file = file_;
    line.offset = consumed_;
    line.end = read_offset;
    out.lines.push_back(std::move(line));
  }
}

Result<bool> LogFollower::lookAtPath(LogRead& out) {
  const uint64_t since_look = std::exchange(bytes_since_look_, 0);
  struct stat at_path {};
  if (::stat(path_.c_str(), &at_path) != 0) {
    if (errno == ENOENT) return false;  // between the steps of a rotation: keep the old file
    return ioError("cannot stat", path_);
  }
  const uint64_t read_offset = buffer_base_ + buffer_.size();
  if (identityOf(at_path) == file_) {
    rotation_pending_ = false;
    struct stat open_file {};
    if (::fstat(fd_.get(), &open_file) != 0) return ioError("cannot stat", path_);
    if (static_cast<uint64_t>(open_file.st_size) >= read_offset) return false;
    notices_ << "shadanctl: forward: " << path_ << " was truncated (now " << open_file.st_size
             << " bytes, read up to offset " << read_offset << "); reading it again from 0\n";
    abandonPartial(out);
    if (::lseek(fd_.get(), 0, SEEK_SET) < 0) return ioError("cannot seek in", path_);
    resetTo(0);
    return true;
  }
  // Another file at the path. Leave the open one only once it stayed quiet for a whole look.
  if (!rotation_pending_ || since_look > 0) {
    rotation_pending_ = true;
    return false;
  }
  UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return false;
    return ioError("cannot open", path_);
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return ioError("cannot stat", path_);
  if (!S_ISREG(info.st_mode)) return makeError(ErrorCode::kIo, path_ + " is not a regular file");
  abandonPartial(out);
  notices_ << "shadanctl: forward: " << path_ << " was rotated (" << describe(file_) << " -> "
           << describe(identityOf(info)) << "); the old file was read to its end (offset "
           << read_offset << "), reading the new one from 0\n";
  fd_ = std::move(fd);
  file_ = identityOf(info);
  rotation_pending_ = false;
  resetTo(0);
  return true;
}

}  // namespace shadan

#include "common/log_file_system.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "common/unique_fd.h"

namespace shadan {
namespace {

std::string errnoText(int error) { return std::strerror(error); }

std::string parentDirectory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

Status syncDirectory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) {
    return makeError(ErrorCode::kIo, "cannot fsync directory " + dir + ": " + errnoText(errno));
  }
  return okStatus();
}

Status writeAll(int fd, std::string_view data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      return makeError(writeErrorCode(error), "cannot write " + path + ": " + errnoText(error));
    }
    done += static_cast<size_t>(n);
  }
  return okStatus();
}

class PosixWritableLogFile : public WritableLogFile {
 public:
  PosixWritableLogFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Status append(std::string_view data) override { return writeAll(fd_.get(), data, path_); }
  Status sync() override {
    if (::fdatasync(fd_.get()) != 0) {
      const int error = errno;
      return makeError(writeErrorCode(error), "fdatasync " + path_ + ": " + errnoText(error));
    }
    return okStatus();
  }

 private:
  UniqueFd fd_;
  std::string path_;
};

}  // namespace

Result<std::string> PosixLogFileSystem::readFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int error = errno;
    return makeError(error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                     "cannot open " + path + ": " + errnoText(error));
  }
  std::string data;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return makeError(ErrorCode::kIo, "cannot read " + path + ": " + errnoText(errno));
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  return data;
}

Result<bool> PosixLogFileSystem::exists(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) return true;
  if (errno == ENOENT) return false;
  return makeError(ErrorCode::kIo, "cannot stat " + path + ": " + errnoText(errno));
}

Result<std::vector<std::string>> PosixLogFileSystem::listDirectory(const std::string& dir) {
  std::error_code error;
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    names.push_back(it->path().filename().string());
  }
  if (error) {
    return makeError(ErrorCode::kIo, "cannot list directory " + dir + ": " + error.message());
  }
  return names;
}

Result<std::unique_ptr<WritableLogFile>> PosixLogFileSystem::openForAppend(
    const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return makeError(ErrorCode::kIo, "cannot open " + path + ": " + errnoText(errno));
  auto file = std::make_unique<PosixWritableLogFile>(fd, path);
  // The file may have just been created: make its directory entry durable too.
  SHADAN_RETURN_IF_ERROR(syncDirectory(parentDirectory(path)));
  return std::unique_ptr<WritableLogFile>(std::move(file));
}

Status PosixLogFileSystem::createFile(const std::string& path, std::string_view contents) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (fd.get() < 0) {
    const int error = errno;
    return makeError(error == EEXIST ? ErrorCode::kState : ErrorCode::kIo,
                     "cannot create " + path + ": " + errnoText(error));
  }
  SHADAN_RETURN_IF_ERROR(writeAll(fd.get(), contents, path));
  if (::fsync(fd.get()) != 0 || fd.close() != 0) {
    return makeError(ErrorCode::kIo, "cannot fsync " + path + ": " + errnoText(errno));
  }
  return syncDirectory(parentDirectory(path));
}

Status PosixLogFileSystem::truncate(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0 || ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0 ||
      ::fsync(fd.get()) != 0) {
    return makeError(ErrorCode::kIo, "cannot truncate " + path + ": " + errnoText(errno));
  }
  return okStatus();
}

Status PosixLogFileSystem::rename(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
    const int error = errno;
    return makeError(error == EEXIST ? ErrorCode::kState : ErrorCode::kIo,
                     "cannot rename " + from + " to " + to + ": " + errnoText(error));
  }
  return syncDirectory(parentDirectory(to));
}

Status PosixLogFileSystem::appendUnsynced(const std::string& path, std::string_view data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (fd.get() < 0)
    return makeError(ErrorCode::kIo, "cannot open " + path + ": " + errnoText(errno));
  SHADAN_RETURN_IF_ERROR(writeAll(fd.get(), data, path));
  if (fd.close() != 0) {
    return makeError(ErrorCode::kIo, "cannot close " + path + ": " + errnoText(errno));
  }
  return okStatus();
}

Status PosixLogFileSystem::syncFileSystem(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0 || ::syncfs(fd.get()) != 0) {
    return makeError(ErrorCode::kIo,
                     "cannot sync the file system of " + path + ": " + errnoText(errno));
  }
  return okStatus();
}

}  // namespace shadan

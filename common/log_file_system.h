#pragma once

// The file operations the audit log needs, behind an interface (leveldb's Env) so tests can
// observe ordering (write, then fdatasync, then return) and inject failures.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace shadan {

// A file open for appending.
class WritableLogFile {
 public:
  virtual ~WritableLogFile() = default;
  // Writes all of `data` at the end of the file, or fails.
  virtual Status append(std::string_view data) = 0;
  // fdatasync: the appended data is on stable storage when this returns ok.
  virtual Status sync() = 0;
};

class LogFileSystem {
 public:
  virtual ~LogFileSystem() = default;
  // Whole file; kNotFound if it does not exist.
  virtual Result<std::string> readFile(const std::string& path) = 0;
  virtual Result<bool> exists(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`.
  virtual Result<std::vector<std::string>> listDirectory(const std::string& dir) = 0;
  // Opens `path` for appending, creating it (mode 0640) if missing.
  virtual Result<std::unique_ptr<WritableLogFile>> openForAppend(const std::string& path) = 0;
  // Creates `path` with `contents`, fsynced, failing with kState if it exists.
  virtual Status createFile(const std::string& path, std::string_view contents) = 0;
  // Truncates `path` to `size` bytes and fsyncs it.
  virtual Status truncate(const std::string& path, uint64_t size) = 0;
  // Renames, failing with kState if `to` exists, then fsyncs the directory.
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  // Appends `data` to the existing file `path` without syncing anything: durable only after a
  // later syncFileSystem() of its file system returned ok. For many small appends made
  // durable together (one sync for a thousand files, not two per file).
  virtual Status appendUnsynced(const std::string& path, std::string_view data) = 0;
  // Every write so far to the file system holding `path` is on stable storage when this
  // returns ok (syncfs(2); it reports write-back errors since Linux 5.8).
  virtual Status syncFileSystem(const std::string& path) = 0;
};

// The real file system (POSIX calls, fdatasync, fsync of directories).
class PosixLogFileSystem : public LogFileSystem {
 public:
  Result<std::string> readFile(const std::string& path) override;
  Result<bool> exists(const std::string& path) override;
  Result<std::vector<std::string>> listDirectory(const std::string& dir) override;
  Result<std::unique_ptr<WritableLogFile>> openForAppend(const std::string& path) override;
  Status createFile(const std::string& path, std::string_view contents) override;
  Status truncate(const std::string& path, uint64_t size) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status appendUnsynced(const std::string& path, std::string_view data) override;
  Status syncFileSystem(const std::string& path) override;
};

}  // namespace shadan

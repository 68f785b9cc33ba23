#pragma once

// Shared fixtures of the audit log tests: a temporary directory, the shared FakeClock, a file
// system that records the order of writes and syncs and can fail them, and line helpers.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/audit_log.h"
#include "common/clock.h"
#include "tests/fakes/fake_clock.h"

namespace shadan::testing {

// Wraps the real file system; records "append <name>" / "sync <name>" / "syncfs" and fails
// syncs on demand.
class RecordingFileSystem : public PosixLogFileSystem {
 public:
  std::vector<std::string> ops;
  bool fail_syncs = false;
  int no_space_appends = 0;  // the next N appends write half their bytes, then fail ENOSPC

  Result<std::unique_ptr<WritableLogFile>> openForAppend(const std::string& path) override {
    SHADAN_ASSIGN_OR_RETURN(auto inner, PosixLogFileSystem::openForAppend(path));
    return std::unique_ptr<WritableLogFile>(
        new Recorded(std::move(inner), std::filesystem::path(path).filename().string(), *this));
  }
  Status appendUnsynced(const std::string& path, std::string_view data) override {
    ops.push_back("append " + std::filesystem::path(path).filename().string());
    return PosixLogFileSystem::appendUnsynced(path, data);
  }
  Status syncFileSystem(const std::string& path) override {
    ops.push_back("syncfs");
    if (fail_syncs) return makeError(ErrorCode::kIo, "syncfs: injected EIO");
    return PosixLogFileSystem::syncFileSystem(path);
  }

 private:
  class Recorded : public WritableLogFile {
   public:
    Recorded(std::unique_ptr<WritableLogFile> inner, std::string name, RecordingFileSystem& fs)
        : inner_(std::move(inner)), name_(std::move(name)), fs_(fs) {}
    Status append(std::string_view data) override {
      fs_.ops.push_back("append " + name_);
      if (fs_.no_space_appends > 0) {
        --fs_.no_space_appends;
        (void)inner_->append(data.substr(0, data.size() / 2));
        return makeError(ErrorCode::kNoSpace, "cannot write: No space left on device (injected)");
      }
      return inner_->append(data);
    }
    Status sync() override {
      fs_.ops.push_back("sync " + name_);
      if (fs_.fail_syncs) return makeError(ErrorCode::kIo, "fdatasync: injected EIO");
      return inner_->sync();
    }

   private:
    std::unique_ptr<WritableLogFile> inner_;
    std::string name_;
    RecordingFileSystem& fs_;
  };
};

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/shadan-audit-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline void writeText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// Lines without their '\n' (a final unterminated line is included as is).
inline std::vector<std::string> readLines(const std::string& path) {
  std::vector<std::string> lines;
  std::string text = readText(path);
  size_t offset = 0;
  while (offset < text.size()) {
    size_t nl = text.find('\n', offset);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(offset, nl - offset));
    offset = nl + 1;
  }
  return lines;
}

inline void writeLines(const std::string& path, const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  writeText(path, text);
}

inline AuditEvent sampleEvent(int i) {
  AuditEvent event;
  event.event = i % 2 == 0 ? "accepted" : "applied";
  event.outcome = "ok";
  event.what = AuditWhat{"isolate", "lgwan", "full", std::nullopt, std::nullopt};
  event.where = AuditWhere{"core-gw", std::nullopt, std::nullopt};
  event.command_id = "cmd-" + std::to_string(i);
  event.seq = static_cast<uint64_t>(1000 + i);
  return event;
}

}  // namespace shadan::testing

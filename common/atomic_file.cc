#include "common/atomic_file.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/ed25519.h"
#include "common/unique_fd.h"

namespace shadan {
namespace {

std::string errnoText(int error) { return std::strerror(error); }

Status syncDirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) {
    return makeError(ErrorCode::kIo, "cannot fsync directory " + dir + ": " + errnoText(errno));
  }
  return okStatus();
}

}  // namespace

Status writeFileAtomically(const std::string& path, std::string_view contents, mode_t mode,
                           ExistingFile existing) {
  if (sodium_init() < 0) return makeError(ErrorCode::kInternal, "libsodium failed to initialise");
  std::array<uint8_t, 8> nonce{};
  randombytes_buf(nonce.data(), nonce.size());
  const std::string temp = path + ".tmp-" + std::to_string(::getpid()) + "-" + hexEncode(nonce);
  {
    UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (fd.get() < 0) {
      const int error = errno;
      return makeError(writeErrorCode(error), "cannot create " + temp + ": " + errnoText(error));
    }
    // The umask may have cleared bits of `mode`, never added any; set it exactly.
    Status written = [&]() -> Status {
      if (::fchmod(fd.get(), mode) != 0) {
        return makeError(ErrorCode::kIo, "cannot chmod " + temp + ": " + errnoText(errno));
      }
      size_t done = 0;
      while (done < contents.size()) {
        const ssize_t n = ::write(fd.get(), contents.data() + done, contents.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          const int error = errno;
          return makeError(writeErrorCode(error), "cannot write " + temp + ": " + errnoText(error));
        }
        done += static_cast<size_t>(n);
      }
      if (::fsync(fd.get()) != 0 || fd.close() != 0) {
        const int error = errno;
        return makeError(writeErrorCode(error), "cannot fsync " + temp + ": " + errnoText(error));
      }
      return okStatus();
    }();
    if (!written.ok()) {
      ::unlink(temp.c_str());
      return written;
    }
  }
  if (existing == ExistingFile::kReplace) {
    if (::rename(temp.c_str(), path.c_str()) != 0) {
      const int error = errno;
      ::unlink(temp.c_str());
      return makeError(ErrorCode::kIo, "cannot replace " + path + ": " + errnoText(error));
    }
    return syncDirectoryOf(path);
  }
  // link() fails with EEXIST instead of replacing, which rename() would do silently.
  if (::link(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    if (error == EEXIST) {
      return makeError(ErrorCode::kInvalidArgument,
                       path + " already exists; refusing to overwrite it");
    }
    return makeError(ErrorCode::kIo, "cannot create " + path + ": " + errnoText(error));
  }
  ::unlink(temp.c_str());
  return syncDirectoryOf(path);
}

}  // namespace shadan

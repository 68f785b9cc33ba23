#include "cli/lab/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <thread>

namespace shadan {

std::string netnsPath(const std::string& name) { return "/run/netns/" + name; }

bool netnsExists(const std::string& name) {
  struct stat info {};
  return ::stat(netnsPath(name).c_str(), &info) == 0;
}

Status runInNetns(const std::string& name, const std::function<Status()>& work) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return makeError(ErrorCode::kInvalidArgument, "invalid netns name '" + name + "'");
  }
  UniqueFd ns_fd(::open(netnsPath(name).c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns_fd.valid()) {
    const int err = errno;
    return makeError(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                     "cannot open netns " + name + ": " + std::strerror(err));
  }
  Status status;
  try {
    std::thread worker([&] {
      if (::setns(ns_fd.get(), CLONE_NEWNET) != 0) {
        const int err = errno;
        status =
            makeError(ErrorCode::kKernel, "cannot enter netns " + name + ": " + std::strerror(err) +
                                              (err == EPERM ? " (needs root)" : ""));
        return;
      }
      status = work();
    });
    worker.join();
  } catch (const std::exception& e) {
    return makeError(ErrorCode::kInternal,
                     "cannot start a thread for netns " + name + ": " + e.what());
  }
  return status;
}

Result<UniqueFd> socketInNetns(const std::string& name, int domain, int type, int protocol) {
  UniqueFd fd;
  Status status = runInNetns(name, [&]() -> Status {
    fd.reset(::socket(domain, type | SOCK_CLOEXEC, protocol));
    if (!fd.valid()) {
      return makeError(ErrorCode::kIo,
                       std::string("socket in netns ") + name + ": " + std::strerror(errno));
    }
    return okStatus();
  });
  if (!status.ok()) return status.error();
  return fd;
}

}  // namespace shadan

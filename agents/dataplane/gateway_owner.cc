#include "agents/dataplane/gateway_owner.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

namespace shadan::agent {
namespace {

// "\0shadan-agent/inet shadan": the leading NUL puts the name in the abstract namespace.
sockaddr_un lockAddress(std::string_view table, socklen_t& length) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string name = "shadan-agent/" + std::string(table);
  const size_t n = std::min(name.size(), sizeof(address.sun_path) - 1);
  std::memcpy(address.sun_path + 1, name.data(), n);
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  return address;
}

std::string commandLineOf(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) return "-";
  while (!text.empty() && text.back() == '\0') text.pop_back();
  for (char& c : text) {
    if (c == '\0') c = ' ';
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  if (text.size() > 300) text = text.substr(0, 300) + "...";
  return text;
}

}  // namespace

std::string GatewayOwner::describe() const {
  if (!daemon) return "another shadan-agent command";
  if (pid == 0) return "the shadan-agent daemon";
  return "the shadan-agent daemon (pid " + std::to_string(pid) + ": " + command + ")";
}

GatewayOwner GatewayLock::holder(std::string_view table) {
  GatewayOwner owner;
  // Non-blocking: a listener whose queue is full would otherwise block connect() for good.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return owner;
  socklen_t length = 0;
  const sockaddr_un address = lockAddress(table, length);
  const int connected = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), length);
  if (connected != 0 && errno == EAGAIN) {
    owner.daemon = true;  // it listens, but its queue is full: a daemon, pid unknown
    owner.command = "-";
  } else if (connected == 0) {
    ucred peer{};
    socklen_t size = sizeof peer;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) == 0) {
      owner.daemon = true;
      owner.pid = peer.pid;
      owner.command = commandLineOf(peer.pid);
    }
  }
  ::close(fd);
  return owner;
}

Result<GatewayLock> GatewayLock::acquire(std::string_view table, Role role,
                                         std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  socklen_t length = 0;
  const sockaddr_un address = lockAddress(table, length);
  for (;;) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      return makeError(ErrorCode::kIo,
                       std::string("gateway lock: socket: ") + std::strerror(errno));
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), length) == 0) {
      // A daemon answers connects (the kernel queues them; nobody reads), so that others can
      // name it; the backlog is irrelevant.
      if (role == Role::kDaemon && ::listen(fd, 4) != 0) {
        const int saved = errno;
        ::close(fd);
        return makeError(ErrorCode::kIo,
                         std::string("gateway lock: listen: ") + std::strerror(saved));
      }
      return GatewayLock(fd);
    }
    const int saved = errno;
    ::close(fd);
    if (saved != EADDRINUSE) {
      return makeError(ErrorCode::kIo, std::string("gateway lock: bind: ") + std::strerror(saved));
    }
    const GatewayOwner owner = holder(table);
    if (owner.daemon || std::chrono::steady_clock::now() >= deadline) {
      return makeError(ErrorCode::kUnavailable, "table " + std::string(table) +
                                                    " of this network namespace is owned by " +
                                                    owner.describe());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

GatewayLock::GatewayLock(GatewayLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

GatewayLock& GatewayLock::operator=(GatewayLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

GatewayLock::~GatewayLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace shadan::agent

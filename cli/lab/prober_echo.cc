#include "cli/lab/prober_echo.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <exception>

#include "cli/lab/prober_sockets.h"

namespace shadan::prober_internal {

EchoService::EchoService(ProberOptions options) : options_(options) {}
EchoService::~EchoService() { stop(); }

void EchoService::addListener(UniqueFd fd) {
  sockets_.push_back({Kind::kListener, std::move(fd), {}});
}
void EchoService::addUdpEcho(UniqueFd fd) { sockets_.push_back({Kind::kUdp, std::move(fd), {}}); }
void EchoService::addFlowServer(UniqueFd fd) {
  sockets_.push_back({Kind::kFlow, std::move(fd), {}});
}

Status EchoService::start() {
  SHADAN_RETURN_IF_ERROR(makeLoopFds(epoll_, stop_event_));
  for (size_t i = 0; i < sockets_.size(); ++i) {
    const uint32_t events = sockets_[i].kind == Kind::kFlow ? EPOLLIN | EPOLLRDHUP : EPOLLIN;
    SHADAN_RETURN_IF_ERROR(addToEpoll(epoll_.get(), sockets_[i].fd.get(), events, tag(kEcho, i)));
  }
  try {
    thread_ = std::thread([this] { loop(); });
  } catch (const std::exception& e) {
    return makeError(ErrorCode::kInternal,
                     std::string("cannot start the echo thread: ") + e.what());
  }
  return okStatus();
}

void EchoService::stop() {
  if (thread_.joinable()) {
    signalStop(stop_event_);
    thread_.join();
  }
  sockets_.clear();
}

void EchoService::loop() {
  raisePriority(options_);
  epoll_event events[kMaxEvents];
  for (;;) {
    const int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t data = events[i].data.u64;
      if (tagKind(data) == kStop) return;
      const size_t index = tagIndex(data);
      if (index >= sockets_.size() || !sockets_[index].fd.valid()) continue;
      switch (sockets_[index].kind) {
        case Kind::kListener:
          onListener(sockets_[index]);
          break;
        case Kind::kUdp:
          onUdp(sockets_[index]);
          break;
        case Kind::kFlow:
          onFlow(index, events[i].events);
          break;
      }
    }
  }
}

void EchoService::onListener(Socket& socket) {
  for (;;) {
    UniqueFd accepted(::accept4(socket.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!accepted.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN: the queue is empty
    }
    // A plain close (FIN): a reset could reach the client before its loop has seen the
    // handshake complete, and SO_ERROR would then say ECONNRESET for a path that is open. The
    // client resets its end once it has looked, which also ends this one without TIME_WAIT.
  }
}

void EchoService::onUdp(Socket& socket) {
  uint8_t buffer[2048];
  for (;;) {
    sockaddr_storage from{};
    socklen_t from_length = sizeof(from);
    const ssize_t n = ::recvfrom(socket.fd.get(), buffer, sizeof(buffer), 0,
                                 reinterpret_cast<sockaddr*>(&from), &from_length);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    ::sendto(socket.fd.get(), buffer, static_cast<size_t>(n), MSG_DONTWAIT,
             reinterpret_cast<const sockaddr*>(&from), from_length);
  }
}

void EchoService::onFlow(size_t index, uint32_t events) {
  Socket& socket = sockets_[index];
  char buffer[4096];
  bool gone = (events & EPOLLERR) != 0;
  for (;;) {
    const ssize_t n = ::recv(socket.fd.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n > 0) {
      socket.out.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    gone = true;
    break;
  }
  if (!socket.out.empty() && !gone) {
    const ssize_t sent =
        ::send(socket.fd.get(), socket.out.data(), socket.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) socket.out.erase(0, static_cast<size_t>(sent));
    if (sent < 0 && errno != EAGAIN && errno != EINTR) gone = true;
  }
  if (gone) {
    socket.fd.reset();
    return;
  }
  // Bytes the socket did not take: wait until it can, then echo them.
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP | (socket.out.empty() ? 0U : uint32_t{EPOLLOUT});
  event.data.u64 = tag(kEcho, index);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, socket.fd.get(), &event);
}

}  // namespace shadan::prober_internal

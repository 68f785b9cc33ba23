#include "cli/lab/prober_sockets.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <cstring>

namespace shadan::prober_internal {

void SockAddr::setPort(uint16_t port) {
  if (family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
  }
}

Result<SockAddr> parseSockAddr(const std::string& address, uint16_t port) {
  SockAddr result;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&result.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&result.storage);
  if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    result.length = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    result.length = sizeof(sockaddr_in6);
  } else {
    return makeError(ErrorCode::kInvalidArgument, "'" + address + "' is not an IP address");
  }
  result.setPort(port);
  return result;
}

uint16_t internetChecksum(const uint8_t* data, size_t length) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < length; i += 2)
    sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (length % 2 == 1) sum += static_cast<uint32_t>(data[length - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint16_t boundPort(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length);
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
}

bool sameAddress(const sockaddr_storage& from, const SockAddr& expected) {
  if (from.ss_family != expected.family()) return false;
  if (from.ss_family == AF_INET) {
    return std::memcmp(&reinterpret_cast<const sockaddr_in*>(&from)->sin_addr,
                       &reinterpret_cast<const sockaddr_in*>(&expected.storage)->sin_addr,
                       sizeof(in_addr)) == 0;
  }
  return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&from)->sin6_addr,
                     &reinterpret_cast<const sockaddr_in6*>(&expected.storage)->sin6_addr,
                     sizeof(in6_addr)) == 0;
}

std::string errnoText(const std::string& what, int err) { return what + ": " + std::strerror(err); }

Status addToEpoll(int epoll, int fd, uint32_t events, uint64_t data) {
  epoll_event event{};
  event.events = events;
  event.data.u64 = data;
  if (::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0) {
    return makeError(ErrorCode::kIo, errnoText("epoll_ctl", errno));
  }
  return okStatus();
}

Status makeLoopFds(UniqueFd& epoll, UniqueFd& stop_event) {
  epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return makeError(ErrorCode::kIo, errnoText("epoll_create1", errno));
  stop_event.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_event.valid()) return makeError(ErrorCode::kIo, errnoText("eventfd", errno));
  return addToEpoll(epoll.get(), stop_event.get(), EPOLLIN, tag(kStop));
}

void signalStop(const UniqueFd& stop_event) {
  const uint64_t one = 1;
  if (stop_event.valid()) (void)!::write(stop_event.get(), &one, sizeof(one));
}

void closeWithReset(UniqueFd& fd) {
  const linger abort_close{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
  fd.reset();
}

// The probe and echo threads mostly sleep, but when they wake they must run at once: under
// load (a drill runs the lab, a controller and agents on the same cores) an ordinary thread
// waits several milliseconds for a core and the 2 ms grid stretches. The lowest real-time
// priority is enough to go first; best effort (needs root; silently stays ordinary otherwise).
void raisePriority(const ProberOptions& options) {
  if (!options.realtime) return;
  sched_param param{};
  param.sched_priority = 1;
  (void)::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &param);
}

}  // namespace shadan::prober_internal

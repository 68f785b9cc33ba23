#pragma once

// Internals of ContinuousProber (prober.h): addresses and the epoll plumbing shared by its probe
// loops (prober_loops.h) and its echo thread (prober_echo.h). Not a public interface.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "cli/lab/prober.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace shadan::prober_internal {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  void setPort(uint16_t port);
};

Result<SockAddr> parseSockAddr(const std::string& address, uint16_t port);
// The ones' complement checksum of RFC 1071 (ICMP echo requests), over `length` bytes.
uint16_t internetChecksum(const uint8_t* data, size_t length);
// The local port `fd` is bound to.
uint16_t boundPort(int fd);
// True if `from` holds the same address (port ignored) as `expected`.
bool sameAddress(const sockaddr_storage& from, const SockAddr& expected);
std::string errnoText(const std::string& what, int err);

// epoll data: what kind of socket in the top byte, an index in the next 16 bits, a probe ticket
// in the low 40.
enum Tag : uint64_t { kStop = 1, kTimer, kTcp, kIcmp4, kIcmp6, kUdp, kFlow, kEcho };
inline uint64_t tag(uint64_t kind, uint64_t index = 0, uint64_t ticket = 0) {
  return kind << 56 | (index & 0xffff) << 40 | (ticket & 0xffffffffffULL);
}
inline uint64_t tagKind(uint64_t data) { return data >> 56; }
inline uint32_t tagIndex(uint64_t data) { return static_cast<uint32_t>(data >> 40 & 0xffff); }
inline uint64_t tagTicket(uint64_t data) { return data & 0xffffffffffULL; }

inline constexpr int kMaxEvents = 256;

Status addToEpoll(int epoll, int fd, uint32_t events, uint64_t data);
// A new epoll set holding a new eventfd tagged kStop: writing the eventfd ends the loop.
Status makeLoopFds(UniqueFd& epoll, UniqueFd& stop_event);
void signalStop(const UniqueFd& stop_event);
// Closes with a reset instead of a FIN: thousands of probe connections a second must not leave
// TIME_WAIT sockets behind (they would use up the ephemeral ports within a minute).
void closeWithReset(UniqueFd& fd);
// Puts the calling thread at the lowest real-time priority if options.realtime (best effort).
void raisePriority(const ProberOptions& options);

}  // namespace shadan::prober_internal

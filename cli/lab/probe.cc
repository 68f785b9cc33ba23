#include "cli/lab/probe.h"

#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "cli/lab/netns.h"
#include "cli/lab/prober_sockets.h"

namespace shadan {
namespace {

using Clock = std::chrono::steady_clock;
// One socket-address helper for one-shot and continuous probes (prober_sockets.h).
using prober_internal::boundPort;
using prober_internal::internetChecksum;
using prober_internal::parseSockAddr;
using prober_internal::sameAddress;
using prober_internal::SockAddr;

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// Milliseconds until `deadline`, never negative.
int msLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits until `fd` reports `events` or the deadline passes; false on timeout.
bool waitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd entry{fd, events, 0};
    const int ready = ::poll(&entry, 1, msLeft(deadline));
    if (ready > 0) return true;
    if (ready == 0) return false;
    if (errno != EINTR) return false;
  }
}

Result<UniqueFd> listenIn(const std::string& ns, const SockAddr& address) {
  SHADAN_ASSIGN_OR_RETURN(auto fd,
                          socketInNetns(ns, address.family(), SOCK_STREAM | SOCK_NONBLOCK, 0));
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (address.family() == AF_INET6) {
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (::bind(fd.get(), address.get(), address.length) != 0) {
    return makeError(ErrorCode::kIo, errnoText("bind listener in netns " + ns));
  }
  if (::listen(fd.get(), 8) != 0) {
    return makeError(ErrorCode::kIo, errnoText("listen in netns " + ns));
  }
  return fd;
}

// Connects `client` (non-blocking) to `target`; false if it is not connected by the deadline
// (dropped: timeout; rejected: refused/unreachable).
bool connectBy(int client, const SockAddr& target, Clock::time_point deadline) {
  if (::connect(client, target.get(), target.length) == 0) return true;
  if (errno != EINPROGRESS) return false;
  if (!waitFor(client, POLLOUT, deadline)) return false;
  int error = 0;
  socklen_t length = sizeof(error);
  if (::getsockopt(client, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return false;
  return error == 0;
}

// Accepts one connection by the deadline; an invalid fd if none came.
UniqueFd acceptBy(int listener, Clock::time_point deadline) {
  // A client that saw its handshake complete is already in the accept queue; the wait only
  // covers the last ACK still being in flight.
  if (!waitFor(listener, POLLIN, deadline)) return UniqueFd();
  return UniqueFd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

std::atomic<uint16_t> next_icmp_sequence{1};
std::atomic<uint64_t> next_udp_token{1};

}  // namespace

Result<bool> tcpConnect(const std::string& from_ns, const std::string& to_ns,
                        const std::string& to_addr, uint16_t port,
                        std::chrono::milliseconds timeout) {
  SHADAN_ASSIGN_OR_RETURN(auto target, parseSockAddr(to_addr, port));
  SHADAN_ASSIGN_OR_RETURN(auto listener, listenIn(to_ns, target));
  target.setPort(boundPort(listener.get()));

  SHADAN_ASSIGN_OR_RETURN(auto client,
                          socketInNetns(from_ns, target.family(), SOCK_STREAM | SOCK_NONBLOCK, 0));
  const auto deadline = Clock::now() + timeout;
  if (!connectBy(client.get(), target, deadline)) return false;
  return acceptBy(listener.get(), deadline).valid();
}

Result<bool> udpRoundTrip(const std::string& from_ns, const std::string& to_ns,
                          const std::string& to_addr, uint16_t port,
                          std::chrono::milliseconds timeout) {
  SHADAN_ASSIGN_OR_RETURN(auto target, parseSockAddr(to_addr, port));
  SHADAN_ASSIGN_OR_RETURN(auto server,
                          socketInNetns(to_ns, target.family(), SOCK_DGRAM | SOCK_NONBLOCK, 0));
  const int one = 1;
  if (target.family() == AF_INET6) {
    ::setsockopt(server.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (::bind(server.get(), target.get(), target.length) != 0) {
    return makeError(ErrorCode::kIo, errnoText("bind udp socket in netns " + to_ns));
  }
  target.setPort(boundPort(server.get()));
  SHADAN_ASSIGN_OR_RETURN(auto client,
                          socketInNetns(from_ns, target.family(), SOCK_DGRAM | SOCK_NONBLOCK, 0));
  // Connected: an ICMP error for the path (a reject) comes back as ECONNREFUSED/EHOSTUNREACH.
  if (::connect(client.get(), target.get(), target.length) != 0) {
    if (errno == ENETUNREACH || errno == EHOSTUNREACH) return false;
    return makeError(ErrorCode::kIo, errnoText("connect udp socket in netns " + from_ns));
  }
  // A token of its own per call and per process: a late echo of another probe never counts.
  const std::string token = "shadan-udp-" + std::to_string(::getpid()) + "-" +
                            std::to_string(next_udp_token.fetch_add(1));
  const auto deadline = Clock::now() + timeout;
  auto next_send = Clock::now();
  char buffer[2048];
  for (;;) {
    const auto now = Clock::now();
    if (now >= deadline) return false;
    if (now >= next_send) {
      if (::send(client.get(), token.data(), token.size(), 0) < 0 && errno != EAGAIN) {
        return false;  // an ICMP error already reported for this path, or no route
      }
      next_send = now + std::chrono::milliseconds(100);
    }
    pollfd fds[2] = {{server.get(), POLLIN, 0}, {client.get(), POLLIN, 0}};
    const int ready = ::poll(fds, 2, std::min(msLeft(deadline), msLeft(next_send) + 1));
    if (ready < 0 && errno != EINTR) return makeError(ErrorCode::kIo, errnoText("poll"));
    if (ready <= 0) continue;
    if (fds[0].revents & POLLIN) {
      // The echo: what reached the bound socket goes back to its sender.
      sockaddr_storage sender{};
      socklen_t sender_length = sizeof(sender);
      const ssize_t n = ::recvfrom(server.get(), buffer, sizeof(buffer), 0,
                                   reinterpret_cast<sockaddr*>(&sender), &sender_length);
      if (n > 0) {
        ::sendto(server.get(), buffer, static_cast<size_t>(n), 0,
                 reinterpret_cast<sockaddr*>(&sender), sender_length);
      }
    }
    if (fds[1].revents & (POLLIN | POLLERR)) {
      const ssize_t n = ::recv(client.get(), buffer, sizeof(buffer), 0);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return false;  // rejected on the way
      if (n == static_cast<ssize_t>(token.size()) &&
          std::string_view(buffer, static_cast<size_t>(n)) == token) {
        return true;
      }
    }
  }
}

Result<bool> icmpEcho(const std::string& from_ns, const std::string& to_addr,
                      std::chrono::milliseconds timeout) {
  SHADAN_ASSIGN_OR_RETURN(auto target, parseSockAddr(to_addr, 0));
  const bool v6 = target.family() == AF_INET6;
  SHADAN_ASSIGN_OR_RETURN(auto fd, socketInNetns(from_ns, target.family(), SOCK_RAW | SOCK_NONBLOCK,
                                                 v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}));
  if (v6) {
    // Only echo replies reach this socket; the kernel fills in the ICMPv6 checksum.
    icmp6_filter filter;
    ICMP6_FILTER_SETBLOCKALL(&filter);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
    ::setsockopt(fd.get(), IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter));
  }

  // Identifier from the pid, sequence from a process-wide counter: concurrent probes (threads,
  // other processes) never take each other's replies.
  const uint16_t id = static_cast<uint16_t>(::getpid());
  const uint16_t sequence = next_icmp_sequence.fetch_add(1);
  std::vector<uint8_t> packet(8);
  packet[0] = static_cast<uint8_t>(v6 ? int{ICMP6_ECHO_REQUEST} : int{ICMP_ECHO});
  packet[4] = static_cast<uint8_t>(id >> 8);
  packet[5] = static_cast<uint8_t>(id & 0xff);
  packet[6] = static_cast<uint8_t>(sequence >> 8);
  packet[7] = static_cast<uint8_t>(sequence & 0xff);
  const std::string payload = "shadan-probe";
  packet.insert(packet.end(), payload.begin(), payload.end());
  if (!v6) {
    const uint16_t checksum = internetChecksum(packet.data(), packet.size());
    packet[2] = static_cast<uint8_t>(checksum >> 8);
    packet[3] = static_cast<uint8_t>(checksum & 0xff);
  }
  if (::sendto(fd.get(), packet.data(), packet.size(), 0, target.get(), target.length) < 0) {
    // No route, or a local reject: the echo cannot leave, which is "not reachable".
    if (errno == ENETUNREACH || errno == EHOSTUNREACH || errno == EPERM || errno == EACCES) {
      return false;
    }
    return makeError(ErrorCode::kIo, errnoText("send echo request from netns " + from_ns));
  }

  const auto deadline = Clock::now() + timeout;
  uint8_t buffer[2048];
  while (waitFor(fd.get(), POLLIN, deadline)) {
    sockaddr_storage from{};
    socklen_t from_length = sizeof(from);
    const ssize_t n = ::recvfrom(fd.get(), buffer, sizeof(buffer), 0,
                                 reinterpret_cast<sockaddr*>(&from), &from_length);
    if (n < 0) continue;
    size_t offset = 0;
    if (!v6) {
      // IPv4 raw sockets deliver the IP header too.
      if (n < 1) continue;
      offset = static_cast<size_t>(buffer[0] & 0x0f) * 4;
    }
    if (static_cast<size_t>(n) < offset + 8) continue;
    const uint8_t* icmp = buffer + offset;
    const int reply_type = v6 ? int{ICMP6_ECHO_REPLY} : int{ICMP_ECHOREPLY};
    const uint16_t reply_id = static_cast<uint16_t>(icmp[4] << 8 | icmp[5]);
    const uint16_t reply_sequence = static_cast<uint16_t>(icmp[6] << 8 | icmp[7]);
    if (icmp[0] == reply_type && reply_id == id && reply_sequence == sequence &&
        sameAddress(from, target)) {
      return true;
    }
  }
  return false;
}

EstablishedFlow::EstablishedFlow(std::string from_ns, std::string to_ns, std::string to_addr,
                                 uint16_t port)
    : from_ns_(std::move(from_ns)),
      to_ns_(std::move(to_ns)),
      to_addr_(std::move(to_addr)),
      port_(port) {}

Status EstablishedFlow::open(std::chrono::milliseconds timeout) {
  if (isOpen()) detail::resultAccessFailure("EstablishedFlow::open twice");
  SHADAN_ASSIGN_OR_RETURN(auto target, parseSockAddr(to_addr_, port_));
  SHADAN_ASSIGN_OR_RETURN(auto listener, listenIn(to_ns_, target));
  target.setPort(boundPort(listener.get()));
  SHADAN_ASSIGN_OR_RETURN(auto client,
                          socketInNetns(from_ns_, target.family(), SOCK_STREAM | SOCK_NONBLOCK, 0));
  const auto deadline = Clock::now() + timeout;
  const std::string path = from_ns_ + " -> " + to_addr_ + " (" + to_ns_ + ")";
  if (!connectBy(client.get(), target, deadline)) {
    return makeError(ErrorCode::kUnavailable, "cannot open flow " + path);
  }
  UniqueFd server = acceptBy(listener.get(), deadline);
  if (!server.valid()) return makeError(ErrorCode::kUnavailable, "flow not accepted: " + path);
  client_ = std::move(client);
  server_ = std::move(server);
  return okStatus();
}

Result<bool> EstablishedFlow::roundTrip(std::chrono::milliseconds timeout) {
  if (!isOpen()) detail::resultAccessFailure("EstablishedFlow::roundTrip before open");
  // A unique token per call: bytes of an earlier, failed round trip may still arrive late.
  const std::string token = "shadan-flow-" + std::to_string(next_token_++) + "\n";
  const ssize_t sent = ::send(client_.get(), token.data(), token.size(), MSG_NOSIGNAL);
  if (sent != static_cast<ssize_t>(token.size())) return false;

  const auto deadline = Clock::now() + timeout;
  char buffer[4096];
  for (;;) {
    const size_t found = received_.find(token);
    if (found != std::string::npos) {
      received_.erase(0, found + token.size());
      return true;
    }
    pollfd fds[2] = {{server_.get(), POLLIN, 0}, {client_.get(), POLLIN, 0}};
    const int ready = ::poll(fds, 2, msLeft(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    if (fds[0].revents != 0) {
      // The server side echoes whatever reached it back to the client.
      const ssize_t n = ::recv(server_.get(), buffer, sizeof(buffer), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
      if (n > 0 && ::send(server_.get(), buffer, static_cast<size_t>(n), MSG_NOSIGNAL) != n) {
        return false;
      }
    }
    if (fds[1].revents != 0) {
      const ssize_t n = ::recv(client_.get(), buffer, sizeof(buffer), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
      if (n > 0) received_.append(buffer, static_cast<size_t>(n));
    }
  }
}

}  // namespace shadan

#include "agents/dataplane/route_monitor.h"

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace shadan::agent {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;
// Datagrams read per drain() before yielding back to the event loop.
constexpr int kMaxDatagramsPerDrain = 1024;

Error socketError(const std::string& what) {
  return makeError(ErrorCode::kKernel, "route monitor: " + what + ": " + std::strerror(errno));
}

RouteChangeEvent lostEvent() {
  RouteChangeEvent event;
  event.lost = true;
  return event;
}

}  // namespace

void RouteMonitor::SocketCloser::operator()(mnl_socket* socket) const {
  (void)mnl_socket_close(socket);
}

RouteMonitor::RouteMonitor(SocketPtr socket, RouteOwnership ours)
    : socket_(std::move(socket)), ours_(ours), buffer_(kBufferBytes / sizeof(uint32_t)) {}

RouteMonitor::~RouteMonitor() = default;

Result<std::unique_ptr<RouteMonitor>> RouteMonitor::open(const RouteMonitorOptions& options) {
  SocketPtr socket(mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!socket) return socketError("open");
  if (mnl_socket_bind(socket.get(), 0, MNL_SOCKET_AUTOPID) < 0) return socketError("bind");
  for (int group : {RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE,
                    RTNLGRP_LINK}) {
    if (mnl_socket_setsockopt(socket.get(), NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) {
      return socketError("join group " + std::to_string(group));
    }
  }
  // SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; SO_RCVBUF is capped by it.
  const int fd = mnl_socket_get_fd(socket.get());
  const int bytes = options.receive_buffer_bytes;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) != 0) {
    return socketError("SO_RCVBUF");
  }
  return std::unique_ptr<RouteMonitor>(new RouteMonitor(std::move(socket), options.ours));
}

int RouteMonitor::fd() const { return mnl_socket_get_fd(socket_.get()); }

Result<std::vector<RouteChangeEvent>> RouteMonitor::drain() {
  std::vector<RouteChangeEvent> events;
  for (int i = 0; i < kMaxDatagramsPerDrain; ++i) {
    sockaddr_nl sender{};
    iovec iov{buffer_.data(), buffer_.size() * sizeof(uint32_t)};
    msghdr msg{};
    msg.msg_name = &sender;
    msg.msg_namelen = sizeof sender;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = recvmsg(fd(), &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ENOBUFS) {
        events.push_back(lostEvent());
        continue;
      }
      return socketError("recvmsg");
    }
    if ((msg.msg_flags & MSG_TRUNC) != 0) {
      events.push_back(lostEvent());
      continue;
    }
    // Only the kernel speaks for the routing tables.
    if (sender.nl_pid != 0) continue;
    parseRouteDatagram(buffer_.data(), static_cast<size_t>(n), ours_, events);
  }
  return events;
}

}  // namespace shadan::agent

#include "agents/dataplane/nft_monitor.h"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace shadan::agent {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;
// Datagrams read per drain() before yielding back to the event loop.
constexpr int kMaxDatagramsPerDrain = 1024;

Error socketError(const std::string& what) {
  return makeError(ErrorCode::kKernel, "nft monitor: " + what + ": " + std::strerror(errno));
}

// SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; SO_RCVBUF is capped by it.
Status setReceiveBuffer(int fd, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) == 0) return okStatus();
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) == 0) return okStatus();
  return socketError("SO_RCVBUF");
}

enum class RecvOutcome { kData, kEmpty, kLost, kIgnored };

// One datagram from the kernel into `buffer`. kLost: the kernel dropped notifications (ENOBUFS)
// or the datagram did not fit. kIgnored: sent by a process, not the kernel (only privileged
// senders can reach the group, but such a datagram says nothing about the ruleset).
Result<RecvOutcome> receiveDatagram(int fd, std::vector<uint32_t>& buffer, size_t& length) {
  while (true) {
    sockaddr_nl sender{};
    iovec iov{buffer.data(), buffer.size() * sizeof(uint32_t)};
    msghdr msg{};
    msg.msg_name = &sender;
    msg.msg_namelen = sizeof sender;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return RecvOutcome::kEmpty;
      if (errno == ENOBUFS) return RecvOutcome::kLost;
      return socketError("recvmsg");
    }
    if ((msg.msg_flags & MSG_TRUNC) != 0) return RecvOutcome::kLost;
    if (sender.nl_pid != 0) return RecvOutcome::kIgnored;
    length = static_cast<size_t>(n);
    return RecvOutcome::kData;
  }
}

}  // namespace

void NftMonitor::SocketCloser::operator()(mnl_socket* socket) const {
  (void)mnl_socket_close(socket);
}

NftMonitor::NftMonitor(SocketPtr events, std::unique_ptr<NftGenerationReader> generation,
                       NftTableRef ours)
    : events_(std::move(events)),
      generation_(std::move(generation)),
      parser_(std::move(ours)),
      buffer_(kBufferBytes / sizeof(uint32_t)) {}

NftMonitor::~NftMonitor() = default;

Result<std::unique_ptr<NftMonitor>> NftMonitor::open(const NftMonitorOptions& options) {
  const std::optional<uint8_t> family = nftFamilyNumber(options.table_family);
  if (!family) {
    return makeError(ErrorCode::kInvalidArgument,
                     "nft monitor: unknown table family '" + options.table_family + "'");
  }

  SocketPtr events(mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!events) return socketError("open event socket");
  if (mnl_socket_bind(events.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return socketError("bind event socket");
  }
  int group = NFNLGRP_NFTABLES;
  if (mnl_socket_setsockopt(events.get(), NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) {
    return socketError("join NFNLGRP_NFTABLES");
  }
  SHADAN_RETURN_IF_ERROR(
      setReceiveBuffer(mnl_socket_get_fd(events.get()), options.receive_buffer_bytes));

  // Requests (GETGEN) get a socket of their own, so replies never interleave with notifications.
  SHADAN_ASSIGN_OR_RETURN(auto generation, NftGenerationReader::open());

  return std::unique_ptr<NftMonitor>(new NftMonitor(std::move(events), std::move(generation),
                                                    NftTableRef{*family, options.table_name}));
}

int NftMonitor::fd() const { return mnl_socket_get_fd(events_.get()); }

Result<std::vector<NftChangeEvent>> NftMonitor::drain() {
  std::vector<NftChangeEvent> events;
  for (int i = 0; i < kMaxDatagramsPerDrain; ++i) {
    size_t length = 0;
    SHADAN_ASSIGN_OR_RETURN(RecvOutcome outcome, receiveDatagram(fd(), buffer_, length));
    switch (outcome) {
      case RecvOutcome::kEmpty:
        return events;
      case RecvOutcome::kLost:
        parser_.markLost(events);
        break;
      case RecvOutcome::kIgnored:
        break;
      case RecvOutcome::kData:
        parser_.feed(buffer_.data(), length, events);
        break;
    }
  }
  return events;
}

Result<uint32_t> NftMonitor::currentGeneration() { return generation_->current(); }

}  // namespace shadan::agent

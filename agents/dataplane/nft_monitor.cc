#include "agents/dataplane/nft_monitor.h"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace shadan {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;
// Datagrams read per drain() before yielding back to the event loop.
constexpr int kMaxDatagramsPerDrain = 1024;
// Bound on waiting for the kernel's (synchronous) GETGEN reply.
constexpr int kRequestTimeoutMs = 1000;

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

NftMonitor::NftMonitor(SocketPtr events, SocketPtr requests, NftTableRef ours)
    : events_(std::move(events)),
      requests_(std::move(requests)),
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

  // Requests get a socket of their own, so replies never interleave with notifications. Blocking,
  // with a timeout: the reply is produced synchronously while the request is sent.
  SocketPtr requests(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
  if (!requests) return socketError("open request socket");
  if (mnl_socket_bind(requests.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return socketError("bind request socket");
  }
  timeval timeout{kRequestTimeoutMs / 1000, (kRequestTimeoutMs % 1000) * 1000};
  if (setsockopt(mnl_socket_get_fd(requests.get()), SOL_SOCKET, SO_RCVTIMEO, &timeout,
                 sizeof timeout) != 0) {
    return socketError("SO_RCVTIMEO");
  }

  return std::unique_ptr<NftMonitor>(new NftMonitor(std::move(events), std::move(requests),
                                                    NftTableRef{*family, options.table_name}));
}

int NftMonitor::fd() const { return mnl_socket_get_fd(events_.get()); }

Result<std::vector<NftChangeEvent>> NftMonitor::drain() {
  std::vector<NftChangeEvent> events;
  for (int i = 0; i < kMaxDatagramsPerDrain; ++i) {
    size_t length = 0;
    Result<RecvOutcome> outcome = receiveDatagram(fd(), buffer_, length);
    if (!outcome.ok()) return outcome.error();
    switch (*outcome) {
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

Result<uint32_t> NftMonitor::currentGeneration() {
  std::vector<uint32_t> request(MNL_SOCKET_BUFFER_SIZE / sizeof(uint32_t));
  nlmsghdr* nlh = mnl_nlmsg_put_header(request.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  // Sequence numbers tell this request's replies from those of an earlier one that timed out.
  nlh->nlmsg_seq = ++request_seq_;
  auto* header = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  header->nfgen_family = AF_UNSPEC;
  header->version = NFNETLINK_V0;
  header->res_id = 0;
  if (mnl_socket_sendto(requests_.get(), nlh, nlh->nlmsg_len) < 0) {
    return socketError("send GETGEN");
  }

  std::optional<uint32_t> generation;
  while (true) {
    const ssize_t n =
        mnl_socket_recvfrom(requests_.get(), buffer_.data(), buffer_.size() * sizeof(uint32_t));
    if (n < 0) {
      if (errno == EINTR) continue;
      return socketError("receive GETGEN reply");
    }
    int remaining = static_cast<int>(n);
    for (const nlmsghdr* reply = reinterpret_cast<const nlmsghdr*>(buffer_.data());
         mnl_nlmsg_ok(reply, remaining); reply = mnl_nlmsg_next(reply, &remaining)) {
      if (reply->nlmsg_seq != request_seq_) continue;  // a late reply to an earlier request
      if (reply->nlmsg_type == NLMSG_ERROR) {
        if (mnl_nlmsg_get_payload_len(reply) < sizeof(nlmsgerr)) {
          return makeError(ErrorCode::kKernel, "nft monitor: truncated GETGEN ack");
        }
        nlmsgerr ack{};
        std::memcpy(&ack, mnl_nlmsg_get_payload(reply), sizeof ack);
        if (ack.error != 0) {
          return makeError(ErrorCode::kKernel,
                           std::string("nft monitor: GETGEN: ") + std::strerror(-ack.error));
        }
        if (!generation) {
          return makeError(ErrorCode::kKernel, "nft monitor: GETGEN acked without a generation");
        }
        return *generation;
      }
      const std::optional<NftMessage> message = parseNftMessage(reply, remaining);
      if (!message || message->type != NftMessage::Type::kNewGeneration) {
        return makeError(ErrorCode::kKernel, "nft monitor: unexpected GETGEN reply");
      }
      generation = message->gen_id;
    }
  }
}

}  // namespace shadan

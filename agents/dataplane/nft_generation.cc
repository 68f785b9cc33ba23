#include "agents/dataplane/nft_generation.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "agents/dataplane/netlink_parse.h"

namespace shadan::agent {
namespace {

// Bound on waiting for the kernel's (synchronous) GETGEN reply.
constexpr int kRequestTimeoutMs = 1000;

Error socketError(const std::string& what) {
  return makeError(ErrorCode::kKernel, "nft generation: " + what + ": " + std::strerror(errno));
}

}  // namespace

void NftGenerationReader::SocketCloser::operator()(mnl_socket* socket) const {
  (void)mnl_socket_close(socket);
}

NftGenerationReader::NftGenerationReader(SocketPtr socket)
    : socket_(std::move(socket)), buffer_(MNL_SOCKET_BUFFER_SIZE / sizeof(uint32_t)) {}

NftGenerationReader::~NftGenerationReader() = default;

Result<std::unique_ptr<NftGenerationReader>> NftGenerationReader::open() {
  // Blocking, with a timeout: the reply is produced synchronously while the request is sent. A
  // socket of its own, never subscribed to a group, so replies never interleave with
  // notifications.
  SocketPtr socket(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
  if (!socket) return socketError("open socket");
  if (mnl_socket_bind(socket.get(), 0, MNL_SOCKET_AUTOPID) < 0) return socketError("bind socket");
  timeval timeout{kRequestTimeoutMs / 1000, (kRequestTimeoutMs % 1000) * 1000};
  if (setsockopt(mnl_socket_get_fd(socket.get()), SOL_SOCKET, SO_RCVTIMEO, &timeout,
                 sizeof timeout) != 0) {
    return socketError("SO_RCVTIMEO");
  }
  return std::unique_ptr<NftGenerationReader>(new NftGenerationReader(std::move(socket)));
}

Result<uint32_t> NftGenerationReader::current() {
  int ignored = 0;
  return requestGeneration(0, ignored);
}

Result<bool> NftGenerationReader::settled(uint32_t generation) {
  // 0 in NFNL_BATCH_GENID means "do not check"; the kernel never reports 0 (it skips it on wrap).
  if (generation == 0) return false;
  const uint32_t batch_seq = ++request_seq_;
  auto* bytes = reinterpret_cast<char*>(buffer_.data());
  size_t length = 0;
  for (const uint16_t type : {uint16_t{NFNL_MSG_BATCH_BEGIN}, uint16_t{NFNL_MSG_BATCH_END}}) {
    // No NLM_F_ACK: a batch that commits nothing is answered only when it fails.
    nlmsghdr* nlh = putNfnetlinkHeader(bytes + length, type, NLM_F_REQUEST, batch_seq, AF_UNSPEC,
                                       NFNL_SUBSYS_NFTABLES);
    if (type == NFNL_MSG_BATCH_BEGIN) mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(generation));
    length += NLMSG_ALIGN(nlh->nlmsg_len);
  }
  // The kernel processes the batch inside this send, before the GETGEN that follows.
  if (mnl_socket_sendto(socket_.get(), bytes, length) < 0) return socketError("send batch");

  int batch_error = 0;
  SHADAN_RETURN_IF_ERROR(requestGeneration(batch_seq, batch_error));
  if (batch_error == -ERESTART) return false;  // the generation was not `generation`
  if (batch_error != 0) {
    errno = -batch_error;
    return socketError("empty batch");
  }
  return true;
}

Result<uint32_t> NftGenerationReader::requestGeneration(uint32_t batch_seq, int& batch_error) {
  // Sequence numbers tell this request's replies from those of an earlier one that timed out.
  const nlmsghdr* nlh =
      putNfnetlinkHeader(buffer_.data(), (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
                         NLM_F_REQUEST | NLM_F_ACK, ++request_seq_, AF_UNSPEC);
  if (mnl_socket_sendto(socket_.get(), nlh, nlh->nlmsg_len) < 0) {
    return socketError("send GETGEN");
  }

  std::optional<uint32_t> generation;
  while (true) {
    const ssize_t n =
        mnl_socket_recvfrom(socket_.get(), buffer_.data(), buffer_.size() * sizeof(uint32_t));
    if (n < 0) {
      if (errno == EINTR) continue;
      return socketError("receive GETGEN reply");
    }
    int remaining = static_cast<int>(n);
    for (const nlmsghdr* reply = reinterpret_cast<const nlmsghdr*>(buffer_.data());
         mnl_nlmsg_ok(reply, remaining); reply = mnl_nlmsg_next(reply, &remaining)) {
      const bool is_ack = reply->nlmsg_type == NLMSG_ERROR;
      nlmsgerr ack{};
      if (is_ack) {
        if (mnl_nlmsg_get_payload_len(reply) < sizeof(nlmsgerr)) {
          return makeError(ErrorCode::kKernel, "nft generation: truncated ack");
        }
        std::memcpy(&ack, mnl_nlmsg_get_payload(reply), sizeof ack);
      }
      if (batch_seq != 0 && reply->nlmsg_seq == batch_seq) {
        if (is_ack && ack.error != 0 && batch_error == 0) batch_error = ack.error;
        continue;
      }
      if (reply->nlmsg_seq != request_seq_) continue;  // a late reply to an earlier request
      if (is_ack) {
        if (ack.error != 0) {
          return makeError(ErrorCode::kKernel,
                           std::string("nft generation: GETGEN: ") + std::strerror(-ack.error));
        }
        if (!generation) {
          return makeError(ErrorCode::kKernel, "nft generation: GETGEN acked without a generation");
        }
        return *generation;
      }
      const std::optional<NftMessage> message =
          parseNftMessage(reply, static_cast<size_t>(remaining));
      if (!message || message->type != NftMessage::Type::kNewGeneration) {
        return makeError(ErrorCode::kKernel, "nft generation: unexpected GETGEN reply");
      }
      generation = message->gen_id;
    }
  }
}

}  // namespace shadan::agent

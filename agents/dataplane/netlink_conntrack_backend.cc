#include "agents/dataplane/netlink_conntrack_backend.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>

#include "agents/dataplane/netlink_parse.h"

namespace shadan::agent {
namespace {

// Large enough for any datagram of a netlink dump (the kernel fills at most 32 KiB per recv).
constexpr size_t kReceiveBufferSize = 65536;
// A kernel that does not answer within this time is treated as an error, not waited on forever.
constexpr time_t kReceiveTimeoutSeconds = 5;
// How often a dump the kernel reports as inconsistent is repeated.
constexpr int kMaxDumpAttempts = 3;

constexpr uint16_t messageType(uint8_t ct_message) {
  return static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | ct_message);
}

// Up to `Max` attributes of one nesting level, indexed by type.
template <int Max>
struct AttrTable {
  std::array<const nlattr*, Max + 1> attrs{};

  static int collect(const nlattr* attr, void* data) {
    auto* table = static_cast<AttrTable*>(data);
    const uint16_t type = mnl_attr_get_type(attr);
    if (type <= Max) table->attrs[type] = attr;
    return MNL_CB_OK;
  }
  const nlattr* operator[](int type) const { return attrs[static_cast<size_t>(type)]; }
};

nlmsghdr* putRequestHeader(std::vector<uint8_t>& buffer, uint16_t type, uint16_t flags,
                           uint8_t family, uint32_t seq) {
  return putNfnetlinkHeader(buffer.data(), type, flags, seq, family);
}

std::vector<uint8_t> finish(std::vector<uint8_t> buffer, const nlmsghdr* header) {
  buffer.resize(header->nlmsg_len);
  return buffer;
}

// Adds the addresses of one tuple (CTA_TUPLE_ORIG or CTA_TUPLE_REPLY) to `entry`.
Status parseTupleAddresses(const nlattr* tuple, ConntrackEntry& entry) {
  AttrTable<CTA_TUPLE_MAX> tuple_attrs;
  if (mnl_attr_parse_nested(tuple, AttrTable<CTA_TUPLE_MAX>::collect, &tuple_attrs) < 0) {
    return makeError(ErrorCode::kParse, "conntrack tuple: unreadable attributes");
  }
  const nlattr* ip = tuple_attrs[CTA_TUPLE_IP];
  if (ip == nullptr) return makeError(ErrorCode::kParse, "conntrack tuple: no CTA_TUPLE_IP");
  AttrTable<CTA_IP_MAX> ip_attrs;
  if (mnl_attr_parse_nested(ip, AttrTable<CTA_IP_MAX>::collect, &ip_attrs) < 0) {
    return makeError(ErrorCode::kParse, "conntrack tuple: unreadable CTA_TUPLE_IP");
  }
  for (int type : {CTA_IP_V4_SRC, CTA_IP_V4_DST}) {
    const nlattr* attr = ip_attrs[type];
    if (attr == nullptr) continue;
    if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0) {
      return makeError(ErrorCode::kParse, "conntrack tuple: IPv4 address of the wrong size");
    }
    std::array<uint8_t, 16> bytes{};
    std::memcpy(bytes.data(), mnl_attr_get_payload(attr), 4);
    entry.addresses.push_back(IpPrefix::fromBytes(IpFamily::kV4, bytes, 32));
  }
  for (int type : {CTA_IP_V6_SRC, CTA_IP_V6_DST}) {
    const nlattr* attr = ip_attrs[type];
    if (attr == nullptr) continue;
    if (mnl_attr_validate2(attr, MNL_TYPE_BINARY, 16) < 0) {
      return makeError(ErrorCode::kParse, "conntrack tuple: IPv6 address of the wrong size");
    }
    std::array<uint8_t, 16> bytes{};
    std::memcpy(bytes.data(), mnl_attr_get_payload(attr), 16);
    entry.addresses.push_back(IpPrefix::fromBytes(IpFamily::kV6, bytes, 128));
  }
  return okStatus();
}

std::string errnoText(int error) { return std::strerror(error); }

}  // namespace

std::vector<uint8_t> buildConntrackDumpRequest(uint8_t family, uint32_t seq) {
  std::vector<uint8_t> buffer(MNL_SOCKET_BUFFER_SIZE);
  const nlmsghdr* header = putRequestHeader(buffer, messageType(IPCTNL_MSG_CT_GET),
                                            NLM_F_REQUEST | NLM_F_DUMP, family, seq);
  return finish(std::move(buffer), header);
}

Result<ConntrackEntry> parseConntrackEntry(const void* message, size_t length) {
  if (length > static_cast<size_t>(INT32_MAX)) {
    return makeError(ErrorCode::kParse, "conntrack message: too long");
  }
  const auto* header = static_cast<const nlmsghdr*>(message);
  if (!mnl_nlmsg_ok(header, static_cast<int>(length))) {
    return makeError(ErrorCode::kParse, "conntrack message: truncated");
  }
  if (header->nlmsg_type != messageType(IPCTNL_MSG_CT_NEW)) {
    return makeError(ErrorCode::kParse,
                     "conntrack message: type " + std::to_string(header->nlmsg_type));
  }
  if (mnl_nlmsg_get_payload_len(header) < sizeof(nfgenmsg)) {
    return makeError(ErrorCode::kParse, "conntrack message: no nfgenmsg header");
  }
  ConntrackEntry entry;
  entry.family = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(header))->nfgen_family;

  AttrTable<CTA_MAX> attrs;
  if (mnl_attr_parse(header, sizeof(nfgenmsg), AttrTable<CTA_MAX>::collect, &attrs) < 0) {
    return makeError(ErrorCode::kParse, "conntrack message: unreadable attributes");
  }
  const nlattr* original = attrs[CTA_TUPLE_ORIG];
  if (original == nullptr) {
    return makeError(ErrorCode::kParse, "conntrack message: no original tuple");
  }
  SHADAN_RETURN_IF_ERROR(parseTupleAddresses(original, entry));
  if (entry.addresses.empty()) {
    return makeError(ErrorCode::kParse, "conntrack message: original tuple without addresses");
  }
  if (const nlattr* reply = attrs[CTA_TUPLE_REPLY]) {
    SHADAN_RETURN_IF_ERROR(parseTupleAddresses(reply, entry));
  }
  const auto* raw = static_cast<const uint8_t*>(static_cast<const void*>(original));
  entry.original_tuple.assign(raw, raw + original->nla_len);

  if (const nlattr* zone = attrs[CTA_ZONE]) {
    if (mnl_attr_validate(zone, MNL_TYPE_U16) < 0) {
      return makeError(ErrorCode::kParse, "conntrack message: CTA_ZONE of the wrong size");
    }
    entry.zone = ntohs(mnl_attr_get_u16(zone));
  }
  if (const nlattr* id = attrs[CTA_ID]) {
    if (mnl_attr_validate(id, MNL_TYPE_U32) < 0) {
      return makeError(ErrorCode::kParse, "conntrack message: CTA_ID of the wrong size");
    }
    entry.id = ntohl(mnl_attr_get_u32(id));
  }
  return entry;
}

bool conntrackEntryMatches(const ConntrackEntry& entry, const std::vector<IpPrefix>& prefixes) {
  for (const IpPrefix& address : entry.addresses) {
    for (const IpPrefix& prefix : prefixes) {
      if (prefix.contains(address)) return true;
    }
  }
  return false;
}

Result<std::vector<uint8_t>> buildConntrackDeleteRequest(const ConntrackEntry& entry,
                                                         uint32_t seq) {
  // Without a tuple, IPCTNL_MSG_CT_DELETE flushes every entry: never send that.
  if (entry.original_tuple.size() < sizeof(nlattr)) {
    return makeError(ErrorCode::kInvalidArgument, "conntrack delete: entry without a tuple");
  }
  std::vector<uint8_t> buffer(MNL_SOCKET_BUFFER_SIZE);
  if (entry.original_tuple.size() > buffer.size() / 2) {
    return makeError(ErrorCode::kInvalidArgument, "conntrack delete: tuple too large");
  }
  nlmsghdr* header = putRequestHeader(buffer, messageType(IPCTNL_MSG_CT_DELETE),
                                      NLM_F_REQUEST | NLM_F_ACK, entry.family, seq);
  void* tuple = mnl_nlmsg_put_extra_header(header, MNL_ALIGN(entry.original_tuple.size()));
  std::memcpy(tuple, entry.original_tuple.data(), entry.original_tuple.size());
  if (entry.zone) mnl_attr_put_u16(header, CTA_ZONE, htons(*entry.zone));
  if (entry.id) mnl_attr_put_u32(header, CTA_ID, htonl(*entry.id));
  return finish(std::move(buffer), header);
}

// ---- NetlinkConntrackBackend ------------------------------------------------------------------

void NetlinkConntrackBackend::SocketDeleter::operator()(mnl_socket* socket) const {
  if (socket != nullptr) mnl_socket_close(socket);
}

NetlinkConntrackBackend::NetlinkConntrackBackend(SocketPtr socket)
    : socket_(std::move(socket)),
      port_id_(mnl_socket_get_portid(socket_.get())),
      seq_(static_cast<uint32_t>(time(nullptr))),
      buffer_(kReceiveBufferSize) {}

NetlinkConntrackBackend::~NetlinkConntrackBackend() = default;

Result<std::unique_ptr<NetlinkConntrackBackend>> NetlinkConntrackBackend::create() {
  SocketPtr socket(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
  if (!socket) {
    return makeError(ErrorCode::kKernel, "conntrack: netlink socket: " + errnoText(errno));
  }
  if (mnl_socket_bind(socket.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return makeError(ErrorCode::kKernel, "conntrack: netlink bind: " + errnoText(errno));
  }
  const timeval timeout{kReceiveTimeoutSeconds, 0};
  if (setsockopt(mnl_socket_get_fd(socket.get()), SOL_SOCKET, SO_RCVTIMEO, &timeout,
                 sizeof timeout) != 0) {
    return makeError(ErrorCode::kKernel, "conntrack: SO_RCVTIMEO: " + errnoText(errno));
  }
  return std::unique_ptr<NetlinkConntrackBackend>(new NetlinkConntrackBackend(std::move(socket)));
}

Status NetlinkConntrackBackend::send(const std::vector<uint8_t>& request) {
  if (mnl_socket_sendto(socket_.get(), request.data(), request.size()) < 0) {
    return makeError(ErrorCode::kKernel, "conntrack: netlink send: " + errnoText(errno));
  }
  return okStatus();
}

Result<NetlinkConntrackBackend::Dump> NetlinkConntrackBackend::dumpFamily(
    uint8_t family, const std::vector<IpPrefix>& prefixes) {
  const uint32_t seq = ++seq_;
  SHADAN_RETURN_IF_ERROR(send(buildConntrackDumpRequest(family, seq)));
  Dump dump;
  while (true) {
    const ssize_t received = mnl_socket_recvfrom(socket_.get(), buffer_.data(), buffer_.size());
    if (received < 0) {
      return makeError(ErrorCode::kKernel, "conntrack: dump: " + errnoText(errno));
    }
    int remaining = static_cast<int>(received);
    const auto* header = static_cast<const nlmsghdr*>(static_cast<const void*>(buffer_.data()));
    for (; mnl_nlmsg_ok(header, remaining); header = mnl_nlmsg_next(header, &remaining)) {
      // Answers to an earlier request that failed half way are not ours to read now.
      if (header->nlmsg_seq != seq || header->nlmsg_pid != port_id_) continue;
      if ((header->nlmsg_flags & NLM_F_DUMP_INTR) != 0) dump.interrupted = true;
      if (header->nlmsg_type == NLMSG_DONE) return dump;
      if (header->nlmsg_type == NLMSG_ERROR) {
        if (mnl_nlmsg_get_payload_len(header) < sizeof(int)) {
          return makeError(ErrorCode::kKernel, "conntrack: dump: truncated error message");
        }
        const auto* error = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(header));
        if (error->error == 0) return dump;
        return makeError(ErrorCode::kKernel, "conntrack: dump: " + errnoText(-error->error));
      }
      auto entry = parseConntrackEntry(header, header->nlmsg_len);
      // An entry we cannot read cannot be matched: skip it rather than fail the whole cut.
      if (entry.ok() && conntrackEntryMatches(entry.value(), prefixes)) {
        dump.matching.push_back(std::move(entry.value()));
      }
    }
  }
}

Result<NetlinkConntrackBackend::Dump> NetlinkConntrackBackend::dumpMatching(
    const std::vector<IpPrefix>& prefixes) {
  Dump all;
  for (uint8_t family : {static_cast<uint8_t>(AF_INET), static_cast<uint8_t>(AF_INET6)}) {
    for (int attempt = 1;; ++attempt) {
      SHADAN_ASSIGN_OR_RETURN(auto dump, dumpFamily(family, prefixes));
      if (!dump.interrupted || attempt == kMaxDumpAttempts) {
        all.interrupted = all.interrupted || dump.interrupted;
        for (ConntrackEntry& entry : dump.matching) all.matching.push_back(std::move(entry));
        break;
      }
    }
  }
  return all;
}

Result<bool> NetlinkConntrackBackend::deleteEntry(const ConntrackEntry& entry) {
  const uint32_t seq = ++seq_;
  SHADAN_ASSIGN_OR_RETURN(auto request, buildConntrackDeleteRequest(entry, seq));
  SHADAN_RETURN_IF_ERROR(send(request));
  while (true) {
    const ssize_t received = mnl_socket_recvfrom(socket_.get(), buffer_.data(), buffer_.size());
    if (received < 0) {
      return makeError(ErrorCode::kKernel, "conntrack: delete: " + errnoText(errno));
    }
    int remaining = static_cast<int>(received);
    const auto* header = static_cast<const nlmsghdr*>(static_cast<const void*>(buffer_.data()));
    for (; mnl_nlmsg_ok(header, remaining); header = mnl_nlmsg_next(header, &remaining)) {
      if (header->nlmsg_seq != seq || header->nlmsg_type != NLMSG_ERROR) continue;
      if (mnl_nlmsg_get_payload_len(header) < sizeof(int)) {
        return makeError(ErrorCode::kKernel, "conntrack: delete: truncated ack");
      }
      const int error = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(header))->error;
      if (error == 0) return true;
      if (error == -ENOENT) return false;  // expired or deleted meanwhile: the goal holds
      return makeError(ErrorCode::kKernel, "conntrack: delete: " + errnoText(-error));
    }
  }
}

Result<size_t> NetlinkConntrackBackend::deleteMatching(const std::vector<IpPrefix>& prefixes) {
  if (prefixes.empty()) return size_t{0};
  size_t deleted = 0;
  // One pass normally; another while the kernel said a dump was inconsistent (it may have
  // missed entries).
  for (int pass = 1; pass <= kMaxDumpAttempts; ++pass) {
    auto dump = dumpMatching(prefixes);
    if (!dump.ok()) {
      return dump.error().withContext("after deleting " + std::to_string(deleted) + " entries");
    }
    for (const ConntrackEntry& entry : dump->matching) {
      auto removed = deleteEntry(entry);
      if (!removed.ok()) {
        return removed.error().withContext("after deleting " + std::to_string(deleted) +
                                           " entries");
      }
      if (removed.value()) ++deleted;
    }
    if (!dump->interrupted) break;
  }
  return deleted;
}

Result<size_t> NetlinkConntrackBackend::count(const std::vector<IpPrefix>& prefixes) {
  if (prefixes.empty()) return size_t{0};
  SHADAN_ASSIGN_OR_RETURN(auto dump, dumpMatching(prefixes));
  return dump.matching.size();
}

}  // namespace shadan::agent

// NetlinkConntrackBackend: the message builders and parser over hand-built messages (no root),
// and deletion against the real ctnetlink. main() moves the process into a private network
// namespace first and every kernel test starts in a fresh one of its own (conntrack tables are
// per namespace); without root the kernel tests are skipped.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "agents/dataplane/netlink_conntrack_backend.h"
#include "tests/support/private_netns.h"

namespace shadan::agent {
namespace {

using test_support::CommandResult;
using test_support::runCommand;

IpPrefix prefix(const char* text) {
  auto parsed = IpPrefix::parse(text);
  EXPECT_TRUE(parsed.ok()) << text;
  return parsed.ok() ? parsed.value() : IpPrefix{};
}

// ---- hand-built messages ----------------------------------------------------------------------

struct TupleSpec {
  int family = AF_INET;
  const char* src = nullptr;
  const char* dst = nullptr;
  uint8_t proto = IPPROTO_TCP;
  uint16_t sport = 0;
  uint16_t dport = 0;
};

void putTuple(nlmsghdr* header, uint16_t type, const TupleSpec& spec) {
  nlattr* tuple = mnl_attr_nest_start(header, type);
  nlattr* ip = mnl_attr_nest_start(header, CTA_TUPLE_IP);
  for (auto [attr_type, text] : {std::pair{0, spec.src}, std::pair{1, spec.dst}}) {
    if (spec.family == AF_INET) {
      in_addr address{};
      EXPECT_EQ(inet_pton(AF_INET, text, &address), 1) << text;
      mnl_attr_put(header, attr_type == 0 ? CTA_IP_V4_SRC : CTA_IP_V4_DST, 4, &address);
    } else {
      in6_addr address{};
      EXPECT_EQ(inet_pton(AF_INET6, text, &address), 1) << text;
      mnl_attr_put(header, attr_type == 0 ? CTA_IP_V6_SRC : CTA_IP_V6_DST, 16, &address);
    }
  }
  mnl_attr_nest_end(header, ip);
  nlattr* proto = mnl_attr_nest_start(header, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(header, CTA_PROTO_NUM, spec.proto);
  mnl_attr_put_u16(header, CTA_PROTO_SRC_PORT, htons(spec.sport));
  mnl_attr_put_u16(header, CTA_PROTO_DST_PORT, htons(spec.dport));
  mnl_attr_nest_end(header, proto);
  mnl_attr_nest_end(header, tuple);
}

// An IPCTNL_MSG_CT_NEW message as a dump returns it.
std::vector<uint8_t> entryMessage(const TupleSpec& original, const TupleSpec* reply,
                                  std::optional<uint16_t> zone, std::optional<uint32_t> id) {
  std::vector<uint8_t> buffer(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* header = mnl_nlmsg_put_header(buffer.data());
  header->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
  header->nlmsg_flags = NLM_F_MULTI;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(nfgenmsg)));
  nfg->nfgen_family = static_cast<uint8_t>(original.family);
  nfg->version = NFNETLINK_V0;
  putTuple(header, CTA_TUPLE_ORIG, original);
  if (reply != nullptr) putTuple(header, CTA_TUPLE_REPLY, *reply);
  mnl_attr_put_u32(header, CTA_STATUS, htonl(8));
  if (zone) mnl_attr_put_u16(header, CTA_ZONE, htons(*zone));
  if (id) mnl_attr_put_u32(header, CTA_ID, htonl(*id));
  buffer.resize(header->nlmsg_len);
  return buffer;
}

const nlmsghdr* headerOf(const std::vector<uint8_t>& message) {
  return static_cast<const nlmsghdr*>(static_cast<const void*>(message.data()));
}

// The top-level attributes of a request (after its nfgenmsg), by type.
std::vector<const nlattr*> topAttributes(const std::vector<uint8_t>& message) {
  std::vector<const nlattr*> attrs(CTA_MAX + 1, nullptr);
  mnl_attr_parse(
      headerOf(message), sizeof(nfgenmsg),
      [](const nlattr* attr, void* data) {
        auto* out = static_cast<std::vector<const nlattr*>*>(data);
        if (mnl_attr_get_type(attr) <= CTA_MAX) (*out)[mnl_attr_get_type(attr)] = attr;
        return MNL_CB_OK;
      },
      &attrs);
  return attrs;
}

const TupleSpec kOriginal{AF_INET, "10.20.0.5", "203.0.113.9", IPPROTO_TCP, 40000, 443};
// Source NAT on the way out: the reply comes back to the gateway's public address.
const TupleSpec kReply{AF_INET, "203.0.113.9", "198.51.100.1", IPPROTO_TCP, 443, 40000};

TEST(ConntrackMessageTest, ParsesBothTuplesZoneAndId) {
  const auto message = entryMessage(kOriginal, &kReply, 7, 0xdeadbeef);
  auto entry = parseConntrackEntry(message.data(), message.size());
  ASSERT_TRUE(entry.ok()) << entry.error().message;
  EXPECT_EQ(entry->family, AF_INET);
  std::vector<std::string> addresses;
  for (const IpPrefix& address : entry->addresses) addresses.push_back(address.toString());
  EXPECT_EQ(addresses,
            (std::vector<std::string>{"10.20.0.5", "203.0.113.9", "203.0.113.9", "198.51.100.1"}));
  ASSERT_TRUE(entry->zone.has_value());
  EXPECT_EQ(*entry->zone, 7);
  ASSERT_TRUE(entry->id.has_value());
  EXPECT_EQ(*entry->id, 0xdeadbeefu);
  // The original tuple is kept byte for byte (it starts right after the nfgenmsg).
  const size_t tuple_offset = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(nfgenmsg));
  ASSERT_GT(entry->original_tuple.size(), sizeof(nlattr));
  EXPECT_EQ(std::vector<uint8_t>(
                message.begin() + static_cast<long>(tuple_offset),
                message.begin() + static_cast<long>(tuple_offset + entry->original_tuple.size())),
            entry->original_tuple);
}

TEST(ConntrackMessageTest, ParsesIpv6) {
  const TupleSpec original{AF_INET6, "fd00:20::5", "2001:db8::9", IPPROTO_UDP, 5353, 53};
  const auto message = entryMessage(original, nullptr, std::nullopt, std::nullopt);
  auto entry = parseConntrackEntry(message.data(), message.size());
  ASSERT_TRUE(entry.ok()) << entry.error().message;
  EXPECT_EQ(entry->family, AF_INET6);
  ASSERT_EQ(entry->addresses.size(), 2u);
  EXPECT_EQ(entry->addresses[0].toString(), "fd00:20::5");
  EXPECT_EQ(entry->addresses[1].toString(), "2001:db8::9");
  EXPECT_FALSE(entry->zone.has_value());
  EXPECT_FALSE(entry->id.has_value());
  EXPECT_TRUE(conntrackEntryMatches(entry.value(), {prefix("fd00:20::/64")}));
  EXPECT_FALSE(
      conntrackEntryMatches(entry.value(), {prefix("fd00:21::/64"), prefix("10.0.0.0/8")}));
}

TEST(ConntrackMessageTest, MatchesAnyAddressOfEitherTuple) {
  const auto message = entryMessage(kOriginal, &kReply, std::nullopt, std::nullopt);
  auto entry = parseConntrackEntry(message.data(), message.size());
  ASSERT_TRUE(entry.ok()) << entry.error().message;
  EXPECT_TRUE(conntrackEntryMatches(entry.value(), {prefix("10.20.0.0/24")}));     // orig src
  EXPECT_TRUE(conntrackEntryMatches(entry.value(), {prefix("203.0.113.0/24")}));   // orig dst
  EXPECT_TRUE(conntrackEntryMatches(entry.value(), {prefix("198.51.100.0/24")}));  // reply dst
  EXPECT_TRUE(conntrackEntryMatches(entry.value(), {prefix("192.0.2.0/24"), prefix("10.0.0.0/8")}));
  EXPECT_FALSE(conntrackEntryMatches(entry.value(), {prefix("10.21.0.0/24")}));
  EXPECT_FALSE(conntrackEntryMatches(entry.value(), {prefix("fd00::/8")}));
  EXPECT_FALSE(conntrackEntryMatches(entry.value(), {}));
}

TEST(ConntrackMessageTest, RejectsMalformedMessages) {
  const auto good = entryMessage(kOriginal, &kReply, std::nullopt, std::nullopt);
  // Truncated: the buffer is shorter than the header says.
  auto truncated = parseConntrackEntry(good.data(), good.size() - 4);
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().code, ErrorCode::kParse);
  // Another message type.
  auto wrong_type = good;
  nlmsghdr header{};
  std::memcpy(&header, wrong_type.data(), sizeof header);
  header.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
  std::memcpy(wrong_type.data(), &header, sizeof header);
  EXPECT_FALSE(parseConntrackEntry(wrong_type.data(), wrong_type.size()).ok());
  // No original tuple.
  std::vector<uint8_t> bare(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* bare_header = mnl_nlmsg_put_header(bare.data());
  bare_header->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
  mnl_nlmsg_put_extra_header(bare_header, sizeof(nfgenmsg));
  mnl_attr_put_u32(bare_header, CTA_STATUS, 0);
  bare.resize(bare_header->nlmsg_len);
  EXPECT_FALSE(parseConntrackEntry(bare.data(), bare.size()).ok());
  // An IPv4 address of the wrong size.
  std::vector<uint8_t> odd(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* odd_header = mnl_nlmsg_put_header(odd.data());
  odd_header->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
  mnl_nlmsg_put_extra_header(odd_header, sizeof(nfgenmsg));
  nlattr* tuple = mnl_attr_nest_start(odd_header, CTA_TUPLE_ORIG);
  nlattr* ip = mnl_attr_nest_start(odd_header, CTA_TUPLE_IP);
  mnl_attr_put_u16(odd_header, CTA_IP_V4_SRC, 1);
  mnl_attr_nest_end(odd_header, ip);
  mnl_attr_nest_end(odd_header, tuple);
  odd.resize(odd_header->nlmsg_len);
  auto odd_result = parseConntrackEntry(odd.data(), odd.size());
  ASSERT_FALSE(odd_result.ok());
  EXPECT_EQ(odd_result.error().code, ErrorCode::kParse);
}

TEST(ConntrackMessageTest, DumpRequest) {
  const auto request = buildConntrackDumpRequest(AF_INET6, 42);
  ASSERT_EQ(request.size(), MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(nfgenmsg)));
  const nlmsghdr* header = headerOf(request);
  EXPECT_EQ(header->nlmsg_type, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET);
  EXPECT_EQ(header->nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
  EXPECT_EQ(header->nlmsg_seq, 42u);
  EXPECT_EQ(static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(header))->nfgen_family, AF_INET6);
}

TEST(ConntrackMessageTest, DeleteRequestCarriesTheOriginalTupleZoneAndId) {
  const auto message = entryMessage(kOriginal, &kReply, 3, 99);
  auto entry = parseConntrackEntry(message.data(), message.size());
  ASSERT_TRUE(entry.ok()) << entry.error().message;
  auto request = buildConntrackDeleteRequest(entry.value(), 7);
  ASSERT_TRUE(request.ok()) << request.error().message;
  const nlmsghdr* header = headerOf(request.value());
  EXPECT_EQ(header->nlmsg_len, request->size());
  EXPECT_EQ(header->nlmsg_type, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE);
  EXPECT_EQ(header->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
  EXPECT_EQ(header->nlmsg_seq, 7u);
  EXPECT_EQ(static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(header))->nfgen_family, AF_INET);

  const auto attrs = topAttributes(request.value());
  ASSERT_NE(attrs[CTA_TUPLE_ORIG], nullptr);
  const auto* tuple = static_cast<const uint8_t*>(static_cast<const void*>(attrs[CTA_TUPLE_ORIG]));
  EXPECT_EQ(std::vector<uint8_t>(tuple, tuple + attrs[CTA_TUPLE_ORIG]->nla_len),
            entry->original_tuple);
  EXPECT_EQ(attrs[CTA_TUPLE_REPLY], nullptr);
  ASSERT_NE(attrs[CTA_ZONE], nullptr);
  EXPECT_EQ(ntohs(mnl_attr_get_u16(attrs[CTA_ZONE])), 3);
  ASSERT_NE(attrs[CTA_ID], nullptr);
  EXPECT_EQ(ntohl(mnl_attr_get_u32(attrs[CTA_ID])), 99u);
}

TEST(ConntrackMessageTest, DeleteRequestWithoutTupleIsRefused) {
  // It would flush the whole table.
  ConntrackEntry empty;
  empty.family = AF_INET;
  auto request = buildConntrackDeleteRequest(empty, 1);
  ASSERT_FALSE(request.ok());
  EXPECT_EQ(request.error().code, ErrorCode::kInvalidArgument);
}

// ---- the real kernel --------------------------------------------------------------------------

// Owns one socket.
class Socket {
 public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Socket& operator=(Socket&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A socket address for `address` (IPv4 or IPv6 text) and `port`.
struct Endpoint {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;

  Endpoint(const char* address, uint16_t port) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(port);
      length = sizeof(sockaddr_in);
    } else {
      EXPECT_EQ(inet_pton(AF_INET6, address, &v6->sin6_addr), 1) << address;
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(port);
      length = sizeof(sockaddr_in6);
      family = AF_INET6;
    }
  }
  sockaddr* addr() { return reinterpret_cast<sockaddr*>(&storage); }
};

Socket boundSocket(const char* address, int type) {
  Endpoint local(address, 0);
  Socket socket_fd(socket(local.family, type | SOCK_CLOEXEC, 0));
  EXPECT_GE(socket_fd.get(), 0) << std::strerror(errno);
  EXPECT_EQ(bind(socket_fd.get(), local.addr(), local.length), 0)
      << address << ": " << std::strerror(errno);
  return socket_fd;
}

uint16_t localPort(const Socket& socket_fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  EXPECT_EQ(getsockname(socket_fd.get(), reinterpret_cast<sockaddr*>(&storage), &length), 0);
  return storage.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port)
                                      : ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
}

// Open flows keep their sockets here so the entries are not torn down before the checks.
struct Flows {
  std::vector<Socket> sockets;

  // An established TCP connection from `from` to `to`.
  void tcp(const char* from, const char* to) {
    Socket listener = boundSocket(to, SOCK_STREAM);
    ASSERT_EQ(listen(listener.get(), 4), 0) << std::strerror(errno);
    Socket client = boundSocket(from, SOCK_STREAM);
    Endpoint server(to, localPort(listener));
    ASSERT_EQ(connect(client.get(), server.addr(), server.length), 0)
        << from << " -> " << to << ": " << std::strerror(errno);
    Socket accepted(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_GE(accepted.get(), 0) << std::strerror(errno);
    ASSERT_EQ(send(client.get(), "x", 1, 0), 1);
    char byte = 0;
    ASSERT_EQ(recv(accepted.get(), &byte, 1, 0), 1);
    sockets.push_back(std::move(listener));
    sockets.push_back(std::move(client));
    sockets.push_back(std::move(accepted));
  }

  // A UDP exchange from `from` to `to_bind`, sent to `to_send` (differs when DNAT rewrites it).
  void udp(const char* from, const char* to_bind, const char* to_send = nullptr) {
    Socket receiver = boundSocket(to_bind, SOCK_DGRAM);
    Socket sender = boundSocket(from, SOCK_DGRAM);
    Endpoint target(to_send != nullptr ? to_send : to_bind, localPort(receiver));
    ASSERT_EQ(sendto(sender.get(), "x", 1, 0, target.addr(), target.length), 1)
        << std::strerror(errno);
    char byte = 0;
    ASSERT_EQ(recv(receiver.get(), &byte, 1, 0), 1) << std::strerror(errno);
    sockets.push_back(std::move(receiver));
    sockets.push_back(std::move(sender));
  }
};

class NetlinkConntrackBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test_support::inPrivateNetns())
      GTEST_SKIP() << "needs root (runs in a private network namespace)";
    // A fresh namespace per test: its conntrack table starts empty and vanishes with it.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    // veth rather than dummy: dummy interfaces are not available on every test kernel. Both
    // segments' addresses are local, so flows between them go over loopback, and conntrack
    // tracks them once a ruleset in the namespace uses it.
    const auto setup = runCommand(
        "ip link set lo up && ip link add d0 type veth peer name d1 && "
        "ip addr add 10.20.0.1/24 dev d0 && ip addr add 10.30.0.1/24 dev d0 && "
        "ip -6 addr add fd00:20::1/64 dev d0 nodad && ip -6 addr add fd00:30::1/64 dev d0 nodad && "
        "ip link set d0 up && ip link set d1 up && "
        "nft 'add table inet t; add chain inet t i { type filter hook input priority 0; }; "
        "add rule inet t i ct state established accept'");
    ASSERT_EQ(setup.exit_code, 0) << setup.output;
    auto created = NetlinkConntrackBackend::create();
    ASSERT_TRUE(created.ok()) << created.error().message;
    backend_ = std::move(created.value());
  }

  size_t count(const std::vector<IpPrefix>& prefixes) {
    auto counted = backend_->count(prefixes);
    EXPECT_TRUE(counted.ok()) << counted.error().message;
    return counted.ok() ? counted.value() : 0;
  }

  std::unique_ptr<NetlinkConntrackBackend> backend_;
};

TEST_F(NetlinkConntrackBackendTest, DeletesEntriesOfTheSegmentAndKeepsOthers) {
  Flows flows;
  ASSERT_NO_FATAL_FAILURE(flows.tcp("10.20.0.1", "10.30.0.1"));
  ASSERT_NO_FATAL_FAILURE(flows.udp("10.20.0.1", "10.30.0.1"));
  ASSERT_NO_FATAL_FAILURE(flows.tcp("fd00:20::1", "fd00:30::1"));
  ASSERT_NO_FATAL_FAILURE(flows.udp("fd00:20::1", "fd00:30::1"));
  ASSERT_NO_FATAL_FAILURE(flows.tcp("127.0.0.1", "127.0.0.1"));
  ASSERT_NO_FATAL_FAILURE(flows.udp("::1", "::1"));

  const std::vector<IpPrefix> segment = {prefix("10.20.0.0/24"), prefix("fd00:20::/64")};
  const std::vector<IpPrefix> loopback = {prefix("127.0.0.0/8"), prefix("::1")};
  EXPECT_EQ(count({prefix("10.20.0.0/24")}), 2u);
  EXPECT_EQ(count({prefix("fd00:20::/64")}), 2u);
  EXPECT_EQ(count(segment), 4u);
  EXPECT_EQ(count(loopback), 2u);
  // The kernel's own view agrees (conntrack entries listed by the kernel's proc interface).
  const auto listed = runCommand("grep -c 'src=10.20.0.1' /proc/net/nf_conntrack");
  if (listed.exit_code != 2) {  // 2: no such file (kernel without the proc interface)
    EXPECT_EQ(listed.output, "2\n");
  }

  auto deleted = backend_->deleteMatching(segment);
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_EQ(deleted.value(), 4u);
  EXPECT_EQ(count(segment), 0u);
  EXPECT_EQ(count(loopback), 2u);

  // Nothing left to delete: not an error.
  auto again = backend_->deleteMatching(segment);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again.value(), 0u);
}

TEST_F(NetlinkConntrackBackendTest, MatchesTheDestinationSideToo) {
  Flows flows;
  ASSERT_NO_FATAL_FAILURE(flows.tcp("10.20.0.1", "10.30.0.1"));
  ASSERT_NO_FATAL_FAILURE(flows.udp("fd00:20::1", "fd00:30::1"));
  const std::vector<IpPrefix> destinations = {prefix("10.30.0.0/24"), prefix("fd00:30::/64")};
  EXPECT_EQ(count(destinations), 2u);
  auto deleted = backend_->deleteMatching(destinations);
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_EQ(deleted.value(), 2u);
  EXPECT_EQ(count({prefix("10.20.0.0/24"), prefix("fd00:20::/64")}), 0u);
}

TEST_F(NetlinkConntrackBackendTest, MatchesTheReplyTupleOfANattedFlow) {
  // 10.20.0.1 sends to 10.40.0.1, which DNAT turns into 10.30.0.1: only the reply tuple holds
  // 10.30.0.1, and that is enough to delete the entry.
  const auto nat = runCommand(
      "ip route add 10.40.0.0/24 dev d0 && "
      "nft 'add table ip nat; add chain ip nat out { type nat hook output priority -100; }; "
      "add rule ip nat out ip daddr 10.40.0.1 dnat to 10.30.0.1'");
  ASSERT_EQ(nat.exit_code, 0) << nat.output;
  Flows flows;
  ASSERT_NO_FATAL_FAILURE(flows.udp("10.20.0.1", "10.30.0.1", "10.40.0.1"));
  EXPECT_EQ(count({prefix("10.40.0.0/24")}), 1u);  // original destination
  EXPECT_EQ(count({prefix("10.30.0.0/24")}), 1u);  // reply source only
  auto deleted = backend_->deleteMatching({prefix("10.30.0.0/24")});
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_EQ(deleted.value(), 1u);
  EXPECT_EQ(count({prefix("10.40.0.0/24")}), 0u);
}

TEST_F(NetlinkConntrackBackendTest, EmptyPrefixListTouchesNothing) {
  Flows flows;
  ASSERT_NO_FATAL_FAILURE(flows.tcp("10.20.0.1", "10.30.0.1"));
  auto deleted = backend_->deleteMatching({});
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_EQ(deleted.value(), 0u);
  EXPECT_EQ(count({prefix("10.20.0.0/24")}), 1u);
}

}  // namespace
}  // namespace shadan::agent

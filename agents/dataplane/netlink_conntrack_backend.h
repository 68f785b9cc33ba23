#pragma once

// ConntrackBackend over ctnetlink (NETLINK_NETFILTER, NFNL_SUBSYS_CTNETLINK) with libmnl.
//
// deleteMatching() dumps the table per family (IPCTNL_MSG_CT_GET, NLM_F_DUMP; AF_INET, then
// AF_INET6), keeps the matching entries, then deletes each by its original tuple
// (IPCTNL_MSG_CT_DELETE with the dumped CTA_TUPLE_ORIG copied verbatim, CTA_ZONE and CTA_ID when
// present: the id makes sure a new flow that reused the tuple meanwhile is not the one removed).
// A delete request always carries a tuple: ctnetlink flushes the whole table on one without.
// A dump the kernel marks inconsistent (NLM_F_DUMP_INTR) is repeated, a bounded number of times.
//
// The message builders and the parser are pure functions below, unit-tested with hand-built
// messages; only the class touches the kernel.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "agents/dataplane/conntrack_backend.h"
#include "common/ip_prefix.h"
#include "common/result.h"

struct mnl_socket;

namespace shadan::agent {

// What the backend keeps of one dumped conntrack entry.
struct ConntrackEntry {
  uint8_t family = 0;  // AF_INET or AF_INET6 (nfgenmsg.nfgen_family)
  // Original source, original destination, reply source, reply destination, as host prefixes;
  // only those present in the message.
  std::vector<IpPrefix> addresses;
  // The CTA_TUPLE_ORIG attribute, header included, exactly as the kernel sent it.
  std::vector<uint8_t> original_tuple;
  std::optional<uint16_t> zone;  // CTA_ZONE, host order
  std::optional<uint32_t> id;    // CTA_ID, host order
};

// An IPCTNL_MSG_CT_GET dump request for one family.
std::vector<uint8_t> buildConntrackDumpRequest(uint8_t family, uint32_t seq);

// Parses one IPCTNL_MSG_CT_NEW message (`length` bytes at `message`; nothing past them is read).
// kParse when it is truncated, of another type, or has no readable original tuple.
Result<ConntrackEntry> parseConntrackEntry(const void* message, size_t length);

// True if any of the entry's addresses lies inside any of `prefixes`.
bool conntrackEntryMatches(const ConntrackEntry& entry, const std::vector<IpPrefix>& prefixes);

// An IPCTNL_MSG_CT_DELETE request (with NLM_F_ACK) for `entry`. kInvalidArgument if the entry
// has no original tuple: such a request would flush the whole table.
Result<std::vector<uint8_t>> buildConntrackDeleteRequest(const ConntrackEntry& entry, uint32_t seq);

class NetlinkConntrackBackend final : public ConntrackBackend {
 public:
  // Opens and binds the netlink socket (kKernel on failure; needs CAP_NET_ADMIN to delete).
  static Result<std::unique_ptr<NetlinkConntrackBackend>> create();

  NetlinkConntrackBackend(const NetlinkConntrackBackend&) = delete;
  NetlinkConntrackBackend& operator=(const NetlinkConntrackBackend&) = delete;
  ~NetlinkConntrackBackend() override;

  Result<size_t> deleteMatching(const std::vector<IpPrefix>& prefixes) override;
  Result<size_t> count(const std::vector<IpPrefix>& prefixes) override;

 private:
  struct SocketDeleter {
    void operator()(mnl_socket* socket) const;
  };
  using SocketPtr = std::unique_ptr<mnl_socket, SocketDeleter>;

  struct Dump {
    std::vector<ConntrackEntry> matching;
    bool interrupted = false;  // NLM_F_DUMP_INTR: the table changed under the dump
  };

  explicit NetlinkConntrackBackend(SocketPtr socket);

  // Matching entries of both families, dumped again while the kernel reports an inconsistent
  // dump (bounded).
  Result<Dump> dumpMatching(const std::vector<IpPrefix>& prefixes);
  Result<Dump> dumpFamily(uint8_t family, const std::vector<IpPrefix>& prefixes);
  // True if deleted, false if the entry was already gone (ENOENT).
  Result<bool> deleteEntry(const ConntrackEntry& entry);
  Status send(const std::vector<uint8_t>& request);

  SocketPtr socket_;
  uint32_t port_id_ = 0;
  uint32_t seq_ = 0;
  std::vector<uint8_t> buffer_;
};

}  // namespace shadan::agent

#pragma once

// Pure parsers for the kernel change notifications the agent's monitors read (NftMonitor,
// RouteMonitor): byte buffers in, typed events out. No sockets, so they are unit-tested with
// hand-built messages.
//
// Bounds: a buffer is trusted for exactly the number of bytes the caller passes. Every message is
// checked against the bytes remaining (mnl_nlmsg_ok), every fixed header against the message's
// own length, every attribute against its message (mnl_attr_parse) and its type's size
// (mnl_attr_validate). Nothing is read past a message's length. A message that fails these checks
// yields a `lost` event: the agent cannot tell what changed, so it re-applies everything (the
// fail-safe answer), and never crashes on it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct nlmsghdr;  // <linux/netlink.h>

namespace shadan::agent {

// ---- nf_tables (NETLINK_NETFILTER, group NFNLGRP_NFTABLES) ----

// One nf_tables transaction (batch) as seen by a listener: the kernel multicasts one message per
// changed object, then NFT_MSG_NEWGEN naming the new generation and the process that committed.
// Events are emitted on NEWGEN, or as `lost` when notifications were dropped or unreadable.
struct NftChangeEvent {
  // Notifications were dropped (ENOBUFS, truncated datagram) or could not be parsed: what changed
  // is unknown. Only `lost` is meaningful then; the other fields are zero/empty.
  bool lost = false;
  uint32_t gen_id = 0;
  // The committing process, as the kernel saw it (current task). The daemon ignores its own pid.
  uint32_t pid = 0;
  std::string comm;
  // Some object message of the batch named our table (family and name).
  bool touched_our_table = false;
  // The batch deleted our table itself (e.g. `nft flush ruleset`, `nft delete table inet shadan`).
  bool deleted_our_table = false;
  // Kinds of every object message of the batch ("newtable", "delrule", ...), each once, in the
  // order first seen; tables other than ours included (for the audit trail).
  std::vector<std::string> kinds;
};

// The table a batch is checked against.
struct NftTableRef {
  uint8_t family = 0;  // NFPROTO_* (nfgenmsg.nfgen_family)
  std::string name;
};

// NFPROTO_* value of an nft family name ("inet" -> 1, "ip" -> 2, "ip6" -> 10, "arp", "bridge",
// "netdev"); nullopt for anything else.
std::optional<uint8_t> nftFamilyNumber(std::string_view family);

// What one nf_tables notification says.
struct NftMessage {
  enum class Type {
    kObjectChange,   // NEW/DEL/DESTROY of a table, chain, rule, set, element, object, flowtable
    kNewGeneration,  // NFT_MSG_NEWGEN: end of a batch
    kIgnored,        // another subsystem, NLMSG_NOOP/DONE, a GET echo, a trace event
  };
  Type type = Type::kIgnored;
  // nfgenmsg.res_id (host order): the low 16 bits of the generation the message belongs to. The
  // kernel bumps the generation before it notifies, so every object message of a batch carries
  // the low bits of its NEWGEN's id.
  uint16_t res_id = 0;
  // kObjectChange
  std::string kind;  // "newrule", "deltable", ...
  bool is_table_delete = false;
  uint8_t family = 0;
  std::string table;  // empty if the kernel sent no table name
  // kNewGeneration
  uint32_t gen_id = 0;
  uint32_t pid = 0;
  std::string comm;
};

// Parses the netlink message at `data`; `length` is the number of bytes available there (at
// least the message's nlmsg_len). nullopt when the message is malformed.
std::optional<NftMessage> parseNftMessage(const void* data, size_t length);

// The one request builder beside the parsers: writes an nfnetlink message header (nlmsghdr +
// nfgenmsg, version NFNETLINK_V0) at `at`, which must be 4-byte aligned with room for the whole
// message, and returns it for attributes to be appended (libmnl).
// `res_id` is in host order (the subsystem for batch delimiters, else 0).
::nlmsghdr* putNfnetlinkHeader(void* at, uint16_t type, uint16_t flags, uint32_t seq,
                               uint8_t family, uint16_t res_id = 0);

// Folds nf_tables notifications into per-batch events. The state of a batch spans datagrams (and
// drain() calls) until its NEWGEN arrives.
//
// Messages are attributed to batches by their res_id (the generation's low 16 bits), not by
// arrival order alone: after an overflow the socket reports ENOBUFS *before* the datagrams still
// queued from before the overflow, so the first messages read after a loss may be the remains of
// a batch whose NEWGEN was dropped. Such remains (messages whose res_id differs from the next
// message's or NEWGEN's) are discarded rather than blamed on the next committer; they yield a
// `lost` event unless the last event emitted was already `lost`.
class NftBatchParser {
 public:
  explicit NftBatchParser(NftTableRef ours) : ours_(std::move(ours)) {}

  // Parses every message of one received datagram, appending an event per completed batch (and a
  // `lost` event for each malformed message, in sequence).
  void feed(const void* data, size_t length, std::vector<NftChangeEvent>& out);

  // Notifications were dropped: appends a `lost` event and forgets the partial batch.
  void markLost(std::vector<NftChangeEvent>& out);

 private:
  void resetBatch();
  // The partial batch will never see its NEWGEN: drop it, and report a loss unless one was
  // just reported.
  void dropOrphanedBatch(std::vector<NftChangeEvent>& out);

  NftTableRef ours_;
  std::optional<uint16_t> batch_res_id_;  // of the messages accumulated so far
  bool touched_ = false;
  bool deleted_ = false;
  std::vector<std::string> kinds_;
  bool last_event_lost_ = false;
};

// ---- rtnetlink (NETLINK_ROUTE: routes, FIB rules, links) ----

// What Shadan's own routes and rules look like (see route_backend.h). The rule priority is not
// part of it: a rule of ours at another priority (left by an older build) is still ours, exactly
// as NetlinkRouteBackend sees it; events report the priority for the audit.
struct RouteOwnership {
  uint8_t protocol = 0;  // rtm_protocol / FRA_PROTOCOL of our routes and rules
  uint32_t table = 0;    // the routing table holding our blackholes
};

// One route, FIB rule or link notification. Route notifications carry no pid of the changer
// (unlike nf_tables' NEWGEN), so there is nobody to name in the audit beyond "someone".
struct RouteChangeEvent {
  enum Kind { kRouteDeleted, kRouteAdded, kRuleDeleted, kRuleAdded, kLinkChanged };
  // Notifications were dropped or unreadable: re-sync. Only `lost` is meaningful then.
  bool lost = false;
  Kind kind = kLinkChanged;
  // Routes: our protocol tag, or in our table. Rules: our protocol tag, or `lookup` our table
  // (a foreign rule steering into our table matters as much as our own). Links: false.
  bool ours = false;
  uint8_t family = 0;     // AF_INET / AF_INET6; AF_UNSPEC for links
  std::string prefix;     // routes: destination in CIDR ("10.9.0.0/24", "::/0"); rules: source
                          // selector in CIDR, "" for `from all`
  uint32_t table = 0;     // routes and rules: the table (RTA_TABLE/FRA_TABLE over the 8-bit field)
  uint8_t protocol = 0;   // routes and rules
  uint32_t priority = 0;  // rules: FRA_PRIORITY
  std::string ifname;     // links
  uint32_t ifindex = 0;   // links
};

// Parses one rtnetlink message (`length` as for parseNftMessage). nullopt when it is malformed;
// an engaged optional holding nullopt when it is well-formed but not a kind we report (another
// message type, a family other than IPv4/IPv6).
std::optional<std::optional<RouteChangeEvent>> parseRouteMessage(const void* data, size_t length,
                                                                 const RouteOwnership& ours);

// Parses every message of one received datagram into `out`; a malformed message appends a `lost`
// event.
void parseRouteDatagram(const void* data, size_t length, const RouteOwnership& ours,
                        std::vector<RouteChangeEvent>& out);

}  // namespace shadan::agent

#include "agents/dataplane/netlink_parse.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstring>

#include "common/ip_prefix.h"

namespace shadan::agent {
namespace {

// NFT_MSG_DESTROY* (Linux 6.3+) are newer than Debian 12's uapi header. `nft destroy ...` deletes
// like DEL but without failing on absence; the kernel notifies them under their own type.
constexpr uint8_t kNftMsgDestroyTable = 26;
constexpr uint8_t kNftMsgDestroyChain = 27;
constexpr uint8_t kNftMsgDestroyRule = 28;
constexpr uint8_t kNftMsgDestroySet = 29;
constexpr uint8_t kNftMsgDestroySetElem = 30;
constexpr uint8_t kNftMsgDestroyObj = 31;
constexpr uint8_t kNftMsgDestroyFlowtable = 32;

// Every nf_tables object message carries the table name as attribute 1 (NFTA_TABLE_NAME,
// NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE, NFTA_SET_ELEM_LIST_TABLE, NFTA_OBJ_TABLE,
// NFTA_FLOWTABLE_TABLE); checked at compile time so a header change cannot slip through.
constexpr uint16_t kNftaTableOfObject = 1;
static_assert(NFTA_TABLE_NAME == kNftaTableOfObject && NFTA_CHAIN_TABLE == kNftaTableOfObject &&
              NFTA_RULE_TABLE == kNftaTableOfObject && NFTA_SET_TABLE == kNftaTableOfObject &&
              NFTA_SET_ELEM_LIST_TABLE == kNftaTableOfObject &&
              NFTA_OBJ_TABLE == kNftaTableOfObject && NFTA_FLOWTABLE_TABLE == kNftaTableOfObject);

struct NftObjectKind {
  const char* name;
  bool is_table_delete;
};

// The object-change kinds by NFT_MSG_* number; nullopt for GET*, NEWGEN, TRACE, unknown.
std::optional<NftObjectKind> nftObjectKind(uint8_t msg) {
  switch (msg) {
    case NFT_MSG_NEWTABLE:
      return NftObjectKind{"newtable", false};
    case NFT_MSG_DELTABLE:
      return NftObjectKind{"deltable", true};
    case NFT_MSG_NEWCHAIN:
      return NftObjectKind{"newchain", false};
    case NFT_MSG_DELCHAIN:
      return NftObjectKind{"delchain", false};
    case NFT_MSG_NEWRULE:
      return NftObjectKind{"newrule", false};
    case NFT_MSG_DELRULE:
      return NftObjectKind{"delrule", false};
    case NFT_MSG_NEWSET:
      return NftObjectKind{"newset", false};
    case NFT_MSG_DELSET:
      return NftObjectKind{"delset", false};
    case NFT_MSG_NEWSETELEM:
      return NftObjectKind{"newsetelem", false};
    case NFT_MSG_DELSETELEM:
      return NftObjectKind{"delsetelem", false};
    case NFT_MSG_NEWOBJ:
      return NftObjectKind{"newobj", false};
    case NFT_MSG_DELOBJ:
      return NftObjectKind{"delobj", false};
    case NFT_MSG_NEWFLOWTABLE:
      return NftObjectKind{"newflowtable", false};
    case NFT_MSG_DELFLOWTABLE:
      return NftObjectKind{"delflowtable", false};
    case kNftMsgDestroyTable:
      return NftObjectKind{"destroytable", true};
    case kNftMsgDestroyChain:
      return NftObjectKind{"destroychain", false};
    case kNftMsgDestroyRule:
      return NftObjectKind{"destroyrule", false};
    case kNftMsgDestroySet:
      return NftObjectKind{"destroyset", false};
    case kNftMsgDestroySetElem:
      return NftObjectKind{"destroysetelem", false};
    case kNftMsgDestroyObj:
      return NftObjectKind{"destroyobj", false};
    case kNftMsgDestroyFlowtable:
      return NftObjectKind{"destroyflowtable", false};
    default:
      return std::nullopt;
  }
}

// Attributes of one message, by type (the last occurrence wins), for types 1..kMaxType.
template <uint16_t kMaxType>
struct Attributes {
  std::array<const nlattr*, kMaxType + 1> by_type{};
  const nlattr* get(uint16_t type) const { return type <= kMaxType ? by_type[type] : nullptr; }
};

// A view of one netlink message that has passed mnl_nlmsg_ok against the caller's buffer.
const nlmsghdr* checkedMessage(const void* data, size_t length) {
  if (data == nullptr) return nullptr;
  // nlmsghdr needs 4-byte alignment; receive buffers and mnl-built messages have it.
  if (reinterpret_cast<uintptr_t>(data) % alignof(nlmsghdr) != 0) return nullptr;
  const auto* nlh = static_cast<const nlmsghdr*>(data);
  const int available = static_cast<int>(std::min<size_t>(length, INT_MAX));
  return mnl_nlmsg_ok(nlh, available) ? nlh : nullptr;
}

// Collects the attributes after a family header of `header_size` bytes. Unlike mnl_attr_parse,
// the end is the message's exact nlmsg_len (not its aligned length, which may lie past the
// caller's buffer), and an attribute that overruns the message is an error rather than the
// silent end of the list. Returns false for a malformed message.
template <uint16_t kMaxType>
bool collectAttributes(const nlmsghdr* nlh, size_t header_size, Attributes<kMaxType>& out) {
  const size_t attrs_offset = MNL_NLMSG_HDRLEN + MNL_ALIGN(header_size);
  if (nlh->nlmsg_len < attrs_offset) return false;
  const char* cursor = reinterpret_cast<const char*>(nlh) + attrs_offset;
  const char* end = reinterpret_cast<const char*>(nlh) + nlh->nlmsg_len;
  while (end - cursor >= static_cast<ptrdiff_t>(sizeof(nlattr))) {
    const auto* attr = reinterpret_cast<const nlattr*>(cursor);
    if (!mnl_attr_ok(attr, static_cast<int>(end - cursor))) return false;
    const uint16_t type = mnl_attr_get_type(attr);
    if (type <= kMaxType) out.by_type[type] = attr;
    // The last attribute may lack its alignment padding; the loop then ends (cursor >= end).
    cursor += MNL_ALIGN(attr->nla_len);
  }
  return true;
}

// A NUL-terminated string attribute; nullopt if it is not one.
std::optional<std::string> stringAttribute(const nlattr* attr) {
  if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0) return std::nullopt;
  const char* text = static_cast<const char*>(mnl_attr_get_payload(attr));
  return std::string(text, strnlen(text, mnl_attr_get_payload_len(attr)));
}

std::optional<uint32_t> u32Attribute(const nlattr* attr) {
  if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return std::nullopt;
  return mnl_attr_get_u32(attr);
}

std::optional<uint8_t> u8Attribute(const nlattr* attr) {
  if (mnl_attr_validate(attr, MNL_TYPE_U8) < 0) return std::nullopt;
  return mnl_attr_get_u8(attr);
}

// `length` bits of an address attribute of `family` in CIDR; nullopt if the sizes do not match.
std::optional<std::string> prefixAttribute(const nlattr* attr, uint8_t family, unsigned length) {
  const size_t size = family == AF_INET ? 4 : 16;
  const unsigned max_length = family == AF_INET ? 32 : 128;
  if (length > max_length) return std::nullopt;
  std::array<uint8_t, 16> bytes{};
  if (attr != nullptr) {
    if (mnl_attr_get_payload_len(attr) != size) return std::nullopt;
    std::memcpy(bytes.data(), mnl_attr_get_payload(attr), size);
  } else if (length != 0) {
    return std::nullopt;  // a prefix length without an address
  }
  return IpPrefix::fromBytes(family == AF_INET ? IpFamily::kV4 : IpFamily::kV6, bytes,
                             static_cast<int>(length))
      .toCidr();
}

NftChangeEvent lostEvent() {
  NftChangeEvent event;
  event.lost = true;
  return event;
}

}  // namespace

std::optional<uint8_t> nftFamilyNumber(std::string_view family) {
  if (family == "inet") return NFPROTO_INET;
  if (family == "ip") return NFPROTO_IPV4;
  if (family == "ip6") return NFPROTO_IPV6;
  if (family == "arp") return NFPROTO_ARP;
  if (family == "bridge") return NFPROTO_BRIDGE;
  if (family == "netdev") return NFPROTO_NETDEV;
  return std::nullopt;
}

std::optional<NftMessage> parseNftMessage(const void* data, size_t length) {
  const nlmsghdr* nlh = checkedMessage(data, length);
  if (nlh == nullptr) return std::nullopt;
  NftMessage message;
  if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES) return message;  // kIgnored
  const uint8_t msg = NFNL_MSG_TYPE(nlh->nlmsg_type);
  const std::optional<NftObjectKind> kind = nftObjectKind(msg);
  if (!kind && msg != NFT_MSG_NEWGEN) return message;
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(nfgenmsg)) return std::nullopt;
  nfgenmsg header{};
  std::memcpy(&header, mnl_nlmsg_get_payload(nlh), sizeof header);
  message.res_id = ntohs(header.res_id);

  if (msg == NFT_MSG_NEWGEN) {
    Attributes<NFTA_GEN_MAX> attrs;
    if (!collectAttributes(nlh, sizeof(nfgenmsg), attrs)) return std::nullopt;
    const nlattr* id = attrs.get(NFTA_GEN_ID);
    if (id == nullptr) return std::nullopt;
    const std::optional<uint32_t> gen_id = u32Attribute(id);
    if (!gen_id) return std::nullopt;
    message.type = NftMessage::Type::kNewGeneration;
    message.gen_id = ntohl(*gen_id);  // NLA_BE32, as is the pid
    // PID and NAME are absent on old kernels; zero and "" then.
    if (const nlattr* pid = attrs.get(NFTA_GEN_PROC_PID); pid != nullptr) {
      const std::optional<uint32_t> value = u32Attribute(pid);
      if (!value) return std::nullopt;
      message.pid = ntohl(*value);
    }
    if (const nlattr* name = attrs.get(NFTA_GEN_PROC_NAME); name != nullptr) {
      std::optional<std::string> value = stringAttribute(name);
      if (!value) return std::nullopt;
      message.comm = std::move(*value);
    }
    return message;
  }

  Attributes<kNftaTableOfObject> attrs;
  if (!collectAttributes(nlh, sizeof(nfgenmsg), attrs)) return std::nullopt;
  message.type = NftMessage::Type::kObjectChange;
  message.kind = kind->name;
  message.is_table_delete = kind->is_table_delete;
  message.family = header.nfgen_family;
  if (const nlattr* table = attrs.get(kNftaTableOfObject); table != nullptr) {
    std::optional<std::string> name = stringAttribute(table);
    if (!name) return std::nullopt;
    message.table = std::move(*name);
  }
  return message;
}

void NftBatchParser::feed(const void* data, size_t length, std::vector<NftChangeEvent>& out) {
  const auto* cursor = static_cast<const char*>(data);
  size_t remaining = length;
  while (remaining > 0) {
    const nlmsghdr* nlh = checkedMessage(cursor, remaining);
    std::optional<NftMessage> message =
        nlh != nullptr ? parseNftMessage(nlh, remaining) : std::nullopt;
    if (!message) {
      // The rest of the datagram cannot be delimited either.
      out.push_back(lostEvent());
      last_event_lost_ = true;
      return;
    }
    switch (message->type) {
      case NftMessage::Type::kObjectChange: {
        if (batch_res_id_ && *batch_res_id_ != message->res_id) dropOrphanedBatch(out);
        batch_res_id_ = message->res_id;
        if (std::find(kinds_.begin(), kinds_.end(), message->kind) == kinds_.end()) {
          kinds_.push_back(message->kind);
        }
        // A message without a table name cannot be ruled out as ours.
        const bool ours = message->family == ours_.family &&
                          (message->table.empty() || message->table == ours_.name);
        touched_ = touched_ || ours;
        deleted_ = deleted_ || (ours && message->is_table_delete);
        break;
      }
      case NftMessage::Type::kNewGeneration: {
        if (batch_res_id_ && *batch_res_id_ != static_cast<uint16_t>(message->gen_id & 0xffff)) {
          dropOrphanedBatch(out);
        }
        NftChangeEvent event;
        event.gen_id = message->gen_id;
        event.pid = message->pid;
        event.comm = std::move(message->comm);
        event.touched_our_table = touched_;
        event.deleted_our_table = deleted_;
        event.kinds = std::move(kinds_);
        out.push_back(std::move(event));
        last_event_lost_ = false;
        resetBatch();
        break;
      }
      case NftMessage::Type::kIgnored:
        break;
    }
    const size_t step = std::min<size_t>(MNL_ALIGN(nlh->nlmsg_len), remaining);
    cursor += step;
    remaining -= step;
  }
}

void NftBatchParser::markLost(std::vector<NftChangeEvent>& out) {
  out.push_back(lostEvent());
  last_event_lost_ = true;
  resetBatch();
}

void NftBatchParser::dropOrphanedBatch(std::vector<NftChangeEvent>& out) {
  if (!last_event_lost_) out.push_back(lostEvent());
  last_event_lost_ = true;
  resetBatch();
}

void NftBatchParser::resetBatch() {
  batch_res_id_.reset();
  touched_ = false;
  deleted_ = false;
  kinds_.clear();
}

std::optional<std::optional<RouteChangeEvent>> parseRouteMessage(const void* data, size_t length,
                                                                 const RouteOwnership& ours) {
  const nlmsghdr* nlh = checkedMessage(data, length);
  if (nlh == nullptr) return std::nullopt;
  const size_t payload = mnl_nlmsg_get_payload_len(nlh);
  RouteChangeEvent event;
  switch (nlh->nlmsg_type) {
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
      if (payload < sizeof(rtmsg)) return std::nullopt;
      rtmsg header{};
      std::memcpy(&header, mnl_nlmsg_get_payload(nlh), sizeof header);
      if (header.rtm_family != AF_INET && header.rtm_family != AF_INET6) {
        return std::optional<RouteChangeEvent>{};  // multicast (RTNL_FAMILY_IPMR), MPLS, ...
      }
      Attributes<RTA_MAX> attrs;
      if (!collectAttributes(nlh, sizeof(rtmsg), attrs)) return std::nullopt;
      std::optional<std::string> prefix =
          prefixAttribute(attrs.get(RTA_DST), header.rtm_family, header.rtm_dst_len);
      if (!prefix) return std::nullopt;
      event.table = header.rtm_table;
      if (const nlattr* table = attrs.get(RTA_TABLE); table != nullptr) {
        const std::optional<uint32_t> value = u32Attribute(table);
        if (!value) return std::nullopt;
        event.table = *value;  // authoritative: rtm_table says RT_TABLE_COMPAT above 255
      }
      event.kind = nlh->nlmsg_type == RTM_NEWROUTE ? RouteChangeEvent::kRouteAdded
                                                   : RouteChangeEvent::kRouteDeleted;
      event.family = header.rtm_family;
      event.prefix = std::move(*prefix);
      event.protocol = header.rtm_protocol;
      event.ours = event.protocol == ours.protocol || event.table == ours.table;
      return std::optional<RouteChangeEvent>{std::move(event)};
    }
    case RTM_NEWRULE:
    case RTM_DELRULE: {
      if (payload < sizeof(fib_rule_hdr)) return std::nullopt;
      fib_rule_hdr header{};
      std::memcpy(&header, mnl_nlmsg_get_payload(nlh), sizeof header);
      if (header.family != AF_INET && header.family != AF_INET6) {
        return std::optional<RouteChangeEvent>{};
      }
      Attributes<FRA_MAX> attrs;
      if (!collectAttributes(nlh, sizeof(fib_rule_hdr), attrs)) return std::nullopt;
      if (header.src_len != 0 || attrs.get(FRA_SRC) != nullptr) {
        std::optional<std::string> source =
            prefixAttribute(attrs.get(FRA_SRC), header.family, header.src_len);
        if (!source) return std::nullopt;
        event.prefix = std::move(*source);
      }
      event.table = header.table;
      if (const nlattr* table = attrs.get(FRA_TABLE); table != nullptr) {
        const std::optional<uint32_t> value = u32Attribute(table);
        if (!value) return std::nullopt;
        event.table = *value;
      }
      if (const nlattr* priority = attrs.get(FRA_PRIORITY); priority != nullptr) {
        const std::optional<uint32_t> value = u32Attribute(priority);
        if (!value) return std::nullopt;
        event.priority = *value;
      }
      if (const nlattr* protocol = attrs.get(FRA_PROTOCOL); protocol != nullptr) {
        const std::optional<uint8_t> value = u8Attribute(protocol);
        if (!value) return std::nullopt;
        event.protocol = *value;
      }
      event.kind = nlh->nlmsg_type == RTM_NEWRULE ? RouteChangeEvent::kRuleAdded
                                                  : RouteChangeEvent::kRuleDeleted;
      event.family = header.family;
      event.ours = event.protocol == ours.protocol || event.table == ours.table;
      return std::optional<RouteChangeEvent>{std::move(event)};
    }
    case RTM_NEWLINK:
    case RTM_DELLINK: {
      if (payload < sizeof(ifinfomsg)) return std::nullopt;
      ifinfomsg header{};
      std::memcpy(&header, mnl_nlmsg_get_payload(nlh), sizeof header);
      Attributes<IFLA_IFNAME> attrs;
      if (!collectAttributes(nlh, sizeof(ifinfomsg), attrs)) return std::nullopt;
      if (const nlattr* name = attrs.get(IFLA_IFNAME); name != nullptr) {
        std::optional<std::string> value = stringAttribute(name);
        if (!value) return std::nullopt;
        event.ifname = std::move(*value);
      }
      event.kind = RouteChangeEvent::kLinkChanged;
      event.family = AF_UNSPEC;
      event.ifindex = static_cast<uint32_t>(header.ifi_index);
      return std::optional<RouteChangeEvent>{std::move(event)};
    }
    default:
      return std::optional<RouteChangeEvent>{};
  }
}

void parseRouteDatagram(const void* data, size_t length, const RouteOwnership& ours,
                        std::vector<RouteChangeEvent>& out) {
  const auto* cursor = static_cast<const char*>(data);
  size_t remaining = length;
  while (remaining > 0) {
    const nlmsghdr* nlh = checkedMessage(cursor, remaining);
    std::optional<std::optional<RouteChangeEvent>> parsed =
        nlh != nullptr ? parseRouteMessage(nlh, remaining, ours)
                       : std::optional<std::optional<RouteChangeEvent>>{};
    if (!parsed) {
      RouteChangeEvent lost;
      lost.lost = true;
      out.push_back(std::move(lost));
      return;  // the rest of the datagram cannot be delimited either
    }
    if (*parsed) out.push_back(std::move(**parsed));
    const size_t step = std::min<size_t>(MNL_ALIGN(nlh->nlmsg_len), remaining);
    cursor += step;
    remaining -= step;
  }
}

nlmsghdr* putNfnetlinkHeader(void* at, uint16_t type, uint16_t flags, uint32_t seq, uint8_t family,
                             uint16_t res_id) {
  nlmsghdr* header = mnl_nlmsg_put_header(at);
  header->nlmsg_type = type;
  header->nlmsg_flags = flags;
  header->nlmsg_seq = seq;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(nfgenmsg)));
  nfg->nfgen_family = family;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = htons(res_id);
  return header;
}

}  // namespace shadan::agent

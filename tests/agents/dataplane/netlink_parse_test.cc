// Unit tests of the monitors' pure netlink parsers, over messages built by hand with libmnl the
// way the kernel lays them out. No root, no sockets.

#include "agents/dataplane/netlink_parse.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace shadan::agent {
namespace {

constexpr uint8_t kInet = NFPROTO_INET;
constexpr uint8_t kIp = NFPROTO_IPV4;

// One datagram of netlink messages laid out back to back, as the kernel sends them.
class Datagram {
 public:
  // Object messages carry `generation`'s low bits as res_id, as the kernel's do.
  explicit Datagram(uint32_t generation = 1) : storage_(16384, 0), generation_(generation) {}

  // The generation of the object messages put from now on.
  void gen(uint32_t generation) { generation_ = generation; }

  // Starts a new message at the end of the datagram.
  nlmsghdr* put(uint16_t type) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(bytes() + size_);
    nlh->nlmsg_type = type;
    last_ = nlh;
    return nlh;
  }

  // An nf_tables message with its nfgenmsg header.
  nlmsghdr* putNft(uint8_t msg, uint8_t family) {
    nlmsghdr* nlh = put(static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg));
    auto* header = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
    header->nfgen_family = family;
    header->version = NFNETLINK_V0;
    header->res_id = htons(static_cast<uint16_t>(generation_ & 0xffff));
    return nlh;
  }

  // An object notification as the kernel sends it: the table name (attribute 1) and a second
  // attribute of the object (a name or handle).
  void object(uint8_t msg, uint8_t family, const char* table) {
    nlmsghdr* nlh = putNft(msg, family);
    mnl_attr_put_strz(nlh, 1, table);
    mnl_attr_put_strz(nlh, 2, "input");
    close();
  }

  void newGen(uint32_t gen_id, uint32_t pid, const char* comm) {
    generation_ = gen_id;
    nlmsghdr* nlh = putNft(NFT_MSG_NEWGEN, AF_UNSPEC);
    mnl_attr_put_u32(nlh, NFTA_GEN_ID, htonl(gen_id));
    mnl_attr_put_u32(nlh, NFTA_GEN_PROC_PID, htonl(pid));
    mnl_attr_put_strz(nlh, NFTA_GEN_PROC_NAME, comm);
    close();
  }

  // Commits the last message started with put*() to the datagram.
  void close() {
    size_ += MNL_ALIGN(last_->nlmsg_len);
    last_ = nullptr;
  }

  const void* data() const { return storage_.data(); }
  char* bytes() { return reinterpret_cast<char*>(storage_.data()); }
  size_t size() const { return size_; }
  nlmsghdr* last() { return last_; }

 private:
  std::vector<uint32_t> storage_;
  uint32_t generation_;
  size_t size_ = 0;
  nlmsghdr* last_ = nullptr;
};

// Two pages, the second inaccessible: a message copied to end exactly at the boundary makes any
// read past its end fault, so "never reads past the length" is checked, not assumed.
class GuardedBuffer {
 public:
  GuardedBuffer() {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* mapped =
        mmap(nullptr, 2 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) return;
    base_ = static_cast<char*>(mapped);
    if (mprotect(base_ + page_, page_, PROT_NONE) != 0) {
      munmap(base_, 2 * page_);
      base_ = nullptr;
    }
  }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
  ~GuardedBuffer() {
    if (base_ != nullptr) munmap(base_, 2 * page_);
  }

  bool ok() const { return base_ != nullptr; }

  // Copies `length` bytes (a multiple of 4) to end at the guard page; returns where they start.
  const void* place(const void* data, size_t length) {
    char* start = base_ + page_ - length;
    std::memcpy(start, data, length);
    return start;
  }

 private:
  size_t page_ = 0;
  char* base_ = nullptr;
};

class NetlinkParseTest : public ::testing::Test {
 protected:
  std::vector<NftChangeEvent> feed(const Datagram& datagram) {
    std::vector<NftChangeEvent> out;
    parser_.feed(datagram.data(), datagram.size(), out);
    return out;
  }

  NftBatchParser parser_{NftTableRef{kInet, "shadan"}};
};

TEST_F(NetlinkParseTest, FamilyNamesMapToNfproto) {
  EXPECT_EQ(nftFamilyNumber("inet"), std::optional<uint8_t>(1));
  EXPECT_EQ(nftFamilyNumber("ip"), std::optional<uint8_t>(2));
  EXPECT_EQ(nftFamilyNumber("ip6"), std::optional<uint8_t>(10));
  EXPECT_EQ(nftFamilyNumber("bridge"), std::optional<uint8_t>(7));
  EXPECT_EQ(nftFamilyNumber("arp"), std::optional<uint8_t>(3));
  EXPECT_EQ(nftFamilyNumber("netdev"), std::optional<uint8_t>(5));
  EXPECT_EQ(nftFamilyNumber("inet6"), std::nullopt);
  EXPECT_EQ(nftFamilyNumber(""), std::nullopt);
}

TEST_F(NetlinkParseTest, ParsesEveryObjectKind) {
  struct Case {
    uint8_t msg;
    const char* kind;
    bool table_delete;
  };
  const Case cases[] = {
      {NFT_MSG_NEWTABLE, "newtable", false},
      {NFT_MSG_DELTABLE, "deltable", true},
      {NFT_MSG_NEWCHAIN, "newchain", false},
      {NFT_MSG_DELCHAIN, "delchain", false},
      {NFT_MSG_NEWRULE, "newrule", false},
      {NFT_MSG_DELRULE, "delrule", false},
      {NFT_MSG_NEWSET, "newset", false},
      {NFT_MSG_DELSET, "delset", false},
      {NFT_MSG_NEWSETELEM, "newsetelem", false},
      {NFT_MSG_DELSETELEM, "delsetelem", false},
      {NFT_MSG_NEWOBJ, "newobj", false},
      {NFT_MSG_DELOBJ, "delobj", false},
      {NFT_MSG_NEWFLOWTABLE, "newflowtable", false},
      {NFT_MSG_DELFLOWTABLE, "delflowtable", false},
      // NFT_MSG_DESTROY* (Linux 6.3+), not in this uapi header.
      {26, "destroytable", true},
      {27, "destroychain", false},
      {28, "destroyrule", false},
      {29, "destroyset", false},
      {30, "destroysetelem", false},
      {31, "destroyobj", false},
      {32, "destroyflowtable", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.kind);
    Datagram datagram;
    datagram.object(c.msg, kIp, "filter");
    const std::optional<NftMessage> message = parseNftMessage(datagram.data(), datagram.size());
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->type, NftMessage::Type::kObjectChange);
    EXPECT_EQ(message->kind, c.kind);
    EXPECT_EQ(message->is_table_delete, c.table_delete);
    EXPECT_EQ(message->family, kIp);
    EXPECT_EQ(message->table, "filter");
  }
}

TEST_F(NetlinkParseTest, ParsesNewGeneration) {
  Datagram datagram;
  datagram.newGen(0x01020304, 4242, "nft");
  const std::optional<NftMessage> message = parseNftMessage(datagram.data(), datagram.size());
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->type, NftMessage::Type::kNewGeneration);
  EXPECT_EQ(message->gen_id, 0x01020304u);  // network order on the wire
  EXPECT_EQ(message->pid, 4242u);
  EXPECT_EQ(message->comm, "nft");
  EXPECT_EQ(message->res_id, 0x0304);
}

TEST_F(NetlinkParseTest, NewGenerationWithoutProcessIsAccepted) {
  // Kernels before 4.x sent the id only.
  Datagram datagram;
  nlmsghdr* nlh = datagram.putNft(NFT_MSG_NEWGEN, AF_UNSPEC);
  mnl_attr_put_u32(nlh, NFTA_GEN_ID, htonl(7));
  datagram.close();
  const std::optional<NftMessage> message = parseNftMessage(datagram.data(), datagram.size());
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->gen_id, 7u);
  EXPECT_EQ(message->pid, 0u);
  EXPECT_EQ(message->comm, "");
}

TEST_F(NetlinkParseTest, BatchOfSeveralObjectsThenNewGenIsOneEvent) {
  Datagram datagram(12);
  datagram.object(NFT_MSG_NEWTABLE, kInet, "shadan");
  datagram.object(NFT_MSG_NEWCHAIN, kInet, "shadan");
  datagram.object(NFT_MSG_NEWRULE, kInet, "shadan");
  datagram.object(NFT_MSG_NEWRULE, kInet, "shadan");
  datagram.object(NFT_MSG_NEWSET, kInet, "shadan");
  datagram.object(NFT_MSG_NEWSETELEM, kInet, "shadan");
  datagram.newGen(12, 999, "shadan-agent");

  const std::vector<NftChangeEvent> events = feed(datagram);
  ASSERT_EQ(events.size(), 1u);
  const NftChangeEvent& event = events[0];
  EXPECT_FALSE(event.lost);
  EXPECT_EQ(event.gen_id, 12u);
  EXPECT_EQ(event.pid, 999u);
  EXPECT_EQ(event.comm, "shadan-agent");
  EXPECT_TRUE(event.touched_our_table);
  EXPECT_FALSE(event.deleted_our_table);
  EXPECT_EQ(event.kinds,
            (std::vector<std::string>{"newtable", "newchain", "newrule", "newset", "newsetelem"}));
}

TEST_F(NetlinkParseTest, BatchTouchingOtherTablesOnlyIsNotOurs) {
  Datagram datagram(13);
  datagram.object(NFT_MSG_NEWTABLE, kInet, "other");
  datagram.object(NFT_MSG_DELRULE, kInet, "shadan2");
  // Same name, other family: another table.
  datagram.object(NFT_MSG_DELTABLE, kIp, "shadan");
  datagram.newGen(13, 1, "iptables-nft");

  const std::vector<NftChangeEvent> events = feed(datagram);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].touched_our_table);
  EXPECT_FALSE(events[0].deleted_our_table);
  EXPECT_EQ(events[0].kinds, (std::vector<std::string>{"newtable", "delrule", "deltable"}));
}

TEST_F(NetlinkParseTest, FlushRulesetDeletesOurTable) {
  Datagram datagram(14);
  datagram.object(NFT_MSG_DELRULE, kInet, "shadan");
  datagram.object(NFT_MSG_DELCHAIN, kInet, "shadan");
  datagram.object(NFT_MSG_DELSET, kInet, "shadan");
  datagram.object(NFT_MSG_DELTABLE, kInet, "shadan");
  datagram.object(NFT_MSG_DELTABLE, kIp, "filter");
  datagram.newGen(14, 77, "nft");

  const std::vector<NftChangeEvent> events = feed(datagram);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].touched_our_table);
  EXPECT_TRUE(events[0].deleted_our_table);
  EXPECT_EQ(events[0].kinds,
            (std::vector<std::string>{"delrule", "delchain", "delset", "deltable"}));
}

TEST_F(NetlinkParseTest, DestroyTableOfOursCountsAsDeleted) {
  Datagram datagram(15);
  datagram.object(26, kInet, "shadan");  // NFT_MSG_DESTROYTABLE
  datagram.newGen(15, 77, "nft");
  const std::vector<NftChangeEvent> events = feed(datagram);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].deleted_our_table);
}

TEST_F(NetlinkParseTest, DeletingAChainOfOursIsNotDeletingTheTable) {
  Datagram datagram(16);
  datagram.object(NFT_MSG_DELCHAIN, kInet, "shadan");
  datagram.newGen(16, 77, "nft");
  const std::vector<NftChangeEvent> events = feed(datagram);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].touched_our_table);
  EXPECT_FALSE(events[0].deleted_our_table);
}

TEST_F(NetlinkParseTest, ObjectWithoutTableNameInOurFamilyCountsAsOurs) {
  Datagram datagram(17);
  datagram.putNft(NFT_MSG_DELRULE, kInet);
  datagram.close();
  datagram.newGen(17, 1, "x");
  const std::vector<NftChangeEvent> events = feed(datagram);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].touched_our_table);
}

TEST_F(NetlinkParseTest, BatchSpanningDatagramsIsOneEventAndStateResetsAfterIt) {
  Datagram first(20);
  first.object(NFT_MSG_DELRULE, kInet, "shadan");
  Datagram second(20);
  second.object(NFT_MSG_NEWRULE, kInet, "other");
  Datagram third;
  third.newGen(20, 5, "nft");
  EXPECT_TRUE(feed(first).empty());
  EXPECT_TRUE(feed(second).empty());
  std::vector<NftChangeEvent> events = feed(third);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].touched_our_table);
  EXPECT_EQ(events[0].kinds, (std::vector<std::string>{"delrule", "newrule"}));

  // The next batch starts clean.
  Datagram next(21);
  next.object(NFT_MSG_NEWRULE, kInet, "other");
  next.newGen(21, 5, "nft");
  events = feed(next);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].touched_our_table);
  EXPECT_EQ(events[0].kinds, (std::vector<std::string>{"newrule"}));
}

TEST_F(NetlinkParseTest, SeveralBatchesInOneDatagramAreSeveralEvents) {
  Datagram datagram(30);
  datagram.object(NFT_MSG_NEWRULE, kInet, "other");
  datagram.newGen(30, 1, "a");
  datagram.gen(31);
  datagram.object(NFT_MSG_DELTABLE, kInet, "shadan");
  datagram.newGen(31, 2, "b");
  const std::vector<NftChangeEvent> events = feed(datagram);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].gen_id, 30u);
  EXPECT_FALSE(events[0].touched_our_table);
  EXPECT_EQ(events[1].gen_id, 31u);
  EXPECT_TRUE(events[1].deleted_our_table);
  EXPECT_EQ(events[1].comm, "b");
}

TEST_F(NetlinkParseTest, LossEmitsLostEventAndForgetsPartialBatch) {
  Datagram before;
  before.object(NFT_MSG_DELTABLE, kInet, "shadan");
  EXPECT_TRUE(feed(before).empty());
  std::vector<NftChangeEvent> events;
  parser_.markLost(events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].lost);

  Datagram after;
  after.newGen(40, 1, "nft");
  events = feed(after);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].lost);
  EXPECT_FALSE(events[0].touched_our_table);
  EXPECT_TRUE(events[0].kinds.empty());
}

TEST_F(NetlinkParseTest, RemainsOfABatchWhoseNewGenWasLostAreNotBlamedOnTheNext) {
  // ENOBUFS is reported before the datagrams queued ahead of the overflow: the remains of batch
  // 5 (its NEWGEN dropped) are read after the lost event.
  std::vector<NftChangeEvent> events;
  parser_.markLost(events);
  Datagram remains(5);
  remains.object(NFT_MSG_DELTABLE, kInet, "shadan");
  parser_.feed(remains.data(), remains.size(), events);
  Datagram next(6);
  next.object(NFT_MSG_NEWTABLE, kInet, "other");
  next.newGen(6, 66, "nft");
  parser_.feed(next.data(), next.size(), events);

  ASSERT_EQ(events.size(), 2u);  // one lost event, not two
  EXPECT_TRUE(events[0].lost);
  EXPECT_FALSE(events[1].lost);
  EXPECT_EQ(events[1].gen_id, 6u);
  EXPECT_FALSE(events[1].touched_our_table);
  EXPECT_EQ(events[1].kinds, std::vector<std::string>{"newtable"});
}

TEST_F(NetlinkParseTest, BatchWithoutNewGenIsReportedLost) {
  // No ENOBUFS seen, yet batch 5 ends without its NEWGEN: something was lost.
  Datagram datagram(5);
  datagram.object(NFT_MSG_DELTABLE, kInet, "shadan");
  datagram.gen(6);
  datagram.object(NFT_MSG_NEWRULE, kInet, "other");
  datagram.newGen(6, 66, "nft");
  const std::vector<NftChangeEvent> events = feed(datagram);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].lost);
  EXPECT_FALSE(events[1].touched_our_table);
  EXPECT_EQ(events[1].kinds, std::vector<std::string>{"newrule"});
}

TEST_F(NetlinkParseTest, NewGenOfAnotherGenerationDropsTheRemains) {
  Datagram datagram(5);
  datagram.object(NFT_MSG_DELTABLE, kInet, "shadan");
  datagram.newGen(7, 66, "nft");
  const std::vector<NftChangeEvent> events = feed(datagram);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].lost);
  EXPECT_EQ(events[1].gen_id, 7u);
  EXPECT_FALSE(events[1].touched_our_table);
  EXPECT_TRUE(events[1].kinds.empty());
}

TEST_F(NetlinkParseTest, GenerationLowBitsWrapAt16Bits) {
  Datagram datagram(0x12345);
  datagram.object(NFT_MSG_NEWRULE, kInet, "shadan");
  datagram.newGen(0x12345, 1, "nft");
  const std::vector<NftChangeEvent> events = feed(datagram);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].touched_our_table);
  EXPECT_EQ(events[0].gen_id, 0x12345u);
}

TEST_F(NetlinkParseTest, IgnoresOtherSubsystemsAndNonChangeMessages) {
  Datagram datagram;
  datagram.put(NLMSG_NOOP);
  datagram.close();
  // A conntrack message: another nfnetlink subsystem.
  nlmsghdr* ct = datagram.put(static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | 0));
  mnl_nlmsg_put_extra_header(ct, sizeof(nfgenmsg));
  datagram.close();
  datagram.putNft(NFT_MSG_GETTABLE, kInet);
  datagram.close();
  datagram.putNft(NFT_MSG_TRACE, kInet);
  datagram.close();
  EXPECT_TRUE(feed(datagram).empty());

  const std::optional<NftMessage> noop = parseNftMessage(datagram.data(), datagram.size());
  ASSERT_TRUE(noop.has_value());
  EXPECT_EQ(noop->type, NftMessage::Type::kIgnored);
}

TEST_F(NetlinkParseTest, MalformedNftMessagesAreRejected) {
  {
    SCOPED_TRACE("fewer bytes than the header");
    Datagram datagram;
    datagram.object(NFT_MSG_NEWRULE, kInet, "shadan");
    EXPECT_EQ(parseNftMessage(datagram.data(), 8), std::nullopt);
  }
  {
    SCOPED_TRACE("fewer bytes than nlmsg_len");
    Datagram datagram;
    datagram.object(NFT_MSG_NEWRULE, kInet, "shadan");
    EXPECT_EQ(parseNftMessage(datagram.data(), datagram.size() - 4), std::nullopt);
  }
  {
    SCOPED_TRACE("nlmsg_len below the header size");
    Datagram datagram;
    datagram.object(NFT_MSG_NEWRULE, kInet, "shadan");
    reinterpret_cast<nlmsghdr*>(datagram.bytes())->nlmsg_len = 8;
    EXPECT_EQ(parseNftMessage(datagram.data(), datagram.size()), std::nullopt);
  }
  {
    SCOPED_TRACE("no nfgenmsg");
    Datagram datagram;
    datagram.put(static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE));
    datagram.close();
    EXPECT_EQ(parseNftMessage(datagram.data(), datagram.size()), std::nullopt);
  }
  {
    SCOPED_TRACE("table name without NUL");
    Datagram datagram;
    nlmsghdr* nlh = datagram.putNft(NFT_MSG_NEWRULE, kInet);
    mnl_attr_put(nlh, 1, 6, "shadan");
    datagram.close();
    EXPECT_EQ(parseNftMessage(datagram.data(), datagram.size()), std::nullopt);
  }
  {
    SCOPED_TRACE("NEWGEN without id");
    Datagram datagram;
    nlmsghdr* nlh = datagram.putNft(NFT_MSG_NEWGEN, AF_UNSPEC);
    mnl_attr_put_strz(nlh, NFTA_GEN_PROC_NAME, "nft");
    datagram.close();
    EXPECT_EQ(parseNftMessage(datagram.data(), datagram.size()), std::nullopt);
  }
  {
    SCOPED_TRACE("NEWGEN id of two bytes");
    Datagram datagram;
    nlmsghdr* nlh = datagram.putNft(NFT_MSG_NEWGEN, AF_UNSPEC);
    mnl_attr_put_u16(nlh, NFTA_GEN_ID, 1);
    datagram.close();
    EXPECT_EQ(parseNftMessage(datagram.data(), datagram.size()), std::nullopt);
  }
  {
    SCOPED_TRACE("attribute longer than its message");
    Datagram datagram;
    datagram.object(NFT_MSG_NEWRULE, kInet, "shadan");
    auto* attr = reinterpret_cast<nlattr*>(datagram.bytes() + MNL_NLMSG_HDRLEN +
                                           MNL_ALIGN(sizeof(nfgenmsg)));
    attr->nla_len = 200;
    EXPECT_EQ(parseNftMessage(datagram.data(), datagram.size()), std::nullopt);
  }
  {
    SCOPED_TRACE("misaligned buffer");
    Datagram datagram;
    datagram.object(NFT_MSG_NEWRULE, kInet, "shadan");
    std::vector<char> copy(datagram.size() + 1);
    std::memcpy(copy.data() + 1, datagram.data(), datagram.size());
    EXPECT_EQ(parseNftMessage(copy.data() + 1, datagram.size()), std::nullopt);
  }
  EXPECT_EQ(parseNftMessage(nullptr, 100), std::nullopt);
}

TEST_F(NetlinkParseTest, MalformedMessageInBatchYieldsLostAfterTheGoodOnes) {
  Datagram datagram(50);
  datagram.object(NFT_MSG_NEWRULE, kInet, "other");
  datagram.newGen(50, 1, "nft");
  datagram.object(NFT_MSG_NEWRULE, kInet, "shadan");
  // Truncate the last message: the datagram claims more than it holds.
  const std::vector<NftChangeEvent> events = [&] {
    std::vector<NftChangeEvent> out;
    parser_.feed(datagram.data(), datagram.size() - 8, out);
    return out;
  }();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].gen_id, 50u);
  EXPECT_FALSE(events[0].lost);
  EXPECT_TRUE(events[1].lost);

  // Garbage shorter than a header.
  std::vector<NftChangeEvent> garbage;
  const uint32_t three_bytes[1] = {0xffffffff};
  parser_.feed(three_bytes, 3, garbage);
  ASSERT_EQ(garbage.size(), 1u);
  EXPECT_TRUE(garbage[0].lost);
}

TEST_F(NetlinkParseTest, NeverReadsPastTheGivenLength) {
  GuardedBuffer guarded;
  ASSERT_TRUE(guarded.ok());
  {
    SCOPED_TRACE("attribute claims bytes beyond the message, which ends at the guard page");
    Datagram datagram;
    datagram.object(NFT_MSG_NEWRULE, kInet, "shadan");
    auto* attr = reinterpret_cast<nlattr*>(datagram.bytes() + MNL_NLMSG_HDRLEN +
                                           MNL_ALIGN(sizeof(nfgenmsg)));
    attr->nla_len = 4000;
    const void* placed = guarded.place(datagram.data(), datagram.size());
    EXPECT_EQ(parseNftMessage(placed, datagram.size()), std::nullopt);
    std::vector<NftChangeEvent> out;
    parser_.feed(placed, datagram.size(), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].lost);
  }
  {
    SCOPED_TRACE("nlmsg_len claims bytes beyond the buffer");
    Datagram datagram;
    datagram.object(NFT_MSG_NEWRULE, kInet, "shadan");
    reinterpret_cast<nlmsghdr*>(datagram.bytes())->nlmsg_len = 3000;
    const void* placed = guarded.place(datagram.data(), datagram.size());
    EXPECT_EQ(parseNftMessage(placed, datagram.size()), std::nullopt);
  }
  {
    SCOPED_TRACE("route with an RTA_DST running into the guard page");
    Datagram datagram;
    nlmsghdr* nlh = datagram.put(RTM_NEWROUTE);
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rtm->rtm_family = AF_INET;
    rtm->rtm_dst_len = 24;
    const uint32_t dst = htonl(0x0a090000);
    mnl_attr_put(nlh, RTA_DST, sizeof dst, &dst);
    datagram.close();
    auto* attr =
        reinterpret_cast<nlattr*>(datagram.bytes() + MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(rtmsg)));
    attr->nla_len = 64;
    const void* placed = guarded.place(datagram.data(), datagram.size());
    EXPECT_EQ(parseRouteMessage(placed, datagram.size(), RouteOwnership{83, 21320}), std::nullopt);
  }
  {
    SCOPED_TRACE("a well-formed message ending at the guard page parses");
    Datagram datagram;
    datagram.object(NFT_MSG_DELTABLE, kInet, "shadan");
    const void* placed = guarded.place(datagram.data(), datagram.size());
    const std::optional<NftMessage> message = parseNftMessage(placed, datagram.size());
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->table, "shadan");
  }
}

// ---- rtnetlink ----

const RouteOwnership kOurs{83, 21320};

class RouteParseTest : public ::testing::Test {
 protected:
  static nlmsghdr* putRoute(Datagram& datagram, uint16_t type, uint8_t family,
                            const std::vector<uint8_t>& dst, uint8_t dst_len, uint8_t protocol,
                            uint32_t table) {
    nlmsghdr* nlh = datagram.put(type);
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rtm->rtm_family = family;
    rtm->rtm_dst_len = dst_len;
    rtm->rtm_protocol = protocol;
    rtm->rtm_type = RTN_BLACKHOLE;
    rtm->rtm_table =
        table < 256 ? static_cast<uint8_t>(table) : static_cast<uint8_t>(RT_TABLE_COMPAT);
    mnl_attr_put_u32(nlh, RTA_TABLE, table);
    if (!dst.empty()) mnl_attr_put(nlh, RTA_DST, dst.size(), dst.data());
    return nlh;
  }

  static nlmsghdr* putRule(Datagram& datagram, uint16_t type, uint8_t family, uint32_t priority,
                           uint32_t table, std::optional<uint8_t> protocol) {
    nlmsghdr* nlh = datagram.put(type);
    auto* frh = static_cast<fib_rule_hdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(fib_rule_hdr)));
    frh->family = family;
    frh->action = FR_ACT_TO_TBL;
    frh->table = table < 256 ? static_cast<uint8_t>(table) : static_cast<uint8_t>(RT_TABLE_UNSPEC);
    mnl_attr_put_u32(nlh, FRA_TABLE, table);
    mnl_attr_put_u32(nlh, FRA_PRIORITY, priority);
    if (protocol) mnl_attr_put_u8(nlh, FRA_PROTOCOL, *protocol);
    return nlh;
  }

  static std::vector<RouteChangeEvent> parse(const Datagram& datagram) {
    std::vector<RouteChangeEvent> out;
    parseRouteDatagram(datagram.data(), datagram.size(), kOurs, out);
    return out;
  }
};

TEST_F(RouteParseTest, OurBlackholeAddedAndDeleted) {
  Datagram datagram;
  putRoute(datagram, RTM_NEWROUTE, AF_INET, {10, 9, 0, 0}, 24, 83, 21320);
  datagram.close();
  putRoute(datagram, RTM_DELROUTE, AF_INET, {10, 9, 0, 0}, 24, 83, 21320);
  datagram.close();
  const std::vector<RouteChangeEvent> events = parse(datagram);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, RouteChangeEvent::kRouteAdded);
  EXPECT_EQ(events[1].kind, RouteChangeEvent::kRouteDeleted);
  for (const RouteChangeEvent& event : events) {
    EXPECT_FALSE(event.lost);
    EXPECT_TRUE(event.ours);
    EXPECT_EQ(event.family, AF_INET);
    EXPECT_EQ(event.prefix, "10.9.0.0/24");
    EXPECT_EQ(event.table, 21320u);
    EXPECT_EQ(event.protocol, 83);
  }
}

TEST_F(RouteParseTest, OwnershipByProtocolOrTable) {
  struct Case {
    const char* name;
    uint8_t protocol;
    uint32_t table;
    bool ours;
  };
  const Case cases[] = {
      {"our tag in main (older builds)", 83, RT_TABLE_MAIN, true},
      {"foreign route in our table", RTPROT_BOOT, 21320, true},
      {"foreign route in main", RTPROT_BOOT, RT_TABLE_MAIN, false},
      {"kernel route in local", RTPROT_KERNEL, RT_TABLE_LOCAL, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Datagram datagram;
    putRoute(datagram, RTM_DELROUTE, AF_INET, {192, 168, 1, 0}, 24, c.protocol, c.table);
    datagram.close();
    const std::vector<RouteChangeEvent> events = parse(datagram);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].ours, c.ours);
    EXPECT_EQ(events[0].table, c.table);
  }
}

TEST_F(RouteParseTest, Ipv6AndDefaultRoutes) {
  Datagram datagram;
  putRoute(datagram, RTM_NEWROUTE, AF_INET6, {0xfd, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
           48, 83, 21320);
  datagram.close();
  putRoute(datagram, RTM_DELROUTE, AF_INET6, {}, 0, RTPROT_BOOT, RT_TABLE_MAIN);
  datagram.close();
  putRoute(datagram, RTM_DELROUTE, AF_INET, {}, 0, RTPROT_BOOT, RT_TABLE_MAIN);
  datagram.close();
  const std::vector<RouteChangeEvent> events = parse(datagram);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].family, AF_INET6);
  EXPECT_EQ(events[0].prefix, "fd00:20::/48");
  EXPECT_TRUE(events[0].ours);
  EXPECT_EQ(events[1].prefix, "::/0");
  EXPECT_FALSE(events[1].ours);
  EXPECT_EQ(events[2].prefix, "0.0.0.0/0");
}

TEST_F(RouteParseTest, TableFromRtmTableWithoutAttribute) {
  Datagram datagram;
  nlmsghdr* nlh = datagram.put(RTM_NEWROUTE);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_INET;
  rtm->rtm_table = RT_TABLE_MAIN;
  datagram.close();
  const std::vector<RouteChangeEvent> events = parse(datagram);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].table, static_cast<uint32_t>(RT_TABLE_MAIN));
}

TEST_F(RouteParseTest, RulesOursAndForeign) {
  Datagram datagram;
  putRule(datagram, RTM_NEWRULE, AF_INET, 83, 21320, 83);
  datagram.close();
  putRule(datagram, RTM_DELRULE, AF_INET6, 83, 21320, 83);
  datagram.close();
  // Someone else's rule steering into our table.
  putRule(datagram, RTM_DELRULE, AF_INET, 100, 21320, std::nullopt);
  datagram.close();
  // Someone else's rule, with a source selector.
  nlmsghdr* foreign = putRule(datagram, RTM_DELRULE, AF_INET, 100, 100, RTPROT_BOOT);
  reinterpret_cast<fib_rule_hdr*>(mnl_nlmsg_get_payload(foreign))->src_len = 16;
  const uint8_t source[4] = {10, 1, 0, 0};
  mnl_attr_put(foreign, FRA_SRC, sizeof source, source);
  datagram.close();

  const std::vector<RouteChangeEvent> events = parse(datagram);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kind, RouteChangeEvent::kRuleAdded);
  EXPECT_TRUE(events[0].ours);
  EXPECT_EQ(events[0].family, AF_INET);
  EXPECT_EQ(events[0].priority, 83u);
  EXPECT_EQ(events[0].table, 21320u);
  EXPECT_EQ(events[0].prefix, "");
  EXPECT_EQ(events[1].kind, RouteChangeEvent::kRuleDeleted);
  EXPECT_TRUE(events[1].ours);
  EXPECT_EQ(events[1].family, AF_INET6);
  EXPECT_TRUE(events[2].ours);
  EXPECT_EQ(events[2].protocol, 0);
  EXPECT_FALSE(events[3].ours);
  EXPECT_EQ(events[3].prefix, "10.1.0.0/16");
  EXPECT_EQ(events[3].table, 100u);
}

TEST_F(RouteParseTest, LinkEvents) {
  Datagram datagram;
  for (uint16_t type : {RTM_NEWLINK, RTM_DELLINK}) {
    nlmsghdr* nlh = datagram.put(type);
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = 5;
    mnl_attr_put_u32(nlh, IFLA_MTU, 1500);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, "d0");
    datagram.close();
  }
  const std::vector<RouteChangeEvent> events = parse(datagram);
  ASSERT_EQ(events.size(), 2u);
  for (const RouteChangeEvent& event : events) {
    EXPECT_EQ(event.kind, RouteChangeEvent::kLinkChanged);
    EXPECT_EQ(event.ifname, "d0");
    EXPECT_EQ(event.ifindex, 5u);
    EXPECT_FALSE(event.ours);
  }
}

TEST_F(RouteParseTest, IgnoresOtherFamiliesAndTypes) {
  Datagram datagram;
  // An IPv4 multicast route (RTNL_FAMILY_IPMR) and an address notification.
  putRoute(datagram, RTM_NEWROUTE, RTNL_FAMILY_IPMR, {}, 0, 83, 21320);
  datagram.close();
  nlmsghdr* addr = datagram.put(RTM_NEWADDR);
  mnl_nlmsg_put_extra_header(addr, sizeof(ifaddrmsg));
  datagram.close();
  EXPECT_TRUE(parse(datagram).empty());
}

TEST_F(RouteParseTest, MalformedRouteMessagesAreRejected) {
  {
    SCOPED_TRACE("RTA_DST of 3 bytes");
    Datagram datagram;
    putRoute(datagram, RTM_NEWROUTE, AF_INET, {10, 9, 0}, 24, 83, 21320);
    datagram.close();
    EXPECT_EQ(parseRouteMessage(datagram.data(), datagram.size(), kOurs), std::nullopt);
  }
  {
    SCOPED_TRACE("prefix length 33");
    Datagram datagram;
    putRoute(datagram, RTM_NEWROUTE, AF_INET, {10, 9, 0, 0}, 33, 83, 21320);
    datagram.close();
    EXPECT_EQ(parseRouteMessage(datagram.data(), datagram.size(), kOurs), std::nullopt);
  }
  {
    SCOPED_TRACE("prefix length without address");
    Datagram datagram;
    putRoute(datagram, RTM_NEWROUTE, AF_INET, {}, 24, 83, 21320);
    datagram.close();
    EXPECT_EQ(parseRouteMessage(datagram.data(), datagram.size(), kOurs), std::nullopt);
  }
  {
    SCOPED_TRACE("rtmsg cut short");
    Datagram datagram;
    nlmsghdr* nlh = datagram.put(RTM_DELROUTE);
    mnl_nlmsg_put_extra_header(nlh, 4);
    datagram.close();
    EXPECT_EQ(parseRouteMessage(datagram.data(), datagram.size(), kOurs), std::nullopt);
  }
  {
    SCOPED_TRACE("empty FRA_PROTOCOL");
    Datagram datagram;
    nlmsghdr* nlh = putRule(datagram, RTM_DELRULE, AF_INET, 83, 21320, std::nullopt);
    mnl_attr_put(nlh, FRA_PROTOCOL, 0, nullptr);
    datagram.close();
    EXPECT_EQ(parseRouteMessage(datagram.data(), datagram.size(), kOurs), std::nullopt);
  }
  {
    SCOPED_TRACE("interface name without NUL");
    Datagram datagram;
    nlmsghdr* nlh = datagram.put(RTM_NEWLINK);
    mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg));
    mnl_attr_put(nlh, IFLA_IFNAME, 2, "d0");
    datagram.close();
    EXPECT_EQ(parseRouteMessage(datagram.data(), datagram.size(), kOurs), std::nullopt);
  }
}

TEST_F(RouteParseTest, MalformedMessageInDatagramYieldsLostAfterTheGoodOnes) {
  Datagram datagram;
  putRoute(datagram, RTM_NEWROUTE, AF_INET, {10, 9, 0, 0}, 24, 83, 21320);
  datagram.close();
  putRoute(datagram, RTM_DELROUTE, AF_INET, {10, 8, 0, 0}, 24, RTPROT_BOOT, RT_TABLE_MAIN);
  datagram.close();
  putRoute(datagram, RTM_DELROUTE, AF_INET, {10, 7, 0, 0}, 24, 83, 21320);
  datagram.close();
  std::vector<RouteChangeEvent> events;
  parseRouteDatagram(datagram.data(), datagram.size() - 4, kOurs, events);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].prefix, "10.9.0.0/24");
  EXPECT_EQ(events[1].prefix, "10.8.0.0/24");
  EXPECT_TRUE(events[2].lost);
}

}  // namespace
}  // namespace shadan::agent

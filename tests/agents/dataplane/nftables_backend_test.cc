// Integration tests of NftablesBackend against the real kernel. main() moves the process into a
// fresh network namespace first (see below); without root every test is skipped.

#include "agents/dataplane/nftables_backend.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agents/dataplane/nft_generation.h"
#include "agents/dataplane/nft_monitor.h"
#include "common/sha256.h"
#include "tests/support/private_netns.h"

namespace shadan::agent {
namespace {

using test_support::CommandResult;
using test_support::runCommand;

// Shaped like the planner's output: replace the table whole, stateless management accepts first,
// then drops from per-family prefix sets.
constexpr char kTableA[] = R"(add table inet shadan
delete table inet shadan
table inet shadan {
  set seg_office_v4 { type ipv4_addr; flags interval; elements = { 10.20.0.0/16, 10.21.5.0/24 } }
  set seg_office_v6 { type ipv6_addr; flags interval; elements = { fd00:20::/48 } }
  chain input {
    type filter hook input priority -150; policy accept;
    iif "lo" accept
    ip saddr 10.99.0.10 tcp sport 8443 accept
    ip saddr @seg_office_v4 drop
    ip6 saddr @seg_office_v6 drop
  }
  chain output {
    type filter hook output priority -150; policy accept;
    oif "lo" counter accept
    ip daddr 10.99.0.10 tcp dport 8443 accept
    ip daddr @seg_office_v4 drop
    ip6 daddr @seg_office_v6 drop
  }
  chain forward {
    type filter hook forward priority -150; policy accept;
    ip saddr @seg_office_v4 drop
    ip daddr @seg_office_v4 drop
  }
  chain only_in_a {
    ip saddr 192.0.2.1 drop
  }
}
)";

constexpr char kTableB[] = R"(add table inet shadan
delete table inet shadan
table inet shadan {
  set seg_lab_v4 { type ipv4_addr; flags interval; elements = { 10.30.0.0/16 } }
  chain input {
    type filter hook input priority -150; policy accept;
    iif "lo" accept
    ip saddr @seg_lab_v4 drop
  }
}
)";

constexpr char kRemoveTable[] = "add table inet shadan\ndelete table inet shadan\n";

constexpr char kForeignTable[] = R"(table inet foreign {
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr 198.51.100.7 drop
  }
}
)";

class NftablesBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test_support::inPrivateNetns())
      GTEST_SKIP() << "needs root (runs in a private network namespace)";
    auto created = NftablesBackend::create();
    ASSERT_TRUE(created.ok()) << created.error().message;
    backend_ = std::move(created.value());
    // The namespace is ours alone: start every test from an empty ruleset.
    ASSERT_TRUE(backend_->apply("flush ruleset").ok());
  }

  std::string ruleset() {
    auto listed = backend_->listRuleset();
    EXPECT_TRUE(listed.ok()) << listed.error().message;
    return listed.ok() ? listed.value() : std::string();
  }

  TableSnapshot snapshot() {
    auto read = backend_->readTable();
    EXPECT_TRUE(read.ok()) << read.error().message;
    return read.ok() ? read.value() : TableSnapshot{};
  }

  std::unique_ptr<NftablesBackend> backend_;
};

TEST_F(NftablesBackendTest, AppliesTableAndReadsItBack) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const TableSnapshot first = snapshot();
  EXPECT_TRUE(first.present);
  EXPECT_EQ(first.listing.rfind("table inet shadan {", 0), 0u) << first.listing;
  EXPECT_NE(first.listing.find("10.21.5.0/24"), std::string::npos) << first.listing;
  EXPECT_NE(first.listing.find("fd00:20::/48"), std::string::npos) << first.listing;
  // -150 is printed by its symbolic name.
  EXPECT_NE(first.listing.find("hook input priority mangle;"), std::string::npos) << first.listing;
  EXPECT_EQ(first.listing.find("handle"), std::string::npos) << "listing must carry no handles";
  EXPECT_EQ(first.sha256, sha256Hex(first.listing));
  EXPECT_EQ(first.sha256.size(), 64u);
  // The kernel sees the same table as a separate `nft` process does.
  const CommandResult nft = runCommand("nft -s list table inet shadan");
  ASSERT_EQ(nft.exit_code, 0) << nft.output;
  EXPECT_EQ(nft.output, first.listing);

  const TableSnapshot second = snapshot();
  EXPECT_EQ(second.sha256, first.sha256);
  EXPECT_EQ(second.listing, first.listing);
}

TEST_F(NftablesBackendTest, ApplyingTwiceGivesSameHash) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const std::string first = snapshot().sha256;
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  EXPECT_EQ(snapshot().sha256, first);
}

TEST_F(NftablesBackendTest, ReplacesWholeTableInOneTransaction) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const TableSnapshot a = snapshot();
  ASSERT_TRUE(backend_->apply(kTableB).ok());
  const TableSnapshot b = snapshot();
  EXPECT_TRUE(b.present);
  EXPECT_NE(b.sha256, a.sha256);
  EXPECT_NE(b.listing.find("seg_lab_v4"), std::string::npos) << b.listing;
  // Nothing of A survives: no set, no chain, no element.
  EXPECT_EQ(b.listing.find("seg_office_v4"), std::string::npos) << b.listing;
  EXPECT_EQ(b.listing.find("only_in_a"), std::string::npos) << b.listing;
  EXPECT_EQ(b.listing.find("chain output"), std::string::npos) << b.listing;
  EXPECT_EQ(b.listing.find("10.20.0.0/16"), std::string::npos) << b.listing;
}

TEST_F(NftablesBackendTest, KernelFailureHalfWayChangesNothing) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const std::string before = ruleset();
  const std::string hash_before = snapshot().sha256;

  // The replacement by B is valid; the last command fails in the kernel (ENOENT), which must
  // abort the whole batch, the replacement included.
  const std::string script = std::string(kTableB) + "delete table inet shadan_does_not_exist\n";
  const Status status = backend_->apply(script);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kKernel);
  EXPECT_NE(status.error().message.find("No such file or directory"), std::string::npos)
      << status.error().message;
  // Not asserted: which command the message underlines. libnftables 1.0.6 maps the kernel's
  // error to the wrong command of the batch (it underlines `add table inet shadan` here).
  EXPECT_EQ(ruleset(), before);
  EXPECT_EQ(snapshot().sha256, hash_before);
}

TEST_F(NftablesBackendTest, SyntaxErrorChangesNothing) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const std::string before = ruleset();
  const std::string script = std::string(kTableB) + "add rule inet shadan input ip saddr drop {\n";
  const Status status = backend_->apply(script);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kKernel);
  EXPECT_NE(status.error().message.find("syntax error"), std::string::npos)
      << status.error().message;
  EXPECT_EQ(ruleset(), before);
}

TEST_F(NftablesBackendTest, ForeignTableIsUntouched) {
  // Written by another process, as a firewall manager would.
  const std::string file = "/tmp/shadan_foreign_" + std::to_string(getpid()) + ".nft";
  {
    std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(file.c_str(), "w"), &std::fclose);
    ASSERT_NE(out, nullptr);
    std::fputs(kForeignTable, out.get());
  }
  const CommandResult added = runCommand("nft -f " + file);
  std::remove(file.c_str());
  ASSERT_EQ(added.exit_code, 0) << added.output;
  const CommandResult foreign_before = runCommand("nft list table inet foreign");
  ASSERT_EQ(foreign_before.exit_code, 0) << foreign_before.output;

  ASSERT_TRUE(backend_->apply(kTableA).ok());
  ASSERT_TRUE(backend_->apply(kTableB).ok());
  EXPECT_FALSE(backend_->apply(std::string(kTableA) + "delete table inet nope\n").ok());
  ASSERT_TRUE(backend_->apply(kRemoveTable).ok());

  EXPECT_EQ(runCommand("nft list table inet foreign").output, foreign_before.output);
  const std::string all = ruleset();
  EXPECT_NE(all.find("table inet foreign"), std::string::npos) << all;
  EXPECT_EQ(all.find("table inet shadan"), std::string::npos) << all;
}

TEST_F(NftablesBackendTest, AbsentTableIsNotAnError) {
  auto read = backend_->readTable();
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_FALSE(read.value().present);
  EXPECT_TRUE(read.value().listing.empty());
  EXPECT_EQ(read.value().sha256, sha256Hex(""));

  ASSERT_TRUE(backend_->apply(kTableA).ok());
  EXPECT_TRUE(snapshot().present);
  ASSERT_TRUE(backend_->apply(kRemoveTable).ok());
  EXPECT_FALSE(snapshot().present);
  // Another table of the same family does not make ours "present".
  ASSERT_TRUE(backend_->apply(kForeignTable).ok());
  EXPECT_FALSE(snapshot().present);
}

TEST_F(NftablesBackendTest, HashIgnoresTrafficCounters) {
  ASSERT_TRUE(runCommand("ip link set lo up").exit_code == 0);
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const TableSnapshot before = snapshot();

  // Traffic through the `oif "lo" counter accept` rule.
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 5; ++i) {
    (void)sendto(fd, "x", 1, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }
  close(fd);
  const CommandResult stateful = runCommand("nft list chain inet shadan output");
  ASSERT_EQ(stateful.exit_code, 0) << stateful.output;
  ASSERT_EQ(stateful.output.find("counter packets 0 "), std::string::npos)
      << "traffic did not reach the counter, the test proves nothing:\n"
      << stateful.output;

  const TableSnapshot after = snapshot();
  EXPECT_EQ(after.sha256, before.sha256) << after.listing;
}

TEST_F(NftablesBackendTest, ReadsRuleCountersApartFromTheStatelessListing) {
  auto absent = backend_->readRuleCounters();
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code, ErrorCode::kNotFound) << absent.error().message;

  ASSERT_TRUE(runCommand("ip link set lo up").exit_code == 0);
  // A planner-shaped drop that loopback traffic meets (no `oif "lo" accept` before it).
  ASSERT_TRUE(backend_
                  ->apply(R"(add table inet shadan
delete table inet shadan
table inet shadan {
  set seg_lo_v4 { type ipv4_addr; flags interval; elements = { 127.0.0.0/8 } }
  chain output {
    type filter hook output priority -150; policy accept;
    ip daddr 127.0.0.2 accept
    ip daddr @seg_lo_v4 counter drop
  }
}
)")
                  .ok());
  const TableSnapshot before = snapshot();
  auto zero = backend_->readRuleCounters();
  ASSERT_TRUE(zero.ok()) << zero.error().message;
  ASSERT_EQ(zero->size(), 1u);
  EXPECT_EQ((*zero)[0].chain, "output");
  EXPECT_EQ((*zero)[0].rule, "ip daddr @seg_lo_v4 counter drop");
  EXPECT_EQ((*zero)[0].packets, 0u);

  // Five one-byte UDP datagrams: 29 bytes each on the wire (IPv4 20 + UDP 8 + 1).
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 5; ++i) {
    (void)sendto(fd, "x", 1, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }
  close(fd);
  auto counted = backend_->readRuleCounters();
  ASSERT_TRUE(counted.ok()) << counted.error().message;
  ASSERT_EQ(counted->size(), 1u);
  EXPECT_EQ((*counted)[0].packets, 5u);
  EXPECT_EQ((*counted)[0].bytes, 5u * 29u);

  // The stateful read left the context stateless, and the read-back hash never saw a counter.
  const TableSnapshot after = snapshot();
  EXPECT_EQ(after.listing.find("packets"), std::string::npos) << after.listing;
  EXPECT_EQ(after.sha256, before.sha256);
  const NftablesBackend::ReadStats stats = backend_->readStats();
  EXPECT_EQ(stats.listed, 1u) << "the counter reads must not list through the table cache";
  EXPECT_EQ(stats.from_cache, 1u) << "nor drop it";
}

TEST_F(NftablesBackendTest, BuffersAreDrainedAfterEveryCall) {
  ASSERT_TRUE(backend_->apply(kForeignTable).ok());
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const std::string reference = snapshot().listing;
  for (int i = 0; i < 50; ++i) {
    const std::string all = ruleset();
    ASSERT_NE(all.find("table inet foreign"), std::string::npos);
    // A listing after the ruleset listing holds only our table, not the previous output.
    const TableSnapshot table = snapshot();
    ASSERT_EQ(table.listing, reference);
    ASSERT_EQ(table.listing.find("foreign"), std::string::npos);
  }
  // Errors do not accumulate either: the second failure reports only itself, and a success
  // after a failure is a success.
  const Status first = backend_->apply("delete table inet missing_one\n");
  ASSERT_FALSE(first.ok());
  EXPECT_NE(first.error().message.find("missing_one"), std::string::npos);
  const Status second = backend_->apply("delete table inet missing_two\n");
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("missing_two"), std::string::npos);
  EXPECT_EQ(second.error().message.find("missing_one"), std::string::npos)
      << second.error().message;
  EXPECT_TRUE(backend_->apply(kTableB).ok());
  EXPECT_EQ(snapshot().listing.find("seg_office_v4"), std::string::npos);

  // readTable of an absent table fails a listing internally; that error text must not leak
  // into the next reported error.
  ASSERT_TRUE(backend_->apply(kRemoveTable).ok());
  ASSERT_FALSE(snapshot().present);
  const Status third = backend_->apply("delete table inet missing_three\n");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().message.find("list table"), std::string::npos) << third.error().message;
}

TEST_F(NftablesBackendTest, CheckValidatesInTheKernelWithoutApplying) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const std::string before = ruleset();
  EXPECT_TRUE(backend_->check(kTableB).ok());
  EXPECT_EQ(ruleset(), before);
  const Status failing = backend_->check(std::string(kTableB) + "delete table inet nope\n");
  ASSERT_FALSE(failing.ok());
  EXPECT_EQ(failing.error().code, ErrorCode::kKernel);
  EXPECT_EQ(ruleset(), before);
  // Dry-run mode is switched off again.
  ASSERT_TRUE(backend_->apply(kTableB).ok());
  EXPECT_NE(snapshot().listing.find("seg_lab_v4"), std::string::npos);
}

TEST_F(NftablesBackendTest, CallFromAnotherThreadAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        std::thread other([&] { (void)backend_->readTable(); });
        other.join();
      },
      "not thread-safe");
}

// ---- read-back cache (readTable() keyed on the ruleset generation) ------------------------------

class NftablesBackendCacheTest : public NftablesBackendTest {
 protected:
  // readStats() counted from here on.
  void markStats() { mark_ = backend_->readStats(); }
  uint64_t listedSinceMark() const { return backend_->readStats().listed - mark_.listed; }
  uint64_t cachedSinceMark() const { return backend_->readStats().from_cache - mark_.from_cache; }

  uint32_t generation() {
    auto reader = NftGenerationReader::open();
    EXPECT_TRUE(reader.ok()) << reader.error().message;
    if (!reader.ok()) return 0;
    auto current = (*reader)->current();
    EXPECT_TRUE(current.ok()) << current.error().message;
    return current.ok() ? *current : 0;
  }

  NftablesBackend::ReadStats mark_;
};

TEST_F(NftablesBackendCacheTest, SecondReadWithNothingBetweenComesFromCache) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  markStats();
  const TableSnapshot first = snapshot();
  EXPECT_EQ(listedSinceMark(), 1u);
  EXPECT_EQ(cachedSinceMark(), 0u);
  const TableSnapshot second = snapshot();
  EXPECT_EQ(listedSinceMark(), 1u);
  EXPECT_EQ(cachedSinceMark(), 1u);
  EXPECT_TRUE(second.present);
  EXPECT_EQ(second.listing, first.listing);
  EXPECT_EQ(second.sha256, first.sha256);
  // The cached copy is still what the kernel holds.
  const CommandResult nft = runCommand("nft -s list table inet shadan");
  ASSERT_EQ(nft.exit_code, 0) << nft.output;
  EXPECT_EQ(second.listing, nft.output);
  // Listing other things does not invalidate it (no transaction).
  (void)ruleset();
  (void)snapshot();
  EXPECT_EQ(cachedSinceMark(), 2u);
  EXPECT_EQ(backend_->readStats().generation_errors, 0u);
}

TEST_F(NftablesBackendCacheTest, ReadsNeverMoveTheGenerationNorNotify) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  auto monitor = NftMonitor::open(NftMonitorOptions{});
  ASSERT_TRUE(monitor.ok()) << monitor.error().message;
  const uint32_t before = generation();
  markStats();
  (void)snapshot();  // the miss path: GETGEN, the empty settle batch, the listing
  (void)snapshot();  // the hit path
  ASSERT_EQ(listedSinceMark(), 1u);
  ASSERT_EQ(cachedSinceMark(), 1u);
  EXPECT_EQ(generation(), before);
  auto events = (*monitor)->drain();
  ASSERT_TRUE(events.ok()) << events.error().message;
  EXPECT_TRUE(events->empty()) << "the settle barrier must commit nothing";
}

TEST_F(NftablesBackendCacheTest, ChangeByAnotherProcessIsListedAgain) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const TableSnapshot before = snapshot();
  (void)snapshot();
  markStats();
  const CommandResult added =
      runCommand("nft add rule inet shadan only_in_a ip saddr 192.0.2.77 drop");
  ASSERT_EQ(added.exit_code, 0) << added.output;
  const TableSnapshot after = snapshot();
  EXPECT_EQ(listedSinceMark(), 1u);
  EXPECT_EQ(cachedSinceMark(), 0u);
  EXPECT_NE(after.sha256, before.sha256);
  EXPECT_NE(after.listing.find("192.0.2.77"), std::string::npos) << after.listing;
  // And the new listing is cached in its turn.
  EXPECT_EQ(snapshot().sha256, after.sha256);
  EXPECT_EQ(cachedSinceMark(), 1u);
}

TEST_F(NftablesBackendCacheTest, ChangeByAnotherContextInThisProcessIsListedAgain) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const TableSnapshot before = snapshot();
  auto other = NftablesBackend::create();
  ASSERT_TRUE(other.ok()) << other.error().message;
  // The other context reads the same (cached, for it: first) state...
  const auto other_first = (*other)->readTable();
  ASSERT_TRUE(other_first.ok()) << other_first.error().message;
  EXPECT_EQ(other_first->sha256, before.sha256);
  // ...then changes the table; our cache must not survive it.
  ASSERT_TRUE((*other)->apply("add rule inet shadan only_in_a ip saddr 192.0.2.88 drop\n").ok());
  markStats();
  const TableSnapshot after = snapshot();
  EXPECT_EQ(listedSinceMark(), 1u);
  EXPECT_EQ(cachedSinceMark(), 0u);
  EXPECT_NE(after.sha256, before.sha256);
  EXPECT_NE(after.listing.find("192.0.2.88"), std::string::npos) << after.listing;
  // Its own cache was dropped by its apply(): it sees the change too.
  const auto other_after = (*other)->readTable();
  ASSERT_TRUE(other_after.ok()) << other_after.error().message;
  EXPECT_EQ(other_after->sha256, after.sha256);
}

TEST_F(NftablesBackendCacheTest, ForeignFlushRulesetMakesTheTableAbsent) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  ASSERT_TRUE(snapshot().present);
  ASSERT_TRUE(snapshot().present);
  markStats();
  const CommandResult flushed = runCommand("nft flush ruleset");
  ASSERT_EQ(flushed.exit_code, 0) << flushed.output;
  const TableSnapshot after = snapshot();
  EXPECT_EQ(listedSinceMark(), 1u);
  EXPECT_FALSE(after.present);
  EXPECT_TRUE(after.listing.empty());
  EXPECT_EQ(after.sha256, sha256Hex(""));
}

TEST_F(NftablesBackendCacheTest, ApplyOfANewTableIsListed) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const TableSnapshot a = snapshot();
  (void)snapshot();
  ASSERT_TRUE(backend_->apply(kTableB).ok());
  markStats();
  const TableSnapshot b = snapshot();
  EXPECT_EQ(listedSinceMark(), 1u);
  EXPECT_EQ(cachedSinceMark(), 0u);
  EXPECT_NE(b.sha256, a.sha256);
  EXPECT_NE(b.listing.find("seg_lab_v4"), std::string::npos) << b.listing;
  EXPECT_EQ(b.listing.find("seg_office_v4"), std::string::npos) << b.listing;
}

TEST_F(NftablesBackendCacheTest, AbsentTableIsCachedToo) {
  markStats();
  const TableSnapshot first = snapshot();
  const TableSnapshot second = snapshot();
  EXPECT_FALSE(first.present);
  EXPECT_FALSE(second.present);
  EXPECT_EQ(second.sha256, sha256Hex(""));
  EXPECT_EQ(listedSinceMark(), 1u);
  EXPECT_EQ(cachedSinceMark(), 1u);
  // And the absent answer does not outlive the table's creation by someone else.
  const CommandResult added = runCommand("nft add table inet shadan");
  ASSERT_EQ(added.exit_code, 0) << added.output;
  EXPECT_TRUE(snapshot().present);
  EXPECT_EQ(listedSinceMark(), 2u);
}

TEST_F(NftablesBackendCacheTest, CheckAndFailedApplyDropTheCache) {
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  (void)snapshot();
  markStats();
  ASSERT_TRUE(backend_->check(kTableB).ok());
  const TableSnapshot after_check = snapshot();
  EXPECT_EQ(listedSinceMark(), 1u);
  EXPECT_NE(after_check.listing.find("only_in_a"), std::string::npos) << "check changed nothing";
  ASSERT_FALSE(backend_->apply("delete table inet missing_one\n").ok());
  (void)snapshot();
  EXPECT_EQ(listedSinceMark(), 2u);
  (void)snapshot();
  EXPECT_EQ(cachedSinceMark(), 1u);
}

// The barrier the cache relies on, directly.
TEST_F(NftablesBackendCacheTest, SettledConfirmsOnlyTheCurrentGeneration) {
  auto opened = NftGenerationReader::open();
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  NftGenerationReader& reader = **opened;
  auto current = reader.current();
  ASSERT_TRUE(current.ok()) << current.error().message;
  const uint32_t g = *current;
  auto settled = reader.settled(g);
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_TRUE(*settled);
  settled = reader.settled(g + 1);
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_FALSE(*settled);
  EXPECT_FALSE(*reader.settled(0));  // 0 would mean "unchecked" to the kernel
  // The empty batches committed nothing...
  current = reader.current();
  ASSERT_TRUE(current.ok()) << current.error().message;
  EXPECT_EQ(*current, g);
  // ...and a real commit makes the old generation unsettled and the new one settled.
  ASSERT_TRUE(backend_->apply(kTableB).ok());
  settled = reader.settled(g);
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_FALSE(*settled);
  current = reader.current();
  ASSERT_TRUE(current.ok()) << current.error().message;
  EXPECT_NE(*current, g);
  settled = reader.settled(*current);
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_TRUE(*settled);
}

// ---- listForeignRulesetJson(): every table but ours, cached across our own commits ----------

class NftablesForeignCacheTest : public NftablesBackendCacheTest {
 protected:
  // A change made by someone else: another libnftables context (its commits are as foreign to
  // backend_ as those of an `nft` process).
  void foreignApply(const char* script) {
    auto other = NftablesBackend::create();
    ASSERT_TRUE(other.ok()) << other.error().message;
    const Status applied = (*other)->apply(script);
    ASSERT_TRUE(applied.ok()) << applied.error().message;
  }
  nlohmann::json foreign() {
    auto listed = backend_->listForeignRulesetJson();
    EXPECT_TRUE(listed.ok()) << listed.error().message;
    return listed.ok() ? *listed : nlohmann::json();
  }
  uint64_t foreignListedSinceMark() const {
    return backend_->readStats().foreign_listed - mark_.foreign_listed;
  }
  uint64_t foreignCachedSinceMark() const {
    return backend_->readStats().foreign_from_cache - mark_.foreign_from_cache;
  }
  // The "table" objects of a listing, as "family name".
  static std::vector<std::string> tables(const nlohmann::json& listing) {
    std::vector<std::string> names;
    for (const auto& item : listing.at("nftables")) {
      if (item.contains("table")) {
        names.push_back(item["table"]["family"].get<std::string>() + " " +
                        item["table"]["name"].get<std::string>());
      }
    }
    return names;
  }
  // True when any object of the listing belongs to table inet shadan.
  static bool mentionsOurTable(const nlohmann::json& listing) {
    for (const auto& item : listing.at("nftables")) {
      for (const auto& [kind, object] : item.items()) {
        if (object.is_object() && object.value("family", "") == "inet" &&
            (object.value("table", "") == "shadan" || object.value("name", "") == "shadan")) {
          return true;
        }
      }
    }
    return false;
  }
};

TEST_F(NftablesForeignCacheTest, LeavesOurTableOutAndKeepsEveryOther) {
  ASSERT_NO_FATAL_FAILURE(foreignApply(kForeignTable));
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const nlohmann::json listing = foreign();
  EXPECT_EQ(tables(listing), std::vector<std::string>{"inet foreign"});
  EXPECT_FALSE(mentionsOurTable(listing)) << listing.dump();
  EXPECT_NE(listing.dump().find("198.51.100.7"), std::string::npos) << listing.dump();
}

TEST_F(NftablesForeignCacheTest, OurOwnCommitsKeepTheCacheForeignOnesDropIt) {
  ASSERT_NO_FATAL_FAILURE(foreignApply(kForeignTable));
  markStats();
  const nlohmann::json first = foreign();
  EXPECT_EQ(foreignListedSinceMark(), 1u);
  EXPECT_EQ(foreign(), first);
  EXPECT_EQ(foreignCachedSinceMark(), 1u);

  // Isolate, restore, isolate again: only our commits, the foreign tables cannot have changed.
  for (const char* script : {kTableA, kRemoveTable, kTableB}) {
    ASSERT_TRUE(backend_->apply(script).ok());
    EXPECT_EQ(foreign(), first);
  }
  EXPECT_EQ(foreignListedSinceMark(), 1u);
  EXPECT_EQ(foreignCachedSinceMark(), 4u);

  // Someone else adds a rule to the foreign table: listed again, the rule is there.
  ASSERT_EQ(runCommand("nft add rule inet foreign input ip saddr 198.51.100.99 drop").exit_code, 0);
  const nlohmann::json changed = foreign();
  EXPECT_EQ(foreignListedSinceMark(), 2u);
  EXPECT_NE(changed.dump().find("198.51.100.99"), std::string::npos) << changed.dump();

  // A foreign change between the listing and our commit: the commit must not carry the stale
  // entry forward.
  ASSERT_EQ(runCommand("nft add table ip latecomer").exit_code, 0);
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  const nlohmann::json after = foreign();
  EXPECT_EQ(foreignListedSinceMark(), 3u);
  EXPECT_EQ(tables(after), (std::vector<std::string>{"inet foreign", "ip latecomer"}));

  // A failed apply changes nothing in the kernel; the cache stays right either way.
  EXPECT_FALSE(backend_->apply("add rule inet nosuchtable nosuchchain drop\n").ok());
  EXPECT_EQ(foreign(), after);
  EXPECT_EQ(backend_->readStats().generation_errors, 0u);
}

TEST_F(NftablesForeignCacheTest, ForeignFlushIsSeen) {
  ASSERT_NO_FATAL_FAILURE(foreignApply(kForeignTable));
  ASSERT_TRUE(backend_->apply(kTableA).ok());
  ASSERT_EQ(tables(foreign()).size(), 1u);
  ASSERT_EQ(runCommand("nft flush ruleset").exit_code, 0);
  EXPECT_TRUE(tables(foreign()).empty());
}

}  // namespace
}  // namespace shadan::agent

#include "controller/peer_penalties.h"

#include <gtest/gtest.h>

#include <string>

namespace shadan::controller {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const PeerPenalties::Clock::time_point kStart{seconds(1000)};

TEST(PeerPenaltiesTest, APeerIsAdmittedUntilItsBurstOfFailuresIsSpent) {
  PeerPenalties penalties(3, 60);  // one failure a second refills
  EXPECT_TRUE(penalties.admits("192.0.2.1", kStart));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(penalties.admits("192.0.2.1", kStart)) << i;
    penalties.fail("192.0.2.1", kStart);
  }
  EXPECT_FALSE(penalties.admits("192.0.2.1", kStart));
  // Another peer is not touched.
  EXPECT_TRUE(penalties.admits("192.0.2.2", kStart));
  // Half a second refills half a failure: still refused; a whole second, one more chance.
  EXPECT_FALSE(penalties.admits("192.0.2.1", kStart + milliseconds(500)));
  EXPECT_TRUE(penalties.admits("192.0.2.1", kStart + seconds(1)));
  penalties.fail("192.0.2.1", kStart + seconds(1));
  EXPECT_FALSE(penalties.admits("192.0.2.1", kStart + seconds(1)));
  // A quiet peer refills up to its burst, not beyond.
  const auto later = kStart + seconds(3600);
  for (int i = 0; i < 3; ++i) penalties.fail("192.0.2.1", later);
  EXPECT_FALSE(penalties.admits("192.0.2.1", later));
}

TEST(PeerPenaltiesTest, AClockThatDoesNotMoveForwardRefillsNothing) {
  PeerPenalties penalties(1, 60);
  penalties.fail("192.0.2.1", kStart);
  EXPECT_FALSE(penalties.admits("192.0.2.1", kStart - seconds(10)));
  EXPECT_FALSE(penalties.admits("192.0.2.1", kStart));
}

TEST(PeerPenaltiesTest, IPv6PeersCountByTheirSlash64AndMappedIPv4AsIPv4) {
  namespace ip = boost::asio::ip;
  const auto key = [](const char* text) { return PeerPenalties::peerKey(ip::make_address(text)); };
  EXPECT_EQ(key("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(key("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), key("2001:db8:1:2::1"));
  EXPECT_NE(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
}

TEST(PeerPenaltiesTest, KeptBucketsAreBoundedAndRefilledOnesMakeRoom) {
  PeerPenalties penalties(2, 60, /*max_peers=*/2);
  penalties.fail("192.0.2.1", kStart);
  penalties.fail("192.0.2.2", kStart);
  // Full of buckets that have not refilled: a third peer's failure is not tracked.
  penalties.fail("192.0.2.3", kStart);
  EXPECT_EQ(penalties.trackedPeers(), 2u);
  EXPECT_EQ(penalties.untracked(), 1u);
  EXPECT_TRUE(penalties.admits("192.0.2.3", kStart));
  // A second later both have refilled: they make room for the new one.
  penalties.fail("192.0.2.3", kStart + seconds(1));
  penalties.fail("192.0.2.3", kStart + seconds(1));
  EXPECT_EQ(penalties.trackedPeers(), 1u);
  EXPECT_FALSE(penalties.admits("192.0.2.3", kStart + seconds(1)));
}

TEST(PeerPenaltiesTest, AFullTableIsSweptAtMostOnceASecond) {
  PeerPenalties penalties(2, 600, /*max_peers=*/2);  // a failure refills in 100 ms
  penalties.fail("192.0.2.1", kStart);
  penalties.fail("192.0.2.2", kStart);
  penalties.fail("192.0.2.3", kStart);  // swept: nothing to drop yet
  EXPECT_EQ(penalties.untracked(), 1u);
  // Both have refilled by now, but the table was swept less than a second ago.
  penalties.fail("192.0.2.4", kStart + milliseconds(500));
  EXPECT_EQ(penalties.untracked(), 2u);
  EXPECT_EQ(penalties.trackedPeers(), 2u);
  penalties.fail("192.0.2.4", kStart + seconds(1));
  EXPECT_EQ(penalties.untracked(), 2u);
  EXPECT_EQ(penalties.trackedPeers(), 1u);
}

}  // namespace
}  // namespace shadan::controller

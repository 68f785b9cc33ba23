#include "common/ip_prefix.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shadan {
namespace {

IpPrefix p(const char* text) {
  auto prefix = IpPrefix::parse(text);
  EXPECT_TRUE(prefix.ok()) << text << ": " << (prefix.ok() ? "" : prefix.error().message);
  return prefix.ok() ? *prefix : IpPrefix{};
}

std::vector<std::string> cidrs(const std::vector<IpPrefix>& prefixes) {
  std::vector<std::string> out;
  for (const auto& prefix : prefixes) out.push_back(prefix.toCidr());
  return out;
}

TEST(IpPrefixTest, ParsesIpv4Network) {
  const IpPrefix prefix = p("10.20.0.0/16");
  EXPECT_EQ(prefix.family(), IpFamily::kV4);
  EXPECT_EQ(prefix.length(), 16);
  EXPECT_EQ(prefix.maxLength(), 32);
  EXPECT_FALSE(prefix.isHost());
  EXPECT_EQ(prefix.bytes()[0], 10);
  EXPECT_EQ(prefix.bytes()[1], 20);
  EXPECT_EQ(prefix.toString(), "10.20.0.0/16");
  EXPECT_EQ(prefix.toCidr(), "10.20.0.0/16");
  EXPECT_EQ(prefix.addressString(), "10.20.0.0");
}

TEST(IpPrefixTest, ParsesIpv6NetworkInCanonicalForm) {
  const IpPrefix prefix = p("FD00:0020:0000::/48");
  EXPECT_EQ(prefix.family(), IpFamily::kV6);
  EXPECT_EQ(prefix.length(), 48);
  EXPECT_EQ(prefix.maxLength(), 128);
  EXPECT_EQ(prefix.toString(), "fd00:20::/48");
}

TEST(IpPrefixTest, BareAddressIsAHostPrefix) {
  const IpPrefix v4 = p("10.99.0.10");
  EXPECT_TRUE(v4.isHost());
  EXPECT_EQ(v4.length(), 32);
  EXPECT_EQ(v4.toString(), "10.99.0.10");
  EXPECT_EQ(v4.toCidr(), "10.99.0.10/32");
  EXPECT_EQ(v4, p("10.99.0.10/32"));

  const IpPrefix v6 = p("fd00:99::10");
  EXPECT_TRUE(v6.isHost());
  EXPECT_EQ(v6.length(), 128);
  EXPECT_EQ(v6.toString(), "fd00:99::10");
  EXPECT_EQ(v6.toCidr(), "fd00:99::10/128");
}

TEST(IpPrefixTest, ZeroLengthPrefixesCoverTheirFamily) {
  EXPECT_EQ(p("0.0.0.0/0").toString(), "0.0.0.0/0");
  EXPECT_EQ(p("::/0").toString(), "::/0");
  EXPECT_TRUE(p("0.0.0.0/0").contains(p("203.0.113.7")));
  EXPECT_FALSE(p("0.0.0.0/0").contains(p("2001:db8::1")));
  EXPECT_TRUE(p("::/0").contains(p("2001:db8::1")));
}

struct BadPrefixCase {
  const char* text;
  const char* reason;  // fragment expected in the error message
};

TEST(IpPrefixTest, RejectsBadInputs) {
  const BadPrefixCase cases[] = {
      {"", "empty"},
      {"10.20.0.0/", "missing prefix length"},
      {"10.20.0.0/33", "0..32"},
      {"10.20.0.0/-1", "0..32"},
      {"10.20.0.0/016", "0..32"},
      {"10.20.0.0/16x", "0..32"},
      {"10.20.0.0/ 16", "0..32"},
      {"fd00::/129", "0..128"},
      {"10.20.0.1/16", "host bits set (did you mean 10.20.0.0/16?)"},
      {"10.20.0.128/25x", "0..32"},
      {"fd00:20::1/48", "host bits set (did you mean fd00:20::/48?)"},
      {"10.20.0", "not an IPv4 address"},
      {"10.20.0.256", "not an IPv4 address"},
      {"010.20.0.0", "not an IPv4 address"},
      {" 10.20.0.0", "not an IPv4 address"},
      {"10.20.0.0 /16", "not an IPv4 address"},
      {"lgwan", "not an IPv4 address"},
      {"fd00::20::1", "not an IPv6 address"},
      {"fe80::1%eth0", "not an IPv6 address"},
      {"fd00:20::/48/1", "0..128"},
      {"1111111111111111111111111111111111111111111111111111111111111111111", "too long"},
  };
  for (const auto& c : cases) {
    auto prefix = IpPrefix::parse(c.text);
    ASSERT_FALSE(prefix.ok()) << "accepted: \"" << c.text << "\"";
    EXPECT_EQ(prefix.error().code, ErrorCode::kParse) << c.text;
    EXPECT_NE(prefix.error().message.find(c.reason), std::string::npos)
        << c.text << " -> " << prefix.error().message;
  }
}

TEST(IpPrefixTest, ContainsIsReflexiveAndDirectional) {
  EXPECT_TRUE(p("10.20.0.0/16").contains(p("10.20.0.0/16")));
  EXPECT_TRUE(p("10.20.0.0/16").contains(p("10.20.5.0/24")));
  EXPECT_TRUE(p("10.20.0.0/16").contains(p("10.20.255.255")));
  EXPECT_FALSE(p("10.20.5.0/24").contains(p("10.20.0.0/16")));
  EXPECT_FALSE(p("10.20.0.0/16").contains(p("10.21.0.0/24")));
  EXPECT_TRUE(p("10.20.0.0/15").contains(p("10.21.0.0/24")));
  EXPECT_TRUE(p("fd00:20::/48").contains(p("fd00:20:0:5::/64")));
  EXPECT_FALSE(p("fd00:20::/48").contains(p("fd00:21::/64")));
  // Same bytes in different families are not related.
  EXPECT_FALSE(p("::/96").contains(p("0.0.0.0/0")));
}

TEST(IpPrefixTest, OverlapsIsSymmetric) {
  EXPECT_TRUE(p("10.0.0.0/8").overlaps(p("10.20.0.0/16")));
  EXPECT_TRUE(p("10.20.0.0/16").overlaps(p("10.0.0.0/8")));
  EXPECT_FALSE(p("10.20.0.0/16").overlaps(p("10.21.0.0/16")));
  EXPECT_FALSE(p("10.21.0.0/16").overlaps(p("10.20.0.0/16")));
  EXPECT_TRUE(p("fd00::/8").overlaps(p("fd00:99::10")));
  EXPECT_FALSE(p("fd00:20::/48").overlaps(p("fd00:30::/48")));
  EXPECT_FALSE(p("10.0.0.0/8").overlaps(p("::a00:0/104")));
}

TEST(IpPrefixTest, SubtractDisjointOrCoveringHole) {
  EXPECT_EQ(cidrs(p("10.20.0.0/16").subtract(p("10.30.0.0/16"))),
            std::vector<std::string>{"10.20.0.0/16"});
  EXPECT_TRUE(p("10.20.5.0/24").subtract(p("10.20.0.0/16")).empty());
  EXPECT_TRUE(p("10.20.0.0/16").subtract(p("10.20.0.0/16")).empty());
}

TEST(IpPrefixTest, SubtractHostFromIpv4Network) {
  EXPECT_EQ(
      cidrs(p("10.99.0.0/24").subtract(p("10.99.0.10"))),
      (std::vector<std::string>{"10.99.0.128/25", "10.99.0.64/26", "10.99.0.32/27", "10.99.0.16/28",
                                "10.99.0.0/29", "10.99.0.12/30", "10.99.0.8/31", "10.99.0.11/32"}));
}

TEST(IpPrefixTest, SubtractResultCoversExactlyTheRest) {
  const IpPrefix whole = p("fd00:20::/48");
  const IpPrefix hole = p("fd00:20:0:7::/64");
  const auto pieces = whole.subtract(hole);
  ASSERT_EQ(pieces.size(), 16u);  // one sibling per bit from /48 to /64
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_TRUE(whole.contains(pieces[i])) << pieces[i].toCidr();
    EXPECT_FALSE(pieces[i].overlaps(hole)) << pieces[i].toCidr();
    for (size_t j = i + 1; j < pieces.size(); ++j) {
      EXPECT_FALSE(pieces[i].overlaps(pieces[j]))
          << pieces[i].toCidr() << " " << pieces[j].toCidr();
    }
  }
  // Sizes add up: 2^16 /64s in the /48, minus the hole.
  uint64_t covered = 0;
  for (const auto& piece : pieces) covered += uint64_t{1} << (64 - piece.length());
  EXPECT_EQ(covered, (uint64_t{1} << 16) - 1);
}

TEST(IpPrefixTest, FromBytesClearsHostBitsAndClampsLength) {
  std::array<uint8_t, 16> bytes{};
  bytes[0] = 10;
  bytes[1] = 20;
  bytes[2] = 30;
  bytes[3] = 40;
  bytes[4] = 99;  // beyond IPv4: must be ignored
  const IpPrefix prefix = IpPrefix::fromBytes(IpFamily::kV4, bytes, 12);
  EXPECT_EQ(prefix.toCidr(), "10.16.0.0/12");
  EXPECT_EQ(prefix, p("10.16.0.0/12"));
  EXPECT_EQ(IpPrefix::fromBytes(IpFamily::kV4, bytes, 40).toCidr(), "10.20.30.40/32");
  EXPECT_EQ(IpPrefix::fromBytes(IpFamily::kV4, bytes, -3).toCidr(), "0.0.0.0/0");
}

TEST(IpPrefixTest, OrderingSortsByFamilyThenAddressThenLength) {
  EXPECT_LT(p("10.0.0.0/8"), p("10.0.0.0/16"));
  EXPECT_LT(p("10.0.0.0/16"), p("10.1.0.0/16"));
  EXPECT_LT(p("255.0.0.0/8"), p("::/0"));
}

}  // namespace
}  // namespace shadan

#include "common/isolation_scope.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace shadan {
namespace {

// Two segments split one /24 between them (office, lab), a protected one holding the
// management host, an IPv6 one, and the default segment.
constexpr const char* kPolicy = R"({
  "shadan_policy": 1,
  "name": "scope-test",
  "segments": {
    "office":   {"prefixes": ["10.20.0.0/24", "10.21.0.0/25"]},
    "lab":      {"prefixes": ["10.21.0.128/25"]},
    "mgmt":     {"prefixes": ["10.99.0.0/24"], "protected": true},
    "v6":       {"prefixes": ["fd00:20::/64"]},
    "internet": {"default": true}
  },
  "gateways": {"core-gw": {"borders": ["office", "lab", "mgmt", "v6", "internet"]}},
  "management": {"always_allow": [{"prefix": "10.99.0.10/32"}, {"prefix": "fd00:99::/120"}]},
  "profiles": {"full": {}}
})";

// The same without a default segment: an address outside every segment is in none.
constexpr const char* kPolicyWithoutDefault = R"({
  "shadan_policy": 1,
  "name": "scope-test-no-default",
  "segments": {"office": {"prefixes": ["10.20.0.0/24"]}, "dmz": {"prefixes": ["10.30.0.0/26"]}},
  "gateways": {"core-gw": {"borders": ["office", "dmz"]}},
  "management": {"always_allow": [{"prefix": "10.99.0.10/32"}]},
  "profiles": {"full": {}}
})";

Policy policyOf(const char* text) { return parsePolicy(text, "policy.json").value().policy; }

IpPrefix prefix(const char* text) { return IpPrefix::parse(text).value(); }

TEST(IsolationScopeTest, NamesRoundTripAndNothingElseParses) {
  for (IsolationScope scope : {IsolationScope::kHost, IsolationScope::kSegment,
                               IsolationScope::kUplink, IsolationScope::kIsland}) {
    EXPECT_EQ(parseIsolationScope(isolationScopeName(scope)), scope);
  }
  EXPECT_STREQ(isolationScopeName(IsolationScope::kHost), "host");
  EXPECT_STREQ(isolationScopeName(IsolationScope::kSegment), "segment");
  EXPECT_STREQ(isolationScopeName(IsolationScope::kUplink), "uplink");
  EXPECT_STREQ(isolationScopeName(IsolationScope::kIsland), "island");
  for (const char* bad : {"", "Host", "SEGMENT", "hosts", "uplink ", "@uplink", "building"}) {
    EXPECT_EQ(parseIsolationScope(bad), std::nullopt) << bad;
  }
}

TEST(IsolationScopeTest, SegmentOfHostFindsTheSegmentAHostLiesIn) {
  const Policy policy = policyOf(kPolicy);
  struct Case {
    const char* host;
    const char* segment;
  };
  const std::vector<Case> cases = {
      {"10.20.0.5", "office"},    {"10.20.0.5/32", "office"},
      {"10.20.0.0/24", "office"},  // the widest host prefix allowed, the whole segment prefix
      {"10.21.0.0/26", "office"},  // in the segment's second prefix
      {"10.21.0.200", "lab"},      // next to office in the same /24
      {"10.99.0.20", "mgmt"},      // a protected segment, outside the management prefix
      {"fd00:20::5", "v6"},        // IPv6
      {"fd00:20::100/120", "v6"},  // the widest IPv6 host prefix
  };
  for (const Case& c : cases) {
    auto segment = segmentOfHost(policy, prefix(c.host));
    ASSERT_TRUE(segment.ok()) << c.host << ": " << segment.error().message;
    EXPECT_EQ(*segment, c.segment) << c.host;
  }
}

TEST(IsolationScopeTest, SegmentOfHostRefusesWhatIsNoHostOfOneSegment) {
  const Policy policy = policyOf(kPolicy);
  struct Case {
    const char* host;
    const char* expected;  // substring of the message
  };
  const std::vector<Case> cases = {
      {"10.20.0.0/23", "host 10.20.0.0/23: too wide for a host quarantine (at most /24)"},
      {"10.0.0.0/8", "too wide"},
      {"fd00:20::/119", "host fd00:20::/119: too wide for a host quarantine (at most /120)"},
      {"10.99.0.10", "host 10.99.0.10: overlaps the management prefix 10.99.0.10"},
      {"10.99.0.0/24", "overlaps the management prefix 10.99.0.10"},
      {"fd00:99::7", "overlaps the management prefix fd00:99::/120"},
      {"192.0.2.7", "host 192.0.2.7: is in the default segment \"internet\""},
      {"fd00:30::1", "is in the default segment \"internet\""},
      {"10.21.0.0/24", "host 10.21.0.0/24: spans segment"},
  };
  for (const Case& c : cases) {
    auto segment = segmentOfHost(policy, prefix(c.host));
    ASSERT_FALSE(segment.ok()) << c.host << " accepted as " << *segment;
    EXPECT_EQ(segment.error().code, ErrorCode::kInvalidArgument) << c.host;
    EXPECT_NE(segment.error().message.find(c.expected), std::string::npos)
        << c.host << ": " << segment.error().message;
  }

  const Policy no_default = policyOf(kPolicyWithoutDefault);
  // Spanning a segment and the outside of every segment.
  auto spanning = segmentOfHost(no_default, prefix("10.30.0.0/24"));
  ASSERT_FALSE(spanning.ok());
  EXPECT_NE(spanning.error().message.find(
                "host 10.30.0.0/24: spans segment \"dmz\" and addresses outside it"),
            std::string::npos)
      << spanning.error().message;
  auto outside = segmentOfHost(no_default, prefix("192.0.2.7"));
  ASSERT_FALSE(outside.ok());
  EXPECT_NE(outside.error().message.find("host 192.0.2.7: is in no segment of the policy"),
            std::string::npos)
      << outside.error().message;
  EXPECT_EQ(segmentOfHost(no_default, prefix("10.20.0.9")).value(), "office");
  // No management prefix is ever quarantined, whatever segment holds it.
  EXPECT_FALSE(segmentOfHost(no_default, prefix("10.99.0.10")).ok());
}

TEST(IsolationScopeTest, GenerationKeysKeepSegmentNamesAndSeparateTheOtherRungs) {
  // A segment order keys by the segment's own name, as before the ladder.
  EXPECT_EQ(generationKey(IsolationScope::kSegment, "lgwan"), "lgwan");
  EXPECT_EQ(generationKey(IsolationScope::kHost, "lgwan"), "host:lgwan");
  EXPECT_EQ(generationKey(IsolationScope::kUplink, ""), "@uplink");
  EXPECT_EQ(generationKey(IsolationScope::kIsland, ""), "@island");
  // The segment is not part of an uplink or island key.
  EXPECT_EQ(generationKey(IsolationScope::kUplink, "lgwan"), "@uplink");
  EXPECT_NE(generationKey(IsolationScope::kHost, "lgwan"),
            generationKey(IsolationScope::kSegment, "lgwan"));
}

TEST(IsolationScopeTest, LabelsHaveOneFormPerRung) {
  EXPECT_EQ(isolationLabel(IsolationScope::kSegment, "office", std::nullopt, "full"),
            "office:full");
  EXPECT_EQ(isolationLabel(IsolationScope::kHost, "office", prefix("10.20.0.5"), "full"),
            "office/10.20.0.5/32:full");
  EXPECT_EQ(isolationLabel(IsolationScope::kHost, "office", prefix("10.20.0.0/28"), "full"),
            "office/10.20.0.0/28:full");
  EXPECT_EQ(isolationLabel(IsolationScope::kHost, "v6", prefix("fd00:20::5"), "full"),
            "v6/fd00:20::5/128:full");
  EXPECT_EQ(isolationLabel(IsolationScope::kHost, "office", std::nullopt, "full"), "office/*:full");
  EXPECT_EQ(isolationLabel(IsolationScope::kUplink, "", std::nullopt, "full"), "@uplink:full");
  EXPECT_EQ(isolationLabel(IsolationScope::kIsland, "", std::nullopt, "internet-only"),
            "@island:internet-only");
}

TEST(IsolationScopeTest, RecognisesLabelsAndRefusesLookAlikes) {
  for (const char* good : {"office:full", "office/10.20.0.5/32:full", "office/10.20.0.5:full",
                           "v6/fd00:20::5/128:full", "office/*:full", "@uplink:full",
                           "@island:internet-only", "a-b_c:d-e"}) {
    EXPECT_TRUE(isIsolationLabel(good)) << good;
  }
  for (const char* bad :
       {"", "office", "office:", ":full", "@uplink", "@building:full", "@uplink/x:full",
        "office/10.20.0.1/16:full", "office/nonsense:full", "office/:full", "/10.20.0.5:full",
        "off ice:full", "office:fu ll", "office/*/*:full", "office:full:extra"}) {
    EXPECT_FALSE(isIsolationLabel(bad)) << bad;
  }
}

}  // namespace
}  // namespace shadan

// ruleCountersFromJson: the counters of our table out of a libnftables JSON listing, over canned
// listings (no kernel, no root). The listing below is what nft 1.0.6 printed for the lab policy
// with office (full) and servers (internet-only) isolated, trimmed to the output chain, after
// three TCP SYNs from an office address; two rules were added by hand: one a foreign tool might
// write (a literal prefix instead of a set) and one with a named counter.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agents/dataplane/nftables_backend.h"

namespace shadan::agent {
namespace {

constexpr char kListing[] = R"({"nftables": [
{"metainfo":{"version":"1.0.6","release_name":"Lester Gooch #5","json_schema_version":1}},
{"table":{"family":"inet","name":"shadan","handle":2}},
{"set":{"family":"inet","name":"seg_office_v4","table":"shadan","type":"ipv4_addr","handle":6,"flags":["interval"],"elem":[{"prefix":{"addr":"10.20.0.0","len":24}}]}},
{"chain":{"family":"inet","table":"shadan","name":"output","handle":2,"type":"filter","hook":"output","prio":-150,"policy":"accept"}},
{"rule":{"family":"inet","table":"shadan","chain":"output","handle":28,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"10.99.0.10"}},{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":8443}},{"accept":null}]}},
{"rule":{"family":"inet","table":"shadan","chain":"output","handle":32,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":"@seg_office_v4"}},{"counter":{"packets":3,"bytes":180}},{"drop":null}]}},
{"rule":{"family":"inet","table":"shadan","chain":"output","handle":33,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"@seg_office_v4"}},{"counter":{"packets":0,"bytes":0}},{"drop":null}]}},
{"rule":{"family":"inet","table":"shadan","chain":"output","handle":34,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip6","field":"saddr"}},"right":"@seg_office_v6"}},{"counter":{"packets":0,"bytes":0}},{"drop":null}]}},
{"rule":{"family":"inet","table":"shadan","chain":"output","handle":36,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":"@seg_servers_v4"}},{"match":{"op":"!=","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"@known_v4"}},{"counter":{"packets":0,"bytes":0}},{"drop":null}]}},
{"rule":{"family":"inet","table":"shadan","chain":"output","handle":39,"expr":[{"match":{"op":"!=","left":{"payload":{"protocol":"ip6","field":"saddr"}},"right":"@known_v6"}},{"match":{"op":"==","left":{"payload":{"protocol":"ip6","field":"daddr"}},"right":"@seg_servers_v6"}},{"counter":{"packets":12345678901,"bytes":987654321098}},{"drop":null}]}},
{"rule":{"family":"inet","table":"shadan","chain":"output","handle":40,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":{"prefix":{"addr":"10.20.0.0","len":24}}}},{"counter":{"packets":9,"bytes":900}},{"drop":null}]}},
{"rule":{"family":"inet","table":"shadan","chain":"output","handle":41,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":"@seg_office_v4"}},{"counter":"named"},{"drop":null}]}}
]})";

struct Expected {
  std::string rule;
  uint64_t packets;
  uint64_t bytes;
};

TEST(NftRuleCountersTest, ReadsEveryCountedRuleInThePlannersSyntax) {
  const auto counters = ruleCountersFromJson(nlohmann::json::parse(kListing));
  ASSERT_TRUE(counters.ok()) << counters.error().message;
  // The management accept has no counter and the named counter holds no numbers of its own:
  // neither is listed. The literal prefix is listed, with no text a plan line could equal.
  const std::vector<Expected> expected = {
      {"ip saddr @seg_office_v4 counter drop", 3, 180},
      {"ip daddr @seg_office_v4 counter drop", 0, 0},
      {"ip6 saddr @seg_office_v6 counter drop", 0, 0},
      {"ip saddr @seg_servers_v4 ip daddr != @known_v4 counter drop", 0, 0},
      {"ip6 saddr != @known_v6 ip6 daddr @seg_servers_v6 counter drop", 12345678901, 987654321098},
      {"", 9, 900},
  };
  ASSERT_EQ(counters->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*counters)[i].chain, "output") << i;
    EXPECT_EQ((*counters)[i].rule, expected[i].rule) << i;
    EXPECT_EQ((*counters)[i].packets, expected[i].packets) << i;
    EXPECT_EQ((*counters)[i].bytes, expected[i].bytes) << i;
  }
}

TEST(NftRuleCountersTest, ATableWithoutRulesHasNoCounters) {
  const auto counters = ruleCountersFromJson(nlohmann::json::parse(
      R"({"nftables":[{"table":{"family":"inet","name":"shadan","handle":2}}]})"));
  ASSERT_TRUE(counters.ok()) << counters.error().message;
  EXPECT_TRUE(counters->empty());
}

TEST(NftRuleCountersTest, RefusesWhatIsNotAListingWithAReason) {
  const auto rule = [](const std::string& expr) {
    return R"({"nftables":[{"rule":{"chain":"input","expr":)" + expr + "}}]}";
  };
  struct Case {
    std::string json;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"[1,2]", "not a JSON object"},
      {R"({"nftables":3})", "no \"nftables\" array"},
      {R"({"nftables":[{"rule":7}]})", "a rule that is not an object"},
      {R"({"nftables":[{"rule":{"chain":"input"}}]})", "a rule without an expr array"},
      {rule(R"([{"counter":{"packets":-1,"bytes":0}},{"drop":null}])"), "unsigned packets"},
      {rule(R"([{"counter":{"packets":1}},{"drop":null}])"), "unsigned packets"},
      {rule(R"([{"counter":{"packets":"1","bytes":2}},{"drop":null}])"), "unsigned packets"},
  };
  for (const Case& c : cases) {
    const auto counters = ruleCountersFromJson(nlohmann::json::parse(c.json));
    ASSERT_FALSE(counters.ok()) << c.json;
    EXPECT_EQ(counters.error().code, ErrorCode::kKernel) << c.json;
    EXPECT_NE(counters.error().message.find("nft -j list table inet shadan"), std::string::npos)
        << counters.error().message;
    EXPECT_NE(counters.error().message.find(c.expected), std::string::npos)
        << "expected \"" << c.expected << "\" in: " << counters.error().message;
  }
}

TEST(NftRuleCountersTest, ExpressionsThePlannerNeverCountsGiveNoText) {
  // Each is one expression away from a planner drop; none may read like one.
  const std::vector<std::string> exprs = {
      R"({"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":"@seg_a_v4"}})",
      R"({"match":{"op":"<","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":"@seg_a_v4"}})",
      R"({"match":{"op":"==","left":{"meta":{"key":"iif"}},"right":"@seg_a_v4"}})",
      R"({"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":"seg_a_v4"}})",
      R"({"accept":null})",
      R"({"log":{"prefix":"x"}})",
      R"({"match":{},"drop":null})",
  };
  for (const std::string& expr : exprs) {
    const std::string json = R"({"nftables":[{"rule":{"chain":"forward","expr":[)" + expr +
                             R"(,{"counter":{"packets":1,"bytes":60}},{"drop":null}]}}]})";
    const auto counters = ruleCountersFromJson(nlohmann::json::parse(json));
    ASSERT_TRUE(counters.ok()) << counters.error().message;
    ASSERT_EQ(counters->size(), 1u) << expr;
    EXPECT_EQ((*counters)[0].rule, "") << expr;
    EXPECT_EQ((*counters)[0].packets, 1u);
  }
}

}  // namespace
}  // namespace shadan::agent

#include "agents/planner/planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/policy.h"

namespace shadan::agent {
namespace {

// Golden files are the planner's specification: read each one when it changes.
// To regenerate them after a deliberate change of the planner's output:
//   SHADAN_UPDATE_GOLDEN=1 ./planner_test
// writes tests/golden/planner/<case>.nft in the source tree instead of comparing; then review
// the diff by eye before committing.
const std::filesystem::path kGoldenDir =
    std::filesystem::path(SHADAN_SOURCE_DIR) / "tests" / "golden" / "planner";

bool updatingGoldens() {
  const char* value = std::getenv("SHADAN_UPDATE_GOLDEN");
  return value != nullptr && std::string(value) == "1";
}

std::string readFile(const std::filesystem::path& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  if (error) return "";
  std::string text(size, '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

Policy loadGoldenPolicy(const std::string& file) {
  Result<LoadedPolicy> loaded = loadPolicyFile(kGoldenDir / file);
  if (!loaded.ok()) {
    ADD_FAILURE() << "cannot load " << file << ": " << loaded.error().message;
    return Policy{};
  }
  return loaded->policy;
}

std::vector<std::string> routeStrings(const std::vector<IpPrefix>& routes) {
  std::vector<std::string> out;
  for (const IpPrefix& route : routes) out.push_back(route.toCidr());
  return out;
}

struct GoldenCase {
  std::string name;  // golden file: <name>.nft
  std::string policy_file;
  std::string gateway;
  std::vector<Isolation> isolations;
  std::vector<std::string> routes;  // exact blackhole routes, as CIDR
};

std::ostream& operator<<(std::ostream& out, const GoldenCase& golden) { return out << golden.name; }

Isolation hostIsolation(const std::string& segment, std::string_view host,
                        const std::string& profile) {
  Result<IpPrefix> prefix = IpPrefix::parse(host);
  if (!prefix.ok()) ADD_FAILURE() << prefix.error().message;
  return Isolation{segment, profile, IsolationScope::kHost, prefix.ok() ? *prefix : IpPrefix{}};
}

Isolation ladder(IsolationScope scope, const std::string& profile) {
  return Isolation{"", profile, scope};
}

const std::vector<GoldenCase>& goldenCases() {
  static const std::vector<GoldenCase> cases = {
      {"none", "municipality.policy.json", "core-gw", {}, {}},
      {"full_v4_v6", "municipality.policy.json", "core-gw", {{"lgwan", "full"}}, {}},
      {"full_v4_only", "municipality.policy.json", "core-gw", {{"mynumber", "full"}}, {}},
      {"peers_segment", "municipality.policy.json", "core-gw", {{"internet-zone", "no-lgwan"}}, {}},
      {"peers_default",
       "municipality.policy.json",
       "inet-gw",
       {{"internet-zone", "internet-only"}},
       {}},
      {"peers_default_v4_only",
       "municipality.policy.json",
       "core-gw",
       {{"mynumber", "internet-only"}},
       {}},
      {"allow_forensic", "municipality.policy.json", "core-gw", {{"lgwan", "forensic"}}, {}},
      {"default_full", "municipality.policy.json", "inet-gw", {{"internet", "full"}}, {}},
      {"default_peers", "municipality.policy.json", "inet-gw", {{"internet", "no-lgwan"}}, {}},
      {"several",
       "municipality.policy.json",
       "core-gw",
       {{"lgwan", "full"},
        {"mynumber", "internet-only"},
        {"juki-cs", "forensic"},
        {"lgwan", "full"},
        {"internet-zone", "no-lgwan"}},
       {}},
      {"management_inside", "municipality.policy.json", "core-gw", {{"mgmt", "full"}}, {}},
      // The ladder: hosts of one profile share one set; uplink matches interfaces; island cuts
      // every segment from everything outside it.
      {"hosts",
       "municipality.policy.json",
       "core-gw",
       {hostIsolation("lgwan", "10.20.1.5", "full"), hostIsolation("lgwan", "fd00:20::5", "full"),
        hostIsolation("lgwan", "10.20.7.0/24", "full"),
        hostIsolation("mynumber", "10.10.0.9", "forensic")},
       {}},
      {"host_in_cut_segment",
       "municipality.policy.json",
       "core-gw",
       {{"lgwan", "full"}, hostIsolation("lgwan", "10.20.1.5", "full")},
       {}},
      {"uplink",
       "municipality.policy.json",
       "inet-gw",
       {ladder(IsolationScope::kUplink, "full")},
       {}},
      {"uplink_allow",
       "municipality.policy.json",
       "inet-gw",
       {ladder(IsolationScope::kUplink, "forensic")},
       {}},
      {"island",
       "municipality.policy.json",
       "core-gw",
       {ladder(IsolationScope::kIsland, "full")},
       {}},
      {"ladder_all",
       "municipality.policy.json",
       "inet-gw",
       {hostIsolation("internet-zone", "10.30.0.7", "full"),
        {"internet-zone", "full"},
        ladder(IsolationScope::kUplink, "full"),
        ladder(IsolationScope::kIsland, "full")},
       {}},
      {"blackhole",
       "blackhole.policy.json",
       "gw",
       {{"servers", "forensic-blackhole"},
        {"clients", "full-blackhole"},
        {"ops", "full-blackhole"},
        {"internet", "full-blackhole"}},
       // servers 10.50.0.0/24 minus the agent channel 10.50.0.10 and the allowed upper half;
       // fd00:50::/64 minus the management /66; clients whole; ops lies entirely inside a
       // management prefix and the default segment never gets routes.
       {"10.50.0.0/29", "10.50.0.8/31", "10.50.0.11/32", "10.50.0.12/30", "10.50.0.16/28",
        "10.50.0.32/27", "10.50.0.64/26", "10.60.0.0/16", "fd00:50:0:0:4000::/66",
        "fd00:50:0:0:8000::/65"}},
  };
  return cases;
}

class PlannerGoldenTest : public testing::TestWithParam<GoldenCase> {};

TEST_P(PlannerGoldenTest, MatchesGoldenScriptAndRoutes) {
  const GoldenCase& golden = GetParam();
  const Policy policy = loadGoldenPolicy(golden.policy_file);
  Result<DataplanePlan> plan = planGateway(policy, golden.gateway, golden.isolations);
  ASSERT_TRUE(plan.ok()) << plan.error().message;

  const std::filesystem::path path = kGoldenDir / (golden.name + ".nft");
  if (updatingGoldens()) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << plan->nft_script;
  } else {
    ASSERT_TRUE(std::filesystem::exists(path)) << path << " missing; see SHADAN_UPDATE_GOLDEN";
    EXPECT_EQ(plan->nft_script, readFile(path)) << "golden " << path;
  }
  EXPECT_EQ(routeStrings(plan->blackhole_routes), golden.routes);
}

INSTANTIATE_TEST_SUITE_P(Goldens, PlannerGoldenTest, testing::ValuesIn(goldenCases()),
                         [](const testing::TestParamInfo<GoldenCase>& param_info) {
                           return param_info.param.name;
                         });

class PlannerTest : public testing::Test {
 protected:
  void SetUp() override { policy_ = loadGoldenPolicy("municipality.policy.json"); }

  std::string script(const std::vector<Isolation>& isolations,
                     const std::string& gateway = "core-gw") {
    Result<DataplanePlan> plan = planGateway(policy_, gateway, isolations);
    if (!plan.ok()) {
      ADD_FAILURE() << plan.error().message;
      return "";
    }
    return plan->nft_script;
  }

  Error planError(const std::vector<Isolation>& isolations,
                  const std::string& gateway = "core-gw") {
    Result<DataplanePlan> plan = planGateway(policy_, gateway, isolations);
    if (plan.ok()) {
      ADD_FAILURE() << "expected an error, got a plan:\n" << plan->nft_script;
      return Error{ErrorCode::kInternal, ""};
    }
    return plan.error();
  }

  Policy policy_;
};

TEST_F(PlannerTest, NoIsolationOnlyRemovesTheTable) {
  EXPECT_EQ(script({}), "add table inet shadan\ndelete table inet shadan\n");
  EXPECT_EQ(script({}, "inet-gw"), "add table inet shadan\ndelete table inet shadan\n");
}

TEST_F(PlannerTest, OrderAndRepetitionOfIsolationsDoNotChangeTheScript) {
  const std::string once = script({{"juki-cs", "full"}, {"lgwan", "internet-only"}});
  EXPECT_EQ(script({{"lgwan", "internet-only"}, {"juki-cs", "full"}}), once);
  EXPECT_EQ(script({{"lgwan", "internet-only"}, {"juki-cs", "full"}, {"lgwan", "internet-only"}}),
            once);
  EXPECT_NE(script({{"juki-cs", "full"}}), once);
}

TEST_F(PlannerTest, ManagementAcceptsComeBeforeEveryDropInEveryChain) {
  const std::string text = script({{"mgmt", "full"}, {"lgwan", "forensic"}});
  size_t chain_count = 0;
  for (const std::string chain : {"chain input", "chain output", "chain forward"}) {
    const size_t start = text.find(chain);
    ASSERT_NE(start, std::string::npos) << chain;
    const size_t end = text.find("\n\t}", start);
    const std::string body = text.substr(start, end - start);
    const size_t last_accept = body.rfind(" accept\n");
    const size_t first_drop = body.find(" drop\n");
    ASSERT_NE(last_accept, std::string::npos) << chain;
    ASSERT_NE(first_drop, std::string::npos) << chain;
    EXPECT_LT(last_accept, first_drop) << chain;
    EXPECT_NE(body.find("ip daddr 10.99.0.10 tcp dport 8443 accept"), std::string::npos);
    EXPECT_NE(body.find("ip saddr 10.99.0.10 tcp sport 8443 accept"), std::string::npos);
    ++chain_count;
  }
  EXPECT_EQ(chain_count, 3u);
}

TEST_F(PlannerTest, OnlyReferencedNonEmptySetsAreDeclared) {
  const std::string text = script({{"mynumber", "full"}});
  EXPECT_NE(text.find("set seg_mynumber_v4 {"), std::string::npos);
  EXPECT_EQ(text.find("seg_mynumber_v6"), std::string::npos);
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const bool ip6_drop =
        line.find("ip6 ") != std::string::npos && line.find(" drop") != std::string::npos;
    EXPECT_FALSE(ip6_drop) << "an IPv4-only segment needs no ip6 drop: " << line;
  }
  EXPECT_EQ(text.find("seg_lgwan"), std::string::npos);
  EXPECT_EQ(text.find("known_"), std::string::npos);
}

TEST_F(PlannerTest, UnknownGatewayIsNotFoundEvenWithoutIsolations) {
  for (const auto& isolations :
       {std::vector<Isolation>{}, std::vector<Isolation>{{"lgwan", "full"}}}) {
    const Error error = planError(isolations, "edge-gw");
    EXPECT_EQ(error.code, ErrorCode::kNotFound);
    EXPECT_NE(error.message.find("unknown gateway \"edge-gw\""), std::string::npos)
        << error.message;
  }
}

TEST_F(PlannerTest, UnknownSegmentIsNotFound) {
  const Error error = planError({{"lgwan", "full"}, {"payroll", "full"}});
  EXPECT_EQ(error.code, ErrorCode::kNotFound);
  EXPECT_NE(error.message.find("unknown segment \"payroll\""), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("core-gw"), std::string::npos) << error.message;
}

TEST_F(PlannerTest, UnknownProfileIsNotFound) {
  const Error error = planError({{"lgwan", "quarantine"}});
  EXPECT_EQ(error.code, ErrorCode::kNotFound);
  EXPECT_NE(error.message.find("unknown profile \"quarantine\""), std::string::npos)
      << error.message;
}

TEST_F(PlannerTest, SegmentNotBorderedByGatewayIsInvalid) {
  const Error error = planError({{"lgwan", "full"}}, "inet-gw");
  EXPECT_EQ(error.code, ErrorCode::kInvalidArgument);
  EXPECT_NE(error.message.find("gateway \"inet-gw\" does not border segment \"lgwan\""),
            std::string::npos)
      << error.message;
  // The default segment is a segment like any other: core-gw does not border it.
  EXPECT_EQ(planError({{"internet", "full"}}).code, ErrorCode::kInvalidArgument);
}

// The cases below need policies that parsePolicy rejects; the planner must still refuse them
// with a clear error rather than emit a script with a different meaning.
TEST_F(PlannerTest, PeerUnknownToThePolicyIsNotFound) {
  policy_.profiles["no-hr"] = Profile{"no-hr", "", {"hr"}, {}, false};
  const Error error = planError({{"lgwan", "no-hr"}});
  EXPECT_EQ(error.code, ErrorCode::kNotFound);
  EXPECT_NE(error.message.find("unknown peer segment \"hr\""), std::string::npos) << error.message;
}

TEST_F(PlannerTest, NameThatIsNotAnNftIdentifierIsInvalid) {
  Segment evil = policy_.segments.at("lgwan");
  evil.name = "x } drop";
  policy_.segments["x } drop"] = evil;
  policy_.gateways["core-gw"].borders.push_back("x } drop");
  const Error error = planError({{"x } drop", "full"}});
  EXPECT_EQ(error.code, ErrorCode::kInvalidArgument);
  EXPECT_NE(error.message.find("x } drop"), std::string::npos) << error.message;
}

TEST_F(PlannerTest, BlackholeOnPeersProfileIsInvalid) {
  policy_.profiles["internet-only"].blackhole_routes = true;
  EXPECT_EQ(planError({{"lgwan", "internet-only"}}).code, ErrorCode::kInvalidArgument);
}

TEST_F(PlannerTest, ManagementPortWithoutPortedProtocolIsInvalid) {
  policy_.always_allow.push_back(
      ManagementRule{"bad", *IpPrefix::parse("10.99.0.30"), L4Proto::kIcmp, 22});
  const Error error = planError({{"lgwan", "full"}});
  EXPECT_EQ(error.code, ErrorCode::kInvalidArgument);
  EXPECT_NE(error.message.find("10.99.0.30"), std::string::npos) << error.message;
}

TEST_F(PlannerTest, NestedPrefixesCollapseInsideASet) {
  // nftables rejects overlapping elements in an interval set.
  policy_.segments["lgwan"].prefixes = {*IpPrefix::parse("10.20.0.0/16"),
                                        *IpPrefix::parse("10.20.5.0/24"),
                                        *IpPrefix::parse("10.21.0.0/16")};
  const std::string text = script({{"lgwan", "full"}});
  EXPECT_NE(text.find("elements = { 10.20.0.0/16, 10.21.0.0/16 }"), std::string::npos) << text;
  // A segment inside a never-internet range appears once in the default segment's complement.
  policy_.segments["lgwan"].prefixes = {*IpPrefix::parse("169.254.10.0/24")};
  const std::string internet = script({{"internet", "full"}}, "inet-gw");
  EXPECT_EQ(internet.find("169.254.10.0/24"), std::string::npos) << internet;
  EXPECT_NE(internet.find("169.254.0.0/16"), std::string::npos) << internet;
}

TEST_F(PlannerTest, BlackholeRoutesOnlyForProfilesThatAskForThem) {
  policy_.profiles["full"].blackhole_routes = true;
  Result<DataplanePlan> plan =
      planGateway(policy_, "core-gw", {{"mgmt", "full"}, {"lgwan", "forensic"}});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  // mgmt 10.99.0.0/24 minus the management holes .10, .11, 0/28 (icmp), .20;
  // fd00:99::/64 minus fd00:99::10 and fd00:99::/120; lgwan (forensic) gets none.
  const std::vector<std::string> routes = routeStrings(plan->blackhole_routes);
  for (const std::string& route : routes) {
    const IpPrefix prefix = *IpPrefix::parse(route);
    for (const ManagementRule& rule : policy_.always_allow) {
      EXPECT_FALSE(prefix.overlaps(rule.prefix)) << route << " overlaps " << rule.prefix.toCidr();
    }
    EXPECT_TRUE(IpPrefix::parse("10.99.0.0/24")->contains(prefix) ||
                IpPrefix::parse("fd00:99::/64")->contains(prefix))
        << route;
  }
  EXPECT_NE(std::find(routes.begin(), routes.end(), "10.99.0.128/25"), routes.end());
  EXPECT_NE(std::find(routes.begin(), routes.end(), "10.99.0.21/32"), routes.end());
  EXPECT_TRUE(std::is_sorted(plan->blackhole_routes.begin(), plan->blackhole_routes.end()));
}

}  // namespace
}  // namespace shadan::agent

namespace shadan::agent {
namespace {

TEST_F(PlannerTest, LadderRungsAreRefusedWhereTheyCannotHold) {
  const auto refused = [&](const std::string& gateway, const Isolation& isolation,
                           const std::string& needle) {
    Result<DataplanePlan> plan = planGateway(policy_, gateway, {isolation});
    ASSERT_FALSE(plan.ok()) << isolationLabel(isolation);
    EXPECT_NE(plan.error().message.find(needle), std::string::npos) << plan.error().message;
  };
  // core-gw names no interface of the default segment: it has no uplink to cut.
  refused("core-gw", ladder(IsolationScope::kUplink, "full"), "has no uplink");
  // Uplink and island say what they cut; a profile with peers would say it twice.
  refused("inet-gw", ladder(IsolationScope::kUplink, "internet-only"), "has peers");
  refused("core-gw", ladder(IsolationScope::kIsland, "no-lgwan"), "has peers");
  // A host lies in the segment the isolation names, and in no management prefix.
  refused("core-gw", hostIsolation("mynumber", "10.20.1.5", "full"), "is in segment \"lgwan\"");
  refused("core-gw", hostIsolation("mgmt", "10.99.0.10", "full"), "management");
  refused("core-gw", hostIsolation("lgwan", "10.20.0.0/23", "full"), "too wide");
  refused("inet-gw", hostIsolation("lgwan", "10.20.1.5", "full"), "does not border");
  refused("core-gw", Isolation{"lgwan", "full", IsolationScope::kIsland}, "names no segment");
}

TEST_F(PlannerTest, ManyQuarantinedHostsStayOneSetAndOneRulePair) {
  std::vector<Isolation> hosts;
  for (int i = 0; i < 1000; ++i) {
    hosts.push_back(hostIsolation(
        "lgwan", "10.20." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1), "full"));
  }
  Result<DataplanePlan> plan = planGateway(policy_, "core-gw", hosts);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  size_t drops = 0;
  for (size_t at = plan->nft_script.find("@host_full_v4 counter drop"); at != std::string::npos;
       at = plan->nft_script.find("@host_full_v4 counter drop", at + 1)) {
    ++drops;
  }
  EXPECT_EQ(drops, 6u);  // saddr and daddr, in each of the three chains
  EXPECT_NE(plan->nft_script.find("10.20.3.250"), std::string::npos);
}

TEST(OwnerMarkTest, TheMarkIsTheTablesCommentAndReadsBack) {
  const std::string mark = ownerMark("gw", "/var/lib/shadan");
  EXPECT_EQ(mark, "shadan-agent gateway=gw state=/var/lib/shadan");
  auto loaded = loadPolicyFile(std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto plan = planGateway(loaded->policy, "gw", {{"office", "full"}}, mark);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_NE(plan->nft_script.find("table inet shadan {\n\tcomment \"" + mark + "\"\n"),
            std::string::npos);
  // `nft list table inet shadan` prints it the same way.
  EXPECT_EQ(ownerMarkOf("table inet shadan {\n\tcomment \"" + mark + "\"\n\tset x {\n"), mark);
  EXPECT_EQ(ownerMarkOf("table inet shadan {\n\tset x {\n"), "");
  EXPECT_EQ(ownerMarkOf(""), "");
}

TEST(OwnerMarkTest, PathsThatCouldBreakOutOfTheNftStringAreHashed) {
  for (const std::string& path : std::vector<std::string>{"/tmp/a\"b", "/tmp/a\nb", "/tmp/a b",
                                                          "/tmp/" + std::string(200, 'x')}) {
    const std::string mark = ownerMark("gw", path);
    EXPECT_EQ(mark.find('"'), std::string::npos) << mark;
    EXPECT_EQ(mark.find('\n'), std::string::npos) << mark;
    EXPECT_NE(mark.find("state-sha256="), std::string::npos) << mark;
    EXPECT_LE(mark.size(), 100u);
  }
  EXPECT_NE(ownerMark("gw", "/tmp/a b"), ownerMark("gw", "/tmp/a c"));
}

}  // namespace
}  // namespace shadan::agent

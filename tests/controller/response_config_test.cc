// The controller config's `response` section and detector token scopes: strict parsing, the
// checks against the policy, and the guard rails' counters (token bucket, action window).

#include "controller/alerts/response_config.h"

#include <gtest/gtest.h>

#include <string>

#include "controller/alerts/guard_rails.h"
#include "controller/config.h"
#include "tests/controller/controller_test_support.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

json baseConfig() {
  return json{{"api", {{"listen", "127.0.0.1:8443"}}},
              {"agent_hub", {{"listen", "127.0.0.1:8444"}}},
              {"tls", {{"ca", "ca.crt"}, {"cert", "c.crt"}, {"key", "c.key"}}},
              {"policy", "policy.json"},
              {"trust", "trust.json"},
              {"signing_key", "controller.ed25519"},
              {"state_dir", "/var/lib/x"},
              {"tokens",
               {{{"name", "ids-1"},
                 {"role", "detector"},
                 {"sha256", std::string(64, 'a')},
                 {"segments", {"lgwan"}}}}}};
}

Result<ControllerConfig> withResponse(const json& response) {
  json config = baseConfig();
  config["response"] = response;
  return parseControllerConfig(config.dump(), "controller.json");
}

std::string errorOf(const json& response) {
  auto parsed = withResponse(response);
  return parsed.ok() ? "" : parsed.error().message;
}

const json kRule = {{"name", "r"}, {"action", "quarantine-host"}};

TEST(ResponseConfigTest, ReadsEveryMemberWithItsDefaults) {
  auto parsed = withResponse(
      {{"rules",
        {{{"name", "eve-trojan"},
          {"match",
           {{"detector", "ids-1"},
            {"format", "eve"},
            {"signature_ids", {2024897}},
            {"segments", {"lgwan"}},
            {"min_severity", "high"}}},
          {"action", "quarantine-host"},
          {"host", "dst"},
          {"profile", "internet-only"},
          {"mode", "approve"},
          {"escalate", {{"hosts", 3}, {"window_s", 600}}}},
         kRule}},
       {"rate", {{"per_detector_per_min", 5}}},
       {"breaker", {{"max_actions", 7}, {"window_s", 60}, {"max_segments_percent", 25}}},
       {"protected_hosts", {"10.20.0.1", "10.20.0.16/28"}},
       {"default_ttl_s", 900}});
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const ResponseConfig& r = parsed->response;
  ASSERT_EQ(r.rules.size(), 2u);
  EXPECT_EQ(r.rules[0].match.format, AlertFormat::kEve);
  EXPECT_EQ(r.rules[0].match.signature_ids, std::vector<int64_t>{2024897});
  EXPECT_EQ(r.rules[0].match.min_severity, AlertSeverity::kHigh);
  EXPECT_EQ(r.rules[0].host, HostSide::kDst);
  EXPECT_EQ(r.rules[0].mode, ResponseMode::kApprove);
  ASSERT_TRUE(r.rules[0].escalate);
  EXPECT_EQ(r.rules[0].escalate->hosts, 3);
  EXPECT_EQ(r.rules[0].ttl_s, 900) << "the default TTL applies to rules without one";
  EXPECT_EQ(r.rules[1].host, HostSide::kInternal);
  EXPECT_EQ(r.rules[1].mode, ResponseMode::kAuto);
  EXPECT_EQ(r.rate.per_detector_per_min, 5);
  EXPECT_EQ(r.rate.intake_per_s, 1000);
  EXPECT_EQ(r.breaker.max_actions, 7);
  EXPECT_EQ(r.protected_hosts.size(), 2u);
  EXPECT_EQ(parsed->tokens[0].segments, std::vector<std::string>{"lgwan"});
}

TEST(ResponseConfigTest, RefusesWhatItDoesNotKnowNamingWhere) {
  EXPECT_EQ(errorOf({{"rulez", json::array()}}),
            "controller.json: /response/rulez: unknown field \"rulez\"");
  EXPECT_NE(
      errorOf({{"rules", {{{"name", "r"}, {"action", "nuke"}}}}}).find("/response/rules/0/action"),
      std::string::npos);
  EXPECT_NE(errorOf({{"rules", {{{"name", "r"}, {"action", "record"}, {"ttl_s", 10}}}}})
                .find("/response/rules/0/ttl_s"),
            std::string::npos)
      << "an automatic action lasts at least a minute";
  EXPECT_NE(errorOf({{"rules", {{{"name", "r"}, {"action", "record"}, {"ttl_s", 8 * 24 * 3600}}}}})
                .find("ttl_s"),
            std::string::npos);
  EXPECT_NE(errorOf({{"rules", {kRule, kRule}}}).find("duplicate rule name"), std::string::npos);
  EXPECT_NE(errorOf({{"rules",
                      {{{"name", "r"},
                        {"action", "isolate-segment"},
                        {"escalate", {{"hosts", 2}, {"window_s", 1}}}}}}})
                .find("escalate"),
            std::string::npos);
  EXPECT_NE(
      errorOf({{"rules", {{{"name", "r"}, {"action", "record"}, {"match", {{"format", "x"}}}}}}})
          .find("/match/format"),
      std::string::npos);
  EXPECT_NE(errorOf({{"protected_hosts", {"10.0.0.1/8"}}}).find("/response/protected_hosts/0"),
            std::string::npos);
  EXPECT_NE(errorOf({{"breaker", {{"max_segments_percent", 101}}}}).find("max_segments_percent"),
            std::string::npos);
}

TEST(ResponseConfigTest, OnlyDetectorTokensHaveAScope) {
  json config = baseConfig();
  config["tokens"][0]["role"] = "operator";
  auto parsed = parseControllerConfig(config.dump(), "controller.json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("/tokens/0/segments"), std::string::npos)
      << parsed.error().message;
  config = baseConfig();
  config["tokens"][0]["segments"] = {"*", "lgwan"};
  EXPECT_FALSE(parseControllerConfig(config.dump(), "controller.json").ok());
  config["tokens"][0]["segments"] = json::array();
  EXPECT_FALSE(parseControllerConfig(config.dump(), "controller.json").ok());
}

TEST(ResponseConfigTest, TheCheckAgainstThePolicyNamesThePathAndTheRule) {
  const Policy policy = parsePolicy(testing::kTestPolicy, "policy.json").value().policy;
  auto check = [&](const json& rule) {
    auto parsed = withResponse({{"rules", {kRule, rule}}});
    if (!parsed.ok()) return parsed.error().message;
    Status status = checkResponseConfig(parsed->response, policy, {"ids-1"}, "/etc/shadan/c.json");
    return status.ok() ? std::string() : status.error().message;
  };
  EXPECT_EQ(check({{"name", "a"}, {"action", "record"}, {"profile", "nope"}}),
            "/etc/shadan/c.json: /response/rules/1/profile: unknown profile \"nope\"");
  EXPECT_EQ(check({{"name", "a"}, {"action", "record"}, {"match", {{"segments", {"office"}}}}}),
            "/etc/shadan/c.json: /response/rules/1/match/segments/0: unknown segment \"office\"");
  EXPECT_NE(
      check({{"name", "a"}, {"action", "isolate-segment"}, {"match", {{"segments", {"mgmt"}}}}})
          .find("protected"),
      std::string::npos);
  EXPECT_NE(check({{"name", "a"}, {"action", "record"}, {"match", {{"detector", "ids-9"}}}})
                .find("no detector token"),
            std::string::npos);
  EXPECT_EQ(check({{"name", "a"}, {"action", "record"}, {"match", {{"segments", {"lgwan"}}}}}), "");
}

TEST(GuardRailsTest, TokenBucketRefillsWithTimeAndNeverBackwards) {
  TokenBucket bucket(2, 1);  // 2 tokens, 1 per second
  EXPECT_TRUE(bucket.take(1000));
  EXPECT_TRUE(bucket.take(1000));
  EXPECT_FALSE(bucket.take(1000));
  EXPECT_EQ(bucket.millisUntil(1000, 1), 1000);
  EXPECT_FALSE(bucket.take(500)) << "a clock stepped back mints nothing";
  EXPECT_TRUE(bucket.take(2000));
  EXPECT_FALSE(bucket.take(2000, 5)) << "more than it can ever hold";
  EXPECT_EQ(bucket.millisUntil(2000, 5), 2000) << "the time to fill it";
}

TEST(GuardRailsTest, ActionWindowForgetsWhatLeftTheWindow) {
  ActionWindow window(1000);
  window.add(0);
  window.add(500);
  EXPECT_EQ(window.count(900), 2u);
  EXPECT_EQ(window.count(1000), 1u);
  EXPECT_EQ(window.count(1500), 0u);
  EXPECT_EQ(window.count(100), 0u) << "time does not run back";
}

}  // namespace
}  // namespace shadan::controller

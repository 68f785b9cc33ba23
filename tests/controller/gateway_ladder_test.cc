#include "controller/gateway_ladder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shadan::controller {
namespace {

using nlohmann::json;

TEST(GatewayLadderTest, ReadsEveryRungFromAckLabels) {
  const GatewayLadder ladder = ladderFromLabels(
      {"lgwan:full", "lgwan:internet-only", "office/10.30.0.5/32:full", "office/10.30.0.16/28:full",
       "kiosk/*:full", "@uplink:full", "@island:full"});
  const json out = ladder.toJson();
  EXPECT_EQ(out["segments"], json::parse(R"({"lgwan":["full","internet-only"]})"));
  EXPECT_EQ(out["hosts"], json::parse(R"({"office":["10.30.0.5","10.30.0.16/28"],"kiosk":[]})"));
  EXPECT_EQ(out["hosts_unlisted"], json::array({"kiosk"}));
  EXPECT_EQ(out["uplink"], json::parse(R"({"profiles":["full"],"link_down":null})"));
  EXPECT_EQ(out["island"], json::parse(R"({"profiles":["full"]})"));
  EXPECT_EQ(out["acked_at"], nullptr);
  EXPECT_EQ(out["pending"], json::array());
}

TEST(GatewayLadderTest, NothingIsolatedIsAnEmptyLadder) {
  const json out = ladderFromLabels({}).toJson();
  EXPECT_EQ(out["segments"], json::object());
  EXPECT_EQ(out["hosts"], json::object());
  EXPECT_EQ(out["hosts_unlisted"], json::array());
  EXPECT_EQ(out["uplink"], nullptr);
  EXPECT_EQ(out["island"], nullptr);
}

TEST(GatewayLadderTest, SkipsWhatIsNotALabel) {
  const json out =
      ladderFromLabels({"lgwan", "@moon:full", "office/999.1.1.1:full", "a:b:c"}).toJson();
  EXPECT_EQ(out["segments"], json::object());
  EXPECT_EQ(out["hosts"], json::object());
  EXPECT_EQ(out["uplink"], nullptr);
}

TEST(GatewayLadderTest, LastStateGivesTheAckTimeAndLinkDownAndPendingShow) {
  GatewayLadder ladder = ladderFromLastState(
      R"({"isolated":["@uplink:full"],"ruleset_sha256":"x","acked_at":"2026-11-26T10:00:00.000Z"})");
  ladder.link_down = true;
  ladder.pending.push_back(PendingRung{"id-1", "isolate", IsolationScope::kHost, "lgwan"});
  ladder.pending.push_back(PendingRung{"id-2", "restore", IsolationScope::kIsland, ""});
  const json out = ladder.toJson();
  EXPECT_EQ(out["uplink"]["link_down"], true);
  EXPECT_EQ(out["acked_at"], "2026-11-26T10:00:00.000Z");
  EXPECT_EQ(out["pending"], json::parse(R"([
      {"order_id":"id-1","action":"isolate","scope":"host","segment":"lgwan"},
      {"order_id":"id-2","action":"restore","scope":"island"}])"));

  EXPECT_EQ(ladderFromLastState("").toJson()["acked_at"], nullptr);
  EXPECT_EQ(ladderFromLastState("not json").toJson()["segments"], json::object());
}

}  // namespace
}  // namespace shadan::controller

// The API's isolate and restore bodies for every rung of the ladder, through ApiRouter::handle
// (no transport: api_server_test.cc covers TLS and HTTP).

#include "controller/api_router.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/sha256.h"
#include "tests/controller/controller_test_support.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

constexpr const char* kOperatorToken = "operator-secret-token";
constexpr const char* kDetectorToken = "detector-secret-token";

class ApiRouterTest : public ::testing::Test {
 protected:
  ApiRouterTest() {
    policy_ = parsePolicy(testing::kLadderTestPolicy, "policy.json").value().policy;
    trust_ = parseTrust(keys_.trustDoc().dump(), "trust.json").value();
    store_ = openSqliteControllerStore(dir_.path().string()).value();
    service_ = std::make_unique<OrdersService>(policy_, trust_, keys_.controller, *store_, hub_,
                                               audit_, clock_, OrdersServiceOptions{});
    tokens_ = std::make_unique<TokenTable>(
        std::vector<ApiToken>{{"sato", ApiRole::kOperator, sha256Hex(kOperatorToken)},
                              {"ids-1", ApiRole::kDetector, sha256Hex(kDetectorToken)}});
    router_ = std::make_unique<ApiRouter>(*tokens_, *service_);
  }

  ApiResponse post(const std::string& path, const std::string& body,
                   const char* token = kOperatorToken) {
    return router_->handle(ApiRequest{"POST", path, std::string("Bearer ") + token, body});
  }

  // The error message of a refused request, with its status checked.
  std::string refusal(const ApiResponse& response, int status) {
    EXPECT_EQ(response.status, status) << response.body.dump();
    return response.body["error"]["message"].get<std::string>();
  }

  size_t ordersStored() { return store_->listOrders(100).value().size(); }

  testing::TestKeys keys_;
  testing::TempDir dir_;
  Policy policy_;
  Trust trust_;
  ControllerStorePtr store_;
  testing::FakeHub hub_;
  testing::FakeAuditSink audit_;
  testing::FakeClock clock_{testing::kControllerTestStartMs};
  std::unique_ptr<OrdersService> service_;
  std::unique_ptr<TokenTable> tokens_;
  std::unique_ptr<ApiRouter> router_;
};

TEST_F(ApiRouterTest, SegmentIsTheDefaultScopeAndStillNeedsItsSegment) {
  auto isolate = post("/v1/isolate", R"({"segment":"lgwan","reason":"worm"})", kDetectorToken);
  ASSERT_EQ(isolate.status, 202) << isolate.body.dump();
  EXPECT_EQ(isolate.body["scope"], "segment");
  EXPECT_EQ(isolate.body["segment"], "lgwan");
  EXPECT_EQ(isolate.body["gateways"], json::array({"core-gw", "edge-gw"}));

  const std::string missing = refusal(post("/v1/isolate", R"({"reason":"worm"})"), 400);
  EXPECT_NE(missing.find("segment"), std::string::npos) << missing;
  auto explicit_scope =
      post("/v1/isolate", R"({"scope":"segment","segment":"office","reason":"worm"})");
  ASSERT_EQ(explicit_scope.status, 202) << explicit_scope.body.dump();
  EXPECT_EQ(explicit_scope.body["gateways"], json::array({"edge-gw", "lab-gw"}));
}

TEST_F(ApiRouterTest, HostIsolateAnswersItsSegmentHostsAndGateways) {
  auto isolate = post("/v1/isolate",
                      R"({"scope":"host","hosts":["10.20.0.5","fd00:20::7"],"reason":"EDR alert",
                          "ttl_s":3600})",
                      kDetectorToken);
  ASSERT_EQ(isolate.status, 202) << isolate.body.dump();
  EXPECT_EQ(isolate.body["state"], "dispatched");
  EXPECT_EQ(isolate.body["scope"], "host");
  EXPECT_EQ(isolate.body["segment"], "lgwan");
  EXPECT_EQ(isolate.body["hosts"], json::array({"10.20.0.5", "fd00:20::7"}));
  EXPECT_EQ(isolate.body["gateways"], json::array({"core-gw", "edge-gw"}));

  auto named = post("/v1/isolate",
                    R"({"scope":"host","segment":"kiosk","hosts":["10.20.0.200"],"reason":"x"})");
  ASSERT_EQ(named.status, 202) << named.body.dump();
  EXPECT_EQ(named.body["gateways"], json::array({"edge-gw"}));
}

TEST_F(ApiRouterTest, UplinkAndIslandAnswerTheirTargetsAndWaitForApproval) {
  auto uplink = post("/v1/isolate", R"({"scope":"uplink","reason":"exfiltration"})");
  ASSERT_EQ(uplink.status, 202) << uplink.body.dump();
  EXPECT_EQ(uplink.body["state"], "awaiting_approval");
  EXPECT_EQ(uplink.body["needed"], 2);
  EXPECT_EQ(uplink.body["gateways"], json::array({"core-gw", "edge-gw"}));
  EXPECT_FALSE(uplink.body.contains("segment"));

  auto island = post("/v1/isolate", R"({"scope":"island","gateways":["lab-gw"],"reason":"x"})");
  ASSERT_EQ(island.status, 202) << island.body.dump();
  EXPECT_EQ(island.body["gateways"], json::array({"lab-gw"}));

  auto detector = post("/v1/isolate", R"({"scope":"island","reason":"x"})", kDetectorToken);
  EXPECT_EQ(detector.status, 403) << detector.body.dump();

  auto restore = post("/v1/restore", R"({"scope":"uplink","gateways":["edge-gw"],"reason":"ok"})");
  ASSERT_EQ(restore.status, 202) << restore.body.dump();
  EXPECT_EQ(restore.body["gateways"], json::array({"edge-gw"}));
  EXPECT_EQ(restore.body["needed"], 2);
}

TEST_F(ApiRouterTest, LinkDownReachesTheAuthzOfAnUplinkIsolate) {
  policy_.gateways["core-gw"].link_down = {"eth0"};
  auto uplink = post("/v1/isolate",
                     R"({"scope":"uplink","gateways":["core-gw"],"link_down":true,"reason":"x"})");
  ASSERT_EQ(uplink.status, 202) << uplink.body.dump();
  auto approvals = service_->pendingApprovals().value()["approvals"];
  ASSERT_EQ(approvals.size(), 1u);
  auto payload = base64Decode(approvals[0]["payload"].get<std::string>()).value();
  const Authz authz = parseAuthz(std::string(payload.begin(), payload.end())).value();
  EXPECT_EQ(authz.scope, IsolationScope::kUplink);
  EXPECT_TRUE(authz.link_down);
  EXPECT_EQ(authz.targets, std::vector<std::string>{"core-gw"});
}

TEST_F(ApiRouterTest, RefusesBadRungBodiesWithoutStoringAnything) {
  struct Case {
    const char* path;
    const char* body;
    int status;
    const char* message;
  };
  const Case cases[] = {
      {"/v1/isolate", R"({"scope":"rack","segment":"lgwan","reason":"x"})", 400,
       R"(must be "segment", "host", "uplink" or "island")"},
      {"/v1/isolate", R"({"scope":"host","hosts":"10.20.0.5","reason":"x"})", 400, "hosts"},
      {"/v1/isolate", R"({"scope":"host","hosts":[],"reason":"x"})", 400, "must not be empty"},
      {"/v1/isolate", R"({"scope":"host","hosts":[5],"reason":"x"})", 400, "hosts"},
      {"/v1/isolate", R"({"scope":"host","hosts":["8.8.8.8"],"reason":"x"})", 400,
       "default segment"},
      {"/v1/isolate", R"({"scope":"host","hosts":["10.30.0.100"],"reason":"x"})", 400,
       "management"},
      {"/v1/isolate", R"({"scope":"host","hosts":["10.20.0.0/16"],"reason":"x"})", 400, "too wide"},
      {"/v1/isolate", R"({"scope":"host","hosts":["10.20.0.0/24"],"reason":"x"})", 400, "spans"},
      {"/v1/isolate", R"({"scope":"host","hosts":["10.20.0.5","10.30.0.5"],"reason":"x"})", 400,
       "10.30.0.5 is in segment office"},
      {"/v1/isolate", R"({"scope":"host","segment":"office","hosts":["10.20.0.5"],"reason":"x"})",
       400, "the hosts lie in segment lgwan, not office"},
      {"/v1/isolate", R"({"scope":"uplink","gateways":["nope-gw"],"reason":"x"})", 404,
       "unknown gateway"},
      {"/v1/isolate", R"({"scope":"island","gateways":[],"reason":"x"})", 400, "must not be empty"},
      {"/v1/isolate", R"({"scope":"uplink","gateways":["lab-gw"],"reason":"x"})", 400,
       "lab-gw has no interfaces of the default segment"},
      {"/v1/isolate", R"({"scope":"island","link_down":true,"reason":"x"})", 400,
       "only an uplink isolate sets links down"},
      {"/v1/isolate", R"({"scope":"uplink","link_down":"yes","reason":"x"})", 400, "link_down"},
      {"/v1/isolate", R"({"segment":"lgwan","gateways":["core-gw"],"reason":"x"})", 400,
       "only uplink and island orders name gateways"},
      {"/v1/isolate", R"({"scope":"uplink","segment":"lgwan","reason":"x"})", 400,
       "names no segment"},
      {"/v1/restore", R"({"scope":"uplink","link_down":true,"reason":"x"})", 400, "link_down"},
      {"/v1/restore", R"({"scope":"host","hosts":["10.99.0.10"],"reason":"x"})", 400, "management"},
      {"/v1/restore", R"({"scope":"island","gateways":["nope-gw"],"reason":"x"})", 404,
       "unknown gateway"},
  };
  for (const Case& c : cases) {
    const std::string message = refusal(post(c.path, c.body), c.status);
    EXPECT_NE(message.find(c.message), std::string::npos) << c.body << ": " << message;
  }
  EXPECT_EQ(ordersStored(), 0u);
  EXPECT_TRUE(store_->listSegments().value().empty());
  EXPECT_TRUE(audit_.events.empty());
}

}  // namespace
}  // namespace shadan::controller

// The API's isolate and restore bodies for every rung of the ladder, through ApiRouter::handle
// (no transport: api_server_test.cc covers TLS and HTTP).

#include "controller/api_router.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/log_file_system.h"
#include "common/sha256.h"
#include "common/strict_json.h"
#include "tests/controller/api_stack.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

using testing::kDetectorToken;
using testing::kOperatorToken;

class ApiRouterTest : public ::testing::Test, protected testing::ApiStack {
 protected:
  ApiRouterTest() : ApiStack(testing::kLadderTestPolicy) {}

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

namespace shadan::controller {
namespace {

// POST /v1/alerts and the automatic actions' endpoints, through the router with a responder.
class AlertApiTest : public ApiRouterTest {
 protected:
  AlertApiTest() {
    const json section = {{"rules",
                           {{{"name", "ssh"},
                             {"match", {{"rules", {"ssh-brute"}}}},
                             {"action", "quarantine-host"},
                             {"host", "src"},
                             {"ttl_s", 600}}}},
                          {"rate", {{"intake_per_s", 1}}}};
    const StrictObjectReader reader(section, "c.json", "/response", StrictJsonWording::kFields);
    config_ = parseResponseConfig(reader).value();
    scoped_ = {{"sato", ApiRole::kOperator, sha256Hex(kOperatorToken), std::nullopt},
               {"ids-1", ApiRole::kDetector, sha256Hex(kDetectorToken),
                std::vector<std::string>{"office"}}};
    responder_ = std::make_unique<AlertResponder>(config_, scoped_, policy_, *service_, *store_,
                                                  audit_, clock_);
    EXPECT_TRUE(responder_->load().ok());
    // The router authenticates with the same tokens (the detector's scope rides on its caller).
    router_.reset();
    tokens_ = std::make_unique<TokenTable>(scoped_);
    router_ = std::make_unique<ApiRouter>(*tokens_, *service_);
    router_->setAlertResponder(responder_.get());
  }

  ApiResponse alerts(const std::string& target, const std::string& body,
                     const std::string& content_type, const char* token = kDetectorToken) {
    ApiRequest request{"POST", target, std::string("Bearer ") + token, body};
    request.content_type = content_type;
    request.peer = "10.99.0.50";
    return router_->handle(request);
  }

  ResponseConfig config_;
  std::vector<ApiToken> scoped_;
  std::unique_ptr<AlertResponder> responder_;
};

constexpr const char* kAlert =
    R"({"source":"ids","rule":"ssh-brute","severity":"high","src_ip":"10.30.0.5",)"
    R"("time":"2026-11-26T10:00:00Z"})";

TEST_F(AlertApiTest, AnswersOneDecisionPerRecordInOrder) {
  auto answer = alerts("/v1/alerts", std::string(kAlert) + "\n[not json\n", "application/x-ndjson");
  ASSERT_EQ(answer.status, 200) << answer.body.dump();
  ASSERT_EQ(answer.body["results"].size(), 2u);
  EXPECT_EQ(answer.body["results"][0]["decision"], "acted");
  EXPECT_TRUE(answer.body["results"][0]["order_id"].is_string());
  EXPECT_EQ(answer.body["results"][1]["decision"], "refused");
  EXPECT_TRUE(answer.body["results"][1]["order_id"].is_null());

  // The operator sees it among the approvals as "confirm or release", and releases it.
  auto approvals = router_->handle(
      ApiRequest{"GET", "/v1/approvals", std::string("Bearer ") + kOperatorToken, ""});
  ASSERT_EQ(approvals.status, 200);
  EXPECT_TRUE(approvals.body["approvals"].empty());
  ASSERT_EQ(approvals.body["automatic"].size(), 1u);
  EXPECT_EQ(approvals.body["automatic"][0]["kind"], "automatic");
  EXPECT_EQ(approvals.body["automatic"][0]["state"], "active");
  EXPECT_EQ(approvals.body["automatic"][0]["awaiting"], "confirm or release");
  const std::string id = answer.body["results"][0]["order_id"];
  EXPECT_EQ(post("/v1/orders/" + id + "/release", R"({"reason":"x"})", kDetectorToken).status, 403);
  EXPECT_EQ(post("/v1/orders/" + id + "/release", R"({})").status, 400);
  auto released = post("/v1/orders/" + id + "/release", R"({"reason":"false positive"})");
  ASSERT_EQ(released.status, 200) << released.body.dump();
  EXPECT_EQ(released.body["state"], "released");
  EXPECT_EQ(post("/v1/orders/" + id + "/confirm", R"({"reason":"x"})").status, 409);
  EXPECT_EQ(post("/v1/orders/nope/confirm", R"({"reason":"x"})").status, 404);

  auto status =
      router_->handle(ApiRequest{"GET", "/v1/status", std::string("Bearer ") + kOperatorToken, ""});
  ASSERT_EQ(status.status, 200);
  EXPECT_FALSE(status.body["response"]["breaker"]["open"].get<bool>());
  EXPECT_EQ(status.body["response"]["alerts"]["acted"], 1);
}

TEST_F(AlertApiTest, RefusesTheWrongRoleFormatOrSizeAndOverTheLimitSays429) {
  EXPECT_EQ(alerts("/v1/alerts", kAlert, "application/json", kOperatorToken).status, 403);
  EXPECT_EQ(alerts("/v1/alerts?format=snort", kAlert, "application/json").status, 400);
  EXPECT_EQ(alerts("/v1/alerts", kAlert, "text/plain").status, 400);
  EXPECT_EQ(
      alerts("/v1/alerts", std::string(kAlertBodyMaxBytes + 1, ' '), "application/json").status,
      413);
  EXPECT_EQ(ordersStored(), 0u);
  // intake_per_s 1: a full batch of 1000 drains the bucket; the next request is refused whole.
  std::string batch;
  for (int i = 0; i < 1000; ++i) batch += std::string(kAlert) + "\n";
  ASSERT_EQ(alerts("/v1/alerts?format=shadan", batch, "").status, 200);
  auto over = alerts("/v1/alerts", kAlert, "application/json");
  EXPECT_EQ(over.status, 429);
  EXPECT_GT(over.retry_after_s, 0);
  EXPECT_EQ(apiBodyLimit("POST", "/v1/alerts?format=eve"), kAlertBodyMaxBytes);
  EXPECT_EQ(apiBodyLimit("POST", "/v1/isolate"), kApiMaxBodyBytes);
}

TEST_F(AlertApiTest, TheBreakerIsOpenedAndClosedByOperatorsWithAReason) {
  EXPECT_EQ(post("/v1/breaker/open", R"({"reason":"x"})", kDetectorToken).status, 403);
  auto opened = post("/v1/breaker/open", R"({"reason":"maintenance window"})");
  ASSERT_EQ(opened.status, 200) << opened.body.dump();
  EXPECT_TRUE(opened.body["open"].get<bool>());
  EXPECT_EQ(post("/v1/breaker/open", R"({"reason":"again"})").status, 409);
  auto answer = alerts("/v1/alerts", kAlert, "application/json");
  EXPECT_EQ(answer.body["results"][0]["decision"], "breaker_open");
  EXPECT_EQ(ordersStored(), 0u);
  auto closed = post("/v1/breaker/close", R"({"reason":"done"})");
  ASSERT_EQ(closed.status, 200);
  EXPECT_FALSE(closed.body["open"].get<bool>());
}

}  // namespace
}  // namespace shadan::controller

namespace shadan::controller {
namespace {

TEST_F(AlertApiTest, AScopedDetectorIsolatesOnlyItsSegmentsThroughTheApiToo) {
  const std::string refused =
      refusal(post("/v1/isolate", R"({"segment":"lgwan","reason":"worm"})", kDetectorToken), 403);
  EXPECT_NE(refused.find("segments scope"), std::string::npos) << refused;
  EXPECT_EQ(ordersStored(), 0u);
  EXPECT_EQ(
      post("/v1/isolate", R"({"segment":"office","reason":"worm","ttl_s":600})", kDetectorToken)
          .status,
      202);
}

}  // namespace
}  // namespace shadan::controller

namespace shadan::controller {
namespace {

// Issue #17: a drill ends on its own, so the API refuses a drill isolate without ttl_s before
// anything is stored, naming the member; a restore body may say drill.
TEST_F(ApiRouterTest, DrillIsolateWithoutTtlIsRefusedNamingTtl) {
  const std::string message =
      refusal(post("/v1/isolate", R"({"segment":"lgwan","reason":"drill","drill":true})"), 400);
  EXPECT_NE(message.find("/ttl_s"), std::string::npos) << message;
  EXPECT_EQ(ordersStored(), 0u);
  auto timed =
      post("/v1/isolate", R"({"segment":"lgwan","reason":"drill","drill":true,"ttl_s":600})");
  EXPECT_EQ(timed.status, 202) << timed.body.dump();

  auto restore = post("/v1/restore", R"({"segment":"lgwan","reason":"drill over","drill":true})");
  ASSERT_EQ(restore.status, 202) << restore.body.dump();
  auto order = store_->getOrder(restore.body["order_id"].get<std::string>()).value();
  ASSERT_TRUE(order.has_value());
  EXPECT_TRUE(order->drill);
  const std::string bad =
      refusal(post("/v1/restore", R"({"segment":"lgwan","reason":"x","drill":"yes"})"), 400);
  EXPECT_NE(bad.find("/drill"), std::string::npos) << bad;
}

// What the agents' authz parser refuses is refused here, before anything is signed: a reason
// or ticket with a control character, a ticket over 256 bytes (common/orders.cc). Accepted,
// such an order would be "dispatched" and refused by every gateway.
TEST_F(ApiRouterTest, RefusesReasonsAndTicketsNoAgentWouldAccept) {
  const std::string long_ticket(257, 't');
  const std::string cases[] = {
      R"({"segment":"lgwan","reason":"worm\nsecond line"})",
      R"({"segment":"lgwan","reason":"tab\there"})",
      R"({"segment":"lgwan","reason":"x","ticket":"INC-1\u0007"})",
      R"({"segment":"lgwan","reason":"x","ticket":")" + long_ticket + R"("})",
  };
  for (const std::string& body : cases) {
    for (const char* path : {"/v1/isolate", "/v1/restore"}) {
      const std::string message = refusal(post(path, body), 400);
      EXPECT_TRUE(message.find("control character") != std::string::npos ||
                  message.find("longer than 256 bytes") != std::string::npos)
          << path << " " << body << ": " << message;
    }
  }
  EXPECT_EQ(ordersStored(), 0u);
  const std::string ticket(256, 't');
  EXPECT_EQ(
      post("/v1/isolate", R"({"segment":"lgwan","reason":"worm","ticket":")" + ticket + R"("})")
          .status,
      202);
}

// The console's preview: the order as POST /v1/isolate would make it, with nothing stored,
// sent or audited.
TEST_F(ApiRouterTest, PreviewAnswersTheOrderWithoutStoringSendingOrAuditing) {
  // edge-gw: enrolled and connected; lab-gw never said hello.
  AgentRecord edge;
  edge.agent_id = "edge-gw";
  edge.keyid = keys_.edge_gw.keyId();
  edge.status = AgentStatus::kApproved;
  ASSERT_TRUE(store_->putAgent(edge).ok());
  hub_.online.insert("edge-gw");
  const size_t audited = audit_.events.size();
  auto preview = post("/v1/isolate/preview",
                      R"({"segment":"office","reason":"worm","ttl_s":600,"profile":"full"})");
  ASSERT_EQ(preview.status, 200) << preview.body.dump();
  EXPECT_EQ(ordersStored(), 0u);
  EXPECT_EQ(audit_.events.size(), audited);
  EXPECT_TRUE(hub_.sent.empty());
  const json& body = preview.body;
  EXPECT_EQ(body["action"], "isolate");
  EXPECT_EQ(body["scope"], "segment");
  EXPECT_EQ(body["segment"], "office");
  EXPECT_EQ(body["ttl_s"], 600);
  ASSERT_EQ(body["gateways"].size(), 2u);
  EXPECT_EQ(body["gateways"][0]["gateway_id"], "edge-gw");
  EXPECT_TRUE(body["gateways"][0]["connected"].get<bool>());
  EXPECT_EQ(body["gateways"][1]["gateway_id"], "lab-gw");
  EXPECT_FALSE(body["gateways"][1]["connected"].get<bool>());
  EXPECT_EQ(body["gateways"][0]["enrollment"], "approved");
  EXPECT_EQ(body["gateways"][1]["enrollment"], "unknown");
  EXPECT_EQ(body["cuts"]["prefixes"], json::array({"10.30.0.0/16"}));
  EXPECT_EQ(body["cuts"]["from"], "everything");
  ASSERT_EQ(body["keeps"]["management"].size(), 2u);
  EXPECT_EQ(body["keeps"]["management"][1]["prefix"], "10.30.0.100");
  EXPECT_EQ(body["signing"]["by"], "controller");
  // The offline gateway is named in a note before anything is sent.
  ASSERT_FALSE(body["notes"].empty());
  EXPECT_NE(body["notes"][0].get<std::string>().find("1 of 2 gateways"), std::string::npos)
      << body["notes"].dump();

  // The same body, sent, goes to exactly the gateways previewed.
  auto sent = post("/v1/isolate", R"({"segment":"office","reason":"worm","ttl_s":600})");
  ASSERT_EQ(sent.status, 202) << sent.body.dump();
  EXPECT_EQ(sent.body["gateways"], json::array({"edge-gw", "lab-gw"}));
}

TEST_F(ApiRouterTest, PreviewOfProtectedCutsAndRestoresNamesTheSignaturesTheyWaitFor) {
  auto island = post("/v1/isolate/preview",
                     R"({"scope":"island","gateways":["core-gw"],"reason":"lateral movement"})");
  ASSERT_EQ(island.status, 200) << island.body.dump();
  EXPECT_EQ(island.body["signing"]["by"], "operators");
  EXPECT_EQ(island.body["signing"]["rule"], "isolate_protected");
  EXPECT_TRUE(island.body["segment"].is_null());
  auto uplink = post("/v1/isolate/preview",
                     R"({"scope":"uplink","gateways":["core-gw"],"reason":"exfiltration"})");
  ASSERT_EQ(uplink.status, 200) << uplink.body.dump();
  ASSERT_EQ(uplink.body["gateways"].size(), 1u);
  // The interfaces facing what is cut: core-gw's to the default segment.
  EXPECT_EQ(uplink.body["gateways"][0]["interfaces"], json::array({"eth0"}));
  auto restore =
      post("/v1/restore/preview", R"({"scope":"host","hosts":["10.20.0.5"],"reason":"reimaged"})");
  ASSERT_EQ(restore.status, 200) << restore.body.dump();
  EXPECT_EQ(restore.body["action"], "restore");
  EXPECT_EQ(restore.body["segment"], "lgwan");
  EXPECT_EQ(restore.body["hosts"], json::array({"10.20.0.5"}));
  EXPECT_EQ(restore.body["signing"]["rule"], "restore");
  EXPECT_EQ(restore.body["signing"]["operators"], trust_.thresholds.restore_operators);
  EXPECT_TRUE(restore.body["keeps"]["allow"].empty());
  EXPECT_EQ(ordersStored(), 0u);
}

// What the preview refuses, the order refuses: same status, same message.
TEST_F(ApiRouterTest, PreviewRefusesExactlyWhatTheOrderRefuses) {
  const std::string bodies[] = {
      R"({"segment":"office"})",
      R"({"segment":"nowhere","reason":"x"})",
      R"({"segment":"office","reason":"x","drill":true})",
      R"({"segment":"office","reason":"x","profile":"none"})",
      R"({"scope":"host","hosts":["192.0.2.1"],"reason":"x"})",
      R"({"segment":"office","reason":"x","ttl_s":0})",
      R"({"segment":"office","reason":"x","colour":"red"})",
      R"({"scope":"uplink","gateways":["lab-gw"],"reason":"x"})",
  };
  for (const std::string& body : bodies) {
    const ApiResponse preview = post("/v1/isolate/preview", body);
    const ApiResponse order = post("/v1/isolate", body);
    EXPECT_GE(preview.status, 400) << body;
    EXPECT_EQ(preview.status, order.status) << body;
    EXPECT_EQ(preview.body, order.body) << body;
  }
  EXPECT_EQ(ordersStored(), 0u);
  // The console is the operators': a detector may isolate, but not preview.
  EXPECT_EQ(
      post("/v1/isolate/preview", R"({"segment":"office","reason":"x"})", kDetectorToken).status,
      403);
}

TEST_F(ApiRouterTest, TheAuditRouteIsServedOnlyWithAReaderAndToOperatorsAndAuditors) {
  const auto get = [&](const std::string& target, const char* token) {
    return router_->handle(ApiRequest{"GET", target, std::string("Bearer ") + token, ""});
  };
  EXPECT_EQ(get("/v1/audit", kOperatorToken).status, 404);
  testing::TempDir dir;
  PosixLogFileSystem fs;
  AuditSources sources;
  sources.controller_log = (dir.path() / "audit.log").string();
  sources.agent_ids = [] { return std::vector<std::string>(); };
  sources.agent_log = [&](const std::string& id) -> Result<std::string> {
    return (dir.path() / id).string();
  };
  sources.agent_key = [](const std::string&) { return std::optional<Ed25519PublicKey>(); };
  AuditVerifier verifier(fs, clock_, nullptr);
  AuditReader reader(fs, verifier, std::move(sources));
  router_->setAuditReader(&reader);
  // No log written yet: the controller holds none.
  EXPECT_EQ(get("/v1/audit", testing::kAuditorToken).status, 404);
  EXPECT_EQ(get("/v1/audit", kDetectorToken).status, 403);
  const ApiResponse bad = get("/v1/audit?limit=5000", kOperatorToken);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body["error"]["message"].get<std::string>().find("limit"), std::string::npos);
}

TEST_F(ApiRouterTest, StatusNamesEachGatewaysLastRepairFromItsSource) {
  const auto status = [&] {
    return router_->handle(
        ApiRequest{"GET", "/v1/status", std::string("Bearer ") + kOperatorToken, ""});
  };
  ApiResponse before = status();
  ASSERT_EQ(before.status, 200);
  EXPECT_TRUE(before.body["gateways"]["core-gw"]["last_repair"].is_null());
  router_->setRepairSource([](const std::string& id) {
    return id == "core-gw"
               ? json{{"log_seq", 7}, {"ts", "2026-12-07T10:00:00.000Z"}, {"event", "repaired"}}
               : json(nullptr);
  });
  ApiResponse after = status();
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(after.body["gateways"]["core-gw"]["last_repair"]["log_seq"], 7);
  EXPECT_TRUE(after.body["gateways"]["edge-gw"]["last_repair"].is_null());
}

}  // namespace
}  // namespace shadan::controller

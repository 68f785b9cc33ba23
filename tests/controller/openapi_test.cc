// docs/openapi.yaml (compiled in as controller/openapi.h) against the router itself: every route
// is described and every described operation is a route, with the same roles, and every example
// request in the document is sent to the real router and answered as the document says.

#include "controller/openapi.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <utility>

#include "common/audit_log.h"
#include "common/log_file_system.h"
#include "common/strict_json.h"
#include "controller/alert_responder.h"
#include "tests/controller/api_stack.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

using testing::kAuditorToken;
using testing::kDetectorToken;
using testing::kOperatorToken;

json document() { return json::parse(openApiJson()); }

class OpenApiTest : public ::testing::Test, protected testing::ApiStack {
 protected:
  OpenApiTest() : ApiStack(testing::kLadderTestPolicy) {
    // The uplink example sets the links down: a policy that allows it on every gateway.
    for (auto& [id, gateway] : policy_.gateways) gateway.link_down = {"eth0"};
    responder_ = std::make_unique<AlertResponder>(response_config_, token_list_, policy_, *service_,
                                                  *store_, audit_, clock_);
    EXPECT_TRUE(responder_->load().ok());
    router_->setAlertResponder(responder_.get());
    router_->setMetricsSource([] { return std::string("# HELP x X.\n# TYPE x gauge\nx 1\n"); });
    router_->setOpenApiDocument(std::string(openApiJson()));
    router_->serveConsole(true);
    // GET /v1/audit reads a real log with one entry.
    AuditLogOptions options;
    options.path = (dir_.path() / "audit.log").string();
    options.log_id = "controller";
    audit_log_ = AuditLog::open(std::move(options), fs_, clock_, &keys_.controller).value();
    AuditEvent event;
    event.event = "controller_started";
    EXPECT_TRUE(audit_log_->append(event).ok());
    AuditSources sources;
    sources.controller_log = (dir_.path() / "audit.log").string();
    sources.agent_ids = [] { return std::vector<std::string>(); };
    sources.agent_log = [this](const std::string& id) -> Result<std::string> {
      return (dir_.path() / "agents" / id / "audit.log").string();
    };
    sources.agent_key = [](const std::string&) { return std::optional<Ed25519PublicKey>(); };
    audit_verifier_ = std::make_unique<AuditVerifier>(fs_, clock_, nullptr);
    audit_reader_ = std::make_unique<AuditReader>(fs_, *audit_verifier_, std::move(sources));
    router_->setAuditReader(audit_reader_.get());
  }

  static std::vector<ApiToken> tokens() {
    return {{"sato", ApiRole::kOperator, sha256Hex(kOperatorToken)},
            {"ids-1", ApiRole::kDetector, sha256Hex(kDetectorToken)},
            {"aud", ApiRole::kAuditor, sha256Hex(kAuditorToken)}};
  }

  // A token of the first role the operation names ("any": the operator's).
  static const char* tokenFor(const json& roles) {
    const std::string role = roles.empty() ? "any" : roles[0].get<std::string>();
    if (role == "detector") return kDetectorToken;
    if (role == "auditor") return kAuditorToken;
    return kOperatorToken;
  }

  const ResponseConfig response_config_{};
  const std::vector<ApiToken> token_list_ = tokens();
  std::unique_ptr<AlertResponder> responder_;
  PosixLogFileSystem fs_;
  std::unique_ptr<AuditLog> audit_log_;
  std::unique_ptr<AuditVerifier> audit_verifier_;
  std::unique_ptr<AuditReader> audit_reader_;
};

TEST_F(OpenApiTest, TheDocumentIsOpenApi31WithBearerTokens) {
  const json doc = document();
  EXPECT_EQ(doc["openapi"].get<std::string>().substr(0, 4), "3.1.");
  EXPECT_EQ(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
  EXPECT_EQ(doc["security"], json::parse(R"([{"bearer":[]}])"));
}

TEST_F(OpenApiTest, EveryRouteIsDescribedAndEveryDescribedOperationIsARoute) {
  std::map<std::pair<std::string, std::string>, ApiRouteInfo> routes;
  for (const ApiRouteInfo& route : router_->routes()) {
    std::string method = route.method;
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    routes.emplace(std::make_pair(method, route.path), route);
  }
  std::set<std::pair<std::string, std::string>> described;
  const json doc = document();
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      if (method != "get" && method != "post") continue;
      described.emplace(method, path);
      const auto route = routes.find({method, path});
      if (route == routes.end()) {
        ADD_FAILURE() << method << " " << path << " is in docs/openapi.yaml but not a route";
        continue;
      }
      // Roles: the route's list, ["any"] for any valid token, [] for none needed.
      json roles = json::array();
      for (const std::string& role : route->second.roles) roles.push_back(role);
      if (route->second.authenticated && roles.empty()) roles.push_back("any");
      EXPECT_EQ(operation["x-shadan-roles"], roles) << method << " " << path;
      if (!route->second.authenticated) {
        EXPECT_EQ(operation["security"], json::array()) << method << " " << path;
      } else {
        EXPECT_FALSE(operation.contains("security") && operation["security"].empty())
            << method << " " << path << " needs a token but says it does not";
      }
    }
  }
  for (const auto& [key, route] : routes) {
    EXPECT_TRUE(described.count(key))
        << route.method << " " << route.path << " is a route but not in docs/openapi.yaml";
  }
  EXPECT_EQ(described.size(), routes.size());
}

// A path with its {placeholders} filled: the parameter's example, or a well-formed id.
std::string concretePath(const json& doc, const std::string& path, const json& operation,
                         const json& item) {
  std::map<std::string, std::string> values;
  for (const json* list : {&item, &operation}) {
    if (!list->contains("parameters")) continue;
    for (json parameter : (*list)["parameters"]) {
      if (parameter.contains("$ref")) {
        const std::string ref = parameter["$ref"];  // "#/components/parameters/OrderId"
        parameter = doc["components"]["parameters"][ref.substr(ref.rfind('/') + 1)];
      }
      if (parameter["in"] != "path") continue;
      values[parameter["name"]] =
          parameter.contains("example") ? parameter["example"].get<std::string>() : "example-1";
    }
  }
  std::string out = path;
  for (const auto& [name, value] : values) {
    const std::string placeholder = "{" + name + "}";
    for (size_t at = out.find(placeholder); at != std::string::npos; at = out.find(placeholder)) {
      out.replace(at, placeholder.size(), value);
    }
  }
  return out;
}

TEST_F(OpenApiTest, EveryExampleRequestIsAnsweredAsDocumented) {
  const json doc = document();
  size_t sent = 0;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      if (method != "get" && method != "post") continue;
      std::string verb = method;
      for (char& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      const std::string target = concretePath(doc, path, operation, item);
      const std::string authorization =
          std::string("Bearer ") + tokenFor(operation["x-shadan-roles"]);
      std::vector<std::pair<std::string, std::string>> bodies;  // content type, body
      if (operation.contains("requestBody")) {
        for (const auto& [type, content] : operation["requestBody"]["content"].items()) {
          if (!content.contains("examples")) continue;
          for (const auto& [name, example] : content["examples"].items()) {
            const json& value = example["value"];
            bodies.emplace_back(type, value.is_string() ? value.get<std::string>() : value.dump());
          }
        }
        EXPECT_FALSE(bodies.empty()) << verb << " " << path << " takes a body but has no example";
      } else {
        bodies.emplace_back("", "");
      }
      for (const auto& [type, body] : bodies) {
        ApiRequest request{verb, target, authorization, body, type, "192.0.2.10"};
        const ApiResponse response = router_->handle(request);
        ++sent;
        const std::string where = verb + " " + target + " " + type + " " + body.substr(0, 60);
        EXPECT_TRUE(operation["responses"].contains(std::to_string(response.status)))
            << where << " answered " << response.status
            << ", not in the document: " << response.body.dump();
        // An example the router refuses as malformed is a wrong example.
        EXPECT_NE(response.status, 400) << where << ": " << response.body.dump();
        EXPECT_LT(response.status, 500) << where << ": " << response.body.dump();
      }
    }
  }
  EXPECT_GE(sent, 21u);
}

TEST_F(OpenApiTest, MetricsTakeAnyValidTokenAndAnswerTheExposition) {
  for (const char* token : {kOperatorToken, kDetectorToken, kAuditorToken}) {
    const ApiResponse response =
        router_->handle(ApiRequest{"GET", "/metrics", std::string("Bearer ") + token, ""});
    EXPECT_EQ(response.status, 200);
    ASSERT_TRUE(response.text.has_value());
    EXPECT_EQ(*response.text, "# HELP x X.\n# TYPE x gauge\nx 1\n");
    EXPECT_EQ(response.content_type, "text/plain; version=0.0.4; charset=utf-8");
  }
  EXPECT_EQ(router_->handle(ApiRequest{"GET", "/metrics", "", ""}).status, 401);
  EXPECT_EQ(router_->handle(ApiRequest{"GET", "/metrics", "Bearer wrong", ""}).status, 401);
  EXPECT_EQ(router_->handle(ApiRequest{"POST", "/metrics", "Bearer wrong", ""}).status, 401);
  EXPECT_EQ(router_->handle(ApiRequest{"GET", "/metricsx", "", ""}).status, 404);
}

TEST_F(OpenApiTest, TheDocumentIsServedWithoutAToken) {
  const ApiResponse response = router_->handle(ApiRequest{"GET", "/v1/openapi.json", "", ""});
  EXPECT_EQ(response.status, 200);
  ASSERT_TRUE(response.text.has_value());
  EXPECT_EQ(*response.text, openApiJson());
  EXPECT_EQ(response.content_type, "application/json");
  // Only GET is served without a token; anything else under /v1 still asks for one first.
  EXPECT_EQ(router_->handle(ApiRequest{"POST", "/v1/openapi.json", "", ""}).status, 401);
}

TEST_F(OpenApiTest, WithoutTheOptionalPartsTheirRoutesAreNotServed) {
  ApiRouter bare(*tokens_, *service_);
  for (const ApiRouteInfo& route : bare.routes()) {
    EXPECT_NE(route.path, "/metrics");
    EXPECT_NE(route.path, "/v1/openapi.json");
    EXPECT_NE(route.path, "/v1/alerts");
    EXPECT_NE(route.path, "/");
    EXPECT_NE(route.path, "/v1/audit");
  }
  const std::string operator_token = std::string("Bearer ") + kOperatorToken;
  EXPECT_EQ(bare.handle(ApiRequest{"GET", "/metrics", operator_token, ""}).status, 404);
  EXPECT_EQ(bare.handle(ApiRequest{"GET", "/v1/openapi.json", "", ""}).status, 401);
  EXPECT_EQ(bare.handle(ApiRequest{"GET", "/v1/openapi.json", operator_token, ""}).status, 404);
}

}  // namespace
}  // namespace shadan::controller

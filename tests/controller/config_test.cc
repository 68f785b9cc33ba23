#include "controller/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace shadan::controller {
namespace {

using nlohmann::json;

json validConfig() {
  return {{"api", {{"listen", "127.0.0.1:8443"}}},
          {"agent_hub", {{"listen", "[::]:8444"}, {"heartbeat_s", 5}}},
          {"tls", {{"ca", "/etc/shadan/ca.crt"}, {"cert", "/c.crt"}, {"key", "/c.key"}}},
          {"policy", "/etc/shadan/policy.json"},
          {"trust", "/etc/shadan/trust.json"},
          {"signing_key", "/etc/shadan/controller.key"},
          {"state_dir", "/var/lib/shadan-controller"},
          {"tokens",
           {{{"name", "sato"}, {"role", "operator"}, {"sha256", std::string(64, 'a')}},
            {{"name", "ids-1"}, {"role", "detector"}, {"sha256", std::string(64, 'b')}}}}};
}

TEST(ControllerConfigTest, ParsesAValidConfig) {
  auto config = parseControllerConfig(validConfig().dump(), "controller.json");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->api_listen.host, "127.0.0.1");
  EXPECT_EQ(config->api_listen.port, 8443);
  EXPECT_EQ(config->hub_listen.host, "::");
  EXPECT_EQ(config->heartbeat_s, 5);
  ASSERT_EQ(config->tokens.size(), 2u);
  EXPECT_EQ(config->tokens[1].role, ApiRole::kDetector);
  EXPECT_EQ(config->orders.authz_validity_s, 1800);
  EXPECT_EQ(config->audit_export, "off");  // off unless asked for
  EXPECT_TRUE(config->tls_crl.empty());    // no revocation list unless given

  json with_crl = validConfig();
  with_crl["tls"]["crl"] = "/etc/shadan/ca.crl";
  auto revoking = parseControllerConfig(with_crl.dump(), "controller.json");
  ASSERT_TRUE(revoking.ok()) << revoking.error().message;
  EXPECT_EQ(revoking->tls_crl, "/etc/shadan/ca.crl");

  json with_export = validConfig();
  with_export["audit_export"] = "journald";
  auto exported = parseControllerConfig(with_export.dump(), "controller.json");
  ASSERT_TRUE(exported.ok()) << exported.error().message;
  EXPECT_EQ(exported->audit_export, "journald");
}

TEST(ControllerConfigTest, ErrorsNameThePointer) {
  struct Case {
    const char* name;
    std::function<void(json&)> mutate;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"unknown top-level field", [](json& c) { c["extra"] = 1; }, "/extra: unknown field"},
      {"missing tls", [](json& c) { c.erase("tls"); }, "/tls: is required"},
      {"bad listen", [](json& c) { c["api"]["listen"] = "localhost:1"; }, "/api/listen: host"},
      {"bad port", [](json& c) { c["api"]["listen"] = "127.0.0.1:99999"; }, "/api/listen: port"},
      {"bad role", [](json& c) { c["tokens"][0]["role"] = "root"; }, "/tokens/0/role"},
      {"bad hash", [](json& c) { c["tokens"][1]["sha256"] = "ABC"; }, "/tokens/1/sha256"},
      {"duplicate name", [](json& c) { c["tokens"][1]["name"] = "sato"; }, "/tokens/1/name"},
      {"same secret twice", [](json& c) { c["tokens"][1]["sha256"] = std::string(64, 'a'); },
       "/tokens/1/sha256"},
      {"float", [](json& c) { c["agent_hub"]["heartbeat_s"] = 1.5; }, "heartbeat_s"},
      {"unknown export", [](json& c) { c["audit_export"] = "splunk"; }, "/audit_export"},
      {"dispatch validity above the agent's cap",
       [](json& c) {
         c["orders"] = {{"dispatch_validity_s", 3600}};
       },
       "/orders/dispatch_validity_s"},
      {"empty crl", [](json& c) { c["tls"]["crl"] = ""; }, "/tls/crl"},
      {"unknown api limit",
       [](json& c) {
         c["api"]["limits"] = {{"max_conns", 5}};
       },
       "/api/limits/max_conns: unknown field"},
      {"zero connections",
       [](json& c) {
         c["api"]["limits"] = {{"max_connections", 0}};
       },
       "/api/limits/max_connections"},
      {"per peer above total",
       [](json& c) {
         c["api"]["limits"] = {{"max_connections", 10}, {"max_connections_per_peer", 11}};
       },
       "/api/limits/max_connections_per_peer: must not exceed max_connections (10)"},
      {"tiny header limit",
       [](json& c) {
         c["api"]["limits"] = {{"max_header_bytes", 100}};
       },
       "/api/limits/max_header_bytes"},
      {"no failures allowed",
       [](json& c) {
         c["api"]["limits"] = {{"peer_failures_burst", 0}};
       },
       "/api/limits/peer_failures_burst"},
      {"handshakes per peer above total",
       [](json& c) {
         c["agent_hub"]["limits"] = {{"max_handshakes", 8}, {"max_handshakes_per_peer", 9}};
       },
       "/agent_hub/limits/max_handshakes_per_peer"},
      {"queue smaller than a message",
       [](json& c) {
         c["agent_hub"]["limits"] = {{"max_queued_bytes", 1024}};
       },
       "/agent_hub/limits/max_queued_bytes"},
      {"float timeout",
       [](json& c) {
         c["agent_hub"]["limits"] = {{"hello_timeout_s", 0.5}};
       },
       "/agent_hub/limits/hello_timeout_s"},
  };
  for (const auto& c : cases) {
    json doc = validConfig();
    c.mutate(doc);
    auto config = parseControllerConfig(doc.dump(), "controller.json");
    ASSERT_FALSE(config.ok()) << c.name;
    EXPECT_NE(config.error().message.find(c.expected), std::string::npos)
        << c.name << ": " << config.error().message;
    EXPECT_EQ(config.error().message.rfind("controller.json: ", 0), 0u) << c.name;
  }
}

TEST(ControllerConfigTest, LimitsHaveDefaultsAndCanBeSet) {
  auto defaults = parseControllerConfig(validConfig().dump(), "controller.json");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->api_limits.max_connections, 1024u);
  EXPECT_EQ(defaults->api_limits.max_connections_per_peer, 64u);
  EXPECT_EQ(defaults->api_limits.handshake_timeout, std::chrono::seconds(10));
  EXPECT_EQ(defaults->api_limits.request_timeout, std::chrono::seconds(30));
  EXPECT_EQ(defaults->api_limits.max_header_bytes, 16384u);
  EXPECT_EQ(defaults->api_limits.peer_failures_burst, 20u);
  EXPECT_EQ(defaults->api_limits.peer_failures_per_min, 60u);
  EXPECT_EQ(defaults->hub_limits.max_handshakes, 256u);
  EXPECT_EQ(defaults->hub_limits.max_handshakes_per_peer, 64u);
  EXPECT_EQ(defaults->hub_limits.hello_timeout, std::chrono::seconds(10));
  EXPECT_EQ(defaults->hub_limits.max_queued_bytes, 64u * 1024 * 1024);
  EXPECT_EQ(defaults->hub_limits.peer_failures_burst, 20u);
  EXPECT_EQ(defaults->hub_limits.peer_failures_per_min, 60u);

  json doc = validConfig();
  doc["api"]["limits"] = {{"max_connections", 200},      {"max_connections_per_peer", 20},
                          {"handshake_timeout_s", 5},    {"request_timeout_s", 15},
                          {"max_header_bytes", 8192},    {"peer_failures_burst", 100},
                          {"peer_failures_per_min", 600}};
  doc["agent_hub"]["limits"] = {{"max_handshakes", 512},    {"max_handshakes_per_peer", 512},
                                {"hello_timeout_s", 20},    {"max_queued_bytes", 1048576},
                                {"peer_failures_burst", 5}, {"peer_failures_per_min", 30}};
  auto set = parseControllerConfig(doc.dump(), "controller.json");
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->api_limits.max_connections, 200u);
  EXPECT_EQ(set->api_limits.max_connections_per_peer, 20u);
  EXPECT_EQ(set->api_limits.handshake_timeout, std::chrono::seconds(5));
  EXPECT_EQ(set->api_limits.request_timeout, std::chrono::seconds(15));
  EXPECT_EQ(set->api_limits.max_header_bytes, 8192u);
  EXPECT_EQ(set->api_limits.peer_failures_burst, 100u);
  EXPECT_EQ(set->api_limits.peer_failures_per_min, 600u);
  EXPECT_EQ(set->hub_limits.max_handshakes, 512u);
  EXPECT_EQ(set->hub_limits.max_handshakes_per_peer, 512u);
  EXPECT_EQ(set->hub_limits.hello_timeout, std::chrono::seconds(20));
  EXPECT_EQ(set->hub_limits.max_queued_bytes, 1048576u);
  EXPECT_EQ(set->hub_limits.peer_failures_burst, 5u);
  EXPECT_EQ(set->hub_limits.peer_failures_per_min, 30u);
}

TEST(ControllerConfigTest, TheStoreIsSqliteUnlessAnEtcdIsNamed) {
  auto defaults = parseControllerConfig(validConfig().dump(), "controller.json");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->store.kind, StoreConfig::Kind::kSqlite);

  json doc = validConfig();
  doc["store"] = {{"kind", "etcd"},
                  {"endpoints", {"http://127.0.0.1:2379", "http://[::1]:22379"}},
                  {"prefix", "/site-a/"},
                  {"timeout_ms", 2000}};
  auto etcd = parseControllerConfig(doc.dump(), "controller.json");
  ASSERT_TRUE(etcd.ok()) << etcd.error().message;
  EXPECT_EQ(etcd->store.kind, StoreConfig::Kind::kEtcd);
  ASSERT_EQ(etcd->store.etcd.endpoints.size(), 2u);
  EXPECT_EQ(etcd->store.etcd.endpoints[1].text(), "[::1]:22379");
  EXPECT_EQ(etcd->store.etcd.prefix, "/site-a/");
  EXPECT_EQ(etcd->store.etcd.timeout, std::chrono::milliseconds(2000));

  doc["store"]["endpoints"] = {"https://10.1.2.3:2379", "https://10.1.2.4:2379"};
  doc["store"]["tls"] = {{"ca", "/etc/shadan/etcd-ca.crt"},
                         {"cert", "/etc/shadan/etcd-client.crt"},
                         {"key", "/etc/shadan/etcd-client.key"}};
  auto remote = parseControllerConfig(doc.dump(), "controller.json");
  ASSERT_TRUE(remote.ok()) << remote.error().message;
  EXPECT_EQ(remote->store.etcd.tls_key, "/etc/shadan/etcd-client.key");
  EXPECT_TRUE(remote->store.etcd.endpoints[0].tls);
  EXPECT_EQ(remote->store.controller_name, "");  // the host name, when the election starts
  EXPECT_EQ(remote->store.leader_ttl, std::chrono::seconds(3));
  doc["store"]["controller_name"] = "ctl-a";
  doc["store"]["leader_ttl_s"] = 5;
  auto named = parseControllerConfig(doc.dump(), "controller.json");
  ASSERT_TRUE(named.ok()) << named.error().message;
  EXPECT_EQ(named->store.controller_name, "ctl-a");
  EXPECT_EQ(named->store.leader_ttl, std::chrono::seconds(5));

  const std::vector<std::pair<json, std::string>> bad = {
      {{{"kind", "postgres"}}, "/store/kind: must be sqlite or etcd"},
      {{{"kind", "etcd"}}, "/store/endpoints: is required"},
      {{{"kind", "etcd"}, {"endpoints", json::array()}}, "/store/endpoints: must list 1 to 7"},
      {{{"kind", "etcd"}, {"endpoints", {"http://10.1.2.3:2379"}}},
       "/store/endpoints: etcd endpoint \"http://10.1.2.3:2379\": plain http only to a loopback"},
      {{{"kind", "etcd"}, {"endpoints", {"https://10.1.2.3:2379"}}},
       "/store/tls: is required with an https endpoint"},
      {{{"kind", "etcd"},
        {"endpoints", {"https://10.1.2.3:2379"}},
        {"tls", {{"ca", "/ca.crt"}, {"cert", "/c.crt"}}}},
       "/store/tls/key: is required"},
      {{{"kind", "etcd"}, {"endpoints", {"http://127.0.0.1:2379"}}, {"prefix", "shadan"}},
       "/store/prefix: must start and end"},
      {{{"kind", "etcd"}, {"endpoints", {"http://127.0.0.1:2379"}}, {"timeout_ms", 5}},
       "/store/timeout_ms"},
      {{{"kind", "sqlite"}, {"endpoints", {"http://127.0.0.1:2379"}}},
       "/store/endpoints: unknown field"},
      {{{"kind", "etcd"}, {"endpoints", {"http://127.0.0.1:2379"}}, {"leader_ttl_s", 1}},
       "/store/leader_ttl_s"},
      {{{"kind", "etcd"}, {"endpoints", {"http://127.0.0.1:2379"}}, {"controller_name", ""}},
       "/store/controller_name: must not be empty"},
      {{{"kind", "etcd"},
        {"endpoints", {"http://127.0.0.1:2379"}},
        {"controller_name", "ctl\nforged"}},
       "/store/controller_name: contains a control character"},
  };
  for (const auto& [store, expected] : bad) {
    json with = validConfig();
    with["store"] = store;
    auto config = parseControllerConfig(with.dump(), "controller.json");
    ASSERT_FALSE(config.ok()) << store.dump();
    EXPECT_NE(config.error().message.find(expected), std::string::npos)
        << store.dump() << ": " << config.error().message;
  }
}

TEST(ControllerConfigTest, DuplicateKeysAreRefused) {
  auto config = parseControllerConfig(R"({"policy":"a","policy":"b"})", "c.json");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("duplicate key"), std::string::npos);
}

}  // namespace
}  // namespace shadan::controller

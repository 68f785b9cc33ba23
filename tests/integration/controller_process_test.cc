// The real shadan-controller process as systemd runs it (Type=notify, WatchdogSec=): READY=1
// once it serves, WATCHDOG=1 every half interval while its core loop and its network threads
// answer, STOPPING=1 on SIGTERM. Its configuration is what `shadanctl init controller` writes,
// listening on 127.0.0.1 in the test's own network namespace.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/init_cmd.h"
#include "tests/integration/agent_process.h"
#include "tests/support/private_netns.h"

namespace shadan {
namespace {

namespace fs = std::filesystem;
const std::string kController = std::string(SHADAN_BINARY_DIR) + "/controller/shadan-controller";
const std::string kPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";

class ControllerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test_support::inPrivateNetns()) GTEST_SKIP() << "needs root (a network namespace)";
    char pattern[] = "/tmp/shadan-controller-process-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    ASSERT_EQ(test_support::runCommand("ip link set lo up").exit_code, 0);
    std::ostringstream out;
    std::ostringstream err;
    ASSERT_EQ(runInitCommand({"init", "controller", "--policy", kPolicy, "--name", "ctl.test",
                              "--ip", "127.0.0.1", "--dir", (dir_ / "etc").string(), "--state-dir",
                              (dir_ / "state").string()},
                             out, err),
              0)
        << err.str();
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  fs::path dir_;
};

TEST_F(ControllerProcessTest, ReadyThenWatchdogPingsThenStopping) {
  AgentProcessOptions options;
  options.binary = kController;
  options.arguments = {"--config", (dir_ / "etc" / "controller.json").string()};
  options.log_path = dir_ / "controller.log";
  options.environment = {"WATCHDOG_USEC=200000"};
  auto controller = AgentProcess::start(options);
  ASSERT_TRUE(controller.ok()) << controller.error().message;  // READY=1 came

  size_t pings = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pings < 3 && std::chrono::steady_clock::now() < deadline) {
    for (const std::string& message : (*controller)->pollNotifications()) {
      if (message.find("WATCHDOG=1") != std::string::npos) ++pings;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(pings, 3u) << readWholeFile(options.log_path);

  auto stopped = (*controller)->terminate();
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  EXPECT_EQ(*stopped, 0) << readWholeFile(options.log_path);
  bool stopping = false;
  for (const std::string& message : (*controller)->pollNotifications()) {
    stopping = stopping || message.find("STOPPING=1") != std::string::npos;
  }
  EXPECT_TRUE(stopping) << "no STOPPING=1 on SIGTERM";
}

// Prometheus scrapes the controller on its own plain-HTTP listener without a token, or on the API
// with any valid one; both answer an exposition promtool accepts. The OpenAPI document is served
// without a token.
TEST_F(ControllerProcessTest, MetricsAndTheOpenApiDocumentAreServed) {
  const fs::path config_path = dir_ / "etc" / "controller.json";
  nlohmann::json config = nlohmann::json::parse(readWholeFile(config_path));
  config["metrics_listen"] = "127.0.0.1:9464";
  {
    std::ofstream out(config_path);
    out << config.dump(2);
  }
  AgentProcessOptions options;
  options.binary = kController;
  options.arguments = {"--config", config_path.string()};
  options.log_path = dir_ / "controller.log";
  auto controller = AgentProcess::start(options);
  ASSERT_TRUE(controller.ok()) << controller.error().message;

  const fs::path scraped = dir_ / "metrics.txt";
  auto fetched = test_support::runCommand("curl -sS --fail -o " + scraped.string() +
                                          " http://127.0.0.1:9464/metrics");
  ASSERT_EQ(fetched.exit_code, 0) << fetched.output;
  const std::string text = readWholeFile(scraped);
  for (const char* family :
       {"shadan_orders", "shadan_dispatches", "shadan_isolations_active{scope=\"segment\"} 0",
        "shadan_dispatch_ack_seconds_count 0", "shadan_agents_connected 0", "shadan_audit_entries ",
        "shadan_audit_last_checkpoint_age_seconds ", "shadan_alert_decisions_total",
        "process_resident_memory_bytes "}) {
    EXPECT_NE(text.find(family), std::string::npos) << family << " missing:\n" << text;
  }
  auto checked = test_support::runCommand("promtool check metrics < " + scraped.string());
  EXPECT_EQ(checked.exit_code, 0) << checked.output << text;

  // The API: a token is needed, any role's will do.
  const std::string token_file = (dir_ / "etc" / "tokens" / "admin.token").string();
  const std::string curl_api = "curl -sS --tlsv1.3 --cacert " + (dir_ / "etc" / "ca.crt").string();
  auto refused = test_support::runCommand(curl_api +
                                          " -o /dev/null -w '%{http_code}' "
                                          "https://127.0.0.1:8443/metrics");
  EXPECT_EQ(refused.output, "401") << refused.output;
  auto with_token = test_support::runCommand(
      curl_api + " --fail -H \"Authorization: Bearer $(cat " + token_file + ")\" -o " +
      (dir_ / "api-metrics.txt").string() + " https://127.0.0.1:8443/metrics");
  ASSERT_EQ(with_token.exit_code, 0) << with_token.output;
  auto api_checked =
      test_support::runCommand("promtool check metrics < " + (dir_ / "api-metrics.txt").string());
  EXPECT_EQ(api_checked.exit_code, 0) << api_checked.output;

  auto openapi =
      test_support::runCommand(curl_api + " --fail https://127.0.0.1:8443/v1/openapi.json");
  ASSERT_EQ(openapi.exit_code, 0) << openapi.output;
  const nlohmann::json document = nlohmann::json::parse(openapi.output, nullptr, false);
  ASSERT_TRUE(document.is_object()) << openapi.output.substr(0, 200);
  EXPECT_EQ(document["openapi"], "3.1.0");
  EXPECT_TRUE(document["paths"].contains("/v1/isolate"));

  auto stopped = (*controller)->terminate();
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  EXPECT_EQ(*stopped, 0) << readWholeFile(options.log_path);
}

}  // namespace
}  // namespace shadan

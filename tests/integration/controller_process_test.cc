// The real shadan-controller process as systemd runs it (Type=notify, WatchdogSec=): READY=1
// once it serves, WATCHDOG=1 every half interval while its core loop and its network threads
// answer, STOPPING=1 on SIGTERM. Its configuration is what `shadanctl init controller` writes,
// listening on 127.0.0.1 in the test's own network namespace.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
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

}  // namespace
}  // namespace shadan

#include "common/watchdog.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/sd_notify.h"

namespace shadan {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;

struct Pings {
  std::vector<std::string> states;
  Watchdog::Notify notify() {
    return [this](std::string_view state) {
      states.emplace_back(state);
      return true;
    };
  }
};

// Runs `io` until `done` or five seconds, whichever first.
template <typename Done>
void runUntil(asio::io_context& io, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(milliseconds(50));
  }
}

TEST(WatchdogTest, PingsEveryHalfIntervalWhileEveryWatchedLoopAnswers) {
  asio::io_context main;
  asio::io_context network;
  auto guard = asio::make_work_guard(network);
  std::thread network_thread([&] { network.run(); });
  Pings pings;
  Watchdog watchdog(main, milliseconds(20), pings.notify());
  EXPECT_EQ(watchdog.period(), milliseconds(10));
  watchdog.watch("network",
                 [&](std::function<void()> answered) { asio::post(network, std::move(answered)); });
  watchdog.start();
  runUntil(main, [&] { return pings.states.size() >= 5; });
  watchdog.stop();
  guard.reset();
  network_thread.join();
  ASSERT_GE(pings.states.size(), 5u);
  for (const std::string& state : pings.states) EXPECT_EQ(state, "WATCHDOG=1");
}

TEST(WatchdogTest, AWatchedLoopThatDoesNotAnswerHoldsThePingsBackUntilItDoes) {
  asio::io_context main;
  Pings pings;
  std::vector<std::function<void()>> unanswered;
  Watchdog watchdog(main, milliseconds(10), pings.notify());
  watchdog.watch(
      "stuck", [&](std::function<void()> answered) { unanswered.push_back(std::move(answered)); });
  watchdog.start();
  EXPECT_EQ(pings.states.size(), 1u);  // the first ping goes out at start
  ASSERT_EQ(unanswered.size(), 1u);
  main.run_for(milliseconds(100));  // ten periods: the probe is still not answered
  EXPECT_EQ(pings.states.size(), 1u);
  EXPECT_EQ(unanswered.size(), 1u);  // and no new probe was sent meanwhile
  unanswered.front()();              // the loop comes back
  runUntil(main, [&] { return pings.states.size() >= 2; });
  EXPECT_EQ(pings.states.size(), 2u);
  EXPECT_EQ(unanswered.size(), 2u);
}

TEST(WatchdogTest, AStuckMainLoopSendsNothing) {
  asio::io_context main;
  Pings pings;
  Watchdog watchdog(main, milliseconds(10), pings.notify());
  watchdog.start();
  asio::post(main, [] { std::this_thread::sleep_for(milliseconds(60)); });
  main.run_one();  // the stuck handler: no timer can fire while it runs
  EXPECT_EQ(pings.states.size(), 1u);
  runUntil(main, [&] { return pings.states.size() >= 2; });
  EXPECT_GE(pings.states.size(), 2u);
}

TEST(WatchdogTest, AnAnswerAfterTheWatchdogIsGoneDoesNothing) {
  asio::io_context main;
  std::function<void()> late;
  {
    Pings pings;
    Watchdog watchdog(main, milliseconds(10), pings.notify());
    watchdog.watch("late", [&](std::function<void()> answered) { late = std::move(answered); });
    watchdog.start();
  }
  ASSERT_TRUE(late);
  late();  // must not touch the destroyed watchdog (ASan would say)
  main.run_for(milliseconds(30));
}

class EnvironmentTest : public ::testing::Test {
 protected:
  void TearDown() override {
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ::unsetenv("NOTIFY_SOCKET");
  }
};

TEST_F(EnvironmentTest, WatchdogIntervalIsReadAsSdWatchdogEnabledDoes) {
  EXPECT_FALSE(sdWatchdogInterval());
  ::setenv("WATCHDOG_USEC", "30000000", 1);
  ASSERT_TRUE(sdWatchdogInterval());
  EXPECT_EQ(*sdWatchdogInterval(), std::chrono::seconds(30));
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  EXPECT_TRUE(sdWatchdogInterval());
  // Inherited from a parent: meant for another process.
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  EXPECT_FALSE(sdWatchdogInterval());
  ::unsetenv("WATCHDOG_PID");
  for (const char* bad : {"0", "-5", " 5", "5s", "", "99999999999999999999999"}) {
    ::setenv("WATCHDOG_USEC", bad, 1);
    EXPECT_FALSE(sdWatchdogInterval()) << bad;
  }
}

TEST_F(EnvironmentTest, NotifySendsOneDatagramToTheNamedSocket) {
  EXPECT_FALSE(sdNotify("READY=1"));  // not run by systemd
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("shadan-notify-" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  EXPECT_TRUE(sdNotify("WATCHDOG=1"));
  char buffer[64] = {};
  const ssize_t got = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
  EXPECT_EQ(std::string(buffer, got > 0 ? static_cast<size_t>(got) : 0), "WATCHDOG=1");
  ::close(fd);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace shadan

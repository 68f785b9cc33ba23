#pragma once

// The systemd watchdog (WatchdogSec=, sd_watchdog_enabled(3)) kept from a daemon's own event
// loops, so that a loop that is stuck is restarted, not just a process that is dead.
//
// Every half interval a timer on the main loop sends WATCHDOG=1, but only when each watched
// loop (a network thread's io_context, say) answered the probe the previous round sent it. A
// stuck main loop sends nothing because its timer never fires; a stuck network thread holds
// the pings back from its first unanswered round. Either way systemd sees no ping within the
// interval and restarts the unit (the agent's rules stay in the kernel; the controller's state
// is in its store). The first round in which pings are held back is logged once, with the
// loops that did not answer.
//
// Contracts:
//   - start(), stop() and watch() are called on the main loop's thread; a probe's answer may
//     come from any thread.
//   - The Watchdog must outlive its main loop's run() or be stopped first; answers that come
//     after it is gone do nothing.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace shadan {

class Watchdog {
 public:
  // Runs `answered` on the probed loop's thread (typically asio::post(loop, answered)).
  using Probe = std::function<void(std::function<void()> answered)>;
  using Notify = std::function<bool(std::string_view state)>;

  // `notify` defaults to sdNotify.
  Watchdog(boost::asio::io_context& main, std::chrono::microseconds interval, Notify notify = {});
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Another loop whose answer each ping waits for; `name` is what the log calls it.
  void watch(std::string name, Probe probe);
  // Sends the first ping now and arms the timer.
  void start();
  void stop();

  std::chrono::microseconds period() const { return period_; }

 private:
  struct Shared;
  void tick();

  boost::asio::steady_timer timer_;
  const std::chrono::microseconds period_;
  Notify notify_;
  std::shared_ptr<Shared> shared_;
  bool withheld_logged_ = false;
  bool running_ = false;
};

}  // namespace shadan

#include "common/watchdog.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "common/logging.h"
#include "common/sd_notify.h"

namespace shadan {

struct Watchdog::Shared {
  struct Watched {
    std::string name;
    Probe probe;
    // The round of the latest answer; a probe of round r is answered when it equals r.
    std::atomic<uint64_t> answered{0};
  };
  std::vector<std::unique_ptr<Watched>> watched;
  uint64_t round = 0;  // main loop only
};

Watchdog::Watchdog(boost::asio::io_context& main, std::chrono::microseconds interval, Notify notify)
    : timer_(main),
      period_(std::max(std::chrono::microseconds(1000), interval / 2)),
      notify_(notify ? std::move(notify) : Notify(&sdNotify)),
      shared_(std::make_shared<Shared>()) {}

Watchdog::~Watchdog() { stop(); }

void Watchdog::watch(std::string name, Probe probe) {
  auto watched = std::make_unique<Shared::Watched>();
  watched->name = std::move(name);
  watched->probe = std::move(probe);
  shared_->watched.push_back(std::move(watched));
}

void Watchdog::start() {
  running_ = true;
  tick();
}

void Watchdog::stop() {
  running_ = false;
  timer_.cancel();
}

void Watchdog::tick() {
  if (!running_) return;
  Shared& shared = *shared_;
  std::string late;
  for (const auto& watched : shared.watched) {
    if (watched->answered.load(std::memory_order_acquire) != shared.round) {
      late += (late.empty() ? "" : ",") + watched->name;
    }
  }
  if (late.empty()) {
    notify_("WATCHDOG=1");
    withheld_logged_ = false;
    ++shared.round;
    for (const auto& watched : shared.watched) {
      // The answer holds the state weakly: a loop that answers after the watchdog is gone
      // touches nothing.
      watched->probe(
          [weak = std::weak_ptr<Shared>(shared_), item = watched.get(), round = shared.round] {
            if (auto alive = weak.lock()) item->answered.store(round, std::memory_order_release);
          });
    }
  } else if (!withheld_logged_) {
    withheld_logged_ = true;
    logger("watchdog")
        ->error(
            "event=watchdog_withheld unanswered={} note=\"systemd restarts "
            "the daemon if this lasts the watchdog interval\"",
            late);
  }
  timer_.expires_after(period_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

}  // namespace shadan

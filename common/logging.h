#pragma once

// One named spdlog logger per component ("agent", "dataplane", "lab", ...), key=value messages.
// Never log keys, tokens or whole request bodies.

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace shadan {

// Returns the logger `name`, creating it (stderr, shared level) on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& name);

// Sets the level of every Shadan logger: "debug", "info", "warn", "error", "off".
void setLogLevel(const std::string& level);

// Counts events of one kind (connections refused, say) so that a flood of them costs one log line
// a second, not one each: the first is due at once, later ones at most once per `interval`.
class EveryInterval {
 public:
  explicit EveryInterval(std::chrono::steady_clock::duration interval) : interval_(interval) {}
  // Counts one event at `now`. When a line is due, returns how many events it stands for (this
  // one and those counted since the last line) and starts counting again; otherwise 0.
  uint64_t tick(std::chrono::steady_clock::time_point now);

 private:
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  bool logged_ = false;
  uint64_t pending_ = 0;
};

}  // namespace shadan

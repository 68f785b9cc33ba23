#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace shadan {
namespace {

std::mutex& registryMutex() {
  static std::mutex mutex;
  return mutex;
}

spdlog::level::level_enum& currentLevel() {
  static spdlog::level::level_enum level = spdlog::level::warn;
  return level;
}

}  // namespace

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
  std::lock_guard<std::mutex> lock(registryMutex());
  if (auto existing = spdlog::get(name)) return existing;
  auto created = spdlog::stderr_color_mt(name);
  created->set_level(currentLevel());
  created->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v");
  return created;
}

void setLogLevel(const std::string& level) {
  std::lock_guard<std::mutex> lock(registryMutex());
  currentLevel() = spdlog::level::from_str(level);
  spdlog::set_level(currentLevel());
}

uint64_t EveryInterval::tick(std::chrono::steady_clock::time_point now) {
  ++pending_;
  if (logged_ && now - last_ < interval_) return 0;
  logged_ = true;
  last_ = now;
  const uint64_t count = pending_;
  pending_ = 0;
  return count;
}

}  // namespace shadan

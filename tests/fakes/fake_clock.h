#pragma once

// The one fake Clock (common/clock.h) of the unit tests: it stands still until the test moves it,
// so tests move time instead of sleeping.

#include <chrono>
#include <cstdint>

#include "common/clock.h"

namespace shadan::testing {

// Starts at kDefaultStartMs (2026-11-18T11:06:40Z) or at the time given; changes only through
// advance() and setUnixMillis(). Not thread-safe: tests move it between calls, not during them.
class FakeClock : public Clock {
 public:
  static constexpr int64_t kDefaultStartMs = 1'795'000'000'000;

  FakeClock() = default;
  explicit FakeClock(int64_t unix_millis) : now_(std::chrono::milliseconds(unix_millis)) {}

  std::chrono::system_clock::time_point now() const override { return now_; }
  int64_t unixMillis() const { return toUnixMillis(now_); }

  void advance(std::chrono::milliseconds by) { now_ += by; }
  void setUnixMillis(int64_t unix_millis) {
    now_ = std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_millis));
  }

 private:
  std::chrono::system_clock::time_point now_{std::chrono::milliseconds(kDefaultStartMs)};
};

}  // namespace shadan::testing

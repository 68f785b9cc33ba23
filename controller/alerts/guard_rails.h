#pragma once

// The brakes on automatic response, as pure values driven by the caller's clock (Unix ms), so
// tests step time by hand: a token bucket (per-detector rate of actions, intake of records) and
// a sliding window of action times (the circuit breaker's count).
//
// Contracts:
//   - Time may stand still or move forward; a time earlier than the last one seen is treated as
//     the last one (a wall clock stepped back must not mint tokens or forget actions).
//   - Not thread-safe (the controller's one io thread owns them).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace shadan::controller {

class TokenBucket {
 public:
  // Starts full. `capacity` > 0 tokens, refilled at `per_second` > 0.
  TokenBucket(double capacity, double per_second)
      : capacity_(capacity), per_second_(per_second), tokens_(capacity) {}

  // Takes `n` tokens if there are that many at `now_ms`; otherwise takes none.
  bool take(int64_t now_ms, double n = 1);
  double available(int64_t now_ms);
  // How long until `n` tokens are there (0 if now; n above capacity: the time to fill it).
  int64_t millisUntil(int64_t now_ms, double n);
  double capacity() const { return capacity_; }

 private:
  void refill(int64_t now_ms);

  double capacity_;
  double per_second_;
  double tokens_;
  int64_t last_ms_ = -1;
};

// The times of recent events within a window.
class ActionWindow {
 public:
  explicit ActionWindow(int64_t window_ms) : window_ms_(window_ms) {}

  void add(int64_t now_ms);
  // Events within (now - window, now].
  size_t count(int64_t now_ms);
  // The events' times within the window, oldest first: what restore() takes back after a
  // restart, so a restart does not reset what the breaker counts.
  std::vector<int64_t> times(int64_t now_ms);
  void restore(const std::vector<int64_t>& times_ms);

 private:
  void trim(int64_t now_ms);

  int64_t window_ms_;
  int64_t last_ms_ = 0;
  std::deque<int64_t> times_;
};

}  // namespace shadan::controller

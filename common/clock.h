#pragma once

// Time behind an interface (Envoy's TimeSource): logic asks a Clock, tests move a fake one
// instead of sleeping.

#include <chrono>
#include <string>

namespace shadan {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point now() const = 0;
};

class SystemClock : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::now();
  }
};

// Monotonic time, for durations that a wall-clock step (NTP, an operator's `date -s`) must not
// stretch or shorten: grace periods, backoffs. Apart from Clock so each can be faked alone.
class MonotonicClock {
 public:
  virtual ~MonotonicClock() = default;
  virtual std::chrono::steady_clock::time_point now() const = 0;
};

class SteadyMonotonicClock : public MonotonicClock {
 public:
  std::chrono::steady_clock::time_point now() const override {
    return std::chrono::steady_clock::now();
  }
};

// Milliseconds since the Unix epoch.
inline int64_t toUnixMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// RFC 3339 UTC with millisecond precision: "2026-11-26T10:01:00.000Z".
std::string formatRfc3339(int64_t unix_millis);

}  // namespace shadan

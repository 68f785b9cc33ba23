#pragma once

// The state of one probed path over time, from the outcomes of a stream of probes (issue #17,
// "Measurement"): when it went from open to cut and back. Pure: time points come in as
// arguments, nothing here reads a clock or touches the kernel.
//
// Contracts:
//   - A path's state changes at the SEND time of the probe that first saw the new state: "cut
//     at t" means the first probe that failed was sent at t (it may have been declared failed a
//     timeout later). This is what "time to cut" measures.
//   - Probes may complete in any order (a cut probe waits for its timeout while later ones
//     succeed at once), but they are applied to the state in SEND order: an outcome waits until
//     every earlier probe has completed. The number waiting is bounded by the probes in flight.
//   - A probe whose outcome is kError (the probe itself could not run: no socket, no buffer)
//     says nothing about the path: it is counted, and skipped by the state.
//   - Memory is bounded: only transitions are kept, at most `max_transitions` (a path that
//     flaps at every probe for minutes); after that, further transitions are counted in
//     droppedTransitions() and not kept, and truncated() says so.
//
// Not thread-safe: the prober guards each timeline with its own mutex.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace shadan {

using ProbeClock = std::chrono::steady_clock;
using ProbeTime = ProbeClock::time_point;

enum class PathState { kOpen, kCut };
const char* pathStateName(PathState state);  // "open" | "cut"

enum class ProbeOutcome { kOk, kFailed, kError };

struct StateChange {
  ProbeTime at;  // send time of the first probe that saw `state`
  PathState state;
  friend bool operator==(const StateChange&, const StateChange&) = default;
};

class ProbeTimeline {
 public:
  static constexpr size_t kDefaultMaxTransitions = 65536;

  explicit ProbeTimeline(size_t max_transitions = kDefaultMaxTransitions);

  // Records a probe sent at `at` and returns its ticket (0, 1, 2, ... in send order).
  // REQUIRES: `at` is not before the previous send.
  uint64_t sent(ProbeTime at);
  // Records the outcome of the probe `ticket`. REQUIRES: `ticket` came from sent() and has not
  // completed yet (a broken invariant aborts).
  void completed(uint64_t ticket, ProbeOutcome outcome);

  // Every state change in time order; the first entry is the first state seen.
  const std::vector<StateChange>& transitions() const { return transitions_; }
  // The state after the last probe applied (nullopt before any outcome).
  std::optional<PathState> state() const { return state_; }
  // The first change to `state` at or after `after` that then held for at least `hold`: the
  // next change came `hold` or more later, or there was none and the probes applied since were
  // sent over at least `hold`. hold 0: the first change to `state`, however short.
  std::optional<ProbeTime> firstChangeAfter(
      ProbeTime after, PathState state,
      std::chrono::nanoseconds hold = std::chrono::nanoseconds::zero()) const;

  uint64_t sentCount() const { return sent_; }
  uint64_t okCount() const { return ok_; }
  uint64_t failedCount() const { return failed_; }
  uint64_t errorCount() const { return errors_; }
  uint64_t inFlight() const { return pending_.size() - resolved_waiting_; }
  // The longest time between two consecutive sends (zero before the second send).
  std::chrono::nanoseconds maxSendGap() const { return max_gap_; }
  std::optional<ProbeTime> firstSent() const { return first_sent_; }
  std::optional<ProbeTime> lastSent() const { return last_sent_; }
  bool truncated() const { return dropped_transitions_ > 0; }
  uint64_t droppedTransitions() const { return dropped_transitions_; }

 private:
  struct Pending {
    ProbeTime at;
    std::optional<ProbeOutcome> outcome;
  };
  void apply(const Pending& probe);

  size_t max_transitions_;
  std::deque<Pending> pending_;  // sent, not yet applied; front has ticket next_applied_
  uint64_t next_applied_ = 0;
  size_t resolved_waiting_ = 0;  // entries of pending_ with an outcome
  std::vector<StateChange> transitions_;
  std::optional<PathState> state_;
  std::optional<ProbeTime> last_applied_at_;
  uint64_t sent_ = 0;
  uint64_t ok_ = 0;
  uint64_t failed_ = 0;
  uint64_t errors_ = 0;
  std::chrono::nanoseconds max_gap_{0};
  std::optional<ProbeTime> first_sent_;
  std::optional<ProbeTime> last_sent_;
  uint64_t dropped_transitions_ = 0;
};

}  // namespace shadan

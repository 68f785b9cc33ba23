#include "cli/lab/probe_timeline.h"

#include "common/result.h"

namespace shadan {

const char* pathStateName(PathState state) { return state == PathState::kOpen ? "open" : "cut"; }

ProbeTimeline::ProbeTimeline(size_t max_transitions) : max_transitions_(max_transitions) {}

uint64_t ProbeTimeline::sent(ProbeTime at) {
  if (last_sent_) {
    if (at < *last_sent_) detail::resultAccessFailure("ProbeTimeline::sent: time went backwards");
    const auto gap = at - *last_sent_;
    if (gap > max_gap_) max_gap_ = gap;
  } else {
    first_sent_ = at;
  }
  last_sent_ = at;
  pending_.push_back(Pending{at, std::nullopt});
  return sent_++;
}

void ProbeTimeline::completed(uint64_t ticket, ProbeOutcome outcome) {
  if (ticket < next_applied_ || ticket - next_applied_ >= pending_.size()) {
    detail::resultAccessFailure("ProbeTimeline::completed: unknown ticket");
  }
  Pending& probe = pending_[static_cast<size_t>(ticket - next_applied_)];
  if (probe.outcome) detail::resultAccessFailure("ProbeTimeline::completed: completed twice");
  probe.outcome = outcome;
  ++resolved_waiting_;
  switch (outcome) {
    case ProbeOutcome::kOk:
      ++ok_;
      break;
    case ProbeOutcome::kFailed:
      ++failed_;
      break;
    case ProbeOutcome::kError:
      ++errors_;
      break;
  }
  // Apply in send order: the front waits for its own outcome even if later probes are done.
  while (!pending_.empty() && pending_.front().outcome) {
    apply(pending_.front());
    pending_.pop_front();
    --resolved_waiting_;
    ++next_applied_;
  }
}

void ProbeTimeline::apply(const Pending& probe) {
  if (*probe.outcome == ProbeOutcome::kError) return;
  last_applied_at_ = probe.at;
  const PathState seen = *probe.outcome == ProbeOutcome::kOk ? PathState::kOpen : PathState::kCut;
  if (state_ == seen) return;
  state_ = seen;
  if (transitions_.size() >= max_transitions_) {
    ++dropped_transitions_;
    return;
  }
  transitions_.push_back(StateChange{probe.at, seen});
}

std::optional<ProbeTime> ProbeTimeline::firstChangeAfter(ProbeTime after, PathState state,
                                                         std::chrono::nanoseconds hold) const {
  for (size_t i = 0; i < transitions_.size(); ++i) {
    const StateChange& change = transitions_[i];
    if (change.at < after || change.state != state) continue;
    if (i + 1 < transitions_.size()) {
      if (transitions_[i + 1].at - change.at >= hold) return change.at;
      continue;
    }
    // The latest change: it has held as long as the probes applied since cover. A truncated
    // timeline does not know what came after its last kept change.
    if (truncated()) return std::nullopt;
    if (last_applied_at_ && *last_applied_at_ - change.at >= hold) return change.at;
  }
  return std::nullopt;
}

}  // namespace shadan

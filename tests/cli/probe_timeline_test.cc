#include "cli/lab/probe_timeline.h"

#include <gtest/gtest.h>

#include <vector>

namespace shadan {
namespace {

using std::chrono::milliseconds;

// Probe send times on a 2 ms grid from an arbitrary origin.
ProbeTime at(int step) { return ProbeTime(std::chrono::hours(1)) + milliseconds(2 * step); }

class ProbeTimelineTest : public ::testing::Test {
 protected:
  // Sends one probe per outcome, on the grid, and completes each in send order.
  void run(const std::vector<ProbeOutcome>& outcomes) {
    for (ProbeOutcome outcome : outcomes) {
      timeline_.completed(timeline_.sent(at(next_step_++)), outcome);
    }
  }

  ProbeTimeline timeline_;
  int next_step_ = 0;
};

constexpr ProbeOutcome kOk = ProbeOutcome::kOk;
constexpr ProbeOutcome kFailed = ProbeOutcome::kFailed;
constexpr ProbeOutcome kError = ProbeOutcome::kError;

TEST_F(ProbeTimelineTest, HasNoStateBeforeAnyOutcome) {
  EXPECT_FALSE(timeline_.state().has_value());
  EXPECT_TRUE(timeline_.transitions().empty());
  const uint64_t ticket = timeline_.sent(at(0));
  EXPECT_EQ(ticket, 0u);
  EXPECT_FALSE(timeline_.state().has_value());
  EXPECT_EQ(timeline_.inFlight(), 1u);
  EXPECT_EQ(timeline_.sentCount(), 1u);
}

TEST_F(ProbeTimelineTest, AnOpenPathHasOneTransitionAtItsFirstProbe) {
  run({kOk, kOk, kOk});
  EXPECT_EQ(timeline_.transitions(), (std::vector<StateChange>{{at(0), PathState::kOpen}}));
  EXPECT_EQ(timeline_.state(), PathState::kOpen);
  EXPECT_EQ(timeline_.okCount(), 3u);
  EXPECT_EQ(timeline_.failedCount(), 0u);
}

TEST_F(ProbeTimelineTest, ACutAndRestoreChangeStateAtTheSendTimeOfTheFirstProbeThatSawIt) {
  run({kOk, kOk, kFailed, kFailed, kFailed, kOk, kOk});
  EXPECT_EQ(timeline_.transitions(),
            (std::vector<StateChange>{
                {at(0), PathState::kOpen}, {at(2), PathState::kCut}, {at(5), PathState::kOpen}}));
  EXPECT_EQ(timeline_.failedCount(), 3u);
  EXPECT_EQ(timeline_.okCount(), 4u);
  EXPECT_EQ(timeline_.inFlight(), 0u);
}

TEST_F(ProbeTimelineTest, OutcomesThatArriveOutOfOrderAreAppliedInSendOrder) {
  run({kOk});
  // Probe 1 is cut and waits for its timeout; probes 2 and 3 succeed at once.
  const uint64_t slow = timeline_.sent(at(1));
  const uint64_t second = timeline_.sent(at(2));
  const uint64_t third = timeline_.sent(at(3));
  timeline_.completed(second, kOk);
  timeline_.completed(third, kOk);
  // Nothing after probe 1 is applied before probe 1 is known.
  EXPECT_EQ(timeline_.transitions().size(), 1u);
  EXPECT_EQ(timeline_.okCount(), 3u);
  EXPECT_EQ(timeline_.inFlight(), 1u);
  timeline_.completed(slow, kFailed);
  EXPECT_EQ(timeline_.transitions(),
            (std::vector<StateChange>{
                {at(0), PathState::kOpen}, {at(1), PathState::kCut}, {at(2), PathState::kOpen}}));
  EXPECT_EQ(timeline_.inFlight(), 0u);
}

TEST_F(ProbeTimelineTest, ErrorsAreCountedButSayNothingAboutThePath) {
  run({kOk, kError, kError, kOk});
  EXPECT_EQ(timeline_.transitions(), (std::vector<StateChange>{{at(0), PathState::kOpen}}));
  EXPECT_EQ(timeline_.errorCount(), 2u);
  // An error first: the first state comes from the first probe that could run.
  ProbeTimeline fresh;
  fresh.completed(fresh.sent(at(0)), kError);
  fresh.completed(fresh.sent(at(1)), kFailed);
  EXPECT_EQ(fresh.transitions(), (std::vector<StateChange>{{at(1), PathState::kCut}}));
}

TEST_F(ProbeTimelineTest, KeepsAtMostMaxTransitionsAndSaysItDroppedSome) {
  ProbeTimeline small(2);
  for (int i = 0; i < 6; ++i) small.completed(small.sent(at(i)), i % 2 == 0 ? kOk : kFailed);
  EXPECT_EQ(small.transitions(),
            (std::vector<StateChange>{{at(0), PathState::kOpen}, {at(1), PathState::kCut}}));
  EXPECT_TRUE(small.truncated());
  EXPECT_EQ(small.droppedTransitions(), 4u);
  // The state itself still follows the probes.
  EXPECT_EQ(small.state(), PathState::kCut);
  EXPECT_EQ(small.sentCount(), 6u);
}

TEST_F(ProbeTimelineTest, FirstChangeAfterFindsTheFirstChangeToTheStateAtOrAfterTheTime) {
  run({kOk, kFailed, kOk, kOk, kFailed, kFailed, kOk});
  EXPECT_EQ(timeline_.firstChangeAfter(at(0), PathState::kCut), at(1));
  EXPECT_EQ(timeline_.firstChangeAfter(at(1), PathState::kCut), at(1));
  EXPECT_EQ(timeline_.firstChangeAfter(at(2), PathState::kCut), at(4));
  EXPECT_EQ(timeline_.firstChangeAfter(at(2), PathState::kOpen), at(2));
  EXPECT_EQ(timeline_.firstChangeAfter(at(5), PathState::kOpen), at(6));
  EXPECT_FALSE(timeline_.firstChangeAfter(at(5), PathState::kCut).has_value());
  EXPECT_FALSE(timeline_.firstChangeAfter(at(7), PathState::kOpen).has_value());
}

TEST_F(ProbeTimelineTest, HoldSkipsBlipsShorterThanIt) {
  // A one-probe blip at 1, then a real cut from 4 on.
  run({kOk, kFailed, kOk, kOk, kFailed, kFailed, kFailed, kFailed});
  EXPECT_EQ(timeline_.firstChangeAfter(at(0), PathState::kCut, milliseconds(4)), at(4));
  // The latest change has held as long as the probes since cover: 4..7 is 6 ms.
  EXPECT_EQ(timeline_.firstChangeAfter(at(0), PathState::kCut, milliseconds(6)), at(4));
  EXPECT_FALSE(timeline_.firstChangeAfter(at(0), PathState::kCut, milliseconds(7)).has_value());
}

TEST_F(ProbeTimelineTest, TracksTheLongestGapBetweenSends) {
  EXPECT_EQ(timeline_.maxSendGap(), std::chrono::nanoseconds::zero());
  (void)timeline_.sent(at(0));
  (void)timeline_.sent(at(1));
  (void)timeline_.sent(at(4));
  (void)timeline_.sent(at(5));
  EXPECT_EQ(timeline_.maxSendGap(), milliseconds(6));
  EXPECT_EQ(timeline_.firstSent(), at(0));
  EXPECT_EQ(timeline_.lastSent(), at(5));
  EXPECT_EQ(timeline_.inFlight(), 4u);
}

TEST_F(ProbeTimelineTest, CompletingATicketTwiceIsABrokenInvariant) {
  const uint64_t ticket = timeline_.sent(at(0));
  const uint64_t later = timeline_.sent(at(1));
  timeline_.completed(later, kOk);
  EXPECT_DEATH(timeline_.completed(later, kOk), "completed twice");
  timeline_.completed(ticket, kOk);
  EXPECT_DEATH(timeline_.completed(ticket, kOk), "unknown ticket");
  EXPECT_DEATH(timeline_.completed(99, kOk), "unknown ticket");
}

TEST(PathStateTest, HasTheReportNames) {
  EXPECT_STREQ(pathStateName(PathState::kOpen), "open");
  EXPECT_STREQ(pathStateName(PathState::kCut), "cut");
}

}  // namespace
}  // namespace shadan

#include "common/logging.h"

#include <gtest/gtest.h>

#include <chrono>

namespace shadan {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

TEST(EveryIntervalTest, TheFirstIsDueAtOnceThenOneLineAnIntervalCountingTheRest) {
  EveryInterval every(milliseconds(1000));
  const Clock::time_point start{std::chrono::hours(1)};
  EXPECT_EQ(every.tick(start), 1u);
  EXPECT_EQ(every.tick(start + milliseconds(10)), 0u);
  EXPECT_EQ(every.tick(start + milliseconds(500)), 0u);
  EXPECT_EQ(every.tick(start + milliseconds(999)), 0u);
  // Due again: this one and the three counted meanwhile.
  EXPECT_EQ(every.tick(start + milliseconds(1000)), 4u);
  EXPECT_EQ(every.tick(start + milliseconds(1500)), 0u);
  // A quiet spell: the next one is due at once and stands for itself and the one before.
  EXPECT_EQ(every.tick(start + milliseconds(60'000)), 2u);
}

TEST(EveryIntervalTest, DueAtOnceEvenAtTheClocksEpoch) {
  EveryInterval every(milliseconds(1000));
  EXPECT_EQ(every.tick(Clock::time_point{}), 1u);
  EXPECT_EQ(every.tick(Clock::time_point{} + milliseconds(1)), 0u);
}

}  // namespace
}  // namespace shadan

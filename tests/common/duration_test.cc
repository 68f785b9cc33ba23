#include "common/duration.h"

#include <gtest/gtest.h>

namespace shadan {
namespace {

using std::chrono::milliseconds;

TEST(DurationTest, ParsesEachUnit) {
  EXPECT_EQ(parseDuration("250ms").value(), milliseconds(250));
  EXPECT_EQ(parseDuration("4s").value(), milliseconds(4000));
  EXPECT_EQ(parseDuration("30m").value(), milliseconds(30 * 60'000));
  EXPECT_EQ(parseDuration("2h").value(), milliseconds(2 * 3'600'000));
  EXPECT_EQ(parseDuration("1d").value(), milliseconds(86'400'000));
}

TEST(DurationTest, RefusesWhatIsNotADuration) {
  for (const char* bad :
       {"", "s", "5", "0s", "-1s", "1.5h", "1y", "4 s", "4S", "367d", "9999999999s", "1h30m"}) {
    auto parsed = parseDuration(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(parsed.error().message.find("invalid duration"), std::string::npos);
  }
}

TEST(DurationTest, FormatsExactly) {
  EXPECT_EQ(formatDuration(milliseconds(4000)), "4s");
  EXPECT_EQ(formatDuration(milliseconds(5'400'000)), "1h30m");
  EXPECT_EQ(formatDuration(milliseconds(1250)), "1s250ms");
}

}  // namespace
}  // namespace shadan

#include "controller/bulk_lane.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <string>
#include <vector>

namespace shadan::controller {
namespace {

// The property the lane exists for: a handler that becomes ready while bulk jobs are queued
// runs after at most one of them, not after all.
TEST(BulkLaneTest, OtherHandlersRunBetweenBulkJobs) {
  boost::asio::io_context io;
  auto lane = std::make_shared<BulkLane>(io, 8, 1024);
  std::vector<std::string> ran;
  for (const char* name : {"batch1", "batch2", "batch3"}) {
    ASSERT_TRUE(lane->push(10, [&ran, name] { ran.push_back(name); }));
  }
  boost::asio::post(io, [&] { ran.push_back("operator"); });
  io.run();
  EXPECT_EQ(ran, (std::vector<std::string>{"batch1", "operator", "batch2", "batch3"}));
  EXPECT_EQ(lane->queued(), 0u);
}

TEST(BulkLaneTest, JobsRunInArrivalOrder) {
  boost::asio::io_context io;
  auto lane = std::make_shared<BulkLane>(io, 8, 1024);
  std::vector<int> ran;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(lane->push(1, [&ran, i] { ran.push_back(i); }));
  io.run();
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(BulkLaneTest, RefusesOverTheJobBoundAndTakesAgainOnceDrained) {
  boost::asio::io_context io;
  auto lane = std::make_shared<BulkLane>(io, 2, 1024);
  int ran = 0;
  EXPECT_TRUE(lane->push(1, [&] { ++ran; }));
  EXPECT_TRUE(lane->push(1, [&] { ++ran; }));
  EXPECT_FALSE(lane->push(1, [&] { ran += 100; }));
  io.run();
  EXPECT_EQ(ran, 2);  // the refused job never ran
  io.restart();
  EXPECT_TRUE(lane->push(1, [&] { ++ran; }));
  io.run();
  EXPECT_EQ(ran, 3);
}

TEST(BulkLaneTest, RefusesOverTheByteBound) {
  boost::asio::io_context io;
  auto lane = std::make_shared<BulkLane>(io, 8, 100);
  EXPECT_TRUE(lane->push(60, [] {}));
  EXPECT_FALSE(lane->push(41, [] {}));
  EXPECT_TRUE(lane->push(40, [] {}));
  EXPECT_FALSE(lane->push(1, [] {}));
  EXPECT_FALSE(lane->push(static_cast<size_t>(-1), [] {}));  // no overflow past the bound
  io.run();
  EXPECT_EQ(lane->queued(), 0u);
}

}  // namespace
}  // namespace shadan::controller

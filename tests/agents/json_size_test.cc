#include "agents/orders/json_size.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

namespace shadan::agent {
namespace {

using nlohmann::json;

constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

TEST(JsonSizeTest, MeasuresWhatDumpWrites) {
  std::string controls;
  for (int c = 0; c < 0x20; ++c) controls.push_back(static_cast<char>(c));
  const std::vector<json> values = {
      json(),
      json(true),
      json(false),
      json(0),
      json(-9223372036854775807LL - 1),
      json(18446744073709551615ULL),
      json(1.5),
      json(1e300),
      json(""),
      json("plain"),
      json("quote \" backslash \\ slash / tab \t newline \n"),
      json(controls + "\x7f"),
      json("日本語 \xF0\x9F\x98\x80"),
      json::array(),
      json::object(),
      json::array({1, "two", json::array({3, json::object()}), nullptr}),
      json{{"payloadType", "application/vnd.shadan.dispatch.v1+json"},
           {"payload", "eyJ2IjoxfQ=="},
           {"signatures", {{{"keyid", std::string(64, 'a')}, {"sig", "AAAA"}}}},
           {"k\"ey\n", {{"nested", {{"deeper", json::array({json::object()})}}}}}},
  };
  for (const json& value : values) {
    EXPECT_EQ(compactJsonSize(value, kNoLimit), value.dump().size()) << value.dump();
    // Exact at the limit too.
    EXPECT_EQ(compactJsonSize(value, value.dump().size()), value.dump().size()) << value.dump();
  }
}

TEST(JsonSizeTest, StopsPastTheLimit) {
  json big = json::array();
  for (int i = 0; i < 1000; ++i) big.push_back(std::string(1000, 'x'));
  const size_t size = compactJsonSize(big, 10'000);
  EXPECT_GT(size, 10'000u);
  EXPECT_LT(size, big.dump().size());
}

TEST(JsonSizeTest, DeepNestingDoesNotRecurse) {
  json deep = json::array();
  for (int i = 0; i < 100'000; ++i) deep = json::array({std::move(deep)});
  EXPECT_EQ(compactJsonSize(deep, kNoLimit), 2u * 100'001u);
}

}  // namespace
}  // namespace shadan::agent

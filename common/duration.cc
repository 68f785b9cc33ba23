#include "common/duration.h"

#include <charconv>

namespace shadan {

Result<std::chrono::milliseconds> parseDuration(std::string_view text) {
  const auto fail = [&](const std::string& why) {
    return makeError(ErrorCode::kInvalidArgument,
                     "invalid duration \"" + std::string(text) + "\": " + why);
  };
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return fail("expected a number followed by ms, s, m, h or d");
  if (digits > 9) return fail("number too large");
  uint64_t number = 0;
  std::from_chars(text.data(), text.data() + digits, number);
  const std::string_view unit = text.substr(digits);
  uint64_t unit_ms = 0;
  if (unit == "ms") {
    unit_ms = 1;
  } else if (unit == "s") {
    unit_ms = 1000;
  } else if (unit == "m") {
    unit_ms = 60'000;
  } else if (unit == "h") {
    unit_ms = 3'600'000;
  } else if (unit == "d") {
    unit_ms = 86'400'000;
  } else {
    return fail("unit must be ms, s, m, h or d");
  }
  const uint64_t total = number * unit_ms;
  if (total == 0) return fail("must be more than zero");
  if (total > 366ull * 86'400'000) return fail("more than 366 days");
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

std::string formatDuration(std::chrono::milliseconds duration) {
  int64_t ms = duration.count();
  if (ms <= 0) return "0s";
  std::string out;
  const struct {
    int64_t size;
    const char* unit;
  } kUnits[] = {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& u : kUnits) {
    if (ms >= u.size) {
      out += std::to_string(ms / u.size) + u.unit;
      ms %= u.size;
    }
  }
  return out;
}

}  // namespace shadan

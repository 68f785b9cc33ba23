#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace shadan {

// Parses "500ms", "4s", "30m", "2h", "1d" (one number, one unit; no sign, no fractions) into
// milliseconds. Zero and values above 366 days are refused: a cut that ends at once or in a
// year is a typo, not an intention.
Result<std::chrono::milliseconds> parseDuration(std::string_view text);

// "4s", "30m", "1h30m", "250ms": the shortest exact rendering.
std::string formatDuration(std::chrono::milliseconds duration);

}  // namespace shadan

#pragma once

// Whole-string decimal integers: the text is the number and nothing else (no sign for unsigned
// types, no spaces, no "12abc"). For numbers that arrive as text from files, queries and peers.

#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>

namespace shadan {

template <typename Int>
std::optional<Int> parseWholeDecimal(std::string_view text) {
  Int value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace shadan

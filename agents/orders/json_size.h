#pragma once

// The size an already parsed JSON value has as compact text, measured without writing the text.
//
// A signed envelope that arrives inside a larger, already strictly parsed frame is checked
// against the same byte cap as one that arrives as text. Serialising it again only to measure it
// would cost a copy of up to the frame size; this walks the value instead and stops as soon as
// the cap is passed, so an oversized value costs no more than the cap.

#include <cstddef>
#include <nlohmann/json.hpp>

namespace shadan::agent {

// value.dump().size() (compact, UTF-8 kept as is) when that is at most `limit`; otherwise some
// number above `limit`. Strings are assumed to be valid UTF-8, as the parser guarantees
// (dump() would throw on invalid UTF-8; this counts its bytes). Iterative: a deeply nested value
// cannot exhaust the stack.
size_t compactJsonSize(const nlohmann::json& value, size_t limit);

}  // namespace shadan::agent

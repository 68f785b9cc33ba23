#pragma once

// Strict JSON parsing for everything Shadan reads from outside: policies, signed envelopes,
// trust files. nlohmann_json alone is too forgiving for inputs that carry authority: it keeps
// the last of duplicated object keys silently (so two readers can disagree on what a document
// says) and accepts any size. parseStrictJson() closes those gaps and never throws.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace shadan {

// Nesting deeper than this (arrays/objects inside each other) is rejected: no Shadan format
// needs more, and it bounds the work a hostile document can cause.
inline constexpr size_t kStrictJsonMaxDepth = 64;

// Parses `text` as one JSON document.
//
// Rejects, with ErrorCode::kParse and a message starting with `<source>: `:
//   - text longer than `max_bytes` (checked before any parsing);
//   - malformed JSON or invalid UTF-8 (`<source>: byte N: ...`);
//   - a duplicated key in any object (`<source>: <pointer of the object>: duplicate key "k"`);
//   - floating-point numbers, including integers too large for 64 bits
//     (`<source>: <pointer>: ...`): Shadan formats use integers only, and a float cannot be
//     compared or signed reliably;
//   - nesting deeper than kStrictJsonMaxDepth.
// Strings, integers, booleans, null, arrays and objects are returned as parsed; checking their
// meaning is the caller's job. The root pointer is printed as "/".
Result<nlohmann::json> parseStrictJson(std::string_view text, std::string_view source,
                                       size_t max_bytes);

// JSON pointer helpers (RFC 6901) for callers that validate a parsed document and must name the
// offending value. `base` is a pointer ("" for the root).
std::string jsonPointerAppend(std::string_view base, std::string_view key);
std::string jsonPointerAppend(std::string_view base, size_t index);

// A pointer as printed in messages: the root ("") prints as "/".
std::string jsonPointerDisplay(std::string_view pointer);

// A quoted, escaped and length-limited rendering of untrusted text for error messages (keys or
// values from the input may hold control characters or be very long).
std::string quoteForMessage(std::string_view text);

}  // namespace shadan

#pragma once

// Strict JSON parsing for everything Shadan reads from outside: policies, signed envelopes,
// trust files. nlohmann_json alone is too forgiving for inputs that carry authority: it keeps
// the last of duplicated object keys silently (so two readers can disagree on what a document
// says) and accepts any size. parseStrictJson() closes those gaps and never throws.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
//
// StrictJsonNumbers::kAllowFloats lifts only the float rule, for formats Shadan reads but does
// not own (detector alerts: Zeek's `ts` is fractional seconds, and Suricata may write floats in
// members Shadan ignores); duplicate keys, size and depth stay refused.
enum class StrictJsonNumbers { kIntegersOnly, kAllowFloats };
Result<nlohmann::json> parseStrictJson(
    std::string_view text, std::string_view source, size_t max_bytes,
    StrictJsonNumbers numbers = StrictJsonNumbers::kIntegersOnly);

// JSON pointer helpers (RFC 6901) for callers that validate a parsed document and must name the
// offending value. `base` is a pointer ("" for the root).
std::string jsonPointerAppend(std::string_view base, std::string_view key);
std::string jsonPointerAppend(std::string_view base, size_t index);

// A pointer as printed in messages: the root ("") prints as "/".
std::string jsonPointerDisplay(std::string_view pointer);

// A quoted, escaped and length-limited rendering of untrusted text for error messages (keys or
// values from the input may hold control characters or be very long).
std::string quoteForMessage(std::string_view text);

// ---------------------------------------------------------------------------------------------
// Reading a parsed document member by member

// How a reader words its errors. Three wordings predate the shared reader and are relied on by
// tests, operators' runbooks and the audit verifier's reports, so each reader speaks one of
// them. With `S` the source, `P` the pointer of the object and `k` a member:
enum class StrictJsonWording {
  // Signed wire formats (orders, DSSE envelopes, trust files), the default: member-set errors
  // name the object. `S: P: unknown member "k"`, `S: P: missing member "k"`,
  // values `S: P/k: <reason>`.
  kMembers,
  // Configuration files and API request bodies: every error names the member.
  // `S: P/k: unknown field "k"`, `S: P/k: is required`, values `S: P/k: <reason>`.
  kFields,
  // Audit log entries and checkpoints: no source, the path dotted.
  // `field "who.k" unknown field`, `missing field "who.k"`, values `field "who.k" <reason>`.
  kAuditFields,
};

// What a string member must look like beyond being a string. Checked in this order.
struct StringRules {
  bool non_empty = false;                                 // else "must not be empty"
  size_t max_bytes = std::numeric_limits<size_t>::max();  // else "longer than N bytes"
  bool no_control = false;  // no byte < 0x20 or 0x7f, else "contains a control character"
};
inline constexpr StringRules kNonEmptyString{.non_empty = true};

class StrictArrayReader;

// Reads the members of one JSON object strictly, naming the source and JSON pointer of the
// offending value in every error (ErrorCode::kParse), in the reader's StrictJsonWording.
//
// The getters check presence and type; a missing member is an error ("is required" or the
// wording's equivalent), and an optional* getter returns nullopt for it instead. A member that
// is present with the wrong type, null included, is an error in both. Pointers are built only
// for errors, so reading a valid document allocates little.
//
// A reader is a view: the JSON value and the text `source` refers to must outlive it and every
// reader made from it.
class StrictObjectReader {
 public:
  StrictObjectReader(const nlohmann::json& object, std::string_view source,
                     std::string pointer = {},
                     StrictJsonWording wording = StrictJsonWording::kMembers);

  // Fails unless the value is an object ("must be an object") whose members are all in
  // `required` or `optional` (naming the first unknown one, in key order) and which has every
  // `required` member (naming the first missing one, in `required` order). With `required`
  // empty it is the "only these members" check of a protocol message.
  [[nodiscard]] Status checkMembers(std::initializer_list<std::string_view> required,
                                    std::initializer_list<std::string_view> optional = {}) const;

  bool has(std::string_view name) const;
  // REQUIRES: has(name).
  const nlohmann::json& at(std::string_view name) const;
  const nlohmann::json& value() const { return object_; }
  std::string pointerOf(std::string_view name) const;

  // An error about the object itself, or about its member `name` (present or not).
  [[nodiscard]] Error error(std::string_view reason) const;
  [[nodiscard]] Error error(std::string_view name, std::string_view reason) const;

  Result<std::string> string(std::string_view name, const StringRules& rules = {}) const;
  Result<std::optional<std::string>> optionalString(std::string_view name,
                                                    const StringRules& rules = {}) const;
  // A signed 64-bit integer in [min, max]: "must be an integer", "out of range" (above 2^63-1),
  // "must be between <min> and <max>".
  Result<int64_t> integer(std::string_view name, int64_t min = std::numeric_limits<int64_t>::min(),
                          int64_t max = std::numeric_limits<int64_t>::max()) const;
  Result<std::optional<int64_t>> optionalInteger(
      std::string_view name, int64_t min = std::numeric_limits<int64_t>::min(),
      int64_t max = std::numeric_limits<int64_t>::max()) const;
  // Any integer from 0 to 2^64-1: "must be a non-negative integer".
  Result<uint64_t> unsignedInteger(std::string_view name) const;
  Result<std::optional<uint64_t>> optionalUnsignedInteger(std::string_view name) const;
  // "must be true or false".
  Result<bool> boolean(std::string_view name) const;
  Result<std::optional<bool>> optionalBoolean(std::string_view name) const;
  // An array of strings, possibly empty: "must be an array of strings".
  Result<std::vector<std::string>> strings(std::string_view name) const;
  Result<std::optional<std::vector<std::string>>> optionalStrings(std::string_view name) const;
  // A reader over the member, which must be an object ("must be an object"); its members are
  // not checked yet.
  Result<StrictObjectReader> object(std::string_view name) const;
  Result<std::optional<StrictObjectReader>> optionalObject(std::string_view name) const;
  // A reader over the member, which must be an array of min_items..max_items elements, else
  // error(name, refusal). An empty `refusal` says "must be an array", "must be a non-empty
  // array" or "must be an array of <min> to <max> elements".
  Result<StrictArrayReader> array(std::string_view name, size_t min_items = 0,
                                  size_t max_items = std::numeric_limits<size_t>::max(),
                                  std::string_view refusal = {}) const;

 private:
  // The member, or nullptr if the object lacks it (or is not an object).
  const nlohmann::json* find(std::string_view name) const;
  Error missing(std::string_view name) const;

  const nlohmann::json& object_;
  std::string_view source_;
  std::string pointer_;
  StrictJsonWording wording_;
};

// The elements of one JSON array, read like StrictObjectReader's members. REQUIRES: the value
// is an array (StrictObjectReader::array checks it); same lifetime rules.
class StrictArrayReader {
 public:
  StrictArrayReader(const nlohmann::json& array, std::string_view source, std::string pointer,
                    StrictJsonWording wording = StrictJsonWording::kMembers);

  size_t size() const { return array_.size(); }
  // REQUIRES: index < size().
  const nlohmann::json& at(size_t index) const { return array_[index]; }
  std::string pointerOf(size_t index) const;

  [[nodiscard]] Error error(std::string_view reason) const;
  [[nodiscard]] Error error(size_t index, std::string_view reason) const;

  // REQUIRES (both): index < size().
  Result<std::string> string(size_t index, const StringRules& rules = {}) const;
  Result<StrictObjectReader> object(size_t index) const;

 private:
  const nlohmann::json& array_;
  std::string_view source_;
  std::string pointer_;
  StrictJsonWording wording_;
};

}  // namespace shadan

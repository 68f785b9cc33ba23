#pragma once

// The typed reads a policy document is made of. Each checks one JSON value and, when it is not
// what POLICY.md allows, fails (kPolicy) with the source, the JSON pointer of the value and the
// reason. Internal to the policy loader (common/policy.cc, common/policy_parser.cc); the public
// interface is common/policy.h.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/ip_prefix.h"
#include "common/result.h"

namespace shadan::policy_detail {

// Code points of valid UTF-8 (the parser has already checked it).
size_t utf8Length(std::string_view text);

// True if `text` holds a C0 control character or DEL.
bool hasControlCharacter(std::string_view text);

class PolicyReader {
 public:
  // `source` names the input in every error ("policy.json").
  explicit PolicyReader(std::string_view source) : source_(source) {}

  // "<source>: <pointer>: <reason>".
  Error fail(std::string_view pointer, const std::string& reason) const;
  // "expected <expected>, got <the JSON type of value>".
  Error typeError(const nlohmann::json& value, std::string_view pointer,
                  std::string_view expected) const;

  // `value` must be an object holding every key of `required` and no key outside
  // `required` + `optional`.
  Status checkObject(const nlohmann::json& value, std::string_view pointer,
                     std::initializer_list<std::string_view> required,
                     std::initializer_list<std::string_view> optional) const;

  Result<std::string> parseString(const nlohmann::json& value, std::string_view pointer) const;
  Result<bool> parseBool(const nlohmann::json& value, std::string_view pointer) const;
  // An integer in min..max.
  Result<int64_t> parseInteger(const nlohmann::json& value, std::string_view pointer, int64_t min,
                               int64_t max) const;
  // A string that must be one of `choices`; returns its index.
  Result<size_t> parseChoice(const nlohmann::json& value, std::string_view pointer,
                             std::initializer_list<std::string_view> choices) const;

  // A name that becomes part of nftables identifiers (segment, gateway, profile); `what` names
  // its kind in the error.
  Status checkName(std::string_view name, std::string_view pointer, std::string_view what) const;

  // A description: bounded length, no control characters (it reaches logs, the audit trail and
  // the dashboard).
  Result<std::string> parseDescription(const nlohmann::json& value, std::string_view pointer) const;
  // Reads the optional "description" key of `object` ("" when absent).
  Result<std::string> optionalDescription(const nlohmann::json& object,
                                          std::string_view pointer) const;

  Result<IpPrefix> parsePrefix(const nlohmann::json& value, std::string_view pointer) const;

 private:
  std::string source_;
};

}  // namespace shadan::policy_detail

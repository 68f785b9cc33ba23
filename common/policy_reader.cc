#include "common/policy_reader.h"

#include <algorithm>
#include <limits>

#include "common/strict_json.h"

namespace shadan::policy_detail {
namespace {

using nlohmann::json;

constexpr size_t kMaxDescriptionChars = 256;
constexpr size_t kMaxNameChars = 32;

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// ^[a-z0-9][a-z0-9-]{0,31}$ : segment, gateway and profile names end up in nftables set and
// chain names, so they must be short and need no quoting.
bool isValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameChars || !isLowerAlnum(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return isLowerAlnum(c) || c == '-'; });
}

std::string joinNames(std::initializer_list<std::string_view> names) {
  std::string joined;
  for (const auto name : names) {
    if (!joined.empty()) joined += ", ";
    joined += name;
  }
  return joined;
}

}  // namespace

// Every byte that is not a continuation byte starts a code point.
size_t utf8Length(std::string_view text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

bool hasControlCharacter(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

Error PolicyReader::fail(std::string_view pointer, const std::string& reason) const {
  return makeError(ErrorCode::kPolicy,
                   source_ + ": " + jsonPointerDisplay(pointer) + ": " + reason);
}

Status PolicyReader::checkObject(const json& value, std::string_view pointer,
                                 std::initializer_list<std::string_view> required,
                                 std::initializer_list<std::string_view> optional) const {
  if (!value.is_object()) return typeError(value, pointer, "an object");
  for (const auto& item : value.items()) {
    const std::string& key = item.key();
    const auto known = [&key](std::initializer_list<std::string_view> keys) {
      return std::find(keys.begin(), keys.end(), key) != keys.end();
    };
    if (!known(required) && !known(optional)) {
      std::string allowed = joinNames(required);
      if (optional.size() > 0) allowed += (allowed.empty() ? "" : ", ") + joinNames(optional);
      return fail(jsonPointerAppend(pointer, key),
                  "unknown key " + quoteForMessage(key) + " (allowed: " + allowed + ")");
    }
  }
  for (const auto key : required) {
    if (!value.contains(key)) {
      return fail(jsonPointerAppend(pointer, key), "missing required key " + quoteForMessage(key));
    }
  }
  return okStatus();
}

Error PolicyReader::typeError(const json& value, std::string_view pointer,
                              std::string_view expected) const {
  return fail(pointer,
              "expected " + std::string(expected) + ", got " + std::string(value.type_name()));
}

Result<std::string> PolicyReader::parseString(const json& value, std::string_view pointer) const {
  if (!value.is_string()) return typeError(value, pointer, "a string");
  return value.get<std::string>();
}

Result<bool> PolicyReader::parseBool(const json& value, std::string_view pointer) const {
  if (!value.is_boolean()) return typeError(value, pointer, "a boolean");
  return value.get<bool>();
}

Result<int64_t> PolicyReader::parseInteger(const json& value, std::string_view pointer, int64_t min,
                                           int64_t max) const {
  if (!value.is_number_integer()) return typeError(value, pointer, "an integer");
  const std::string range = std::to_string(min) + ".." + std::to_string(max);
  if (value.is_number_unsigned() &&
      value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return fail(pointer, "out of range " + range);
  }
  const auto number = value.get<int64_t>();
  if (number < min || number > max) {
    return fail(pointer, std::to_string(number) + " is out of range " + range);
  }
  return number;
}

Status PolicyReader::checkName(std::string_view name, std::string_view pointer,
                               std::string_view what) const {
  if (isValidName(name)) return okStatus();
  return fail(pointer, "invalid " + std::string(what) + " name " + quoteForMessage(name) +
                           ": must match ^[a-z0-9][a-z0-9-]{0,31}$");
}

Result<std::string> PolicyReader::parseDescription(const json& value,
                                                   std::string_view pointer) const {
  SHADAN_ASSIGN_OR_RETURN(auto text, parseString(value, pointer));
  if (utf8Length(text) > kMaxDescriptionChars) {
    return fail(pointer,
                "description longer than " + std::to_string(kMaxDescriptionChars) + " characters");
  }
  // Descriptions reach logs, the audit trail and the dashboard.
  if (hasControlCharacter(text)) return fail(pointer, "description has control characters");
  return text;
}

Result<std::string> PolicyReader::optionalDescription(const json& object,
                                                      std::string_view pointer) const {
  if (!object.contains("description")) return std::string();
  return parseDescription(object.at("description"), jsonPointerAppend(pointer, "description"));
}

Result<IpPrefix> PolicyReader::parsePrefix(const json& value, std::string_view pointer) const {
  SHADAN_ASSIGN_OR_RETURN(auto text, parseString(value, pointer));
  auto prefix = IpPrefix::parse(text);
  if (!prefix.ok()) return fail(pointer, prefix.error().message);
  return prefix;
}

Result<size_t> PolicyReader::parseChoice(const json& value, std::string_view pointer,
                                         std::initializer_list<std::string_view> choices) const {
  SHADAN_ASSIGN_OR_RETURN(auto text, parseString(value, pointer));
  size_t index = 0;
  for (const auto choice : choices) {
    if (text == choice) return index;
    ++index;
  }
  return fail(pointer, "must be one of " + joinNames(choices) + ", got " + quoteForMessage(text));
}

}  // namespace shadan::policy_detail

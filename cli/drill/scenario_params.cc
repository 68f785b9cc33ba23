// Scenario parameters: "${name}" in string values, replaced before the scenario is read.

#include <set>

#include "cli/drill/scenario_internal.h"
#include "common/strict_json.h"

namespace shadan::drill::internal {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxParameters = 32;
constexpr size_t kMaxParameterValueBytes = 256;
constexpr StringRules kDescription{.non_empty = true, .max_bytes = 512, .no_control = true};
constexpr StringRules kValue{
    .non_empty = true, .max_bytes = kMaxParameterValueBytes, .no_control = true};

bool isParameterName(std::string_view name) {
  if (name.empty() || name.size() > 32 || name[0] < 'a' || name[0] > 'z') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

Error parseError(std::string_view source, std::string_view pointer, const std::string& reason) {
  return makeError(ErrorCode::kParse,
                   std::string(source) + ": " + jsonPointerDisplay(pointer) + ": " + reason);
}

// A parameter value may not hold a reference itself: replacement is one pass, never recursive.
Status checkValue(const std::string& value, std::string_view source, std::string_view pointer) {
  if (value.find("${") != std::string::npos) {
    return parseError(source, pointer, "a parameter value may not contain \"${\"");
  }
  return okStatus();
}

class Substitution {
 public:
  Substitution(std::string_view source, const std::map<std::string, ScenarioParameter>& declared,
               const std::map<std::string, std::string>& values)
      : source_(source), declared_(declared), values_(values) {}

  Status walk(Json& value, const std::string& pointer) {
    if (value.is_string()) return replace(value, pointer);
    if (value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i) {
        SHADAN_RETURN_IF_ERROR(walk(value[i], jsonPointerAppend(pointer, i)));
      }
    } else if (value.is_object()) {
      for (auto& [key, member] : value.items()) {
        if (pointer.empty() && key == "parameters") continue;
        SHADAN_RETURN_IF_ERROR(walk(member, jsonPointerAppend(pointer, key)));
      }
    }
    return okStatus();
  }

 private:
  Status replace(Json& value, const std::string& pointer) {
    const std::string& text = value.get_ref<const std::string&>();
    if (text.find("${") == std::string::npos) return okStatus();
    std::string out;
    size_t at = 0;
    for (size_t start; (start = text.find("${", at)) != std::string::npos;) {
      out.append(text, at, start - at);
      const size_t end = text.find('}', start + 2);
      const std::string name =
          end == std::string::npos ? std::string() : text.substr(start + 2, end - start - 2);
      if (!isParameterName(name)) {
        return parseError(source_, pointer,
                          "malformed parameter reference in " + quoteForMessage(text) +
                              " (write ${name}, name: a-z, 0-9, _)");
      }
      if (!declared_.contains(name)) {
        return parseError(source_, pointer,
                          "unknown parameter \"" + name + "\" (declare it under /parameters)");
      }
      auto found = values_.find(name);
      if (found == values_.end()) {
        return parseError(source_, pointer,
                          "parameter \"" + name + "\" has no value (give one; it has no default)");
      }
      out += found->second;
      at = end + 1;
    }
    out.append(text, at, std::string::npos);
    value = out;
    return okStatus();
  }

  std::string_view source_;
  const std::map<std::string, ScenarioParameter>& declared_;
  const std::map<std::string, std::string>& values_;
};

}  // namespace

bool isPolicyName(std::string_view name) {
  if (name.empty() || name.size() > 32 || name[0] == '-') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

Result<std::map<std::string, ScenarioParameter>> readParameters(const Json& root,
                                                                std::string_view source) {
  std::map<std::string, ScenarioParameter> out;
  if (!root.is_object() || !root.contains("parameters")) return out;
  const StrictObjectReader reader(root, source, "", StrictJsonWording::kFields);
  SHADAN_ASSIGN_OR_RETURN(auto section, reader.object("parameters"));
  if (section.value().size() > kMaxParameters) {
    return section.error("at most " + std::to_string(kMaxParameters) + " parameters");
  }
  for (const auto& [name, unused] : section.value().items()) {
    if (!isParameterName(name)) {
      return section.error(name, "invalid parameter name " + quoteForMessage(name) +
                                     ": must match ^[a-z][a-z0-9_]{0,31}$");
    }
    SHADAN_ASSIGN_OR_RETURN(auto declaration, section.object(name));
    SHADAN_RETURN_IF_ERROR(declaration.checkMembers({"description"}, {"default"}));
    ScenarioParameter parameter;
    SHADAN_ASSIGN_OR_RETURN(parameter.description, declaration.string("description", kDescription));
    SHADAN_ASSIGN_OR_RETURN(parameter.default_value, declaration.optionalString("default", kValue));
    if (parameter.default_value) {
      SHADAN_RETURN_IF_ERROR(
          checkValue(*parameter.default_value, source, declaration.pointerOf("default")));
    }
    out.emplace(name, std::move(parameter));
  }
  return out;
}

Result<std::map<std::string, std::string>> substituteParameters(
    Json& root, std::string_view source, const std::map<std::string, ScenarioParameter>& declared,
    const std::map<std::string, std::string>& given) {
  std::map<std::string, std::string> values;
  for (const auto& [name, value] : given) {
    if (!declared.contains(name)) {
      std::string names;
      for (const auto& [known, unused] : declared) names += (names.empty() ? "" : ", ") + known;
      return parseError(source, "/parameters",
                        "no parameter \"" + name + "\" in this scenario (parameters: " +
                            (names.empty() ? std::string("none") : names) + ")");
    }
    const std::string pointer = jsonPointerAppend("/parameters", name);
    if (value.empty() || value.size() > kMaxParameterValueBytes) {
      return parseError(
          source, pointer,
          "the value given must be 1 to " + std::to_string(kMaxParameterValueBytes) + " bytes");
    }
    for (unsigned char c : value) {
      if (c < 0x20 || c == 0x7f) {
        return parseError(source, pointer, "the value given contains a control character");
      }
    }
    SHADAN_RETURN_IF_ERROR(checkValue(value, source, pointer));
    values[name] = value;
  }
  for (const auto& [name, parameter] : declared) {
    if (!values.contains(name) && parameter.default_value) values[name] = *parameter.default_value;
  }
  Substitution substitution(source, declared, values);
  SHADAN_RETURN_IF_ERROR(substitution.walk(root, ""));
  return values;
}

}  // namespace shadan::drill::internal

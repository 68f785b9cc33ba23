#include "common/strict_json.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <set>
#include <utility>
#include <variant>
#include <vector>

namespace shadan {
namespace {

using nlohmann::json;

// Thrown from the parser callback to stop parsing at the first violation; never escapes
// parseStrictJson().
struct StrictJsonViolation {
  std::string pointer;
  std::string reason;
};

// Follows the parser's position as a stack of open containers, so that a violation can be named
// by its JSON pointer, and remembers each object's keys to catch duplicates. Pointers are only
// built when something is wrong: on the accepted path (every order) the checker allocates little.
class StrictnessChecker {
 public:
  explicit StrictnessChecker(StrictJsonNumbers numbers) : numbers_(numbers) {}

  // The nlohmann parser callback. Returns true: everything that passes is kept.
  bool onEvent(json::parse_event_t event, const json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start: {
        Frame frame;
        frame.is_object = event == json::parse_event_t::object_start;
        frame.name = nextChildName();
        if (stack_.size() >= kStrictJsonMaxDepth) {
          throw StrictJsonViolation{
              pointerOf(frame.name),
              "nesting deeper than " + std::to_string(kStrictJsonMaxDepth) + " levels"};
        }
        stack_.push_back(std::move(frame));
        break;
      }
      case json::parse_event_t::key: {
        Frame& top = stack_.back();
        top.last_key = parsed.get_ref<const std::string&>();
        if (!top.keys.insert(top.last_key)) {
          throw StrictJsonViolation{pointerOf(std::nullopt),
                                    "duplicate key " + quoteForMessage(top.last_key)};
        }
        break;
      }
      case json::parse_event_t::value: {
        ChildName name = nextChildName();
        if (parsed.is_number_float() && numbers_ == StrictJsonNumbers::kIntegersOnly) {
          throw StrictJsonViolation{
              pointerOf(name),
              "floating-point numbers are not allowed (integers must fit in 64 bits)"};
        }
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack_.pop_back();
        break;
    }
    return true;
  }

 private:
  // Where a value sits in its container: an object key or an array index (none at the root).
  using ChildName = std::optional<std::variant<std::string, size_t>>;

  // The keys of one object. Most objects have a handful: a linear scan beats a tree there, and
  // a large object (the input is size-capped, but may hold thousands of keys) moves to a set.
  class KeySet {
   public:
    bool insert(const std::string& key) {
      if (!large_.empty()) return large_.insert(key).second;
      if (std::find(small_.begin(), small_.end(), key) != small_.end()) return false;
      small_.push_back(key);
      if (small_.size() > kSmall) {
        large_.insert(small_.begin(), small_.end());
        small_.clear();
      }
      return true;
    }

   private:
    static constexpr size_t kSmall = 16;
    std::vector<std::string> small_;
    std::set<std::string> large_;
  };

  struct Frame {
    bool is_object = false;
    ChildName name;         // this container's place in its parent
    KeySet keys;            // objects only
    std::string last_key;   // objects only: the key whose value comes next
    size_t next_index = 0;  // arrays only
  };

  // The place of the value that starts now. Called exactly once per value (scalar or
  // container), which is what advances array indices.
  ChildName nextChildName() {
    if (stack_.empty()) return std::nullopt;
    Frame& top = stack_.back();
    if (top.is_object) return top.last_key;
    return top.next_index++;
  }

  // The JSON pointer of the innermost open container, then `child` (if any) inside it.
  std::string pointerOf(const ChildName& child) const {
    std::string pointer;
    const auto append = [&pointer](const ChildName& name) {
      if (!name) return;
      if (const auto* key = std::get_if<std::string>(&*name)) {
        pointer = jsonPointerAppend(pointer, *key);
      } else {
        pointer = jsonPointerAppend(pointer, std::get<size_t>(*name));
      }
    };
    for (const Frame& frame : stack_) append(frame.name);
    append(child);
    return pointer;
  }

  StrictJsonNumbers numbers_;
  std::vector<Frame> stack_;
};

// nlohmann messages start with "[json.exception.parse_error.101] "; the tag means nothing to an
// operator.
std::string stripExceptionTag(const char* what) {
  std::string message(what);
  if (!message.empty() && message.front() == '[') {
    const auto end = message.find("] ");
    if (end != std::string::npos) message.erase(0, end + 2);
  }
  return message;
}

}  // namespace

std::string jsonPointerAppend(std::string_view base, std::string_view key) {
  std::string pointer(base);
  pointer += '/';
  for (const char c : key) {
    if (c == '~') {
      pointer += "~0";
    } else if (c == '/') {
      pointer += "~1";
    } else {
      pointer += c;
    }
  }
  return pointer;
}

std::string jsonPointerAppend(std::string_view base, size_t index) {
  return std::string(base) + "/" + std::to_string(index);
}

std::string jsonPointerDisplay(std::string_view pointer) {
  return pointer.empty() ? std::string("/") : std::string(pointer);
}

std::string quoteForMessage(std::string_view text) {
  constexpr size_t kMaxShown = 64;
  std::string shown(text.substr(0, kMaxShown));
  // dump() escapes control characters; `replace` turns a UTF-8 sequence cut by the truncation
  // (or any invalid byte) into U+FFFD instead of throwing.
  std::string quoted = json(shown).dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxShown) quoted += "...";
  return quoted;
}

namespace {

// `who.requested_by` for `/who/requested_by`: how audit messages have always named a field.
std::string dottedPath(std::string_view pointer) {
  std::string out;
  for (size_t i = 0; i < pointer.size(); ++i) {
    const char c = pointer[i];
    if (c == '/') {
      if (i > 0) out += '.';
    } else if (c == '~' && i + 1 < pointer.size()) {
      out += pointer[++i] == '1' ? '/' : '~';
    } else {
      out += c;
    }
  }
  return out;
}

Error errorAt(std::string_view source, std::string_view pointer, StrictJsonWording wording,
              std::string_view reason) {
  std::string message;
  if (wording == StrictJsonWording::kAuditFields) {
    message = "field \"" + dottedPath(pointer) + "\" ";
  } else {
    message = std::string(source) + ": " + jsonPointerDisplay(pointer) + ": ";
  }
  message += reason;
  return makeError(ErrorCode::kParse, std::move(message));
}

bool hasControlCharacter(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

// The checks behind the typed getters: each returns why `value` is refused, or nothing. The
// callers turn a reason into an error only then, so the accepted path builds no pointer.
std::optional<std::string> refuseString(const json& value, const StringRules& rules) {
  if (!value.is_string()) return "must be a string";
  const auto& text = value.get_ref<const std::string&>();
  if (rules.non_empty && text.empty()) return "must not be empty";
  if (text.size() > rules.max_bytes) {
    return "longer than " + std::to_string(rules.max_bytes) + " bytes";
  }
  if (rules.no_control && hasControlCharacter(text)) return "contains a control character";
  return std::nullopt;
}

std::optional<std::string> refuseInteger(const json& value, int64_t min, int64_t max) {
  if (!value.is_number_integer()) return "must be an integer";
  if (value.is_number_unsigned() &&
      value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return "out of range";
  }
  const auto number = value.get<int64_t>();
  if (number < min || number > max) {
    return "must be between " + std::to_string(min) + " and " + std::to_string(max);
  }
  return std::nullopt;
}

std::optional<std::string> refuseStrings(const json& value) {
  const bool ok = value.is_array() && std::all_of(value.begin(), value.end(), [](const json& item) {
                    return item.is_string();
                  });
  if (!ok) return "must be an array of strings";
  return std::nullopt;
}

std::string arrayRefusal(size_t min_items, size_t max_items) {
  constexpr size_t kUnbounded = std::numeric_limits<size_t>::max();
  if (min_items == 0 && max_items == kUnbounded) return "must be an array";
  if (min_items == 1 && max_items == kUnbounded) return "must be a non-empty array";
  return "must be an array of " + std::to_string(min_items) + " to " + std::to_string(max_items) +
         " elements";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// StrictObjectReader

StrictObjectReader::StrictObjectReader(const json& object, std::string_view source,
                                       std::string pointer, StrictJsonWording wording)
    : object_(object), source_(source), pointer_(std::move(pointer)), wording_(wording) {}

Error StrictObjectReader::error(std::string_view reason) const {
  return errorAt(source_, pointer_, wording_, reason);
}

Error StrictObjectReader::error(std::string_view name, std::string_view reason) const {
  return errorAt(source_, pointerOf(name), wording_, reason);
}

std::string StrictObjectReader::pointerOf(std::string_view name) const {
  return jsonPointerAppend(pointer_, name);
}

Error StrictObjectReader::missing(std::string_view name) const {
  switch (wording_) {
    case StrictJsonWording::kMembers:
      return error("missing member \"" + std::string(name) + "\"");
    case StrictJsonWording::kFields:
      return error(name, "is required");
    case StrictJsonWording::kAuditFields:
      return makeError(ErrorCode::kParse, "missing field \"" + dottedPath(pointerOf(name)) + "\"");
  }
  std::abort();  // every wording is handled above
}

Status StrictObjectReader::checkMembers(std::initializer_list<std::string_view> required,
                                        std::initializer_list<std::string_view> optional) const {
  if (!object_.is_object()) return error("must be an object");
  for (const auto& [key, unused] : object_.items()) {
    if (std::find(required.begin(), required.end(), key) != required.end() ||
        std::find(optional.begin(), optional.end(), key) != optional.end()) {
      continue;
    }
    switch (wording_) {
      case StrictJsonWording::kMembers:
        return error("unknown member " + quoteForMessage(key));
      case StrictJsonWording::kFields:
        return error(key, "unknown field " + quoteForMessage(key));
      case StrictJsonWording::kAuditFields:
        return error(key, "unknown field");
    }
  }
  for (std::string_view name : required) {
    if (!object_.contains(name)) return missing(name);
  }
  return okStatus();
}

const json* StrictObjectReader::find(std::string_view name) const {
  if (!object_.is_object()) return nullptr;
  const auto it = object_.find(name);
  return it == object_.end() ? nullptr : &*it;
}

bool StrictObjectReader::has(std::string_view name) const { return find(name) != nullptr; }

const json& StrictObjectReader::at(std::string_view name) const {
  const json* value = find(name);
  if (value == nullptr) std::abort();  // REQUIRES has(name): a broken invariant
  return *value;
}

Result<std::optional<std::string>> StrictObjectReader::optionalString(
    std::string_view name, const StringRules& rules) const {
  const json* value = find(name);
  if (value == nullptr) return std::optional<std::string>();
  if (auto reason = refuseString(*value, rules)) return error(name, *reason);
  return std::optional<std::string>(value->get<std::string>());
}

Result<std::string> StrictObjectReader::string(std::string_view name,
                                               const StringRules& rules) const {
  SHADAN_ASSIGN_OR_RETURN(auto value, optionalString(name, rules));
  if (!value) return missing(name);
  return std::move(*value);
}

Result<std::optional<int64_t>> StrictObjectReader::optionalInteger(std::string_view name,
                                                                   int64_t min, int64_t max) const {
  const json* value = find(name);
  if (value == nullptr) return std::optional<int64_t>();
  if (auto reason = refuseInteger(*value, min, max)) return error(name, *reason);
  return std::optional<int64_t>(value->get<int64_t>());
}

Result<int64_t> StrictObjectReader::integer(std::string_view name, int64_t min, int64_t max) const {
  SHADAN_ASSIGN_OR_RETURN(auto value, optionalInteger(name, min, max));
  if (!value) return missing(name);
  return *value;
}

Result<std::optional<uint64_t>> StrictObjectReader::optionalUnsignedInteger(
    std::string_view name) const {
  const json* value = find(name);
  if (value == nullptr) return std::optional<uint64_t>();
  // The strict parser stores every non-negative integer as unsigned.
  if (!value->is_number_unsigned()) return error(name, "must be a non-negative integer");
  return std::optional<uint64_t>(value->get<uint64_t>());
}

Result<uint64_t> StrictObjectReader::unsignedInteger(std::string_view name) const {
  SHADAN_ASSIGN_OR_RETURN(auto value, optionalUnsignedInteger(name));
  if (!value) return missing(name);
  return *value;
}

Result<std::optional<bool>> StrictObjectReader::optionalBoolean(std::string_view name) const {
  const json* value = find(name);
  if (value == nullptr) return std::optional<bool>();
  if (!value->is_boolean()) return error(name, "must be true or false");
  return std::optional<bool>(value->get<bool>());
}

Result<bool> StrictObjectReader::boolean(std::string_view name) const {
  SHADAN_ASSIGN_OR_RETURN(auto value, optionalBoolean(name));
  if (!value) return missing(name);
  return *value;
}

Result<std::optional<std::vector<std::string>>> StrictObjectReader::optionalStrings(
    std::string_view name) const {
  const json* value = find(name);
  if (value == nullptr) return std::optional<std::vector<std::string>>();
  if (auto reason = refuseStrings(*value)) return error(name, *reason);
  return std::optional<std::vector<std::string>>(value->get<std::vector<std::string>>());
}

Result<std::vector<std::string>> StrictObjectReader::strings(std::string_view name) const {
  SHADAN_ASSIGN_OR_RETURN(auto value, optionalStrings(name));
  if (!value) return missing(name);
  return std::move(*value);
}

Result<std::optional<StrictObjectReader>> StrictObjectReader::optionalObject(
    std::string_view name) const {
  const json* value = find(name);
  if (value == nullptr) return std::optional<StrictObjectReader>();
  if (!value->is_object()) return error(name, "must be an object");
  return std::optional<StrictObjectReader>(std::in_place, *value, source_, pointerOf(name),
                                           wording_);
}

Result<StrictObjectReader> StrictObjectReader::object(std::string_view name) const {
  SHADAN_ASSIGN_OR_RETURN(auto value, optionalObject(name));
  if (!value) return missing(name);
  return std::move(*value);
}

Result<StrictArrayReader> StrictObjectReader::array(std::string_view name, size_t min_items,
                                                    size_t max_items,
                                                    std::string_view refusal) const {
  const json* value = find(name);
  if (value == nullptr) return missing(name);
  if (!value->is_array() || value->size() < min_items || value->size() > max_items) {
    return error(name, refusal.empty() ? arrayRefusal(min_items, max_items) : refusal);
  }
  return StrictArrayReader(*value, source_, pointerOf(name), wording_);
}

// ---------------------------------------------------------------------------------------------
// StrictArrayReader

StrictArrayReader::StrictArrayReader(const json& array, std::string_view source,
                                     std::string pointer, StrictJsonWording wording)
    : array_(array), source_(source), pointer_(std::move(pointer)), wording_(wording) {}

std::string StrictArrayReader::pointerOf(size_t index) const {
  return jsonPointerAppend(pointer_, index);
}

Error StrictArrayReader::error(std::string_view reason) const {
  return errorAt(source_, pointer_, wording_, reason);
}

Error StrictArrayReader::error(size_t index, std::string_view reason) const {
  return errorAt(source_, pointerOf(index), wording_, reason);
}

Result<std::string> StrictArrayReader::string(size_t index, const StringRules& rules) const {
  const json& value = array_[index];
  if (auto reason = refuseString(value, rules)) return error(index, *reason);
  return value.get<std::string>();
}

Result<StrictObjectReader> StrictArrayReader::object(size_t index) const {
  const json& value = array_[index];
  if (!value.is_object()) return error(index, "must be an object");
  return StrictObjectReader(value, source_, pointerOf(index), wording_);
}

// ---------------------------------------------------------------------------------------------
// Parsing

Result<json> parseStrictJson(std::string_view text, std::string_view source, size_t max_bytes,
                             StrictJsonNumbers numbers) {
  const std::string prefix = std::string(source) + ": ";
  if (text.size() > max_bytes) {
    return makeError(ErrorCode::kParse, prefix + std::to_string(text.size()) +
                                            " bytes exceeds the limit of " +
                                            std::to_string(max_bytes) + " bytes");
  }
  StrictnessChecker checker(numbers);
  const json::parser_callback_t callback = [&checker](int /*depth*/, json::parse_event_t event,
                                                      json& parsed) {
    return checker.onEvent(event, parsed);
  };
  try {
    return json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true,
                       /*ignore_comments=*/false);
  } catch (const StrictJsonViolation& violation) {
    return makeError(ErrorCode::kParse,
                     prefix + jsonPointerDisplay(violation.pointer) + ": " + violation.reason);
  } catch (const json::parse_error& e) {
    return makeError(ErrorCode::kParse, prefix + "byte " + std::to_string(e.byte) + ": " +
                                            stripExceptionTag(e.what()));
  } catch (const json::exception& e) {
    // out_of_range (e.g. "1e400") and friends: no byte position is available.
    return makeError(ErrorCode::kParse, prefix + stripExceptionTag(e.what()));
  }
}

}  // namespace shadan

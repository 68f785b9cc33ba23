#include "common/strict_json.h"

#include <algorithm>
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
        if (parsed.is_number_float()) {
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

Result<json> parseStrictJson(std::string_view text, std::string_view source, size_t max_bytes) {
  const std::string prefix = std::string(source) + ": ";
  if (text.size() > max_bytes) {
    return makeError(ErrorCode::kParse, prefix + std::to_string(text.size()) +
                                            " bytes exceeds the limit of " +
                                            std::to_string(max_bytes) + " bytes");
  }
  StrictnessChecker checker;
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

#include "common/strict_json.h"

#include <set>
#include <utility>
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

// Follows the parser's position as a stack of open containers so that the callback can name the
// JSON pointer of every key and value, and remembers each object's keys to catch duplicates.
class StrictnessChecker {
 public:
  // The nlohmann parser callback. Returns true: everything that passes is kept.
  bool onEvent(json::parse_event_t event, const json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start: {
        std::string pointer = nextChildPointer();
        if (stack_.size() >= kStrictJsonMaxDepth) {
          throw StrictJsonViolation{
              pointer, "nesting deeper than " + std::to_string(kStrictJsonMaxDepth) + " levels"};
        }
        Frame frame;
        frame.is_object = event == json::parse_event_t::object_start;
        frame.pointer = std::move(pointer);
        stack_.push_back(std::move(frame));
        break;
      }
      case json::parse_event_t::key: {
        Frame& top = stack_.back();
        top.last_key = parsed.get<std::string>();
        if (!top.keys.insert(top.last_key).second) {
          throw StrictJsonViolation{top.pointer, "duplicate key " + quoteForMessage(top.last_key)};
        }
        break;
      }
      case json::parse_event_t::value: {
        std::string pointer = nextChildPointer();
        if (parsed.is_number_float()) {
          throw StrictJsonViolation{
              std::move(pointer),
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
  struct Frame {
    bool is_object = false;
    std::string pointer;
    std::set<std::string> keys;  // objects only
    std::string last_key;        // objects only: the key whose value comes next
    size_t next_index = 0;       // arrays only
  };

  // The pointer of the value that starts now. Called exactly once per value (scalar or
  // container), which is what advances array indices.
  std::string nextChildPointer() {
    if (stack_.empty()) return "";
    Frame& top = stack_.back();
    if (top.is_object) return jsonPointerAppend(top.pointer, top.last_key);
    return jsonPointerAppend(top.pointer, top.next_index++);
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

#include "agents/orders/json_size.h"

#include <string>
#include <vector>

namespace shadan::agent {
namespace {

// Length of `text` as a JSON string literal, quotes included, escaped as nlohmann's dump()
// escapes with ensure_ascii off: the two-character escapes, \u00XX for other control characters,
// every other byte (multi-byte UTF-8 included) as it is.
size_t quotedSize(const std::string& text) {
  size_t size = 2;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (byte) {
      case '\b':
      case '\t':
      case '\n':
      case '\f':
      case '\r':
      case '"':
      case '\\':
        size += 2;
        break;
      default:
        size += byte <= 0x1F ? 6 : 1;
    }
  }
  return size;
}

}  // namespace

size_t compactJsonSize(const nlohmann::json& value, size_t limit) {
  size_t size = 0;
  std::vector<const nlohmann::json*> pending = {&value};
  while (!pending.empty() && size <= limit) {
    const nlohmann::json& item = *pending.back();
    pending.pop_back();
    switch (item.type()) {
      case nlohmann::json::value_t::object:
        // {} plus, per member, its key, a colon and a comma between members.
        size += 2 + (item.empty() ? 0 : 2 * item.size() - 1);
        for (auto member = item.begin(); member != item.end(); ++member) {
          size += quotedSize(member.key());
          pending.push_back(&member.value());
        }
        break;
      case nlohmann::json::value_t::array:
        size += 2 + (item.empty() ? 0 : item.size() - 1);
        for (const auto& element : item) pending.push_back(&element);
        break;
      case nlohmann::json::value_t::string:
        size += quotedSize(item.get_ref<const std::string&>());
        break;
      default:
        // Numbers, booleans, null: a few bytes each, printed exactly as dump() prints them.
        size += item.dump().size();
    }
  }
  return size;
}

}  // namespace shadan::agent

#include "cli/response_view.h"

#include <cstdio>
#include <ostream>

#include "cli/controller_context.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

bool isTrue(const Json& object, const char* key) {
  return object.is_object() && object.contains(key) && object[key].is_boolean() &&
         object[key].get<bool>();
}

}  // namespace

std::string displayCell(const std::string& text, size_t max_chars) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  if (out.size() <= max_chars) return out;
  constexpr size_t kEllipsis = 3;
  size_t keep = max_chars > kEllipsis ? max_chars - kEllipsis : 0;
  // Back up over UTF-8 continuation bytes so no character is cut in half.
  while (keep > 0 && (static_cast<unsigned char>(out[keep]) & 0xc0) == 0x80) --keep;
  return out.substr(0, keep) + "...";
}

std::string jsonCell(const Json& object, const char* key, size_t max_chars) {
  return displayCell(jsonText(object, key), max_chars);
}

std::string breakerSummary(const Json& breaker) {
  const bool open = isTrue(breaker, "open");
  const std::string since = jsonCell(breaker, "since");
  std::string out = open ? "OPEN" : "closed";
  if (!open && since == "-") return out;  // never opened or closed since the store was made
  if (since != "-") out += " since " + since;
  if (std::string by = jsonCell(breaker, "by"); by != "-" && !by.empty()) out += " by " + by;
  if (std::string reason = jsonCell(breaker, "reason"); reason != "-" && !reason.empty()) {
    out += ": " + reason;
  }
  return out;
}

std::string autoActionTarget(const Json& action) {
  const std::string segment = jsonCell(action, "segment");
  if (jsonText(action, "scope") == "host") {
    return "host " + jsonCell(action, "host") + " in " + segment;
  }
  return "segment " + segment;
}

bool isAutomaticEntry(const Json& entry) { return jsonText(entry, "kind") == "automatic"; }

void printAutoActions(std::ostream& out, const std::vector<const Json*>& actions) {
  out << "automatic actions: confirm or release\n";
  std::vector<std::vector<std::string>> table = {
      {"ID", "STATE", "TARGET", "DETECTOR/RULE", "EXPIRES", "WHY"}};
  for (const Json* action : actions) {
    table.push_back({jsonCell(*action, "id"), jsonCell(*action, "state"), autoActionTarget(*action),
                     jsonCell(*action, "detector") + "/" + jsonCell(*action, "rule"),
                     jsonCell(*action, "expires_at"), jsonCell(*action, "why", 60)});
  }
  printTable(out, table);
  out << "proposed: nothing is cut yet (confirm cuts it, release declines it); active: cut now,\n"
         "lifted by the gateways at EXPIRES unless confirmed.\n"
         "confirm: shadanctl confirm ID --reason TEXT   release: shadanctl release ID --reason "
         "TEXT\n";
}

void printResponseStatus(std::ostream& out, const Json& response) {
  out << "\nautomatic response:\n";
  const Json breaker = response.contains("breaker") ? response["breaker"] : Json::object();
  out << "  breaker       " << breakerSummary(breaker) << "\n";
  size_t active = 0;
  size_t proposed = 0;
  size_t total = 0;
  if (response.contains("actions") && response["actions"].is_array()) {
    for (const Json& action : response["actions"]) {
      ++total;
      const std::string state = jsonText(action, "state");
      if (state == "active") ++active;
      if (state == "proposed") ++proposed;
    }
  }
  out << "  open actions  ";
  if (total == 0) {
    out << "none\n";
  } else {
    out << total << " (" << active << " active, " << proposed
        << " proposed): confirm or release them, see shadanctl approvals\n";
  }
  if (response.contains("alerts") && response["alerts"].is_object() &&
      !response["alerts"].empty()) {
    std::string counts;
    for (const auto& [decision, count] : response["alerts"].items()) {
      counts += (counts.empty() ? "" : ", ") + displayCell(decision, 40) + " " +
                (count.is_number() ? count.dump() : std::string("?"));
    }
    out << "  alerts        " << counts << "\n";
  }
}

}  // namespace shadan

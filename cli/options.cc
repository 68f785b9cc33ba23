#include "cli/options.h"

#include "common/strict_json.h"

namespace shadan {
namespace {

std::string quote(const std::string& word, QuoteStyle style) {
  return style == QuoteStyle::kJson ? quoteForMessage(word) : "'" + word + "'";
}

Error usageError(const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument, message);
}

}  // namespace

std::optional<std::string> CommandOptions::value(const std::string& key) const {
  auto it = values.find(key);
  if (it == values.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> CommandOptions::all(const std::string& key) const {
  auto it = values.find(key);
  return it == values.end() ? std::vector<std::string>{} : it->second;
}

Result<CommandOptions> parseCommandOptions(const std::vector<std::string>& args, size_t first,
                                           const OptionSpec& spec) {
  CommandOptions options;
  for (size_t i = first; i < args.size(); ++i) {
    std::string key = args[i];
    std::optional<std::string> inline_value;
    if (const size_t eq = key.find('='); key.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = key.substr(eq + 1);
      key = key.substr(0, eq);
    }
    if (key.empty() || key[0] != '-') {
      if (options.positionals.size() < spec.max_positionals) {
        options.positionals.push_back(key);
        continue;
      }
      return usageError("'" + spec.command + "' takes no argument " + quote(key, spec.quote));
    }
    if (key == "-h" || key == "--help") {
      if (inline_value) return usageError("option " + key + " takes no value");
      options.help = true;
      return options;
    }
    if (options.has(key) && !spec.repeatable.contains(key)) {
      return usageError("option " + key + " given twice");
    }
    if (spec.with_value.contains(key)) {
      if (inline_value) {
        options.values[key].push_back(*inline_value);
      } else if (i + 1 < args.size()) {
        options.values[key].push_back(args[++i]);
      } else {
        return usageError("option " + key + " needs a value");
      }
    } else if (spec.flags.contains(key)) {
      if (inline_value) return usageError("option " + key + " takes no value");
      options.flags.insert(key);
    } else if (auto refused = spec.refused.find(key); refused != spec.refused.end()) {
      return usageError(refused->second);
    } else {
      return usageError("unknown option " + quote(key, spec.quote) + " for '" + spec.command + "'");
    }
  }
  return options;
}

}  // namespace shadan

#pragma once

// The one option parser of shadanctl: every subcommand (lab, audit, keygen, ca, the controller
// commands, sign, trust) declares its options in an OptionSpec and reads a CommandOptions.
//
// Grammar of the words after the subcommand:
//   --key VALUE | --key=VALUE   an option in `with_value`; the next word is taken as the value
//                               even when it starts with "-" (so "--reason -x" works)
//   --flag                      an option in `flags`; "--flag=VALUE" is an error
//   -h | --help                 accepted by every command: parsing stops there and
//                               CommandOptions::help is set, so help wins over later mistakes
//   WORD (or "")                a positional argument, up to `max_positionals`
// Only "--" options take the "=VALUE" form; "-6=x" is just an unknown option.
//
// Errors (ErrorCode::kInvalidArgument) name the offending word and the command:
//   option --name needs a value | option --json takes no value | option --name given twice |
//   unknown option '--colour' for 'lab up' | 'lab up' takes no argument 'extra'
// The first error met from left to right is the one reported.

#include <cstddef>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"

namespace shadan {

// How an unknown option or a surplus argument is quoted in an error message. Both styles are
// kept because operators' scripts and the tests match the messages: the controller commands,
// sign and trust quote like JSON (control characters escaped, long words cut); lab, audit,
// keygen and ca put the word in single quotes as it is.
enum class QuoteStyle { kSingle, kJson };

inline constexpr size_t kUnlimitedPositionals = std::numeric_limits<size_t>::max();

struct OptionSpec {
  std::string command;               // as named in errors: "lab up", "isolate"
  std::set<std::string> with_value;  // options that take a value
  std::set<std::string> flags;       // options without a value (no need to list -h/--help)
  // Options (with a value or not) that may be given several times; every value is kept in
  // order. Any other option given twice is an error.
  std::set<std::string> repeatable;
  size_t max_positionals = 0;
  // Options that do not exist on purpose, with the message that says why and what instead.
  std::map<std::string, std::string> refused;
  QuoteStyle quote = QuoteStyle::kSingle;
};

struct CommandOptions {
  std::map<std::string, std::vector<std::string>> values;
  std::set<std::string> flags;
  std::vector<std::string> positionals;
  bool help = false;  // -h or --help was met; the words after it were not parsed

  bool has(const std::string& key) const { return values.contains(key) || flags.contains(key); }
  // The last value given for `key`; nullopt when it was not given.
  std::optional<std::string> value(const std::string& key) const;
  // Every value given for `key`, in order (empty when not given).
  std::vector<std::string> all(const std::string& key) const;
};

// Parses args[first..] against `spec`.
[[nodiscard]] Result<CommandOptions> parseCommandOptions(const std::vector<std::string>& args,
                                                         size_t first, const OptionSpec& spec);

// The message for a secret offered on the command line (see OptionSpec::refused).
inline constexpr const char* kNoTokenOnArgv =
    "there is no --token: argv is visible to every user; use --token-file FILE or SHADAN_TOKEN";

}  // namespace shadan

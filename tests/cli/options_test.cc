#include "cli/options.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace shadan {
namespace {

// A spec with one of everything: --name/--spec take values, --key repeats, --json/-6/--all
// are flags (--all may repeat), up to one positional, --token refused with a reason.
OptionSpec testSpec(QuoteStyle quote = QuoteStyle::kSingle) {
  OptionSpec spec;
  spec.command = "lab up";
  spec.with_value = {"--name", "--spec", "--key"};
  spec.flags = {"--json", "-6", "--all"};
  spec.repeatable = {"--key", "--all"};
  spec.max_positionals = 1;
  spec.refused = {{"--token", kNoTokenOnArgv}};
  spec.quote = quote;
  return spec;
}

struct ParseCase {
  const char* name;
  std::vector<std::string> args;  // after the subcommand
  std::map<std::string, std::vector<std::string>> values;
  std::set<std::string> flags;
  std::vector<std::string> positionals;
  bool help = false;
};

TEST(OptionsTest, ParsesEveryFormOfOption) {
  const std::vector<ParseCase> cases = {
      {"nothing", {}, {}, {}, {}},
      {"value as next word", {"--name", "a"}, {{"--name", {"a"}}}, {}, {}},
      {"value after =", {"--name=a"}, {{"--name", {"a"}}}, {}, {}},
      {"empty value after =", {"--name="}, {{"--name", {""}}}, {}, {}},
      {"value holding =", {"--spec=a=b"}, {{"--spec", {"a=b"}}}, {}, {}},
      {"value that looks like an option", {"--name", "--json"}, {{"--name", {"--json"}}}, {}, {}},
      {"flags", {"--json", "-6"}, {}, {"--json", "-6"}, {}},
      {"repeated value kept in order", {"--key", "b", "--key=a"}, {{"--key", {"b", "a"}}}, {}, {}},
      {"repeatable flag", {"--all", "--all"}, {}, {"--all"}, {}},
      {"positional anywhere",
       {"--json", "file", "--name", "x"},
       {{"--name", {"x"}}},
       {"--json"},
       {"file"}},
      {"empty positional", {""}, {}, {}, {""}},
      {"help stops parsing",
       {"--name", "a", "--help", "--bogus", "x", "y"},
       {{"--name", {"a"}}},
       {},
       {},
       true},
      {"short help", {"-h"}, {}, {}, {}, true},
      {"help as a value is a value", {"--name", "-h"}, {{"--name", {"-h"}}}, {}, {}},
  };
  for (const ParseCase& c : cases) {
    auto parsed = parseCommandOptions(c.args, 0, testSpec());
    ASSERT_TRUE(parsed.ok()) << c.name << ": " << parsed.error().message;
    EXPECT_EQ(parsed->values, c.values) << c.name;
    EXPECT_EQ(parsed->flags, c.flags) << c.name;
    EXPECT_EQ(parsed->positionals, c.positionals) << c.name;
    EXPECT_EQ(parsed->help, c.help) << c.name;
  }
}

struct ErrorCase {
  std::vector<std::string> args;
  QuoteStyle quote;
  const char* message;  // the whole message
};

TEST(OptionsTest, ErrorsNameTheOptionAndTheCommand) {
  const QuoteStyle kSingle = QuoteStyle::kSingle;
  const QuoteStyle kJson = QuoteStyle::kJson;
  const std::vector<ErrorCase> cases = {
      {{"--name"}, kSingle, "option --name needs a value"},
      {{"--json", "--key"}, kSingle, "option --key needs a value"},
      {{"--json=yes"}, kSingle, "option --json takes no value"},
      {{"--help=yes"}, kSingle, "option --help takes no value"},
      {{"--name", "a", "--name", "b"}, kSingle, "option --name given twice"},
      {{"--name", "a", "--name=b"}, kSingle, "option --name given twice"},
      {{"--json", "--json"}, kSingle, "option --json given twice"},
      {{"--colour"}, kSingle, "unknown option '--colour' for 'lab up'"},
      {{"--colour=red"}, kSingle, "unknown option '--colour' for 'lab up'"},
      {{"-7"}, kSingle, "unknown option '-7' for 'lab up'"},
      {{"-6=x"}, kSingle, "unknown option '-6=x' for 'lab up'"},
      {{"-"}, kSingle, "unknown option '-' for 'lab up'"},
      {{"--colour"}, kJson, "unknown option \"--colour\" for 'lab up'"},
      {{"a", "b"}, kSingle, "'lab up' takes no argument 'b'"},
      {{"a", "b"}, kJson, "'lab up' takes no argument \"b\""},
      {{"a", "b\n"}, kJson, "'lab up' takes no argument \"b\\n\""},
      {{"--token", "abc"}, kSingle, kNoTokenOnArgv},
      // The first mistake from the left is the one reported.
      {{"--colour", "--name"}, kSingle, "unknown option '--colour' for 'lab up'"},
      {{"--bogus", "--help"}, kSingle, "unknown option '--bogus' for 'lab up'"},
  };
  for (const ErrorCase& c : cases) {
    std::string joined;
    for (const std::string& arg : c.args) joined += arg + " ";
    auto parsed = parseCommandOptions(c.args, 0, testSpec(c.quote));
    ASSERT_FALSE(parsed.ok()) << joined;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument) << joined;
    EXPECT_EQ(parsed.error().message, c.message) << joined;
  }
}

TEST(OptionsTest, StartsAtFirstAndCountsPositionals) {
  OptionSpec spec = testSpec();
  spec.max_positionals = kUnlimitedPositionals;
  auto parsed = parseCommandOptions({"lab", "up", "a", "b", "c"}, 2, spec);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->positionals, (std::vector<std::string>{"a", "b", "c"}));

  spec.max_positionals = 0;
  auto none = parseCommandOptions({"lab", "up", "a"}, 2, spec);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "'lab up' takes no argument 'a'");
}

TEST(OptionsTest, RefusedOptionIsAcceptedWhenDeclared) {
  OptionSpec spec = testSpec();
  spec.with_value.insert("--token");
  auto parsed = parseCommandOptions({"--token", "t"}, 0, spec);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->value("--token"), "t");
}

TEST(OptionsTest, AccessorsReadWhatWasGiven) {
  auto parsed =
      parseCommandOptions({"--key", "k1", "--json", "--key", "k2", "--name=n"}, 0, testSpec());
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_TRUE(parsed->has("--json"));
  EXPECT_TRUE(parsed->has("--key"));
  EXPECT_FALSE(parsed->has("--spec"));
  EXPECT_EQ(parsed->value("--key"), "k2");  // the last one
  EXPECT_EQ(parsed->value("--name"), "n");
  EXPECT_EQ(parsed->value("--spec"), std::nullopt);
  EXPECT_EQ(parsed->value("--json"), std::nullopt);  // a flag has no value
  EXPECT_EQ(parsed->all("--key"), (std::vector<std::string>{"k1", "k2"}));
  EXPECT_TRUE(parsed->all("--spec").empty());
}

}  // namespace
}  // namespace shadan

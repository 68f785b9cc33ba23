// Every command's own --help, and docs/agent-cli.md agreeing with the help word for word on
// option names.

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "tests/agents/agent_cli_harness.h"

namespace shadan::agent {
namespace {

using testing::AgentCliHarness;

struct HelpCase {
  std::vector<std::string> args;  // before --help
  std::string usage;              // how its first line starts
  std::vector<std::string> options;
};

const std::vector<HelpCase>& helpCases() {
  static const std::vector<HelpCase> kCases = {
      {{"run"},
       "usage: shadan-agent run ",
       {"--policy FILE", "--gateway ID", "--state-dir DIR", "--trust FILE",
        "--controller HOST:PORT", "--tls-dir DIR", "--controller-pin HEX", "--controller-grace DUR",
        "--audit-export MODE", "--log-level LEVEL"}},
      {{"check-config"},
       "usage: shadan-agent check-config ",
       {"--policy FILE", "--gateway ID", "--state-dir DIR", "--trust FILE",
        "--controller HOST:PORT", "--tls-dir DIR", "--controller-pin HEX", "--controller-grace DUR",
        "--audit-export MODE", "--json", "--log-level LEVEL"}},
      {{"isolate"},
       "usage: shadan-agent isolate SEGMENT",
       {"--profile NAME", "--ttl DURATION", "--drill", "--policy FILE", "--gateway ID",
        "--state-dir DIR", "--json"}},
      {{"restore"},
       "usage: shadan-agent restore SEGMENT",
       {"--profile NAME", "--all", "--policy FILE", "--gateway ID", "--state-dir DIR", "--json"}},
      {{"status"},
       "usage: shadan-agent status ",
       {"--policy FILE", "--gateway ID", "--state-dir DIR", "--json"}},
      {{"plan"},
       "usage: shadan-agent plan [SEGMENT",
       {"--profile NAME", "--policy FILE", "--gateway ID", "--state-dir DIR", "--json"}},
      {{"verify"},
       "usage: shadan-agent verify FILE",
       {"--policy FILE", "--gateway ID", "--state-dir DIR", "--trust FILE", "--json"}},
      {{"apply-file"},
       "usage: shadan-agent apply-file FILE",
       {"--policy FILE", "--gateway ID", "--state-dir DIR", "--trust FILE", "--json"}},
      {{"policy", "check"}, "usage: shadan-agent policy check FILE", {"--gateway ID", "--json"}},
      {{"policy", "show"}, "usage: shadan-agent policy show ", {"--policy FILE", "--json"}},
      {{"policy"},
       "usage: shadan-agent policy check FILE",
       {"--gateway ID", "--policy FILE", "--json", "policy show"}},
  };
  return kCases;
}

std::string helpOf(const std::vector<std::string>& command) {
  AgentCliHarness cli;
  std::vector<std::string> args = command;
  args.push_back("--help");
  return cli.run(args).out;
}

TEST(AgentCliHelpTest, EveryCommandHasItsOwnHelp) {
  for (const auto& c : helpCases()) {
    for (const bool short_flag : {false, true}) {
      AgentCliHarness cli;
      std::vector<std::string> args = c.args;
      args.push_back(short_flag ? "-h" : "--help");
      const auto result = cli.run(args);
      EXPECT_EQ(result.code, kExitOk) << c.usage;
      EXPECT_EQ(result.err, "") << c.usage;
      EXPECT_EQ(result.out.rfind(c.usage, 0), 0u) << result.out;
      for (const auto& option : c.options) {
        EXPECT_NE(result.out.find(option), std::string::npos)
            << c.usage << " does not name " << option << ":\n"
            << result.out;
      }
      // One command's help, not the whole tool's.
      EXPECT_EQ(result.out.find("commands:"), std::string::npos) << result.out;
    }
  }
}

// The help of a command needs nothing else on the command line, and a command's help is the
// same wherever --help stands.
TEST(AgentCliHelpTest, HelpNeedsNoOtherOptions) {
  AgentCliHarness cli;
  const auto anywhere = cli.run({"--help", "isolate", "office", "--policy", "/nonexistent"});
  EXPECT_EQ(anywhere.code, kExitOk);
  EXPECT_EQ(anywhere.out.rfind("usage: shadan-agent isolate ", 0), 0u) << anywhere.out;
  EXPECT_EQ(anywhere.out, helpOf({"isolate"}));
}

TEST(AgentCliHelpTest, AnUnknownCommandsHelpListsTheCommands) {
  AgentCliHarness cli;
  const auto result = cli.run({"frobnicate", "--help"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_NE(result.err.find("(commands: run, check-config, init, isolate"), std::string::npos)
      << result.err;
}

// Option names (with their value's name) as the help prints them: "--ttl DURATION", "--drill".
std::set<std::string> optionsInHelp(const std::string& help) {
  std::set<std::string> options;
  std::istringstream lines(help);
  std::string line;
  const std::regex option_line(R"(^  (--[a-z-]+(?: [A-Z:\[\],.]+)?)\s{2,})");
  while (std::getline(lines, line)) {
    std::smatch match;
    if (std::regex_search(line, match, option_line)) options.insert(match[1]);
  }
  return options;
}

std::string readDoc() {
  std::ifstream in(std::string(SHADAN_SOURCE_DIR) + "/docs/agent-cli.md");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(AgentCliHelpTest, TheDocNamesEveryOptionAsTheHelpDoes) {
  const std::string doc = readDoc();
  ASSERT_FALSE(doc.empty());
  std::set<std::string> in_help = optionsInHelp(helpOf({}));
  for (const auto& c : helpCases()) {
    for (const auto& option : optionsInHelp(helpOf(c.args))) in_help.insert(option);
  }
  ASSERT_GT(in_help.size(), 15u);
  for (const auto& option : in_help) {
    EXPECT_NE(doc.find("`" + option), std::string::npos)
        << "docs/agent-cli.md does not name `" << option << "`";
  }
  // And the doc names no option the help does not know.
  // Besides the help's own: --opt (the syntax), --bogus (the example of an unknown option),
  // --breakglass (shadanctl sign's).
  std::set<std::string> names = {"--help", "--opt", "--bogus", "--breakglass"};
  for (const auto& option : in_help) names.insert(option.substr(0, option.find(' ')));
  const std::regex doc_option(R"(--[a-z][a-z-]*)");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), doc_option);
       it != std::sregex_iterator(); ++it) {
    EXPECT_TRUE(names.count(it->str())) << "docs/agent-cli.md names unknown option " << it->str();
  }
  for (const std::string command : {"run", "isolate", "restore", "status", "plan", "verify",
                                    "apply-file", "policy check", "policy show"}) {
    EXPECT_NE(doc.find("shadan-agent " + command), std::string::npos) << command;
  }
  // The wait for a busy state directory, as the code waits.
  EXPECT_NE(doc.find("up to " + std::to_string(kStateDirLockWait.count()) + " s"),
            std::string::npos);
}

}  // namespace
}  // namespace shadan::agent

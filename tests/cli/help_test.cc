// Every shadanctl command and subcommand answers --help with its own usage (exit 0), a usage
// error is two lines that point at that help, and docs/operations.md names the same options.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli/shadanctl.h"
#include "tests/cli/fake_command_runner.h"

namespace shadan {
namespace {

// What every controller command parses besides its own options.
const std::vector<std::string> kConnection = {"--controller", "--ca",      "--token-file",
                                              "--config",     "--timeout", "--json"};

struct CommandCase {
  std::vector<std::string> path;     // "lab", "up"
  std::vector<std::string> options;  // every option the command parses
  bool controller = false;           // takes the connection options too
};

// Read off each command's OptionSpec (cli/*_cmd.cc).
const std::vector<CommandCase>& commandCases() {
  static const std::vector<CommandCase> kCases = {
      {{"lab"},
       {"--name", "--spec", "--from-policy", "--json", "--from", "--to", "--tcp", "--icmp", "-6"}},
      {{"lab", "up"}, {"--name", "--spec", "--from-policy", "--json"}},
      {{"lab", "down"}, {"--name", "--spec", "--from-policy"}},
      {{"lab", "probe"},
       {"--name", "--spec", "--from-policy", "--json", "--from", "--to", "--tcp", "--icmp", "-6",
        "--timeout"}},
      {{"drill"},
       {"--json", "--segment", "--param", "--policy", "--scenario", "--builtin", "--report",
        "--name", "--bin-dir", "--keep", "--from", "--out"}},
      {{"drill", "list"}, {"--json"}},
      {{"drill", "show"}, {"--segment", "--param", "--json"}},
      {{"drill", "check"},
       {"--policy", "--scenario", "--builtin", "--segment", "--param", "--json"}},
      {{"drill", "run"},
       {"--policy", "--scenario", "--builtin", "--segment", "--param", "--report", "--name",
        "--bin-dir", "--keep", "--json"}},
      {{"drill", "report"}, {"--from", "--out"}},
      {{"audit"}, {"--key", "--json", "--segment"}},
      {{"audit", "verify"}, {"--key", "--json"}},
      {{"audit", "show"},
       {"--segment", "--command-id", "--gateway", "--since", "--until", "--json"}},
      {{"keygen"}, {"--out", "--role"}},
      {{"ca"}, {"--dir", "--name", "--days", "--out", "--tls-dir"}},
      {{"ca", "init"}, {"--dir", "--name", "--days"}},
      {{"ca", "issue"},
       {"--dir", "--name", "--days", "--out", "--tls-dir", "--dns", "--ip", "--server",
        "--client"}},
      {{"ca", "pin"}, {}},
      {{"isolate"},
       {"--host", "--uplink", "--island", "--link-down", "--gateways", "--profile", "--reason",
        "--ticket", "--ttl", "--wait", "--drill"},
       true},
      {{"restore"},
       {"--host", "--uplink", "--island", "--gateways", "--profile", "--reason", "--ticket",
        "--drill"},
       true},
      {{"status"}, {"--order"}, true},
      {{"approvals"}, {}, true},
      {{"approve"}, {"--key", "--yes"}, true},
      {{"agents"}, {"--reason"}, true},
      {{"agents", "approve"}, {"--reason"}, true},
      {{"alerts"}, {"--limit"}, true},
      {{"confirm"}, {"--reason"}, true},
      {{"release"}, {"--reason"}, true},
      {{"breaker"}, {"--reason"}, true},
      {{"breaker", "open"}, {"--reason"}, true},
      {{"breaker", "close"}, {"--reason"}, true},
      {{"forward"}, {"--state", "--from-start", "--batch", "--flush-ms", "--once"}, true},
      {{"forward", "eve"}, {"--state", "--from-start", "--batch", "--flush-ms", "--once"}, true},
      {{"forward", "zeek-notice"},
       {"--state", "--from-start", "--batch", "--flush-ms", "--once"},
       true},
      {{"sign"},
       {"--action", "--segment", "--profile", "--targets", "--reason", "--requested-by", "--key",
        "--segment-gen", "--expires-in", "--ticket", "--ttl", "--out", "--policy", "--breakglass",
        "--drill", "--host", "--uplink", "--island", "--link-down"}},
      {{"trust"}, {"--out", "--pub", "--identity", "--role", "--keyid", "--json"}},
      {{"trust", "init"},
       {"--out", "--version", "--expires-in", "--pub", "--identity", "--role", "--purpose"}},
      {{"trust", "add"}, {"--pub", "--identity", "--role"}},
      {{"trust", "remove"}, {"--identity", "--keyid", "--json"}},
      {{"trust", "show"}, {"--json"}},
  };
  return kCases;
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& word : words) out += (out.empty() ? "" : " ") + word;
  return out;
}

bool isOptionChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

// `option` as a whole word ("--key" is not found in "--keyid").
bool mentions(const std::string& text, const std::string& option) {
  for (size_t at = text.find(option); at != std::string::npos; at = text.find(option, at + 1)) {
    const size_t end = at + option.size();
    if ((at == 0 || !isOptionChar(text[at - 1])) &&
        (end == text.size() || !isOptionChar(text[end]))) {
      return true;
    }
  }
  return false;
}

// The option names in `text`: words that start with "--", and -6.
std::set<std::string> optionsIn(const std::string& text) {
  std::set<std::string> options;
  size_t at = 0;
  while ((at = text.find('-', at)) != std::string::npos) {
    size_t end = at;
    while (end < text.size() && isOptionChar(text[end])) ++end;
    const std::string word = text.substr(at, end - at);
    if ((at == 0 || !isOptionChar(text[at - 1])) &&
        ((word.size() > 2 && word.rfind("--", 0) == 0) || word == "-6")) {
      options.insert(word);
    }
    at = end > at ? end : at + 1;
  }
  return options;
}

// What a command's --help may name: its options; for lab, drill, audit, ca and trust, whose
// subcommands share one usage text, the options of every subcommand.
std::set<std::string> helpMayName(const CommandCase& c) {
  std::set<std::string> allowed = {"--help"};
  for (const CommandCase& other : commandCases()) {
    const bool same_group =
        c.path.size() + other.path.size() > 2 && other.path[0] == c.path[0] && !c.controller;
    if (other.path == c.path || same_group) {
      allowed.insert(other.options.begin(), other.options.end());
    }
  }
  if (c.controller) allowed.insert(kConnection.begin(), kConnection.end());
  return allowed;
}

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class HelpTest : public ::testing::Test {
 protected:
  int run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return runShadanctl(args, out_, err_, runner_);
  }

  FakeCommandRunner runner_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(HelpTest, EveryCommandAndSubcommandPrintsItsOwnHelp) {
  for (const CommandCase& c : commandCases()) {
    const std::string name = joined(c.path);
    for (const char* help : {"--help", "-h"}) {
      std::vector<std::string> args = c.path;
      args.push_back(help);
      ASSERT_EQ(run(args), kExitOk) << name << " " << help << "\n" << err_.str();
      EXPECT_TRUE(err_.str().empty()) << name;
      const std::string text = out_.str();
      EXPECT_NE(text.find("usage:"), std::string::npos) << name << "\n" << text;
      EXPECT_NE(text.find(name), std::string::npos) << name << "\n" << text;
      for (const std::string& option : c.options) {
        EXPECT_TRUE(mentions(text, option)) << name << " --help lacks " << option << "\n" << text;
      }
      if (c.controller) {
        for (const std::string& option : kConnection) {
          EXPECT_TRUE(mentions(text, option)) << name << " --help lacks " << option;
        }
      }
      const std::set<std::string> may_name = helpMayName(c);
      for (const std::string& option : optionsIn(text)) {
        EXPECT_TRUE(may_name.contains(option))
            << name << " --help names " << option << ", which it does not take";
      }
    }
    // "help COMMAND" says the same.
    const std::string by_option = out_.str();
    std::vector<std::string> asked = {"help"};
    asked.insert(asked.end(), c.path.begin(), c.path.end());
    ASSERT_EQ(run(asked), kExitOk) << "help " << name;
    EXPECT_EQ(out_.str(), by_option) << "help " << name;
  }
  EXPECT_TRUE(runner_.calls.empty());
}

TEST_F(HelpTest, AControllerCommandsHelpIsItsOwn) {
  const std::vector<std::string> commands = {"isolate", "restore", "status", "approvals",
                                             "approve", "agents",  "alerts", "confirm",
                                             "release", "breaker"};
  for (const std::string& command : commands) {
    ASSERT_EQ(run({command, "--help"}), kExitOk) << command;
    const std::string text = out_.str();
    EXPECT_NE(text.find("shadanctl " + command + " "), std::string::npos) << text;
    for (const std::string& other : commands) {
      if (other == command) continue;
      EXPECT_EQ(text.find("shadanctl " + other + " "), std::string::npos)
          << command << " --help also shows " << other << "\n"
          << text;
    }
  }
}

TEST_F(HelpTest, TopLevelHelpListsEveryCommand) {
  ASSERT_EQ(run({"--help"}), kExitOk);
  for (const std::string& command : shadanctlCommands()) {
    EXPECT_NE(out_.str().find("\n  " + command + " "), std::string::npos) << command;
  }
  EXPECT_EQ(run({"help"}), kExitOk);
}

struct UsageErrorCase {
  std::vector<std::string> args;
  std::string help;     // the command the second line points at ("" for shadanctl itself)
  std::string message;  // part of the first line
};

TEST_F(HelpTest, AUsageErrorIsOneLineAndWhereTheHelpIs) {
  const std::vector<UsageErrorCase> cases = {
      {{},
       "",
       "(commands: lab, drill, audit, keygen, ca, isolate, restore, status, approvals, "
       "approve, agents, alerts, confirm, release, breaker, forward, sign, trust, init)"},
      {{"isolat", "lgwan"},
       "",
       "unknown command 'isolat' (commands: lab, drill, audit, keygen, ca, isolate, restore, "
       "status, "
       "approvals, approve, agents, alerts, confirm, release, breaker, forward, sign, trust, "
       "init)"},
      {{"help", "isolat"}, "", "unknown command 'isolat'"},
      {{"lab"}, "lab", "(subcommands: up, down, probe)"},
      {{"lab", "sideways"},
       "lab",
       "unknown lab subcommand 'sideways' (subcommands: up, down, probe)"},
      {{"lab", "up", "--colour"}, "lab", "unknown option '--colour' for 'lab up'"},
      {{"lab", "up", "--na\nme"}, "lab", "unknown option '--na\\nme'"},
      {{"lab", "probe", "--name", "x", "--tcp", "99999"}, "lab", "needs --from NODE"},
      {{"drill"}, "drill", "(subcommands: list, show, check, run, report)"},
      {{"drill", "run2"},
       "drill",
       "unknown drill subcommand 'run2' (subcommands: list, show, check, run, report)"},
      {{"drill", "check", "--policy", "p.json"},
       "drill",
       "needs --scenario FILE, --builtin NAME or --segment SEG"},
      {{"audit", "frob"}, "audit", "(subcommands: verify, show)"},
      {{"audit", "verify"}, "audit", "'audit verify' needs PATH"},
      {{"keygen"}, "keygen", "'keygen' needs --out PREFIX"},
      {{"keygen", "--out", "x", "--role", "Bad Role"}, "keygen", "--role:"},
      {{"ca", "frob"},
       "ca",
       "unknown ca subcommand 'frob' (subcommands: init, issue, pin, revoke)"},
      {{"ca", "issue", "--dir", "d", "--name", "n", "--client"},
       "ca",
       "needs exactly one of --out PREFIX and --tls-dir TLSDIR"},
      {{"ca", "init", "--dir", "d", "--days", "0"}, "ca", "--days must be a number"},
      {{"isolate"}, "isolate", "'isolate' needs a SEGMENT"},
      {{"isolate", "lgwan", "--reason", "r", "--ttl", "forever"}, "isolate", "--ttl:"},
      {{"restore", "lgwan", "--ttl", "5m"}, "restore", "unknown option \"--ttl\""},
      {{"status", "extra"}, "status", "'status' takes no argument"},
      {{"approvals", "--yes"}, "approvals", "unknown option \"--yes\""},
      {{"approve"}, "approve", "'approve' needs an APPROVAL_ID"},
      {{"agents", "bless"}, "agents", "unknown agents subcommand \"bless\" (subcommands: approve)"},
      {{"agents", "approve", "gw"}, "agents", "needs --reason"},
      {{"alerts", "--limit", "0"}, "alerts", "--limit must be a whole number from 1 to 1000"},
      {{"confirm"}, "confirm", "'confirm' needs an ACTION_ID"},
      {{"release", "o-1"}, "release", "'release' needs --reason TEXT"},
      {{"breaker", "frob"},
       "breaker",
       "unknown breaker subcommand \"frob\" (subcommands: open, close)"},
      {{"breaker", "open"}, "breaker", "'breaker open' needs --reason TEXT"},
      {{"forward"}, "forward", "'forward' needs eve or zeek-notice, then FILE"},
      {{"forward", "suricata"},
       "forward",
       "unknown forward subcommand \"suricata\" (subcommands: eve, zeek-notice)"},
      {{"forward", "eve", "eve.json", "--batch", "0"}, "forward", "--batch must be"},
      {{"sign", "--bogus"}, "sign", "unknown option \"--bogus\""},
      {{"sign"}, "sign", "'sign' needs"},
      {{"trust", "frob"}, "trust", "(subcommands: init, add, remove, show)"},
      {{"trust", "init", "--out", "t.json"}, "trust", "'trust init' needs --pub"},
  };
  for (const UsageErrorCase& c : cases) {
    const std::string name = joined(c.args);
    EXPECT_EQ(run(c.args), kExitUsage) << name;
    EXPECT_TRUE(out_.str().empty()) << name;
    const std::vector<std::string> lines = linesOf(err_.str());
    ASSERT_EQ(lines.size(), 2u) << name << "\n" << err_.str();
    EXPECT_EQ(lines[0].rfind("shadanctl: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(c.message), std::string::npos) << name << "\n" << lines[0];
    const std::string see = "see 'shadanctl " + (c.help.empty() ? "" : c.help + " ") + "--help'";
    EXPECT_EQ(lines[1], see) << name;
  }
  EXPECT_TRUE(runner_.calls.empty());
}

// docs/operations.md: in its "Command reference" each command has one line that names every
// option the command parses (the options --help shows, above) and no other; any other line of
// the document that starts with a command names only options of that command.
TEST(OperationsDocTest, CommandLinesNameTheOptionsOfTheirCommand) {
  std::ifstream in(std::string(SHADAN_SOURCE_DIR) + "/docs/operations.md");
  ASSERT_TRUE(in) << "docs/operations.md";
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::vector<std::string> lines = linesOf(buffer.str());

  auto isGroup = [](const CommandCase& c) {
    return c.path.size() == 1 &&
           (c.path[0] == "lab" || c.path[0] == "drill" || c.path[0] == "audit" ||
            c.path[0] == "ca" || c.path[0] == "trust");
  };

  bool in_reference = false;
  std::map<std::string, std::set<std::string>> reference;  // command -> options on its line
  for (const CommandCase& c : commandCases()) {
    if (isGroup(c)) continue;  // its subcommands have the lines
    std::set<std::string> allowed(c.options.begin(), c.options.end());
    if (c.controller) allowed.insert(kConnection.begin(), kConnection.end());
    const std::string prefix = "shadanctl " + joined(c.path);
    for (const std::string& raw : lines) {
      if (raw.rfind("## ", 0) == 0) in_reference = raw == "## Command reference";
      const size_t start = raw.find_first_not_of(" `");
      if (start == std::string::npos) continue;
      std::string line = raw.substr(start);
      if (const size_t prompt = line.find("$ shadanctl "); prompt != std::string::npos) {
        line = line.substr(prompt + 2);  // "sato$ shadanctl ..."
      }
      if (line.rfind(prefix + " ", 0) != 0 && line != prefix) continue;
      const std::set<std::string> named = optionsIn(line.substr(0, line.find('#')));
      for (const std::string& option : named) {
        EXPECT_TRUE(allowed.contains(option)) << prefix << ": " << option << " in\n" << raw;
      }
      if (in_reference) reference[prefix].insert(named.begin(), named.end());
    }
    ASSERT_TRUE(reference.contains(prefix)) << "no line for " << prefix << " in the reference";
    for (const std::string& option : c.options) {
      EXPECT_TRUE(reference[prefix].contains(option))
          << "the reference line of " << prefix << " lacks " << option;
    }
  }
}

}  // namespace
}  // namespace shadan

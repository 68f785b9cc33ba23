// shadan-controller's command line: every command has its own --help (exit 0), a usage error
// is two lines pointing at that help, `run` hands the config path to the daemon and nothing
// else, and docs/controller.md names the options --help names.

#include "controller/controller_cli.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace shadan::controller {
namespace {

struct CommandCase {
  std::string command;
  std::vector<std::string> options;  // every option it parses
};

const std::vector<CommandCase> kCommands = {
    {"run", {"--config"}}, {"check-config", {"--config", "--json"}}, {"hash-token", {}}};

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class ControllerCliTest : public ::testing::Test {
 protected:
  int run(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    out_.str("");
    err_.str("");
    in_.str(stdin_text);
    in_.clear();
    ControllerCliEnv env;
    env.in = &in_;
    env.run = [this](const std::string& config) {
      started_ = config;
      return 0;
    };
    return runControllerCli(args, out_, err_, env);
  }

  std::istringstream in_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::optional<std::string> started_;  // the config the daemon was run with
};

TEST_F(ControllerCliTest, EveryCommandPrintsItsOwnHelp) {
  ASSERT_EQ(controllerCliCommands().size(), kCommands.size());
  for (const CommandCase& c : kCommands) {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {c.command, "--help"}, {c.command, "-h"}, {"help", c.command}}) {
      ASSERT_EQ(run(args), kCliExitOk) << args[0] << " " << args[1] << "\n" << err_.str();
      const std::string text = out_.str();
      EXPECT_TRUE(err_.str().empty());
      EXPECT_EQ(text.rfind("usage: shadan-controller " + c.command, 0), 0u) << text;
      for (const std::string& option : c.options) {
        EXPECT_NE(text.find(option), std::string::npos) << c.command << " lacks " << option;
      }
      for (const CommandCase& other : kCommands) {
        if (other.command == c.command) continue;
        EXPECT_EQ(text.find("shadan-controller " + other.command), std::string::npos)
            << c.command << " --help shows " << other.command << "\n"
            << text;
      }
    }
  }
  EXPECT_FALSE(started_);
  // Help wins over what follows it.
  EXPECT_EQ(run({"run", "--help", "--bogus"}), kCliExitOk);
  EXPECT_FALSE(started_);
}

TEST_F(ControllerCliTest, TopLevelHelpAndVersion) {
  ASSERT_EQ(run({"--help"}), kCliExitOk);
  for (const CommandCase& c : kCommands) {
    EXPECT_NE(out_.str().find("\n  " + c.command + " "), std::string::npos) << c.command;
  }
  ASSERT_EQ(run({"--version"}), kCliExitOk);
  EXPECT_EQ(out_.str(), std::string("shadan-controller ") + SHADAN_VERSION + "\n");
}

struct UsageCase {
  std::vector<std::string> args;
  std::string help;     // the command the second line points at
  std::string message;  // part of the first line
};

TEST_F(ControllerCliTest, AUsageErrorIsOneLineAndWhereTheHelpIs) {
  const std::vector<UsageCase> cases = {
      {{}, "", "no command (commands: run, check-config, hash-token)"},
      {{"rnu"}, "", "unknown command 'rnu' (commands: run, check-config, hash-token)"},
      {{"help", "rnu"}, "", "unknown command 'rnu'"},
      {{"run"}, "run", "'run' needs --config FILE"},
      {{"run", "--config"}, "run", "option --config needs a value"},
      {{"run", "--config="}, "run", "--config must not be empty"},
      {{"run", "--config", "a", "--config", "b"}, "run", "option --config given twice"},
      {{"run", "--config", "a", "--colour"}, "run", "unknown option '--colour' for 'run'"},
      {{"run", "a.json"}, "run", "'run' takes no argument 'a.json'"},
      {{"run", "--con\nfig"}, "run", "unknown option '--con\\x0afig'"},
      {{"check-config"}, "check-config", "'check-config' needs --config FILE"},
      {{"check-config", "--config", "a", "--yes"},
       "check-config",
       "unknown option '--yes' for 'check-config'"},
      {{"check-config", "a.json"}, "check-config", "'check-config' takes no argument 'a.json'"},
      {{"hash-token", "secret"}, "hash-token", "the token is read from stdin"},
      {{"hash-token", "--raw"}, "hash-token", "unknown option '--raw' for 'hash-token'"},
  };
  for (const UsageCase& c : cases) {
    std::string name;
    for (const std::string& arg : c.args) name += arg + " ";
    EXPECT_EQ(run(c.args, "token\n"), kCliExitUsage) << name;
    EXPECT_TRUE(out_.str().empty()) << name << out_.str();
    const std::vector<std::string> lines = linesOf(err_.str());
    ASSERT_EQ(lines.size(), 2u) << name << "\n" << err_.str();
    EXPECT_EQ(lines[0].rfind("shadan-controller: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(c.message), std::string::npos) << name << "\n" << lines[0];
    EXPECT_EQ(lines[1],
              "see 'shadan-controller " + (c.help.empty() ? "" : c.help + " ") + "--help'");
    // The token given as an argument is not echoed back.
    EXPECT_EQ(err_.str().find("secret"), std::string::npos);
  }
  EXPECT_FALSE(started_);
}

TEST_F(ControllerCliTest, RunHandsTheConfigPathToTheDaemon) {
  EXPECT_EQ(run({"run", "--config", "/etc/shadan/controller.json"}), kCliExitOk);
  EXPECT_EQ(started_, "/etc/shadan/controller.json");
  EXPECT_EQ(run({"run", "--config=/tmp/c.json"}), kCliExitOk);
  EXPECT_EQ(started_, "/tmp/c.json");
}

TEST_F(ControllerCliTest, HashTokenHashesStdinWithoutItsNewline) {
  ASSERT_EQ(run({"hash-token"}, "abc\n"), kCliExitOk);
  // SHA-256("abc")
  EXPECT_EQ(out_.str(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n");
  EXPECT_EQ(run({"hash-token"}, ""), kCliExitFailure);
  EXPECT_NE(err_.str().find("no token on stdin"), std::string::npos);
}

// docs/controller.md: every option on a `shadan-controller COMMAND` line is one that command
// parses (or --help), and each option a command parses is on one of its lines.
TEST(ControllerDocTest, CommandLinesNameTheOptionsOfTheirCommand) {
  std::ifstream in(std::string(SHADAN_SOURCE_DIR) + "/docs/controller.md");
  ASSERT_TRUE(in);
  std::stringstream buffer;
  buffer << in.rdbuf();
  for (const CommandCase& c : kCommands) {
    bool found = false;
    std::string named;  // the command's lines
    for (const std::string& raw : linesOf(buffer.str())) {
      const std::string prefix = "shadan-controller " + c.command;
      const size_t start = raw.find_first_not_of(" `");
      if (start == std::string::npos || raw.compare(start, prefix.size(), prefix) != 0) continue;
      found = true;
      const std::string line = raw.substr(start, raw.find('#') - start);
      for (size_t at = line.find("--"); at != std::string::npos; at = line.find("--", at + 2)) {
        const size_t end = line.find_first_of(" =`|]", at);
        const std::string option = line.substr(at, end == std::string::npos ? end : end - at);
        EXPECT_TRUE(option == "--help" ||
                    std::find(c.options.begin(), c.options.end(), option) != c.options.end())
            << option << " in: " << raw;
      }
      named += line;
    }
    EXPECT_TRUE(found) << "docs/controller.md has no line for shadan-controller " << c.command;
    for (const std::string& option : c.options) {
      EXPECT_NE(named.find(option), std::string::npos) << option << " on no line of " << c.command;
    }
  }
}

}  // namespace
}  // namespace shadan::controller

#pragma once

// Running external programs (ip, nft, sysctl) as argv lists, never through a shell.
//
// CommandRunner is the seam between the lab and the OS: Lab builds its namespaces only through
// it, so unit tests hand in a fake that records argv lists, and only ProcessCommandRunner needs
// root and real binaries.

#include <chrono>
#include <string>
#include <vector>

#include "common/result.h"

namespace shadan {

struct CommandResult {
  int exit_code = 0;  // the program's exit status; 128 + signal number if a signal killed it
  std::string out;    // everything the program wrote to stdout
  std::string err;    // everything the program wrote to stderr
};

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;

  // Runs argv[0] (looked up in PATH) with the arguments argv[1..], feeding `stdin_data` to its
  // standard input, and waits for it to exit. A program that runs and exits non-zero is a
  // successful Result carrying that exit code; an error means it could not be run at all
  // (not found, fork failed, timed out). REQUIRES: !argv.empty().
  virtual Result<CommandResult> run(const std::vector<std::string>& argv,
                                    const std::string& stdin_data) = 0;

  Result<CommandResult> run(const std::vector<std::string>& argv) { return run(argv, {}); }
};

// fork + execvp with three pipes. No shell is involved, so arguments are never re-parsed.
// Thread-safe: each call uses its own pipes and child.
class ProcessCommandRunner : public CommandRunner {
 public:
  // A child still running after `timeout` is killed (SIGKILL) and the call fails.
  explicit ProcessCommandRunner(std::chrono::milliseconds timeout = std::chrono::seconds(30))
      : timeout_(timeout) {}

  using CommandRunner::run;
  Result<CommandResult> run(const std::vector<std::string>& argv,
                            const std::string& stdin_data) override;

 private:
  std::chrono::milliseconds timeout_;
};

// "ip -n x link set eth0 up": argv joined for messages and logs (arguments with spaces quoted).
std::string formatArgv(const std::vector<std::string>& argv);

// Runs argv and turns a non-zero exit into an error that names the command and its stderr.
Result<CommandResult> runChecked(CommandRunner& runner, const std::vector<std::string>& argv,
                                 const std::string& stdin_data = {});

}  // namespace shadan

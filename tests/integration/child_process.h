#pragma once

// A long-running program (a daemon that is not shadan-agent: shadan-controller, fail2ban-server)
// as a child of the test, optionally inside a lab namespace, for integration tests. Unlike
// AgentProcess (agent_process.h) it waits for no readiness signal: the caller polls what the
// program serves (an API, a control socket) with a bounded wait.
//
// The child is `ip netns exec NS ARGV...` (or ARGV... with an empty `netns`); `ip netns exec`
// execs in place, so pid() is the program's own pid. stdin is /dev/null; stdout and stderr are
// appended to `log_path`. The child inherits no descriptor but those three, and the test's
// environment with `env` laid over it. AgentProcess (agent_process.h) is one of these.
//
// RAII: the destructor SIGKILLs and reaps a child that still runs, so a failing assertion never
// leaves a daemon (or a zombie) behind. Not thread-safe.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace shadan {

struct ChildProcessOptions {
  std::string netns;              // empty: the caller's own namespace
  std::vector<std::string> argv;  // argv[0] looked up in PATH; REQUIRES: not empty
  std::filesystem::path log_path;
  // NAME=value entries set in the child; each replaces an inherited variable of that NAME.
  std::vector<std::string> env = {};
};

class ChildProcess {
 public:
  static Result<std::unique_ptr<ChildProcess>> start(const ChildProcessOptions& options);

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // False once the child has exited (it is reaped then; exitCode() has its status).
  bool running();
  // The exit code (128 + signal number when a signal ended it), once it exited.
  std::optional<int> exitCode() const { return exit_code_; }

  // Sends `signal` and waits up to `timeout` for the exit; then SIGKILL. Returns the exit code.
  Result<int> stop(int signal = SIGTERM,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Sends `signal` (a child that is already gone is not an error).
  Status sendSignal(int signal);
  // Reaps the child if it has exited, or waits up to `timeout` for it. True once reaped.
  bool waitExit(std::chrono::milliseconds timeout);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}

  pid_t pid_;
  std::optional<int> exit_code_;
};

}  // namespace shadan

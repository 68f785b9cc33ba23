#pragma once

// A long-running program (shadan-controller, shadan-agent) as a child of shadanctl, optionally
// inside a lab namespace: what `shadanctl drill run` supervises.
//
// The child is `ip netns exec NS ARGV...` (or ARGV... with an empty `netns`); `ip netns exec`
// execs in place, so pid() is the program's own pid and signals reach it. stdin is /dev/null;
// stdout and stderr are appended to `log_path` (created 0600). The child inherits no
// descriptor but those three, our environment with `env` laid over it, and starts with every
// signal unblocked and at its default disposition, in its own process group.
//
// RAII: the destructor SIGKILLs and reaps a child that still runs, so no path out of the
// runner leaves a daemon behind. Not thread-safe.

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

struct DaemonChildOptions {
  std::string netns;              // empty: shadanctl's own namespace
  std::vector<std::string> argv;  // argv[0] a path or looked up in PATH; REQUIRES: not empty
  std::filesystem::path log_path;
  // NAME=value entries set in the child; each replaces an inherited variable of that NAME.
  std::vector<std::string> env = {};
};

class DaemonChild {
 public:
  static Result<std::unique_ptr<DaemonChild>> start(const DaemonChildOptions& options);

  DaemonChild(const DaemonChild&) = delete;
  DaemonChild& operator=(const DaemonChild&) = delete;
  ~DaemonChild();

  pid_t pid() const { return pid_; }
  // False once the child has exited (it is reaped then; exitCode() has its status).
  bool running();
  // 128 + signal number when a signal ended it.
  std::optional<int> exitCode() const { return exit_code_; }

  // Sends `signal` and waits up to `timeout` for the exit, then SIGKILLs it (an error says so).
  // Returns the exit code.
  Result<int> stop(int signal = SIGTERM,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Sends `signal`; a child that is already gone is not an error.
  Status sendSignal(int signal);
  // Reaps the child if it has exited, or waits up to `timeout` for it. True once reaped.
  bool waitExit(std::chrono::milliseconds timeout);

 private:
  explicit DaemonChild(pid_t pid) : pid_(pid) {}

  pid_t pid_;
  std::optional<int> exit_code_;
};

}  // namespace shadan

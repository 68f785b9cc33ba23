#pragma once

// The agent daemon (`shadan-agent run`) as a child process inside a network namespace, for fault
// tests and benchmarks that need the real binary: start it, wait for its sd_notify READY=1, kill
// it (-9 or TERM), start it again.
//
// The child is `ip netns exec NS BINARY run ARGS...`. `ip netns exec` execs the binary in place
// (no fork), so the child's pid IS the daemon's pid: signals and /proc/<pid> reach the daemon.
// With an empty `netns` the child is `BINARY run ARGS...` in the test's own namespace (a test
// that has moved itself into a private namespace, tests/support/private_netns.h).
//
// Readiness: the test process binds a unix datagram socket on a FILESYSTEM path and hands it to
// the child as NOTIFY_SOCKET. Not an abstract one: abstract unix addresses are scoped to the
// network namespace, and the daemon lives in another namespace than the test.
//
// RAII: the destructor SIGKILLs and reaps a child that still runs, so a failing assertion never
// leaves a daemon behind (and never leaves a zombie). The helper itself never touches the
// kernel's rules: killing the daemon leaves them as they are, which is what the tests check.
//
// Not thread-safe. The child is a DaemonChild (cli/lab/daemon_child.h): it inherits no descriptor
// but stdin/stdout/stderr (a test's sockets stay the test's).

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/lab/daemon_child.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace shadan {

struct AgentProcessOptions {
  // The namespace the daemon runs in (e.g. the lab's gw); empty: the caller's own namespace.
  std::string netns;
  std::filesystem::path binary;        // shadan-agent
  std::vector<std::string> arguments;  // after "run": --policy, --gateway, --state-dir, ...
  // stdout and stderr of the daemon (its log). Appended to, so several runs share one file.
  std::filesystem::path log_path;
  std::chrono::milliseconds ready_timeout{std::chrono::seconds(15)};
  // More NAME=value for the daemon's environment (WATCHDOG_USEC=..., as systemd sets it).
  std::vector<std::string> environment;
};

class AgentProcess {
 public:
  // Starts the daemon and waits until it sends READY=1 (then returns) or exits, or the timeout
  // passes (then it is killed and the error carries the tail of its log).
  static Result<std::unique_ptr<AgentProcess>> start(const AgentProcessOptions& options);

  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;
  ~AgentProcess();

  // The daemon's pid (as seen from the test's pid namespace).
  pid_t pid() const { return child_->pid(); }
  bool running() const { return !child_->exitCode().has_value(); }
  // When READY=1 was received (steady clock).
  std::chrono::steady_clock::time_point readyAt() const { return ready_at_; }

  // Sends `signal` and waits for the exit. Returns the exit code (128 + signal number when a
  // signal ended it). Already exited: returns the recorded code.
  Result<int> stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  Result<int> kill9() { return stop(SIGKILL); }
  Result<int> terminate() { return stop(SIGTERM); }

  // Every notification received after READY=1 is collected here by pollNotifications().
  std::vector<std::string> pollNotifications();

 private:
  AgentProcess(std::unique_ptr<DaemonChild> child, UniqueFd notify,
               std::filesystem::path notify_path)
      : child_(std::move(child)),
        notify_(std::move(notify)),
        notify_path_(std::move(notify_path)) {}

  std::unique_ptr<DaemonChild> child_;
  UniqueFd notify_;
  std::filesystem::path notify_path_;
  std::chrono::steady_clock::time_point ready_at_{};
};

// The whole content of a (log) file, or "" when it cannot be read.
std::string readWholeFile(const std::filesystem::path& path);

}  // namespace shadan

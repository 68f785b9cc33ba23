#include "cli/lab/daemon_child.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>

#include "common/unique_fd.h"

extern char** environ;

namespace shadan {
namespace {

// Our environment without the variables `overrides` (NAME=value) set, then `overrides`.
std::vector<std::string> childEnvironment(const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view inherited(*e);
    const auto same_name = [&](const std::string& set) {
      const size_t eq = set.find('=');
      return eq != std::string::npos &&
             inherited.starts_with(std::string_view(set).substr(0, eq + 1));
    };
    if (std::none_of(overrides.begin(), overrides.end(), same_name)) env.emplace_back(inherited);
  }
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

std::string errnoText(int err) { return std::strerror(err); }

int exitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Result<std::unique_ptr<DaemonChild>> DaemonChild::start(const DaemonChildOptions& options) {
  if (options.argv.empty()) return makeError(ErrorCode::kInvalidArgument, "no program to run");
  UniqueFd log(::open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log.valid()) {
    return makeError(ErrorCode::kIo, "open " + options.log_path.string() + ": " + errnoText(errno));
  }
  UniqueFd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_in.valid()) return makeError(ErrorCode::kIo, "open /dev/null: " + errnoText(errno));

  // Everything the child touches between fork and exec is built here (async-signal-safety).
  std::vector<std::string> argv;
  if (!options.netns.empty()) argv = {"ip", "netns", "exec", options.netns};
  argv.insert(argv.end(), options.argv.begin(), options.argv.end());
  std::vector<char*> c_argv;
  for (std::string& arg : argv) c_argv.push_back(arg.data());
  c_argv.push_back(nullptr);
  // Made before fork(): the child only execs.
  std::vector<std::string> env = childEnvironment(options.env);
  std::vector<char*> c_env;
  for (std::string& e : env) c_env.push_back(e.data());
  c_env.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) return makeError(ErrorCode::kIo, "fork: " + errnoText(errno));
  if (pid == 0) {
    // shadanctl's SIGINT/SIGTERM handler and any blocked mask must not reach the daemon.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGINT, &dfl, nullptr);
    ::sigaction(SIGTERM, &dfl, nullptr);
    ::sigaction(SIGPIPE, &dfl, nullptr);
    sigset_t empty;
    sigemptyset(&empty);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);
    // Its own process group: a Ctrl-C on the terminal reaches shadanctl, which stops the
    // daemons in order (agents first), rather than every daemon at once.
    ::setpgid(0, 0);
    if (::dup2(null_in.get(), STDIN_FILENO) < 0 || ::dup2(log.get(), STDOUT_FILENO) < 0 ||
        ::dup2(log.get(), STDERR_FILENO) < 0) {
      ::_exit(127);
    }
    ::close_range(3, ~0U, 0);
    ::execvpe(c_argv[0], c_argv.data(), c_env.data());
    ::_exit(127);
  }
  return std::unique_ptr<DaemonChild>(new DaemonChild(pid));
}

bool DaemonChild::running() { return !waitExit(std::chrono::milliseconds(0)); }

bool DaemonChild::waitExit(std::chrono::milliseconds timeout) {
  if (exit_code_) return true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_code_ = exitCodeOf(status);
      return true;
    }
    if (done < 0 && errno != EINTR) {
      exit_code_ = -1;  // not our child any more (cannot happen unless someone reaped it)
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Status DaemonChild::sendSignal(int signal) {
  if (exit_code_) return okStatus();
  if (::kill(pid_, signal) != 0 && errno != ESRCH) {
    return makeError(ErrorCode::kIo, "kill " + std::to_string(pid_) + ": " + errnoText(errno));
  }
  return okStatus();
}

Result<int> DaemonChild::stop(int signal, std::chrono::milliseconds timeout) {
  if (exit_code_) return *exit_code_;
  SHADAN_RETURN_IF_ERROR(sendSignal(signal));
  if (waitExit(timeout)) return *exit_code_;
  ::kill(pid_, SIGKILL);
  while (!waitExit(std::chrono::seconds(1))) ::kill(pid_, SIGKILL);
  return makeError(ErrorCode::kUnavailable,
                   "pid " + std::to_string(pid_) + " still ran " + std::to_string(timeout.count()) +
                       " ms after signal " + std::to_string(signal) + "; killed");
}

DaemonChild::~DaemonChild() {
  if (exit_code_) return;
  ::kill(pid_, SIGKILL);
  // SIGKILL cannot be ignored; the wait is bounded only by the kernel tearing the task down.
  while (!waitExit(std::chrono::seconds(1))) ::kill(pid_, SIGKILL);
}

}  // namespace shadan

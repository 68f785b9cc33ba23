#include "tests/integration/agent_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace shadan {
namespace {

std::string errnoText(int err) { return std::strerror(err); }

std::string logTail(const std::filesystem::path& path) {
  const std::string text = readWholeFile(path);
  constexpr size_t kTail = 2000;
  return text.size() > kTail ? "…" + text.substr(text.size() - kTail) : text;
}

int exitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// A notify socket path unique to this process and call (several daemons may run at once).
std::filesystem::path uniqueNotifyPath() {
  static std::atomic<int> counter{0};
  return std::filesystem::temp_directory_path() / ("shadan-notify-" + std::to_string(::getpid()) +
                                                   "-" + std::to_string(counter++) + ".sock");
}

}  // namespace

std::string readWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<std::unique_ptr<AgentProcess>> AgentProcess::start(const AgentProcessOptions& options) {
  // The notification socket: a datagram socket on a filesystem path (see the header for why not
  // abstract). Bound before the child exists, so READY=1 cannot be sent to nobody.
  const std::filesystem::path notify_path = uniqueNotifyPath();
  sockaddr_un address{};
  if (notify_path.string().size() >= sizeof(address.sun_path)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "notify socket path too long: " + notify_path.string());
  }
  UniqueFd notify(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!notify.valid()) return makeError(ErrorCode::kIo, "socket(AF_UNIX): " + errnoText(errno));
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, notify_path.c_str(), notify_path.string().size());
  ::unlink(notify_path.c_str());
  if (::bind(notify.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return makeError(ErrorCode::kIo, "bind " + notify_path.string() + ": " + errnoText(errno));
  }

  UniqueFd log(::open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log.valid()) {
    return makeError(ErrorCode::kIo, "open " + options.log_path.string() + ": " + errnoText(errno));
  }
  UniqueFd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_in.valid()) return makeError(ErrorCode::kIo, "open /dev/null: " + errnoText(errno));

  // Everything the child touches between fork and exec is built here (async-signal-safety).
  std::vector<std::string> argv;
  if (!options.netns.empty()) argv = {"ip", "netns", "exec", options.netns};
  argv.push_back(options.binary.string());
  argv.push_back("run");
  argv.insert(argv.end(), options.arguments.begin(), options.arguments.end());
  std::vector<char*> c_argv;
  for (std::string& arg : argv) c_argv.push_back(arg.data());
  c_argv.push_back(nullptr);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) env.emplace_back(*e);
  }
  env.push_back("NOTIFY_SOCKET=" + notify_path.string());
  std::vector<char*> c_env;
  for (std::string& e : env) c_env.push_back(e.data());
  c_env.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) return makeError(ErrorCode::kIo, "fork: " + errnoText(errno));
  if (pid == 0) {
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    if (::dup2(null_in.get(), STDIN_FILENO) < 0 || ::dup2(log.get(), STDOUT_FILENO) < 0 ||
        ::dup2(log.get(), STDERR_FILENO) < 0) {
      ::_exit(127);
    }
    // Descriptors the test opened without O_CLOEXEC (Asio's sockets, e.g. a listening
    // WebSocketAgentHub) must not live on in the daemon: it would keep the test's port bound.
    ::close_range(3, ~0U, 0);
    ::execvpe(c_argv[0], c_argv.data(), c_env.data());
    ::_exit(127);
  }

  std::unique_ptr<AgentProcess> process(
      new AgentProcess(pid, std::move(notify), notify_path, options.log_path));
  // From here on the destructor kills and reaps the child on every early return.
  const auto deadline = std::chrono::steady_clock::now() + options.ready_timeout;
  for (;;) {
    for (const std::string& message : process->pollNotifications()) {
      // sd_notify messages are newline-separated assignments; READY=1 may share a datagram.
      std::istringstream lines(message);
      for (std::string line; std::getline(lines, line);) {
        if (line == "READY=1") {
          process->ready_at_ = std::chrono::steady_clock::now();
          // pid() promises the daemon itself: `ip netns exec` (if used) must have exec'd it in
          // place.
          std::string comm = readWholeFile("/proc/" + std::to_string(pid) + "/comm");
          if (!comm.empty() && comm.back() == '\n') comm.pop_back();
          if (comm != options.binary.filename().string().substr(0, 15)) {
            return makeError(ErrorCode::kInternal, "READY=1 came, but pid " + std::to_string(pid) +
                                                       " is \"" + comm + "\", not the daemon");
          }
          return process;
        }
      }
    }
    if (process->reap(std::chrono::milliseconds(0))) {
      return makeError(ErrorCode::kUnavailable,
                       "shadan-agent run exited with code " + std::to_string(*process->exit_code_) +
                           " before READY=1; log:\n" + logTail(options.log_path));
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return makeError(ErrorCode::kUnavailable, "no READY=1 from shadan-agent run within " +
                                                    std::to_string(options.ready_timeout.count()) +
                                                    " ms; log:\n" + logTail(options.log_path));
    }
    // Short slices: the child's exit is noticed by polling waitpid, not by a file descriptor.
    pollfd fd{process->notify_.get(), POLLIN, 0};
    (void)::poll(&fd, 1, static_cast<int>(std::min<int64_t>(left.count(), 20)));
  }
}

std::vector<std::string> AgentProcess::pollNotifications() {
  std::vector<std::string> messages;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(notify_.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    messages.emplace_back(buffer, static_cast<size_t>(n));
  }
  return messages;
}

bool AgentProcess::reap(std::chrono::milliseconds timeout) {
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

Result<int> AgentProcess::stop(int signal, std::chrono::milliseconds timeout) {
  if (exit_code_) return *exit_code_;
  if (::kill(pid_, signal) != 0 && errno != ESRCH) {
    return makeError(ErrorCode::kIo, "kill " + std::to_string(pid_) + ": " + errnoText(errno));
  }
  if (!reap(timeout)) {
    return makeError(ErrorCode::kUnavailable, "shadan-agent (pid " + std::to_string(pid_) +
                                                  ") still runs " +
                                                  std::to_string(timeout.count()) +
                                                  " ms after signal " + std::to_string(signal));
  }
  return *exit_code_;
}

AgentProcess::~AgentProcess() {
  if (!exit_code_) {
    ::kill(pid_, SIGKILL);
    // SIGKILL cannot be ignored; the wait is bounded only by the kernel tearing the task down.
    while (!reap(std::chrono::seconds(1))) {
      ::kill(pid_, SIGKILL);
    }
  }
  ::unlink(notify_path_.c_str());
}

}  // namespace shadan

#include "tests/integration/agent_process.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace shadan {
namespace {

std::string errnoText(int err) { return std::strerror(err); }

std::string logTail(const std::filesystem::path& path) {
  const std::string text = readWholeFile(path);
  constexpr size_t kTail = 2000;
  return text.size() > kTail ? "…" + text.substr(text.size() - kTail) : text;
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

  std::vector<std::string> argv = {options.binary.string(), "run"};
  argv.insert(argv.end(), options.arguments.begin(), options.arguments.end());
  std::vector<std::string> environment = options.environment;
  environment.push_back("NOTIFY_SOCKET=" + notify_path.string());
  SHADAN_ASSIGN_OR_RETURN(
      std::unique_ptr<DaemonChild> child,
      DaemonChild::start({options.netns, std::move(argv), options.log_path, environment}));
  const pid_t pid = child->pid();

  std::unique_ptr<AgentProcess> process(
      new AgentProcess(std::move(child), std::move(notify), notify_path));
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
    if (!process->child_->running()) {
      return makeError(ErrorCode::kUnavailable, "shadan-agent run exited with code " +
                                                    std::to_string(*process->child_->exitCode()) +
                                                    " before READY=1; log:\n" +
                                                    logTail(options.log_path));
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

Result<int> AgentProcess::stop(int signal, std::chrono::milliseconds timeout) {
  if (std::optional<int> code = child_->exitCode()) return *code;
  SHADAN_RETURN_IF_ERROR(child_->sendSignal(signal));
  // Unlike DaemonChild::stop, a daemon that outlives the timeout is left running (the
  // destructor kills it): the error is the test's finding.
  if (!child_->waitExit(timeout)) {
    return makeError(ErrorCode::kUnavailable, "shadan-agent (pid " + std::to_string(pid()) +
                                                  ") still runs " +
                                                  std::to_string(timeout.count()) +
                                                  " ms after signal " + std::to_string(signal));
  }
  return *child_->exitCode();
}

AgentProcess::~AgentProcess() {
  child_.reset();  // kills and reaps the daemon if it still runs, before its socket goes
  ::unlink(notify_path_.c_str());
}

}  // namespace shadan

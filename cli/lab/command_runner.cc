#include "cli/lab/command_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "common/unique_fd.h"

namespace shadan {
namespace {

std::string errnoText(int err) { return std::strerror(err); }

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Result<Pipe> makePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return makeError(ErrorCode::kIo, "pipe2: " + errnoText(errno));
  }
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Writing to a pipe whose reader has exited raises SIGPIPE, which would kill the whole tool.
// While this object lives, SIGPIPE is blocked on the calling thread; a SIGPIPE our writes
// caused is consumed before the old mask comes back, so write() just reports EPIPE.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask_);
  }
  ~ScopedSigpipeBlock() {
    if (!was_pending_) {
      sigset_t pipe_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t old_mask_{};
  bool was_pending_ = false;
};

// Reads what is available; returns false at end of file or on a hard error.
bool drainInto(int fd, std::string& sink) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      sink.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
}

Result<int> waitForChild(pid_t pid) {
  int status = 0;
  for (;;) {
    if (::waitpid(pid, &status, 0) == pid) break;
    if (errno != EINTR) return makeError(ErrorCode::kIo, "waitpid: " + errnoText(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return makeError(ErrorCode::kIo, "child ended in an unexpected state");
}

void setNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

std::string formatArgv(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) {
    if (!text.empty()) text += ' ';
    if (arg.empty() || arg.find_first_of(" \t\n'\"") != std::string::npos) {
      // Shell-style quoting, so a logged command can be pasted into a terminal.
      text += '\'';
      for (char c : arg) text += c == '\'' ? std::string("'\\''") : std::string(1, c);
      text += '\'';
    } else {
      text += arg;
    }
  }
  return text;
}

Result<CommandResult> ProcessCommandRunner::run(const std::vector<std::string>& argv,
                                                const std::string& stdin_data) {
  if (argv.empty()) detail::resultAccessFailure("CommandRunner::run with an empty argv");

  // Everything the child touches between fork and exec is prepared here: after fork only
  // async-signal-safe calls are allowed (the parent may have other threads).
  std::vector<char*> c_argv;
  c_argv.reserve(argv.size() + 1);
  for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);

  SHADAN_ASSIGN_OR_RETURN(auto in, makePipe());
  SHADAN_ASSIGN_OR_RETURN(auto out, makePipe());
  SHADAN_ASSIGN_OR_RETURN(auto err, makePipe());
  // The child writes its errno here if execvp fails; on success exec closes it (O_CLOEXEC).
  SHADAN_ASSIGN_OR_RETURN(auto exec_status, makePipe());

  const pid_t pid = ::fork();
  if (pid < 0) return makeError(ErrorCode::kIo, "fork: " + errnoText(errno));
  if (pid == 0) {
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    if (::dup2(in.read.get(), STDIN_FILENO) < 0 || ::dup2(out.write.get(), STDOUT_FILENO) < 0 ||
        ::dup2(err.write.get(), STDERR_FILENO) < 0) {
      const int e = errno;
      (void)!::write(exec_status.write.get(), &e, sizeof(e));
      ::_exit(127);
    }
    ::execvp(c_argv[0], c_argv.data());
    const int e = errno;
    (void)!::write(exec_status.write.get(), &e, sizeof(e));
    ::_exit(127);
  }

  // Parent: drop the child's ends so end-of-file arrives when the child exits.
  in.read.reset();
  out.write.reset();
  err.write.reset();
  exec_status.write.reset();

  UniqueFd stdin_fd = std::move(in.write);
  UniqueFd stdout_fd = std::move(out.read);
  UniqueFd stderr_fd = std::move(err.read);
  setNonBlocking(stdin_fd.get());
  setNonBlocking(stdout_fd.get());
  setNonBlocking(stderr_fd.get());
  if (stdin_data.empty()) stdin_fd.reset();

  CommandResult result;
  size_t written = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  {
    ScopedSigpipeBlock no_sigpipe;
    while (stdout_fd.valid() || stderr_fd.valid()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ::kill(pid, SIGKILL);
        (void)waitForChild(pid);
        return makeError(ErrorCode::kIo, "timed out after " + std::to_string(timeout_.count()) +
                                             " ms: " + formatArgv(argv));
      }
      pollfd fds[3] = {
          {stdout_fd.get(), POLLIN, 0}, {stderr_fd.get(), POLLIN, 0}, {stdin_fd.get(), POLLOUT, 0}};
      const int ready = ::poll(fds, 3, static_cast<int>(left.count()));
      if (ready < 0) {
        if (errno == EINTR) continue;
        ::kill(pid, SIGKILL);
        (void)waitForChild(pid);
        return makeError(ErrorCode::kIo, "poll: " + errnoText(errno));
      }
      if (fds[0].revents != 0 && !drainInto(stdout_fd.get(), result.out)) stdout_fd.reset();
      if (fds[1].revents != 0 && !drainInto(stderr_fd.get(), result.err)) stderr_fd.reset();
      if (fds[2].revents != 0) {
        const ssize_t n =
            ::write(stdin_fd.get(), stdin_data.data() + written, stdin_data.size() - written);
        if (n > 0) written += static_cast<size_t>(n);
        // EPIPE: the program stopped reading; its exit code tells the rest.
        if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_data.size()) {
          stdin_fd.reset();
        }
      }
    }
  }
  stdin_fd.reset();

  SHADAN_ASSIGN_OR_RETURN(auto exit_code, waitForChild(pid));

  int exec_errno = 0;
  if (::read(exec_status.read.get(), &exec_errno, sizeof(exec_errno)) ==
      static_cast<ssize_t>(sizeof(exec_errno))) {
    return makeError(ErrorCode::kIo, "cannot run " + argv[0] + ": " + errnoText(exec_errno));
  }
  result.exit_code = exit_code;
  return result;
}

Result<CommandResult> runChecked(CommandRunner& runner, const std::vector<std::string>& argv,
                                 const std::string& stdin_data) {
  SHADAN_ASSIGN_OR_RETURN(auto result, runner.run(argv, stdin_data));
  if (result.exit_code != 0) {
    std::string detail = result.err.empty() ? result.out : result.err;
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
    return makeError(ErrorCode::kKernel, "`" + formatArgv(argv) + "` exited with " +
                                             std::to_string(result.exit_code) +
                                             (detail.empty() ? "" : ": " + detail));
  }
  return result;
}

}  // namespace shadan

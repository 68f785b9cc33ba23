#include "agents/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/strict_json.h"

namespace shadan::agent {
namespace {

constexpr size_t kMaxAnswerBytes = 1 << 20;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Waits for `events` on fd until `deadline`.
bool waitFor(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, events, 0};
    const int rc = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

}  // namespace

Result<std::optional<nlohmann::json>> askDaemon(const std::filesystem::path& socket_path,
                                                const ControlRequest& request,
                                                std::chrono::milliseconds timeout) {
  sockaddr_un address{};
  const std::string path = socket_path.string();
  if (path.size() >= sizeof(address.sun_path)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "control socket path too long for AF_UNIX: " + path);
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size());

  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return makeError(ErrorCode::kIo, std::string("socket: ") + strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) return std::optional<nlohmann::json>();
    return makeError(ErrorCode::kUnavailable,
                     "cannot reach the agent daemon at " + path + ": " + strerror(errno));
  }

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string line = request.toJson().dump() + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    if (!waitFor(fd.get(), POLLOUT, deadline)) {
      return makeError(ErrorCode::kUnavailable, "agent daemon at " + path + " did not read");
    }
    const ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return makeError(ErrorCode::kUnavailable,
                       "agent daemon at " + path + ": send: " + strerror(errno));
    }
    sent += static_cast<size_t>(n);
  }

  std::string answer;
  char buffer[4096];
  while (answer.find('\n') == std::string::npos) {
    if (!waitFor(fd.get(), POLLIN, deadline)) {
      return makeError(ErrorCode::kUnavailable,
                       "agent daemon at " + path + " did not answer in time");
    }
    const ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return makeError(ErrorCode::kUnavailable,
                       "agent daemon at " + path + ": recv: " + strerror(errno));
    }
    if (n == 0) break;
    answer.append(buffer, static_cast<size_t>(n));
    if (answer.size() > kMaxAnswerBytes) {
      return makeError(ErrorCode::kUnavailable, "agent daemon answer too large");
    }
  }
  if (const auto newline = answer.find('\n'); newline != std::string::npos) {
    answer.resize(newline);
  }
  auto parsed = parseStrictJson(answer, "agent daemon answer", kMaxAnswerBytes);
  if (!parsed.ok()) return makeError(ErrorCode::kUnavailable, parsed.error().message);
  if (!parsed->is_object() || !parsed->contains("ok")) {
    return makeError(ErrorCode::kUnavailable, "agent daemon answer is not a Shadan answer");
  }
  return std::optional<nlohmann::json>(std::move(parsed).value());
}

}  // namespace shadan::agent

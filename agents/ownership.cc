#include "agents/ownership.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <functional>

#include "agents/control_client.h"
#include "agents/daemon.h"
#include "agents/planner/planner.h"
#include "common/logging.h"

namespace shadan::agent {

std::string agentOwnerMark(const std::string& gateway, const std::filesystem::path& state_dir) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(state_dir, ec);
  if (ec) absolute = state_dir;
  std::string text = absolute.lexically_normal().string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return ownerMark(gateway, text);
}

Result<DaemonClaim> claimForDaemon(const std::filesystem::path& state_dir,
                                   std::chrono::milliseconds wait) {
  auto log = logger("agent");
  auto store = SqliteStateStore::open(state_dir, std::chrono::milliseconds(0));
  if (!store.ok() && store.error().code == ErrorCode::kUnavailable) {
    ControlRequest probe;
    probe.op = "status";
    auto answer = askDaemon(controlSocketPath(state_dir), probe, std::chrono::seconds(2));
    if (!answer.ok() || answer->has_value()) return store.error();
    log->warn("event=waiting_for_state_lock state_dir={} max_wait_ms={}", state_dir.string(),
              wait.count());
    store = SqliteStateStore::open(state_dir, wait);
    if (store.ok()) log->info("event=state_lock_taken state_dir={}", state_dir.string());
  }
  if (!store.ok()) return store.error();
  SHADAN_ASSIGN_OR_RETURN(auto gateway,
                          GatewayLock::acquire(kOwnedTable, GatewayLock::Role::kDaemon, wait));
  return DaemonClaim{std::move(store).value(), std::move(gateway)};
}

namespace {

class OwnerQueries : public std::enable_shared_from_this<OwnerQueries> {
 public:
  OwnerQueries(boost::asio::io_context& io, int fd) : acceptor_(io) {
    boost::system::error_code ec;
    acceptor_.assign(boost::asio::local::stream_protocol(), fd, ec);
    if (ec) ::close(fd);
  }
  void next() {
    if (!acceptor_.is_open()) return;
    acceptor_.async_accept([self = weak_from_this()](const boost::system::error_code& ec,
                                                     boost::asio::local::stream_protocol::socket) {
      // The socket closes as it goes out of scope; an error (EMFILE, shutdown) stops serving,
      // and askers then learn "a daemon" without its pid.
      if (auto alive = self.lock(); alive && !ec) alive->next();
    });
  }

 private:
  boost::asio::local::stream_protocol::acceptor acceptor_;
};

}  // namespace

std::shared_ptr<void> serveOwnerQueries(boost::asio::io_context& io, const GatewayLock& lock) {
  const int fd = ::fcntl(lock.fd(), F_DUPFD_CLOEXEC, 0);  // the acceptor owns its own descriptor
  if (fd < 0) return nullptr;
  auto queries = std::make_shared<OwnerQueries>(io, fd);
  queries->next();
  return queries;
}

}  // namespace shadan::agent

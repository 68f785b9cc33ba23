#pragma once

// One gateway, one writer.
//
// Every agent process that writes a network namespace's `inet shadan` table holds that
// namespace's gateway lock while it does: the daemon for its whole life, a local command for
// the moment of its change. The lock is an abstract UNIX socket named after the table. Abstract
// names belong to the network namespace (the same scope as the table, so lab gateways in their
// own namespaces on one machine do not collide) and the kernel releases them when the process
// exits, so a crash leaves nothing stale to clean up.
//
// The daemon also listens on the socket, so that a process that finds the lock taken can ask
// the kernel who holds it (SO_PEERCRED) and say so; a local command only binds it.
//
// The lock is the live half of ownership. The other half is the owner mark the table itself
// carries (ownerMark in agents/planner/planner.h): which agent (gateway id, state directory) wrote
// it.

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace shadan::agent {

// Who holds a gateway lock, as far as the kernel can tell.
struct GatewayOwner {
  bool daemon = false;  // it listens: a `shadan-agent run`
  int pid = 0;          // the daemon's pid (0 for a local command: binding does not name it)
  std::string command;  // its command line, for the message ("-" when unreadable)

  // "the shadan-agent daemon (pid 1234: shadan-agent run --state-dir /var/lib/shadan ...)" or
  // "another shadan-agent command".
  std::string describe() const;
};

class GatewayLock {
 public:
  enum class Role { kDaemon, kCommand };

  // Takes the lock of `table` ("inet shadan") in this process's network namespace. A daemon's
  // lock listens: the daemon must take the queued connections off (serveOwnerQueries in
  // agents/ownership.h), or the queue fills and later askers learn only "a daemon", no pid. While
  // another process holds it: a daemon holder fails at once, a command holder is waited for up to
  // `wait` (commands hold it for one transaction). Fails with kUnavailable naming the holder.
  static Result<GatewayLock> acquire(std::string_view table, Role role,
                                     std::chrono::milliseconds wait);

  // Who holds the lock of `table` now: a daemon by pid, or (daemon=false) a local command or
  // nobody, which cannot be told apart from outside (neither answers a connect).
  static GatewayOwner holder(std::string_view table);

  GatewayLock(GatewayLock&& other) noexcept;
  GatewayLock& operator=(GatewayLock&& other) noexcept;
  GatewayLock(const GatewayLock&) = delete;
  GatewayLock& operator=(const GatewayLock&) = delete;
  ~GatewayLock();

  int fd() const { return fd_; }

 private:
  explicit GatewayLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace shadan::agent

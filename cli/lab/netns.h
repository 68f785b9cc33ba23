#pragma once

// Doing work inside a named network namespace (/run/netns/NAME, as `ip netns add` makes them)
// without spawning processes.
//
// The work runs on a fresh thread that joins the namespace with setns(CLONE_NEWNET) and ends
// afterwards, so the caller's thread never changes namespace. A socket keeps the namespace it
// was created in for its whole life: a socket made here can be used from any thread later.
// Needs CAP_SYS_ADMIN (root).

#include <functional>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace shadan {

// The path `ip netns` uses for namespace `name`.
std::string netnsPath(const std::string& name);

// True if /run/netns/NAME exists.
bool netnsExists(const std::string& name);

// Runs `work` on a new thread inside namespace `name` and returns its status once the thread
// has been joined. An error names the namespace when it cannot be opened or entered.
Status runInNetns(const std::string& name, const std::function<Status()>& work);

// socket(domain, type | SOCK_CLOEXEC, protocol) created inside namespace `name`.
Result<UniqueFd> socketInNetns(const std::string& name, int domain, int type, int protocol);

}  // namespace shadan

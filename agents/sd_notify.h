#pragma once

#include <string_view>

namespace shadan::agent {

// Sends `state` ("READY=1", "STOPPING=1", "STATUS=…") to systemd's notification socket named by
// $NOTIFY_SOCKET, as sd_notify(3) does. Without $NOTIFY_SOCKET (not run by systemd) it does
// nothing and returns false. Implemented on a plain AF_UNIX datagram socket: the protocol is one
// datagram, so it needs no libsystemd.
bool sdNotify(std::string_view state);

}  // namespace shadan::agent

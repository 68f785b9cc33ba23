#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace shadan {

// Sends `state` ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=…") to systemd's notification
// socket named by $NOTIFY_SOCKET, as sd_notify(3) does. Without $NOTIFY_SOCKET (not run by
// systemd) it does nothing and returns false. Implemented on a plain AF_UNIX datagram socket:
// the protocol is one datagram, so it needs no libsystemd.
bool sdNotify(std::string_view state);

// The watchdog interval systemd expects pings within ($WATCHDOG_USEC, set by WatchdogSec=), as
// sd_watchdog_enabled(3) reads it: none without it, when it is not a positive number, or when
// $WATCHDOG_PID names another process (the variable was inherited, not meant for us).
std::optional<std::chrono::microseconds> sdWatchdogInterval();

}  // namespace shadan

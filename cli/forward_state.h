#pragma once

// The persisted position of `shadanctl forward`: which file it follows and the first byte the
// controller has not acknowledged yet. A restart resumes there, so a crash re-sends at most
// the batch that was in flight (at-least-once).
//
// File format (JSON, written with writeFileAtomically, mode 0644):
//   {"version":1,"kind":"eve","log":"/var/log/suricata/eve.json",
//    "device":2049,"inode":1234567,"offset":81920}
// Unknown members, a missing one, floats, duplicate keys: refused with the file named. A state
// file that names another log or kind is refused, not reused: it belongs to another forwarder.

#include <optional>
#include <string>

#include "cli/log_follower.h"
#include "common/result.h"

namespace shadan {

// "eve" | "zeek-notice": the forwarder's kind, as in `shadanctl forward KIND`.
struct ForwardState {
  std::string kind;
  std::string log;  // the followed path, absolute
  LogPosition position;
};

inline constexpr const char* kForwardStateDir = "/var/lib/shadan";

// /var/lib/shadan/forward-KIND-HASH.json, HASH the first 16 hex digits of the SHA-256 of
// `absolute_log`: one state per followed file.
std::string defaultForwardStatePath(const std::string& kind, const std::string& absolute_log);

// nullopt when `state_file` does not exist (the first run). Errors name the file; a state of
// another log or kind is kInvalidArgument.
Result<std::optional<ForwardState>> loadForwardState(const std::string& state_file,
                                                     const std::string& kind,
                                                     const std::string& absolute_log);

// Replaces `state_file` atomically (a crash leaves the old state or the new one).
Status saveForwardState(const std::string& state_file, const ForwardState& state);

}  // namespace shadan

#pragma once

// The agent's local control requests and their JSON answers.
//
// One request and one answer type serve both ways the local commands reach the kernel: handled
// in-process when no daemon runs, or sent as one JSON line over the daemon's UNIX socket
// (<state-dir>/agent.sock, root only) and answered with one JSON line. The daemon treats the
// socket as hostile input: size-capped, strictly parsed, unknown fields rejected.
//
// Request:  {"op": "isolate", "segment": "office", "profile": "full", "ttl_ms": 4000,
//            "drill": true}
//           {"op": "isolate", "scope": "host", "hosts": ["10.20.0.5", "fd00:20::5"]}
//           {"op": "isolate", "scope": "uplink", "link_down": true} | {..."scope": "island"}
//           {"op": "restore", "segment": "office"} | {"op": "restore", "all": true}
//           {"op": "restore", "scope": "host", "hosts": [...]} | {..."scope": "uplink"}
//           {"op": "status"}
//           {"op": "verify", "envelope": "<text>"} | {"op": "apply_file", "envelope": "<text>"}
//           {"op": "refused", "command": "isolate", "reason": "..."}  (audit a local command
//            refused before it could be handled, e.g. its --policy did not load)
//           any op may carry "gateway" and "policy_sha256": the asking command's --gateway and
//           the SHA-256 of its --policy file; the daemon refuses a request that differs
// Answer:   {"ok": true, "command": "isolate", "gateway": "gw", "changed": true, ...}
//           {"ok": false, "command": "...", "error": {"code": "not_found", "message": "..."}}

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "agents/agent_core.h"
#include "common/result.h"

namespace shadan::agent {

inline constexpr size_t kMaxControlRequestBytes = 256 * 1024;
inline constexpr size_t kMaxRefusalReasonBytes = 2048;

struct ControlRequest {
  std::string op;  // isolate | restore | status | verify | apply_file | refused
  // isolate, restore: the rung (absent: segment, or for restore "all" / by segment).
  std::optional<IsolationScope> scope;
  std::vector<IpPrefix> hosts;  // scope host
  bool link_down = false;       // isolate, scope uplink
  std::optional<std::string> segment;
  std::optional<std::string> profile;
  std::optional<std::chrono::milliseconds> ttl;
  bool all = false;
  bool drill = false;
  std::optional<std::string> envelope;  // verify, apply_file: the envelope file's text
  std::optional<std::string> command;   // refused: the local command that was refused
  std::optional<std::string> reason;    // refused: why; isolate, restore: the --reason
  // isolate, restore: SUDO_USER of the asking command, as it claims (the daemon adds the uid
  // and pid the kernel vouches for).
  std::optional<std::string> sudo_user;
  // Any op: what the asking command was started with. The daemon refuses a request made for
  // another gateway or with another policy than its own (one writer, one policy): a command
  // run with a different --policy would otherwise be judged against the daemon's policy.
  std::optional<std::string> gateway;
  std::optional<std::string> policy_sha256;  // SHA-256 of the policy file's bytes

  nlohmann::json toJson() const;
};

// A user name as SUDO_USER may carry it into the audit trail: 1-64 of [A-Za-z0-9._-].
bool isPlainUserName(std::string_view name);

// Strict: size cap, duplicate keys, unknown fields, types, and the combinations each op allows.
Result<ControlRequest> parseControlRequest(std::string_view text);

// Carries out `request` on `core` and returns the answer document. Never throws; a refused or
// failed request is an answer with ok=false. `origin` records who asked ("local-cli",
// "control-socket uid=0 pid=1234").
// `requested_by` is who asked, for the audit trail (empty: `origin`); the request's sudo_user
// is appended to it.
nlohmann::json handleControlRequest(AgentCore& core, const ControlRequest& request,
                                    const std::string& origin,
                                    const std::string& requested_by = "");

// The active isolations of `state` as status and change answers list them (scope, label,
// segment, profile, since, origin; host, link_down, expires and drill when set). The one rendering
// for the daemon, the in-process CLI and the offline status, so the answers cannot drift apart.
// `now_ms` (Unix ms) dates the deadlines: an isolation with one carries `remaining_s` and, once
// the deadline has passed without anything lifting it, `"overdue": true`.
nlohmann::json isolationsJson(const DesiredState& state, int64_t now_ms);

// The isolation an entry of isolationsJson names (its scope, segment, profile and host); for
// reading a daemon's answer back. kParse when the entry is not one.
Result<Isolation> isolationFromJson(const nlohmann::json& item);

// The answer for an error that happened before a request could be handled.
nlohmann::json errorAnswer(const std::string& command, const Error& error);

// The error an answer carries, if any (ok=false).
std::optional<Error> answerError(const nlohmann::json& answer);

}  // namespace shadan::agent

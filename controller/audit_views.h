#pragma once

// GET /v1/audit: the controller's own audit log and its copies of the agents' logs
// (controller/audit_mirror.h), read back for people, each with the verdict of the same
// verification `shadanctl audit verify` runs (common/audit_verify.h).
//
// Contracts:
//   - Read-only: reads the files, changes nothing, audits nothing.
//   - Every answer verifies the whole log it reads (chain, checkpoints, their signatures with
//     the controller's keys from the trust file or the agent's enrolled key): the page never
//     shows entries without saying whether their chain holds. That is a read of the whole log
//     per request (docs/console.md gives the cost); the controller's own log rotates, agents'
//     copies do not.
//   - Entries come newest first, at most `limit`, optionally only those before a log_seq
//     (paging) and only of one event; each is the stored JSON object as it is.
//   - Verification paths are reported by file name only, not by the controller's paths.
//   - Not thread-safe: the controller's io thread.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/audit_log.h"
#include "common/ed25519.h"
#include "common/result.h"

namespace shadan::controller {

inline constexpr size_t kAuditPageDefault = 100;
inline constexpr size_t kAuditPageMax = 1000;

struct AuditQuery {
  std::string log = "controller";  // "controller" or "agent:<agent_id>"
  size_t limit = kAuditPageDefault;
  std::optional<uint64_t> before;  // only entries whose log_seq is lower
  std::string event;               // only entries of this event ("" for all)
};

// Parses GET /v1/audit's query string ("log=agent:gw-a&limit=50&before=120&event=order_applied");
// unknown names, repeated names, bad numbers and a limit outside 1..kAuditPageMax are refused
// with kInvalidArgument naming the parameter.
Result<AuditQuery> parseAuditQuery(std::string_view query);

struct AuditSources {
  std::string controller_log;  // the controller's audit.log (its rotated segments beside it)
  std::vector<PublicKeyInfo> controller_keys;  // checkpoint signatures of the controller's log
  std::function<std::vector<std::string>()> agent_ids;  // agents with a copy
  // The copy of an agent's log (kInvalidArgument for an unusable id), and its enrolled key.
  std::function<Result<std::string>(const std::string& agent_id)> agent_log;
  std::function<std::optional<Ed25519PublicKey>(const std::string& agent_id)> agent_key;
};

class AuditReader {
 public:
  // `fs` must outlive the reader.
  AuditReader(LogFileSystem& fs, AuditSources sources) : fs_(fs), sources_(std::move(sources)) {}

  // {"log","logs","verification","entries","next_before"}; kNotFound for a log that is not
  // there (an unknown agent, or one that never shipped).
  Result<nlohmann::json> read(const AuditQuery& query);

 private:
  LogFileSystem& fs_;
  AuditSources sources_;
};

}  // namespace shadan::controller

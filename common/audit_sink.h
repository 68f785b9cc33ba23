#pragma once

// The audit trail as the rest of Shadan sees it: a typed event in, a receipt out.
//
// The agent and the controller depend on AuditSink only; AuditLog (common/audit_log.h) is the
// durable, hash-chained implementation, and unit tests pass a small fake. Field meanings follow
// PROTOCOL.md "Audit log". Absent optionals are omitted from the stored line.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace shadan {

struct AuditWho {
  std::optional<std::string> requested_by;  // "op:sato", "detector:ids-1"
  std::optional<std::vector<std::string>> approvers;
  std::optional<std::vector<std::string>> keyids;  // keys whose signatures were counted
  std::optional<std::string> controller;           // keyid or name of the dispatching controller

  bool operator==(const AuditWho&) const = default;
};

struct AuditWhat {
  std::optional<std::string> action;  // "isolate" | "restore" | ...
  std::optional<std::string> segment;
  std::optional<std::string> profile;
  std::optional<std::string> ruleset_before;  // sha256 of the ruleset read back before/after
  std::optional<std::string> ruleset_after;
  // The rung (common/isolation_scope.h) when it is not a segment, and the hosts of a host
  // quarantine (CIDR), so the trail says exactly what was cut.
  std::optional<std::string> scope = std::nullopt;
  std::optional<std::vector<std::string>> hosts = std::nullopt;

  bool operator==(const AuditWhat&) const = default;
};

struct AuditWhy {
  std::optional<std::string> reason;
  std::optional<std::string> ticket;

  bool operator==(const AuditWhy&) const = default;
};

struct AuditWhere {
  std::optional<std::string> agent_id;
  std::optional<std::string> host;
  std::optional<std::string> version;

  bool operator==(const AuditWhere&) const = default;
};

// One audit event as a caller records it. The log adds log_id, log_seq, ts and prev_hash.
struct AuditEvent {
  std::string event;                   // required: "accepted", "applied", "rejected", ...
  std::optional<std::string> outcome;  // "ok" | "rejected" | "failed" | ...
  std::optional<std::string> reason;   // why this outcome (e.g. the rejection reason)
  std::optional<AuditWho> who;
  std::optional<AuditWhat> what;
  std::optional<AuditWhy> why;
  std::optional<AuditWhere> where;
  std::optional<std::string> command_id;
  std::optional<std::string> correlation_id;
  std::optional<uint64_t> seq;  // the dispatch seq, when the event concerns one
  std::optional<std::string> authz_sha256;
  std::optional<bool> drill;
  // Free-form facts that have no typed field (e.g. pid/comm of a process that changed the
  // ruleset). Must be a JSON object of strings, integers, booleans, arrays and objects.
  std::optional<nlohmann::json> detail;

  bool operator==(const AuditEvent&) const = default;
};

// Where an appended event landed: what an ack carries as {"audit":{"log_seq","entry_hash"}}.
struct AuditReceipt {
  uint64_t log_seq = 0;
  std::string entry_hash;  // lower-case hex SHA-256(0x00 || line)
};

class AuditSink {
 public:
  virtual ~AuditSink() = default;

  // Records `event` durably. On success the entry is on stable storage (fdatasync returned)
  // before this returns, so the caller may act on it (send an ack, answer an API call).
  // Thread-safe in every implementation.
  virtual Result<AuditReceipt> append(const AuditEvent& event) = 0;

  // Like append(), but when this returns the entry need only be written (in its place in the
  // chain), not yet on stable storage: it becomes durable with the next append() or
  // checkpoint, whose sync covers every earlier byte. For a record that is always followed by
  // another one before anything depends on it (the agent's "accepted" before its "applied" or
  // "failed"): PROTOCOL.md asks for the fsync before the answer, and one sync instead of two
  // is a large part of the order -> ack time. Implementations without a cheaper path keep
  // this default (durable at once).
  virtual Result<AuditReceipt> appendBuffered(const AuditEvent& event) { return append(event); }
};

}  // namespace shadan

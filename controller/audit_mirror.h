#pragma once

// The controller's copy of every agent's audit log (docs/audit.md "Shipping").
//
// Per agent, <state_dir>/agents/<agent_id>/audit.log and audit.log.checkpoints hold the entries
// and checkpoints the agent shipped, byte for byte in the agent's format, so
// `shadanctl audit verify <that dir> --key <agent pub>` checks the copy. The copy is never
// rotated (one file holds what the agent's segments and current file hold together).
//
// Contracts:
//   - Every entry is checked with AuditChain continuing from the stored copy (log_id must be
//     "agent:<agent_id>"), every checkpoint with the agent's enrolled Ed25519 key and against
//     the head hash and Merkle root of the stored entries at its size.
//   - storeEntries/storeCheckpoint write, fdatasync and only then return the ack to send: an
//     ack means durable. With MirrorSync::kDeferred they write without syncing and the acks
//     they return may be sent only after syncDeferred() returned ok: one sync of the state
//     directory's file system for every copy written since (a fan-out to 1,000 gateways ships
//     1,000 small batches at once; two syncs each were seconds of the controller's one core
//     thread).
//   - A duplicate (a log_seq already stored, a checkpoint already stored) is accepted only when
//     byte-identical, and then ignored. Anything else that breaks the chain (a changed entry,
//     a gap, a malformed line, a foreign log_id), a checkpoint that does not verify or does not
//     match, raises an alarm: an entry event="agent_audit_chain_break" in the controller's own
//     audit log, an error log line, alarms() for GET /v1/status, and a marker file
//     <agent dir>/audit.break (JSON: seq, reason, the offending line). From then on nothing more
//     of that agent is stored (the copy stays as it was: evidence) until an operator moves
//     the agent's directory (or the marker) aside; the marker makes this survive restarts.
//   - Not thread-safe: the controller's io thread.

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/audit_log.h"
#include "common/audit_ship.h"
#include "common/audit_sink.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/result.h"

namespace shadan::controller {

inline constexpr const char* kAgentAuditChainBreakEvent = "agent_audit_chain_break";

// The last time an agent's log says it found its ruleset or routes tampered with and rebuilt
// them (events "repaired", "routes_repaired"): what GET /v1/status shows as the gateway's
// "last_repair", from the shipped copy.
struct AuditRepair {
  uint64_t log_seq = 0;
  std::string ts;     // the agent's entry time, RFC 3339 UTC
  std::string event;  // "repaired" | "routes_repaired"

  nlohmann::json toJson() const;
};

// When a store call's write becomes durable: before it returns, or at the next syncDeferred().
enum class MirrorSync { kNow, kDeferred };

struct AuditAlarm {
  std::string agent_id;
  uint64_t seq = 0;  // the entry (or checkpoint size) concerned
  std::string reason;
  std::string ts;  // RFC 3339 UTC, when it was raised (or read back from the marker)

  nlohmann::json toJson() const;
};

class AuditMirror {
 public:
  // `fs` and `clock` must outlive the mirror; `controller_audit` (the controller's own log)
  // too, and may be nullptr in tests that do not look at it.
  AuditMirror(std::string state_dir, LogFileSystem& fs, const Clock& clock,
              AuditSink* controller_audit);

  // Loads every agent copy already under <state_dir>/agents, so standing alarms (audit.break
  // markers) show in alarms() from startup on. Directories that fail to load are logged.
  void loadExisting();

  // Where the agent's copy lives (kInvalidArgument for an id that is no safe file name:
  // [A-Za-z0-9._-], 1-64 characters, not starting with '.').
  Result<std::string> logPath(const std::string& agent_id) const;

  // The resume point to send after an enrolled agent's hello (loads the copy at first use).
  // kState when the agent's copy is broken (an alarm is standing): send nothing then.
  Result<AuditResume> resumePoint(const std::string& agent_id);

  // An "audit" message's lines. Returns the ack to send. On an alarm the good prefix of the
  // batch is kept, the alarm raised, and kState returned (send no ack).
  Result<AuditAck> storeEntries(const std::string& agent_id, const std::vector<std::string>& lines,
                                MirrorSync sync = MirrorSync::kNow);
  // An "audit_checkpoint" message's line, checked with `agent_key`.
  Result<AuditAck> storeCheckpoint(const std::string& agent_id, const std::string& line,
                                   const Ed25519PublicKey& agent_key,
                                   MirrorSync sync = MirrorSync::kNow);
  // Makes every kDeferred write since the last call durable with one syncfs(2). On failure the
  // copies written since are dropped from memory (reloaded, a torn tail moved aside, at next
  // use) and none of the acks returned for them may be sent: the agents send again.
  Status syncDeferred();

  // The newest repair entry in the agent's stored copy (nullopt: none, or no copy loaded).
  std::optional<AuditRepair> lastRepair(const std::string& agent_id) const;

  // The agents whose copy this mirror holds (loaded at start or stored since), sorted.
  std::vector<std::string> agentIds() const;

  // Standing alarms (one per broken agent), including ones found on disk at load.
  std::vector<AuditAlarm> alarms() const;
  bool broken(const std::string& agent_id) const;

 private:
  struct AgentCopy {
    std::string dir;
    std::string log_path;
    std::string checkpoints_path;
    AuditChain chain;
    uint64_t checkpoint_size = 0;
    std::string last_checkpoint_line;
    std::optional<AuditAlarm> alarm;
    std::optional<AuditRepair> last_repair;
  };

  Result<AgentCopy*> load(const std::string& agent_id);
  // Opens `path`, appends, fdatasyncs and closes: no descriptor stays open per agent (a
  // controller of 10,000 agents would otherwise hold 20,000 files beside their connections).
  Status appendDurably(const std::string& path, std::string_view data);
  // appendDurably, or an unsynced append remembered for syncDeferred().
  Status append(const std::string& agent_id, const std::string& path, std::string_view data,
                MirrorSync sync);
  // Head hash and Merkle root of the first `size` stored entries (re-reads the copy; only for
  // a checkpoint that does not end at the stored head, which the agent avoids).
  Result<std::pair<std::string, std::string>> headAndRootAt(const AgentCopy& copy, uint64_t size);
  Error raise(AgentCopy& copy, const std::string& agent_id, uint64_t seq, const std::string& reason,
              const std::string& line);
  AuditAck ackOf(const AgentCopy& copy) const {
    return AuditAck{copy.chain.size(), copy.checkpoint_size};
  }

  std::string state_dir_;
  LogFileSystem& fs_;
  const Clock& clock_;
  AuditSink* controller_audit_;
  std::map<std::string, std::unique_ptr<AgentCopy>> agents_;
  std::set<std::string> unsynced_;  // agents with kDeferred writes not yet synced
};

}  // namespace shadan::controller

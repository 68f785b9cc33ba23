#pragma once

// The tamper-evident audit log: one JSON line per event, hash-chained, Merkle-checkpointed.
//
// The pieces (docs/audit.md has the full story):
//   - common/audit_record.h: the entry and checkpoint line formats;
//   - common/audit_chain.h: entry hashes, the prev_hash chain and the Merkle root;
//   - common/log_file_system.h: the file operations, behind an interface;
//   - this file: the files of a log and the writer, AuditLog.
//
// Files:
//   - <log> holds entry lines, each ended by '\n'. Rotation renames <log> to
//     <log>.<first_seq>-<last_seq>; the chain and log_seq continue in the new <log>.
//   - <log>.checkpoints holds signed checkpoint lines.
//   - A torn tail found at open (the final line incomplete or invalid, e.g. after a crash) is
//     moved to <log>.torn-<seq>, never dropped and never "repaired"; then an entry
//     event="log_torn_tail_recovered" records its byte count, SHA-256 and new file name.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

// Re-exported: users of the log have always reached the formats, the chain and the file system
// through this header.
#include "common/audit_chain.h"
#include "common/audit_record.h"
#include "common/audit_sink.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/log_file_system.h"
#include "common/result.h"

namespace shadan {

inline constexpr const char* kAuditTornTailEvent = "log_torn_tail_recovered";
inline constexpr const char* kAuditCheckpointTornTailEvent = "checkpoint_torn_tail_recovered";
inline constexpr const char* kAuditCorruptTailEvent = "log_corrupt_tail_recovered";

// ---------------------------------------------------------------------------------------------
// Files

// Rotated segments of a log: <base>.<first>-<last>, sorted by first.
struct AuditSegmentFile {
  std::string path;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
};
std::string auditSegmentPath(const std::string& base, uint64_t first_seq, uint64_t last_seq);
std::string auditCheckpointsPath(const std::string& base);

Result<std::vector<AuditSegmentFile>> listAuditSegments(LogFileSystem& fs, const std::string& base);

// ---------------------------------------------------------------------------------------------
// The log

// What to do at open when an entry before the final line is invalid (not a crash: a crash
// only tears the final line). kFail refuses to open (kState, naming the line); the owner
// decides. kMoveAsideAndRecord moves everything from the bad line on to <log>.torn-<seq> and
// records event="log_corrupt_tail_recovered", like a torn tail.
enum class CorruptionPolicy { kFail, kMoveAsideAndRecord };

struct AuditLogOptions {
  std::string path;                     // e.g. /var/lib/shadan/audit.log; its directory must exist
  std::string log_id;                   // stable name of this log, e.g. "agent:core-gw"
  uint64_t rotate_bytes = 64ull << 20;  // rotate when the file reaches this; 0: never
  uint64_t checkpoint_every_entries = 1000;                                 // 0: not by count
  std::chrono::milliseconds checkpoint_interval = std::chrono::minutes(5);  // 0: not by time
  CorruptionPolicy on_corruption = CorruptionPolicy::kFail;
  // Called with each checkpoint line once it is durable (to ship it off-host). Called with the
  // log's lock held: it must not call back into the log.
  std::function<void(const std::string& line)> on_checkpoint;
};

// What open() found and moved aside.
struct AuditRecovery {
  std::string event;     // kAuditTornTailEvent, kAuditCheckpointTornTailEvent, ...
  uint64_t log_seq = 0;  // of the entry that records the recovery
  uint64_t bytes = 0;
  std::string sha256;  // of the moved bytes
  std::string moved_to;
  std::string reason;
};

// The durable audit log. Thread-safe: append, checkpoint and close may be called from any
// thread. After a write or sync error the log refuses further appends (kIo) until reopened:
// after a failed fdatasync the file's state is unknown, and guessing would break the chain.
class AuditLog : public AuditSink {
 public:
  // Opens (or creates) the log at options.path: reads the rotated segments and the current
  // file, checks the chain, recovers a torn tail (see the file comment), and continues after
  // the last good entry. `fs` and `clock` must outlive the log. `signer` signs checkpoints;
  // nullptr writes none. REQUIRES: options.log_id not empty.
  static Result<std::unique_ptr<AuditLog>> open(AuditLogOptions options, LogFileSystem& fs,
                                                const Clock& clock, const Signer* signer);

  // Does not checkpoint: call close() for that (a destructor cannot report errors).
  ~AuditLog() override = default;

  Result<AuditReceipt> append(const AuditEvent& event) override;
  // Written but not synced; the next append(), checkpoint or close() syncs it. Rotation and
  // checkpoints wait for that synced append, so a checkpoint never covers an entry that a
  // crash could still take away.
  Result<AuditReceipt> appendBuffered(const AuditEvent& event) override;
  // Writes a signed checkpoint of the current head now, if any entry is not yet covered.
  Status checkpoint();
  // Writes a checkpoint if checkpoint_interval has passed since the last one (for a timer).
  Status maybeCheckpoint();
  // Final checkpoint; afterwards appends fail.
  Status close();

  uint64_t size() const;
  // Entries the newest checkpoint covers, and when this log last wrote one (or was opened, if
  // it has not written one since).
  uint64_t checkpointedSize() const;
  std::chrono::system_clock::time_point lastCheckpointTime() const;
  std::string headHash() const;
  std::string rootHex() const;
  std::vector<AuditRecovery> recoveries() const;

 private:
  AuditLog(AuditLogOptions options, LogFileSystem& fs, const Clock& clock, const Signer* signer);
  Status load();
  Status recoverTail(std::string_view current, uint64_t good_bytes, const std::string& event,
                     const std::string& reason);
  Status recoverCheckpointTail();
  Result<AuditReceipt> appendLocked(const AuditEvent& event, bool durable);
  // fdatasync if a buffered entry is pending; a failure makes the log unwritable.
  Status syncLocked();
  Status checkpointLocked();
  Status rotateLocked();

  AuditLogOptions options_;
  LogFileSystem& fs_;
  const Clock& clock_;
  const Signer* signer_;

  mutable std::mutex mutex_;
  AuditChain chain_;
  std::unique_ptr<WritableLogFile> file_;
  std::unique_ptr<WritableLogFile> checkpoints_;
  uint64_t file_bytes_ = 0;
  uint64_t file_first_seq_ = 0;
  uint64_t checkpointed_size_ = 0;
  bool unsynced_ = false;  // an appendBuffered() entry is written but not yet synced
  std::chrono::system_clock::time_point last_checkpoint_;
  std::optional<Error> failed_;  // sticky after a write/sync failure or close()
  std::vector<AuditRecovery> recoveries_;
};

}  // namespace shadan

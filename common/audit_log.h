#pragma once

// The tamper-evident audit log: one JSON line per event, hash-chained, Merkle-checkpointed.
//
// Format (docs/audit.md has the full story):
//   - A line is the JSON object of an AuditEvent plus log_id, log_seq (0-based, contiguous), ts
//     (RFC 3339 UTC, ms) and prev_hash, serialised once; the stored bytes are the hashed bytes.
//   - entry_hash = SHA-256(0x00 || line) without the '\n' (the RFC 6962 leaf hash); prev_hash
//     is the previous entry's entry_hash, 64 zeros for log_seq 0.
//   - Rotation renames <log> to <log>.<first_seq>-<last_seq>; the chain and log_seq continue in
//     the new <log>.
//   - <log>.checkpoints holds signed checkpoints, one JSON line each: the body
//     {"head_hash","keyid","log_id","root","size","ts"} with ,"sig":"<base64>"} spliced in at
//     its end; sig is Ed25519 over dssePae(kAuditCheckpointPayloadType, body bytes). root is the
//     RFC 6962 Merkle tree hash over the leaf hashes of entries [0, size).
//   - A torn tail found at open (the final line incomplete or invalid, e.g. after a crash) is
//     moved to <log>.torn-<seq>, never dropped and never "repaired"; then an entry
//     event="log_torn_tail_recovered" records its byte count, SHA-256 and new file name.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/audit_sink.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/result.h"

namespace shadan {

inline constexpr const char* kAuditCheckpointPayloadType =
    "application/vnd.shadan.checkpoint.v1+json";
inline constexpr const char* kAuditTornTailEvent = "log_torn_tail_recovered";
inline constexpr const char* kAuditCheckpointTornTailEvent = "checkpoint_torn_tail_recovered";
inline constexpr const char* kAuditCorruptTailEvent = "log_corrupt_tail_recovered";
// A line longer than this is refused on append and reported by the verifier.
inline constexpr size_t kAuditMaxLineBytes = 1 << 20;
inline constexpr std::string_view kAuditZeroHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

using Hash256 = std::array<uint8_t, 32>;

// ---------------------------------------------------------------------------------------------
// Entries

// One stored entry: the event plus what the log adds.
struct AuditRecord {
  std::string log_id;
  uint64_t log_seq = 0;
  std::string ts;
  std::string prev_hash;
  AuditEvent event;
};

// The JSON of a record (deterministic key order). detail must be an object without floats.
Result<nlohmann::json> auditRecordToJson(const AuditRecord& record);
// The stored line of a record (no trailing '\n').
Result<std::string> formatAuditLine(const AuditRecord& record);
// Strict parse of one stored line: strict JSON (no duplicate keys, no floats), the required
// fields log_id, log_seq, ts, event, prev_hash, every known field with its type, no unknown
// field. kParse with a message naming the field otherwise.
Result<AuditRecord> parseAuditLine(std::string_view line);

// SHA-256(0x00 || line): the entry hash, raw and hex.
Hash256 auditLeafHash(std::string_view line);
std::string auditEntryHashHex(std::string_view line);
// SHA-256(0x01 || left || right): an RFC 6962 interior node.
Hash256 merkleNodeHash(const Hash256& left, const Hash256& right);

// The RFC 6962 Merkle tree hash of a growing list of leaves, kept as the compact range (one
// subtree hash per set bit of the size): append and root are O(log n).
class MerkleCompactRange {
 public:
  void append(const Hash256& leaf);
  uint64_t size() const { return size_; }
  // MTH of all leaves so far; SHA-256("") for the empty tree.
  Hash256 root() const;

 private:
  struct Subtree {
    Hash256 hash;
    unsigned height;
  };
  std::vector<Subtree> stack_;  // left to right, strictly decreasing heights
  uint64_t size_ = 0;
};

// Checks entries one at a time against everything before them. Shared by AuditLog (when it
// opens a log) and the verifier.
class AuditChain {
 public:
  enum class Failure { kNone, kMalformed, kWrongLogId, kSeqMismatch, kPrevHashMismatch };
  struct Check {
    Failure failure = Failure::kNone;
    std::string message;                // empty when kNone
    std::optional<AuditRecord> record;  // parsed, when the line parsed
  };

  // If `line` is a valid next entry, accepts it (advancing size, head and root).
  Check accept(std::string_view line);

  uint64_t size() const { return range_.size(); }
  const std::string& headHash() const { return head_hash_; }
  Hash256 root() const { return range_.root(); }
  const std::optional<std::string>& logId() const { return log_id_; }

 private:
  MerkleCompactRange range_;
  std::string head_hash_{kAuditZeroHash};
  std::optional<std::string> log_id_;
};

// ---------------------------------------------------------------------------------------------
// Checkpoints

struct AuditCheckpoint {
  std::string log_id;
  uint64_t size = 0;      // entries covered: log_seq [0, size)
  std::string head_hash;  // entry_hash of log_seq size-1
  std::string root;       // hex MTH of the first `size` leaves
  std::string ts;
  std::string key_id;
  std::string sig;   // base64
  std::string body;  // the exact signed body bytes
};

// Builds and signs a checkpoint line (no trailing '\n').
Result<std::string> makeCheckpointLine(const std::string& log_id, uint64_t size,
                                       const std::string& head_hash, const std::string& root_hex,
                                       const std::string& ts, const Signer& signer);
// Splits a checkpoint line into body and signature, then parses both strictly. Does not check
// the signature (the caller may not hold the key).
Result<AuditCheckpoint> parseCheckpointLine(std::string_view line);
bool verifyCheckpointSignature(const AuditCheckpoint& checkpoint, const Ed25519PublicKey& key);

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

// The file operations the audit log needs, behind an interface (leveldb's Env) so tests can
// observe ordering (write, then fdatasync, then return) and inject failures.
class WritableLogFile {
 public:
  virtual ~WritableLogFile() = default;
  // Writes all of `data` at the end of the file, or fails.
  virtual Status append(std::string_view data) = 0;
  // fdatasync: the appended data is on stable storage when this returns ok.
  virtual Status sync() = 0;
};

class LogFileSystem {
 public:
  virtual ~LogFileSystem() = default;
  // Whole file; kNotFound if it does not exist.
  virtual Result<std::string> readFile(const std::string& path) = 0;
  virtual Result<bool> exists(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`.
  virtual Result<std::vector<std::string>> listDirectory(const std::string& dir) = 0;
  // Opens `path` for appending, creating it (mode 0640) if missing.
  virtual Result<std::unique_ptr<WritableLogFile>> openForAppend(const std::string& path) = 0;
  // Creates `path` with `contents`, fsynced, failing with kState if it exists.
  virtual Status createFile(const std::string& path, std::string_view contents) = 0;
  // Truncates `path` to `size` bytes and fsyncs it.
  virtual Status truncate(const std::string& path, uint64_t size) = 0;
  // Renames, failing with kState if `to` exists, then fsyncs the directory.
  virtual Status rename(const std::string& from, const std::string& to) = 0;
};

// The real file system (POSIX calls, fdatasync, fsync of directories).
class PosixLogFileSystem : public LogFileSystem {
 public:
  Result<std::string> readFile(const std::string& path) override;
  Result<bool> exists(const std::string& path) override;
  Result<std::vector<std::string>> listDirectory(const std::string& dir) override;
  Result<std::unique_ptr<WritableLogFile>> openForAppend(const std::string& path) override;
  Status createFile(const std::string& path, std::string_view contents) override;
  Status truncate(const std::string& path, uint64_t size) override;
  Status rename(const std::string& from, const std::string& to) override;
};

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

#pragma once

// Shipping an audit log to the controller (docs/audit.md "Shipping", docs/protocol.md): the
// wire messages, and the agent's side of it without sockets -- a cursor that reads entries
// from log_seq N across rotated segments, a reader of new checkpoint lines, and the shipper
// state machine (resume, one message in flight, ack).
//
// Messages (one JSON object per WebSocket text frame on the agent channel):
//   controller -> agent  {"type":"audit_resume","next_seq":N,"prev_hash":"<hex>",
//                         "checkpoint_size":C}
//                        {"type":"audit_ack","next_seq":N,"checkpoint_size":C}
//   agent -> controller  {"type":"audit","entries":["<line>",...]}
//                        {"type":"audit_checkpoint","line":"<checkpoint line>"}
// next_seq: entries the controller holds durably (log_seq 0..N-1); prev_hash: entry_hash of
// N-1 (64 zeros when N is 0); checkpoint_size: `size` of the last checkpoint it holds (0: none).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/audit_log.h"
#include "common/result.h"

namespace shadan {

inline constexpr const char* kAuditResumeType = "audit_resume";
inline constexpr const char* kAuditAckType = "audit_ack";
inline constexpr const char* kAuditEntriesType = "audit";
inline constexpr const char* kAuditCheckpointType = "audit_checkpoint";

// ---------------------------------------------------------------------------------------------
// Wire messages. The parsers check the shape exactly (type, members, types); callers have
// already run parseStrictJson on the frame.

struct AuditResume {
  uint64_t next_seq = 0;
  std::string prev_hash{kAuditZeroHash};
  uint64_t checkpoint_size = 0;
};

struct AuditAck {
  uint64_t next_seq = 0;
  uint64_t checkpoint_size = 0;
};

nlohmann::json auditResumeMessage(const AuditResume& resume);
Result<AuditResume> parseAuditResume(const nlohmann::json& message);
nlohmann::json auditAckMessage(const AuditAck& ack);
Result<AuditAck> parseAuditAck(const nlohmann::json& message);
nlohmann::json auditEntriesMessage(const std::vector<std::string>& lines);
// The lines of an "audit" message: at least one, each a non-empty string without '\n'.
Result<std::vector<std::string>> parseAuditEntries(const nlohmann::json& message);
nlohmann::json auditCheckpointMessage(const std::string& line);
Result<std::string> parseAuditCheckpointMessage(const nlohmann::json& message);

// ---------------------------------------------------------------------------------------------
// Reading a live log

// Reads part of a file (pread), so that following a growing log costs what is new, not the
// whole file.
class AuditFileReader {
 public:
  virtual ~AuditFileReader() = default;
  // Up to `max_bytes` from `offset`; fewer (or none) at the end; kNotFound if missing.
  virtual Result<std::string> readAt(const std::string& path, uint64_t offset,
                                     size_t max_bytes) = 0;
};

class PosixAuditFileReader : public AuditFileReader {
 public:
  Result<std::string> readAt(const std::string& path, uint64_t offset, size_t max_bytes) override;
};

// Follows the entries of the log whose current file is `base`, written by an AuditLog (possibly
// in the same process, concurrently): rotated segments <base>.<first>-<last> in order, then
// <base>. Only complete lines (ending in '\n') are returned, so a line being written or a torn
// tail is never read. Each line's log_seq is checked; a mismatch (the file was rotated under
// the cursor) repositions once from the directory listing. Not thread-safe.
class AuditLogCursor {
 public:
  AuditLogCursor(LogFileSystem& fs, AuditFileReader& reader, std::string base);

  // Up to `max_entries` contiguous lines (without '\n') starting at log_seq `from`, all from one
  // file, their bytes totalling at most `max_bytes` (never fewer than one line when one is
  // there: kInvalidArgument if that line alone is larger). Empty when `from` is the log's
  // head. kNotFound when `from` is beyond the head or before the first stored entry.
  Result<std::vector<std::string>> read(uint64_t from, size_t max_entries, size_t max_bytes);
  // Moves back over the last `count` lines of the previous read() (they will be read again).
  // REQUIRES: count <= the size of what that read() returned.
  void unread(const std::vector<std::string>& lines, size_t count);
  // entry_hash of log_seq `seq`; kNotFound when the log has no such entry.
  Result<std::string> entryHash(uint64_t seq);

 private:
  Status seek(uint64_t from);

  LogFileSystem& fs_;
  AuditFileReader& reader_;
  std::string base_;
  bool positioned_ = false;
  std::string path_;         // the file being read
  bool in_segment_ = false;  // path_ is a rotated segment
  uint64_t file_first_ = 0;  // log_seq of its first line
  uint64_t file_last_ = 0;   // of its last line, when in_segment_
  uint64_t offset_ = 0;      // byte offset of log_seq seq_ in path_
  uint64_t seq_ = 0;
};

// New complete lines of <base>.checkpoints since the last call (a torn final line waits).
// Lines that do not parse as checkpoints are skipped and logged (they cannot be verified by
// anyone; the local verifier reports them).
class AuditCheckpointReader {
 public:
  AuditCheckpointReader(AuditFileReader& reader, std::string base);
  struct Item {
    uint64_t size = 0;
    std::string line;
  };
  Result<std::vector<Item>> readNew();
  void restart() { offset_ = 0; }

 private:
  AuditFileReader& reader_;
  std::string path_;
  uint64_t offset_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The agent's shipper

struct AuditShipperOptions {
  size_t max_batch_entries = 512;
  // Sum of the lines' bytes in one "audit" message; JSON escaping of a line adds little (its
  // quotes), and 96 KiB keeps even a doubled size well under the 256 KiB frame limit.
  size_t max_batch_bytes = 96 * 1024;
};

// One shipping session per connection: reset() on connect, then onResume() with the
// controller's resume point, then next()/onAck() alternately -- at most one message in flight.
// Entries are sent in batches that never run past a checkpoint not yet acknowledged, and a
// checkpoint is sent once the entries it covers are acknowledged, so the controller can check
// each checkpoint against the head and Merkle root of exactly the entries it holds.
// Not thread-safe (the agent's io thread).
class AuditShipper {
 public:
  AuditShipper(LogFileSystem& fs, AuditFileReader& reader, std::string base,
               AuditShipperOptions options = {});

  // A new connection: forget the session; nothing is sent until the next onResume().
  void reset();
  // Checks the controller's resume point against this log: prev_hash must be the entry_hash
  // of next_seq-1 here (zeros for 0). On a mismatch the shipper halts (kState naming both
  // sides) and sends nothing more on this connection. Other errors (reading) are returned
  // without halting; the session stays unresumed.
  Status onResume(const AuditResume& resume);
  // The controller's ack of the message in flight. kState when none is in flight or the ack
  // does not match it (the session then waits for the next resume).
  Status onAck(const AuditAck& ack);
  // The next message to send, or nullopt (not resumed, a message in flight, halted, nothing
  // new). `head` is the log's size now (AuditLog::size()): when everything up to it is acked
  // only the checkpoints file is looked at (one pread), so an idle poll is cheap.
  Result<std::optional<nlohmann::json>> next(uint64_t head);

  bool resumed() const { return resumed_; }
  bool halted() const { return halted_; }
  const std::string& haltReason() const { return halt_reason_; }
  uint64_t ackedSeq() const { return acked_seq_; }
  uint64_t ackedCheckpointSize() const { return acked_checkpoint_; }

 private:
  enum class InFlight { kNone, kEntries, kCheckpoint };

  AuditLogCursor cursor_;
  AuditCheckpointReader checkpoints_;
  AuditShipperOptions options_;
  std::deque<AuditCheckpointReader::Item> pending_checkpoints_;  // size > acked_checkpoint_
  bool resumed_ = false;
  bool halted_ = false;
  std::string halt_reason_;
  uint64_t acked_seq_ = 0;
  uint64_t acked_checkpoint_ = 0;
  InFlight in_flight_ = InFlight::kNone;
  uint64_t expect_seq_ = 0;
  uint64_t expect_checkpoint_ = 0;
};

}  // namespace shadan

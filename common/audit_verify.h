#pragma once

// Offline verification of an audit log (what `shadanctl audit verify` runs; the controller can
// run it over the entries and checkpoints agents ship to it).
//
// Checks, in order, and stops at the first fault (everything after a break is unanchored):
//   - every line of every segment (rotated <log>.<a>-<b> files in order, then <log>) is strict
//     JSON with the required fields; log_id is constant; log_seq is contiguous from 0;
//     prev_hash links to the previous entry_hash; segment names match their contents;
//   - every checkpoint line parses, is signed by one of `keys` (if any key is given), names
//     this log, and its head_hash and Merkle root equal those recomputed from the entries;
//   - the log is not shorter than any checkpoint (truncation).
// The first fault names the file, the line and the log_seq of the first bad entry, and says
// which case it looks like (changed, removed, inserted, reordered, truncated).
// Warnings (not faults): an unrecovered torn final line in <log> (a crash during a write),
// recovered tails (log_torn_tail_recovered entries, with a check of the moved-aside bytes),
// checkpoints whose signatures were not checked (no key given), entries after the last
// checkpoint (not yet protected against truncation).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/audit_log.h"
#include "common/ed25519.h"
#include "common/result.h"

namespace shadan {

struct AuditFinding {
  std::string file;                 // path of the file, "" if not about one file
  uint64_t line = 0;                // 1-based line in `file`; 0 if not about one line
  std::optional<uint64_t> log_seq;  // the entry concerned, when known
  std::string message;
};

struct AuditRecoveryNote {
  std::string event;
  uint64_t log_seq = 0;  // of the recovery entry
  uint64_t bytes = 0;
  std::string sha256;
  std::string moved_to;
  std::string reason;
  bool aside_file_matches = false;  // the moved-aside file exists and hashes to sha256
};

struct AuditVerifyReport {
  bool valid = false;
  std::optional<AuditFinding> error;  // the first fault; set exactly when !valid
  std::vector<AuditFinding> warnings;
  std::vector<std::string> files;  // log files read, in order
  std::optional<std::string> log_id;
  uint64_t entries = 0;  // entries that verified (all of them when valid)
  std::string head_hash;
  std::string root;
  uint64_t checkpoints = 0;
  uint64_t checkpoints_matched = 0;  // head and root checked against the entries
  uint64_t signatures_verified = 0;  // checkpoint signatures checked with a given key
  bool signatures_checked = false;   // false when no key was given
  uint64_t last_checkpoint_size = 0;
  std::optional<AuditFinding> torn_tail;  // an unrecovered torn final line
  std::vector<AuditRecoveryNote> recoveries;
};

// Verifies the log whose current file is `base` (e.g. /var/lib/shadan/audit.log; it may be
// missing when only rotated segments exist). kNotFound if neither it nor any segment exists;
// every other problem is reported in the report, not as an error.
Result<AuditVerifyReport> verifyAuditLog(LogFileSystem& fs, const std::string& base,
                                         const std::vector<PublicKeyInfo>& keys);

nlohmann::json auditVerifyReportToJson(const AuditVerifyReport& report);

// Parses RFC 3339 (e.g. "2026-11-26T10:01:00Z", "2026-11-26T10:01:00.123+09:00") to milliseconds
// since the Unix epoch.
Result<int64_t> parseRfc3339Millis(std::string_view text);

}  // namespace shadan

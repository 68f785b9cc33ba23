#pragma once

// The hash chain and Merkle tree over an audit log's entry lines (common/audit_record.h).
//
//   - entry_hash = SHA-256(0x00 || line) without the '\n' (the RFC 6962 leaf hash); an entry's
//     prev_hash is the entry_hash of the one before it, kAuditZeroHash for log_seq 0.
//   - A checkpoint's root is the RFC 6962 Merkle tree hash over the leaf hashes of entries
//     [0, size); its head_hash is the entry_hash of log_seq size-1.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/audit_record.h"

namespace shadan {

using Hash256 = std::array<uint8_t, 32>;

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

}  // namespace shadan

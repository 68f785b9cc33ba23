#pragma once

// The two line formats of an audit log (common/audit_log.h describes the files they live in).
//
//   - An entry line is the JSON object of an AuditEvent plus log_id, log_seq (0-based,
//     contiguous), ts (RFC 3339 UTC, ms) and prev_hash, serialised once with a deterministic key
//     order; the stored bytes are the hashed bytes (common/audit_chain.h).
//   - A checkpoint line is the body {"head_hash","keyid","log_id","root","size","ts"} with
//     ,"sig":"<base64>"} spliced in at its end; sig is Ed25519 over
//     dssePae(kAuditCheckpointPayloadType, body bytes).

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/audit_sink.h"
#include "common/ed25519.h"
#include "common/result.h"

namespace shadan {

inline constexpr const char* kAuditCheckpointPayloadType =
    "application/vnd.shadan.checkpoint.v1+json";
// A line longer than this is refused on append and reported by the verifier.
inline constexpr size_t kAuditMaxLineBytes = 1 << 20;
// The prev_hash of log_seq 0.
inline constexpr std::string_view kAuditZeroHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

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

}  // namespace shadan

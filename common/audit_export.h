#pragma once

// Export of audit entries to the host's log system: journald (native protocol, structured
// fields, a fixed MESSAGE_ID per event type) or syslog (RFC 5424 structured data over /dev/log).
//
// Export is a copy for operators and SIEMs, never the record: the hash-chained AuditLog is. So
// export is best effort and never blocks or fails the audited action. A send that fails (no
// daemon, a full queue: the sockets are non-blocking) is counted in stats() and logged (logger
// "audit", rate-limited), never returned. docs/audit.md "Export" describes the fields.
//
// No libsystemd: one AF_UNIX datagram per entry, to a path that tests replace with a socket
// of their own.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/audit_sink.h"
#include "common/clock.h"
#include "common/result.h"

namespace shadan {

inline constexpr const char* kJournalSocketPath = "/run/systemd/journal/socket";
inline constexpr const char* kSyslogSocketPath = "/dev/log";
// The SD-ID of the RFC 5424 structured data. 32473 is a PLACEHOLDER, not ours: it is the
// example private enterprise number used in RFC 5424 itself (reserved for documentation by
// RFC 5612). Replace it once Shadan has an IANA PEN; receivers match on the SD-ID, so that is a
// format change.
inline constexpr const char* kAuditSyslogSdId = "shadan@32473";
// MESSAGE_ID for an event type not in the table (auditMessageId).
inline constexpr const char* kAuditUnknownEventMessageId = "fc2dc5cdad5fd9aa4a8bc3b1dd64e449";

// syslog facilities Shadan may log under (RFC 5424 numbering).
enum class SyslogFacility : int { kAuthpriv = 10, kLocal0 = 16 };

// syslog/journald severities used for audit entries.
inline constexpr int kSeverityError = 3;
inline constexpr int kSeverityWarning = 4;
inline constexpr int kSeverityInfo = 6;

struct AuditExportOptions {
  std::string identifier = "shadan-agent";  // SYSLOG_IDENTIFIER / APP-NAME
  std::string log_id;                       // SHADAN_LOG_ID / log_id; empty: omitted
  std::string journal_socket = kJournalSocketPath;
  std::string syslog_socket = kSyslogSocketPath;
  SyslogFacility facility = SyslogFacility::kAuthpriv;
  std::string hostname;          // RFC 5424 HOSTNAME; empty: gethostname()
  const Clock* clock = nullptr;  // RFC 5424 TIMESTAMP; nullptr: the system clock. Must outlive.
};

struct AuditExportStats {
  uint64_t exported = 0;
  uint64_t failed = 0;
};

class AuditExporter {
 public:
  virtual ~AuditExporter() = default;

  // Sends one entry. `line` is the exact stored line when the caller has it (it is then
  // exported too, so a reader can recompute entry_hash), empty otherwise. Never blocks, never
  // fails: errors are counted and logged. Thread-safe.
  virtual void exportEntry(const AuditEvent& event, const AuditReceipt& receipt,
                           std::string_view line) = 0;

  virtual AuditExportStats stats() const = 0;
  // "journald" | "syslog".
  virtual std::string_view mode() const = 0;
};

using AuditExporterPtr = std::unique_ptr<AuditExporter>;

// ---------------------------------------------------------------------------------------------
// Pure parts (no sockets), shared by the exporters and tested directly.

// One exported fact: `name` is lower-case ("log_seq", "segment"); journald prefixes it with
// SHADAN_ and upper-cases it, syslog uses it as the SD-PARAM name. A name may repeat
// (one "approver" per approver).
struct AuditExportField {
  std::string name;
  std::string value;
};

// The facts of an entry in a fixed order, only those present: log_id (when not empty),
// log_seq, entry_hash, event, outcome, reason, action, segment, profile, ruleset_before,
// ruleset_after, requested_by, approver*, keyid*, controller, why_reason, ticket, agent_id,
// host, version, command_id, correlation_id, seq, authz_sha256, drill ("true"/"false"),
// detail (compact JSON).
std::vector<AuditExportField> auditExportFields(const AuditEvent& event,
                                                const AuditReceipt& receipt,
                                                std::string_view log_id);

// The fixed 128-bit MESSAGE_ID (32 lower-case hex) of an event type;
// kAuditUnknownEventMessageId for a type not in the table.
std::string_view auditMessageId(std::string_view event);

// kSeverityError for a failure (event "failed" or outcome "failed"/"error"), kSeverityWarning
// for a rejection (event or outcome "rejected"), a repair ("repaired") or a recovery of the log
// itself (events ending in "_recovered"), kSeverityInfo otherwise.
int auditSeverity(const AuditEvent& event);

// A one-line human summary: "audit applied outcome=ok action=isolate segment=lgwan ...".
// Control characters of the values are replaced by spaces so it stays one line.
std::string auditSummary(const AuditEvent& event, const AuditReceipt& receipt);

// Appends one field in the journal's native format: "KEY=value\n", or, when the value holds a
// '\n', "KEY\n" + 64-bit little-endian length + value + "\n".
void appendJournalField(std::string& out, std::string_view key, std::string_view value);

// The whole journal datagram of an entry.
std::string formatJournalEntry(const AuditEvent& event, const AuditReceipt& receipt,
                               std::string_view line, const AuditExportOptions& options);

// An SD-PARAM value with '"', '\\' and ']' escaped by a backslash (RFC 5424 section 6.3.3).
std::string escapeSdParamValue(std::string_view value);

// PRI = facility * 8 + severity.
int syslogPri(SyslogFacility facility, int severity);

// The RFC 5424 message: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG".
// `timestamp` is RFC 3339; header fields are reduced to printable US-ASCII and their length
// limits (MSGID: the event type, at most 32), "-" when empty.
std::string formatSyslogMessage(const AuditEvent& event, const AuditReceipt& receipt,
                                const AuditExportOptions& options, std::string_view timestamp,
                                std::string_view hostname, int64_t pid);

// ---------------------------------------------------------------------------------------------
// Exporters

class UnixDatagramSocket;  // audit_export.cc: an owned, non-blocking AF_UNIX datagram socket

// Native journal protocol to options.journal_socket. An entry larger than one datagram
// (EMSGSIZE) is written to a sealed memfd whose descriptor is sent instead (SCM_RIGHTS), as
// the protocol prescribes; nothing is truncated.
class JournaldExporter : public AuditExporter {
 public:
  explicit JournaldExporter(AuditExportOptions options);
  ~JournaldExporter() override;

  void exportEntry(const AuditEvent& event, const AuditReceipt& receipt,
                   std::string_view line) override;
  AuditExportStats stats() const override;
  std::string_view mode() const override { return "journald"; }

 private:
  Status send(const std::string& datagram);

  AuditExportOptions options_;
  std::unique_ptr<UnixDatagramSocket> socket_;
  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> failed_{0};
};

// RFC 5424 to options.syslog_socket, facility options.facility. A message too large for one
// datagram is counted as failed (syslog has no large-message path; entries are small).
class SyslogExporter : public AuditExporter {
 public:
  explicit SyslogExporter(AuditExportOptions options);
  ~SyslogExporter() override;

  void exportEntry(const AuditEvent& event, const AuditReceipt& receipt,
                   std::string_view line) override;
  AuditExportStats stats() const override;
  std::string_view mode() const override { return "syslog"; }

 private:
  AuditExportOptions options_;
  SystemClock system_clock_;
  const Clock& clock_;
  std::string hostname_;
  std::unique_ptr<UnixDatagramSocket> socket_;
  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> failed_{0};
};

// mode: "off" (nullptr: no export), "journald", "syslog", or "auto" (journald if
// options.journal_socket is a socket, else syslog if options.syslog_socket is, else off).
// kInvalidArgument naming the allowed modes otherwise. Off is the default everywhere a mode is
// not configured, tests included.
Result<AuditExporterPtr> makeAuditExporter(std::string_view mode, AuditExportOptions options = {});

// An AuditSink that appends to `inner`, then exports the entry if the append succeeded. The
// inner result (receipt or error) is returned unchanged: export never changes the outcome.
// AuditSink::append does not hand out the stored line, so entries are exported from the event
// (line empty). Thread-safe if `inner` is; two concurrent appends may be exported in either
// order (SHADAN_LOG_SEQ orders them).
class ExportingAuditSink : public AuditSink {
 public:
  // `inner` must outlive this sink. REQUIRES: exporter != nullptr.
  ExportingAuditSink(AuditSink& inner, AuditExporterPtr exporter);

  Result<AuditReceipt> append(const AuditEvent& event) override;
  Result<AuditReceipt> appendBuffered(const AuditEvent& event) override;
  const AuditExporter& exporter() const { return *exporter_; }

 private:
  AuditSink& inner_;
  AuditExporterPtr exporter_;
};

}  // namespace shadan

#include "common/audit_export.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/logging.h"

namespace shadan {

// ---------------------------------------------------------------------------------------------
// The socket

// An unbound AF_UNIX SOCK_DGRAM socket that sends to a path per datagram. Non-blocking, so a
// stalled or full log daemon makes a send fail (EAGAIN) instead of stalling the audited action.
// Methods return 0 or an errno value. Thread-safe: sendto/sendmsg on one socket are atomic per
// datagram.
class UnixDatagramSocket {
 public:
  UnixDatagramSocket() : fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) {}
  ~UnixDatagramSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  UnixDatagramSocket(const UnixDatagramSocket&) = delete;
  UnixDatagramSocket& operator=(const UnixDatagramSocket&) = delete;

  int sendTo(const std::string& path, std::string_view data) const {
    return sendMessage(path, data, -1);
  }
  // Sends `fd` (SCM_RIGHTS) in a datagram without payload.
  int sendFdTo(const std::string& path, int fd) const { return sendMessage(path, {}, fd); }

 private:
  int sendMessage(const std::string& path, std::string_view data, int pass_fd) const {
    if (fd_ < 0) return EBADF;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) return ENAMETOOLONG;
    std::memcpy(addr.sun_path, path.data(), path.size());

    iovec iov{const_cast<char*>(data.data()), data.size()};
    msghdr msg{};
    msg.msg_name = &addr;
    msg.msg_namelen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    if (!data.empty()) {
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
    }
    union {
      cmsghdr align;
      char buffer[CMSG_SPACE(sizeof(int))];
    } control{};
    if (pass_fd >= 0) {
      msg.msg_control = control.buffer;
      msg.msg_controllen = sizeof control.buffer;
      cmsghdr* header = CMSG_FIRSTHDR(&msg);
      header->cmsg_level = SOL_SOCKET;
      header->cmsg_type = SCM_RIGHTS;
      header->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(header), &pass_fd, sizeof pass_fd);
    }
    if (::sendmsg(fd_, &msg, MSG_NOSIGNAL) >= 0) return 0;
    return errno;
  }

  const int fd_;
};

namespace {

// ---------------------------------------------------------------------------------------------
// Event types

struct MessageIdEntry {
  std::string_view event;
  std::string_view id;
};

// Generated once with `openssl rand -hex 16` and fixed forever: journal queries and SIEM rules
// match on them. A new event type gets a new random id here (never reuse or derive one).
constexpr std::array<MessageIdEntry, 8> kMessageIds{{
    {"accepted", "5a3be9cd5411d52bc3a520d617434fd4"},
    {"rejected", "576c9b46bfaf77579c48c9e21d18023f"},
    {"applied", "562ce8ae40eb7940ede39446b800cfeb"},
    {"failed", "6a5a25160702d0ee026963f435869b1b"},
    {"repaired", "30f73e81d4fc0f3487b7200f3f343b52"},
    {"log_torn_tail_recovered", "db8d463bf402bd3f922c8d7c8373da14"},
    {"checkpoint_torn_tail_recovered", "1839cc52c041d5f9d3d0bdecb923b7be"},
    {"log_corrupt_tail_recovered", "a87449aedeea78f8366f63a915772765"},
}};

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Reduces an RFC 5424 header field to 1..max printable US-ASCII characters; "-" if empty.
std::string headerField(std::string_view value, size_t max) {
  std::string out;
  for (char c : value.substr(0, std::min(value.size(), max))) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 33 && u <= 126) ? c : '_';
  }
  return out.empty() ? "-" : out;
}

std::string oneLine(std::string_view value) {
  std::string out(value);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';
  }
  return out;
}

std::string journalKey(std::string_view name) {
  std::string key = "SHADAN_";
  for (char c : name) key += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  return key;
}

std::string errnoText(int error) { return std::strerror(error); }

// Logs the 1st, 2nd, 4th, 8th, ... failure: a dead log daemon must not flood stderr.
void reportFailure(std::string_view mode, uint64_t failures, const std::string& what) {
  if ((failures & (failures - 1)) != 0) return;
  logger("audit")->warn("audit export failed mode={} error=\"{}\" failures={}", mode, what,
                        failures);
}

bool isSocket(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// A sealed memfd holding `data`, or -1 with errno set.
int sealedMemfd(std::string_view data) {
  const int fd = ::memfd_create("shadan-audit", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = n < 0 ? errno : EIO;
      ::close(fd);
      errno = saved;
      return -1;
    }
    written += static_cast<size_t>(n);
  }
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Pure parts

std::vector<AuditExportField> auditExportFields(const AuditEvent& event,
                                                const AuditReceipt& receipt,
                                                std::string_view log_id) {
  std::vector<AuditExportField> fields;
  auto add = [&fields](std::string name, const std::optional<std::string>& value) {
    if (value) fields.push_back({std::move(name), *value});
  };
  if (!log_id.empty()) fields.push_back({"log_id", std::string(log_id)});
  fields.push_back({"log_seq", std::to_string(receipt.log_seq)});
  if (!receipt.entry_hash.empty()) fields.push_back({"entry_hash", receipt.entry_hash});
  fields.push_back({"event", event.event});
  add("outcome", event.outcome);
  add("reason", event.reason);
  if (event.what) {
    add("action", event.what->action);
    add("segment", event.what->segment);
    add("profile", event.what->profile);
    add("ruleset_before", event.what->ruleset_before);
    add("ruleset_after", event.what->ruleset_after);
  }
  if (event.who) {
    add("requested_by", event.who->requested_by);
    for (const std::string& approver : event.who->approvers.value_or(std::vector<std::string>{}))
      fields.push_back({"approver", approver});
    for (const std::string& keyid : event.who->keyids.value_or(std::vector<std::string>{}))
      fields.push_back({"keyid", keyid});
    add("controller", event.who->controller);
  }
  if (event.why) {
    add("why_reason", event.why->reason);
    add("ticket", event.why->ticket);
  }
  if (event.where) {
    add("agent_id", event.where->agent_id);
    add("host", event.where->host);
    add("version", event.where->version);
  }
  add("command_id", event.command_id);
  add("correlation_id", event.correlation_id);
  if (event.seq) fields.push_back({"seq", std::to_string(*event.seq)});
  add("authz_sha256", event.authz_sha256);
  if (event.drill) fields.push_back({"drill", *event.drill ? "true" : "false"});
  if (event.detail) {
    // Invalid UTF-8 is replaced, as AuditLog does when it stores the entry: never throw here.
    fields.push_back(
        {"detail", event.detail->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
  }
  return fields;
}

std::string_view auditMessageId(std::string_view event) {
  for (const MessageIdEntry& entry : kMessageIds) {
    if (entry.event == event) return entry.id;
  }
  return kAuditUnknownEventMessageId;
}

int auditSeverity(const AuditEvent& event) {
  const std::string outcome = event.outcome.value_or("");
  if (event.event == "failed" || outcome == "failed" || outcome == "error") return kSeverityError;
  if (event.event == "rejected" || outcome == "rejected" || event.event == "repaired" ||
      endsWith(event.event, "_recovered")) {
    return kSeverityWarning;
  }
  return kSeverityInfo;
}

std::string auditSummary(const AuditEvent& event, const AuditReceipt& receipt) {
  std::string out = "audit " + oneLine(event.event);
  auto add = [&out](std::string_view name, const std::optional<std::string>& value) {
    if (!value) return;
    const std::string v = oneLine(*value);
    const bool quote = v.empty() || v.find_first_of(" \"") != std::string::npos;
    out += " " + std::string(name) + "=" + (quote ? "\"" + v + "\"" : v);
  };
  add("outcome", event.outcome);
  if (event.what) {
    add("action", event.what->action);
    add("segment", event.what->segment);
    add("profile", event.what->profile);
  }
  if (event.where) add("agent_id", event.where->agent_id);
  add("command_id", event.command_id);
  if (event.drill && *event.drill) out += " drill=true";
  add("reason", event.reason);
  out += " log_seq=" + std::to_string(receipt.log_seq);
  return out;
}

void appendJournalField(std::string& out, std::string_view key, std::string_view value) {
  out += key;
  if (value.find('\n') == std::string_view::npos) {
    out += '=';
    out += value;
    out += '\n';
    return;
  }
  out += '\n';
  uint64_t size = value.size();
  for (int i = 0; i < 8; ++i) {
    out += static_cast<char>(size & 0xff);
    size >>= 8;
  }
  out += value;
  out += '\n';
}

std::string formatJournalEntry(const AuditEvent& event, const AuditReceipt& receipt,
                               std::string_view line, const AuditExportOptions& options) {
  std::string out;
  appendJournalField(out, "MESSAGE", auditSummary(event, receipt));
  appendJournalField(out, "MESSAGE_ID", auditMessageId(event.event));
  appendJournalField(out, "PRIORITY", std::to_string(auditSeverity(event)));
  appendJournalField(out, "SYSLOG_IDENTIFIER", options.identifier);
  for (const AuditExportField& field : auditExportFields(event, receipt, options.log_id))
    appendJournalField(out, journalKey(field.name), field.value);
  if (!line.empty()) appendJournalField(out, "SHADAN_ENTRY", line);
  return out;
}

std::string escapeSdParamValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  return out;
}

int syslogPri(SyslogFacility facility, int severity) {
  return static_cast<int>(facility) * 8 + severity;
}

std::string formatSyslogMessage(const AuditEvent& event, const AuditReceipt& receipt,
                                const AuditExportOptions& options, std::string_view timestamp,
                                std::string_view hostname, int64_t pid) {
  std::string out = "<" + std::to_string(syslogPri(options.facility, auditSeverity(event))) + ">1 ";
  out += headerField(timestamp, 64) + " ";
  out += headerField(hostname, 255) + " ";
  out += headerField(options.identifier, 48) + " ";
  out += headerField(std::to_string(pid), 128) + " ";
  out += headerField(event.event, 32) + " ";
  out += "[";
  out += kAuditSyslogSdId;
  for (const AuditExportField& field : auditExportFields(event, receipt, options.log_id))
    out += " " + field.name + "=\"" + escapeSdParamValue(field.value) + "\"";
  out += "] ";
  out += auditSummary(event, receipt);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Exporters

JournaldExporter::JournaldExporter(AuditExportOptions options)
    : options_(std::move(options)), socket_(std::make_unique<UnixDatagramSocket>()) {}

JournaldExporter::~JournaldExporter() = default;

Status JournaldExporter::send(const std::string& datagram) {
  const int error = socket_->sendTo(options_.journal_socket, datagram);
  if (error == 0) return okStatus();
  // Too large for one datagram: the journal protocol's answer is a sealed memfd, passed as
  // the only content of an otherwise empty datagram.
  if (error != EMSGSIZE && error != ENOBUFS) {
    return makeError(ErrorCode::kIo,
                     "send to " + options_.journal_socket + ": " + errnoText(error));
  }
  const int memfd = sealedMemfd(datagram);
  if (memfd < 0) return makeError(ErrorCode::kIo, "memfd: " + errnoText(errno));
  const int fd_error = socket_->sendFdTo(options_.journal_socket, memfd);
  ::close(memfd);  // the receiver holds its own reference once sendmsg returned
  if (fd_error != 0) {
    return makeError(ErrorCode::kIo,
                     "send memfd to " + options_.journal_socket + ": " + errnoText(fd_error));
  }
  return okStatus();
}

void JournaldExporter::exportEntry(const AuditEvent& event, const AuditReceipt& receipt,
                                   std::string_view line) {
  const Status sent = send(formatJournalEntry(event, receipt, line, options_));
  if (sent.ok()) {
    exported_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  reportFailure(mode(), failed_.fetch_add(1, std::memory_order_relaxed) + 1, sent.error().message);
}

AuditExportStats JournaldExporter::stats() const {
  return AuditExportStats{exported_.load(std::memory_order_relaxed),
                          failed_.load(std::memory_order_relaxed)};
}

namespace {

std::string systemHostname() {
  std::array<char, 256> buffer{};
  if (::gethostname(buffer.data(), buffer.size() - 1) != 0) return "";
  return buffer.data();
}

}  // namespace

SyslogExporter::SyslogExporter(AuditExportOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : system_clock_),
      hostname_(options_.hostname.empty() ? systemHostname() : options_.hostname),
      socket_(std::make_unique<UnixDatagramSocket>()) {}

SyslogExporter::~SyslogExporter() = default;

void SyslogExporter::exportEntry(const AuditEvent& event, const AuditReceipt& receipt,
                                 std::string_view /*line*/) {
  const std::string message =
      formatSyslogMessage(event, receipt, options_, formatRfc3339(toUnixMillis(clock_.now())),
                          hostname_, static_cast<int64_t>(::getpid()));
  const int error = socket_->sendTo(options_.syslog_socket, message);
  if (error == 0) {
    exported_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  reportFailure(mode(), failed_.fetch_add(1, std::memory_order_relaxed) + 1,
                "send to " + options_.syslog_socket + ": " + errnoText(error));
}

AuditExportStats SyslogExporter::stats() const {
  return AuditExportStats{exported_.load(std::memory_order_relaxed),
                          failed_.load(std::memory_order_relaxed)};
}

Result<AuditExporterPtr> makeAuditExporter(std::string_view mode, AuditExportOptions options) {
  if (mode == "off") return AuditExporterPtr{};
  if (mode == "journald") return AuditExporterPtr(new JournaldExporter(std::move(options)));
  if (mode == "syslog") return AuditExporterPtr(new SyslogExporter(std::move(options)));
  if (mode == "auto") {
    if (isSocket(options.journal_socket)) return makeAuditExporter("journald", std::move(options));
    if (isSocket(options.syslog_socket)) return makeAuditExporter("syslog", std::move(options));
    return AuditExporterPtr{};
  }
  return makeError(ErrorCode::kInvalidArgument,
                   "audit export mode \"" + std::string(mode) +
                       "\": expected one of off, journald, syslog, auto");
}

ExportingAuditSink::ExportingAuditSink(AuditSink& inner, AuditExporterPtr exporter)
    : inner_(inner), exporter_(std::move(exporter)) {
  if (exporter_ == nullptr) {
    std::fprintf(stderr, "shadan: broken invariant: ExportingAuditSink without an exporter\n");
    std::abort();
  }
}

Result<AuditReceipt> ExportingAuditSink::append(const AuditEvent& event) {
  Result<AuditReceipt> receipt = inner_.append(event);
  if (receipt.ok()) exporter_->exportEntry(event, *receipt, {});
  return receipt;
}

Result<AuditReceipt> ExportingAuditSink::appendBuffered(const AuditEvent& event) {
  Result<AuditReceipt> receipt = inner_.appendBuffered(event);
  if (receipt.ok()) exporter_->exportEntry(event, *receipt, {});
  return receipt;
}

}  // namespace shadan

#include "common/audit_export.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "tests/common/audit_test_support.h"

namespace shadan {
namespace {

using testing::FakeClock;
using testing::sampleEvent;
using testing::TempDir;

// A bound AF_UNIX datagram socket standing in for journald or /dev/log.
class FakeLogDaemon {
 public:
  explicit FakeLogDaemon(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
    // Large entries must fit into the receive queue.
    const int size = 4 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
        << std::strerror(errno);
  }
  ~FakeLogDaemon() {
    if (fd_ >= 0) ::close(fd_);
  }

  struct Datagram {
    std::string data;
    int passed_fd = -1;  // owned by the test; closed by it
  };

  // The next datagram, waiting at most 2 s; nullopt if none arrived.
  std::optional<Datagram> receive() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 2000) != 1) return std::nullopt;
    std::string buffer(8 << 20, '\0');
    iovec iov{buffer.data(), buffer.size()};
    union {
      cmsghdr align;
      char bytes[CMSG_SPACE(sizeof(int))];
    } control{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;
    const ssize_t n = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return std::nullopt;
    EXPECT_EQ(msg.msg_flags & MSG_TRUNC, 0);
    Datagram out;
    out.data = buffer.substr(0, static_cast<size_t>(n));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        std::memcpy(&out.passed_fd, CMSG_DATA(c), sizeof(int));
    }
    return out;
  }

  bool idle() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 50) == 0;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

using Fields = std::multimap<std::string, std::string>;

// Parses the native journal format strictly; ADD_FAILURE on anything malformed.
Fields parseJournal(const std::string& data) {
  Fields fields;
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) {
      ADD_FAILURE() << "unterminated field at " << pos;
      break;
    }
    const size_t eq = data.find('=', pos);
    if (eq != std::string::npos && eq < nl) {
      fields.emplace(data.substr(pos, eq - pos), data.substr(eq + 1, nl - eq - 1));
      pos = nl + 1;
      continue;
    }
    const std::string key = data.substr(pos, nl - pos);
    if (nl + 9 > data.size()) {
      ADD_FAILURE() << "short binary field " << key;
      break;
    }
    uint64_t size = 0;
    for (int i = 7; i >= 0; --i) size = (size << 8) | static_cast<unsigned char>(data[nl + 1 + i]);
    const size_t start = nl + 9;
    if (start + size + 1 > data.size() || data[start + size] != '\n') {
      ADD_FAILURE() << "bad binary field " << key;
      break;
    }
    fields.emplace(key, data.substr(start, size));
    pos = start + size + 1;
  }
  return fields;
}

std::string only(const Fields& fields, const std::string& key) {
  EXPECT_EQ(fields.count(key), 1u) << key;
  auto it = fields.find(key);
  return it == fields.end() ? "<absent>" : it->second;
}

struct SyslogMessage {
  std::vector<std::string> header;  // PRI+VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID
  std::string sd_id;
  Fields params;  // unescaped values
  std::string msg;
};

// Parses an RFC 5424 message with exactly one SD-ELEMENT; ADD_FAILURE on malformed input.
SyslogMessage parseSyslog(const std::string& data) {
  SyslogMessage out;
  size_t pos = 0;
  for (int i = 0; i < 6; ++i) {
    const size_t sp = data.find(' ', pos);
    if (sp == std::string::npos) {
      ADD_FAILURE() << "short header: " << data;
      return out;
    }
    out.header.push_back(data.substr(pos, sp - pos));
    pos = sp + 1;
  }
  if (data[pos] != '[') {
    ADD_FAILURE() << "no structured data: " << data.substr(pos);
    return out;
  }
  ++pos;
  size_t end = data.find_first_of(" ]", pos);
  out.sd_id = data.substr(pos, end - pos);
  pos = end;
  while (pos < data.size() && data[pos] == ' ') {
    ++pos;
    const size_t eq = data.find('=', pos);
    const std::string name = data.substr(pos, eq - pos);
    if (eq == std::string::npos || data[eq + 1] != '"') {
      ADD_FAILURE() << "bad param at " << pos;
      return out;
    }
    pos = eq + 2;
    std::string value;
    while (pos < data.size() && data[pos] != '"') {
      if (data[pos] == '\\') {
        ++pos;
        EXPECT_TRUE(data[pos] == '"' || data[pos] == '\\' || data[pos] == ']')
            << "escape of '" << data[pos] << "'";
      } else {
        EXPECT_NE(data[pos], ']') << "unescaped ] in " << name;
      }
      value += data[pos++];
    }
    out.params.emplace(name, value);
    ++pos;  // closing quote
  }
  if (pos + 1 >= data.size() || data[pos] != ']' || data[pos + 1] != ' ') {
    ADD_FAILURE() << "bad end of structured data at " << pos;
    return out;
  }
  out.msg = data.substr(pos + 2);
  return out;
}

AuditEvent fullEvent() {
  AuditEvent event;
  event.event = "applied";
  event.outcome = "ok";
  event.reason = "rule set verified";
  event.who = AuditWho{"op:sato", std::vector<std::string>{"op:sato", "op:kim"},
                       std::vector<std::string>{"k1", "k2"}, "ctl-1"};
  event.what = AuditWhat{"isolate", "lgwan", "full", "aa11", "bb22"};
  event.why = AuditWhy{"ransomware on lgwan", "INC-42"};
  event.where = AuditWhere{"core-gw", "gw1.example", "0.1.0"};
  event.command_id = "cmd-7";
  event.correlation_id = "corr-9";
  event.seq = 1007;
  event.authz_sha256 = "cc33";
  event.drill = true;
  event.detail = nlohmann::json{{"pid", 4242}};
  return event;
}

AuditReceipt receiptFor(uint64_t seq) { return AuditReceipt{seq, std::string(64, 'e')}; }

class AuditExportTest : public ::testing::Test {
 protected:
  AuditExportOptions options() const {
    AuditExportOptions o;
    o.identifier = "shadan-agent";
    o.log_id = "agent:core-gw";
    o.journal_socket = dir_.file("journal");
    o.syslog_socket = dir_.file("devlog");
    o.hostname = "gw1.example";
    o.clock = &clock_;
    return o;
  }

  TempDir dir_;
  FakeClock clock_;
};

// ---------------------------------------------------------------------------------------------
// journald

TEST_F(AuditExportTest, JournaldSendsEveryPresentField) {
  FakeLogDaemon journal(dir_.file("journal"));
  JournaldExporter exporter(options());
  exporter.exportEntry(fullEvent(), receiptFor(90211), "{\"event\":\"applied\"}");
  auto datagram = journal.receive();
  ASSERT_TRUE(datagram.has_value());
  EXPECT_EQ(datagram->passed_fd, -1);
  const Fields f = parseJournal(datagram->data);

  EXPECT_EQ(only(f, "MESSAGE"),
            "audit applied outcome=ok action=isolate segment=lgwan profile=full agent_id=core-gw "
            "command_id=cmd-7 drill=true reason=\"rule set verified\" log_seq=90211");
  EXPECT_EQ(only(f, "MESSAGE_ID"), "562ce8ae40eb7940ede39446b800cfeb");
  EXPECT_EQ(only(f, "PRIORITY"), "6");
  EXPECT_EQ(only(f, "SYSLOG_IDENTIFIER"), "shadan-agent");
  const std::map<std::string, std::string> expected = {
      {"SHADAN_LOG_ID", "agent:core-gw"},
      {"SHADAN_LOG_SEQ", "90211"},
      {"SHADAN_ENTRY_HASH", std::string(64, 'e')},
      {"SHADAN_EVENT", "applied"},
      {"SHADAN_OUTCOME", "ok"},
      {"SHADAN_REASON", "rule set verified"},
      {"SHADAN_ACTION", "isolate"},
      {"SHADAN_SEGMENT", "lgwan"},
      {"SHADAN_PROFILE", "full"},
      {"SHADAN_RULESET_BEFORE", "aa11"},
      {"SHADAN_RULESET_AFTER", "bb22"},
      {"SHADAN_REQUESTED_BY", "op:sato"},
      {"SHADAN_CONTROLLER", "ctl-1"},
      {"SHADAN_WHY_REASON", "ransomware on lgwan"},
      {"SHADAN_TICKET", "INC-42"},
      {"SHADAN_AGENT_ID", "core-gw"},
      {"SHADAN_HOST", "gw1.example"},
      {"SHADAN_VERSION", "0.1.0"},
      {"SHADAN_COMMAND_ID", "cmd-7"},
      {"SHADAN_CORRELATION_ID", "corr-9"},
      {"SHADAN_SEQ", "1007"},
      {"SHADAN_AUTHZ_SHA256", "cc33"},
      {"SHADAN_DRILL", "true"},
      {"SHADAN_DETAIL", "{\"pid\":4242}"},
      {"SHADAN_ENTRY", "{\"event\":\"applied\"}"},
  };
  for (const auto& [key, value] : expected) EXPECT_EQ(only(f, key), value) << key;
  // Repeated fields keep every value, in order.
  auto approvers = f.equal_range("SHADAN_APPROVER");
  std::vector<std::string> got;
  for (auto it = approvers.first; it != approvers.second; ++it) got.push_back(it->second);
  EXPECT_EQ(got, (std::vector<std::string>{"op:sato", "op:kim"}));
  EXPECT_EQ(f.count("SHADAN_KEYID"), 2u);
  // Nothing else: 4 journal fields + the SHADAN_ ones above + 2 approvers + 2 keyids.
  EXPECT_EQ(f.size(), 4u + expected.size() + 4u);
  EXPECT_EQ(exporter.stats().exported, 1u);
  EXPECT_EQ(exporter.stats().failed, 0u);
}

TEST_F(AuditExportTest, JournaldOmitsAbsentFields) {
  FakeLogDaemon journal(dir_.file("journal"));
  AuditExportOptions o = options();
  o.log_id.clear();
  o.identifier = "shadan-controller";
  JournaldExporter exporter(o);
  AuditEvent event;
  event.event = "accepted";
  exporter.exportEntry(event, receiptFor(3), {});
  auto datagram = journal.receive();
  ASSERT_TRUE(datagram.has_value());
  const Fields f = parseJournal(datagram->data);
  EXPECT_EQ(only(f, "SYSLOG_IDENTIFIER"), "shadan-controller");
  std::set<std::string> keys;
  for (const auto& [key, value] : f) keys.insert(key);
  EXPECT_EQ(keys, (std::set<std::string>{"MESSAGE", "MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER",
                                         "SHADAN_LOG_SEQ", "SHADAN_ENTRY_HASH", "SHADAN_EVENT"}));
}

TEST_F(AuditExportTest, JournaldEncodesMultiLineValuesInBinaryForm) {
  FakeLogDaemon journal(dir_.file("journal"));
  JournaldExporter exporter(options());
  AuditEvent event = sampleEvent(0);
  const std::string reason = "line one\nline two=still the value\n";
  event.reason = reason;
  exporter.exportEntry(event, receiptFor(1), {});
  auto datagram = journal.receive();
  ASSERT_TRUE(datagram.has_value());
  // The exact bytes: KEY '\n' <u64 LE length> value '\n'.
  std::string binary = "SHADAN_REASON\n";
  binary += static_cast<char>(reason.size());
  binary += std::string(7, '\0');
  binary += reason + "\n";
  EXPECT_NE(datagram->data.find(binary), std::string::npos);
  const Fields f = parseJournal(datagram->data);
  EXPECT_EQ(only(f, "SHADAN_REASON"), reason);
  // MESSAGE stays one text-form line.
  EXPECT_NE(datagram->data.find("MESSAGE=audit accepted"), std::string::npos);
  EXPECT_EQ(only(f, "MESSAGE").find('\n'), std::string::npos);
  EXPECT_NE(only(f, "MESSAGE").find("reason=\"line one line two=still the value \""),
            std::string::npos);
}

TEST_F(AuditExportTest, AppendJournalFieldLengthIsLittleEndian64) {
  std::string out;
  const std::string value = std::string(0x0102, 'x') + "\n";
  appendJournalField(out, "K", value);
  ASSERT_EQ(out.size(), 2u + 8u + value.size() + 1u);
  EXPECT_EQ(out.substr(0, 2), "K\n");
  EXPECT_EQ(static_cast<unsigned char>(out[2]), 0x03);  // 0x0103 bytes
  EXPECT_EQ(static_cast<unsigned char>(out[3]), 0x01);
  EXPECT_EQ(out.substr(4, 6), std::string(6, '\0'));
  EXPECT_EQ(out.back(), '\n');
}

TEST_F(AuditExportTest, JournaldPassesOversizedEntriesAsSealedMemfd) {
  FakeLogDaemon journal(dir_.file("journal"));
  JournaldExporter exporter(options());
  AuditEvent event = sampleEvent(1);
  // Larger than any default AF_UNIX send buffer (net.core.wmem_max is 208 KiB by default).
  event.detail = nlohmann::json{{"blob", std::string(3 << 20, 'z')}};
  exporter.exportEntry(event, receiptFor(5), {});
  auto datagram = journal.receive();
  ASSERT_TRUE(datagram.has_value());
  ASSERT_GE(datagram->passed_fd, 0)
      << "expected a memfd, got " << datagram->data.size() << " inline bytes";
  EXPECT_TRUE(datagram->data.empty());
  const int fd = datagram->passed_fd;
  const int seals = ::fcntl(fd, F_GET_SEALS);
  EXPECT_TRUE(seals & F_SEAL_WRITE);
  EXPECT_TRUE(seals & F_SEAL_SHRINK);
  std::string content;
  char buffer[65536];
  ssize_t n;
  off_t offset = 0;
  while ((n = ::pread(fd, buffer, sizeof buffer, offset)) > 0) {
    content.append(buffer, static_cast<size_t>(n));
    offset += n;
  }
  ::close(fd);
  const Fields f = parseJournal(content);
  EXPECT_EQ(only(f, "SHADAN_EVENT"), "applied");
  EXPECT_EQ(only(f, "SHADAN_DETAIL").size(), (3u << 20) + std::string(R"({"blob":""})").size());
  EXPECT_EQ(exporter.stats().exported, 1u);
}

TEST_F(AuditExportTest, MessageIdIsFixedPerEventTypeAndDistinctAcrossTypes) {
  const std::vector<std::string> types = {"accepted",
                                          "rejected",
                                          "applied",
                                          "failed",
                                          "repaired",
                                          "log_torn_tail_recovered",
                                          "checkpoint_torn_tail_recovered",
                                          "log_corrupt_tail_recovered"};
  std::set<std::string> ids;
  for (const std::string& type : types) {
    const std::string id(auditMessageId(type));
    EXPECT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    EXPECT_NE(id, kAuditUnknownEventMessageId) << type;
    EXPECT_EQ(auditMessageId(type), id);  // stable
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), types.size());
  EXPECT_EQ(auditMessageId("something_new"), kAuditUnknownEventMessageId);
  EXPECT_EQ(auditMessageId("rejected"), "576c9b46bfaf77579c48c9e21d18023f");

  // And on the wire: two entries of one type share it, another type differs.
  FakeLogDaemon journal(dir_.file("journal"));
  JournaldExporter exporter(options());
  exporter.exportEntry(sampleEvent(0), receiptFor(0), {});  // accepted
  exporter.exportEntry(sampleEvent(2), receiptFor(2), {});  // accepted
  exporter.exportEntry(sampleEvent(1), receiptFor(1), {});  // applied
  std::vector<std::string> wire;
  for (int i = 0; i < 3; ++i) {
    auto datagram = journal.receive();
    ASSERT_TRUE(datagram.has_value());
    wire.push_back(only(parseJournal(datagram->data), "MESSAGE_ID"));
  }
  EXPECT_EQ(wire[0], wire[1]);
  EXPECT_NE(wire[0], wire[2]);
}

TEST_F(AuditExportTest, SeverityFollowsOutcome) {
  struct Case {
    std::string event;
    std::optional<std::string> outcome;
    int severity;
  };
  const std::vector<Case> cases = {
      {"accepted", "ok", kSeverityInfo},
      {"applied", std::nullopt, kSeverityInfo},
      {"rejected", "rejected", kSeverityWarning},
      {"accepted", "rejected", kSeverityWarning},
      {"repaired", "ok", kSeverityWarning},
      {"log_torn_tail_recovered", std::nullopt, kSeverityWarning},
      {"failed", "failed", kSeverityError},
      {"applied", "failed", kSeverityError},
      {"applied", "error", kSeverityError},
  };
  for (const Case& c : cases) {
    AuditEvent event;
    event.event = c.event;
    event.outcome = c.outcome;
    EXPECT_EQ(auditSeverity(event), c.severity) << c.event << "/" << c.outcome.value_or("-");
  }
}

// ---------------------------------------------------------------------------------------------
// syslog

TEST_F(AuditExportTest, SyslogSendsRfc5424WithStructuredData) {
  FakeLogDaemon devlog(dir_.file("devlog"));
  SyslogExporter exporter(options());
  AuditEvent event = fullEvent();
  event.event = "rejected";
  event.outcome = "rejected";
  exporter.exportEntry(event, receiptFor(12), "ignored line");
  auto datagram = devlog.receive();
  ASSERT_TRUE(datagram.has_value());
  const SyslogMessage m = parseSyslog(datagram->data);
  ASSERT_EQ(m.header.size(), 6u);
  EXPECT_EQ(m.header[0], "<84>1");  // authpriv (10) * 8 + warning (4)
  EXPECT_EQ(m.header[1], "2026-11-18T11:06:40.000Z");
  EXPECT_EQ(m.header[2], "gw1.example");
  EXPECT_EQ(m.header[3], "shadan-agent");
  EXPECT_EQ(m.header[4], std::to_string(::getpid()));
  EXPECT_EQ(m.header[5], "rejected");
  EXPECT_EQ(m.sd_id, "shadan@32473");
  EXPECT_EQ(only(m.params, "log_id"), "agent:core-gw");
  EXPECT_EQ(only(m.params, "log_seq"), "12");
  EXPECT_EQ(only(m.params, "entry_hash"), std::string(64, 'e'));
  EXPECT_EQ(only(m.params, "segment"), "lgwan");
  EXPECT_EQ(only(m.params, "command_id"), "cmd-7");
  EXPECT_EQ(only(m.params, "detail"), "{\"pid\":4242}");
  EXPECT_EQ(m.params.count("approver"), 2u);
  EXPECT_EQ(m.params.count("entry"), 0u);  // the stored line goes to journald only
  EXPECT_EQ(m.msg.rfind("audit rejected outcome=rejected", 0), 0u) << m.msg;
  EXPECT_EQ(exporter.stats().exported, 1u);
}

TEST_F(AuditExportTest, SyslogEscapesQuoteBackslashAndBracket) {
  EXPECT_EQ(escapeSdParamValue(R"(a"b\c]d)"), R"(a\"b\\c\]d)");
  EXPECT_EQ(escapeSdParamValue("plain [ok] = fine"), R"(plain [ok\] = fine)");

  FakeLogDaemon devlog(dir_.file("devlog"));
  SyslogExporter exporter(options());
  AuditEvent event = sampleEvent(0);
  const std::string nasty = R"(he said "stop" \ then ] closed)";
  event.reason = nasty;
  event.what->segment = "]";
  exporter.exportEntry(event, receiptFor(0), {});
  auto datagram = devlog.receive();
  ASSERT_TRUE(datagram.has_value());
  EXPECT_NE(datagram->data.find(R"(reason="he said \"stop\" \\ then \] closed")"),
            std::string::npos)
      << datagram->data;
  const SyslogMessage m = parseSyslog(datagram->data);
  EXPECT_EQ(only(m.params, "reason"), nasty);
  EXPECT_EQ(only(m.params, "segment"), "]");
  EXPECT_EQ(only(m.params, "command_id"), "cmd-0");  // parsing continued past the escapes
}

TEST_F(AuditExportTest, SyslogPriCombinesFacilityAndSeverity) {
  EXPECT_EQ(syslogPri(SyslogFacility::kAuthpriv, kSeverityInfo), 86);
  EXPECT_EQ(syslogPri(SyslogFacility::kAuthpriv, kSeverityError), 83);
  EXPECT_EQ(syslogPri(SyslogFacility::kLocal0, kSeverityInfo), 134);
  EXPECT_EQ(syslogPri(SyslogFacility::kLocal0, kSeverityWarning), 132);

  AuditExportOptions o = options();
  o.facility = SyslogFacility::kLocal0;
  AuditEvent failed = sampleEvent(1);
  failed.event = "failed";
  failed.outcome = "failed";
  const std::string message = formatSyslogMessage(failed, receiptFor(0), o, "T", "h", 7);
  EXPECT_EQ(message.rfind("<131>1 T h shadan-agent 7 failed [shadan@32473 ", 0), 0u) << message;
}

TEST_F(AuditExportTest, SyslogHeaderFieldsArePrintableAsciiWithinLimits) {
  AuditExportOptions o = options();
  o.identifier = "";
  AuditEvent event = sampleEvent(0);
  event.event = "an event type with spaces that is far longer than thirty-two";
  const SyslogMessage m =
      parseSyslog(formatSyslogMessage(event, receiptFor(0), o, "T", "host\tname", 1));
  ASSERT_EQ(m.header.size(), 6u);
  EXPECT_EQ(m.header[2], "host_name");
  EXPECT_EQ(m.header[3], "-");
  EXPECT_EQ(m.header[5], "an_event_type_with_spaces_that_i");
  EXPECT_EQ(m.header[5].size(), 32u);
  // The structured data keeps the exact event type.
  EXPECT_EQ(only(m.params, "event"), event.event);
}

// ---------------------------------------------------------------------------------------------
// The sink and the factory

class FakeSink : public AuditSink {
 public:
  Result<AuditReceipt> append(const AuditEvent& event) override {
    events.push_back(event);
    if (fail) return makeError(ErrorCode::kIo, "fdatasync: injected EIO");
    return AuditReceipt{next_seq++, std::string(64, 'a')};
  }
  std::vector<AuditEvent> events;
  bool fail = false;
  uint64_t next_seq = 40;
};

TEST_F(AuditExportTest, SinkExportsAfterASuccessfulAppend) {
  FakeLogDaemon journal(dir_.file("journal"));
  FakeSink inner;
  ExportingAuditSink sink(inner, std::make_unique<JournaldExporter>(options()));
  auto receipt = sink.append(sampleEvent(1));
  ASSERT_TRUE(receipt.ok()) << receipt.error().message;
  EXPECT_EQ(receipt->log_seq, 40u);
  ASSERT_EQ(inner.events.size(), 1u);
  auto datagram = journal.receive();
  ASSERT_TRUE(datagram.has_value());
  const Fields f = parseJournal(datagram->data);
  EXPECT_EQ(only(f, "SHADAN_LOG_SEQ"), "40");
  EXPECT_EQ(only(f, "SHADAN_ENTRY_HASH"), receipt->entry_hash);
  EXPECT_EQ(only(f, "SHADAN_COMMAND_ID"), "cmd-1");
  EXPECT_EQ(sink.exporter().stats().exported, 1u);
}

TEST_F(AuditExportTest, SinkDoesNotExportAFailedAppend) {
  FakeLogDaemon journal(dir_.file("journal"));
  FakeSink inner;
  inner.fail = true;
  ExportingAuditSink sink(inner, std::make_unique<JournaldExporter>(options()));
  auto receipt = sink.append(sampleEvent(1));
  ASSERT_FALSE(receipt.ok());
  EXPECT_EQ(receipt.error().code, ErrorCode::kIo);
  EXPECT_EQ(receipt.error().message, "fdatasync: injected EIO");
  EXPECT_TRUE(journal.idle());
  EXPECT_EQ(sink.exporter().stats().exported, 0u);
  EXPECT_EQ(sink.exporter().stats().failed, 0u);
}

TEST_F(AuditExportTest, MissingSocketDoesNotFailTheAppend) {
  FakeSink inner;  // no daemon bound at either path
  for (const char* mode : {"journald", "syslog"}) {
    auto exporter = makeAuditExporter(mode, options());
    ASSERT_TRUE(exporter.ok()) << exporter.error().message;
    ExportingAuditSink sink(inner, std::move(*exporter));
    for (int i = 0; i < 3; ++i) {
      auto receipt = sink.append(sampleEvent(i));
      ASSERT_TRUE(receipt.ok()) << mode;
      EXPECT_EQ(receipt->entry_hash, std::string(64, 'a'));
    }
    EXPECT_EQ(sink.exporter().stats().failed, 3u) << mode;
    EXPECT_EQ(sink.exporter().stats().exported, 0u) << mode;
  }
  EXPECT_EQ(inner.events.size(), 6u);
  EXPECT_EQ(inner.next_seq, 46u);
}

TEST_F(AuditExportTest, ModeParsing) {
  auto bogus = makeAuditExporter("bogus", options());
  ASSERT_FALSE(bogus.ok());
  EXPECT_EQ(bogus.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bogus.error().message.find("\"bogus\""), std::string::npos);
  EXPECT_NE(bogus.error().message.find("off, journald, syslog, auto"), std::string::npos)
      << bogus.error().message;
  EXPECT_FALSE(makeAuditExporter("", options()).ok());
  EXPECT_FALSE(makeAuditExporter("Journald", options()).ok());

  auto off = makeAuditExporter("off", options());
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off, nullptr);
  auto journald = makeAuditExporter("journald", options());
  ASSERT_TRUE(journald.ok());
  EXPECT_EQ((*journald)->mode(), "journald");
  auto syslog = makeAuditExporter("syslog", options());
  ASSERT_TRUE(syslog.ok());
  EXPECT_EQ((*syslog)->mode(), "syslog");
}

TEST_F(AuditExportTest, AutoPrefersJournaldThenSyslogThenOff) {
  // Neither socket: off. A regular file where the journal socket should be does not count.
  testing::writeText(dir_.file("journal"), "not a socket");
  auto none = makeAuditExporter("auto", options());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  ::unlink(dir_.file("journal").c_str());

  {
    FakeLogDaemon devlog(dir_.file("devlog"));
    auto syslog = makeAuditExporter("auto", options());
    ASSERT_TRUE(syslog.ok());
    ASSERT_NE(*syslog, nullptr);
    EXPECT_EQ((*syslog)->mode(), "syslog");

    FakeLogDaemon journal(dir_.file("journal"));
    auto journald = makeAuditExporter("auto", options());
    ASSERT_TRUE(journald.ok());
    ASSERT_NE(*journald, nullptr);
    EXPECT_EQ((*journald)->mode(), "journald");
  }
}

}  // namespace
}  // namespace shadan

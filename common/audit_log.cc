#include "common/audit_log.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "common/logging.h"
#include "common/sha256.h"
#include "common/strict_json.h"
#include "common/unique_fd.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

std::string errnoText(int error) { return std::strerror(error); }

std::string parentDirectory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

std::string baseName(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

Status syncDirectory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) {
    return makeError(ErrorCode::kIo, "cannot fsync directory " + dir + ": " + errnoText(errno));
  }
  return okStatus();
}

Status writeAll(int fd, std::string_view data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return makeError(ErrorCode::kIo, "cannot write " + path + ": " + errnoText(errno));
    done += static_cast<size_t>(n);
  }
  return okStatus();
}

class PosixWritableLogFile : public WritableLogFile {
 public:
  PosixWritableLogFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Status append(std::string_view data) override { return writeAll(fd_.get(), data, path_); }
  Status sync() override {
    if (::fdatasync(fd_.get()) != 0) {
      return makeError(ErrorCode::kIo, "fdatasync " + path_ + ": " + errnoText(errno));
    }
    return okStatus();
  }

 private:
  UniqueFd fd_;
  std::string path_;
};

Hash256 sha256Raw(std::string_view a, std::string_view b = {}, std::string_view c = {}) {
  EVP_MD_CTX* raw = EVP_MD_CTX_new();
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(raw, &EVP_MD_CTX_free);
  Hash256 out{};
  unsigned int length = 0;
  // Failures here mean allocation failure or a broken OpenSSL: an invariant, not input.
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), a.data(), a.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), b.data(), b.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), c.data(), c.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &length) != 1 || length != out.size()) {
    std::abort();
  }
  return out;
}

std::string_view asChars(const Hash256& hash) {
  return {reinterpret_cast<const char*>(hash.data()), hash.size()};
}

bool isLowerHex64(std::string_view text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Floats cannot be stored: the strict parser of the verifier rejects them.
bool containsFloat(const Json& value) {
  if (value.is_number_float()) return true;
  if (value.is_structured()) {
    for (const Json& child : value) {
      if (containsFloat(child)) return true;
    }
  }
  return false;
}

// Audit messages name a field the way they always have: `field "who.keyids" must be ...`.
StrictObjectReader auditReader(const Json& object) {
  return StrictObjectReader(object, "entry", "", StrictJsonWording::kAuditFields);
}

// Moves a successful read into `out`.
template <typename T>
Status assign(Result<T> read, T& out) {
  if (!read.ok()) return read.error();
  out = std::move(*read);
  return okStatus();
}

template <typename T>
void put(Json& out, const char* key, const std::optional<T>& value) {
  if (value) out[key] = *value;
}

bool isRfc3339UtcShape(std::string_view ts) {
  // YYYY-MM-DDTHH:MM:SS[.fff]Z; the log writes milliseconds, readers accept any fraction.
  if (ts.size() < 20 || ts.back() != 'Z') return false;
  static constexpr std::string_view kPattern = "dddd-dd-ddTdd:dd:dd";
  for (size_t i = 0; i < kPattern.size(); ++i) {
    const bool digit = ts[i] >= '0' && ts[i] <= '9';
    if (kPattern[i] == 'd' ? !digit : ts[i] != kPattern[i]) return false;
  }
  const std::string_view rest = ts.substr(19, ts.size() - 20);
  if (rest.empty()) return true;
  return rest.size() >= 2 && rest[0] == '.' &&
         rest.substr(1).find_first_not_of("0123456789") == std::string_view::npos;
}

std::string hashHex(const Hash256& hash) { return hexEncode(hash); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Entries

Result<Json> auditRecordToJson(const AuditRecord& record) {
  const AuditEvent& e = record.event;
  if (e.event.empty()) return makeError(ErrorCode::kInvalidArgument, "audit event has no name");
  Json out = Json::object();
  out["log_id"] = record.log_id;
  out["log_seq"] = record.log_seq;
  out["ts"] = record.ts;
  out["prev_hash"] = record.prev_hash;
  out["event"] = e.event;
  put(out, "outcome", e.outcome);
  put(out, "reason", e.reason);
  if (e.who) {
    Json who = Json::object();
    put(who, "requested_by", e.who->requested_by);
    put(who, "approvers", e.who->approvers);
    put(who, "keyids", e.who->keyids);
    put(who, "controller", e.who->controller);
    out["who"] = std::move(who);
  }
  if (e.what) {
    Json what = Json::object();
    put(what, "action", e.what->action);
    put(what, "segment", e.what->segment);
    put(what, "profile", e.what->profile);
    put(what, "ruleset_before", e.what->ruleset_before);
    put(what, "ruleset_after", e.what->ruleset_after);
    out["what"] = std::move(what);
  }
  if (e.why) {
    Json why = Json::object();
    put(why, "reason", e.why->reason);
    put(why, "ticket", e.why->ticket);
    out["why"] = std::move(why);
  }
  if (e.where) {
    Json where = Json::object();
    put(where, "agent_id", e.where->agent_id);
    put(where, "host", e.where->host);
    put(where, "version", e.where->version);
    out["where"] = std::move(where);
  }
  put(out, "command_id", e.command_id);
  put(out, "correlation_id", e.correlation_id);
  put(out, "seq", e.seq);
  put(out, "authz_sha256", e.authz_sha256);
  put(out, "drill", e.drill);
  if (e.detail) {
    if (!e.detail->is_object()) {
      return makeError(ErrorCode::kInvalidArgument, "audit detail must be a JSON object");
    }
    if (containsFloat(*e.detail)) {
      return makeError(ErrorCode::kInvalidArgument,
                       "audit detail must not contain floating-point numbers");
    }
    out["detail"] = *e.detail;
  }
  return out;
}

Result<std::string> formatAuditLine(const AuditRecord& record) {
  auto json = auditRecordToJson(record);
  if (!json.ok()) return json.error();
  // Invalid UTF-8 (e.g. from a rejected order's text) is replaced, not refused: an audit entry
  // must never be lost to the bytes of what it records. The replacement is what gets hashed.
  return json->dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<AuditRecord> parseAuditLine(std::string_view line) {
  auto parsed = parseStrictJson(line, "entry", kAuditMaxLineBytes);
  if (!parsed.ok()) return parsed.error();
  const Json& doc = *parsed;
  if (!doc.is_object()) return makeError(ErrorCode::kParse, "entry is not a JSON object");
  const StrictObjectReader top = auditReader(doc);
  SHADAN_RETURN_IF_ERROR(
      top.checkMembers({"log_id", "log_seq", "ts", "prev_hash", "event"},
                       {"outcome", "reason", "who", "what", "why", "where", "command_id",
                        "correlation_id", "seq", "authz_sha256", "drill", "detail"}));
  AuditRecord record;
  SHADAN_RETURN_IF_ERROR(assign(top.string("log_id"), record.log_id));
  SHADAN_RETURN_IF_ERROR(assign(top.unsignedInteger("log_seq"), record.log_seq));
  SHADAN_RETURN_IF_ERROR(assign(top.string("ts"), record.ts));
  if (!isRfc3339UtcShape(record.ts)) {
    return makeError(ErrorCode::kParse, "field \"ts\" is not an RFC 3339 UTC time");
  }
  SHADAN_RETURN_IF_ERROR(assign(top.string("prev_hash"), record.prev_hash));
  if (!isLowerHex64(record.prev_hash)) {
    return makeError(ErrorCode::kParse, "field \"prev_hash\" is not 64 lower-case hex digits");
  }
  AuditEvent& e = record.event;
  SHADAN_RETURN_IF_ERROR(assign(top.string("event"), e.event));
  if (e.event.empty()) return makeError(ErrorCode::kParse, "field \"event\" is empty");
  SHADAN_RETURN_IF_ERROR(assign(top.optionalString("outcome"), e.outcome));
  SHADAN_RETURN_IF_ERROR(assign(top.optionalString("reason"), e.reason));
  SHADAN_RETURN_IF_ERROR(assign(top.optionalString("command_id"), e.command_id));
  SHADAN_RETURN_IF_ERROR(assign(top.optionalString("correlation_id"), e.correlation_id));
  SHADAN_RETURN_IF_ERROR(assign(top.optionalUnsignedInteger("seq"), e.seq));
  SHADAN_RETURN_IF_ERROR(assign(top.optionalString("authz_sha256"), e.authz_sha256));
  SHADAN_RETURN_IF_ERROR(assign(top.optionalBoolean("drill"), e.drill));

  auto who = top.optionalObject("who");
  if (!who.ok()) return who.error();
  if (const auto& r = *who) {
    SHADAN_RETURN_IF_ERROR(
        r->checkMembers({}, {"requested_by", "approvers", "keyids", "controller"}));
    AuditWho value;
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("requested_by"), value.requested_by));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalStrings("approvers"), value.approvers));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalStrings("keyids"), value.keyids));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("controller"), value.controller));
    e.who = std::move(value);
  }
  auto what = top.optionalObject("what");
  if (!what.ok()) return what.error();
  if (const auto& r = *what) {
    SHADAN_RETURN_IF_ERROR(
        r->checkMembers({}, {"action", "segment", "profile", "ruleset_before", "ruleset_after"}));
    AuditWhat value;
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("action"), value.action));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("segment"), value.segment));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("profile"), value.profile));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("ruleset_before"), value.ruleset_before));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("ruleset_after"), value.ruleset_after));
    e.what = std::move(value);
  }
  auto why = top.optionalObject("why");
  if (!why.ok()) return why.error();
  if (const auto& r = *why) {
    SHADAN_RETURN_IF_ERROR(r->checkMembers({}, {"reason", "ticket"}));
    AuditWhy value;
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("reason"), value.reason));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("ticket"), value.ticket));
    e.why = std::move(value);
  }
  auto where = top.optionalObject("where");
  if (!where.ok()) return where.error();
  if (const auto& r = *where) {
    SHADAN_RETURN_IF_ERROR(r->checkMembers({}, {"agent_id", "host", "version"}));
    AuditWhere value;
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("agent_id"), value.agent_id));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("host"), value.host));
    SHADAN_RETURN_IF_ERROR(assign(r->optionalString("version"), value.version));
    e.where = std::move(value);
  }
  auto detail = top.optionalObject("detail");
  if (!detail.ok()) return detail.error();
  if (*detail) e.detail = (*detail)->value();
  return record;
}

Hash256 auditLeafHash(std::string_view line) {
  static constexpr char kLeafPrefix = 0x00;
  return sha256Raw(std::string_view(&kLeafPrefix, 1), line);
}

std::string auditEntryHashHex(std::string_view line) { return hashHex(auditLeafHash(line)); }

Hash256 merkleNodeHash(const Hash256& left, const Hash256& right) {
  static constexpr char kNodePrefix = 0x01;
  return sha256Raw(std::string_view(&kNodePrefix, 1), asChars(left), asChars(right));
}

void MerkleCompactRange::append(const Hash256& leaf) {
  stack_.push_back({leaf, 0});
  // Equal-height neighbours are complete siblings: merge them, like a binary counter's carry.
  while (stack_.size() >= 2 && stack_[stack_.size() - 2].height == stack_.back().height) {
    Subtree right = stack_.back();
    stack_.pop_back();
    Subtree& left = stack_.back();
    left.hash = merkleNodeHash(left.hash, right.hash);
    ++left.height;
  }
  ++size_;
}

Hash256 MerkleCompactRange::root() const {
  if (stack_.empty()) return sha256Raw({});
  // RFC 6962 splits at the largest power of two below n, so the perfect subtrees are folded
  // from the right: MTH = node(T0, node(T1, ... node(Tk-1, Tk))).
  Hash256 root = stack_.back().hash;
  for (size_t i = stack_.size() - 1; i-- > 0;) root = merkleNodeHash(stack_[i].hash, root);
  return root;
}

AuditChain::Check AuditChain::accept(std::string_view line) {
  Check check;
  auto record = parseAuditLine(line);
  if (!record.ok()) {
    check.failure = Failure::kMalformed;
    check.message = record.error().message;
    return check;
  }
  check.record = *record;
  if (log_id_ && record->log_id != *log_id_) {
    check.failure = Failure::kWrongLogId;
    check.message = "log_id " + quoteForMessage(record->log_id) + " differs from " +
                    quoteForMessage(*log_id_) + " of the entries before it";
    return check;
  }
  if (record->log_seq != size()) {
    check.failure = Failure::kSeqMismatch;
    check.message =
        "log_seq is " + std::to_string(record->log_seq) + ", expected " + std::to_string(size());
    return check;
  }
  if (record->prev_hash != head_hash_) {
    check.failure = Failure::kPrevHashMismatch;
    check.message = "prev_hash " + record->prev_hash.substr(0, 16) +
                    "... does not match the entry_hash " + head_hash_.substr(0, 16) +
                    "... of the entry before it";
    return check;
  }
  const Hash256 leaf = auditLeafHash(line);
  range_.append(leaf);
  head_hash_ = hashHex(leaf);
  log_id_ = record->log_id;
  return check;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

Result<std::string> makeCheckpointLine(const std::string& log_id, uint64_t size,
                                       const std::string& head_hash, const std::string& root_hex,
                                       const std::string& ts, const Signer& signer) {
  const Json body_json = {{"log_id", log_id}, {"size", size}, {"head_hash", head_hash},
                          {"root", root_hex}, {"ts", ts},     {"keyid", signer.keyId()}};
  const std::string body = body_json.dump(-1, ' ', false, Json::error_handler_t::replace);
  auto sig = signer.sign(dssePae(kAuditCheckpointPayloadType, body));
  if (!sig.ok()) return sig.error().withContext("signing the audit checkpoint");
  // The line is the body with the signature spliced in as its last member, so the verifier can
  // cut the exact signed bytes back out before parsing anything.
  return body.substr(0, body.size() - 1) + ",\"sig\":\"" + base64Encode(*sig) + "\"}";
}

Result<AuditCheckpoint> parseCheckpointLine(std::string_view line) {
  static constexpr std::string_view kSigKey = ",\"sig\":\"";
  const size_t pos = line.rfind(kSigKey);
  if (pos == std::string_view::npos || line.size() < 2 || line.substr(line.size() - 2) != "\"}") {
    return makeError(ErrorCode::kParse, "checkpoint has no trailing \"sig\" member");
  }
  const size_t sig_start = pos + kSigKey.size();
  if (sig_start > line.size() - 2) {
    return makeError(ErrorCode::kParse, "checkpoint has no trailing \"sig\" member");
  }
  AuditCheckpoint out;
  out.sig = std::string(line.substr(sig_start, line.size() - 2 - sig_start));
  if (out.sig.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
      std::string::npos) {
    return makeError(ErrorCode::kParse, "checkpoint sig is not base64");
  }
  out.body = std::string(line.substr(0, pos)) + "}";
  // The whole line must also be strict JSON (this catches a second "sig" hidden in the body).
  auto whole = parseStrictJson(line, "checkpoint", kAuditMaxLineBytes);
  if (!whole.ok()) return whole.error();
  auto body = parseStrictJson(out.body, "checkpoint body", kAuditMaxLineBytes);
  if (!body.ok()) return body.error();
  if (!body->is_object()) return makeError(ErrorCode::kParse, "checkpoint body is not an object");
  const StrictObjectReader r = auditReader(*body);
  // Every member is required; each getter says "missing field" in turn.
  SHADAN_RETURN_IF_ERROR(
      r.checkMembers({}, {"log_id", "size", "head_hash", "root", "ts", "keyid"}));
  SHADAN_RETURN_IF_ERROR(assign(r.string("log_id"), out.log_id));
  SHADAN_RETURN_IF_ERROR(assign(r.string("head_hash"), out.head_hash));
  SHADAN_RETURN_IF_ERROR(assign(r.string("root"), out.root));
  SHADAN_RETURN_IF_ERROR(assign(r.string("ts"), out.ts));
  SHADAN_RETURN_IF_ERROR(assign(r.string("keyid"), out.key_id));
  SHADAN_RETURN_IF_ERROR(assign(r.unsignedInteger("size"), out.size));
  if (!isLowerHex64(out.head_hash) || !isLowerHex64(out.root)) {
    return makeError(ErrorCode::kParse, "checkpoint head_hash/root are not 64 lower-case hex");
  }
  return out;
}

bool verifyCheckpointSignature(const AuditCheckpoint& checkpoint, const Ed25519PublicKey& key) {
  auto sig = base64Decode(checkpoint.sig);
  if (!sig.ok()) return false;
  return ed25519Verify(key, dssePae(kAuditCheckpointPayloadType, checkpoint.body), *sig);
}

// ---------------------------------------------------------------------------------------------
// Files

std::string auditSegmentPath(const std::string& base, uint64_t first_seq, uint64_t last_seq) {
  return base + "." + std::to_string(first_seq) + "-" + std::to_string(last_seq);
}

std::string auditCheckpointsPath(const std::string& base) { return base + ".checkpoints"; }

Result<std::string> PosixLogFileSystem::readFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int error = errno;
    return makeError(error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                     "cannot open " + path + ": " + errnoText(error));
  }
  std::string data;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return makeError(ErrorCode::kIo, "cannot read " + path + ": " + errnoText(errno));
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  return data;
}

Result<bool> PosixLogFileSystem::exists(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) return true;
  if (errno == ENOENT) return false;
  return makeError(ErrorCode::kIo, "cannot stat " + path + ": " + errnoText(errno));
}

Result<std::vector<std::string>> PosixLogFileSystem::listDirectory(const std::string& dir) {
  std::error_code error;
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    names.push_back(it->path().filename().string());
  }
  if (error) {
    return makeError(ErrorCode::kIo, "cannot list directory " + dir + ": " + error.message());
  }
  return names;
}

Result<std::unique_ptr<WritableLogFile>> PosixLogFileSystem::openForAppend(
    const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return makeError(ErrorCode::kIo, "cannot open " + path + ": " + errnoText(errno));
  auto file = std::make_unique<PosixWritableLogFile>(fd, path);
  // The file may have just been created: make its directory entry durable too.
  SHADAN_RETURN_IF_ERROR(syncDirectory(parentDirectory(path)));
  return std::unique_ptr<WritableLogFile>(std::move(file));
}

Status PosixLogFileSystem::createFile(const std::string& path, std::string_view contents) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (fd.get() < 0) {
    const int error = errno;
    return makeError(error == EEXIST ? ErrorCode::kState : ErrorCode::kIo,
                     "cannot create " + path + ": " + errnoText(error));
  }
  SHADAN_RETURN_IF_ERROR(writeAll(fd.get(), contents, path));
  if (::fsync(fd.get()) != 0 || fd.close() != 0) {
    return makeError(ErrorCode::kIo, "cannot fsync " + path + ": " + errnoText(errno));
  }
  return syncDirectory(parentDirectory(path));
}

Status PosixLogFileSystem::truncate(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0 || ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0 ||
      ::fsync(fd.get()) != 0) {
    return makeError(ErrorCode::kIo, "cannot truncate " + path + ": " + errnoText(errno));
  }
  return okStatus();
}

Status PosixLogFileSystem::rename(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
    const int error = errno;
    return makeError(error == EEXIST ? ErrorCode::kState : ErrorCode::kIo,
                     "cannot rename " + from + " to " + to + ": " + errnoText(error));
  }
  return syncDirectory(parentDirectory(to));
}

Result<std::vector<AuditSegmentFile>> listAuditSegments(LogFileSystem& fs,
                                                        const std::string& base) {
  const std::string dir = parentDirectory(base);
  const std::string prefix = baseName(base) + ".";
  auto names = fs.listDirectory(dir);
  if (!names.ok()) return names.error();
  std::vector<AuditSegmentFile> segments;
  for (const std::string& name : *names) {
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string range = name.substr(prefix.size());
    const size_t dash = range.find('-');
    if (dash == std::string::npos || dash == 0 || dash + 1 == range.size() ||
        range.find_first_not_of("0123456789-") != std::string::npos ||
        range.find('-', dash + 1) != std::string::npos || dash > 19 ||
        range.size() - dash - 1 > 19) {
      continue;
    }
    AuditSegmentFile segment;
    segment.path = (std::filesystem::path(dir) / name).string();
    segment.first_seq = std::stoull(range.substr(0, dash));
    segment.last_seq = std::stoull(range.substr(dash + 1));
    segments.push_back(std::move(segment));
  }
  std::sort(segments.begin(), segments.end(),
            [](const auto& a, const auto& b) { return a.first_seq < b.first_seq; });
  return segments;
}

// ---------------------------------------------------------------------------------------------
// The log

AuditLog::AuditLog(AuditLogOptions options, LogFileSystem& fs, const Clock& clock,
                   const Signer* signer)
    : options_(std::move(options)), fs_(fs), clock_(clock), signer_(signer) {}

Result<std::unique_ptr<AuditLog>> AuditLog::open(AuditLogOptions options, LogFileSystem& fs,
                                                 const Clock& clock, const Signer* signer) {
  if (options.log_id.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "audit log needs a log_id");
  }
  if (options.path.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "audit log needs a path");
  }
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options), fs, clock, signer));
  std::lock_guard lock(log->mutex_);
  if (Status loaded = log->load(); !loaded.ok()) {
    return loaded.error().withContext("audit log " + log->options_.path);
  }
  return log;
}

namespace {

// A stretch of a log file moved aside at open, waiting for its audit entry.
struct PendingRecovery {
  std::string event;
  uint64_t bytes;
  std::string sha256;
  std::string moved_to;
  std::string reason;
};

// Moves `bytes` to `aside` (a crash between the two steps leaves the same bytes in both places;
// a retry finds the identical aside file and carries on).
Status moveAside(LogFileSystem& fs, const std::string& path, uint64_t keep, std::string_view bytes,
                 const std::string& aside) {
  Status created = fs.createFile(aside, bytes);
  if (!created.ok()) {
    if (created.error().code != ErrorCode::kState) return created;
    auto existing = fs.readFile(aside);
    if (!existing.ok()) return existing.error();
    if (*existing != bytes) {
      return makeError(ErrorCode::kState, aside +
                                              " exists with other contents; move it away "
                                              "(keep it as evidence) and reopen");
    }
  }
  return fs.truncate(path, keep);
}

}  // namespace

Status AuditLog::load() {
  const std::string& path = options_.path;
  std::vector<PendingRecovery> pending;

  // Rotated segments were complete when they were renamed; any fault in them is not a crash.
  auto segments = listAuditSegments(fs_, path);
  if (!segments.ok()) return segments.error();
  for (const AuditSegmentFile& segment : *segments) {
    auto text = fs_.readFile(segment.path);
    if (!text.ok()) return text.error();
    uint64_t line_no = 0;
    size_t offset = 0;
    while (offset < text->size()) {
      ++line_no;
      const size_t nl = text->find('\n', offset);
      if (nl == std::string::npos) {
        return makeError(ErrorCode::kState, segment.path + " line " + std::to_string(line_no) +
                                                ": incomplete line in a rotated segment; run "
                                                "shadanctl audit verify");
      }
      AuditChain::Check check = chain_.accept(std::string_view(*text).substr(offset, nl - offset));
      if (check.failure != AuditChain::Failure::kNone) {
        return makeError(ErrorCode::kState, segment.path + " line " + std::to_string(line_no) +
                                                ": " + check.message +
                                                "; run shadanctl audit verify");
      }
      offset = nl + 1;
    }
  }

  // The current file: its final line may be torn by a crash.
  std::string current;
  if (auto text = fs_.readFile(path); text.ok()) {
    current = std::move(*text);
  } else if (text.error().code != ErrorCode::kNotFound) {
    return text.error();
  }
  file_first_seq_ = chain_.size();
  size_t good = 0;
  uint64_t line_no = 0;
  while (good < current.size()) {
    ++line_no;
    const size_t nl = current.find('\n', good);
    const std::string aside = path + ".torn-" + std::to_string(chain_.size());
    if (nl == std::string::npos) {
      const std::string_view torn = std::string_view(current).substr(good);
      SHADAN_RETURN_IF_ERROR(moveAside(fs_, path, good, torn, aside));
      pending.push_back({kAuditTornTailEvent, torn.size(), sha256Hex(torn), baseName(aside),
                         "line " + std::to_string(line_no) + " has no newline (" +
                             std::to_string(torn.size()) + " bytes; interrupted write)"});
      break;
    }
    AuditChain::Check check = chain_.accept(std::string_view(current).substr(good, nl - good));
    if (check.failure != AuditChain::Failure::kNone) {
      const bool final_line = nl + 1 == current.size();
      if (!final_line && options_.on_corruption == CorruptionPolicy::kFail) {
        return makeError(ErrorCode::kState, path + " line " + std::to_string(line_no) + ": " +
                                                check.message +
                                                " (not a torn final line: refusing to continue; "
                                                "run shadanctl audit verify)");
      }
      const std::string_view torn = std::string_view(current).substr(good);
      SHADAN_RETURN_IF_ERROR(moveAside(fs_, path, good, torn, aside));
      pending.push_back({final_line ? kAuditTornTailEvent : kAuditCorruptTailEvent, torn.size(),
                         sha256Hex(torn), baseName(aside),
                         "line " + std::to_string(line_no) + ": " + check.message});
      break;
    }
    good = nl + 1;
  }
  file_bytes_ = good;

  auto file = fs_.openForAppend(path);
  if (!file.ok()) return file.error();
  file_ = std::move(*file);

  // Checkpoints: a torn final line is moved aside the same way; the last complete one tells
  // how much of the log is already covered.
  const std::string checkpoints_path = auditCheckpointsPath(path);
  std::string checkpoints;
  if (auto text = fs_.readFile(checkpoints_path); text.ok()) {
    checkpoints = std::move(*text);
  } else if (text.error().code != ErrorCode::kNotFound) {
    return text.error();
  }
  if (!checkpoints.empty() && checkpoints.back() != '\n') {
    const size_t keep =
        checkpoints.rfind('\n') == std::string::npos ? 0 : checkpoints.rfind('\n') + 1;
    const std::string_view torn = std::string_view(checkpoints).substr(keep);
    const std::string aside = checkpoints_path + ".torn-" + std::to_string(keep);
    SHADAN_RETURN_IF_ERROR(moveAside(fs_, checkpoints_path, keep, torn, aside));
    pending.push_back({kAuditCheckpointTornTailEvent, torn.size(), sha256Hex(torn), baseName(aside),
                       "final checkpoint line has no newline (interrupted write)"});
    checkpoints.resize(keep);
  }
  if (!checkpoints.empty()) {
    const size_t start = checkpoints.rfind('\n', checkpoints.size() - 2);
    const std::string_view last =
        std::string_view(checkpoints).substr(start == std::string::npos ? 0 : start + 1).substr(0);
    if (auto parsed = parseCheckpointLine(last.substr(0, last.size() - 1)); parsed.ok()) {
      checkpointed_size_ = std::min(parsed->size, chain_.size());
    }
  }
  auto checkpoint_file = fs_.openForAppend(checkpoints_path);
  if (!checkpoint_file.ok()) return checkpoint_file.error();
  checkpoints_ = std::move(*checkpoint_file);
  last_checkpoint_ = clock_.now();

  for (PendingRecovery& recovery : pending) {
    AuditEvent event;
    event.event = recovery.event;
    event.outcome = "recovered";
    event.reason = recovery.reason;
    event.detail = Json{{"torn_bytes", recovery.bytes},
                        {"torn_sha256", recovery.sha256},
                        {"moved_to", recovery.moved_to}};
    auto receipt = appendLocked(event, /*durable=*/true);
    if (!receipt.ok()) return receipt.error();
    logger("audit")->warn("event={} moved_to={} bytes={} reason=\"{}\"", recovery.event,
                          recovery.moved_to, recovery.bytes, recovery.reason);
    recoveries_.push_back({recovery.event, receipt->log_seq, recovery.bytes, recovery.sha256,
                           recovery.moved_to, recovery.reason});
  }
  return okStatus();
}

Result<AuditReceipt> AuditLog::append(const AuditEvent& event) {
  std::lock_guard lock(mutex_);
  return appendLocked(event, /*durable=*/true);
}

Result<AuditReceipt> AuditLog::appendBuffered(const AuditEvent& event) {
  std::lock_guard lock(mutex_);
  return appendLocked(event, /*durable=*/false);
}

Status AuditLog::syncLocked() {
  if (!unsynced_) return okStatus();
  Status synced = file_->sync();
  if (!synced.ok()) {
    failed_ = synced.error();
    return synced;
  }
  unsynced_ = false;
  return okStatus();
}

Result<AuditReceipt> AuditLog::appendLocked(const AuditEvent& event, bool durable) {
  if (failed_) return failed_->withContext("audit log " + options_.path + " is not writable");
  const auto now = clock_.now();
  AuditRecord record{options_.log_id, chain_.size(), formatRfc3339(toUnixMillis(now)),
                     chain_.headHash(), event};
  auto line = formatAuditLine(record);
  if (!line.ok()) return line.error();
  if (line->size() > kAuditMaxLineBytes) {
    return makeError(ErrorCode::kInvalidArgument, "audit entry of " + std::to_string(line->size()) +
                                                      " bytes exceeds " +
                                                      std::to_string(kAuditMaxLineBytes));
  }
  // Check the line exactly as a verifier will, before anything reaches the disk.
  AuditChain next = chain_;
  AuditChain::Check check = next.accept(*line);
  if (check.failure != AuditChain::Failure::kNone) {
    return makeError(ErrorCode::kInternal, "audit entry would not verify: " + check.message);
  }
  line->push_back('\n');
  Status written = file_->append(*line);
  // One fdatasync makes this entry and every buffered one before it durable.
  if (written.ok() && durable) written = file_->sync();
  if (!written.ok()) {
    failed_ = written.error();
    return written.error();
  }
  chain_ = std::move(next);
  file_bytes_ += line->size();
  AuditReceipt receipt{record.log_seq, chain_.headHash()};
  unsynced_ = !durable;
  // Rotation and checkpoints only behind a synced entry: a checkpoint must never cover an
  // entry that is not yet on stable storage.
  if (!durable) return receipt;

  // The entry is durable: rotation or checkpoint trouble from here on is reported, not
  // returned, so the caller still gets its receipt.
  if (options_.rotate_bytes > 0 && file_bytes_ >= options_.rotate_bytes) {
    if (Status rotated = rotateLocked(); !rotated.ok()) {
      logger("audit")->error("event=rotate_failed path={} error=\"{}\"", options_.path,
                             rotated.error().message);
    }
  }
  const bool due_by_count = options_.checkpoint_every_entries > 0 &&
                            chain_.size() - checkpointed_size_ >= options_.checkpoint_every_entries;
  const bool due_by_time = options_.checkpoint_interval.count() > 0 &&
                           now - last_checkpoint_ >= options_.checkpoint_interval;
  if (due_by_count || due_by_time) {
    if (Status done = checkpointLocked(); !done.ok()) {
      logger("audit")->error("event=checkpoint_failed path={} error=\"{}\"", options_.path,
                             done.error().message);
    }
  }
  return receipt;
}

Status AuditLog::rotateLocked() {
  const std::string target = auditSegmentPath(options_.path, file_first_seq_, chain_.size() - 1);
  file_.reset();
  Status renamed = fs_.rename(options_.path, target);
  // Whether or not the rename happened, appends continue at options_.path.
  auto file = fs_.openForAppend(options_.path);
  if (!file.ok()) {
    failed_ = file.error();
    return file.error();
  }
  file_ = std::move(*file);
  if (!renamed.ok()) return renamed;
  file_bytes_ = 0;
  file_first_seq_ = chain_.size();
  return okStatus();
}

Status AuditLog::checkpoint() {
  std::lock_guard lock(mutex_);
  return checkpointLocked();
}

Status AuditLog::maybeCheckpoint() {
  std::lock_guard lock(mutex_);
  if (options_.checkpoint_interval.count() <= 0 ||
      clock_.now() - last_checkpoint_ < options_.checkpoint_interval) {
    return okStatus();
  }
  return checkpointLocked();
}

Status AuditLog::checkpointLocked() {
  if (signer_ == nullptr || chain_.size() == checkpointed_size_) return okStatus();
  SHADAN_RETURN_IF_ERROR(syncLocked());
  if (!checkpoints_) {
    return makeError(ErrorCode::kIo, "checkpoints are disabled after an earlier write error");
  }
  const auto now = clock_.now();
  auto line =
      makeCheckpointLine(options_.log_id, chain_.size(), chain_.headHash(), hashHex(chain_.root()),
                         formatRfc3339(toUnixMillis(now)), *signer_);
  if (!line.ok()) return line.error();
  Status written = checkpoints_->append(*line + "\n");
  if (written.ok()) written = checkpoints_->sync();
  if (!written.ok()) {
    // A partial line may be on disk; the next open moves it aside.
    checkpoints_.reset();
    return written;
  }
  checkpointed_size_ = chain_.size();
  last_checkpoint_ = now;
  if (options_.on_checkpoint) options_.on_checkpoint(*line);
  return okStatus();
}

Status AuditLog::close() {
  std::lock_guard lock(mutex_);
  if (failed_) return okStatus();
  Status done = syncLocked();
  if (done.ok()) done = checkpointLocked();
  failed_ = makeError(ErrorCode::kState, "closed");
  file_.reset();
  checkpoints_.reset();
  return done;
}

uint64_t AuditLog::size() const {
  std::lock_guard lock(mutex_);
  return chain_.size();
}

std::string AuditLog::headHash() const {
  std::lock_guard lock(mutex_);
  return chain_.headHash();
}

std::string AuditLog::rootHex() const {
  std::lock_guard lock(mutex_);
  return hashHex(chain_.root());
}

std::vector<AuditRecovery> AuditLog::recoveries() const {
  std::lock_guard lock(mutex_);
  return recoveries_;
}

}  // namespace shadan

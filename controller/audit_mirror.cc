#include "controller/audit_mirror.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "common/logging.h"
#include "common/strict_json.h"

namespace shadan::controller {
namespace {

using Json = nlohmann::json;

constexpr const char* kBreakMarker = "audit.break";

bool isSafeAgentId(const std::string& id) {
  if (id.empty() || id.size() > 64 || id.front() == '.') return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// The stored lines of `text` (complete lines only).
std::vector<std::string_view> storedLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t offset = 0;
  while (offset < text.size()) {
    const size_t nl = text.find('\n', offset);
    if (nl == std::string_view::npos) break;
    lines.push_back(text.substr(offset, nl - offset));
    offset = nl + 1;
  }
  return lines;
}

}  // namespace

Json AuditAlarm::toJson() const {
  return Json{{"type", kAgentAuditChainBreakEvent},
              {"agent_id", agent_id},
              {"seq", seq},
              {"reason", reason},
              {"ts", ts}};
}

AuditMirror::AuditMirror(std::string state_dir, LogFileSystem& fs, const Clock& clock,
                         AuditSink* controller_audit)
    : state_dir_(std::move(state_dir)),
      fs_(fs),
      clock_(clock),
      controller_audit_(controller_audit) {}

Result<std::string> AuditMirror::logPath(const std::string& agent_id) const {
  if (!isSafeAgentId(agent_id)) {
    return makeError(ErrorCode::kInvalidArgument, "agent id " + quoteForMessage(agent_id) +
                                                      " is not usable as a directory name");
  }
  return (std::filesystem::path(state_dir_) / "agents" / agent_id / "audit.log").string();
}

namespace {
// A repair entry of the agent (agents/agent_core.cc), as AuditRepair; nullopt for other events.
std::optional<AuditRepair> repairOf(const std::optional<AuditRecord>& record) {
  if (!record) return std::nullopt;
  const std::string& event = record->event.event;
  if (event != "repaired" && event != "routes_repaired") return std::nullopt;
  return AuditRepair{record->log_seq, record->ts, event};
}
}  // namespace

nlohmann::json AuditRepair::toJson() const {
  return nlohmann::json{{"log_seq", log_seq}, {"ts", ts}, {"event", event}};
}

std::optional<AuditRepair> AuditMirror::lastRepair(const std::string& agent_id) const {
  const auto found = agents_.find(agent_id);
  if (found == agents_.end()) return std::nullopt;
  return found->second->last_repair;
}

std::vector<std::string> AuditMirror::agentIds() const {
  std::vector<std::string> ids;
  ids.reserve(agents_.size());
  for (const auto& [id, copy] : agents_) ids.push_back(id);
  return ids;
}

void AuditMirror::loadExisting() {
  std::error_code ec;
  const std::filesystem::path agents = std::filesystem::path(state_dir_) / "agents";
  if (!std::filesystem::is_directory(agents, ec)) return;
  for (const auto& entry : std::filesystem::directory_iterator(agents, ec)) {
    const std::string id = entry.path().filename().string();
    if (!entry.is_directory(ec) || !isSafeAgentId(id)) continue;
    if (auto loaded = load(id); !loaded.ok()) {
      logger("audit_mirror")
          ->error("agent={} event=copy_load_failed error=\"{}\"", id, loaded.error().message);
    }
  }
}

Result<AuditMirror::AgentCopy*> AuditMirror::load(const std::string& agent_id) {
  if (auto it = agents_.find(agent_id); it != agents_.end()) return it->second.get();
  SHADAN_ASSIGN_OR_RETURN(auto path, logPath(agent_id));
  auto copy = std::make_unique<AgentCopy>();
  copy->log_path = path;
  copy->dir = std::filesystem::path(path).parent_path().string();
  std::error_code ec;
  std::filesystem::create_directories(copy->dir, ec);
  if (ec) return makeError(ErrorCode::kIo, "cannot create " + copy->dir + ": " + ec.message());

  // A standing alarm survives restarts: the marker holds it.
  const std::string marker = copy->dir + "/" + kBreakMarker;
  if (auto text = fs_.readFile(marker); text.ok()) {
    AuditAlarm alarm{agent_id, 0, "audit copy marked broken (unreadable marker)", ""};
    if (auto parsed = parseStrictJson(*text, "audit.break", 4 << 20);
        parsed.ok() && parsed->is_object()) {
      alarm.seq = parsed->value("seq", uint64_t{0});
      alarm.reason = parsed->value("reason", alarm.reason);
      alarm.ts = parsed->value("ts", std::string());
    }
    copy->alarm = alarm;
  } else if (text.error().code != ErrorCode::kNotFound) {
    return text.error();
  }

  // The stored entries: complete lines are what was acked. A final line without '\n' is a
  // write the controller did not finish (so never acked): it is moved aside, and the agent
  // sends that entry again.
  std::string text;
  if (auto read = fs_.readFile(copy->log_path); read.ok()) {
    text = std::move(*read);
  } else if (read.error().code != ErrorCode::kNotFound) {
    return read.error();
  }
  size_t good = 0;
  for (std::string_view line : storedLines(text)) {
    AuditChain::Check check = copy->chain.accept(line);
    if (check.failure != AuditChain::Failure::kNone) {
      return makeError(ErrorCode::kState, copy->log_path + ": stored entry log_seq " +
                                              std::to_string(copy->chain.size()) + ": " +
                                              check.message + "; run shadanctl audit verify");
    }
    if (auto repair = repairOf(check.record)) copy->last_repair = std::move(repair);
    good += line.size() + 1;
  }
  if (good < text.size()) {
    const std::string aside = copy->log_path + ".torn-" + std::to_string(copy->chain.size());
    SHADAN_RETURN_IF_ERROR(fs_.createFile(aside, std::string_view(text).substr(good)));
    SHADAN_RETURN_IF_ERROR(fs_.truncate(copy->log_path, good));
    logger("audit_mirror")
        ->warn("agent={} event=torn_tail_moved moved_to={} bytes={}", agent_id, aside,
               text.size() - good);
  }

  const std::string checkpoints_path = auditCheckpointsPath(copy->log_path);
  std::string checkpoints;
  if (auto read = fs_.readFile(checkpoints_path); read.ok()) {
    checkpoints = std::move(*read);
  } else if (read.error().code != ErrorCode::kNotFound) {
    return read.error();
  }
  size_t good_checkpoints = 0;
  for (std::string_view line : storedLines(checkpoints)) {
    auto parsed = parseCheckpointLine(line);
    if (!parsed.ok()) {
      return makeError(ErrorCode::kState,
                       checkpoints_path + ": stored checkpoint: " + parsed.error().message);
    }
    copy->checkpoint_size = parsed->size;
    copy->last_checkpoint_line = std::string(line);
    good_checkpoints += line.size() + 1;
  }
  if (good_checkpoints < checkpoints.size()) {
    const std::string aside = checkpoints_path + ".torn-" + std::to_string(good_checkpoints);
    SHADAN_RETURN_IF_ERROR(
        fs_.createFile(aside, std::string_view(checkpoints).substr(good_checkpoints)));
    SHADAN_RETURN_IF_ERROR(fs_.truncate(checkpoints_path, good_checkpoints));
  }

  // Both files exist from here on (opening creates them); they are opened again per write.
  SHADAN_RETURN_IF_ERROR(fs_.openForAppend(copy->log_path));
  SHADAN_RETURN_IF_ERROR(fs_.openForAppend(checkpoints_path));
  copy->checkpoints_path = checkpoints_path;
  AgentCopy* raw = copy.get();
  agents_.emplace(agent_id, std::move(copy));
  return raw;
}

Status AuditMirror::appendDurably(const std::string& path, std::string_view data) {
  SHADAN_ASSIGN_OR_RETURN(auto file, fs_.openForAppend(path));
  SHADAN_RETURN_IF_ERROR(file->append(data));
  return file->sync();
}

Status AuditMirror::append(const std::string& agent_id, const std::string& path,
                           std::string_view data, MirrorSync sync) {
  if (sync == MirrorSync::kNow) return appendDurably(path, data);
  SHADAN_RETURN_IF_ERROR(fs_.appendUnsynced(path, data));
  unsynced_.insert(agent_id);
  return okStatus();
}

Status AuditMirror::syncDeferred() {
  if (unsynced_.empty()) return okStatus();
  Status synced = fs_.syncFileSystem(state_dir_);
  if (!synced.ok()) {
    // What reached the disk is unknown: reload those copies from the files at next use.
    for (const std::string& agent_id : unsynced_) agents_.erase(agent_id);
  }
  unsynced_.clear();
  return synced;
}

Result<AuditResume> AuditMirror::resumePoint(const std::string& agent_id) {
  SHADAN_ASSIGN_OR_RETURN(auto copy, load(agent_id));
  if (copy->alarm) {
    return makeError(ErrorCode::kState,
                     "audit copy of agent " + agent_id + " is broken: " + copy->alarm->reason);
  }
  return AuditResume{copy->chain.size(), copy->chain.headHash(), copy->checkpoint_size};
}

Error AuditMirror::raise(AgentCopy& copy, const std::string& agent_id, uint64_t seq,
                         const std::string& reason, const std::string& line) {
  const std::string ts = formatRfc3339(toUnixMillis(clock_.now()));
  copy.alarm = AuditAlarm{agent_id, seq, reason, ts};
  logger("audit_mirror")
      ->error("event={} agent={} seq={} reason=\"{}\"", kAgentAuditChainBreakEvent, agent_id, seq,
              reason);
  // The evidence: what arrived, beside the copy as it stood.
  const Json marker{{"agent_id", agent_id},
                    {"seq", seq},
                    {"reason", reason},
                    {"ts", ts},
                    {"stored_entries", copy.chain.size()},
                    {"line", line}};
  const std::string marker_path = copy.dir + "/" + kBreakMarker;
  if (Status written =
          fs_.createFile(marker_path, marker.dump(-1, ' ', false, Json::error_handler_t::replace));
      !written.ok()) {
    logger("audit_mirror")
        ->error("agent={} event=break_marker_failed error=\"{}\"", agent_id,
                written.error().message);
  }
  if (controller_audit_ != nullptr) {
    AuditEvent event;
    event.event = kAgentAuditChainBreakEvent;
    event.outcome = "alarm";
    event.reason = reason;
    event.where = AuditWhere{agent_id, std::nullopt, std::nullopt};
    event.detail = Json{{"agent_id", agent_id},
                        {"seq", seq},
                        {"stored_entries", copy.chain.size()},
                        {"line_sha256", auditEntryHashHex(line)}};
    if (auto appended = controller_audit_->append(event); !appended.ok()) {
      logger("audit_mirror")
          ->error("agent={} event=alarm_audit_failed error=\"{}\"", agent_id,
                  appended.error().message);
    }
  }
  return makeError(ErrorCode::kState, "agent " + agent_id + " audit log broken at " +
                                          std::to_string(seq) + ": " + reason);
}

Result<AuditAck> AuditMirror::storeEntries(const std::string& agent_id,
                                           const std::vector<std::string>& lines, MirrorSync sync) {
  SHADAN_ASSIGN_OR_RETURN(auto loaded, load(agent_id));
  AgentCopy& copy = *loaded;
  if (copy.alarm) {
    return makeError(ErrorCode::kState, "audit copy of agent " + agent_id + " is broken");
  }
  const std::string expected_log_id = "agent:" + agent_id;
  AuditChain next = copy.chain;
  std::string batch;
  std::optional<std::string> stored_text;  // read once, for duplicates
  std::optional<std::pair<uint64_t, std::string>> failure;
  std::string failed_line;
  std::optional<AuditRepair> repair;  // the batch's newest repair entry
  for (const std::string& line : lines) {
    // The usual case, the next entry of the chain, costs one parse: accepted by a trial copy of
    // the chain (which checks seq and prev_hash) with the expected log_id. Anything else takes
    // the checks below, which tell a duplicate from a rewrite, a gap or a foreign log.
    AuditChain trial = next;
    if (AuditChain::Check quick = trial.accept(line);
        quick.failure == AuditChain::Failure::kNone && quick.record->log_id == expected_log_id) {
      if (auto found = repairOf(quick.record)) repair = std::move(found);
      next = std::move(trial);
      batch += line;
      batch += '\n';
      continue;
    }
    auto record = parseAuditLine(line);
    if (!record.ok()) {
      failure = {next.size(), "malformed entry: " + record.error().message};
      failed_line = line;
      break;
    }
    if (record->log_id != expected_log_id) {
      failure = {record->log_seq, "log_id " + quoteForMessage(record->log_id) + " is not " +
                                      quoteForMessage(expected_log_id)};
      failed_line = line;
      break;
    }
    if (record->log_seq < copy.chain.size()) {
      // Stored before: ignored when identical, a rewrite otherwise.
      if (!stored_text) {
        SHADAN_ASSIGN_OR_RETURN(auto text, fs_.readFile(copy.log_path));
        stored_text = std::move(text);
      }
      const auto stored = storedLines(*stored_text);
      if (record->log_seq < stored.size() && stored[record->log_seq] == line) continue;
      failure = {record->log_seq, "entry log_seq " + std::to_string(record->log_seq) +
                                      " differs from the stored copy"};
      failed_line = line;
      break;
    }
    if (record->log_seq < next.size()) {
      failure = {record->log_seq, "entry log_seq " + std::to_string(record->log_seq) +
                                      " sent twice in one batch or out of order"};
      failed_line = line;
      break;
    }
    if (record->log_seq > next.size()) {
      failure = {next.size(), "gap: entry log_seq " + std::to_string(next.size()) +
                                  " missing, got " + std::to_string(record->log_seq)};
      failed_line = line;
      break;
    }
    AuditChain::Check check = next.accept(line);
    if (check.failure != AuditChain::Failure::kNone) {
      failure = {record->log_seq, check.message};
      failed_line = line;
      break;
    }
    if (auto found = repairOf(check.record)) repair = std::move(found);
    batch += line;
    batch += '\n';
  }
  if (!batch.empty()) {
    Status written = append(agent_id, copy.log_path, batch, sync);
    if (!written.ok()) {
      // The file's state is unknown: drop the copy from memory; the next use reloads it (and
      // moves a torn tail aside). The agent sends the unacked entries again.
      agents_.erase(agent_id);
      return written.error();
    }
    copy.chain = std::move(next);
    if (repair) copy.last_repair = std::move(repair);
  }
  if (failure) return raise(copy, agent_id, failure->first, failure->second, failed_line);
  return ackOf(copy);
}

Result<std::pair<std::string, std::string>> AuditMirror::headAndRootAt(const AgentCopy& copy,
                                                                       uint64_t size) {
  SHADAN_ASSIGN_OR_RETURN(auto text, fs_.readFile(copy.log_path));
  AuditChain chain;
  for (std::string_view line : storedLines(text)) {
    if (chain.size() == size) break;
    (void)chain.accept(line);  // checked when it was stored and again at load
  }
  if (chain.size() != size) {
    return makeError(ErrorCode::kInternal, "stored copy shorter than " + std::to_string(size));
  }
  return std::make_pair(chain.headHash(), hexEncode(chain.root()));
}

Result<AuditAck> AuditMirror::storeCheckpoint(const std::string& agent_id, const std::string& line,
                                              const Ed25519PublicKey& agent_key, MirrorSync sync) {
  SHADAN_ASSIGN_OR_RETURN(auto loaded, load(agent_id));
  AgentCopy& copy = *loaded;
  if (copy.alarm) {
    return makeError(ErrorCode::kState, "audit copy of agent " + agent_id + " is broken");
  }
  auto checkpoint = parseCheckpointLine(line);
  if (!checkpoint.ok()) {
    return raise(copy, agent_id, copy.checkpoint_size,
                 "malformed checkpoint: " + checkpoint.error().message, line);
  }
  const uint64_t size = checkpoint->size;
  if (checkpoint->log_id != "agent:" + agent_id) {
    return raise(copy, agent_id, size, "checkpoint of log " + quoteForMessage(checkpoint->log_id),
                 line);
  }
  if (checkpoint->key_id != ed25519KeyId(agent_key) ||
      !verifyCheckpointSignature(*checkpoint, agent_key)) {
    return raise(copy, agent_id, size,
                 "checkpoint signature does not verify with the enrolled agent key", line);
  }
  if (size <= copy.checkpoint_size) {
    if (size == copy.checkpoint_size && line == copy.last_checkpoint_line) return ackOf(copy);
    SHADAN_ASSIGN_OR_RETURN(auto text, fs_.readFile(auditCheckpointsPath(copy.log_path)));
    for (std::string_view stored : storedLines(text)) {
      if (stored == line) return ackOf(copy);
    }
    return raise(copy, agent_id, size,
                 "checkpoint of size " + std::to_string(size) + " is not after the stored one (" +
                     std::to_string(copy.checkpoint_size) + ") and not identical to any",
                 line);
  }
  if (size > copy.chain.size()) {
    return raise(copy, agent_id, size,
                 "checkpoint covers " + std::to_string(size) + " entries but only " +
                     std::to_string(copy.chain.size()) + " arrived",
                 line);
  }
  std::string head = copy.chain.headHash();
  std::string root = hexEncode(copy.chain.root());
  if (size < copy.chain.size()) {
    SHADAN_ASSIGN_OR_RETURN(auto at, headAndRootAt(copy, size));
    std::tie(head, root) = at;
  }
  if (checkpoint->head_hash != head || checkpoint->root != root) {
    return raise(copy, agent_id, size,
                 "checkpoint of size " + std::to_string(size) +
                     " does not match the stored entries (head or Merkle root differs: the "
                     "agent's log was rewritten)",
                 line);
  }
  Status written = append(agent_id, copy.checkpoints_path, line + "\n", sync);
  if (!written.ok()) {
    agents_.erase(agent_id);
    return written.error();
  }
  copy.checkpoint_size = size;
  copy.last_checkpoint_line = line;
  return ackOf(copy);
}

std::vector<AuditAlarm> AuditMirror::alarms() const {
  std::vector<AuditAlarm> out;
  for (const auto& [id, copy] : agents_) {
    if (copy->alarm) out.push_back(*copy->alarm);
  }
  return out;
}

bool AuditMirror::broken(const std::string& agent_id) const {
  auto it = agents_.find(agent_id);
  return it != agents_.end() && it->second->alarm.has_value();
}

}  // namespace shadan::controller

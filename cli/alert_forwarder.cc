#include "cli/alert_forwarder.h"

#include <algorithm>
#include <ostream>
#include <string_view>
#include <utility>

#include "cli/forward_state.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

std::string_view trimmed(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const size_t last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

// The quick look at an EVE line: does a member "event_type" say "alert"? Suricata writes it
// near the start of every record. A string value cannot hold `"event_type"` unescaped, so a
// match is a key; one in a nested object at worst sends a record the controller refuses.
bool saysEventTypeAlert(std::string_view text) {
  constexpr std::string_view kKey = "\"event_type\"";
  for (size_t at = text.find(kKey); at != std::string_view::npos;
       at = text.find(kKey, at + kKey.size())) {
    size_t i = at + kKey.size();
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i >= text.size() || text[i] != ':') continue;
    ++i;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (text.substr(i, 7) == "\"alert\"") return true;
  }
  return false;
}

}  // namespace

std::string ForwardStats::text() const {
  std::string out = "sent " + std::to_string(sent);
  std::string kinds;
  for (const auto& [decision, count] : decisions) {
    kinds += (kinds.empty() ? "" : ", ") + decision + " " + std::to_string(count);
  }
  if (!kinds.empty()) out += " (" + kinds + ")";
  out += ", refused " + std::to_string(refused) + ", skipped " + std::to_string(skipped) +
         ", invalid " + std::to_string(invalid) + ", retries " + std::to_string(retries);
  return out;
}

Json ForwardStats::toJson() const {
  Json out = {{"sent", sent},       {"decisions", Json::object()}, {"refused", refused},
              {"skipped", skipped}, {"invalid", invalid},          {"retries", retries}};
  for (const auto& [decision, count] : decisions) out["decisions"][decision] = count;
  out["acknowledged"] = nullptr;
  if (acknowledged) {
    out["acknowledged"] = {{"device", acknowledged->file.device},
                           {"inode", acknowledged->file.inode},
                           {"offset", acknowledged->offset}};
  }
  return out;
}

AlertForwarder::AlertForwarder(ForwarderOptions options, ApiTransport& transport, ForwarderEnv env,
                               std::ostream& err)
    : options_(std::move(options)),
      env_(std::move(env)),
      err_(err),
      sender_(transport, options_.kind, SenderEnv{env_.sleep, env_.jitter, env_.stop_requested},
              err) {}

void AlertForwarder::report(const LogLine& line, const std::string& what) {
  err_ << "shadanctl: forward: " << options_.log << " offset " << line.offset << ": " << what
       << "\n";
}

bool AlertForwarder::isRecord(const LogLine& line) {
  if (line.kind == LogLineKind::kOversize) {
    ++stats_.invalid;
    report(line, "a line of " + std::to_string(line.end - line.offset - 1) + " bytes, over the " +
                     std::to_string(kForwardMaxRecordBytes) + "-byte limit of a record; not sent");
    return false;
  }
  if (line.kind == LogLineKind::kIncomplete) {
    ++stats_.invalid;
    report(line, std::to_string(line.end - line.offset) +
                     " bytes without a newline, left by a rotation or truncation; not sent");
    return false;
  }
  const std::string_view text = trimmed(line.text);
  if (text.empty()) {
    ++stats_.skipped;
    return false;
  }
  if (options_.kind == ForwardKind::kZeekNotice && text.front() == '#') {
    ++stats_.invalid;
    report(line,
           "a Zeek TSV header line: only JSON logs are supported (Zeek: redef "
           "LogAscii::use_json = T); not sent");
    return false;
  }
  if (text.front() != '{' || text.back() != '}') {
    ++stats_.invalid;
    report(line, "not a JSON object; not sent");
    return false;
  }
  if (options_.kind == ForwardKind::kEve && !saysEventTypeAlert(text)) {
    ++stats_.skipped;
    return false;
  }
  if (!Json::accept(text)) {
    ++stats_.invalid;
    report(line, "not a JSON object (does not parse); not sent");
    return false;
  }
  return true;
}

Status AlertForwarder::persist(const LogPosition& position) {
  SHADAN_RETURN_IF_ERROR(saveForwardState(
      options_.state_file, ForwardState{forwardKindName(options_.kind), options_.log, position}));
  stats_.acknowledged = position;
  return okStatus();
}

Status AlertForwarder::flush(const LogPosition& upto) {
  if (pending_.empty() && stats_.acknowledged == upto) {
    pending_since_.reset();
    return okStatus();
  }
  if (!pending_.empty()) {
    std::vector<std::string_view> records;
    records.reserve(pending_.size());
    for (const Pending& record : pending_) records.push_back(record.text);
    Result<std::vector<RecordResult>> results = sender_.send(records);
    stats_.retries = sender_.retries();
    if (!results.ok()) {
      if (env_.stop_requested()) {
        return results.error().withContext(
            "stopped with " + std::to_string(pending_.size()) +
            " records not acknowledged (they are sent again at the next start)");
      }
      return results.error();
    }
    for (size_t i = 0; i < pending_.size(); ++i) {
      const RecordResult& result = (*results)[i];
      if (result.local) {
        ++stats_.refused;
        report(pending_[i].where, "not taken: " + result.reason);
        continue;
      }
      ++stats_.sent;
      ++stats_.decisions[result.decision];
      if (result.decision == "refused") {
        ++stats_.refused;
        report(pending_[i].where, "refused by the controller: " + quoteForMessage(result.reason));
      }
    }
  }
  SHADAN_RETURN_IF_ERROR(persist(upto));
  pending_.clear();
  pending_bytes_ = 0;
  pending_since_.reset();
  return okStatus();
}

void AlertForwarder::maybeSummary(std::chrono::steady_clock::time_point now) {
  if (now < next_summary_) return;
  err_ << "shadanctl: forward " << forwardKindName(options_.kind) << " " << options_.log << ": "
       << stats_.text() << "\n";
  next_summary_ = now + options_.summary_every;
}

Status AlertForwarder::run() {
  const std::string kind = forwardKindName(options_.kind);
  SHADAN_ASSIGN_OR_RETURN(auto state, loadForwardState(options_.state_file, kind, options_.log));
  FollowStart start;
  start.from_start = options_.from_start;
  if (state) {
    start.resume = state->position;
    stats_.acknowledged = state->position;
  }
  LogFollower follower(options_.log, start, kForwardMaxRecordBytes, err_);
  next_summary_ = env_.now() + options_.summary_every;

  while (!env_.stop_requested()) {
    if (!follower.position()) {
      SHADAN_RETURN_IF_ERROR(follower.open());
      const auto opened = follower.position();
      if (!opened && options_.once) {
        return makeError(ErrorCode::kNotFound, options_.log + " does not exist");
      }
      // The first run: where following began, saved before anything is read, so a crash
      // before the first batch does not move the start to a later end of the file.
      if (opened && !stats_.acknowledged) SHADAN_RETURN_IF_ERROR(persist(*opened));
    }
    SHADAN_ASSIGN_OR_RETURN(LogRead got,
                            follower.read(std::max<size_t>(1, options_.batch - pending_.size())));
    for (LogLine& line : got.lines) {
      if (!isRecord(line)) continue;
      if (!pending_.empty() && pending_bytes_ + line.text.size() + 1 > kForwardMaxBatchBytes) {
        SHADAN_RETURN_IF_ERROR(flush(LogPosition{line.file, line.offset}));
      }
      pending_bytes_ += line.text.size() + 1;
      std::string text = std::move(line.text);
      pending_.push_back(Pending{std::move(text), std::move(line)});
    }
    const std::optional<LogPosition> at = follower.position();
    const auto now = env_.now();
    if (at && at != stats_.acknowledged && !pending_since_) pending_since_ = now;
    const bool end_of_once = options_.once && got.at_end;
    const bool due = pending_.size() >= options_.batch ||
                     (pending_since_ && now - *pending_since_ >= options_.flush) || end_of_once;
    if (due && at) SHADAN_RETURN_IF_ERROR(flush(*at));
    if (end_of_once) break;
    maybeSummary(now);
    if (got.lines.empty() && !options_.once && !env_.stop_requested()) {
      auto nap = options_.idle_poll;
      if (pending_since_) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            *pending_since_ + options_.flush - now);
        nap = std::clamp(left, std::chrono::milliseconds(1), nap);
      }
      env_.sleep(nap);
    }
  }
  // Stopped: the batch read so far goes out first.
  if (const auto at = follower.position()) SHADAN_RETURN_IF_ERROR(flush(*at));
  return okStatus();
}

}  // namespace shadan

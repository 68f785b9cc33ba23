#include "cli/alert_sender.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <utility>

#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kMaxRetryAfterSeconds = 86400;

// The decisions of the intake's contract; anything else an answer says counts as "unknown".
const std::set<std::string>& knownDecisions() {
  static const std::set<std::string> kDecisions = {"acted",        "dry_run",      "deduplicated",
                                                   "rate_limited", "breaker_open", "out_of_scope",
                                                   "protected",    "no_rule",      "refused"};
  return kDecisions;
}

std::string millisText(std::chrono::milliseconds duration) {
  return std::to_string(duration.count()) + " ms";
}

}  // namespace

const char* forwardKindName(ForwardKind kind) {
  return kind == ForwardKind::kEve ? "eve" : "zeek-notice";
}

const char* intakeFormatName(ForwardKind kind) {
  return kind == ForwardKind::kEve ? "eve" : "zeek";
}

const char* intakeMediaType(ForwardKind kind) {
  return kind == ForwardKind::kEve ? "application/vnd.suricata.eve+json"
                                   : "application/vnd.zeek.notice+json";
}

std::optional<std::chrono::seconds> parseRetryAfter(const std::optional<std::string>& header) {
  if (!header) return std::nullopt;
  std::string_view text = *header;
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != text.npos) {
    return std::nullopt;
  }
  const uint64_t seconds = std::stoull(std::string(text));
  if (seconds > kMaxRetryAfterSeconds) return std::nullopt;
  return std::chrono::seconds(seconds);
}

AlertSender::AlertSender(ApiTransport& transport, ForwardKind kind, SenderEnv env,
                         std::ostream& err)
    : transport_(transport), kind_(kind), env_(std::move(env)), err_(err) {}

Result<std::vector<RecordResult>> AlertSender::send(const std::vector<std::string_view>& records) {
  if (records.empty()) return std::vector<RecordResult>{};
  return sendRange(records, 0, records.size());
}

bool AlertSender::wait(std::chrono::milliseconds duration) {
  if (!env_.stop_requested()) env_.sleep(duration);
  return !env_.stop_requested();
}

bool AlertSender::backOff(const std::string& why) {
  const auto step = backoff_step_;
  const double fraction = 0.5 + 0.5 * std::clamp(env_.jitter(), 0.0, 1.0);
  const auto delay =
      std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(step.count()) * fraction));
  backoff_step_ = std::min(step * 2, kForwardBackoffCap);
  ++retries_;
  err_ << "shadanctl: forward: " << why << "; retrying in " << millisText(delay) << "\n";
  return wait(delay);
}

Result<std::vector<RecordResult>> AlertSender::sendRange(
    const std::vector<std::string_view>& records, size_t first, size_t count) {
  RawApiRequest request;
  request.path = std::string("/v1/alerts?format=") + intakeFormatName(kind_);
  request.content_type = intakeMediaType(kind_);
  for (size_t i = first; i < first + count; ++i) {
    request.body.append(records[i]);
    request.body.push_back('\n');
  }
  const std::string what = "the alert intake (" + std::to_string(count) + " records)";
  // A stop ends the retries, never the first attempt: the last batch gets its chance.
  const auto stopped = [] {
    return makeError(ErrorCode::kUnavailable, "stopped before the controller took a batch");
  };
  while (true) {
    Result<RawApiResponse> answer = transport_.requestRaw(request);
    if (!answer.ok()) {
      if (answer.error().code != ErrorCode::kUnavailable) return answer.error();
      if (!backOff(answer.error().message)) return stopped();
      continue;
    }
    const ApiResponse* response = &answer->response;
    const int status = response->status;
    if (response->ok()) {
      backoff_step_ = kForwardBackoffStart;
      return readResults(*response, count);
    }
    if (status == 429) {
      const auto retry_after = parseRetryAfter(answer->retry_after);
      if (!retry_after) {
        if (!backOff("the controller is over its alert intake limit (HTTP 429, no usable "
                     "Retry-After)")) {
          return stopped();
        }
        continue;
      }
      ++retries_;
      err_ << "shadanctl: forward: the controller is over its alert intake limit (HTTP 429); "
              "waiting "
           << retry_after->count() << " s as its Retry-After says\n";
      // Never a busy loop, whatever the header says.
      if (!wait(std::max<std::chrono::milliseconds>(*retry_after, kForwardBackoffStart))) {
        return stopped();
      }
      continue;
    }
    if (status == 413) {
      if (count == 1) {
        RecordResult local;
        local.decision = "refused";
        local.reason = "HTTP 413: the controller would not take the record (too large)";
        local.local = true;
        return std::vector<RecordResult>{local};
      }
      ++retries_;
      const size_t half = count / 2;
      SHADAN_ASSIGN_OR_RETURN(auto head, sendRange(records, first, half));
      SHADAN_ASSIGN_OR_RETURN(auto tail, sendRange(records, first + half, count - half));
      head.insert(head.end(), std::make_move_iterator(tail.begin()),
                  std::make_move_iterator(tail.end()));
      return head;
    }
    if (status >= 500) {
      if (!backOff("the controller answered " + response->errorSummary() + " to " + what)) {
        return stopped();
      }
      continue;
    }
    if (status == 401) {
      return makeError(ErrorCode::kInvalidArgument, "the controller did not accept the token (" +
                                                        response->errorSummary() +
                                                        "); check --token-file or SHADAN_TOKEN");
    }
    if (status == 403) {
      return makeError(ErrorCode::kInvalidArgument,
                       "the controller refused " + what + ": not allowed for this token (" +
                           response->errorSummary() + "); the alert intake needs a detector token");
    }
    return makeError(ErrorCode::kInvalidArgument,
                     "the controller refused " + what + ": " + response->errorSummary());
  }
}

std::vector<RecordResult> AlertSender::readResults(const ApiResponse& response, size_t count) {
  const Json& body = response.body;
  const bool readable = body.is_object() && body.contains("results") &&
                        body["results"].is_array() && body["results"].size() == count;
  std::vector<RecordResult> results(count);
  if (!readable) {
    err_ << "shadanctl: forward: the controller answered HTTP " << response.status
         << " without one result for each of the " << count
         << " records; they were taken and count as \"unknown\"\n";
    for (RecordResult& result : results) result.decision = "unknown";
    return results;
  }
  for (size_t i = 0; i < count; ++i) {
    const Json& item = body["results"][i];
    RecordResult& result = results[i];
    result.decision = "unknown";
    if (!item.is_object()) continue;
    if (item.contains("decision") && item["decision"].is_string() &&
        knownDecisions().contains(item["decision"].get<std::string>())) {
      result.decision = item["decision"].get<std::string>();
    }
    if (item.contains("order_id") && item["order_id"].is_string()) {
      result.order_id = item["order_id"].get<std::string>();
    }
    if (item.contains("reason") && item["reason"].is_string()) {
      result.reason = item["reason"].get<std::string>();
    }
  }
  return results;
}

}  // namespace shadan

#pragma once

// Posting one batch of detector records to the controller's alert intake (POST /v1/alerts,
// a token of role detector) until the controller answered for every record, for
// `shadanctl forward`.
//
// The intake's contract (controller/alerts/alert_formats.h): the body is NDJSON, the format
// named by ?format= and the media type; 200 {"results":[{"decision","order_id","reason"}]}
// one per record in order; 429 with Retry-After (seconds) when the whole request is over the
// intake's limit (nothing of it was taken); 413 when the body is too large.
//
// What the sender does with each answer:
//   2xx          the results, in record order. An answer without one result per record is
//                said on `err` and its records count as decision "unknown": the controller
//                took them, so they are not sent again.
//   429          waits Retry-After seconds (the backoff when it is absent or not a number),
//                then sends the same records again.
//   413          splits the records in half and sends each half. A single record the
//                controller calls too large gets a local "refused" result (local = true).
//   5xx, and the controller unreachable (kUnavailable)
//                waits with exponential backoff (200 ms doubling to 30 s, each wait between
//                half and all of the step: jitter), then sends again. Forever: a forwarder
//                must outlive a controller outage.
//   other 4xx    an error (401: the token; 403: not a detector token; ...): retrying a bad
//                token forever helps no one.
// Every retry counts in `retries()`. The first attempt is always made; when the stop flag is
// raised, the next wait ends it and send() returns an error: the batch is not acknowledged.

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/api_client.h"
#include "common/result.h"

namespace shadan {

enum class ForwardKind { kEve, kZeekNotice };
const char* forwardKindName(ForwardKind kind);   // "eve" | "zeek-notice"
const char* intakeFormatName(ForwardKind kind);  // "eve" | "zeek": the ?format= value
const char* intakeMediaType(ForwardKind kind);   // application/vnd.suricata.eve+json, ...

inline constexpr std::chrono::milliseconds kForwardBackoffStart{200};
inline constexpr std::chrono::milliseconds kForwardBackoffCap{30000};

// Sleeping and randomness, injected so tests do not wait.
struct SenderEnv {
  // Waits about `duration`; may return early once `stop_requested` says true.
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<double()> jitter;  // uniform in [0, 1)
  std::function<bool()> stop_requested;
};

struct RecordResult {
  std::string decision;  // acted, dry_run, ..., refused; "unknown" for an unreadable answer
  std::optional<std::string> order_id;
  std::string reason;
  bool local = false;  // made up here (a record the controller would not take: 413)
};

class AlertSender {
 public:
  // REQUIRES: `transport` and `err` outlive the sender.
  AlertSender(ApiTransport& transport, ForwardKind kind, SenderEnv env, std::ostream& err);

  // Sends `records` (each one JSON object on one line, no newline) until every one has a
  // result; returns them in order. Errors: the controller refused the request (4xx other
  // than 413/429: kInvalidArgument with its answer), a transport error that is not the
  // network (kInvalidArgument/kInternal, e.g. an unreadable CA file), or stop (kUnavailable).
  Result<std::vector<RecordResult>> send(const std::vector<std::string_view>& records);

  uint64_t retries() const { return retries_; }

 private:
  Result<std::vector<RecordResult>> sendRange(const std::vector<std::string_view>& records,
                                              size_t first, size_t count);
  // Says why on `err`, counts a retry and waits the next backoff step; false when stopped.
  bool backOff(const std::string& why);
  bool wait(std::chrono::milliseconds duration);
  std::vector<RecordResult> readResults(const ApiResponse& response, size_t count);

  ApiTransport& transport_;
  const ForwardKind kind_;
  const SenderEnv env_;
  std::ostream& err_;
  std::chrono::milliseconds backoff_step_ = kForwardBackoffStart;
  uint64_t retries_ = 0;
};

// The wait a Retry-After header asks for: whole seconds (0-86400); nullopt for anything else
// (an HTTP date, garbage), which the sender answers with its backoff.
std::optional<std::chrono::seconds> parseRetryAfter(const std::optional<std::string>& header);

}  // namespace shadan

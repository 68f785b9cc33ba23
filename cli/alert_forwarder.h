#pragma once

// `shadanctl forward`: follows a detector's log (LogFollower), picks the records worth sending,
// batches them, posts each batch (AlertSender) and persists the position the controller
// acknowledged (forward_state.h). A security tool's forwarder: nothing is dropped silently.
//
// Each complete line of the log is one of:
//   a record      a JSON object (checked whole), for eve only with "event_type":"alert": sent
//   skipped       an eve record of another event type, or a blank line: counted
//   invalid       over kForwardMaxRecordBytes, not a JSON object, a Zeek TSV line ("#..."),
//                 bytes left without a newline by a rotation or truncation: said on `err` with
//                 the file offset, counted, never sent
// A batch is posted when it holds `batch` records (or would pass kForwardMaxBatchBytes), or
// `flush` after its first line was read, or at the end of the file with `once`, or on stop.
// Results "refused" are said on `err` with the record's offset and reason and counted; the
// position still moves past them (the controller audited them).
//
// Delivery is at-least-once: the state moves only after the controller answered 200 for the
// whole batch, so a crash (or a stop while the controller is unreachable) re-sends at most the
// batch in flight at the next start. On the first run (no state file) the start position is
// saved before anything is read, so a crash before the first batch loses nothing either.

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/alert_sender.h"
#include "cli/api_client.h"
#include "cli/log_follower.h"
#include "common/result.h"

namespace shadan {

// The intake's limits (controller/alerts/alert_formats.h: kAlertRecordMaxBytes,
// kAlertBatchMaxRecords, kAlertBodyMaxBytes), repeated because the CLI does not link the
// controller.
inline constexpr size_t kForwardMaxRecordBytes = 64 * 1024;
inline constexpr size_t kForwardMaxBatchRecords = 1000;
inline constexpr size_t kForwardMaxBatchBytes = 4 * 1024 * 1024;
inline constexpr size_t kForwardDefaultBatch = 500;
inline constexpr std::chrono::milliseconds kForwardDefaultFlush{200};

struct ForwarderOptions {
  ForwardKind kind = ForwardKind::kEve;
  std::string log;         // the followed file, absolute
  std::string state_file;  // see forward_state.h
  bool from_start = false;
  size_t batch = kForwardDefaultBatch;  // 1..kForwardMaxBatchRecords
  std::chrono::milliseconds flush = kForwardDefaultFlush;
  bool once = false;  // read to the current end, send, return
  // How long to sleep when the file has nothing new (never longer than what is left of the
  // flush time of a pending batch).
  std::chrono::milliseconds idle_poll{200};
  std::chrono::seconds summary_every{60};  // the summary on `err` while running
};

struct ForwarderEnv {
  std::function<std::chrono::steady_clock::time_point()> now;  // monotonic
  // Waits about `duration`; may return early once `stop_requested` says true.
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<double()> jitter;  // uniform in [0, 1), for the backoff
  std::function<bool()> stop_requested;
};

struct ForwardStats {
  uint64_t sent = 0;  // records the controller answered for
  std::map<std::string, uint64_t> decisions;
  uint64_t refused = 0;  // results "refused" (also in decisions)
  uint64_t skipped = 0;
  uint64_t invalid = 0;
  uint64_t retries = 0;
  std::optional<LogPosition> acknowledged;  // the persisted position

  // "sent 12 (acted 3, deduplicated 9), refused 0, skipped 40, invalid 2, retries 1"
  std::string text() const;
  nlohmann::json toJson() const;
};

class AlertForwarder {
 public:
  // REQUIRES: `transport` and `err` outlive the forwarder.
  AlertForwarder(ForwarderOptions options, ApiTransport& transport, ForwarderEnv env,
                 std::ostream& err);

  // Follows until the end of the file (`once`) or until stop, flushing the pending batch
  // last. Errors: the state file (unreadable, another log's, not writable), the log (not
  // there with `once`, unreadable), the controller refusing (AlertSender), or a stop before
  // the controller took the last batch. The position persisted stays what was acknowledged.
  Status run();

  const ForwardStats& stats() const { return stats_; }

 private:
  struct Pending {
    std::string text;
    LogLine where;  // its place in the log (its text moved to `text`)
  };

  // Sorts a line out (see the top of this file); counts and reports the ones not sent.
  bool isRecord(const LogLine& line);
  // Posts the pending records and saves `upto` once the controller answered for all.
  Status flush(const LogPosition& upto);
  Status persist(const LogPosition& position);
  void report(const LogLine& line, const std::string& what);
  void maybeSummary(std::chrono::steady_clock::time_point now);

  const ForwarderOptions options_;
  const ForwarderEnv env_;
  std::ostream& err_;
  AlertSender sender_;
  ForwardStats stats_;
  std::vector<Pending> pending_;
  size_t pending_bytes_ = 0;
  // Set when something was read past the acknowledged position: the flush clock runs.
  std::optional<std::chrono::steady_clock::time_point> pending_since_;
  std::chrono::steady_clock::time_point next_summary_{};
};

}  // namespace shadan

#pragma once

// GET /v1/audit: the controller's own audit log and its copies of the agents' logs
// (controller/audit_mirror.h), read back for people, each with the verdict of the same
// verification `shadanctl audit verify` runs (common/audit_verify.h).
//
// Contracts:
//   - Read-only: reads the files, changes nothing, audits nothing.
//   - The page of entries is read on the caller's thread and costs what it shows: files are
//     read newest first and only the lines needed are parsed (log_seq taken from the line
//     without a full parse where it can be), so the first page of a log of millions of
//     entries costs one file read, not a parse of the log.
//   - The verdict of the whole chain (hashes, checkpoints, their signatures with the trust
//     file's controller keys or the agent's enrolled key) costs a read and a parse of the whole
//     log (2 s at 100,000 entries): it is computed on the AuditVerifier's own thread, never on
//     the caller's. An answer carries the newest verdict reached (with when, and whether the
//     log has grown since) and asks for a new one when the log changed, at most once per
//     kAuditRecheckInterval per log; `on_verdict` is called (on the verifier's thread) when one
//     is reached, so the console can read it.
//   - Entries come newest first, at most `limit`, optionally only those before a log_seq
//     (paging) and only of one event; each is the stored JSON object as it is.
//   - Verification paths are reported by file name only, not by the controller's paths.
//   - AuditReader: not thread-safe (the controller's io thread); AuditVerifier: thread-safe.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/audit_log.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/result.h"

namespace shadan::controller {

inline constexpr size_t kAuditPageDefault = 100;
inline constexpr size_t kAuditPageMax = 1000;
inline constexpr std::chrono::seconds kAuditRecheckInterval{10};

struct AuditQuery {
  std::string log = "controller";  // "controller" or "agent:<agent_id>"
  size_t limit = kAuditPageDefault;
  std::optional<uint64_t> before;  // only entries whose log_seq is lower
  std::string event;               // only entries of this event ("" for all)
};

// Parses GET /v1/audit's query string ("log=agent:gw-a&limit=50&before=120&event=order_applied");
// unknown names, repeated names, bad numbers and a limit outside 1..kAuditPageMax are refused
// with kInvalidArgument naming the parameter.
Result<AuditQuery> parseAuditQuery(std::string_view query);

// Whole-log verifications on a thread of their own, one at a time, newest verdict kept per log.
class AuditVerifier {
 public:
  // `fs` and `clock` must outlive the verifier. `recheck`: how old the newest verdict of a log
  // that changed since must be before another is computed.
  AuditVerifier(LogFileSystem& fs, const Clock& clock, std::function<void()> on_verdict,
                std::chrono::milliseconds recheck = kAuditRecheckInterval);
  ~AuditVerifier();  // stops after the running verification and joins
  AuditVerifier(const AuditVerifier&) = delete;
  AuditVerifier& operator=(const AuditVerifier&) = delete;

  struct Known {
    std::optional<nlohmann::json> verdict;  // the newest one reached (see verdictJson)
    bool current = false;                   // the log's current file has not changed since
    bool verifying = false;                 // one is queued or running
  };
  // What is known of the log at `path` (its current file; rotated segments beside it), and a
  // verification queued when none is known, or the log changed and the newest is older than
  // the recheck interval.
  Known lookup(const std::string& log, const std::string& path,
               const std::vector<PublicKeyInfo>& keys);
  // Waits until nothing is queued or running.
  void drain();

 private:
  struct Job {
    std::string log;
    std::string path;
    std::vector<PublicKeyInfo> keys;
  };
  struct Verdict {
    nlohmann::json json;
    int64_t size = -1;  // of the current file when the verification started
    std::chrono::steady_clock::time_point reached;
  };
  void run();

  LogFileSystem& fs_;
  const Clock& clock_;
  std::function<void()> on_verdict_;
  const std::chrono::milliseconds recheck_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::set<std::string> busy_;  // logs queued or running
  std::map<std::string, Verdict> verdicts_;
  bool stopping_ = false;
  std::thread worker_;
};

struct AuditSources {
  std::string controller_log;  // the controller's audit.log (its rotated segments beside it)
  std::vector<PublicKeyInfo> controller_keys;  // checkpoint signatures of the controller's log
  std::function<std::vector<std::string>()> agent_ids;  // agents with a copy
  // The copy of an agent's log (kInvalidArgument for an unusable id), and its enrolled key.
  std::function<Result<std::string>(const std::string& agent_id)> agent_log;
  std::function<std::optional<Ed25519PublicKey>(const std::string& agent_id)> agent_key;
};

class AuditReader {
 public:
  // `fs` and `verifier` must outlive the reader.
  AuditReader(LogFileSystem& fs, AuditVerifier& verifier, AuditSources sources)
      : fs_(fs), verifier_(verifier), sources_(std::move(sources)) {}

  // {"log","logs","verification","verification_current","verifying","entries","next_before"};
  // "verification" is null until a first verdict is reached. kNotFound for a log that is not
  // there (an unknown agent, or one that never shipped).
  Result<nlohmann::json> read(const AuditQuery& query);

 private:
  LogFileSystem& fs_;
  AuditVerifier& verifier_;
  AuditSources sources_;
};

}  // namespace shadan::controller

#pragma once

// The `response` section of the controller config: what the controller does with detectors'
// alerts (controller/alert_responder.h), and the brakes on it.
//
//   "response": {
//     "rules": [{"name": "eve-trojan",
//                "match": {"detector": "ids-1", "format": "eve", "signature_ids": [2024897],
//                          "rules": [...], "notes": [...], "segments": ["office"],
//                          "min_severity": "high"},
//                "action": "quarantine-host" | "isolate-segment" | "record",
//                "host": "internal" | "src" | "dst",           (default internal)
//                "profile": "full", "ttl_s": 3600,              (defaults: full, default_ttl_s)
//                "mode": "auto" | "approve" | "dry-run",        (default auto)
//                "escalate": {"hosts": 3, "window_s": 600}}],   (quarantine-host only)
//     "rate": {"per_detector_per_min": 30, "intake_per_s": 1000},
//     "breaker": {"max_actions": 20, "window_s": 300, "max_segments_percent": 50},
//     "protected_hosts": ["10.20.0.1", "10.30.0.0/28"],
//     "default_ttl_s": 3600}
//
// Contracts:
//   - Parsing is strict, like the rest of the config: unknown members, wrong types and values
//     out of range are kParse errors naming `<source>: <pointer>: <reason>`.
//   - Rules are evaluated in order, first match wins. A match member that is absent matches
//     everything; a list matches when the alert's value is in it. `signature_ids` match Suricata
//     EVE alerts, `notes` Zeek notices, `rules` Shadan-format alerts: a rule naming one of them
//     matches no alert of another format.
//   - Every automatic action carries a TTL: ttl_s is 60 s .. 7 days (kMaxAutoTtlS).
//   - checkResponseConfig() names unknown segments, profiles and detector names (a rule naming a
//     detector no token has would never match: a typo must stop startup, not be silent).
//   - Without a `response` section there are no rules: every alert is recorded as `no_rule`.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_prefix.h"
#include "common/policy.h"
#include "common/result.h"
#include "common/strict_json.h"
#include "controller/alerts/alert_formats.h"

namespace shadan::controller {

inline constexpr int64_t kMinAutoTtlS = 60;
inline constexpr int64_t kMaxAutoTtlS = 7LL * 24 * 3600;
inline constexpr size_t kMaxResponseRules = 256;

enum class ResponseAction { kQuarantineHost, kIsolateSegment, kRecord };
const char* responseActionName(ResponseAction action);  // "quarantine-host" | ...

enum class ResponseMode { kAuto, kApprove, kDryRun };
const char* responseModeName(ResponseMode mode);  // "auto" | "approve" | "dry-run"

// Which address of an alert the action is about. kInternal: the one that lies in a segment other
// than the default one (src when both do).
enum class HostSide { kSrc, kDst, kInternal };
const char* hostSideName(HostSide side);

struct RuleMatch {
  std::optional<std::string> detector;
  std::optional<AlertFormat> format;
  std::vector<int64_t> signature_ids;
  std::vector<std::string> rules;
  std::vector<std::string> notes;
  std::vector<std::string> segments;
  std::optional<AlertSeverity> min_severity;
};

// "N distinct hosts of one segment quarantined within W seconds -> isolate the segment".
struct Escalation {
  int hosts = 3;
  int64_t window_s = 600;
};

struct ResponseRule {
  std::string name;
  RuleMatch match;
  ResponseAction action = ResponseAction::kRecord;
  HostSide host = HostSide::kInternal;
  std::string profile = "full";
  int64_t ttl_s = 3600;
  ResponseMode mode = ResponseMode::kAuto;
  std::optional<Escalation> escalate;
};

struct ResponseRate {
  int per_detector_per_min = 30;  // automatic actions (token bucket, burst = one minute's worth)
  int intake_per_s = 1000;        // records taken per detector per second (burst = 2 s worth)
};

struct BreakerLimits {
  int max_actions = 20;  // the breaker opens on the max_actions+1-th in window_s
  int64_t window_s = 300;
  int max_segments_percent = 50;  // ... or when an action would cut more than this share
};

struct ResponseConfig {
  std::vector<ResponseRule> rules;
  ResponseRate rate;
  BreakerLimits breaker;
  std::vector<IpPrefix> protected_hosts;
  int64_t default_ttl_s = 3600;
};

// Reads the `response` object (`section` is a reader over it, kFields wording).
Result<ResponseConfig> parseResponseConfig(const StrictObjectReader& section);

// The config against the policy and the detector token names: rule segments and profiles must
// exist, an isolate-segment rule must not name a protected segment, and a rule's `detector`
// must be a detector token. Errors read `<source>: /response/rules/<i>/<member>: <reason>`.
Status checkResponseConfig(const ResponseConfig& config, const Policy& policy,
                           const std::vector<std::string>& detector_names, std::string_view source);

}  // namespace shadan::controller

#include "controller/alerts/response_config.h"

#include <set>

namespace shadan::controller {
namespace {

constexpr StringRules kName{.non_empty = true, .max_bytes = 64, .no_control = true};
constexpr StringRules kMatchText{.non_empty = true, .max_bytes = 256, .no_control = true};
constexpr size_t kMaxMatchValues = 1024;

template <typename Enum, size_t N>
std::optional<Enum> enumNamed(std::string_view name, const Enum (&values)[N],
                              const char* (*nameOf)(Enum)) {
  for (Enum value : values) {
    if (name == nameOf(value)) return value;
  }
  return std::nullopt;
}

Result<std::vector<std::string>> matchStrings(const StrictObjectReader& match,
                                              std::string_view name) {
  if (!match.has(name)) return std::vector<std::string>{};
  SHADAN_ASSIGN_OR_RETURN(auto array, match.array(name, 1, kMaxMatchValues));
  std::vector<std::string> out;
  for (size_t i = 0; i < array.size(); ++i) {
    SHADAN_ASSIGN_OR_RETURN(auto value, array.string(i, kMatchText));
    out.push_back(std::move(value));
  }
  return out;
}

Result<RuleMatch> readMatch(const StrictObjectReader& match) {
  SHADAN_RETURN_IF_ERROR(match.checkMembers(
      {}, {"detector", "format", "signature_ids", "rules", "notes", "segments", "min_severity"}));
  RuleMatch out;
  SHADAN_ASSIGN_OR_RETURN(auto detector, match.optionalString("detector", kName));
  out.detector = std::move(detector);
  SHADAN_ASSIGN_OR_RETURN(auto format, match.optionalString("format", kName));
  if (format) {
    out.format = parseAlertFormat(*format);
    if (!out.format) return match.error("format", "must be \"shadan\", \"eve\" or \"zeek\"");
  }
  if (match.has("signature_ids")) {
    SHADAN_ASSIGN_OR_RETURN(auto array, match.array("signature_ids", 1, kMaxMatchValues));
    for (size_t i = 0; i < array.size(); ++i) {
      const nlohmann::json& value = array.at(i);
      if (!value.is_number_integer() || value.get<int64_t>() < 0) {
        return array.error(i, "must be a non-negative integer");
      }
      out.signature_ids.push_back(value.get<int64_t>());
    }
  }
  SHADAN_ASSIGN_OR_RETURN(auto rules, matchStrings(match, "rules"));
  out.rules = std::move(rules);
  SHADAN_ASSIGN_OR_RETURN(auto notes, matchStrings(match, "notes"));
  out.notes = std::move(notes);
  SHADAN_ASSIGN_OR_RETURN(auto segments, matchStrings(match, "segments"));
  out.segments = std::move(segments);
  SHADAN_ASSIGN_OR_RETURN(auto severity, match.optionalString("min_severity", kName));
  if (severity) {
    out.min_severity = parseAlertSeverity(*severity);
    if (!out.min_severity) {
      return match.error("min_severity", "must be \"low\", \"medium\", \"high\" or \"critical\"");
    }
  }
  return out;
}

Result<ResponseRule> readRule(const StrictObjectReader& rule, int64_t default_ttl_s) {
  SHADAN_RETURN_IF_ERROR(rule.checkMembers(
      {"name", "action"}, {"match", "host", "profile", "ttl_s", "mode", "escalate"}));
  ResponseRule out;
  SHADAN_ASSIGN_OR_RETURN(auto name, rule.string("name", kName));
  out.name = std::move(name);
  SHADAN_ASSIGN_OR_RETURN(auto match, rule.optionalObject("match"));
  if (match) {
    SHADAN_ASSIGN_OR_RETURN(auto parsed, readMatch(*match));
    out.match = std::move(parsed);
  }
  SHADAN_ASSIGN_OR_RETURN(auto action, rule.string("action", kName));
  static constexpr ResponseAction kActions[] = {
      ResponseAction::kQuarantineHost, ResponseAction::kIsolateSegment, ResponseAction::kRecord};
  const auto parsed_action = enumNamed(action, kActions, &responseActionName);
  if (!parsed_action) {
    return rule.error("action", "must be \"quarantine-host\", \"isolate-segment\" or \"record\"");
  }
  out.action = *parsed_action;
  SHADAN_ASSIGN_OR_RETURN(auto host, rule.optionalString("host", kName));
  if (host) {
    static constexpr HostSide kSides[] = {HostSide::kSrc, HostSide::kDst, HostSide::kInternal};
    const auto side = enumNamed(*host, kSides, &hostSideName);
    if (!side) return rule.error("host", "must be \"src\", \"dst\" or \"internal\"");
    out.host = *side;
  }
  SHADAN_ASSIGN_OR_RETURN(auto profile, rule.optionalString("profile", kName));
  if (profile) out.profile = std::move(*profile);
  SHADAN_ASSIGN_OR_RETURN(auto ttl, rule.optionalInteger("ttl_s", kMinAutoTtlS, kMaxAutoTtlS));
  out.ttl_s = ttl.value_or(default_ttl_s);
  SHADAN_ASSIGN_OR_RETURN(auto mode, rule.optionalString("mode", kName));
  if (mode) {
    static constexpr ResponseMode kModes[] = {ResponseMode::kAuto, ResponseMode::kApprove,
                                              ResponseMode::kDryRun};
    const auto parsed_mode = enumNamed(*mode, kModes, &responseModeName);
    if (!parsed_mode) return rule.error("mode", "must be \"auto\", \"approve\" or \"dry-run\"");
    out.mode = *parsed_mode;
  }
  SHADAN_ASSIGN_OR_RETURN(auto escalate, rule.optionalObject("escalate"));
  if (escalate) {
    if (out.action != ResponseAction::kQuarantineHost) {
      return rule.error("escalate", "only a quarantine-host rule escalates to its segment");
    }
    SHADAN_RETURN_IF_ERROR(escalate->checkMembers({"hosts", "window_s"}));
    SHADAN_ASSIGN_OR_RETURN(auto hosts, escalate->integer("hosts", 2, 10000));
    SHADAN_ASSIGN_OR_RETURN(auto window, escalate->integer("window_s", 1, 7LL * 24 * 3600));
    out.escalate = Escalation{static_cast<int>(hosts), window};
  }
  return out;
}

}  // namespace

const char* responseActionName(ResponseAction action) {
  switch (action) {
    case ResponseAction::kQuarantineHost:
      return "quarantine-host";
    case ResponseAction::kIsolateSegment:
      return "isolate-segment";
    case ResponseAction::kRecord:
      return "record";
  }
  return "?";
}

const char* responseModeName(ResponseMode mode) {
  switch (mode) {
    case ResponseMode::kAuto:
      return "auto";
    case ResponseMode::kApprove:
      return "approve";
    case ResponseMode::kDryRun:
      return "dry-run";
  }
  return "?";
}

const char* hostSideName(HostSide side) {
  switch (side) {
    case HostSide::kSrc:
      return "src";
    case HostSide::kDst:
      return "dst";
    case HostSide::kInternal:
      return "internal";
  }
  return "?";
}

Result<ResponseConfig> parseResponseConfig(const StrictObjectReader& section) {
  SHADAN_RETURN_IF_ERROR(
      section.checkMembers({}, {"rules", "rate", "breaker", "protected_hosts", "default_ttl_s"}));
  ResponseConfig out;
  SHADAN_ASSIGN_OR_RETURN(auto ttl,
                          section.optionalInteger("default_ttl_s", kMinAutoTtlS, kMaxAutoTtlS));
  if (ttl) out.default_ttl_s = *ttl;
  if (section.has("rules")) {
    SHADAN_ASSIGN_OR_RETURN(auto rules, section.array("rules", 0, kMaxResponseRules));
    std::set<std::string> names;
    for (size_t i = 0; i < rules.size(); ++i) {
      SHADAN_ASSIGN_OR_RETURN(auto reader, rules.object(i));
      SHADAN_ASSIGN_OR_RETURN(auto rule, readRule(reader, out.default_ttl_s));
      if (!names.insert(rule.name).second) {
        return reader.error("name", "duplicate rule name " + quoteForMessage(rule.name));
      }
      out.rules.push_back(std::move(rule));
    }
  }
  SHADAN_ASSIGN_OR_RETURN(auto rate, section.optionalObject("rate"));
  if (rate) {
    SHADAN_RETURN_IF_ERROR(rate->checkMembers({}, {"per_detector_per_min", "intake_per_s"}));
    SHADAN_ASSIGN_OR_RETURN(auto per_min, rate->optionalInteger("per_detector_per_min", 1, 10000));
    if (per_min) out.rate.per_detector_per_min = static_cast<int>(*per_min);
    SHADAN_ASSIGN_OR_RETURN(auto intake, rate->optionalInteger("intake_per_s", 1, 1000000));
    if (intake) out.rate.intake_per_s = static_cast<int>(*intake);
  }
  SHADAN_ASSIGN_OR_RETURN(auto breaker, section.optionalObject("breaker"));
  if (breaker) {
    SHADAN_RETURN_IF_ERROR(
        breaker->checkMembers({}, {"max_actions", "window_s", "max_segments_percent"}));
    SHADAN_ASSIGN_OR_RETURN(auto max_actions, breaker->optionalInteger("max_actions", 1, 100000));
    if (max_actions) out.breaker.max_actions = static_cast<int>(*max_actions);
    SHADAN_ASSIGN_OR_RETURN(auto window, breaker->optionalInteger("window_s", 1, 7LL * 24 * 3600));
    if (window) out.breaker.window_s = *window;
    SHADAN_ASSIGN_OR_RETURN(auto percent, breaker->optionalInteger("max_segments_percent", 0, 100));
    if (percent) out.breaker.max_segments_percent = static_cast<int>(*percent);
  }
  if (section.has("protected_hosts")) {
    SHADAN_ASSIGN_OR_RETURN(auto hosts, section.array("protected_hosts", 0, kMaxMatchValues));
    for (size_t i = 0; i < hosts.size(); ++i) {
      SHADAN_ASSIGN_OR_RETURN(auto text, hosts.string(i, kMatchText));
      auto prefix = IpPrefix::parse(text);
      if (!prefix.ok()) return hosts.error(i, prefix.error().message);
      out.protected_hosts.push_back(*prefix);
    }
  }
  return out;
}

Status checkResponseConfig(const ResponseConfig& config, const Policy& policy,
                           const std::vector<std::string>& detector_names,
                           std::string_view source) {
  auto fail = [&](size_t index, const std::string& member, const std::string& reason) {
    return makeError(ErrorCode::kParse, std::string(source) + ": /response/rules/" +
                                            std::to_string(index) + "/" + member + ": " + reason);
  };
  for (size_t i = 0; i < config.rules.size(); ++i) {
    const ResponseRule& rule = config.rules[i];
    if (policy.findProfile(rule.profile) == nullptr) {
      return fail(i, "profile", "unknown profile " + quoteForMessage(rule.profile));
    }
    for (size_t s = 0; s < rule.match.segments.size(); ++s) {
      const std::string& name = rule.match.segments[s];
      const Segment* segment = policy.findSegment(name);
      if (segment == nullptr) {
        return fail(i, "match/segments/" + std::to_string(s),
                    "unknown segment " + quoteForMessage(name));
      }
      if (segment->is_default) {
        return fail(i, "match/segments/" + std::to_string(s),
                    "segment " + name + " is the default segment: no alert acts on it");
      }
      if (rule.action == ResponseAction::kIsolateSegment && segment->is_protected) {
        return fail(i, "match/segments/" + std::to_string(s),
                    "segment " + name + " is protected: it is never isolated automatically");
      }
    }
    if (rule.match.detector) {
      bool known = false;
      for (const auto& name : detector_names) known = known || name == *rule.match.detector;
      if (!known) {
        return fail(i, "match/detector",
                    "no detector token is named " + quoteForMessage(*rule.match.detector));
      }
    }
  }
  return okStatus();
}

}  // namespace shadan::controller

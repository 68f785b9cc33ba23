// checkReportJson(): the strict reader of report.json (docs/drills.md "Reading the report").
// It checks presence and types only; it never rejects a member it does not know, so a report
// written by a newer runner still renders.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "cli/drill/report_html.h"
#include "common/orders.h"
#include "common/strict_json.h"

namespace shadan::drill {
namespace {

using Json = nlohmann::json;

Error errorAt(std::string_view pointer, std::string_view reason) {
  return makeError(ErrorCode::kParse, jsonPointerDisplay(pointer) + ": " + std::string(reason));
}

std::string oneOf(std::initializer_list<std::string_view> values) {
  std::string text = "must be one of ";
  bool first = true;
  for (std::string_view value : values) {
    text += (first ? "" : ", ") + std::string(value);
    first = false;
  }
  return text;
}

// One JSON object of the report and the pointer that names it in errors.
class ObjectCheck {
 public:
  ObjectCheck(const Json& object, std::string pointer)
      : object_(object), pointer_(std::move(pointer)) {}

  Status isObject() const {
    if (!object_.is_object()) return errorAt(pointer_, "must be an object");
    return okStatus();
  }

  std::string pointerOf(std::string_view name) const { return jsonPointerAppend(pointer_, name); }

  // The member; an error when the object lacks it.
  Result<const Json*> member(std::string_view name) const {
    const auto found = object_.find(name);
    if (found == object_.end()) return errorAt(pointerOf(name), "is required");
    return &*found;
  }

  Status string(std::string_view name) const {
    SHADAN_ASSIGN_OR_RETURN(const Json* value, member(name));
    if (!value->is_string()) return errorAt(pointerOf(name), "must be a string");
    return okStatus();
  }

  Status stringOrNull(std::string_view name) const {
    SHADAN_ASSIGN_OR_RETURN(const Json* value, member(name));
    if (!value->is_string() && !value->is_null()) {
      return errorAt(pointerOf(name), "must be a string or null");
    }
    return okStatus();
  }

  Status oneOfStrings(std::string_view name, std::initializer_list<std::string_view> values) const {
    SHADAN_ASSIGN_OR_RETURN(const Json* value, member(name));
    if (value->is_string()) {
      const auto& text = value->get_ref<const std::string&>();
      for (std::string_view allowed : values) {
        if (text == allowed) return okStatus();
      }
    }
    return errorAt(pointerOf(name), oneOf(values));
  }

  Status boolean(std::string_view name) const {
    SHADAN_ASSIGN_OR_RETURN(const Json* value, member(name));
    if (!value->is_boolean()) return errorAt(pointerOf(name), "must be true or false");
    return okStatus();
  }

  Status booleanOrNull(std::string_view name) const {
    SHADAN_ASSIGN_OR_RETURN(const Json* value, member(name));
    if (!value->is_boolean() && !value->is_null()) {
      return errorAt(pointerOf(name), "must be true, false or null");
    }
    return okStatus();
  }

  // An integer in [min, max] (the JSON reader keeps integers as int64 or uint64).
  Status integer(std::string_view name, int64_t min = 0, int64_t max = INT64_MAX) const {
    SHADAN_ASSIGN_OR_RETURN(const Json* value, member(name));
    if (!inRange(*value, min, max)) {
      return errorAt(pointerOf(name), "must be an integer from " + std::to_string(min) + " to " +
                                          std::to_string(max));
    }
    return okStatus();
  }

  // A time in milliseconds since the drill started: every time may be null (not measured).
  Status time(std::string_view name) const {
    SHADAN_ASSIGN_OR_RETURN(const Json* value, member(name));
    if (!value->is_null() && !inRange(*value, 0, INT64_MAX)) {
      return errorAt(pointerOf(name), "must be a non-negative integer or null");
    }
    return okStatus();
  }

  Result<ObjectCheck> object(std::string_view name) const {
    SHADAN_ASSIGN_OR_RETURN(const Json* value, member(name));
    ObjectCheck nested(*value, pointerOf(name));
    SHADAN_RETURN_IF_ERROR(nested.isObject());
    return nested;
  }

  Result<const Json*> array(std::string_view name) const {
    SHADAN_ASSIGN_OR_RETURN(const Json* value, member(name));
    if (!value->is_array()) return errorAt(pointerOf(name), "must be an array");
    return value;
  }

  const Json& value() const { return object_; }

 private:
  static bool inRange(const Json& value, int64_t min, int64_t max) {
    if (value.is_number_unsigned()) {
      const uint64_t number = value.get<uint64_t>();
      return number <= static_cast<uint64_t>(INT64_MAX) && static_cast<int64_t>(number) >= min &&
             static_cast<int64_t>(number) <= max;
    }
    if (value.is_number_integer()) {
      const int64_t number = value.get<int64_t>();
      return number >= min && number <= max;
    }
    return false;
  }

  const Json& object_;
  std::string pointer_;
};

// Each element of the array member `name` of `parent`, as an object, checked by `check`.
template <typename Check>
Status eachObject(const ObjectCheck& parent, std::string_view name, Check check) {
  SHADAN_ASSIGN_OR_RETURN(const Json* items, parent.array(name));
  const std::string pointer = parent.pointerOf(name);
  for (size_t i = 0; i < items->size(); ++i) {
    ObjectCheck item((*items)[i], jsonPointerAppend(pointer, i));
    SHADAN_RETURN_IF_ERROR(item.isObject());
    SHADAN_RETURN_IF_ERROR(check(item));
  }
  return okStatus();
}

Status checkStep(const ObjectCheck& step) {
  SHADAN_RETURN_IF_ERROR(step.integer("index"));
  SHADAN_RETURN_IF_ERROR(step.string("label"));
  SHADAN_RETURN_IF_ERROR(
      step.oneOfStrings("do", {"isolate", "restore", "alert", "fault", "wait", "expect"}));
  SHADAN_RETURN_IF_ERROR(step.oneOfStrings("phase", {"before", "during", "after"}));
  SHADAN_RETURN_IF_ERROR(step.time("started_ms"));
  SHADAN_RETURN_IF_ERROR(step.time("ended_ms"));
  SHADAN_RETURN_IF_ERROR(step.boolean("ok"));
  SHADAN_RETURN_IF_ERROR(step.string("detail"));
  return step.stringOrNull("order_id");
}

Status checkTransition(const ObjectCheck& transition) {
  SHADAN_RETURN_IF_ERROR(transition.integer("step"));
  SHADAN_RETURN_IF_ERROR(transition.oneOfStrings("action", {"isolate", "restore"}));
  SHADAN_RETURN_IF_ERROR(transition.string("order_id"));
  for (const char* name : {"order_sent_ms", "dispatch_received_ms", "applied_ms", "ack_received_ms",
                           "first_dropped_probe_ms", "first_open_probe_ms"}) {
    SHADAN_RETURN_IF_ERROR(transition.time(name));
  }
  return okStatus();
}

Status checkGateways(const ObjectCheck& report) {
  SHADAN_ASSIGN_OR_RETURN(const ObjectCheck gateways, report.object("gateways"));
  for (const auto& [id, value] : gateways.value().items()) {
    ObjectCheck gateway(value, gateways.pointerOf(id));
    SHADAN_RETURN_IF_ERROR(gateway.isObject());
    SHADAN_RETURN_IF_ERROR(gateway.time("time_to_cut_ms"));
    SHADAN_RETURN_IF_ERROR(gateway.time("time_to_restore_ms"));
    SHADAN_RETURN_IF_ERROR(eachObject(gateway, "transitions", checkTransition));
  }
  return okStatus();
}

Status checkProbe(const ObjectCheck& probe) {
  SHADAN_RETURN_IF_ERROR(probe.integer("step"));
  SHADAN_RETURN_IF_ERROR(probe.string("label"));
  SHADAN_RETURN_IF_ERROR(probe.string("from"));
  SHADAN_RETURN_IF_ERROR(probe.string("to"));
  SHADAN_RETURN_IF_ERROR(probe.oneOfStrings("proto", {"tcp", "udp", "icmp"}));
  SHADAN_ASSIGN_OR_RETURN(const Json* port, probe.member("port"));
  if (!port->is_null()) SHADAN_RETURN_IF_ERROR(probe.integer("port", 1, 65535));
  SHADAN_RETURN_IF_ERROR(probe.oneOfStrings("family", {"ipv4", "ipv6"}));
  SHADAN_RETURN_IF_ERROR(probe.oneOfStrings("phase", {"before", "during", "after"}));
  SHADAN_RETURN_IF_ERROR(probe.oneOfStrings("expected", {"open", "cut"}));
  // "error": the probe could not run (its "error" says why); it never counts as held.
  SHADAN_RETURN_IF_ERROR(probe.oneOfStrings("observed", {"open", "cut", "error"}));
  SHADAN_RETURN_IF_ERROR(probe.boolean("ok"));
  return probe.boolean("established");
}

Status checkFault(const ObjectCheck& fault) {
  SHADAN_RETURN_IF_ERROR(fault.integer("step"));
  SHADAN_RETURN_IF_ERROR(
      fault.oneOfStrings("kind", {"kill-agent", "restart-agent", "flush-ruleset", "stop-controller",
                                  "start-controller", "partition", "heal", "reboot"}));
  SHADAN_RETURN_IF_ERROR(fault.stringOrNull("gateway"));
  SHADAN_RETURN_IF_ERROR(fault.time("at_ms"));
  SHADAN_RETURN_IF_ERROR(fault.booleanOrNull("cut_held"));
  return fault.string("detail");
}

Status checkSummaries(const ObjectCheck& report) {
  SHADAN_ASSIGN_OR_RETURN(const ObjectCheck management, report.object("management"));
  SHADAN_RETURN_IF_ERROR(management.boolean("kept_working"));
  SHADAN_RETURN_IF_ERROR(management.integer("probes"));
  SHADAN_RETURN_IF_ERROR(management.integer("failures"));
  // "continuous" came after report_version 1's first readers: absent or null, nothing watched.
  SHADAN_ASSIGN_OR_RETURN(const Json* management_json, report.member("management"));
  const auto continuous = management_json->find("continuous");
  if (continuous != management_json->end() && !continuous->is_null()) {
    SHADAN_ASSIGN_OR_RETURN(const ObjectCheck watch, management.object("continuous"));
    for (const char* member : {"pairs", "probes", "ok", "failed"}) {
      SHADAN_RETURN_IF_ERROR(watch.integer(member));
    }
    SHADAN_RETURN_IF_ERROR(watch.time("first_failed_ms"));
    SHADAN_RETURN_IF_ERROR(watch.stringOrNull("excluded_because"));
  }
  SHADAN_ASSIGN_OR_RETURN(const ObjectCheck flows, report.object("established_flows"));
  SHADAN_RETURN_IF_ERROR(flows.integer("checked"));
  SHADAN_RETURN_IF_ERROR(flows.integer("cut"));
  SHADAN_ASSIGN_OR_RETURN(const ObjectCheck audit, report.object("audit"));
  SHADAN_RETURN_IF_ERROR(audit.boolean("verified"));
  SHADAN_RETURN_IF_ERROR(audit.integer("entries"));
  SHADAN_RETURN_IF_ERROR(audit.string("detail"));
  SHADAN_ASSIGN_OR_RETURN(const Json* failures, report.array("failures"));
  for (size_t i = 0; i < failures->size(); ++i) {
    if (!(*failures)[i].is_string()) {
      return errorAt(jsonPointerAppend(report.pointerOf("failures"), i), "must be a string");
    }
  }
  return okStatus();
}

Status checkHeader(const ObjectCheck& report) {
  SHADAN_ASSIGN_OR_RETURN(const Json* version, report.member("report_version"));
  if (*version != Json(kReportFormatVersion)) {
    return errorAt(report.pointerOf("report_version"),
                   "must be " + std::to_string(kReportFormatVersion) +
                       " (the report format this shadanctl reads)");
  }
  SHADAN_RETURN_IF_ERROR(report.oneOfStrings("verdict", {"pass", "fail"}));
  SHADAN_RETURN_IF_ERROR(report.string("scenario"));
  SHADAN_RETURN_IF_ERROR(report.string("scenario_description"));
  SHADAN_ASSIGN_OR_RETURN(const ObjectCheck parameters, report.object("parameters"));
  for (const auto& [name, value] : parameters.value().items()) {
    if (!value.is_string()) return errorAt(parameters.pointerOf(name), "must be a string");
  }
  SHADAN_RETURN_IF_ERROR(report.string("policy"));
  SHADAN_RETURN_IF_ERROR(report.string("policy_file"));
  SHADAN_ASSIGN_OR_RETURN(const Json* sha256, report.member("policy_sha256"));
  const bool hex64 = sha256->is_string() && sha256->get_ref<const std::string&>().size() == 64 &&
                     sha256->get_ref<const std::string&>().find_first_not_of("0123456789abcdef") ==
                         std::string::npos;
  if (!hex64) {
    return errorAt(report.pointerOf("policy_sha256"), "must be 64 lower-case hex digits");
  }
  SHADAN_RETURN_IF_ERROR(report.string("lab"));
  SHADAN_RETURN_IF_ERROR(report.string("started_at"));
  if (!parseRfc3339UtcMillis(report.value()["started_at"].get_ref<const std::string&>()).ok()) {
    return errorAt(report.pointerOf("started_at"),
                   "must be an RFC 3339 UTC time (2026-12-06T10:00:00.000Z)");
  }
  return report.time("duration_ms");
}

}  // namespace

Result<Json> checkReportJson(const Json& report) {
  const ObjectCheck root(report, "");
  SHADAN_RETURN_IF_ERROR(root.isObject());
  SHADAN_RETURN_IF_ERROR(checkHeader(root));
  SHADAN_RETURN_IF_ERROR(eachObject(root, "steps", checkStep));
  SHADAN_RETURN_IF_ERROR(checkGateways(root));
  SHADAN_RETURN_IF_ERROR(eachObject(root, "probes", checkProbe));
  SHADAN_RETURN_IF_ERROR(eachObject(root, "faults", checkFault));
  SHADAN_RETURN_IF_ERROR(checkSummaries(root));
  return report;
}

}  // namespace shadan::drill

#include "agents/planner/lockout_report.h"

#include <string_view>

#include "agents/planner/lockout_check.h"
#include "agents/planner/lockout_match.h"
#include "agents/planner/lockout_ruleset.h"

namespace shadan::agent {
namespace lockout_detail {
namespace {

using nlohmann::json;

std::string renderValue(const json& value);

std::string renderList(const json& items, std::string_view separator) {
  std::string out;
  for (const json& item : items) {
    if (!out.empty()) out += separator;
    out += renderValue(item);
  }
  return out;
}

std::string renderValue(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number() || value.is_boolean()) return value.dump();
  if (value.is_array()) return renderList(value, ", ");
  if (value.is_object() && value.size() == 1) {
    const auto [key, inner_ptr] = soleEntry(value);
    const json& inner = *inner_ptr;
    if (key == "prefix" && inner.is_object()) {
      return renderValue(inner.value("addr", json())) + "/" + inner.value("len", json()).dump();
    }
    if (key == "range" && inner.is_array()) return renderList(inner, "-");
    if (key == "set")
      return "{ " + (inner.is_array() ? renderList(inner, ", ") : renderValue(inner)) + " }";
    if (key == "concat" && inner.is_array()) return renderList(inner, " . ");
    if (key == "elem" && inner.is_object()) return renderValue(inner.value("val", json()));
    if ((key == "payload" || key == "meta" || key == "ct") && inner.is_object()) {
      std::string out = key == "payload" ? inner.value("protocol", "payload") : key;
      if (inner.contains("dir")) out += " " + renderValue(inner["dir"]);
      if (inner.contains("field")) out += " " + renderValue(inner["field"]);
      if (inner.contains("key")) out += " " + renderValue(inner["key"]);
      return out;
    }
    if (inner.is_null()) return key;
  }
  return value.dump();
}

std::string renderStatement(const json& statement) {
  if (!statement.is_object() || statement.size() != 1) return statement.dump();
  const auto [key, inner_ptr] = soleEntry(statement);
  const json& inner = *inner_ptr;
  if (key == "match" && inner.is_object()) {
    const std::string op = inner.value("op", "==");
    return renderValue(inner.value("left", json())) + (isEqualityOp(op) ? " " : " " + op + " ") +
           renderValue(inner.value("right", json()));
  }
  if ((key == "jump" || key == "goto") && inner.is_object()) {
    return key + " " + renderValue(inner.value("target", json()));
  }
  if (key == "reject") {
    if (inner.is_object() && inner.contains("type")) {
      return "reject with " + renderValue(inner["type"]) +
             (inner.contains("expr") ? " " + renderValue(inner["expr"]) : "");
    }
    return "reject";
  }
  if (key == "vmap" && inner.is_object()) {
    std::string out = renderValue(inner.value("key", json())) + " vmap ";
    const json data = inner.value("data", json());
    if (data.is_object() && data.contains("set") && data["set"].is_array()) {
      std::string elements;
      for (const json& pair : data["set"]) {
        if (!elements.empty()) elements += ", ";
        if (pair.is_array() && pair.size() == 2) {
          elements += renderValue(pair[0]) + " : " + renderStatement(pair[1]);
        } else {
          elements += pair.dump();
        }
      }
      return out + "{ " + elements + " }";
    }
    return out + renderValue(data);
  }
  return key;  // accept, drop, counter, log, masquerade, ...
}

}  // namespace

std::string renderRule(const json& rule) {
  std::string out;
  const json expr = rule.value("expr", json::array());
  for (const json& statement : expr) {
    if (!out.empty()) out += " ";
    out += renderStatement(statement);
  }
  return out;
}

}  // namespace lockout_detail

const char* lockoutSeverityName(LockoutSeverity severity) {
  return severity == LockoutSeverity::kDrops ? "drops" : "may_drop";
}

const char* flowDirectionName(FlowDirection direction) {
  return direction == FlowDirection::kToManagement ? "to_management" : "from_management";
}

std::string describeLockoutFinding(const LockoutFinding& finding) {
  std::string where = finding.family + " " + finding.table + " " + finding.chain;
  if (finding.chain != finding.base_chain) where += " (from " + finding.base_chain + ")";
  if (finding.rule_index >= 0) {
    where += " rule " + std::to_string(finding.rule_index);
    if (finding.handle) where += " handle " + std::to_string(*finding.handle);
  }
  return where + " `" + finding.rule + "` " + lockoutSeverityName(finding.severity) + " " +
         finding.flow + " (" + finding.management + ", hook " + finding.hook +
         "): " + finding.reason;
}

}  // namespace shadan::agent

#include "agents/planner/lockout_check.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agents/planner/lockout_match.h"
#include "agents/planner/lockout_report.h"
#include "agents/planner/lockout_ruleset.h"
#include "common/ip_prefix.h"

namespace shadan::agent {
namespace {

using lockout_detail::anyChain;
using lockout_detail::ChainInfo;
using lockout_detail::Flow;
using lockout_detail::indexRuleset;
using lockout_detail::MatchEvaluator;
using lockout_detail::namedSet;
using lockout_detail::NumInterval;
using lockout_detail::rangeOf;
using lockout_detail::renderRule;
using lockout_detail::rulesetItems;
using lockout_detail::soleEntry;
using lockout_detail::TableInfo;
using lockout_detail::Tri;
using lockout_detail::triAnd;
using nlohmann::json;

// How far the kernel follows jumps (NFT_JUMP_STACK_SIZE); deeper nesting cannot be loaded.
constexpr int kMaxJumpDepth = 16;

bool isHarmlessStatement(std::string_view key) {
  static const std::vector<std::string_view> kHarmless = {
      "counter", "log",   "mangle", "notrack", "dup",       "fwd",        "set",           "map",
      "flow",    "meter", "last",   "secmark", "ct helper", "ct timeout", "ct expectation"};
  return std::find(kHarmless.begin(), kHarmless.end(), key) != kHarmless.end();
}

bool isNatStatement(std::string_view key) {
  return key == "snat" || key == "dnat" || key == "masquerade" || key == "redirect";
}

class ChainWalker {
 public:
  ChainWalker(const TableInfo& table, const ChainInfo& base, const Flow& flow,
              std::vector<LockoutFinding>& findings)
      : table_(table), base_(base), flow_(flow), matcher_(table, flow), findings_(findings) {}

  void run() {
    bool certain = true;
    const Outcome outcome = walk(base_, certain, 0);
    if (outcome == Outcome::kReturn && base_.policy == "drop") {
      record(base_, -1, nullptr, certain,
             "the chain's policy is drop and no rule accepts the flow");
    }
  }

 private:
  enum class Outcome { kAccept, kDrop, kReturn };

  // `certain`: every packet of the flow gets here (no possible accept or return before); it is
  // cleared when a rule possibly ends the chain for some packets of the flow.
  Outcome walk(const ChainInfo& chain, bool& certain, int depth) {
    stack_.push_back(&chain);
    for (size_t index = 0; index < chain.rules.size(); ++index) {
      const json& rule = *chain.rules[index];
      auto outcome = walkRule(chain, static_cast<int>(index), rule, certain, depth);
      if (outcome) {
        stack_.pop_back();
        return *outcome;
      }
    }
    stack_.pop_back();
    return Outcome::kReturn;
  }

  std::optional<Outcome> walkRule(const ChainInfo& chain, int index, const json& rule,
                                  bool& certain, int depth) {
    const json expr = rule.value("expr", json::array());
    if (!expr.is_array()) return std::nullopt;
    Tri applies = Tri::kYes;
    for (const json& statement : expr) {
      if (applies == Tri::kNo) return std::nullopt;
      if (!statement.is_object() || statement.size() != 1) {
        applies = triAnd(applies, Tri::kMaybe);
        continue;
      }
      const auto [key, inner_ptr] = soleEntry(statement);
      const json& inner = *inner_ptr;
      if (key == "match") {
        if (!inner.is_object()) {
          applies = triAnd(applies, Tri::kMaybe);
          continue;
        }
        applies =
            triAnd(applies, matcher_.match(inner.value("left", json()), inner.value("op", "=="),
                                           inner.value("right", json())));
      } else if (key == "vmap") {
        if (auto outcome = walkVmap(chain, index, rule, inner, applies, certain, depth)) {
          return outcome;
        }
      } else if (isVerdict(key) || isNatStatement(key) || key == "reject") {
        if (auto outcome = verdict(key, inner, applies, chain, index, rule, certain, depth)) {
          return outcome;
        }
      } else if (!isHarmlessStatement(key)) {
        // limit, quota, ct count, synproxy, xt, anything newer: applies to some packets only.
        applies = triAnd(applies, Tri::kMaybe);
      }
    }
    return std::nullopt;
  }

  static bool isVerdict(std::string_view key) {
    return key == "accept" || key == "drop" || key == "continue" || key == "return" ||
           key == "jump" || key == "goto" || key == "queue";
  }

  // Elements of a verdict map are disjoint: each acts as "key == element -> verdict".
  std::optional<Outcome> walkVmap(const ChainInfo& chain, int index, const json& rule,
                                  const json& vmap, Tri applies, bool& certain, int depth) {
    if (!vmap.is_object()) return std::nullopt;
    const json key = vmap.value("key", json());
    const json data = vmap.value("data", json());
    const json* elements = nullptr;
    if (data.is_object() && data.contains("set")) {
      elements = &data["set"];
    } else if (const json* named = namedSet(table_, data)) {
      if (auto it = named->find("elem"); it != named->end()) elements = &*it;
    }
    if (elements == nullptr || !elements->is_array()) return std::nullopt;
    for (const json& pair : *elements) {
      if (!pair.is_array() || pair.size() != 2 || !pair[1].is_object() || pair[1].size() != 1) {
        continue;
      }
      const Tri element_applies = triAnd(applies, matcher_.match(key, "==", pair[0]));
      const auto [verdict_key, verdict_inner_ptr] = soleEntry(pair[1]);
      const json& verdict_inner = *verdict_inner_ptr;
      if (auto outcome = verdict(verdict_key, verdict_inner, element_applies, chain, index, rule,
                                 certain, depth)) {
        return outcome;
      }
    }
    return std::nullopt;
  }

  std::optional<Outcome> verdict(const std::string& key, const json& inner, Tri applies,
                                 const ChainInfo& chain, int index, const json& rule, bool& certain,
                                 int depth) {
    if (applies == Tri::kNo) return std::nullopt;
    // Control flow depends on the rule alone: a rule that applies to the flow applies to every
    // packet of it that gets here. Certainty (whether any packet gets here) only sets severity.
    const bool applies_all = applies == Tri::kYes;
    if (key == "accept" || isNatStatement(key)) {
      ++accepts_seen_;
      if (applies_all) return Outcome::kAccept;
      certain = false;
      return std::nullopt;
    }
    if (key == "drop" || key == "reject") {
      const char* reason =
          !applies_all ? "the rule's matches may apply to the flow (state or fields the check "
                         "cannot see)"
          : certain    ? "the rule's matches all apply to the flow"
                       : "the rule's matches all apply to the flow; an earlier rule may accept "
                         "some of its packets first";
      record(chain, index, &rule, applies_all && certain, reason);
      if (applies_all) return Outcome::kDrop;
      return std::nullopt;
    }
    if (key == "queue") {
      record(chain, index, &rule, false, "the flow may be queued to a userspace program");
      if (applies_all) return Outcome::kAccept;  // its fate is the program's, not this chain's
      certain = false;
      return std::nullopt;
    }
    if (key == "return") {
      if (applies_all) return Outcome::kReturn;
      certain = false;
      return std::nullopt;
    }
    if (key == "jump" || key == "goto") {
      const std::string target = inner.is_object() ? inner.value("target", "") : "";
      auto it = table_.chains.find(target);
      if (it == table_.chains.end() || depth + 1 >= kMaxJumpDepth ||
          std::find(stack_.begin(), stack_.end(), &it->second) != stack_.end()) {
        return std::nullopt;  // the kernel refuses such rulesets; nothing sensible to follow
      }
      if (applies_all) {
        const Outcome outcome = walk(it->second, certain, depth + 1);
        if (outcome != Outcome::kReturn || key == "goto") return outcome;
        return std::nullopt;
      }
      // Only some packets go there: what happens inside is possible, never certain, and if the
      // target can accept, the rules after this one no longer see every packet.
      const int accepts_before = accepts_seen_;
      bool sub_certain = false;
      (void)walk(it->second, sub_certain, depth + 1);
      if (accepts_seen_ != accepts_before || key == "goto") certain = false;
      return std::nullopt;
    }
    return std::nullopt;  // continue
  }

  void record(const ChainInfo& chain, int index, const json* rule, bool definite,
              std::string reason) {
    LockoutFinding finding;
    finding.family = table_.family;
    finding.table = table_.name;
    finding.base_chain = base_.name;
    finding.hook = base_.hook.value_or("");
    finding.chain = chain.name;
    finding.rule_index = index;
    if (rule != nullptr) {
      if (auto it = rule->find("handle"); it != rule->end() && it->is_number_unsigned()) {
        finding.handle = it->get<uint64_t>();
      }
      finding.rule = renderRule(*rule);
    } else {
      finding.rule = "policy drop";
    }
    finding.direction = flow_.direction;
    finding.flow = flow_.description;
    finding.management = flow_.rule->description;
    finding.severity = definite ? LockoutSeverity::kDrops : LockoutSeverity::kMayDrop;
    finding.reason = std::move(reason);
    if (std::find(findings_.begin(), findings_.end(), finding) == findings_.end()) {
      findings_.push_back(std::move(finding));
    }
  }

  const TableInfo& table_;
  const ChainInfo& base_;
  const Flow& flow_;
  MatchEvaluator matcher_;
  std::vector<LockoutFinding>& findings_;
  std::vector<const ChainInfo*> stack_;
  int accepts_seen_ = 0;
};

std::optional<uint32_t> protoNumber(L4Proto proto) {
  switch (proto) {
    case L4Proto::kAny:
      return std::nullopt;
    case L4Proto::kTcp:
      return 6;
    case L4Proto::kUdp:
      return 17;
    case L4Proto::kIcmp:
      return 1;
    case L4Proto::kIcmpv6:
      return 58;
    case L4Proto::kSctp:
      return 132;
  }
  return std::nullopt;
}

Flow makeFlow(const ManagementRule& rule, FlowDirection direction) {
  Flow flow;
  flow.direction = direction;
  flow.management = rangeOf(rule.prefix);
  flow.proto = protoNumber(rule.proto);
  if (rule.port) flow.management_ports = NumInterval{*rule.port, *rule.port};
  flow.description = std::string(l4ProtoName(rule.proto)) +
                     (direction == FlowDirection::kToManagement ? " to " : " from ") +
                     rule.prefix.toString() +
                     (rule.port ? " port " + std::to_string(*rule.port) : std::string());
  flow.rule = &rule;
  return flow;
}

std::vector<FlowDirection> directionsOf(const std::string& hook) {
  if (hook == "input") return {FlowDirection::kFromManagement};
  if (hook == "output") return {FlowDirection::kToManagement};
  if (hook == "forward" || hook == "prerouting" || hook == "postrouting") {
    return {FlowDirection::kToManagement, FlowDirection::kFromManagement};
  }
  return {};  // ingress and anything else: not evaluated (see the header)
}

}  // namespace

Result<std::vector<LockoutFinding>> checkManagementPath(
    const nlohmann::json& ruleset, const std::vector<ManagementRule>& management,
    std::string_view own_table) {
  SHADAN_ASSIGN_OR_RETURN(auto items, rulesetItems(ruleset));
  SHADAN_ASSIGN_OR_RETURN(auto tables, indexRuleset(*items));

  std::vector<LockoutFinding> findings;
  for (const TableInfo& table : tables) {
    if (table.family == "inet" && table.name == own_table) continue;
    const bool sees_v4 = table.family == "ip" || table.family == "inet";
    const bool sees_v6 = table.family == "ip6" || table.family == "inet";
    if (!sees_v4 && !sees_v6) continue;  // netdev, bridge, arp: see the header
    for (const std::string& chain_name : table.chain_order) {
      const ChainInfo& chain = table.chains.at(chain_name);
      if (!chain.hook) continue;
      for (const ManagementRule& rule : management) {
        const bool v4 = rule.prefix.family() == IpFamily::kV4;
        if (v4 ? !sees_v4 : !sees_v6) continue;
        for (FlowDirection direction : directionsOf(*chain.hook)) {
          const Flow flow = makeFlow(rule, direction);
          ChainWalker(table, chain, flow, findings).run();
        }
      }
    }
  }
  return findings;
}

bool rulesetHasNat(const nlohmann::json& ruleset) {
  return anyChain(ruleset, [](const json& chain) { return chain.value("type", "") == "nat"; });
}

bool rulesetHasFlowtable(const nlohmann::json& ruleset) {
  return anyChain(
      ruleset, [](const json&) { return true; }, "flowtable");
}

}  // namespace shadan::agent

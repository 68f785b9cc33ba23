#pragma once

// The libnftables JSON ruleset (`nft -j list ruleset`) as the lockout check reads it: tables with
// their chains (listing order = evaluation order), rules and named sets. Internal to the
// lockout check; the public interface is agents/planner/lockout_check.h.

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace shadan::agent::lockout_detail {

struct ChainInfo {
  std::string name;
  std::optional<std::string> hook;
  std::string policy;
  std::vector<const nlohmann::json*> rules;  // listing order = evaluation order
};

struct TableInfo {
  std::string family;
  std::string name;
  std::vector<std::string> chain_order;
  std::map<std::string, ChainInfo> chains;
  std::map<std::string, const nlohmann::json*> sets;  // named sets and maps (the inner object)
};

// The "nftables" array of a ruleset document. kParse when there is none.
Result<const nlohmann::json*> rulesetItems(const nlohmann::json& ruleset);

// Indexes the items of a ruleset by table, in listing order. kParse when an item lacks a field
// every listing has, or names a table or chain not listed before it.
Result<std::vector<TableInfo>> indexRuleset(const nlohmann::json& items);

// True if an item of kind `kind` (a chain unless told) satisfies `predicate`; false for a
// document that is not a ruleset.
bool anyChain(const nlohmann::json& ruleset,
              const std::function<bool(const nlohmann::json&)>& predicate,
              std::string_view kind = "chain");

// The key and value of a one-key object (statements, verdicts, ruleset items).
// REQUIRES: `object` is an object with at least one key.
std::pair<std::string, const nlohmann::json*> soleEntry(const nlohmann::json& object);

// The named set or map "@name" of `table` (the inner object), or null when `value` names none.
const nlohmann::json* namedSet(const TableInfo& table, const nlohmann::json& value);

}  // namespace shadan::agent::lockout_detail

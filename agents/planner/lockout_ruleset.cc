#include "agents/planner/lockout_ruleset.h"

namespace shadan::agent::lockout_detail {

using nlohmann::json;

std::pair<std::string, const json*> soleEntry(const json& object) {
  auto it = object.begin();
  return {it.key(), &it.value()};
}

const json* namedSet(const TableInfo& table, const json& value) {
  if (!value.is_string()) return nullptr;
  const std::string text = value.get<std::string>();
  if (text.empty() || text[0] != '@') return nullptr;
  auto it = table.sets.find(text.substr(1));
  return it == table.sets.end() ? nullptr : it->second;
}

Result<const json*> rulesetItems(const json& ruleset) {
  if (!ruleset.is_object()) return makeError(ErrorCode::kParse, "ruleset: not a JSON object");
  auto it = ruleset.find("nftables");
  if (it == ruleset.end() || !it->is_array()) {
    return makeError(ErrorCode::kParse, "ruleset: no \"nftables\" array");
  }
  return &*it;
}

Result<std::vector<TableInfo>> indexRuleset(const json& items) {
  std::vector<TableInfo> tables;
  auto find_table = [&](const std::string& family, const std::string& name) -> TableInfo* {
    for (TableInfo& table : tables) {
      if (table.family == family && table.name == name) return &table;
    }
    return nullptr;
  };
  for (size_t i = 0; i < items.size(); ++i) {
    const json& item = items[i];
    if (!item.is_object() || item.size() != 1) {
      return makeError(ErrorCode::kParse, "ruleset item " + std::to_string(i) +
                                              ": not an object "
                                              "with one key");
    }
    const auto [kind, object_ptr] = soleEntry(item);
    const json& object = *object_ptr;
    if (kind == "metainfo") continue;
    if (kind != "table" && kind != "chain" && kind != "rule" && kind != "set" && kind != "map") {
      continue;  // flowtable, counter, quota, ...: nothing that filters
    }
    try {
      const std::string family = object.at("family").get<std::string>();
      if (kind == "table") {
        tables.push_back(TableInfo{family, object.at("name").get<std::string>(), {}, {}, {}});
        continue;
      }
      TableInfo* table = find_table(family, object.at("table").get<std::string>());
      if (table == nullptr) {
        return makeError(ErrorCode::kParse, "ruleset item " + std::to_string(i) + ": " + kind +
                                                " of an unlisted table");
      }
      if (kind == "chain") {
        ChainInfo chain;
        chain.name = object.at("name").get<std::string>();
        if (object.contains("hook")) chain.hook = object.at("hook").get<std::string>();
        chain.policy = object.value("policy", "accept");
        if (!table->chains.contains(chain.name)) table->chain_order.push_back(chain.name);
        table->chains[chain.name] = std::move(chain);
      } else if (kind == "rule") {
        auto chain = table->chains.find(object.at("chain").get<std::string>());
        if (chain == table->chains.end()) {
          return makeError(ErrorCode::kParse,
                           "ruleset item " + std::to_string(i) + ": rule of an unlisted chain");
        }
        chain->second.rules.push_back(&object);
      } else {
        table->sets[object.at("name").get<std::string>()] = &object;
      }
    } catch (const json::exception& e) {
      return makeError(ErrorCode::kParse,
                       "ruleset item " + std::to_string(i) + " (" + kind + "): " + e.what());
    }
  }
  return tables;
}

bool anyChain(const json& ruleset, const std::function<bool(const json&)>& predicate,
              std::string_view kind) {
  auto items = rulesetItems(ruleset);
  if (!items.ok()) return false;
  for (const json& item : *items.value()) {
    if (!item.is_object()) continue;
    auto it = item.find(kind);
    if (it != item.end() && it->is_object() && predicate(*it)) return true;
  }
  return false;
}

}  // namespace shadan::agent::lockout_detail

#include "agents/planner/lockout_check.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/ip_prefix.h"

namespace shadan {
namespace {

using nlohmann::json;

// How far the kernel follows jumps (NFT_JUMP_STACK_SIZE); deeper nesting cannot be loaded.
constexpr int kMaxJumpDepth = 16;

// The port range of the side of a flow that is not the management side: a client's ephemeral
// port. Wider than Linux's default (32768-60999) so other systems' clients are covered too.
constexpr uint32_t kEphemeralLow = 1024;
constexpr uint32_t kEphemeralHigh = 65535;

// Whether a match (or a whole rule) applies to every packet of a flow, to some, or to none.
enum class Tri { kNo, kMaybe, kYes };

Tri triAnd(Tri a, Tri b) {
  if (a == Tri::kNo || b == Tri::kNo) return Tri::kNo;
  if (a == Tri::kYes && b == Tri::kYes) return Tri::kYes;
  return Tri::kMaybe;
}

Tri triNot(Tri a) {
  if (a == Tri::kYes) return Tri::kNo;
  if (a == Tri::kNo) return Tri::kYes;
  return Tri::kMaybe;
}

// An inclusive interval: addresses as network-order bytes (IPv4 in the first 4), or numbers.
using Bytes = std::array<uint8_t, 16>;
struct AddrRange {
  IpFamily family = IpFamily::kV4;
  Bytes lo{};
  Bytes hi{};
};
using NumRange = std::pair<uint32_t, uint32_t>;

AddrRange rangeOf(const IpPrefix& prefix) {
  AddrRange range{prefix.family(), prefix.bytes(), prefix.bytes()};
  for (int bit = prefix.length(); bit < prefix.maxLength(); ++bit) {
    range.hi[static_cast<size_t>(bit / 8)] |= static_cast<uint8_t>(0x80u >> (bit % 8));
  }
  return range;
}

// Does one of `elements` contain all of `flow` (kYes), none overlap it (kNo), or neither?
template <typename Range>
Tri coverage(const Range& flow, const std::vector<Range>& elements) {
  bool overlaps = false;
  for (const Range& element : elements) {
    if (element.lo <= flow.lo && flow.hi <= element.hi) return Tri::kYes;
    if (element.lo <= flow.hi && flow.lo <= element.hi) overlaps = true;
  }
  return overlaps ? Tri::kMaybe : Tri::kNo;
}

struct NumInterval {
  uint32_t lo = 0;
  uint32_t hi = 0;
};

struct Flow {
  FlowDirection direction = FlowDirection::kToManagement;
  AddrRange management;
  std::optional<uint32_t> proto;  // IP protocol number; none = any protocol
  NumInterval management_ports{0, 65535};
  std::string description;
  const ManagementRule* rule = nullptr;
};

struct ChainInfo {
  std::string name;
  std::optional<std::string> hook;
  std::string policy;
  std::vector<const json*> rules;  // listing order = evaluation order
};

struct TableInfo {
  std::string family;
  std::string name;
  std::vector<std::string> chain_order;
  std::map<std::string, ChainInfo> chains;
  std::map<std::string, const json*> sets;  // named sets and maps (the inner object)
};

// ---- reading values ---------------------------------------------------------------------------

std::optional<AddrRange> addressLeaf(const json& value) {
  auto host = [](const json& text) -> std::optional<IpPrefix> {
    if (!text.is_string()) return std::nullopt;
    auto parsed = IpPrefix::parse(text.get<std::string>());
    if (!parsed.ok() || !parsed->isHost()) return std::nullopt;
    return parsed.value();
  };
  if (value.is_string()) {
    auto address = host(value);
    if (!address) return std::nullopt;
    return rangeOf(*address);
  }
  if (!value.is_object()) return std::nullopt;
  if (auto it = value.find("prefix"); it != value.end() && it->is_object()) {
    auto address = host(it->value("addr", json()));
    const json length = it->value("len", json());
    if (!address || !length.is_number_integer()) return std::nullopt;
    const int len = length.get<int>();
    if (len < 0 || len > address->maxLength()) return std::nullopt;
    return rangeOf(IpPrefix::fromBytes(address->family(), address->bytes(), len));
  }
  if (auto it = value.find("range"); it != value.end() && it->is_array() && it->size() == 2) {
    auto low = host((*it)[0]);
    auto high = host((*it)[1]);
    if (!low || !high || low->family() != high->family()) return std::nullopt;
    return AddrRange{low->family(), low->bytes(), high->bytes()};
  }
  return std::nullopt;
}

// IP protocol numbers by the names nft prints.
std::optional<uint32_t> protocolNumber(std::string_view name) {
  static const std::map<std::string_view, uint32_t> kNumbers = {
      {"icmp", 1},   {"igmp", 2},   {"tcp", 6},      {"udp", 17},       {"gre", 47},
      {"esp", 50},   {"ah", 51},    {"icmpv6", 58},  {"ipv6-icmp", 58}, {"dccp", 33},
      {"sctp", 132}, {"comp", 108}, {"udplite", 136}};
  auto it = kNumbers.find(name);
  if (it == kNumbers.end()) return std::nullopt;
  return it->second;
}

std::optional<NumInterval> numberLeaf(const json& value, bool protocol_names) {
  auto single = [&](const json& v) -> std::optional<uint32_t> {
    if (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) {
      return static_cast<uint32_t>(v.get<uint64_t>());
    }
    if (v.is_string() && protocol_names) return protocolNumber(v.get<std::string>());
    return std::nullopt;
  };
  if (auto number = single(value)) return NumInterval{*number, *number};
  if (value.is_object()) {
    if (auto it = value.find("range"); it != value.end() && it->is_array() && it->size() == 2) {
      auto low = single((*it)[0]);
      auto high = single((*it)[1]);
      if (low && high) return NumInterval{*low, *high};
    }
  }
  return std::nullopt;
}

std::optional<uint32_t> familyLeaf(const json& value) {
  if (!value.is_string()) return std::nullopt;
  const std::string name = value.get<std::string>();
  if (name == "ipv4" || name == "ip") return 4;
  if (name == "ipv6" || name == "ip6") return 6;
  return std::nullopt;
}

const json* namedSet(const TableInfo& table, const json& value) {
  if (!value.is_string()) return nullptr;
  const std::string text = value.get<std::string>();
  if (text.empty() || text[0] != '@') return nullptr;
  auto it = table.sets.find(text.substr(1));
  return it == table.sets.end() ? nullptr : it->second;
}

// Expands the right-hand side of a match (a value, an anonymous set, a flag list, a named set)
// into leaves; none if any part cannot be read (the match then possibly matches).
template <typename T>
std::optional<std::vector<T>> collect(const json& value, const TableInfo& table,
                                      const std::function<std::optional<T>(const json&)>& leaf,
                                      int depth = 0) {
  if (depth > 4) return std::nullopt;
  std::vector<T> out;
  auto add_all = [&](const json& items) -> bool {
    for (const json& item : items) {
      auto part = collect<T>(item, table, leaf, depth + 1);
      if (!part) return false;
      out.insert(out.end(), part->begin(), part->end());
    }
    return true;
  };
  if (const json* set = namedSet(table, value)) {
    // A dynamic set changes at run time (filled from the packet path): its listing proves
    // nothing.
    const json flags = set->value("flags", json::array());
    if (flags.is_array() && std::find(flags.begin(), flags.end(), "dynamic") != flags.end()) {
      return std::nullopt;
    }
    if (auto elem = set->find("elem"); elem != set->end() && !add_all(*elem)) return std::nullopt;
    return out;
  }
  if (value.is_array()) {
    if (!add_all(value)) return std::nullopt;
    return out;
  }
  if (value.is_object()) {
    if (auto it = value.find("set"); it != value.end()) {
      if (!(it->is_array() ? add_all(*it) : add_all(json::array({*it})))) return std::nullopt;
      return out;
    }
    if (auto it = value.find("elem"); it != value.end() && it->is_object()) {
      return collect<T>(it->value("val", json()), table, leaf, depth + 1);
    }
  }
  auto single = leaf(value);
  if (!single) return std::nullopt;
  out.push_back(*single);
  return out;
}

// The key and value of a one-key object (statements, verdicts, ruleset items).
std::pair<std::string, const json*> soleEntry(const json& object) {
  auto it = object.begin();
  return {it.key(), &it.value()};
}

// ---- matches ----------------------------------------------------------------------------------

bool isEqualityOp(std::string_view op) { return op == "==" || op == "in"; }

Tri applyOp(std::string_view op, Tri equal) {
  if (isEqualityOp(op)) return equal;
  if (op == "!=") return triNot(equal);
  return Tri::kMaybe;
}

class MatchEvaluator {
 public:
  MatchEvaluator(const TableInfo& table, const Flow& flow) : table_(table), flow_(flow) {}

  Tri match(const json& left, std::string_view op, const json& right) const {
    if (!left.is_object()) return Tri::kMaybe;
    if (auto it = left.find("payload"); it != left.end() && it->is_object()) {
      return payload(it->value("protocol", ""), it->value("field", ""), op, right);
    }
    if (auto it = left.find("meta"); it != left.end() && it->is_object()) {
      const std::string key = it->value("key", "");
      if (key == "l4proto") return protocol(op, right);
      if (key == "nfproto" || key == "protocol") return family(op, right);
    }
    // ct state/status/mark, iif/oif(name), marks, fib, socket, ...: state the check cannot see.
    return Tri::kMaybe;
  }

 private:
  bool isV4() const { return flow_.management.family == IpFamily::kV4; }
  bool toManagement() const { return flow_.direction == FlowDirection::kToManagement; }

  Tri payload(const std::string& proto, const std::string& field, std::string_view op,
              const json& right) const {
    if (proto == "ip" || proto == "ip6") {
      const Tri family_matches = (proto == "ip") == isV4() ? Tri::kYes : Tri::kNo;
      if (field == "saddr" || field == "daddr") {
        const bool management_side = (field == "daddr") == toManagement();
        return triAnd(family_matches, address(op, right, management_side));
      }
      if (field == "protocol" || field == "nexthdr") {
        return triAnd(family_matches, protocol(op, right));
      }
      return triAnd(family_matches, Tri::kMaybe);
    }
    // A header match implies its protocol (nft adds the dependency), whatever the operator.
    std::vector<uint32_t> implied;
    if (proto == "th") {
      implied = {6, 17, 33, 132, 136};
    } else if (auto number = protocolNumber(proto)) {
      implied = {*number};
    } else {
      return Tri::kMaybe;  // ether, vlan, arp, raw payload, ...
    }
    Tri proto_matches = Tri::kMaybe;
    if (flow_.proto) {
      proto_matches = std::find(implied.begin(), implied.end(), *flow_.proto) != implied.end()
                          ? Tri::kYes
                          : Tri::kNo;
    }
    if (field == "sport" || field == "dport") {
      const bool management_side = (field == "dport") == toManagement();
      return triAnd(proto_matches, port(op, right, management_side));
    }
    return triAnd(proto_matches, Tri::kMaybe);
  }

  Tri address(std::string_view op, const json& right, bool management_side) const {
    if (!management_side) return Tri::kMaybe;  // the gateway or some host: unknown
    auto elements = collect<AddrRange>(right, table_, [](const json& v) { return addressLeaf(v); });
    if (!elements) return Tri::kMaybe;
    std::erase_if(*elements,
                  [&](const AddrRange& r) { return r.family != flow_.management.family; });
    return applyOp(op, coverage(flow_.management, *elements));
  }

  Tri port(std::string_view op, const json& right, bool management_side) const {
    const NumInterval ports =
        management_side ? flow_.management_ports : NumInterval{kEphemeralLow, kEphemeralHigh};
    return numeric(op, right, ports, false);
  }

  Tri protocol(std::string_view op, const json& right) const {
    if (!flow_.proto) return Tri::kMaybe;
    return numeric(op, right, NumInterval{*flow_.proto, *flow_.proto}, true);
  }

  Tri numeric(std::string_view op, const json& right, NumInterval value,
              bool protocol_names) const {
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      auto bound = numberLeaf(right, protocol_names);
      if (!bound || bound->lo != bound->hi) return Tri::kMaybe;
      const uint32_t n = bound->lo;
      NumInterval accepted{0, UINT32_MAX};
      if (op == "<") {
        if (n == 0) return Tri::kNo;
        accepted.hi = n - 1;
      } else if (op == "<=") {
        accepted.hi = n;
      } else if (op == ">") {
        accepted.lo = n + 1;
      } else {
        accepted.lo = n;
      }
      return coverage(value, std::vector<NumInterval>{accepted});
    }
    auto elements = collect<NumInterval>(
        right, table_, [&](const json& v) { return numberLeaf(v, protocol_names); });
    if (!elements) return Tri::kMaybe;
    return applyOp(op, coverage(value, *elements));
  }

  Tri family(std::string_view op, const json& right) const {
    auto elements = collect<NumInterval>(right, table_, [](const json& v) {
      auto f = familyLeaf(v);
      return f ? std::optional<NumInterval>(NumInterval{*f, *f}) : std::nullopt;
    });
    if (!elements) return Tri::kMaybe;
    const uint32_t ours = isV4() ? 4 : 6;
    return applyOp(op, coverage(NumInterval{ours, ours}, *elements));
  }

  const TableInfo& table_;
  const Flow& flow_;
};

// ---- rendering (best effort, for humans) ------------------------------------------------------

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

std::string renderRule(const json& rule) {
  std::string out;
  const json expr = rule.value("expr", json::array());
  for (const json& statement : expr) {
    if (!out.empty()) out += " ";
    out += renderStatement(statement);
  }
  return out;
}

// ---- walking chains ---------------------------------------------------------------------------

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

// ---- the document -----------------------------------------------------------------------------

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

bool anyChain(const json& ruleset, const std::function<bool(const json&)>& predicate,
              std::string_view kind = "chain") {
  auto items = rulesetItems(ruleset);
  if (!items.ok()) return false;
  for (const json& item : *items.value()) {
    if (!item.is_object()) continue;
    auto it = item.find(kind);
    if (it != item.end() && it->is_object() && predicate(*it)) return true;
  }
  return false;
}

}  // namespace

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

Result<std::vector<LockoutFinding>> checkManagementPath(
    const nlohmann::json& ruleset, const std::vector<ManagementRule>& management,
    std::string_view own_table) {
  auto items = rulesetItems(ruleset);
  if (!items.ok()) return items.error();
  auto tables = indexRuleset(*items.value());
  if (!tables.ok()) return tables.error();

  std::vector<LockoutFinding> findings;
  for (const TableInfo& table : tables.value()) {
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

}  // namespace shadan

#include "agents/planner/lockout_match.h"

#include <algorithm>
#include <functional>
#include <map>

namespace shadan::agent::lockout_detail {
namespace {

using nlohmann::json;

// The port range of the side of a flow that is not the management side: a client's ephemeral
// port. Wider than Linux's default (32768-60999) so other systems' clients are covered too.
constexpr uint32_t kEphemeralLow = 1024;
constexpr uint32_t kEphemeralHigh = 65535;

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

}  // namespace

AddrRange rangeOf(const IpPrefix& prefix) {
  AddrRange range{prefix.family(), prefix.bytes(), prefix.bytes()};
  for (int bit = prefix.length(); bit < prefix.maxLength(); ++bit) {
    range.hi[static_cast<size_t>(bit / 8)] |= static_cast<uint8_t>(0x80u >> (bit % 8));
  }
  return range;
}

std::optional<uint32_t> protocolNumber(std::string_view name) {
  static const std::map<std::string_view, uint32_t> kNumbers = {
      {"icmp", 1},   {"igmp", 2},   {"tcp", 6},      {"udp", 17},       {"gre", 47},
      {"esp", 50},   {"ah", 51},    {"icmpv6", 58},  {"ipv6-icmp", 58}, {"dccp", 33},
      {"sctp", 132}, {"comp", 108}, {"udplite", 136}};
  auto it = kNumbers.find(name);
  if (it == kNumbers.end()) return std::nullopt;
  return it->second;
}

bool isEqualityOp(std::string_view op) { return op == "==" || op == "in"; }

Tri applyOp(std::string_view op, Tri equal) {
  if (isEqualityOp(op)) return equal;
  if (op == "!=") return triNot(equal);
  return Tri::kMaybe;
}

Tri MatchEvaluator::match(const json& left, std::string_view op, const json& right) const {
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

Tri MatchEvaluator::payload(const std::string& proto, const std::string& field, std::string_view op,
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

Tri MatchEvaluator::address(std::string_view op, const json& right, bool management_side) const {
  if (!management_side) return Tri::kMaybe;  // the gateway or some host: unknown
  auto elements = collect<AddrRange>(right, table_, [](const json& v) { return addressLeaf(v); });
  if (!elements) return Tri::kMaybe;
  std::erase_if(*elements, [&](const AddrRange& r) { return r.family != flow_.management.family; });
  return applyOp(op, coverage(flow_.management, *elements));
}

Tri MatchEvaluator::port(std::string_view op, const json& right, bool management_side) const {
  const NumInterval ports =
      management_side ? flow_.management_ports : NumInterval{kEphemeralLow, kEphemeralHigh};
  return numeric(op, right, ports, false);
}

Tri MatchEvaluator::protocol(std::string_view op, const json& right) const {
  if (!flow_.proto) return Tri::kMaybe;
  return numeric(op, right, NumInterval{*flow_.proto, *flow_.proto}, true);
}

Tri MatchEvaluator::numeric(std::string_view op, const json& right, NumInterval value,
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

Tri MatchEvaluator::family(std::string_view op, const json& right) const {
  auto elements = collect<NumInterval>(right, table_, [](const json& v) {
    auto f = familyLeaf(v);
    return f ? std::optional<NumInterval>(NumInterval{*f, *f}) : std::nullopt;
  });
  if (!elements) return Tri::kMaybe;
  const uint32_t ours = isV4() ? 4 : 6;
  return applyOp(op, coverage(NumInterval{ours, ours}, *elements));
}

}  // namespace shadan::agent::lockout_detail

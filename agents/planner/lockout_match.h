#pragma once

// Rule evaluation for the lockout check: whether a match expression of a foreign rule applies to
// every packet of a management flow, to some, or to none. Internal to the lockout check; the
// public interface is agents/planner/lockout_check.h.

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agents/planner/lockout_check.h"
#include "agents/planner/lockout_ruleset.h"
#include "common/ip_prefix.h"
#include "common/policy.h"

namespace shadan::agent::lockout_detail {

// Whether a match (or a whole rule) applies to every packet of a flow, to some, or to none.
enum class Tri { kNo, kMaybe, kYes };

inline Tri triAnd(Tri a, Tri b) {
  if (a == Tri::kNo || b == Tri::kNo) return Tri::kNo;
  if (a == Tri::kYes && b == Tri::kYes) return Tri::kYes;
  return Tri::kMaybe;
}

inline Tri triNot(Tri a) {
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

AddrRange rangeOf(const IpPrefix& prefix);

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

// One management flow, in one direction, as the chains see it.
struct Flow {
  FlowDirection direction = FlowDirection::kToManagement;
  AddrRange management;
  std::optional<uint32_t> proto;  // IP protocol number; none = any protocol
  NumInterval management_ports{0, 65535};
  std::string description;
  const ManagementRule* rule = nullptr;
};

// "==" and "in": the operators nft prints no symbol for.
bool isEqualityOp(std::string_view op);

// What `op` makes of whether the value equals the match's right-hand side.
Tri applyOp(std::string_view op, Tri equal);

// IP protocol numbers by the names nft prints.
std::optional<uint32_t> protocolNumber(std::string_view name);

// Evaluates one match expression (`left op right`) of a rule of `table` for `flow`: addresses,
// l4 protocols, ports and meta nfproto are understood (see lockout_check.h); anything else
// possibly matches.
class MatchEvaluator {
 public:
  // REQUIRES: `table` and `flow` outlive the evaluator.
  MatchEvaluator(const TableInfo& table, const Flow& flow) : table_(table), flow_(flow) {}

  Tri match(const nlohmann::json& left, std::string_view op, const nlohmann::json& right) const;

 private:
  bool isV4() const { return flow_.management.family == IpFamily::kV4; }
  bool toManagement() const { return flow_.direction == FlowDirection::kToManagement; }

  Tri payload(const std::string& proto, const std::string& field, std::string_view op,
              const nlohmann::json& right) const;
  Tri address(std::string_view op, const nlohmann::json& right, bool management_side) const;
  Tri port(std::string_view op, const nlohmann::json& right, bool management_side) const;
  Tri protocol(std::string_view op, const nlohmann::json& right) const;
  Tri numeric(std::string_view op, const nlohmann::json& right, NumInterval value,
              bool protocol_names) const;
  Tri family(std::string_view op, const nlohmann::json& right) const;

  const TableInfo& table_;
  const Flow& flow_;
};

}  // namespace shadan::agent::lockout_detail

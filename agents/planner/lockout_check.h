#pragma once

// Self-lockout check (ARCHITECTURE.md, safety rule 1): before applying, look at the live
// ruleset for foreign rules that would drop a management flow. Pure: the caller lists the
// ruleset (`nft -j list ruleset`, libnftables JSON, see libnftables-json(5)) and decides what to
// do with the findings (warn, or refuse where the policy says so).
//
// Our `accept` for management cannot save a packet that another table drops: every base chain of
// a hook sees the packet, and a drop in any of them is final. So every foreign base chain is
// evaluated, statically, for each management flow:
//   - families ip, ip6 and inet (a table of family ip sees only the IPv4 flows, ip6 only the
//     IPv6 ones); netdev, bridge and arp tables, and inet `ingress` chains, are not evaluated:
//     they sit below IP routing and rarely filter by L3/L4 tuple; a known gap.
//   - hooks input and prerouting see packets coming from the management side, output and
//     postrouting packets going to it, forward and prerouting/postrouting both (prerouting and
//     postrouting also carry forwarded traffic). A gateway whose own address lies inside a
//     management prefix is not modelled separately.
//   - a flow is "to management" (daddr in the prefix, dport = the rule's port) or "from
//     management" (saddr in the prefix, sport = the port). The other side's address is unknown
//     (any), its port is an ephemeral one (1024-65535): so a drop of tcp dport 22 never hits
//     management, but one of dport 30000-40000 might.
// Each match expression of a rule matches a flow definitely, possibly or not at all. Addresses
// (single, prefix, range, anonymous or named set, `!=`), l4 protocols (meta l4proto, ip
// protocol, ip6 nexthdr, the protocol a tcp/udp/... header match implies), ports (number, range,
// set, comparisons, `!=`) and meta nfproto are understood; everything else (ct state, iif/oif,
// marks, fib, limits, ...) possibly matches. Rules are walked in order:
//   - a rule whose matches all definitely match decides for every packet of the flow that gets
//     to it: accept (or a NAT statement) ends the chain safely, drop/reject ends it with a
//     finding, jump/goto/return are taken;
//   - a rule that possibly matches is walked too, but the chain goes on after it: a possible
//     drop/reject/queue is a finding, a possible accept/return means later rules no longer see
//     every packet of the flow;
//   - severity is kDrops when every packet of the flow certainly gets to a drop that definitely
//     matches (no possible accept or return before it), kMayDrop otherwise;
//   - jump/goto are followed (depth < 16 like the kernel, cycle-safe); verdict-map elements act
//     as one rule each;
//   - reaching the end of a base chain with policy drop is a finding (rule_index -1).
// Our own table (`inet <own_table>`) is skipped.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/policy.h"
#include "common/result.h"

namespace shadan::agent {

enum class LockoutSeverity {
  kDrops,    // the rule or policy certainly drops (some packets of) the management flow
  kMayDrop,  // it does depending on state the check cannot see (ct state, interface, marks, ...)
};

// "drops" / "may_drop".
const char* lockoutSeverityName(LockoutSeverity severity);

enum class FlowDirection { kToManagement, kFromManagement };

// "to_management" / "from_management".
const char* flowDirectionName(FlowDirection direction);

struct LockoutFinding {
  std::string family;      // table family: ip, ip6 or inet
  std::string table;       // table name
  std::string base_chain;  // the hooked chain the evaluation started from
  std::string hook;        // its hook
  std::string chain;       // the chain holding the rule (base_chain unless reached by jump/goto)
  std::optional<uint64_t> handle;  // the rule's handle; none for a chain policy
  int rule_index = -1;             // 0-based position in `chain`; -1 for the chain policy
  std::string rule;                // the rule in nft syntax (best effort), or "policy drop"
  FlowDirection direction = FlowDirection::kToManagement;
  std::string flow;        // e.g. "tcp to 10.99.0.10 port 8443"
  std::string management;  // the management rule's description
  LockoutSeverity severity = LockoutSeverity::kMayDrop;
  std::string reason;

  friend bool operator==(const LockoutFinding&, const LockoutFinding&) = default;
};

// One line for logs and the CLI: "inet filter input (rule 3, handle 7) `tcp dport 8443 drop`
// drops tcp to 10.99.0.10 port 8443: ...".
std::string describeLockoutFinding(const LockoutFinding& finding);

// Evaluates `ruleset` (the whole `nft -j list ruleset` document) for each management rule.
// Findings are in ruleset order (table, base chain), then management rule order, then
// direction; duplicates are dropped. Errors (kParse): the document is not a libnftables JSON
// ruleset, or an item in it lacks a field every listing has (family, table, name, ...).
Result<std::vector<LockoutFinding>> checkManagementPath(
    const nlohmann::json& ruleset, const std::vector<ManagementRule>& management,
    std::string_view own_table = "shadan");

// True if any chain of the ruleset is of type nat (masquerade, snat, dnat, redirect live
// there). Where NAT is configured, isolating a segment must also delete its conntrack entries:
// a NATed flow keeps its translation as long as its entry lives.
bool rulesetHasNat(const nlohmann::json& ruleset);

// True if the ruleset declares a flowtable: offloaded flows skip the forward hook, so their
// conntrack entries must go too.
bool rulesetHasFlowtable(const nlohmann::json& ruleset);

}  // namespace shadan::agent

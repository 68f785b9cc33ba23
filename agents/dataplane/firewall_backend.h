#pragma once

// The agent's only view of the packet filter. The real implementation is NftablesBackend
// (libnftables over netlink); unit tests use hand-written fakes.
//
// Threading: implementations are not thread-safe. One backend is owned and called by one thread
// (libnftables keeps global state), for the life of the process.

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace shadan::agent {

// The table Shadan owns and replaces whole; it never edits any other table.
inline constexpr std::string_view kTableFamily = "inet";
inline constexpr std::string_view kTableName = "shadan";

// What the kernel holds for our table, read back after an apply.
struct TableSnapshot {
  bool present = false;
  std::string listing;  // `list table inet shadan` output; empty when absent
  std::string sha256;   // hex SHA-256 of `listing` (of "" when absent)
};

// One rule of our table that carries a counter, with the counter as the kernel holds it at the
// time of the read (since the rule was created: every apply replaces the table, and with it every
// counter, whole).
struct RuleCounter {
  std::string chain;
  // The rule in the planner's syntax (`ip saddr @seg_office_v4 ip daddr != @allow_x_v4 counter
  // drop`), so that it can be compared with a line of a plan; "" when the rule holds anything
  // the planner never writes in a counted rule (then no plan line equals it).
  std::string rule;
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

class FirewallBackend {
 public:
  virtual ~FirewallBackend() = default;

  // Runs `nft_script` (nft syntax, as produced by the planner) as ONE netlink transaction: the
  // kernel takes all of it or none of it. On error the ruleset is unchanged and the message
  // carries the kernel's / parser's reason.
  virtual Status apply(std::string_view nft_script) = 0;

  // Reads our table back from the kernel.
  virtual Result<TableSnapshot> readTable() = 0;

  // The whole ruleset (every table of every family), for checks that look at foreign tables.
  virtual Result<std::string> listRuleset() = 0;

  // Every table but ours, as libnftables JSON (`nft -j list ruleset`, libnftables-json(5), with
  // the objects of our table left out), for the self-lockout check and NAT detection, which must
  // read foreign rules structurally.
  virtual Result<nlohmann::json> listForeignRulesetJson() = 0;

  // The counted rules of our table, in listing order, with their counters as they are now: for
  // `status`, which tells how much each isolation dropped. Read afresh on every call: counters
  // move with traffic, not with the ruleset, so they are never cached and never part of
  // readTable()'s listing or hash. kNotFound when our table is absent. Optional: a backend that
  // cannot read counters keeps this default (kUnavailable), and status shows no numbers.
  virtual Result<std::vector<RuleCounter>> readRuleCounters() {
    return makeError(ErrorCode::kUnavailable, "this firewall backend does not read counters");
  }
};

using FirewallBackendPtr = std::unique_ptr<FirewallBackend>;

}  // namespace shadan::agent

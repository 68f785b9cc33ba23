#pragma once

// What the escalation-ladder benchmarks share (bench/ladder_bench.cc: plan and apply time per
// rung; bench/ladder_packet_bench.cc: per-packet cost against the number of quarantined hosts):
// the benchmark policy, the quarantined hosts, one Isolation list per rung, and a rule count.

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "agents/planner/planner.h"
#include "common/ip_prefix.h"
#include "common/isolation_scope.h"
#include "common/policy.h"

namespace shadan::bench {

// bench/ladder.policy.json: policies/examples/lab.json with `office` widened to 10.20.0.0/16
// (room for 10,000 quarantined /32s) and `inet` named as the uplink of gateway gw, so that
// every rung applies on the one gateway. The addresses are those of the standard lab
// (cli/lab/lab.h), so the same policy drives real traffic there.
inline constexpr const char* kLadderGateway = "gw";
inline constexpr const char* kLadderProfile = "full";

inline Policy loadLadderPolicy() {
  const std::string path = std::string(SHADAN_SOURCE_DIR) + "/bench/ladder.policy.json";
  Result<LoadedPolicy> loaded = loadPolicyFile(path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "cannot load %s: %s\n", path.c_str(), loaded.error().message.c_str());
    std::exit(1);
  }
  return loaded->policy;
}

// `count` quarantined hosts of `office`, each its own isolation (as the agent holds them): odd
// addresses from 10.20.1.1 on (10.20.1.1, 10.20.1.3, …), so no two are adjacent and the
// interval set holds exactly `count` elements with nothing to merge. 10.20.0.0/24, where the
// lab's gateway and office host live, is never quarantined. REQUIRES: count <= 32,000.
inline std::vector<agent::Isolation> quarantinedHosts(int count) {
  std::vector<agent::Isolation> out;
  out.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    const int index = 256 + 2 * i + 1;
    const std::string text =
        "10.20." + std::to_string(index / 256) + "." + std::to_string(index % 256);
    Result<IpPrefix> host = IpPrefix::parse(text);
    if (!host.ok()) {
      std::fprintf(stderr, "bad host %s: %s\n", text.c_str(), host.error().message.c_str());
      std::exit(1);
    }
    out.push_back(agent::Isolation{"office", kLadderProfile, IsolationScope::kHost, *host});
  }
  return out;
}

// The four rungs of the ladder, one isolation each (the host rung quarantines one host).
struct LadderCase {
  std::string name;
  std::vector<agent::Isolation> isolations;
};

inline std::vector<LadderCase> ladderRungs() {
  return {
      {"host", quarantinedHosts(1)},
      {"segment", {agent::Isolation{"office", kLadderProfile}}},
      {"uplink", {agent::Isolation{"", kLadderProfile, IsolationScope::kUplink}}},
      {"island", {agent::Isolation{"", kLadderProfile, IsolationScope::kIsland}}},
  };
}

inline std::string planLadder(const Policy& policy, const std::vector<agent::Isolation>& rungs) {
  Result<agent::DataplanePlan> plan = agent::planGateway(policy, kLadderGateway, rungs);
  if (!plan.ok()) {
    std::fprintf(stderr, "planGateway: %s\n", plan.error().message.c_str());
    std::exit(1);
  }
  return plan->nft_script;
}

// Rules in an nft script or listing of the planner's shape: the lines inside a `chain … { }`
// block, less the `type … hook …` line. Set elements are not rules, so a set of 10,000 hosts
// counts nothing here.
inline size_t countRules(std::string_view script) {
  size_t rules = 0;
  bool in_chain = false;
  size_t start = 0;
  while (start < script.size()) {
    size_t end = script.find('\n', start);
    if (end == std::string_view::npos) end = script.size();
    std::string_view line = script.substr(start, end - start);
    start = end + 1;
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos) continue;
    line.remove_prefix(first);
    if (line.starts_with("chain ")) {
      in_chain = true;
    } else if (in_chain && line.starts_with("}")) {
      in_chain = false;
    } else if (in_chain && !line.starts_with("type ")) {
      ++rules;
    }
  }
  return rules;
}

}  // namespace shadan::bench

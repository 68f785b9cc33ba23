#include "agents/drop_counters.h"

#include <set>
#include <sstream>
#include <string>

namespace shadan::agent {
namespace {

// The drop lines of a plan's script, without their indentation.
std::set<std::string> dropLines(std::string_view nft_script) {
  constexpr std::string_view kDrop = " counter drop";
  std::set<std::string> lines;
  std::istringstream in{std::string(nft_script)};
  for (std::string line; std::getline(in, line);) {
    const size_t start = line.find_first_not_of('\t');
    if (start == std::string::npos || line.size() < kDrop.size() ||
        line.compare(line.size() - kDrop.size(), kDrop.size(), kDrop) != 0) {
      continue;
    }
    lines.insert(line.substr(start));
  }
  return lines;
}

}  // namespace

DropCounts attributeDrops(const Policy& policy, std::string_view gateway_id,
                          const std::vector<Isolation>& isolations,
                          const std::vector<RuleCounter>& counters) {
  DropCounts counts;
  // Every quarantined host of one segment, profile and family has the same drop lines (the set
  // holds the addresses, the rules name the set): plan one of them, not ten thousand.
  std::map<std::string, std::set<std::string>> host_drops;
  const auto sum_of = [&](const std::set<std::string>& drops) {
    DropCount count;
    for (const RuleCounter& counter : counters) {
      if (counter.rule.empty() || drops.count(counter.rule) == 0) continue;
      count.packets += counter.packets;
      count.bytes += counter.bytes;
    }
    return count;
  };
  for (const Isolation& isolation : isolations) {
    std::string host_key;
    if (isolation.host) {
      host_key = isolation.segment + ":" + isolation.profile +
                 (isolation.host->family() == IpFamily::kV4 ? ":4" : ":6");
      if (const auto cached = host_drops.find(host_key); cached != host_drops.end()) {
        counts.insert_or_assign(isolation, sum_of(cached->second));
        continue;
      }
    }
    Result<DataplanePlan> alone = planGateway(policy, gateway_id, {isolation});
    if (!alone.ok()) {
      counts.insert_or_assign(isolation, alone.error());
      continue;
    }
    const std::set<std::string> drops = dropLines(alone->nft_script);
    if (!host_key.empty()) host_drops.emplace(host_key, drops);
    counts.insert_or_assign(isolation, sum_of(drops));
  }
  return counts;
}

DropCounts readDropCounts(FirewallBackend& firewall, const Policy& policy,
                          std::string_view gateway_id, const std::vector<Isolation>& isolations) {
  if (isolations.empty()) return {};
  Result<std::vector<RuleCounter>> counters = firewall.readRuleCounters();
  if (!counters.ok()) {
    DropCounts unread;
    for (const Isolation& isolation : isolations) {
      unread.insert_or_assign(isolation, counters.error());
    }
    return unread;
  }
  return attributeDrops(policy, gateway_id, isolations, *counters);
}

}  // namespace shadan::agent

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
  for (const Isolation& isolation : isolations) {
    Result<DataplanePlan> alone = planGateway(policy, gateway_id, {isolation});
    if (!alone.ok()) {
      counts.insert_or_assign(isolation, alone.error());
      continue;
    }
    const std::set<std::string> drops = dropLines(alone->nft_script);
    DropCount count;
    for (const RuleCounter& counter : counters) {
      if (counter.rule.empty() || drops.count(counter.rule) == 0) continue;
      count.packets += counter.packets;
      count.bytes += counter.bytes;
    }
    counts.insert_or_assign(isolation, count);
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

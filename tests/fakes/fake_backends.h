#pragma once

// Hand-written fakes of the agent's side-effect interfaces, shared by unit tests. The clock and
// the audit sink are the shared ones (fake_clock.h, fake_audit_sink.h), included here.

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "agents/dataplane/conntrack_backend.h"
#include "agents/dataplane/firewall_backend.h"
#include "agents/dataplane/route_backend.h"
#include "agents/state/state_store.h"
#include "common/sha256.h"
#include "tests/fakes/fake_audit_sink.h"
#include "tests/fakes/fake_clock.h"

namespace shadan::testing {

using namespace shadan::agent;  // NOLINT: the agent under test

// Holds "the kernel's" copy of our table as the last script applied (minus the replace header).
class FakeFirewallBackend : public FirewallBackend {
 public:
  Status apply(std::string_view nft_script) override {
    scripts.emplace_back(nft_script);
    if (fail_applies > 0) {
      --fail_applies;
      return makeError(ErrorCode::kKernel, "fake kernel says no");
    }
    static constexpr std::string_view kHeader = "add table inet shadan\ndelete table inet shadan\n";
    std::string_view body = nft_script;
    if (body.substr(0, kHeader.size()) == kHeader) body.remove_prefix(kHeader.size());
    table = std::string(body);
    return okStatus();
  }
  Result<TableSnapshot> readTable() override {
    if (fail_reads) return makeError(ErrorCode::kKernel, "fake read failure");
    TableSnapshot snapshot;
    snapshot.present = !table.empty();
    snapshot.listing = table;
    snapshot.sha256 = sha256Hex(table);
    return snapshot;
  }
  Result<std::string> listRuleset() override { return "table inet foreign {}\n" + table; }
  Result<nlohmann::json> listForeignRulesetJson() override { return ruleset_json; }
  Result<std::vector<RuleCounter>> readRuleCounters() override {
    if (fail_counters) return makeError(ErrorCode::kKernel, "fake counter read failure");
    if (table.empty()) return makeError(ErrorCode::kNotFound, "table inet shadan is absent");
    return rule_counters;
  }

  // What listForeignRulesetJson() answers: foreign tables for the lockout check and NAT detection.
  nlohmann::json ruleset_json = {{"nftables", nlohmann::json::array()}};
  std::string table;                 // "" = our table absent
  std::vector<std::string> scripts;  // every script handed to apply(), in order
  int fail_applies = 0;              // the next N applies fail
  bool fail_reads = false;
  // What readRuleCounters() answers while a table is there (the test sets the numbers).
  std::vector<RuleCounter> rule_counters;
  bool fail_counters = false;
};

class FakeRouteBackend : public RouteBackend {
 public:
  Status sync(const std::vector<IpPrefix>& desired) override {
    ++syncs;
    if (fail_syncs > 0) {
      --fail_syncs;
      return makeError(ErrorCode::kKernel, "fake route failure");
    }
    routes = desired;
    std::sort(routes.begin(), routes.end());
    return okStatus();
  }
  Result<std::vector<IpPrefix>> list() override { return routes; }

  Status setLinkUp(const std::string& ifname, bool up) override {
    link_calls.emplace_back(ifname, up);
    auto link = links.find(ifname);
    if (link == links.end()) {
      return makeError(ErrorCode::kNotFound, "no interface \"" + ifname + "\"");
    }
    if (fail_link_sets > 0) {
      --fail_link_sets;
      return makeError(ErrorCode::kKernel, "fake link failure");
    }
    link->second = up;
    return okStatus();
  }
  Result<bool> isLinkUp(const std::string& ifname) override {
    auto link = links.find(ifname);
    if (link == links.end()) {
      return makeError(ErrorCode::kNotFound, "no interface \"" + ifname + "\"");
    }
    return link->second;
  }
  // Longest-prefix match of the destination's first address over `kernel_routes`, like the FIB.
  Result<std::string> outputInterfaceTo(const IpPrefix& destination) override {
    route_lookups.push_back(destination);
    if (fail_route_lookups) return makeError(ErrorCode::kKernel, "fake route lookup failure");
    const IpPrefix first =
        IpPrefix::fromBytes(destination.family(), destination.bytes(), destination.maxLength());
    const std::pair<const IpPrefix, std::string>* best = nullptr;
    for (const auto& entry : kernel_routes) {
      if (entry.first.contains(first) &&
          (best == nullptr || entry.first.length() > best->first.length())) {
        best = &entry;
      }
    }
    return best == nullptr ? std::string() : best->second;
  }

  std::vector<IpPrefix> routes;
  int syncs = 0;
  int fail_syncs = 0;

  // "The kernel's" interfaces: name -> administratively up. A name not here does not exist
  // (kNotFound); tests add the links they need and may flip them (a foreign `ip link set up`).
  std::map<std::string, bool> links;
  std::vector<std::pair<std::string, bool>> link_calls;  // every setLinkUp(), in order
  int fail_link_sets = 0;  // the next N setLinkUp() calls on a known link fail (state unchanged)
  // "The kernel's" routes for outputInterfaceTo(): prefix -> output interface. No match: "",
  // no route. An entry mapped to "" stands for an unreachable route.
  std::map<IpPrefix, std::string> kernel_routes;
  std::vector<IpPrefix> route_lookups;  // every outputInterfaceTo() destination, in order
  bool fail_route_lookups = false;
};

class FakeStateStore : public StateStore {
 public:
  Result<DesiredState> load() override { return state; }
  Status save(const DesiredState& next) override {
    ++saves;
    if (fail_saves > 0) {
      --fail_saves;
      return makeError(save_error, "fake save failure");
    }
    state = next;
    return okStatus();
  }
  Status rememberAck(int64_t seq, const std::string& envelope, int64_t at_ms,
                     int64_t keep_ms) override {
    std::erase_if(acks, [&](const auto& entry) {
      return entry.second.second < at_ms - keep_ms || entry.first == seq;
    });
    acks[seq] = {envelope, at_ms};
    return okStatus();
  }
  Result<std::vector<StoredAck>> recentAcks(int64_t since_ms, size_t limit) override {
    std::vector<StoredAck> out;
    for (const auto& [seq, entry] : acks) {
      if (entry.second >= since_ms) out.push_back(StoredAck{seq, entry.first});
    }
    if (out.size() > limit) out.erase(out.begin(), out.end() - static_cast<ptrdiff_t>(limit));
    return out;
  }

  DesiredState state;
  int saves = 0;
  int fail_saves = 0;
  ErrorCode save_error = ErrorCode::kState;                 // what a failed save says
  std::map<int64_t, std::pair<std::string, int64_t>> acks;  // seq -> (envelope, at_ms)
};

class FakeConntrackBackend : public ConntrackBackend {
 public:
  Result<size_t> deleteMatching(const std::vector<IpPrefix>& prefixes) override {
    deletions.push_back(prefixes);
    if (fail) return makeError(ErrorCode::kKernel, "fake conntrack failure");
    return entries_per_call;
  }
  Result<size_t> count(const std::vector<IpPrefix>&) override { return entries_per_call; }

  std::vector<std::vector<IpPrefix>> deletions;
  size_t entries_per_call = 3;
  bool fail = false;
};

}  // namespace shadan::testing

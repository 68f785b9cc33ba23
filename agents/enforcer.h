#pragma once

// Enforcer: makes the kernel hold a DataplanePlan, all or nothing.
//
// The nftables table is replaced in one transaction; blackhole routes follow. If the routes
// cannot be synced, the table and routes that were there before are put back, so a failed
// enforce leaves the gateway as it found it. Not thread-safe; owned by the enforcement thread
// together with the backends it borrows.

#include <vector>

#include "agents/dataplane/firewall_backend.h"
#include "agents/dataplane/route_backend.h"
#include "agents/planner/planner.h"
#include "common/result.h"

namespace shadan::agent {

struct EnforceReport {
  TableSnapshot before;  // our table before the change
  TableSnapshot after;   // read back from the kernel after the change
  std::vector<IpPrefix> routes_after;
};

class Enforcer {
 public:
  // Borrows both backends; they must outlive the Enforcer.
  Enforcer(FirewallBackend& firewall, RouteBackend& routes);

  Result<EnforceReport> enforce(const DataplanePlan& plan);

 private:
  // Puts back a table as it was read (or removes ours if it was absent), and the routes.
  Status rollback(const TableSnapshot& table, const std::vector<IpPrefix>& routes);

  FirewallBackend& firewall_;
  RouteBackend& routes_;
};

// The script that replaces our table by `snapshot` (or removes it when absent).
std::string restoreScriptFor(const TableSnapshot& snapshot);

}  // namespace shadan::agent

#include "agents/enforcer.h"

#include "common/logging.h"

namespace shadan::agent {

std::string restoreScriptFor(const TableSnapshot& snapshot) {
  std::string script = "add table inet shadan\ndelete table inet shadan\n";
  if (snapshot.present) script += snapshot.listing;
  return script;
}

Enforcer::Enforcer(FirewallBackend& firewall, RouteBackend& routes)
    : firewall_(firewall), routes_(routes) {}

Result<EnforceReport> Enforcer::enforce(const DataplanePlan& plan) {
  EnforceReport report;
  auto before = firewall_.readTable();
  if (!before.ok()) return before.error().withContext("read table before apply");
  report.before = std::move(before).value();
  auto routes_before = routes_.list();
  if (!routes_before.ok()) return routes_before.error().withContext("read routes before apply");

  // One netlink transaction: on error the kernel has taken none of it.
  if (auto applied = firewall_.apply(plan.nft_script); !applied.ok()) {
    return applied.error().withContext("nftables transaction refused, ruleset unchanged");
  }

  if (auto synced = routes_.sync(plan.blackhole_routes); !synced.ok()) {
    auto undone = rollback(report.before, routes_before.value());
    if (!undone.ok()) {
      // Both the change and its undo failed: the gateway is in an unknown state. Say so loudly;
      // the caller must not claim anything about the kernel.
      logger("enforcer")->critical("event=rollback_failed error=\"{}\"", undone.error().message);
      return makeError(ErrorCode::kKernel, "blackhole routes failed (" + synced.error().message +
                                               ") and rolling back failed too (" +
                                               undone.error().message + ")");
    }
    return synced.error().withContext("blackhole routes failed, previous ruleset restored");
  }

  auto after = firewall_.readTable();
  if (!after.ok()) return after.error().withContext("read table after apply");
  report.after = std::move(after).value();
  auto routes_after = routes_.list();
  if (!routes_after.ok()) return routes_after.error().withContext("read routes after apply");
  report.routes_after = std::move(routes_after).value();
  return report;
}

Status Enforcer::rollback(const TableSnapshot& table, const std::vector<IpPrefix>& routes) {
  SHADAN_RETURN_IF_ERROR(firewall_.apply(restoreScriptFor(table)));
  return routes_.sync(routes);
}

}  // namespace shadan::agent

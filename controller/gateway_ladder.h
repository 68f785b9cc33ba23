#pragma once

// Which rungs of the escalation ladder hold on one gateway, as GET /v1/status shows them per
// gateway ("ladder"). Facts, not intent: the rungs are read from the `isolated` labels of the
// gateway's last verified ack (isolationLabel(), common/isolation_scope.h); the orders add what
// labels do not carry (whether the uplink's links were set down) and what the gateway has not
// acked yet. Pure: order_views.cc gathers the inputs from the store.
//
//   {"segments": {"lgwan": ["full"]},          segment -> profiles it is isolated under
//    "hosts": {"lgwan": ["10.20.0.5"]},         segment -> quarantined hosts (canonical form)
//    "hosts_unlisted": ["lgwan"],               segments whose ack said "lgwan/*": more hosts
//                                               than an ack lists (see the gateway itself)
//    "uplink": {"profiles": ["full"], "link_down": true} | null,
//    "island": {"profiles": ["full"]} | null,
//    "acked_at": "<RFC 3339>" | null,           the ack the rungs come from; null: none yet
//    "pending": [{"order_id","action","scope","segment"?}]}
//                                               orders for this gateway without its ack yet
//
// "link_down": true once the gateway applied an uplink isolate with link_down, until it applied
// an uplink restore (an isolate without link_down does not set links up); null when it applied
// no uplink order among those status reads (a local `shadan-agent isolate --uplink`, say).

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/isolation_scope.h"

namespace shadan::controller {

// An order this gateway has been sent (or is held for) without an ack.
struct PendingRung {
  std::string order_id;
  std::string action;
  IsolationScope scope = IsolationScope::kSegment;
  std::string segment;  // "" for uplink and island
};

struct GatewayLadder {
  std::map<std::string, std::vector<std::string>> segments;
  std::map<std::string, std::vector<std::string>> hosts;
  std::set<std::string> hosts_unlisted;
  std::vector<std::string> uplink;  // profiles; empty: the uplink is not cut
  std::vector<std::string> island;  // profiles; empty: not an island
  std::optional<bool> link_down;
  std::optional<std::string> acked_at;
  std::vector<PendingRung> pending;

  nlohmann::json toJson() const;
};

// The rungs `labels` (an ack's state_after.isolated) name. Labels that are not
// isolationLabel()s (an agent that predates the ladder sends only "segment:profile", which
// is one) are skipped.
GatewayLadder ladderFromLabels(const std::vector<std::string>& labels);

// The same from a gateway's stored last state ({"isolated":[...],"acked_at":...}; "" or
// anything unreadable: no rung, no acked_at).
GatewayLadder ladderFromLastState(const std::string& last_state_json);

}  // namespace shadan::controller

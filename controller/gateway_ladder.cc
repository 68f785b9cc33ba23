#include "controller/gateway_ladder.h"

#include <algorithm>

#include "common/ip_prefix.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

void addOnce(std::vector<std::string>& list, std::string value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(std::move(value));
}

}  // namespace

GatewayLadder ladderFromLabels(const std::vector<std::string>& labels) {
  GatewayLadder ladder;
  for (const std::string& label : labels) {
    if (!isIsolationLabel(label)) continue;
    const size_t colon = label.rfind(':');
    const std::string target = label.substr(0, colon);
    std::string profile = label.substr(colon + 1);
    if (target == "@uplink") {
      addOnce(ladder.uplink, std::move(profile));
      continue;
    }
    if (target == "@island") {
      addOnce(ladder.island, std::move(profile));
      continue;
    }
    const size_t slash = target.find('/');
    if (slash == std::string::npos) {
      addOnce(ladder.segments[target], std::move(profile));
      continue;
    }
    const std::string segment = target.substr(0, slash);
    const std::string host = target.substr(slash + 1);
    if (host == "*") {
      ladder.hosts_unlisted.insert(segment);
      ladder.hosts[segment];  // the segment has quarantined hosts even if none is listed
      continue;
    }
    // isIsolationLabel checked that the host parses.
    addOnce(ladder.hosts[segment], IpPrefix::parse(host).value().toString());
  }
  return ladder;
}

GatewayLadder ladderFromLastState(const std::string& last_state_json) {
  if (last_state_json.empty()) return GatewayLadder{};
  const json state = json::parse(last_state_json, nullptr, false);
  if (!state.is_object()) return GatewayLadder{};
  std::vector<std::string> labels;
  if (state.contains("isolated") && state["isolated"].is_array()) {
    for (const json& entry : state["isolated"]) {
      if (entry.is_string()) labels.push_back(entry.get<std::string>());
    }
  }
  GatewayLadder ladder = ladderFromLabels(labels);
  if (state.contains("acked_at") && state["acked_at"].is_string()) {
    ladder.acked_at = state["acked_at"].get<std::string>();
  }
  return ladder;
}

json GatewayLadder::toJson() const {
  json pending_json = json::array();
  for (const PendingRung& rung : pending) {
    json entry = {{"order_id", rung.order_id},
                  {"action", rung.action},
                  {"scope", isolationScopeName(rung.scope)}};
    if (!rung.segment.empty()) entry["segment"] = rung.segment;
    pending_json.push_back(std::move(entry));
  }
  json uplink_json = nullptr;
  if (!uplink.empty()) {
    uplink_json = {{"profiles", uplink}, {"link_down", link_down ? json(*link_down) : json()}};
  }
  return {{"segments", segments},
          {"hosts", hosts},
          {"hosts_unlisted", hosts_unlisted},
          {"uplink", std::move(uplink_json)},
          {"island", island.empty() ? json() : json{{"profiles", island}}},
          {"acked_at", acked_at ? json(*acked_at) : json()},
          {"pending", std::move(pending_json)}};
}

}  // namespace shadan::controller

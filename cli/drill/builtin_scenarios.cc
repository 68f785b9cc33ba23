#include "cli/drill/builtin_scenarios.h"

namespace shadan::drill {
namespace {

// Isolate one segment, probe it cut from everything (established flows, UDP and every family
// too) while its path to the controller stays open, restore it with two operators.
// `shadanctl drill run --segment SEG` runs this one.
constexpr std::string_view kSegmentCut = R"json({
  "shadan_scenario": 1,
  "name": "segment-cut",
  "description": "Isolate one segment with a TTL, check that it is cut from every other segment and from the internet (established flows, UDP and IPv6 too) while it still reaches the controller, then restore it with two operators and check that everything is open again.",
  "parameters": {
    "segment": {"description": "the segment to cut"}
  },
  "steps": [
    {"do": "expect", "label": "before the cut", "phase": "before", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"segment": "*"}, "proto": "tcp", "family": "all", "expected": "open"},
      {"from": {"segment": "*"}, "to": {"segment": "${segment}"}, "proto": "tcp", "family": "all", "expected": "open"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "family": "all", "expected": "open"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "icmp", "family": "all", "expected": "open"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "udp", "port": 53, "family": "all", "expected": "open"},
      {"from": {"segment": "${segment}"}, "to": {"node": "controller"}, "proto": "tcp", "family": "all", "expected": "open"}
    ]},
    {"do": "isolate", "label": "cut the segment", "segment": "${segment}", "profile": "full", "ttl_s": 900,
     "reason": "drill segment-cut: isolate ${segment}"},
    {"do": "wait", "label": "every gateway applied the cut", "until": "applied", "timeout_ms": 10000},
    {"do": "expect", "label": "during the cut", "phase": "during", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"segment": "*"}, "proto": "tcp", "family": "all", "expected": "cut"},
      {"from": {"segment": "*"}, "to": {"segment": "${segment}"}, "proto": "tcp", "family": "all", "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "family": "all", "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "icmp", "family": "all", "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "udp", "port": 53, "family": "all", "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "family": "all", "established": true, "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"node": "controller"}, "proto": "tcp", "family": "all", "expected": "open"}
    ]},
    {"do": "restore", "label": "restore with two operators", "segment": "${segment}", "profile": "full", "approvers": 2,
     "reason": "drill segment-cut: restore ${segment}"},
    {"do": "wait", "label": "every gateway applied the restore", "until": "applied", "timeout_ms": 10000},
    {"do": "expect", "label": "after the restore", "phase": "after", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"segment": "*"}, "proto": "tcp", "family": "all", "expected": "open"},
      {"from": {"segment": "*"}, "to": {"segment": "${segment}"}, "proto": "tcp", "family": "all", "expected": "open"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "family": "all", "expected": "open"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "icmp", "family": "all", "expected": "open"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "udp", "port": 53, "family": "all", "expected": "open"},
      {"from": {"segment": "${segment}"}, "to": {"node": "controller"}, "proto": "tcp", "family": "all", "expected": "open"}
    ]}
  ]
})json";

// A targeted-attack terminal beacons to its C2 server, the IDS sees it (a local Suricata rule,
// sid 1000001), the terminal is quarantined at once and the operators cut the internet uplink.
// Written for policies/examples/municipality-three-tier.json; its names are parameters.
constexpr std::string_view kUeda2015 = R"json({
  "shadan_scenario": 1,
  "name": "ueda-2015",
  "description": "An IDS alert (Suricata EVE) about a terminal beaconing to its C2 server quarantines the terminal automatically; then two operators cut the internet uplink, and restore both. Written for policies/examples/municipality-three-tier.json.",
  "parameters": {
    "segment": {"description": "the segment of the infected terminal", "default": "lgwan"},
    "internet_segment": {"description": "the segment whose traffic to the internet the uplink carries", "default": "internet-zone"},
    "uplink_gateway": {"description": "the gateway of the internet uplink", "default": "inet-gw"}
  },
  "response": {
    "rules": [
      {"name": "c2-beacon", "match": {"detector": "ids-1", "format": "eve", "signature_ids": [1000001]},
       "action": "quarantine-host", "host": "internal", "ttl_s": 3600}
    ]
  },
  "steps": [
    {"do": "expect", "label": "before the alert", "phase": "before", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "expected": "open"},
      {"from": {"segment": "${internet_segment}"}, "to": {"node": "internet"}, "proto": "tcp", "expected": "open"},
      {"from": {"node": "internet"}, "to": {"segment": "${internet_segment}"}, "proto": "tcp", "expected": "open"}
    ]},
    {"do": "alert", "label": "the IDS sees the C2 beacon", "detector": "ids-1", "format": "eve",
     "signature_id": 1000001, "title": "LOCAL Emdivi-style C2 beacon", "severity": "high",
     "src": {"segment": "${segment}"}, "dst": {"node": "internet"}},
    {"do": "wait", "label": "the terminal is quarantined", "until": "applied", "timeout_ms": 10000},
    {"do": "expect", "label": "the terminal is quarantined", "phase": "during", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "established": true, "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"segment": "${internet_segment}"}, "proto": "tcp", "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"node": "controller"}, "proto": "tcp", "expected": "open"}
    ]},
    {"do": "isolate", "label": "cut the internet uplink", "scope": "uplink", "gateways": ["${uplink_gateway}"],
     "ttl_s": 1800, "approvers": 2, "reason": "drill ueda-2015: C2 beacon seen, cut the internet uplink"},
    {"do": "wait", "label": "the uplink is cut", "until": "applied", "timeout_ms": 10000},
    {"do": "expect", "label": "the uplink is cut", "phase": "during", "probes": [
      {"from": {"segment": "${internet_segment}"}, "to": {"node": "internet"}, "proto": "tcp", "expected": "cut"},
      {"from": {"segment": "${internet_segment}"}, "to": {"node": "internet"}, "proto": "icmp", "expected": "cut"},
      {"from": {"node": "internet"}, "to": {"segment": "${internet_segment}"}, "proto": "tcp", "expected": "cut"},
      {"from": {"segment": "${internet_segment}"}, "to": {"node": "controller"}, "proto": "tcp", "expected": "open"}
    ]},
    {"do": "restore", "label": "reopen the uplink", "scope": "uplink", "gateways": ["${uplink_gateway}"], "approvers": 2,
     "reason": "drill ueda-2015: C2 blocked upstream, reopen the uplink"},
    {"do": "restore", "label": "release the terminal", "scope": "host", "hosts": [{"segment": "${segment}"}], "family": "ipv4",
     "approvers": 2, "reason": "drill ueda-2015: terminal reimaged"},
    {"do": "wait", "label": "every gateway applied the restores", "until": "applied", "timeout_ms": 10000},
    {"do": "expect", "label": "after the restore", "phase": "after", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "expected": "open"},
      {"from": {"segment": "${internet_segment}"}, "to": {"node": "internet"}, "proto": "tcp", "expected": "open"},
      {"from": {"node": "internet"}, "to": {"segment": "${internet_segment}"}, "proto": "tcp", "expected": "open"}
    ]}
  ]
})json";

// A worm scanning from one floor, then from the other: each scanner is quarantined, and the
// second within the window escalates to the whole segment. Written for
// policies/examples/fleet.json (office: two floors, one gateway each).
constexpr std::string_view kWormContainment = R"json({
  "shadan_scenario": 1,
  "name": "worm-containment",
  "description": "Zeek sees a host scanning: it is quarantined; a second host of the same segment scans within ten minutes and the controller escalates to isolating the whole segment. Written for policies/examples/fleet.json.",
  "parameters": {
    "segment": {"description": "the segment the worm spreads in", "default": "office"},
    "first_gateway": {"description": "the gateway in front of the first infected host", "default": "core-gw"},
    "second_gateway": {"description": "the gateway in front of the second infected host", "default": "edge-gw"}
  },
  "response": {
    "rules": [
      {"name": "worm-scan", "match": {"detector": "zeek-1", "format": "zeek", "notes": ["Scan::Address_Scan"], "segments": ["${segment}"]},
       "action": "quarantine-host", "host": "src", "ttl_s": 3600, "escalate": {"hosts": 2, "window_s": 600}}
    ]
  },
  "steps": [
    {"do": "expect", "label": "before the worm", "phase": "before", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"segment": "*"}, "proto": "tcp", "family": "all", "expected": "open"},
      {"from": {"segment": "${segment}", "gateway": "${first_gateway}"}, "to": {"segment": "${segment}", "gateway": "${second_gateway}"}, "proto": "tcp", "expected": "open"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "family": "all", "expected": "open"}
    ]},
    {"do": "alert", "label": "the first host scans", "detector": "zeek-1", "format": "zeek", "note": "Scan::Address_Scan",
     "title": "scanned 64 hosts on 445/tcp in 30 s", "src": {"segment": "${segment}", "gateway": "${first_gateway}"}},
    {"do": "wait", "label": "the first host is quarantined", "until": "applied", "timeout_ms": 10000},
    {"do": "expect", "label": "one host quarantined", "phase": "during", "probes": [
      {"from": {"segment": "${segment}", "gateway": "${first_gateway}"}, "to": {"segment": "*"}, "proto": "tcp", "expected": "cut"},
      {"from": {"segment": "${segment}", "gateway": "${first_gateway}"}, "to": {"node": "internet"}, "proto": "tcp", "expected": "cut"},
      {"from": {"segment": "${segment}", "gateway": "${second_gateway}"}, "to": {"node": "internet"}, "proto": "tcp", "expected": "open"},
      {"from": {"segment": "${segment}", "gateway": "${first_gateway}"}, "to": {"node": "controller"}, "proto": "tcp", "expected": "open"}
    ]},
    {"do": "alert", "label": "the second host scans", "detector": "zeek-1", "format": "zeek", "note": "Scan::Address_Scan",
     "title": "scanned 64 hosts on 445/tcp in 30 s", "src": {"segment": "${segment}", "gateway": "${second_gateway}"}},
    {"do": "wait", "label": "the segment is isolated", "until": "segment-isolated", "segment": "${segment}", "timeout_ms": 15000},
    {"do": "expect", "label": "the segment is isolated", "phase": "during", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"segment": "*"}, "proto": "tcp", "family": "all", "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "family": "all", "expected": "cut"},
      {"from": {"segment": "*"}, "to": {"segment": "${segment}"}, "proto": "tcp", "family": "all", "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"node": "controller"}, "proto": "tcp", "family": "all", "expected": "open"}
    ]},
    {"do": "restore", "label": "restore the segment", "segment": "${segment}", "approvers": 2,
     "reason": "drill worm-containment: worm removed, restore ${segment}"},
    {"do": "restore", "label": "release the scanners", "scope": "host", "hosts": [{"segment": "${segment}"}], "family": "ipv4",
     "approvers": 2, "reason": "drill worm-containment: scanners reimaged"},
    {"do": "wait", "label": "every gateway applied the restores", "until": "applied", "timeout_ms": 10000},
    {"do": "expect", "label": "after the restore", "phase": "after", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"segment": "*"}, "proto": "tcp", "family": "all", "expected": "open"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "family": "all", "expected": "open"}
    ]}
  ]
})json";

// The controller dies while a segment is isolated: the cut must hold without it, and the
// restore must work once it is back.
constexpr std::string_view kControllerLoss = R"json({
  "shadan_scenario": 1,
  "name": "controller-loss",
  "description": "Isolate a segment, stop the controller in the middle of the isolation and check that the cut holds without it, start it again, wait for every agent to reconnect, then restore with two operators.",
  "parameters": {
    "segment": {"description": "the segment to cut"}
  },
  "steps": [
    {"do": "expect", "label": "before the cut", "phase": "before", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"segment": "*"}, "proto": "tcp", "family": "all", "expected": "open"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "family": "all", "expected": "open"}
    ]},
    {"do": "isolate", "label": "cut the segment", "segment": "${segment}", "ttl_s": 900,
     "reason": "drill controller-loss: isolate ${segment}"},
    {"do": "wait", "label": "every gateway applied the cut", "until": "applied", "timeout_ms": 10000},
    {"do": "fault", "label": "the controller dies", "kind": "stop-controller"},
    {"do": "wait", "label": "the agents notice", "ms": 3000},
    {"do": "expect", "label": "the cut holds without the controller", "phase": "during", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"segment": "*"}, "proto": "tcp", "family": "all", "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "family": "all", "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "family": "all", "established": true, "expected": "cut"}
    ]},
    {"do": "fault", "label": "the controller comes back", "kind": "start-controller"},
    {"do": "wait", "label": "every agent reconnected", "until": "connected", "timeout_ms": 30000},
    {"do": "expect", "label": "the cut still holds", "phase": "during", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "family": "all", "expected": "cut"},
      {"from": {"segment": "${segment}"}, "to": {"node": "controller"}, "proto": "tcp", "family": "all", "expected": "open"}
    ]},
    {"do": "restore", "label": "restore with two operators", "segment": "${segment}", "approvers": 2,
     "reason": "drill controller-loss: restore ${segment}"},
    {"do": "wait", "label": "every gateway applied the restore", "until": "applied", "timeout_ms": 10000},
    {"do": "expect", "label": "after the restore", "phase": "after", "probes": [
      {"from": {"segment": "${segment}"}, "to": {"segment": "*"}, "proto": "tcp", "family": "all", "expected": "open"},
      {"from": {"segment": "${segment}"}, "to": {"node": "internet"}, "proto": "tcp", "family": "all", "expected": "open"}
    ]}
  ]
})json";

}  // namespace

const std::vector<BuiltinScenario>& builtinScenarios() {
  static const std::vector<BuiltinScenario> kScenarios = {
      {"segment-cut", "", kSegmentCut},
      {"ueda-2015", "municipality-three-tier.json", kUeda2015},
      {"worm-containment", "fleet.json", kWormContainment},
      {"controller-loss", "", kControllerLoss},
  };
  return kScenarios;
}

const BuiltinScenario* findBuiltinScenario(std::string_view name) {
  for (const BuiltinScenario& scenario : builtinScenarios()) {
    if (scenario.name == name) return &scenario;
  }
  return nullptr;
}

}  // namespace shadan::drill

#!/usr/bin/env bash
# make demo: the real thing in a lab of network namespaces (cli/lab/specs/fleet.json).
#
#   ctl      runs shadan-controller (API :8443, agent hub :8444) on the protected mgmt segment
#   core-gw  gateway for office floor 1, servers and mgmt     } each runs shadan-agent, dialling
#   edge-gw  gateway for office floor 2 and the internet      } the controller over mutual TLS
#
# Keys, CA, certificates and the trust file are made with shadanctl; both agents are enrolled by
# an operator; office (which borders both gateways) is isolated through `shadanctl isolate`, real
# packets show the cut on both gateways while the management channel holds; the restore needs
# two operators' signatures; then the detector path: a Suricata EVE alert for one office host,
# forwarded by `shadanctl forward eve`, quarantines that host only (its neighbours keep
# working), an operator releases it as a false positive, the next alert is confirmed and then
# restored by two operators; every gateway's signed ack is printed; the audit logs are verified;
# everything is torn down, even on failure. Every expectation is checked: exit 1 if one fails.
#
#   usage: scripts/demo.sh [BUILD_DIR]      (root)
set -euo pipefail

BUILD_DIR=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
FLEET_TAG=d
# shellcheck source=lib/fleet.sh
source "$ROOT/scripts/lib/fleet.sh"
trap fleet_cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=lib/expect.sh
source "$ROOT/scripts/lib/expect.sh"

say "Building lab $LAB: controller host + two gateways; keys, CA, trust file (shadanctl)"
fleet_init
say "Starting shadan-controller on ctl and shadan-agent on both gateways; enrolling the agents"
echo "    (no trust on first use: an operator approves each agent's key)"
fleet_start || { echo "demo: the fleet did not come up; logs: SHADAN_DEMO_KEEP=1 keeps them" >&2; exit 1; }

say "Before: every segment reaches every other, across both gateways"
expect reachable office1 servers
expect reachable office2 inet
expect reachable office2 servers -6
expect reachable inet office1 --icmp

say "Isolating office through the controller (borders core-gw and edge-gw: two dispatches)"
start=$(date +%s%N)
if op sato isolate office --reason "demo: ransomware beacon from office" --ticket DEMO-1 \
  --wait 15 | indent; then
  echo "  (order -> last ack: $((($(date +%s%N) - start) / 1000000)) ms, shadanctl included)"
else
  fail "isolate: not applied on every gateway"
fi

say "During: office is cut on both gateways, both directions, TCP and ICMP, IPv4 and IPv6"
expect cut office1 servers
expect cut servers office1 -6
expect cut office2 inet
expect cut inet office2 --icmp
expect cut office2 servers
expect cut office1 office2 -6
say "…while the other segments and the management channel keep working"
expect reachable servers inet
expect reachable inet servers -6
expect cut office1 ctl --tcp 22
op sato status | indent
connected=$(op sato agents 2>/dev/null | grep -cE '^(core|edge)-gw +approved +[0-9a-f]+ +true' || true)
[[ $connected == 2 ]] || fail "the agents' channel to the controller did not survive the cut"

say "Restore: requested by sato, approved by sato and ito (the controller's key alone cannot)"
set +e
restore_out=$(op sato restore office --reason "demo: office cleaned, INC closed" --json)
restore_rc=$?
set -e
[[ $restore_rc -eq 4 ]] || fail "restore: expected exit 4 (awaiting approval), got $restore_rc"
order=$(sed -n 's/.*"order_id":"\([^"]*\)".*/\1/p' <<<"$restore_out")
echo "    order $order awaiting approval"
op ito approvals | indent
expect cut office1 servers
op sato approve "$order" --key "$WORK/ops/sato.key" --yes | indent
expect cut office1 servers
op ito approve "$order" --key "$WORK/ops/ito.key" --yes | indent
applied_everywhere() {
  [[ $(op sato status --order "$1" 2>/dev/null | grep -cE '^(core|edge)-gw +applied') == 2 ]]
}
wait_for 15 "the restore to be applied on both gateways" applied_everywhere "$order"
op sato status --order "$order" | indent

say "After: office is back"
expect reachable office1 servers
expect reachable office2 inet -6
expect reachable inet office1 --icmp

say "Detector path: Suricata alerts on office1; the controller quarantines that one host"
echo "    (rule eve-malware: signature 2024897 -> quarantine-host, the internal address, TTL 1 h)"
# One EVE alert record as Suricata writes it (eve.json, event_type alert).
eve_alert() {
  printf '{"timestamp":"%s","flow_id":%s,"in_iface":"office","event_type":"alert",%s}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%S.000000+0000)" "$1" \
    '"src_ip":"10.20.1.2","src_port":49152,"dest_ip":"203.0.113.2","dest_port":443,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2024897,"rev":3,"signature":"ET MALWARE ransomware beacon (demo)","category":"A Network Trojan was detected","severity":1}' \
    >>"$WORK/ctl/eve.json"
}
forward_eve() {
  op suricata forward eve "$WORK/ctl/eve.json" --once --from-start \
    --state "$WORK/ctl/forward-eve.state" 2>&1 | indent
}
# The order of the newest alert (GET /v1/alerts lists newest first).
newest_alert_order() {
  op sato alerts --json 2>/dev/null | grep -o '"order_id": *"[^"]*"' | head -n 1 |
    sed 's/.*"\([^"]*\)"$/\1/'
}
json_order_id() { grep -o '"order_id": *"[^"]*"' | tail -n 1 | sed 's/.*"\([^"]*\)"$/\1/'; }
eve_alert 1001
start=$(date +%s%N)
forward_eve
auto=$(newest_alert_order)
[[ -n $auto ]] || fail "the alert led to no order"
if wait_for 15 "the quarantine to be applied on both gateways" applied_everywhere "$auto"; then
  echo "  (alert -> quarantine applied on both gateways: $((($(date +%s%N) - start) / 1000000)) ms," \
    "forwarder start and 0.2 s polling included)"
fi
op sato alerts --limit 1 | indent
expect cut office1 servers
expect cut office1 inet
expect cut inet office1 --icmp
say "…its neighbours are not: office2 (same segment, other gateway), servers, the internet"
expect reachable office2 servers
expect reachable office2 inet
expect reachable servers inet
op sato approvals | indent

say "Release: an operator finds it was a false positive; the agents lift what is still automatic"
release_out=$(op sato release "$auto" --reason "demo: false positive, test traffic" --json)
released=$(json_order_id <<<"$release_out")
[[ -n $released ]] || fail "release: no release order in: $release_out"
wait_for 15 "the release to be applied on both gateways" applied_everywhere "$released"
expect reachable office1 servers

say "The beacon again: quarantined again, and this time an operator confirms it (no TTL now)"
eve_alert 1002
forward_eve
auto=$(newest_alert_order)
wait_for 15 "the second quarantine" applied_everywhere "$auto"
confirm_out=$(op sato confirm "$auto" --reason "demo: EDR confirms the infection" --json)
confirmed=$(json_order_id <<<"$confirm_out")
[[ -n $confirmed ]] || fail "confirm: no order in: $confirm_out"
wait_for 15 "the confirmation to be applied on both gateways" applied_everywhere "$confirmed"
expect cut office1 servers
expect reachable office2 servers
set +e
op sato release "$auto" --reason "demo: too late, it is confirmed" >/dev/null 2>&1
late_rc=$?
set -e
[[ $late_rc -ne 0 ]] || fail "a confirmed quarantine was released like an automatic one"
echo "    a confirmed quarantine is no longer released on its own (exit $late_rc)"

say "Restore office1: an operator's host restore, approved by sato and ito"
set +e
host_out=$(op sato restore --host 10.20.1.2 --reason "demo: office1 reimaged" --json)
host_rc=$?
set -e
[[ $host_rc -eq 4 ]] || fail "host restore: expected exit 4 (awaiting approval), got $host_rc"
order=$(sed -n 's/.*"order_id":"\([^"]*\)".*/\1/p' <<<"$host_out")
op sato approve "$order" --key "$WORK/ops/sato.key" --yes | indent
op ito approve "$order" --key "$WORK/ops/ito.key" --yes | indent
wait_for 15 "the host restore on both gateways" applied_everywhere "$order"
expect reachable office1 servers

say "Stopping agents and controller (each writes a final signed audit checkpoint)"
fleet_stop || fail "a daemon did not stop cleanly"
echo "    stopped"

say "Audit: each gateway's log and the controller's verify (chain, checkpoints, signatures)"
for gw in "${GATEWAYS[@]}"; do
  if ! "$CTL" audit verify "$WORK/$gw/state" --key "$WORK/$gw/state/agent.pub" | indent; then
    fail "audit log of $gw does not verify"
  fi
done
if ! "$CTL" audit verify "$WORK/ctl/state/audit.log" --key "$WORK/ctl/signing.pub" | indent; then
  fail "the controller's audit log does not verify"
fi
echo "  the controller's copies of the agents' logs (shipped over the channel, chain-checked):"
for gw in "${GATEWAYS[@]}"; do
  copy=$WORK/ctl/state/agents/$gw/audit.log
  if ! verified=$("$CTL" audit verify "$copy" --key "$WORK/$gw/state/agent.pub"); then
    fail "the controller's copy of $gw's log does not verify"
  fi
  indent <<<"$verified"
  if grep -q "no checkpoints" <<<"$verified"; then
    fail "the controller's copy of $gw's log carries no checkpoint"
  fi
  # A stopping agent ships its last entries (daemon_stop) and a final checkpoint before it
  # exits: the copy is the agent's log byte for byte, and a checkpoint covers all of it.
  if ! cmp -s "$copy" "$WORK/$gw/state/audit.log"; then
    fail "the controller's copy of $gw's log is not the agent's log"
  fi
  if ! cmp -s "$copy.checkpoints" "$WORK/$gw/state/audit.log.checkpoints"; then
    fail "the controller's copy of $gw's checkpoints is not the agent's"
  fi
done
"$CTL" audit show "$WORK/core-gw/state" --segment office | tail -n 6 | indent

say "Tearing everything down"
fleet_cleanup
trap - EXIT
if ip netns list | grep -q "^sd-$LAB-"; then
  echo "  FAIL: namespaces of lab $LAB are still there" >&2
  exit 1
fi
echo "  controller, agents and lab $LAB removed"

if ((failures > 0)); then
  echo "demo: $failures expectation(s) failed" >&2
  exit 1
fi
echo
echo "demo: all expectations held"

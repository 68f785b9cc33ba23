#!/usr/bin/env bash
# The controller on etcd in the demo's fleet lab (docs/ha.md): a real etcd member on ctl (https,
# client certificates required, certificates from `shadanctl ca issue`), a real
# shadan-controller whose store is that etcd (FLEET_STORE=etcd), real agents on core-gw and
# edge-gw, real nftables and real packets.
#
#   1. enrollment and an isolate of office through the etcd store: applied on both gateways, the
#      cut proved with packets; the records are in etcd (etcdctl), no controller.db exists; the
#      controller leads (status, /shadan/leader)
#   2. the controller killed -9 and started again: it leads once the killed one's lease ran
#      out, reads the isolation back from etcd, the agents come back, the restore (two
#      operators) reopens office
#   3. a second controller (ctl2) on the same etcd: it follows (ctl leads), and an isolate made
#      on its API reaches the gateways connected to ctl, applied once each (packets); ctl
#      killed -9: the agents (given both controllers) move to ctl2, which leads and serves an
#      isolate and its restore; ctl back and ctl2 stopped: they move back
#   4. etcd killed -9 (every member gone): an isolate is refused 503 store_unavailable with
#      nothing recorded or sent, a controller started then exits naming the store, the gateways
#      keep their cuts; etcd started again on its data:
#      the same isolate is served, applied once on each gateway
#   5. every audit chain verifies (the gateways', the controllers', the copies)
#
#   usage: scripts/etcd-fleet.sh [BUILD_DIR]      (root; exit 77 when not root)
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "etcd-fleet: needs root (network namespaces, nftables); skipped" >&2
  exit 77
fi
BUILD_DIR=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
FLEET_TAG=e
FLEET_STORE=etcd
# shellcheck source=lib/fleet.sh
source "$ROOT/scripts/lib/fleet.sh"
# Every agent knows both controllers of step 3 (ctl's hub :8444, ctl2's :8446): it dials ctl
# first and moves to the other when the one it is connected to goes away.
FLEET_CONTROLLERS="$CONTROLLER_IP:8444,$CONTROLLER_IP:8446"
CTL2_PID=
trap '[[ -z $CTL2_PID ]] || kill -KILL "$CTL2_PID" 2>/dev/null; fleet_cleanup' EXIT
trap 'exit 130' INT TERM
# shellcheck source=lib/expect.sh
source "$ROOT/scripts/lib/expect.sh"
FLEET_WHY="etcd fleet"
# shellcheck source=lib/fleet-orders.sh
source "$ROOT/scripts/lib/fleet-orders.sh"

etcd_keys() { fleet_etcdctl get --prefix "/shadan/$1" --keys-only | sed '/^$/d'; }
# office_cut ORDER WHERE: the isolate of office ORDER (made WHERE) applied on both gateways,
# once each, and the cut proved with packets.
office_cut() {
  [[ -n $1 ]] || fail "isolate $2: no order id"
  wait_for 15 "core-gw's ack" applied_on "$1" core-gw
  wait_for 15 "edge-gw's ack" applied_on "$1" edge-gw
  expect cut office1 servers
  expect cut office2 inet
  once_everywhere "$1"
}
leading() { FLEET_QUIET=1 op sato status --json 2>/dev/null | jq -e '.cluster.leading == true' >/dev/null; }
segment_isolated() { op sato status 2>/dev/null | grep -qE "^$1 +ISOLATED"; }

say "The controller on etcd, lab $LAB"
fleet_init
fleet_start || { echo "etcd-fleet: the fleet did not come up (SHADAN_DEMO_KEEP=1 keeps logs)" >&2; exit 1; }
expect reachable office1 servers
expect reachable office2 inet

say "1. Enrollment and an isolate through the etcd store"
order=$(isolate_office "etcd store")
office_cut "$order" "through the etcd store"
if [[ -e $WORK/ctl/state/controller.db ]]; then
  fail "the controller made a SQLite store although its config names etcd"
fi
wait_for 10 "the controller to lead" leading
if [[ $(fleet_etcdctl get /shadan/leader --print-value-only) == ctl ]]; then
  echo "  [ok  ] it leads: /shadan/leader names it"
else
  fail "/shadan/leader does not name the controller"
fi
agents=$(etcd_keys agents/)
orders=$(etcd_keys orders/)
indent <<<"$agents"
if [[ $(wc -l <<<"$agents") == 2 ]] && grep -qx "/shadan/orders/$order" <<<"$orders"; then
  echo "  [ok  ] both enrollments and the order are records in etcd"
else
  fail "etcd does not hold both agents and order $order"
fi

say "2. The controller killed -9 and started again on the same etcd"
kill9 0
fleet_controller_start || fail "the controller did not start again"
# The killed one's lease runs out (leader_ttl_s, 3 s) before the new process can lead.
wait_for 15 "the restarted controller to lead" leading
if segment_isolated office; then
  echo "  [ok  ] the restarted controller reads office's isolation back from etcd"
else
  fail "the restarted controller does not know office is isolated"
fi
for gw in "${GATEWAYS[@]}"; do wait_for 30 "$gw to connect again" agent_connected "$gw" ctl; done
expect cut office1 servers
restore_office "after the controller's restart"

say "3. A second controller on the same etcd; an order made on it reaches ctl's gateways"
mkdir -p "$WORK/ctl2"
sed -e 's/:8443"/:8445"/' -e 's/:8444"/:8446"/' -e "s|$WORK/ctl/state|$WORK/ctl2/state|" \
  -e 's/"controller_name": "ctl"/"controller_name": "ctl2"/' \
  "$WORK/ctl/controller.json" >"$WORK/ctl2/controller.json"
ip netns exec "$(ns ctl)" "$CONTROLLER" run --config "$WORK/ctl2/controller.json" \
  >>"$WORK/ctl2/log" 2>&1 &
CTL2_PID=$!
op2() {
  local name=$1
  shift
  echo "  $name\$ shadanctl $* (on ctl2)" >&2
  ip netns exec "$(ns ctl)" "$CTL" "$@" --controller "https://$CONTROLLER_IP:8445" \
    --ca "$WORK/ca/ca.crt" --token-file "$WORK/ops/$name.token"
}
wait_for 10 "ctl2's API" op2 sato status 2>/dev/null
if op2 sato status --json 2>/dev/null |
  jq -e '.cluster == {"controller": "ctl2", "leading": false, "leader": "ctl"}' >/dev/null; then
  echo "  [ok  ] ctl2 follows: ctl leads"
else
  fail "ctl2's status does not say ctl leads and ctl2 follows"
fi
# The gateways are connected to ctl: ctl delivers what ctl2 recorded.
office_cut "$(op2 sato isolate office --reason "$FLEET_WHY: made on ctl2" --ticket FAULT \
  --json 2>/dev/null | order_id_of)" "on ctl2"
restore_office "ordered on ctl2"

# ctl goes away: the agents move to ctl2, which leads once ctl's lease has run out.
kill9 0
killed_at=$(date +%s%N)
FLEET_API_PORT=8445
for gw in "${GATEWAYS[@]}"; do wait_for 15 "$gw to move to ctl2" agent_connected "$gw" ctl2; done
moved_ms=$((($(date +%s%N) - killed_at) / 1000000))
echo "  [ok  ] ctl killed -9: both gateways connected to ctl2 after ${moved_ms} ms"
wait_for 15 "ctl2 to lead" leading
order=$(isolate_office "ctl gone, on ctl2")
office_cut "$order" "on ctl2 with ctl gone"
restore_office "ctl gone, on ctl2"
# ctl back, ctl2 stopped: the agents move back.
FLEET_API_PORT=8443
fleet_controller_start || fail "ctl did not start again"
kill -TERM "$CTL2_PID"
wait "$CTL2_PID" || fail "ctl2 did not stop cleanly"
CTL2_PID=
for gw in "${GATEWAYS[@]}"; do wait_for 30 "$gw to move back to ctl" agent_connected "$gw" ctl; done
wait_for 15 "ctl to lead again" leading

say "4. etcd lost: orders refused, cuts kept; etcd back: orders served"
order=$(isolate_office "before etcd is lost")
wait_for 15 "core-gw's ack" applied_on "$order" core-gw
wait_for 15 "edge-gw's ack" applied_on "$order" edge-gw
fleet_etcd_stop
echo "    etcd killed -9"
set +e
refused=$(op sato isolate servers --reason "$FLEET_WHY: etcd lost" --json 2>&1)
refused_rc=$?
set -e
indent <<<"$refused"
if [[ $refused_rc != 0 ]] && grep -q store_unavailable <<<"$refused"; then
  echo "  [ok  ] the isolate is refused (exit $refused_rc): the store cannot be reached"
else
  fail "an isolate with etcd gone was not refused as store_unavailable (exit $refused_rc)"
fi
# A controller started while etcd is gone (a standby, a restart) stops at once and says why.
set +e
standby=$(ip netns exec "$(ns ctl)" timeout 20 "$CONTROLLER" run --config "$WORK/ctl/controller.json" 2>&1)
standby_rc=$?
set -e
if [[ $standby_rc != 0 && $standby_rc != 124 ]] && grep -q "controller store unavailable" <<<"$standby"; then
  echo "  [ok  ] a controller started without etcd exits ($standby_rc) naming the store"
else
  fail "a controller started without etcd did not exit naming the store (exit $standby_rc)"
  indent <<<"$standby"
fi
expect cut office1 servers # the gateways keep what they hold
expect cut office2 inet
expect reachable inet servers # and nothing of the refused order reached them
fleet_etcd_start || fail "etcd did not start again on its data"
# Nothing recorded: no order_requested entry for it, or one followed by commit_failed.
requested=$(grep -F "$FLEET_WHY: etcd lost" "$WORK/ctl/state/audit.log" | grep -c '"event":"order_requested"' || true)
undone=$(grep -c '"event":"commit_failed"' "$WORK/ctl/state/audit.log" || true)
if ((requested > undone)); then
  fail "the refused order is in the controller's log as requested, not undone"
fi
wait_for 15 "the controller to serve orders again" segment_isolated office
order=$(op sato isolate servers --reason "$FLEET_WHY: etcd back" --json 2>/dev/null | order_id_of)
[[ -n $order ]] || fail "isolate with etcd back: no order id"
for gw in $(op sato status --order "$order" 2>/dev/null | awk '$1 ~ /-gw$/ { print $1 }'); do
  wait_for 15 "$gw's ack of the isolate of servers" applied_on "$order" "$gw"
  [[ $(applies_in_log "$gw" "$order") == 1 ]] || fail "$gw did not apply $order exactly once"
done
expect cut inet servers
restore_segment servers "etcd back"
restore_office "etcd back"
expect reachable inet servers

say "5. Audit: every chain verifies"
fleet_stop || fail "a daemon did not stop cleanly"
verify_every_chain
"$CTL" audit verify "$WORK/ctl2/state/audit.log" --key "$WORK/ctl/signing.pub" | indent ||
  fail "ctl2's audit log does not verify"

fleet_cleanup
trap - EXIT
if ((failures > 0)); then
  echo "etcd-fleet: $failures check(s) failed" >&2
  exit 1
fi
echo "etcd-fleet: every check held"

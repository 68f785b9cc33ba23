#!/usr/bin/env bash
# The fault matrix (docs/security.md "Fault matrix"): the demo's fleet lab (a real
# shadan-controller on ctl, real shadan-agent daemons on core-gw and edge-gw, mutual TLS, real
# nftables), faults done to it from outside, and after each one real packets, the controller's
# view of every dispatch and each gateway's own audit log saying the same thing: every order
# applied on every gateway it targets, none applied twice. At the end every audit chain (both
# gateways', the controller's and its copies of the agents') is verified.
#
#   partition     edge-gw cannot reach the controller (both directions dropped on ctl) while an
#                 isolate fans out: core-gw applies at once, edge-gw when the partition heals
#   ack-lost      the agent->controller direction is dropped, so edge-gw applies the order but
#                 its ack never arrives; edge-gw is killed -9 there, between apply and ack, and
#                 started again: the ack is sent on the new session, nothing is applied twice.
#                 The controller still holds the dead session (nothing closed it): the new one
#                 is the same agent connecting twice, and it must replace the old
#   controller-kill  the controller is killed -9 in the middle of a fan-out (core-gw acked,
#                 edge-gw's dispatch not yet delivered) and started again on its state: edge-gw
#                 gets the order once, core-gw does not get it again
#   disk-full     edge-gw's state and audit directory (a 16 MB tmpfs) is full: the order is
#                 refused whole with reason storage_full (kernel and state untouched, the audit
#                 chain intact); once space returns the same isolate is applied
#                 the controller's (a 32 MB tmpfs) is full: the isolate is refused with HTTP 507
#                 before anything is stored or sent (its audit entry, the transaction's last
#                 step before the commit, is either refused too or followed by commit_failed);
#                 once space returns it is served
#
#   usage: scripts/fault-matrix.sh [BUILD_DIR]      (root; exit 77 when not root)
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "fault-matrix: needs root (network namespaces, nftables); skipped" >&2
  exit 77
fi
BUILD_DIR=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
FLEET_TAG=x
# shellcheck source=lib/fleet.sh
source "$ROOT/scripts/lib/fleet.sh"
MOUNTS=()
fault_cleanup() {
  fleet_stop 2>/dev/null || true
  local m
  for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null || true; done
  fleet_cleanup
}
trap fault_cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=lib/expect.sh
source "$ROOT/scripts/lib/expect.sh"
FLEET_WHY="fault matrix"
# shellcheck source=lib/fleet-orders.sh
source "$ROOT/scripts/lib/fleet-orders.sh"

FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
EDGE_IP=10.0.12.2 # edge-gw's address towards ctl (its route to 10.0.0.0/8 is via core-gw)

# partition in|both|finrst / heal: drops edge-gw's channel to the controller in ctl's namespace
# (ctl is a plain host: no agent there watches its ruleset). `in` drops only what edge-gw sends
# (its acks, its TCP ACKs); the controller's writes still reach it. `finrst` drops only FIN and
# RST segments from edge-gw: a dead agent's connection then never ends at the controller (its
# kernel's FIN or RST would otherwise race the new agent's hello), new ones work.
partition() {
  local match="tcp dport 8444"
  [[ $1 == finrst ]] && match+=" tcp flags & (fin | rst) != 0"
  local rules="chain input { type filter hook input priority 0; ip saddr $EDGE_IP $match drop; };"
  [[ $1 == both ]] &&
    rules+=" chain output { type filter hook output priority 0; ip daddr $EDGE_IP tcp sport 8444 drop; };"
  ip netns exec "$(ns ctl)" nft -f - <<<"table inet fault { $rules }"
}
heal() { ip netns exec "$(ns ctl)" nft delete table inet fault; }

# on_tmpfs DIR SIZE: DIR's contents moved onto a tmpfs of SIZE mounted there (a small disk).
on_tmpfs() {
  local dir=$1 size=$2 saved
  mkdir -p "$dir"
  saved=$(mktemp -d "$WORK/saved.XXXXXX")
  cp -a "$dir/." "$saved/"
  mount -t tmpfs -o "size=$size,mode=0700" tmpfs "$dir"
  MOUNTS+=("$dir")
  cp -a "$saved/." "$dir/"
  rm -rf "$saved"
}
# fill DIR: a file that takes every free byte of DIR's filesystem; unfill DIR removes it.
fill() { dd if=/dev/zero of="$1/fill" bs=64k status=none 2>/dev/null || true; }
unfill() { rm -f "$1/fill"; }

say "Fault matrix in lab $LAB: controller on ctl, agents on core-gw and edge-gw"
fleet_init
# Small disks for the state and audit of edge-gw's agent and of the controller (cells 4, 5).
on_tmpfs "$WORK/edge-gw/state" 16m
on_tmpfs "$WORK/ctl/state" 32m
fleet_start || { echo "fault-matrix: the fleet did not come up (SHADAN_DEMO_KEEP=1 keeps logs)" >&2; exit 1; }
expect reachable office1 servers
expect reachable office2 inet

say "1. Partition: edge-gw cannot reach the controller during the fan-out"
partition both
order=$(isolate_office partition)
[[ -n $order ]] || fail "isolate: no order id"
wait_for 15 "core-gw's ack" applied_on "$order" core-gw
expect cut office1 servers
expect reachable office2 inet # edge-gw has not got the order: its side still open
state=$(dispatch_state "$order" edge-gw)
[[ $state != applied ]] || fail "edge-gw applied an order it could not have received"
echo "    edge-gw's dispatch during the partition: $state"
heal
wait_for 60 "edge-gw's ack after the partition healed" applied_on "$order" edge-gw
expect cut office2 inet
once_everywhere "$order"
restore_office partition

say "2. Ack lost: edge-gw applies, its ack is dropped, it is killed -9 before the ack arrives"
partition in
order=$(isolate_office ack-lost)
wait_for 15 "core-gw's ack" applied_on "$order" core-gw
# edge-gw received the order (the controller's direction is open) and applied it.
wait_for 15 "edge-gw to apply the order" logged_applied edge-gw "$order"
expect cut office2 inet
state=$(dispatch_state "$order" edge-gw)
[[ $state != applied ]] || fail "the controller saw an ack that was dropped"
echo "    applied on edge-gw, its ack not received: the controller says $state"
kill9 2
echo "    edge-gw's agent killed -9; the controller still holds its session (nothing closed it)"
heal
partition finrst
fleet_agent_start edge-gw
wait_for 60 "edge-gw's ack from the restarted agent" applied_on "$order" edge-gw
expect cut office2 inet
once_everywhere "$order"
if grep -q "reason=\"replaced by session" "$WORK/ctl/log"; then
  echo "  [ok  ] the restarted agent's session replaced the dead one"
else
  fail "the controller's log shows no session replaced by the restarted agent's"
fi
heal
restore_office ack-lost

say "3. Controller killed -9 in the middle of a fan-out"
partition both
order=$(isolate_office controller-kill)
wait_for 15 "core-gw's ack" applied_on "$order" core-gw
kill9 0
echo "    controller killed -9: core-gw acked, edge-gw's dispatch undelivered"
heal
fleet_controller_start || fail "the controller did not start again on its state"
wait_for 60 "edge-gw's ack from the restarted controller's delivery" applied_on "$order" edge-gw
applied_on "$order" core-gw || fail "core-gw's ack was lost with the controller"
expect cut office1 servers
expect cut office2 inet
once_everywhere "$order"
restore_office controller-kill

say "4. Disk full on edge-gw's state and audit directory"
fill "$WORK/edge-gw/state"
df -h "$WORK/edge-gw/state" | tail -n 1 | indent
order=$(isolate_office disk-full-agent)
wait_for 15 "core-gw's ack" applied_on "$order" core-gw
wait_for 15 "edge-gw's answer" answered_by "$order" edge-gw
status=$(op sato status --order "$order" 2>/dev/null)
indent <<<"$status"
if grep -qE '^edge-gw +failed .*storage_full' <<<"$status"; then
  echo "  [ok  ] edge-gw refused the order and said why: storage_full"
else
  fail "edge-gw's answer with its disk full is not a failure saying storage_full"
fi
# Refused whole: the kernel was not touched, the state says nothing is isolated there.
expect reachable office2 inet
[[ $(applies_in_log edge-gw "$order") == 0 ]] || fail "edge-gw's log records the refused order applied"
unfill "$WORK/edge-gw/state"
echo "    space returned; the operator sends the isolate again"
order=$(isolate_office disk-full-agent-again)
wait_for 15 "edge-gw's ack once space returned" applied_on "$order" edge-gw
expect cut office2 inet
expect cut office1 servers
restore_office disk-full-agent

say "5. Disk full on the controller's state and audit directory"
fill "$WORK/ctl/state"
set +e
out=$(op sato isolate servers --reason "fault matrix: disk-full-controller" --json 2>&1)
rc=$?
set -e
indent <<<"$out"
if [[ $rc -ne 0 ]] && grep -q "insufficient_storage" <<<"$out"; then
  echo "  [ok  ] the isolate was refused (exit $rc): the controller's disk is full"
else
  fail "an isolate with the controller's disk full was not refused as insufficient_storage (exit $rc)"
fi
expect reachable servers inet # nothing reached the gateways
unfill "$WORK/ctl/state"
if op sato status 2>/dev/null | grep -qE '^servers +open '; then
  echo "  [ok  ] nothing half-written: servers is open in the controller's state"
else
  fail "the refused isolate left servers in a state other than open"
fi
# Its order_requested entry is appended as the last step before the store's commit: either the
# entry met the full disk (nothing in the trail, the order rolled back), or it fit in the log's
# last page and the commit failed after it, and a commit_failed entry for the same command says
# the order never took effect. Never an entry alone, never an order stored without one.
refused=$(grep -F '"reason":"fault matrix: disk-full-controller"' "$WORK/ctl/state/audit.log" |
  grep -F '"event":"order_requested"' | sed -n 's/.*"command_id":"\([^"]*\)".*/\1/p' || true)
if [[ -z $refused ]]; then
  echo "  [ok  ] its audit entry met the full disk: not in the trail, and the order rolled back"
elif grep -F "\"command_id\":\"$refused\"" "$WORK/ctl/state/audit.log" |
  grep -qF '"event":"commit_failed"'; then
  echo "  [ok  ] its audit entry is followed by commit_failed: the trail says it never took effect"
else
  fail "the refused isolate's order_requested entry stands in the trail without commit_failed"
fi
echo "    space returned; the operator sends the isolate again"
order=$(op sato isolate servers --reason "fault matrix: disk-full-controller, again" --json \
  2>/dev/null | order_id_of)
wait_for 15 "the isolate of servers once space returned" applied_on "$order" core-gw
expect cut servers inet
restore_segment servers disk-full-controller
expect reachable servers inet

say "6. A clock step of a day on edge-gw (libfaketime: that agent's wall clock only)"
CLOCK=$WORK/edge-gw/clock
echo "+0" >"$CLOCK"
kill -TERM "${PIDS[2]}"
wait "${PIDS[2]}" || fail "edge-gw's agent did not stop cleanly"
# The offset is read from $CLOCK at every call: writing it steps the running agent's clock.
# CLOCK_MONOTONIC is left alone, as a real step (settimeofday) leaves it.
# (An agent built with ASan, make test-asan, must not insist on being first in the preload list.)
fleet_agent_start edge-gw LD_PRELOAD="$FAKETIME_LIB" FAKETIME_TIMESTAMP_FILE="$CLOCK" \
  FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 \
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
wait_for 30 "edge-gw to connect again" agent_connected edge-gw
for step in +1d -1d; do
  echo "$step" >"$CLOCK"
  echo "    edge-gw's clock stepped $step"
  order=$(isolate_office "clock $step")
  wait_for 15 "core-gw's ack" applied_on "$order" core-gw
  wait_for 15 "edge-gw's answer" answered_by "$order" edge-gw
  op sato status --order "$order" 2>/dev/null | grep -E '^(GATEWAY|edge-gw) ' | indent
  expect reachable office2 inet # refused: edge-gw's kernel untouched
  echo "+0" >"$CLOCK"
  echo "    edge-gw's clock set right again"
  restore_segment office "clock $step"
done
order=$(isolate_office "clock right again")
wait_for 15 "edge-gw's ack with its clock right" applied_on "$order" edge-gw
expect cut office2 inet
restore_office "clock right again"
# A cut with a TTL ends at a wall-clock instant: a step past it lifts it (within the agent's
# 10 s recheck), on that gateway only.
order=$(op sato isolate office --reason "fault matrix: clock and ttl" --ttl 1h --json \
  2>/dev/null | order_id_of)
wait_for 15 "the 1 h isolate on edge-gw" applied_on "$order" edge-gw
wait_for 15 "the 1 h isolate on core-gw" applied_on "$order" core-gw
expect cut office2 inet
echo "+1d" >"$CLOCK"
echo "    edge-gw's clock stepped +1d past the 1 h deadline"
wait_for 30 "edge-gw to lift the expired cut" bash -c \
  "grep -q '\"action\":\"expire\"' '$WORK/edge-gw/state/audit.log'"
expect reachable office2 inet
expect cut office1 servers # core-gw's clock is right: its cut holds
echo "+0" >"$CLOCK"
restore_segment office "clock and ttl"

say "Audit: every chain verifies after the faults"
fleet_stop || fail "a daemon did not stop cleanly"
verify_every_chain

fault_cleanup
trap - EXIT
if ((failures > 0)); then
  echo "fault-matrix: $failures expectation(s) failed" >&2
  exit 1
fi
echo
echo "fault-matrix: every cell held"

#!/usr/bin/env bash
# Benchmark (not a test): order -> last ack in the fleet lab (controller + two gateways, real
# mutual TLS, real nftables), docs/benchmarks.md "Order -> last ack".
#
# Each round isolates office through the API (the controller signs on the operator's behalf and
# dispatches to core-gw and edge-gw) and restores it (two operator signatures, then dispatch).
# The time reported is the controller's own: from the first dispatch written to an agent to the
# last verified ack stored (`shadanctl status --order`: "dispatch -> last ack"), so neither
# shadanctl's start-up nor its polling is counted. "isolate request" is the whole
# `shadanctl isolate` process (start-up, TLS, the order's store transaction, the answer).
# FLEET_STORE=etcd runs the controller on an etcd member (docs/ha.md).
#
#   usage: scripts/bench-fleet.sh [BUILD_DIR] [ROUNDS]      (root; default 50 rounds)
set -euo pipefail

BUILD_DIR=${1:-build}
ROUNDS=${2:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
FLEET_TAG=b
FLEET_QUIET=1
# shellcheck source=lib/fleet.sh
source "$ROOT/scripts/lib/fleet.sh"
trap fleet_cleanup EXIT
trap 'exit 130' INT TERM

echo "machine: $(nproc) CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "kernel $(uname -r), Debian $(cat /etc/debian_version)"
fleet_init >/dev/null
fleet_start >/dev/null || { echo "bench-fleet: the fleet did not come up" >&2; exit 1; }

# last_ack_ms ORDER: the controller's dispatch -> last ack for ORDER, once every gateway answered.
last_ack_ms() {
  op sato status --order "$1" 2>/dev/null | sed -n 's/^dispatch -> last ack: \([0-9]*\) ms.*/\1/p'
}
wait_ack_ms() {
  local order=$1 ms="" i
  for ((i = 0; i < 100; i++)); do
    ms=$(last_ack_ms "$order")
    [[ -n $ms ]] && { echo "$ms"; return 0; }
    sleep 0.1
  done
  echo "bench-fleet: order $order not acked by every gateway within 10 s" >&2
  return 1
}
order_of() { sed -n 's/.*"order_id":"\([^"]*\)".*/\1/p'; }

isolate_ms=()
restore_ms=()
request_ms=()
for ((round = 1; round <= ROUNDS; round++)); do
  start=$(date +%s%N)
  order=$(op sato isolate office --reason "bench round $round" --json | order_of)
  request_ms+=("$((($(date +%s%N) - start) / 1000000))")
  isolate_ms+=("$(wait_ack_ms "$order")")
  order=$( (op sato restore office --reason "bench round $round" --json || true) | order_of)
  op sato approve "$order" --key "$WORK/ops/sato.key" --yes >/dev/null
  op ito approve "$order" --key "$WORK/ops/ito.key" --yes >/dev/null
  restore_ms+=("$(wait_ack_ms "$order")")
done

# summary NAME VALUES...: median, p90, p99 (nearest rank) and max.
summary() {
  local name=$1
  shift
  local sorted n
  mapfile -t sorted < <(printf '%s\n' "$@" | sort -n)
  n=${#sorted[@]}
  rank() { local r=$(((n * $1 + 99) / 100)); ((r < 1)) && r=1; echo "${sorted[r - 1]}"; }
  printf '%-28s n=%d  median %s ms  p90 %s ms  p99 %s ms  max %s ms\n' "$name" "$n" \
    "$(rank 50)" "$(rank 90)" "$(rank 99)" "${sorted[n - 1]}"
}
summary "isolate (2 gateways)" "${isolate_ms[@]}"
summary "restore (2 gateways)" "${restore_ms[@]}"
summary "isolate request (shadanctl)" "${request_ms[@]}"
fleet_stop || true

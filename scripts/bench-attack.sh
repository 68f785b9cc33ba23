#!/usr/bin/env bash
# An operator's isolate while the controller's API is attacked (docs/security.md "Isolate under
# attack"). The demo's fleet lab (scripts/lib/fleet.sh): the real controller on ctl, real agents
# on core-gw and edge-gw. The attacker is the `servers` host, from ATTACK_SOURCES addresses
# (the per-peer limit applies to each); the operator is on ctl. For each attack of
# scripts/lib/attack.py on the API, three on the agent hub (idle TCP, stalled handshakes, and
# TLS without a client certificate, which the hub refuses: an outsider gets no further there),
# and once with none, the operator runs ROUNDS isolates of office with `shadanctl isolate`, each
# followed until every gateway's signed ack is verified: p50, p99 and max per phase of the API's
# answer and of the fan-out (see rounds).
#
#   usage: scripts/bench-attack.sh [BUILD_DIR]      (root)
#   env:   ROUNDS (default 50), ATTACK_CONNS (default 600), ATTACK_SOURCES (default 8),
#          PHASES (default all: "idle handshake slowloris headers chunked hub-idle hub-hshake
#          hub-nocert"; the phase without attack always runs first), ATTACK_NICE (default 0:
#          the attacker's nice value; 19 stands for an attacker on another machine, which does
#          not take the controller's cores)
set -euo pipefail

BUILD_DIR=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
FLEET_TAG=a
FLEET_QUIET=1
# shellcheck source=lib/fleet.sh
source "$ROOT/scripts/lib/fleet.sh"
ROUNDS=${ROUNDS:-50}
ATTACK_CONNS=${ATTACK_CONNS:-600}
ATTACK_SOURCES=${ATTACK_SOURCES:-8}
ATTACK_PID=""
stop_attack() {
  [[ -n $ATTACK_PID ]] || return 0
  kill -INT "$ATTACK_PID" 2>/dev/null || true
  wait "$ATTACK_PID" 2>/dev/null || true
  ATTACK_PID=""
}
trap 'stop_attack; fleet_cleanup' EXIT
trap 'exit 130' INT TERM

say "Fleet lab $LAB: controller on ctl, agents on core-gw and edge-gw"
fleet_init >/dev/null
fleet_start >/dev/null || { echo "bench-attack: the fleet did not come up" >&2; exit 1; }

sources=()
for ((i = 0; i < ATTACK_SOURCES; i++)); do
  ip -n "$(ns servers)" addr add "10.30.0.$((100 + i))/24" dev eth0
  sources+=("10.30.0.$((100 + i))")
done
sources_csv=$(IFS=,; echo "${sources[*]}")

# Milliseconds of an RFC 3339 UTC time with milliseconds ("2026-12-06T22:45:37.241Z").
JQ_MS='def ms: capture("^(?<s>.*)\\.(?<f>[0-9]{3})Z$") | ((.s + "Z") | fromdateiso8601) * 1000 + (.f | tonumber);'
settled() {
  op sato status --order "$1" --json 2>/dev/null |
    jq -e '[.gateways[].state] | all(. == "applied" or . == "already_applied")' >/dev/null
}
# percentiles NAME: "p50 p99 max" of the numbers on stdin.
percentiles() {
  sort -n | awk '{ v[NR] = $1 } END {
    printf "%8.1f %8.1f %8.1f", v[int((NR - 1) * 0.50) + 1], v[int((NR - 1) * 0.99) + 1], v[NR] }'
}
# rounds PHASE: ROUNDS isolates. Two figures each: the API's answer as the operator sees it
# (shadanctl's start to its exit with the 202: process, TLS handshake, request) and the order's
# fan-out on the controller's clock (created -> the last gateway's verified ack).
rounds() {
  local phase=$1 i start out order api=() fanout=()
  for ((i = 0; i < ROUNDS; i++)); do
    start=$(date +%s%N)
    out=$(op sato isolate office --reason "bench-attack: $phase" --json 2>/dev/null) ||
      { echo "bench-attack: isolate $i during $phase was refused" >&2; return 1; }
    api+=("$((($(date +%s%N) - start) / 1000))")
    order=$(jq -r .order_id <<<"$out")
    wait_for 15 "isolate $i during $phase on every gateway" settled "$order" || return 1
    fanout+=("$(op sato status --order "$order" --json 2>/dev/null |
      jq "$JQ_MS"' ([.gateways[].updated_at | ms] | max) - (.created_at | ms)')")
  done
  printf '%-10s %s %s\n' "$phase" \
    "$(printf '%s\n' "${api[@]}" | awk '{ print $1 / 1000 }' | percentiles)" \
    "$(printf '%s\n' "${fanout[@]}" | percentiles)"
}

results=$WORK/results
printf '%-10s %8s %8s %8s %8s %8s %8s\n' phase api_p50 api_p99 api_max fan_p50 fan_p99 \
  fan_max >"$results"
say "No attack: $ROUNDS isolates"
rounds none | tee -a "$results"
# PHASE:MODE:PORT — the hub's nocert phase is attack.py's headers mode: a full TLS handshake
# each time, refused for want of a client certificate, and again.
for phase in idle:idle:8443 handshake:handshake:8443 slowloris:slowloris:8443 \
  headers:headers:8443 chunked:chunked:8443 hub-idle:idle:8444 hub-hshake:handshake:8444 \
  hub-nocert:headers:8444; do
  IFS=: read -r name mode port <<<"$phase"
  [[ -z ${PHASES:-} || " $PHASES " == *" $name "* ]] || continue
  say "Attack $name: $ATTACK_CONNS clients from ${#sources[@]} addresses, then $ROUNDS isolates"
  ip netns exec "$(ns servers)" nice -n "${ATTACK_NICE:-0}" \
    python3 "$ROOT/scripts/lib/attack.py" "$mode" \
    --host "$CONTROLLER_IP" --port "$port" --conns "$ATTACK_CONNS" --sources "$sources_csv" \
    --seconds 3600 >"$WORK/attack-$name.log" 2>&1 &
  ATTACK_PID=$!
  sleep 3
  rounds "$name" | tee -a "$results"
  stop_attack
  tail -n 1 "$WORK/attack-$name.log" | indent
done

say "Isolate, ms: api = shadanctl start -> 202; fan = order created -> last verified ack"
cat "$results"
echo
echo "what the controller logged of the attacks (a line a second at most per kind):"
grep -oE '(event=(connections_refused|tls_handshake_failed|closed_before_hello)|limit=[a-z_]+)' \
  "$WORK/ctl/log" | sort | uniq -c | indent || true

#!/usr/bin/env bash
# Benchmark (not a test): an alert storm while an operator isolates, against the real controller
# of the fleet lab (real mutual TLS to two real agents, real nftables), docs/benchmarks.md
# "Alert storm".
#
# 10 detectors (tokens det1..det10, scoped to office, the demo's EVE rule) offer 10,000 Suricata
# EVE alerts/s for 10 s in batches over HTTPS, while an operator quarantines a new servers host
# every 100 ms; build/bench/alert_storm runs in the controller's namespace and reports the
# operator's latency, every alert's fate (decided per decision, refused 429, lost: must be 0) and
# the controller's CPU and memory.
#
#   usage: scripts/bench-storm.sh [BUILD_DIR] [ALERT_STORM_ARGS...]      (root)
#   e.g.   scripts/bench-storm.sh build --rate 20000 --batch 200
set -euo pipefail

BUILD_DIR=${1:-build}
shift || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
STORM=$BUILD_DIR/bench/alert_storm
[[ -x $STORM ]] || { echo "bench-storm: $STORM is missing; cmake --build $BUILD_DIR --target alert_storm" >&2; exit 1; }
FLEET_TAG=s
FLEET_QUIET=1
FLEET_DETECTORS=10
# shellcheck source=lib/fleet.sh
source "$ROOT/scripts/lib/fleet.sh"
trap fleet_cleanup EXIT
trap 'exit 130' INT TERM

echo "machine: $(nproc) CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "kernel $(uname -r), Debian $(cat /etc/debian_version)"
fleet_init >/dev/null
fleet_start >/dev/null || { echo "bench-storm: the fleet did not come up" >&2; exit 1; }

detectors=()
for ((i = 1; i <= FLEET_DETECTORS; i++)); do detectors+=(--detector-token "$WORK/ops/det$i.token"); done
rc=0
ip netns exec "$(ns ctl)" "$STORM" --controller "https://$CONTROLLER_IP:8443" \
  --ca "$WORK/ca/ca.crt" --operator-token "$WORK/ops/sato.token" "${detectors[@]}" \
  --controller-pid "${PIDS[0]}" "$@" || rc=$?
echo "breaker and automatic actions after the storm:"
op sato breaker 2>&1 | indent || true
fleet_stop || true
exit "$rc"

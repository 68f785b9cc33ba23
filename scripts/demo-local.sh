#!/usr/bin/env bash
# The local (no controller) demo: a lab of network namespaces (gateway gw with a foreign accept-all table; hosts
# office, servers, mgmt, inet), a segment isolated with the agent's local CLI, real packets
# showing the cut and the management path, a restore, and the lab torn down — even on failure.
# Every expectation is checked: the demo exits non-zero if the kernel does not do what we say.
set -euo pipefail

BUILD_DIR=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENT=$ROOT/$BUILD_DIR/agents/shadan-agent
CTL=$ROOT/$BUILD_DIR/cli/shadanctl
POLICY=$ROOT/policies/examples/lab.json

if [[ $(id -u) -ne 0 ]]; then
  echo "demo: needs root (it builds network namespaces)" >&2
  exit 1
fi
for bin in "$AGENT" "$CTL"; do
  [[ -x $bin ]] || { echo "demo: $bin is missing; run make build" >&2; exit 1; }
done

LAB="d$(( $$ % 1000000 ))"
STATE=$(mktemp -d /tmp/shadan-demo.XXXXXX)
cleanup() {
  "$CTL" lab down --name "$LAB" >/dev/null 2>&1 || true
  rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

GW_NS="sd-$LAB-gw"
failures=0

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

agent() {
  echo "  \$ shadan-agent $*"
  ip netns exec "$GW_NS" "$AGENT" "$@" --policy "$POLICY" --gateway gw --state-dir "$STATE" |
    sed 's/^/    /'
}

# shellcheck source=lib/expect.sh
source "$ROOT/scripts/lib/expect.sh"

say "Building lab $LAB (namespaces sd-$LAB-*)"
"$CTL" lab up --name "$LAB" | sed 's/^/  /'

say "Before: every segment reaches every other"
expect reachable office servers
expect reachable office servers -6
expect reachable office inet --icmp
expect reachable servers office --icmp -6

say "Isolating segment office (profile full) on gateway gw"
agent plan office >"$STATE/plan.txt"
head -n 14 "$STATE/plan.txt"
echo "    … ($(wc -l <"$STATE/plan.txt") lines: sets, then input/output/forward chains)"
start=$(date +%s%N)
agent isolate office --reason "demo: suspicious traffic from office"
echo "  (command took $(( ($(date +%s%N) - start) / 1000000 )) ms, process start included)"

say "During: office is cut in both directions, for TCP and ICMP, IPv4 and IPv6"
expect cut office servers
expect cut servers office
expect cut office servers -6
expect cut office inet --icmp
expect cut inet office --icmp -6
expect cut office gw
say "…while the management path and the other segments keep working"
expect reachable gw mgmt --tcp 8443
expect reachable office mgmt --tcp 8443
expect cut office mgmt --tcp 22
expect reachable servers inet
expect reachable servers mgmt --icmp -6

agent status

say "Restoring office"
agent restore office --reason "demo: office cleaned"
expect reachable office servers
expect reachable servers office -6
expect reachable office inet --icmp

say "Isolating office from the internet only (profile internet-only)"
agent isolate office --profile internet-only
expect cut office inet
expect cut inet office -6
expect reachable office servers
expect reachable office mgmt --icmp
agent restore --all --reason "demo: done"
expect reachable office inet

say "Tearing the lab down"
cleanup
trap - EXIT
if ip netns list | grep -q "^sd-$LAB-"; then
  echo "  FAIL: namespaces of lab $LAB are still there" >&2
  exit 1
fi
echo "  lab $LAB removed"

if ((failures > 0)); then
  echo "demo: $failures expectation(s) failed" >&2
  exit 1
fi
echo
echo "demo: all expectations held"

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
# two operators' signatures; every gateway's signed ack is printed; the audit logs are verified;
# everything is torn down, even on failure. Every expectation is checked: exit 1 if one fails.
#
#   usage: scripts/demo.sh [BUILD_DIR]      (root)
set -euo pipefail

BUILD_DIR=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
AGENT=$BUILD_DIR/agents/shadan-agent
CONTROLLER=$BUILD_DIR/controller/shadan-controller
CTL=$BUILD_DIR/cli/shadanctl
POLICY=$ROOT/policies/examples/fleet.json
SPEC=$ROOT/cli/lab/specs/fleet.json
GATEWAYS=(core-gw edge-gw)

if [[ $(id -u) -ne 0 ]]; then
  echo "demo: needs root (it builds network namespaces)" >&2
  exit 1
fi
for bin in "$AGENT" "$CONTROLLER" "$CTL"; do
  [[ -x $bin ]] || { echo "demo: $bin is missing; run make build" >&2; exit 1; }
done

LAB="d$(($$ % 1000000))"
WORK=$(mktemp -d /tmp/shadan-demo.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$CTL" lab down --name "$LAB" --spec "$SPEC" >/dev/null 2>&1 || true
  if [[ -n ${SHADAN_DEMO_KEEP:-} ]]; then
    echo "demo: kept $WORK (logs, keys, state)" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failures=0
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ns() { echo "sd-$LAB-$1"; }
indent() { sed 's/^/    /'; }
fail() {
  echo "  [FAIL] $*"
  failures=$((failures + 1))
}

# shadanctl as operator NAME, from the controller host (the mgmt segment).
op() {
  local name=$1
  shift
  echo "  $name\$ shadanctl $*" >&2
  ip netns exec "$(ns ctl)" "$CTL" "$@" --controller https://10.99.0.10:8443 \
    --ca "$WORK/ca/ca.crt" --token-file "$WORK/ops/$name.token"
}

# expect reachable|cut FROM TO [probe options]
expect() {
  local want=$1 from=$2 to=$3
  shift 3
  local what="tcp" family="v4" args=("$@") i got
  for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
      --icmp) what="icmp" ;;
      --tcp) what="tcp:${args[i + 1]}" ;;
      -6) family="v6" ;;
    esac
  done
  if "$CTL" lab probe --name "$LAB" --spec "$SPEC" --from "$from" --to "$to" --timeout 400 "$@" \
    >/dev/null 2>&1; then
    got=reachable
  else
    got=cut
  fi
  local mark="ok  "
  if [[ $got != "$want" ]]; then
    mark="FAIL"
    failures=$((failures + 1))
  fi
  printf '  [%s] %-8s -> %-8s %-9s %s  %s\n' "$mark" "$from" "$to" "$what" "$family" "$got"
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_for() {
  local seconds=$1 what=$2 deadline
  shift 2
  deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    if (($(date +%s) >= deadline)); then
      fail "gave up after ${seconds}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

say "Building lab $LAB: controller host + two gateways (namespaces sd-$LAB-*)"
"$CTL" lab up --name "$LAB" --spec "$SPEC" | grep -E '^[a-z0-9-]+ \((host|gateway)\)' | indent

say "Keys, CA and trust file (shadanctl keygen, ca, trust)"
mkdir -p "$WORK/ca" "$WORK/ctl" "$WORK/ops"
"$CTL" ca init --dir "$WORK/ca" 2>&1 | indent
PIN=$("$CTL" ca issue --dir "$WORK/ca" --name ctl.lab --server --dns ctl.lab --ip 10.99.0.10 \
  --out "$WORK/ctl/tls" 2>/dev/null | tail -n 1)
echo "    controller certificate pin: $PIN"
"$CTL" keygen --out "$WORK/ctl/signing" --role controller >/dev/null 2>&1
"$CTL" trust init --out "$WORK/trust.json" --pub "$WORK/ctl/signing.pub" --identity controller \
  --role controller | indent
for name in sato ito; do
  "$CTL" keygen --out "$WORK/ops/$name" --role operator >/dev/null 2>&1
  "$CTL" trust add "$WORK/trust.json" --pub "$WORK/ops/$name.pub" --identity "op:$name" \
    --role operator,breakglass | indent
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/ops/$name.token")
done
for gw in "${GATEWAYS[@]}"; do
  mkdir -p "$WORK/$gw/tls" "$WORK/$gw/state"
  chmod 700 "$WORK/$gw/state"
  "$CTL" keygen --out "$WORK/$gw/state/agent" --role agent >/dev/null 2>&1
  "$CTL" trust add "$WORK/trust.json" --pub "$WORK/$gw/state/agent.pub" --identity "agent:$gw" \
    --role agent | indent
  "$CTL" ca issue --dir "$WORK/ca" --name "$gw" --client --out "$WORK/$gw/tls/agent" >/dev/null 2>&1
  cp "$WORK/ca/ca.crt" "$WORK/$gw/tls/ca.crt"
done

say "Starting shadan-controller on ctl (10.99.0.10: API :8443, agent hub :8444)"
cat >"$WORK/ctl/controller.json" <<EOF
{"api": {"listen": "10.99.0.10:8443"},
 "agent_hub": {"listen": "10.99.0.10:8444", "heartbeat_s": 10},
 "tls": {"ca": "$WORK/ca/ca.crt", "cert": "$WORK/ctl/tls.crt", "key": "$WORK/ctl/tls.key"},
 "policy": "$POLICY", "trust": "$WORK/trust.json",
 "signing_key": "$WORK/ctl/signing.key", "state_dir": "$WORK/ctl/state",
 "tokens": [
   {"name": "sato", "role": "operator", "sha256": "$("$CONTROLLER" hash-token <"$WORK/ops/sato.token")"},
   {"name": "ito", "role": "operator", "sha256": "$("$CONTROLLER" hash-token <"$WORK/ops/ito.token")"}]}
EOF
ip netns exec "$(ns ctl)" "$CONTROLLER" run --config "$WORK/ctl/controller.json" \
  >"$WORK/ctl/log" 2>&1 &
PIDS+=($!)
wait_for 10 "the controller's API" op sato status 2>/dev/null
echo "    up (log: $WORK/ctl/log)"

say "Starting shadan-agent on both gateways (dialling 10.99.0.10:8444, pinned certificate)"
for gw in "${GATEWAYS[@]}"; do
  ip netns exec "$(ns "$gw")" "$AGENT" run --policy "$POLICY" --gateway "$gw" \
    --state-dir "$WORK/$gw/state" --trust "$WORK/trust.json" --controller 10.99.0.10:8444 \
    --tls-dir "$WORK/$gw/tls" --controller-pin "$PIN" --log-level info >"$WORK/$gw/log" 2>&1 &
  PIDS+=($!)
done
agent_listed() { op sato agents 2>/dev/null | grep -qE "^$1 +pending"; }
for gw in "${GATEWAYS[@]}"; do
  wait_for 15 "$gw to dial in" agent_listed "$gw"
done

say "Enrolling the agents (no trust on first use: an operator approves each key)"
op sato agents | indent
for gw in "${GATEWAYS[@]}"; do
  op sato agents approve "$gw" --reason "demo: new gateway $gw" | indent
done

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

say "Stopping agents and controller (each writes a final signed audit checkpoint)"
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do
  wait "$pid" || fail "a daemon (pid $pid) exited with status $?"
done
PIDS=()
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
"$CTL" audit show "$WORK/core-gw/state" --segment office | tail -n 6 | indent

say "Tearing everything down"
cleanup
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

# shellcheck shell=bash
# The fleet lab with the real controller and agents, for scripts/demo.sh and
# scripts/bench-fleet.sh: cli/lab/specs/fleet.json (controller host ctl + gateways core-gw and
# edge-gw), keys, CA, trust file and tokens made with shadanctl, shadan-controller on ctl,
# shadan-agent on each gateway, both agents enrolled by an operator.
#
# Source it after setting BUILD_DIR (absolute) and a lab name prefix letter in FLEET_TAG, then:
#   fleet_init       lab up + PKI + keys + trust + tokens + a detector's response rule (no daemons yet)
#   fleet_start      controller, then agents; waits until both agents dialled in; enrolls them
#   fleet_controller_start, fleet_agent_start GW [VAR=VALUE...]
#                    one daemon (again, after a test killed it)
#   fleet_stop       TERM the agents, then the controller, and wait (each writes its final audit
#                    checkpoint; the agents ship theirs to the controller first);
#                    returns non-zero if one of them exited with an error
#   fleet_cleanup    stop daemons, lab down, remove WORK (SHADAN_DEMO_KEEP=1 keeps WORK)
#   op NAME ARGS...  shadanctl ARGS as operator NAME (sato or ito), from the controller host
#   ns NODE          the namespace of a lab node
# Every failure is counted in $failures through fail(); callers decide the exit status.
# FLEET_STORE=etcd: the controller keeps its store on an etcd member started on ctl's loopback,
# over TLS with client certificates (fleet_etcd_start / fleet_etcd_stop / fleet_etcdctl; its data
# in WORK/etcd) instead of SQLite in its state directory (scripts/etcd-fleet.sh, docs/ha.md).
# FLEET_CONTROLLERS: the agents' --controller (default CONTROLLER_IP:8444; a list of several
# for a second controller, scripts/etcd-fleet.sh). FLEET_API_PORT: the API op() talks to.
# FLEET_TMP: where WORK (keys, state, audit logs) is made; default /tmp. A benchmark may point it
# at a tmpfs to tell disk syncs from CPU (docs/benchmarks.md, "Alert storm").

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
AGENT=$BUILD_DIR/agents/shadan-agent
CONTROLLER=$BUILD_DIR/controller/shadan-controller
CTL=$BUILD_DIR/cli/shadanctl
POLICY=$ROOT/policies/examples/fleet.json
SPEC=$ROOT/cli/lab/specs/fleet.json
GATEWAYS=(core-gw edge-gw)
CONTROLLER_IP=10.99.0.10

if [[ $(id -u) -ne 0 ]]; then
  echo "$(basename "$0"): needs root (it builds network namespaces)" >&2
  exit 1
fi
for bin in "$AGENT" "$CONTROLLER" "$CTL"; do
  [[ -x $bin ]] || { echo "$(basename "$0"): $bin is missing; run make build" >&2; exit 1; }
done

LAB="${FLEET_TAG:-f}$(($$ % 1000000))"
WORK=$(mktemp -d "${FLEET_TMP:-/tmp}/shadan-fleet.XXXXXX")
PIDS=()
ETCD_PID=
ETCD_URL=https://127.0.0.1:2379
failures=0

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ns() { echo "sd-$LAB-$1"; }
indent() { sed 's/^/    /'; }
fail() {
  echo "  [FAIL] $*"
  failures=$((failures + 1))
}

# op NAME ARGS...: shadanctl as operator NAME, against the controller's API (FLEET_API_PORT: a
# second controller's, default 8443).
op() {
  local name=$1
  shift
  [[ -n ${FLEET_QUIET:-} ]] || echo "  $name\$ shadanctl $*" >&2
  ip netns exec "$(ns ctl)" "$CTL" "$@" --controller "https://$CONTROLLER_IP:${FLEET_API_PORT:-8443}" \
    --ca "$WORK/ca/ca.crt" --token-file "$WORK/ops/$name.token"
}

# wait_for SECONDS DESCRIPTION COMMAND...: runs COMMAND every 0.2 s until it succeeds.
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

# The agents stop first, while the controller still runs: a stopping agent ships its last audit
# entries and a final checkpoint, so the controller's copy can be verified against it. The
# controller (PIDS[0], started first) goes last.
fleet_stop() {
  local pid rc=0 i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || { echo "  daemon pid $pid exited with status $?" >&2; rc=1; }
  done
  PIDS=()
  return $rc
}

# fleet_etcd_start: one etcd member on ctl's loopback, https with client certificates as
# docs/ha.md deploys it (its certificate and the controller's from the fleet's CA, in
# WORK/etcd-tls; data in WORK/etcd, log WORK/etcd.log), waited for. fleet_etcd_stop: kill -9 it
# (the data stays: a start again is the same member).
fleet_etcd_start() {
  local tls=$WORK/etcd-tls
  if [[ ! -f $tls/member.crt ]]; then
    mkdir -p "$tls"
    "$CTL" ca issue --dir "$WORK/ca" --name etcd-ctl --server --client --ip 127.0.0.1 \
      --out "$tls/member" >/dev/null 2>&1
    "$CTL" ca issue --dir "$WORK/ca" --name ctl --client --out "$tls/controller" >/dev/null 2>&1
  fi
  ip netns exec "$(ns ctl)" etcd --name ctl --data-dir "$WORK/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --cert-file "$tls/member.crt" --key-file "$tls/member.key" --client-cert-auth \
    --trusted-ca-file "$WORK/ca/ca.crt" \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster ctl=http://127.0.0.1:2380 --logger zap --log-level warn \
    >>"$WORK/etcd.log" 2>&1 &
  ETCD_PID=$!
  wait_for 20 "etcd on ctl" fleet_etcdctl endpoint health
}
# fleet_etcdctl ARGS...: etcdctl against the fleet's etcd, as the controller (its certificate).
fleet_etcdctl() {
  ip netns exec "$(ns ctl)" etcdctl --endpoints "$ETCD_URL" --cacert "$WORK/ca/ca.crt" \
    --cert "$WORK/etcd-tls/controller.crt" --key "$WORK/etcd-tls/controller.key" "$@"
}
fleet_etcd_stop() {
  [[ -n $ETCD_PID ]] || return 0
  kill -KILL "$ETCD_PID" 2>/dev/null || true
  wait "$ETCD_PID" 2>/dev/null || true
  ETCD_PID=
}

fleet_cleanup() {
  fleet_stop 2>/dev/null || true
  fleet_etcd_stop
  "$CTL" lab down --name "$LAB" --spec "$SPEC" >/dev/null 2>&1 || true
  if [[ -n ${SHADAN_DEMO_KEEP:-} ]]; then
    echo "kept $WORK (logs, keys, state)" >&2
  else
    rm -rf "$WORK"
  fi
}

fleet_init() {
  "$CTL" lab up --name "$LAB" --spec "$SPEC" | grep -E '^[a-z0-9-]+ \((host|gateway)\)' | indent
  mkdir -p "$WORK/ca" "$WORK/ctl" "$WORK/ops"
  "$CTL" ca init --dir "$WORK/ca" >/dev/null 2>&1
  PIN=$("$CTL" ca issue --dir "$WORK/ca" --name ctl.lab --server --dns ctl.lab \
    --ip "$CONTROLLER_IP" --out "$WORK/ctl/tls" 2>/dev/null | tail -n 1)
  echo "    CA made; controller certificate pin $PIN"
  "$CTL" keygen --out "$WORK/ctl/signing" --role controller >/dev/null 2>&1
  "$CTL" trust init --out "$WORK/trust.json" --pub "$WORK/ctl/signing.pub" \
    --identity controller --role controller | indent
  local name gw
  for name in sato ito; do
    "$CTL" keygen --out "$WORK/ops/$name" --role operator >/dev/null 2>&1
    "$CTL" trust add "$WORK/trust.json" --pub "$WORK/ops/$name.pub" --identity "op:$name" \
      --role operator,breakglass | indent
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/ops/$name.token")
  done
  # The detector: Suricata's alerts, forwarded by `shadanctl forward eve`, may act on office.
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/ops/suricata.token")
  # FLEET_DETECTORS=N adds detectors det1..detN with the same scope (scripts/bench-storm.sh).
  local extra_tokens="" i
  for ((i = 1; i <= ${FLEET_DETECTORS:-0}; i++)); do
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/ops/det$i.token")
    extra_tokens+=",
   {\"name\": \"det$i\", \"role\": \"detector\", \"segments\": [\"office\"],
    \"sha256\": \"$("$CONTROLLER" hash-token <"$WORK/ops/det$i.token")\"}"
  done
  for gw in "${GATEWAYS[@]}"; do
    mkdir -p "$WORK/$gw/tls" "$WORK/$gw/state"
    chmod 700 "$WORK/$gw/state"
    "$CTL" keygen --out "$WORK/$gw/state/agent" --role agent >/dev/null 2>&1
    "$CTL" trust add "$WORK/trust.json" --pub "$WORK/$gw/state/agent.pub" \
      --identity "agent:$gw" --role agent | indent
    "$CTL" ca issue --dir "$WORK/ca" --name "$gw" --client --out "$WORK/$gw/tls/agent" \
      >/dev/null 2>&1
    cp "$WORK/ca/ca.crt" "$WORK/$gw/tls/ca.crt"
  done
  local store=""
  if [[ ${FLEET_STORE:-sqlite} == etcd ]]; then
    fleet_etcd_start || return 1
    store="
 \"store\": {\"kind\": \"etcd\", \"endpoints\": [\"$ETCD_URL\"], \"timeout_ms\": 2000, \"controller_name\": \"ctl\",
           \"tls\": {\"ca\": \"$WORK/ca/ca.crt\", \"cert\": \"$WORK/etcd-tls/controller.crt\",
                   \"key\": \"$WORK/etcd-tls/controller.key\"}},"
  fi
  cat >"$WORK/ctl/controller.json" <<JSON
{"api": {"listen": "$CONTROLLER_IP:8443"},
 "agent_hub": {"listen": "$CONTROLLER_IP:8444", "heartbeat_s": 10},
 "tls": {"ca": "$WORK/ca/ca.crt", "cert": "$WORK/ctl/tls.crt", "key": "$WORK/ctl/tls.key"},
 "policy": "$POLICY", "trust": "$WORK/trust.json",
 "signing_key": "$WORK/ctl/signing.key", "state_dir": "$WORK/ctl/state",
 "tokens": [
   {"name": "sato", "role": "operator", "sha256": "$("$CONTROLLER" hash-token <"$WORK/ops/sato.token")"},
   {"name": "ito", "role": "operator", "sha256": "$("$CONTROLLER" hash-token <"$WORK/ops/ito.token")"},
   {"name": "suricata", "role": "detector", "segments": ["office"],
    "sha256": "$("$CONTROLLER" hash-token <"$WORK/ops/suricata.token")"}$extra_tokens],$store
 "response": {
   "rules": [{"name": "eve-malware", "match": {"format": "eve", "signature_ids": [2024897]},
              "action": "quarantine-host", "host": "internal", "ttl_s": 3600}],
   "breaker": {"max_actions": 10, "window_s": 300, "max_segments_percent": 50}}}
JSON
}

agent_pending() { op sato agents 2>/dev/null | grep -qE "^$1 +pending +[0-9a-f]+ +true"; }

# fleet_controller_start: starts shadan-controller on ctl (its pid in PIDS[0]), appending to its
# log, and waits for its API. A controller killed by a test is started again the same way.
fleet_controller_start() {
  ip netns exec "$(ns ctl)" "$CONTROLLER" run --config "$WORK/ctl/controller.json" \
    >>"$WORK/ctl/log" 2>&1 &
  PIDS[0]=$!
  wait_for 10 "the controller's API" op sato status 2>/dev/null
}

# fleet_agent_start GW [VAR=VALUE...]: starts shadan-agent on gateway GW (its pid in
# PIDS[index of GW + 1]) with those variables in its environment, appending to its log. A killed
# agent is started again the same way, on the same state.
fleet_agent_start() {
  local gw=$1 i
  for i in "${!GATEWAYS[@]}"; do [[ ${GATEWAYS[i]} == "$gw" ]] && break; done
  ip netns exec "$(ns "$gw")" env "${@:2}" "$AGENT" run --policy "$POLICY" --gateway "$gw" \
    --state-dir "$WORK/$gw/state" --trust "$WORK/trust.json" \
    --controller "${FLEET_CONTROLLERS:-$CONTROLLER_IP:8444}" --tls-dir "$WORK/$gw/tls" --controller-pin "$PIN" \
    --log-level info >>"$WORK/$gw/log" 2>&1 &
  PIDS[i + 1]=$!
}

fleet_start() {
  fleet_controller_start || return 1
  echo "    controller up on $CONTROLLER_IP (API :8443, agent hub :8444; log $WORK/ctl/log)"
  local gw
  for gw in "${GATEWAYS[@]}"; do
    fleet_agent_start "$gw"
  done
  for gw in "${GATEWAYS[@]}"; do
    wait_for 15 "$gw to dial in" agent_pending "$gw" 2>/dev/null || return 1
  done
  echo "    agents up on ${GATEWAYS[*]}, connected, waiting for enrollment"
  op sato agents | indent
  for gw in "${GATEWAYS[@]}"; do
    # FLEET_PENDING: gateways left waiting for enrollment (a test approves them its own way).
    [[ " ${FLEET_PENDING:-} " == *" $gw "* ]] && continue
    op sato agents approve "$gw" --reason "new gateway $gw" | indent
  done
}

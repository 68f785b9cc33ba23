#!/usr/bin/env bash
# The system calls each daemon makes, under strace, against its unit's SystemCallFilter=:
# systemd is not PID 1 on the CI machine, so the filter is never enforced there; this is how a
# call the filter refuses is found before a real gateway finds it. Each daemon runs in a
# namespace of its own through its main paths (the agent: start, isolate, status, restore,
# SIGHUP reload, stop; the controller, as an unprivileged user like its unit: start, an
# operator's status request, stop). A call outside the unit's list fails the test unless it is
# in EXPECTED below, with why (the units answer such calls with EPERM, not a kill).
#   usage: syscalls_test.sh SOURCE_DIR AGENT CONTROLLER SHADANCTL   (root; 77 without)
set -uo pipefail
src=$1 agent=$2 controller=$3 ctl=$4
[[ $(id -u) -eq 0 ]] || { echo "needs root (namespaces); skipped"; exit 77; }
command -v strace >/dev/null || { echo "FAIL: strace is missing (scripts/install-deps.sh)"; exit 1; }
declare -A EXPECTED=(
  [shadan-agent:fchown]="SQLite, as root, fchown()s its WAL to the database's owner and ignores the answer"
)
work=$(mktemp -d)
ns=sdsys-$$
chmod 755 "$work"
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
failed=0

# expand GROUP|CALL: the system calls it names, groups expanded.
expand() {
  if [[ $1 != @* ]]; then
    echo "$1"
    return
  fi
  systemd-analyze syscall-filter "$1" | grep -v '^#\|^$' | tail -n +2 | awk '{print $1}' |
    while read -r word; do expand "$word"; done
}
# allowed UNIT: what its SystemCallFilter= lines allow (the first an allow list, then ~ lines
# take away and plain lines add, as systemd merges them).
allowed() {
  local list=() line first=1 word
  declare -A set=()
  while IFS= read -r line; do
    line=${line#SystemCallFilter=}
    local deny=0
    [[ $line == ~* ]] && deny=1 && line=${line#\~}
    for word in $line; do
      while read -r call; do
        if ((deny)); then unset "set[$call]"; else set[$call]=1; fi
      done < <(expand "$word")
    done
    first=0
  done < <(grep '^SystemCallFilter=' "$1")
  printf '%s\n' "${!set[@]}" | sort
}
# check NAME TRACE UNIT: every call in TRACE allowed by UNIT, or expected.
check() {
  local name=$1 trace=$2 unit=$3 call bad=0
  allowed "$unit" >"$work/$name.allowed"
  sed -n 's/^[0-9]* \+\([a-z_0-9]*\)(.*/\1/p' "$trace" | sort -u >"$work/$name.used"
  [[ -s $work/$name.used ]] || { echo "FAIL: $name: no system call traced"; failed=1; return; }
  while read -r call; do
    grep -qx "$call" "$work/$name.allowed" && continue
    if [[ -n ${EXPECTED[$name:$call]:-} ]]; then
      echo "   $name: $call is outside the filter, as expected: ${EXPECTED[$name:$call]}"
    else
      echo "FAIL: $name calls $call, which $(basename "$unit")'s SystemCallFilter= refuses"
      bad=1
    fi
  done <"$work/$name.used"
  ((bad)) && failed=1 || echo "ok: $name: $(wc -l <"$work/$name.used") distinct calls, all allowed or expected"
}

ip netns add "$ns"
ip -n "$ns" link set lo up

# ---- the agent --------------------------------------------------------------------------
policy=$src/policies/examples/lab.json
a() { ip netns exec "$ns" "$agent" "$@" --policy "$policy" --gateway gw --state-dir "$work/agent"; }
ip netns exec "$ns" strace -f -qq -o "$work/agent.trace" "$agent" run --policy "$policy" \
  --gateway gw --state-dir "$work/agent" >"$work/agent.log" 2>&1 &
tracer=$!
for _ in $(seq 100); do [[ -S $work/agent/agent.sock ]] && break; sleep 0.1; done
a isolate office --reason "syscalls test" >/dev/null || { echo "FAIL: isolate"; failed=1; }
a status >/dev/null || { echo "FAIL: status"; failed=1; }
a restore office --reason "syscalls test" >/dev/null || { echo "FAIL: restore"; failed=1; }
pid=$(pgrep -f "^$agent run" | head -1)
kill -HUP "$pid" 2>/dev/null
sleep 0.5
a status >/dev/null || { echo "FAIL: status after reload"; failed=1; }
kill -TERM "$pid" 2>/dev/null
wait "$tracer"
check shadan-agent "$work/agent.trace" "$src/systemd/shadan-agent.service"

# ---- the controller, as an unprivileged user, as its unit runs it ------------------------
"$ctl" init controller --policy "$policy" --name ctl.test --ip 127.0.0.1 --dir "$work/etc" \
  --state-dir "$work/controller" >/dev/null
mkdir -p "$work/controller" "$work/trace"
chown -R nobody "$work/etc" "$work/controller" "$work/trace"
ip netns exec "$ns" runuser -u nobody -- strace -f -qq -o "$work/trace/controller" \
  "$controller" run --config "$work/etc/controller.json" >"$work/controller.log" 2>&1 &
tracer=$!
answered=0
for _ in $(seq 100); do
  if ip netns exec "$ns" "$ctl" status --controller https://127.0.0.1:8443 \
    --ca "$work/etc/ca.crt" --token-file "$work/etc/tokens/admin.token" >/dev/null 2>&1; then
    answered=1
    break
  fi
  sleep 0.1
done
((answered)) || { echo "FAIL: the controller never answered status"; tail -5 "$work/controller.log"; failed=1; }
pkill -TERM -f "^$controller run" 2>/dev/null
wait "$tracer"
check shadan-controller "$work/trace/controller" "$src/systemd/shadan-controller.service"
exit "$failed"

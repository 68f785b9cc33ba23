# shellcheck shell=bash
# Orders in the fleet lab and what each gateway did with them, for scripts that drive the lab
# (scripts/fault-matrix.sh, scripts/etcd-fleet.sh). Source it after scripts/lib/fleet.sh and
# scripts/lib/expect.sh; FLEET_WHY starts the reason of every order it sends.

FLEET_WHY=${FLEET_WHY:-fleet lab}

# The order id in a shadanctl --json answer.
order_id_of() { sed -n 's/.*"order_id": *"\([^"]*\)".*/\1/p' | head -n 1; }
# dispatch_state ORDER GW: the controller's state of ORDER's dispatch to GW (applied, sent, ...).
dispatch_state() {
  op sato status --order "$1" 2>/dev/null | awk -v gw="$2" '$1 == gw { print $2; exit }'
}
applied_on() { [[ $(dispatch_state "$1" "$2") == applied ]]; }
# settled_on ORDER GW: applied, or GW already held what ORDER asks (a restore of what it never
# isolated).
settled_on() { [[ $(dispatch_state "$1" "$2") =~ ^(applied|already_applied)$ ]]; }
# answered_by ORDER GW: GW's ack of ORDER (whatever it says) reached the controller.
answered_by() {
  grep -F "\"command_id\":\"$1\"" "$WORK/ctl/state/audit.log" |
    grep '"event":"ack_received"' | grep -q "\"agent_id\":\"$2\""
}
# agent_connected GW [CTL]: GW is connected (to the controller named CTL: several on one etcd).
agent_connected() {
  op sato agents 2>/dev/null | grep -qE "^$1 +approved +[0-9a-f]+ +true${2:+ \(on $2\)}"
}
# applies_in_log GW ORDER: how many times GW's own audit log records ORDER applied.
applies_in_log() {
  grep -F "\"command_id\":\"$2\"" "$WORK/$1/state/audit.log" | grep -c '"event":"applied"' || true
}
logged_applied() { [[ $(applies_in_log "$1" "$2") -ge 1 ]]; }
# once_everywhere ORDER: the order is applied exactly once on each gateway, by its own log.
once_everywhere() {
  local gw n
  for gw in "${GATEWAYS[@]}"; do
    n=$(applies_in_log "$gw" "$1")
    if [[ $n == 1 ]]; then
      echo "  [ok  ] $gw applied order $1 exactly once (its audit log)"
    else
      fail "$gw's audit log records order $1 applied $n times, not once"
    fi
  done
}
isolate_office() {
  op sato isolate office --reason "$FLEET_WHY: $1" --ticket FAULT --json 2>/dev/null | order_id_of
}
# restore_segment SEGMENT WHY: the two-operator restore, applied on every gateway it targets.
restore_segment() {
  local out order gw
  out=$(op sato restore "$1" --reason "$FLEET_WHY: $2" --json 2>/dev/null || true)
  order=$(order_id_of <<<"$out")
  op sato approve "$order" --key "$WORK/ops/sato.key" --yes >/dev/null
  op ito approve "$order" --key "$WORK/ops/ito.key" --yes >/dev/null
  for gw in $(op sato status --order "$order" 2>/dev/null | awk '$1 ~ /-gw$/ { print $1 }'); do
    wait_for 30 "the restore of $1 on $gw" settled_on "$order" "$gw"
  done
}
restore_office() {
  restore_segment office "$1"
  expect reachable office2 inet
  expect reachable office1 servers
}
# kill9 INDEX: kill -9 the daemon PIDS[INDEX] and reap it.
kill9() {
  kill -KILL "${PIDS[$1]}"
  wait "${PIDS[$1]}" 2>/dev/null || true
}


# verify_every_chain: after fleet_stop, each gateway's audit log, the controller's copy of it and
# the controller's own log, each against its key; a failure is counted.
verify_every_chain() {
  local gw
  for gw in "${GATEWAYS[@]}"; do
    "$CTL" audit verify "$WORK/$gw/state" --key "$WORK/$gw/state/agent.pub" | indent ||
      fail "audit log of $gw does not verify"
    "$CTL" audit verify "$WORK/ctl/state/agents/$gw/audit.log" \
      --key "$WORK/$gw/state/agent.pub" | indent ||
      fail "the controller's copy of $gw's log does not verify"
  done
  "$CTL" audit verify "$WORK/ctl/state/audit.log" --key "$WORK/ctl/signing.pub" | indent ||
    fail "the controller's audit log does not verify"
}

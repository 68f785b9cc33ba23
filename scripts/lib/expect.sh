# shellcheck shell=bash
# expect reachable|cut FROM TO [shadanctl lab probe options]: one real-packet check in the lab
# $LAB (spec $SPEC when set), printed as a line and counted in $failures when it does not hold.
# Used by scripts/demo.sh and scripts/demo-local.sh. Needs $CTL (shadanctl) and $LAB.
#
# Only a probe that ran can answer: `shadanctl lab probe` exits 0 (reachable), 1 (ran, no answer:
# cut), 2 (usage error) or 3 (the probe could not run). Anything but 0 or 1 -- a typo in the
# options, a lab that is not up, a crash -- proves nothing about the path: it is printed as ERR
# with the probe's message, counted in $failures, and expect returns 2, never "cut".
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
  # A cut is judged after 400 ms of silence. A reachable path gets 1.5 s: the first packet
  # over a path may wait for neighbour discovery on every hop, and one lost SYN costs the 1 s
  # retransmission timer.
  local timeout=400
  [[ $want == reachable ]] && timeout=1500
  local spec=()
  [[ -n ${SPEC:-} ]] && spec=(--spec "$SPEC")
  local rc=0 err
  err=$("$CTL" lab probe --name "$LAB" "${spec[@]}" --from "$from" --to "$to" \
    --timeout "$timeout" "$@" 2>&1 >/dev/null) || rc=$?
  case $rc in
    0) got="reachable" ;;
    1) got="cut" ;;
    *)
      failures=$((failures + 1))
      printf '  [ERR ] %-8s -> %-8s %-9s %s  probe error (exit %d): %s\n' "$from" "$to" "$what" \
        "$family" "$rc" "$(head -n 1 <<<"$err")"
      return 2
      ;;
  esac
  local mark="ok  "
  if [[ $got != "$want" ]]; then
    mark="FAIL"
    failures=$((failures + 1))
  fi
  printf '  [%s] %-8s -> %-8s %-9s %s  %s\n' "$mark" "$from" "$to" "$what" "$family" "$got"
}

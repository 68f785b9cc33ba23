# shellcheck shell=bash
# expect reachable|cut FROM TO [shadanctl lab probe options]: one real-packet check in the lab
# $LAB (spec $SPEC when set), printed as a line and counted in $failures when it does not hold.
# Used by scripts/demo.sh and scripts/demo-local.sh. Needs $CTL (shadanctl) and $LAB.
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
  if "$CTL" lab probe --name "$LAB" "${spec[@]}" --from "$from" --to "$to" \
    --timeout "$timeout" "$@" >/dev/null 2>&1; then
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

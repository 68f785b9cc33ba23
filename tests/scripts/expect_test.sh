#!/usr/bin/env bash
# scripts/lib/expect.sh judges a path by the probe's exit code: 0 reachable, 1 cut, anything else
# an error that must fail the check, never pass for a cut. No root: the probes here either never
# reach the kernel (a usage error, a lab that is not up, with the real shadanctl) or are faked.
#
#   usage: tests/scripts/expect_test.sh SHADANCTL
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REAL_CTL=$1
# shellcheck source=scripts/lib/expect.sh
source "$ROOT/scripts/lib/expect.sh"

LAB="x$(($$ % 1000000))" # never brought up (read by expect)
export LAB
problems=0
failures=0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# check DESCRIPTION WANT_RC WANT_FAILURES -- COMMAND...: runs COMMAND (an `expect` call) in a
# subshell and compares its return code and the count it left in $failures.
check() {
  local description=$1 want=("$2" "$3")
  shift 4
  local got
  got=$(
    failures=0
    "$@" >"$scratch/out"
    echo "$? $failures"
  )
  if [[ $got != "${want[*]}" ]]; then
    echo "FAIL: $description: want rc, failures = ${want[*]}, got $got: $(cat "$scratch/out")"
    problems=$((problems + 1))
  else
    echo "ok:   $description"
  fi
}

# A probe that ran: the helper's verdict is the exit code.
fake_ctl() {
  cat >"$scratch/ctl" <<SH
#!/bin/sh
echo "fake probe says exit $1" >&2
exit $1
SH
  chmod +x "$scratch/ctl"
  CTL="$scratch/ctl"
}
fake_ctl 0
check "reachable when the probe got through" 0 0 -- expect reachable a b
check "a reachable path expected cut fails" 0 1 -- expect cut a b
fake_ctl 1
check "cut when the probe ran and saw no answer" 0 0 -- expect cut a b
check "a cut path expected reachable fails" 0 1 -- expect reachable a b
fake_ctl 139
check "a crashed probe is an error, not a cut" 2 1 -- expect cut a b

# The real shadanctl: a bad argument (exit 2) and a lab that is not up (exit 3).
export CTL=$REAL_CTL
check "a probe with a bad option is an error, not a cut" 2 1 -- expect cut office servers --tcp x
check "a probe to a node the spec lacks is an error" 2 1 -- expect cut office nowhere
check "a probe of a lab that is not up is an error" 2 1 -- expect cut office servers
out=$(expect cut office servers --tcp x)
if ! grep -q "ERR .*probe error (exit 2): shadanctl: --tcp" <<<"$out"; then
  echo "FAIL: the error line does not show the probe's exit code and message: $out"
  problems=$((problems + 1))
fi

((problems == 0)) || { echo "expect_test: $problems problem(s)"; exit 1; }
echo "expect_test: all checks held"

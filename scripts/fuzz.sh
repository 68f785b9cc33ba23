#!/usr/bin/env bash
# usage: scripts/fuzz.sh SECONDS [FUZZ_BUILD_DIR [WHAT...]]
#        scripts/fuzz.sh --runs N [FUZZ_BUILD_DIR [WHAT...]]
#
# Runs every libFuzzer target of `make fuzz` (FUZZ_BUILD_DIR, default build-fuzz; only
# fuzz_WHAT... when named) for SECONDS, or for N executions with --runs (the issue's 10^7 bar),
# each, from its seed corpus tests/fuzz/corpus/<what> with the dictionary tests/fuzz/json.dict,
# under ASan and UBSan (leaks included). Prints each target's executions; exits 1 when any
# target found a crash, a leak, a sanitizer report or a timeout (10 s per input), and keeps the
# input in FUZZ_BUILD_DIR/fuzz-artifacts/ (copy it into the corpus: it becomes a regression test
# of the normal build). The corpus grown during the run is thrown away. A target's own libFuzzer
# flags, if any, are in tests/fuzz/<what>.flags (one line; tests/fuzz/README.md says why).
set -euo pipefail

usage() {
  echo "usage: scripts/fuzz.sh SECONDS [FUZZ_BUILD_DIR [WHAT...]]" >&2
  echo "       scripts/fuzz.sh --runs N [FUZZ_BUILD_DIR [WHAT...]]" >&2
  exit 2
}
limit=()
if [[ ${1:-} == --runs ]]; then
  [[ ${2:-} =~ ^[0-9]+$ && $2 -ge 1 ]] || usage
  limit=(-runs="$2")
  shift 2
else
  [[ ${1:-} =~ ^[0-9]+$ && $1 -ge 1 ]] || usage
  limit=(-max_total_time="$1")
  shift
fi
build=${1:-build-fuzz}
only=("${@:2}")
root=$(cd "$(dirname "$0")/.." && pwd)
if ! compgen -G "$build/tests/fuzz/fuzz_*" >/dev/null; then
  echo "fuzz.sh: no fuzz targets in $build/tests/fuzz (run make fuzz first)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

failed=0
for target in "$build"/tests/fuzz/fuzz_*; do
  [[ -x $target && -f $target ]] || continue
  name=$(basename "$target")
  what=${name#fuzz_}
  if ((${#only[@]} > 0)) && [[ " ${only[*]} " != *" $what "* ]]; then continue; fi
  mkdir -p "$work/$what"
  log="$work/$name.log"
  flags=()
  if [[ -f $root/tests/fuzz/$what.flags ]]; then read -r -a flags <"$root/tests/fuzz/$what.flags"; fi
  start=$SECONDS
  if "$target" -dict="$root/tests/fuzz/json.dict" "${limit[@]}" -timeout=10 "${flags[@]}" \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
    "$work/$what" "$root/tests/fuzz/corpus/$what" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    printf '%-18s %12s executions in %ss, no crash\n' "$name" "${execs:-?}" "$((SECONDS - start))"
  else
    echo "$name: FAILED (input kept in $artifacts/)"
    tail -n 40 "$log"
    failed=1
  fi
done
exit $failed

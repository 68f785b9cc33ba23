#!/usr/bin/env bash
# usage: scripts/sanitizer-reports.sh DIR
#
# The end of make test-asan and make test-tsan: every sanitized process of the run (tests and
# the daemons they start) wrote its reports under DIR (log_path), one file per process that had
# one. Prints each and exits 1 when there is any; says so and exits 0 when there is none.
set -euo pipefail
dir=${1:?usage: scripts/sanitizer-reports.sh DIR}
shopt -s nullglob
reports=("$dir"/*)
if ((${#reports[@]} == 0)); then
  echo "sanitizer-reports: no report from any process of the run ($dir)"
  exit 0
fi
for report in "${reports[@]}"; do
  echo "==== $report"
  cat "$report"
done
echo "sanitizer-reports: ${#reports[@]} process(es) reported, above (files in $dir)" >&2
exit 1

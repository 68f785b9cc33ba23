#!/usr/bin/env bash
# Runs the benchmarks of docs/benchmarks.md. Needs root: each benchmark moves itself into a fresh
# network namespace (unshare) and never touches the host's ruleset.
#   usage: scripts/bench.sh [BUILD_DIR] [dataplane|orders|all] [extra Google Benchmark flags...]
#   dataplane (default): bench/dataplane_bench.cc, one nftables transaction in-process vs nft -f
#   orders:              bench/orders_bench.cc, one signed order from the received frame to the
#                        serialised signed ack (files under $TMPDIR, default /tmp), vs nft -f
# Repetitions are set per benchmark in the sources (one apply / one order per repetition, so the
# median / p99 / max are over single operations).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
shift || true
which="dataplane"
if [[ $# -gt 0 && ( "$1" == "dataplane" || "$1" == "orders" || "$1" == "all" ) ]]; then
  which="$1"
  shift
fi

if [[ "$(id -u)" -ne 0 ]]; then
  echo "bench.sh: needs root (nftables in a private network namespace)" >&2
  exit 1
fi
targets=()
case "$which" in
  dataplane) targets=(dataplane_bench) ;;
  orders) targets=(orders_bench) ;;
  all) targets=(dataplane_bench orders_bench) ;;
esac
for target in "${targets[@]}"; do
  if [[ ! -x "$build_dir/bench/$target" ]]; then
    cmake --build "$build_dir" --target "$target" -j "$(nproc)"
  fi
done

echo "machine: $(nproc) CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "kernel $(uname -r), Debian $(cat /etc/debian_version), $(nft --version)," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
for target in "${targets[@]}"; do
  "$build_dir/bench/$target" --benchmark_counters_tabular=true "$@" || status=$?
done
exit "$status"

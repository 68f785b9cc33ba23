#!/usr/bin/env bash
# Runs the dataplane benchmarks (docs/benchmarks.md). Needs root: the benchmark moves itself into
# a fresh network namespace (unshare) and never touches the host's ruleset.
#   usage: scripts/bench.sh [BUILD_DIR] [extra Google Benchmark flags...]
# Repetitions are set per benchmark in bench/dataplane_bench.cc (one apply per repetition, so the
# median / p99 / max are over single applies).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
shift || true

if [[ "$(id -u)" -ne 0 ]]; then
  echo "bench.sh: needs root (nftables in a private network namespace)" >&2
  exit 1
fi
bench="$build_dir/bench/dataplane_bench"
if [[ ! -x "$bench" ]]; then
  cmake --build "$build_dir" --target dataplane_bench -j "$(nproc)"
fi

echo "machine: $(nproc) CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "kernel $(uname -r), Debian $(cat /etc/debian_version), $(nft --version)"
exec "$bench" --benchmark_counters_tabular=true "$@"

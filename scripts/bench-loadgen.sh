#!/usr/bin/env bash
# Benchmark (not a test): isolate -> verified acks for fleets of simulated gateways, with
# shadan-loadgen (bench/loadgen/) against a real shadan-controller on loopback, both on this
# machine; docs/benchmarks.md "Fleet scale". No root needed.
#
#   usage: scripts/bench-loadgen.sh [BUILD_DIR] [--sizes "100 500 1000"] [--runs N]
#                                   [--svg FILE] [--soak SECONDS]
#
# For each size, N fanout runs (the median run by max_ms is reported), then one storm and one
# soak at the largest size. Prints a table and writes an SVG of time to the last ack (and p50)
# against fleet size (default docs/fleet-fanout.svg).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=build
SIZES="100 500 1000"
RUNS=3
SVG=$ROOT/docs/fleet-fanout.svg
SOAK=30
if [[ $# -gt 0 && $1 != --* ]]; then BUILD_DIR=$1; shift; fi
while [[ $# -gt 0 ]]; do
  case $1 in
    --sizes) SIZES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --svg) SVG=$2; shift 2 ;;
    --soak) SOAK=$2; shift 2 ;;
    *) echo "bench-loadgen: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
LOADGEN=$BUILD_DIR/bench/loadgen/shadan-loadgen
[[ -x $LOADGEN ]] || { echo "bench-loadgen: $LOADGEN is missing; run make build" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench-loadgen: needs jq" >&2; exit 1; }

echo "machine: $(nproc) CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "kernel $(uname -r), Debian $(cat /etc/debian_version)"
printf '%-7s %9s %9s %9s %9s %10s %12s\n' agents acked p50_ms p99_ms max_ms restore_max \
  ctl_rss_mib
points=()
largest=0
for size in $SIZES; do
  results=()
  for ((run = 1; run <= RUNS; run++)); do
    results+=("$("$LOADGEN" fanout --agents "$size" --json)")
  done
  # The median run by time to the last ack.
  median=$(printf '%s\n' "${results[@]}" | jq -s 'sort_by(.max_ms) | .[(length / 2 | floor)]')
  jq -r '[.agents, "\(.acked)/\(.agents)", .p50_ms, .p99_ms, .max_ms,
          .phases.restore.max_ms, (.controller_rss_anon_kb / 1024 * 10 | round / 10)]
         | @tsv' <<<"$median" | awk -F'\t' '{printf "%-7s %9s %9s %9s %9s %10s %12s\n", $1,$2,$3,$4,$5,$6,$7}'
  points+=("$(jq -r '"\(.agents) \(.p50_ms) \(.max_ms)"' <<<"$median")")
  largest=$size
done

echo
echo "storm ($largest agents): controller kill -9 and restart while all are connected"
"$LOADGEN" storm --agents "$largest" --json | jq -r '"  controller down \(.controller_down_ms) ms,
  all back \(.all_back_ms) ms after the kill, isolate issued at restart: last ack \(.max_ms) ms,
  acked \(.acked)/\(.agents), complete \(.complete)"'
echo "soak ($largest agents, ${SOAK} s idle)"
"$LOADGEN" soak --agents "$largest" --duration "$SOAK" --json |
  jq -r '"  controller CPU \(.controller_cpu_percent * 100 | round / 100)% of one core,
  RssAnon \(.controller.rss_anon_kb / 1024 * 10 | round / 10) MiB"'

# The SVG: x = agents (linear), y = ms; max (solid) and p50 (dashed).
printf '%s\n' "${points[@]}" | awk -v out="$SVG" '
  { n++; x[n] = $1; p50[n] = $2; mx[n] = $3; if ($1 > xmax) xmax = $1; if ($3 > ymax) ymax = $3 }
  END {
    W = 640; H = 400; L = 70; R = 20; T = 40; B = 50
    if (ymax <= 0) ymax = 1
    ystep = 10 ^ int(log(ymax) / log(10)); if (ymax / ystep < 3) ystep /= 2
    ytop = (int(ymax / ystep) + 1) * ystep
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H > out
    printf "<text x=\"%d\" y=\"22\" font-size=\"14\">shadan-loadgen fanout: isolate request to verified ack</text>\n", L > out
    printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, H - B, W - R, H - B > out
    printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T, L, H - B > out
    for (v = 0; v <= ytop + 0.001; v += ystep) {
      y = H - B - v / ytop * (H - B - T)
      printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", L, y, W - R, y, L - 6, y + 4, v > out
    }
    for (i = 1; i <= n; i++) {
      px[i] = L + x[i] / xmax * (W - L - R)
      printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", px[i], H - B + 18, x[i] > out
    }
    printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">agents</text>\n", (L + W - R) / 2, H - 10 > out
    printf "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">ms</text>\n", (T + H - B) / 2, (T + H - B) / 2 > out
    for (s = 1; s <= 2; s++) {
      path = ""
      for (i = 1; i <= n; i++) {
        v = (s == 1) ? mx[i] : p50[i]
        path = path sprintf("%s%.1f,%.1f", (i == 1 ? "" : " "), px[i], H - B - v / ytop * (H - B - T))
      }
      printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" %s points=\"%s\"/>\n", (s == 1 ? "#c0392b" : "#2c3e50"), (s == 1 ? "" : "stroke-dasharray=\"6 4\""), path > out
    }
    printf "<text x=\"%d\" y=\"%d\" fill=\"#c0392b\">last ack (max)</text><text x=\"%d\" y=\"%d\" fill=\"#2c3e50\">p50</text>\n", L + 10, T + 14, L + 120, T + 14 > out
    print "</svg>" > out
  }'
echo "graph: $SVG"

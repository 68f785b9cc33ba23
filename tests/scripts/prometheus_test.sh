#!/usr/bin/env bash
# docs/prometheus-alerts.yml: `promtool check rules` (it loads) and `promtool test rules` against
# tests/scripts/prometheus_rules_test.yml (each alert fires on the series that should fire it).
# The daemons' own expositions are checked with `promtool check metrics` where the real
# processes run: tests/integration/controller_process_test.cc and daemon_fault_test.cc.
# Usage: prometheus_test.sh SOURCE_DIR
set -euo pipefail
source_dir=${1:?usage: prometheus_test.sh SOURCE_DIR}
command -v promtool >/dev/null || {
  echo "prometheus_test: promtool missing (Debian package prometheus; scripts/install-deps.sh)" >&2
  exit 1
}
promtool check rules "$source_dir/docs/prometheus-alerts.yml"
cd "$source_dir/tests/scripts"
promtool test rules prometheus_rules_test.yml
echo "prometheus_test: ok"

#!/usr/bin/env bash
# The systemd units as shipped (systemd/): offline, without root and without systemd running.
#   - `systemd-analyze security --offline=true`: exposure <= 2.0 for the agent (it needs
#     CAP_NET_ADMIN and starts before sysusers) and <= 1.5 for the controller;
#   - `systemd-analyze verify`: clean, with ExecStart pointed at the binaries just built;
#   - both are Type=notify with WatchdogSec= (the daemons ping from their loops);
#   - the sysusers.d file creates the user the controller's unit runs as.
# usage: units_test.sh SOURCE_DIR AGENT_BINARY CONTROLLER_BINARY
set -euo pipefail
src=$1 agent=$2 controller=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

# exposure UNIT_FILE: the overall exposure, e.g. "1.9".
exposure() {
  systemd-analyze security --offline=true --no-pager "$1" 2>&1 |
    sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
check_exposure() {
  local unit=$1 limit=$2 value
  value=$(exposure "$src/systemd/$unit")
  if [[ -z $value ]]; then
    fail "$unit: systemd-analyze security gave no exposure"
  elif awk -v v="$value" -v l="$limit" 'BEGIN { exit !(v > l) }'; then
    fail "$unit: exposure $value, more than $limit"
    systemd-analyze security --offline=true --no-pager "$src/systemd/$unit" | grep '✗' || true
  else
    echo "ok: $unit exposure $value (limit $limit)"
  fi
}
check_exposure shadan-agent.service 2.0
check_exposure shadan-controller.service 1.5

sed "s|/usr/sbin/shadan-agent|$agent|" "$src/systemd/shadan-agent.service" \
  >"$work/shadan-agent.service"
sed "s|/usr/sbin/shadan-controller|$controller|" "$src/systemd/shadan-controller.service" \
  >"$work/shadan-controller.service"
# --man=no: the man pages are checked where they are installed (scripts/package-test.sh).
if out=$(systemd-analyze verify --man=no "$work/shadan-agent.service" \
  "$work/shadan-controller.service" 2>&1) && [[ -z $out ]]; then
  echo "ok: systemd-analyze verify is clean"
else
  fail "systemd-analyze verify: $out"
fi

for unit in shadan-agent.service shadan-controller.service; do
  for line in Type=notify NotifyAccess=main WatchdogSec=30s; do
    grep -qx "$line" "$src/systemd/$unit" || fail "$unit: no $line"
  done
done
grep -qx 'User=shadan' "$src/systemd/shadan-controller.service" ||
  fail "shadan-controller.service does not run as shadan"

mkdir -p "$work/root/etc"
systemd-sysusers --root="$work/root" "$src/systemd/sysusers.d/shadan.conf" >/dev/null 2>&1 ||
  fail "systemd-sysusers refused sysusers.d/shadan.conf"
if grep -q '^shadan:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin$' "$work/root/etc/passwd" 2>/dev/null; then
  echo "ok: sysusers.d/shadan.conf creates the system user shadan"
else
  fail "sysusers.d/shadan.conf did not create the user shadan with no login shell"
fi
exit "$failed"

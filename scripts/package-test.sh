#!/usr/bin/env bash
# The Debian packages as an administrator meets them (#21, docs/install.md): built by CPack
# from BUILD_DIR, checked by lintian, installed with dpkg -i, the installed binaries run
# (--version, check-config on a configuration made with the installed shadanctl), the units
# verified where they are installed (man pages included), an isolation applied by the
# installed agent kept across an upgrade of its package, then removed and purged: the
# machine is left as it was (a shadan user this run created is removed too; Debian's purge
# leaves system users).
#
#   usage: scripts/package-test.sh [BUILD_DIR]      (root; run by `make test` through ctest)
# Exit 77 (skipped) when not root or when Shadan packages are already installed here (this
# test would remove them).
set -euo pipefail

BUILD_DIR=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
if [[ $(id -u) -ne 0 ]]; then
  echo "package-test: needs root (dpkg -i); skipped"
  exit 77
fi
for package in shadan-agent shadan-controller shadanctl; do
  if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q installed; then
    echo "package-test: $package is installed on this machine; not touching it (skipped)"
    exit 77
  fi
done
for path in /usr/sbin/shadan-agent /usr/sbin/shadan-controller /usr/bin/shadanctl /etc/shadan \
  /var/lib/shadan /var/lib/shadan-controller; do
  if [[ -e $path ]]; then
    echo "package-test: $path exists (an installation not from the packages?); skipped"
    exit 77
  fi
done

WORK=$(mktemp -d /tmp/shadan-package-test.XXXXXX)
chmod 755 "$WORK"  # lintian runs as nobody
NS=sdpkg-$$
had_user=no
getent passwd shadan >/dev/null && had_user=yes
cleanup() {
  dpkg --purge shadan-agent shadan-controller shadanctl >/dev/null 2>&1 || true
  ip netns del "$NS" 2>/dev/null || true
  [[ $had_user == yes ]] || userdel shadan 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}
ok() { echo "ok: $*"; }

# ---- build and lint ------------------------------------------------------------------------
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD_DIR/CMakeCache.txt")
cpack --config "$BUILD_DIR/CPackConfig.cmake" -B "$WORK/v1" >"$WORK/cpack.log" 2>&1 ||
  { cat "$WORK/cpack.log"; echo "FAIL: cpack"; exit 1; }
debs=("$WORK"/v1/*.deb)
((${#debs[@]} == 3)) || { ls "$WORK/v1"; echo "FAIL: cpack made ${#debs[@]} packages, not 3"; exit 1; }
for deb in "${debs[@]}"; do
  name=$(dpkg-deb -f "$deb" Package)
  # Errors and warnings fail; what is accepted is in the package's own override file, with why.
  # As nobody: lintian unpacks what it checks and says root should not.
  if out=$(cd /tmp && runuser -u nobody -- env HOME=/tmp TMPDIR=/tmp lintian --fail-on error,warning \
    --tag-display-limit 0 "$deb" 2>&1); then
    ok "lintian $name $(dpkg-deb -f "$deb" Version): clean${out:+ ($(grep -c . <<<"$out") notes)}"
  else
    fail "lintian $name:"$'\n'"$out"
  fi
  echo "    Depends: $(dpkg-deb -f "$deb" Depends)"
done

# ---- install -------------------------------------------------------------------------------
dpkg -i "${debs[@]}" >"$WORK/dpkg-install.log" 2>&1 ||
  { cat "$WORK/dpkg-install.log"; echo "FAIL: dpkg -i"; exit 1; }
ok "dpkg -i: $(dpkg-query -W -f='${Package} ${Version}, ' shadan-agent shadan-controller shadanctl)"
for binary in /usr/sbin/shadan-agent /usr/sbin/shadan-controller /usr/bin/shadanctl; do
  got=$("$binary" --version 2>&1) || true
  [[ $got == "$(basename "$binary") $version" ]] && ok "$got" || fail "$binary --version: $got"
done
if getent passwd shadan | grep -q ':/usr/sbin/nologin$'; then ok "system user shadan (sysusers.d)"; else
  fail "no system user shadan after install"
fi
[[ -f /etc/shadan/agent.env ]] && dpkg-query --showformat='${Conffiles}' -W shadan-agent |
  grep -q /etc/shadan/agent.env && ok "/etc/shadan/agent.env is a conffile" ||
  fail "/etc/shadan/agent.env is not a conffile"
if out=$(systemd-analyze verify /lib/systemd/system/shadan-agent.service \
  /lib/systemd/system/shadan-controller.service 2>&1) && [[ -z $out ]]; then
  ok "systemd-analyze verify of the installed units (their man pages included): clean"
else
  fail "systemd-analyze verify: $out"
fi
for page in shadan-agent.8 shadan-controller.8 shadanctl.1 shadan-policy.5; do
  man -w "${page%.*}" >/dev/null 2>&1 || fail "man ${page%.*}: not installed"
done
for completion in shadanctl shadan-agent shadan-controller; do
  [[ -f /usr/share/bash-completion/completions/$completion ]] ||
    fail "no bash completion for $completion"
done

# ---- shadanctl init, then each daemon's check-config on what it wrote ----------------------
CTL=/usr/bin/shadanctl
conf=$WORK/etc
"$CTL" init controller --policy "$ROOT/policies/examples/lab.json" --name ctl.example \
  --ip 192.0.2.10 --dir "$conf" --state-dir "$WORK/controller-state" --json >"$WORK/init.json" ||
  fail "shadanctl init controller"
pin=$(jq -r .controller_pin "$WORK/init.json")
[[ $(stat -c %U:%a "$conf/signing.key") == shadan:600 ]] &&
  ok "init controller: the signing key is user shadan's, 0600" ||
  fail "init controller: the signing key is $(stat -c %U:%a "$conf/signing.key"), not shadan:600"
if out=$(/usr/sbin/shadan-controller check-config --config "$conf/controller.json" 2>&1); then
  ok "shadan-controller check-config on init's configuration: $(head -1 <<<"$out")"
else
  fail "shadan-controller check-config: $out"
fi
"$CTL" ca issue --dir "$conf/ca" --name gw --client --tls-dir "$WORK/gw-tls" >/dev/null 2>&1
"$CTL" init agent --gateway gw --controller 192.0.2.10:8444 --pin "$pin" \
  --policy "$conf/policy.json" --trust "$conf/trust.json" --tls-from "$WORK/gw-tls" \
  --dir "$WORK/gw-etc" >/dev/null || fail "shadanctl init agent"
opts=$(sed -n 's/^SHADAN_AGENT_OPTS=//p' "$WORK/gw-etc/agent.env")
# shellcheck disable=SC2086  # split at blanks, as systemd does with $SHADAN_AGENT_OPTS
if out=$(/usr/sbin/shadan-agent check-config --policy "$WORK/gw-etc/policy.json" --gateway gw \
  --state-dir /var/lib/shadan --trust "$WORK/gw-etc/trust.json" $opts 2>&1); then
  ok "shadan-agent check-config on init agent's configuration: $(head -1 <<<"$out")"
else
  fail "shadan-agent check-config: $out"
fi

# ---- an isolation survives an upgrade of the agent package -------------------------------
# The installed agent's local command isolates office in a namespace of our own (its kernel
# rules, the state in /var/lib/shadan); the package is upgraded to a new version; the new
# binary finds the isolation in the kernel and in its state.
ip netns add "$NS"
agent() {
  ip netns exec "$NS" /usr/sbin/shadan-agent "$@" --policy "$conf/policy.json" --gateway gw \
    --state-dir /var/lib/shadan
}
/usr/sbin/shadan-agent init --gateway gw --state-dir /var/lib/shadan >/dev/null
agent isolate office --reason "package-test: before the upgrade" >/dev/null ||
  fail "the installed agent did not isolate office"
before=$(ip netns exec "$NS" nft list table inet shadan 2>/dev/null | sha256sum)
cpack --config "$BUILD_DIR/CPackConfig.cmake" -B "$WORK/v2" \
  -D CPACK_PACKAGE_VERSION="$version+upgrade" -D CPACK_COMPONENTS_ALL=agent \
  >"$WORK/cpack2.log" 2>&1 || { cat "$WORK/cpack2.log"; fail "cpack (upgrade)"; }
dpkg -i "$WORK"/v2/shadan-agent_*.deb >"$WORK/dpkg-upgrade.log" 2>&1 ||
  { cat "$WORK/dpkg-upgrade.log"; fail "dpkg -i (upgrade)"; }
upgraded=$(dpkg-query -W -f='${Version}' shadan-agent)
[[ $upgraded == "$version+upgrade" ]] || fail "shadan-agent is at $upgraded after the upgrade"
after=$(ip netns exec "$NS" nft list table inet shadan 2>/dev/null | sha256sum)
status=$(agent status --json 2>/dev/null || true)
if [[ $before == "$after" ]] && jq -e '.kernel.state == "in_sync" and
  ([.isolations[].segment] | index("office"))' >/dev/null <<<"$status"; then
  ok "office stays isolated across the upgrade to $upgraded (kernel in sync)"
else
  fail "after the upgrade: table changed=$([[ $before == "$after" ]] && echo no || echo yes), status: $status"
fi
agent restore office --reason "package-test: done" >/dev/null || fail "restore after the upgrade"

# ---- remove and purge -----------------------------------------------------------------------
dpkg --remove shadan-agent shadan-controller shadanctl >/dev/null
[[ -f /etc/shadan/agent.env && ! -e /usr/sbin/shadan-agent ]] &&
  ok "remove: binaries gone, the conffile kept" || fail "remove did not leave the conffile alone"
dpkg --purge shadan-agent shadan-controller shadanctl >/dev/null 2>&1
left=()
for path in /usr/sbin/shadan-agent /usr/sbin/shadan-controller /usr/bin/shadanctl /etc/shadan \
  /var/lib/shadan /var/lib/shadan-controller /lib/systemd/system/shadan-agent.service \
  /lib/systemd/system/shadan-controller.service /usr/lib/sysusers.d/shadan.conf \
  /usr/share/doc/shadan-agent /usr/share/man/man8/shadan-agent.8.gz; do
  [[ -e $path ]] && left+=("$path")
done
((${#left[@]} == 0)) && ok "purge: nothing left" || fail "purge left ${left[*]}"
exit "$failed"

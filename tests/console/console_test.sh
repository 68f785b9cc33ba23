#!/usr/bin/env bash
# The operator console in headless Chromium (tests/console/console_test.py) against the real
# shadan-controller and two shadan-agents of the fleet lab (scripts/lib/fleet.sh): the browser
# runs in the controller's namespace and reaches the API by its lab address, the controller's
# certificate pinned. Screenshots go to BUILD_DIR/console-screenshots. Root; 77 without.
#   usage: tests/console/console_test.sh BUILD_DIR
set -euo pipefail
BUILD_DIR=${1:?usage: console_test.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[[ $(id -u) -eq 0 ]] || { echo "console_test: needs root (network namespaces)" >&2; exit 77; }
for tool in chromium chromedriver; do
  command -v "$tool" >/dev/null || { echo "console_test: $tool missing (scripts/install-deps.sh)" >&2; exit 1; }
done
FLEET_TAG=w
FLEET_PENDING=edge-gw  # approved by the test on the Agents page
# shellcheck source=../../scripts/lib/fleet.sh
source "$ROOT/scripts/lib/fleet.sh"
trap fleet_cleanup EXIT
failures=0

fleet_init >/dev/null
fleet_start >/dev/null || { echo "console_test: the fleet did not come up" >&2; cat "$WORK/ctl/log" >&2; exit 1; }
ip -n "$(ns ctl)" link set lo up  # chromedriver and the browser talk over loopback
spki=$(/usr/bin/python3 -c 'import base64, sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())' "$PIN")
mkdir -p "$WORK/browser"
restore=$(printf '["ip","netns","exec","%s","%s","restore","office","--reason","console test: restore","--controller","https://%s:8443","--ca","%s","--token-file","%s"]' \
  "$(ns ctl)" "$CTL" "$CONTROLLER_IP" "$WORK/ca/ca.crt" "$WORK/ops/sato.token")
"$CTL" keygen --out "$WORK/stranger" --role operator >/dev/null 2>&1
rc=0
ip netns exec "$(ns ctl)" env HOME="$WORK/browser" /usr/bin/python3 "$ROOT/tests/console/console_test.py" \
  --url "https://ctl.lab:8443/" --resolve "ctl.lab $CONTROLLER_IP" --spki "$spki" \
  --ops "$WORK/ops" --stranger-key "$WORK/stranger.key" --pending edge-gw --restore "$restore" \
  --shots "$BUILD_DIR/console-screenshots" --profile "$WORK/browser/profile" \
  --api "https://$CONTROLLER_IP:8443" --ca "$WORK/ca/ca.crt" || rc=$?
if ((rc != 0)); then
  echo "---- controller log ----" >&2
  tail -n 40 "$WORK/ctl/log" >&2
fi
exit $rc

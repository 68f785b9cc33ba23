#!/usr/bin/env bash
# Installs exactly the Debian 12 packages Shadan needs to build, test and run its demo.
# Idempotent: installs only what is missing, and runs `apt-get update` only when it must.
set -euo pipefail

PACKAGES=(
  # toolchain; python3-yaml turns docs/openapi.yaml into the JSON the controller serves
  build-essential cmake pkg-config clang-format python3 python3-yaml
  # dataplane: libnftables (nft_ctx), libnl-route-3 (blackhole routes), libmnl (nftables events)
  nftables libnftables-dev libnl-3-dev libnl-route-3-dev libmnl-dev
  # common: JSON, logging, crypto (SHA-256 now, Ed25519 and TLS next), state
  nlohmann-json3-dev libspdlog-dev libfmt-dev libsodium-dev libssl-dev libsqlite3-dev
  libboost-dev libboost-system-dev
  # tests and benchmarks (scripts/bench-loadgen.sh reads shadan-loadgen's JSON with jq)
  libgtest-dev libgmock-dev googletest libbenchmark-dev jq
  # make fuzz: the libFuzzer targets are built with clang-14 (tests/fuzz/README.md)
  clang-14 libfuzzer-14-dev
  # the namespace lab: ip netns, veth; conntrack for flow-table inspection; libfaketime steps
  # one agent's wall clock in scripts/fault-matrix.sh (a real clock step would move the host's)
  iproute2 conntrack faketime
  # detector integrations (integrations/, docs/detectors.md): the fail2ban action posts with
  # curl; tests/integration/fail2ban_test.cc runs a real fail2ban-server (it brings python3,
  # which the Wazuh active response needs)
  curl fail2ban
  # tests/integration/crowdsec_test.cc runs a real crowdsec (1.4, its HTTP notification plugin
  # with integrations/crowdsec/http.yaml); the package ships the sshd parser and ssh-bf
  # scenario offline, so the test needs no hub
  crowdsec
  # make package (CPack .debs; dpkg-shlibdeps computes Depends) and scripts/package-test.sh,
  # which checks them with lintian; man(1) renders the man pages in tests/scripts
  dpkg-dev fakeroot lintian man-db
  # tests/scripts/syscalls_test.sh traces the daemons' system calls against their units' filters
  strace
  # promtool: `check metrics` on both daemons' /metrics (controller_process_test,
  # daemon_fault_test), `check rules` and `test rules` on docs/prometheus-alerts.yml
  # (tests/scripts/prometheus_test.sh). Only the tool is used; the postinst may start a
  # prometheus service where systemd runs, which install-deps stops and disables again.
  prometheus
  # tests/console/console_test.sh drives the operator console in a real headless browser
  chromium chromium-driver python3-selenium
  # scripts/footprint.sh (issue #18's footprint comparison, docs/benchmarks.md) measures the idle
  # agent beside the bouncer an operator would run on the same gateway, against its own crowdsec
  crowdsec-firewall-bouncer
  # the controller's store on etcd (controller/etcd_store.h, docs/ha.md): tests start their own
  # etcd members on loopback; etcdctl is the operator's tool for snapshots and member lists
  etcd-server etcd-client
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or install them yourself) and try again" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# crowdsec's postinst registers with CrowdSec's Central API (online) unless this file holds
# something (README.Debian); without internet that registration fails the install. The tests
# need only the local API, so opt out unless the administrator already decided.
if [[ " ${missing[*]} " == *" crowdsec "* && ! -s /etc/crowdsec/online_api_credentials.yaml ]]; then
  mkdir -p /etc/crowdsec
  echo "# no thanks: no Central API on this machine (Shadan scripts/install-deps.sh)" \
    >/etc/crowdsec/online_api_credentials.yaml
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}"

# fail2ban is here for its server in the tests, not as a service: Debian enables it with an sshd
# jail on install, which could ban the administrator of this machine. Stopped and disabled,
# only when this run installed it (an existing fail2ban is left as its owner configured it).
if [[ " ${missing[*]} " == *" fail2ban "* ]] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now fail2ban.service >/dev/null 2>&1 || true
fi

# crowdsec likewise: the test runs its own crowdsec in a temporary directory; the service Debian
# starts on install would read the system's logs and ban on its own. Stopped and disabled, only
# when this run installed it.
if [[ " ${missing[*]} " == *" crowdsec "* ]] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now crowdsec.service >/dev/null 2>&1 || true
fi

# prometheus likewise: the suite needs only promtool; a server on :9090 scraping this machine is
# not ours to start. Stopped and disabled, only when this run installed it.
if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi

# crowdsec-firewall-bouncer likewise: scripts/footprint.sh runs its own bouncer in a network
# namespace. Debian's postinst registers the bouncer in the local crowdsec's database (cscli, no
# network) and enables and starts the service, which puts its tables (ip crowdsec, ip6 crowdsec6,
# empty sets) into the host's ruleset until it stops; on SIGTERM it deletes them. Stopped and
# disabled, only when this run installed it.
if [[ " ${missing[*]} " == *" crowdsec-firewall-bouncer "* ]] &&
  command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now crowdsec-firewall-bouncer.service >/dev/null 2>&1 || true
fi

# etcd-server likewise: the tests start their own members in temporary directories; a member
# on :2379 with the package's data directory is not ours to run. Stopped and disabled, only
# when this run installed it.
if [[ " ${missing[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now etcd.service >/dev/null 2>&1 || true
fi

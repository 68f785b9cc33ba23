#!/usr/bin/env bash
# Idle footprint of the gateway agent beside its peers (issue #18, docs/benchmarks.md "Agent
# footprint beside crowdsec-firewall-bouncer and nft monitor"), every program measured the same
# way, by one function, from /proc:
#   - `shadan-agent run` as on a gateway: its own fresh network namespace, a state directory in
#     a temporary directory, the lab policy (policies/examples/lab.json, gateway gw), standalone
#     (no controller), first with no isolation, then with `office` isolated through the daemon;
#   - crowdsec-firewall-bouncer 0.0.25 (Debian 12) as in production: the packaged configuration
#     (nftables mode, 10 s pulls, prometheus on loopback, log file) with only the paths, the
#     API URL and its key changed, pulling from a real crowdsec local API (LAPI only, `-no-cs`)
#     that this script runs in the foreground in the same namespace, no decisions;
#   - a bare `nft monitor`, in a namespace of its own.
# Each namespace is new, so no nftables table of the bouncer or the agent reaches the host's
# ruleset; nothing under /etc/crowdsec or /var/lib/crowdsec is read for state or written.
#
# Readings after 5 s of settling: RssAnon, VmRSS, VmHWM (/proc/PID/status), Pss and Pss_Anon
# (/proc/PID/smaps_rollup); then on-CPU time (utime + stime, /proc/PID/stat) of all three over
# the same window of --agent-cpu-seconds (default 600), and the memory readings again.
#
#   usage: scripts/footprint.sh [BUILD_DIR] [--agent-cpu-seconds N] [--json]
#   BUILD_DIR (default build) holds agents/shadan-agent; --json prints one JSON object on
#   stdout instead of the table (progress always goes to stderr).
# Needs root (namespaces, nftables) and the crowdsec and crowdsec-firewall-bouncer packages
# (scripts/install-deps.sh). Everything it starts is stopped, and its namespaces and temporary
# directory removed, on every exit, failures and Ctrl-C included.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=build
CPU_SECONDS=600
JSON=0
SETTLE_SECONDS=5
READY_TIMEOUT_SECONDS=30

usage() { echo "usage: scripts/footprint.sh [BUILD_DIR] [--agent-cpu-seconds N] [--json]" >&2; }

build_dir_given=0
while (($# > 0)); do
  case "$1" in
    --agent-cpu-seconds)
      [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || {
        echo "footprint: --agent-cpu-seconds needs a whole number of seconds ≥ 1" >&2
        exit 2
      }
      CPU_SECONDS=$2
      shift 2
      ;;
    --json) JSON=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "footprint: unknown option $1" >&2; usage; exit 2 ;;
    *)
      ((build_dir_given == 0)) || { echo "footprint: one BUILD_DIR only" >&2; usage; exit 2; }
      BUILD_DIR=$1
      build_dir_given=1
      shift
      ;;
  esac
done
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR

AGENT=$BUILD_DIR/agents/shadan-agent
POLICY=$ROOT/policies/examples/lab.json
GATEWAY=gw
CROWDSEC=/usr/bin/crowdsec
CSCLI=/usr/bin/cscli
BOUNCER=/usr/bin/crowdsec-firewall-bouncer
BOUNCER_CONFIG=/etc/crowdsec/bouncers/crowdsec-firewall-bouncer.yaml
# The LAPI listens where the packaged bouncer configuration expects it; the namespace is new,
# so the port is free whatever the host runs.
LAPI_LISTEN=127.0.0.1:8080

say() { echo "footprint: $*" >&2; }
die() { say "$*"; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
  die "needs root (network namespaces, nftables)"
fi
[[ -x $AGENT ]] || die "$AGENT is missing; build it (make build) or give BUILD_DIR"
for program in "$CROWDSEC" "$CSCLI" "$BOUNCER" /usr/sbin/nft; do
  [[ -x $program ]] || die "$program is missing; scripts/install-deps.sh installs it"
done
[[ -r $BOUNCER_CONFIG ]] || die "$BOUNCER_CONFIG is missing (crowdsec-firewall-bouncer ships it)"

TAG="fp-$$"
NS_AGENT="sd-$TAG-agent"
NS_BOUNCER="sd-$TAG-bouncer"
NS_NFT="sd-$TAG-nft"
TMP=$(mktemp -d "/tmp/shadan-footprint.XXXXXX")
STATE=$TMP/agent-state
CS=$TMP/crowdsec
BDIR=$TMP/bouncer
started_pids=()
made_namespaces=()
SLEEP_PID=

# Stops what this run started (children first: crowdsec could leave plugins behind), by pid,
# then removes the namespaces and the temporary directory. Safe to run twice.
cleanup() {
  local pid child i
  [[ -z $SLEEP_PID ]] || kill "$SLEEP_PID" 2>/dev/null || true
  for ((i = ${#started_pids[@]} - 1; i >= 0; i--)); do
    pid=${started_pids[i]}
    kill -0 "$pid" 2>/dev/null || continue
    for child in $(pgrep -P "$pid" 2>/dev/null || true); do
      kill -TERM "$child" 2>/dev/null || true
    done
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${started_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      for child in $(pgrep -P "$pid" 2>/dev/null || true); do
        kill -KILL "$child" 2>/dev/null || true
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  started_pids=()
  for ns in "${made_namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  made_namespaces=()
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# pause SECONDS: a sleep that INT/TERM interrupt at once (bash runs traps only between
# commands; `wait` is interruptible, a foreground `sleep` is not).
pause() {
  sleep "$1" &
  SLEEP_PID=$!
  wait "$SLEEP_PID"
  SLEEP_PID=
}

new_namespace() {
  ip netns add "$1"
  made_namespaces+=("$1")
  ip -n "$1" link set lo up
}

# poll_until SECONDS PID WHAT COMMAND...: runs COMMAND every 0.2 s until it succeeds; fails if
# PID exits first or the time runs out.
poll_until() {
  local seconds=$1 pid=$2 what=$3
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { say "$what exited before it was ready"; return 1; }
    ((SECONDS < deadline)) || { say "$what not ready within ${seconds} s"; return 1; }
    sleep 0.2
  done
}

# The program `ip netns exec` was asked to run must be the process itself (it execs in place):
# otherwise the readings would be of `ip`.
expect_comm() {
  local pid=$1 want=$2 comm
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  [[ $comm == "${want:0:15}" ]] || die "pid $pid is \"$comm\", not $want"
}

show_log() { say "last lines of $1:"; tail -n 20 "$1" >&2 || true; }

# ---- the one reading, used for every program ------------------------------------------------
# read_footprint PID: "rss_anon_kb pss_kb pss_anon_kb vm_rss_kb vm_hwm_kb" (kB as the kernel
# prints them; pss_anon_kb is "null" on kernels without Pss_Anon in smaps_rollup).
read_footprint() {
  local pid=$1
  awk '
    FILENAME ~ /status$/ && $1 == "RssAnon:" { rss_anon = $2 }
    FILENAME ~ /status$/ && $1 == "VmRSS:" { vm_rss = $2 }
    FILENAME ~ /status$/ && $1 == "VmHWM:" { vm_hwm = $2 }
    FILENAME ~ /smaps_rollup$/ && $1 == "Pss:" { pss = $2 }
    FILENAME ~ /smaps_rollup$/ && $1 == "Pss_Anon:" { pss_anon = $2 }
    END {
      if (rss_anon == "" || vm_rss == "" || vm_hwm == "" || pss == "") exit 1
      print rss_anon, pss, (pss_anon == "" ? "null" : pss_anon), vm_rss, vm_hwm
    }' "/proc/$pid/status" "/proc/$pid/smaps_rollup"
}

# cpu_ticks PID: utime + stime of the whole process (all its threads), in clock ticks. The
# fields are counted after the command name's closing parenthesis (a name may hold spaces).
cpu_ticks() {
  local stat
  stat=$(<"/proc/$1/stat")
  awk '{ print $12 + $13 }' <<<"${stat##*) }"
}

# top_mappings PID N: the N mappings with the largest Pss, summed per mapped file (or [heap],
# [stack], [anon]), as "pss_kb rss_kb anon_kb name" lines.
top_mappings() {
  awk '
    /^[0-9a-f]+-[0-9a-f]+ / {
      name = (NF >= 6) ? $6 : "[anon]"
      for (i = 7; i <= NF; i++) name = name " " $i
      next
    }
    $1 == "Rss:" { rss[name] += $2 }
    $1 == "Pss:" { pss[name] += $2 }
    $1 == "Anonymous:" { anon[name] += $2 }
    END { for (n in pss) printf "%d %d %d %s\n", pss[n], rss[n], anon[n], n }
  ' "/proc/$1/smaps" | sort -k1,1nr | head -n "$2"
}

json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# ---- the machine ------------------------------------------------------------------------------
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
CPUS=$(nproc)
KERNEL=$(uname -r)
OS="Debian $(cat /etc/debian_version 2>/dev/null || echo unknown)"
MEM_KB=$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
CLK_TCK=$(getconf CLK_TCK)
AGENT_VERSION=$("$AGENT" --version | awk '{ print $2 }')
package_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }
BOUNCER_VERSION=$(package_version crowdsec-firewall-bouncer)
CROWDSEC_VERSION=$(package_version crowdsec)
NFT_VERSION=$(nft --version | awk '{ print $2 }')

# ---- 1. shadan-agent run ----------------------------------------------------------------------
say "starting shadan-agent run in $NS_AGENT (state $STATE)"
new_namespace "$NS_AGENT"
agent_cli() {
  ip netns exec "$NS_AGENT" "$AGENT" "$@" --policy "$POLICY" --gateway "$GATEWAY" \
    --state-dir "$STATE"
}
# The daemon's first start creates the state directory (0700) and its key, as on a new gateway.
ip netns exec "$NS_AGENT" "$AGENT" run --policy "$POLICY" --gateway "$GATEWAY" \
  --state-dir "$STATE" >"$TMP/agent.log" 2>&1 &
AGENT_PID=$!
started_pids+=("$AGENT_PID")
# Ready as an administrator's script sees it: `status` answered by the daemon, in sync.
agent_ready() { agent_cli status --json | grep -q '"daemon": true'; }
poll_until "$READY_TIMEOUT_SECONDS" "$AGENT_PID" "shadan-agent run" agent_ready ||
  { show_log "$TMP/agent.log"; exit 1; }
expect_comm "$AGENT_PID" shadan-agent

# ---- 2. crowdsec LAPI + crowdsec-firewall-bouncer ---------------------------------------------
say "starting crowdsec (local API only) and crowdsec-firewall-bouncer in $NS_BOUNCER"
new_namespace "$NS_BOUNCER"
mkdir -p "$CS/etc" "$CS/data" "$BDIR"
chmod 700 "$CS" "$BDIR"
# No Central API (no online_client), no prometheus, logs on stdout, no daemonizing; the hub the
# package ships (the LAPI loads no parser or scenario with -no-cs, but the paths must resolve).
cat >"$CS/config.yaml" <<EOF
common:
  daemonize: false
  log_media: stdout
  log_level: info
config_paths:
  config_dir: $CS/etc/
  data_dir: $CS/data/
  simulation_path: $CS/etc/simulation.yaml
  hub_dir: /usr/share/crowdsec/hub/
  index_path: /usr/share/crowdsec/hub/.index.json
db_config:
  type: sqlite
  db_path: $CS/data/crowdsec.db
  use_wal: true
api:
  client:
    credentials_path: $CS/etc/local_api_credentials.yaml
  server:
    listen_uri: $LAPI_LISTEN
    profiles_path: $CS/etc/profiles.yaml
prometheus:
  enabled: false
EOF
echo "simulation: off" >"$CS/etc/simulation.yaml"
cat >"$CS/etc/profiles.yaml" <<'EOF'
name: default_ip_remediation
filters:
 - Alert.Remediation == true && Alert.GetScope() == "Ip"
decisions:
 - type: ban
   duration: 4h
on_success: break
EOF
# cscli writes the bouncer straight into the LAPI's database; the key goes only into the
# bouncer's configuration (0600, in the 0700 directory), never to the terminal.
BOUNCER_KEY=$("$CSCLI" -c "$CS/config.yaml" --error bouncers add "footprint-$$" -o raw) ||
  die "cscli bouncers add failed"
[[ $BOUNCER_KEY =~ ^[A-Za-z0-9]+$ ]] || die "cscli bouncers add returned no key"

ip netns exec "$NS_BOUNCER" "$CROWDSEC" -c "$CS/config.yaml" -no-cs >"$TMP/crowdsec.log" 2>&1 &
CROWDSEC_PID=$!
started_pids+=("$CROWDSEC_PID")
lapi_listening() {
  ip netns exec "$NS_BOUNCER" bash -c "exec 3<>/dev/tcp/${LAPI_LISTEN%:*}/${LAPI_LISTEN##*:}"
}
poll_until "$READY_TIMEOUT_SECONDS" "$CROWDSEC_PID" "crowdsec" lapi_listening ||
  { show_log "$TMP/crowdsec.log"; exit 1; }

# The packaged configuration, completed as the package's postinst does it (mode, api_key), with
# the LAPI's URL and the log and pid files in the temporary directory. The key is put in by the
# shell, not by sed, so that it never appears on a command line.
bouncer_config=$(<"$BOUNCER_CONFIG")
# shellcheck disable=SC2016 # the placeholders are literal text of the packaged file
bouncer_config=${bouncer_config//'${BACKEND}'/nftables}
# shellcheck disable=SC2016
bouncer_config=${bouncer_config//'${API_KEY}'/$BOUNCER_KEY}
unset BOUNCER_KEY
bouncer_config=$(sed -e "s|^api_url: .*|api_url: http://$LAPI_LISTEN/|" \
  -e "s|^log_dir: .*|log_dir: $BDIR/|" -e "s|^pid_dir: .*|pid_dir: $BDIR/|" <<<"$bouncer_config")
(umask 077 && printf '%s\n' "$bouncer_config" >"$BDIR/crowdsec-firewall-bouncer.yaml")
unset bouncer_config
if ! grep -q '^mode: nftables$' "$BDIR/crowdsec-firewall-bouncer.yaml" ||
  ! grep -q '^api_key: [A-Za-z0-9]' "$BDIR/crowdsec-firewall-bouncer.yaml"; then
  die "$BOUNCER_CONFIG has no mode: \${BACKEND} or api_key: \${API_KEY} line to fill in"
fi
ip netns exec "$NS_BOUNCER" "$BOUNCER" -c "$BDIR/crowdsec-firewall-bouncer.yaml" -t >"$TMP/bouncer-check.log" 2>&1 ||
  { show_log "$TMP/bouncer-check.log"; die "the bouncer rejects its configuration"; }
ip netns exec "$NS_BOUNCER" "$BOUNCER" -c "$BDIR/crowdsec-firewall-bouncer.yaml" \
  >"$TMP/bouncer.stdout" 2>&1 &
BOUNCER_PID=$!
started_pids+=("$BOUNCER_PID")
# Ready once it made its tables and its first pull of the decision stream succeeded.
bouncer_ready() {
  ip netns exec "$NS_BOUNCER" nft list table ip crowdsec &&
    grep -q 'decisions/stream?startup=true HTTP/1.1 200' "$TMP/crowdsec.log"
}
poll_until "$READY_TIMEOUT_SECONDS" "$BOUNCER_PID" "crowdsec-firewall-bouncer" bouncer_ready ||
  { show_log "$TMP/bouncer.stdout"; show_log "$BDIR/crowdsec-firewall-bouncer.log"; exit 1; }
expect_comm "$BOUNCER_PID" crowdsec-firewall-bouncer

# ---- 3. nft monitor ---------------------------------------------------------------------------
say "starting nft monitor in $NS_NFT"
new_namespace "$NS_NFT"
ip netns exec "$NS_NFT" nft monitor >"$TMP/nft-monitor.log" 2>&1 &
NFT_PID=$!
started_pids+=("$NFT_PID")
nft_ready() { [[ $(cat "/proc/$NFT_PID/comm") == nft ]]; }
poll_until "$READY_TIMEOUT_SECONDS" "$NFT_PID" "nft monitor" nft_ready || exit 1

# ---- readings -----------------------------------------------------------------------------------
NAMES=(agent bouncer nft)
declare -A PID=([agent]=$AGENT_PID [bouncer]=$BOUNCER_PID [nft]=$NFT_PID)
declare -A IDLE AFTER TICKS0 TICKS1

say "settling ${SETTLE_SECONDS} s"
pause "$SETTLE_SECONDS"
for n in "${NAMES[@]}"; do IDLE[$n]=$(read_footprint "${PID[$n]}"); done

say "isolating office through the daemon (profile full)"
agent_cli isolate office --reason "footprint measurement" >"$TMP/isolate.log" 2>&1 ||
  { show_log "$TMP/isolate.log"; die "isolate office failed"; }
agent_cli status >/dev/null || die "after isolate office the kernel does not hold the state"
pause "$SETTLE_SECONDS"
AGENT_ISOLATED=$(read_footprint "$AGENT_PID")

say "CPU of all three over ${CPU_SECONDS} s of idling (office stays isolated)"
for n in "${NAMES[@]}"; do TICKS0[$n]=$(cpu_ticks "${PID[$n]}"); done
t0=$(date +%s%N)
pause "$CPU_SECONDS"
for n in "${NAMES[@]}"; do TICKS1[$n]=$(cpu_ticks "${PID[$n]}"); done
t1=$(date +%s%N)
for n in "${NAMES[@]}"; do
  kill -0 "${PID[$n]}" 2>/dev/null || die "$n (pid ${PID[$n]}) exited during the window"
  AFTER[$n]=$(read_footprint "${PID[$n]}")
done
agent_cli status >/dev/null || die "after the window the kernel does not hold the agent's state"
PERIOD_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

cpu_s() {
  awk -v a="${TICKS0[$1]}" -v b="${TICKS1[$1]}" -v hz="$CLK_TCK" \
    'BEGIN { printf "%.2f", (b - a) / hz }'
}
cpu_percent() {
  awk -v s="$(cpu_s "$1")" -v p="$PERIOD_S" 'BEGIN { printf "%.3f", 100 * s / p }'
}
AGENT_TOP=$(top_mappings "$AGENT_PID" 12)
BOUNCER_TOP=$(top_mappings "$BOUNCER_PID" 6)

# ---- output -----------------------------------------------------------------------------------
declare -A LABEL=([agent]="shadan-agent run" [bouncer]="crowdsec-firewall-bouncer"
  [nft]="nft monitor")
declare -A VERSION=([agent]=$AGENT_VERSION [bouncer]=$BOUNCER_VERSION [nft]=$NFT_VERSION)
declare -A KEY=([agent]=shadan_agent [bouncer]=crowdsec_firewall_bouncer [nft]=nft_monitor)
declare -A STATE_TEXT=([agent]="no isolation" [bouncer]="no decisions" [nft]="idle")

# reading_json "rss_anon pss pss_anon vm_rss vm_hwm"
reading_json() {
  local r
  read -r -a r <<<"$1"
  printf '"rss_anon_kb": %s, "pss_kb": %s, "pss_anon_kb": %s, "vm_rss_kb": %s, "vm_hwm_kb": %s' \
    "${r[0]}" "${r[1]}" "${r[2]}" "${r[3]}" "${r[4]}"
}
mappings_json() {
  local first=1 pss rss anon name
  printf '['
  while read -r pss rss anon name; do
    ((first)) || printf ', '
    first=0
    printf '{"pss_kb": %s, "rss_kb": %s, "anon_kb": %s, "mapping": %s}' "$pss" "$rss" "$anon" \
      "$(json_string "$name")"
  done <<<"$1"
  printf ']'
}

if ((JSON)); then
  printf '{"machine": {"cpu": %s, "cpus": %s, "memory_kb": %s, "kernel": %s, "os": %s, ' \
    "$(json_string "$CPU_MODEL")" "$CPUS" "$MEM_KB" "$(json_string "$KERNEL")" \
    "$(json_string "$OS")"
  printf '"load_average_start": %s, "load_average_end": %s, "crowdsec": %s}' \
    "$(json_string "$LOAD_START")" "$(json_string "$LOAD_END")" \
    "$(json_string "$CROWDSEC_VERSION")"
  printf ', "settle_s": %s' "$SETTLE_SECONDS"
  for n in "${NAMES[@]}"; do
    printf ', "%s": {"version": %s, "state": %s, %s, "cpu_s": %s, "cpu_percent": %s, ' \
      "${KEY[$n]}" "$(json_string "${VERSION[$n]}")" "$(json_string "${STATE_TEXT[$n]}")" \
      "$(reading_json "${IDLE[$n]}")" "$(cpu_s "$n")" "$(cpu_percent "$n")"
    printf '"period_s": %s, "after_period": {%s}' "$PERIOD_S" "$(reading_json "${AFTER[$n]}")"
    case $n in
      agent)
        printf ', "one_isolation": {%s}, "cpu_during": "office isolated"' \
          "$(reading_json "$AGENT_ISOLATED")"
        printf ', "top_mappings_by_pss": %s' "$(mappings_json "$AGENT_TOP")"
        ;;
      bouncer) printf ', "top_mappings_by_pss": %s' "$(mappings_json "$BOUNCER_TOP")" ;;
    esac
    printf '}'
  done
  printf '}\n'
  exit 0
fi

echo "machine: $CPUS CPU, $CPU_MODEL, $((MEM_KB / 1024)) MiB, kernel $KERNEL, $OS," \
  "load average $LOAD_START (start) / $LOAD_END (end)"
echo "versions: shadan-agent $AGENT_VERSION, crowdsec-firewall-bouncer $BOUNCER_VERSION" \
  "(crowdsec LAPI $CROWDSEC_VERSION), nft $NFT_VERSION"
echo
row() { printf '%-28s %-22s %9s %9s %9s %9s %9s %10s %8s\n' "$@"; }
reading_row() {
  local r
  read -r -a r <<<"$3"
  row "$1" "$2" "${r[0]}" "${r[1]}" "${r[2]/null/-}" "${r[3]}" "${r[4]}" "$4" "$5"
}
row program state "RssAnon" "Pss" "Pss_Anon" "VmRSS" "VmHWM" "CPU s" "CPU %"
row "" "" "kB" "kB" "kB" "kB" "kB" "(${PERIOD_S} s)" ""
for n in "${NAMES[@]}"; do
  reading_row "${LABEL[$n]}" "${STATE_TEXT[$n]}, +${SETTLE_SECONDS} s" "${IDLE[$n]}" \
    "$(cpu_s "$n")" "$(cpu_percent "$n")"
  if [[ $n == agent ]]; then
    reading_row "" "office isolated" "$AGENT_ISOLATED" "" ""
  fi
  reading_row "" "after the window" "${AFTER[$n]}" "" ""
done
echo
echo "CPU: utime + stime over the same ${PERIOD_S} s window for all three (agent: office isolated)"
echo
mappings_table() {
  echo "$1: top mappings by Pss after the window (kB)"
  printf '  %8s %8s %8s  %s\n' Pss Rss Anon mapping
  while read -r pss rss anon name; do
    printf '  %8s %8s %8s  %s\n' "$pss" "$rss" "$anon" "$name"
  done <<<"$2"
}
mappings_table shadan-agent "$AGENT_TOP"
echo
mappings_table crowdsec-firewall-bouncer "$BOUNCER_TOP"

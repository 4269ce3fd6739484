#!/usr/bin/env bash
# A single-node Ceph RADOS Gateway for tests and development: one monitor, one OSD (bluestore on a
# sparse file), one radosgw (beast on 127.0.0.1), no systemd, no auth between daemons, everything
# (config, data, logs, pid files, sockets) in one directory.
#
#   scripts/ceph-rgw.sh start DIR     start what is not running (creates the cluster on first use), print the env
#   scripts/ceph-rgw.sh stop DIR [rgw|osd|mon]   stop everything (or one daemon) by its pid file
#   scripts/ceph-rgw.sh status DIR    exit 0 when the S3 endpoint answers
#
# `start` is idempotent: a second call finds the daemons running and only prints the env; after `stop`
# it starts them again on the same data, ports and keys. When S3 is ready it writes DIR/s3.env
# (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3) and prints it.
# On failure it stops what it started and shows the tail of the log of the daemon that failed.
# Needs root (the daemons' defaults) and the Debian packages ceph-mon ceph-osd radosgw ceph-common.
set -Eeuo pipefail

usage() {
  echo "usage: $0 start DIR | stop DIR [rgw|osd|mon] | status DIR" >&2
  exit 2
}
[[ $# -ge 2 ]] || usage
cmd=$1
dir=$2
component=${3:-}
[[ $cmd == start || $cmd == stop || $cmd == status ]] || usage
[[ $cmd != start ]] || mkdir -p "$dir"
[[ -d $dir ]] || { [[ $cmd == stop ]] && exit 0; echo "ceph-rgw: no such directory: $dir" >&2; exit 2; }
dir=$(cd "$dir" && pwd)
conf=$dir/ceph.conf
export CEPH_CONF=$conf # every ceph tool reads this file, never /etc/ceph
deadline_s=${CEPH_RGW_TIMEOUT:-60}

log() { echo "ceph-rgw: $*" >&2; }

pid_of() { # prints the pid of a daemon whose pid file names a live process
  local f=$dir/run/$1.pid pid
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  kill -0 "$pid" 2>/dev/null || return 1
  # An exited daemon stays a zombie until init reaps it (seconds, in some containers): that is dead.
  local _pid _comm state
  read -r _pid _comm state _ <"/proc/$pid/stat" 2>/dev/null || return 1
  [[ $state != Z ]] || return 1
  echo "$pid"
}

stop_daemons() { # SIGTERM to all named daemons at once, SIGKILL to those still alive after $grace_ticks x 50 ms
  local name pid pids=() i
  for name in "$@"; do
    if pid=$(pid_of "$name"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for ((i = 0; i < ${grace_ticks:-100} && ${#pids[@]} > 0; i++)); do
    for pid in "${!pids[@]}"; do kill -0 "${pids[$pid]}" 2>/dev/null || unset "pids[$pid]"; done
    [[ ${#pids[@]} -eq 0 ]] || sleep 0.05
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for name in "$@"; do rm -f "$dir/run/$name.pid"; done
}

# The OSD tells the monitor it is going down (and waits up to 5 s for it): stop the monitor last.
# radosgw is stateless and its graceful shutdown can take over 5 s: it gets 1 s.
stop_rgw() { grace_ticks=20 stop_daemons client.rgw.0; }
stop_all() { stop_rgw && stop_daemons osd.0 && stop_daemons mon.a; }

if [[ $cmd == stop ]]; then
  case $component in
    '') stop_all ;;
    rgw) stop_rgw ;;
    osd) stop_daemons osd.0 ;;
    mon) stop_daemons mon.a ;;
    *) usage ;;
  esac
  exit 0
fi

http_ok() { # true when 127.0.0.1:$1 answers an HTTP request with 200 (bash only: no curl needed)
  local line
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 2 line <&3 || line=
  exec 3>&-
  [[ $line == 'HTTP/1.'[01]' 200'* ]]
}

if [[ $cmd == status ]]; then
  [[ -s $dir/ports ]] || exit 1
  # shellcheck source=/dev/null
  source "$dir/ports"
  http_ok "$RGW_PORT"
  exit
fi

for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool; do
  command -v "$bin" >/dev/null || { log "$bin not found: install ceph-mon ceph-osd radosgw ceph-common"; exit 3; }
done

failing_log=
fail() {
  local f
  trap - ERR
  log "FAILED: $*"
  for f in "$failing_log" "${failing_log%.log}.out"; do
    if [[ -s $f ]]; then
      log "last lines of $f:"
      grep -v '^$' "$f" | tail -n 20 >&2
    fi
  done
  stop_all
  exit 1
}
trap 'fail "command failed (line $LINENO): $BASH_COMMAND"' ERR

# Starts daemon $1 in the foreground of a background job, so its pid is known at once (a daemonizing
# ceph process writes its pid file only later, and not at all when it fails early).
launch() {
  local name=$1
  shift
  "$@" -f >>"$dir/log/$name.out" 2>&1 </dev/null &
  echo $! >"$dir/run/$name.pid"
}

# Waits until "$@" succeeds, up to the deadline; fails at once when daemon $2 has exited.
wait_for() {
  local what=$1 daemon=$2 end=$((SECONDS + deadline_s))
  shift 2
  until "$@" >/dev/null 2>&1; do
    pid_of "$daemon" >/dev/null || fail "$daemon exited while waiting for $what"
    ((SECONDS < end)) || fail "timed out after ${deadline_s}s waiting for $what"
    sleep 0.05
  done
}

port_free() { ! { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; }
pick_port() { # a free port in 20000-32767, away from the OSD range 6800-7300 and the ephemeral range
  local p i
  for ((i = 0; i < 100; i++)); do
    p=$((20000 + RANDOM % 12768))
    port_free "$p" && { echo "$p"; return 0; }
  done
  fail "no free port found"
}

mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/osd" "$dir/rgw"
if [[ ! -s $dir/ports ]]; then
  mon_port=$(pick_port)
  rgw_port=$(pick_port)
  [[ $mon_port != "$rgw_port" ]] || rgw_port=$(pick_port)
  printf 'MON_PORT=%s\nRGW_PORT=%s\n' "$mon_port" "$rgw_port" >"$dir/ports"
fi
# shellcheck source=/dev/null
source "$dir/ports"

all_running() { pid_of mon.a >/dev/null && pid_of osd.0 >/dev/null && pid_of client.rgw.0 >/dev/null; }
if all_running && [[ -s $dir/s3.env ]] && http_ok "$RGW_PORT"; then
  cat "$dir/s3.env"
  exit 0
fi

fsid_file=$dir/fsid
[[ -s $fsid_file ]] || cat /proc/sys/kernel/random/uuid >"$fsid_file"
fsid=$(<"$fsid_file")

cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$MON_PORT
run dir = $dir/run
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
keyring = /dev/null
# No cephx between the daemons; then the msgr2 modes must be crc (radosgw defaults to secure and hangs).
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc
ms bind msgr1 = false
# One OSD: pools of size 1, replicas chosen across OSDs (not hosts), few PGs, no autoscaler.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon max pg per osd = 1000
# Faster pool creation and OSD boot.
paxos propose interval = 0.05
osd pool default flag nodelete = false
debug ms = 0

[mon]
mon data = $dir/mon
mon cluster log file = $dir/log/cluster.log

[osd]
osd data = $dir/osd
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 4294967296
bluestore fsck on mount = false
bluestore fsck on mkfs = false
bluefs log replay check allocations = false
bdev aio poll ms = 5
bluestore cache autotune = false
bluestore cache size = 67108864
osd memory target = 268435456
osd max object size = 134217728
osd heartbeat grace = 60
osd op num shards = 1
osd op num threads per shard = 2

[client.rgw.0]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $dir/rgw
rgw thread pool size = 64
rgw enable usage log = false
rgw keystone url =
rgw enable lc threads = false
log to stderr = false
EOF

t0=$(date +%s%N)
ms_since_start() { echo $((($(date +%s%N) - t0) / 1000000)); }
phase() { [[ -z ${CEPH_RGW_VERBOSE:-} ]] || log "$1 after $(ms_since_start) ms"; }

# Monitor.
failing_log=$dir/log/mon.a.log
if [[ ! -s $dir/mon/store.db/CURRENT && ! -s $dir/mon/kv_backend ]]; then
  rm -rf "$dir/mon" && mkdir -p "$dir/mon"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$dir/run/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$dir/run/monmap" >"$dir/log/mon-mkfs.log" 2>&1 ||
    { failing_log=$dir/log/mon-mkfs.log; fail "ceph-mon --mkfs"; }
fi
if ! pid_of mon.a >/dev/null; then
  launch mon.a ceph-mon -i a
fi
wait_for "the monitor" mon.a ceph --connect-timeout 2 mon stat
phase "monitor up"

# OSD.
failing_log=$dir/log/osd.0.log
if [[ ! -s $dir/osd/whoami ]]; then
  rm -rf "$dir/osd" && mkdir -p "$dir/osd"
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  # A start that failed after `osd new` left an osd.0 without data: forget it, then create it again.
  # (`osd purge` would wait for a manager, which this cluster does not run.)
  ceph osd crush remove osd.0 >/dev/null 2>&1 || true
  ceph osd rm 0 >/dev/null 2>&1 || true
  ceph osd new "$osd_uuid" 0 >/dev/null
  ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" >"$dir/log/osd-mkfs.log" 2>&1 ||
    { failing_log=$dir/log/osd-mkfs.log; fail "ceph-osd --mkfs"; }
fi
if ! pid_of osd.0 >/dev/null; then
  launch osd.0 ceph-osd -i 0
fi
osd_up() { ceph --connect-timeout 2 osd dump 2>/dev/null | grep -q '^osd\.0 up'; }
wait_for "the OSD to be up" osd.0 osd_up
phase "OSD up"

# RADOS Gateway and its S3 user.
failing_log=$dir/log/client.rgw.0.log
if ! pid_of client.rgw.0 >/dev/null; then
  launch client.rgw.0 radosgw -n client.rgw.0
fi
wait_for "radosgw on 127.0.0.1:$RGW_PORT" client.rgw.0 http_ok "$RGW_PORT"
phase "radosgw answers"

if [[ ! -s $dir/keys ]]; then
  ak=$(head -c 15 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
  sk=$(head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n')
  failing_log=$dir/log/user-create.log
  radosgw-admin -n client.rgw.0 user create --uid=hubcache --display-name=hubcache \
    --access-key="$ak" --secret-key="$sk" >"$dir/log/user-create.log" 2>&1 || fail "radosgw-admin user create"
  printf 'AK=%s\nSK=%s\n' "$ak" "$sk" >"$dir/keys"
fi
# shellcheck source=/dev/null
source "$dir/keys"
cat >"$dir/s3.env.tmp" <<EOF
AWS_ACCESS_KEY_ID=$AK
AWS_SECRET_ACCESS_KEY=$SK
AWS_REGION=us-east-1
AWS_ENDPOINT_URL_S3=http://127.0.0.1:$RGW_PORT
EOF
mv "$dir/s3.env.tmp" "$dir/s3.env"
trap - ERR
log "S3 ready on http://127.0.0.1:$RGW_PORT in $(ms_since_start) ms"
cat "$dir/s3.env"

#!/bin/bash
# local-cluster.sh - a real three-node ltxfs cluster with a real Consul on
# this machine, to try replication and failover by hand.  Run as root.
#
#   deploy/local-cluster.sh up [--latency MS] [--latency-node NODE=MS ...] [--backup]
#   deploy/local-cluster.sh status
#   deploy/local-cluster.sh kill-primary
#   deploy/local-cluster.sh promote NODE
#   deploy/local-cluster.sh down
#
# up            build ltxfs and fetch Consul if they are missing (`make`
#               installs the Debian packages itself), make a token and a
#               throwaway CA with a certificate per node, start one Consul
#               agent and three ltxfs nodes n1 n2 n3 (HTTPS, mutual TLS, the
#               token on every request), and return once one node is primary
#               and the two others are replicas that caught up.
#   --latency MS            every node's traffic is delayed by MS ms
#   --latency-node NODE=MS  NODE's traffic is delayed by MS ms (repeatable;
#                           overrides --latency for that node)
#               "Delayed by MS" means every byte sent to or from the node
#               arrives MS ms late, each way: a request/response round trip
#               with it costs 2 x MS more (see "Latency" below).
#   --backup                start a local S3 server (s3rver from the npm
#               registry, `make build/tools/s3rver/...`; signatures checked)
#               at http://<subnet>.1:9000 and give every node a continuous
#               backup to s3://ltxfs/cluster on it (docs/backup.md); then
#               `ltxfs backup list -config <state>/n1/ltxfs.yml` and `ltxfs
#               restore -config ...` work from the host
# status        one line per node: PID alive, role, primary, epoch, ready,
#               lag (a replica: ms since it last heard the primary, which
#               sends a heartbeat every second) and each database's TXID
#               (from the node's GET /status)
# kill-primary  SIGKILL the primary, detach its dead FUSE mount, time how
#               long until another node is primary, then restart the killed
#               node and wait until it is a ready replica again
# promote NODE  hand the primary role to NODE (`ltxfs promote -config
#               nK/ltxfs.yml`: the token and certificate come from there)
# down          stop everything `up` started (SIGTERM, then SIGKILL after a
#               timeout), unmount leftovers, delete the namespaces, the
#               bridge and the proxy; idempotent, also after a partial `up`.
#               Data and logs stay in the state directory (delete it for a
#               fresh cluster; `up` reuses the data otherwise).
#
# Environment (read by `up`, remembered in the state directory's
# cluster.env for the other commands, except LTXFS_CLUSTER_DIR):
#   LTXFS_CLUSTER_DIR     state directory (default: <repo>/run/cluster)
#   LTXFS_BIN             ltxfs binary (default <repo>/build/ltxfs, built if
#                         missing; after changing the code, run make yourself)
#   LTXFS_CONSUL_BIN      consul binary (default <repo>/build/tools/bin/consul,
#                         fetched if missing)
#   LTXFS_CLUSTER_PREFIX  prefix of the namespace, bridge and veth names
#                         (default lcl; at most 8 of [a-z0-9])
#   LTXFS_CLUSTER_SUBNET  first three octets of the private /24 (default 10.98.0)
#   LTXFS_CLUSTER_TTL, LTXFS_CLUSTER_LOCK_DELAY   the Consul lease (5s, 1s)
#   LTXFS_CLUSTER_TIMEOUT seconds to wait for the cluster, a node or Consul (60)
#   LTXFS_CLUSTER_LOG_LEVEL  the nodes' log.level (info)
#
# Layout.  A bridge <prefix>br with the host side's address <subnet>.1 and,
# per node, a network namespace <prefix>-nK joined to the bridge by a veth
# pair (host side <prefix>-nK, namespace side eth0 at <subnet>.1K).  The
# names cannot clash with the integration tests' (ltxbr*, ltxns*, ltxv*,
# tests/integration/netns.py) and the default subnet is outside theirs
# (10.200-249.x).  Each node runs `ltxfs mount` inside its namespace, entered
# with `nsenter --net` only: the network is separate, the mount namespace is
# the host's, so run/cluster/nK/mnt is an ordinary FUSE mount in the host's
# shell.  Its HTTP API listens on port 20202 in its namespace; the host
# reaches it over the bridge at https://<subnet>.1K:20202.
#
# Security: the production shape (docs/deployment.md).  `up` writes a
# random token to <state>/token (mode 0600; http.token-file of every node)
# and a throwaway CA to <state>/tls (EC P-256, openssl): per node nK.crt,
# whose subjectAltName names every address the node is reached at (its
# bridge address, the gateway <subnet>.1 where the delay proxy forwards to
# it, 127.0.0.1 inside its namespace, and DNS:nK), usable as server and as
# client; operator.crt, a client certificate for this script's own calls
# and the user's curl (tls/curl.conf holds the CA, that certificate and
# the token header: `curl -K <state>/tls/curl.conf https://...`).  Each
# node serves HTTPS only, requires a client certificate of the CA
# (http.tls.client-auth) and the token on every request but /health, and
# advertises an https:// URL.  Every `up` makes a new token and CA.
# Consul stays plain HTTP: it is the lease service, not a node.
#
# Consul.  One agent in -dev mode on the host side of the bridge
# (<subnet>.1:8500, UI at /ui): a single in-memory server that elects
# itself at once, needs no data directory, and starts empty each time,
# which is what a throw-away demo wants.  session_ttl_min is lowered to 1s
# so short TTLs are accepted.  Every node is a candidate on one key with
# TTL 5s and lock-delay 1s: after a SIGKILL, Consul drops the dead
# primary's session after TTL to 2 x TTL (in practice 2 x TTL) and the key
# is free lock-delay later, so failover takes about 11 s; a SIGTERM or a
# promote moves the role in well under a second.  (LTXFS_CLUSTER_TTL=2s
# makes it about 5 s.)
#
# Latency.  With --latency or --latency-node, one delaying TCP proxy
# (deploy/delay-proxy.py, stdlib Python) runs on the host side of the
# bridge and carries all of the cluster's traffic: node K's advertise-url
# is https://<subnet>.1:2100K (forwarded to the node's port 20202) and every
# node's Consul URL is http://<subnet>.1:21500 (forwarded to Consul).  The
# proxy delays a connection by the latency of the node it leads to plus the
# latency of the node it came from (known by the source address), so a slow
# node is slow both as a primary (replicas streaming from it, other nodes
# asking its /status) and as a replica (its stream from the primary), and
# towards Consul (renewals, watches).  Without latency there is no proxy:
# nodes talk to each other and to Consul directly.
#
# Files in the state directory: cluster.env (settings of `up`), token,
# tls/ (ca.crt, ca.key, nK.crt, nK.key, operator.crt, operator.key,
# curl.conf), consul/consul.log, proxy/proxy.log, nK/ltxfs.yml, nK/ltxfs.log,
# nK/data, nK/mnt, and a *.pid file next to each log.  Every PID is
# checked against its command line before it is signalled, so a stale PID
# file never hits another process.
set -eu

NODES=(n1 n2 n3)
HTTP_PORT=20202
CONSUL_PORT=8500
CONSUL_PROXY_PORT=21500
S3_PORT=9000
S3_BUCKET=ltxfs
NODE_PROXY_BASE=21000        # node nK's proxy port is 21000 + K
STOP_TIMEOUT=15              # seconds between SIGTERM and SIGKILL

script_dir=$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$script_dir")
me=$0

usage() {
	sed -n '2,/^# Layout/{/^# Layout/d;s/^# \{0,1\}//;p}' "$script_dir/local-cluster.sh" >&2
	exit 2
}

say() { printf '%s\n' "$*"; }
warn() { printf 'local-cluster: %s\n' "$*" >&2; }
die() {
	warn "$*"
	exit 1
}

now() { date +%s.%N; }

# Seconds since $1 (a `now`), one decimal.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Whether more than $2 seconds passed since $1 (a `now`).
expired() { awk -v a="$1" -v b="$(now)" -v l="$2" 'BEGIN { exit !(b - a > l) }'; }

# Paths shown to the user are relative to the current directory when inside it.
show() {
	case $1 in
	"$PWD"/*) printf '%s' "${1#"$PWD"/}" ;;
	*) printf '%s' "$1" ;;
	esac
}

# The last lines of the logs named, indented, for a failure report.
show_logs() {
	local f
	for f in "$@"; do
		[ -s "$f" ] || continue
		warn "--- last lines of $(show "$f"):"
		tail -n 25 "$f" | sed 's/^/    /' >&2
	done
}

# ---- settings ----------------------------------------------------------------

# The state directory, absolute and physical: mount points are compared with
# /proc/self/mountinfo, which shows resolved paths.
state_dir() {
	local d=${LTXFS_CLUSTER_DIR:-$repo/run/cluster}
	case $d in /*) ;; *) d=$PWD/$d ;; esac
	# The path goes into YAML values (where $ would be expanded) and awk
	# comparisons: keep it plain.
	case $d in *[!A-Za-z0-9_./+@,-]*) die "LTXFS_CLUSTER_DIR=$d: use only letters, digits and _./+@,- in the path" ;; esac
	mkdir -p "$d"
	cd -P "$d" && pwd
}

declare -A LAT=([n1]=0 [n2]=0 [n3]=0)   # ms of added delay per node

# Settings of this cluster: those `up` recorded, else the environment's.
load_settings() {
	PREFIX=${LTXFS_CLUSTER_PREFIX:-lcl}
	SUBNET=${LTXFS_CLUSTER_SUBNET:-10.98.0}
	TTL=${LTXFS_CLUSTER_TTL:-5s}
	LOCK_DELAY=${LTXFS_CLUSTER_LOCK_DELAY:-1s}
	TIMEOUT=${LTXFS_CLUSTER_TIMEOUT:-60}
	LOG_LEVEL=${LTXFS_CLUSTER_LOG_LEVEL:-info}
	LTXFS=${LTXFS_BIN:-$repo/build/ltxfs}
	CONSUL=${LTXFS_CONSUL_BIN:-$repo/build/tools/bin/consul}
	S3RVER=$repo/build/tools/s3rver/node_modules/.bin/s3rver
	BACKUP=0
	local k v
	if [ -f "$ENV_FILE" ]; then
		while IFS='=' read -r k v; do
			case $k in
			PREFIX) PREFIX=$v ;;
			SUBNET) SUBNET=$v ;;
			TTL) TTL=$v ;;
			LOCK_DELAY) LOCK_DELAY=$v ;;
			TIMEOUT) TIMEOUT=$v ;;
			LOG_LEVEL) LOG_LEVEL=$v ;;
			LTXFS) LTXFS=$v ;;
			CONSUL) CONSUL=$v ;;
			LAT_n[1-3]) LAT[${k#LAT_}]=$v ;;
			BACKUP) BACKUP=$v ;;
			esac
		done <"$ENV_FILE"
	fi
	GW=$SUBNET.1
	BRIDGE=${PREFIX}br
}

save_settings() {
	{
		printf '%s=%s\n' PREFIX "$PREFIX" SUBNET "$SUBNET" TTL "$TTL" \
			LOCK_DELAY "$LOCK_DELAY" TIMEOUT "$TIMEOUT" LOG_LEVEL "$LOG_LEVEL" \
			LTXFS "$LTXFS" CONSUL "$CONSUL" BACKUP "$BACKUP"
		local n
		for n in "${NODES[@]}"; do printf 'LAT_%s=%s\n' "$n" "${LAT[$n]}"; done
	} >"$ENV_FILE.tmp"
	mv "$ENV_FILE.tmp" "$ENV_FILE"
}

check_settings() {
	[[ $PREFIX =~ ^[a-z0-9]{1,8}$ ]] ||
		die "LTXFS_CLUSTER_PREFIX=$PREFIX: use 1 to 8 of [a-z0-9] (interface names are short)"
	[[ $SUBNET =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] ||
		die "LTXFS_CLUSTER_SUBNET=$SUBNET: give three octets, e.g. 10.98.0"
	[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "LTXFS_CLUSTER_TIMEOUT=$TIMEOUT: whole seconds"
}

node_index() { printf '%s' "${1#n}"; }
node_ip() { printf '%s.%d' "$SUBNET" "$((10 + ${1#n}))"; }
node_ns() { printf '%s-%s' "$PREFIX" "$1"; }
node_dir() { printf '%s/%s' "$STATE" "$1"; }
node_url() { printf 'https://%s:%d' "$(node_ip "$1")" "$HTTP_PORT"; }

is_node() {
	local n
	for n in "${NODES[@]}"; do [ "$n" = "$1" ] && return 0; done
	return 1
}

# Whether any node has latency: then all traffic goes through the proxy.
have_latency() {
	local n
	for n in "${NODES[@]}"; do [ "${LAT[$n]}" != 0 ] && return 0; done
	return 1
}

# Where the other nodes reach node $1.
advertise_url() {
	if have_latency; then
		printf 'https://%s:%d' "$GW" "$((NODE_PROXY_BASE + ${1#n}))"
	else
		node_url "$1"
	fi
}

# Where the nodes reach Consul.
consul_url_for_nodes() {
	if have_latency; then
		printf 'http://%s:%d' "$GW" "$CONSUL_PROXY_PORT"
	else
		printf 'http://%s:%d' "$GW" "$CONSUL_PORT"
	fi
}

# ---- tools -------------------------------------------------------------------

PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3   # not a pyenv shim, where present

need_root() {
	[ "$(id -u)" = 0 ] || die "run as root: it creates network namespaces and FUSE mounts"
}

# A fresh Debian 12 may lack iproute2, fuse3 or python3: the Makefile's
# package list (deploy/install-deps.sh) has them all.
ensure_packages() {
	local c
	for c in ip nsenter setsid fusermount3 python3 openssl; do
		command -v "$c" >/dev/null 2>&1 && continue
		say "installing the Debian packages ltxfs needs (deploy/install-deps.sh)"
		"$repo/deploy/install-deps.sh"
		break
	done
	[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
	for c in ip nsenter setsid fusermount3 "$PY" openssl; do
		command -v "$c" >/dev/null 2>&1 || die "$c is missing (apt-get install iproute2 util-linux fuse3 python3 openssl)"
	done
}

# Build ltxfs and fetch Consul only when they are missing (and not given).
ensure_binaries() {
	if [ ! -x "$LTXFS" ]; then
		[ -z "${LTXFS_BIN:-}" ] || die "LTXFS_BIN=$LTXFS is not an executable"
		say "building ltxfs (make; the first time it installs Debian packages)"
		make -C "$repo" build/ltxfs || die "make failed"
	fi
	if [ ! -x "$CONSUL" ]; then
		[ -z "${LTXFS_CONSUL_BIN:-}" ] || die "LTXFS_CONSUL_BIN=$CONSUL is not an executable"
		say "fetching Consul from Debian 11's archive (make build/tools/bin/consul)"
		make -C "$repo" build/tools/bin/consul || die "fetching Consul failed"
	fi
	if [ "$BACKUP" = 1 ] && [ ! -e "$S3RVER" ]; then
		say "installing s3rver from the npm registry (make build/tools/s3rver/...)"
		make -C "$repo" build/tools/s3rver/node_modules/.bin/s3rver || die "installing s3rver failed"
	fi
}

# ---- processes -----------------------------------------------------------------
#
# Each process is known by a "pidfile:pattern" pair: the PID is ours only
# while that process's command line contains the pattern (a recycled PID
# never is).

# The command line of PID $1 with spaces for NULs; empty if it is gone or a zombie.
cmdline_of() {
	{ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true
}

# The PID of pair $1 if that process is alive and ours.
our_pid() {
	local file=${1%%:*} pattern=${1#*:} pid
	[ -f "$file" ] || return 1
	pid=$(cat "$file" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	case $(cmdline_of "$pid") in *"$pattern"*) printf '%s' "$pid" ;; *) return 1 ;; esac
}

node_pair() { printf '%s/ltxfs.pid:%s/ltxfs.yml' "$(node_dir "$1")" "$(node_dir "$1")"; }
consul_pair() { printf '%s/consul/consul.pid:%s/consul' "$STATE" "$STATE"; }
s3_pair() { printf '%s/s3/s3.pid:%s/s3' "$STATE" "$STATE"; }
proxy_pair() { printf '%s/proxy/proxy.pid:--tag %s/proxy' "$STATE" "$STATE"; }

# Start "$@" in a session of its own (a Ctrl-C in the user's shell, or the
# script's exit, does not reach it), output appended to log $1, PID to
# pidfile $2.  setsid (not a group leader here) and nsenter --net exec
# without forking, so $! is the daemon itself.
start_bg() {
	local log=$1 pidfile=$2
	shift 2
	printf '=== local-cluster %s: %s\n' "$(date '+%F %T')" "$*" >>"$log"
	setsid "$@" </dev/null >>"$log" 2>&1 &
	echo "$!" >"$pidfile"
}

# Send signal $1 to each pair given whose process is alive and ours.
signal_ours() {
	local sig=$1 pair pid
	shift
	for pair in "$@"; do
		pid=$(our_pid "$pair") || continue
		kill "-$sig" "$pid" 2>/dev/null || true
	done
}

# Wait up to $1 seconds until no pair given names a live process of ours.
wait_gone() {
	local limit=$1 t0 pair alive
	shift
	t0=$(now)
	while :; do
		alive=0
		for pair in "$@"; do
			our_pid "$pair" >/dev/null && alive=1
		done
		[ "$alive" = 0 ] && return 0
		expired "$t0" "$limit" && return 1
		sleep 0.1
	done
}

# SIGTERM (a node unmounts cleanly and releases the lease), SIGKILL what is
# left after STOP_TIMEOUT, then forget the pidfiles.
stop_procs() {
	local pair
	signal_ours TERM "$@"
	if ! wait_gone "$STOP_TIMEOUT" "$@"; then
		warn "still running ${STOP_TIMEOUT}s after SIGTERM: SIGKILL"
		signal_ours KILL "$@"
		wait_gone 10 "$@" || warn "a process survived SIGKILL (stuck in the kernel?)"
	fi
	for pair in "$@"; do rm -f "${pair%%:*}"; done
}

# ---- mounts --------------------------------------------------------------------

# Whether anything (also a dead FUSE mount, which stat cannot see) is mounted on $1.
is_mounted() {
	awk -v p="$1" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# Detach the mount a killed daemon left behind, the way an operator would.
# First `umount -f`: on a FUSE mount it aborts the connection, so that
# threads of the dead daemon blocked on its own mount (its exit writes
# back a shared mapping of a file there) fail and let it finish exiting,
# releasing its port; only then is a restart possible.
unmount_stale() {
	local _
	is_mounted "$1" || return 0
	umount -f "$1" 2>/dev/null || true
	for _ in 1 2 3 4; do
		is_mounted "$1" || return 0
		fusermount3 -uz "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
	done
	if is_mounted "$1"; then warn "could not unmount $1"; fi
}

# Wait up to $2 seconds until PID $1 has exited entirely: gone, or a zombie
# whose threads are all gone (its sockets and files closed).  An empty
# command line, which our_pid takes for "gone", comes earlier, while the
# exit still tears down memory.
wait_exited() {
	local pid=$1 t0
	t0=$(now)
	while [ -d "/proc/$pid" ]; do
		[ "$(ls "/proc/$pid/task" 2>/dev/null | wc -l)" -le 1 ] &&
			grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 0
		expired "$t0" "$2" && return 1
		sleep 0.1
	done
}

# ---- network -------------------------------------------------------------------

# Refuse names or a subnet that something else on this machine uses.
check_network_free() {
	if ip link show "$BRIDGE" >/dev/null 2>&1; then
		die "interface $BRIDGE exists already: another local cluster is up (down it) or set LTXFS_CLUSTER_PREFIX"
	fi
	if [ -n "$(ip -4 -o addr show to "$SUBNET.0/24" 2>/dev/null)" ] ||
		ip -4 route show to match "$SUBNET.1" 2>/dev/null | grep -qv '^default'; then
		die "subnet $SUBNET.0/24 is in use on this machine: set LTXFS_CLUSTER_SUBNET (e.g. 10.97.0)"
	fi
}

# The bridge on the host side, one namespace per node joined to it.
net_up() {
	local n ns
	ip link add "$BRIDGE" type bridge
	ip addr add "$GW/24" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	for n in "${NODES[@]}"; do
		ns=$(node_ns "$n")
		ip netns add "$ns"
		ip link add "$ns" type veth peer name eth0 netns "$ns"
		ip link set "$ns" master "$BRIDGE"
		ip link set "$ns" up
		ip -n "$ns" addr add "$(node_ip "$n")/24" dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$ns" link set lo up
	done
}

net_down() {
	local n
	for n in "${NODES[@]}"; do
		ip link del "$(node_ns "$n")" 2>/dev/null || true
		ip netns del "$(node_ns "$n")" 2>/dev/null || true
	done
	ip link del "$BRIDGE" 2>/dev/null || true
}

# ---- Consul and the proxy -----------------------------------------------------------

start_consul() {
	mkdir -p "$STATE/consul"
	start_bg "$STATE/consul/consul.log" "$STATE/consul/consul.pid" \
		"$CONSUL" agent -dev -node "$PREFIX-consul" -bind "$GW" -client "$GW" \
		-http-port "$CONSUL_PORT" -dns-port -1 -grpc-port -1 \
		-serf-lan-port 8301 -serf-wan-port 8302 -server-port 8300 \
		-log-level warn -hcl 'session_ttl_min = "1s"' \
		-pid-file "$STATE/consul/consul.agent.pid"
}

# The backup's S3 server on the host side of the bridge: s3rver behind the
# tests' front (tests/integration/s3rver_main.js), which checks SigV4
# signatures and checksums as S3 does.  Its account is s3rver's own.
start_s3() {
	local module t0
	module=$(dirname "$(dirname "$(readlink -f "$S3RVER")")")
	mkdir -p "$STATE/s3/data"
	start_bg "$STATE/s3/s3.log" "$STATE/s3/s3.pid" \
		node --openssl-legacy-provider "$repo/tests/integration/s3rver_main.js" \
		--module "$module" --directory "$STATE/s3/data" --bucket "$S3_BUCKET" \
		--address "$GW" --port "$S3_PORT"
	t0=$(now)
	until grep -q '^listening' "$STATE/s3/s3.log" 2>/dev/null; do
		our_pid "$(s3_pair)" >/dev/null || die "the S3 server exited"
		expired "$t0" "$TIMEOUT" && die "the S3 server did not start in ${TIMEOUT}s"
		sleep 0.1
	done
}

# The backup section of a node's configuration (--backup), else nothing.
backup_config() {
	[ "$BACKUP" = 1 ] || return 0
	printf '%s\n' "backup:" \
		"  # A local S3 server (--backup); any S3-compatible service works the same." \
		"  url: \"s3://$S3_BUCKET/cluster\"" \
		"  endpoint: \"http://$GW:$S3_PORT\"" \
		"  force-path-style: true" \
		"  access-key-id: S3RVER" \
		"  secret-access-key: S3RVER"
}

# Consul answers 500 until its node is registered: ready once a session can
# be created.
wait_consul() {
	local t0
	t0=$(now)
	until "$PY" - "http://$GW:$CONSUL_PORT" 2>/dev/null <<'PY'
import json, sys, urllib.request
url = sys.argv[1]
req = urllib.request.Request(url + "/v1/session/create", method="PUT",
                             data=json.dumps({"TTL": "10s", "Checks": []}).encode())
sid = json.load(urllib.request.urlopen(req, timeout=2))["ID"]
urllib.request.urlopen(urllib.request.Request(url + "/v1/session/destroy/" + sid,
                                              method="PUT"), timeout=2)
PY
	do
		our_pid "$(consul_pair)" >/dev/null || die "consul exited"
		expired "$t0" "$TIMEOUT" && die "consul not ready after ${TIMEOUT}s"
		sleep 0.2
	done
}

# One proxy for all the cluster's traffic (see "Latency" above).
start_proxy() {
	local n t0 args=(--tag "$STATE/proxy" "$GW:$CONSUL_PROXY_PORT=$GW:$CONSUL_PORT@0")
	for n in "${NODES[@]}"; do
		args+=("$GW:$((NODE_PROXY_BASE + ${n#n}))=$(node_ip "$n"):$HTTP_PORT@${LAT[$n]}")
		[ "${LAT[$n]}" = 0 ] || args=(--source "$(node_ip "$n")=${LAT[$n]}" "${args[@]}")
	done
	mkdir -p "$STATE/proxy"
	start_bg "$STATE/proxy/proxy.log" "$STATE/proxy/proxy.pid" "$PY" "$script_dir/delay-proxy.py" "${args[@]}"
	# Listening once it logged its 1 + 3 listeners.
	t0=$(now)
	until [ "$(grep -c 'listening on' "$STATE/proxy/proxy.log")" -ge 4 ]; do
		our_pid "$(proxy_pair)" >/dev/null || die "the delay proxy exited"
		expired "$t0" 10 && die "the delay proxy did not start listening"
		sleep 0.1
	done
}

# ---- token and certificates ------------------------------------------------------
#
# See "Security" above.  Made anew at every `up`, in files only root reads.

token_file() { printf '%s/token' "$STATE"; }
tls_dir() { printf '%s/tls' "$STATE"; }

# Every address node $1 is reached at: the host over the bridge, the other
# nodes through the delay proxy on the gateway, itself inside its namespace.
node_san() {
	printf 'subjectAltName=IP:%s,IP:%s,IP:127.0.0.1,DNS:localhost,DNS:%s' \
		"$(node_ip "$1")" "$GW" "$1"
}

# openssl, quiet unless it fails.
ossl() {
	local out
	out=$(openssl "$@" 2>&1) || die "openssl $1 failed: $out"
}

# NAME.key and NAME.crt in the TLS directory, signed by its CA, with the
# extensions given (openssl -extfile lines).
issue_cert() {
	local d name=$1 ext=$2
	d=$(tls_dir)
	printf '%s\n' "$ext" >"$d/$name.ext"
	ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/$name.key" -out "$d/$name.csr" -subj "/CN=$name"
	ossl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -days 30 -out "$d/$name.crt" -extfile "$d/$name.ext"
	rm -f "$d/$name.csr" "$d/$name.ext"
}

make_credentials() {
	local d n
	d=$(tls_dir)
	rm -rf "$d"
	(umask 077 && mkdir -p "$d" && openssl rand -hex 32 >"$(token_file).tmp") ||
		die "cannot write $(token_file)"
	mv "$(token_file).tmp" "$(token_file)"
	chmod 0600 "$(token_file)"
	(
		umask 077
		ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$d/ca.key" -out "$d/ca.crt" -subj "/CN=ltxfs local cluster CA" -days 30
		for n in "${NODES[@]}"; do
			issue_cert "$n" "$(node_san "$n")
extendedKeyUsage=serverAuth,clientAuth"
		done
		issue_cert operator "extendedKeyUsage=clientAuth"
		# curl -K: the CA, the operator's certificate and the token.
		{
			printf 'cacert = "%s"\n' "$d/ca.crt"
			printf 'cert = "%s"\n' "$d/operator.crt"
			printf 'key = "%s"\n' "$d/operator.key"
			printf 'header = "Authorization: Bearer %s"\n' "$(cat "$(token_file)")"
		} >"$d/curl.conf"
	) || exit 1
	rm -f "$d/ca.srl"
}

# ---- nodes ---------------------------------------------------------------------

write_config() {
	local d
	d=$(node_dir "$1")
	mkdir -p "$d/mnt" "$d/data"
	cat >"$d/ltxfs.yml" <<EOF
# Written by deploy/local-cluster.sh (see docs/configuration.md, docs/lease.md).
fuse:
  dir: "$d/mnt"
data:
  dir: "$d/data"
http:
  addr: ":$HTTP_PORT"
  # Every request but /health carries this token; the other nodes send it.
  token-file: "$(token_file)"
  # HTTPS only; connecting clients (the other nodes, the operator) must
  # show a certificate of the cluster's CA, and this node shows its own
  # when it connects to them.
  tls:
    cert: "$(tls_dir)/$1.crt"
    key: "$(tls_dir)/$1.key"
    ca: "$(tls_dir)/ca.crt"
    client-auth: true
lease:
  type: consul
  candidate: true
  hostname: $1
  advertise-url: "$(advertise_url "$1")"
  consul:
    url: "$(consul_url_for_nodes)"
    key: local-cluster/primary
    ttl: $TTL
    lock-delay: $LOCK_DELAY
log:
  level: $LOG_LEVEL
$(backup_config)
EOF
}

# Start node $1 inside its namespace (network only: its mount is the host's).
start_node() {
	local d
	d=$(node_dir "$1")
	mkdir -p "$d/mnt" "$d/data"
	unmount_stale "$d/mnt"
	start_bg "$d/ltxfs.log" "$d/ltxfs.pid" \
		nsenter "--net=/run/netns/$(node_ns "$1")" -- "$LTXFS" mount -config "$d/ltxfs.yml"
}

# Wait until node $1's mount answers in the host's mount namespace.
wait_mounted() {
	local d t0
	d=$(node_dir "$1")
	t0=$(now)
	until is_mounted "$d/mnt" && ls "$d/mnt" >/dev/null 2>&1; do
		our_pid "$(node_pair "$1")" >/dev/null || die "ltxfs on $1 exited before mounting $d/mnt"
		expired "$t0" "$TIMEOUT" && die "$1 did not mount $d/mnt in ${TIMEOUT}s"
		sleep 0.1
	done
}

# One line per node named: NAME ROLE PRIMARY EPOCH READY LAG_MS DATABASES
# (DATABASES: name@txid,... or -); ROLE "down" when /status does not answer.
# Over HTTPS with the operator's certificate and the token (from the files
# named in the environment, not on a command line).
STATUS_PY='
import json, os, ssl, sys, urllib.request
tls = os.environ["LC_TLS"]
try:
    ctx = ssl.create_default_context(cafile=tls + "/ca.crt")
    ctx.load_cert_chain(tls + "/operator.crt", tls + "/operator.key")
    with open(os.environ["LC_TOKEN"]) as f:
        auth = {"Authorization": "Bearer " + f.read().strip()}
except (OSError, ssl.SSLError):    # no credentials yet: nothing answers
    ctx, auth = None, {}
for arg in sys.argv[1:]:
    name, url = arg.split("=", 1)
    try:
        req = urllib.request.Request(url + "/status", headers=auth)
        if ctx is None:
            raise OSError("no credentials")
        with urllib.request.urlopen(req, timeout=2, context=ctx) as r:
            s = json.load(r)
    except Exception:
        print(name, "down - - - - -")
        continue
    dbs = ",".join("%s@%d" % (d["name"].replace(" ", "_"), d["txid"])
                   for d in s.get("databases", []) if d.get("exists", True))
    print(name, s.get("role") or "-", s.get("primary") or "-", s.get("epoch", "-"),
          "yes" if s.get("ready") else "no", s.get("lag_ms", "-"), dbs or "-")
'

node_statuses() {
	local n args=()
	for n in "$@"; do args+=("$n=$(node_url "$n")"); done
	LC_TLS=$(tls_dir) LC_TOKEN=$(token_file) "$PY" -c "$STATUS_PY" "${args[@]}"
}

# The primary's name if the nodes named agree: exactly one is primary, and
# every one is ready and names it as the primary.
agreed_primary() {
	node_statuses "$@" | awk '
		{ prim[$1] = $3; ready[$1] = $5 }
		$2 == "primary" { p = $1; np++ }
		END {
			if (np != 1) exit 1
			for (k in prim) if (prim[k] != p || ready[k] != "yes") exit 1
			print p
		}'
}

# Wait (TIMEOUT) until the nodes named after $1 agree on a primary, which
# must be $1 unless $1 is empty; print its name.
wait_agreed() {
	local want=$1 t0 p
	shift
	t0=$(now)
	while :; do
		if p=$(agreed_primary "$@") && { [ -z "$want" ] || [ "$p" = "$want" ]; }; then
			printf '%s' "$p"
			return 0
		fi
		expired "$t0" "$TIMEOUT" && return 1
		sleep 0.2
	done
}

# A node among those named that says it is the primary (no agreement needed).
find_primary() {
	node_statuses "$@" | awk '$2 == "primary" { print $1; exit }'
}

node_logs() {
	local n
	for n in "$@"; do printf '%s/ltxfs.log\n' "$(node_dir "$n")"; done
}

# ---- commands ------------------------------------------------------------------

running_parts() {
	local pair n
	for pair in "$(consul_pair)" "$(proxy_pair)"; do
		our_pid "$pair" >/dev/null && return 0
	done
	for n in "${NODES[@]}"; do
		our_pid "$(node_pair "$n")" >/dev/null && return 0
	done
	return 1
}

latency_ms() {
	[[ $1 =~ ^[0-9]+$ ]] || die "latency: '$1' is not a whole number of milliseconds"
	printf '%d' "$((10#$1))"
}

parse_up_args() {
	local all="" per=() nm node
	while [ $# -gt 0 ]; do
		case $1 in
		--latency) [ $# -ge 2 ] || usage; all=$(latency_ms "$2"); shift ;;
		--latency=*) all=$(latency_ms "${1#*=}") ;;
		--latency-node) [ $# -ge 2 ] || usage; per+=("$2"); shift ;;
		--latency-node=*) per+=("${1#*=}") ;;
		--backup) BACKUP=1 ;;
		*) usage ;;
		esac
		shift
	done
	if [ -n "$all" ]; then
		for node in "${NODES[@]}"; do LAT[$node]=$all; done
	fi
	for nm in ${per[@]+"${per[@]}"}; do
		node=${nm%%=*}
		if [ "$node" = "$nm" ] || ! is_node "$node"; then
			die "--latency-node $nm: give NODE=MS, NODE one of ${NODES[*]}"
		fi
		LAT[$node]=$(latency_ms "${nm#*=}")
	done
}

# A command that fails shows the end of the logs of what it was waiting
# for (FAIL_LOGS); a failed or interrupted `up` also takes down what it
# started (UP_STARTED), keeping logs and data in the state directory.
FAIL_LOGS=()
UP_STARTED=0
on_exit() {
	local rc=$1
	trap - EXIT INT TERM HUP
	[ "$rc" = 0 ] && return 0
	if [ "$rc" -gt 128 ]; then
		warn "interrupted"
	else
		show_logs ${FAIL_LOGS[@]+"${FAIL_LOGS[@]}"}
	fi
	if [ "$UP_STARTED" = 1 ]; then
		warn "up did not finish; stopping what it started (logs stay in $(show "$STATE"))"
		do_down >&2 || true
	fi
	exit "$rc"
}

do_up() {
	local t_up primary
	need_root
	load_settings
	if [ -f "$ENV_FILE" ]; then
		running_parts && die "a cluster is up in $(show "$STATE"): '$me status' shows it, '$me down' stops it"
		say "cleaning up what an earlier cluster here left behind (none of it runs)"
		do_down >/dev/null
	fi
	load_settings
	parse_up_args "$@"
	check_settings
	ensure_packages
	ensure_binaries
	check_network_free
	t_up=$(now)
	save_settings
	UP_STARTED=1

	say "network: bridge $BRIDGE at $GW/24, namespaces $(node_ns n1) $(node_ns n2) $(node_ns n3)"
	net_up

	FAIL_LOGS=("$STATE/consul/consul.log")
	say "consul: agent -dev at http://$GW:$CONSUL_PORT"
	start_consul
	wait_consul

	if [ "$BACKUP" = 1 ]; then
		FAIL_LOGS=("$STATE/s3/s3.log")
		say "backup: an S3 server (s3rver) at http://$GW:$S3_PORT, bucket $S3_BUCKET"
		start_s3
	fi

	if have_latency; then
		FAIL_LOGS=("$STATE/proxy/proxy.log")
		say "latency: n1 ${LAT[n1]} ms, n2 ${LAT[n2]} ms, n3 ${LAT[n3]} ms each way (deploy/delay-proxy.py)"
		start_proxy
	fi

	say "credentials: a token in $(show "$(token_file)") (mode 0600), a throwaway CA and a certificate per node in $(show "$(tls_dir)")"
	make_credentials

	mapfile -t FAIL_LOGS < <(node_logs "${NODES[@]}")
	local n
	for n in "${NODES[@]}"; do
		write_config "$n"
		start_node "$n"
	done
	for n in "${NODES[@]}"; do wait_mounted "$n"; done
	say "nodes: ${NODES[*]} mounted; waiting for one primary and two ready replicas"
	if ! primary=$(wait_agreed "" "${NODES[@]}"); then
		node_statuses "${NODES[@]}" >&2
		if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)" = 1 ]; then
			warn "note: bridged traffic passes iptables here (bridge-nf-call-iptables=1): a FORWARD policy of DROP (Docker sets one) cuts the nodes off each other"
		fi
		die "the cluster did not come up within ${TIMEOUT}s"
	fi
	UP_STARTED=0
	print_up_summary "$primary" "$(since "$t_up")"
}

print_up_summary() {
	local p=$1 n replicas=() env_hint="" curl_conf pcfg
	for n in "${NODES[@]}"; do [ "$n" = "$p" ] || replicas+=("$n"); done
	[ -z "${LTXFS_CLUSTER_DIR:-}" ] || env_hint="LTXFS_CLUSTER_DIR=$LTXFS_CLUSTER_DIR "
	curl_conf=$(show "$(tls_dir)/curl.conf")
	pcfg=$(show "$(node_dir "$p")/ltxfs.yml")
	say ""
	say "ltxfs cluster up in $2 s: $p is the primary, ${replicas[*]} are replicas (Consul lease, TTL $TTL, lock-delay $LOCK_DELAY)."
	say "Every node serves HTTPS only, wants a client certificate of the cluster's CA and the token (docs/deployment.md)."
	say ""
	printf '  %-4s %-26s %-36s %s\n' node "HTTP API" mount log
	for n in "${NODES[@]}"; do
		printf '  %-4s %-26s %-36s %s\n' "$n" "$(node_url "$n")" \
			"$(show "$(node_dir "$n")/mnt")" "$(show "$(node_dir "$n")/ltxfs.log")"
	done
	say ""
	say "Each node has a network of its own, but its mount is an ordinary mount in this shell. Try:"
	say "  sqlite3 $(show "$(node_dir "$p")/mnt/app.db") \"PRAGMA journal_mode=wal; CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES(1);\""
	say "  sqlite3 $(show "$(node_dir "${replicas[0]}")/mnt/app.db") \"SELECT * FROM t;\"   # a replica: the primary's rows, read-only"
	say "  cat $(show "$(node_dir "${replicas[0]}")/mnt/.primary")   # the node it follows"
	say "  $(show "$LTXFS") status -config $pcfg -url $(node_url "$p")   # token, CA, certificate: the node's configuration"
	say "  curl -sK $curl_conf $(node_url "$p")/status   # CA, client certificate and token in $curl_conf"
	say "  curl -s --cacert $(show "$(tls_dir)/ca.crt") $(node_url "$p")/status   # refused: no certificate, no token"
	say "  nsenter --net=/run/netns/$(node_ns "$p") ss -tn   # a shell command inside a node's network"
	say "  ${env_hint}$me status"
	say "  ${env_hint}$me kill-primary   # SIGKILL the primary; failover takes about 2 x TTL + lock-delay"
	say "  ${env_hint}$me promote ${replicas[0]}   # hand the primary role to ${replicas[0]} (well under a second)"
	say "  ${env_hint}$me down"
	say "Consul's UI (plain HTTP: the lease service, not a node): http://$GW:$CONSUL_PORT/ui"
}

do_status() {
	local pid st n role prim epoch ready lag dbs
	load_settings
	[ -f "$ENV_FILE" ] || die "no cluster in $(show "$STATE") (run '$me up')"
	if pid=$(our_pid "$(consul_pair)"); then
		say "consul  pid $pid alive, http://$GW:$CONSUL_PORT"
	else
		say "consul  not running"
	fi
	say "auth    token $(show "$(token_file)"), CA and certificates $(show "$(tls_dir)") (curl -K $(show "$(tls_dir)/curl.conf") URL)"
	if have_latency; then
		pid=$(our_pid "$(proxy_pair)") && st="pid $pid alive" || st="not running"
		say "proxy   $st; latency n1 ${LAT[n1]} ms, n2 ${LAT[n2]} ms, n3 ${LAT[n3]} ms"
	fi
	printf '%-4s %-7s %-5s %-8s %-7s %-6s %-5s %-7s %s\n' \
		NODE PID ALIVE ROLE PRIMARY EPOCH READY LAG DATABASES
	node_statuses "${NODES[@]}" | while read -r n role prim epoch ready lag dbs; do
		pid=$(cat "$(node_dir "$n")/ltxfs.pid" 2>/dev/null) || pid=-
		if our_pid "$(node_pair "$n")" >/dev/null; then
			st=yes
		elif is_mounted "$(node_dir "$n")/mnt"; then
			st=no    # with a killed daemon's mount left: fusermount3 -uz it
			dbs="$dbs (stale mount: fusermount3 -uz $(show "$(node_dir "$n")/mnt"))"
		else
			st=no
		fi
		[ "$lag" = - ] || lag=${lag}ms
		printf '%-4s %-7s %-5s %-8s %-7s %-6s %-5s %-7s %s\n' \
			"$n" "$pid" "$st" "$role" "$prim" "$epoch" "$ready" "$lag" "$dbs"
	done
}

do_kill_primary() {
	local p pid pair np t0 n others=()
	need_root
	load_settings
	[ -f "$ENV_FILE" ] || die "no cluster in $(show "$STATE") (run '$me up')"
	p=$(find_primary "${NODES[@]}")
	[ -n "$p" ] || die "no node is primary now ('$me status')"
	pair=$(node_pair "$p")
	pid=$(our_pid "$pair") || die "$p is primary but its PID file names no ltxfs of ours"
	for n in "${NODES[@]}"; do [ "$n" = "$p" ] || others+=("$n"); done

	t0=$(now)
	kill -KILL "$pid"
	say "killed $p (pid $pid, the primary) with SIGKILL"
	wait_gone 10 "$pair" || die "$p (pid $pid) did not die"
	rm -f "${pair%%:*}"
	unmount_stale "$(node_dir "$p")/mnt"
	wait_exited "$pid" 10 || warn "$p (pid $pid) is still exiting 10 s after SIGKILL (blocked in the kernel?); its restart may fail"
	say "detached its dead mount; waiting for Consul to drop its session (TTL $TTL, up to 2 x TTL) and for lock-delay ($LOCK_DELAY)"
	mapfile -t FAIL_LOGS < <(node_logs "${others[@]}")
	if ! np=$(wait_agreed "" "${others[@]}"); then
		node_statuses "${others[@]}" >&2
		die "no new primary within ${TIMEOUT}s"
	fi
	say "failover: $np is the primary $(since "$t0") s after the kill"

	say "restarting $p; it rejoins as a replica"
	FAIL_LOGS=("$(node_dir "$p")/ltxfs.log")
	start_node "$p"
	wait_mounted "$p"
	if ! wait_agreed "$np" "${NODES[@]}" >/dev/null; then
		node_statuses "${NODES[@]}" >&2
		die "$p did not rejoin as a ready replica of $np within ${TIMEOUT}s"
	fi
	say "$p is a ready replica of $np again ($(since "$t0") s after the kill)"
}

do_promote() {
	local t0
	need_root
	[ $# = 1 ] || usage
	load_settings
	[ -f "$ENV_FILE" ] || die "no cluster in $(show "$STATE") (run '$me up')"
	is_node "$1" || die "promote: no node $1 (nodes: ${NODES[*]})"
	t0=$(now)
	mapfile -t FAIL_LOGS < <(node_logs "${NODES[@]}")
	# The host reaches every node over the bridge: no nsenter needed.  The
	# node's configuration gives the token, the CA and a client certificate.
	"$LTXFS" promote -config "$(node_dir "$1")/ltxfs.yml" -url "$(node_url "$1")" ||
		die "promote $1 failed ('$me status' shows the cluster)"
	if ! wait_agreed "$1" "${NODES[@]}" >/dev/null; then
		node_statuses "${NODES[@]}" >&2
		die "the nodes did not all follow $1 within ${TIMEOUT}s"
	fi
	say "$1 is the primary and every node follows it ($(since "$t0") s)"
}

do_down() {
	local n p pairs=()
	need_root
	load_settings
	# Nodes first, while Consul still runs (a SIGTERM'd primary releases the
	# lease), and the replicas before the primary, so no replica takes the
	# lease over just to stop a moment later.
	p=$(find_primary "${NODES[@]}" 2>/dev/null) || p=""
	for n in "${NODES[@]}"; do [ "$n" = "$p" ] || pairs+=("$(node_pair "$n")"); done
	stop_procs "${pairs[@]}"
	[ -z "$p" ] || stop_procs "$(node_pair "$p")"
	for n in "${NODES[@]}"; do unmount_stale "$(node_dir "$n")/mnt"; done
	stop_procs "$(proxy_pair)"
	stop_procs "$(s3_pair)"
	stop_procs "$(consul_pair)"
	net_down
	rm -f "$ENV_FILE" "$STATE/consul/consul.agent.pid"
	say "down: nothing of the cluster in $(show "$STATE") runs any more (its logs and data stay there)"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in up | down | status | kill-primary | promote) ;; *) usage ;; esac
trap 'on_exit $?' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
STATE=$(state_dir)
ENV_FILE=$STATE/cluster.env
case $cmd in
up) do_up "$@" ;;
down) [ $# = 0 ] || usage; do_down ;;
status) [ $# = 0 ] || usage; do_status ;;
kill-primary) [ $# = 0 ] || usage; do_kill_primary ;;
promote) do_promote "$@" ;;
*) usage ;;
esac

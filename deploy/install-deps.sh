#!/bin/sh
# install-deps.sh - install the Debian packages ltxfs needs to build, run and
# test.  Idempotent and quick when everything is present; called by the
# Makefile's setup step, so `make run` and `make check` work on a fresh
# Debian 12 machine.  Needs root (apt-get) only when something is missing.
set -eu

PACKAGES="build-essential pkg-config
libfuse3-dev fuse3 libsqlite3-dev sqlite3 libcurl4-openssl-dev
libmicrohttpd-dev libgnutls28-dev libsodium-dev libxxhash-dev libyaml-dev libjansson-dev libsystemd-dev etcd-server
python3 python3-pytest python3-xxhash valgrind clang libclang-rt-14-dev
tcl-dev dpkg-dev zlib1g-dev iproute2 procps psmisc ca-certificates strace curl openssl"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

echo "install-deps: installing:$missing" >&2
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-deps: need root to apt-get install:$missing" >&2
		exit 1
	fi
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

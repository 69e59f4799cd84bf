#!/bin/sh
# install-deps.sh - install the Debian 12 packages ltxfs needs.  Idempotent
# and quick when everything is present; needs root (apt-get) only when
# something is missing.
#
#   deploy/install-deps.sh          to build and run: the compiler, the
#                                   libraries' headers, FUSE, and what
#                                   deploy/local-cluster.sh runs (ip, python3).
#                                   The Makefile's setup step calls it, so
#                                   `make` and `make run` work on a fresh machine.
#   deploy/install-deps.sh --test   the same, and every tool the tests and
#                                   benchmarks use.  The test targets (check,
#                                   check-integration, check-faults, check-asan,
#                                   check-valgrind, check-sqlite, bench, fuzz)
#                                   call it once per build directory; CI too.
set -eu

# Building: compiler, pkg-config, and the -dev package of every library in
# the Makefile's PKGS.
BUILD_PACKAGES="build-essential pkg-config libfuse3-dev libsqlite3-dev
libcurl4-openssl-dev libmicrohttpd-dev libgnutls28-dev libsodium-dev
libxxhash-dev libyaml-dev libjansson-dev libsystemd-dev libxml2-dev"

# Running: fusermount3 (fuse3); deploy/local-cluster.sh's network
# namespaces (ip: iproute2) and latency proxy (python3).
RUN_PACKAGES="fuse3 iproute2 python3"

# Testing, each for:
#   python3-pytest                 the integration and fault suites
#   sqlite3 openssl strace         the sqlite3 shell the tests drive; the test
#                                  certificates (tls_pki.py); fsync tracing
#                                  (test_durability.py)
#   etcd-server                    the etcd lease tests and the failover bench
#   ca-certificates                HTTPS archives for tests/tools/fetch-consul.sh
#                                  and tests/sqlite/fetch-source.sh
#   dpkg-dev tcl-dev zlib1g-dev    SQLite's source package (dpkg-source) and
#                                  its testfixture (make check-sqlite)
#   valgrind                       make check-valgrind
#   clang libclang-rt-14-dev       make fuzz (libFuzzer)
#   curl                           the README's tour and the docs' examples
#   nodejs npm                     s3rver, the S3 server of the S3 client's tests
#                                  (tests/tools/fetch-s3rver.sh installs it with npm)
TEST_PACKAGES="python3-pytest sqlite3 openssl strace etcd-server ca-certificates
dpkg-dev tcl-dev zlib1g-dev valgrind clang libclang-rt-14-dev curl nodejs npm"

case "${1:-}" in
"") PACKAGES="$BUILD_PACKAGES $RUN_PACKAGES" ;;
--test) PACKAGES="$BUILD_PACKAGES $RUN_PACKAGES $TEST_PACKAGES" ;;
*)
	echo "usage: $0 [--test]" >&2
	exit 2
	;;
esac

missing=""
for p in $PACKAGES; do
	# A Node.js packaged elsewhere (NodeSource's nodejs) bundles npm and
	# conflicts with Debian's npm package: a working npm is enough.
	if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then
		continue
	fi
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

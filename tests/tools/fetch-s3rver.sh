#!/bin/sh
# fetch-s3rver.sh DIR - install s3rver (an S3 server in Node.js, version 3)
# under DIR with npm: DIR/node_modules/.bin/s3rver.
#
# npm uses the registry it is configured with; no host is named here.  The
# tests start s3rver through tests/integration/s3rver_main.js, which also
# checks what s3rver 3 does not (SigV4 signatures, Content-MD5, the payload's
# SHA-256): see tests/integration/s3_server.py.  Idempotent: nothing is done
# when the installed version is a 3.x.
set -eu

dir=$1
bin="$dir/node_modules/.bin/s3rver"
pkg="$dir/node_modules/s3rver/package.json"

installed() {
	[ -x "$bin" ] && [ -r "$pkg" ] &&
		node -e 'process.exit(require(process.argv[1]).version.startsWith("3.") ? 0 : 1)' "$pkg"
}

if installed; then
	touch "$bin"    # newer than this script: make sees it up to date
	exit 0
fi
mkdir -p "$dir"
# --no-save: DIR needs no package.json of its own; no audit or funding
# messages, which would ask the registry more.
npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error s3rver@3
installed || { echo "fetch-s3rver: no s3rver 3 at $bin after npm install" >&2; exit 1; }
touch "$bin"
echo "s3rver $(node -e 'console.log(require(process.argv[1]).version)' "$pkg") at $bin"

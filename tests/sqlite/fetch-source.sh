#!/bin/sh
# fetch-source.sh - fetch and unpack Debian's sqlite3 source package, the
# version matching the installed libsqlite3-0, into a cache directory.
#
# Usage: tests/sqlite/fetch-source.sh CACHE_DIR
#
# The system's apt configuration is left alone: the script uses its own
# sources list (deb-src lines derived from the machine's Debian sources, so
# the same mirror, snapshot and Signed-By options apply) and its own lists and
# archive directories under CACHE_DIR/apt.  Prints the path of the unpacked
# source tree on stdout.  A second run finds the tree and downloads nothing.
set -eu

cache=${1:?usage: fetch-source.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

version=$(dpkg-query -W -f='${Version}' libsqlite3-0 2>/dev/null || true)
if [ -z "$version" ]; then
	echo "fetch-source: libsqlite3-0 is not installed" >&2
	exit 1
fi
upstream=${version%-*}
upstream=${upstream#*:}
tree="$cache/sqlite3-$upstream"
stamp="$tree/.ltxfs-version"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ]; then
	echo "$tree"
	exit 0
fi

if ! command -v dpkg-source >/dev/null 2>&1; then
	echo "fetch-source: dpkg-source missing: apt-get install dpkg-dev" >&2
	exit 1
fi

apt="$cache/apt"
log="$cache/fetch-source.log"
: > "$log"
trap 'echo "fetch-source: failed; last lines of $log:" >&2; tail -20 "$log" >&2' EXIT
mkdir -p "$apt/sources.list.d" "$apt/lists/partial" \
	"$apt/archives/partial" "$apt/dl"
src="$apt/sources.list.d/sqlite-src.sources"

# Derive deb-src stanzas from the machine's own sources (keeps the mirror,
# any snapshot pinning and Signed-By): its deb822 file, else sources.list.
# No archive host is named here.
sys=/etc/apt/sources.list.d/debian.sources
if [ -r "$sys" ] && grep -q '^Types:.*deb' "$sys"; then
	sed -e 's/^Types:.*/Types: deb-src/' "$sys" > "$src.tmp"
elif [ -r /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
	src="$apt/sources.list.d/sqlite-src.list"
	sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > "$src.tmp"
else
	echo "fetch-source: no Debian archive in this machine's apt sources" >&2
	exit 1
fi
mv "$src.tmp" "$src"

set -- -q \
	-o Dir::Etc::SourceList=/dev/null \
	-o Dir::Etc::SourceParts="$apt/sources.list.d" \
	-o Dir::State::Lists="$apt/lists" \
	-o Dir::Cache="$apt/cache" \
	-o Dir::Cache::Archives="$apt/archives" \
	-o Debug::NoLocking=1 \
	-o APT::Sandbox::User=root

if ! ls "$apt/dl"/sqlite3_*"$upstream"*.dsc >/dev/null 2>&1 ||
   [ ! -f "$apt/dl/.version" ] || [ "$(cat "$apt/dl/.version")" != "$version" ]; then
	echo "fetch-source: downloading sqlite3 source $version" >&2
	rm -f "$apt/dl"/*
	apt-get "$@" update >> "$log" 2>&1
	(cd "$apt/dl" && apt-get "$@" source --download-only \
		"sqlite3=$version") >> "$log" 2>&1
	echo "$version" > "$apt/dl/.version"
fi

dsc=$(ls "$apt/dl"/sqlite3_*.dsc | head -n 1)
rm -rf "$tree" "$tree.tmp"
echo "fetch-source: unpacking $(basename "$dsc") into $tree" >&2
dpkg-source -x "$dsc" "$tree.tmp" >> "$log" 2>&1
echo "$version" > "$tree.tmp/.ltxfs-version"
mv "$tree.tmp" "$tree"
trap - EXIT
echo "$tree"

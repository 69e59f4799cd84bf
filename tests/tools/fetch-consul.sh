#!/bin/sh
# fetch-consul.sh DIR - put the real Consul binary at DIR/bin/consul.
#
# Consul is not in Debian 12, but Debian 11 (bullseye) has the `consul`
# package (1.8.7).  It is fetched from Debian's archive with apt through an
# apt configuration of its own (its own sources, lists and cache under DIR),
# then unpacked with dpkg -x: nothing on the system changes.  Idempotent.
set -eu

dir=$1
bin="$dir/bin/consul"
[ -x "$bin" ] && exit 0

# The archive is the one this machine's apt already uses (its deb822
# sources, else sources.list), or $LTXFS_DEBIAN_MIRROR: no host is named here.
system_mirror() {
	f=/etc/apt/sources.list.d/debian.sources
	if [ -r "$f" ]; then
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /-security\/?$/) { print $i; exit } }' "$f"
		return
	fi
	[ -r /etc/apt/sources.list ] &&
		awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' /etc/apt/sources.list
}
mirror=${LTXFS_DEBIAN_MIRROR:-$(system_mirror)}
if [ -z "$mirror" ]; then
	echo "fetch-consul: no Debian archive in this machine's apt sources; set LTXFS_DEBIAN_MIRROR" >&2
	exit 1
fi
apt="$dir/apt"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc" "$dir/bin" "$dir/pkg"
echo "deb $mirror bullseye main" > "$apt/etc/sources.list"
cat > "$apt/etc/apt.conf" <<CONF
Dir::Etc::SourceList "$apt/etc/sources.list";
Dir::Etc::SourceParts "/dev/null";
Dir::State::Lists "$apt/lists";
Dir::Cache "$apt/cache";
Dir::State::Status "/var/lib/dpkg/status";
APT::Sandbox::User "root";
CONF
export APT_CONFIG="$apt/etc/apt.conf"
apt-get -qq update
(cd "$dir/pkg" && apt-get -qq download consul)
dpkg -x "$dir"/pkg/consul_*.deb "$dir/pkg/root"
# A copy, not a link: its time stamp is now, so make sees it up to date.
cp "$dir/pkg/root/usr/bin/consul" "$bin.tmp"
mv "$bin.tmp" "$bin"
"$bin" version | head -1

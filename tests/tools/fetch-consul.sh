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

mirror=${LTXFS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
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

#!/bin/sh
# run-local.sh - `make run`: mount a single node with the embedded default
# configuration (static lease, this node primary) at ./run/mnt, data in
# ./run/data.  Runs in the foreground; Ctrl-C unmounts.
set -eu
bin=${1:-build/ltxfs}
top=$(pwd)
mkdir -p "$top/run/mnt" "$top/run/data"
cat > "$top/run/ltxfs.yml" <<YAML
# Written by deploy/run-local.sh (make run). Edit freely; see docs/configuration.md.
fuse:
  dir: "$top/run/mnt"
data:
  dir: "$top/run/data"
http:
  addr: "127.0.0.1:20202"
lease:
  type: static
  candidate: true
YAML
echo "ltxfs: mounting at $top/run/mnt (data in $top/run/data); Ctrl-C to stop" >&2
exec "$bin" mount -config "$top/run/ltxfs.yml"

#!/bin/sh
# db_layers.sh OBJDIR - check that the files of the database layer call each
# other one way only (db/internal.h draws the layers): from each object's
# undefined symbols and the others' definitions, build the graph "file A
# calls a function defined in file B" and fail if it has a cycle.
set -eu
objdir=${1:-build/obj/db}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for o in "$objdir"/*.o; do
	n=$(basename "$o" .o)
	nm --defined-only -g "$o" | awk '{print $3}' | sort -u > "$tmp/$n.def"
	nm -u "$o" | awk '{print $2}' | sort -u > "$tmp/$n.use"
done
for a in "$tmp"/*.use; do
	an=$(basename "$a" .use)
	for d in "$tmp"/*.def; do
		dn=$(basename "$d" .def)
		[ "$an" = "$dn" ] && continue
		if [ -n "$(comm -12 "$a" "$d" | head -1)" ]; then
			echo "$dn $an"
		fi
	done
done > "$tmp/edges"
if ! tsort "$tmp/edges" > /dev/null 2> "$tmp/err"; then
	echo "db/: the files call each other in a cycle (see db/internal.h):" >&2
	cat "$tmp/err" >&2
	while read -r callee caller; do
		echo "  $caller -> $callee: $(comm -12 "$tmp/$caller.use" "$tmp/$callee.def" | tr '\n' ' ')"
	done < "$tmp/edges" >&2
	exit 1
fi
echo "db/: $(wc -l < "$tmp/edges") call edges between files, no cycle"

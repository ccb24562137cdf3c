# shellcheck shell=bash
# LISTING, for image_run.bats and agent_layers.bats: a container's view of
# its root, one line per entry of / on the root file system (the mount
# points of /proc, /sys and /dev aside): name, raw mode, owner, group, then
# the size and md5 of a regular file or the target of a symlink. The same
# script runs in the container (sh -c "$LISTING" -) and on the host over
# umoci's tree (bash -c "$LISTING" - DIR), so the two outputs compare.
# shellcheck disable=SC2016,SC2034
LISTING='cd "${1:-/}" && find . -xdev ! -path ./proc ! -path ./sys ! -path ./dev ! -path ./dev/\* | sort |
while read -r f; do
	l=$(stat -c "%n %f %u %g" "$f")
	if [ -L "$f" ]; then l="$l -> $(readlink "$f")"
	elif [ -f "$f" ]; then l="$l $(stat -c %s "$f") $(md5sum <"$f" | cut -c1-32)"; fi
	echo "$l"
done'

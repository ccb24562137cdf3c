#!/usr/bin/env bats
# An imported image's root without a VM: the layers `kvrun image bundle`
# links (erofs images made by `kvrun image import`) on loop devices where a
# VM has /dev/pmemN, the writable layer on the virtio-fs FUSE server behind
# /dev/fuse (tests/fuse-devhost) where a VM has its rootfs share, and
# kvrun-agent on the host stacking them as it does in the guest
# (agent/mounts.c). What a VM adds, DAX and the virtqueues, image_run.bats
# checks where there is KVM.

bats_require_minimum_version 1.5.0
load agent_helpers
load tree_listing
load fuse_devhost

KVRUN=$BUILD/kvrun
BUSYBOX=$BUILD/fixtures/busybox-bundle-rootfs

setup() {
	reason=$(agent_skip_reason)
	[ -z "$reason" ] || skip "$reason"
	command -v umoci >/dev/null || skip "test requires umoci (make deps)"
	command -v mkfs.erofs >/dev/null || skip "test requires erofs-utils (make deps)"
	grep -qw erofs /proc/filesystems || skip "host kernel without erofs"
	[ -c /dev/fuse ] || skip "no /dev/fuse on this host"
	[ -x "$DEVHOST" ] && [ -x "$KVRUN" ] || skip "not built (make)"
	[ -x "$BUSYBOX/bin/busybox" ] || skip "no busybox fixture (make fixtures)"
	W=$(mktemp -d /tmp/kvrun-agent-layers.XXXXXX)
	# shellcheck disable=SC2090
	export KVRUN_IMAGE_STORE=$W/store LISTING
	LOOPS=()
	SERVER_PID=""
}

teardown() {
	stop_agent
	mountpoint -q "$W/upmnt" && umount "$W/upmnt"
	devhost_stop
	local l
	for l in "${LOOPS[@]}"; do losetup -d "$l"; done
	rm -rf "$W"
}

# The bundle's layers as read-only loop devices; prints the agent's layers JSON.
function attach_layers() {
	local f dev
	for f in $(jq -r '.annotations["io.kvrun.image.layers"]' "$W/bundle/config.json" | tr , ' '); do
		dev=$(losetup -f --show -r "$W/bundle/$f")
		LOOPS+=("$dev")
	done
}

function layers_json() {
	printf '%s\n' "${LOOPS[@]}" | jq -R '{device: ., fstype: "erofs"}' | jq -sc .
}

@test "agent: an imported image's erofs layers under an upper on the virtio-fs server: the tree is umoci's, writes and whiteouts land in the share" {
	python3 "$BATS_TEST_DIRNAME/image_corpus.py" layered "$W/oci" "$BUSYBOX"
	"$KVRUN" image import "$W/oci" layered:1
	"$KVRUN" image bundle layered:1 "$W/bundle"
	attach_layers
	[ "${#LOOPS[@]}" -eq 3 ]
	# The writable layer, served as the VMM serves the bundle's rootfs/.
	mkdir "$W/upmnt"
	devhost_serve "$W/upmnt" "$W" "rootfs=$W/bundle/rootfs"
	start_agent
	rootfs=$(jq -cn --argjson l "$(layers_json)" --arg u "$W/upmnt" \
		'{type: "overlay", layers: $l, upper: {path: $u}}')

	# No /tmp mount: the image's own /tmp is compared.
	make_config "$W/c1.json" '.process.args = ["sh", "-c", $ENV.LISTING, "-"]' \
		'del(.mounts[] | select(.destination == "/tmp"))'
	run -0 agent_client run c1 "$W/c1.json" --rootfs "$rootfs"
	printf '%s\n' "$output" >"$W/guest"
	umoci unpack --image "$W/oci:layered" "$W/umoci" >&2
	bash -c "$LISTING" - "$W/umoci/rootfs" >"$W/host"
	diff -u "$W/host" "$W/guest"
	grep -q '^./etc/motd 89ed 1000 100 6 ' "$W/guest"
	run ! grep -q '^./opq/old ' "$W/guest"

	# Writes: a new file, a removed image file, a replaced directory.
	make_config "$W/c2.json" '.process.args = ["sh", "-c", "echo persisted >/written && rm /bin/true && rm -rf /opq && mkdir /opq && echo n >/opq/n && chown 1000:100 /written"]'
	run -0 agent_client run c2 "$W/c2.json" --rootfs "$rootfs"
	U=$W/bundle/rootfs/upper
	[ "$(cat "$U/written")" = persisted ]
	[ "$(stat -c '%u:%g' "$U/written")" = 1000:100 ]
	[ "$(stat -c '%F %t,%T' "$U/bin/true")" = "character special file 0,0" ]
	python3 -c 'import os, sys; v = os.getxattr(sys.argv[1], "user.kvrun.trusted.overlay.opaque"); assert v == b"y", v' "$U/opq"
	# A read-only root (no upper given: a tmpfs one, as the runtime sends):
	# the image is there, nothing can be written, nothing reaches the bundle.
	ro=$(jq -cn --argjson l "$(layers_json)" '{type: "overlay", layers: $l}')
	make_config "$W/ro.json" '.root.readonly = true' \
		'.process.args = ["sh", "-c", "cat /etc/motd; echo x >/ro-write || echo refused"]'
	run -0 agent_client run c-ro "$W/ro.json" --rootfs "$ro"
	[[ "$output" == *refused* ]]
	[[ "$output" == *"Read-only file system"* ]]
	[ ! -e "$U/ro-write" ]
	# A third container on the same bundle sees the first ones' writes.
	make_config "$W/c3.json" '.process.args = ["sh", "-c", "cat /written; ls /bin/true || echo gone; ls /opq"]'
	run -0 agent_client run c3 "$W/c3.json" --rootfs "$rootfs"
	[ "${lines[0]}" = persisted ]
	[[ "$output" == *gone* ]]
	[ "${lines[-1]}" = n ]
}

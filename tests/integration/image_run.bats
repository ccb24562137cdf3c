#!/usr/bin/env bats
# kvrun image bundle, run: an imported image's layers are erofs images on
# virtio-pmem, mounted with DAX in the guest and stacked with overlayfs under
# the bundle's writable layer. The tree the container sees is compared with
# what umoci unpacks from the same OCI layout; writes persist in the bundle;
# the second container of an image shape is a template clone.

load helpers
load tree_listing

function setup() {
	requires jq kvm busybox
	command -v mkfs.erofs >/dev/null || skip "test requires erofs-utils"
	[ "$(id -u)" -eq 0 ] || skip "test requires root"
	KVRUN_ROOT=$(mktemp -d "$BATS_RUN_TMPDIR/root.XXXXXX")
	KVRUN_IMAGE_STORE=$(mktemp -d "$BATS_RUN_TMPDIR/store.XXXXXX")
	WORK=$(mktemp -d "$BATS_RUN_TMPDIR/work.XXXXXX")
	BUNDLE=$WORK/bundle
	# Templates of the test's own: the first run boots cold and leaves one.
	KVRUN_TEMPLATE_DIR=$WORK/templates
	export KVRUN_ROOT KVRUN_IMAGE_STORE WORK BUNDLE KVRUN_TEMPLATE_DIR
}

function teardown() {
	teardown_bundle
	rm -rf "$KVRUN_IMAGE_STORE" "$WORK"
}

@test "image bundle: busybox from erofs on virtio-pmem with DAX, the writes in the bundle, then a clone" {
	"$INTEGRATION_ROOT/clients/mkimage" "$BUSYBOX_ROOTFS" "$WORK/busybox.tar" busybox:test
	"$KVRUN" image import "$WORK/busybox.tar"
	run -0 "$KVRUN" image bundle busybox:test "$BUNDLE"
	# config.json from the image's config, the layer a hard link to the store's.
	[ "$(jq -c .process.args "$BUNDLE/config.json")" = '["sh"]' ]
	[ "$(jq -r .root.path "$BUNDLE/config.json")" = rootfs ]
	[ "$(jq -r .root.readonly "$BUNDLE/config.json")" = false ]
	[ "$(jq -r '.annotations["io.kvrun.image.layers"]' "$BUNDLE/config.json")" = layers/0.erofs ]
	[ "$(stat -c %h "$BUNDLE/layers/0.erofs")" -eq 2 ]
	run -1 "$KVRUN" image bundle busybox:test "$BUNDLE"
	[[ "$output" == *"exists"* ]]
	cd "$BUNDLE"
	# The layers' mounts are gone from the container's view once its root is
	# pivoted (they live on under the overlay): sysfs shows erofs on pmem1,
	# a DAX-capable device, and mountinfo the overlay root.
	update_config '.process.args = ["sh", "-c", "ls /sys/fs/erofs; echo dax=$(cat /sys/block/pmem1/queue/dax); grep \" / / \" /proc/self/mountinfo; echo persisted >/written; rm /bin/true; ls /bin/true || echo gone"]'
	kvrun -0 run c1
	printf '%s\n' "${lines[@]}" | grep -qx pmem1
	[[ "$output" == *dax=1* ]]
	[[ "$output" == *" / / "*"- overlay overlay "*"lowerdir="* ]]
	[[ "$output" == *gone* ]]
	# The writable layer is the bundle's: upper/ holds the write and the
	# whiteout of the removed file; the layer image is untouched.
	[ "$(cat "$BUNDLE/rootfs/upper/written")" = persisted ]
	[ "$(stat -c '%F %t,%T' "$BUNDLE/rootfs/upper/bin/true")" = "character special file 0,0" ]
	cmp "$BUNDLE/layers/0.erofs" "$KVRUN_IMAGE_STORE/layers/$(ls "$KVRUN_IMAGE_STORE/layers")"
	# A second container of the bundle: a clone of the template the first left
	# (one layer slot of its size class), and it sees the first one's writes.
	[ "$(jq -c '.layer_windows' "$KVRUN_TEMPLATE_DIR"/*/template.json)" = '[16777216]' ]
	update_config '.process.args = ["sh", "-c", "cat /written; ls /bin/true || echo still-gone"]'
	kvrun -0 --debug run c2
	[[ "$output" == *"cloned from $KVRUN_TEMPLATE_DIR/"* ]]
	[[ "$output" == *persisted* ]]
	[[ "$output" == *still-gone* ]]
}

@test "image bundle: an OCI layout of three layers, the tree the container sees is umoci's" {
	requires umoci
	python3 "$INTEGRATION_ROOT/image_corpus.py" layered "$WORK/oci" "$BUSYBOX_ROOTFS"
	"$KVRUN" image import "$WORK/oci" layered:1
	"$KVRUN" image bundle layered:1 "$BUNDLE"
	jq . "$BUNDLE/config.json" >&2
	[ "$(jq -r .process.cwd "$BUNDLE/config.json")" = /etc ]
	[ "$(jq -c .process.env "$BUNDLE/config.json")" = '["PATH=/bin:/sbin","LAYERED=1"]' ]
	[ "$(jq -r '.annotations["org.opencontainers.image.exposedPorts"]' "$BUNDLE/config.json")" = 8080/tcp ]
	[ "$(jq -r '.annotations["io.kvrun.image.layers"]' "$BUNDLE/config.json")" = \
		layers/0.erofs,layers/1.erofs,layers/2.erofs ]
	cd "$BUNDLE"
	jq --arg l "$LISTING" '.process.args = ["sh", "-c", $l, "-"]' config.json >c.new
	mv c.new config.json
	kvrun -0 run c1
	printf '%s\n' "$output" >"$WORK/guest"
	umoci unpack --image "$WORK/oci:layered" "$WORK/umoci" >&2
	bash -c "$LISTING" - "$WORK/umoci/rootfs" >"$WORK/host"
	diff -u "$WORK/host" "$WORK/guest"
	# What the test image has: the whiteout and the opaque directory applied.
	grep -q '^./etc/hostname ' "$WORK/guest"
	! grep -q '^./gone ' "$WORK/guest" || false
	! grep -q '^./opq/old ' "$WORK/guest" || false
	grep -q '^./opq/new ' "$WORK/guest"
	grep -q '^./etc/motd 89ed 1000 100 6 ' "$WORK/guest"
}

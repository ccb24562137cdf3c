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

# pod_bundle DIR ANNOTATIONS-JSON ARGS-JSON [IMAGE]: an image bundle of IMAGE
# (busybox:test) whose annotations gain ANNOTATIONS (its layers' stays).
function pod_bundle() {
	mkdir -p "$BUNDLE" # kvrun_detached's output goes there
	"$KVRUN" image bundle "${4:-busybox:test}" "$1" >/dev/null
	jq --argjson a "$2" --argjson p "$3" '.annotations += $a | .process.args = $p' \
		"$1/config.json" >"$1/c.new"
	mv "$1/c.new" "$1/config.json"
}

@test "image bundle in a pod: members bring their layers into the sandbox's slots, and give them back" {
	"$INTEGRATION_ROOT/clients/mkimage" "$BUSYBOX_ROOTFS" "$WORK/busybox.tar" busybox:test
	"$KVRUN" image import "$WORK/busybox.tar"
	# The members' image: busybox with a file the sandbox's lacks.
	cp -a "$BUSYBOX_ROOTFS" "$WORK/marked"
	echo from-the-member-layer >"$WORK/marked/marker"
	"$INTEGRATION_ROOT/clients/mkimage" "$WORK/marked" "$WORK/marked.tar" busybox:marked
	"$KVRUN" image import "$WORK/marked.tar"
	local loop='["sh", "-c", "while :; do sleep 1; done"]' member
	member='{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "sb"}'
	# The sandbox: its own layer (pmem1) and two slots (pmem2, pmem3).
	pod_bundle "$WORK/sb" '{"io.kubernetes.cri.container-type": "sandbox",
		"io.kubernetes.cri.sandbox-id": "sb", "io.kvrun.pod.layer-slots": "2:64M"}' "$loop"
	for m in m1 m2 m3; do pod_bundle "$WORK/$m" "$member" "$loop" busybox:marked; done
	kvrun_detached -0 run -d --bundle "$WORK/sb" sb
	local vmm
	vmm=$(kvrun_procs | awk '/kvrun-vmm / { print $1 }')
	[ -n "$vmm" ]
	# A member's layer is in a slot: the VMM maps that bundle's layer file,
	# and the member's root is the overlay of it, its writes in its bundle.
	kvrun_detached -0 run -d --bundle "$WORK/m1" m1
	grep -qF "$WORK/m1/layers/0.erofs" "/proc/$vmm/maps"
	# Its layer is erofs on the first slot, pmem2 (/sys/fs/erofs lists the
	# guest's erofs mounts: pmem1 the sandbox's own layer), and its root
	# shows its own image's file.
	kvrun -0 exec m1 sh -c 'grep " / / " /proc/self/mountinfo; echo m1 >/written; cat /marker; ls /sys/fs/erofs'
	[[ "$output" == *"- overlay overlay "*"lowerdir="* ]]
	[[ "$output" == *from-the-member-layer* ]]
	printf '%s\n' "${lines[@]}" | grep -qx pmem2
	! printf '%s\n' "${lines[@]}" | grep -qx pmem3 || false
	kvrun -0 exec sb sh -c 'cat /marker 2>/dev/null || echo no-marker'
	[ "$output" = no-marker ]
	[ "$(cat "$WORK/m1/rootfs/upper/written")" = m1 ]
	kvrun_detached -0 run -d --bundle "$WORK/m2" m2
	kvrun -0 exec m2 sh -c 'cat /written 2>/dev/null || echo own-root; ls /sys/fs/erofs'
	[ "${lines[0]}" = own-root ]
	printf '%s\n' "${lines[@]}" | grep -qx pmem3
	[ "$(kvrun_procs | grep -c 'kvrun-vmm ')" -eq 1 ]
	# The slots are taken: a third member is refused, naming its layer and
	# the lack of a slot, and nothing of it is left.
	kvrun_detached -1 run -d --bundle "$WORK/m3" m3
	[[ "$output" == *"io.kvrun.image.layers: layer 0"*"no free slot"* ]]
	kvrun -0 list -q
	[[ "$output" != *m3* ]]
	# A member deleted gives its slot back (the VMM lets go of its file), and
	# the next member takes it.
	kvrun -0 delete --force m1
	! grep -qF "$WORK/m1/layers/0.erofs" "/proc/$vmm/maps" || false
	kvrun_detached -0 run -d --bundle "$WORK/m3" m3
	kvrun -0 exec m3 sh -c 'cat /written 2>/dev/null || echo own-root; cat /marker'
	[[ "$output" == *own-root*from-the-member-layer* ]]
	grep -qF "$WORK/m3/layers/0.erofs" "/proc/$vmm/maps"
	kvrun -0 delete --force m2
	kvrun -0 delete --force m3
	kvrun -0 delete --force sb
	[ -z "$(kvrun_procs_wait)" ]
}

@test "image bundle in a pod: a sandbox without slots refuses a member's layers, saying how to reserve them" {
	"$INTEGRATION_ROOT/clients/mkimage" "$BUSYBOX_ROOTFS" "$WORK/busybox.tar" busybox:test
	"$KVRUN" image import "$WORK/busybox.tar"
	local loop='["sh", "-c", "while :; do sleep 1; done"]'
	pod_bundle "$WORK/sb" '{"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "sb"}' "$loop"
	pod_bundle "$WORK/m1" '{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "sb"}' "$loop"
	kvrun_detached -0 run -d --bundle "$WORK/sb" sb
	kvrun_detached -1 run -d --bundle "$WORK/m1" m1
	[[ "$output" == *"reserved no slots"*"io.kvrun.pod.layer-slots=COUNT"* ]]
	kvrun -0 list -q
	[[ "$output" != *m1* ]]
	kvrun -0 delete --force sb
}

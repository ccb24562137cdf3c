#!/usr/bin/env bats
# Host-side barriers against a hostile guest (docs/vmm.md, "Barriers"): what
# a container root with CAP_SYS_ADMIN does inside its VM must not change the
# host beyond what the spec allows. One VM boot per test (tens of seconds
# on a PVM host).

load helpers

function setup() {
	requires jq kvm busybox
	setup_bundle
}

function teardown() {
	teardown_bundle
}

@test "barriers: root.readonly and a ro bind stay read-only on the host after a remount rw in the guest" {
	mkdir "$BUNDLE/vol"
	echo kept >"$BUNDLE/vol/file"
	# The remount must work in the guest (else the test proves nothing):
	# CAP_SYS_ADMIN in every set; then every write must fail with EROFS.
	update_config '.process.args = ["sh", "-c", "mount -o remount,rw / && echo root-remounted; echo x >/escape || echo root-refused; mkdir /newdir || echo mkdir-refused; mount -o remount,rw,bind /data && echo data-remounted; echo x >/data/escape || echo data-refused; echo y >/data/file || echo data-file-refused; rm /data/file || echo data-rm-refused; echo done"]
		| .root.readonly = true
		| .process.capabilities.bounding += ["CAP_SYS_ADMIN"]
		| .process.capabilities.effective += ["CAP_SYS_ADMIN"]
		| .process.capabilities.permitted += ["CAP_SYS_ADMIN"]
		| .mounts += [{"destination": "/data", "type": "bind", "source": "'"$BUNDLE"'/vol", "options": ["rbind", "ro"]}]'
	kvrun -0 run c1
	[[ "$output" == *root-remounted* ]]
	[[ "$output" == *data-remounted* ]]
	[[ "$output" == *root-refused* ]]
	[[ "$output" == *mkdir-refused* ]]
	[[ "$output" == *data-refused* ]]
	[[ "$output" == *data-file-refused* ]]
	[[ "$output" == *data-rm-refused* ]]
	[[ "$output" == *"Read-only file system"* ]]
	[[ "$output" == *done* ]]
	[ ! -e "$BUNDLE/rootfs/escape" ]
	[ ! -e "$BUNDLE/rootfs/newdir" ]
	[ ! -e "$BUNDLE/vol/escape" ]
	[ "$(cat "$BUNDLE/vol/file")" = kept ]
}

#!/usr/bin/env bats
# Pods: a container whose annotations name a sandbox (containerd's CRI or
# CRI-O's) joins that sandbox's VM instead of booting one; the VM lives
# until the sandbox container is deleted.

load helpers

function setup() {
	requires jq kvm busybox
	setup_bundle
	update_config '.process.args = ["sh", "-c", "while :; do sleep 1; done"]'
}

function teardown() {
	teardown_bundle
}

# member_bundle DIR ANNOTATIONS-JSON: a bundle of its own (its rootfs marked).
function member_bundle() {
	mkdir -p "$1"
	cp -a "$BUNDLE/rootfs" "$1/rootfs"
	echo "$(basename "$1")" >"$1/rootfs/marker"
	cp "$BUNDLE/config.json" "$1/config.json"
	update_config ".annotations = $2" "$1"
}

function vmm_count() {
	kvrun_procs | grep -c 'kvrun-vmm ' || true
}

@test "pod: containers with a sandbox annotation share the sandbox's VM" {
	update_config '.annotations = {"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "pod1"}'
	kvrun_detached -0 run -d pod1
	member_bundle "$BUNDLE/app" '{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "pod1"}'
	member_bundle "$BUNDLE/crio" '{"io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.cri-o.SandboxID": "pod1"}'
	# A member's bind mount (its VM cannot take a new share: a copy, see README).
	echo pod-volume >"$BUNDLE/podfile"
	update_config '.mounts += [{"destination": "/etc/podfile", "type": "bind", "source": "'"$BUNDLE"'/podfile", "options": ["rbind", "ro"]}]' "$BUNDLE/app"
	kvrun_detached -0 create --bundle "$BUNDLE/app" app
	kvrun -0 start app
	kvrun_detached -0 run -d --bundle "$BUNDLE/crio" crio
	# One VM for the three; each container has its own root filesystem.
	[ "$(vmm_count)" -eq 1 ]
	kvrun -0 exec app cat /marker /etc/podfile
	[ "${lines[0]}" = app ]
	[ "${lines[1]}" = pod-volume ]
	kvrun -0 exec crio cat /marker
	[ "$output" = crio ]
	kvrun ! exec pod1 cat /marker
	# The same kernel instance: one boot id.
	kvrun -0 exec pod1 cat /proc/sys/kernel/random/boot_id
	local boot=$output
	kvrun -0 exec app cat /proc/sys/kernel/random/boot_id
	[ "$output" = "$boot" ]
	# A member goes; the pod's VM stays.
	kvrun -0 delete --force app
	kvrun -0 delete --force crio
	[ "$(vmm_count)" -eq 1 ]
	kvrun -0 exec pod1 true
	# A member of a sandbox that does not exist is refused.
	member_bundle "$BUNDLE/lost" '{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "nope"}'
	kvrun_detached -1 create --bundle "$BUNDLE/lost" lost
	[[ "$output" == *'container "nope" does not exist'* ]]
	kvrun -0 delete --force pod1
	[ -z "$(kvrun_procs_wait)" ]
	[ -z "$(ls -A "$KVRUN_ROOT")" ]
}

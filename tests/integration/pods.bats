#!/usr/bin/env bats
# Pods: a container whose annotations name a sandbox (containerd's CRI or
# CRI-O's) joins that sandbox's VM instead of booting one, its root and
# binds live shares of the VM; the VM lives until the sandbox container is
# deleted.

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
	update_config ".annotations = $2 | .root.readonly = false" "$1"
}

function vmm_count() {
	kvrun_procs | grep -c 'kvrun-vmm ' || true
}

@test "pod: containers with a sandbox annotation share the sandbox's VM" {
	update_config '.annotations = {"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "pod1"}'
	kvrun_detached -0 run -d pod1
	member_bundle "$BUNDLE/app" '{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "pod1"}'
	member_bundle "$BUNDLE/crio" '{"io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.cri-o.SandboxID": "pod1"}'
	# Members' bind mounts are live shares of the VM: a file, read-only, and
	# an emptyDir-style directory both members mount read-write.
	echo pod-volume >"$BUNDLE/podfile"
	mkdir "$BUNDLE/emptydir"
	update_config '.mounts += [{"destination": "/etc/podfile", "type": "bind", "source": "'"$BUNDLE"'/podfile", "options": ["rbind", "ro"]},
		{"destination": "/shared", "type": "bind", "source": "'"$BUNDLE"'/emptydir", "options": ["rbind", "rw"]}]' "$BUNDLE/app"
	update_config '.mounts += [{"destination": "/shared", "type": "bind", "source": "'"$BUNDLE"'/emptydir", "options": ["rbind", "rw"]}]' "$BUNDLE/crio"
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
	# Live: one member's write is the other's and the host's at once.
	kvrun -0 exec app sh -c 'echo from-app >/shared/note; echo /etc/podfile ro: ; echo x >>/etc/podfile || true'
	kvrun -0 exec crio cat /shared/note
	[ "$output" = from-app ]
	[ "$(cat "$BUNDLE/emptydir/note")" = from-app ]
	[ "$(cat "$BUNDLE/podfile")" = pod-volume ]
	# A member's writes to its root land in its root.path on the host.
	kvrun -0 exec crio sh -c 'echo rooted >/written'
	[ "$(cat "$BUNDLE/crio/rootfs/written")" = rooted ]
	# The same kernel instance: one boot id.
	kvrun -0 exec pod1 cat /proc/sys/kernel/random/boot_id
	local boot=$output
	kvrun -0 exec app cat /proc/sys/kernel/random/boot_id
	[ "$output" = "$boot" ]
	# A member goes; the pod's VM stays, and lets go of its shares: the VMM
	# holds no fd of the member's root any more.
	local vmm
	vmm=$(kvrun_procs | awk '/kvrun-vmm / { print $1 }')
	kvrun -0 delete --force app
	kvrun -0 delete --force crio
	[ "$(vmm_count)" -eq 1 ]
	kvrun -0 exec pod1 true
	! ls -l "/proc/$vmm/fd" | grep -F -e "$BUNDLE/app/" -e "$BUNDLE/crio/" -e "$BUNDLE/emptydir" || false
	# The VM's live shares run out: a clear error naming the limit; nothing
	# of that member is left, and the pod goes on.
	member_bundle "$BUNDLE/big" '{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "pod1"}'
	update_config '.mounts += [range(70) | {"destination": "/m\(.)", "type": "bind", "source": "'"$BUNDLE"'/podfile", "options": ["rbind", "ro"]}]' "$BUNDLE/big"
	kvrun_detached -1 create --bundle "$BUNDLE/big" big
	[[ "$output" == *"at most 64 live shares"* ]]
	kvrun -1 state big
	kvrun -0 exec pod1 true
	! ls -l "/proc/$vmm/fd" | grep -F "$BUNDLE/podfile" || false
	# A member of a sandbox that does not exist is refused.
	member_bundle "$BUNDLE/lost" '{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "nope"}'
	kvrun_detached -1 create --bundle "$BUNDLE/lost" lost
	[[ "$output" == *'container "nope" does not exist'* ]]
	kvrun -0 delete --force pod1
	[ -z "$(kvrun_procs_wait)" ]
	[ -z "$(ls -A "$KVRUN_ROOT")" ]
}

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

@test "barriers: a guest flooding /dev/kmsg cannot grow the host's console log past its cap (console_max)" {
	# kvrun's config with a small cap, on top of the suite's (if any).
	local conf="$BUNDLE/kvrun.json"
	if [ -n "${KVRUN_CONFIG:-}" ]; then
		jq '.console_max = 65536' "$KVRUN_CONFIG" >"$conf"
	else
		echo '{"console_max": 65536}' >"$conf"
	fi
	# Root with CAP_SYS_ADMIN and CAP_MKNOD makes /dev/kmsg in a tmpfs of its own and
	# writes 2000 emergency lines (printed on every console), about 200 kB.
	update_config '.process.args = ["sh", "-c", "mount -t tmpfs t /dev/shm && mknod /dev/shm/kmsg c 1 11 || exit 9; n=0; while [ $n -lt 2000 ]; do echo \"<0>kvrun-flood $n 0123456789012345678901234567890123456789012345678901234567890123456789\" >/dev/shm/kmsg || exit 8; n=$((n + 1)); done; echo flooded"]
		| .process.capabilities.bounding += ["CAP_SYS_ADMIN", "CAP_MKNOD"]
		| .process.capabilities.effective += ["CAP_SYS_ADMIN", "CAP_MKNOD"]
		| .process.capabilities.permitted += ["CAP_SYS_ADMIN", "CAP_MKNOD"]
		| .linux.resources.devices = [{"allow": true, "access": "rwm"}]'
	KVRUN_CONFIG="$conf" kvrun -0 run --keep flood
	[[ "$output" == *flooded* ]]
	local log
	log=$(find "$KVRUN_ROOT/flood" -name console.log | head -n 1)
	[ -n "$log" ]
	local size
	size=$(stat -c %s "$log")
	echo "console.log: $size bytes; $(grep -c kvrun-flood "$log") flood lines; last: $(tail -n 2 "$log")" >&2
	# The flood reached the console (else the test proves nothing), and it stopped at the cap.
	grep -q kvrun-flood "$log"
	[ "$size" -le $((65536 + 256)) ]
	grep -q 'console output past 65536 bytes is dropped' "$log"
	kvrun -0 delete flood
}

@test "jail: each container's VMM is pid 1 of a pid namespace of its own, with a uid of its own, outside the host's network namespace" {
	requires root
	update_config '.process.args = ["sh", "-c", "echo started; exec sleep 1000"]'
	kvrun_detached -0 run -d --pid-file "$BUNDLE/pid.c1" c1
	# A container with the host's network namespace (none in its spec): its
	# shim stays in the host's, its VMM gets an empty one of its own.
	update_config '.linux.namespaces |= map(select(.type != "network"))'
	kvrun_detached -0 run -d --pid-file "$BUNDLE/pid.c2" c2
	local c shim vmm uids=()
	for c in c1 c2; do
		shim=$(cat "$BUNDLE/pid.$c")
		vmm=$(recorded_pid "$c" vmm.pid)
		grep -E '^(Uid|NSpid):' "/proc/$vmm/status" >&2
		echo "$c: pid ns: vmm $(readlink "/proc/$vmm/ns/pid") shim $(readlink "/proc/$shim/ns/pid") host $(readlink /proc/self/ns/pid)" >&2
		echo "$c: net ns: vmm $(readlink "/proc/$vmm/ns/net") shim $(readlink "/proc/$shim/ns/net") host $(readlink /proc/self/ns/net)" >&2
		# pid 1 of its own namespace: neither the host's nor its shim's.
		[ "$(awk '/^NSpid:/ { print $NF }' "/proc/$vmm/status")" = 1 ]
		[ "$(readlink "/proc/$vmm/ns/pid")" != "$(readlink /proc/self/ns/pid)" ]
		[ "$(readlink "/proc/$vmm/ns/pid")" != "$(readlink "/proc/$shim/ns/pid")" ]
		[ "$(readlink "/proc/$vmm/ns/net")" != "$(readlink /proc/self/ns/net)" ]
		uids+=("$(awk '/^Uid:/ { print $2 }' "/proc/$vmm/status")")
	done
	# c1's VMM shares its container's (new) network namespace with its shim.
	[ "$(readlink "/proc/$(recorded_pid c1 vmm.pid)/ns/net")" = "$(readlink "/proc/$(cat "$BUNDLE/pid.c1")/ns/net")" ]
	[ "$(readlink "/proc/$(cat "$BUNDLE/pid.c2")/ns/net")" = "$(readlink /proc/self/ns/net)" ]
	# Ids of their own, unprivileged, from their namespaces (vmm/sandbox.h).
	[ "${uids[0]}" != "${uids[1]}" ]
	[ "${uids[0]}" -ge $((0x6bb60000)) ]
	[ "${uids[1]}" -ge $((0x6bb60000)) ]
	kvrun -0 delete --force c1
	kvrun -0 delete --force c2
}

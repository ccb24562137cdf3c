#!/usr/bin/env bats
# containerd's CRI plugin drives kvrun as Kubernetes does with a
# RuntimeClass whose handler is kvrun (README: Kubernetes): the runtime
# handler `kvrun` is the runc v2 shim with kvrun as its runc binary. The
# kubelet's side is cri/cri.py, a CRI client generated here from
# cri/api.proto (the CRI's runtime.v1). A containerd of the suite's own
# (root, state, sockets, CNI config under $CT, in the suite's network
# namespace, so that the CNI bridge stays out of the host's); the sandbox
# ("pause") image is cri/pause.c, built by make, and both images are
# imported offline.

load helpers

CRI_DIR="$CLIENTS_DIR/cri"
CRI_PAUSE="$REPO_ROOT/build/tests/cri-pause"

setup_file() {
	clients_requires containerd ctr containerd-shim-runc-v2 || return 0
	[ -x "$CRI_PAUSE" ] || clients_skip "the pause fixture is not built (make)" || return 0
	/usr/bin/python3 -c 'import grpc, grpc_tools.protoc' 2>/dev/null ||
		clients_skip "python3-grpcio or python3-grpc-tools not installed (make deps)" ||
		return 0
	local p
	for p in bridge host-local loopback; do
		[ -x "/usr/lib/cni/$p" ] ||
			clients_skip "CNI plugin $p not installed (containernetworking-plugins; make deps)" ||
			return 0
	done
	clients_setup cri
	# The kubelet's pod cgroups (cgroupfs driver) live under a parent of
	# the suite's own.
	CRI_CGROUP="/$(basename "$CT")"
	export CRI_CGROUP
	export CRI_SOCK="$CT/containerd/containerd.sock"
	export KVRUN_ROOT="$CT/containerd/kvrun/k8s.io"
	# The kubelet's side: stubs generated from the CRI's api.proto.
	mkdir -p "$CT/cri-stubs"
	/usr/bin/python3 -m grpc_tools.protoc -I "$CRI_DIR" --python_out="$CT/cri-stubs" \
		--grpc_python_out="$CT/cri-stubs" "$CRI_DIR/api.proto"
	mkdir -p "$CT/pause-rootfs/dev" "$CT/pause-rootfs/proc" "$CT/pause-rootfs/sys" \
		"$CT/pause-rootfs/etc"
	cp "$CRI_PAUSE" "$CT/pause-rootfs/pause"
	"$CLIENTS_DIR/mkimage" "$CT/pause-rootfs" "$CT/pause.tar" kvrun.test/pause:1 '["/pause"]'
	# A bridge with host-local addresses, as a node's CNI config gives
	# pods; the IPAM state is ours too.
	mkdir -p "$CT/cni" "$CT/containerd"
	cat >"$CT/cni/10-kvct.conflist" <<-EOF
		{"cniVersion": "1.0.0", "name": "kvct-cri", "plugins": [
		  {"type": "bridge", "bridge": "kvcri0", "isGateway": true, "ipMasq": false,
		   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.77.0/24"}]],
		            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$CT/cni/ipam"}}]}
	EOF
	# The README's CRI configuration (runtimes.kvrun), around it what a
	# node has: runc as the default handler, the sandbox image, CNI.
	cat >"$CT/containerd/config.toml" <<-EOF
		version = 2
		root = "$CT/containerd/root"
		state = "$CT/containerd/state"
		[grpc]
		  address = "$CRI_SOCK"
		[ttrpc]
		  address = "$CT/containerd/containerd.sock.ttrpc"
		[debug]
		  address = "$CT/containerd/debug.sock"
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "kvrun.test/pause:1"
		  netns_mounts_under_state_dir = true
		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "/usr/lib/cni"
		    conf_dir = "$CT/cni"
		  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		    runtime_type = "io.containerd.runc.v2"
		  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kvrun]
		    runtime_type = "io.containerd.runc.v2"
		    pod_annotations = ["io.kvrun.*"]
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kvrun.options]
		      BinaryName = "$CT/bin/kvrun"
		      Root = "$CT/containerd/kvrun"
	EOF
	start_daemon containerd "$CT/containerd.pid" "$CRI_SOCK" \
		containerd --config "$CT/containerd/config.toml"
	local img
	for img in busybox pause; do
		timeout 120 ctr --address "$CRI_SOCK" -n k8s.io images import "$CT/$img.tar"
	done
}

teardown_file() {
	[ -n "${CT:-}" ] || return 0
	stop_daemon "$CT/containerd.pid"
	# The pod cgroups' parents, made for the containers' cgroupsPath (as
	# the kubelet makes and removes them), innermost first.
	find /sys/fs/cgroup -depth -type d \( -path "*$CRI_CGROUP" -o -path "*$CRI_CGROUP/*" \) \
		-exec rmdir {} \; 2>/dev/null
	clients_teardown
}

teardown() {
	[ -n "${CT:-}" ] || return 0
	local p
	for p in $(cri pods 2>/dev/null | jq -r '.items[]?.id'); do
		cri stop-pod "$p" >/dev/null 2>&1
		cri rm-pod "$p" >/dev/null 2>&1
	done
	check_kvrun_clean "$KVRUN_ROOT"
}

# cri ARGS: cri.py against the suite's containerd; every call has a deadline.
# In the suite's network namespace, as a kubelet beside its containerd: the
# streaming server that Exec and Attach return listens on its 127.0.0.1.
cri() {
	timeout --kill-after=5 "$CLIENT_TIMEOUT" nsenter --net="/run/netns/$CT_NS" \
		"$CRI_DIR/cri.py" --sock "$CRI_SOCK" --stubs "$CT/cri-stubs" \
		--timeout "$CLIENT_TIMEOUT" "$@"
}

# timed LABEL [-N] CMD...: t, and LABEL's wall time added to $TIMINGS.
timed() {
	local label=$1 t0 ms rc=0
	shift
	t0=$(date +%s%N)
	t "$@" || rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	TIMINGS+="$label $((ms / 1000)).$((ms % 1000 / 100)) s, "
	return "$rc"
}

# pod_config NAME [JQ]: $CT/NAME.json, a PodSandboxConfig as the kubelet
# sends it (metadata, log directory, cgroup parent, a PID namespace per
# container), edited by JQ.
pod_config() {
	mkdir -p "$CT/logs/$1"
	jq -n --arg name "$1" --arg logs "$CT/logs/$1" --arg cg "$CRI_CGROUP/pod-$1" '{
		metadata: {name: $name, uid: ("uid-" + $name), namespace: "kvrun-test", attempt: 0},
		hostname: $name, log_directory: $logs,
		linux: {cgroup_parent: $cg, security_context:
			{namespace_options: {network: "POD", pid: "CONTAINER", ipc: "POD"}}}
	} | '"${2:-.}" >"$CT/$1.json"
}

# container_config POD NAME SCRIPT [JQ]: $CT/POD-NAME.json, a busybox
# container running `sh -c SCRIPT`, logging to NAME/0.log, with the pod's
# emptyDir-style volume $CT/emptydir at /shared, edited by JQ.
container_config() {
	jq -n --arg name "$2" --arg script "$3" --arg vol "$CT/emptydir" '{
		metadata: {name: $name, attempt: 0},
		image: {image: "docker.io/library/busybox:latest"},
		command: ["sh", "-c", $script], log_path: ($name + "/0.log"),
		mounts: [{container_path: "/shared", host_path: $vol}],
		linux: {security_context:
			{namespace_options: {network: "POD", pid: "CONTAINER", ipc: "POD"}}}
	} | '"${4:-.}" >"$CT/$1-$2.json"
}

# pod_cgroup_file POD-NAME SANDBOX-ID V1-CONTROLLER V1-FILE V2-FILE: a file
# of the sandbox's host cgroup (its VM's), on a v1 or a v2 host.
pod_cgroup_file() {
	local dir="$CRI_CGROUP/pod-$1/$2"
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		cat "/sys/fs/cgroup$dir/$5"
	else
		cat "/sys/fs/cgroup/$3$dir/$4"
	fi
}

# vmm_files PID: the files a VMM holds open (its live shares among them).
vmm_files() {
	local fd
	for fd in "/proc/$1/fd/"*; do
		readlink "$fd"
	done
}

@test "cri: a pod of two containers in one microVM: ExecSync, Exec, Attach, emptyDir, rootfs, localhost, status, stats, logs, stop, remove" {
	TIMINGS=""
	mkdir -p "$CT/emptydir"
	# The pod's resources as the kubelet sends them (2 CPUs, 128 MiB):
	# containerd 1.6 passes them on as the sandbox-cpu-*/sandbox-memory
	# annotations, which size the VM: 2 vCPUs, 128M + memory_overhead = 256M
	# (a clone of the suite's 2-vCPU template).
	pod_config pod1 '.linux.resources = {cpu_period: 100000, cpu_quota: 200000,
		memory_limit_in_bytes: 134217728}'
	timed run-pod -0 cri run-pod --handler kvrun "$CT/pod1.json"
	local pod=$output
	t -0 cri pod-status "$pod"
	[ "$(jq -r .status.state <<<"$output")" = SANDBOX_READY ]
	[ "$(jq -r .status.runtime_handler <<<"$output")" = kvrun ]
	local podip
	podip=$(jq -r .status.network.ip <<<"$output")
	[[ "$podip" == 10.88.77.* ]]

	# one: honours SIGTERM with its own exit code; two: ignores it, serves
	# one line on localhost:8080 into the volume, then echoes its stdin
	# (kept open: stdin without stdin_once, for Attach).
	container_config pod1 one 'trap "echo got-term; exit 42" TERM; echo one-started
		while :; do sleep 3600 & wait $!; done'
	container_config pod1 two 'trap "" TERM; echo two-started
		nc -l -p 8080 >/shared/from-nc; while read l; do echo "echo:$l"; done
		exec sleep 100000' '.stdin = true'
	local one two
	timed create-one -0 cri create "$pod" "$CT/pod1-one.json" "$CT/pod1.json"
	one=$output
	timed start-one -0 cri start "$one"
	timed create-two -0 cri create "$pod" "$CT/pod1-two.json" "$CT/pod1.json"
	two=$output
	timed start-two -0 cri start "$two"
	# One VM for the pod.
	[ "$(kvrun_procs_under "$KVRUN_ROOT/" | grep -c 'kvrun-vmm ')" -eq 1 ]

	# The guest's kernel and the VM's size; a write to the volume and to
	# the container's root; localhost reaches the other container. ExecSync
	# returns the command's exit code.
	timed exec-one -7 cri exec-sync "$one" sh -c 'cat /proc/sys/kernel/random/boot_id
		uname -r; nproc; echo from-one >/shared/note; echo rooted >/written
		for i in 1 2 3 4 5; do echo over-localhost | nc 127.0.0.1 8080 && break; sleep 1; done
		exit 7'
	local boot=${lines[0]}
	[ "${lines[1]}" != "$(uname -r)" ]
	[[ "${lines[1]}" == 6.1.* ]]
	[ "${lines[2]}" = 2 ]
	# ... and 256M of guest RAM: the VM's host cgroup allows that + 64M.
	[ "$(pod_cgroup_file pod1 "$pod" memory memory.limit_in_bytes memory.max)" = 335544320 ]
	timed exec-two -0 cri exec-sync "$two" sh -c 'cat /proc/sys/kernel/random/boot_id
		cat /shared/note /shared/from-nc'
	[ "${lines[0]}" = "$boot" ]
	[ "${lines[1]}" = from-one ]
	[ "${lines[2]}" = over-localhost ]
	[ "$(cat "$CT/emptydir/note")" = from-one ]
	# one's root.path: containerd's rootfs of the container, in its bundle.
	local bundle="$CT/containerd/state/io.containerd.runtime.v2.task/k8s.io/$one" root
	root=$(jq -r .root.path "$bundle/config.json")
	[[ "$root" == /* ]] || root="$bundle/$root"
	[ "$(cat "$root/written")" = rooted ]

	# Their root and the volume are live shares of the VM: the VMM holds
	# them open.
	local vmm
	vmm=$(kvrun_procs_under "$KVRUN_ROOT/" | awk '/kvrun-vmm / { print $1 }')
	vmm_files "$vmm" | grep -qF "$CT/emptydir"
	vmm_files "$vmm" | grep -qF "/k8s.io/$one/"

	# Exec and Attach, streamed as kubectl exec/attach get them: stdin
	# reaches the command, stdout and stderr come back apart, the exit code
	# in the status; Attach talks to two's own stdin and stdout.
	timed exec-stream -3 cri exec --stdin $'hello\n' "$one" \
		sh -c 'read l; echo "got:$l"; echo to-stderr >&2; exit 3'
	[[ "$output" == *got:hello* ]]
	[[ "$output" == *to-stderr* ]]
	timed exec-stream-tty -0 cri exec --tty "$one" sh -c 'test -t 1 && echo on-a-tty'
	[[ "$output" == *on-a-tty* ]]
	timed attach -0 cri attach --stdin $'ping\n' --until echo:ping "$two"
	grep -q ' stdout F echo:ping$' "$CT/logs/pod1/two/0.log"

	# The pod's network (CNI's bridge) is the VM's: its address on eth0, the
	# bridge's gateway reached.
	timed exec-net -0 cri exec-sync "$one" sh -c 'ip -o -4 addr show eth0
		ping -c 1 -W 10 10.88.77.1 >/dev/null && echo gw-ok'
	[[ "${lines[0]}" == *"inet $podip/"* ]]
	[ "${lines[1]}" = gw-ok ]

	t -0 cri ps --pod "$pod"
	[ "$(jq -r '[.containers[] | .metadata.name + "=" + .state] | sort | join(" ")' \
		<<<"$output")" = "one=CONTAINER_RUNNING two=CONTAINER_RUNNING" ]
	t -0 cri status "$one"
	[ "$(jq -r .status.state <<<"$output")" = CONTAINER_RUNNING ]
	[ "$(jq -r .status.started_at <<<"$output")" -gt 0 ]
	[ "$(jq -r .status.log_path <<<"$output")" = "$CT/logs/pod1/one/0.log" ]
	grep -q ' stdout F one-started$' "$CT/logs/pod1/one/0.log"
	grep -q ' stdout F two-started$' "$CT/logs/pod1/two/0.log"
	# Stats: a member's are its host processes (its kvrun-shims); the VM
	# is the sandbox's, in the pod's cgroup, where the kubelet reads a
	# pod's usage.
	t -0 cri stats "$one"
	local mem cpu vm
	mem=$(jq -r '.stats.memory.working_set_bytes.value // 0' <<<"$output")
	cpu=$(jq -r '.stats.cpu.usage_core_nano_seconds.value // 0' <<<"$output")
	[ "$mem" -gt 0 ]
	[ "$cpu" -gt 0 ]
	vm=$(pod_cgroup_file pod1 "$pod" memory memory.usage_in_bytes memory.current)
	[ "$vm" -gt "$mem" ]
	# The pod's stats (PodSandboxStats, as the kubelet's summary API gets
	# them): the pod cgroup, which holds the VM; its network is eth0 of the
	# pod's namespace, which carried the VM's traffic; both members listed.
	t -0 cri pod-stats "$pod"
	local podmem podcpu rx
	podmem=$(jq -r '.stats.linux.memory.working_set_bytes.value // 0' <<<"$output")
	podcpu=$(jq -r '.stats.linux.cpu.usage_core_nano_seconds.value // 0' <<<"$output")
	rx=$(jq -r '.stats.linux.network.default_interface.rx_bytes.value // 0' <<<"$output")
	[ "$podmem" -gt "$mem" ]
	[ "$podcpu" -gt "$cpu" ]
	[ "$rx" -gt 0 ]
	[ "$(jq -r '[.stats.linux.containers[].attributes.metadata.name] | sort | join(" ")' \
		<<<"$output")" = "one two" ]
	echo "# stats: one $mem bytes, $cpu ns of CPU; the pod's VM $vm bytes;" \
		"the pod $podmem bytes, $podcpu ns, $rx bytes received" >&3

	# The kubelet rotates a log: the old file is moved, ReopenContainerLog,
	# and what the container prints next lands in a new file.
	mv "$CT/logs/pod1/one/0.log" "$CT/logs/pod1/one/0.log.1"
	t -0 cri reopen-log "$one"
	[ -f "$CT/logs/pod1/one/0.log" ]
	# StopContainer: SIGTERM in the guest (one exits 42 from its trap,
	# printing into the new log); two ignores it and is killed after the
	# grace period.
	timed stop-one -0 cri stop --grace 30 "$one"
	t -0 cri status "$one"
	[ "$(jq -r .status.state <<<"$output")" = CONTAINER_EXITED ]
	[ "$(jq -r .status.exit_code <<<"$output")" -eq 42 ]
	grep -q ' stdout F got-term$' "$CT/logs/pod1/one/0.log"
	[ "$(grep -c got-term "$CT/logs/pod1/one/0.log.1")" -eq 0 ]
	local t0=$SECONDS
	timed stop-two -0 cri stop --grace 3 "$two"
	[ $((SECONDS - t0)) -ge 3 ]
	t -0 cri status "$two"
	[ "$(jq -r .status.state <<<"$output")" = CONTAINER_EXITED ]
	[ "$(jq -r .status.exit_code <<<"$output")" -eq 137 ]

	# The members go; the pod's VM stays and holds none of their shares.
	timed rm-one -0 cri rm "$one"
	timed rm-two -0 cri rm "$two"
	kill -0 "$vmm"
	[ "$(vmm_files "$vmm" | grep -cF -e "$CT/emptydir" -e "/k8s.io/$one/" -e "/k8s.io/$two/")" -eq 0 ]
	timed stop-pod -0 cri stop-pod "$pod"
	timed rm-pod -0 cri rm-pod "$pod"
	# Nothing left: kvrun's processes, state, host cgroups; mounts
	# (rootfs, shm, netns); the CNI result; the host's network as it was.
	check_kvrun_clean "$KVRUN_ROOT"
	check_kvrun_clean "$KVRUN_ROOT" "$pod" "$one" "$two"
	check_no_mounts_under "$CT/containerd"
	[ "$(find /var/lib/cni/results -name "*$pod*" 2>/dev/null | wc -l)" -eq 0 ]
	check_host_net
	echo "# timings: ${TIMINGS%, }" >&3
}

@test "cri: pod annotations io.kvrun.vm.* (pod_annotations) size the pod's VM over its resources" {
	TIMINGS=""
	# The resources say 2 CPUs and 512 MiB; the annotations, passed on by
	# the handler's pod_annotations, say 1 vCPU and 256M: the VM's host
	# cgroup is sized by them (256M of guest RAM + 64M vmm_overhead; one
	# CPU's quota), a clone of the suite's 1-vCPU template.
	pod_config pod2 '.annotations = {"io.kvrun.vm.cpus": "1", "io.kvrun.vm.memory": "256M"}
		| .linux.resources = {cpu_period: 100000, cpu_quota: 200000,
			memory_limit_in_bytes: 536870912}'
	timed run-pod -0 cri run-pod --handler kvrun "$CT/pod2.json"
	local pod=$output
	# What containerd 1.6 put on the sandbox container's spec: both.
	local spec="$CT/containerd/state/io.containerd.runtime.v2.task/k8s.io/$pod/config.json"
	[ "$(jq -r '.annotations["io.kubernetes.cri.sandbox-memory"]' "$spec")" = 536870912 ]
	[ "$(jq -r '.annotations["io.kubernetes.cri.sandbox-cpu-quota"]' "$spec")" = 200000 ]
	[ "$(jq -r '.annotations["io.kvrun.vm.memory"]' "$spec")" = 256M ]
	[ "$(pod_cgroup_file pod2 "$pod" memory memory.limit_in_bytes memory.max)" = 335544320 ]
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		[ "$(pod_cgroup_file pod2 "$pod" - - cpu.max)" = "100000 100000" ]
	else
		[ "$(pod_cgroup_file pod2 "$pod" cpu cpu.cfs_quota_us -)" = \
			"$(pod_cgroup_file pod2 "$pod" cpu cpu.cfs_period_us -)" ]
	fi
	timed stop-pod -0 cri stop-pod "$pod"
	timed rm-pod -0 cri rm-pod "$pod"
	check_kvrun_clean "$KVRUN_ROOT" "$pod"
	echo "# timings: ${TIMINGS%, }" >&3
}

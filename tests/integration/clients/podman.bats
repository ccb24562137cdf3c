#!/usr/bin/env bats
# Podman drives kvrun unmodified, configured as the README says
# (containers.conf [engine.runtimes] kvrun = [...], `podman --runtime kvrun`):
# its storage, run root, temp dir and network config dir under $CT, every
# podman command in the suite's network namespace (its CNI bridge and
# iptables rules stay there), conmon started by podman as usual.

load helpers

setup_file() {
	clients_requires podman conmon || return 0
	clients_setup podman
	mkdir -p "$CT/podman"
	cat >"$CT/podman/containers.conf" <<-EOF
		[engine]
		cgroup_manager = "cgroupfs"
		events_logger = "file"
		events_logfile_path = "$CT/podman/events.log"
		[engine.runtimes]
		kvrun = ["$CT/bin/kvrun"]
		[network]
		network_config_dir = "$CT/podman/cni"
	EOF
	cat >"$CT/podman/storage.conf" <<-EOF
		[storage]
		driver = "overlay"
		graphroot = "$CT/podman/storage"
		runroot = "$CT/podman/run"
	EOF
	export CONTAINERS_CONF="$CT/podman/containers.conf"
	export CONTAINERS_STORAGE_CONF="$CT/podman/storage.conf"
	export CONTAINERS_REGISTRIES_CONF="$CT/podman/registries.conf"
	: >"$CONTAINERS_REGISTRIES_CONF"
	p load -i "$CT/busybox.tar"
}

teardown_file() {
	[ -n "${CT:-}" ] || return 0
	p pod rm -af -t 0 >/dev/null 2>&1
	p rm -af -t 0 >/dev/null 2>&1
	clients_teardown
}

teardown() {
	[ -n "${CT:-}" ] || return 0
	local ids
	ids=$(p ps -aq --no-trunc 2>/dev/null)
	p pod rm -af -t 0 >/dev/null 2>&1
	p rm -af -t 0 >/dev/null 2>&1
	# Podman gives kvrun no --root: its state is in the default /run/kvrun.
	# shellcheck disable=SC2086
	[ -z "$ids" ] || check_kvrun_clean /run/kvrun $ids
}

# p ARGS: podman with kvrun, in the suite's namespace, with a timeout.
p() {
	timeout --kill-after=5 "$CLIENT_TIMEOUT" nsenter --net="/run/netns/$CT_NS" \
		podman --tmpdir "$CT/podman/tmp" --runtime kvrun "$@"
}

@test "podman: run --rm in a microVM: output, exit status, the guest's kernel" {
	t -3 p run --rm busybox sh -c 'uname -r; echo hello; exit 3'
	[ "${lines[0]}" != "$(uname -r)" ]
	[[ "${lines[0]}" == 6.1.* ]]
	[ "${lines[1]}" = hello ]
}

@test "podman: run -d, exec, exec -it, logs, top, stats, pause, update, stop (SIGTERM in the guest), rm" {
	t -0 p run -d --name c1 busybox \
		sh -c 'trap "echo got-TERM; exit 0" TERM; echo started; while :; do sleep 1; done'
	t -0 p exec c1 sh -c 'echo from-exec; uname -r'
	[ "${lines[0]}" = from-exec ]
	[ "${lines[1]}" != "$(uname -r)" ]
	t -5 script -qec "nsenter --net=/run/netns/$CT_NS podman --tmpdir $CT/podman/tmp --runtime kvrun exec -it c1 sh -c 'tty; exit 5'" /dev/null
	[[ "$output" == */dev/pts/* ]]
	t -0 p logs c1
	[[ "$output" == *started* ]]
	# top: the container's host processes (its shim and VMM, PID 1 and 2 of
	# the shim's namespace), not the host's.
	t -0 p top c1
	[[ "$output" == *kvrun-shim* ]]
	[[ "$output" == *kvrun-vmm* ]]
	[[ "$output" != *kthreadd* ]]
	# stats: the VM's host cgroup (podman shows the spec's limit, none here),
	# capped at the VM's size: 256M guest + 64M VMM.
	t -0 p stats --no-stream --format '{{.PIDs}}' c1
	[ "$output" -gt 0 ]
	local cg
	cg=$(p inspect -f '{{.State.CgroupPath}}' c1)
	if [ -d /sys/fs/cgroup/memory ]; then
		[ "$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes")" = 335544320 ]
	else
		[ "$(cat "/sys/fs/cgroup$cg/memory.max")" = 335544320 ]
	fi
	t -0 p pause c1
	[ "$(p inspect -f '{{.State.Status}}' c1)" = paused ]
	t -0 p unpause c1
	t -0 p update --cpus 0.5 c1
	t -0 p exec c1 sh -c 'cat /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/cpu.max'
	[ "$output" = "50000 100000" ]
	# (a generous grace: the VM runs at the 0.5 CPU just set, on a loaded host)
	t -0 p stop -t 60 c1
	[ "$(p inspect -f '{{.State.ExitCode}}' c1)" = 0 ]
	t -0 p logs c1
	[[ "$output" == *got-TERM* ]]
	t -0 p rm c1
}

@test "podman: kill, run -it, a volume both ways, a memory limit" {
	t -0 p run -d --name k1 busybox sleep 1000
	t -0 p kill k1
	[ "$(p inspect -f '{{.State.ExitCode}}' k1)" = 137 ]
	t -0 p rm k1
	t -7 script -qec "nsenter --net=/run/netns/$CT_NS podman --tmpdir $CT/podman/tmp --runtime kvrun run --rm -it busybox sh -c 'tty; echo it-works; exit 7'" /dev/null
	[[ "$output" == *it-works* ]]
	mkdir -p "$CT/vol"
	echo from-host >"$CT/vol/in"
	t -0 p run --rm --memory 256m -v "$CT/vol:/data" busybox \
		sh -c 'cat /data/in; echo from-guest >/data/out; cat /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/memory.max'
	[ "${lines[0]}" = from-host ]
	[ "${lines[1]}" = 268435456 ]
	[ "$(cat "$CT/vol/out")" = from-guest ]
	check_host_net
}

@test "podman: a pod's containers share its VM; --network container: joins the VM" {
	t -0 p pod create --name pod1
	t -0 p run -d --pod pod1 --name m1 busybox sleep 1000
	t -0 p run -d --pod pod1 --name m2 busybox sleep 1000
	local b1 b2
	b1=$(p exec m1 cat /proc/sys/kernel/random/boot_id)
	b2=$(p exec m2 cat /proc/sys/kernel/random/boot_id)
	[ -n "$b1" ] && [ "$b1" = "$b2" ]
	# localhost between members: one VM, one network namespace.
	t -0 p exec -d m1 sh -c 'echo pod-hello | nc -l -p 8080'
	sleep 2
	t -0 p exec m2 sh -c 'nc 127.0.0.1 8080 </dev/null'
	[ "$output" = pod-hello ]
	# Terminals in the pod (Podman 4.3's pod cgroup denies every device
	# under cgroupfs on cgroup v2: the host pty is opened before the shim
	# joins it).
	t -4 script -qec "nsenter --net=/run/netns/$CT_NS podman --tmpdir $CT/podman/tmp --runtime kvrun exec -it m2 sh -c 'tty; exit 4'" /dev/null
	[[ "$output" == */dev/pts/* ]]
	t -6 script -qec "nsenter --net=/run/netns/$CT_NS podman --tmpdir $CT/podman/tmp --runtime kvrun run --rm -it --pod pod1 busybox sh -c 'tty; exit 6'" /dev/null
	[[ "$output" == */dev/pts/* ]]
	t -0 p run -d --name n1 busybox sleep 1000
	t -0 p run -d --name n2 --network container:n1 busybox sleep 1000
	b1=$(p exec n1 cat /proc/sys/kernel/random/boot_id)
	b2=$(p exec n2 cat /proc/sys/kernel/random/boot_id)
	[ -n "$b1" ] && [ "$b1" = "$b2" ]
	t -0 p rm -f -t 0 n2
	t -0 p rm -f -t 0 n1
	t -0 p pod rm -f -t 0 pod1
}

@test "podman: the container has the address podman gave it; -p publishes a port" {
	t -0 p run -d --name web -p 18081:80 busybox \
		sh -c 'mkdir -p /www && echo hello-podman >/www/index.html && exec httpd -f -p 80 -h /www'
	local ip
	ip=$(p inspect -f '{{.NetworkSettings.IPAddress}}' web)
	[ -n "$ip" ]
	t -0 p exec web ip -o -4 addr show eth0
	[[ "$output" == *"inet $ip/"* ]]
	# -p: CNI's portmap (DNAT) to the container's address, from the namespace.
	local host i out=""
	host=$(in_ns ip -o -4 addr show | awk '$2 != "lo" { sub("/.*", "", $4); print $4; exit }')
	[ -n "$host" ]
	for i in $(seq 30); do
		out=$(in_ns curl -sf -m 5 "http://$host:18081/") && break
		sleep 1
	done
	[ "$out" = hello-podman ]
	t -0 p rm -f -t 0 web
	check_host_net
}

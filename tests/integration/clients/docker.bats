#!/usr/bin/env bats
# Docker drives kvrun unmodified: a dockerd of the suite's own (its data
# root, exec root, pidfile, socket and network namespace under $CT; the
# containerd it starts lives under them too), configured as the README says
# (daemon.json "runtimes"), with the busybox image made by mkimage. What a
# Docker user would check, through the docker CLI only.

load helpers

setup_file() {
	clients_requires dockerd docker || return 0
	clients_setup docker
	# docker run --memory 256m: a 384M VM (256M + memory_overhead).
	clients_template --memory 384M
	docker_daemon_start
}

teardown_file() {
	[ -n "${CT:-}" ] || return 0
	stop_daemon "$CT/docker.pid"
	clients_teardown
}

teardown() {
	[ -n "${CT:-}" ] || return 0
	# Whatever a failed test left, then the check that nothing of kvrun's is.
	docker ps -aq 2>/dev/null | xargs -r timeout 60 docker rm -f >/dev/null 2>&1
	check_kvrun_clean "$CT/docker/exec/runtime-runc/moby"
}

# The daemon the README configures: "runtimes": {"kvrun": {"path": ...}}.
docker_daemon_start() {
	mkdir -p "$CT/docker" "$CT/docker-config"
	jq -n --arg kvrun "$CT/bin/kvrun" '{runtimes: {kvrun: {path: $kvrun}}}' \
		>"$CT/docker/daemon.json"
	export DOCKER_HOST="unix://$CT/docker/docker.sock" DOCKER_CONFIG="$CT/docker-config"
	start_daemon docker "$CT/docker.pid" "$CT/docker/docker.sock" \
		dockerd --config-file "$CT/docker/daemon.json" --data-root "$CT/docker/data" \
		--exec-root "$CT/docker/exec" --pidfile "$CT/docker/dockerd.pid" \
		-H "$DOCKER_HOST"
	timeout 120 docker load -i "$CT/busybox.tar"
}

@test "docker: run --rm in a microVM: output, exit status, the guest's kernel" {
	t -3 docker run --rm --runtime kvrun busybox sh -c 'uname -r; echo hello; exit 3'
	[ "${lines[0]}" != "$(uname -r)" ]
	[[ "${lines[0]}" == 6.1.* ]]
	[ "${lines[1]}" = hello ]
	t -0 docker run --rm --runtime kvrun busybox true
	[ -z "$output" ]
}

@test "docker: run -d, exec, exec -it, logs, top, stats, pause, update, stop (SIGTERM in the guest), rm" {
	t -0 docker run -d --name c1 --runtime kvrun busybox \
		sh -c 'trap "echo got-TERM; exit 0" TERM; echo started; while :; do sleep 1; done'
	local id
	id=$(docker inspect -f '{{.Id}}' c1)
	t -0 docker exec c1 sh -c 'echo from-exec; uname -r'
	[ "${lines[0]}" = from-exec ]
	[ "${lines[1]}" != "$(uname -r)" ]
	# A terminal: exec -it under script(1), the exit status passed through.
	t -5 script -qec "docker exec -it c1 sh -c 'tty; exit 5'" /dev/null
	[[ "$output" == */dev/pts/* ]]
	t -0 docker logs c1
	[[ "$output" == *started* ]]
	# top: host processes that exist (the container's shim and VMM), not guest pids.
	t -0 docker top c1
	[[ "$output" == *kvrun-shim* ]]
	[[ "$output" == *kvrun-vmm* ]]
	# stats: the VM's host cgroup, capped at the VM's size (256M + 64M VMM).
	t -0 docker stats --no-stream --format '{{.MemUsage}} {{.PIDs}}' c1
	[[ "$output" == *"/ 320MiB "* ]]
	[ "$(awk '{ print $NF }' <<<"$output")" -gt 0 ]
	[ -d "/sys/fs/cgroup/memory/docker/$id" ] || [ -d "/sys/fs/cgroup/docker/$id" ]
	t -0 docker pause c1
	[ "$(docker inspect -f '{{.State.Paused}}' c1)" = true ]
	t -0 docker unpause c1
	t -0 docker exec c1 true
	t -0 docker update --cpus 0.5 c1
	if [ -f "/sys/fs/cgroup/cpu/docker/$id/cpu.cfs_quota_us" ]; then
		[ "$(cat "/sys/fs/cgroup/cpu/docker/$id/cpu.cfs_quota_us")" = 50000 ]
	fi
	t -0 docker exec c1 sh -c 'cat /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/cpu.max'
	[ "$output" = "50000 100000" ]
	# Growing past the VM is refused, saying why.
	t ! docker update --cpus 2 c1
	[[ "$output" == *"cannot grow"* ]]
	# (a generous grace: the VM runs at the 0.5 CPU just set, on a loaded host)
	t -0 docker stop -t 60 c1
	[ "$(docker inspect -f '{{.State.ExitCode}}' c1)" = 0 ]
	t -0 docker logs c1
	[[ "$output" == *got-TERM* ]]
	t -0 docker rm c1
	check_no_cgroup "$id"
}

@test "docker: kill, and run -it with a terminal" {
	t -0 docker run -d --name c2 --runtime kvrun busybox sleep 1000
	t -0 docker kill c2
	[ "$(docker inspect -f '{{.State.ExitCode}}' c2)" = 137 ]
	t -0 docker rm c2
	t -7 script -qec "docker run --rm -it --runtime kvrun busybox sh -c 'tty; echo it-works; exit 7'" /dev/null
	[[ "$output" == *it-works* ]]
	[[ "$output" == */dev/pts/* ]]
}

@test "docker: a volume is written both ways; a memory limit applies in the guest" {
	mkdir -p "$CT/vol"
	echo from-host >"$CT/vol/in"
	t -0 docker run --rm --runtime kvrun --memory 256m -v "$CT/vol:/data" busybox \
		sh -c 'cat /data/in; echo from-guest >/data/out; cat /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/memory.max'
	# (without the client's own warnings: "WARNING: Your kernel does not
	# support swap limit capabilities" where dockerd runs in a cgroup
	# without memory.swap.max, the root one say)
	local out
	out=$(grep -v '^WARNING: ' <<<"$output")
	[ "$(sed -n 1p <<<"$out")" = from-host ]
	[ "$(sed -n 2p <<<"$out")" = 268435456 ]
	[ "$(cat "$CT/vol/out")" = from-guest ]
}

@test "docker: the default bridge network configures the container's namespace, never the host's" {
	local before
	before=$(in_ns ip -o -4 addr show | awk '{ print $2, $4 }' | sort)
	t -0 docker run -d --name c3 --runtime kvrun busybox sleep 1000
	local pid
	pid=$(docker inspect -f '{{.State.Pid}}' c3)
	# Docker's prestart hook put eth0 with the container's address into the
	# namespace of the pid kvrun reports: its own, not dockerd's.
	[ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/self/ns/net)" ]
	[ "$(readlink "/proc/$pid/ns/net")" != "$(in_ns readlink /proc/self/ns/net)" ]
	local ip
	ip=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' c3)
	[ -n "$ip" ]
	nsenter --net="/proc/$pid/ns/net" ip -o addr show | grep -F "$ip/"
	[ "$(in_ns ip -o addr show | awk '{ print $2, $4 }' | sort | grep -cF "$ip/")" = 0 ]
	# And the container itself has it: the VM's NIC is that eth0.
	t -0 docker exec c3 ip -o -4 addr show eth0
	[[ "$output" == *"inet $ip/"* ]]
	t -0 docker rm -f c3
	[ "$(in_ns ip -o -4 addr show | awk '{ print $2, $4 }' | sort)" = "$before" ]
	check_host_net
}

@test "docker: on the default bridge a container reaches the gateway and another container; -p publishes its port" {
	t -0 docker run -d --name web --runtime kvrun -p 18080:80 busybox \
		sh -c 'mkdir -p /www && echo hello-docker >/www/index.html && exec httpd -f -p 80 -h /www'
	local ip gw
	ip=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' web)
	gw=$(docker inspect -f '{{.NetworkSettings.Gateway}}' web)
	[ -n "$ip" ] && [ -n "$gw" ]
	t -0 docker run --rm --runtime kvrun busybox sh -c "ping -c 1 -W 10 $gw >/dev/null && echo gw-ok;
		for i in 1 2 3 4 5 6 7 8 9 10; do
			printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 $ip 80 | grep hello && break; sleep 1
		done"
	[ "${lines[0]}" = gw-ok ]
	# (the server may take a moment to listen: nc retries)
	[ "${lines[-1]}" = hello-docker ]
	# -p: through docker-proxy and the daemon's NAT, from its namespace.
	local i out=""
	for i in $(seq 30); do
		out=$(in_ns curl -sf -m 5 http://127.0.0.1:18080/) && break
		sleep 1
	done
	[ "$out" = hello-docker ]
	t -0 docker rm -f web
	check_host_net
}

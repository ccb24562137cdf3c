#!/usr/bin/env bats
# containerd drives kvrun through its runc v2 shim (containerd-shim-runc-v2
# with kvrun as the runc binary), as the README configures it, through
# `ctr`: a containerd of the suite's own (root, state, sockets under $CT, in
# the suite's network namespace), the busybox image imported offline.

load helpers

setup_file() {
	clients_requires containerd ctr containerd-shim-runc-v2 || return 0
	clients_setup containerd
	# ctr run --memory-limit 268435456: a 384M VM (256M + memory_overhead).
	clients_template --memory 384M
	mkdir -p "$CT/containerd"
	cat >"$CT/containerd/config.toml" <<-EOF
		version = 2
		root = "$CT/containerd/root"
		state = "$CT/containerd/state"
		disabled_plugins = ["io.containerd.grpc.v1.cri"]
		[grpc]
		  address = "$CT/containerd/containerd.sock"
		[ttrpc]
		  address = "$CT/containerd/containerd.sock.ttrpc"
		[debug]
		  address = "$CT/containerd/debug.sock"
	EOF
	start_daemon containerd "$CT/containerd.pid" "$CT/containerd/containerd.sock" \
		containerd --config "$CT/containerd/config.toml"
	export CTR_ADDR="$CT/containerd/containerd.sock" CTR_NS=kvrun-test
	# kvrun as the runc of containerd's runc v2 shim (README: containerd).
	export KVRUN_CTR_RUNTIME="--runtime io.containerd.runc.v2 --runc-binary $CT/bin/kvrun --runc-root $CT/containerd/runc"
	timeout 120 ctr --address "$CTR_ADDR" -n "$CTR_NS" images import "$CT/busybox.tar"
}

teardown_file() {
	[ -n "${CT:-}" ] || return 0
	stop_daemon "$CT/containerd.pid"
	clients_teardown
}

teardown() {
	[ -n "${CT:-}" ] || return 0
	local t
	for t in $(c task ls -q 2>/dev/null); do
		timeout 60 ctr --address "$CTR_ADDR" -n "$CTR_NS" task kill -s KILL "$t" >/dev/null 2>&1
		timeout 60 ctr --address "$CTR_ADDR" -n "$CTR_NS" task rm -f "$t" >/dev/null 2>&1
	done
	c containers ls -q 2>/dev/null | xargs -r timeout 60 ctr --address "$CTR_ADDR" \
		-n "$CTR_NS" containers rm >/dev/null 2>&1
	check_kvrun_clean "$CT/containerd/runc/$CTR_NS"
}

# c ARGS: ctr against the suite's containerd and namespace.
c() {
	timeout --kill-after=5 "$CLIENT_TIMEOUT" ctr --address "$CTR_ADDR" -n "$CTR_NS" "$@"
}

# task_status ID: RUNNING, PAUSED, STOPPED...
task_status() {
	c task ls | awk -v id="$1" '$1 == id { print $3 }'
}

# wait_stopped ID SECONDS: the task shows STOPPED within SECONDS.
wait_stopped() {
	local i
	for i in $(seq $(($2 * 10))); do
		[ "$(task_status "$1")" = STOPPED ] && return 0
		sleep 0.1
	done
	[ "$(task_status "$1")" = STOPPED ]
}

@test "ctr: run --rm in a microVM: output, exit status, the guest's kernel" {
	# shellcheck disable=SC2086
	t -3 c run --rm $KVRUN_CTR_RUNTIME docker.io/library/busybox:latest r1 \
		sh -c 'uname -r; echo hello; exit 3'
	[ "${lines[0]}" != "$(uname -r)" ]
	[[ "${lines[0]}" == 6.1.* ]]
	[ "${lines[1]}" = hello ]
}

@test "ctr: run -d, task ps, metrics, exec, exec -t, pause/resume, kill (SIGTERM in the guest), rm" {
	# shellcheck disable=SC2086
	t -0 c run -d $KVRUN_CTR_RUNTIME docker.io/library/busybox:latest d1 \
		sh -c 'trap "exit 42" TERM; while :; do sleep 1; done'
	# ps: host processes that exist (the shim, the VMM), not guest pids.
	t -0 c task ps d1
	local pid
	for pid in $(awk 'NR > 1 { print $1 }' <<<"$output"); do
		grep -qE 'kvrun-(shim|vmm)' "/proc/$pid/cmdline"
	done
	# metrics: the VM's host cgroup (256M guest + 64M VMM as the limit).
	t -0 c task metrics d1
	[[ "$output" == *335544320* ]]
	t -0 c task exec --exec-id e1 d1 sh -c 'echo from-exec; uname -r'
	[ "${lines[0]}" = from-exec ]
	[ "${lines[1]}" != "$(uname -r)" ]
	t -4 script -qec "ctr --address $CTR_ADDR -n $CTR_NS task exec -t --exec-id e2 d1 sh -c 'tty; exit 4'" /dev/null
	[[ "$output" == */dev/pts/* ]]
	t -0 c task pause d1
	[ "$(task_status d1)" = PAUSED ]
	t -0 c task resume d1
	[ "$(task_status d1)" = RUNNING ]
	t -0 c task kill -s TERM d1
	wait_stopped d1 30
	t -0 c task rm d1
	t -0 c containers rm d1
	check_no_cgroup d1
}

@test "ctr: SIGKILL stops the task; run -t gives a terminal" {
	# shellcheck disable=SC2086
	t -0 c run -d $KVRUN_CTR_RUNTIME docker.io/library/busybox:latest k1 sleep 1000
	t -0 c task kill -s KILL k1
	wait_stopped k1 5
	t -0 c task rm k1
	t -0 c containers rm k1
	t -6 script -qec "ctr --address $CTR_ADDR -n $CTR_NS run --rm -t $KVRUN_CTR_RUNTIME docker.io/library/busybox:latest k2 sh -c 'tty; echo it-works; exit 6'" /dev/null
	[[ "$output" == *it-works* ]]
	[[ "$output" == */dev/pts/* ]]
}

@test "ctr: a bind mount written both ways; a memory limit applies in the guest" {
	mkdir -p "$CT/vol"
	echo from-host >"$CT/vol/in"
	# ctr mounts no cgroup file system: the VM's size shows the limit (256M +
	# memory_overhead of guest RAM, less what the guest kernel keeps).
	# shellcheck disable=SC2086
	t -0 c run --rm $KVRUN_CTR_RUNTIME --memory-limit 268435456 \
		--mount "type=bind,src=$CT/vol,dst=/data,options=rbind:rw" \
		docker.io/library/busybox:latest m1 \
		sh -c 'cat /data/in; echo from-guest >/data/out; grep MemTotal /proc/meminfo'
	[ "${lines[0]}" = from-host ]
	local kb
	kb=$(awk '{ print $2 }' <<<"${lines[1]}")
	[ "$kb" -gt 300000 ] && [ "$kb" -le 393216 ]
	[ "$(cat "$CT/vol/out")" = from-guest ]
	check_host_net
}

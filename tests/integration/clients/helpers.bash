#!/usr/bin/env bash
# Helpers for the client tests: real dockerd, containerd (ctr) and podman,
# started here with state, root, sockets and network of their own, each
# pointed at build/kvrun exactly as the README says. Nothing here uses or
# touches a daemon the machine may already run:
#  - every directory is under one temp dir ($CT), sockets included;
#  - each daemon (and every podman command) runs in a network namespace made
#    for it (`ip netns add`), so its bridge, veths and iptables rules never
#    reach the host's namespace; the host's interfaces, addresses and routes
#    are compared before and after;
#  - each client's containers live in a containerd namespace / cgroup
#    parent of their own, and the suite checks that nothing of kvrun's is
#    left: processes, state, cgroups, mounts.
# Every client call has a timeout, so a hang fails the test instead of CI.

bats_require_minimum_version 1.5.0

CLIENTS_DIR=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
REPO_ROOT=$(readlink -f "$CLIENTS_DIR/../../..")
KVRUN="${KVRUN:-$REPO_ROOT/build/kvrun}"
GUEST_DIR="$REPO_ROOT/build/guest"
BUSYBOX_ROOTFS="${BUSYBOX_ROOTFS:-$REPO_ROOT/build/fixtures/busybox-rootfs}"
# Seconds for one client call; a cold boot on a PVM host is ~20-60 s.
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-240}

function fail() {
	echo "$@" >&2
	return 1
}

# Bats (1.8) cannot skip from setup_file: a skip there fails the file. So
# setup_file calls `clients_requires ... || return 0`, which records why in
# $CLIENTS_SKIP, and setup() skips each test with that reason (counted).
function setup() {
	[ -z "${CLIENTS_SKIP:-}" ] || skip "$CLIENTS_SKIP"
}

# clients_skip REASON: for setup_file; records REASON and fails.
function clients_skip() {
	export CLIENTS_SKIP="$1"
	return 1
}

# Fails, recording the reason (clients_skip), unless the client, KVM and
# the guest exist.
function clients_requires() {
	[ "$(id -u)" -eq 0 ] || clients_skip "client tests need root (daemons, netns, cgroups)" ||
		return
	[ -x "$KVRUN" ] || clients_skip "kvrun not built: run make" || return
	[ -e /dev/kvm ] || clients_skip "no /dev/kvm on this host" || return
	[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.erofs" ] ||
		clients_skip "guest kernel or image not built (make)" || return
	[ -e "$BUSYBOX_ROOTFS/bin/busybox" ] ||
		clients_skip "busybox fixture not built (make fixtures)" || return
	local b
	for b in "$@"; do
		command -v "$b" >/dev/null ||
			clients_skip "$b not installed (make deps installs it)" || return
	done
	command -v ip >/dev/null || clients_skip "ip (iproute2) not installed"
}

# The host's network as a user would compare it: links, addresses, routes.
function host_net_snapshot() {
	{
		ip -o link show | sed 's/^[0-9]*: //' | awk '{ print $1 }' | sort
		ip -o addr show | awk '{ print $2, $3, $4 }' | sort
		ip route show table all | sort
	} 2>/dev/null
}

# clients_setup NAME: $CT (temp dir), $CT_NS (network namespace), the
# busybox image archive, and the host's network before anything starts.
function clients_setup() {
	CT=$(mktemp -d "/tmp/kvct-$1.XXXXXX")
	CT_NS="kvct-$1-$$"
	export CT CT_NS
	host_net_snapshot >"$CT/host-net.before"
	ip netns add "$CT_NS"
	ip -n "$CT_NS" link set lo up
	"$CLIENTS_DIR/mkimage" "$BUSYBOX_ROOTFS" "$CT/busybox.tar" busybox:latest
	mkdir -p "$CT/bin"
	# Where the README's configurations say kvrun is: the build here. The
	# suite's VM templates (tests/run-integration) live in a temp dir that
	# the daemons' environment may not pass on (conmon's does not), so the
	# path the clients are given sets it.
	if [ -n "${KVRUN_TEMPLATE_DIR:-}" ]; then
		printf '#!/bin/sh\nKVRUN_TEMPLATE_DIR=%q exec %q "$@"\n' \
			"$KVRUN_TEMPLATE_DIR" "$KVRUN" >"$CT/bin/kvrun"
		chmod 755 "$CT/bin/kvrun"
	else
		ln -s "$KVRUN" "$CT/bin/kvrun"
	fi
}

# clients_template ARGS: a template of one more VM shape the client's
# defaults give (e.g. Docker's --memory 256m: 384M), when the suite makes
# templates; else those containers boot cold.
function clients_template() {
	[ -n "${KVRUN_TEMPLATE_DIR:-}" ] || return 0
	"$KVRUN" template create "$@" >&2 || echo "template create $* failed" >&2
}

# in_ns CMD...: run CMD in the suite's network namespace (mounts as usual).
function in_ns() {
	nsenter --net="/run/netns/$CT_NS" "$@"
}

# start_daemon NAME PIDFILE SOCKET CMD...: start a daemon in the namespace,
# in a session of its own, logging to $CT/NAME.log (none of bats' fds
# open: bats waits for those), and wait until its socket answers. PIDFILE
# gets its pid (setsid and nsenter exec, so $! is the daemon).
function start_daemon() {
	local name=$1 pidfile=$2 sock=$3
	shift 3
	setsid nsenter --net="/run/netns/$CT_NS" "$@" </dev/null >>"$CT/$name.log" 2>&1 3>&- 4>&- &
	echo $! >"$pidfile"
	local i
	for i in $(seq 150); do
		[ -S "$sock" ] && return 0
		kill -0 "$(cat "$pidfile")" 2>/dev/null || break
		sleep 0.2
	done
	tail -20 "$CT/$name.log" >&2
	fail "$name did not start"
}

# stop_daemon PIDFILE: SIGTERM, then SIGKILL after 20 s; the daemon's pid
# is the one we started (setsid keeps it).
function stop_daemon() {
	local pidfile=$1 pid i
	pid=$(cat "$pidfile" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# kvrun's processes started under a state root (their command lines name it).
function kvrun_procs_under() {
	pgrep -af 'kvrun-(shim|vmm) ' | grep -F -- "$1" || true
}

# check_kvrun_clean ROOT [ID...]: fails if kvrun left anything under ROOT
# (the --root the client gave kvrun), or of the containers ID... only:
# state directories, shims or VMMs (given 10 s to go), host cgroups.
function check_kvrun_clean() {
	local root=$1 i p="" id
	shift
	local where=("$root/")
	[ $# -eq 0 ] || where=("${@/#/$root/}")
	for i in $(seq 50); do
		p=$(for id in "${where[@]}"; do kvrun_procs_under "$id"; done)
		[ -z "$p" ] && break
		sleep 0.2
	done
	[ -z "$p" ] || fail "kvrun processes left: $p"
	local left=""
	if [ $# -eq 0 ] && [ -d "$root" ]; then
		left=$(find "$root" -mindepth 1 -maxdepth 1 -printf '%f ')
	fi
	for id in "$@"; do
		[ ! -e "$root/$id" ] || left+="$id "
		check_no_cgroup "$id"
	done
	[ -z "$left" ] || fail "kvrun state left under $root: $left"
}

# Fails if a cgroup named after a container id is left in any hierarchy
# (<id>, <prefix>-<id> or a <prefix>-<id>.scope: cgroupfs and systemd names).
function check_no_cgroup() {
	local id=$1 left
	left=$(find /sys/fs/cgroup -type d \( -name "$id" -o -name "*-$id" -o -name "*-$id.scope" \) \
		2>/dev/null | head -5)
	[ -z "$left" ] || fail "cgroups left: $left"
}

# Fails if the host's links, addresses or routes changed since clients_setup.
function check_host_net() {
	host_net_snapshot >"$CT/host-net.after"
	diff -u "$CT/host-net.before" "$CT/host-net.after" >&2 ||
		fail "the host's network changed"
}

# Mounts of the suite's temp dir still present (in any mount namespace we
# can see: ours).
function check_no_mounts_under() {
	local left
	left=$(awk -v d="$1" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | head -5)
	[ -z "$left" ] || fail "mounts left: $left"
}

function clients_teardown() {
	[ -n "${CT_NS:-}" ] && ip netns del "$CT_NS" 2>/dev/null
	if [ -n "${CT:-}" ] && [ -d "$CT" ]; then
		# Leftover mounts of a failed run, innermost first.
		awk -v d="$CT" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
			while read -r m; do umount -l "$m" 2>/dev/null; done
		rm -rf "$CT"
	fi
}

# t SECONDS CMD...: bats `run` with a timeout, printing the command, its
# status and output on failure (as helpers.bash's kvrun wrapper does).
function t() {
	local expect=()
	if [[ "${1:-}" =~ ^(-[0-9]+|!)$ ]]; then
		expect=("$1")
		shift
	fi
	local rc=0
	if declare -F "$1" >/dev/null; then
		# A wrapper of ours (c, p): it puts the timeout on the client itself.
		run "${expect[@]}" "$@" || rc=$?
	else
		run "${expect[@]}" timeout --kill-after=5 "$CLIENT_TIMEOUT" "$@" || rc=$?
	fi
	echo "$* (status=$status):" >&2
	printf '%s\n' "$output" >&2
	return "$rc"
}

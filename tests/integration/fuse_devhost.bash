# shellcheck shell=bash
# tests/fuse-devhost (the VMM's virtio-fs server behind /dev/fuse), started
# and stopped for fuse_host.bats and agent_layers.bats.

DEVHOST=${BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}/tests/fuse-devhost

# devhost_serve MNT DIR SPEC...: the server on MNT with kvrun-vmm's --fs
# specs (one tag), its output in DIR/devhost.{out,err}; sets SERVER_PID and
# returns once it is mounted (its "ready"), or fails showing its errors.
function devhost_serve() {
	local mnt=$1 dir=$2 args=() s _
	shift 2
	for s in "$@"; do
		args+=(--fs "$s")
	done
	"$DEVHOST" "$mnt" "${args[@]}" >"$dir/devhost.out" 2>"$dir/devhost.err" &
	SERVER_PID=$!
	for _ in $(seq 50); do
		grep -q ready "$dir/devhost.out" 2>/dev/null && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$dir/devhost.err" >&2
	return 1
}

# devhost_wait_gone PID: true once it has exited (5 s at most). Unmounted,
# the server sees ENODEV and exits by itself.
function devhost_wait_gone() {
	local _
	for _ in $(seq 50); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# devhost_stop: after the unmount, the server gone (killed if it stays).
function devhost_stop() {
	[ -n "${SERVER_PID:-}" ] || return 0
	devhost_wait_gone "$SERVER_PID" || kill -9 "$SERVER_PID" 2>/dev/null || true
}

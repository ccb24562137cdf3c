#!/usr/bin/env bats
# One container, one VM, many checks: started once (run -d with a terminal
# on a console socket) and shared by the tests of this file, which exec into
# it, list, pause, resume, sample and finally kill it. Booting a VM per test
# would cost tens of seconds each on a PVM host.

load helpers

function setup_file() {
	# setup() skips every test, with the reason, when one does not hold.
	[ -z "$(requirement_missing jq kvm busybox recvtty)" ] || return 0
	setup_bundle
	update_config '.process.terminal = true
		| .process.args = ["sh", "-c", "echo ready; while :; do sleep 1; done"]'
	"$RECVTTY" "$BUNDLE/tty.sock" >"$BUNDLE/tty.out" 2>&1 3>&- &
	wait_for 10 test -S "$BUNDLE/tty.sock"
	kvrun_detached -0 run -d --console-socket "$BUNDLE/tty.sock" --pid-file "$BUNDLE/pid" shared
}

function teardown_file() {
	[ -n "${KVRUN_ROOT:-}" ] || return 0
	__kvrun delete --force shared >/dev/null 2>&1 || true
	teardown_bundle
}

function setup() {
	requires jq kvm busybox recvtty
	cd "$BUNDLE" || return 1
}

# After each test: the container's own shim and VMM, nothing else (no exec
# shim left running).
function teardown() {
	local i n
	for i in $(seq 50); do
		n=$(kvrun_procs | wc -l)
		[ "$n" -le 2 ] && return 0
		sleep 0.1
	done
	kvrun_procs >&2
	fail "exec shims left behind"
}

@test "run -d --console-socket: the init's terminal reaches the socket's owner" {
	kvrun -0 state shared
	[ "$(jq -r .status <<<"$output")" = running ]
	[ "$(jq -r .pid <<<"$output")" = "$(cat "$BUNDLE/pid")" ]
	wait_for 60 grep -q ready "$BUNDLE/tty.out"
}

@test "exec: exit codes, stdout and stderr" {
	kvrun -0 exec shared true
	[ -z "$output" ]
	kvrun -3 exec shared sh -c 'echo out; echo err >&2; exit 3'
	[[ "$output" == *out* ]]
	[[ "$output" == *err* ]]
	kvrun -137 exec shared sh -c 'kill -KILL $$'
	# A process that cannot start is exec's own failure: 255, as runc.
	kvrun -255 exec shared /nonexistent
	[[ "$output" == *"exec failed: "*nonexistent* ]]
}

@test "exec: env, cwd, user, --cap, and a process.json" {
	kvrun -0 exec -e FOO=bar --cwd /tmp -u 1000:1000 shared sh -c 'echo "$FOO $PWD $(id -u):$(id -g)"'
	[ "$output" = "bar /tmp 1000:1000" ]
	# runc 1.1 ignores an unknown --cap with a warning, and the exec goes on.
	kvrun -0 exec --cap CAP_NOPE shared sh -c 'echo ran'
	[[ "$output" == *"ignoring unknown or unavailable capabilities: [CAP_NOPE]"* ]]
	[ "${lines[-1]}" = ran ]
	# A known one joins the effective set (runc: ambient only where inheritable allows).
	kvrun -0 exec --cap CAP_SYS_ADMIN shared sh -c 'grep CapEff /proc/self/status'
	local eff
	eff=$(awk '{ print $2 }' <<<"$output")
	(((0x$eff >> 21) & 1)) # CAP_SYS_ADMIN
	echo '{"args": ["sh", "-c", "echo $X; exit 4"], "cwd": "/root", "env": ["X=from-json"], "user": {"uid": 0, "gid": 0}}' >"$BUNDLE/proc.json"
	kvrun -4 exec -p "$BUNDLE/proc.json" shared
	[ "$output" = from-json ]
}

@test "exec -t --console-socket: a terminal, its window size forwarded" {
	"$RECVTTY" --resize 30x100 "$BUNDLE/exec.sock" >"$BUNDLE/exec-tty.out" 2>&1 3>&- &
	local rpid=$!
	wait_for 10 test -S "$BUNDLE/exec.sock"
	kvrun -0 exec -t --console-socket "$BUNDLE/exec.sock" shared sh -c 'tty; sleep 3; stty size'
	wait "$rpid"
	cat "$BUNDLE/exec-tty.out" >&2
	grep -q '^/dev/pts/[0-9]' "$BUNDLE/exec-tty.out"
	grep -q '^30 100' "$BUNDLE/exec-tty.out"
}

@test "exec -d --pid-file, ps, and a signal to the exec's shim reaches the process" {
	kvrun_detached -0 exec -d --pid-file "$BUNDLE/xpid" shared sh -c 'trap "exit 9" TERM; while :; do sleep 1; done'
	local xpid
	xpid=$(cat "$BUNDLE/xpid")
	[[ "$(tr '\0' ' ' <"/proc/$xpid/cmdline")" == kvrun-shim* ]]
	# ps [options] runs ps in the container: its processes, by the guest.
	kvrun -0 ps shared
	[[ "${lines[0]}" == *PID* ]]
	[[ "$output" == *"sleep 1"* ]] || [[ "$output" == *"while :"* ]]
	kvrun -0 ps shared -o pid,comm
	[[ "${lines[0]}" == *PID*COMMAND* ]]
	# --format json: the host pids a client looks up (docker top, ctr task
	# ps): the init's shim, the exec's shim, the VMM; all of them exist.
	kvrun -0 ps --format json shared
	[ "$(jq length <<<"$output")" -eq 3 ]
	jq -e --argjson x "$xpid" 'index($x) != null' <<<"$output"
	local p
	for p in $(jq -r '.[]' <<<"$output"); do
		[[ "$(tr '\0' ' ' <"/proc/$p/cmdline")" == *kvrun-* ]]
	done
	kill -TERM "$xpid"
	wait_for 60 bash -c "! kill -0 $xpid 2>/dev/null"
	kvrun -0 ps --format json shared
	[ "$(jq length <<<"$output")" -eq 2 ]
}

@test "exec -d: the caller's stdout sees EOF once the process closes it (and with a console socket, at once)" {
	# runc's container holds the caller's pipe only as long as it keeps it
	# open; a caller reading to EOF (out=$(...)) goes on then.
	run -0 timeout 30 bash -c '"$1" --root "$2" exec -d --pid-file "$3" shared sh -c "echo before; exec >&- 2>&-; sleep 120" | cat' \
		_ "$KVRUN" "$KVRUN_ROOT" "$BUNDLE/eof1.pid"
	[ "$output" = before ]
	"$RECVTTY" "$BUNDLE/eof.sock" >/dev/null 2>&1 3>&- &
	local rpid=$!
	wait_for 10 test -S "$BUNDLE/eof.sock"
	run -0 timeout 30 bash -c '"$1" --root "$2" exec -d -t --pid-file "$4" --console-socket "$3" shared sleep 120 | cat' \
		_ "$KVRUN" "$KVRUN_ROOT" "$BUNDLE/eof.sock" "$BUNDLE/eof2.pid"
	kill "$rpid" 2>/dev/null || true
	# SIGTERM to an exec's shim ends its process in the guest, and the shim.
	kill -TERM "$(cat "$BUNDLE/eof1.pid")" "$(cat "$BUNDLE/eof2.pid")"
}

@test "pause and resume; exec refused while paused" {
	kvrun -0 pause shared
	kvrun -0 state shared
	[ "$(jq -r .status <<<"$output")" = paused ]
	kvrun -255 exec shared true
	[[ "$output" == *"cannot exec in a paused container"* ]]
	kvrun -1 resume c-none
	kvrun -0 resume shared
	kvrun -0 state shared
	[ "$(jq -r .status <<<"$output")" = running ]
	kvrun -1 resume shared
	[[ "$output" == *"container not paused"* ]]
	kvrun -0 exec shared true
}

@test "events --stats: runc's stats object from the guest" {
	kvrun -0 events --stats shared
	[ "$(jq -r .type <<<"$output")" = stats ]
	[ "$(jq -r .id <<<"$output")" = shared ]
	[ "$(jq -r .data.cpu.usage.total <<<"$output")" -gt 0 ]
	[ "$(jq -r .data.memory.usage.usage <<<"$output")" -gt 0 ]
	[ "$(jq -r .data.memory.usage.limit <<<"$output")" -gt 0 ]
}

@test "kill --all stops every process of the container" {
	kvrun_detached -0 exec -d shared sleep 1000
	kvrun -0 kill --all shared KILL
	wait_for 60 status_is shared stopped
	kvrun -0 delete shared
	[ -z "$(kvrun_procs_wait)" ]
}

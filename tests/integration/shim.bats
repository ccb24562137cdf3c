#!/usr/bin/env bats
# kvrun-shim without a VM: kvrun-agent on the host (agent_helpers.bash)
# behind a hybrid vsock stand-in, the shim driven as kvrun drives it
# (shim_driver.py). What it checks is the committed shim, confined: its
# seccomp filter kills it (SIGSYS) on any syscall it does not allow, so each
# lifecycle here ending as it should is the filter's test without KVM.

bats_require_minimum_version 1.5.0
load agent_helpers

setup() {
	reason=$(agent_skip_reason)
	[ -z "$reason" ] || skip "$reason"
	command -v python3 >/dev/null || skip "test requires python3"
	[ -x "$BUILD/kvrun-shim" ] || skip "kvrun-shim not built (make)"
	start_agent
}

teardown() {
	stop_agent
}

# drive SCENARIO: what it saw goes to stderr, shown when the test fails.
function drive() {
	run python3 "$BATS_TEST_DIRNAME/shim_driver.py" "$BUILD" "$AGENT_DIR/agent.sock" "$1"
	echo "$output" >&2
	[ "$status" -eq 0 ]
}

@test "shim: create, start, stdin and output relayed, the exit code; confined (seccomp 2)" {
	drive exit
}

@test "shim: a signal forwarded to the process; one that kills it kills the shim" {
	drive signal
}

@test "shim: exec without a terminal, and with one on a console socket, resized" {
	drive exec
}

@test "shim: a terminal in the foreground" {
	drive tty
}

@test "shim: the VM's owner stops its VMM at the exit, and dies by SIGKILL when it goes first" {
	drive owner
}

@test "shim: the VM's agent goes away: SIGKILL" {
	drive agent-gone
}

@test "shim: ten committed shims of idle containers take under 1 MiB PSS each (by mapping, shown)" {
	drive memory
	echo "$output" | sed -n '/^shim PSS/,/^shim: signal/p' | grep -v '^shim: signal' | sed 's/^/# /' >&3
}

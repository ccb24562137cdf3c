#!/usr/bin/env bats
# The container lifecycle against real microVMs: create, start, state, kill,
# delete and delete --force in every state, with runc's JSON and refusals.
# After each test no kvrun-shim or kvrun-vmm of the test's --root is left
# (teardown_bundle). Tests boot VMs in parallel where they can.

load helpers

function setup() {
	requires jq kvm busybox
	setup_bundle
	# A process that says it started and leaves with 7 on SIGTERM.
	update_config '.process.args = ["sh", "-c", "trap \"echo got-term; exit 7\" TERM; echo started; while :; do sleep 1; done"]'
}

function teardown() {
	teardown_bundle
}

# The container's kvrun-vmm is running (its command line names its state dir).
function has_vmm() {
	pgrep -f "kvrun-vmm .*$KVRUN_ROOT/$1/" >/dev/null
}

function no_vmm() {
	! has_vmm "$1"
}

# Container output arrives through the shim into $BUNDLE/ctr.out.
function ctr_said() {
	grep -qx "$1" "$BUNDLE/ctr.out" 2>/dev/null
}

@test "create, start, state, kill, delete: runc's transitions, field by field" {
	kvrun_detached -0 create --pid-file "$BUNDLE/pid" c1
	[ -z "$output" ]
	local pid
	pid=$(cat "$BUNDLE/pid")
	# The pid is the container's kvrun-shim, in a session of its own.
	[[ "$(tr '\0' ' ' <"/proc/$pid/cmdline")" == kvrun-shim* ]]
	[ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ]
	kvrun -0 state c1
	[ "$(jq -r .ociVersion <<<"$output")" = 1.1.0 ]
	[ "$(jq -r .id <<<"$output")" = c1 ]
	[ "$(jq -r .pid <<<"$output")" = "$pid" ]
	[ "$(jq -r .status <<<"$output")" = created ]
	[ "$(jq -r .bundle <<<"$output")" = "$BUNDLE" ]
	[ "$(jq -r .rootfs <<<"$output")" = "$BUNDLE/rootfs" ]
	[[ "$(jq -r .created <<<"$output")" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$ ]]
	[ "$(jq -r .owner <<<"$output")" = "" ]
	# Created: the process exists in the guest but has not run.
	! ctr_said started || false
	kvrun -1 start c2
	kvrun -0 start c1
	[ -z "$output" ]
	kvrun -0 state c1
	[ "$(jq -r .status <<<"$output")" = running ]
	[ "$(jq -r .pid <<<"$output")" = "$pid" ]
	kvrun -1 start c1
	[[ "$output" == *"cannot start an already running container"* ]]
	kvrun -0 list
	[[ "${lines[1]}" =~ ^c1\ +$pid\ +running\ +$BUNDLE\  ]]
	wait_for 60 ctr_said started
	# SIGTERM by name reaches the process in the guest: it leaves with 7.
	kvrun -0 kill c1 TERM
	wait_for 60 status_is c1 stopped
	ctr_said got-term
	kvrun -0 state c1
	[ "$(jq -r .pid <<<"$output")" = 0 ]
	[ -z "$(kvrun_procs_wait)" ]
	kvrun -1 kill c1
	[[ "$output" == *"container not running"* ]]
	kvrun -1 start c1
	[[ "$output" == *"cannot start a container that has stopped"* ]]
	kvrun -0 delete c1
	kvrun -1 state c1
	[[ "$output" == *'container "c1" does not exist'* ]]
	[ -z "$(ls -A "$KVRUN_ROOT")" ]
}

@test "delete in every state: created, paused (--force), running (--force), stopped; kill by number; a killed shim takes its VM down" {
	# Whether kvrun's own parent cgroup (/kvrun: no cgroupsPath) was there.
	local had_parent=false
	[ -z "$(find /sys/fs/cgroup -maxdepth 2 -type d -name kvrun)" ] || had_parent=true
	# Five VMs, two or three at a time.
	kvrun_detached -0 create c1 &
	local p1=$! p2
	kvrun_detached -0 run -d c2
	wait "$p1"
	kvrun_detached -0 run -d c3 &
	p1=$!
	kvrun_detached -0 run -d c5 &
	p2=$!
	kvrun_detached -0 run -d c4
	wait "$p1"
	wait "$p2"
	kvrun -0 list -q
	[ "$(sort <<<"$output" | tr '\n' ' ')" = "c1 c2 c3 c4 c5 " ]

	# SIGKILL of the shim on the host: its VMM goes with it (its PID
	# namespace, and PR_SET_PDEATHSIG).
	local shim
	shim=$(__kvrun state c5 | jq .pid)
	has_vmm c5
	kill -9 "$shim"
	wait_for 10 no_vmm c5
	# The shim is PID 1 of its namespace: it is gone once the kernel has
	# ended and reaped the rest of it, a moment after the VMM.
	wait_for 10 status_is c5 stopped
	kvrun -0 delete c5

	# created: runc deletes it without --force, killing the process.
	kvrun -0 delete c1
	kvrun -1 state c1

	# paused: refused, then --force.
	kvrun -0 pause c2
	kvrun -0 state c2
	[ "$(jq -r .status <<<"$output")" = paused ]
	kvrun -1 pause c2
	[[ "$output" == *"container already paused"* ]]
	kvrun -1 delete c2
	[[ "$output" == *"cannot delete container c2 that is not stopped: paused"* ]]
	kvrun -0 delete --force c2
	kvrun -1 state c2

	# running: refused, then --force.
	kvrun -1 delete c3
	[[ "$output" == *"cannot delete container c3 that is not stopped: running"* ]]
	kvrun -0 delete -f c3
	kvrun -1 state c3

	# SIGKILL by number: stopped, then a plain delete.
	kvrun -0 kill c4 9
	wait_for 60 status_is c4 stopped
	kvrun -0 delete c4
	[ -z "$(kvrun_procs_wait)" ]
	[ -z "$(ls -A "$KVRUN_ROOT")" ]
	# /kvrun goes with the last of them, whichever container made it.
	$had_parent || [ -z "$(find /sys/fs/cgroup -maxdepth 2 -type d -name kvrun)" ]
}

@test "bad inputs fail clearly and leave no state, no VM" {
	# A mount the guest cannot make.
	update_config '.mounts += [{"destination": "/nfs", "type": "nfs", "source": "server:/export"}]'
	kvrun -1 create c1
	[[ "$output" == *"mounts[7] (server:/export on /nfs): mount type nfs cannot be provided inside the microVM"* ]]
	update_config 'del(.mounts[7])'
	# A bind source that is neither file nor directory (a socket).
	python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$BUNDLE/sock"
	update_config '.mounts += [{"destination": "/sock", "type": "bind", "source": "'"$BUNDLE"'/sock", "options": ["bind"]}]'
	kvrun -1 create c1
	[[ "$output" == *"mounts[7]: bind source $BUNDLE/sock is not a file or a directory: it cannot be shared with the microVM"* ]]
	update_config 'del(.mounts[7])'
	kvrun -1 create --preserve-fds 2 c1
	[[ "$output" == *"--preserve-fds: file descriptors cannot be passed into a microVM"* ]]
	# A "kernel" that is not one: the VM stops at once; the error says why.
	echo '{"kernel": "'"$BUNDLE"'/config.json", "boot_timeout": 60}' >"$BUNDLE/kvrun.json"
	export KVRUN_CONFIG="$BUNDLE/kvrun.json"
	kvrun_detached -1 create c1
	unset KVRUN_CONFIG
	[[ "$output" == *"the VM stopped while booting"* ]]
	[ -z "$(kvrun_procs_wait)" ]
	[ -z "$(ls -A "$KVRUN_ROOT")" ]
}

@test "run --keep: the stopped container's state stays until delete, as runc's" {
	update_config '.process.args = ["sh", "-c", "echo kept; exit 3"]'
	kvrun -3 run --keep k1
	[[ "$output" == *kept* ]]
	kvrun -0 state k1
	[ "$(jq -r .status <<<"$output")" = stopped ]
	[ "$(jq -r .pid <<<"$output")" = 0 ]
	[ -z "$(kvrun_procs_wait)" ]
	kvrun -0 list -q
	[ "$output" = k1 ]
	kvrun -1 start k1
	[[ "$output" == *"cannot start a container that has stopped"* ]]
	kvrun -0 delete k1
	[ -z "$(ls -A "$KVRUN_ROOT")" ]
}

@test "exec into a created container, as runc allows; the container stays created" {
	kvrun_detached -0 create c1
	kvrun -5 exec c1 sh -c 'echo in-created; exit 5'
	[ "$output" = in-created ]
	kvrun -0 state c1
	[ "$(jq -r .status <<<"$output")" = created ]
	! ctr_said started || false
	kvrun -0 start c1
	wait_for 60 ctr_said started
	kvrun -0 delete -f c1
	[ -z "$(kvrun_procs_wait)" ]
}

@test "a create killed half way leaves nothing that stops create from taking the id again" {
	# A cold boot (no template), so that the create lasts long enough to be
	# killed half way on a fast host too: a clone is done in well under 0.3 s.
	update_config '.process.args = ["true"] | .annotations["io.kvrun.template"] = "false"'
	"$KVRUN" --root "$KVRUN_ROOT" create --bundle "$BUNDLE" c1 </dev/null >/dev/null 2>&1 &
	local pid=$!
	wait_for 60 test -e "$KVRUN_ROOT/c1/state.json"
	sleep 0.1
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" || true
	[ "$(jq -r .status "$KVRUN_ROOT/c1/state.json")" = creating ] ||
		skip "the create finished before it was killed"
	# Its shim undoes the VM (no commit came); the id is free again.
	kvrun_detached -0 create c1
	status_is c1 created
	kvrun -0 delete c1
	[ -z "$(kvrun_procs_wait)" ]
}

#!/usr/bin/env bats
# kill -9 anywhere (README, "How a container runs"): SIGKILL one of a
# container's processes at a time (its kvrun-vmm, its kvrun-shim, a
# `kvrun create` half way, a `kvrun exec` mid-way) and check what a user
# would: the container's state tells the truth, delete works, and nothing is
# left on the host afterwards: no kvrun-shim or kvrun-vmm of the container,
# no state directory, no host cgroup, no tap or ingress qdisc in the
# container's network namespace, no mount under the state directory.
#
# The container runs in a network namespace the test makes (a veth end in
# it), as Docker's or CNI's would be, so that the shim really wires a tap.
# Its VM is a clone of the suite's template when there is one
# (tests/run-integration makes them). Every kvrun call and wait has a
# deadline: a hang fails the test instead of holding the suite.

load helpers

# A hang anywhere fails the test (bats >= 1.7).
export BATS_TEST_TIMEOUT="${BATS_TEST_TIMEOUT:-600}"

function setup() {
	requires root jq kvm busybox
	command -v ip >/dev/null || skip "test requires ip (iproute2)"
	command -v tc >/dev/null || skip "test requires tc (iproute2)"
	setup_bundle
	# Host cgroups are named after the id (/kvrun/<id>), whatever the
	# --root: an id of this test's own, so other runs cannot collide.
	ID="crash-${KVRUN_ROOT##*.}"
	NS="kvcrash-$$-${KVRUN_ROOT##*.}"
	ip netns add "$NS"
	ip -n "$NS" link add c0 type veth peer name t0
	ip -n "$NS" addr add 10.99.8.2/24 dev c0
	ip -n "$NS" link set c0 up
	ip -n "$NS" link set t0 up
	ip -n "$NS" link set lo up
	update_config '.linux.namespaces |= map(if .type == "network"
			then .path = "/run/netns/'"$NS"'" else . end)
		| .process.args = ["sh", "-c", "echo started; while :; do sleep 1; done"]'
	host_net >"$BUNDLE/host-net.before"
	CHILDREN=()
}

function teardown() {
	local p
	# Background kvrun commands this test started and may have left.
	for p in "${CHILDREN[@]}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	teardown_bundle
	ip netns del "$NS" 2>/dev/null || true
}

# The host's links and addresses, as a user would compare them.
function host_net() {
	{
		ip -o link show | sed 's/^[0-9]*: //' | awk '{ print $1 }' | sort
		ip -o addr show | awk '{ print $2, $3, $4 }' | sort
	} 2>/dev/null
}

# kv SECS [-N|!] args...: kvrun with a deadline (124 when it hangs).
function kv() {
	local t=$1
	shift
	local expect=()
	if [[ "${1:-}" =~ ^(-[0-9]+|!)$ ]]; then
		expect=("$1")
		shift
	fi
	local rc=0
	run "${expect[@]}" timeout -k 5 "$t" "$KVRUN" --root "$KVRUN_ROOT" "$@" || rc=$?
	echo "kvrun $* (status=$status):" >&2
	printf '%s\n' "$output" >&2
	return "$rc"
}

# The container's host processes: its shims and VMM name its state dir.
function procs_of() {
	pgrep -af 'kvrun-(shim|vmm) ' | grep -F -- "$KVRUN_ROOT/$1/" || true
}

function no_procs_of() {
	[ -z "$(procs_of "$1")" ]
}

# The container's host cgroups, in every hierarchy (/kvrun/<id> by default).
function cgroups_of() {
	find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d -path "*/kvrun/$1" 2>/dev/null || true
}

# What of container $1 itself is left on the host, one line each.
function leftovers_own() {
	local id=$1
	procs_of "$id" | sed 's/^/process: /'
	[ ! -e "$KVRUN_ROOT/$id" ] || echo "state dir: $KVRUN_ROOT/$id ($(ls -A "$KVRUN_ROOT/$id" | tr '\n' ' '))"
	cgroups_of "$id" | sed 's/^/cgroup: /'
	grep -F -- "$KVRUN_ROOT/$id" /proc/self/mountinfo | sed 's/^/mount: /'
}

# The same, and what its VM had in the network namespace and on the host.
function leftovers() {
	leftovers_own "$1"
	ip -n "$NS" -o link show 2>/dev/null | grep kvtap | sed 's/^/tap: /'
	[ -z "$(tc -n "$NS" qdisc show dev c0 ingress 2>/dev/null)" ] || echo "ingress qdisc on c0"
	host_net | diff "$BUNDLE/host-net.before" - | grep '^[<>]' | sed 's/^/host net: /'
}

# check_clean [--own] ID: fails, listing them, if anything of container ID
# is left (after giving exiting processes a few seconds). --own: only what
# is its own (a pod member, whose VM and network are the sandbox's).
function check_clean() {
	local what=leftovers
	if [ "$1" = --own ]; then
		what=leftovers_own
		shift
	fi
	local _ left
	for _ in $(seq 50); do
		left=$("$what" "$1")
		[ -z "$left" ] && return 0
		sleep 0.2
	done
	fail "left behind by container $1:
$left"
}

function ctr_said() {
	grep -qx "$1" "$BUNDLE/ctr.out" 2>/dev/null
}

# A running container whose process has printed, and the VM wired.
function run_container() {
	kvrun_detached -0 run -d --pid-file "$BUNDLE/pid" "$1"
	wait_for 60 ctr_said started
	# What check_clean looks for is there while it runs (else it proves
	# nothing): its shim and VMM, its host cgroup, its tap.
	[ "$(procs_of "$1" | wc -l)" -eq 2 ]
	[ -n "$(cgroups_of "$1")" ]
	ip -n "$NS" -o link show | grep -q kvtap
	# Its shim, confined once committed, keeps CAP_NET_ADMIN (it removes
	# the ingress qdisc at exit) and CAP_KILL (its VMM runs as the jail's
	# uid), nothing else, under its seccomp filter.
	local st="/proc/$(cat "$BUNDLE/pid")/status"
	grep -qx $'CapEff:\t0000000000001020' "$st"
	grep -qx $'CapBnd:\t0000000000001020' "$st"
	grep -qx $'NoNewPrivs:\t1' "$st"
	grep -qx $'Seccomp:\t2' "$st"
}

# Container $1's kvrun-vmm as the host sees it (while its VM boots, before
# kvrun records it in vmm.pid: the shim's own pids are its namespace's).
function vmm_pid() {
	procs_of "$1" | awk '$2 ~ /kvrun-vmm$/ { print $1; exit }'
}

function vmm_running() {
	[ -n "$(vmm_pid "$1")" ]
}

@test "crash: kvrun-vmm killed while the container runs: stopped, deleted, nothing left" {
	run_container "$ID"
	local shim vmm
	shim=$(cat "$BUNDLE/pid")
	vmm=$(recorded_pid "$ID" vmm.pid)
	[[ "$(tr '\0' ' ' <"/proc/$vmm/cmdline")" == *kvrun-vmm* ]]
	kill -9 "$vmm"
	# The shim notices: the container stops (and is not "running" forever).
	wait_for 30 status_is "$ID" stopped
	wait_for 10 bash -c "! kill -0 $shim 2>/dev/null"
	kv 30 -0 state "$ID"
	[ "$(jq -r .pid <<<"$output")" = 0 ]
	kv 30 -0 delete "$ID"
	kv 30 -1 state "$ID"
	check_clean "$ID"
}

@test "crash: kvrun-shim killed while the container runs: its VMM goes, stopped, deleted, nothing left" {
	run_container "$ID"
	local shim vmm
	shim=$(cat "$BUNDLE/pid")
	vmm=$(recorded_pid "$ID" vmm.pid)
	kill -9 "$shim"
	# No orphaned VM: the VMM dies with its shim (its PID namespace ends).
	wait_for 10 bash -c "! kill -0 $vmm 2>/dev/null"
	wait_for 30 status_is "$ID" stopped
	kv 30 -1 start "$ID"
	kv 30 -0 delete "$ID"
	check_clean "$ID"
}

@test "crash: kvrun-shim killed, then delete --force without waiting: nothing left" {
	run_container "$ID"
	kill -9 "$(cat "$BUNDLE/pid")"
	kv 60 -0 delete --force "$ID"
	check_clean "$ID"
}

# Start `kvrun create` in the background; its pid in $CREATE.
function create_bg() {
	(
		exec "$KVRUN" --root "$KVRUN_ROOT" create --pid-file "$BUNDLE/pid" "$1" \
			</dev/null >>"$BUNDLE/ctr.out" 2>>"$BUNDLE/create.err"
	) &
	CREATE=$!
	CHILDREN+=("$CREATE")
}

# Kill the create in $CREATE; after that a create of the same id works (it
# replaces what the dead one left), then delete leaves nothing.
function after_killed_create() {
	kill -9 "$CREATE" 2>/dev/null || true
	local rc=0
	wait "$CREATE" 2>/dev/null || rc=$?
	if [ "$rc" -eq 0 ]; then
		# The create was done before the kill (a clone is quick): a
		# container like any other.
		echo "# (create had finished)" >&2
		kv 30 -0 state "$ID"
		[ "$(jq -r .status <<<"$output")" = created ]
		kv 60 -0 delete "$ID"
		check_clean "$ID"
		return
	fi
	# Without its commit the shim undoes everything: no VM outlives a dead create.
	wait_for 60 no_procs_of "$ID" || {
		procs_of "$ID" >&2
		false
	}
	kvrun_detached -0 create "$ID"
	kv 30 -0 state "$ID"
	[ "$(jq -r .status <<<"$output")" = created ]
	kv 30 -0 start "$ID"
	wait_for 60 ctr_said started
	kv 60 -0 delete --force "$ID"
	check_clean "$ID"
}

@test "crash: kvrun create killed after 0.2 s, 1 s, 2 s: the id can be created again, nothing left" {
	local t
	for t in 0.2 1 2; do
		echo "# create killed after $t s" >&2
		create_bg "$ID"
		sleep "$t"
		after_killed_create
		rm -f "$BUNDLE/ctr.out"
	done
}

@test "crash: kvrun create killed once its shim runs, and once its VMM runs" {
	local f
	for f in shim vmm; do
		echo "# create killed once its $f runs" >&2
		create_bg "$ID"
		if [ "$f" = shim ]; then
			wait_for 60 test -s "$KVRUN_ROOT/$ID/shim.pid"
		else
			wait_for 60 vmm_running "$ID"
		fi
		after_killed_create
		rm -f "$BUNDLE/ctr.out"
	done
}

@test "crash: kvrun create killed while a cold VM boots: its shim and VMM go at once" {
	# No template: the boot is the long window (tens of seconds on a PVM
	# host) in which kvrun may die before the shim has anything to answer.
	update_config '.annotations["io.kvrun.template"] = "false"'
	create_bg "$ID"
	wait_for 60 vmm_running "$ID"
	sleep 1
	# Still booting (else this proves nothing): no answer yet.
	kill -0 "$CREATE"
	[ ! -e "$BUNDLE/pid" ]
	kill -9 "$CREATE"
	wait "$CREATE" 2>/dev/null || true
	# The shim does not boot a VM for nobody until its boot timeout.
	wait_for 5 no_procs_of "$ID" || {
		procs_of "$ID" >&2
		false
	}
	kv 60 -0 delete "$ID"
	check_clean "$ID"
}

@test "crash: kvrun-shim killed while its cold VM leaves a template: no half template left" {
	# A template directory of its own, empty: the VM boots cold and its
	# shim snapshots it into a template (.tmp-* renamed into place).
	export KVRUN_TEMPLATE_DIR="$BATS_TEST_TMPDIR/templates"
	mkdir -p "$KVRUN_TEMPLATE_DIR"
	create_bg "$ID"
	local _
	for _ in $(seq 15000); do
		compgen -G "$KVRUN_TEMPLATE_DIR/.tmp-*" >/dev/null && break
		sleep 0.02
	done
	compgen -G "$KVRUN_TEMPLATE_DIR/.tmp-*" >/dev/null || skip "the snapshot was missed"
	kill -9 "$(recorded_pid "$ID" shim.pid)"
	timeout 60 tail --pid="$CREATE" -f /dev/null
	wait "$CREATE" && fail "create succeeded without its shim"
	check_clean "$ID"
	ls -la "$KVRUN_TEMPLATE_DIR" >&2
	[ -z "$(find "$KVRUN_TEMPLATE_DIR" -mindepth 1 -maxdepth 1 -name '.tmp-*')" ]
}

@test "crash: a create that fails once its VM runs (--pid-file cannot be written) leaves nothing" {
	# Not through bats' run: a shim left behind would hold its pipe.
	local rc=0
	timeout -k 5 120 "$KVRUN" --root "$KVRUN_ROOT" create --pid-file "$BUNDLE/no-such-dir/pid" \
		"$ID" </dev/null >/dev/null 2>"$BUNDLE/create.err" || rc=$?
	cat "$BUNDLE/create.err" >&2
	[ "$rc" -eq 1 ]
	grep -qF "$BUNDLE/no-such-dir/pid" "$BUNDLE/create.err"
	kv 30 -1 state "$ID"
	check_clean "$ID"
}

@test "crash: kvrun create killed in a createRuntime hook (VM up, no commit): delete --force leaves nothing" {
	# The hook says it runs, then waits long enough to be killed in.
	update_config '.hooks.createRuntime = [{"path": "/bin/sh",
		"args": ["sh", "-c", "echo $$ >'"$BUNDLE"'/hook.pid; exec sleep 20"]}]'
	create_bg "$ID"
	wait_for 60 test -s "$BUNDLE/hook.pid"
	CHILDREN+=("$(cat "$BUNDLE/hook.pid")")
	kill -9 "$CREATE"
	wait "$CREATE" 2>/dev/null || true
	wait_for 60 no_procs_of "$ID"
	# What a dead create left is nobody's container: state must not say it
	# runs, and delete --force cleans it.
	kv 30 state "$ID"
	if [ "$status" -eq 0 ]; then
		[ "$(jq -r .status <<<"$output")" != running ]
	fi
	kv 60 -0 delete --force "$ID"
	check_clean "$ID"
}

@test "crash: kvrun-shim killed while create boots its VM: create fails, nothing left, the id works again" {
	create_bg "$ID"
	wait_for 60 vmm_running "$ID"
	wait_for 10 test -s "$KVRUN_ROOT/$ID/shim.pid"
	kill -9 "$(recorded_pid "$ID" shim.pid)"
	local rc=0
	timeout 60 tail --pid="$CREATE" -f /dev/null || rc=$?
	[ "$rc" -eq 0 ] # create ended
	wait "$CREATE" && fail "create succeeded without its shim"
	cat "$BUNDLE/create.err" >&2
	check_clean "$ID"
	kvrun_detached -0 create "$ID"
	kv 60 -0 delete "$ID"
	check_clean "$ID"
}

@test "crash: kvrun-vmm killed while create boots it: create ends, delete leaves nothing" {
	create_bg "$ID"
	wait_for 60 vmm_running "$ID"
	kill -9 "$(vmm_pid "$ID")"
	# Either way is honest: the create fails, or its shim boots the VM anew
	# (cold: tens of seconds on a PVM host).
	local rc=0
	timeout 300 tail --pid="$CREATE" -f /dev/null || rc=$?
	[ "$rc" -eq 0 ]
	rc=0
	wait "$CREATE" || rc=$?
	echo "# create exited $rc: $(cat "$BUNDLE/create.err")" >&2
	if [ "$rc" -eq 0 ]; then
		# It succeeded: its VM is a new one (the clone's cold fallback),
		# or the VMM died after the agent answered and the container
		# stops; never "created" with no VM behind it.
		local vmm
		vmm=$(recorded_pid "$ID" vmm.pid)
		if kill -0 "$vmm" 2>/dev/null; then
			kv 30 -0 state "$ID"
			[ "$(jq -r .status <<<"$output")" = created ]
		else
			wait_for 30 status_is "$ID" stopped
		fi
	fi
	kv 60 -0 delete --force "$ID"
	check_clean "$ID"
}

@test "crash: kvrun start killed in a startContainer hook: still created, a later start runs it" {
	update_config '.hooks.startContainer = [{"path": "/bin/sh",
		"args": ["sh", "-c", "[ -e '"$BUNDLE"'/hook.pid ] && exit 0; echo $$ >'"$BUNDLE"'/hook.pid; exec sleep 20"]}]'
	kvrun_detached -0 create "$ID"
	(exec "$KVRUN" --root "$KVRUN_ROOT" start "$ID" </dev/null >/dev/null 2>&1) &
	local st=$!
	CHILDREN+=("$st")
	wait_for 60 test -s "$BUNDLE/hook.pid"
	CHILDREN+=("$(cat "$BUNDLE/hook.pid")")
	kill -9 "$st"
	wait "$st" 2>/dev/null || true
	kv 30 -0 state "$ID"
	[ "$(jq -r .status <<<"$output")" = created ]
	! ctr_said started || fail "the process ran without its start"
	# The hook's second run passes at once (hook.pid exists).
	kv 60 -0 start "$ID"
	wait_for 60 ctr_said started
	kv 30 -0 state "$ID"
	[ "$(jq -r .status <<<"$output")" = running ]
	kv 60 -0 delete --force "$ID"
	check_clean "$ID"
}

@test "crash: kvrun start killed after the guest started the process, before the state said so: start says running" {
	# The window between the agent's answer and state.json (microseconds)
	# is hit by starting the process through the agent directly, as the
	# killed start had: state.json still says created.
	kvrun_detached -0 create "$ID"
	run -0 timeout 60 "$REPO_ROOT/build/tests/agent-client" "hvsock:$KVRUN_ROOT/$ID/vsock.sock" \
		call start "{\"container\":\"$ID\"}"
	wait_for 60 ctr_said started
	kv 30 -0 state "$ID"
	[ "$(jq -r .status <<<"$output")" = created ]
	# The next start learns it from the agent: refused as runc refuses a
	# running container, and the state says running from then on.
	kv 60 -1 start "$ID"
	[[ "$output" == *"cannot start an already running container"* ]]
	kv 30 -0 state "$ID"
	[ "$(jq -r .status <<<"$output")" = running ]
	kv 60 -0 delete --force "$ID"
	check_clean "$ID"
}

@test "crash: kvrun delete killed mid-way: state is not running, delete again leaves nothing" {
	local t
	for t in 0.05 0.2; do
		run_container "$ID"
		(exec "$KVRUN" --root "$KVRUN_ROOT" delete --force "$ID" </dev/null >/dev/null 2>&1) &
		local d=$!
		CHILDREN+=("$d")
		sleep "$t"
		kill -9 "$d" 2>/dev/null || true
		wait "$d" 2>/dev/null || true
		kv 30 state "$ID"
		if [ "$status" -eq 0 ]; then
			[ "$(jq -r .status <<<"$output")" = stopped ]
		fi
		kv 60 -0 delete --force "$ID"
		check_clean "$ID"
		rm -f "$BUNDLE/ctr.out"
	done
}

@test "crash: kvrun pause killed mid-way: paused or running, resume and delete leave nothing" {
	local t
	for t in 0.02 0.1; do
		run_container "$ID"
		(exec "$KVRUN" --root "$KVRUN_ROOT" pause "$ID" </dev/null >/dev/null 2>&1) &
		local p=$!
		CHILDREN+=("$p")
		sleep "$t"
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
		kv 30 -0 state "$ID"
		local st
		st=$(jq -r .status <<<"$output")
		[ "$st" = paused ] || [ "$st" = running ]
		# Whichever it is, the container goes on from there.
		[ "$st" = running ] || kv 30 -0 resume "$ID"
		status_is "$ID" running
		kv 60 -0 delete --force "$ID"
		check_clean "$ID"
		rm -f "$BUNDLE/ctr.out"
	done
}

@test "crash: kvrun-vmm killed while the container is paused: stopped, deleted, nothing left" {
	run_container "$ID"
	kv 30 -0 pause "$ID"
	status_is "$ID" paused
	local shim vmm
	shim=$(cat "$BUNDLE/pid")
	vmm=$(recorded_pid "$ID" vmm.pid)
	kill -9 "$vmm"
	wait_for 30 status_is "$ID" stopped
	wait_for 10 bash -c "! kill -0 $shim 2>/dev/null"
	kv 30 -1 resume "$ID"
	kv 30 -0 delete "$ID"
	check_clean "$ID"
}

@test "crash: kvrun exec killed mid-way: the container keeps running, a later exec works" {
	run_container "$ID"
	(
		exec "$KVRUN" --root "$KVRUN_ROOT" exec "$ID" sh -c 'echo exec-started; sleep 600' \
			</dev/null >"$BUNDLE/exec.out" 2>&1
	) &
	local ex=$!
	CHILDREN+=("$ex")
	wait_for 60 grep -q exec-started "$BUNDLE/exec.out"
	kill -9 "$ex"
	wait "$ex" 2>/dev/null || true
	kv 30 -0 state "$ID"
	[ "$(jq -r .status <<<"$output")" = running ]
	kv 60 -0 exec "$ID" echo exec-again
	[[ "$output" == *exec-again* ]]
	kv 30 -0 state "$ID"
	[ "$(jq -r .status <<<"$output")" = running ]
	# delete --force takes the orphaned exec's shim too.
	kv 60 -0 delete --force "$ID"
	check_clean "$ID"
}

@test "crash: kvrun exec killed while it sets up: the container keeps running, a later exec works" {
	run_container "$ID"
	local t
	for t in 0.05 0.3; do
		(
			exec "$KVRUN" --root "$KVRUN_ROOT" exec "$ID" sh -c 'echo exec-started; sleep 600' \
				</dev/null >"$BUNDLE/exec.out" 2>&1
		) &
		local ex=$!
		CHILDREN+=("$ex")
		sleep "$t"
		kill -9 "$ex"
		wait "$ex" 2>/dev/null || true
	done
	kv 30 -0 state "$ID"
	[ "$(jq -r .status <<<"$output")" = running ]
	kv 60 -0 exec "$ID" echo exec-again
	[[ "$output" == *exec-again* ]]
	kv 60 -0 delete --force "$ID"
	check_clean "$ID"
}

# The fds of the pod's VMM open on the member's bundle (its shares).
function vmm_fds_of_member() {
	find "/proc/$(recorded_pid "$ID" vmm.pid)/fd" -lname "$BUNDLE/m/*" 2>/dev/null
}

# A pod: the sandbox $ID (its VM) and a member $ID-m joining it.
function run_pod() {
	update_config '.annotations = {"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "'"$ID"'"}'
	run_container "$ID"
	mkdir "$BUNDLE/m"
	cp -a "$BUNDLE/rootfs" "$BUNDLE/m/rootfs"
	cp "$BUNDLE/config.json" "$BUNDLE/m/config.json"
	update_config '.annotations = {"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "'"$ID"'"}
		| .root.readonly = false
		| .process.args = ["sh", "-c", "echo member-started; while :; do sleep 1; done"]' "$BUNDLE/m"
	kvrun_detached -0 run -d --bundle "$BUNDLE/m" "$ID-m"
	wait_for 60 ctr_said member-started
	[ "$(procs_of "$ID-m" | wc -l)" -eq 1 ]
	# Its root is a live share of the pod's VM.
	[ -n "$(vmm_fds_of_member)" ]
}

@test "crash: pod: the sandbox's kvrun-vmm killed: the member stops too, deletes leave nothing" {
	run_pod
	kill -9 "$(recorded_pid "$ID" vmm.pid)"
	wait_for 30 status_is "$ID" stopped
	wait_for 30 status_is "$ID-m" stopped
	kv 60 -0 delete "$ID-m"
	kv 60 -0 delete "$ID"
	check_clean "$ID-m"
	check_clean "$ID"
}

@test "crash: pod: a member's kvrun-shim killed: it stops, the pod goes on, deletes leave nothing" {
	run_pod
	kill -9 "$(recorded_pid "$ID-m" shim.pid)"
	wait_for 30 status_is "$ID-m" stopped
	kv 30 -0 state "$ID"
	[ "$(jq -r .status <<<"$output")" = running ]
	kv 60 -0 delete "$ID-m"
	check_clean --own "$ID-m"
	# The pod's VM let go of the member's shares (its root).
	[ -z "$(vmm_fds_of_member)" ]
	kv 60 -0 exec "$ID" echo pod-alive
	[[ "$output" == *pod-alive* ]]
	kv 60 -0 delete --force "$ID"
	check_clean "$ID"
}

#!/usr/bin/env bats
# linux.resources applied by the agent inside the VM, where the cgroup v2
# hierarchy is the guest's own (the hosts here are cgroup v1 hybrid, so
# agent.bats cannot check these on the host): memory.max and pids.max in the
# container's cgroup, an OOM kill reported by `kvrun events` as runc reports
# it, and a fork refused at the pids limit. One VM for the file's checks;
# a clone when the suite made templates (the annotation keeps the VM at the
# templates' 256 MiB shape whatever the limit).

load helpers

function setup() {
	requires jq kvm busybox
	setup_bundle
	# The init forks nothing once started: at the pids limit it must live on.
	update_config '.process.args = ["sh", "-c", "echo ready; exec sleep 100000"]
		| .annotations = {"io.kvrun.vm.memory": "256M"}
		| .linux.resources.memory = {"limit": 8388608}
		| .linux.resources.pids = {"limit": 12}'
}

function teardown() {
	[ -n "${EVPID:-}" ] && kill "$EVPID" 2>/dev/null
	teardown_bundle
}

@test "resources: memory.max and pids.max in the guest's cgroup v2; an OOM kill is an event; fork refused at the limit" {
	kvrun_detached -0 run -d c1
	wait_for 60 grep -qx ready "$BUNDLE/ctr.out"

	# The limits, read by the container from its own cgroup (a cgroup
	# namespace: /sys/fs/cgroup is the container's cgroup).
	kvrun -0 exec c1 sh -c 'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max'
	[ "${lines[0]}" = 8388608 ]
	[ "${lines[1]}" = 12 ]

	# runc's `events`: stats at each interval, {"type":"oom"} when the
	# kernel's OOM killer ends a process of the container.
	__kvrun events --interval 60s c1 >"$BUNDLE/events" 2>&1 &
	EVPID=$!
	wait_for 60 grep -q '"type":"stats"' "$BUNDLE/events"
	# dd's 16 MiB buffer, filled from /dev/zero, is twice the limit.
	kvrun -137 exec c1 dd if=/dev/zero of=/dev/null bs=16M count=1
	wait_for 60 grep -qx '{"type":"oom","id":"c1"}' "$BUNDLE/events"
	# The container's init lived through it: only dd was chosen.
	kvrun -0 state c1
	[ "$(jq -r .status <<<"$output")" = running ]
	kvrun -0 events --stats c1
	[ "$(jq -r .data.memory.usage.limit <<<"$output")" = 8388608 ]

	# pids.max: with the init, the shell below and 10 sleeps the cgroup is
	# full; the next fork fails, the shell leaves, init and sleeps stay.
	kvrun ! exec c1 sh -c 'i=0; while [ $i -lt 20 ]; do sleep 600 & i=$((i + 1)); done'
	[[ "$output" == *"can't fork"* ]]
	kvrun -0 events --stats c1
	[ "$(jq -r .data.pids.current <<<"$output")" -eq 11 ]
	kvrun -0 state c1
	[ "$(jq -r .status <<<"$output")" = running ]

	kill "$EVPID"
	EVPID=""
	kvrun -0 delete --force c1
	[ -z "$(kvrun_procs_wait)" ]
}

#!/usr/bin/env bats
# 100 containers one after the other, as containerd drives kvrun (create,
# state, start, state until stopped, delete), in template clones: nothing
# may grow from one to the next (issue 16). What is counted before and after:
# kvrun processes, mounts, the host cgroups kvrun makes, network links,
# state under --root, the files of the template directory, and the
# host's open file handles (file-nr, which also counts everyone else's: a
# margin of 256). Every 25 cycles, and at the end, the counts are shown.

load helpers

CYCLES=${KVRUN_TEST_CYCLES:-100}

function setup() {
	requires jq kvm busybox root
	setup_bundle
	update_config '.process.args = ["true"]'
}

function teardown() {
	teardown_bundle
}

# One line of what must not grow.
function counts() {
	local procs mounts cgroups links state tmpl
	procs=$(pgrep -c -f 'kvrun-(shim|vmm) ' || true)
	mounts=$(wc -l </proc/self/mountinfo)
	cgroups=$(find /sys/fs/cgroup -type d -path '*kvrun*' 2>/dev/null | wc -l)
	links=$(ip -o link show 2>/dev/null | wc -l)
	state=$(find "$KVRUN_ROOT" -mindepth 1 | wc -l)
	tmpl=$(find "${KVRUN_TEMPLATE_DIR:-/var/lib/kvrun/templates}" 2>/dev/null | wc -l)
	echo "procs=$procs mounts=$mounts cgroups=$cgroups links=$links state=$state templates=$tmpl"
}

function file_handles() {
	awk '{print $1}' /proc/sys/fs/file-nr
}

@test "cycles: $CYCLES create/start/delete in clones leave nothing growing" {
	# The first one may leave a template of this shape (kept, counted after it).
	kvrun -0 run c0
	kvrun -0 delete --force c0 2>/dev/null || true
	local before fbefore n after fafter
	before=$(counts)
	fbefore=$(file_handles)
	echo "# before: $before files=$fbefore" >&3
	# (n, not i: bats 1.8's `run -N` sets a global i, the caller's if
	# it is local, and looped here forever)
	for ((n = 1; n <= CYCLES; n++)); do
		kvrun_detached -0 create "c$n"
		status_is "c$n" created || fail "c$n after create: $(__kvrun state "c$n" 2>&1; cat "$KVRUN_ROOT/c$n/shim.log" 2>&1 | tail -5)"
		kvrun -0 start "c$n"
		wait_for 60 status_is "c$n" stopped
		kvrun -0 delete "c$n"
		if ((n % 25 == 0)); then
			echo "# after $n: $(counts) files=$(file_handles)" >&3
		fi
	done
	after=$(counts)
	fafter=$(file_handles)
	echo "# after: $after files=$fafter" >&3
	[ "$after" = "$before" ] || fail "grew: before $before, after $after"
	((fafter - fbefore < 256)) || fail "open file handles: $fbefore before, $fafter after"
	[ -z "$(kvrun_procs_wait)" ]
}

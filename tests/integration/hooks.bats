#!/usr/bin/env bats
# OCI hooks around a microVM container: the order runc runs them in, and the
# state each one reads on stdin. prestart, createRuntime and createContainer
# run once the guest has created the process (the VM booted, the process
# blocked before exec); startContainer runs on the host just before the
# process is released (a host program cannot run inside the guest).

load helpers

function setup() {
	requires jq kvm busybox
	setup_bundle
	cat >"$BUNDLE/hook.sh" <<HOOK
#!/bin/sh
s=\$(cat)
echo "\$1 \$(echo "\$s" | jq -r .status) \$(echo "\$s" | jq -r '.pid // 0') \$(echo "\$s" | jq -r .id)" >>"$BUNDLE/hooks.log"
exit \${2:-0}
HOOK
	chmod +x "$BUNDLE/hook.sh"
}

function teardown() {
	teardown_bundle
}

function hook() {
	echo '{"path": "'"$BUNDLE"'/hook.sh", "args": ["hook.sh", "'"$1"'", "'"${2:-0}"'"]}'
}

@test "hooks fire in order, each with the right state" {
	update_config '.process.args = ["true"] | .hooks = {
		"prestart": ['"$(hook prestart)"'], "createRuntime": ['"$(hook createRuntime)"'],
		"createContainer": ['"$(hook createContainer)"'], "startContainer": ['"$(hook startContainer)"'],
		"poststart": ['"$(hook poststart)"'], "poststop": ['"$(hook poststop)"']}'
	kvrun_detached -0 create --pid-file "$BUNDLE/pid" c1
	local pid
	pid=$(cat "$BUNDLE/pid")
	kvrun -0 start c1
	wait_for 60 status_is c1 stopped
	kvrun -0 delete c1
	cat "$BUNDLE/hooks.log" >&2
	run cat "$BUNDLE/hooks.log"
	[ "${#lines[@]}" -eq 6 ]
	[ "${lines[0]}" = "prestart creating $pid c1" ]
	[ "${lines[1]}" = "createRuntime creating $pid c1" ]
	[ "${lines[2]}" = "createContainer creating $pid c1" ]
	[ "${lines[3]}" = "startContainer created $pid c1" ]
	[ "${lines[4]}" = "poststart running $pid c1" ]
	[ "${lines[5]}" = "poststop stopped 0 c1" ]
}

@test "a failing prestart hook fails create; the VM is torn down, no state is left" {
	update_config '.hooks = {"prestart": ['"$(hook prestart 3)"']}'
	kvrun_detached -1 create c1
	[[ "$output" == *"error running prestart hook #0"* ]]
	[ "$(cat "$BUNDLE/hooks.log")" != "" ]
	[ -z "$(kvrun_procs_wait)" ]
	[ -z "$(ls -A "$KVRUN_ROOT")" ]
}

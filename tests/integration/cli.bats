#!/usr/bin/env bats
# kvrun's runc-compatible command line, before the microVM backend exists:
# the documents it prints, its refusals (runc's words, exit status 1, no
# state left behind), and the state machine over hand-written state.

load helpers

function setup() {
	requires jq
	setup_bundle
	# These tests stop at the microVM backend: a config naming no guest
	# kernel makes it refuse at once instead of booting a VM.
	export KVRUN_CONFIG="$BATS_TEST_TMPDIR/kvrun-nokernel.json"
	echo '{"kernel": "/nonexistent/vmlinux"}' >"$KVRUN_CONFIG"
}

function teardown() {
	if [ -n "${SHIM_PID:-}" ]; then
		kill -9 "$SHIM_PID" 2>/dev/null || true
		wait "$SHIM_PID" 2>/dev/null || true
	fi
	teardown_bundle
}

# ----------------------------------------------------------------- version

@test "version prints runc-style lines" {
	kvrun -0 version
	[[ "${lines[0]}" =~ ^kvrun\ version\ [0-9]+\.[0-9]+\.[0-9]+ ]]
	[[ "${lines[1]}" =~ ^spec:\ 1\.[0-9]+\.[0-9]+$ ]]
	[[ "${lines[2]}" =~ ^libseccomp:\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
	kvrun -0 --version
	[ "${lines[0]}" = "$(__kvrun version | head -n1)" ]
}

@test "kvrun image runs kvrun-image; kvrun itself loads no libarchive (each call stays cheap)" {
	command -v ldd >/dev/null || skip "ldd not installed"
	run ldd "$KVRUN"
	[[ "$output" != *libarchive* ]]
	run ldd "$(dirname "$KVRUN")/kvrun-image"
	[[ "$output" == *libarchive* ]]
	KVRUN_IMAGE_STORE="$BATS_TEST_TMPDIR/store" kvrun -0 image ls --format json
	[ "$output" = "[]" ]
	# A bad option is reported by kvrun-image as kvrun's own.
	kvrun -1 image ls --bogus
	[[ "$output" == *bogus* ]]
}

# -------------------------------------------------------------------- spec

@test "spec writes runc's default config.json" {
	rm config.json
	kvrun -0 spec
	[ -z "$output" ]
	run -0 jq -r '.ociVersion' config.json
	[[ "$output" =~ ^1\.[0-9]+\.[0-9]+$ ]]
	run -0 jq -c '.process | [.terminal, .args, .cwd, .user.uid, .noNewPrivileges]' config.json
	[ "$output" = '[true,["sh"],"/",0,true]' ]
	run -0 jq -c '.root' config.json
	[ "$output" = '{"path":"rootfs","readonly":true}' ]
	run -0 jq -c '[.mounts[].destination]' config.json
	[ "$output" = '["/proc","/dev","/dev/pts","/dev/shm","/dev/mqueue","/sys","/sys/fs/cgroup"]' ]
	run -0 jq -c '[.linux.namespaces[].type]' config.json
	[ "$output" = '["pid","network","ipc","uts","mount","cgroup"]' ]
	run -0 jq -c '.linux.resources.devices' config.json
	[ "$output" = '[{"allow":false,"access":"rwm"}]' ]
	# Tab-indented, no newline at the end: as runc writes it.
	run -0 head -c 3 config.json
	[ "$output" = $'{\n\t' ]
	[ "$(tail -c 1 config.json)" = "}" ]
}

@test "spec has runc's layout (field order compared with runc spec)" {
	requires runc
	rm config.json
	kvrun -0 spec
	mkdir runc-bundle
	run -0 runc spec --bundle runc-bundle
	local f
	for f in '.' '.process' '.process.user' '.root' '.mounts[1]' '.linux' '.process.rlimits[0]'; do
		[ "$(jq -c "$f | keys_unsorted" config.json)" = "$(jq -c "$f | keys_unsorted - [\"ambient\"]" runc-bundle/config.json)" ] ||
			fail "key order differs at $f"
	done
	# The same indentation, line for line, where the values agree.
	[ "$(sed -n 3,4p config.json)" = "$(sed -n 3,4p runc-bundle/config.json)" ]
}

@test "spec refuses to overwrite config.json" {
	kvrun ! spec
	[ "$status" -eq 1 ]
	[[ "$output" == *"File config.json exists. Remove it first"* ]]
}

@test "spec --rootless maps the caller and drops network and resources" {
	rm config.json
	kvrun -0 spec --rootless --bundle "$BUNDLE"
	run -0 jq -c '.linux.uidMappings' config.json
	[ "$output" = "[{\"containerID\":0,\"hostID\":$(id -u),\"size\":1}]" ]
	run -0 jq -c '[.linux.namespaces[].type]' config.json
	[ "$output" = '["pid","ipc","uts","mount","cgroup","user"]' ]
	run -0 jq -c '.linux.resources' config.json
	[ "$output" = "null" ]
	run -0 jq -c '.mounts[] | select(.destination == "/sys")' config.json
	[ "$output" = '{"destination":"/sys","type":"none","source":"/sys","options":["rbind","nosuid","noexec","nodev","ro"]}' ]
}

# ---------------------------------------------------------------- features

@test "features has runc's shape, filled for kvrun" {
	kvrun -0 features
	echo "$output" | jq -e . >/dev/null
	[ "$(echo "$output" | jq -r .ociVersionMin)" = "1.0.0" ]
	[ "$(echo "$output" | jq -c .hooks)" = '["prestart","createRuntime","createContainer","startContainer","poststart","poststop"]' ]
	[ "$(echo "$output" | jq -r '.linux.namespaces | index("pid") != null')" = true ]
	[ "$(echo "$output" | jq -c .linux.cgroup)" = '{"v1":false,"v2":true,"systemd":false,"systemdUser":false}' ]
	[ "$(echo "$output" | jq -r .linux.seccomp.enabled)" = true ]
	[ "$(echo "$output" | jq -r '.linux.seccomp.archs | index("SCMP_ARCH_X86_64") != null')" = true ]
	[ "$(echo "$output" | jq -r .linux.apparmor.enabled)" = false ]
	[ "$(echo "$output" | jq -r '.linux.capabilities | length')" -ge 41 ]
	[ -n "$(echo "$output" | jq -r '.annotations["io.github.seccomp.libseccomp.version"]')" ]
	[[ "$(echo "$output" | jq -r '.annotations["dev.kvrun.network"]')" == *Ethernet* ]]
}

@test "features has the same keys as runc features" {
	requires runc
	run -0 runc features
	local theirs="$output"
	kvrun -0 features
	for f in '.' '.linux' '.linux.seccomp'; do
		[ "$(echo "$output" | jq -c "$f | keys")" = "$(echo "$theirs" | jq -c "$f | keys")" ] ||
			fail "keys differ at $f"
	done
}

# ------------------------------------------------------- unknown containers

@test "state of an unknown container fails like runc" {
	kvrun -1 state nonexistent
	[[ "$output" == *'container "nonexistent" does not exist'* ]]
	requires runc
	run -1 runc --root "$KVRUN_ROOT" state nonexistent
}

@test "start, kill, pause, resume, exec, ps, events, update of an unknown container fail" {
	local cmd
	for cmd in start kill pause resume ps events update; do
		kvrun -1 "$cmd" nonexistent
		[[ "$output" == *'container "nonexistent" does not exist'* ]]
	done
	kvrun -255 exec nonexistent true
	[[ "$output" == *'exec failed: container "nonexistent" does not exist'* ]]
}

@test "delete of an unknown container fails; delete --force succeeds silently" {
	kvrun -1 delete nonexistent
	[[ "$output" == *'container "nonexistent" does not exist'* ]]
	kvrun -0 delete --force nonexistent
	[ -z "$output" ]
	kvrun -0 delete -f nonexistent
}

@test "list with no containers" {
	kvrun -0 list
	[ "$output" = "ID          PID         STATUS      BUNDLE      CREATED     OWNER" ]
	kvrun -0 list --format json
	[ "$output" = "null" ]
	kvrun -0 list -q
	[ -z "$output" ]
	kvrun -1 list --format yaml
	[[ "$output" == *"invalid format option"* ]]
}

# ------------------------------------------------------------------ create

@test "create refuses invalid ids and leaves no state" {
	local id
	for id in "a/b" ".." "." "a b" "x:y" "../escape"; do
		kvrun -1 create "$id"
		[[ "$output" == *"invalid container ID format"* ]]
	done
	kvrun -1 state "a/b"
	[[ "$output" == *"invalid container ID format"* ]]
}

@test "create with a missing bundle fails and leaves no state" {
	kvrun -1 create --bundle /nonexistent/bundle c1
	[[ "$output" == *"bundle /nonexistent/bundle: No such file or directory"* ]]
	mkdir "$BUNDLE/empty"
	kvrun -1 create -b "$BUNDLE/empty" c1
	[[ "$output" == *"JSON specification file $BUNDLE/empty/config.json not found"* ]]
}

@test "create with malformed config.json fails with the JSON path, leaving no state" {
	cp config.json good.json
	echo '{"ociVersion": "1.0.2", "process": ' >config.json
	kvrun -1 create c1
	[[ "$output" == *"$BUNDLE/config.json: invalid JSON"* ]]

	jq '.process.args = "sh"' good.json >config.json
	kvrun -1 create c1
	[[ "$output" == *"$BUNDLE/config.json: process.args: must be a non-empty array"* ]]

	jq '.mounts[2].destination = "dev/pts"' good.json >config.json
	kvrun -1 create c1
	[[ "$output" == *"$BUNDLE/config.json: mounts[2].destination: must be an absolute path"* ]]

	jq '.linux.namespaces[2].type = "foo"' good.json >config.json
	kvrun -1 create c1
	[[ "$output" == *'linux.namespaces[2].type: unknown namespace "foo"'* ]]

	jq 'del(.ociVersion)' good.json >config.json
	kvrun -1 create c1
	[[ "$output" == *"ociVersion: required field is missing"* ]]

	jq '.process.rlimits[0].type = "RLIMIT_BOGUS"' good.json >config.json
	kvrun -1 create c1
	[[ "$output" == *'process.rlimits[0].type: unknown rlimit "RLIMIT_BOGUS"'* ]]

	head -c 5000000 /dev/zero | tr '\0' ' ' >config.json
	kvrun -1 create c1
	[[ "$output" == *"larger than"* ]]
}

@test "create refuses a namespaced sysctl without its namespace, naming the key, as runc" {
	update_config '.linux.sysctl = {"kernel.shmmax": "1", "net.ipv4.ip_forward": "1"}
		| del(.linux.namespaces[] | select(.type == "network"))'
	kvrun -1 create c1
	[[ "$output" == *"$BUNDLE/config.json: linux.sysctl: \"net.ipv4.ip_forward\" requires a new network namespace"* ]]
	[ -z "$(ls -A "$KVRUN_ROOT")" ]
	update_config '.linux.sysctl = {"fs.mqueue.msg_max": "10"} | del(.linux.namespaces[] | select(.type == "ipc"))'
	kvrun -1 create c1
	[[ "$output" == *'linux.sysctl: "fs.mqueue.msg_max" requires a new ipc namespace'* ]]
	requires runc
	run -1 runc --root "$KVRUN_ROOT" create c1
	[[ "$output" == *'fs.mqueue.msg_max'*"is not allowed in the hosts ipc namespace"* ]]
}

@test "create checks the rootfs and the terminal rules like runc" {
	jq '.root.path = "missing-rootfs"' config.json >c.json && mv c.json config.json
	kvrun -1 create c1
	[[ "$output" == *"rootfs $BUNDLE/missing-rootfs: No such file or directory"* ]]
	update_config '.root.path = "rootfs" | .process.terminal = true'
	kvrun -1 create c1
	[[ "$output" == *"cannot allocate tty if kvrun will detach without setting console socket"* ]]
}

@test "create checks bind mount sources on the host" {
	update_config '.mounts += [{"destination":"/data","type":"bind","source":"/nonexistent/vol","options":["rbind","ro"]}]'
	kvrun -1 create c1
	[[ "$output" == *"$BUNDLE/config.json: mounts[7].source: /nonexistent/vol: No such file or directory"* ]]
	update_config '.mounts[7].source = "rel-vol"'
	kvrun -1 create c1
	[[ "$output" == *"mounts[7].source: $BUNDLE/rel-vol: No such file or directory"* ]]
	mkdir "$BUNDLE/rel-vol"
	kvrun -1 create c1
	[[ "$output" == *"guest kernel /nonexistent/vmlinux or image "*" not found"* ]]
}

@test "create that the microVM backend refuses leaves no state" {
	kvrun -1 create --pid-file "$BUNDLE/pid" c1
	[[ "$output" == *"guest kernel /nonexistent/vmlinux or image "*" not found"* ]]
	[ ! -e "$BUNDLE/pid" ]
	kvrun -1 state c1
	kvrun -1 run c1
	[[ "$output" == *"guest kernel /nonexistent/vmlinux or image "*" not found"* ]]
}

@test "create of an existing id fails and keeps the existing container" {
	fake_container dup stopped 0
	kvrun -1 create dup
	[[ "$output" == *"container with id exists: dup"* ]]
	[ -e "$KVRUN_ROOT/dup/state.json" ]
	kvrun -0 delete dup
	[ ! -e "$KVRUN_ROOT/dup" ]
}

# ------------------------------------------------- state machine, hand-made

@test "state and list show a live container as runc does" {
	sleep 1000 &
	SHIM_PID=$!
	fake_container c1 created "$SHIM_PID"
	kvrun -0 state c1
	[ "$(echo "$output" | jq -c keys_unsorted)" = '["ociVersion","id","pid","status","bundle","rootfs","created","owner"]' ]
	[ "$(echo "$output" | jq -r .pid)" = "$SHIM_PID" ]
	[ "$(echo "$output" | jq -r .status)" = created ]
	[ "$(echo "$output" | jq -r .bundle)" = "$BUNDLE" ]
	[ "$(echo "$output" | jq -r .created)" = "2024-01-02T03:04:05.123456789Z" ]
	[ "$(echo "$output" | jq -r .owner)" = "" ]
	[ "${lines[1]}" = '  "ociVersion": "1.1.0",' ]

	kvrun -0 list
	[[ "${lines[1]}" =~ ^c1\ +$SHIM_PID\ +created\ +$BUNDLE\ +2024-01-02T03:04:05.123456789Z\ +$(id -un)$ ]]
	kvrun -0 list --format json
	[ "$(echo "$output" | jq -r '.[0].owner')" = "$(id -un)" ]
	kvrun -0 list -q
	[ "$output" = c1 ]

	kvrun -0 kill c1 KILL
	wait "$SHIM_PID" || true
	SHIM_PID=
	kvrun -0 state c1
	[ "$(echo "$output" | jq -r .status)" = stopped ]
	[ "$(echo "$output" | jq -r .pid)" = 0 ]
	kvrun -1 kill c1
	[[ "$output" == *"container not running"* ]]
	kvrun -1 start c1
	[[ "$output" == *"cannot start a container that has stopped"* ]]
	kvrun -255 exec c1 true
	[[ "$output" == *"cannot exec in a stopped container"* ]]
	kvrun -0 delete c1
}

@test "list sorts by id, as runc: table, -q and JSON" {
	local id
	# Made in an order readdir does not sort (bytewise: upper case first).
	for id in c2 a10 b a2 B c1; do
		fake_container "$id" stopped 0
	done
	kvrun -0 list -q
	[ "$(echo $output)" = "B a10 a2 b c1 c2" ]
	kvrun -0 list
	[ "$(tail -n +2 <<<"$output" | awk '{ print $1 }' | xargs)" = "B a10 a2 b c1 c2" ]
	kvrun -0 list --format json
	[ "$(jq -r '[.[].id] | join(" ")' <<<"$output")" = "B a10 a2 b c1 c2" ]
	for id in c2 a10 b a2 B c1; do
		kvrun -0 delete "$id"
	done
}

@test "delete of a running container needs --force, which kills and cleans up" {
	sleep 1000 &
	SHIM_PID=$!
	fake_container c1 running "$SHIM_PID"
	kvrun -1 delete c1
	[[ "$output" == *"cannot delete container c1 that is not stopped: running"* ]]
	kvrun -1 start c1
	[[ "$output" == *"cannot start an already running container"* ]]
	kvrun -1 resume c1
	[[ "$output" == *"container not paused"* ]]
	kvrun -0 delete --force c1
	! kill -0 "$SHIM_PID" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$SHIM_PID/stat")" = Z ]
	wait "$SHIM_PID" || true
	SHIM_PID=
	[ ! -e "$KVRUN_ROOT/c1" ]
}

@test "a recorded pid that was reused reads as stopped" {
	sleep 1000 &
	SHIM_PID=$!
	fake_container c1 running "$SHIM_PID"
	sed -i 's/"pidStartTime":[0-9]*/"pidStartTime":1/' "$KVRUN_ROOT/c1/state.json"
	kvrun -0 state c1
	[ "$(echo "$output" | jq -r .status)" = stopped ]
	kvrun -0 delete c1
	kill -0 "$SHIM_PID" # not ours to kill: it is some other process now
}

@test "corrupt state.json gives an error naming the file" {
	fake_container c1 stopped 0
	echo '{"kvrunState":1,"id":' >"$KVRUN_ROOT/c1/state.json"
	kvrun -1 state c1
	[[ "$output" == *"$KVRUN_ROOT/c1/state.json: corrupt state: invalid JSON"* ]]
	echo '{"kvrunState":1,"id":"c1"}' >"$KVRUN_ROOT/c1/state.json"
	kvrun -1 state c1
	[[ "$output" == *"$KVRUN_ROOT/c1/state.json: corrupt state: ociVersion: required field is missing"* ]]
	kvrun -0 list
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[0]}" == "load container c1: "* ]]
	rm -rf "$KVRUN_ROOT/c1"
}

# ------------------------------------------------------- flags and logging

@test "kill takes runc's signal names and numbers" {
	sleep 1000 &
	SHIM_PID=$!
	fake_container c1 running "$SHIM_PID"
	kvrun -1 kill c1 FOO
	[[ "$output" == *'unknown signal "FOO"'* ]]
	kvrun -0 kill c1 sigcont
	kvrun -0 kill c1 18
	kvrun -0 kill c1 SIGUSR1
	wait "$SHIM_PID" || [ $? -eq $((128 + 10)) ]
	SHIM_PID=
	kvrun -0 delete c1
}

@test "kill 0 checks liveness; kill --all of a stopped container succeeds (runc)" {
	sleep 1000 &
	SHIM_PID=$!
	fake_container c1 running "$SHIM_PID"
	kvrun -0 kill c1 0
	[ -z "$output" ]
	kill -0 "$SHIM_PID" # signal 0 delivers nothing
	kvrun -0 kill c1 KILL
	wait "$SHIM_PID" || true
	SHIM_PID=
	kvrun -1 kill c1 0
	[[ "$output" == *"container not running"* ]]
	kvrun -1 kill c1 KILL
	[[ "$output" == *"container not running"* ]]
	kvrun -0 kill --all c1 KILL
	kvrun -0 kill -a c1
	[ -z "$output" ]
	kvrun -0 delete c1
}

@test "usage errors exit 1 with runc's message" {
	kvrun -1 create
	[[ "$output" == *'"create" requires exactly 1 argument(s)'* ]]
	kvrun -1 delete a b
	[[ "$output" == *'"delete" requires exactly 1 argument(s)'* ]]
	kvrun -1 kill
	[[ "$output" == *'"kill" requires a minimum of 1 argument(s)'* ]]
	kvrun -1 nosuchcommand
	[[ "$output" == *"'nosuchcommand' is not a kvrun command"* ]]
	run -1 "$KVRUN" --root / list
	[[ "$output" == *"Option --root argument should not be set to /"* ]]
	kvrun -1 --log-format yaml list
	[[ "$output" == *"invalid log-format: yaml"* ]]
}

@test "--log with --log-format json writes runc's JSON log lines" {
	kvrun -1 --log "$BUNDLE/log.json" --log-format json state nonexistent
	# The error goes to stderr as well when the log is a file (runc does this).
	[[ "$output" == *'container "nonexistent" does not exist'* ]]
	run -0 jq -r '.level + " " + .msg' "$BUNDLE/log.json"
	[ "$output" = 'error container "nonexistent" does not exist' ]
	run -0 jq -r .time "$BUNDLE/log.json"
	[[ "$output" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$ ]]
}

@test "global flags runc users pass are accepted" {
	kvrun -0 --systemd-cgroup --rootless=auto --debug list
	kvrun -0 --rootless false list
}

@test "update and exec validate their input before anything else" {
	sleep 1000 &
	SHIM_PID=$!
	fake_container c1 running "$SHIM_PID"
	echo '{"memory":{"limit":"lots"}}' >res.json
	kvrun -1 update -r res.json c1
	[[ "$output" == *"res.json: memory.limit: must be an integer"* ]]
	kvrun -1 update --memory lots c1
	[[ "$output" == *"invalid value for --memory: lots"* ]]
	# Valid input goes on to the VM, which a fake container has not.
	kvrun -1 update --memory 256M --pids-limit 10 c1
	[[ "$output" == *"update container c1: the size of its VM"* ]]
	echo '{"args":[],"cwd":"/"}' >proc.json
	kvrun -255 exec -p proc.json c1
	[[ "$output" == *"proc.json: args: must be a non-empty array"* ]]
	# An unknown --cap is dropped with runc's warning, not refused: the exec
	# goes on, to the VM that is missing here.
	kvrun -255 exec --cap CAP_NOPE --cap CAP_KILL --cap CAP_X c1 true
	[[ "$output" == *"ignoring unknown or unavailable capabilities: [CAP_NOPE CAP_X]"* ]]
	[[ "$output" != *'unknown capability'* ]]
	[[ "$output" == *"the sandbox's VM ($KVRUN_ROOT/c1)"* ]]
	# No VM behind the fake container: the exec's shim cannot reach one.
	kvrun -255 exec c1 true
	[[ "$output" == *"the sandbox's VM ($KVRUN_ROOT/c1)"* ]]
	kvrun -0 delete -f c1
	wait "$SHIM_PID" || true
	SHIM_PID=
}

@test "exec's own failures exit 255 as runc's do; usage errors exit 1" {
	requires runc
	# runc: fatalWithCode(..., 255) for whatever stops exec itself.
	run -255 runc --root "$KVRUN_ROOT" exec nonexistent true
	kvrun -255 exec nonexistent true
	sleep 1000 &
	SHIM_PID=$!
	fake_container c1 paused "$SHIM_PID"
	kvrun -255 exec c1 true
	[[ "$output" == *"exec failed: cannot exec in a paused container (use --ignore-paused to override)"* ]]
	kvrun -255 exec --ignore-paused -u nobody c1 true
	[[ "$output" == *"invalid --user nobody"* ]]
	kvrun -255 exec --ignore-paused -t -d c1 true
	[[ "$output" == *"cannot allocate tty if kvrun will detach without setting console socket"* ]]
	# Bad usage is not an exec failure: exit 1, as runc's checkArgs.
	kvrun -1 exec
	[[ "$output" == *'"exec" requires a minimum of 1 argument(s)'* ]]
	kvrun -1 exec --no-such-flag c1 true
	kvrun -0 delete -f c1
	wait "$SHIM_PID" || true
	SHIM_PID=
}

@test "exec --cgroup is refused, naming the flag, not ignored" {
	sleep 1000 &
	SHIM_PID=$!
	fake_container c1 running "$SHIM_PID"
	kvrun -255 exec --cgroup sub c1 true
	[[ "$output" == *"exec failed: --cgroup sub: "*"sub-cgroup is not supported"* ]]
	kvrun -255 exec --cgroup cpu:sub -p /nonexistent c1
	[[ "$output" == *"--cgroup cpu:sub"* ]]
	kvrun -0 delete -f c1
	wait "$SHIM_PID" || true
	SHIM_PID=
}

# ------------------------------------------------------------------- check

@test "check reports on /dev/kvm and the CPU, with a verdict" {
	run "$KVRUN" check
	echo "$output" >&2
	[[ "$output" == *"/dev/kvm: "* ]]
	[[ "$output" == *"CPU: "* ]]
	[[ "${lines[-1]}" == "kvrun can"* ]] || [[ "${lines[-1]}" == "kvrun cannot"* ]]
	if [[ "$output" == *"FAIL "* ]]; then [ "$status" -eq 1 ]; else [ "$status" -eq 0 ]; fi
}

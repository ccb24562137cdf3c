#!/usr/bin/env bats
# kvrun-agent on the host: as root, over a Unix socket, in a throwaway
# mount+pid+uts namespace, against the busybox rootfs fixture. The same
# agent is the guest's PID 1; what needs a VM (cgroup v2 controllers) is
# skipped here with the reason.

bats_require_minimum_version 1.5.0
load agent_helpers

setup_file() {
	reason=$(agent_skip_reason)
	if [ -n "$reason" ]; then
		echo "$reason" > "$BATS_FILE_TMPDIR/skip"
		return 0
	fi
	start_agent
	echo "$AGENT_DIR" > "$BATS_FILE_TMPDIR/agent_dir"
}

teardown_file() {
	AGENT_DIR=$(cat "$BATS_FILE_TMPDIR/agent_dir" 2>/dev/null || true)
	stop_agent
}

setup() {
	if [ -f "$BATS_FILE_TMPDIR/skip" ]; then
		skip "$(cat "$BATS_FILE_TMPDIR/skip")"
	fi
	AGENT_DIR=$(cat "$BATS_FILE_TMPDIR/agent_dir")
}

teardown() {
	# Whatever a failed test left running goes, so the next starts clean.
	[ -n "${AGENT_DIR:-}" ] || return 0
	local ids
	ids=$(agent_client call state '{}' 2>/dev/null | jq -r '.containers[].container' 2>/dev/null || true)
	for id in $ids; do
		agent_client call delete "{\"container\":\"$id\",\"force\":true}" >/dev/null 2>&1 || true
	done
}

# create_ctr ID CONFIG [extra params as jq object text]: create without attaching.
create_ctr() {
	local params
	params=$(jq -c --arg id "$1" --slurpfile spec "$2" "{container: \$id, spec: \$spec[0]} + ${3:-{\}}" -n)
	agent_client call create "$params"
}

cgroup_dir() {
	echo "$(cg2_root)/$(cat "$AGENT_DIR/cgparent")/$1"
}

@test "agent: version handshake and ping" {
	run -0 agent_client call version '{"version":1}'
	[ "$(jq -r .version <<<"$output")" = 1 ]
	run -0 agent_client call ping
	[ "$(jq -r .pid <<<"$output")" = 1 ] # PID 1 of its namespace
	run ! agent_client call version '{"version":99}'
	[[ "$output" == EPROTONOSUPPORT:* ]]
	# A verdict: the reason alone, no strerror before the errno name.
	[ "$output" = "EPROTONOSUPPORT: agent version: version: agent speaks 1, not 99 (EPROTONOSUPPORT)" ]
}

@test "agent: create/start/wait reports the exit code" {
	run -3 run_ctr c-exit sh -c 'exit 3'
	run -0 run_ctr c-true true
}

@test "agent: stdout and stderr are separate streams" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sh","-c","echo out; echo err >&2"]'
	run -0 --separate-stderr agent_client run c-stdio "$BATS_TEST_TMPDIR/c.json"
	[ "$output" = out ]
	[ "$stderr" = err ]
}

@test "agent: env, cwd, user, groups and umask" {
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","echo $FOO; pwd; id -u; id -g; id -G; umask"]' \
		'.process.env += ["FOO=bar baz"]' '.process.cwd="/tmp"' \
		'.process.user={"uid":1000,"gid":1001,"additionalGids":[5,7],"umask":63}'
	run -0 agent_client run c-user "$BATS_TEST_TMPDIR/c.json"
	[ "${lines[0]}" = "bar baz" ]
	[ "${lines[1]}" = /tmp ]
	[ "${lines[2]}" = 1000 ]
	[ "${lines[3]}" = 1001 ]
	[ "${lines[4]}" = "1001 5 7" ]
	[ "${lines[5]}" = 0077 ]
}

@test "agent: hostname from the spec, in its own uts namespace" {
	run -0 run_ctr c-host hostname
	[ "$output" = kvtest ]
}

@test "agent: set_hostname names the VM; a container without uts ns sees it" {
	run -0 agent_client call set_hostname '{"hostname":"vm-under-test"}'
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["hostname"]' 'del(.hostname)' \
		'.linux.namespaces=[{"type":"pid"},{"type":"mount"}]'
	run -0 agent_client run c-vmhost "$BATS_TEST_TMPDIR/c.json"
	[ "$output" = vm-under-test ]
}

@test "agent: exec runs in the container's namespaces" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sleep","100"]'
	run -0 create_ctr c-exec "$BATS_TEST_TMPDIR/c.json"
	run -0 agent_client call start '{"container":"c-exec"}'
	run -0 agent_client exec c-exec e1 '{"args":["sh","-c","hostname; cat /proc/1/comm; readlink /proc/self/ns/mnt"],"env":["PATH=/bin"],"cwd":"/"}'
	[ "${lines[0]}" = kvtest ]
	[ "${lines[1]}" = sleep ] # pid 1 of the container's pid namespace
	run -7 agent_client exec c-exec e2 '{"args":["sh","-c","exit 7"],"cwd":"/"}'
	run ! agent_client exec c-exec e2 '{"args":["true"],"cwd":"/"}'
	[[ "$output" == EEXIST:* ]]
	# An exec with a terminal gets a pty in the container's own devpts.
	run -0 agent_client exec c-exec e3 '{"args":["tty"],"cwd":"/","terminal":true}' </dev/null
	[ "$(tr -d '\r' <<<"$output")" = /dev/pts/0 ]
	# A background exec, then signal all: every process of the container goes.
	run -0 agent_client call exec '{"container":"c-exec","exec_id":"bg","process":{"args":["sleep","200"],"cwd":"/"}}'
	run -0 agent_client call kill '{"container":"c-exec","signal":"KILL","all":true}'
	run -0 agent_client call wait '{"container":"c-exec","exec_id":"bg"}'
	[ "$(jq -r .signal_name <<<"$output")" = KILL ]
	run -0 agent_client call wait '{"container":"c-exec"}'
	[ "$(jq -r .signal_name <<<"$output")" = KILL ]
	run -0 agent_client call state '{"container":"c-exec"}'
	[ "$(jq -r .state <<<"$output")" = stopped ]
	[ "$(jq -r '.execs | length' <<<"$output")" = 4 ]
	run -0 agent_client call delete '{"container":"c-exec"}'
}

@test "agent: signals: TERM to a trapping init, KILL reported as the signal, USR1 handled" {
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","trap \"echo usr1\" USR1; trap \"echo term; exit 42\" TERM; echo ready; while :; do sleep 0.05; done"]'
	run -0 create_ctr c-sig "$BATS_TEST_TMPDIR/c.json"
	token=$(jq -r .stdio.stdout <<<"$output")
	agent_client stream "$token" </dev/null >"$BATS_TEST_TMPDIR/out" &
	run -0 agent_client call start '{"container":"c-sig"}'
	for _ in $(seq 100); do grep -q ready "$BATS_TEST_TMPDIR/out" && break; sleep 0.05; done
	run -0 agent_client call kill '{"container":"c-sig","signal":"SIGUSR1"}'
	for _ in $(seq 100); do grep -q usr1 "$BATS_TEST_TMPDIR/out" && break; sleep 0.05; done
	run -0 agent_client call state '{"container":"c-sig"}'
	[ "$(jq -r .state <<<"$output")" = running ]
	run -0 agent_client call kill '{"container":"c-sig","signal":15}'
	run -0 agent_client call wait '{"container":"c-sig"}'
	[ "$(jq -r .exit_code <<<"$output")" = 42 ]
	wait
	run cat "$BATS_TEST_TMPDIR/out"
	[ "$output" = "$(printf 'ready\nusr1\nterm')" ]
	agent_client call delete '{"container":"c-sig"}'

	make_config "$BATS_TEST_TMPDIR/k.json" '.process.args=["sleep","100"]'
	run -0 create_ctr c-kill "$BATS_TEST_TMPDIR/k.json"
	run -0 agent_client call start '{"container":"c-kill"}'
	run -0 agent_client call kill '{"container":"c-kill","signal":"KILL"}'
	run -0 agent_client call wait '{"container":"c-kill"}'
	[ "$(jq -r .signal <<<"$output")" = 9 ]
	[ "$(jq -r .status <<<"$output")" = 137 ]
	run -0 agent_client call delete '{"container":"c-kill"}'
}

@test "agent: capabilities, all five sets, read back from /proc/self/status" {
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["grep","^Cap","/proc/self/status"]' \
		'.process.user={"uid":1000,"gid":1000}' \
		'.process.capabilities={"bounding":["CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE"],
		  "effective":["CAP_KILL","CAP_NET_BIND_SERVICE"],
		  "permitted":["CAP_KILL","CAP_NET_BIND_SERVICE"],
		  "inheritable":["CAP_NET_BIND_SERVICE","CAP_CHOWN"],
		  "ambient":["CAP_NET_BIND_SERVICE"]}'
	run -0 agent_client run c-caps "$BATS_TEST_TMPDIR/c.json"
	# CHOWN=0 KILL=5 NET_BIND_SERVICE=10: ambient caps are raised into the
	# new program's permitted and effective sets at exec.
	[[ "$output" == *"CapInh:	0000000000000401"* ]]
	[[ "$output" == *"CapPrm:	0000000000000400"* ]]
	[[ "$output" == *"CapEff:	0000000000000400"* ]]
	[[ "$output" == *"CapBnd:	0000000000000421"* ]]
	[[ "$output" == *"CapAmb:	0000000000000400"* ]]
}

@test "agent: capabilities of a root process, and noNewPrivileges" {
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["grep","-E","^(Cap|NoNewPrivs)","/proc/self/status"]' \
		'.process.noNewPrivileges=true' \
		'.process.capabilities={"bounding":["CAP_SYS_ADMIN"],"effective":["CAP_SYS_ADMIN"],
		  "permitted":["CAP_SYS_ADMIN"]}'
	run -0 agent_client run c-caps0 "$BATS_TEST_TMPDIR/c.json"
	[[ "$output" == *"CapEff:	0000000000200000"* ]]
	[[ "$output" == *"CapBnd:	0000000000200000"* ]]
	[[ "$output" == *"NoNewPrivs:	1"* ]]
}

@test "agent: seccomp: a syscall made to fail with EPERM" {
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","mkdir /tmp/d && echo made; echo rc=$?"]' \
		'.linux.seccomp={"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
		  "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}'
	run -0 agent_client run c-sc1 "$BATS_TEST_TMPDIR/c.json"
	[[ "$output" == *"Operation not permitted"* ]]
	[[ "$output" == *"rc=1"* ]]
	[[ "$output" != *made* ]]
}

@test "agent: seccomp: a syscall that kills the process" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["uname","-a"]' \
		'.linux.seccomp={"defaultAction":"SCMP_ACT_ALLOW",
		  "syscalls":[{"names":["uname"],"action":"SCMP_ACT_KILL_PROCESS"}]}'
	run -159 agent_client run c-sc2 "$BATS_TEST_TMPDIR/c.json" # 128 + SIGSYS
	[[ "$output" == *"signal 31 (SYS)"* ]]
}

@test "agent: seccomp with an argument filter and errnoRet" {
	# Only personality(0xffffffff) (a query) fails, with ENOSYS (38).
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["true"]' \
		'.linux.seccomp={"defaultAction":"SCMP_ACT_ALLOW",
		  "syscalls":[{"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":38,
		   "args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_EQ"}]}]}'
	run -0 agent_client run c-sc3 "$BATS_TEST_TMPDIR/c.json"
}

@test "agent: rlimits" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sh","-c","ulimit -n; ulimit -Hn; ulimit -c"]' \
		'.process.rlimits=[{"type":"RLIMIT_NOFILE","soft":123,"hard":456},
		  {"type":"RLIMIT_CORE","soft":0,"hard":0}]'
	run -0 agent_client run c-rl "$BATS_TEST_TMPDIR/c.json"
	[ "${lines[0]}" = 123 ]
	[ "${lines[1]}" = 456 ]
	[ "${lines[2]}" = 0 ]
}

@test "agent: oomScoreAdj" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["cat","/proc/self/oom_score_adj"]' \
		'.process.oomScoreAdj=500'
	run -0 agent_client run c-oom "$BATS_TEST_TMPDIR/c.json"
	[ "$output" = 500 ]
}

@test "agent: maskedPaths hide files and directories; readonlyPaths are read-only" {
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","wc -c < /proc/cmdline; ls /etc | wc -l; touch /tmp/x 2>&1; echo rc=$?; touch /dev/shm/y && echo shm-ok"]' \
		'.linux.maskedPaths=["/proc/cmdline","/etc","/does/not/exist"]' \
		'.linux.readonlyPaths=["/tmp","/nope"]'
	run -0 agent_client run c-mask "$BATS_TEST_TMPDIR/c.json"
	[ "${lines[0]}" = 0 ]
	[ "${lines[1]}" = 0 ]
	[[ "${lines[2]}" == *"Read-only file system"* ]]
	[ "${lines[3]}" = rc=1 ]
	[ "${lines[4]}" = shm-ok ]
}

@test "agent: root.readonly" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sh","-c","touch /newfile; echo rc=$?"]' \
		'.root.readonly=true'
	run -0 agent_client run c-ro "$BATS_TEST_TMPDIR/c.json"
	[[ "$output" == *"Read-only file system"* ]]
	[ ! -e "$ROOTFS/newfile" ]
}

@test "agent: bind mounts with options, and sysctl" {
	mkdir -p "$BATS_TEST_TMPDIR/share"
	echo shared-data > "$BATS_TEST_TMPDIR/share/f"
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","cat /data/f; touch /data/g 2>&1; echo rc=$?; cat /proc/sys/kernel/msgmax"]' \
		".mounts += [{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"$BATS_TEST_TMPDIR/share\",\"options\":[\"rbind\",\"ro\",\"nosuid\"]}]" \
		'.linux.sysctl={"kernel.msgmax":"12345"}'
	run -0 agent_client run c-bind "$BATS_TEST_TMPDIR/c.json"
	[ "${lines[0]}" = shared-data ]
	[[ "${lines[1]}" == *"Read-only file system"* ]]
	[ "${lines[3]}" = 12345 ]
	[ ! -e "$BATS_TEST_TMPDIR/share/g" ]
}

@test "agent: overlay rootfs stacks directory layers under a tmpfs upper" {
	mkdir -p "$BATS_TEST_TMPDIR/layer/etc"
	echo from-layer > "$BATS_TEST_TMPDIR/layer/etc/motd"
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","cat /etc/motd; echo new > /etc/motd; cat /etc/motd"]'
	rootfs=$(jq -cn --arg b "$ROOTFS" --arg l "$BATS_TEST_TMPDIR/layer" \
		'{type:"overlay",layers:[{path:$b},{path:$l}]}')
	run -0 agent_client run c-ovl "$BATS_TEST_TMPDIR/c.json" --rootfs "$rootfs"
	[ "${lines[0]}" = from-layer ]
	[ "${lines[1]}" = new ]
	[ "$(cat "$BATS_TEST_TMPDIR/layer/etc/motd")" = from-layer ]
}

@test "agent: 20 MiB of stdout arrive intact through a slow reader (back-pressure)" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sh","-c","yes kvrun | head -c 20971520"]'
	want=$(yes kvrun | head -c 20971520 | md5sum)
	got=$(agent_client run c-big "$BATS_TEST_TMPDIR/c.json" | (sleep 1; md5sum))
	[ "$got" = "$want" ]
}

@test "agent: 16 MiB through stdin, then EOF" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sh","-c","md5sum; echo done"]'
	want=$(head -c 16777216 /dev/zero | md5sum | cut -d' ' -f1)
	run -0 bash -c "head -c 16777216 /dev/zero | '$CLIENT_BIN' '$(agent_addr)' run c-in '$BATS_TEST_TMPDIR/c.json' --stdin"
	[[ "${lines[0]}" == "$want"* ]]
	[ "${lines[1]}" = done ]
}

@test "agent: close_stdin ends the input of an attached process" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sh","-c","cat; echo eof"]'
	run -0 create_ctr c-cls "$BATS_TEST_TMPDIR/c.json" '{stdin: true}'
	out=$(jq -r .stdio.stdout <<<"$output")
	agent_client stream "$out" </dev/null >"$BATS_TEST_TMPDIR/out" &
	run -0 agent_client call start '{"container":"c-cls"}'
	run -0 agent_client call close_stdin '{"container":"c-cls"}'
	run -0 agent_client call wait '{"container":"c-cls"}'
	wait
	[ "$(cat "$BATS_TEST_TMPDIR/out")" = eof ]
}

@test "agent: a terminal, with its initial size and a resize" {
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","stty size; tty; sleep 0.5; stty size"]' \
		'.process.terminal=true' '.process.consoleSize={"height":24,"width":80}'
	run -0 agent_client run c-tty "$BATS_TEST_TMPDIR/c.json" --resize 30x100 </dev/null
	lines_clean=$(tr -d '\r' <<<"$output")
	[ "$(sed -n 1p <<<"$lines_clean")" = "24 80" ]
	[ "$(sed -n 2p <<<"$lines_clean")" = /dev/pts/0 ]
	[ "$(sed -n 3p <<<"$lines_clean")" = "30 100" ]
}

@test "agent: terminal input reaches the process" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sh","-c","read x; echo got:$x"]' \
		'.process.terminal=true'
	run -0 bash -c "(sleep 0.3; echo hello) | '$CLIENT_BIN' '$(agent_addr)' run c-tty2 '$BATS_TEST_TMPDIR/c.json' --stdin"
	[[ "$output" == *"got:hello"* ]]
}

@test "agent: pause and resume freeze the container's cgroup" {
	[ "$(stat -f -c %T "$(cg2_root)" 2>/dev/null)" = cgroup2fs ] ||
		skip "no cgroup v2 hierarchy on this host"
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sleep","100"]'
	run -0 create_ctr c-pause "$BATS_TEST_TMPDIR/c.json"
	run -0 agent_client call start '{"container":"c-pause"}'
	run -0 agent_client call pause '{"container":"c-pause"}'
	[ "$(jq -r .state <<<"$output")" = paused ]
	grep -qx 'frozen 1' "$(cgroup_dir c-pause)/cgroup.events"
	run -0 agent_client call state '{"container":"c-pause"}'
	[ "$(jq -r .state <<<"$output")" = paused ]
	run -0 agent_client call resume '{"container":"c-pause"}'
	[ "$(jq -r .state <<<"$output")" = running ]
	grep -qx 'frozen 0' "$(cgroup_dir c-pause)/cgroup.events"
	run -0 agent_client call stats '{"container":"c-pause"}'
	[ "$(jq -r '.meminfo.MemTotal > 0' <<<"$output")" = true ]
	run -0 agent_client call delete '{"container":"c-pause","force":true}'
	[ ! -d "$(cgroup_dir c-pause)" ]
}

@test "agent: memory and pids limits in the container's cgroup" {
	if ! grep -qw memory "$(cg2_root)/cgroup.controllers" 2>/dev/null; then
		# Asking for them is an honest error here, not a silent no-op.
		make_config "$BATS_TEST_TMPDIR/c.json" '.linux.resources={"memory":{"limit":67108864}}'
		run ! create_ctr c-mem "$BATS_TEST_TMPDIR/c.json"
		[[ "$output" == ENOTSUP:*"linux.resources.memory.limit"* ]]
		skip "cgroup v1 hybrid host: memory/pids are v1 controllers; checked in the VM by resources.bats"
	fi
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sh","-c","cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"]' \
		'.linux.resources={"memory":{"limit":67108864},"pids":{"limit":32}}' \
		'.linux.namespaces += [{"type":"cgroup"}]' \
		'.mounts += [{"destination":"/sys/fs/cgroup","type":"cgroup2","source":"cgroup","options":["ro"]}]'
	run -0 agent_client run c-mem "$BATS_TEST_TMPDIR/c.json"
	[ "${lines[0]}" = 67108864 ]
	[ "${lines[1]}" = 32 ]
}

@test "agent: a bad frame, an unknown op and a bad OCI field are answered; the agent stays up" {
	run -0 agent_client raw 'this is not json'
	[ "$(jq -r .error.code <<<"$output")" = EINVAL ]
	[ "$(jq -r .id <<<"$output")" = null ]
	run -0 agent_client raw '[1,2,3]'
	[[ "$(jq -r .error.message <<<"$output")" == *"must be a JSON object"* ]]
	run -0 agent_client raw '{"op":"ping"}'
	[[ "$(jq -r .error.message <<<"$output")" == *"id: missing"* ]]
	run -0 agent_client raw '{"id":5,"op":"frobnicate"}'
	[ "$(jq -r .error.code <<<"$output")" = ENOSYS ]
	[ "$(jq -r .id <<<"$output")" = 5 ]
	run -0 agent_client rawbytes 00200000 # a 2 MiB frame: refused, skipped
	[ "$(jq -r .error.code <<<"$output")" = EMSGSIZE ]
	run -0 agent_client rawbytes 00000000
	[ "$(jq -r .error.code <<<"$output")" = EMSGSIZE ]
	nested=$(printf '[%.0s' $(seq 200))
	run -0 agent_client raw "{\"id\":6,\"op\":\"ping\",\"params\":$nested"
	[ "$(jq -r .error.code <<<"$output")" = EINVAL ]
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=[]'
	run ! create_ctr c-bad "$BATS_TEST_TMPDIR/c.json"
	[[ "$output" == EINVAL:*"process.args: must be a non-empty array"* ]]
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.rlimits=[{"type":"RLIMIT_BOGUS","soft":1,"hard":1}]'
	run ! create_ctr c-bad "$BATS_TEST_TMPDIR/c.json"
	[[ "$output" == *"process.rlimits[0].type: unknown rlimit RLIMIT_BOGUS"* ]]
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.capabilities={"bounding":["CAP_NOPE"]}'
	run ! create_ctr c-bad "$BATS_TEST_TMPDIR/c.json"
	[[ "$output" == *"process.capabilities.bounding[0]: unknown capability CAP_NOPE"* ]]
	run -0 agent_client call ping
}

@test "agent: a container whose setup fails leaves nothing behind" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["true"]' \
		'.mounts += [{"destination":"/data","type":"bind","source":"/nonexistent/src","options":["rbind"]}]'
	run ! create_ctr c-fail "$BATS_TEST_TMPDIR/c.json"
	[[ "$output" == ENOENT:*"mounts[5].source"* ]]
	make_config "$BATS_TEST_TMPDIR/c2.json" '.process.args=["true"]' '.process.cwd="/bin/busybox"'
	run ! create_ctr c-fail "$BATS_TEST_TMPDIR/c2.json"
	[[ "$output" == ENOTDIR:*"process.cwd"* ]]
	make_config "$BATS_TEST_TMPDIR/c3.json" '.process.args=["/bin/no-such-program"]'
	run -0 create_ctr c-fail "$BATS_TEST_TMPDIR/c3.json"
	run ! agent_client call start '{"container":"c-fail"}'
	[[ "$output" == ENOENT:*"process.args: exec /bin/no-such-program"* ]]
	run -0 agent_client call state '{}'
	[ "$(jq -r '.containers | length' <<<"$output")" = 0 ]
	[ ! -d "$(cgroup_dir c-fail)" ]
	# No process of the failed containers is left in the agent's namespace.
	run -0 agent_client call create "$(jq -c -n --slurpfile s "$BATS_TEST_TMPDIR/c3.json" '{container:"c-fail",spec:$s[0]}')"
	run -0 agent_client call delete '{"container":"c-fail","force":true}'
}

@test "agent: exit events are pushed to connected clients" {
	agent_client events 1 >"$BATS_TEST_TMPDIR/ev" &
	evpid=$!
	sleep 0.2
	run -5 run_ctr c-ev sh -c 'exit 5'
	wait "$evpid"
	[ "$(jq -r .event "$BATS_TEST_TMPDIR/ev")" = exit ]
	[ "$(jq -r .container "$BATS_TEST_TMPDIR/ev")" = c-ev ]
	[ "$(jq -r .exit_code "$BATS_TEST_TMPDIR/ev")" = 5 ]
}

@test "agent: add_entropy and set_time validate their input" {
	run -0 agent_client call add_entropy '{"data":"a3ZydW4tdGVzdC1zZWVk","credit_bits":0}'
	run ! agent_client call add_entropy '{"data":"not base64!"}'
	[[ "$output" == EINVAL:* ]]
	run ! agent_client call set_time '{"sec":-1}'
	[[ "$output" == EINVAL:* ]]
	[ "$output" = "EINVAL: agent set_time: set_time: want sec >= 0 and nsec in 0..999999999 (EINVAL)" ]
	run ! agent_client call mount_shared '{"tag":"../etc","type":"virtiofs"}'
	[[ "$output" == EINVAL:*"tag:"* ]]
	[ "$output" = "EINVAL: agent mount_shared: tag: must be 1..36 of [A-Za-z0-9_.-] (EINVAL)" ]
	run ! agent_client call mount_shared '{"tag":"share0","type":"nfs"}'
	[[ "$output" == EINVAL:*"type:"* ]]
	[ "$output" = "EINVAL: agent mount_shared: type: must be virtiofs or 9p (EINVAL)" ]
	run ! agent_client call start '{"container":"nope"}'
	[ "$output" = "ENOENT: agent start: container nope: no such container (ENOENT)" ]
}

@test "agent: orphans are reaped (no zombies under the agent)" {
	# No pid namespace: the daemonized sleeps are reparented to the agent.
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","(sleep 0.2 &) ; (sleep 0.3 &) ; exit 0"]' \
		'.linux.namespaces=[{"type":"mount"},{"type":"uts"}]'
	run -0 agent_client run c-orphans "$BATS_TEST_TMPDIR/c.json"
	sleep 0.8
	agent=$(pgrep -P "$(cat "$AGENT_DIR/unshare.pid")")
	zombies=0
	for st in /proc/[0-9]*/stat; do
		read -r _ _ state ppid _ <"$st" 2>/dev/null || continue
		[ "$ppid" = "$agent" ] && [ "$state" = Z ] && zombies=$((zombies + 1))
	done
	[ "$zombies" = 0 ]
}

@test "agent: a forced delete answers pending waits with the kill" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sleep","100"]'
	run -0 create_ctr c-del "$BATS_TEST_TMPDIR/c.json"
	run -0 agent_client call start '{"container":"c-del"}'
	agent_client call wait '{"container":"c-del"}' >"$BATS_TEST_TMPDIR/w" &
	wpid=$!
	sleep 0.2
	run ! agent_client call delete '{"container":"c-del"}'
	[[ "$output" == EBUSY:* ]]
	run -0 agent_client call delete '{"container":"c-del","force":true}'
	wait "$wpid"
	[ "$(jq -r .signal_name "$BATS_TEST_TMPDIR/w")" = KILL ]
	[ ! -d "$(cgroup_dir c-del)" ]
}

@test "agent: create leaves the process blocked before exec; start releases it" {
	mkdir -p "$BATS_TEST_TMPDIR/mark"
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["touch","/mark/ran"]' \
		".mounts += [{\"destination\":\"/mark\",\"type\":\"bind\",\"source\":\"$BATS_TEST_TMPDIR/mark\",\"options\":[\"rbind\"]}]"
	run -0 create_ctr c-barrier "$BATS_TEST_TMPDIR/c.json"
	run -0 agent_client call state '{"container":"c-barrier"}'
	[ "$(jq -r .state <<<"$output")" = created ]
	sleep 0.3
	[ ! -e "$BATS_TEST_TMPDIR/mark/ran" ]
	run -0 agent_client call start '{"container":"c-barrier"}'
	run -0 agent_client call wait '{"container":"c-barrier"}'
	[ "$(jq -r .exit_code <<<"$output")" = 0 ]
	[ -e "$BATS_TEST_TMPDIR/mark/ran" ]
	run ! agent_client call start '{"container":"c-barrier"}'
	[[ "$output" == EBUSY:* ]]
	run -0 agent_client call delete '{"container":"c-barrier"}'
}

@test "agent: linux.sysctl is written before readonlyPaths make /proc/sys read-only" {
	# Docker sets net.ipv4.ip_unprivileged_port_start, Podman
	# net.ipv4.ping_group_range, with /proc/sys in readonlyPaths (runc's order).
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","cat /proc/sys/kernel/msgmax /proc/sys/net/ipv4/ip_unprivileged_port_start; (echo 1 > /proc/sys/kernel/msgmax) 2>&1; echo rc=$?"]' \
		'.linux.namespaces += [{"type":"network"}]' \
		'.linux.sysctl={"kernel.msgmax":"23456","net.ipv4.ip_unprivileged_port_start":"0"}' \
		'.linux.readonlyPaths=["/proc/sys"]' '.linux.maskedPaths=["/proc/kcore"]'
	run -0 agent_client run c-sysctl-ro "$BATS_TEST_TMPDIR/c.json"
	[ "${lines[0]}" = 23456 ]
	[ "${lines[1]}" = 0 ]
	[[ "${lines[2]}" == *"Read-only file system"* ]]
	[ "${lines[3]}" = rc=1 ]
}

@test "agent: a tmpfs without mode= keeps the mode its mount point had" {
	mkdir -p "$BATS_TEST_TMPDIR/layer/private" "$BATS_TEST_TMPDIR/layer/open"
	chmod 0750 "$BATS_TEST_TMPDIR/layer/private"
	chmod 0755 "$BATS_TEST_TMPDIR/layer/open"
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["stat","-c","%n %a","/private","/open","/tmp"]' \
		'.mounts += [{"destination":"/private","type":"tmpfs","source":"tmpfs","options":["nosuid"]},
		  {"destination":"/open","type":"tmpfs","source":"tmpfs","options":["mode=1777"]}]'
	rootfs=$(jq -cn --arg b "$ROOTFS" --arg l "$BATS_TEST_TMPDIR/layer" \
		'{type:"overlay",layers:[{path:$b},{path:$l}]}')
	run -0 agent_client run c-tmpfs-mode "$BATS_TEST_TMPDIR/c.json" --rootfs "$rootfs"
	[ "${lines[0]}" = "/private 750" ]
	[ "${lines[1]}" = "/open 1777" ] # an explicit mode= wins
	[ "${lines[2]}" = "/tmp 1777" ]
}

@test "agent: a read-only /dev tmpfs is populated, takes its submounts, then goes read-only" {
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","echo x > /dev/null && echo null-ok; touch /dev/shm/y && echo shm-ok; ls /dev/pts/ptmx; (touch /dev/z) 2>&1; grep \" /dev \" /proc/self/mountinfo | cut -d\" \" -f6; touch /run/lock/l && echo lock-ok; (touch /run/r) 2>&1; exit 0"]' \
		'(.mounts[] | select(.destination == "/dev") | .options) += ["ro"]' \
		'.mounts += [{"destination":"/run","type":"tmpfs","source":"tmpfs","options":["ro","mode=755"]},
		  {"destination":"/run/lock","type":"tmpfs","source":"tmpfs"}]'
	run -0 agent_client run c-devro "$BATS_TEST_TMPDIR/c.json"
	[ "${lines[0]}" = null-ok ]
	[ "${lines[1]}" = shm-ok ]
	[ "${lines[2]}" = /dev/pts/ptmx ]
	[[ "${lines[3]}" == *"Read-only file system"* ]]
	[[ "${lines[4]}" == ro,nosuid* ]]
	# Any read-only tmpfs: the same (runc's finalizeRootfs).
	[ "${lines[5]}" = lock-ok ]
	[[ "${lines[6]}" == *"Read-only file system"* ]]
}

@test "agent: an exec that exits at once is reported, even when reaped before its ready" {
	# Its exit and its "ready" can come in one batch of events, the exit
	# first: the process must stay exited, or the wait hangs.
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sleep","100"]'
	run -0 create_ctr c-quick "$BATS_TEST_TMPDIR/c.json"
	run -0 agent_client call start '{"container":"c-quick"}'
	for i in $(seq 40); do
		run -7 agent_client exec c-quick "q$i" '{"args":["sh","-c","exit 7"],"cwd":"/"}'
	done
	run -0 agent_client call delete '{"container":"c-quick","force":true}'
}

# The pid of the agent (the child of unshare), for nsenter into its mounts.
agent_pid() {
	pgrep -P "$(cat "$AGENT_DIR/unshare.pid")"
}

@test "agent: a bind mount has exactly the flags its options give, not its source's" {
	# In the guest, bind sources live on a share mounted nosuid,nodev: a
	# source mounted so in the agent's namespace stands in for it.
	src="$BATS_TEST_TMPDIR/src"
	mkdir -p "$src"
	nsenter -t "$(agent_pid)" -m mount -t tmpfs -o nosuid,nodev,noexec tmpfs "$src"
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","for d in /plain /ro; do awk -v d=$d '\''$5 == d {print d, $6}'\'' /proc/self/mountinfo; done"]' \
		".mounts += [{\"destination\":\"/plain\",\"type\":\"bind\",\"source\":\"$src\",\"options\":[\"rbind\"]},
		  {\"destination\":\"/ro\",\"type\":\"bind\",\"source\":\"$src\",\"options\":[\"rbind\",\"ro\",\"nodev\"]}]"
	run -0 agent_client run c-bindflags "$BATS_TEST_TMPDIR/c.json"
	nsenter -t "$(agent_pid)" -m umount "$src"
	[[ "${lines[0]}" == "/plain rw,"* ]]
	[[ "${lines[0]}" != *nosuid* && "${lines[0]}" != *nodev* && "${lines[0]}" != *noexec* ]]
	[[ "${lines[1]}" == "/ro ro,nodev"* ]]
	[[ "${lines[1]}" != *nosuid* && "${lines[1]}" != *noexec* ]]
}

@test "agent: a bind mount onto a symlink resolves it inside the container's root" {
	mkdir -p "$BATS_TEST_TMPDIR/layer/srv/data" "$BATS_TEST_TMPDIR/layer/srv/up" "$BATS_TEST_TMPDIR/share"
	ln -s /srv/data "$BATS_TEST_TMPDIR/layer/data"
	ln -s ../../../../../srv/up "$BATS_TEST_TMPDIR/layer/up"
	echo shared > "$BATS_TEST_TMPDIR/share/f"
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","cat /srv/data/f /srv/up/f; readlink /data"]' \
		".mounts += [{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"$BATS_TEST_TMPDIR/share\",\"options\":[\"rbind\"]},
		  {\"destination\":\"/up\",\"type\":\"bind\",\"source\":\"$BATS_TEST_TMPDIR/share\",\"options\":[\"rbind\",\"ro\"]}]"
	rootfs=$(jq -cn --arg b "$ROOTFS" --arg l "$BATS_TEST_TMPDIR/layer" \
		'{type:"overlay",layers:[{path:$b},{path:$l}]}')
	run -0 agent_client run c-bindlink "$BATS_TEST_TMPDIR/c.json" --rootfs "$rootfs"
	[ "${lines[0]}" = shared ]
	[ "${lines[1]}" = shared ]
	[ "${lines[2]}" = /srv/data ]
	[ ! -e /srv/data/f ] && [ ! -e /srv/up/f ]
}

@test "agent: a bind mount onto a magic link out of the container is refused" {
	# No pid namespace: /proc/1 is the agent, its root the agent's (the VM's).
	mkdir -p "$BATS_TEST_TMPDIR/layer" "$BATS_TEST_TMPDIR/share" "$BATS_TEST_TMPDIR/outside"
	ln -s "/proc/1/root$BATS_TEST_TMPDIR/outside" "$BATS_TEST_TMPDIR/layer/esc"
	echo shared > "$BATS_TEST_TMPDIR/share/f"
	make_config "$BATS_TEST_TMPDIR/c.json" '.linux.namespaces=[{"type":"mount"},{"type":"uts"}]' \
		".mounts += [{\"destination\":\"/esc\",\"type\":\"bind\",\"source\":\"$BATS_TEST_TMPDIR/share\",\"options\":[\"rbind\"]}]"
	rootfs=$(jq -cn --arg b "$ROOTFS" --arg l "$BATS_TEST_TMPDIR/layer" \
		'{type:"overlay",layers:[{path:$b},{path:$l}]}')
	run ! create_ctr c-bindesc "$BATS_TEST_TMPDIR/c.json" "{rootfs: $rootfs}"
	[[ "$output" == ELOOP:*"mounts[5]: bind"* ]]
	run -0 nsenter -t "$(agent_pid)" -m ls "$BATS_TEST_TMPDIR/outside"
	[ -z "$output" ]
}

@test "agent: HOME comes from the container's /etc/passwd when process.env has none" {
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sh","-c","echo home=$HOME"]' \
		'.process.env=["PATH=/bin"]'
	run -0 agent_client run c-home0 "$BATS_TEST_TMPDIR/c.json"
	[ "$output" = home=/root ]
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sh","-c","echo home=$HOME"]' \
		'.process.env=["PATH=/bin"]' '.process.user={"uid":1000,"gid":1000}'
	run -0 agent_client run c-home1000 "$BATS_TEST_TMPDIR/c.json"
	[ "$output" = home=/ ] # no passwd entry
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sh","-c","echo home=$HOME"]' \
		'.process.env=["PATH=/bin","HOME=/given"]'
	run -0 agent_client run c-homeset "$BATS_TEST_TMPDIR/c.json"
	[ "$output" = home=/given ]
	# exec: the same rule.
	make_config "$BATS_TEST_TMPDIR/c.json" '.process.args=["sleep","100"]'
	run -0 create_ctr c-homeexec "$BATS_TEST_TMPDIR/c.json"
	run -0 agent_client call start '{"container":"c-homeexec"}'
	run -0 agent_client exec c-homeexec e1 '{"args":["sh","-c","echo home=$HOME"],"env":["PATH=/bin"],"cwd":"/"}'
	[ "$output" = home=/root ]
	run -0 agent_client call delete '{"container":"c-homeexec","force":true}'
}

@test "agent: a missing process.cwd is created (0755, by root), even under a read-only root" {
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","pwd; stat -c \"%a %u\" . /new"]' \
		'.process.cwd="/new/work/dir"' '.process.user={"uid":1000,"gid":1000}' \
		'.root.readonly=true'
	rootfs=$(jq -cn --arg b "$ROOTFS" '{type:"overlay",layers:[{path:$b}]}')
	run -0 agent_client run c-cwd "$BATS_TEST_TMPDIR/c.json" --rootfs "$rootfs"
	[ "${lines[0]}" = /new/work/dir ]
	[ "${lines[1]}" = "755 0" ]
	[ "${lines[2]}" = "755 0" ]
	[ ! -e "$ROOTFS/new" ]
}

@test "agent: domainname from the spec, in the container's uts namespace" {
	make_config "$BATS_TEST_TMPDIR/c.json" \
		'.process.args=["sh","-c","hostname; cat /proc/sys/kernel/domainname"]' \
		'.domainname="example.org"'
	run -0 agent_client run c-domain "$BATS_TEST_TMPDIR/c.json"
	[ "${lines[0]}" = kvtest ]
	[ "${lines[1]}" = example.org ]
	[ "$(cat /proc/sys/kernel/domainname)" != example.org ]
}

#!/usr/bin/env bats
# kvrun run in the foreground: a busybox container in a microVM of its own,
# the evidence that it is one, and runc's exit statuses. Every test boots a
# VM (tens of seconds on a PVM host), so each checks as much as one
# container's life shows.

load helpers

function setup() {
	requires jq kvm busybox
	setup_bundle
}

function teardown() {
	teardown_bundle
}

@test "run: hello from a microVM, stdin relayed to EOF, exit 0, the VM sized by annotation" {
	update_config '.process.args = ["sh", "-c", "echo hello; cat; grep MemTotal /proc/meminfo; grep -c ^processor /proc/cpuinfo"]
		| .annotations = {"io.kvrun.vm.memory": "192M", "io.kvrun.vm.cpus": "1"}'
	run -0 bash -c 'printf "from-stdin\n" | "$1" --root "$2" run c1' _ "$KVRUN" "$KVRUN_ROOT"
	echo "$output" >&2
	[ "${lines[0]}" = "hello" ]
	[ "${lines[1]}" = "from-stdin" ]
	# MemTotal is what the VM has, less what its kernel keeps: 192 MiB = 196608 kB.
	local kb
	kb=$(echo "${lines[2]}" | awk '{ print $2 }')
	[ "$kb" -gt 150000 ] && [ "$kb" -le 196608 ]
	[ "${lines[3]}" = 1 ]
	[ -z "$(kvrun_procs_wait)" ]
	kvrun -1 state c1
}

@test "run: the guest's kernel, linux.resources sizing, rootfs and bind mounts shared, exit 3" {
	local cpus=2
	[ "$(nproc)" -ge 2 ] || cpus=1
	mkdir "$BUNDLE/vol"
	echo from-the-host >"$BUNDLE/vol/greeting"
	echo "10.9.8.7 testhost" >"$BUNDLE/hosts"
	update_config '.process.args = ["sh", "-c", "uname -r; grep -c ^processor /proc/cpuinfo; grep MemTotal /proc/meminfo; cat /data/greeting; grep testhost /etc/hosts; echo x >/data/new || echo read-only; echo y >/new && cat /new; echo 10.1.1.1 added >>/etc/hosts; exit 3"]
		| .root.readonly = false
		| .linux.resources.cpu = {"quota": '$((cpus * 100000))', "period": 100000}
		| .linux.resources.memory = {"limit": 134217728}
		| .mounts += [{"destination": "/data", "type": "bind", "source": "'"$BUNDLE"'/vol", "options": ["rbind", "ro"]},
			{"destination": "/etc/hosts", "type": "bind", "source": "'"$BUNDLE"'/hosts", "options": ["rbind", "rw"]}]'
	kvrun -3 run c1
	# A kernel of its own: the guest's (6.1, built from linux-source-6.1), not the host's.
	[ "${lines[0]}" != "$(uname -r)" ]
	[[ "${lines[0]}" == 6.1.* ]]
	[ "${lines[1]}" = "$cpus" ]
	# 128 MiB limit + 128 MiB overhead (the default) = 256 MiB = 262144 kB.
	local kb
	kb=$(echo "${lines[2]}" | awk '{ print $2 }')
	[ "$kb" -gt 200000 ] && [ "$kb" -le 262144 ]
	[ "${lines[3]}" = from-the-host ]
	[[ "${lines[4]}" == "10.9.8.7 testhost" ]]
	[[ "$output" == *read-only* ]]
	[ "${lines[-1]}" = y ]
	# virtio-fs: the container's writes land in root.path and in a rw bind
	# source on the host; a ro bind stays untouched.
	[ "$(cat "$BUNDLE/rootfs/new")" = y ]
	grep -q '10.1.1.1 added' "$BUNDLE/hosts"
	[ ! -e "$BUNDLE/vol/new" ]
}

@test "run: a container killed by SIGKILL gives 137; nothing is left" {
	# The init is PID 1 of its namespace and ignores its own SIGKILL, as
	# under runc: the signal comes from outside, through kvrun kill.
	update_config '.process.args = ["sh", "-c", "while :; do sleep 1; done"]'
	__kvrun run c1 </dev/null >"$BUNDLE/run.out" 2>&1 &
	local rpid=$!
	wait_for 300 status_is c1 running
	kvrun -0 kill c1 KILL
	local rc=0
	wait "$rpid" || rc=$?
	cat "$BUNDLE/run.out" >&2
	[ "$rc" -eq 137 ]
	[ -z "$(kvrun_procs_wait)" ]
	[ -z "$(ls -A "$KVRUN_ROOT")" ]
}

@test "run -t in the foreground: the bytes a terminal gets are runc's, and so is the exit status" {
	requires runc
	update_config '.process.terminal = true
		| .process.args = ["sh", "-c", "echo hello; printf \"a\\tb\\n\"; exit 2"]'
	# script(1) gives both a terminal; its stdin (/dev/null) ends at once,
	# which script passes on as a byte both runtimes relay alike.
	local rroot="$BATS_TEST_TMPDIR/runc-root" kv rc
	run -0 bash -c 'script -qec "$1 --root $2 run t1" /dev/null </dev/null | od -An -c' \
		_ "$KVRUN" "$KVRUN_ROOT"
	kv=$output
	run -0 bash -c 'script -qec "runc --root $1 run t1" /dev/null </dev/null | od -An -c' \
		_ "$rroot"
	rc=$output
	echo "kvrun: $kv" >&2
	echo "runc:  $rc" >&2
	[[ "$kv" == *h*e*l*l*o* ]]
	[ "$kv" = "$rc" ]
	run -2 script -qec "$KVRUN --root $KVRUN_ROOT run t2" /dev/null </dev/null
	[ -z "$(kvrun_procs_wait)" ]
}

@test "run: every mount option kvrun features advertises is applied in the guest, not passed as data" {
	# One tmpfs per advertised option (bind, rbind and remount make other
	# kinds of mount, not options of a new one), and one with several. A
	# filesystem refuses an option it gets as data, so every mount that
	# exists had its option applied as a flag; mountinfo shows the flags
	# that leave a mark.
	local opts
	opts=$("$KVRUN" features | jq -c '[.mountOptions[] | select(. != "bind" and . != "rbind" and . != "remount")]')
	[ "$(jq length <<<"$opts")" -ge 30 ]
	update_config '.mounts += [{"destination": "/m", "type": "tmpfs", "source": "tmpfs",
		"options": ["nosymfollow", "lazytime", "noatime", "nodev", "nosuid", "noexec", "silent",
			"iversion", "mode=700"]}]
		| .mounts += ('"$opts"' | map({destination: ("/o/" + .), type: "tmpfs", source: "tmpfs",
			options: [.]}))
		| .process.args = ["sh", "-c", "stat -c %a /m; cat /proc/self/mountinfo"]'
	kvrun -0 run c1
	[ "${lines[0]}" = 700 ]
	# Per-mount flags in mountinfo's options; superblock flags after " - ".
	local m
	m=$(grep " /m " <<<"$output")
	[[ "$m" == *" /m "*nosuid,nodev,noexec,noatime,nosymfollow*" - tmpfs "* ]]
	[[ "$m" == *" - tmpfs tmpfs "*lazytime* ]]
	local o line mnt sb
	for o in $(jq -r '.[]' <<<"$opts"); do
		line=$(grep " /o/$o " <<<"$output") || { echo "no mount for option $o" >&2; return 1; }
		mnt=$(awk '{ print $6 }' <<<"$line")
		sb=${line##* - tmpfs tmpfs }
		case $o in
		ro | nosuid | nodev | noexec | noatime | nodiratime | nosymfollow)
			[[ ",$mnt," == *",$o,"* ]] || { echo "$o: not in $mnt" >&2; return 1; } ;;
		sync | dirsync | lazytime)
			[[ ",$sb," == *",$o,"* ]] || { echo "$o: not in $sb" >&2; return 1; } ;;
		shared) [[ "$line" == *" shared:"* ]] || { echo "shared: $line" >&2; return 1; } ;;
		unbindable | runbindable)
			[[ "$line" == *" unbindable "* ]] || { echo "$o: $line" >&2; return 1; } ;;
		esac
	done
}

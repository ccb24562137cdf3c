#!/usr/bin/env bats
# Live virtio-fs shares: a device given as `--fs TAG/` takes named shares
# while the guest runs, through the API (fs-add with the fd of the host
# path, fs-remove), as a container joining a running pod VM needs.
#
# ONE boot of the guest kernel with the test initramfs (a cold boot costs
# ~15-60 s on a PVM host): the guest runs the fs-live check
# (tests/guest/test-init-live.c) and says on the console when it waits for
# the host; setup_file answers each wait with API calls (the VMM's control
# socket lives at a path longer than sun_path) and records what it saw in
# the running VMM (its fds into the shares). The tests read those records
# and what the guest left on the host. A payload VM (no kernel, milliseconds)
# covers snapshots and restores of a live device. Skipped, with the reason,
# only where /dev/kvm is absent.

bats_require_minimum_version 1.5.0

load vmm_helpers

# How many of pid's fds lead to dir or beneath it.
fds_under() {
	local pid=$1 dir=$2 n=0 f t
	for f in /proc/"$pid"/fd/*; do
		t=$(readlink "$f" 2>/dev/null) || continue
		[[ "$t" == "$dir" || "$t" == "$dir"/* ]] && n=$((n + 1))
	done
	echo "$n"
}

# api_log NAME ARGS...: kvrun-vmm --api-call $SOCK ARGS, one line in api.log:
# NAME STATUS OUTPUT.
api_log() {
	local name=$1 out rc=0
	shift
	out=$("$VMM" --api-call "$SOCK" "$@" 2>&1) || rc=$?
	echo "$name $rc ${out//$'\n'/ }" >> "$D/api.log"
}

# A raw request with fds of the given paths attached: NAME JSON PATH...
api_raw() {
	local name=$1 json=$2 out
	shift 2
	out=$(python3 "$HOST_PY" api "$SOCK" "$json" "$@" 2>&1) || true
	echo "$name - ${out//$'\n'/ }" >> "$D/api.log"
}

guest_waits() {
	python3 "$HOST_PY" wait "$D/console.log" "^KVRUN-TEST-LIVE-WAIT $1" "$BOOT_TIMEOUT" > /dev/null
}

# The host side of the guest's fs-live check. Runs as the left side of ||:
# a failed step does not stop it, a guest that stops waiting does.
live_drive() {
	local pid=$1
	guest_waits add || return 1
	echo "before $(fds_under "$pid" "$D/vol")" > "$D/fds"
	api_log add-vol fs-add live vol "$D/vol"
	api_log add-conf fs-add live conf "$D/conf" ro
	api_log add-hosts fs-add live hosts "$D/hosts" rw
	api_log add-again fs-add live vol "$D/vol2"
	api_log add-bad-name fs-add live 'a b' "$D/vol"
	api_log add-not-live fs-add plain x "$D/vol"
	api_log add-no-tag fs-add nope x "$D/vol"
	api_log snapshot snapshot "$D/snap"
	api_raw raw-fifo '{"op":"fs-add","tag":"live","name":"f","ro":true}' "$D/fifo"
	api_raw raw-two-fds '{"op":"fs-add","tag":"live","name":"f","ro":true}' "$D/vol" "$D/conf"
	api_raw raw-no-fd '{"op":"fs-add","tag":"live","name":"f","ro":true}'
	guest_waits remove || return 1
	echo "held $(fds_under "$pid" "$D/vol")" >> "$D/fds"
	api_log remove-vol fs-remove live vol
	echo "removed $(fds_under "$pid" "$D/vol")" >> "$D/fds"
	api_log remove-again fs-remove live vol
	guest_waits reuse || return 1
	# The threads while the guest waits: once it has its share back it ends,
	# and on a fast host the VMM is gone before a listing after add-vol2.
	local t
	for t in /proc/"$pid"/task/*; do
		echo "$(cat "$t/comm") $(awk '$1 == "CapEff:" || $1 == "Seccomp:" { printf "%s ", $2 }' "$t/status")"
	done > "$D/threads"
	api_log add-vol2 fs-add live vol "$D/vol2"
}

prepare() {
	mkdir -p "$D/vol" "$D/vol2" "$D/conf" "$D/plain" "$D/deep"
	printf 'hello from the host\n' > "$D/vol/from-host.txt"
	printf 'never read\n' > "$D/vol/unread.txt"
	printf 'second\n' > "$D/vol2/marker-2"
	printf 'on\n' > "$D/conf/setting"
	printf '127.0.0.1 localhost\n' > "$D/hosts"
	mkfifo "$D/fifo"
	# The control socket at a path longer than sun_path (108 bytes), as kvrun's
	# sandbox directories can be: the VMM binds it relative to its cwd.
	DEEP=$D/deep/$(printf 'd%.0s' {1..120})
	mkdir -p "$DEEP"
	echo "$DEEP/vmm.sock" > "$D/sock"
}

boot_live() {
	D=$BATS_FILE_TMPDIR/live
	mkdir -p "$D"
	prepare
	SOCK=$(cat "$D/sock")
	local start end tpid pid="" rc=0 i
	start=$(date +%s.%N)
	(cd "$DEEP" && exec timeout "$BOOT_TIMEOUT" "$VMM" --kernel "$KERNEL" --initrd "$INITRD" \
		--mem 256M --cmdline "kvrun.test=fs-live kvrun.fslive=live" \
		--fs live/ --fs "plain=$D/plain" --api vmm.sock \
		--console "$D/console.log" > "$D/vmm.log" 2>&1) &
	tpid=$!
	for ((i = 0; i < 50; i++)); do
		pid=$(pgrep -P "$tpid" -x kvrun-vmm || true)
		[ -z "$pid" ] || break
		sleep 0.1
	done
	if [ -n "$pid" ]; then
		live_drive "$pid" || kill "$pid" 2>/dev/null || true
	fi
	wait "$tpid" || rc=$?
	echo "$rc" > "$D/status"
	end=$(date +%s.%N)
	echo "$start $end" > "$D/times"
}

setup_file() {
	[ -e /dev/kvm ] || return 0
	[ -f "$KERNEL" ] && [ -f "$INITRD" ] || return 0
	boot_live
}

live_boot() {
	[ -e /dev/kvm ] || skip "no /dev/kvm on this host"
	[ -f "$KERNEL" ] || fail "guest kernel $KERNEL not built (make guest)"
	[ -f "$INITRD" ] || fail "test initramfs $INITRD not built (make guest)"
	D=$BATS_FILE_TMPDIR/live
	[ -f "$D/status" ] || fail "the live-share boot did not run"
	echo "kvrun-vmm status $(cat "$D/status"); its log (last 30 lines):" >&2
	tail -n 30 "$D/vmm.log" >&2
	echo "console (KVRUN lines):" >&2
	grep '^KVRUN' "$D/console.log" >&2 || tail -n 40 "$D/console.log" >&2
	echo "API calls:" >&2
	cat "$D/api.log" >&2 || true
}

# api_result NAME STATUS TEXT: the logged call NAME ended with STATUS and said TEXT.
api_result() {
	local line
	line=$(grep "^$1 " "$D/api.log") || fail "no API call $1"
	[[ "$line" == "$1 $2 "* ]] || fail "$1: status is not $2: $line"
	[[ "$line" == *"$3"* ]] || fail "$1: no '$3' in: $line"
}

@test "vmm live: the guest booted with a live device, ran fs-live and powered off (status 0)" {
	live_boot
	grep -q '^KVRUN-TEST fs-live PASS' "$D/console.log"
	grep -q '^KVRUN-TEST-DONE 0' "$D/console.log"
	[ "$(cat "$D/status")" -eq 0 ]
	read -r start end < "$D/times"
	echo "# boot, three shares added, one removed and added again, power-off: $(echo "$end - $start" | bc) s" >&3
}

@test "vmm live: shares added after boot are seen; guest writes land on the host (rw), are refused (ro)" {
	live_boot
	api_result add-vol 0 ""
	api_result add-conf 0 ""
	api_result add-hosts 0 ""
	[ "$(cat "$D/vol/from-guest")" = "live" ]
	[ "$(cat "$D/vol/through-bind")" = "bind" ]
	[ "$(stat -c %a "$D/vol/guest-dir")" = "750" ]
	[ "$(ls -A "$D/conf")" = "setting" ]
	[ "$(cat "$D/conf/setting")" = "on" ]
	[ "$(tail -n 1 "$D/hosts")" = "10.0.0.4 live" ]
}

@test "vmm live: removal makes the share vanish and closes every host fd of it at once" {
	live_boot
	cat "$D/fds" >&2
	read -r _ before < <(grep '^before ' "$D/fds")
	read -r _ held < <(grep '^held ' "$D/fds")
	read -r _ removed < <(grep '^removed ' "$D/fds")
	[ "$before" -eq 0 ]
	# The share's top, the guest's inodes and its two open handles.
	[ "$held" -ge 4 ]
	[ "$removed" -eq 0 ]
	api_result remove-vol 0 ""
	# The guest: the name is gone, what it held fails, the other shares work.
	grep '^KVRUN-TEST-LIVE .* after removal' "$D/console.log" >&2
	# ESTALE (the kernel asks for the attributes first, of a gone nodeid) or EIO (a gone handle)
	grep -Eq '^KVRUN-TEST-LIVE read after removal: (Stale file handle|Input/output error)' \
		"$D/console.log"
	grep -Eq '^KVRUN-TEST-LIVE getdents after removal: (Stale file handle|Input/output error)' \
		"$D/console.log"
	grep -q '^KVRUN-TEST fs-live PASS' "$D/console.log"
}

@test "vmm live: a name reused after removal reaches the new directory, never the old one" {
	live_boot
	api_result add-vol2 0 ""
	[ "$(cat "$D/vol2/from-guest-2")" = "again" ]
	[ ! -e "$D/vol/from-guest-2" ]
	[ ! -e "$D/vol2/from-host.txt" ]
}

@test "vmm live: bad requests are refused with a message naming tag and share" {
	live_boot
	api_result add-again 1 "virtio-fs live: share 'vol' exists"
	api_result add-bad-name 1 "bad share name 'a b'"
	api_result add-not-live 1 "virtio-fs plain: not a live device"
	api_result add-no-tag 1 "no virtio-fs device with tag 'nope'"
	api_result remove-again 1 "virtio-fs live: no share 'vol'"
	api_result snapshot 1 "live share"
	[ ! -e "$D/snap/state" ] && [ ! -e "$D/snap/state.tmp" ]
	api_result raw-fifo - '"code":"EINVAL"'
	api_result raw-fifo - "not a directory or regular file"
	api_result raw-two-fds - "exactly one fd"
	api_result raw-no-fd - "exactly one fd"
}

@test "vmm live: the live device's worker is confined like the others" {
	live_boot
	cat "$D/threads" >&2
	# CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID MKNOD, seccomp filter mode.
	grep -q '^vfs-live 000000000800001f 2 $' "$D/threads"
	grep -q '^vfs-plain 000000000800001f 2 $' "$D/threads"
}

# ------------------------------------------------------------- payload guest

# A payload VM (no kernel) with a live device, its API in $1.
payload_live() {
	local api=$1
	shift
	"$VMM" --kernel "$PAYLOAD" --mem 32M --no-rng --cmdline payload=h --api "$api" \
		--console none --fs live/ "$@" > "$BATS_TEST_TMPDIR/vmm.log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do
		[ -S "$api" ] && break
		sleep 0.05
	done
	[ -S "$api" ] || fail "no API socket: $(cat "$BATS_TEST_TMPDIR/vmm.log")"
}

@test "vmm live: a template with an empty live device snapshots and restores; not with shares" {
	needs_kvm
	local t=$BATS_TEST_TMPDIR api=$BATS_TEST_TMPDIR/t.sock
	mkdir -p "$t/vol"
	payload_live "$api"
	run -0 "$VMM" --api-call "$api" fs-add live vol "$t/vol"
	run -1 "$VMM" --api-call "$api" snapshot "$t/snap"
	[[ "$output" == *EBUSY*"1 live share attached"* ]]
	run -0 "$VMM" --api-call "$api" status
	[[ "$output" == *'"state":"running"'* ]]
	run -0 "$VMM" --api-call "$api" fs-remove live vol
	run -0 "$VMM" --api-call "$api" snapshot "$t/snap" exit
	wait "$PID"
	[ -f "$t/snap/state" ] && [ -f "$t/snap/memory" ]
	# A clone with the same live device takes shares of its own.
	local api2=$t/clone.sock
	"$VMM" --restore "$t/snap" --no-rng --console none --api "$api2" --fs live/ \
		> "$t/clone.log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do
		[ -S "$api2" ] && break
		sleep 0.05
	done
	run -0 "$VMM" --api-call "$api2" fs-add live vol "$t/vol" ro
	run -0 python3 "$HOST_PY" api "$api2" '{"op":"fs-remove","tag":"live","name":"vol"}'
	[[ "$output" == *'"ok":true'*'"shares":0'* ]]
	run -0 "$VMM" --api-call "$api2" shutdown
	wait "$PID"
	# The clone's devices are the template's: without the live one, no restore.
	vmm -1 --restore "$t/snap" --no-rng --console none
	[[ "$output" == *"the snapshot has 1 virtio devices, the command line gives 0"* ]]
}

@test "vmm live: --fs TAG/ options and mixes are refused with a message" {
	[ -x "$VMM" ] || fail "$VMM not built"
	run -1 "$VMM" --kernel /nonexistent --fs "t/,dax=64M"
	[[ "$output" == *"a live device takes no options"* ]]
	run -1 "$VMM" --kernel /nonexistent --fs "t/" --fs "t/a=/tmp"
	[[ "$output" == *"takes its shares through the API"* ]]
	run -1 "$VMM" --kernel /nonexistent --fs "t/" --fs "t/"
	[[ "$output" == *"given once"* ]]
	run -1 "$VMM" --api-call /nonexistent/vmm.sock fs-add t n
	[[ "$output" == *"usage: --api-call SOCK fs-add TAG NAME PATH [ro|rw]"* ]]
	run -1 "$VMM" --api-call /nonexistent/vmm.sock fs-add t n /nonexistent/dir
	[[ "$output" == *"fs-add: open /nonexistent/dir"* ]]
}

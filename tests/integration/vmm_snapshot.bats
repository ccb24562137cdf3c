#!/usr/bin/env bats
# Snapshots of running kvrun-vmm VMs, restored in new processes
# (vmm/snapshot.h). Two guests, as in vmm.bats:
#  - the tiny payload (tests/guest/vmm-payload.S): restore basics, the API op,
#    and every kind of bad snapshot file, in milliseconds;
#  - the guest kernel with the test init running `serve,sleep` (a vsock echo
#    server and a tick counter on the console, with the size of /dev/vda, a
#    virtio-blk disk empty at boot): one cold boot in setup_file, snapshotted,
#    then restored in new processes: the counter goes on, vsock works, a
#    clone's own disk shows its capacity, clones run side by side, a clone
#    can be snapshotted again.
# Skipped, with the reason, only without /dev/kvm.

bats_require_minimum_version 1.5.0

load vmm_helpers

SERVE_PORT=1236
# kvrun-vmm runs here (payloads, restores) end in well under a minute.
VMM_TIMEOUT=60

# ------------------------------------------------------------- payload guest

# A payload VM waiting for console input (payload=c), snapshotted with
# then=exit into $1. The console input stays open until the VM exits.
payload_snapshot() {
	local dir=$1 name
	name=$(basename "$1")
	local api=$BATS_TEST_TMPDIR/$name.sock out=$BATS_TEST_TMPDIR/$name.out
	rm -f "$api" "$out"
	(sleep 30 | "$VMM" --kernel "$PAYLOAD" --mem 32M --no-rng --cmdline payload=c --api "$api" \
		> "$out" 2> "$BATS_TEST_TMPDIR/$name.err") &
	local pid=$!
	for _ in $(seq 200); do
		[ -S "$api" ] && grep -q PAYLOAD-ECHO "$out" 2>/dev/null && break
		sleep 0.05
	done
	run "$VMM" --api-call "$api" snapshot "$dir" exit
	echo "snapshot: $output" >&2
	if [[ "$output" != *'"ok":true'* || "$output" != *'"state":"stopping"'* ]]; then
		pkill -P "$pid" 2>/dev/null || true
		kill "$pid" 2>/dev/null || true
		fail "snapshot failed: $(cat "$BATS_TEST_TMPDIR/$name.err")"
	fi
	for _ in $(seq 100); do
		[ -S "$api" ] || break
		sleep 0.05
	done
	pkill -P "$pid" sleep 2>/dev/null || true
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	[ -f "$dir/state" ] && [ -f "$dir/memory" ]
	[ ! -e "$dir/state.tmp" ] && [ ! -e "$dir/memory.tmp" ]
}

@test "payload: snapshot (then exit) and restore in a new process: the guest goes on" {
	needs_kvm
	local snap=$BATS_TEST_TMPDIR/snap
	payload_snapshot "$snap"
	# The memory file is sparse: a 32 MiB guest that touched little stays small.
	local blocks
	blocks=$(du -k "$snap/memory" | cut -f1)
	echo "memory file: $(stat -c %s "$snap/memory") bytes, $blocks KiB on disk" >&2
	[ "$blocks" -lt 4096 ]
	run -0 bash -c "printf 'hello-restored q' | timeout 60 '$VMM' --restore '$snap' --no-rng"
	echo "$output" >&2
	[[ "$output" == *"hello-restored"* ]]
	# Twice from the same snapshot: the files are only read.
	run -0 bash -c "printf 'second-clone q' | timeout 60 '$VMM' --restore '$snap' --no-rng"
	[[ "$output" == *"second-clone"* ]]
}

@test "payload: snapshot then resume or pause keeps the VM; the op needs its files" {
	needs_kvm
	local api=$BATS_TEST_TMPDIR/h.sock
	"$VMM" --kernel "$PAYLOAD" --mem 32M --no-rng --cmdline payload=h --api "$api" \
		--console none > "$BATS_TEST_TMPDIR/h.log" 2>&1 &
	local pid=$!
	for _ in $(seq 100); do
		[ -S "$api" ] && break
		sleep 0.05
	done
	run -0 "$VMM" --api-call "$api" snapshot "$BATS_TEST_TMPDIR/s1"
	[[ "$output" == *'"state":"running"'* ]]
	run -0 "$VMM" --api-call "$api" snapshot "$BATS_TEST_TMPDIR/s2" pause
	[[ "$output" == *'"state":"paused"'* ]]
	run -0 "$VMM" --api-call "$api" resume
	[[ "$output" == *'"state":"running"'* ]]
	run -1 "$VMM" --api-call "$api" snapshot "$BATS_TEST_TMPDIR/s3" sideways
	[[ "$output" == *'must be resume, pause or exit'* ]]
	[ ! -e "$BATS_TEST_TMPDIR/s3/state" ] && [ ! -e "$BATS_TEST_TMPDIR/s3/state.tmp" ]
	# A raw request cannot name files: the confined VMM opens none.
	run -0 python3 "$HOST_PY" api "$api" '{"op":"snapshot","path":"/tmp/x"}'
	[[ "$output" == *'"ok":false'*EINVAL*SCM_RIGHTS* ]]
	run -0 "$VMM" --api-call "$api" status
	[[ "$output" == *'"state":"running"'* ]]
	run -0 "$VMM" --api-call "$api" shutdown
	wait "$pid"
}

# restore_refused DIR WANT [args]: restoring DIR fails with status 1 naming WANT.
restore_refused() {
	local dir=$1 want=$2
	shift 2
	vmm -1 --restore "$dir" --no-rng --console none "$@"
	[[ "$output" == *"$want"* ]] || fail "expected '$want' in the error"
}

# A fresh copy of the payload snapshot to damage.
damaged() {
	rm -rf "$BATS_TEST_TMPDIR/bad"
	cp -r --sparse=always "$BATS_TEST_TMPDIR/good" "$BATS_TEST_TMPDIR/bad"
	echo "$BATS_TEST_TMPDIR/bad"
}

@test "payload: corrupt, truncated, foreign and mismatched snapshots are refused, naming why" {
	needs_kvm
	payload_snapshot "$BATS_TEST_TMPDIR/good"
	local d size
	size=$(stat -c %s "$BATS_TEST_TMPDIR/good/state")

	d=$(damaged) # a flipped byte in the middle of the state
	python3 "$HOST_PY" patch "$d/state" $((size / 2)) "$(printf '%02x' $((0x5a)))"
	restore_refused "$d" "checksum mismatch"
	if command -v strace > /dev/null; then
		# ... refused before KVM was touched.
		run -1 strace -f -qq -e trace=openat -o "$BATS_TEST_TMPDIR/strace" \
			"$VMM" --restore "$d" --no-rng --console none
		! grep -q /dev/kvm "$BATS_TEST_TMPDIR/strace" || false
	fi

	d=$(damaged)
	truncate -s $((size - 100)) "$d/state"
	restore_refused "$d" "truncated"

	d=$(damaged) # format version 2 (the version field follows the 8-byte magic)
	python3 "$HOST_PY" patch "$d/state" 8 02000000
	restore_refused "$d" "version 2 is not supported"

	d=$(damaged)
	truncate -s 1M "$d/memory"
	restore_refused "$d" "memory file is 1048576 bytes"

	d=$(damaged)
	restore_refused "$d" "memory size mismatch: --mem is 64 MiB" --mem 64M

	d=$(damaged)
	rm "$d/memory"
	restore_refused "$d" "$d/memory"

	d=$(damaged) # the memory of another snapshot
	payload_snapshot "$BATS_TEST_TMPDIR/other"
	cp --sparse=always "$BATS_TEST_TMPDIR/other/memory" "$d/memory"
	restore_refused "$d" "belongs to another snapshot"

	d=$(damaged) # not a snapshot at all
	head -c 4096 /dev/urandom > "$d/state"
	restore_refused "$d" "bad magic"
	[[ "$output" == *"$d/state: not a kvrun snapshot state file (bad magic)" ]] # no strerror

	d=$(damaged) # devices that are not the template's
	restore_refused "$d" "virtio devices" --vsock "$BATS_TEST_TMPDIR/v.sock"

	vmm -1 --restore "$BATS_TEST_TMPDIR/good" --kernel "$PAYLOAD"
	[[ "$output" == *"no --kernel"* ]]
	# The good one still restores.
	run -0 bash -c "printf 'still-good q' | timeout 60 '$VMM' --restore '$BATS_TEST_TMPDIR/good' --no-rng"
	[[ "$output" == *"still-good"* ]]
}

# ------------------------------------------------------------- guest kernel

# One cold boot for the file: 2 vCPUs, vsock, the echo server and the tick
# counter; snapshotted (then exit) after a few ticks.
boot_and_snapshot() {
	local d=$BATS_FILE_TMPDIR/guest
	mkdir -p "$d"
	: > "$d/empty.img"
	timeout "$BOOT_TIMEOUT" "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --mem 256M --cpus 2 \
		--cmdline "kvrun.test=serve,sleep kvrun.tickblk=1" --console "$d/console.log" \
		--blk "$d/empty.img" \
		--vsock "$d/vsock.sock" --api "$d/api.sock" > "$d/vmm.log" 2>&1 &
	local pid=$!
	if python3 "$HOST_PY" wait "$d/console.log" '^KVRUN-TEST-TICK 2 ' "$BOOT_TIMEOUT" > "$d/wait.log" &&
		python3 "$HOST_PY" vsock-echo "$d/vsock.sock" $SERVE_PORT > "$d/echo-before.log" 2>&1; then
		"$VMM" --api-call "$d/api.sock" snapshot "$d/snap" exit > "$d/snapshot.log" 2>&1 || true
	fi
	local rc=0
	wait "$pid" || rc=$?
	echo "$rc" > "$d/status"
}

setup_file() {
	[ -e /dev/kvm ] && [ -f "$KERNEL" ] && [ -f "$INITRD" ] || return 0
	[ -z "${KVRUN_VMM_SKIP_BOOTS:-}" ] || return 0
	boot_and_snapshot
}

needs_snapshot() {
	needs_kvm
	[ -z "${KVRUN_VMM_SKIP_BOOTS:-}" ] || skip "guest boots skipped (KVRUN_VMM_SKIP_BOOTS is set)"
	[ -f "$KERNEL" ] || fail "guest kernel $KERNEL not built (make guest)"
	[ -f "$INITRD" ] || fail "test initramfs $INITRD not built (make guest)"
	G=$BATS_FILE_TMPDIR/guest
	echo "template VMM (status $(cat "$G/status" 2>/dev/null)):" >&2
	cat "$G/vmm.log" "$G/wait.log" "$G/echo-before.log" "$G/snapshot.log" >&2 || true
	tail -n 5 "$G/console.log" >&2 || true
	[ -f "$G/snap/state" ] || fail "the template VM was not snapshotted"
	LAST_TICK=$(python3 "$HOST_PY" ticks "$G/console.log" | tail -n 1)
}

# clone NAME [DISK-SIZE]: restore the guest snapshot in the background as
# clone NAME, with a disk of its own (empty unless a size is given).
clone() {
	local c=$BATS_TEST_TMPDIR/$1
	mkdir -p "$c"
	truncate -s "${2:-0}" "$c/disk.img"
	"$VMM" --restore "$G/snap" --console "$c/console.log" --vsock "$c/vsock.sock" \
		--blk "$c/disk.img" --api "$c/api.sock" --stats "$c/stats.json" > "$c/vmm.log" 2>&1 &
	echo $! > "$c/pid"
}

clone_stop() {
	local c=$BATS_TEST_TMPDIR/$1
	"$VMM" --api-call "$c/api.sock" shutdown > /dev/null 2>&1 || kill "$(cat "$c/pid")"
	wait "$(cat "$c/pid")" || true
	cat "$c/vmm.log" >&2
}

@test "guest: snapshot of a running kernel (then exit): VMM exits 0, memory file sparse" {
	needs_snapshot
	[ "$(cat "$G/status")" -eq 0 ]
	grep -q '"ok":true' "$G/snapshot.log"
	local blocks
	blocks=$(du -k "$G/snap/memory" | cut -f1)
	echo "# 256 MiB guest: memory file $blocks KiB on disk; $(cat "$G/snapshot.log")" >&3
	[ "$blocks" -lt $((200 * 1024)) ]
}

@test "guest: restored in a new process, the tick counter goes on; the clone's own disk is seen" {
	needs_snapshot
	# The template's disk was empty; the clone's has 1 MiB: a capacity change.
	clone c1 1M
	run -0 python3 "$HOST_PY" wait "$BATS_TEST_TMPDIR/c1/console.log" "^KVRUN-TEST-TICK $((LAST_TICK + 3)) " 30
	run -0 python3 "$HOST_PY" wait "$BATS_TEST_TMPDIR/c1/console.log" "^KVRUN-TEST-TICK [0-9]+ vda=2048\$" 30
	local first
	first=$(python3 "$HOST_PY" ticks "$BATS_TEST_TMPDIR/c1/console.log" | head -n 1)
	echo "last tick before the snapshot $LAST_TICK, first after the restore $first" >&2
	[ "$first" -ge "$LAST_TICK" ] && [ "$first" -le $((LAST_TICK + 1)) ]
	clone_stop c1
	jq -e '.first_run_us > 0 and .restore.state_us > 0' "$BATS_TEST_TMPDIR/c1/stats.json"
	echo "# restore: $(jq -c '{first_run_us, restore}' "$BATS_TEST_TMPDIR/c1/stats.json")" >&3
}

@test "guest: vsock after restore: new host->guest connections echo" {
	needs_snapshot
	clone c2
	run -0 python3 "$HOST_PY" wait "$BATS_TEST_TMPDIR/c2/console.log" '^KVRUN-TEST-TICK' 30
	run -0 python3 "$HOST_PY" vsock-echo "$BATS_TEST_TMPDIR/c2/vsock.sock" $SERVE_PORT 3
	echo "$output" >&2
	clone_stop c2
}

@test "guest: two clones of one snapshot run side by side" {
	needs_snapshot
	clone a
	clone b
	local x
	for x in a b; do
		run -0 python3 "$HOST_PY" wait "$BATS_TEST_TMPDIR/$x/console.log" "^KVRUN-TEST-TICK $((LAST_TICK + 2)) " 30
		run -0 python3 "$HOST_PY" vsock-echo "$BATS_TEST_TMPDIR/$x/vsock.sock" $SERVE_PORT
	done
	# Each clone's writes stay its own: its resident memory is mostly shared page cache.
	local pid
	pid=$(cat "$BATS_TEST_TMPDIR/a/pid")
	grep -E '^(Rss|Pss|Private_Dirty|Anonymous):' "/proc/$pid/smaps_rollup" >&2
	local anon
	anon=$(awk '/^Anonymous:/ { print $2 }' "/proc/$pid/smaps_rollup")
	echo "# clone a: $anon kB anonymous (private) memory" >&3
	[ "$anon" -lt $((64 * 1024)) ]
	clone_stop a
	clone_stop b
}

@test "guest: a clone snapshotted again restores too; memory of another snapshot is refused" {
	needs_snapshot
	clone c3
	run -0 python3 "$HOST_PY" wait "$BATS_TEST_TMPDIR/c3/console.log" "^KVRUN-TEST-TICK $((LAST_TICK + 2)) " 30
	run -0 "$VMM" --api-call "$BATS_TEST_TMPDIR/c3/api.sock" snapshot "$BATS_TEST_TMPDIR/snap2" exit
	wait "$(cat "$BATS_TEST_TMPDIR/c3/pid")"
	local second
	second=$(python3 "$HOST_PY" ticks "$BATS_TEST_TMPDIR/c3/console.log" | tail -n 1)
	local c=$BATS_TEST_TMPDIR/c4
	mkdir -p "$c"
	: > "$c/disk.img"
	"$VMM" --restore "$BATS_TEST_TMPDIR/snap2" --console "$c/console.log" --vsock "$c/v.sock" \
		--blk "$c/disk.img" --api "$c/api.sock" > "$c/vmm.log" 2>&1 &
	echo $! > "$c/pid"
	run -0 python3 "$HOST_PY" wait "$c/console.log" "^KVRUN-TEST-TICK $((second + 2)) " 30
	run -0 python3 "$HOST_PY" vsock-echo "$c/v.sock" $SERVE_PORT
	clone_stop c4
	# The second snapshot's memory with the first one's state.
	mkdir -p "$BATS_TEST_TMPDIR/mixed"
	cp "$G/snap/state" "$BATS_TEST_TMPDIR/mixed/"
	cp --sparse=always "$BATS_TEST_TMPDIR/snap2/memory" "$BATS_TEST_TMPDIR/mixed/"
	vmm -1 --restore "$BATS_TEST_TMPDIR/mixed" --console none --vsock "$c/v2.sock" \
		--blk "$c/disk.img"
	[[ "$output" == *"belongs to another snapshot"* ]]
}

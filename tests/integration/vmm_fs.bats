#!/usr/bin/env bats
# virtio-fs in a real VM: ONE boot of the guest kernel with the test
# initramfs (a cold boot costs ~30-60 s on a PVM host) and six virtio-fs
# devices: two read-write exports (one mounted with DAX, one without), a
# read-only one, a single-file share (Docker's /etc/hosts), three named
# shares under one tag (bind mounts) and one the guest tries to escape from.
# The guest's checks (tests/guest/test-init-fs.c: fs, fs-ro, fs-file, fs-binds,
# fs-escape) print a line each; the tests below read those
# and check on the host what the guest left behind. Skipped, with the
# reason, only where /dev/kvm is absent.

bats_require_minimum_version 1.5.0

load vmm_helpers

# The host side of the shares.
prepare_shares() {
	local d=$1 t f
	for t in plain dax; do
		mkdir -p "$d/$t/hostdir"
		printf 'hello from the host\n' > "$d/$t/from-host.txt"
		for f in a b c; do echo "$f" > "$d/$t/hostdir/$f"; done
	done
	mkdir -p "$d/ro"
	printf 'hello from the host\n' > "$d/ro/from-host.txt"
	printf '127.0.0.1 localhost\n' > "$d/hosts"
	mkdir -p "$d/binds/vol" "$d/binds/conf"
	printf 'on\n' > "$d/binds/conf/setting"
	printf '127.0.0.1 localhost\n' > "$d/binds/hosts"
	mkdir -p "$d/outside" "$d/esc/inside" "$d/esc/swap"
	printf 'KVRUN-SECRET\n' > "$d/outside/secret.txt"
	printf 'inside\n' > "$d/esc/swap/file.txt"
	ln -s ../outside "$d/esc/escape"
	ln -s "$d/outside" "$d/esc/abs"
	find "$d/outside" -printf '%p %y %m %u:%g %s %T@\n' | sort > "$d/outside.before"
	sha256sum "$d/outside/secret.txt" > "$d/secret.sha"
}

# While the guest waits (KVRUN-TEST-FS-WAIT dax), count the mappings of the
# DAX share's files in the running VMM, then let the guest go on.
dax_handshake() {
	local d=$1 pid=$2 i
	for ((i = 0; i < BOOT_TIMEOUT * 5; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		if grep -q '^KVRUN-TEST-FS-WAIT dax' "$d/console.log" 2>/dev/null; then
			# By device and inode: a file the jailed worker mapped shows
			# a path from its own mount namespace, not the host's.
			cat "/proc/$pid/maps" > "$d/maps"
			local t
			for t in /proc/"$pid"/task/*; do
				echo "$(cat "$t/comm") $(awk '$1 == "CapEff:" || $1 == "CapBnd:" || $1 == "Seccomp:" { printf "%s ", $2 }' "$t/status")"
			done > "$d/threads"
			for t in /proc/"$pid"/task/*; do
				echo "$(cat "$t/comm") root=$(stat -L -c %d:%i "$t/root/") $(ls -A "$t/root/" 2>&1 | tr '\n' ,)"
			done > "$d/thread-roots"
			echo checked > "$d/dax/host-checked" # the guest reads it back
			return 0
		fi
		sleep 0.2
	done
}

boot_fs() {
	local d=$BATS_FILE_TMPDIR/fs
	mkdir -p "$d"
	prepare_shares "$d"
	local start end tpid pid="" rc=0 i
	start=$(date +%s.%N)
	timeout "$BOOT_TIMEOUT" "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --mem 256M \
		--cmdline "kvrun.test=fs,fs-ro,fs-file,fs-binds,fs-escape kvrun.fstags=plain,dax kvrun.fsdax=dax kvrun.fswait=dax kvrun.fsro=ro kvrun.fsfile=hosts kvrun.fsfilename=hosts kvrun.fsescape=escape kvrun.fsoutside=$d/outside${KVRUN_TEST_FS_CMDLINE:+ $KVRUN_TEST_FS_CMDLINE}" \
		--fs "plain=$d/plain" --fs "dax=$d/dax,dax=64M" --fs "ro=$d/ro,ro" \
		--fs "hosts=$d/hosts" --fs "escape=$d/esc" --fs "binds/vol=$d/binds/vol" \
		--fs "binds/conf=$d/binds/conf,ro" --fs "binds/hosts=$d/binds/hosts" \
		--console "$d/console.log" > "$d/vmm.log" 2>&1 &
	tpid=$!
	for ((i = 0; i < 50; i++)); do
		pid=$(pgrep -P "$tpid" -x kvrun-vmm || true)
		[ -z "$pid" ] || break
		sleep 0.1
	done
	[ -z "$pid" ] || dax_handshake "$d" "$pid"
	wait "$tpid" || rc=$?
	echo "$rc" > "$d/status"
	end=$(date +%s.%N)
	echo "$start $end" > "$d/times"
}

setup_file() {
	[ -e /dev/kvm ] || return 0
	[ -f "$KERNEL" ] && [ -f "$INITRD" ] || return 0
	boot_fs
}

# Every test that reads the boot's results starts here.
fs_boot() {
	[ -e /dev/kvm ] || skip "no /dev/kvm on this host"
	[ -f "$KERNEL" ] || fail "guest kernel $KERNEL not built (make guest)"
	[ -f "$INITRD" ] || fail "test initramfs $INITRD not built (make guest)"
	D=$BATS_FILE_TMPDIR/fs
	[ -f "$D/status" ] || fail "the virtio-fs boot did not run"
	echo "kvrun-vmm status $(cat "$D/status"); its log (last 30 lines):" >&2
	tail -n 30 "$D/vmm.log" >&2
	echo "console (KVRUN lines):" >&2
	grep '^KVRUN' "$D/console.log" >&2 || tail -n 40 "$D/console.log" >&2
}

@test "vmm fs: the guest booted, ran every fs check and powered off (status 0)" {
	fs_boot
	grep -q '^KVRUN-TEST-DONE 0' "$D/console.log"
	[ "$(cat "$D/status")" -eq 0 ]
	read -r start end < "$D/times"
	echo "# boot with 6 virtio-fs devices to power-off: $(echo "$end - $start" | bc) s" >&3
}

@test "vmm fs: guest reads, creates, writes, renames, links, chmods, chowns, truncates, lists, deletes; host permissions hold (no DAX)" {
	fs_boot
	grep -q '^KVRUN-TEST fs:plain PASS dax=no' "$D/console.log"
}

# mapped FILE: the VMM had FILE mapped when the guest waited (its device
# and inode in /proc/PID/maps, as dax_handshake saved it).
mapped() {
	local dev ino
	dev=$(stat -c '%Hd %Ld' "$1" | awk '{ printf "%02x:%02x", $1, $2 }')
	ino=$(stat -c %i "$1")
	awk -v d="$dev" -v i="$ino" '$4 == d && $5 == i { f = 1 } END { exit !f }' "$D/maps"
}

@test "vmm fs: the same on a DAX mount: the VMM maps the host files into the guest's window" {
	fs_boot
	grep -q '^KVRUN-TEST fs:dax PASS dax=yes' "$D/console.log"
	grep -q 'Cache len: 0x4000000' "$D/console.log"
	echo "VMM file mappings (dev inode path):" >&2
	awk '$5 != 0 { print $4, $5, $6 }' "$D/maps" | sort -u >&2
	mapped "$D/dax/big.bin"
	# Without DAX the page cache is the guest's own: no file of the plain share is mapped.
	local f
	while read -r f; do
		! mapped "$f" || { echo "mapped: $f" >&2; false; }
	done < <(find "$D/plain" -type f)
}

check_host_results() {
	local s=$D/$1
	[ "$(cat "$s/guest/renamed.txt")" = "written" ]
	[ "$(stat -c '%a %u:%g %h' "$s/guest/renamed.txt")" = "604 1234:5678 2" ]
	[ "$(stat -c %i "$s/guest/renamed.txt")" = "$(stat -c %i "$s/guest/hardlink.txt")" ]
	[ "$(readlink "$s/guest/sym")" = "renamed.txt" ]
	[ ! -e "$s/guest/file.txt" ] && [ ! -e "$s/guest/delete-me" ] && [ ! -e "$s/guest/rmdir-me" ]
	[ "$(stat -c %a "$s/guest")" = "750" ]
	python3 - "$s" <<'EOF'
import os, struct, sys
s = sys.argv[1]
assert os.getxattr(s + "/guest/renamed.txt", "user.kvrun") == b"yes"
data = open(s + "/big.bin", "rb").read()
assert len(data) == 3 << 20, len(data)
words = struct.unpack("<%dI" % (len(data) // 4), data)
for i, w in enumerate(words):
    assert w == ((i * 2654435761) & 0xffffffff) ^ 0x6b76726e, i
m = open(s + "/mmap.bin", "rb").read()
assert len(m) == 8192 and m[4096:4116] == b"mmap from the guest\n", m[4096:4116]
EOF
}

@test "vmm fs: the host sees what the guest did (no DAX)" {
	fs_boot
	check_host_results plain
}

@test "vmm fs: the host sees what the guest did (DAX)" {
	fs_boot
	check_host_results dax
}

@test "vmm fs: each device's worker keeps only its file capabilities, under seccomp; other threads none" {
	fs_boot
	echo "thread CapEff CapBnd Seccomp:" >&2
	cat "$D/threads" >&2
	# CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID MKNOD
	local want=000000000800001f
	[ "$(grep -c '^vfs-' "$D/threads")" -eq 6 ]
	! grep '^vfs-' "$D/threads" | grep -v " $want $want 2 \$" || false
	! grep -v '^vfs-' "$D/threads" | grep -v " 0000000000000000 0000000000000000 2 \$"
	# Each worker is in a root of its own (sandbox_fs_thread_jail): its one
	# exported directory, or an empty one; never the host's /.
	cat "$D/thread-roots" >&2
	[ "$(grep -c '^vfs-' "$D/thread-roots")" -eq 6 ]
	! grep '^vfs-' "$D/thread-roots" | grep -F " root=$(stat -c %d:%i /) " || false
}

@test "vmm fs: a read-only share: reads work, every change is EROFS, the host is unchanged" {
	fs_boot
	grep -q '^KVRUN-TEST fs-ro PASS' "$D/console.log"
	[ "$(ls -A "$D/ro")" = "from-host.txt" ]
	[ "$(cat "$D/ro/from-host.txt")" = "hello from the host" ]
}

@test "vmm fs: a single-file share bind-mounted in the guest (Docker's /etc/hosts), written through" {
	fs_boot
	grep -q '^KVRUN-TEST fs-file PASS' "$D/console.log"
	[ "$(cat "$D/hosts")" = "127.0.0.1 localhost
10.0.0.2 guest-added" ]
}

@test "vmm fs: named shares of one tag (bind mounts through one device): rw dir, ro dir, file" {
	fs_boot
	grep -q '^KVRUN-TEST fs-binds PASS' "$D/console.log"
	[ "$(cat "$D/binds/vol/from-guest")" = "vol" ]
	[ "$(cat "$D/binds/conf/setting")" = "on" ]
	[ "$(ls -A "$D/binds/conf")" = "setting" ]
	[ "$(tail -n 1 "$D/binds/hosts")" = "10.0.0.3 binds" ]
}

@test "vmm fs: escape attempts (.., symlinks out, a symlink swapped in, hard links, device nodes) fail" {
	fs_boot
	grep -q '^KVRUN-TEST fs-escape PASS' "$D/console.log"
}

@test "vmm fs: nothing outside the export changed; no device node was created" {
	fs_boot
	find "$D/outside" -printf '%p %y %m %u:%g %s %T@\n' | sort > "$D/outside.after"
	diff "$D/outside.before" "$D/outside.after"
	sha256sum -c "$D/secret.sha"
	[ ! -e "$D/outside/victim.txt" ] && [ ! -e "$D/victim.txt" ]
	[ -z "$(find "$D" \( -type b -o -type c \) -print)" ]
	[ "$(readlink "$D/esc/escape")" = "../outside" ]
	[ "$(readlink "$D/esc/abs")" = "$D/outside" ]
	[ -d "$D/esc/swap" ] && [ ! -L "$D/esc/swap" ] && [ "$(cat "$D/esc/swap/file.txt")" = "inside" ]
	[ ! -e "$D/esc/sda" ] && [ ! -e "$D/esc/mem" ] && [ ! -e "$D/esc/initlink" ]
}

@test "vmm fs: bad --fs options are refused with a message naming the option" {
	[ -x "$VMM" ] || fail "$VMM not built"
	run -1 "$VMM" --kernel /nonexistent --fs "no-path"
	[[ "$output" == *"--fs: expected TAG=PATH"* ]]
	run -1 "$VMM" --kernel /nonexistent --fs "bad tag=/tmp"
	[[ "$output" == *"bad tag"* ]]
	run -1 "$VMM" --kernel /nonexistent --fs "t/..=/tmp"
	[[ "$output" == *"bad share name"* ]]
	run -1 "$VMM" --kernel /nonexistent --fs "t=/tmp,dax=0"
	[[ "$output" == *"bad DAX size"* ]]
	run -1 "$VMM" --kernel /nonexistent --fs "t=/tmp" --fs "t=/var"
	[[ "$output" == *"a tag is one PATH"* ]]
	# Verdicts: the message ends with the reason, no strerror after it.
	run -1 "$VMM" --kernel /nonexistent --fs "no-path"
	[ "$output" = "kvrun-vmm: --fs: expected TAG=PATH, TAG/NAME=PATH or TAG/" ]
	run -1 "$VMM" --kernel /nonexistent --fs "t=/tmp,dax=0"
	[ "$output" = "kvrun-vmm: --fs: bad DAX size '0'" ]
}

@test "vmm fs: a share that does not exist stops the VMM before boot" {
	[ -e /dev/kvm ] || skip "no /dev/kvm on this host"
	[ -f "$KERNEL" ] || fail "guest kernel $KERNEL not built (make guest)"
	run -1 timeout 60 "$VMM" --kernel "$KERNEL" --console none --fs "t=$BATS_TEST_TMPDIR/nope"
	[[ "$output" == *"virtio-fs t: open"*"nope"* ]]
}

#!/usr/bin/env bats
# kvrun-vmm's virtio-fs server without a VM: tests/fuse-devhost serves the
# same FUSE server (vmm/virtio/fuse_*.c), confined as a jailed VMM's worker
# is (an empty root of its own, Landlock beneath its shares, its six
# capabilities, the SANDBOX_FS seccomp list), behind the host's /dev/fuse. The host kernel's FUSE client, and
# overlayfs on top of it, drive it as a guest's kernel does: root in the
# client has every capability, so what lands on the host here is what a
# hostile guest root can make land. Differences from a VM: no DAX, the host
# kernel's FUSE minor, requests one at a time.

load helpers
load fuse_devhost

function setup() {
	requires root
	[ -x "$DEVHOST" ] || skip "fuse-devhost not built (make)"
	[ -c /dev/fuse ] || skip "no /dev/fuse on this host"
	T=$(mktemp -d /tmp/kvrun-fuse-host.XXXXXX)
	mkdir "$T/share" "$T/mnt"
	SERVER_PID=""
	LOOP=""
}

function teardown() {
	for m in "$T/root" "$T/l0" "$T/mnt"; do
		mountpoint -q "$m" && umount "$m"
	done
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	devhost_stop
	rm -rf "$T"
}

# serve SPEC...: the server on $T/mnt with kvrun-vmm's --fs specs (one tag).
function serve() {
	devhost_serve "$T/mnt" "$T" "$@"
}

# The host-side xattrs of a path, "name=value" sorted (values as Python bytes).
function host_xattrs() {
	python3 -c 'import os, sys
p = sys.argv[1]
for k in sorted(os.listxattr(p, follow_symlinks=False)):
    print("%s=%r" % (k, os.getxattr(p, k, follow_symlinks=False)))' "$1"
}

# The thread that serves (not the main one).
function server_tid() {
	local t
	for t in /proc/"$SERVER_PID"/task/*; do
		[ "${t##*/}" = "$SERVER_PID" ] || { echo "${t##*/}"; return; }
	done
}

# The server thread's /proc status field NAME.
function server_status() {
	awk -v k="$1:" '$1 == k {print $2}' "/proc/$SERVER_PID/task/$(server_tid)/status"
}

@test "fuse-devhost: files, links, modes and owners made through the mount land on the host as made; the server is confined" {
	serve "rootfs=$T/share"
	M=$T/mnt S=$T/share
	echo hello >"$M/f"
	chown 1000:1001 "$M/f"
	chmod 4751 "$M/f"
	mkdir -m 0750 "$M/d"
	ln -s ../f "$M/d/sym"
	ln "$M/f" "$M/d/hard"
	mkfifo "$M/fifo"
	mv "$M/d" "$M/d2"
	echo more >>"$M/f"
	truncate -s 3 "$M/d2/hard"
	[ "$(cat "$S/f")" = hel ]
	[ "$(stat -c '%a %u %g %h' "$S/f")" = "4751 1000 1001 2" ]
	[ "$(stat -c '%i' "$S/f")" = "$(stat -c '%i' "$S/d2/hard")" ]
	[ "$(stat -c '%a' "$S/d2")" = 750 ]
	[ "$(readlink "$S/d2/sym")" = ../f ]
	[ -p "$S/fifo" ]
	[ ! -e "$S/d" ]
	# A write by another user clears the set-uid bit, as on any Linux file system.
	chmod 0755 "$T"
	chmod 4757 "$M/f"
	setpriv --reuid 65534 --regid 65534 --clear-groups sh -c "echo x >>'$M/f'"
	[ "$(stat -c '%a' "$S/f")" = 757 ]
	# A device node needs the share's `dev`; an overlay whiteout (char 0:0) does not.
	run mknod "$M/null" c 1 3
	[ "$status" -ne 0 ]
	[ ! -e "$S/null" ]
	mknod "$M/wh" c 0 0
	[ "$(stat -c '%F %t:%T' "$S/wh")" = "character special file 0:0" ]
	rm "$M/wh" "$M/fifo" "$M/d2/hard"
	[ ! -e "$S/wh" ] && [ ! -e "$S/d2/hard" ]
	# All of it was served by a thread in seccomp filter mode with the
	# worker's capabilities only: chown, dac_override, dac_read_search,
	# fowner, fsetid (bits 0-4) and mknod (bit 27).
	[ "$(server_status Seccomp)" = 2 ]
	[ "$(server_status NoNewPrivs)" = 1 ]
	[ "$(server_status CapEff)" = 000000000800001f ]
	[ "$(server_status CapBnd)" = 000000000800001f ]
	# And in a root of its own: the one directory it exports, not the host's /.
	[ "$(stat -L -c %d:%i "/proc/$SERVER_PID/task/$(server_tid)/root/")" = "$(stat -c %d:%i "$S")" ]
	# Its /proc/self/fd (the re-opens, the links above) is in a proc of its
	# own attached nowhere (shown as /PID/fd), not the host's /proc, whose
	# ".." would lead out of that root to the host's /.
	local links
	links=$(for f in /proc/"$SERVER_PID"/fd/*; do readlink "$f"; done)
	grep -qx "/$SERVER_PID/fd" <<<"$links"
	run ! grep -q "^/proc/" <<<"$links"
}

@test "fuse-devhost: an overlay with its upper on a share (copy-up, whiteouts, opaque dir, links); trusted.overlay.* kept as user.kvrun.trusted.*; a new overlay mount sees the same tree" {
	grep -qw erofs /proc/filesystems || skip "host kernel without erofs"
	grep -qw overlay /proc/filesystems || skip "host kernel without overlayfs"
	command -v mkfs.erofs >/dev/null || skip "mkfs.erofs not installed (make deps)"
	# The lower: an erofs layer on a loop device, as a container's layers are.
	mkdir -p "$T/low/etc" "$T/low/dir" "$T/low/keep" "$T/l0" "$T/root"
	echo base >"$T/low/etc/f"
	echo gone >"$T/low/dir/x"
	echo y >"$T/low/dir/y"
	echo old >"$T/low/keep/old"
	mkfs.erofs --quiet "$T/low.erofs" "$T/low"
	LOOP=$(losetup -f --show -r "$T/low.erofs")
	mount -t erofs -o ro "$LOOP" "$T/l0"
	serve "rootfs=$T/share"
	# The agent's layout (agent/mounts.c rootfs_overlay): upper/ and work/ on the share.
	mkdir "$T/mnt/upper" "$T/mnt/work"
	mount -t overlay overlay -o "lowerdir=$T/l0,upperdir=$T/mnt/upper,workdir=$T/mnt/work" "$T/root"
	R=$T/root U=$T/share/upper
	echo new >"$R/etc/f"
	rm "$R/dir/x"
	rm -rf "$R/keep"
	mkdir "$R/keep"
	echo z >"$R/keep/z"
	ln "$R/etc/f" "$R/hl"
	chown 1000:1000 "$R/dir/y"
	# What the host holds: the copied-up file, a whiteout, an opaque directory.
	[ "$(cat "$U/etc/f")" = new ]
	[ "$(stat -c '%F %t:%T' "$U/dir/x")" = "character special file 0:0" ]
	[ "$(stat -c '%u:%g' "$U/dir/y")" = 1000:1000 ]
	[ "$(stat -c '%i' "$U/etc/f")" = "$(stat -c '%i' "$U/hl")" ]
	run host_xattrs "$U/keep"
	[ "$output" = "user.kvrun.trusted.overlay.opaque=b'y'" ]
	run host_xattrs "$U"
	[[ "$output" != *$'\n'trusted.* && "$output" != trusted.* ]]
	[[ "$output" == *user.kvrun.trusted.overlay.* ]]
	# The mapping reads back as the guest wrote it.
	run python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "trusted.overlay.opaque"))' "$T/mnt/upper/keep"
	[ "$output" = "b'y'" ]
	# A second mount of the same upper (a container started again) sees the same tree.
	( cd "$R" && find . | sort ) >"$T/tree1"
	umount "$T/root"
	mount -t overlay overlay -o "lowerdir=$T/l0,upperdir=$T/mnt/upper,workdir=$T/mnt/work" "$T/root"
	( cd "$R" && find . | sort ) >"$T/tree2"
	diff -u "$T/tree1" "$T/tree2"
	[ "$(cat "$R/etc/f")" = new ]
	[ ! -e "$R/dir/x" ]
	[ ! -e "$R/keep/old" ]
	[ "$(cat "$R/keep/z")" = z ]
	[ "$(cat "$R/dir/y")" = y ]
	# The layer itself is untouched.
	[ "$(cat "$T/l0/etc/f")" = base ]
	[ -e "$T/l0/dir/x" ]
}

@test "fuse-devhost: a read-only share refuses every change with EROFS, even to root with every capability; the host files are unchanged" {
	echo kept >"$T/share/f"
	mkdir "$T/share/d"
	chmod 0644 "$T/share/f"
	before=$(stat -c '%a %u %g %s %Y' "$T/share/f")
	serve "rootfs=$T/share,ro"
	M=$T/mnt
	[ "$(cat "$M/f")" = kept ]
	local op
	for op in "echo x >'$M/f'" "echo x >'$M/new'" "truncate -s 0 '$M/f'" "chmod 777 '$M/f'" \
		"chown 1:1 '$M/f'" "touch -d 2001-01-01 '$M/f'" "rm '$M/f'" "mv '$M/f' '$M/g'" \
		"mkdir '$M/n'" "rmdir '$M/d'" "ln -s x '$M/s'" "ln '$M/f' '$M/h'" "mknod '$M/w' c 0 0" \
		"python3 -c 'import os; os.setxattr(\"$M/f\", \"user.x\", b\"1\")'"; do
		run bash -c "$op" 2>&1
		echo "$op: $status $output" >&2
		[ "$status" -ne 0 ]
		[[ "$output" == *"Read-only file system"* ]]
	done
	[ "$(cat "$T/share/f")" = kept ]
	[ "$(stat -c '%a %u %g %s %Y' "$T/share/f")" = "$before" ]
	[ "$(find "$T/share" -mindepth 1 -printf '%f\n' | sort | tr '\n' ' ')" = "d f " ]
	run host_xattrs "$T/share/f"
	[ -z "$output" ]
}

@test "fuse-devhost: security.* and trusted.* set through the mount never become host labels; user.kvrun.* is reserved" {
	touch "$T/share/f"
	serve "rootfs=$T/share"
	M=$T/mnt
	python3 - "$M/f" <<-'EOF'
		import errno, os, sys
		p = sys.argv[1]
		os.setxattr(p, "security.selinux", b"system_u:object_r:shadow_t:s0")
		os.setxattr(p, "security.capability", b"\x01\x00\x00\x02" + b"\xff" * 16)
		os.setxattr(p, "trusted.x", b"t")
		os.setxattr(p, "user.plain", b"u")
		for name in ("user.kvrun.security.selinux", "user.kvrun.x"):
		    try:
		        os.setxattr(p, name, b"forged")
		        sys.exit(name + " was set")
		    except OSError as e:
		        assert e.errno == errno.EPERM, (name, e)
		# The guest reads back what it set, under its own names.
		assert os.getxattr(p, "security.selinux") == b"system_u:object_r:shadow_t:s0"
		assert os.getxattr(p, "trusted.x") == b"t"
		names = set(os.listxattr(p))
		assert {"security.selinux", "security.capability", "trusted.x", "user.plain"} <= names, names
		assert not any(n.startswith("user.kvrun.") for n in names), names
	EOF
	run host_xattrs "$T/share/f"
	echo "$output" >&2
	[[ "$output" != *$'\n'security.* && "$output" != security.* ]]
	[[ "$output" != *$'\n'trusted.* && "$output" != trusted.* ]]
	[[ "$output" == *"user.kvrun.security.selinux=b'system_u:object_r:shadow_t:s0'"* ]]
	[[ "$output" == *"user.kvrun.security.capability="* ]]
	[[ "$output" == *"user.kvrun.trusted.x=b't'"* ]]
	[[ "$output" == *"user.plain=b'u'"* ]]
	# No file capability on the host: getcap (libcap) sees none.
	if command -v getcap >/dev/null; then
		[ -z "$(getcap "$T/share/f")" ]
	fi
}

@test "fuse-devhost: named shares of one device: each reached, the server's root an empty directory" {
	mkdir "$T/other"
	echo a >"$T/share/fa"
	echo b >"$T/other/fb"
	serve "rootfs/a=$T/share" "rootfs/b=$T/other,ro"
	[ "$(cat "$T/mnt/a/fa")" = a ]
	[ "$(cat "$T/mnt/b/fb")" = b ]
	echo new >"$T/mnt/a/new"
	[ "$(cat "$T/share/new")" = new ]
	run bash -c "echo x >'$T/mnt/b/new'"
	[[ "$output" == *"Read-only file system"* ]]
	[ -z "$(ls -A "/proc/$SERVER_PID/task/$(server_tid)/root/")" ]
	[ "$(stat -f -L -c %T "/proc/$SERVER_PID/task/$(server_tid)/root/")" = tmpfs ]
}

@test "fuse-devhost: a tree copied in and out through the mount arrives identical (names, modes, owners, links, contents)" {
	local src=/usr/share/zoneinfo
	[ -d "$src" ] || skip "no $src to copy (tzdata)"
	serve "rootfs=$T/share"
	listing() { (cd "$1" && find . -printf '%p %y %m %U %G %s %l\n' | sort && find . -type f -exec md5sum {} + | sort -k2); }
	cp -a "$src" "$T/mnt/tree"
	diff <(listing "$src") <(listing "$T/share/tree")
	diff <(listing "$src") <(listing "$T/mnt/tree")
	cp -a "$T/mnt/tree" "$T/back"
	diff <(listing "$src") <(listing "$T/back")
	rm -rf "$T/mnt/tree"
	[ ! -e "$T/share/tree" ]
}

@test "fuse-devhost: unmounted, the server exits 0 and leaves nothing" {
	serve "rootfs=$T/share"
	echo x >"$T/mnt/f"
	umount "$T/mnt"
	devhost_wait_gone "$SERVER_PID"
	run wait "$SERVER_PID"
	[ "$status" -eq 0 ]
	SERVER_PID=""
	run ! grep -q "$T" /proc/mounts
	[ "$(cat "$T/share/f")" = x ]
}

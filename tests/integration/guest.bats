#!/usr/bin/env bats
# The guest kernel, proved before (and independently of) kvrun-vmm: QEMU's
# microvm machine boots build/guest/vmlinux with the test initramfs under
# KVM and reaches the test init. Skipped, with the reason, where /dev/kvm is
# absent; a KVM that refuses to run fails the test.

bats_require_minimum_version 1.5.0

setup_file() {
	export ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	export GUEST=$ROOT/build/guest
}

setup() {
	[ -e /dev/kvm ] || skip "no /dev/kvm on this host"
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm not accessible to $(id -un)"
	command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (make deps)"
	[ -f "$GUEST/vmlinux" ] || { echo "build/guest/vmlinux missing: run make guest"; return 1; }
}

@test "guest kernel boots under QEMU microvm to the test init and powers off" {
	console=$BATS_TEST_TMPDIR/console.log
	start=$(date +%s%N)
	run timeout 300 env CONSOLE="$console" "$ROOT/tests/guest/qemu-boot" \
		"$GUEST/vmlinux" "$GUEST/test-initramfs.cpio" kvrun.test=cpus,syscalls kvrun.cpus=1
	end=$(date +%s%N)
	echo "qemu exit status $status; console:"
	cat "$console"
	# isa-debug-exit: a power-off (0 on the exit port) exits QEMU with 1.
	[ "$status" -eq 1 ]
	grep -q '^KVRUN-TEST-INIT' "$console"
	grep -q '^KVRUN-TEST syscalls PASS' "$console"
	grep -q '^KVRUN-TEST-DONE 0' "$console"
	echo "# boot to power-off: $(( (end - start) / 1000000 )) ms" >&3
}

@test "a guest panic reaches QEMU as the panic code on the exit port" {
	console=$BATS_TEST_TMPDIR/console.log
	run timeout 300 env CONSOLE="$console" "$ROOT/tests/guest/qemu-boot" \
		"$GUEST/vmlinux" "$GUEST/test-initramfs.cpio" kvrun.test=panic
	cat "$console"
	# panic notifier writes 1: QEMU exits with (1 << 1) | 1 = 3.
	[ "$status" -eq 3 ]
	grep -q 'Kernel panic' "$console"
}

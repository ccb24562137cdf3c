# Shared by vmm.bats, vmm_snapshot.bats and vmm_fs.bats: where the VMM and
# its guests are, the KVM skip, and a `run` wrapper for kvrun-vmm.

ROOT_DIR=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
BUILD=${BUILD:-$ROOT_DIR/build}
VMM=$BUILD/kvrun-vmm
PAYLOAD=$BUILD/tests/vmm-payload.elf
KERNEL=${KVRUN_GUEST_KERNEL:-$BUILD/guest/vmlinux}
INITRD=${KVRUN_TEST_INITRD:-$BUILD/guest/test-initramfs.cpio}
HOST_PY=$BATS_TEST_DIRNAME/vmm_host.py
BOOT_TIMEOUT=${KVRUN_BOOT_TIMEOUT:-400}

needs_kvm() {
	[ -e /dev/kvm ] || skip "no /dev/kvm on this host"
}

fail() {
	echo "$@" >&2
	return 1
}

# vmm [bats-run-status] args...: run kvrun-vmm (for at most $VMM_TIMEOUT
# seconds, else $BOOT_TIMEOUT), show command/status/output on failure.
vmm() {
	local expect=()
	if [[ "${1:-}" =~ ^(-[0-9]+|!)$ ]]; then
		expect=("$1")
		shift
	fi
	run "${expect[@]}" timeout "${VMM_TIMEOUT:-$BOOT_TIMEOUT}" "$VMM" "$@"
	echo "kvrun-vmm $* (status=$status):" >&2
	printf '%s\n' "$output" >&2
}

#!/usr/bin/env bats
# kvrun-vmm in real KVM VMs. Two kinds of guest:
#  - build/tests/vmm-payload.elf, a tiny 64-bit guest (tests/guest/vmm-payload.S)
#    that boots in milliseconds: boot path, console, exit paths, PVM fixups,
#    API, confinement, parent death;
#  - the project's guest kernel with the test initramfs (tests/guest/test-init.c):
#    one boot runs every device check at once (a cold boot costs ~30 s on a PVM
#    host), a second one panics.
# Tests are skipped, with the reason, only where /dev/kvm is absent; anything
# else that stops a VM (KVM refusing, a missing guest kernel) fails.

bats_require_minimum_version 1.5.0

load vmm_helpers

needs_guest() {
	needs_kvm
	[ -z "${KVRUN_VMM_SKIP_BOOTS:-}" ] || skip "guest boots skipped (KVRUN_VMM_SKIP_BOOTS is set)"
	[ -f "$KERNEL" ] || fail "guest kernel $KERNEL not built (make guest)"
	[ -f "$INITRD" ] || fail "test initramfs $INITRD not built (make guest)"
}


payload() {
	vmm "$@" --kernel "$PAYLOAD" --mem 32M --no-rng
}

# ---------------------------------------------------------------- guest boots

# The all-devices boot and the panic boot run once, in setup_file; the tests
# below read what they left in $BATS_FILE_TMPDIR.
boot_all_devices() {
	local d=$BATS_FILE_TMPDIR/all
	mkdir -p "$d/pmemroot"
	echo "hello from pmem" > "$d/pmemroot/hello.txt"
	mkfs.ext4 -q -F -b 4096 -L kvrunpmem -d "$d/pmemroot" "$d/pmem.img" 16M > /dev/null
	printf 'KVRUN-BLK-TEST\n' > "$d/blk.img"
	truncate -s 1M "$d/blk.img"
	local uds=$d/vsock.sock
	python3 "$HOST_PY" echo-server "${uds}_1234" > "$d/echo.log" 2>&1 &
	echo $! > "$d/echo.pid"
	python3 "$HOST_PY" vsock-client "$uds" 1235 "$d/console.log" > "$d/client.log" 2>&1 &
	echo $! > "$d/client.pid"
	local start end rc=0
	start=$(date +%s.%N)
	timeout "$BOOT_TIMEOUT" "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --mem 256M --cpus 2 \
		--cmdline "kvrun.test=cpus,rng,pmem,blk,vsock kvrun.cpus=2 kvrun.pmemfile=hello.txt kvrun.pmemexpect=hello" \
		--console "$d/console.log" --pmem "$d/pmem.img,ro" --blk "$d/blk.img" \
		--vsock "$uds" --stats "$d/stats.json" > "$d/vmm.log" 2>&1 || rc=$?
	echo $rc > "$d/status"
	end=$(date +%s.%N)
	echo "$start $end" > "$d/times"
	kill "$(cat "$d/echo.pid")" "$(cat "$d/client.pid")" 2>/dev/null || true
	wait 2>/dev/null || true
}

boot_panic() {
	local d=$BATS_FILE_TMPDIR/panic
	mkdir -p "$d"
	local rc=0
	timeout "$BOOT_TIMEOUT" "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --mem 128M \
		--cmdline "kvrun.test=panic" --no-rng --console "$d/console.log" > "$d/vmm.log" 2>&1 || rc=$?
	echo $rc > "$d/status"
}

setup_file() {
	[ -e /dev/kvm ] || return 0
	[ -f "$KERNEL" ] && [ -f "$INITRD" ] || return 0
	if [ -z "${KVRUN_VMM_SKIP_BOOTS:-}" ]; then
		boot_all_devices
		boot_panic
	fi
}

all_devices_result() {
	needs_guest
	local d=$BATS_FILE_TMPDIR/all
	[ -f "$d/status" ] || fail "the all-devices boot did not run"
	echo "kvrun-vmm status $(cat "$d/status"); its log:" >&2
	cat "$d/vmm.log" >&2
	echo "console (last 40 lines):" >&2
	tail -n 40 "$d/console.log" >&2
}

@test "guest: boots to the test init's marker (console)" {
	all_devices_result
	grep -q '^KVRUN-TEST-INIT' "$BATS_FILE_TMPDIR/all/console.log"
	read -r start end < "$BATS_FILE_TMPDIR/all/times"
	echo "# boot to power-off: $(echo "$end - $start" | bc) s" >&3
}

@test "guest: power-off gives exit status 0" {
	all_devices_result
	grep -q '^KVRUN-TEST-DONE' "$BATS_FILE_TMPDIR/all/console.log"
	[ "$(cat "$BATS_FILE_TMPDIR/all/status")" -eq 0 ]
}

@test "guest: 2 vCPUs online" {
	all_devices_result
	grep -q '^KVRUN-TEST cpus PASS' "$BATS_FILE_TMPDIR/all/console.log"
}

@test "guest: virtio-rng" {
	all_devices_result
	grep -q '^KVRUN-TEST rng PASS' "$BATS_FILE_TMPDIR/all/console.log"
}

@test "guest: virtio-pmem mounted with DAX, file read" {
	all_devices_result
	grep -q '^KVRUN-TEST pmem PASS dax=yes' "$BATS_FILE_TMPDIR/all/console.log"
}

@test "guest: virtio-blk read and write (the write reaches the host file)" {
	all_devices_result
	grep -q '^KVRUN-TEST blk PASS' "$BATS_FILE_TMPDIR/all/console.log"
	dd if="$BATS_FILE_TMPDIR/all/blk.img" bs=4096 skip=1 count=1 2>/dev/null | grep -q KVRUN-BLK-WRITTEN
}

@test "guest: vsock echo both ways (guest->host and host->guest)" {
	all_devices_result
	cat "$BATS_FILE_TMPDIR/all/echo.log" "$BATS_FILE_TMPDIR/all/client.log" >&2
	grep -q '^KVRUN-TEST vsock PASS' "$BATS_FILE_TMPDIR/all/console.log"
	grep -q 'vsock-client: echoed' "$BATS_FILE_TMPDIR/all/client.log"
}

@test "guest: a kernel panic gives a non-zero exit and the console keeps the message" {
	needs_guest
	local d=$BATS_FILE_TMPDIR/panic
	[ -f "$d/status" ] || fail "the panic boot did not run"
	cat "$d/vmm.log" >&2
	tail -n 20 "$d/console.log" >&2
	[ "$(cat "$d/status")" -eq 3 ]
	grep -q 'Kernel panic' "$d/console.log"
	grep -q 'panicked' "$d/vmm.log"
}

# ------------------------------------------------------------ payload guest

@test "--version and --help" {
	vmm -0 --version
	[[ "$output" == "kvrun-vmm "* ]]
	vmm -0 --help
	[[ "$output" == *"--kernel PATH"* ]]
	[[ "$output" == *"--api SOCK"* ]]
}

@test "--check: this host can run microVMs" {
	needs_kvm
	vmm -0 --check
	[[ "$output" == *"ok   /dev/kvm"* ]]
	[[ "$output" == *"this host can run kvrun microVMs"* ]]
}

@test "payload: 64-bit entry, console, int3/fwait fixups, power-off exit 0" {
	needs_kvm
	payload -0 --stats "$BATS_TEST_TMPDIR/stats.json"
	[[ "$output" == *"KVRUN-PAYLOAD cmdline:"*"console=ttyS0"* ]]
	[[ "$output" == *"PAYLOAD-BP"* ]]
	[[ "$output" == *"PAYLOAD-OK"* ]]
	jq -e '.exit_status == 0 and .first_run_us > 0 and .exits.io > 0' "$BATS_TEST_TMPDIR/stats.json"
}

@test "payload: the guest's exit status, reset, triple fault, panic report" {
	needs_kvm
	payload -7 --cmdline payload=e
	payload -2 --cmdline payload=r
	[[ "$output" == *"guest reset"* ]]
	payload -2 --cmdline payload=t
	payload -3 --cmdline payload=k --console "$BATS_TEST_TMPDIR/con.log"
	[[ "$output" == *"panicked"* ]]
	grep -q PAYLOAD-PANIC "$BATS_TEST_TMPDIR/con.log"
}

@test "payload: a guest halted with interrupts off counts as powered off" {
	needs_kvm
	payload -0 --cmdline payload=x --log-level debug
	[[ "$output" == *"PAYLOAD-HALT"* ]]
	[[ "$output" == *"halted with interrupts off"* ]]
}

@test "payload: console input reaches the guest" {
	needs_kvm
	run -0 bash -c "printf 'hello-input q' | timeout 60 '$VMM' --kernel '$PAYLOAD' --mem 32M --no-rng --cmdline payload=c"
	echo "$output" >&2
	[[ "$output" == *"PAYLOAD-ECHO"*"hello-input "* ]]
}

@test "payload: console on a new pty, both ways" {
	needs_kvm
	"$VMM" --kernel "$PAYLOAD" --mem 32M --no-rng --cmdline payload=c --console pty \
		2> "$BATS_TEST_TMPDIR/err.log" &
	local pid=$! pty=""
	for _ in $(seq 100); do
		pty=$(sed -n 's/^kvrun-vmm: console on //p' "$BATS_TEST_TMPDIR/err.log")
		[ -n "$pty" ] && break
		sleep 0.05
	done
	[ -c "$pty" ] || fail "no pty announced: $(cat "$BATS_TEST_TMPDIR/err.log")"
	sleep 0.5 # the user attaches after the VMM started
	run python3 "$HOST_PY" pty-echo "$pty" "via-pty "
	echo "$output" >&2
	[ "$status" -eq 0 ]
	local rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ]
}

@test "payload: guest RAM from a file, private (copy on write) or shared" {
	needs_kvm
	local img=$BATS_TEST_TMPDIR/ram.img
	truncate -s 32M "$img"
	payload -0 --mem-file "$img"
	[ -z "$(tr -d '\0' < "$img" | head -c 1)" ]
	payload -0 --mem-file "$img,shared"
	grep -q 'console=ttyS0' "$img"
	truncate -s 16M "$img"
	payload -1 --mem-file "$img"
	[[ "$output" == *"$img"* ]]
}

# Start a halted payload guest in the background with an API socket.
start_halted() {
	API=$BATS_TEST_TMPDIR/vmm.sock
	# A jailed VMM leaves its socket behind: wait for this one's, not that.
	rm -f "$API" "$BATS_TEST_TMPDIR/con.log"
	"$VMM" --kernel "$PAYLOAD" --mem 32M --no-rng --cmdline payload=h --api "$API" \
		--console "$BATS_TEST_TMPDIR/con.log" "$@" > "$BATS_TEST_TMPDIR/vmm.log" 2>&1 &
	VMM_PID=$!
	for _ in $(seq 100); do
		[ -S "$API" ] && grep -q PAYLOAD-HALT "$BATS_TEST_TMPDIR/con.log" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "VMM did not come up: $(cat "$BATS_TEST_TMPDIR/vmm.log")"
}

# api OP [status]: kvrun-vmm --api-call (the library's client) against $API.
api() {
	run "-${2:-0}" "$VMM" --api-call "$API" "$1"
	echo "api $1 -> ($status) $output" >&2
}

@test "API: status, pause, resume, shutdown" {
	needs_kvm
	start_halted
	api status
	[[ "$output" == *'"state":"running"'* ]]
	[[ "$output" == *"\"pid\":$VMM_PID"* ]]
	api pause
	[[ "$output" == *'"state":"paused"'* ]]
	api status
	[[ "$output" == *'"state":"paused"'* ]]
	api resume
	[[ "$output" == *'"state":"running"'* ]]
	api bogus 1
	[[ "$output" == *'"ok":false'*EINVAL* ]]
	# The raw protocol, one JSON object per line, from another client.
	run -0 python3 "$HOST_PY" api "$API" '{"op":"status"}'
	[[ "$output" == *'"ok":true'* ]]
	api shutdown
	local rc=0
	wait "$VMM_PID" || rc=$?
	[ "$rc" -eq 0 ]
	# Jailed, the VMM no longer reaches its socket's directory: the socket
	# stays for the directory's owner (kvrun removes its state directory),
	# and the next VMM on the path replaces it (--no-jail: removed).
	[ -S "$API" ]
}

@test "confinement: seccomp filter and no capabilities in every thread" {
	needs_kvm
	start_halted
	local t
	for t in /proc/"$VMM_PID"/task/*; do
		grep -E '^(Name|Uid|Seccomp|CapEff|CapBnd|NoNewPrivs):' "$t/status" >&2
		grep -q '^Seccomp:[[:space:]]*2' "$t/status"
		grep -q '^CapEff:[[:space:]]*0000000000000000' "$t/status"
		grep -q '^NoNewPrivs:[[:space:]]*1' "$t/status"
		# No virtio-fs device here: every thread is the jail's uid.
		! grep -q '^Uid:[[:space:]]*0[[:space:]]' "$t/status" || false
	done
	kill -TERM "$VMM_PID"
	local rc=0
	wait "$VMM_PID" || rc=$?
	[ "$rc" -eq 143 ]
}

@test "confinement can be turned off for debugging (--no-sandbox)" {
	needs_kvm
	start_halted --no-sandbox
	grep -q '^Seccomp:[[:space:]]*0' /proc/"$VMM_PID"/status
	grep -q '^Uid:[[:space:]]*0[[:space:]]' /proc/"$VMM_PID"/status
	[ "$(readlink /proc/"$VMM_PID"/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ]
	api shutdown
	wait "$VMM_PID"
	[ ! -e "$API" ]
}

# The ids the jail gives a VMM by default (vmm/sandbox.h): 0x6b760000 + pid.
jail_default_uid() {
	echo $((0x6b760000 + $1))
}

@test "jail: an unprivileged uid and gid, its own mount, ipc and uts namespaces, an empty root" {
	needs_kvm
	start_halted --vsock "$BATS_TEST_TMPDIR/vsock.sock"
	local st=/proc/$VMM_PID/status id
	id=$(jail_default_uid "$VMM_PID")
	grep -E '^(Uid|Gid|Groups):' "$st" >&2
	grep -qx $'Uid:\t'"$id"$'\t'"$id"$'\t'"$id"$'\t'"$id" "$st"
	grep -qx $'Gid:\t'"$id"$'\t'"$id"$'\t'"$id"$'\t'"$id" "$st"
	grep -qE '^Groups:[[:space:]]*$' "$st"
	local t
	for t in /proc/"$VMM_PID"/task/*; do
		grep -q '^Seccomp:[[:space:]]*2' "$t/status"
		grep -q "^Uid:[[:space:]]*$id[[:space:]]" "$t/status"
	done
	local ns
	for ns in mnt ipc uts; do
		echo "$ns: $(readlink /proc/"$VMM_PID"/ns/$ns) (host $(readlink /proc/self/ns/$ns))" >&2
		[ "$(readlink /proc/"$VMM_PID"/ns/$ns)" != "$(readlink /proc/self/ns/$ns)" ]
	done
	# Its root: a tmpfs holding only the vsock socket's directory (the
	# guest's outgoing connections dial <uds>_<port> there), nothing of the host's.
	echo "root: $(ls -A /proc/"$VMM_PID"/root/ | tr '\n' ' ')" >&2
	[ "$(ls -A /proc/"$VMM_PID"/root/)" = vsock ]
	[ "$(stat -f -L -c %T /proc/"$VMM_PID"/root/)" = tmpfs ]
	[ "$(stat -L -c %d:%i /proc/"$VMM_PID"/root/)" != "$(stat -c %d:%i /)" ]
	[ -S /proc/"$VMM_PID"/root/vsock/vsock.sock ]
	# The API works as before (its socket was bound during setup).
	api status
	api shutdown
	wait "$VMM_PID"
}

@test "jail: --jail-uid picks the ids, --no-jail keeps root and the host's namespaces" {
	needs_kvm
	start_halted --jail-uid 4242:4343
	grep -qx $'Uid:\t4242\t4242\t4242\t4242' /proc/"$VMM_PID"/status
	grep -qx $'Gid:\t4343\t4343\t4343\t4343' /proc/"$VMM_PID"/status
	api shutdown
	wait "$VMM_PID"
	start_halted --no-jail
	grep -q '^Uid:[[:space:]]*0[[:space:]]' /proc/"$VMM_PID"/status
	grep -q '^Seccomp:[[:space:]]*2' /proc/"$VMM_PID"/status
	grep -q '^CapEff:[[:space:]]*0000000000000000' /proc/"$VMM_PID"/status
	[ "$(readlink /proc/"$VMM_PID"/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ]
	[ "$(stat -L -c %d:%i /proc/"$VMM_PID"/root/)" = "$(stat -c %d:%i /)" ]
	api shutdown
	wait "$VMM_PID"
	[ ! -e "$API" ]
	vmm -1 --kernel "$PAYLOAD" --jail-uid 0
	[[ "$output" == *"--jail-uid"* ]]
}

@test "the VMM exits when its parent dies" {
	needs_kvm
	bash -c "'$VMM' --kernel '$PAYLOAD' --mem 32M --no-rng --cmdline payload=h --console none & echo \$! > '$BATS_TEST_TMPDIR/pid'; wait" &
	local parent=$!
	for _ in $(seq 100); do
		[ -s "$BATS_TEST_TMPDIR/pid" ] && break
		sleep 0.05
	done
	local pid
	pid=$(cat "$BATS_TEST_TMPDIR/pid")
	sleep 0.3
	kill -0 "$pid"
	kill -KILL "$parent"
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -KILL "$pid"
	fail "kvrun-vmm $pid outlived its parent"
}

@test "bad inputs: a clear message and exit status 1" {
	needs_kvm
	vmm -1 --kernel /nonexistent/vmlinux
	[[ "$output" == *"/nonexistent/vmlinux"* ]]
	printf 'not a kernel at all' > "$BATS_TEST_TMPDIR/junk"
	truncate -s 4096 "$BATS_TEST_TMPDIR/junk"
	vmm -1 --kernel "$BATS_TEST_TMPDIR/junk" --mem 32M --no-rng
	# A verdict: the message ends with the reason, no strerror after it.
	[[ "$output" == *"$BATS_TEST_TMPDIR/junk: kernel: neither ELF nor bzImage (no HdrS header)" ]]
	vmm -1 --kernel "$PAYLOAD" --initrd /nonexistent/initrd --mem 32M --no-rng
	[[ "$output" == *"/nonexistent/initrd"* ]]
	vmm -1 --kernel "$PAYLOAD" --cpus 0
	vmm -1 --kernel "$PAYLOAD" --mem 32M --pmem /nonexistent.img
	[[ "$output" == *"pmem"* ]]
}

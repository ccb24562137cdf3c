#!/usr/bin/env bash
# kvrun-vmm against QEMU's microvm machine, same kernel, initramfs, memory,
# vCPUs and kernel command line, measured the same way in the same run:
#  (1) exec to the first KVM_RUN        (LD_PRELOAD probe, tests/bench/kvm-probe.c)
#  (2) exec to the console marker       (KVRUN-TEST-INIT from the test init)
#  (3) VMM RSS and PSS without guest RAM, at the marker (/proc/PID/smaps)
#  (4) VM exits to user space during the boot (KVM_RUN calls, same probe)
# Prints one line per measure with the medians and the ratio kvrun/QEMU, then
# a JSON object. Env: RUNS (default 3), MEM (MiB, 256), CPUS (1), PAIRED=1
# to boot each kvrun/QEMU pair side by side so both guests see the same host
# load (use it on a busy machine): QEMU starts first, kvrun-vmm once QEMU's
# first KVM_RUN happened, so neither start-up competes with the other's.
# Without PAIRED, one after the other, alternating.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD:-$root/build}
runs=${RUNS:-3} mem=${MEM:-256} cpus=${CPUS:-1}
kernel=$build/guest/vmlinux initrd=$build/guest/test-initramfs.cpio
vmm=$build/kvrun-vmm probe=$build/tests/bench/kvm-probe.so runner=$build/tests/bench/bench-run
marker=KVRUN-TEST-INIT

if [ ! -e /dev/kvm ]; then
	echo "vmm bench: skipped: no /dev/kvm on this host"
	exit 0
fi
for f in "$kernel" "$initrd" "$vmm" "$probe" "$runner"; do
	[ -e "$f" ] || { echo "vmm bench: $f missing (make && make guest)" >&2; exit 1; }
done
qemu=$(command -v qemu-system-x86_64) || { echo "vmm bench: qemu-system-x86_64 missing" >&2; exit 1; }

# The same kernel arguments for both (qemu-boot's), PVM ones included.
args="console=ttyS0 quiet panic=-1 reboot=k kvrun.exit=0x501"
if [ -d /sys/module/kvm_pvm ] && ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
	args="$args $(grep -v '^#' "$root/rootfs-tools/guest/pvm.cmdline" | tr '\n' ' ')"
fi
memb=$((mem * 1024 * 1024))
work=$(mktemp -d /tmp/kvrun-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

run_one() { # name out -- cmd...
	local name=$1 out=$2
	shift 3
	# Guest RAM that kvrun-vmm maps in pieces (its memfd, the kernel and
	# initrd mapped into it) is guest memory too; QEMU maps neither file.
	KVM_PROBE_OUT=$out.probe "$runner" "$marker" "$memb" "$probe" \
		memfd:kvrun-guest-ram "$kernel" "$initrd" -- "$@" \
		< /dev/null > "$out" 2> "$out.err"
	cat "$out.probe" >> "$out"
	local st
	st=$(awk '$1 == "status" { print $2 }' "$out")
	# kvrun-vmm: 0 on power-off; QEMU's isa-debug-exit: (0 << 1) | 1.
	if { [ "$name" = kvrun ] && [ "$st" != 0 ]; } || { [ "$name" = qemu ] && [ "$st" != 1 ]; }; then
		echo "vmm bench: $name run failed (status $st):" >&2
		cat "$out.err" >&2
		exit 1
	fi
}

run_kvrun() {
	run_one kvrun "$work/kvrun.$1" -- "$vmm" --kernel "$kernel" --initrd "$initrd" \
		--mem "$mem" --cpus "$cpus" --no-rng --console stdio --cmdline "$args"
}
run_qemu() {
	run_one qemu "$work/qemu.$1" -- "$qemu" -M microvm,x-option-roms=off,rtc=off,acpi=off \
		-enable-kvm -cpu host,arch-capabilities=off -m "$mem" -smp "$cpus" -nodefaults -no-user-config \
		-display none -serial stdio -no-reboot -device isa-debug-exit,iobase=0x501,iosize=1 \
		-kernel "$kernel" -initrd "$initrd" -append "$args"
}
for i in $(seq "$runs"); do
	if [ -n "${PAIRED:-}" ]; then
		run_qemu "$i" &
		qpid=$!
		for _ in $(seq 200); do
			grep -qs '^first_run_ns [1-9]' "$work/qemu.$i.probe" && break
			sleep 0.05
		done
		run_kvrun "$i" &
		kpid=$!
		wait "$kpid"
		wait "$qpid"
	else
		run_kvrun "$i"
		run_qemu "$i"
	fi
done

# median NAME FIELD-EXPRESSION: the median over runs of an awk expression.
median() {
	local name=$1 expr=$2 f
	for f in "$work/$name".[0-9]*; do
		case $f in *.probe | *.err) continue ;; esac
		awk "{ v[\$1] = \$2 } END { printf \"%.3f\\n\", $expr }" "$f"
	done | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

declare -A R
for n in kvrun qemu; do
	R[$n.first_run_ms]=$(median $n '(v["first_run_ns"] - v["exec_ns"]) / 1e6')
	R[$n.marker_ms]=$(median $n '(v["marker_ns"] - v["exec_ns"]) / 1e6')
	R[$n.rss_kb]=$(median $n 'v["rss_kb"]')
	R[$n.pss_kb]=$(median $n 'v["pss_kb"]')
	R[$n.exits]=$(median $n 'v["kvm_runs"]')
	R[$n.guest_ms]=$(median $n 'v["guest_uptime_ms"]')
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
line() { # label key unit target
	printf '%-36s kvrun %10s %-3s qemu %10s %-3s ratio %s  (target %s)\n' "$1" "${R[kvrun.$2]}" "$3" \
		"${R[qemu.$2]}" "$3" "$(ratio "${R[kvrun.$2]}" "${R[qemu.$2]}")" "$4"
}
echo "vmm bench: $runs runs each${PAIRED:+ (paired: both VMMs at once)}, ${mem} MiB, $cpus vCPU(s), kernel $(basename "$kernel"), medians"
line "(1) exec to first KVM_RUN" first_run_ms ms "<= 0.1"
line "(2) exec to console marker" marker_ms ms "<= 1"
line "    of which guest uptime (kernel)" guest_ms ms "-"
line "(3) VMM RSS without guest RAM" rss_kb kB "<= 4096 kB and <= 0.1"
line "(3) VMM PSS without guest RAM" pss_kb kB "<= 0.1"
line "(4) VM exits to user space (boot)" exits "" "-"
printf '{"bench":"vmm","runs":%d,"mem_mib":%d,"cpus":%d' "$runs" "$mem" "$cpus"
for k in first_run_ms marker_ms guest_ms rss_kb pss_kb exits; do
	printf ',"%s":{"kvrun":%s,"qemu":%s,"ratio":%s}' "$k" "${R[kvrun.$k]}" "${R[qemu.$k]}" \
		"$(ratio "${R[kvrun.$k]}" "${R[qemu.$k]}")"
done
printf '}\n'

#!/usr/bin/env bash
# Snapshot/restore of kvrun-vmm: restore time (exec to first KVM_RUN), clone
# to agent-ready vs cold boot to agent-ready for the same VM, PSS of idle clones vs cold
# VMs. See snapshot_bench.py for what is measured and how.
# Env: RUNS (restores, 10), CLONES (20), COLD_VMS (cold VMs kept running for
# the PSS figure, 2: each is a full cold boot), MEM (MiB, 256), CPUS (1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD:-$root/build}

if [ ! -e /dev/kvm ]; then
	echo "snapshot bench: skipped: no /dev/kvm on this host"
	exit 0
fi
for f in "$build/kvrun-vmm" "$build/guest/vmlinux" "$build/guest/rootfs.erofs" \
	"$build/tests/bench/kvm-probe.so"; do
	[ -e "$f" ] || { echo "snapshot bench: $f missing (make && make guest)" >&2; exit 1; }
done
exec python3 "$here/snapshot_bench.py" "$build"

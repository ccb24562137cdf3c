#!/usr/bin/env bash
# virtio-fs, measured two ways in one run:
#  (A) the VMM side natively: the FUSE server driven through the device with
#      requests in a fake guest memory (build/tests/bench/fs-server), next to
#      the same work done with plain syscalls (ratio = server / native);
#  (B) inside one VM: sequential write (fsync'd) and read of FSBENCH_MB MiB,
#      small-file create and stat rates (FSBENCH_FILES files), on virtio-fs
#      without DAX, virtio-fs with DAX, and ext4 on a virtio-blk image, the
#      same workload in the same boot (tests/guest/test-init-fs.c: fsbench);
#      ratios are against virtio-blk.
# On a PVM host the guest kernel runs ~1000x slower than natively, so (B)
# measures mostly the guest's own kernel: compare the ratios, not the rates.
# Env: FSBENCH_MB (default 8), FSBENCH_FILES (100), FSBENCH_SECONDS (0.5 per
# measure in A).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD:-$root/build}
mb=${FSBENCH_MB:-8} files=${FSBENCH_FILES:-100}
kernel=$build/guest/vmlinux initrd=$build/guest/test-initramfs.cpio vmm=$build/kvrun-vmm
server=$build/tests/bench/fs-server

[ -x "$server" ] || { echo "fs bench: $server missing (make)" >&2; exit 1; }
work=$(mktemp -d /tmp/kvrun-fsbench.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "fs bench (A): the FUSE server natively, ${FSBENCH_SECONDS:-0.5} s per measure"
"$server" "$work" "${FSBENCH_SECONDS:-0.5}" | tee "$work/server.out" | grep -v '^{'

if [ ! -e /dev/kvm ]; then
	echo "fs bench (B): skipped: no /dev/kvm on this host"
	grep '^{' "$work/server.out"
	exit 0
fi
for f in "$kernel" "$initrd" "$vmm"; do
	[ -e "$f" ] || { echo "fs bench: $f missing (make && make guest)" >&2; exit 1; }
done
mkdir -p "$work/plain" "$work/dax"
truncate -s 512M "$work/blk.img"
mkfs.ext4 -q -F "$work/blk.img"
echo "fs bench (B): in one VM, $mb MiB sequential, $files small files, each target"
start=$(date +%s)
status=0
timeout 1800 "$vmm" --kernel "$kernel" --initrd "$initrd" --mem 256M --no-rng \
	--cmdline "kvrun.test=fsbench kvrun.fsbench=blk,plain,dax:dax kvrun.fsbenchmb=$mb kvrun.fsbenchfiles=$files" \
	--fs "plain=$work/plain" --fs "dax=$work/dax,dax=64M" --blk "$work/blk.img" \
	--console "$work/console.log" > "$work/vmm.log" 2>&1 || status=$?
if [ "$status" -ne 0 ] || ! grep -q '^KVRUN-TEST fsbench PASS' "$work/console.log"; then
	echo "fs bench: the VM failed (status $status):" >&2
	tail -n 20 "$work/vmm.log" "$work/console.log" >&2
	exit 1
fi
echo "  (boot, three targets and power-off: $(( $(date +%s) - start )) s)"
# KVRUN-BENCH target=T ok=1 mb=.. seqwrite_mbs=.. seqread_mbs=.. files=.. create_per_s=.. stat_per_s=..
awk '
/^KVRUN-BENCH / {
	for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	t = v["target"]; sub(/:dax$/, "", t); order[++n] = t
	for (k in v) r[t, k] = v[k]
}
function ratio(t, k) { return r["blk", k] > 0 ? r[t, k] / r["blk", k] : 0 }
END {
	printf "  %-12s %14s %14s %14s %14s\n", "target", "seqwrite MB/s", "seqread MB/s", "create/s", "stat/s"
	for (i = 1; i <= n; i++) {
		t = order[i]
		printf "  %-12s %14.3f %14.3f %14.2f %14.2f\n", t, r[t, "seqwrite_mbs"], r[t, "seqread_mbs"], r[t, "create_per_s"], r[t, "stat_per_s"]
	}
	for (i = 1; i <= n; i++) {
		t = order[i]; if (t == "blk") continue
		printf "  %-12s ratio to blk: seqwrite %.2f seqread %.2f create %.2f stat %.2f\n", t, ratio(t, "seqwrite_mbs"), ratio(t, "seqread_mbs"), ratio(t, "create_per_s"), ratio(t, "stat_per_s")
	}
	printf "{\"bench\":\"fs-vm\",\"mb\":%d,\"files\":%d", r["blk", "mb"], r["blk", "files"]
	for (i = 1; i <= n; i++) {
		t = order[i]
		printf ",\"%s\":{\"seqwrite_mbs\":%s,\"seqread_mbs\":%s,\"create_per_s\":%s,\"stat_per_s\":%s,\"ratio_to_blk\":{\"seqwrite\":%.3f,\"seqread\":%.3f,\"create\":%.3f,\"stat\":%.3f}}", t, r[t, "seqwrite_mbs"], r[t, "seqread_mbs"], r[t, "create_per_s"], r[t, "stat_per_s"], ratio(t, "seqwrite_mbs"), ratio(t, "seqread_mbs"), ratio(t, "create_per_s"), ratio(t, "stat_per_s")
	}
	printf "}\n"
}' "$work/console.log"
grep '^{' "$work/server.out"

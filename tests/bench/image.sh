#!/usr/bin/env bash
# Image layers, erofs on virtio-pmem vs the virtio-fs path, one run, one image
# (issue 14). The image: the busybox fixture and Debian's files from this host
# (IMGBENCH_DIRS, default the python3 and perl trees: >= 100 MB), as an OCI
# layout of two layers. Measured:
#  (1) in a container: a metadata walk (find / -xdev, stat of every entry) and
#      a full read of every file, the root from the image's layers (kvrun image
#      bundle: erofs -o dax on pmem, overlayfs) vs the same tree unpacked by
#      umoci, shared through virtio-fs (DAX); timed in the guest;
#  (2) host memory for IMGBENCH_N (10) running containers after each read the
#      whole image: PSS of all their kvrun processes plus the page cache of
#      the files they share (the layer images, or the unpacked tree);
#  (3) kvrun image import vs umoci unpack of the same OCI layout.
# On PVM hosts the guest kernel is ~1000x slower: compare ratios.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD:-$root/build}
kvrun=$build/kvrun
n=${IMGBENCH_N:-10}
dirs=${IMGBENCH_DIRS:-/usr/lib/python3.11 /usr/lib/python3/dist-packages /usr/share/perl}
now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc | sed 's/^\./0./'; }
ratio() { echo "scale=2; $1 / $2" | bc | sed 's/^\./0./'; }

command -v umoci >/dev/null || { echo "image bench: skipped: umoci not installed (make deps)"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "image bench: skipped: needs root"; exit 0; }
work=$(mktemp -d /tmp/kvrun-imgbench.XXXXXX)
export KVRUN_IMAGE_STORE=$work/store KVRUN_TEMPLATE_DIR=$work/templates
kroot=$work/root
cleanup() {
	local d
	for d in "$kroot"/*/; do
		[ -d "$d" ] && "$kvrun" --root "$kroot" delete --force "$(basename "$d")" >/dev/null 2>&1
	done
	rm -rf "$work"
}
trap cleanup EXIT

# The image: layer 0 the busybox fixture, layer 1 the host's files.
mkdir -p "$work/l1"
for d in $dirs; do
	if [ -d "$d" ]; then
		mkdir -p "$work/l1$(dirname "$d")"
		cp -a "$d" "$work/l1$(dirname "$d")/"
	fi
done
IMGBENCH_CORPUS=$root/tests/integration/image_corpus.py python3 -c '
import os, sys, types
src = open(os.environ["IMGBENCH_CORPUS"]).read().replace("\nmain()\n", "\n")
m = types.ModuleType("corpus")
exec(compile(src, "image_corpus.py", "exec"), m.__dict__)
m.oci_layout([m.tar_dir(sys.argv[2]), m.tar_dir(sys.argv[3])], sys.argv[1], "bench", ["sh"])
' "$work/oci" "$build/fixtures/busybox-rootfs" "$work/l1"
mb=$(du -sm "$work/l1" | cut -f1)
echo "image bench: an image of $mb MB of files ($(find "$work/l1" | wc -l) entries) and busybox"

# (3) import vs umoci unpack, same layout.
t0=$(now)
"$kvrun" image import "$work/oci" bench:1 >/dev/null
t1=$(now)
umoci unpack --image "$work/oci:bench" "$work/umoci" >/dev/null
t2=$(now)
imp=$(elapsed "$t0" "$t1") umo=$(elapsed "$t1" "$t2")
echo "  import: kvrun image import $imp s, umoci unpack $umo s (ratio $(ratio "$imp" "$umo"))"

[ -e /dev/kvm ] || { echo "  (1), (2) in VMs: skipped: no /dev/kvm on this host"; exit 0; }

# A bundle of the same tree each way: the layers (pmem), umoci's rootfs (virtio-fs).
"$kvrun" image bundle bench:1 "$work/pmem" >/dev/null
mkdir "$work/vfs"
jq --arg r "$work/umoci/rootfs" '.root.path = $r | .annotations |= del(.["io.kvrun.image.layers"])' \
	"$work/pmem/config.json" >"$work/vfs/config.json"
# Milliseconds from the guest's /proc/uptime (busybox's date has no %N).
walk='ms() { read u _ </proc/uptime; echo "${u%.*}${u#*.}0"; }
s=$(ms); n=$(find / -xdev | wc -l); find / -xdev -exec stat -c %s {} + >/dev/null
m=$(ms); b=$(find / -xdev -type f -exec cat {} + | wc -c)
e=$(ms); echo "WALK entries=$n walk_ms=$((m - s)) read_ms=$((e - m)) bytes=$b"'
setargs() { # setargs SCRIPT BUNDLE [more jq]
	jq --arg w "$1" ".process.args = [\"sh\", \"-c\", \$w] ${3:-}" "$2/config.json" >"$2/c.new"
	mv "$2/c.new" "$2/config.json"
}

# (1) one container each: the walk and the read (the first run of each boots
# cold and leaves a template; the measured run is the second, a clone).
declare -A res
for kind in pmem vfs; do
	b=$work/$kind
	setargs true "$b"
	(cd "$b" && "$kvrun" --root "$kroot" run "warm-$kind" >/dev/null)
	setargs "$walk" "$b"
	out=$(cd "$b" && "$kvrun" --root "$kroot" run "walk-$kind")
	res[$kind]=$(grep '^WALK' <<<"$out")
	echo "  $kind: ${res[$kind]}"
done
w() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"${res[$1]}"; }
echo "  metadata walk: erofs/pmem $(w pmem walk_ms) ms, virtio-fs $(w vfs walk_ms) ms" \
	"(ratio $(ratio "$(w pmem walk_ms)" "$(w vfs walk_ms)"))"
echo "  full read: erofs/pmem $(w pmem read_ms) ms, virtio-fs $(w vfs read_ms) ms" \
	"(ratio $(ratio "$(w pmem read_ms)" "$(w vfs read_ms)"))"

# (2) n containers each way, each reads the whole image, says so in a
# directory of the host (a bind mount), then sleeps. Read-only roots.
# PSS of every process whose command line names $1, less its share of the
# image's own pages (mappings of files whose path matches the regex $2: the
# layer images, or the shared tree through the DAX window), which the page
# cache below counts once; counting both would charge them twice.
pss_kb() {
	local total=0 p v
	for p in $(pgrep -f -- "$1"); do
		v=$(awk -v img="$2" '
			/^[0-9a-f]+-[0-9a-f]+ / { skip = ($6 ~ img) }
			/^Pss:/ { if (!skip) s += $2 }
			END { print s + 0 }' "/proc/$p/smaps" 2>/dev/null || echo 0)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}
cached_kb() { # page cache of the files under $1 (fincore), in kB
	find "$1" -type f -print0 | xargs -0 -r fincore -b -n -o RES 2>/dev/null |
		awk '{ s += $1 } END { print int(s / 1024) }'
}
mkdir "$work/marks"
for kind in pmem vfs; do
	for i in $(seq "$n"); do
		b=$work/$kind-$i
		if [ "$kind" = pmem ]; then
			"$kvrun" image bundle bench:1 "$b" >/dev/null
		else
			mkdir "$b" && cp "$work/vfs/config.json" "$b/"
		fi
		setargs "find / -xdev -type f -exec cat {} + >/dev/null; touch /marks/$kind-$i; exec sleep 100000" "$b" \
			'| .root.readonly = true | .mounts += [{destination: "/marks", type: "bind", source: "'"$work/marks"'", options: ["rbind", "rw"]}]'
	done
	sync && echo 1 >/proc/sys/vm/drop_caches
	t0=$(now)
	for i in $(seq "$n"); do
		(cd "$work/$kind-$i" && "$kvrun" --root "$kroot" run -d "m-$kind-$i" >/dev/null 2>&1 </dev/null)
	done
	for i in $(seq "$n"); do
		for _ in $(seq 900); do
			[ -e "$work/marks/$kind-$i" ] && break
			sleep 1
		done
	done
	ready=$(elapsed "$t0" "$(now)")
	sleep 3
	if [ "$kind" = pmem ]; then
		pss=$(pss_kb "$kroot/m-$kind-" '[.]erofs$')
	else
		pss=$(pss_kb "$kroot/m-$kind-" "^$work/umoci/rootfs/")
	fi
	if [ "$kind" = pmem ]; then
		cache=$(cached_kb "$KVRUN_IMAGE_STORE/layers")
	else
		cache=$(cached_kb "$work/umoci/rootfs")
	fi
	echo "  $n containers ($kind): $(ls "$work/marks" | grep -c "^$kind-") read the image in $ready s;" \
		"PSS of their kvrun processes (less the image's mapped pages) $((pss / 1024)) MiB," \
		"page cache of the image $((cache / 1024)) MiB," \
		"$(((pss + cache) / n / 1024)) MiB per container"
	res[mem-$kind]=$((pss + cache))
	# A VMM's refused open (seccomp.c reports it with a backtrace): shown.
	grep -h -A12 "tried to open" "$kroot"/m-"$kind"-*/vmm.log 2>/dev/null | head -40 || true
	for i in $(seq "$n"); do
		"$kvrun" --root "$kroot" delete --force "m-$kind-$i" >/dev/null 2>&1 || true
	done
done
echo "  memory for $n containers: erofs/pmem vs virtio-fs ratio $(ratio "${res[mem-pmem]}" "${res[mem-vfs]}")"

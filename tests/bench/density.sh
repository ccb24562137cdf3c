#!/usr/bin/env bash
# tests/bench/density.sh (make bench): many idle containers at once, each
# in its own microVM cloned from one template (docs/snapshots.md).
#  - start rate: `kvrun run -d` of N containers (`sleep`), one after another;
#  - host memory per container: the PSS of all its host processes (its
#    kvrun-shim and kvrun-vmm; guest RAM the clone wrote is in the VMM's),
#    with all N running, so that what the clones share (template memory,
#    guest image, binaries) is divided among them as PSS does;
#  - the host while they idle: its load and how long a fork+exec of
#    /bin/true takes, against the same before the first container;
#  - teardown: `delete -f` of all N, then nothing of them is left
#    (processes, state, host cgroups, taps).
# crun in the same run: the same N containers' own processes (no runtime
# process stays with a crun container).
# KVRUN_BENCH_DENSITY sets N (default 200).
. "$(dirname "$0")/common.bash"
n=${KVRUN_BENCH_DENSITY:-200}
[ -e "$rootfs/bin/busybox" ] || { echo "density: skipped: no busybox fixture (make)"; exit 0; }
if [ ! -r /dev/kvm ] || [ "$(id -u)" -ne 0 ]; then
	echo "density: skipped: needs root and /dev/kvm"
	exit 0
fi

tmp=$(mktemp -d /tmp/kvrun-bench-density.XXXXXX)
root=$tmp/kvrun
cleanup() {
	local id
	for id in $("$kvrun" --root "$root" list -q 2>/dev/null); do
		"$kvrun" --root "$root" delete -f "$id" >/dev/null 2>&1 || true
	done
	if command -v crun >/dev/null; then
		for id in $(crun --root "$tmp/crun" list -q 2>/dev/null); do
			crun --root "$tmp/crun" delete -f "$id" >/dev/null 2>&1 || true
		done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
export KVRUN_TEMPLATE_DIR=$tmp/templates
mkdir -p "$tmp/bundle" "$root" "$KVRUN_TEMPLATE_DIR"
cp -a "$rootfs" "$tmp/bundle/rootfs"
"$kvrun" spec --bundle "$tmp/bundle"
jq '.process.terminal = false | .process.args = ["sleep", "1000000"]' \
	"$tmp/bundle/config.json" >"$tmp/c.json"
mv "$tmp/c.json" "$tmp/bundle/config.json"
"$kvrun" template create >/dev/null

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# true_ms: the median of 20 fork+execs of /bin/true, in microseconds.
true_us() {
	local i s e
	for ((i = 0; i < 20; i++)); do
		s=$(date +%s%N)
		/bin/true
		e=$(date +%s%N)
		echo $(((e - s) / 1000))
	done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
pss() { awk '/^Pss:/ { s += $2 } END { print s + 0 }' "$@" 2>/dev/null || echo 0; }
load1() { cut -d' ' -f1 /proc/loadavg; }

echo "== host: $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo)$([ -e /sys/module/kvm_pvm ] && echo ', KVM through PVM'); load before: $(load1)"
base_true=$(true_us)
avail0=$(awk '/MemAvailable/ { print $2 }' /proc/meminfo)

# Start N, one after another; each is running (its VM restored, the agent
# running sleep) when `run -d` returns.
s=$(now_ms)
started=0
for ((i = 0; i < n; i++)); do
	if "$kvrun" --root "$root" run -d --bundle "$tmp/bundle" "d$i" </dev/null >/dev/null 2>"$tmp/err"; then
		started=$((started + 1))
	else
		echo "   d$i failed: $(head -c 300 "$tmp/err")"
		break
	fi
done
e=$(now_ms)
echo "== $started of $n containers started in $((e - s)) ms:" \
	"$(awk -v n="$started" -v t=$((e - s)) 'BEGIN { printf "%.2f per second, %.0f ms each", n * 1000 / (t ? t : 1), t / (n ? n : 1) }')"
sleep 10
# Every host process of a container: the shim (state's pid) and its children.
total=0 procs=0
for ((i = 0; i < started; i++)); do
	shim=$("$kvrun" --root "$root" state "d$i" | jq -r .pid)
	for p in $shim $(pgrep -P "$shim" || true); do
		total=$((total + $(pss "/proc/$p/smaps_rollup")))
		procs=$((procs + 1))
	done
done
running=$("$kvrun" --root "$root" list --format json | jq '[.[] | select(.status == "running")] | length')
avail1=$(awk '/MemAvailable/ { print $2 }' /proc/meminfo)
echo "   running: $running; host processes: $procs; PSS of all of them: $((total / 1024)) MiB," \
	"$(awk -v t="$total" -v n="$started" 'BEGIN { printf "%.2f MiB per container", t / 1024 / (n ? n : 1) }')"
echo "   host MemAvailable fell by $(((avail0 - avail1) / 1024)) MiB" \
	"($(awk -v d=$((avail0 - avail1)) -v n="$started" 'BEGIN { printf "%.2f MiB per container", d / 1024 / (n ? n : 1) }'))"
echo "   the host while they idle: load $(load1); fork+exec of /bin/true $(true_us) us (before: $base_true us)"

s=$(now_ms)
for ((i = 0; i < started; i++)); do
	"$kvrun" --root "$root" delete -f "d$i" >/dev/null
done
e=$(now_ms)
left_procs=$(pgrep -f -- "$root/" | wc -l || true)
left_state=$(find "$root" -mindepth 1 -maxdepth 1 | wc -l)
left_cg=$(find /sys/fs/cgroup -maxdepth 3 -type d -path '*/kvrun/d*' 2>/dev/null | wc -l)
echo "== teardown: $started deleted in $((e - s)) ms; left: $left_procs processes," \
	"$left_state state dirs, $left_cg host cgroups"

if command -v crun >/dev/null && ! mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
	mkdir -p "$tmp/crun"
	s=$(now_ms)
	for ((i = 0; i < n; i++)); do
		crun --root "$tmp/crun" run -d --bundle "$tmp/bundle" "c$i" </dev/null >/dev/null
	done
	e=$(now_ms)
	total=0
	for ((i = 0; i < n; i++)); do
		total=$((total + $(pss "/proc/$(crun --root "$tmp/crun" state "c$i" | jq .pid)/smaps_rollup")))
	done
	echo "== crun: $n started in $((e - s)) ms; their processes' PSS $((total / n)) kB each"
else
	echo "== crun: skipped (not installed, or hybrid cgroups: runtime.sh shows crun's figures)"
fi

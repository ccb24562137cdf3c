#!/usr/bin/env bash
# tests/bench/runtime.sh (make bench): kvrun against crun on the same busybox bundle, in the same run.
#  1. `run` of /bin/true end to end (a cold VM boot for kvrun), N times each;
#     mean and median wall time, and the ratio kvrun/crun.
#     Then the same with a VM template (docs/snapshots.md): each run's VM is
#     a clone, the path users get once `kvrun template create` ran.
#  2. Host memory per running container: the PSS of kvrun-shim and
#     kvrun-vmm (guest RAM the VM touched included), cold and cloned, next
#     to the PSS of the container's own processes under crun.
# KVRUN_BENCH_RUNS (default 3) sets N for kvrun; crun runs 10 times.
. "$(dirname "$0")/common.bash"
runs=${KVRUN_BENCH_RUNS:-3}
command -v crun >/dev/null || { echo "bench: crun not installed (make deps)" >&2; exit 1; }
[ -e "$rootfs/bin/busybox" ] || { echo "bench: no busybox fixture (make)" >&2; exit 1; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "bench: /dev/kvm is not usable here" >&2; exit 1; }

# crun refuses a host whose cgroups are in hybrid mode (a cgroup2 mount with
# controllers at /sys/fs/cgroup/unified). There it runs in a private mount
# namespace without that mount and with its cgroup manager off; kvrun puts
# its shim and VMM in a host cgroup of their own (/kvrun/<id>, its v1
# hierarchies) as a runtime should.
hybrid=false
mountpoint -q /sys/fs/cgroup/unified 2>/dev/null && hybrid=true
crun_() {
	if $hybrid; then
		unshare -m sh -c 'mount --make-rprivate / && umount -l /sys/fs/cgroup/unified &&
			exec crun --cgroup-manager=disabled "$@"' _ "$@"
	else
		crun "$@"
	fi
}

tmp=$(mktemp -d /tmp/kvrun-bench.XXXXXX)
cleanup() {
	"$kvrun" --root "$tmp/kvrun" delete -f bench-d >/dev/null 2>&1 || true
	crun_ --root "$tmp/crun" delete -f bench-d >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/bundle" "$tmp/kvrun" "$tmp/crun" "$tmp/no-templates" "$tmp/templates"
# Cold boots first: a template directory with no template in it.
export KVRUN_TEMPLATE_DIR=$tmp/no-templates
cp -a "$rootfs" "$tmp/bundle/rootfs"
"$kvrun" spec --bundle "$tmp/bundle"
jq '.process.terminal = false | .process.args = ["true"]' "$tmp/bundle/config.json" >"$tmp/c.json"
mv "$tmp/c.json" "$tmp/bundle/config.json"

# time_runs RUNTIME ROOT N: one wall time (ms) per line.
time_runs() {
	local rt=$1 root=$2 n=$3 i s e
	for ((i = 0; i < n; i++)); do
		s=$(date +%s%N)
		"$rt" --root "$root" run --bundle "$tmp/bundle" "bench-$i" </dev/null >/dev/null
		e=$(date +%s%N)
		echo $(((e - s) / 1000000))
	done
}
stats() { sort -n | awk '{ v[NR] = $1; t += $1 } END { printf "%d %d\n", t / NR, v[int((NR + 1) / 2)] }'; }

echo "== host: $(uname -r), $(nproc) CPUs$([ -e /sys/module/kvm_pvm ] && echo ', KVM through PVM (guest kernel mode emulated)')"
echo "== run of /bin/true, end to end"
read -r c_mean c_med < <(time_runs crun_ "$tmp/crun" 10 | stats)
echo "   crun:  mean ${c_mean} ms, median ${c_med} ms (10 runs$($hybrid && echo '; hybrid cgroups: private mount namespace, cgroup manager off'))"
read -r k_mean k_med < <(time_runs "$kvrun" "$tmp/kvrun" "$runs" | stats)
echo "   kvrun: mean ${k_mean} ms, median ${k_med} ms ($runs runs, each a cold VM boot)"
awk -v k="$k_med" -v c="$c_med" 'BEGIN { printf "   ratio kvrun/crun (medians): %.1fx\n", k / (c ? c : 1) }'
s=$(date +%s%N)
KVRUN_TEMPLATE_DIR=$tmp/templates "$kvrun" template create >/dev/null
e=$(date +%s%N)
read -r t_mean t_med < <(KVRUN_TEMPLATE_DIR=$tmp/templates time_runs "$kvrun" "$tmp/kvrun" 10 | stats)
echo "   kvrun in clones: mean ${t_mean} ms, median ${t_med} ms (10 runs; the template took $(((e - s) / 1000000)) ms once)"
awk -v k="$t_med" -v c="$c_med" -v w="$k_med" 'BEGIN { printf "   ratio kvrun in clones/crun (medians): %.1fx; cold/cloned: %.0fx\n", k / (c ? c : 1), w / (k ? k : 1) }'

# A memory limit no template has (issue 15): the first such container boots
# cold and leaves a template of its (rounded) shape behind, the second is a
# clone of it. In a template directory of its own, so the others do not count.
mkdir -p "$tmp/auto-templates"
jq '.linux.resources.memory.limit = 314572800' "$tmp/bundle/config.json" >"$tmp/c.json"
cp "$tmp/bundle/config.json" "$tmp/plain.json"
mv "$tmp/c.json" "$tmp/bundle/config.json"
read -r a1 < <(KVRUN_TEMPLATE_DIR=$tmp/auto-templates time_runs "$kvrun" "$tmp/kvrun" 1)
read -r a2 < <(KVRUN_TEMPLATE_DIR=$tmp/auto-templates time_runs "$kvrun" "$tmp/kvrun" 1)
echo "   a 300 MiB limit never seen before: first run ${a1} ms (cold, leaves a template: $(find "$tmp/auto-templates" -name template.json | wc -l) made), second ${a2} ms (a clone)"
cp "$tmp/plain.json" "$tmp/bundle/config.json"

# Where kvrun's time goes: create (VM boot to agent ready, container set up
# in the guest, blocked before exec), then start to stopped (exec of
# /bin/true, its exit, the VM torn down by the shim).
s=$(date +%s%N)
"$kvrun" --root "$tmp/kvrun" create --bundle "$tmp/bundle" bench-p </dev/null >/dev/null 2>&1
m=$(date +%s%N)
"$kvrun" --root "$tmp/kvrun" start bench-p
while [ "$("$kvrun" --root "$tmp/kvrun" state bench-p | jq -r .status)" != stopped ]; do sleep 0.05; done
e=$(date +%s%N)
"$kvrun" --root "$tmp/kvrun" delete bench-p
echo "   kvrun phases: create $(((m - s) / 1000000)) ms (boot + guest setup), start to stopped $(((e - m) / 1000000)) ms"

pss() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
echo "== host memory (PSS) per running container"
jq '.process.args = ["sh", "-c", "while :; do sleep 1; done"]' "$tmp/bundle/config.json" >"$tmp/c.json"
mv "$tmp/c.json" "$tmp/bundle/config.json"
# kvrun_pss LABEL: run bench-d, print its host processes' PSS, delete it.
kvrun_pss() {
	"$kvrun" --root "$tmp/kvrun" run -d --bundle "$tmp/bundle" bench-d </dev/null >/dev/null 2>&1
	sleep 5
	local shim vmm s_pss v_pss
	shim=$("$kvrun" --root "$tmp/kvrun" state bench-d | jq .pid)
	vmm=$(pgrep -f "kvrun-vmm .*$tmp/kvrun/bench-d/" | head -1)
	s_pss=$(pss "$shim")
	v_pss=$(pss "$vmm")
	echo "   kvrun ($1): kvrun-shim ${s_pss} kB + kvrun-vmm ${v_pss} kB = $((s_pss + v_pss)) kB (VMM RSS $(ps -o rss= -p "$vmm" | tr -d ' ') kB, guest RAM $(tr '\0' ' ' <"/proc/$vmm/cmdline" | grep -o -- '--mem [^ ]*'))"
	"$kvrun" --root "$tmp/kvrun" delete -f bench-d
}
kvrun_pss "a cold-booted VM"
KVRUN_TEMPLATE_DIR=$tmp/templates kvrun_pss "a clone of the template"
crun_ --root "$tmp/crun" run -d --bundle "$tmp/bundle" bench-d </dev/null >/dev/null 2>&1
sleep 1
c_pid=$(crun_ --root "$tmp/crun" state bench-d | jq .pid)
c_total=0
for p in $c_pid $(pgrep -P "$c_pid"); do c_total=$((c_total + $(pss "$p"))); done
echo "   crun:  the container's processes ${c_total} kB (no runtime process stays)"

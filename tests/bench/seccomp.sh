#!/usr/bin/env bash
# tests/bench/seccomp.sh (make bench): the cost of Docker's and Podman's
# default seccomp profile per guest syscall, in BPF instructions executed
# (build/tests/bench/seccomp-cost: the agent's filter code, libseccomp's
# linear program against its binary tree, which the agent uses). The
# profile is Podman's /usr/share/containers/seccomp.json (Docker's default
# is the same list) as a default container gets it: the entries for
# x86_64 and for the capabilities Docker and Podman grant by default.
set -euo pipefail
cd "$(dirname "$0")/../.."
tool=${BUILD:-build}/tests/bench/seccomp-cost
profile=/usr/share/containers/seccomp.json
[ -x "$tool" ] || { echo "seccomp: skipped: $tool not built (make)"; exit 0; }
[ -r "$profile" ] || { echo "seccomp: skipped: $profile missing (podman's containers-common)"; exit 0; }
command -v jq >/dev/null || { echo "seccomp: skipped: jq not installed"; exit 0; }
tmp=$(mktemp -d /tmp/kvrun-bench-seccomp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
caps='["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_NET_BIND_SERVICE",
	"CAP_SETFCAP","CAP_SETGID","CAP_SETPCAP","CAP_SETUID","CAP_SYS_CHROOT","CAP_NET_RAW",
	"CAP_MKNOD","CAP_AUDIT_WRITE"]'
jq --argjson caps "$caps" '{linux: {seccomp: {
	defaultAction: .defaultAction, defaultErrnoRet: (.defaultErrnoRet // 1),
	architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
	syscalls: [.syscalls[]
		| select(((.includes.arches // ["amd64"]) | index("amd64")) != null)
		| select(((.includes.caps // []) - $caps) == [])
		| select(((.excludes.caps // []) - $caps) == (.excludes.caps // []))
		| {names, action} + (if .args then {args} else {} end)
			+ (if .errnoRet then {errnoRet} else {} end)]}}}' "$profile" >"$tmp/config.json"
"$tool" "$tmp/config.json"
# The agent leaves the i386 branch out where the kernel has no IA32
# emulation, as kvrun's guest kernel (agent/seccomp.c): the filter the guest
# loads.
jq '.linux.seccomp.architectures -= ["SCMP_ARCH_X86"]' "$tmp/config.json" >"$tmp/guest.json"
echo "seccomp  as the guest loads it (no i386 branch: its kernel runs no i386 calls):"
"$tool" "$tmp/guest.json" | head -1

# In a real guest: `kvrun run` of a shell that forks and execs 5 times,
# with the profile and without it, in clones of one template (median of
# KVRUN_BENCH_SECCOMP_RUNS, default 3).
kvrun=$PWD/${BUILD:-build}/kvrun
rootfs=$PWD/${BUILD:-build}/fixtures/busybox-bundle-rootfs
runs=${KVRUN_BENCH_SECCOMP_RUNS:-3}
if [ ! -e /dev/kvm ] || [ ! -e "$rootfs/bin/busybox" ] || [ "$(id -u)" -ne 0 ]; then
	echo "seccomp: the guest comparison skipped (needs root, /dev/kvm and make fixtures)"
	exit 0
fi
export KVRUN_TEMPLATE_DIR=$tmp/templates
mkdir -p "$KVRUN_TEMPLATE_DIR" "$tmp/b"
"$kvrun" template create >/dev/null 2>&1 || echo "seccomp: template create failed (cold boots)"
cp -a "$rootfs" "$tmp/b/rootfs"
"$kvrun" spec --bundle "$tmp/b"
jq '.process.terminal = false | .process.args = ["sh", "-c", "for i in 1 2 3 4 5; do /bin/true; done"]' \
	"$tmp/b/config.json" >"$tmp/plain.json"
jq --slurpfile p "$tmp/config.json" '.linux.seccomp = $p[0].linux.seccomp' "$tmp/plain.json" >"$tmp/prof.json"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
time_run() {
	local i s e
	cp "$1" "$tmp/b/config.json"
	for ((i = 0; i < runs; i++)); do
		s=$(date +%s%N)
		"$kvrun" --root "$tmp/root" run --bundle "$tmp/b" "s$i" </dev/null >/dev/null 2>&1
		e=$(date +%s%N)
		echo $(((e - s) / 1000000))
	done | median
}
plain=$(time_run "$tmp/plain.json")
prof=$(time_run "$tmp/prof.json")
echo "seccomp  kvrun run of 5 fork+exec in a clone: without a profile $plain ms, with Docker's $prof ms (median of $runs; load $(cut -d' ' -f1 /proc/loadavg))"

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

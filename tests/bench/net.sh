#!/usr/bin/env bash
# tests/bench/net.sh (make bench): host <-> container networking, runc
# against kvrun in the same run, on the same bundle and the same setup: a
# network namespace made here with a veth pair (the container's end in it,
# the bench's end in a second namespace), as tests/integration/net.bats.
#  - throughput: KVRUN_BENCH_NET_MB (default 4: on PVM hosts the guest
#    kernel copies well under 1 MiB/s) MiB sent over TCP from the bench's
#    end (python3) to a busybox nc in the container, MiB/s until the
#    container closed the connection (it read everything);
#  - latency: KVRUN_BENCH_NET_FETCHES (default 10) HTTP fetches (curl) of a
#    1 KiB file from busybox httpd in the container, ms per fetch;
#  - the CPU time of the VMM's threads other than its vCPUs per MiB moved
#    into the guest: the host side of kvrun's networking (on PVM hosts the
#    guest kernel, run by the vCPU threads, dominates the wall time).
# kvrun's VM is a clone of a template made first.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
KVRUN=${KVRUN:-$repo/build/kvrun}
ROOTFS=${BUSYBOX_ROOTFS:-$repo/build/fixtures/busybox-bundle-rootfs}
mb=${KVRUN_BENCH_NET_MB:-4}
fetches=${KVRUN_BENCH_NET_FETCHES:-10}

skip() {
	echo "net: skipped: $*"
	exit 0
}
[ "$(id -u)" -eq 0 ] || skip "needs root"
[ -x "$KVRUN" ] && [ -e /dev/kvm ] || skip "kvrun not built or no /dev/kvm"
[ -e "$ROOTFS/bin/busybox" ] || skip "busybox fixture not built (make fixtures)"
command -v runc >/dev/null || skip "runc not installed (make deps)"
command -v curl >/dev/null || skip "curl not installed (make deps)"
command -v python3 >/dev/null || skip "python3 not installed"

T=$(mktemp -d /tmp/kvbench-net.XXXXXX)
NS_C="kvbn-c-$$" NS_T="kvbn-t-$$"
cleanup() {
	"$KVRUN" --root "$T/kvroot" delete --force b1 >/dev/null 2>&1
	runc --root "$T/runcroot" delete --force b1 >/dev/null 2>&1
	ip netns del "$NS_C" 2>/dev/null
	ip netns del "$NS_T" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
ip netns add "$NS_C"
ip netns add "$NS_T"
ip -n "$NS_C" link add c0 type veth peer name t0 netns "$NS_T"
ip -n "$NS_C" addr add 10.99.8.2/24 dev c0
ip -n "$NS_C" link set c0 up
ip -n "$NS_C" link set lo up
ip -n "$NS_T" addr add 10.99.8.1/24 dev t0
ip -n "$NS_T" link set t0 up
export KVRUN_TEMPLATE_DIR=$T/templates
mkdir -p "$KVRUN_TEMPLATE_DIR"
"$KVRUN" template create >/dev/null 2>&1 || echo "net: template create failed (cold boot)"

mkdir -p "$T/bundle"
cp -a "$ROOTFS" "$T/bundle/rootfs"
mkdir -p "$T/bundle/rootfs/www"
head -c 1024 /dev/zero >"$T/bundle/rootfs/www/index.html"
"$KVRUN" spec --bundle "$T/bundle"
jq --arg ns "/run/netns/$NS_C" '.process.terminal = false
	| .root.readonly = false
	| .linux.namespaces |= map(if .type == "network" then .path = $ns else . end)
	| .process.args = ["sh", "-c", "httpd -p 8080 -h /www; while :; do nc -l -p 5001 >/dev/null; done"]' \
	"$T/bundle/config.json" >"$T/c.json" && mv "$T/c.json" "$T/bundle/config.json"

in_t() { ip netns exec "$NS_T" "$@"; }

# wait until the container answers HTTP
ready() {
	local i
	for i in $(seq 300); do
		in_t curl -sf -m 2 -o /dev/null http://10.99.8.2:8080/ && return 0
		sleep 0.2
	done
	return 1
}

# throughput: prints MiB/s
throughput() {
	in_t timeout 300 python3 - "$mb" <<'PY'
import socket, sys, time
mb = int(sys.argv[1])
buf = b"\0" * (1 << 20)
for i in range(100):  # the container's nc may not listen yet
    try:
        s = socket.create_connection(("10.99.8.2", 5001), timeout=60)
        break
    except ConnectionRefusedError:
        time.sleep(0.2)
t0 = time.monotonic()
for _ in range(mb):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print("%.1f" % (mb / (time.monotonic() - t0)))
PY
}

# latency: prints ms per fetch
latency() {
	local s e i
	s=$(date +%s%N)
	for ((i = 0; i < fetches; i++)); do
		in_t curl -sf -m 10 -o /dev/null http://10.99.8.2:8080/ || return 1
	done
	e=$(date +%s%N)
	awk -v n="$fetches" -v ns=$((e - s)) 'BEGIN { printf "%.1f", ns / 1e6 / n }'
}

# loop_cpu_ms PID: user + system CPU time, ms, of the VMM's threads other
# than its vCPUs (under PVM a vCPU thread's time is the guest's): the event
# loop, which reads the tap into the guest (rx), and the device threads.
loop_cpu_ms() {
	local t total=0 hz
	hz=$(getconf CLK_TCK)
	for t in /proc/"$1"/task/*; do
		case "$(cat "$t/comm" 2>/dev/null)" in vcpu*) continue ;; esac
		total=$((total + $(sed 's/.*) //' "$t/stat" | awk '{ print $12 + $13 }')))
	done
	echo $((total * 1000 / hz))
}

echo "net: load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs, $mb MiB, $fetches fetches"

runc --root "$T/runcroot" run -d -b "$T/bundle" b1 </dev/null >/dev/null 2>&1 ||
	skip "runc run failed"
ready || skip "runc's container did not answer"
r_tp=$(throughput)
r_lat=$(latency)
runc --root "$T/runcroot" delete --force b1 >/dev/null 2>&1

(cd "$T/bundle" && "$KVRUN" --root "$T/kvroot" run -d b1 </dev/null >/dev/null 2>&1) ||
	{ echo "net: kvrun run failed"; exit 1; }
ready || { echo "net: kvrun's container did not answer"; exit 1; }
vmm=$(cat "$T/kvroot/b1/vmm.pid" 2>/dev/null | awk '{ print $1 }')
c0=$(loop_cpu_ms "$vmm" 2>/dev/null || echo 0)
k_tp=$(throughput)
c1=$(loop_cpu_ms "$vmm" 2>/dev/null || echo 0)
k_lat=$(latency)

printf 'net      throughput host->container: runc %s MiB/s, kvrun %s MiB/s, kvrun/runc %s\n' \
	"$r_tp" "$k_tp" "$(awk -v a="$k_tp" -v b="$r_tp" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
printf 'net      HTTP fetch latency: runc %s ms, kvrun %s ms, kvrun/runc %sx\n' \
	"$r_lat" "$k_lat" "$(awk -v a="$k_lat" -v b="$r_lat" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')"
printf 'net      VMM CPU time (not the vCPUs) per MiB into the guest: %s ms (%d ms for %d MiB)\n' \
	"$(awk -v c=$((c1 - c0)) -v m="$mb" 'BEGIN { printf "%.2f", c / m }')" $((c1 - c0)) "$mb"

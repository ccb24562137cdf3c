#!/usr/bin/env bash
# tests/bench/clients.sh (make bench): `run --rm busybox true` through each
# real client (dockerd, podman, containerd's ctr), runc against kvrun in the
# same run, with the daemons started here as the client tests start them
# (tests/integration/clients/helpers.bash: own dirs, sockets, netns).
# Median of KVRUN_BENCH_CLIENT_RUNS (default 5) after one warm-up run each,
# and where kvrun's time goes: each kvrun call the client makes (create,
# start, state, kill, delete...) timed by a wrapper, as the mean per run.
# kvrun's VMs are clones of a template made first (the path users get).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=${KVRUN_BENCH_CLIENT_RUNS:-5}

# The client tests' helpers, outside bats: skip and fail just report.
skip() {
	echo "clients: skipped: $*"
	exit 0
}
bats_require_minimum_version() { :; } # helpers.bash is written for bats
# shellcheck source=../integration/clients/helpers.bash
source "$here/../integration/clients/helpers.bash"
[ "$(id -u)" -eq 0 ] || skip "needs root"
[ -x "$KVRUN" ] && [ -e /dev/kvm ] || skip "kvrun not built or no /dev/kvm"
command -v runc >/dev/null || skip "runc not installed (make deps)"

clients_setup bench
trap 'stop_daemon "$CT/docker.pid"; stop_daemon "$CT/containerd.pid"; clients_teardown' EXIT
export KVRUN_TEMPLATE_DIR=$CT/templates
mkdir -p "$KVRUN_TEMPLATE_DIR"
"$KVRUN" template create >/dev/null 2>&1 || echo "clients: template create failed (cold boots)"
# The path the clients get: a wrapper that logs each kvrun call's duration.
# clients_setup may have left a symlink to the binary there: remove it, or
# the wrapper would be written through it over build/kvrun.
rm -f "$CT/bin/kvrun"
# KVRUN_BENCH_TIMINGS=1: each call's phases too (KVRUN_TIMINGS, read back
# from the log the client gave kvrun), the last create's shown per client.
cat >"$CT/bin/kvrun" <<EOF
#!/bin/bash
s=\$(date +%s%N)
KVRUN_TIMINGS=${KVRUN_BENCH_TIMINGS:-0} KVRUN_TEMPLATE_DIR=$KVRUN_TEMPLATE_DIR $KVRUN "\$@"
r=\$?
cmd="" log=""
prev=""
for a in "\$@"; do
	[ "\$prev" = --log ] && log=\$a
	prev=\$a
done
for a in "\$@"; do case "\$a" in create|start|state|kill|delete|run|exec|ps|update) cmd=\$a; break;; esac; done
echo "\$cmd \$(( (\$(date +%s%N) - s) / 1000000 ))" >>$CT/calls.log
[ -n "\$log" ] && [ -f "\$log" ] && grep -o "timings: \$cmd [^\"]*" "\$log" | tail -1 >>$CT/timings.log
exit \$r
EOF
chmod 755 "$CT/bin/kvrun"

# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# bench_one LABEL CMD...: warm-up, then $runs timed runs; prints the median in ms.
bench_one() {
	local label=$1 i s e
	shift
	"$@" >"$CT/warmup.out" 2>&1 || {
		echo "$label: failed: $*: $(tail -3 "$CT/warmup.out" | tr '\n' ' ')" >&2
		echo 0
		return
	}
	for ((i = 0; i < runs; i++)); do
		s=$(date +%s%N)
		"$@" >/dev/null 2>&1
		e=$(date +%s%N)
		echo $(((e - s) / 1000000))
	done | median
}

# report CLIENT RUNC_MS KVRUN_MS: the line, and kvrun's calls per run.
report() {
	local ratio="-"
	[ "$2" -gt 0 ] && ratio=$(awk -v a="$3" -v b="$2" 'BEGIN { printf "%.1f", a / b }')
	printf '%-8s run --rm busybox true: runc %6d ms, kvrun %6d ms (median of %d), kvrun/runc %sx\n' \
		"$1" "$2" "$3" "$runs" "$ratio"
	if [ -s "$CT/calls.log" ]; then
		awk -v n=$((runs + 1)) '{ t[$1] += $2; c[$1]++ } END {
			printf "         kvrun calls per run (mean ms):"
			for (k in t) printf " %s %d x%.0f", k, t[k] / c[k], c[k] / n
			printf "\n" }' "$CT/calls.log"
	fi
	: >"$CT/calls.log"
	if [ -s "$CT/timings.log" ]; then
		echo "         the last create's phases: $(grep '^timings: create' "$CT/timings.log" | tail -1)"
		: >"$CT/timings.log"
	fi
}

echo "clients: load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

if command -v dockerd >/dev/null && command -v docker >/dev/null; then
	mkdir -p "$CT/docker"
	jq -n --arg k "$CT/bin/kvrun" '{runtimes: {kvrun: {path: $k}}}' >"$CT/docker/daemon.json"
	export DOCKER_HOST="unix://$CT/docker/docker.sock" DOCKER_CONFIG="$CT/docker"
	start_daemon docker "$CT/docker.pid" "$CT/docker/docker.sock" dockerd \
		--config-file "$CT/docker/daemon.json" --data-root "$CT/docker/data" \
		--exec-root "$CT/docker/exec" --pidfile "$CT/docker/dockerd.pid" -H "$DOCKER_HOST"
	docker load -i "$CT/busybox.tar" >/dev/null
	r=$(bench_one runc docker run --rm --runtime runc busybox true)
	: >"$CT/calls.log"
	k=$(bench_one kvrun docker run --rm --runtime kvrun busybox true)
	report docker "$r" "$k"
	stop_daemon "$CT/docker.pid"
	# Podman reads DOCKER_CONFIG too (its auth file): not docker's here.
	unset DOCKER_HOST DOCKER_CONFIG
else
	echo "docker: skipped: dockerd not installed"
fi

if command -v podman >/dev/null && command -v conmon >/dev/null; then
	mkdir -p "$CT/podman"
	printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "%s"\n[engine.runtimes]\nkvrun = ["%s"]\n[network]\nnetwork_config_dir = "%s"\n' \
		"$CT/podman/events.log" "$CT/bin/kvrun" "$CT/podman/cni" >"$CT/podman/containers.conf"
	printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' \
		"$CT/podman/storage" "$CT/podman/run" >"$CT/podman/storage.conf"
	export CONTAINERS_CONF=$CT/podman/containers.conf CONTAINERS_STORAGE_CONF=$CT/podman/storage.conf
	pm() { in_ns podman --tmpdir "$CT/podman/tmp" "$@"; }
	pm load -i "$CT/busybox.tar" >/dev/null 2>&1
	r=$(bench_one runc pm --runtime runc run --rm busybox true)
	: >"$CT/calls.log"
	k=$(bench_one kvrun pm --runtime kvrun run --rm busybox true)
	report podman "$r" "$k"
	pm rm -af >/dev/null 2>&1
else
	echo "podman: skipped: podman not installed"
fi

if command -v containerd >/dev/null && command -v ctr >/dev/null; then
	mkdir -p "$CT/containerd"
	printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s/c.sock"\n[ttrpc]\n  address = "%s/c.sock.ttrpc"\n' \
		"$CT/containerd" "$CT/containerd" "$CT/containerd" "$CT/containerd" >"$CT/containerd/config.toml"
	start_daemon containerd "$CT/containerd.pid" "$CT/containerd/c.sock" \
		containerd --config "$CT/containerd/config.toml"
	cc() { ctr --address "$CT/containerd/c.sock" -n bench "$@"; }
	cc images import "$CT/busybox.tar" >/dev/null
	ctr_run() { cc run --rm "$@" docker.io/library/busybox:latest "b$RANDOM$RANDOM" true; }
	r=$(bench_one runc ctr_run --runtime io.containerd.runc.v2)
	: >"$CT/calls.log"
	k=$(bench_one kvrun ctr_run --runtime io.containerd.runc.v2 --runc-binary "$CT/bin/kvrun" \
		--runc-root "$CT/containerd/runc")
	report ctr "$r" "$k"
	# SIGKILL through containerd: from `task kill` to the task shown STOPPED.
	kill_ms() {
		local id="k$RANDOM" s e n=0
		cc run -d "$@" docker.io/library/busybox:latest "$id" sleep 1000 >/dev/null 2>&1 || return
		s=$(date +%s%N)
		cc task kill -s KILL "$id" >/dev/null 2>&1
		while [ "$(cc task ls 2>/dev/null | awk -v i="$id" '$1 == i { print $3 }')" != STOPPED ] &&
			[ $((n += 1)) -lt 1500 ]; do
			sleep 0.02
		done
		e=$(date +%s%N)
		cc task rm "$id" >/dev/null 2>&1
		cc containers rm "$id" >/dev/null 2>&1
		echo $(((e - s) / 1000000))
	}
	r=$(for i in 1 2 3; do kill_ms --runtime io.containerd.runc.v2; done | median)
	k=$(for i in 1 2 3; do kill_ms --runtime io.containerd.runc.v2 --runc-binary "$CT/bin/kvrun" \
		--runc-root "$CT/containerd/runc"; done | median)
	printf 'ctr      task kill -s KILL to STOPPED: runc %d ms, kvrun %d ms (median of 3)\n' "$r" "$k"
	: >"$CT/calls.log"
	stop_daemon "$CT/containerd.pid"
else
	echo "ctr: skipped: containerd not installed"
fi

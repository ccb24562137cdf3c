#!/usr/bin/env bash
# tests/bench/cli.sh (make bench): what one CLI call costs on the host, kvrun
# against runc and crun in the same run. containerd makes five calls per
# container (create, start, state, delete, delete --force); this measures the
# call itself, without a container: `state` of an id that does not exist
# (each binary starts, parses, looks in its --root, fails) and `list` of an
# empty --root. Needs no KVM.
#  1. instructions per call (valgrind --tool=callgrind: repeatable whatever
#     the machine is doing), and the dynamic loader's startup (LD_DEBUG);
#  2. wall time of N calls each (median of 5 batches), and the ratios.
# KVRUN_BENCH_CALLS (default 100) sets N.
# shellcheck source=tests/bench/common.bash disable=SC2154
. "$(dirname "$0")/common.bash"
calls=${KVRUN_BENCH_CALLS:-100}
peers=()
for p in runc crun; do
	command -v "$p" >/dev/null && peers+=("$(command -v "$p")")
done
[ -x "$kvrun" ] || { echo "bench: $kvrun not built (make)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/kvrun-bench-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# instructions PROG ARGS...: callgrind's total for one call.
instructions() {
	valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$@" >/dev/null 2>"$tmp/cg.err" || true
	sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$tmp/cg.err"
	rm -f "$tmp/cg.out"
}

# batch_ms PROG ARGS...: the median of 5 batches of $calls calls, in ms per call.
batch_ms() {
	local b t0 t1 i times=()
	for b in 1 2 3 4 5; do
		t0=$(date +%s%N)
		for ((i = 0; i < calls; i++)); do "$@" >/dev/null 2>&1 || true; done
		t1=$(date +%s%N)
		times+=("$(((t1 - t0) / calls / 1000))")
	done
	printf '%s\n' "${times[@]}" | sort -n | sed -n 3p | awk '{printf "%.2f", $1 / 1000}'
}

loader() {
	LD_DEBUG=statistics "$@" 2>&1 >/dev/null | sed -n 's/.*total startup time in dynamic loader: \([0-9]*\) cycles.*/\1/p' | head -1
}

printf '%-8s %-6s %14s %12s %16s %10s\n' binary call instructions "ms/call" "loader cycles" libraries
declare -A ins ms
for prog in "$kvrun" "${peers[@]}"; do
	name=$(basename "$prog")
	root="$tmp/root-$name"
	mkdir -p "$root"
	libs=$(ldd "$prog" 2>/dev/null | grep -c '=>' || true)
	for call in state list; do
		args=(--root "$root" "$call")
		[ "$call" = state ] && args+=(bench-missing)
		command -v valgrind >/dev/null && ins[$name.$call]=$(instructions "$prog" "${args[@]}") || ins[$name.$call]=""
		ms[$name.$call]=$(batch_ms "$prog" "${args[@]}")
		printf '%-8s %-6s %14s %12s %16s %10s\n' "$name" "$call" "${ins[$name.$call]:-?}" \
			"${ms[$name.$call]}" "$(loader "$prog" "${args[@]}")" "$libs"
	done
done
for peer in "${peers[@]}"; do
	p=$(basename "$peer")
	for call in state list; do
		a=${ins[kvrun.$call]:-} b=${ins[$p.$call]:-}
		r="?"
		[ -n "$a" ] && [ -n "$b" ] && r=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}')
		t=$(awk -v a="${ms[kvrun.$call]}" -v b="${ms[$p.$call]}" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
		echo "kvrun/$p $call: instructions x$r, wall time x$t"
	done
done

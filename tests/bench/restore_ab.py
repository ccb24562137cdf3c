#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A/B of kvrun-vmm restores: two (or more) VMM binaries restore the same
snapshot, interleaved (A B, B A, A B, ...: the same load for each), RUNS
rounds. Each restore is measured as in snapshot_bench.py: exec to the first
KVM_RUN (the LD_PRELOAD probe), the VMM's CPU time by then, its own phase
breakdown (--stats), and it must reach agent-ready (a restore that is fast
and broken counts for nothing).

  tests/bench/restore_ab.py BUILD SNAPDIR VMM_A [VMM_B ...]

A VMM may carry options, split as a shell would: "build/kvrun-vmm --no-jail"
against "build/kvrun-vmm" is the jail's A/B with one binary.

SNAPDIR is made once (a cold boot with BUILD's kvrun-vmm, then a snapshot)
and reused by later runs while it exists: both binaries must read its format.
Env: RUNS (rounds, 20), MEM (MiB, 256), CPUS (1).
"""
import json
import os
import shlex
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snapshot_bench as sb  # noqa: E402


class AB(sb.Bench):
    def __init__(self, build, work, snap):
        super().__init__(build, work)
        self.snapdir = snap

    def path(self, *p):
        if p and p[0] == "snap":
            return os.path.join(self.snapdir, *p[1:])
        return os.path.join(self.work, *p)

    def make_snapshot(self):
        if os.path.exists(os.path.join(self.snapdir, "state")):
            return
        os.makedirs(self.snapdir, exist_ok=True)
        proc, secs = self.cold_boot(0)
        print(f"  cold boot: ready after {secs:.1f} s", flush=True)
        self.snapshot([proc])

    def one(self, vmm, name):
        self.vmm, *self.vmm_opts = shlex.split(vmm)
        proc, t0, d = self.restore(name, probe=True)
        t1 = sb.wait_ready(os.path.join(d, "v.sock"), proc, 60, 0.001)
        sb.stop(proc)
        with open(os.path.join(d, "probe")) as f:
            fr = dict(line.split() for line in f)
        with open(os.path.join(d, "stats.json")) as f:
            st = json.load(f)["restore"]
        r = dict(first_ms=(int(fr["first_run_ns"]) - t0) / 1e6,
                 cpu_ms=int(fr["first_run_cpu_ns"]) / 1e6, ready_ms=(t1 - t0) / 1e6,
                 **{k.replace("_us", "_ms"): v / 1000 for k, v in st.items()})
        if "start_us" in st:
            # exec, the dynamic loader, the command line, the loop, before the restore proper
            r["exec_ms"] = r["first_ms"] - sum(v for k, v in st.items()) / 1000
        return r


def main():
    build, snap, vmms = sys.argv[1], sys.argv[2], sys.argv[3:]
    runs = sb.env_int("RUNS", 20)
    res = {v: [] for v in vmms}
    loads = []
    with tempfile.TemporaryDirectory(prefix="kvrun-ab.") as work:
        b = AB(build, work, snap)
        try:
            b.make_snapshot()
            for i in range(runs):
                order = vmms if i % 2 == 0 else list(reversed(vmms))
                for j, v in enumerate(order):
                    res[v].append(b.one(v, f"r{i}-{vmms.index(v)}"))
                loads.append(os.getloadavg()[0])
        finally:
            for p in b.procs:
                sb.stop(p)
    print(f"restore A/B: {runs} rounds interleaved, load average median "
          f"{statistics.median(loads):.1f} (min {min(loads):.1f}, max {max(loads):.1f}) "
          f"on {os.cpu_count()} CPUs; ms, median (min)")
    out = {}
    for v in vmms:
        keys = res[v][0].keys()
        med = {k: statistics.median(r[k] for r in res[v]) for k in keys}
        mn = {k: min(r[k] for r in res[v]) for k in keys}
        out[v] = dict(median=med, min=mn)
        print(f"{v}:")
        print("  " + "  ".join(f"{k} {med[k]:.2f} ({mn[k]:.2f})" for k in keys))
    print(json.dumps(dict(bench="restore_ab", runs=runs, load=statistics.median(loads), **out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

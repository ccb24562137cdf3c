#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Snapshot/restore benchmark for kvrun-vmm (run by tests/bench/snapshot.sh).

One VM throughout, the one kvrun runs containers in: the guest kernel and
the guest image (build/guest/vmlinux, rootfs.erofs: kvrun-agent is PID 1),
MEM MiB, CPUS vCPUs, and the devices of a kvrun template (the image on
pmem, the rootfs share with its DAX window and the binds share, both empty
directories never mounted, vsock, rng). "Ready" means the same for every VM:
the agent answers a "version" request on vsock port 1024 (what kvrun-shim
waits for). Measured in one run:

  (1) restore, exec to the first KVM_RUN (the LD_PRELOAD probe shared with
      vmm.sh), median of RUNS restores, with the VMM's own breakdown
      (--stats: files checked, KVM VM + RAM + devices built, state applied,
      then on to the first KVM_RUN: loop sources, confinement, vCPU thread)
      and the VMM's CPU time by its first KVM_RUN (wall time on a loaded
      host is mostly waiting for a CPU)
  (2) clone to agent-ready: exec of a restoring kvrun-vmm to the answer
  (3) cold boot to agent-ready: exec of a booting kvrun-vmm to the answer
      (COLD_VMS boots, one after the other)
  (4) PSS per VM (/proc/PID/smaps_rollup, VMM included) of CLONES idle
      clones running at once, against the cold-booted VMs idle at once. A
      cold VM's RAM is a memfd, private once touched; the kernel's pages are
      mapped from vmlinux and shared. With fewer than CLONES cold VMs, the
      figure for CLONES of them is extrapolated from the k measured:
      PSS - Shared * (1/k - 1/CLONES) (what the k share, all would), and said
      so; k = 1 cannot tell the kernel's pages apart, so COLD_VMS=2 by default.
Prints one line per measure and a JSON object.
"""
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

AGENT_PORT = 1024
AGENT_PROTO_VERSION = 1


def env_int(name, default):
    return int(os.environ.get(name, default))


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def recv_exact(s, n):
    got = b""
    while len(got) < n:
        b = s.recv(n - len(got))
        if not b:
            raise OSError("EOF")
        got += b
    return got


def agent_ready(uds, timeout=10.0):
    """The agent answers "version" (one connection, as kvrun-shim's hello)."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(uds)
        s.sendall(b"CONNECT %d\n" % AGENT_PORT)
        line = b""
        while not line.endswith(b"\n"):
            line += recv_exact(s, 1)
        if not line.startswith(b"OK "):
            return False
        req = json.dumps({"id": 1, "op": "version",
                          "params": {"version": AGENT_PROTO_VERSION}}).encode()
        s.sendall(struct.pack(">I", len(req)) + req)
        (n,) = struct.unpack(">I", recv_exact(s, 4))
        resp = json.loads(recv_exact(s, n))
        s.close()
        return "result" in resp
    except (OSError, ValueError):
        return False


def wait_ready(uds, proc, timeout_s, poll_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kvrun-vmm exited with {proc.returncode} before ready")
        if os.path.exists(uds) and agent_ready(uds):
            return now_ns()
        time.sleep(poll_s)
    raise RuntimeError(f"not ready after {timeout_s} s")


def spawn(args, log, env=None):
    t0 = now_ns()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    return proc, t0


def smaps(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Bench:
    def __init__(self, build, work):
        self.build, self.work = build, work
        self.vmm = os.path.join(build, "kvrun-vmm")
        self.vmm_opts = []  # options for every restore (restore_ab.py: "VMM --no-jail")
        self.kernel = os.path.join(build, "guest", "vmlinux")
        self.image = os.path.join(build, "guest", "rootfs.erofs")
        self.probe = os.path.join(build, "tests", "bench", "kvm-probe.so")
        self.mem, self.cpus = env_int("MEM", 256), env_int("CPUS", 1)
        self.runs, self.clones = env_int("RUNS", 10), env_int("CLONES", 20)
        self.cold_vms = env_int("COLD_VMS", 2)
        self.boot_timeout = env_int("BOOT_TIMEOUT", 600)
        self.procs = []
        self.r = {}

    def path(self, *p):
        return os.path.join(self.work, *p)

    def devices(self, d):
        """kvrun's template devices (runtime/template.c); the shares stay empty."""
        empty = os.path.join(d, "empty")
        os.makedirs(empty, exist_ok=True)
        return ["--pmem", self.image + ",ro", "--fs", f"rootfs={empty},rw,dax=256M", "--fs",
                f"binds={empty},ro", "--vsock", os.path.join(d, "v.sock")]

    def cold_boot(self, i):
        d = self.path(f"cold{i}")
        os.makedirs(d)
        args = [self.vmm, "--kernel", self.kernel, "--mem", str(self.mem), "--cpus",
                str(self.cpus), "--cmdline", "root=/dev/pmem0 rootfstype=erofs ro rootflags=dax quiet",
                "--console", os.path.join(d, "console.log"), "--api",
                os.path.join(d, "api.sock")] + self.devices(d)
        log = open(os.path.join(d, "vmm.log"), "w")
        proc, t0 = spawn(args, log)
        self.procs.append(proc)
        t1 = wait_ready(os.path.join(d, "v.sock"), proc, self.boot_timeout, 0.05)
        return proc, (t1 - t0) / 1e9

    def restore(self, name, probe):
        d = self.path(name)
        os.makedirs(d)
        args = [self.vmm, *self.vmm_opts, "--restore", self.path("snap"), "--console", "none",
                "--stats", os.path.join(d, "stats.json")] + self.devices(d)
        env = None
        if probe:
            env = dict(os.environ, LD_PRELOAD=self.probe, KVM_PROBE_OUT=os.path.join(d, "probe"))
        log = open(os.path.join(d, "vmm.log"), "w")
        proc, t0 = spawn(args, log, env)
        self.procs.append(proc)
        return proc, t0, d

    def measure_cold(self):
        times, colds = [], []
        for i in range(max(1, self.cold_vms)):
            proc, secs = self.cold_boot(i)
            colds.append(proc)
            times.append(secs)
            print(f"  cold boot {i}: ready after {secs:.1f} s", flush=True)
        time.sleep(3)
        mem = [smaps(p.pid) for p in colds]
        k = len(colds)
        pss = statistics.mean(m["Pss"] for m in mem)
        priv = statistics.mean(m["Private_Clean"] + m["Private_Dirty"] for m in mem)
        shared = statistics.mean(m["Shared_Clean"] + m["Shared_Dirty"] for m in mem)
        self.r["cold_ready_s"] = statistics.median(times)
        self.r["cold_vms_measured"] = k
        self.r["cold_pss_kb_measured"] = round(pss)
        # Pages the k cold VMs share (the kernel's) would be shared by all of them.
        est = pss if k >= self.clones else max(priv, pss - shared * (1 / k - 1 / self.clones))
        self.r["cold_pss_kb"] = round(est)
        self.r["cold_rss_kb"] = round(statistics.mean(m["Rss"] for m in mem))
        return colds

    def snapshot(self, colds):
        out = subprocess.run([self.vmm, "--api-call", self.path("cold0", "api.sock"), "snapshot",
                              self.path("snap"), "exit"], capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"snapshot failed: {out.stdout} {out.stderr}")
        self.r["snapshot"] = json.loads(out.stdout)["snapshot"]
        for p in colds:
            stop(p)

    def measure_restores(self):
        first, cpu, ready, phases = [], [], [], []
        for i in range(self.runs):
            proc, t0, d = self.restore(f"r{i}", probe=True)
            t1 = wait_ready(os.path.join(d, "v.sock"), proc, 60, 0.0005)
            stop(proc)
            with open(os.path.join(d, "probe")) as f:
                fr = dict(line.split() for line in f)
            first.append((int(fr["first_run_ns"]) - t0) / 1e6)
            cpu.append(int(fr["first_run_cpu_ns"]) / 1e6)
            ready.append((t1 - t0) / 1e6)
            with open(os.path.join(d, "stats.json")) as f:
                phases.append(json.load(f)["restore"])
        self.r["restore_first_run_ms"] = round(statistics.median(first), 3)
        self.r["restore_first_run_ms_min"] = round(min(first), 3)
        self.r["restore_first_run_ms_max"] = round(max(first), 3)
        self.r["restore_first_run_cpu_ms"] = round(statistics.median(cpu), 3)
        for k in ("files_us", "vm_us", "state_us", "start_us"):
            self.r[f"restore_{k}"] = statistics.median(p[k] for p in phases)
        self.r["clone_ready_ms"] = round(statistics.median(ready), 3)

    def measure_clones(self):
        clones = []
        for i in range(self.clones):
            proc, t0, d = self.restore(f"c{i}", probe=False)
            clones.append((proc, d))
        for proc, d in clones:
            wait_ready(os.path.join(d, "v.sock"), proc, 120, 0.01)
        time.sleep(3)
        mem = [smaps(p.pid) for p, _ in clones]
        self.r["clone_pss_kb"] = round(statistics.mean(m["Pss"] for m in mem))
        self.r["clone_anon_kb"] = round(statistics.mean(m["Anonymous"] for m in mem))
        self.r["clone_rss_kb"] = round(statistics.mean(m["Rss"] for m in mem))
        for p, _ in clones:
            stop(p)

    def report(self):
        r = self.r
        ratio = r["cold_ready_s"] * 1000 / r["clone_ready_ms"]
        pss_ratio = r["clone_pss_kb"] / r["cold_pss_kb"]
        r["ready_ratio"] = round(ratio, 1)
        r["pss_ratio"] = round(pss_ratio, 4)
        print(f"snapshot bench: {self.mem} MiB, {self.cpus} vCPU(s), guest image + agent; "
              f"{self.runs} restores, {self.clones} clones, medians")
        print(f"(1) restore, exec to first KVM_RUN     {r['restore_first_run_ms']:8.2f} ms "
              f"(min {r['restore_first_run_ms_min']:.2f}, max {r['restore_first_run_ms_max']:.2f})"
              f"  (target < 5 ms)")
        print(f"    CPU time of the VMM by then        {r['restore_first_run_cpu_ms']:8.2f} ms"
              f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print(f"    in the VMM: files {r['restore_files_us']} us, KVM VM + RAM + devices "
              f"{r['restore_vm_us']} us, state {r['restore_state_us']} us, on to the first KVM_RUN "
              f"{r['restore_start_us']} us")
        print(f"(2) clone to agent-ready               {r['clone_ready_ms']:8.2f} ms")
        print(f"(3) cold boot to agent-ready          {r['cold_ready_s'] * 1000:8.0f} ms"
              f"   ratio cold/clone {ratio:.0f}x  (target >= 100x)")
        extra = ("" if r["cold_vms_measured"] >= self.clones else
                 f", extrapolated from {r['cold_vms_measured']} running "
                 f"({r['cold_pss_kb_measured']} kB each)")
        print(f"(4) PSS per VM, {self.clones} idle clones       {r['clone_pss_kb']:8d} kB "
              f"(anonymous {r['clone_anon_kb']} kB)")
        print(f"    PSS per VM, {self.clones} cold VMs          {r['cold_pss_kb']:8d} kB{extra}"
              f"   ratio {pss_ratio:.3f}  (target <= 0.1)")
        snap = r["snapshot"]
        print(f"    snapshot: {snap['mem_data_bytes'] >> 20} MiB of {snap['mem_bytes'] >> 20} MiB"
              f" RAM saved in {snap['save_us'] / 1000:.0f} ms")
        print(json.dumps(dict(bench="snapshot", mem_mib=self.mem, cpus=self.cpus, **r)))


def main():
    build = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="kvrun-snapbench.") as work:
        b = Bench(build, work)
        try:
            colds = b.measure_cold()
            b.snapshot(colds)
            b.measure_restores()
            b.measure_clones()
            b.report()
        finally:
            for p in b.procs:
                stop(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())

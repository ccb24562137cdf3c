#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Host-side helpers for vmm_snapshot.bats.

  snapshot_host.py echo UDS PORT [N]   N times (default 1): connect to guest
                                       port PORT through the hybrid vsock
                                       socket UDS, send a unique line, expect
                                       it echoed; prints one line per try
  snapshot_host.py api SOCK JSON       one raw request on the control socket
                                       (no fds attached); prints the answer
  snapshot_host.py wait FILE REGEX SECS
                                       wait until FILE has a line matching
                                       REGEX (whole lines, CR LF stripped);
                                       prints it (status 1 on timeout)
  snapshot_host.py ticks FILE          the KVRUN-TEST-TICK numbers in FILE,
                                       one per line
  snapshot_host.py patch FILE OFF HEX  overwrite bytes at OFF with HEX
"""
import os
import re
import socket
import sys
import time


def echo(uds, port, n):
    for i in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        t0 = time.monotonic()
        s.connect(uds)
        s.sendall(b"CONNECT %d\n" % port)
        line = b""
        while not line.endswith(b"\n"):
            b = s.recv(1)
            if not b:
                break
            line += b
        if not line.startswith(b"OK "):
            print(f"echo {i}: handshake answered {line!r}", flush=True)
            return 1
        msg = b"snapshot-echo %d %d\n" % (i, time.time_ns())
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            b = s.recv(4096)
            if not b:
                break
            got += b
        s.close()
        ms = (time.monotonic() - t0) * 1000
        if got != msg:
            print(f"echo {i}: mismatch {got!r}", flush=True)
            return 1
        print(f"echo {i}: ok {ms:.1f} ms", flush=True)
    return 0


def api(sock, req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sock)
    s.sendall(req.encode() + b"\n")
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(4096)
        if not b:
            break
        line += b
    print(line.decode().strip(), flush=True)
    return 0


def wait(path, regex, secs):
    pat = re.compile(regex.encode())
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                for line in f:
                    # Whole lines only: the guest may be halfway through one.
                    if not line.endswith(b"\n"):
                        break
                    line = line.rstrip(b"\r\n")
                    if pat.search(line):
                        print(line.decode(errors="replace"), flush=True)
                        return 0
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    print(f"wait: no line matching {regex} in {path} after {secs} s", flush=True)
    return 1


def ticks(path):
    with open(path, "rb") as f:
        for line in f:
            m = re.match(rb"KVRUN-TEST-TICK (\d+)", line)
            if m:
                print(int(m.group(1)))
    return 0


def patch(path, off, hexbytes):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(bytes.fromhex(hexbytes))
    return 0


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "echo":
        return echo(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    if cmd == "api":
        return api(sys.argv[2], sys.argv[3])
    if cmd == "wait":
        return wait(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    if cmd == "ticks":
        return ticks(sys.argv[2])
    if cmd == "patch":
        return patch(sys.argv[2], int(sys.argv[3], 0), sys.argv[4])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())

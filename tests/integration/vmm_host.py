#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Host-side helpers for vmm.bats, vmm_snapshot.bats and vmm_live.bats.

  vmm_host.py echo-server PATH       listen on the Unix socket PATH (the hybrid
                                     vsock target of guest->host port P is
                                     <uds>_P; mode 0666: the jailed VMM's uid
                                     dials it), echo one connection until EOF
  vmm_host.py vsock-client UDS PORT CONSOLE
                                     wait for KVRUN-TEST-VSOCK-LISTENING in the
                                     console file, then CONNECT PORT through
                                     UDS, send lines, expect them echoed
  vmm_host.py vsock-echo UDS PORT [N]
                                     N times (default 1): connect to guest
                                     port PORT through the hybrid vsock
                                     socket UDS, send a unique line, expect
                                     it echoed; prints one line per try
  vmm_host.py api SOCK JSON [PATH...]
                                     one raw request on the control socket,
                                     with an O_PATH fd of each PATH attached
                                     (SCM_RIGHTS); prints the answer
  vmm_host.py pty-echo PTY TEXT      write TEXT to the console pty, expect it
                                     echoed (payload=c), then send "q"
  vmm_host.py wait FILE REGEX SECS   wait until FILE has a line matching
                                     REGEX (whole lines, CR LF stripped);
                                     prints it (status 1 on timeout)
  vmm_host.py ticks FILE             the KVRUN-TEST-TICK numbers in FILE,
                                     one per line
  vmm_host.py patch FILE OFF HEX     overwrite bytes at OFF with HEX
"""
import os
import re
import select
import socket
import sys
import time


def recv_line(s):
    """Bytes up to and including the first newline (or EOF), one at a time:
    what follows the line stays in the socket for the caller."""
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        line += b
    return line


def recv_exact(s, n):
    """n bytes, or fewer if the peer closes first."""
    got = b""
    while len(got) < n:
        b = s.recv(4096)
        if not b:
            break
        got += b
    return got


def vsock_connect(uds, port, timeout):
    """Connect to guest port PORT through the hybrid vsock socket UDS
    (Firecracker's "CONNECT PORT\\n" / "OK ...\\n"). Returns (socket, None),
    or (None, the handshake's answer) when the guest refused."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(uds)
    s.sendall(b"CONNECT %d\n" % port)
    line = recv_line(s)
    if not line.startswith(b"OK "):
        s.close()
        return None, line
    return s, None


def wait_line(path, regex, secs):
    """The first whole line of PATH matching REGEX, CR LF stripped, or None
    after SECS seconds."""
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
                        return line
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    return None


def echo_server(path):
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    # The VMM dials it as its jail's uid (vmm/vmm.h): let any uid connect.
    os.chmod(path, 0o666)
    s.listen(1)
    s.settimeout(600)
    c, _ = s.accept()
    total = 0
    while True:
        b = c.recv(4096)
        if not b:
            break
        c.sendall(b)
        total += len(b)
    c.close()
    print(f"echo-server: {total} bytes echoed", flush=True)
    return 0


def vsock_client(uds, port, console):
    if wait_line(console, "KVRUN-TEST-VSOCK-LISTENING", 600) is None:
        print("vsock-client: guest never listened", flush=True)
        return 1
    s, answer = vsock_connect(uds, port, 120)
    if s is None:
        print(f"vsock-client: handshake answered {answer!r}", flush=True)
        return 1
    msg = b"".join(b"host line %d\n" % i for i in range(50))
    s.sendall(msg)
    got = recv_exact(s, len(msg))
    s.shutdown(socket.SHUT_WR)
    s.close()
    ok = got == msg
    print(f"vsock-client: {'echoed' if ok else 'mismatch'} {len(got)}/{len(msg)} bytes", flush=True)
    return 0 if ok else 1


def vsock_echo(uds, port, n):
    for i in range(n):
        t0 = time.monotonic()
        s, answer = vsock_connect(uds, port, 60)
        if s is None:
            print(f"echo {i}: handshake answered {answer!r}", flush=True)
            return 1
        msg = b"snapshot-echo %d %d\n" % (i, time.time_ns())
        s.sendall(msg)
        got = recv_exact(s, len(msg))
        s.close()
        ms = (time.monotonic() - t0) * 1000
        if got != msg:
            print(f"echo {i}: mismatch {got!r}", flush=True)
            return 1
        print(f"echo {i}: ok {ms:.1f} ms", flush=True)
    return 0


def unix_connect(s, path):
    """connect() to a Unix socket path of any length: one too long for
    sun_path through /proc/self/fd/N of its directory (as kvrun-vmm's
    clients do)."""
    if len(path.encode()) < 108:
        s.connect(path)
        return
    dfd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
    try:
        s.connect(f"/proc/self/fd/{dfd}/{os.path.basename(path)}")
    finally:
        os.close(dfd)


def api(sock, req, paths=()):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    unix_connect(s, sock)
    fds = [os.open(p, os.O_PATH | os.O_CLOEXEC) for p in paths]
    if fds:
        socket.send_fds(s, [req.encode() + b"\n"], fds)
    else:
        s.sendall(req.encode() + b"\n")
    for fd in fds:
        os.close(fd)
    print(recv_line(s).decode().strip(), flush=True)
    return 0


def pty_echo(path, text):
    import termios
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~(termios.ECHO | termios.ICANON)
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    os.write(fd, text.encode())
    got = b""
    deadline = time.time() + 30
    while text.encode() not in got and time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 1)
        if r:
            got += os.read(fd, 4096)
    # Only now: the guest exits on "q", and a pty hang-up drops unread output.
    os.write(fd, b"q")
    os.close(fd)
    print(f"pty-echo: got {got!r}", flush=True)
    return 0 if text.encode() in got else 1


def wait(path, regex, secs):
    line = wait_line(path, regex, secs)
    if line is None:
        print(f"wait: no line matching {regex} in {path} after {secs} s", flush=True)
        return 1
    print(line.decode(errors="replace"), flush=True)
    return 0


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
    if cmd == "echo-server":
        return echo_server(sys.argv[2])
    if cmd == "vsock-client":
        return vsock_client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    if cmd == "vsock-echo":
        return vsock_echo(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    if cmd == "api":
        return api(sys.argv[2], sys.argv[3], sys.argv[4:])
    if cmd == "pty-echo":
        return pty_echo(sys.argv[2], sys.argv[3])
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

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Host-side helpers for vmm.bats.

  vmm_host.py echo-server PATH       listen on the Unix socket PATH (the hybrid
                                     vsock target of guest->host port P is
                                     <uds>_P), echo one connection until EOF
  vmm_host.py vsock-client UDS PORT CONSOLE
                                     wait for KVRUN-TEST-VSOCK-LISTENING in the
                                     console file, then CONNECT PORT through
                                     UDS, send lines, expect them echoed
  vmm_host.py api SOCK JSON          one request on the control socket; prints
                                     the response line
  vmm_host.py pty-echo PTY TEXT      write TEXT to the console pty, expect it
                                     echoed (payload=c), then send "q"
"""
import os
import socket
import sys
import time


def echo_server(path):
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
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


def vsock_client(uds, port, console):
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            with open(console, "rb") as f:
                if b"KVRUN-TEST-VSOCK-LISTENING" in f.read():
                    break
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    else:
        print("vsock-client: guest never listened", flush=True)
        return 1
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(120)
    s.connect(uds)
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        line += b
    if not line.startswith(b"OK "):
        print(f"vsock-client: handshake answered {line!r}", flush=True)
        return 1
    msg = b"".join(b"host line %d\n" % i for i in range(50))
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = s.recv(4096)
        if not b:
            break
        got += b
    s.shutdown(socket.SHUT_WR)
    s.close()
    ok = got == msg
    print(f"vsock-client: {'echoed' if ok else 'mismatch'} {len(got)}/{len(msg)} bytes", flush=True)
    return 0 if ok else 1


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
        import select
        r, _, _ = select.select([fd], [], [], 1)
        if r:
            got += os.read(fd, 4096)
    # Only now: the guest exits on "q", and a pty hang-up drops unread output.
    os.write(fd, b"q")
    os.close(fd)
    print(f"pty-echo: got {got!r}", flush=True)
    return 0 if text.encode() in got else 1


def main():
    cmd = sys.argv[1]
    if cmd == "echo-server":
        echo_server(sys.argv[2])
        return 0
    if cmd == "vsock-client":
        return vsock_client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    if cmd == "api":
        return api(sys.argv[2], sys.argv[3])
    if cmd == "pty-echo":
        return pty_echo(sys.argv[2], sys.argv[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Seed inputs for tests/fuzz/fuzz_virtio.c: well-formed requests for each
device, laid out the way the harness expects (see its header comment):
  [kind][nops][features] nops * [op kind, le16 offset, le32 value] [guest RAM]
Queue q has its descriptor table at RAM offset q*0x1000, avail ring at +0x400,
used ring at +0x800; buffers live from 0x3000. Usage: virtio_seeds.py DIR"""
import os
import struct
import sys

RAM_GPA = 0x10000
QSTEP = 0x1000
F_NEXT, F_WRITE = 1, 2


class Ram:
    def __init__(self):
        self.b = bytearray(0x6000)
        self.avail = [0, 0, 0]
        self.desc = [0, 0, 0]
        self.buf = 0x3000

    def put(self, data, size=None):
        off = self.buf
        size = size if size is not None else len(data)
        self.b[off:off + len(data)] = data
        self.buf += (size + 15) & ~15
        return off

    def chain(self, q, bufs):
        """bufs: (offset, len, writable). Publishes the chain on queue q."""
        head = self.desc[q]
        for i, (off, ln, wr) in enumerate(bufs):
            d = self.desc[q] + i
            last = i == len(bufs) - 1
            fl = (F_WRITE if wr else 0) | (0 if last else F_NEXT)
            struct.pack_into("<QIHH", self.b, q * QSTEP + 16 * d, RAM_GPA + off, ln, fl,
                             0 if last else d + 1)
        self.desc[q] += len(bufs)
        a = q * QSTEP + 0x400
        struct.pack_into("<H", self.b, a + 4 + 2 * self.avail[q], head)
        self.avail[q] += 1
        struct.pack_into("<H", self.b, a + 2, self.avail[q])


def seed(kind, ram, kicks, feat=0):
    ops = b"".join(struct.pack("<BHI", 0, 0, q) for q in kicks)
    return bytes([kind, len(kicks), feat]) + ops + bytes(ram.b)


def vsock_hdr(op, src_port, dst_port, length=0, flags=0, buf_alloc=65536, fwd=0):
    return struct.pack("<QQIIIHHIII", 3, 2, src_port, dst_port, length, 1, op, flags,
                       buf_alloc, fwd)


def main(out):
    os.makedirs(out, exist_ok=True)
    seeds = {}

    r = Ram()
    r.chain(0, [(r.put(b"", 64), 64, True)])
    seeds["rng"] = seed(0, r, [0])

    r = Ram()
    for typ, sector, data_len, wr in ((0, 1, 512, True), (1, 2, 512, False), (4, 0, 0, False),
                                      (8, 0, 20, True)):
        hdr = r.put(struct.pack("<IIQ", typ, 0, sector))
        bufs = [(hdr, 16, False)]
        if data_len:
            bufs.append((r.put(b"x" * data_len), data_len, wr))
        bufs.append((r.put(b"\xff"), 1, True))
        r.chain(0, bufs)
    seg = r.put(struct.pack("<QII", 4, 2, 0))
    r.chain(0, [(r.put(struct.pack("<IIQ", 13, 0, 0)), 16, False), (seg, 16, False),
                (r.put(b"\xff"), 1, True)])
    seeds["blk"] = seed(1, r, [0], feat=3)

    r = Ram()
    r.chain(0, [(r.put(struct.pack("<I", 0)), 4, False), (r.put(b"", 4), 4, True)])
    seeds["pmem"] = seed(2, r, [0])

    r = Ram()
    for _ in range(4):
        r.chain(0, [(r.put(b"", 44), 44, True), (r.put(b"", 256), 256, True)])
    r.chain(1, [(r.put(vsock_hdr(1, 1000, 5)), 44, False)])
    r.chain(1, [(r.put(vsock_hdr(5, 1001, 6, 4)), 44, False), (r.put(b"ping"), 4, False)])
    r.chain(1, [(r.put(vsock_hdr(7, 1000, 5)), 44, False)])
    r.chain(2, [(r.put(b"", 4), 4, True)])
    seeds["vsock"] = seed(3, r, [1, 0, 2, 1], feat=2)

    # net: rx buffers (one of 64 bytes: mergeable rx spreads a frame over
    # several), tx frames: header only plus payload, header split, too short.
    r = Ram()
    for _ in range(6):
        r.chain(0, [(r.put(b"", 512), 512, True)])
    r.chain(0, [(r.put(b"", 64), 64, True)])
    hdr = bytes(12)
    eth = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + b"x" * 46
    r.chain(1, [(r.put(hdr + eth), 12 + len(eth), False)])
    r.chain(1, [(r.put(hdr), 12, False), (r.put(eth), len(eth), False)])
    r.chain(1, [(r.put(b"\0" * 8), 8, False)])
    seeds["net"] = seed(4, r, [0, 1], feat=4 | 2)
    seeds["net-csum"] = seed(4, r, [1, 0], feat=8)

    for name, data in seeds.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])

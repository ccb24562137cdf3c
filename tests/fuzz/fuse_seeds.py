#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Seed inputs for tests/fuzz/fuzz_fuse.c: request sequences a Linux guest
sends, in the harness's record format (see its header comment):
  [u8 queue][u8 fixups][le16 readable len][le16 writable len][request bytes]
The export holds file, dir/, link -> ../outside and fifo (in live mode it
is share "s" of a live device's root). Usage:
fuse_seeds.py DIR"""
import os
import struct
import sys

LOOKUP, FORGET, GETATTR, SETATTR, READLINK, SYMLINK = 1, 2, 3, 4, 5, 6
MKNOD, MKDIR, UNLINK, RMDIR, RENAME, LINK, OPEN, READ, WRITE = 8, 9, 10, 11, 12, 13, 14, 15, 16
STATFS, RELEASE, FSYNC, SETXATTR, GETXATTR, LISTXATTR = 17, 18, 20, 21, 22, 23
OPENDIR, READDIR, CREATE, BATCH_FORGET, FALLOCATE = 27, 28, 35, 42, 43
READDIRPLUS, RENAME2, LSEEK, COPY_FILE_RANGE, SETUPMAPPING, REMOVEMAPPING = 44, 45, 46, 47, 48, 49
FIX_LEN, FIX_NODE, FIX_FH = 1, 2, 4
# Live mode (the first record's queue byte): a live device with the export as share "s";
# a record with LIVE_CHANGE_BIT removes "s" or adds it back (read-only with LIVE_RO).
LIVE, LIVE_CHANGE_BIT, LIVE_RO = 0x80, 0x40, 0x20
LIVE_CHANGE = struct.pack("<BBHH", LIVE_CHANGE_BIT, 0, 0, 0)


def req(op, nodeid, args=b"", wlen=4096, fix=FIX_LEN, queue=1, unique=7):
    body = struct.pack("<IIQQIIIHH", 40 + len(args), op, unique, nodeid, 0, 0, 1, 0, 0) + args
    return struct.pack("<BBHH", queue, fix, len(body), wlen) + body


def name(s):
    return s.encode() + b"\0"


seeds = {
    "lookup": req(LOOKUP, 1, name("file")),
    "lookup-dotdot": req(LOOKUP, 1, name("..")),
    "lookup-symlink-then-under": req(LOOKUP, 1, name("link"))
    + req(LOOKUP, 1, name("x"), fix=FIX_LEN | FIX_NODE, unique=1),
    "getattr-root": req(GETATTR, 1, struct.pack("<IIQ", 0, 0, 0)),
    "create-write-read": req(CREATE, 1, struct.pack("<IIII", 2, 0o100644, 0, 0) + name("new"))
    + req(WRITE, 2, struct.pack("<QQIIQII", 0, 0, 5, 0, 0, 0, 0) + b"hello",
          fix=FIX_LEN | FIX_NODE | FIX_FH, unique=1)
    + req(READ, 2, struct.pack("<QQIIQII", 0, 0, 4096, 0, 0, 0, 0),
          fix=FIX_LEN | FIX_NODE | FIX_FH, unique=1),
    "mkdir-rename-rmdir": req(MKDIR, 1, struct.pack("<II", 0o755, 0) + name("d"))
    + req(RENAME2, 1, struct.pack("<QII", 1, 0, 0) + name("d") + name("e"))
    + req(RMDIR, 1, name("e")),
    "symlink-readlink": req(SYMLINK, 1, name("s") + name("../../etc"))
    + req(READLINK, 1, b"", fix=FIX_LEN | FIX_NODE, unique=1),
    "mknod-blk": req(MKNOD, 1, struct.pack("<IIII", 0o60666, 0x800, 0, 0) + name("sda")),
    "opendir-readdirplus": req(OPENDIR, 1, struct.pack("<II", 0, 0))
    + req(READDIRPLUS, 1, struct.pack("<QQIIQII", 0, 0, 4096, 0, 0, 0, 0),
          fix=FIX_LEN | FIX_FH),
    "setxattr-getxattr": req(LOOKUP, 1, name("file"))
    + req(SETXATTR, 0, struct.pack("<II", 1, 0) + name("user.a") + b"v", fix=FIX_LEN | FIX_NODE,
          unique=1)
    + req(GETXATTR, 0, struct.pack("<II", 0, 0) + name("user.a"), fix=FIX_LEN | FIX_NODE,
          unique=1),
    "setupmapping": req(LOOKUP, 1, name("file"))
    + req(SETUPMAPPING, 0, struct.pack("<QQQQQ", 2**64 - 1, 0, 2 << 20, 2, 0),
          fix=FIX_LEN | FIX_NODE, unique=1)
    + req(REMOVEMAPPING, 1, struct.pack("<I", 1) + struct.pack("<QQ", 0, 2 << 20)),
    "batch-forget": req(LOOKUP, 1, name("file"))
    + req(BATCH_FORGET, 0, struct.pack("<II", 1, 0) + struct.pack("<QQ", 2, 1), wlen=0,
          queue=0),
    "truncated-header": struct.pack("<BBHH", 1, 0, 20, 256) + b"\x28" + b"\0" * 19,
    # Live mode: "s" is the export under a live root; LIVE_CHANGE removes or re-adds it.
    "live-remove-while-open": req(LOOKUP, 1, name("s"), queue=LIVE | 1)
    + req(LOOKUP, 0, name("file"), fix=FIX_LEN | FIX_NODE, unique=1)
    + req(OPEN, 0, struct.pack("<II", 2, 0), fix=FIX_LEN | FIX_NODE, unique=2)
    + LIVE_CHANGE
    + req(READ, 0, struct.pack("<QQIIQII", 0, 0, 4096, 0, 0, 0, 0),
          fix=FIX_LEN | FIX_NODE | FIX_FH, unique=2)
    + req(GETATTR, 0, struct.pack("<IIQ", 0, 0, 0), fix=FIX_LEN | FIX_NODE, unique=1)
    + req(RELEASE, 0, struct.pack("<QIIQ", 0, 0, 0, 0), fix=FIX_LEN | FIX_NODE | FIX_FH,
          unique=2)
    + req(FORGET, 0, struct.pack("<Q", 1), wlen=0, fix=FIX_LEN | FIX_NODE, queue=0, unique=1),
    "live-readd-ro": req(LOOKUP, 1, name("s"), queue=LIVE | 1)
    + req(OPENDIR, 0, struct.pack("<II", 0, 0), fix=FIX_LEN | FIX_NODE, unique=1)
    + LIVE_CHANGE
    + struct.pack("<BBHH", LIVE | LIVE_CHANGE_BIT | LIVE_RO, 0, 0, 0)
    + req(LOOKUP, 1, name("s"))
    + req(READDIRPLUS, 0, struct.pack("<QQIIQII", 0, 0, 4096, 0, 0, 0, 0),
          fix=FIX_LEN | FIX_NODE | FIX_FH, unique=1)
    + req(CREATE, 0, struct.pack("<IIII", 2, 0o100644, 0, 0) + name("new"),
          fix=FIX_LEN | FIX_NODE, unique=3),
}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for n, b in seeds.items():
    with open(os.path.join(out, n), "wb") as f:
        f.write(b)
